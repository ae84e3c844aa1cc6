/**
 * Zero-downtime checkouts: a version materialised as plain files under
 * `<dir>/<version-id>/`, and `<dir>/current`, a symbolic link replaced by
 * rename, pointing at the one readers should use.
 *
 *     <dir>/current -> <id>          the link readers follow
 *     <dir>/<id>/<collection>/<slug>/_index.md
 *     <dir>/.walnut-checkout         JSON: current, previous, when each tree was switched out
 *     <dir>/.build-<id>/             a tree being made (removed when a run is killed)
 *     <dir>/.spare-<id>/             a spare tree brought up to date with version <id> (--follow, between switches)
 *
 * A tree is complete before it gets its name, and `current` changes by one
 * rename, so a reader that resolves `current` once sees exactly one whole
 * version. Trees are never changed while they are `current` or `previous`
 * (kept for an instant switch back). One older tree is kept as a spare: once
 * it has been out of use for the grace period it is renamed and turned into
 * the next version by writing only the entities that differ, so a switch
 * costs time proportional to the change. Between switches, `checkout
 * --follow` brings the spare up to date with the current version
 * (`warmSpare`), so that the next switch writes only the next change. Without
 * a spare, the new tree is made by hard-linking the unchanged files of the
 * current one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WalnutError } from '../errors.js';
import { writeFileAtomic, fsyncDir, readFileOrUndefined, syncWritten, TEMP_SUFFIX } from '../fsutil.js';
import { VersionStore, ENTITY_NAME, OID, type Listing } from './store.js';
import { diffListings, diffVersionTrees, type EntityDelta } from './diff.js';

export const CHECKOUT_CRASH_POINTS = ['checkout:after-build', 'checkout:after-switch'] as const;
export const STATE_FILE = '.walnut-checkout';
export const DEFAULT_GRACE_MS = 10_000;
/** a spare tree holding version <id>: `.spare-<id>` */
const SPARE = '.spare-';

interface CheckoutState {
  current?: string;
  previous?: string;
  /** tree id → when it stopped being current (ms) */
  out: Record<string, number>;
}

export interface CheckoutOptions {
  store: VersionStore;
  /** the version to materialise (full id) */
  id: string;
  dir: string;
  /** a tree out of use for this long (ms) may be recycled */
  grace?: number;
  /** keep the previous tree (default true) */
  keepPrevious?: boolean;
  now?: () => number;
  crashPoint?: (name: string) => void;
}

export interface CheckoutResult {
  id: string;
  /** the version `current` pointed at before (undefined on the first checkout) */
  previous?: string;
  /** false when `current` already pointed at the version */
  switched: boolean;
  /** how the tree was made */
  method: 'existing' | 'recycled' | 'linked' | 'written' | 'none';
  /** entity files written */
  written: number;
  /** entity files hard-linked from the current tree */
  linked: number;
  /** entity files removed from a recycled tree */
  removed: number;
  /** older trees deleted */
  pruned: string[];
}

/**
 * Materialise a version into `<dir>/<id>/` and point `<dir>/current` at it.
 * @throws WalnutError `ECHECKOUTDIR` when `dir` is not a checkout folder; `ELOCKED` when another checkout runs there
 */
export async function checkout(options: CheckoutOptions): Promise<CheckoutResult> {
  const dir = path.resolve(options.dir);
  prepareDir(dir);
  const release = await lockFolder(dir, true);
  if (!release) throw new WalnutError('ELOCKED', `another walnut checkout is writing '${dir}'`, { exit: 'lockHeld', data: { dir }, hints: ['one checkout (or checkout --follow) per folder'] });
  try {
    return await materialise(dir, options);
  } finally {
    await release();
  }
}

