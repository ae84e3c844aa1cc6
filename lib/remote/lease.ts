/**
 * Leases: mutual exclusion with an expiry, so a crashed holder never blocks
 * the others for longer than the lease's time to live.
 *
 * - Remote leases live in the remote as `locks/<name>` objects and use only
 *   the store's compare-and-swap writes (S3: `If-None-Match: *` to acquire a
 *   free lease, `If-Match: <ETag>` to renew, release, or take over an expired
 *   one; directories: the same operations serialised by proper-lockfile). A
 *   lease is expired when the store's clock is past its last write plus its
 *   time to live, so the machines' own clocks (Pis boot in 1970) do not
 *   matter. See formats/remote.md.
 * - The local sync lease (`.walnut/locks/sync`, lib/lease.ts) keeps two
 *   push/pull runs in one data directory apart (cron jobs overlap).
 */
import { randomBytes } from 'node:crypto';
import { LockHeldError, WalnutError } from '../errors.js';
import type { Repo } from '../repo.js';
import type { Store } from './index.js';

/** The body of a lease object. */
export interface LeaseBody {
  /** who holds it, for messages (e.g. node id and machine) */
  owner: string;
  /** unique per acquisition: tells our own write from another's */
  token: string;
  /** time to live after the last write, in ms */
  ttlMs: number;
  /** written on release: free for the next acquirer */
  released?: boolean;
}

/** A lease this process holds. */
export interface Lease {
  name: string;
  key: string;
  owner: string;
  token: string;
  ttlMs: number;
  /** the store's token of our last write */
  tag: string;
}

/** Why a lease could not be had. */
export interface LeaseBusy {
  held: false;
  owner: string;
  /** ms until it expires unless renewed */
  expiresInMs: number;
}

function leaseKey(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new WalnutError('ELEASENAME', `invalid lease name ${JSON.stringify(name)}`);
  return `locks/${name}`;
}

function parseBody(body: Buffer): LeaseBody | undefined {
  try {
    const b = JSON.parse(body.toString('utf8')) as LeaseBody;
    return typeof b.token === 'string' && typeof b.ttlMs === 'number' ? b : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Try once to acquire a remote lease.
 *
 * @param store - the remote
 * @param options.name - the lease, e.g. 'activate'
 * @param options.owner - who asks, shown to others while held
 * @param options.ttlMs - time to live; renew before it passes
 * @returns the lease, or why not (who holds it, for how long)
 * @example const got = await acquireLease(store, { name: 'activate', owner: 'pi-01', ttlMs: 30_000 }); if ('key' in got) ...
 */
export async function acquireLease(store: Store, { name, owner, ttlMs = 30_000 }: { name: string; owner: string; ttlMs?: number }): Promise<Lease | LeaseBusy> {
  const key = leaseKey(name);
  const token = randomBytes(12).toString('hex');
  const body = Buffer.from(JSON.stringify({ owner, token, ttlMs } satisfies LeaseBody));
  for (let attempt = 0; attempt < 5; attempt++) {
    const created = await store.putObject(key, body, { ifNoneMatch: true });
    if (created !== undefined) return { name, key, owner, token, ttlMs, tag: created };
    const current = await store.getObject(key);
    if (!current) continue; // deleted meanwhile: try to create again
    const held = parseBody(current.body);
    if (held?.token === token) return { name, key, owner, token, ttlMs, tag: current.tag }; // our own write, answer lost
    const expiresAt = held && !held.released ? current.modifiedMs + held.ttlMs : -Infinity;
    if (current.nowMs < expiresAt) return { held: false, owner: held!.owner, expiresInMs: expiresAt - current.nowMs };
    // Free (released, expired or damaged): take it over, if nobody beats us to it.
    const taken = await store.putObject(key, body, { ifMatch: current.tag });
    if (taken !== undefined) return { name, key, owner, token, ttlMs, tag: taken };
    const after = await store.getObject(key);
    const winner = after ? parseBody(after.body) : undefined;
    if (winner?.token === token) return { name, key, owner, token, ttlMs, tag: after!.tag };
    if (winner && !winner.released) return { held: false, owner: winner.owner, expiresInMs: winner.ttlMs };
  }
  return { held: false, owner: 'unknown', expiresInMs: ttlMs };
}

/**
 * Renew a lease for another time to live.
 *
 * @throws WalnutError `ELEASELOST` when someone else took it (it had expired)
 */
export async function renewLease(store: Store, lease: Lease): Promise<Lease> {
  const body = Buffer.from(JSON.stringify({ owner: lease.owner, token: lease.token, ttlMs: lease.ttlMs } satisfies LeaseBody));
  const tag = await store.putObject(lease.key, body, { ifMatch: lease.tag });
  if (tag === undefined) {
    throw new WalnutError('ELEASELOST', `lost the remote lease '${lease.name}' at '${store.url}': it expired and was taken over`, { data: { lease: lease.name, url: store.url }, hints: ['the work done under it may have to be redone; run the command again'] });
  }
  lease.tag = tag;
  return lease;
}

/** Release a lease (mark it free); a lease already taken over is left alone. */
export async function releaseLease(store: Store, lease: Lease): Promise<void> {
  const body = Buffer.from(JSON.stringify({ owner: lease.owner, token: lease.token, ttlMs: lease.ttlMs, released: true } satisfies LeaseBody));
  await store.putObject(lease.key, body, { ifMatch: lease.tag });
}

/**
 * Run `fn` holding a remote lease: wait up to `waitMs` for it, renew it every
 * third of its time to live, release it in `finally`.
 *
 * @throws LockHeldError when it is still held by someone else after `waitMs`
 * @example await withRemoteLease(store, { name: 'activate', owner: repo.node }, async () => { ... })
 */
export async function withRemoteLease<T>(store: Store, { name, owner, ttlMs = 30_000, waitMs = 0 }: { name: string; owner: string; ttlMs?: number; waitMs?: number }, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  let got = await acquireLease(store, { name, owner, ttlMs });
  while (!('key' in got) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(20, deadline - Date.now()))));
    got = await acquireLease(store, { name, owner, ttlMs });
  }
  if (!('key' in got)) {
    throw new LockHeldError(`remote lease '${name}' at '${store.url}' is held by ${got.owner} (expires in ${Math.ceil(got.expiresInMs / 1000)} s unless renewed)`, { lease: name, owner: got.owner, url: store.url }, ['wait for the other machine to finish, then run the command again']);
  }
  const lease = got;
  let lost: unknown;
  const timer = setInterval(() => {
    renewLease(store, lease).catch((err) => (lost = err));
  }, Math.max(100, Math.floor(ttlMs / 3)));
  try {
    const result = await fn(lease);
    if (lost) throw lost;
    return result;
  } finally {
    clearInterval(timer);
    await releaseLease(store, lease).catch(() => {});
  }
}

/**
 * Run `fn` holding this data directory's sync lease (`.walnut/locks/sync`,
 * lib/lease.ts), waiting up to `waitMs` for another push or pull to finish.
 * A crashed holder's lease is taken over after `staleMs`.
 *
 * @throws LockHeldError after `waitMs`
 * @example await withSyncLock(repo, { waitMs: 30_000 }, async () => pull(...))
 */
export async function withSyncLock<T>(repo: Repo, { waitMs = 30_000, staleMs }: { waitMs?: number; staleMs?: number }, fn: () => Promise<T>): Promise<T> {
  const { withLease } = await import('../lease.js');
  return withLease(repo, 'sync', { wait: waitMs, stale: staleMs }, async (check) => {
    const result = await fn();
    check();
    return result;
  });
}
