import type { Command } from './_cli.js';
import type * as Sync from '../lib/remote/sync.js';
import type * as Compact from '../lib/compact.js';
import { leaseOptions } from './_lease.js';
import { runSync, syncJson, segmentsText, warnAhead } from './remote.js';
import { openRemote } from './_version.js';
import type { Context } from './_cli.js';
import type * as VRemote from '../lib/version/remote.js';

/** Bring the remote's active version into the version store (pull's last step). */
async function fetchActive(ctx: Context, name: string): Promise<{ version: string; fetched: boolean; packs: number; bytes: number } | undefined> {
  const { fetchActiveVersion }: typeof VRemote = await import('../lib/version/remote.js');
  const remote = await openRemote(ctx, name);
  try {
    const r = await fetchActiveVersion(ctx.repo, remote.store);
    return r && { version: r.version, ...r.fetch };
  } finally {
    await remote.store.close();
  }
}

export const pull: Command<{ remote?: string; compact?: boolean; wait?: string }> = {
  command: 'pull [remote]',
  describe: 'fetch the journal segments a remote has and this node lacks, then compact',
  usage: ['walnut pull [<remote>] [--no-compact] [--json]'],
  builder: (y) =>
    y
      .positional('remote', { type: 'string', describe: 'the remote (default: origin)' })
      .option('compact', { type: 'boolean', default: true, describe: 'compact after fetching (--no-compact: do not)' })
      .option('wait', { type: 'string', requiresArg: true, describe: 'wait this long for a running compaction (default 60s)' }),
  async handler(ctx, argv) {
    const { pull: run, divergenceError }: typeof Sync = await import('../lib/remote/sync.js');
    const { out } = ctx;
    const { result, crashPoint } = await runSync(ctx, run, argv.remote);
    warnAhead(out, result);
    let compacted: Compact.CompactResult | undefined;
    if (argv.compact !== false) {
      const { compact }: typeof Compact = await import('../lib/compact.js');
      compacted = await compact({ repo: ctx.repo, clock: ctx.clock, ...leaseOptions(ctx, argv.wait), crashPoint });
      for (const i of compacted.issues) out.issue(i);
      for (const b of compacted.broken) out.broken(b);
    }
    const fetched = await fetchActive(ctx, argv.remote ?? 'origin');
    if (out.json) {
      const c = compacted && { generation: compacted.generation, records: compacted.records, created: compacted.created, updated: compacted.updated, deleted: compacted.deleted, idle: compacted.idle };
      out.jsonDoc({ ...syncJson(result), compact: c ?? null, active: fetched ?? null });
    } else if (result.received.segments > 0) {
      const c = compacted && compacted.records > 0 ? `; compacted ${compacted.records} record${compacted.records === 1 ? '' : 's'} (${compacted.created} created, ${compacted.updated} updated, ${compacted.deleted} deleted)` : '';
      out.status(`pulled ${segmentsText(result.received)} from ${result.remote}${c}`);
    }
    if (fetched?.fetched) out.status(`fetched version ${fetched.version.slice(0, 12)} (active on ${result.remote})`);
    if (result.divergences.length > 0) throw divergenceError(result);
  },
};
