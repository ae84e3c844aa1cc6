import fs from 'node:fs';
import type { Command } from './_cli.js';
import { writeChanges, writeBatch } from '../lib/write.js';
import { UsageError, FormatError } from '../lib/errors.js';

export const set: Command<{ target?: string; field?: string; value?: string; jsonValue?: boolean; string?: boolean; batch?: boolean }> = {
  command: 'set [target] [field] [value]',
  describe: 'write a field of an entity to the journal',
  usage: ['walnut set <target> <field> <value> [--json-value | --string]', 'walnut set --batch'],
  builder: (y) =>
    y
      .positional('target', { type: 'string', describe: '<collection>/<slug>' })
      .positional('field', { type: 'string' })
      .positional('value', { type: 'string', describe: 'JSON when it parses as JSON, else a string' })
      .option('json-value', { type: 'boolean', describe: 'the value must be JSON' })
      .option('string', { type: 'boolean', describe: 'the value is a string, even if it looks like JSON' })
      .option('batch', { type: 'boolean', describe: 'read NDJSON {"target","field","value"} lines from stdin' })
      .conflicts('json-value', 'string'),
  async handler(ctx, argv) {
    if (argv.batch) {
      if (argv.target !== undefined) throw new UsageError('--batch reads records from stdin and takes no target, field or value');
      const input = fs.createReadStream('', { fd: 0, highWaterMark: 1 << 20, autoClose: false });
      const { written, refused } = await writeBatch({ repo: ctx.repo, input, clock: ctx.clock, onIssue: (i) => ctx.out.warn(`stdin line ${i.line}: ${i.message}; line skipped`, { line: i.line }) });
      if (ctx.out.json) ctx.out.jsonDoc({ written, refused });
      else ctx.out.status(`wrote ${written} record${written === 1 ? '' : 's'}${refused ? `, refused ${refused} line${refused === 1 ? '' : 's'}` : ''}`);
      if (refused > 0) throw new FormatError('EBATCH', `${refused} line${refused === 1 ? '' : 's'} of batch input refused (see warnings above)`, { refused, written });
      return;
    }
    if (argv.target === undefined || argv.field === undefined || argv.value === undefined) throw new UsageError('set needs <target> <field> <value>, or --batch');
    const value = parseValueArg(argv.value, argv.jsonValue ? 'json' : argv.string ? 'string' : 'auto');
    const [record] = writeChanges({ repo: ctx.repo, changes: [{ target: argv.target, field: argv.field, value }], clock: ctx.clock });
    if (ctx.out.json) ctx.out.jsonDoc({ target: record.target, field: record.field, value, timestamp: record.timestamp, node: record.node });
  },
};

/** A value from the command line: JSON when it is JSON (or must be), else a string. */
export function parseValueArg(text: string, mode: 'auto' | 'json' | 'string'): unknown {
  if (mode === 'string') return text;
  try {
    return JSON.parse(text);
  } catch (err) {
    if (mode === 'json') throw new UsageError(`--json-value: ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)} is not valid JSON (${(err as Error).message})`, ['quote strings as JSON ("\\"text\\"") or drop --json-value']);
    return text;
  }
}
