/**
 * Leases: locks with a stale timeout, renewed while their holder runs, so a
 * crashed holder's lease is taken over and a live one is waited for or
 * reported. One place for all of them: `withLease(repo, name, options, fn)`
 * always releases in `finally`. Built on proper-lockfile (a lock folder
 * `.walnut/locks/<name>.lock` whose mtime is the heartbeat).
 */
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { LockHeldError } from './errors.js';
import type { Repo } from './repo.js';

export const DEFAULT_STALE_MS = 10_000;

export interface LeaseOptions {
  /** how long to wait for a live holder (ms); 0 = do not wait */
  wait?: number;
  /** a lease not renewed for this long is taken over (ms, at least 2000) */
  stale?: number;
  /** called when the lease was lost while held (e.g. the machine stalled) */
  onCompromised?: (err: Error) => void;
}

/** The lock file of a lease (the lock itself is `<file>.lock/`). */
export function leaseFile(repo: Repo, name: string): string {
  const dir = path.join(repo.dir, 'locks');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) fs.writeFileSync(file, '');
  return file;
}

/**
 * Run `fn` holding the lease `name`.
 *
 * @param repo - the repository
 * @param name - the lease, e.g. 'compact'
 * @param options - wait, stale
 * @param fn - the work; receives a `check()` that throws if the lease was lost
 * @returns what `fn` returns
 * @throws LockHeldError when a live holder keeps it longer than `wait`
 * @example await withLease(repo, 'compact', { wait: 30_000 }, async () => compactNow())
 */
export async function withLease<T>(repo: Repo, name: string, { wait = 0, stale = DEFAULT_STALE_MS, onCompromised }: LeaseOptions, fn: (check: () => void) => Promise<T> | T): Promise<T> {
  const file = leaseFile(repo, name);
  const deadline = Date.now() + wait;
  let lost: Error | undefined;
  let release: (() => Promise<void>) | undefined;
  for (;;) {
    try {
      release = await lockfile.lock(file, {
        stale,
        update: Math.max(1000, Math.floor(stale / 3)),
        realpath: false,
        onCompromised: (err) => {
          lost = err;
          onCompromised?.(err);
        },
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      if (Date.now() >= deadline) {
        const since = lockAge(file);
        throw new LockHeldError(`the ${name} lease is held by another walnut process${since !== undefined ? ` (renewed ${Math.round(since / 1000)} s ago)` : ''}`, { lease: name, file: path.relative(repo.root, file) + '.lock' }, [
          wait > 0 ? `it was still held after waiting ${Math.round(wait / 1000)} s; try again later or pass a longer --wait` : 'pass --wait <duration> to wait for it',
          `a crashed holder's lease is taken over after ${Math.round(stale / 1000)} s`,
        ]);
      }
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, deadline - Date.now()))));
    }
  }
  const check = () => {
    if (lost) throw new LockHeldError(`the ${name} lease was lost while running (${lost.message})`, { lease: name });
  };
  try {
    return await fn(check);
  } finally {
    await release().catch(() => {});
  }
}

/** Milliseconds since a lease was last renewed, or undefined when not held. */
export function lockAge(file: string): number | undefined {
  try {
    return Date.now() - fs.statSync(file + '.lock').mtimeMs;
  } catch {
    return undefined;
  }
}
