import { showValue, type Command } from './_cli.js';
import { leaseOptions, crashHook } from './_lease.js';

export const compact: Command<{ wait?: string; dryRun?: boolean; gitBase?: string; record?: boolean }> = {
  command: 'compact',
  describe: 'merge new journal records into the entity files',
  usage: ['walnut compact [--wait <duration>] [--record] [--dry-run] [--json]'],
  builder: (y) =>
    y
      .option('wait', { type: 'string', describe: 'wait this long for another compaction to finish (default 60s; 0 = do not wait)' })
      .option('record', { type: 'boolean', describe: 'first record hand edits in every entity file, as walnut record does (default: only in the files the new records change)' })
      .option('dry-run', { type: 'boolean', describe: 'show what would change; write nothing' })
      .option('git-base', { type: 'string', describe: 'used by the git hooks: the revision before a merge, checkout or rebase' }),
  async handler(ctx, argv) {
    const { compact: run } = await import('../lib/compact.js');
    const out = ctx.out;
    const progress = out.tty && !out.quiet && !out.json;
    const passMiB = ctx.repo.config.get('compact.passmib');
    const result = await run({
      repo: ctx.repo,
      passBytes: passMiB ? Number(passMiB) * 1024 * 1024 : undefined,
      clock: ctx.clock,
      ...leaseOptions(ctx, argv.wait),
      dryRun: argv.dryRun,
      record: argv.record,
      gitBase: argv.gitBase,
      crashPoint: crashHook(ctx),
      onProgress: progress ? (p) => process.stderr.write(`\rcompacting: ${p.phase} ${Math.floor((100 * p.done) / Math.max(1, p.total))}%   `) : undefined,
    });
    if (progress) process.stderr.write('\r\x1b[K');
    for (const i of result.issues) out.issue(i);
    for (const b of result.broken) out.broken(b);
    for (const a of result.ahead) out.warn(`${a.records} record${a.records === 1 ? '' : 's'} of node '${a.node}' stamped up to ${a.timestamp}, ${Math.round(a.aheadMs / 60000)} min ahead of this machine's clock; merged, the clock moved only to the bound`, { code: 'EAHEAD', ...a });
    if (out.json) {
      out.jsonDoc({ ...result, issues: result.issues.length, ahead: result.ahead.length });
      return;
    }
    if (argv.dryRun) {
      for (const c of result.changes) {
        out.data(`${c.action} ${c.target}`);
        for (const f of c.fields) out.data(`  ${f.field}: ${f.from === undefined ? '(none)' : showValue(f.from)} -> ${f.to === null ? '(removed)' : showValue(f.to)}`);
      }
      if (result.recorded) out.data(`(${result.recorded} hand-edited key${result.recorded === 1 ? '' : 's'} would be recorded first)`);
      return;
    }
    // Nothing changed (only system records, e.g. the last run's sync_checkpoint, or
    // records already applied, e.g. the hand edits the last run recorded): nothing to say (cron).
    if (result.idle || (!result.created && !result.updated && !result.deleted && !result.recorded && !result.adopted)) return;
    const parts = [`${result.created} created`, `${result.updated} updated`, `${result.deleted} deleted`];
    if (result.recorded) parts.push(`${result.recorded} hand edit${result.recorded === 1 ? '' : 's'} recorded`);
    if (result.adopted) parts.push(`${result.adopted} adopted`);
    out.status(`compacted ${result.records} record${result.records === 1 ? '' : 's'}: ${parts.join(', ')} (generation ${result.generation})`);
  },
};
