/**
 * Compaction: merge the records written since the checkpoint into the entity
 * files, field by field, the greatest record by the total order winning.
 *
 * Under the `compact` lease:
 *  1. with `record`, record hand edits in every entity file (lib/record.ts)
 *     and adopt unseen files; by default only the files this run is about
 *     to change are checked, when it gets to them (`applyTarget`), so the
 *     work stays proportional to the new records;
 *  2. read the segments from their checkpoint offsets (a segment that changed
 *     below its checkpoint is read again from its start: re-applying a record
 *     changes nothing);
 *  3. per pass (targets split by hash so the winners of one pass fit in
 *     memory; each file is written once), apply winners newer than the stamps
 *     in the index; only changed keys are rewritten, untouched files are not
 *     written at all; files are replaced by temp + rename, a batch at a
 *     time, with a syncfs before and after the renames (lib/entity-writer.ts).
 *     A pass of several chunks is a pipeline: while a chunk is computed, the
 *     next chunk's files are read and the chunks before are written on the
 *     writer's thread, and the index lines saved for the chunk before are
 *     fsynced on the thread pool;
 *  4. save the index (lines of the new generation), then the checkpoint, which
 *     commits the generation; then a `system sync_checkpoint` record.
 *
 * Killed at any instant, a rerun computes the same files: index lines of an
 * unfinished generation are rolled back (their blobs still count as written
 * by walnut), and the records after the old checkpoint are applied again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkTarget, isPlainTarget, decodeValue, isSystemTarget, stampOf, type JournalRecord } from '../formats/usv.js';
import { editEntity, BODY_FIELD, DELETED_FIELD, type EntityEditor } from '../formats/entity.js';
import { FormatError } from './errors.js';
import { Clock, type ClockOptions, type AheadReport } from './clock.js';
import { scanSegment, readHash, SegmentWriter, type ReadIssue } from './journal.js';
import { withLease } from './lease.js';
import { readCheckpoint, writeCheckpoint, tailHash, EntityIndex, valueHash, stableJson, type Checkpoint, type FieldStamp } from './state.js';
import { recordEdits, fileFields, readFileChange, type BrokenFile, type RecordResult } from './record.js';
import { allSegments, entityFile, ENTITY_FILE } from './view.js';
import { blobId } from './hash.js';
import { restoreGitBases } from './hooks.js';
import { syncWritten } from './fsutil.js';
import { EntityWriter, type EntityWrite, type FileText } from './entity-writer.js';
import type { Repo } from './repo.js';

/** Named points where a test can make compaction die (see `crashPoint`). */
export const CRASH_POINTS = [
  'compact:after-record',
  'compact:after-scan',
  'compact:after-index',
  'compact:after-first-write',
  'compact:after-writes',
  'compact:before-checkpoint',
  'compact:after-checkpoint',
] as const;

/** Entities applied, then written, at a time within a pass. */
const CHUNK_TARGETS = 2000;
const FIRST_CHUNK_TARGETS = 100;

/** Chunks computed ahead of the writes (each waits with its file texts in memory). */
const MAX_BATCHES_IN_FLIGHT = 4;

/** Default memory budget: pending journal bytes merged in one pass. */
export const DEFAULT_PASS_BYTES = 32 * 1024 * 1024;

export interface CompactProgress {
  phase: 'record' | 'merge' | 'write';
  done: number;
  total: number;
}

export interface FieldChangeView {
  field: string;
  from?: unknown;
  to: unknown;
}

export interface EntityChange {
  target: string;
  action: 'create' | 'update' | 'delete';
  fields: FieldChangeView[];
}

export interface CompactResult {
  generation: number;
  dryRun: boolean;
  /** entity records read since the checkpoint */
  records: number;
  systemRecords: number;
  created: number;
  updated: number;
  deleted: number;
  /** entity changes (all of them with dryRun, else at most `listLimit`) */
  changes: EntityChange[];
  /** records written for hand edits */
  recorded: number;
  adopted: number;
  broken: BrokenFile[];
  issues: ReadIssue[];
  ahead: AheadReport[];
  /** segments that changed below their checkpoint and were read again */
  resetSegments: string[];
  /** nothing was pending: no record, no hand edit */
  idle: boolean;
}

