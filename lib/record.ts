/**
 * Hand edits: an entity file whose content differs from what walnut last
 * wrote or recorded (its git blob id in the index) was edited by hand. Its
 * changed keys (added, changed, removed), its body (`@body`) and a removed
 * file (`@deleted`) become journal records of this node, so the edit travels
 * and is never overwritten by an older value. Files walnut has never seen are
 * adopted as they are (their values count as older than any record).
 */
import fs from 'node:fs';
import path from 'node:path';
import { stampOf, stampMs, encodeValue, checkField, type JournalRecord } from '../formats/usv.js';
import { parseEntity, BODY_FIELD, DELETED_FIELD } from '../formats/entity.js';
import { FormatError } from './errors.js';
import { SegmentWriter } from './journal.js';
import { valueHash, type EntityIndex, type FieldStamp } from './state.js';
import { scanEntityFiles, type FileChange } from './view.js';
import type { Clock } from './clock.js';
import type { Repo } from './repo.js';

/** An entity file that could not be read; it is left untouched. */
export interface BrokenFile {
  target: string;
  file: string;
  line?: number;
  message: string;
}

export interface RecordResult {
  /** records written for hand edits */
  records: JournalRecord[];
  /** targets whose hand edits were recorded */
  edited: string[];
  /** files seen for the first time and adopted as they are */
  adopted: string[];
  broken: BrokenFile[];
}

/** The field values of an entity file, body included, keyed like records. */
export function fileFields(text: string, file: string): Map<string, unknown> {
  const parsed = parseEntity(text, file);
  const fields = new Map<string, unknown>(Object.entries(parsed.data));
  fields.set(BODY_FIELD, parsed.body);
  return fields;
}

/** Which files to check instead of every entity file (compaction: the files it is about to change). */
export interface RecordOnly {
  /** files whose content differs from the index */
  modified?: FileChange[];
  /** indexed targets whose file is gone */
  missing?: string[];
}

/**
 * Turn hand edits into journal records and adopt unseen files, updating the
 * index (entries of `generation`; the caller saves the index and commits the
 * generation with the checkpoint).
 *
 * A hand-edit record is stamped when the edit was made, not when it is
 * noticed: the file's mtime (for a removed file, the mtime of its folder, or
 * of the collection folder when that is gone too), at most the clock's now,
 * and always after the stamp of the value it replaces (that stamp + 1 ms when
 * the mtime is not later). So a record made later on another node still wins,
 * an older one loses, however late the edit is recorded.
 *
 * @param options.repo - the repository
 * @param options.index - the entity index
 * @param options.clock - this node's clock (saved when records were written)
 * @param options.generation - the generation the index lines belong to
 * @param options.dryRun - find edits, write nothing
 * @param options.only - check only these files (default: every entity file, one `stat` each)
 * @returns records written, edited, adopted and broken files
 * @example const r = recordEdits({ repo, index, clock, generation: cp.generation + 1 })
 */
