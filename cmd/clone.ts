import type { Command } from './_cli.js';
import type * as Clone from '../lib/remote/clone.js';
import type * as Compact from '../lib/compact.js';
import type * as VRemote from '../lib/version/remote.js';
import { leaseOptions } from './_lease.js';
import { syncHooks, segmentsText } from './remote.js';

export const clone: Command<{ url: string; dir: string; node?: string; endpoint?: string; region?: string; compact?: boolean }> = {
  command: 'clone <url> <dir>',
  describe: 'make a new data directory from a remote: fetch all journals, then compact',
  usage: ['walnut clone <url> <dir> [--node <id>] [--endpoint <url>] [--region <name>] [--no-compact] [--json]'],
  builder: (y) =>
    y
      .positional('url', { type: 'string', describe: 'a directory, file:///path, or s3://bucket/prefix' })
      .positional('dir', { type: 'string', describe: 'the new data directory (must not exist, or be empty)' })
      .option('node', { type: 'string', requiresArg: true, describe: "this machine's node id (default: from the host name)" })
      .option('endpoint', { type: 'string', requiresArg: true, describe: 'S3 endpoint URL (S3-compatible stores)' })
      .option('region', { type: 'string', requiresArg: true, describe: 'S3 region (default: AWS_REGION or us-east-1)' })
      .option('compact', { type: 'boolean', default: true, describe: 'compact after fetching (--no-compact: do not)' }),
  async handler(ctx, argv) {
    const { clone: run }: typeof Clone = await import('../lib/remote/clone.js');
    const { out } = ctx;
    const hooks = syncHooks(ctx);
    const { bootstrapFromActive, reconcileCheckpoint }: typeof VRemote = await import('../lib/version/remote.js');
    let cloned: Awaited<ReturnType<typeof run>>;
    let started: { version: string; entities: number } | undefined;
    try {
      cloned = await run({
        url: argv.url,
        dir: argv.dir,
        node: argv.node,
        hostname: ctx.hostname,
        endpoint: argv.endpoint,
        region: argv.region,
        cwd: ctx.cwd,
        ...hooks,
        bootstrap: async ({ repo, store }) => {
          started = await bootstrapFromActive(repo, store);
        },
      });
    } finally {
      hooks.done();
    }
    const { repo, result } = cloned;
    if (started) reconcileCheckpoint(repo);
    let compacted: Compact.CompactResult | undefined;
    if (argv.compact !== false) {
      const { compact }: typeof Compact = await import('../lib/compact.js');
      compacted = await compact({ repo, clock: ctx.clock, ...leaseOptions(ctx, undefined), crashPoint: hooks.crashPoint });
      for (const i of compacted.issues) out.issue(i);
    }
    if (out.json) {
      const c = compacted && { generation: compacted.generation, records: compacted.records, created: compacted.created, updated: compacted.updated, deleted: compacted.deleted, idle: compacted.idle };
      out.jsonDoc({ dir: repo.root, node: repo.node, remote: 'origin', url: result.url, kind: result.kind, received: result.received, transfers: result.transfers, wire: { ...result.wire }, startedFrom: started ?? null, compact: c ?? null });
      return;
    }
    const from = started ? `, started from version ${started.version.slice(0, 12)}` : '';
    const entities = (started?.entities ?? 0) + (compacted?.created ?? 0);
    out.status(`Cloned ${result.url} into ${repo.root} (node ${repo.node}): ${segmentsText(result.received)}${from}${compacted || started ? `, ${entities} entit${entities === 1 ? 'y' : 'ies'}` : ''}`);
  },
};