export interface CompactOptions {
  repo: Repo;
  clock?: ClockOptions;
  /** wait this long (ms) for a live holder of the lease */
  wait?: number;
  /** lease stale timeout (ms) */
  stale?: number;
  dryRun?: boolean;
  onProgress?: (p: CompactProgress) => void;
  /** called at each named crash point; a test hook kills the process there */
  crashPoint?: (name: string) => void;
  passBytes?: number;
  /** a git revision before a merge/checkout/rebase: files git changed are merged from this node's own version (hooks) */
  gitBase?: string;
  /** fsyncs at once when files are fsynced one by one (small batches, or when `sync -f` fails) */
  concurrency?: number;
  /**
   * record hand edits in every entity file first (one `stat` per file), as
   * `walnut record` does; by default only the files the new records touch
   * are checked (`walnut compact --record`, `walnut version create`)
   */
  record?: boolean;
  listLimit?: number;
}

/**
 * Compact the data directory.
 *
 * @returns what was done; `idle` when there was nothing to do
 * @throws LockHeldError when another compaction holds the lease past `wait`
 * @example const r = await compact({ repo, wait: 30_000 }); console.log(r.updated)
 */
export async function compact(options: CompactOptions): Promise<CompactResult> {
  return withLease(options.repo, 'compact', { wait: options.wait ?? 0, stale: options.stale }, (check) => compactLocked(options, check));
}

interface Winner {
  stamp: string;
  value: string;
}

/**
 * target → field → `<stamp>\x1f<value unit>`: one string per field keeps a
 * pass small in memory. Comparing two such strings orders them like their
 * stamps (a stamp ends with a fixed-length hash, and a value unit never holds
 * a US).
 */
type Winners = Map<string, Fields>;

/**
 * An entity's winners: field, packed winner, field, packed winner… in the
 * order the fields came. A flat array: most entities have a few fields, and
 * 100 k small Maps cost 10 % more time in `offer` and 9 MB more memory than
 * 100 k arrays. An entity with more than MAX_ARRAY_FIELDS fields gets a Map
 * (same order), so that a lookup does not grow with its fields.
 */
type Fields = string[] | Map<string, string>;
const MAX_ARRAY_FIELDS = 32;

/** The fields as field, packed, field, packed… (a copy for a Map). */
function pairsOf(fields: Fields): string[] {
  return Array.isArray(fields) ? fields : [...fields].flat();
}

function winner(packed: string): Winner {
  const i = packed.indexOf('\x1f');
  return { stamp: packed.slice(0, i), value: packed.slice(i + 1) };
}

interface WriteJob {
  target: string;
  file: string;
  /** the new content, or undefined: move the file to the trash */
  text?: string;
  /** the file does not exist yet */
  create?: boolean;
}

async function compactLocked(options: CompactOptions, check: () => void): Promise<CompactResult> {
  if (options.gitBase && !options.dryRun) await restoreGitBases({ repo: options.repo, rev: options.gitBase });
  const cp = readCheckpoint(options.repo);
  const index = EntityIndex.load(options.repo, cp.generation);
  try {
    return await compactIndexed(options, check, cp, index);
  } finally {
    index.close();
  }
}

