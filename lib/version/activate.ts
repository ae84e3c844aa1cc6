/**
 * Activation: the health check, the active pointer (local `.walnut/active`
 * or a remote's `versions/active`) switched by compare-and-swap, rollback to
 * the previous version, and pruning of old versions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { WalnutError } from '../errors.js';
import { writeFileAtomic, readFileOrUndefined } from '../fsutil.js';
import { withLease } from '../lease.js';
import type { Repo } from '../repo.js';
import { configNumber } from '../repo.js';
import { sha256, type Store } from '../remote/index.js';
import { parseEntity } from '../../formats/entity.js';
import { VersionStore, ENTITY_NAME } from './store.js';
import { diffVersionTrees } from './diff.js';
import { checkout } from './checkout.js';
import { readRemoteActive, swapRemoteActive, uploadVersion, fetchVersion, pruneRemote, parsePointer, chooseKept, type ActivePointer, type UploadResult } from './remote.js';

export const ACTIVATE_CRASH_POINTS = ['activate:after-check', 'activate:after-upload', 'activate:after-switch'] as const;
export const ACTIVE_FILE = 'active';
export const DEFAULT_KEEP = 10;

/** The local active pointer and its change token (sha-256 of the file; undefined when none). */
export function readLocalActive(repo: Repo): { pointer?: ActivePointer; tag?: string } {
  const file = path.join(repo.dir, ACTIVE_FILE);
  const text = readFileOrUndefined(file);
  if (text === undefined) return {};
  return { pointer: parsePointer(text, `in ${file}`), tag: sha256(text) };
}

/** Where the pointer lives: this data directory, or a remote. */
export type PointerPlace = { kind: 'local'; repo: Repo } | { kind: 'remote'; store: Store; name: string };

export async function readActive(place: PointerPlace): Promise<{ pointer?: ActivePointer; tag?: string }> {
  return place.kind === 'local' ? readLocalActive(place.repo) : readRemoteActive(place.store);
}

async function swapActive(place: PointerPlace, tag: string | undefined, pointer: ActivePointer): Promise<boolean> {
  if (place.kind === 'remote') return swapRemoteActive(place.store, tag, pointer);
  const { repo } = place;
  return withLease(repo, 'active', { wait: 10_000 }, () => {
    if (readLocalActive(repo).tag !== tag) return false;
    writeFileAtomic(path.join(repo.dir, ACTIVE_FILE), JSON.stringify(pointer, null, 1) + '\n');
    return true;
  });
}

export interface HealthReport {
  /** entity files parsed (those that differ from the baseline version) */
  checked: number;
  failures: { file: string; error: string }[];
  /** the configured command, when one ran */
  command?: { command: string; status: number | null; output: string };
}

/**
 * Check a version: every entity file that differs from `baseline` (a version
 * that passed before) parses; then the configured command (`activate.check`)
 * runs in a checkout of the version and must exit 0.
 */
export async function healthCheck(repo: Repo, store: VersionStore, id: string, baseline?: string): Promise<HealthReport> {
  let base: string | undefined;
  try {
    base = baseline && store.hasVersion(baseline) && store.readCommit(baseline) ? baseline : undefined;
  } catch {
    base = undefined;
  }
  const report: HealthReport = { checked: 0, failures: [] };
  for (const d of diffVersionTrees(store, base, id)) {
    if (!d.to) continue;
    const file = `${d.collection}/${d.slug}/${ENTITY_NAME}`;
    report.checked++;
    try {
      const blob = store.entityBlob(d.to);
      if (!blob) throw new Error(`the folder has no ${ENTITY_NAME}`);
      parseEntity(store.readBlob(blob).toString('utf8'), file);
    } catch (err) {
      report.failures.push({ file, error: (err as Error).message });
    }
  }
  const command = repo.config.get('activate.check');
  if (command && report.failures.length === 0) {
    const dir = path.join(repo.dir, 'check');
    // one check at a time: the checkout folder is shared
    report.command = await withLease(repo, 'check', { wait: 300_000 }, async () => {
      await checkout({ store, id, dir, grace: 0, keepPrevious: false });
      const r = spawnSync('sh', ['-c', command], { cwd: path.join(dir, 'current'), env: { ...process.env, WALNUT_VERSION: id, WALNUT_DATA_DIR: repo.root }, encoding: 'utf8', maxBuffer: 16 << 20 });
      const output = ((r.stdout ?? '') + (r.stderr ?? '')).trim().split('\n').slice(-10).join('\n');
      return { command, status: r.status, output };
    });
  }
  return report;
}

export interface ActivateOptions {
  repo: Repo;
  /** a version id or prefix; or `previous` */
  version?: string;
  previous?: boolean;
  /** activate on this remote (its store must be opened by the caller) */
  remote?: { name: string; store: Store };
  now?: number;
  crashPoint?: (name: string) => void;
}

export interface ActivateResult {
  version: string;
  /** what was active before */
  previous: string | null;
  /** false when the version was already active (nothing changed) */
  changed: boolean;
  health: HealthReport;
  upload?: UploadResult;
  /** versions pruned after the switch */
  pruned: string[];
  remote?: string;
}

/**
 * Health-check a version and make it the active one.
 * @throws WalnutError `EUNHEALTHY` (nothing changed), `ENOPREVIOUS`, `EACTIVECHANGED` (another activation won; exit 3)
 */
