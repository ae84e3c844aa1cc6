/**
 * Reading the data set: the merged view of an entity (its file plus every
 * record not yet compacted that beats the value the file holds), history,
 * and status (pending records, hand-edited files).
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkTarget, isPlainTarget, decodeValue, isSystemTarget, stampOf, type JournalRecord } from '../formats/usv.js';
import { parseEntity, BODY_FIELD, DELETED_FIELD } from '../formats/entity.js';
import { listSegments, listSegmentsIn, scanSegment, readHash, type ReadIssue, type ReadRecord, type SegmentInfo } from './journal.js';
import { readCheckpoint, EntityIndex, type Checkpoint } from './state.js';
import { blobId } from './hash.js';
import { statFiles } from './stat-files.js';
import { WalnutError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import type { Repo } from './repo.js';

export const ENTITY_FILE = '_index.md';

/** The file of an entity, after checking the target cannot leave the data directory. */
export function entityFile(repo: Pick<Repo, 'root'>, target: string): string {
  if (!isPlainTarget(target)) checkTarget(target);
  // a checked target under a normal root: joining is putting them together (compaction asks for every target's file)
  if (repo.root !== plainRoot) {
    plainRoot = path.join(repo.root, 'x') === repo.root + '/x' ? repo.root : undefined;
    if (plainRoot === undefined) return path.join(repo.root, target, ENTITY_FILE);
  }
  return plainRoot + '/' + target + '/' + ENTITY_FILE;
}

/** The last root whose entity files are `<root>/<target>/_index.md` as they are. */
let plainRoot: string | undefined;

/** Every segment walnut reads: `wal/` and the records received by gossip. */
export function allSegments(repo: Repo): SegmentInfo[] {
  return [...listSegments(repo), ...listSegmentsIn(path.join(repo.dir, 'gossip'), repo.root)];
}

/**
 * Visit every record not yet compacted (after the checkpoint of each segment).
 * A segment that changed below its checkpoint is read from its start.
 */
export function scanPending(repo: Repo, cp: Checkpoint, onRecord: (r: ReadRecord) => void, onIssue?: (i: ReadIssue) => void): void {
  for (const seg of allSegments(repo)) {
    const mark = cp.segments[seg.rel];
    const start = mark && mark.offset <= seg.size ? mark.offset : 0;
    scanSegment(seg.file, { start, rel: seg.rel }, onRecord, onIssue);
  }
}

export interface FieldView {
  value: unknown;
  /** where the value comes from: the entity file, or a pending journal record */
  source: 'file' | 'journal';
  node?: string;
  timestamp?: string;
}

export interface EntityView {
  target: string;
  file: string;
  exists: boolean;
  deleted: boolean;
  fields: Record<string, FieldView>;
  body: string;
  pending: number;
}

/**
 * The merged view of one entity.
 *
 * @param options.repo - the repository
 * @param options.target - `<collection>/<slug>`
 * @param options.onIssue - damaged journal pieces met on the way
 * @returns fields with their sources, body, and whether anything is known
 * @throws FormatError `ETARGET`, `EFRONTMATTER`; WalnutError `ENOENTITY`
 * @example showEntity({ repo, target: 'companies/acme' }).fields.name.value
 */
export function showEntity({ repo, target, onIssue }: { repo: Repo; target: string; onIssue?: (i: ReadIssue) => void }): EntityView {
  const file = entityFile(repo, target);
  const cp = readCheckpoint(repo);
  const index = EntityIndex.load(repo, cp.generation);
  const entry = index.get(target);
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const parsed = text !== undefined ? parseEntity(text, path.relative(repo.root, file)) : { data: {}, body: '' };
  const fields: Record<string, FieldView> = {};
  for (const [k, v] of Object.entries(parsed.data)) fields[k] = { value: v, source: 'file' };
  let body = parsed.body;
  const best = new Map<string, { stamp: string; record: JournalRecord }>();
  let pending = 0;
  scanPending(
    repo,
    cp,
    ({ record }) => {
      if (record.target !== target) return;
      pending++;
      const stamp = stampOf(record);
      const cur = best.get(record.field);
      if (!cur || stamp > cur.stamp) best.set(record.field, { stamp, record });
    },
    onIssue,
  );
  let deleted = entry?.blob === '' && text === undefined;
  for (const [field, { stamp, record }] of best) {
    const applied = entry?.stamps.get(field);
    if (applied && applied.stamp >= stamp) continue;
    const value = decodeValue(record.value);
    if (field === BODY_FIELD) {
      body = value === null ? '' : String(value);
      continue;
    }
    if (field === DELETED_FIELD) {
      deleted = value === true;
      continue;
    }
    if (value === null) delete fields[field];
    else fields[field] = { value, source: 'journal', node: record.node, timestamp: record.timestamp };
  }
  if (text === undefined && best.size === 0) {
    throw new WalnutError('ENOENTITY', `no entity '${target}': no file and no journal records`, { data: { target }, hints: [`create it with 'walnut set ${target} <field> <value>'`] });
  }
  return { target, file: path.relative(repo.root, file), exists: text !== undefined, deleted, fields, body, pending };
}

