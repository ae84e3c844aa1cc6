import type { Command } from './_cli.js';
import { leaseOptions } from './_lease.js';

export const record: Command<{ wait?: string; dryRun?: boolean }> = {
  command: 'record',
  describe: 'turn hand edits of entity files into journal records',
  usage: ['walnut record [--wait <duration>] [--dry-run] [--json]'],
  builder: (y) =>
    y.option('wait', { type: 'string', describe: 'wait this long for a running compaction (default 60s)' }).option('dry-run', { type: 'boolean', describe: 'show what would be recorded; write nothing' }),
  async handler(ctx, argv) {
    const { record: run } = await import('../lib/compact.js');
    const out = ctx.out;
    const result = await run({ repo: ctx.repo, clock: ctx.clock, ...leaseOptions(ctx, argv.wait), dryRun: argv.dryRun });
    for (const b of result.broken) out.broken(b);
    if (out.json) {
      out.jsonDoc({ dryRun: Boolean(argv.dryRun), records: result.records.map((r) => ({ target: r.target, field: r.field, value: JSON.parse(r.value), timestamp: r.timestamp })), edited: result.edited, adopted: result.adopted, broken: result.broken });
      return;
    }
    if (argv.dryRun) {
      for (const r of result.records) out.data(`${r.target} ${r.field} ${r.value}`);
      return;
    }
    if (result.records.length > 0) out.status(`recorded ${result.records.length} key${result.records.length === 1 ? '' : 's'} of ${result.edited.length} hand-edited entit${result.edited.length === 1 ? 'y' : 'ies'}`);
  },
};
