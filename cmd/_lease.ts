/** Options shared by the commands that take the compaction lease. */
import { parseDuration, type Context } from './_cli.js';

/** The lease options from --wait and the environment (WALNUT_LEASE_STALE_MS, for tests). */
export function leaseOptions(ctx: Context, wait: string | undefined, fallback = '60s'): { wait: number; stale?: number } {
  const stale = ctx.env.WALNUT_LEASE_STALE_MS ? Number(ctx.env.WALNUT_LEASE_STALE_MS) : undefined;
  return { wait: parseDuration(wait ?? fallback, '--wait'), stale };
}

/** The crash-point hook: WALNUT_CRASH_AT=<point> kills the process there (tests). */
export function crashHook(ctx: Context): (name: string) => void {
  const at = ctx.env.WALNUT_CRASH_AT;
  return (name) => {
    if (at && at === name) process.kill(process.pid, 'SIGKILL');
  };
}