export interface LogEntry {
  timestamp: string;
  node: string;
  target: string;
  field: string;
  value: unknown;
  hash: string;
  segment: string;
  offset: number;
  compacted: boolean;
}

/**
 * History of records, oldest first by the total order, with optional filters.
 *
 * @param options.target - only this target
 * @param options.field - only this field (with target)
 * @param options.node - only records written by this node
 * @param options.sinceMs - only records stamped at or after this time
 * @returns the records; duplicates (same record hash) are listed once
 */
export function logRecords({ repo, target, field, node, sinceMs, onIssue }: { repo: Repo; target?: string; field?: string; node?: string; sinceMs?: number; onIssue?: (i: ReadIssue) => void }): LogEntry[] {
  if (target !== undefined && !isSystemTarget(target)) checkTarget(target);
  const cp = readCheckpoint(repo);
  const out: Array<LogEntry & { stamp: string }> = [];
  const seen = new Set<string>();
  for (const seg of allSegments(repo)) {
    const mark = cp.segments[seg.rel];
    scanSegment(
      seg.file,
      { rel: seg.rel },
      ({ record, start, text }) => {
        if (target !== undefined && record.target !== target) return;
        if (field !== undefined && record.field !== field) return;
        if (node !== undefined && record.node !== node) return;
        if (sinceMs !== undefined && Date.parse(record.timestamp) < sinceMs) return;
        const hash = readHash(record, text);
        if (seen.has(hash)) return;
        seen.add(hash);
        out.push({
          timestamp: record.timestamp,
          node: record.node,
          target: record.target,
          field: record.field,
          value: decodeValue(record.value),
          hash,
          segment: seg.rel,
          offset: start,
          compacted: mark !== undefined && start < mark.offset,
          stamp: stampOf(record, hash),
        });
      },
      onIssue,
    );
  }
  out.sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0));
  return out.map(({ stamp: _stamp, ...e }) => e);
}

export interface StatusReport {
  node: string;
  pending: { total: number; byNode: Record<string, number>; byEntity: Record<string, number>; system: number };
  /** files whose content differs from what walnut last wrote or recorded */
  modified: string[];
  /** entity files walnut has not seen yet (adopted as they are at the next compaction) */
  untracked: string[];
  /** entity files in the index that are gone from disk */
  missing: string[];
  issues: ReadIssue[];
}

/**
 * Status of the data directory: pending records per node and entity, and
 * entity files edited by hand. Uses size and mtime from the index to avoid
 * hashing files that did not change.
 */
export function status({ repo }: { repo: Repo }): StatusReport {
  const cp = readCheckpoint(repo);
  const index = EntityIndex.load(repo, cp.generation);
  const report: StatusReport = { node: repo.node, pending: { total: 0, byNode: {}, byEntity: {}, system: 0 }, modified: [], untracked: [], missing: [], issues: [] };
  scanPending(
    repo,
    cp,
    ({ record }) => {
      report.pending.total++;
      report.pending.byNode[record.node] = (report.pending.byNode[record.node] ?? 0) + 1;
      if (isSystemTarget(record.target)) report.pending.system++;
      else report.pending.byEntity[record.target] = (report.pending.byEntity[record.target] ?? 0) + 1;
    },
    (i) => report.issues.push(i),
  );
  const changes = scanEntityFiles(repo, index);
  report.modified = changes.modified.map((c) => c.target);
  report.untracked = changes.untracked.map((c) => c.target);
  report.missing = changes.missing;
  return report;
}

export interface FileChange {
  target: string;
  file: string;
  text: string;
  blob: string;
  size: number;
  mtimeMs: number;
}

/**
 * Find entity files whose content differs from the index (hand edits), files
 * the index does not know, and indexed files that are gone. One `stat` per
 * file, compared with the stat cache (sizes and mtimes of the files as walnut
 * last wrote or checked them); only a file whose size or mtime differs is
 * read and hashed, and only then is the index consulted. Folder mtimes are no
 * shortcut: writing a file in place (many editors, `>>`) does not change its
 * folder's mtime (formats/state.md).
 */