/** Take the checkout folder's lock (waiting a few seconds for a holder when `wait`); undefined when another process holds it. */
async function lockFolder(dir: string, wait: boolean): Promise<(() => Promise<void>) | undefined> {
  const { default: lockfile } = await import('proper-lockfile');
  try {
    return await lockfile.lock(dir, { realpath: false, lockfilePath: path.join(dir, '.walnut-checkout.lock'), stale: 10_000, retries: wait ? { retries: 100, minTimeout: 20, maxTimeout: 200 } : 0 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
    throw err;
  }
}

/** The version `<dir>/current` points at, if any. */
export function currentOf(dir: string): string | undefined {
  try {
    const target = path.basename(fs.readlinkSync(path.join(dir, 'current')));
    return OID.test(target) ? target : undefined;
  } catch {
    return undefined;
  }
}

function prepareDir(dir: string): void {
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw notCheckoutDir(dir, 'it is not a folder');
    const foreign = fs.readdirSync(dir).filter((n) => !(OID.test(n) || n === 'current' || n.startsWith('.build-') || n.startsWith('.trash-') || n.startsWith('.current-') || n.startsWith(SPARE) || n.startsWith(STATE_FILE) || ours(n)));
    if (foreign.length > 0) throw notCheckoutDir(dir, `it holds other files (${foreign.slice(0, 3).join(', ')})`);
  } else {
    fs.mkdirSync(dir, { recursive: true });
  }
}

/** A temporary file of the state file's atomic replace (`.<name>.<random>.walnut-tmp`). */
function ours(name: string): boolean {
  return name.startsWith(`.${STATE_FILE}.`) && name.endsWith(TEMP_SUFFIX);
}

function notCheckoutDir(dir: string, why: string): WalnutError {
  return new WalnutError('ECHECKOUTDIR', `'${dir}' cannot be a checkout folder: ${why}`, {
    data: { dir },
    hints: ['give walnut checkout a new or empty folder (it holds <id>/ trees and the current link)'],
  });
}

async function materialise(dir: string, options: CheckoutOptions): Promise<CheckoutResult> {
  const { store, id } = options;
  const now = options.now ?? Date.now;
  const grace = options.grace ?? DEFAULT_GRACE_MS;
  const keepPrevious = options.keepPrevious ?? true;
  // leftovers of a killed run, and a spare whose version the store no longer has (it cannot be diffed)
  for (const n of fs.readdirSync(dir)) {
    const stale = n.startsWith(SPARE) && !hasVersion(store, n.slice(SPARE.length));
    if (n.startsWith('.build-') || n.startsWith('.current-') || n.startsWith('.trash-') || ours(n) || stale) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
  const state = readState(dir);
  const cur = currentOf(dir);
  if (cur !== state.current) {
    // the state file was lost or is older than the link: the link is the truth
    if (state.current && state.current !== cur) state.out[state.current] ??= now();
    state.current = cur;
  }
  const result: CheckoutResult = { id, previous: cur, switched: false, method: 'none', written: 0, linked: 0, removed: 0, pruned: [] };
  if (cur === id) return result;

  const final = path.join(dir, id);
  if (fs.existsSync(final)) {
    result.method = 'existing';
  } else {
    const build = path.join(dir, `.build-${id}`);
    const spare = pickSpare(dir, state, store, { cur, keepPrevious, grace, now: now() });
    const written: string[] = [];
    if (spare) {
      await recycle(store, dir, spare, id, build, written, result);
      result.method = 'recycled';
    } else {
      const target = store.listing(id);
      fs.mkdirSync(build);
      const base = cur ? safeListing(store, cur) : undefined;
      if (cur && base) {
        linkTree(store, path.join(dir, cur), build, base, target, written, result);
        result.method = 'linked';
      } else {
        await applyDeltas(store, build, diffListings(undefined, target), written, result, true);
        result.method = 'written';
      }
    }
    syncWritten(build, written);
    fs.renameSync(build, final);
    fsyncDir(dir);
  }
  options.crashPoint?.('checkout:after-build');

  const link = path.join(dir, `.current-${process.pid}`);
  fs.symlinkSync(id, link);
  fs.renameSync(link, path.join(dir, 'current'));
  fsyncDir(dir);
  result.switched = true;
  options.crashPoint?.('checkout:after-switch');

  if (cur) state.out[cur] = now();
  delete state.out[id];
  state.previous = keepPrevious ? cur : undefined;
  state.current = id;
  // Keep current, previous, the trees readers may still use (out of use for less than the grace
  // period) and, as the spare, the newest tree past the grace period (none when a .spare-<id> is
  // there); delete the rest. So the spare is usable even when versions come faster than the grace
  // period. A tree is renamed away before it is deleted: a tree under its id is always whole.
  const names = fs.readdirSync(dir);
  const trees = names.filter((n) => OID.test(n) && n !== id && n !== state.previous);
  trees.sort((a, b) => (state.out[b] ?? 0) - (state.out[a] ?? 0));
  let spareKept = names.some((n) => n.startsWith(SPARE));
  for (const old of trees) {
    if (now() - (state.out[old] ?? now()) < grace) continue;
    if (!spareKept) {
      spareKept = true;
      continue;
    }
    const trash = path.join(dir, `.trash-${old}`);
    fs.renameSync(path.join(dir, old), trash);
    fs.rmSync(trash, { recursive: true, force: true });
    delete state.out[old];
    result.pruned.push(old);
  }
  for (const k of Object.keys(state.out)) if (!fs.existsSync(path.join(dir, k))) delete state.out[k];
  writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 1) + '\n');
  return result;
}