export async function activate(options: ActivateOptions): Promise<ActivateResult> {
  const { repo } = options;
  const store = await VersionStore.open(repo);
  try {
    const place: PointerPlace = options.remote ? { kind: 'remote', ...options.remote } : { kind: 'local', repo };
    const where = options.remote ? `on remote '${options.remote.name}'` : 'in this data directory';
    const { pointer, tag } = await readActive(place);
    let id: string;
    if (options.previous) {
      if (!pointer?.previous) {
        throw new WalnutError('ENOPREVIOUS', `there is no previous version to go back to ${where}`, { data: { active: pointer?.version ?? null }, hints: ['see walnut version list and activate one by id'] });
      }
      id = pointer.previous;
      if (options.remote && !store.hasVersion(id)) await fetchVersion(store, options.remote.store, id);
    } else {
      id = store.resolve(options.version ?? '');
    }
    const health = await healthCheck(repo, store, id, pointer?.version);
    if (health.failures.length > 0 || (health.command && health.command.status !== 0)) {
      const why = health.failures.length > 0 ? `${health.failures.length} entity file${health.failures.length === 1 ? '' : 's'} do${health.failures.length === 1 ? 'es' : ''} not parse: ${health.failures[0].error.includes(health.failures[0].file) ? '' : `'${health.failures[0].file}': `}${health.failures[0].error}` : `the check command exited with ${health.command!.status}: ${health.command!.output || '(no output)'}`;
      throw new WalnutError('EUNHEALTHY', `version ${id.slice(0, 12)} failed its health check; not activated: ${why}`, {
        data: { version: id, failures: health.failures.slice(0, 20), command: health.command ?? null },
        hints: health.failures.length > 0 ? ['fix the files (walnut fsck), compact, and create a new version'] : ['see the command in config activate.check'],
      });
    }
    options.crashPoint?.('activate:after-check');
    let upload: UploadResult | undefined;
    if (options.remote) {
      // also when it is already active: an upload cut short is completed
      upload = await uploadVersion(store, options.remote.store, id);
      options.crashPoint?.('activate:after-upload');
    }
    if (pointer?.version === id) return { version: id, previous: pointer.previous, changed: false, health, upload, pruned: [], remote: options.remote?.name };
    const next: ActivePointer = { version: id, previous: pointer?.version ?? null, activated: new Date(options.now ?? Date.now()).toISOString(), node: repo.node };
    if (!(await swapActive(place, tag, next))) {
      const now = (await readActive(place)).pointer;
      throw new WalnutError('EACTIVECHANGED', `the active version ${where} changed while activating (now ${now ? `${now.version.slice(0, 12)}, by ${now.node}` : 'none'}); ${id.slice(0, 12)} was not activated`, {
        exit: 'lockHeld',
        data: { version: id, active: now ?? null },
        hints: ['another machine activated a version at the same time: check walnut active and run again if yours should win'],
      });
    }
    options.crashPoint?.('activate:after-switch');
    const keep = configNumber(repo, 'versions.keep', DEFAULT_KEEP);
    const pruned = options.remote ? await pruneRemote(options.remote.store, keep) : pruneRefs(repo, store, keep);
    return { version: id, previous: next.previous, changed: true, health, upload, pruned, remote: options.remote?.name };
  } finally {
    store.close();
  }
}

/** Drop the refs of versions beyond `keep` (the active and previous ones always stay). */
export function pruneRefs(repo: Repo, store: VersionStore, keep: number): string[] {
  const { pointer } = readLocalActive(repo);
  const versions = store.list();
  const kept = chooseKept(versions, [pointer?.version, pointer?.previous, store.head()], keep);
  const removed: string[] = [];
  for (const v of versions) {
    if (kept.has(v.id)) continue;
    store.removeVersion(v.id);
    removed.push(v.id);
  }
  return removed;
}

export interface PruneResult {
  removed: string[];
  kept: string[];
  /** packs replaced by one pack of what the kept versions need */
  repacked: number;
  objects: number;
}

/**
 * `version prune`: drop the versions beyond `keep`, then repack: one pack
 * with every object the kept versions need, the old packs deleted.
 */
export async function pruneVersions({ repo, keep, wait = 0 }: { repo: Repo; keep?: number; wait?: number }): Promise<PruneResult> {
  return withLease(repo, 'compact', { wait }, async () => {
    const store = await VersionStore.open(repo);
    try {
      const removed = pruneRefs(repo, store, keep ?? configNumber(repo, 'versions.keep', DEFAULT_KEEP));
      const kept = store.versionIds();
      if (removed.length === 0 && store.packList().length <= 1) return { removed, kept, repacked: 0, objects: 0 };
      const r = store.repack();
      return { removed, kept, ...r };
    } finally {
      store.close();
    }
  });
}

/**
 * Poll the active pointer every `interval` ms and call `onChange` with each
 * new value (the first read counts as a change only when `initial` is true).
 * Read errors are passed to `onError` and polling goes on. Ends when `signal`
 * aborts or `onChange` returns false.
 */
export async function watchActive(
  place: PointerPlace,
  {
    interval,
    signal,
    initial = false,
    onChange,
    onIdle,
    onError,
  }: {
    interval: number;
    signal: AbortSignal;
    initial?: boolean;
    onChange: (p: ActivePointer | undefined) => Promise<boolean | void> | boolean | void;
    /** after a poll that found no change (work to do between changes) */
    onIdle?: () => Promise<void> | void;
    onError?: (err: Error) => void;
  },
): Promise<void> {
  let last: string | undefined;
  let first = true;
  while (!signal.aborted) {
    try {
      const { pointer } = await readActive(place);
      const key = pointer ? `${pointer.version} ${pointer.activated}` : '';
      const changed = (first && initial) || (!first && key !== last);
      if (changed && (await onChange(pointer)) === false) return;
      last = key;
      first = false;
      if (!changed && onIdle && !signal.aborted) await onIdle();
    } catch (err) {
      onError?.(err as Error);
    }
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      const t = setTimeout(wake, interval);
      signal.addEventListener('abort', wake, { once: true });
    });
  }
}
