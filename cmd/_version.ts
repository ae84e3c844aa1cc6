/** Shared by the version commands: opening a remote's store, printing versions, stopping on signals. */
import type { Context } from './_cli.js';
import type { Store } from '../lib/remote/index.js';
import type { ActivePointer } from '../lib/version/remote.js';

/** Open the store of a configured remote (closed by the caller). */
export async function openRemote(ctx: Context, name: string): Promise<{ name: string; store: Store }> {
  const { openStore, remoteSpec } = await import('../lib/remote/index.js');
  if (ctx.env === process.env) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const store = await openStore(remoteSpec(ctx.repo, name), { defaultRegion: ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION });
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
