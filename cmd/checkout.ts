import { UsageError, WalnutError } from '../lib/errors.js';
import { parseDuration, type Command, type Context } from './_cli.js';
import { crashHook } from './_lease.js';
import { openRemote, stopSignal } from './_version.js';
import type * as Activate from '../lib/version/activate.js';
import type * as Checkout from '../lib/version/checkout.js';
import type * as VRemote from '../lib/version/remote.js';
import type * as VStore from '../lib/version/store.js';

type Args = { id?: string; dir?: string; active?: boolean; remote?: string; follow?: boolean; interval?: string; grace?: string };

export const checkout: Command<Args> = {
  command: 'checkout [id] [dir]',
  describe: 'materialise a version into <dir>/<id>/ and atomically point <dir>/current at it; --follow tracks the active version',
  usage: [
    'walnut checkout <version> <dir> [--remote <name>] [--grace <duration>] [--json]',
    'walnut checkout --active <dir> [--remote <name>] [--follow] [--interval <duration>] [--grace <duration>] [--json]',
  ],
  builder: (y) =>
    y
      .positional('id', { type: 'string', describe: 'a version id (or unique prefix)' })
      .positional('dir', { type: 'string', describe: 'the checkout folder (holds <id>/ trees and the current link)' })
      .option('active', { type: 'boolean', describe: 'check out the active version' })
      .option('remote', { type: 'string', requiresArg: true, describe: "use this remote's active pointer and fetch the version from it" })
      .option('follow', { type: 'boolean', describe: 'keep polling the active pointer and switch on every change (with --active)' })
      .option('interval', { type: 'string', requiresArg: true, describe: 'how often --follow polls (default 500ms)' })
      .option('grace', { type: 'string', requiresArg: true, describe: 'how long a tree out of use is kept before it is recycled (default 10s)' }),
  async handler(ctx, argv) {
    let version = argv.id;
    let dir = argv.dir;
    if (argv.active) {
      if (dir !== undefined) throw new UsageError('with --active give only the <dir>');
      dir = version;
      version = undefined;
    }
    if (dir === undefined) throw new UsageError(argv.active ? 'checkout --active needs a <dir>' : 'checkout needs a <version> and a <dir>');
    if (argv.follow && !argv.active) throw new UsageError('--follow needs --active');
    const interval = parseDuration(argv.interval ?? '500ms', '--interval');
    if (interval < 10) throw new UsageError('--interval must be at least 10ms');
    const grace = parseDuration(argv.grace ?? '10s', '--grace');
    const remote = argv.remote !== undefined ? await openRemote(ctx, argv.remote) : undefined;
    try {
      const { VersionStore }: typeof VStore = await import('../lib/version/store.js');
      const { readActive, watchActive }: typeof Activate = await import('../lib/version/activate.js');
      const { fetchVersion }: typeof VRemote = await import('../lib/version/remote.js');
      const place: Activate.PointerPlace = remote ? { kind: 'remote', ...remote } : { kind: 'local', repo: ctx.repo };
      // one store for the whole run: --follow diffs against listings it has already read
      const store = await VersionStore.open(ctx.repo);
      const switchTo = async (wanted: string | undefined) => {
        store.refresh();
        {
          let id: string;
          if (wanted === undefined) {
            const { pointer } = await readActive(place);
            if (!pointer) throw new WalnutError('ENOACTIVE', `no version is active${remote ? ` on ${remote.name}` : ''}`, { hints: [`walnut activate <version>${remote ? ` --remote ${remote.name}` : ''}`] });
            id = pointer.version;
          } else id = remote && /^[0-9a-f]{40}$/.test(wanted) ? wanted : store.resolve(wanted);
          if (remote) await fetchVersion(store, remote.store, id);
          return await runCheckout(ctx, store, id, dir!, grace);
        }
      };
      try {
        await switchTo(version);
      } finally {
        if (!argv.follow) store.close();
      }
      if (!argv.follow) return;
      const stop = stopSignal();
      try {
        if (!ctx.out.json) ctx.out.status(`following the active version${remote ? ` of ${remote.name}` : ''} into ${dir} (Ctrl-C to stop)`);
        await watchActive(place, {
          interval,
          signal: stop.signal,
          onChange: async (p) => {
            if (p) await switchTo(undefined);
          },
          // between switches: the spare tree brought up to date, so the next switch writes only its change
          onIdle: async () => {
            const { warmSpare }: typeof Checkout = await import('../lib/version/checkout.js');
            const w = await warmSpare({ store, dir: ctx.cwd ? (await import('node:path')).resolve(ctx.cwd, dir!) : dir!, grace });
            if (w.spare && !ctx.out.json) ctx.out.status(`spare tree brought up to ${w.spare.slice(0, 12)} (${w.written} written, ${w.removed} removed)`);
          },
          onError: (err) => ctx.out.warn(`${err.message}; trying again in ${interval} ms`, { code: (err as WalnutError).code ?? 'EFOLLOW' }),
        });
      } finally {
        stop.done();
        store.close();
      }
    } finally {
      await remote?.store.close();
    }
  },
};

async function runCheckout(ctx: Context, store: VStore.VersionStore, id: string, dir: string, grace: number): Promise<void> {
  const { checkout: run }: typeof Checkout = await import('../lib/version/checkout.js');
  const started = Date.now();
  const r = await run({ store, id, dir: ctx.cwd ? (await import('node:path')).resolve(ctx.cwd, dir) : dir, grace, crashPoint: crashHook(ctx) });
  const ms = Date.now() - started;
  if (ctx.out.json) ctx.out.jsonDoc({ ...r, dir, ms });
  else if (r.switched) {
    ctx.out.data(`${dir}/current -> ${id}`);
    ctx.out.status(`checked out ${id.slice(0, 12)} in ${ms} ms (${r.method}: ${r.written} written, ${r.linked} linked, ${r.removed} removed${r.pruned.length ? `; ${r.pruned.length} old tree${r.pruned.length === 1 ? '' : 's'} removed` : ''})`);
  } else ctx.out.status(`${dir}/current already points at ${id.slice(0, 12)}`);
}
