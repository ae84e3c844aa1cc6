import type { Command } from './_cli.js';
import { writeChanges } from '../lib/write.js';

export const unset: Command<{ target: string; field: string }> = {
  command: 'unset <target> <field>',
  describe: 'remove a field of an entity (writes a null record)',
  usage: ['walnut unset <target> <field>'],
  builder: (y) => y.positional('target', { type: 'string' }).positional('field', { type: 'string' }),
  handler(ctx, argv) {
    const [record] = writeChanges({ repo: ctx.repo, changes: [{ target: argv.target, field: argv.field, value: null }], clock: ctx.clock });
    if (ctx.out.json) ctx.out.jsonDoc({ target: record.target, field: record.field, value: null, timestamp: record.timestamp, node: record.node });
  },
};
