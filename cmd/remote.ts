import type { Command, Context, Output } from './_cli.js';
import { UsageError } from '../lib/errors.js';
import { crashHook, leaseOptions } from './_lease.js';
import type * as Remote from '../lib/remote/index.js';
import type { SyncOptions, SyncProgress, SyncResult } from '../lib/remote/sync.js';

export const remote: Command<{ action: string; name?: string; url?: string; endpoint?: string; region?: string }> = {
  command: 'remote <action> [name] [url]',
  describe: 'manage the remotes journals are pushed to and pulled from',
  usage: ['walnut remote add <name> <url> [--endpoint <url>] [--region <name>]', 'walnut remote remove <name>', 'walnut remote list [--json]'],
  builder: (y) =>
    y
      .positional('action', { choices: ['add', 'remove', 'list'] as const })
      .positional('name', { type: 'string' })
      .positional('url', { type: 'string', describe: 'a directory, file:///path, or s3://bucket/prefix' })
      .option('endpoint', { type: 'string', requiresArg: true, describe: 'S3 endpoint URL (S3-compatible stores)' })
      .option('region', { type: 'string', requiresArg: true, describe: 'S3 region (default: AWS_REGION or us-east-1)' }),
  async handler(ctx, argv) {
    const { addRemote, removeRemote, listRemotes }: typeof Remote = await import('../lib/remote/index.js');
    const { repo, out } = ctx;
    if (argv.action === 'list') {
      if (argv.name !== undefined) throw new UsageError('remote list takes no arguments');
      const remotes = listRemotes(repo);
      if (out.json) out.jsonDoc({ remotes });
      else for (const r of remotes) out.data(`${r.name}\t${r.url}${r.endpoint ? `\t${r.endpoint}` : ''}`);
      return;
    }
    if (!argv.name) throw new UsageError(`remote ${argv.action} needs a <name>`);
    if (argv.action === 'remove') {
      if (argv.url !== undefined) throw new UsageError('remote remove takes one <name>');
      const gone = removeRemote({ repo, name: argv.name });
      if (out.json) out.jsonDoc({ removed: gone });
      return;
    }
    if (argv.url === undefined) throw new UsageError('remote add needs <name> <url>');
    const entry = addRemote({ repo, name: argv.name, url: argv.url, endpoint: argv.endpoint, region: argv.region, cwd: ctx.cwd });
    if (out.json) out.jsonDoc({ added: entry });
  },
};

// ---------------------------------------------------------------------------
// Shared by push, pull and clone.

/** The options every sync command passes to lib: clock, crash points, progress, AWS settings. */
/** Run push or pull with progress and crash hooks, always closing the progress display. */
export async function runSync(ctx: Context, run: (o: SyncOptions) => Promise<SyncResult>, remote: string | undefined): Promise<{ result: SyncResult; crashPoint: SyncOptions['crashPoint'] }> {
  const hooks = syncHooks(ctx);
  try {
    return { result: await run({ repo: ctx.repo, remote: remote ?? 'origin', ...hooks }), crashPoint: hooks.crashPoint };
  } finally {
    hooks.done();
  }
}

export function syncHooks(ctx: Context): Pick<SyncOptions, 'clock' | 'crashPoint' | 'onProgress' | 'storeOptions' | 'lockStaleMs'> & { done(): void } {
  // The pinned AWS SDK warns on stderr about future Node versions; walnut's
  // stderr is for walnut's own messages.
  if (ctx.env === process.env) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const bar = progressBar(ctx.out);
  return {
    clock: ctx.clock,
    crashPoint: crashHook(ctx),
    onProgress: bar.update,
    storeOptions: { defaultRegion: ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION },
    lockStaleMs: leaseOptions(ctx, '0').stale,
    done: bar.done,
  };
}

/** A progress bar on stderr for transfers of more than one segment, on a terminal only. */
function progressBar(out: Output): { update?: (p: SyncProgress) => void; done(): void } {
  if (!out.tty || out.quiet || out.json) return { done() {} };
  let shown = false;
  let last = 0;
  return {
    update(p) {
      if (p.total < 2) return;
      const now = Date.now();
      if (now - last < 80 && p.done < p.total) return;
      last = now;
      const width = 24;
      const frac = p.totalBytes > 0 ? Math.min(1, p.bytes / p.totalBytes) : p.done / p.total;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      process.stderr.write(`\r${p.phase === 'push' ? 'pushing' : 'pulling'} [${bar}] ${p.done}/${p.total} segments, ${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)}\x1b[K`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}

/** 1536 → '1.5 KiB'. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** The JSON summary of a push or pull (formats/remote.md, man pages). */
export function syncJson(r: SyncResult): Record<string, unknown> {
  return {
    remote: r.remote,
    url: r.url,
    kind: r.kind,
    inSync: r.inSync,
    sent: r.sent,
    received: r.received,
    transfers: r.transfers,
    divergences: r.divergences,
    wire: { ...r.wire },
  };
}

/** Warnings about pulled records stamped far ahead. */
export function warnAhead(out: Output, r: SyncResult): void {
  for (const a of r.ahead) out.warn(`a record of node '${a.node}' is stamped ${a.timestamp}, ${Math.round(a.aheadMs / 60000)} min ahead of this machine's clock; the clock moved only to the bound`, { code: 'EAHEAD', ...a });
}

/** "3 segments (12.0 KiB)" */
export function segmentsText(n: { segments: number; bytes: number }): string {
  return `${n.segments} segment${n.segments === 1 ? '' : 's'} (${formatBytes(n.bytes)})`;
}