export function scanEntityFiles(repo: Repo, index: EntityIndex): { modified: FileChange[]; untracked: FileChange[]; missing: string[] } {
  const modified: FileChange[] = [];
  const untracked: FileChange[] = [];
  const gone: string[] = [];
  const cached = index.fileStats().entries();
  let c = cached.next();
  const dirs = listEntityDirs(repo);
  const prefix = repo.root + path.sep;
  const suffix = path.sep + ENTITY_FILE;
  const files = path.sep === '/' ? dirs.map((target) => prefix + target + suffix) : dirs.map((target) => prefix + target.replace('/', path.sep) + suffix);
  const stats = statFiles(files);
  for (let i = 0; i < dirs.length; i++) {
    const target = dirs[i];
    // both lists are sorted: walk them side by side
    while (!c.done && c.value[0] < target) {
      gone.push(c.value[0]);
      c = cached.next();
    }
    let known: [string, number, number] | undefined;
    if (!c.done && c.value[0] === target) {
      known = c.value;
      c = cached.next();
    }
    const file = files[i];
    const size = stats[2 * i];
    if (size < 0) {
      if (known) gone.push(target);
      continue;
    }
    const mtimeMs = Math.round(stats[2 * i + 1]);
    if (known && known[1] === size && known[2] === mtimeMs) continue;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      if (known) gone.push(target); // removed since its stat
      continue;
    }
    const blob = blobId(text);
    const change = { target, file, text, blob, size, mtimeMs };
    const entry = index.get(target);
    if (!entry) untracked.push(change);
    else if (entry.blob === blob) index.noteStat(target, size, mtimeMs); // unchanged: remember its stat
    else if (!index.knownBlobs(target).includes(blob)) modified.push(change);
  }
  for (; !c.done; c = cached.next()) gone.push(c.value[0]);
  const missing: string[] = [];
  for (const target of gone) {
    const e = index.get(target);
    // gone, and not by walnut's own hand (a deletion of an unfinished compaction counts as walnut's)
    if (e && e.blob !== '' && !index.knownBlobs(target).includes('')) missing.push(target);
  }
  return { modified, untracked, missing };
}

/** `<collection>/<slug>` of every folder that may hold an entity file, sorted (not checked). */
/** `.walnut/dirs`: the sorted entity folders, and the mtimes of the folders they were read from. */
const DIRS_CACHE = 'dirs';
/** A folder changed this recently may change again within its mtime's granularity (2 s on FAT): its listing is not cached. */
const RACY_MS = 2000;

interface DirsCache {
  version: 1;
  /** folder ('' = the data directory, else a collection) → its mtime in ns when it was read */
  mtimes: Record<string, string>;
  targets: string[];
}

/**
 * Every `<collection>/<slug>` folder, sorted. Adding, removing or renaming an
 * entry changes its folder's mtime, so the listing is kept in `.walnut/dirs`
 * with the mtimes of the data directory and of each collection folder, taken
 * before they were read; while those are the same, the listing is too (a few
 * `stat`s instead of reading 100 k folder entries). A listing read within 2 s
 * of a folder's change is not kept (the change might share its mtime).
 */
function listEntityDirs(repo: Repo): string[] {
  const cacheFile = path.join(repo.dir, DIRS_CACHE);
  const mtimeOf = (dir: string) => fs.statSync(dir, { bigint: true, throwIfNoEntry: false });
  const cached = readDirsCache(cacheFile);
  if (cached && Object.entries(cached.mtimes).every(([c, m]) => String(mtimeOf(c === '' ? repo.root : path.join(repo.root, c))?.mtimeNs) === m)) return cached.targets;
  const now = Date.now();
  let racy = false;
  const mtimes: Record<string, string> = {};
  const note = (key: string, dir: string) => {
    const st = mtimeOf(dir);
    if (!st) return;
    mtimes[key] = String(st.mtimeNs);
    if (now - Number(st.mtimeMs) < RACY_MS) racy = true;
  };
  note('', repo.root);
  const out: string[] = [];
  for (const collection of safeReaddir(repo.root)) {
    if (collection.startsWith('.') || collection === 'wal' || collection === 'node_modules') continue;
    note(collection, path.join(repo.root, collection));
    let slugs: string[];
    try {
      slugs = fs.readdirSync(path.join(repo.root, collection));
    } catch {
      continue;
    }
    for (const slug of slugs) if (!slug.startsWith('.')) out.push(`${collection}/${slug}`);
  }
  out.sort();
  if (!racy && fs.existsSync(repo.dir)) {
    try {
      writeFileAtomic(cacheFile, JSON.stringify({ version: 1, mtimes, targets: out } satisfies DirsCache), { fsync: false });
    } catch {
      // a cache: reading the folders again next time costs only time
    }
  }
  return out;
}

function readDirsCache(file: string): DirsCache | undefined {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as DirsCache;
    return c.version === 1 && c.mtimes && typeof c.mtimes[''] === 'string' && Array.isArray(c.targets) ? c : undefined;
  } catch {
    return undefined; // none, or torn: read the folders
  }
}

/** Targets that have an entity file on disk: `<collection>/<slug>/_index.md`. */
export function listEntityTargets(repo: Repo): string[] {
  const out: string[] = [];
  for (const collection of safeReaddir(repo.root)) {
    if (collection.startsWith('.') || collection === 'wal' || collection === 'node_modules') continue;
    const cdir = path.join(repo.root, collection);
    for (const slug of safeReaddir(cdir)) {
      if (slug.startsWith('.')) continue;
      if (fs.existsSync(path.join(cdir, slug, ENTITY_FILE))) out.push(`${collection}/${slug}`);
    }
  }
  return out.sort();
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}