async function compactIndexed(options: CompactOptions, check: () => void, cp: Checkpoint, index: EntityIndex): Promise<CompactResult> {
  const { repo, dryRun = false, onProgress, crashPoint = () => {}, passBytes = DEFAULT_PASS_BYTES, concurrency = 8, listLimit = 1000, record: sweep = false } = options;
  const generation = cp.generation + 1;
  if (!dryRun) index.tidy();
  const clock = Clock.load(repo, options.clock);
  const result: CompactResult = {
    generation,
    dryRun,
    records: 0,
    systemRecords: 0,
    created: 0,
    updated: 0,
    deleted: 0,
    changes: [],
    recorded: 0,
    adopted: 0,
    broken: [],
    issues: [],
    ahead: clock.ahead,
    resetSegments: [],
    idle: false,
  };

  // 1. hand edits in every file (with `record`; else file by file in applyTarget)
  const rec: RecordResult = sweep ? (onProgress?.({ phase: 'record', done: 0, total: 1 }), recordEdits({ repo, index, clock, generation, dryRun })) : { records: [], edited: [], adopted: [], broken: [] };
  result.recorded = rec.records.length;
  result.adopted = rec.adopted.length;
  result.broken.push(...rec.broken);
  // The records are in the journal; the index lines say which blobs they came
  // from, so a crash from here on never records the same edit twice.
  if (!dryRun && index.pending > 0) index.save();
  crashPoint('compact:after-record');
  check();

  // 2. what to read: every segment from its checkpoint (records written just now included)
  const spans: Array<{ file: string; rel: string; start: number; end: number }> = [];
  let pendingBytes = 0;
  for (const seg of allSegments(repo)) {
    const mark = cp.segments[seg.rel];
    let start = 0;
    if (mark) {
      if (mark.offset <= seg.size && tailHash(seg.file, mark.offset) === mark.tail) start = mark.offset;
      else {
        result.resetSegments.push(seg.rel);
        result.issues.push({ code: 'ECHANGED', message: `segment changed below its checkpoint (was ${mark.offset} bytes compacted, now ${seg.size} bytes); read again from the start`, file: seg.rel, offset: Math.min(mark.offset, seg.size) });
      }
    }
    spans.push({ file: seg.file, rel: seg.rel, start, end: seg.size });
    pendingBytes += seg.size - start;
  }
  const deferred = readDeferred(cp);
  if (pendingBytes === 0 && rec.records.length === 0 && rec.adopted.length === 0 && deferred.size === 0 && Object.keys(cp.segments).length === spans.length) {
    result.idle = true;
    result.generation = cp.generation;
    if (!dryRun) index.saveStats(cp.generation); // files checked by hashing, or a merged index
    return result;
  }

  // 3. merge, pass by pass
  const passes = Math.max(1, Math.ceil(pendingBytes / passBytes));
  const classify = recordPass(passes);
  /** the issues reported, by code, file and offset */
  const reported = new Set<string>();
  const complete = new Map<string, number>();
  const stillDeferred: Winners = new Map();
  let high = cp.high ?? '';
  let readBytes = 0;
  const writes: WriteJob[] = [];
  const trash: WriteJob[] = [];
  // Files are written (on a worker thread for large runs) while the next
  // chunk is computed; at most MAX_BATCHES_IN_FLIGHT chunks wait to be written.
  const writer = dryRun ? undefined : new EntityWriter({ root: repo.root, concurrency, onFirst: () => crashPoint('compact:after-first-write') });
  /** folders whose entries changed by moves to the trash (synced with the last batch) */
  const trashDirs: string[] = [];
  const inFlight: Array<Promise<void>> = [];
  let toWrite = 0;
  let written = 0;
  let chunkSize = FIRST_CHUNK_TARGETS;
  /** every index line saved so far is on disk */
  let indexDurable = Promise.resolve();
  try {
    for (let pass = 0; pass < passes; pass++) {
      const winners: Winners = new Map();
      // With several passes, the records of other passes are told apart by their bytes and
      // not decoded. A record is decoded first by its own pass (the clock sees it then); a
      // system record, and one whose pass its bytes do not tell, by the first pass (the latter
      // by every pass, and its issues reported once).
      let cls = pass;
      const accept = passes > 1 ? (b: Buffer, s: number, e: number) => ((cls = classify(b, s, e)) === pass || cls === UNKNOWN_PASS || (cls === SYSTEM_PASS && pass === 0)) : undefined;
      for (const span of spans) {
        const { complete: done } = scanSegment(
          span.file,
          { start: span.start, end: span.end, rel: span.rel, accept },
          ({ record, text }) => {
            if (pass === 0 || cls === pass) clock.observe(record);
            if (isSystemTarget(record.target)) {
              if (pass === 0) result.systemRecords++;
              return;
            }
            if (passes > 1 && partition(record.target, passes) !== pass) return;
            if (!validTarget(record, span.rel, result.issues)) return;
            result.records++;
            const stamp = stampOf(record, readHash(record, text));
            if (stamp > high) high = stamp;
            offer(winners, record.target, record.field, stamp, record.value);
          },
          (i) => {
            // a record decoded by several passes, or the segment itself: reported once
            const key = `${i.code}\0${i.file}\0${i.offset}`;
            if (pass > 0 && reported.has(key)) return;
            reported.add(key);
            result.issues.push(i);
          },
        );
        if (pass === 0) complete.set(span.rel, done);
        readBytes += span.end - span.start;
        onProgress?.({ phase: 'merge', done: readBytes, total: pendingBytes * passes });
      }
      for (const [target, fields] of deferred) {
        if (passes > 1 && partition(target, passes) !== pass) continue;
        const pairs = pairsOf(fields);
        for (let i = 0; i < pairs.length; i += 2) {
          const w = winner(pairs[i + 1]);
          offer(winners, target, pairs[i], w.stamp, w.value);
        }
      }
      if (pass === 0) crashPoint('compact:after-scan');
      check();
      const targets = [...winners.keys()].sort();
      const folders = listBusyCollections(repo, index, targets);
      // In chunks of targets: the pending index lines, file texts and parsed
      // entities of a few chunks at a time stay in memory, however many entities change.
      const chunkAt = (from: number): Chunk => {
        // Small chunks first, doubling: the disk starts working early, and little is left to write
        // after the last one. A pass of at most one full chunk is one chunk: every chunk costs two
        // syncs of the file system, which a small run would pay several times for no overlap.
        if (targets.length <= CHUNK_TARGETS) chunkSize = CHUNK_TARGETS;
        else chunkSize = from === 0 && pass === 0 ? FIRST_CHUNK_TARGETS : Math.min(CHUNK_TARGETS, chunkSize * 2);
        const chunk = targets.slice(from, Math.min(targets.length, from + chunkSize));
        // The files of the chunk that existed at the scan are read; the others most likely have
        // no file: not even looked for when their folder is not in a listing.
        const present = new Map<string, boolean>();
        for (const t of chunk) {
          if (index.statOf(t) !== undefined) {
            present.set(entityFile(repo, t), true);
            continue;
          }
          const slash = t.indexOf('/');
          const listed = folders.get(t.slice(0, slash));
          if (listed && !listed.has(t.slice(slash + 1))) present.set(entityFile(repo, t), false);
        }
        return { to: from + chunk.length, targets: chunk, present };
      };
      for (let cur = targets.length > 0 ? chunkAt(0) : undefined; cur; ) {
        const { to, targets: chunk, present } = cur;
        index.prefetch(chunk);
        // The next chunk's files are read on the writer's thread while this one is computed
        // (a text read a chunk ahead dies young all the same); this chunk's files that were
        // not read ahead are read when their turn comes.
        const next = to < targets.length ? chunkAt(to) : undefined;
        if (next && writer) next.texts = readAhead(writer, next, (t) => entityFile(repo, t));
        const texts = cur.texts ? await cur.texts : undefined;
        cur = next;
        for (const target of chunk) {
          const fields = winners.get(target)!;
          winners.delete(target);
          const job = applyTarget({ repo, index, clock, generation, target, fields, result, dryRun, listLimit, stillDeferred, present, texts });
          if (job && job.text === undefined && !dryRun) trash.push(job);
          else if (job) writes.push(job);
        }
        if (writer) {
          // Intent first: the new blobs are in the index before any file is
          // replaced, so a crash mid-way never takes walnut's own writes for hand
          // edits. The index is fsynced on the thread pool while the next chunk
          // is computed; the chunk's files are handed over once it is done (in order).
          const saved = index.saveAsync();
          indexDurable = Promise.all([indexDurable, saved]).then(() => {});
          const more = to < targets.length || pass + 1 < passes;
          toWrite += writes.length;
          const jobs = writes.splice(0) as EntityWrite[];
          const moves = trash.splice(0);
          const batch = indexDurable
            .then(() => {
              crashPoint('compact:after-index');
              for (const job of moves) moveToTrash(repo, job.target, job.file, generation, trashDirs);
              return writer.write(jobs, more);
            })
            .then((done) => {
              for (const [target, size, mtimeMs] of done) index.noteStat(target, size, mtimeMs); // the stat shortcut (stat cache, written after the checkpoint)
              written += done.length;
              onProgress?.({ phase: 'write', done: written, total: toWrite });
            });
          batch.catch(() => {}); // awaited below
          inFlight.push(batch);
          while (inFlight.length > MAX_BATCHES_IN_FLIGHT) await inFlight.shift();
          check();
        }
        trash.length = 0;
        writes.length = 0;
      }
    }
    // every file and folder durable before the checkpoint
    for (const batch of inFlight.splice(0)) await batch;
    if (trashDirs.length > 0) syncWritten(repo.root, [], { dirs: trashDirs });
    if (writer) crashPoint('compact:after-writes');
  } finally {
    await Promise.allSettled(inFlight);
    await writer?.close();
  }
  if (dryRun) return result;

  // 4. commit: checkpoint and deferred records in one atomic write
  crashPoint('compact:before-checkpoint');
  check();
  const next: Checkpoint = { version: 1, generation, high: high || undefined, segments: {}, deferred: packDeferred(stillDeferred) };
  for (const span of spans) {
    const offset = complete.get(span.rel) ?? span.start;
    next.segments[span.rel] = { offset, tail: tailHash(span.file, offset) };
  }
  writeCheckpoint(repo, next);
  crashPoint('compact:after-checkpoint');
  index.saveStats(generation);
  clock.save();
  if (result.records > 0) {
    const writer = new SegmentWriter(repo.wal, 'always');
    try {
      const { timestamp, causality } = clock.tick();
      writer.append({ timestamp, node: repo.node, target: 'system', field: 'sync_checkpoint', value: JSON.stringify({ generation, records: result.records, high: high ? new Date(parseInt(high.slice(0, 9), 36)).toISOString() : null }), causality });
    } finally {
      writer.close();
    }
  }
  return result;
}

