import type { Command } from './_cli.js';
import type * as Clone from '../lib/remote/clone.js';
import type * as Compact from '../lib/compact.js';
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
    let cloned: Awaited<ReturnType<typeof run>>;
    try {
      cloned = await run({ url: argv.url, dir: argv.dir, node: argv.node, hostname: ctx.hostname, endpoint: argv.endpoint, region: argv.region, cwd: ctx.cwd, ...hooks });
    } finally {
      hooks.done();
    }
    const { repo, result } = cloned;
    let compacted: Compact.CompactResult | undefined;
    if (argv.compact !== false) {
      const { compact }: typeof Compact = await import('../lib/compact.js');
      compacted = await compact({ repo, clock: ctx.clock, ...leaseOptions(ctx, undefined), crashPoint: hooks.crashPoint });
      for (const i of compacted.issues) out.issue(i);
    }
    if (out.json) {
      const c = compacted && { generation: compacted.generation, records: compacted.records, created: compacted.created, updated: compacted.updated, deleted: compacted.deleted, idle: compacted.idle };
      out.jsonDoc({ dir: repo.root, node: repo.node, remote: 'origin', url: result.url, kind: result.kind, received: result.received, transfers: result.transfers, wire: { ...result.wire }, compact: c ?? null });
      return;
    }
    out.status(`Cloned ${result.url} into ${repo.root} (node ${repo.node}): ${segmentsText(result.received)}${compacted ? `, ${compacted.created} entit${compacted.created === 1 ? 'y' : 'ies'}` : ''}`);
  },
};