function readState(dir: string): CheckoutState {
  try {
    const s = JSON.parse(readFileOrUndefined(path.join(dir, STATE_FILE)) ?? '{}') as Partial<CheckoutState>;
    return { current: s.current, previous: s.previous, out: s.out ?? {} };
  } catch {
    return { out: {} };
  }
}

/**
 * The tree to turn into the next one: a spare already brought up to date
 * (`.spare-<id>`), else the newest tree out of use for at least the grace
 * period; in both cases one whose version the store still has (its trees are diffed).
 */
function pickSpare(dir: string, state: CheckoutState, store: VersionStore, { cur, keepPrevious, grace, now }: { cur?: string; keepPrevious: boolean; grace: number; now: number }): { name: string; id: string } | undefined {
  const readable = (id: string) => hasVersion(store, id);
  const names = fs.readdirSync(dir);
  for (const n of names) {
    const id = n.slice(SPARE.length);
    if (n.startsWith(SPARE) && OID.test(id) && readable(id)) return { name: n, id };
  }
  const candidates = names
    .filter((n) => OID.test(n) && n !== cur && !(keepPrevious && n === state.previous))
    .filter((n) => now - (state.out[n] ?? now) >= grace)
    .sort((a, b) => (state.out[b] ?? 0) - (state.out[a] ?? 0));
  const id = candidates.find(readable);
  return id ? { name: id, id } : undefined;
}

export interface WarmResult {
  /** the version the spare now holds (undefined: nothing to do) */
  spare?: string;
  /** the version it held before */
  from?: string;
  written: number;
  removed: number;
}

/**
 * Between switches: bring a spare tree up to date with the current version,
 * as `.spare-<current id>`, so that the next switch writes only the entities
 * that differ from the current version. Nothing is done when there is no
 * spare, or it is up to date. A reader never sees a spare (it has no id name).
 * @example await warmSpare({ store, dir, grace: 10_000 }) // from checkout --follow's idle polls
 */
export async function warmSpare(options: Omit<CheckoutOptions, 'id'>): Promise<WarmResult> {
  const dir = path.resolve(options.dir);
  const result: WarmResult = { written: 0, removed: 0 };
  const cur = currentOf(dir);
  if (!cur || fs.existsSync(path.join(dir, SPARE + cur))) return result;
  const release = await lockFolder(dir, false);
  if (!release) return result; // a checkout is running there: later
  try {
    const state = readState(dir);
    const now = (options.now ?? Date.now)();
    if (currentOf(dir) !== cur || state.current !== cur) return result;
    const spare = pickSpare(dir, state, options.store, { cur, keepPrevious: options.keepPrevious ?? true, grace: options.grace ?? DEFAULT_GRACE_MS, now });
    if (!spare || spare.id === cur) return result;
    const build = path.join(dir, `.build-${SPARE.slice(1)}${cur}`);
    const written: string[] = [];
    const counts = { written: 0, linked: 0, removed: 0 } as CheckoutResult;
    await recycle(options.store, dir, spare, cur, build, written, counts);
    delete state.out[spare.name];
    syncWritten(build, written);
    fs.renameSync(build, path.join(dir, SPARE + cur));
    fsyncDir(dir);
    writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 1) + '\n');
    return { spare: cur, from: spare.id, written: counts.written, removed: counts.removed };
  } finally {
    await release();
  }
}