function offer(winners: Winners, target: string, field: string, stamp: string, value: string): void {
  let fields = winners.get(target);
  if (!fields) winners.set(flat(target), (fields = []));
  // The winner so far is its stamp, a US, its value: a stamp sorts below it exactly
  // when it is not greater than that stamp (no stamp is a prefix of another: they end
  // with a fixed-length hash), and an equal stamp is the same record. join copies:
  // a substring of the record text would keep the whole record alive.
  if (Array.isArray(fields)) {
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] !== field) continue;
      if (stamp > fields[i + 1]) fields[i + 1] = [stamp, value].join('\x1f');
      return;
    }
    if (fields.length < MAX_ARRAY_FIELDS * 2) {
      fields.push(fieldName(field), [stamp, value].join('\x1f'));
      return;
    }
    const map = new Map<string, string>();
    for (let i = 0; i < fields.length; i += 2) map.set(fields[i], fields[i + 1]);
    winners.set(target, (fields = map));
  }
  const cur = fields.get(field);
  if (cur !== undefined && stamp < cur) return;
  fields.set(cur === undefined ? fieldName(field) : field, [stamp, value].join('\x1f'));
}

/** Field names seen (a data set has few): one flat copy of each, shared by every entity that has it. */
const fieldNames = new Map<string, string>();
const MAX_FIELD_NAMES = 10_000;

