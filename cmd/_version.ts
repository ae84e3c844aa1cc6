/** Shared by the version commands: opening a remote's store, printing versions, stopping on signals. */
import type { Context } from './_cli.js';
import type { Store } from '../lib/remote/index.js';
import type { ActivePointer } from '../lib/version/remote.js';

/** Open the store of a configured remote (closed by the caller). */
export async function openRemote(ctx: Context, name: string): Promise<{ name: string; store: Store }> {
  const { openStore, remoteSpec, loadRemoteState, saveRemoteState } = await import('../lib/remote/index.js');
  if (ctx.env === process.env) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const spec = remoteSpec(ctx.repo, name);
  // the pointer's compare-and-swap needs If-Match as the server wants it: probed once, cached with push's
  const state = loadRemoteState(ctx.repo, name, spec.url);
  const store = await openStore(spec, { ifMatchQuoted: state.conditions?.ifMatchQuoted, defaultRegion: ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION });
  if (store.kind === 's3' && !state.conditions) {
    const { S3Store } = await import('../lib/remote/s3.js');
    if (store instanceof S3Store) {
      state.conditions = { checkedAt: new Date().toISOString(), ...(await store.probe()) };
      saveRemoteState(ctx.repo, name, state);
    }
  }
  return { name, store };
}

/** "4f2a9c1e0b7d  activated 2026-11-21T10:00:00.000Z by pi-01" */
export function pointerText(p: ActivePointer): string {
  return `${p.version}  activated ${p.activated} by ${p.node}`;
}

/** An AbortSignal that fires on SIGINT, SIGTERM or SIGHUP; `done()` removes the handlers. */
export function stopSignal(): { signal: AbortSignal; done(): void } {
  const ac = new AbortController();
  const stop = () => ac.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, stop);
  return { signal: ac.signal, done: () => signals.forEach((s) => process.off(s, stop)) };
}