export function recordEdits({ repo, index, clock, generation, dryRun = false, only }: { repo: Repo; index: EntityIndex; clock: Clock; generation: number; dryRun?: boolean; only?: RecordOnly }): RecordResult {
  const result: RecordResult = { records: [], edited: [], adopted: [], broken: [] };
  const scan = only ? { modified: only.modified ?? [], untracked: [], missing: only.missing ?? [] } : scanEntityFiles(repo, index);
  const writer = dryRun ? undefined : new SegmentWriter(repo.wal, 'batch');
  const wall = clock.wall();
  /** A record at `at` ms (at most now), after `floor` ms (the stamp it replaces). */
  const emit = (target: string, field: string, value: unknown, at: number, floor: number): FieldStamp => {
    let ms = Math.min(Math.floor(at), wall);
    if (!(ms > floor)) ms = floor + 1;
    const { timestamp, causality } = clock.at(ms);
    const record: JournalRecord = { timestamp, node: repo.node, target, field, value: encodeValue(value), causality, format: 1 };
    writer?.append(record);
    result.records.push(record);
    return { stamp: stampOf(record), vhash: valueHash(value) };
  };
  try {
    for (const change of scan.untracked) {
      const fields = readFields(repo, change, result.broken);
      if (!fields) continue;
      const stamps = new Map<string, FieldStamp>();
      for (const [k, v] of fields) stamps.set(k, { stamp: '', vhash: valueHash(v) });
      result.adopted.push(change.target);
      if (!dryRun) index.set(change.target, { blob: change.blob, size: change.size, mtimeMs: change.mtimeMs, stamps, generation });
    }
    for (const change of scan.modified) {
      const fields = readFields(repo, change, result.broken);
      if (!fields) continue;
      const entry = index.get(change.target);
      const stamps = new Map(entry?.stamps ?? []);
      let edited = false;
      // a deleted entity's file is back (restored from .walnut/trash or written anew):
      // record all of it, after the deletion, so every machine re-creates it
      const back = entry !== undefined && entry.blob === '';
      const backFloor = back ? newestMs(stamps) : -1;
      if (back) {
        stamps.clear();
        stamps.set(DELETED_FIELD, emit(change.target, DELETED_FIELD, false, change.mtimeMs, backFloor));
      }
      for (const [field, value] of fields) {
        if (field !== BODY_FIELD && !isRecordableField(field, change, result.broken)) continue;
        const old = stamps.get(field);
        const vh = valueHash(value);
        if (old && old.vhash === vh) continue;
        if (!old && field === BODY_FIELD && value === '') continue;
        stamps.set(field, emit(change.target, field, value, change.mtimeMs, Math.max(backFloor, msOf(old))));
        edited = true;
      }
      for (const [field, old] of [...stamps]) {
        if (field === BODY_FIELD || field === DELETED_FIELD || fields.has(field) || old.vhash === valueHash(null)) continue;
        stamps.set(field, emit(change.target, field, null, change.mtimeMs, msOf(old)));
        edited = true;
      }
      if (edited) result.edited.push(change.target);
      if (!dryRun) index.set(change.target, { blob: change.blob, size: change.size, mtimeMs: change.mtimeMs, stamps, generation });
    }
    for (const target of scan.missing) {
      const entry = index.get(target)!;
      const stamps = new Map(entry.stamps);
      // after every value of the file: a deletion older than one of them would not delete
      stamps.set(DELETED_FIELD, emit(target, DELETED_FIELD, true, removedAt(repo, target, wall), newestMs(stamps)));
      result.edited.push(target);
      if (!dryRun) index.set(target, { blob: '', size: 0, mtimeMs: 0, stamps, generation });
    }
  } finally {
    writer?.close();
  }
  // records stamped in the past are not the segment's newest time: keep the clock file current
  if (!dryRun && result.records.length > 0) clock.save();
  return result;
}

/** The ms of a field stamp (-1 for none, or a value adopted from a file). */
function msOf(s: FieldStamp | undefined): number {
  return s && s.stamp ? stampMs(s.stamp) : -1;
}

function newestMs(stamps: Map<string, FieldStamp>): number {
  let ms = -1;
  for (const s of stamps.values()) ms = Math.max(ms, msOf(s));
  return ms;
}

/**
 * When an entity file was removed, as far as the disk tells: the mtime of
 * its folder (changed by the removal), else of the collection folder, else now.
 */
function removedAt(repo: Repo, target: string, wall: number): number {
  const [collection, slug] = target.split('/');
  for (const dir of [path.join(repo.root, collection, slug), path.join(repo.root, collection)]) {
    try {
      return fs.statSync(dir).mtimeMs;
    } catch {
      /* gone too */
    }
  }
  return wall;
}

function readFields(repo: Repo, change: FileChange, broken: BrokenFile[]): Map<string, unknown> | undefined {
  const rel = path.relative(repo.root, change.file);
  try {
    return fileFields(change.text, rel);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    broken.push({ target: change.target, file: rel, line: (err.data as { line?: number }).line, message: err.message });
    return undefined;
  }
}

function isRecordableField(field: string, change: FileChange, broken: BrokenFile[]): boolean {
  try {
    checkField(field);
    if (field.startsWith('@')) throw new FormatError('EFIELD', `key ${JSON.stringify(field)} is reserved`, {});
    return true;
  } catch (err) {
    broken.push({ target: change.target, file: change.file, message: `key ${JSON.stringify(field)} cannot be recorded: ${(err as Error).message}` });
    return false;
  }
}

/** Read a file's current state for a target (text, blob, size, mtime), or undefined. */
export function readFileChange(repo: Repo, target: string, file: string, blobOf: (text: string) => string): FileChange | undefined {
  try {
    const st = fs.statSync(file);
    const text = fs.readFileSync(file, 'utf8');
    return { target, file, text, blob: blobOf(text), size: st.size, mtimeMs: Math.round(st.mtimeMs) };
  } catch {
    return undefined;
  }
}