/** A field name as `fieldNames` holds it (or a flat copy, past MAX_FIELD_NAMES names). */
function fieldName(field: string): string {
  let name = fieldNames.get(field);
  if (name === undefined) {
    name = flat(field);
    if (fieldNames.size < MAX_FIELD_NAMES) fieldNames.set(name, name);
  }
  return name;
}

/** A copy of a string that holds no reference to a larger one (V8 slices keep their parent alive). */
function flat(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

function validTarget(record: JournalRecord, rel: string, issues: ReadIssue[]): boolean {
  if (isPlainTarget(record.target)) return true;
  try {
    checkTarget(record.target);
    return true;
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    issues.push({ code: err.code, message: `${err.message}; record not applied`, file: rel, offset: -1 });
    return false;
  }
}

/** FNV-1a hash of a target, modulo the number of passes. */
function partition(target: string, passes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < target.length; i++) {
    h ^= target.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % passes;
}

/** `recordPass`: a system record; a record whose pass its bytes do not tell. */
const SYSTEM_PASS = -2;
const UNKNOWN_PASS = -1;

/**
 * With several passes: the pass of a record, told from its bytes without
 * decoding it (the same hash as `partition`, over the target's bytes, which
 * are its characters when they are ASCII), or SYSTEM_PASS for a system
 * record (a target without a '/'). A record of any other shape (visible
 * separators, a target with non-ASCII characters, an unexpected number of
 * units) is UNKNOWN_PASS: every pass decodes it.
 */
function recordPass(passes: number): (buf: Buffer, start: number, end: number) => number {
  const seps = new Int32Array(8);
  return (b, start, end) => {
    let k = 0;
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c === 0x1f) {
        if (k === 8) return UNKNOWN_PASS;
        seps[k++] = i;
      } else if (c === 0xe2 && i + 2 < end && b[i + 1] === 0x90 && b[i + 2] === 0x9f) return UNKNOWN_PASS; // U+241F
    }
    // 6, 7 or 8 units: the target is the unit before the last three
    if (k < 5 || k > 7) return UNKNOWN_PASS;
    const from = seps[k - 4] + 1;
    const to = seps[k - 3];
    let h = 0x811c9dc5;
    let slash = false;
    for (let i = from; i < to; i++) {
      const c = b[i];
      if (c >= 0x80) return UNKNOWN_PASS;
      if (c === 0x2f) slash = true;
      h ^= c;
      h = Math.imul(h, 0x01000193);
    }
    return slash ? (h >>> 0) % passes : SYSTEM_PASS;
  };
}

