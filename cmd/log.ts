import { parseSince, showValue, type Command } from './_cli.js';
import type * as View from '../lib/view.js';
import { checkNodeId } from '../formats/usv.js';

export const log: Command<{ target?: string; field?: string; node?: string; since?: string }> = {
  command: 'log [target] [field]',
  describe: 'show the history of records',
  usage: ['walnut log [<target> [<field>]] [--node <id>] [--since <time>] [--json]'],
  builder: (y) =>
    y
      .positional('target', { type: 'string' })
      .positional('field', { type: 'string' })
      .option('node', { type: 'string', describe: 'only records written by this node' })
      .option('since', { type: 'string', describe: 'only records at or after this time (ISO-8601 or a duration ago: 2h, 3d)' }),
  async handler(ctx, argv) {
    const { logRecords }: typeof View = await import('../lib/view.js');
    if (argv.node !== undefined) checkNodeId(argv.node);
    const sinceMs = argv.since !== undefined ? parseSince(argv.since, ctx.clock.now!()) : undefined;
    const entries = logRecords({ repo: ctx.repo, target: argv.target, field: argv.field, node: argv.node, sinceMs, onIssue: (i) => ctx.out.issue(i) });
    for (const e of entries) {
      if (ctx.out.json) ctx.out.jsonDoc(e);
      else ctx.out.data(`${e.timestamp} ${e.node} ${e.target} ${e.field} ${showValue(e.value)}`);
    }
  },
};