/**
 * Turn a spare tree into version `id` at `build`: renamed there, then only the
 * entities that differ between the two versions (their trees diffed as bytes)
 * written, replaced or removed. The caller syncs `written` and names the tree.
 */
async function recycle(store: VersionStore, dir: string, spare: { name: string; id: string }, id: string, build: string, written: string[], result: CheckoutResult): Promise<void> {
  const deltas = diffVersionTrees(store, spare.id, id);
  fs.renameSync(path.join(dir, spare.name), build);
  await applyDeltas(store, build, deltas, written, result);
  removeEmptyCollections(build, store, id);
}

/** Whether the store can read a version's commit (its trees can be diffed). */
function hasVersion(store: VersionStore, id: string): boolean {
  if (!OID.test(id)) return false;
  try {
    store.readCommit(id);
    return true;
  } catch {
    return false;
  }
}

function safeListing(store: VersionStore, id: string): Listing | undefined {
  try {
    return store.listing(id);
  } catch {
    return undefined;
  }
}

/**
 * Write, replace or remove the entity files that differ (a new file is
 * renamed over the old one: an inode another tree shares through a hard link
 * is never changed). Synchronous: the files go to the page cache (the tree is
 * synced once, before it gets its name), where a call costs far less than a
 * round trip through the thread pool. The event loop gets a turn every few
 * hundred files (the folder lock's timer keeps it fresh).
 */
async function applyDeltas(store: VersionStore, root: string, deltas: EntityDelta[], written: string[], result: CheckoutResult, fresh = false): Promise<void> {
  const made = new Set<string>();
  let n = 0;
  for (const d of deltas) {
    if (++n % 512 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (d.to && !made.has(d.collection)) {
      fs.mkdirSync(path.join(root, d.collection), { recursive: true });
      made.add(d.collection);
    }
    const folder = path.join(root, d.collection, d.slug);
    if (!d.to) {
      fs.rmSync(folder, { recursive: true, force: true });
      result.removed++;
      continue;
    }
    const content = entityContent(store, d.to);
    if (!content) continue;
    const file = path.join(folder, ENTITY_NAME);
    const tmp = file + TEMP_SUFFIX;
    if (fresh) fs.mkdirSync(folder);
    try {
      fs.writeFileSync(tmp, content, { mode: 0o444 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(tmp, content, { mode: 0o444 });
    }
    fs.renameSync(tmp, file);
    written.push(file);
    result.written++;
  }
}

function entityContent(store: VersionStore, folderTree: string): Buffer | undefined {
  const blob = store.entityBlob(folderTree);
  return blob ? store.readBlob(blob) : undefined;
}

function writeEntity(store: VersionStore, folder: string, folderTree: string, written: string[]): void {
  const content = entityContent(store, folderTree);
  if (!content) return;
  const file = path.join(folder, ENTITY_NAME);
  const tmp = file + TEMP_SUFFIX;
  fs.writeFileSync(tmp, content, { mode: 0o444 });
  fs.renameSync(tmp, file);
  written.push(file);
}

/** A new tree: unchanged entities hard-linked from the current tree, the others written. */
function linkTree(store: VersionStore, from: string, root: string, base: Listing, target: Listing, written: string[], result: CheckoutResult): void {
  const changed = new Set<string>();
  for (const d of diffListings(base, target)) if (d.to) changed.add(`${d.collection}/${d.slug}`);
  for (const [collection, folders] of target) {
    const cdir = path.join(root, collection);
    fs.mkdirSync(cdir);
    for (const e of folders) {
      const folder = path.join(cdir, e.name);
      fs.mkdirSync(folder);
      if (!changed.has(`${collection}/${e.name}`)) {
        try {
          fs.linkSync(path.join(from, collection, e.name, ENTITY_NAME), path.join(folder, ENTITY_NAME));
          result.linked++;
          continue;
        } catch {
          // no hard links here (or the file is gone): write it
        }
      }
      writeEntity(store, folder, e.oid, written);
      result.written++;
    }
  }
}

/** Remove the collection folders the version does not have. */
function removeEmptyCollections(root: string, store: VersionStore, id: string): void {
  const keep = new Set(store.readTree(store.readCommit(id).tree).map((e) => e.name));
  for (const n of fs.readdirSync(root)) if (!keep.has(n)) fs.rmSync(path.join(root, n), { recursive: true, force: true });
}