const TRUE_HASH = valueHash(true);

/** A chunk of a pass's targets. */
interface Chunk {
  /** where the next chunk starts in the pass's targets */
  to: number;
  targets: string[];
  /** file → true: most likely there, false: not there (see ApplyArgs) */
  present: Map<string, boolean>;
  /** its files read ahead (`readAhead`) */
  texts?: Promise<Map<string, FileText>>;
}

/** Read a chunk's files on the writer's thread: those that may be there (present true or unknown). */
async function readAhead(writer: EntityWriter, chunk: Chunk, fileOf: (target: string) => string): Promise<Map<string, FileText>> {
  const files: string[] = [];
  for (const t of chunk.targets) {
    const file = fileOf(t);
    if (chunk.present.get(file) !== false) files.push(file);
  }
  const texts = await writer.read(files);
  return new Map(files.map((f, i) => [f, texts[i]]));
}

interface ApplyArgs {
  repo: Repo;
  /** file → true: most likely there (read it), false: not there; other files are looked for */
  present: Map<string, boolean>;
  index: EntityIndex;
  clock: Clock;
  generation: number;
  target: string;
  fields: Fields;
  result: CompactResult;
  dryRun: boolean;
  listLimit: number;
  stillDeferred: Winners;
  /** files read ahead: text, or null when there is none (others are read here) */
  texts?: Map<string, FileText>;
}

/** Decide the new content of one entity; returns a write job when the file changes. */
function applyTarget(args: ApplyArgs): WriteJob | undefined {
  const { repo, index, clock, generation, target, result, dryRun, listLimit, stillDeferred, present, texts } = args;
  let fields = args.fields;
  const file = entityFile(repo, target);
  const rel = `${target}/${ENTITY_FILE}`; // path.relative(repo.root, file): a target is two plain names
  let entry = index.get(target);
  const hint = present.get(file);
  const ahead = texts?.get(file);
  let text = typeof ahead === 'string' ? ahead : ahead === null || hint === false ? undefined : hint === true ? readFile(file) : readIfExists(file);
  let blob = text !== undefined ? blobId(text) : undefined;
  // the file is one walnut wrote, recorded or adopted (it parses)
  let known = blob !== undefined && entry !== undefined && index.knownBlobs(target).includes(blob);
  // Hand edits of the files a run changes are checked here, before the file
  // is touched (with `record`, every file was checked before): an edited
  // file is recorded first, a file never seen is adopted, a file removed by
  // hand is recorded as deleted. An edit is never overwritten.
  let handEdit: RecordResult | undefined;
  if (text !== undefined && !known) {
    const change = readFileChange(repo, target, file, blobId);
    if (change && entry) handEdit = recordEdits({ repo, index, clock, generation, dryRun, only: { modified: [change] } });
    else if (change) {
      // never seen: adopt as it is
      try {
        const stamps = new Map<string, FieldStamp>();
        for (const [k, v] of fileFields(change.text, rel)) stamps.set(k, { stamp: '', vhash: valueHash(v) });
        if (!dryRun) index.set(target, { blob: change.blob, size: change.size, mtimeMs: change.mtimeMs, stamps, generation });
        result.adopted++;
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
        result.broken.push({ target, file: rel, line: (err.data as { line?: number }).line, message: err.message });
      }
    }
    if (change) {
      text = change.text;
      blob = change.blob;
    }
  } else if (text === undefined && entry !== undefined && entry.blob !== '' && !index.knownBlobs(target).includes('')) {
    // gone, and not by walnut's hand (a deletion of an unfinished run counts as walnut's)
    handEdit = recordEdits({ repo, index, clock, generation, dryRun, only: { missing: [target] } });
  }
  if (handEdit) {
    // The records are in the journal: their index lines (with the blob of the
    // edited file) go to disk now, so a crash never records the edit twice.
    if (!dryRun && handEdit.records.length > 0) index.save();
    result.recorded += handEdit.records.length;
    result.broken.push(...handEdit.broken);
    const own: Winners = new Map([[target, fields]]);
    for (const record of handEdit.records) offer(own, target, record.field, stampOf(record), record.value);
    fields = own.get(target)!; // a Map now, when the edit brought many fields
  }
  if (handEdit || !known) {
    entry = index.get(target);
    known = blob !== undefined && entry !== undefined && entry.blob === blob;
  }
  const stamps = entry?.stamps ?? new Map<string, FieldStamp>(); // the entry is this call's own (index.get parses a fresh one)
  const changed = new Map<string, unknown>();
  const pairs = pairsOf(fields);
  for (let i = 0; i < pairs.length; i += 2) {
    const field = pairs[i];
    const w = winner(pairs[i + 1]);
    const old = stamps.get(field);
    if (old && old.stamp >= w.stamp) continue;
    const value = decodeValue(w.value);
    stamps.set(field, { stamp: w.stamp, vhash: valueHash(value) });
    changed.set(field, value);
  }
  // nothing newer than the file holds: not even parsed (a known file parses)
  if (changed.size === 0 && entry && (text === undefined || known)) return undefined;
  // parsed once, for the current values and the edit
  let editor: EntityEditor | undefined;
  const current = new Map<string, unknown>();
  try {
    editor = editEntity(text ?? '', rel);
    if (text !== undefined) {
      const data = editor.data;
      for (const k of Object.keys(data)) current.set(k, data[k]);
      current.set(BODY_FIELD, editor.body);
    }
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    if (!result.broken.some((b) => b.target === target)) result.broken.push({ target, file: rel, line: (err.data as { line?: number }).line, message: err.message });
    stillDeferred.set(target, fields);
    return undefined;
  }
  if (changed.size === 0 && entry) return undefined;
  // Deleted when the winning @deleted is true and no field was written after it.
  const del = stamps.get(DELETED_FIELD);
  let newestField = '';
  stamps.forEach((s, f) => {
    if (f !== DELETED_FIELD && s.stamp > newestField) newestField = s.stamp;
  });
  const deleted = del !== undefined && del.vhash === TRUE_HASH && del.stamp > newestField;
  const view: EntityChange = { target, action: text === undefined ? 'create' : 'update', fields: [] };
  let newText: string | undefined;
  if (deleted) {
    if (!dryRun) index.set(target, { blob: '', size: 0, mtimeMs: 0, stamps, generation });
    if (text !== undefined) {
      view.action = 'delete';
      result.deleted++;
      if (dryRun || result.changes.length < listLimit) result.changes.push(view);
      return { target, file };
    }
  } else {
    const edits = new Map<string, unknown>();
    if (del !== undefined && del.vhash === TRUE_HASH) {
      // Re-created after a deletion: only what was written after it survives,
      // the same on every machine whether or not it compacted the deletion alone.
      for (const [field] of current) {
        const s = stamps.get(field);
        if ((s?.stamp ?? '') < del.stamp && !changed.has(field)) changed.set(field, null);
      }
    }
    for (const [field, value] of changed) {
      if (field === DELETED_FIELD) continue;
      const was = current.get(field);
      const isNull = value === null || (field === BODY_FIELD && value === '');
      if (isNull ? was === undefined || (field === BODY_FIELD && was === '') : was !== undefined && sameValue(was, value)) continue;
      edits.set(field, value);
      if (view.fields.length < 100) view.fields.push({ field, from: was, to: value });
    }
    if (edits.size > 0) {
      try {
        newText = editor.update(edits);
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
        result.broken.push({ target, file: rel, line: (err.data as { line?: number }).line, message: err.message });
        stillDeferred.set(target, fields);
        return undefined;
      }
    }
    if (newText === text) newText = undefined;
    if (newText !== undefined) {
      if (text === undefined) result.created++;
      else result.updated++;
    }
    if (!dryRun) {
      // the blob of what is on disk (an interrupted run may have written it already);
      // a file about to be written: its size, and mtime 0 until the stat cache has it
      const onDisk = newText ?? text;
      const diskBlob = newText !== undefined ? blobId(newText) : (blob ?? '');
      const st = newText === undefined && diskBlob && diskBlob === entry?.blob ? (index.statOf(target) ?? [entry.size, entry.mtimeMs]) : undefined;
      index.set(target, { blob: diskBlob, size: st ? st[0] : onDisk !== undefined ? Buffer.byteLength(onDisk) : 0, mtimeMs: st ? st[1] : 0, stamps, generation });
    }
  }
  if (newText !== undefined && (dryRun || result.changes.length < listLimit)) result.changes.push(view);
  return newText !== undefined ? { target, file, text: newText, create: text === undefined } : undefined;
}

/** Equal as JSON values (object keys in any order); most values are strings or numbers, compared as they are. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && stableJson(a) === stableJson(b);
}

/** A pass with at least this many entities the stat cache does not know in one collection lists that collection once. */
const LIST_MIN_NEW = 2000;

/**
 * Collections into which a pass brings many entities with no file known to
 * the stat cache (a first compaction, a bulk import): their folder names,
 * listed once, so that each new entity costs no system call to find it has no
 * file yet. A listing costs about as much as a few hundred `stat`s, and is
 * made only for at least LIST_MIN_NEW new entities: the work stays
 * proportional to the records. (A folder made by hand during the run for one
 * of these entities is not seen; its file would be replaced by the new one.)
 */
function listBusyCollections(repo: Repo, index: EntityIndex, targets: string[]): Map<string, Set<string>> {
  const fresh = new Map<string, number>();
  for (const t of targets) {
    if (index.statOf(t) !== undefined) continue;
    const c = t.slice(0, t.indexOf('/'));
    fresh.set(c, (fresh.get(c) ?? 0) + 1);
  }
  const out = new Map<string, Set<string>>();
  for (const [c, n] of fresh) {
    if (n < LIST_MIN_NEW) continue;
    try {
      out.set(c, new Set(fs.readdirSync(path.join(repo.root, c))));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') out.set(c, new Set());
      else if (code !== 'ENOTDIR') throw err;
    }
  }
  return out;
}

/**
 * A file's text, or undefined when there is none. A blocking read: a small
 * file costs a few microseconds this way, several times less CPU than through
 * the thread pool (the promise API's `readFile` makes five trips there per
 * file), and SD cards serve one read at a time.
 */
function readFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    return undefined;
  }
}

/** A file's text, or undefined when there is none (no exception for the common case of a new entity). */
function readIfExists(file: string): string | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Move a deleted entity's file into the trash; the two folders to sync go to `dirs`. */
function moveToTrash(repo: Repo, target: string, file: string, generation: number, dirs: string[]): void {
  const dir = path.join(repo.dir, 'trash', target);
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.renameSync(file, path.join(dir, `${generation}_index.md`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // moved by an interrupted run already
    throw err;
  }
  dirs.push(path.dirname(file), dir);
  try {
    fs.rmdirSync(path.dirname(file)); // only when empty: other files of the entity stay
  } catch {
    /* not empty */
  }
}

/** Records held back for entity files that could not be read (kept in the checkpoint). */
function readDeferred(cp: Checkpoint): Winners {
  const out: Winners = new Map();
  for (const [target, fields] of Object.entries(cp.deferred ?? {})) {
    const pairs = Object.entries(fields);
    out.set(target, pairs.length > MAX_ARRAY_FIELDS ? new Map(pairs) : pairs.flat());
  }
  return out;
}

function packDeferred(deferred: Winners): Record<string, Record<string, string>> | undefined {
  if (deferred.size === 0) return undefined;
  const obj: Record<string, Record<string, string>> = {};
  for (const [target, fields] of deferred) {
    const o: Record<string, string> = {};
    const pairs = pairsOf(fields);
    for (let i = 0; i < pairs.length; i += 2) o[pairs[i]] = pairs[i + 1];
    obj[target] = o;
  }
  return obj;
}


export interface RecordOptions {
  repo: Repo;
  clock?: ClockOptions;
  wait?: number;
  stale?: number;
  dryRun?: boolean;
}

/**
 * `walnut record`: turn hand edits into journal records now (compaction does
 * this first too). Holds the compaction lease; commits a new generation.
 *
 * @returns records written, edited, adopted and broken files
 * @throws LockHeldError when a compaction holds the lease past `wait`
 * @example const { edited } = await record({ repo })
 */
export async function record({ repo, clock: clockOptions, wait = 0, stale, dryRun = false }: RecordOptions) {
  return withLease(repo, 'compact', { wait, stale }, () => {
    const cp = readCheckpoint(repo);
    const generation = cp.generation + 1;
    const index = EntityIndex.load(repo, cp.generation);
    try {
      const clock = Clock.load(repo, clockOptions);
      const result = recordEdits({ repo, index, clock, generation, dryRun });
      if (!dryRun && index.pending > 0) {
        index.save();
        writeCheckpoint(repo, { ...cp, generation });
        index.saveStats(generation);
      } else if (!dryRun) index.saveStats(cp.generation);
      return result;
    } finally {
      index.close();
    }
  });
}
