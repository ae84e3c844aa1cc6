/**
 * Per-machine compaction state in `.walnut/`:
 *
 * - the checkpoint (`.walnut/checkpoint`): per segment, how far it has been
 *   compacted, with a hash of the bytes just before that offset, and a
 *   generation number that grows with every compaction;
 * - the entity index (`.walnut/index`): per entity, the git blob id, size and
 *   mtime of the file as walnut last wrote or recorded it, and per field the
 *   stamp of the record whose value the file holds. It is a log: lines are
 *   appended, the last line of an entity wins, and the file is rewritten
 *   when it has grown to twice its live size. A line carries the generation
 *   it was written for; lines newer than the checkpoint belong to a
 *   compaction that did not finish and are rolled back on load (their blob is
 *   still accepted as "written by walnut", so a crash is never taken for a
 *   hand edit).
 *
 * See formats/state.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileAtomic, readFileOrUndefined, fsyncDir } from './fsutil.js';
import type { Repo } from './repo.js';

export const TAIL_HASH_BYTES = 4096;

export interface SegmentMark {
  /** bytes compacted */
  offset: number;
  /** SHA-256 (hex, 16 digits) of the TAIL_HASH_BYTES before `offset` */
  tail: string;
}

export interface Checkpoint {
  version: 1;
  generation: number;
  /** stamp of the greatest record compacted so far */
  high?: string;
  segments: Record<string, SegmentMark>;
  /** winning records held back for entity files that could not be read: target → field → `<stamp>\x1f<value>` */
  deferred?: Record<string, Record<string, string>>;
}

/** Read `.walnut/checkpoint` (an empty checkpoint when there is none). */
export function readCheckpoint(repo: Repo): Checkpoint {
  const text = readFileOrUndefined(path.join(repo.dir, 'checkpoint'));
  if (!text) return { version: 1, generation: 0, segments: {} };
  const cp = JSON.parse(text) as Checkpoint;
  cp.segments ??= {};
  cp.generation ??= 0;
  return cp;
}

/** Replace `.walnut/checkpoint` atomically. */
export function writeCheckpoint(repo: Repo, cp: Checkpoint): void {
  writeFileAtomic(path.join(repo.dir, 'checkpoint'), JSON.stringify(cp, null, 1) + '\n');
}

/** Hash of the bytes of `file` just before `offset` (what a checkpoint remembers). */
export function tailHash(file: string, offset: number): string {
  if (offset === 0) return '';
  const from = Math.max(0, offset - TAIL_HASH_BYTES);
  const buf = Buffer.alloc(offset - from);
  const fd = fs.openSync(file, 'r');
  try {
    const n = fs.readSync(fd, buf, 0, buf.length, from);
    return createHash('sha256').update(buf.subarray(0, n)).digest('hex').slice(0, 16);
  } finally {
    fs.closeSync(fd);
  }
}

/** What the index knows of one entity. */
export interface IndexEntry {
  /** git blob id of the file as walnut wrote or recorded it; '' when deleted */
  blob: string;
  size: number;
  mtimeMs: number;
  /** field → stamp of the record whose value the file holds ('' when adopted from an existing file) and a hash of that value */
  stamps: Map<string, FieldStamp>;
  generation: number;
}

export interface FieldStamp {
  stamp: string;
  vhash: string;
}

const HEADER = 'walnut-index 1\n';

/** Hash of a field value (stable JSON), to tell which keys a hand edit changed. */
export function valueHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 12);
}

/** JSON with object keys sorted, so equal values have equal text. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(stableJson).join(',') + ']';
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return '{' + Object.keys(obj).sort().filter((k) => obj[k] !== undefined).map((k) => JSON.stringify(k) + ':' + stableJson(obj[k])).join(',') + '}';
  }
  return JSON.stringify(value) ?? 'null';
}

function parseLine(line: string): { target: string; entry: IndexEntry } | undefined {
  const parts = line.split('\t');
  if (parts.length !== 6) return undefined;
  const [target, generation, blob, size, mtimeMs, stampText] = parts;
  const stamps = new Map<string, FieldStamp>();
  if (stampText) {
    for (const triple of stampText.split('\x1f')) {
      const [field, stamp, vhash] = triple.split('\x1e');
      if (field && vhash !== undefined) stamps.set(field, { stamp, vhash });
    }
  }
  return { target, entry: { blob, size: Number(size), mtimeMs: Number(mtimeMs), stamps, generation: Number(generation) } };
}

function formatLine(target: string, e: IndexEntry): string {
  const stamps = [...e.stamps].map(([f, s]) => f + '\x1e' + s.stamp + '\x1e' + s.vhash).join('\x1f');
  return `${target}\t${e.generation}\t${e.blob}\t${e.size}\t${Math.round(e.mtimeMs)}\t${stamps}\n`;
}

/**
 * The entity index. Lines are kept as text and parsed only for the entities
 * a command touches.
 */
export class EntityIndex {
  private lines = new Map<string, string>();
  /** blobs of lines rolled back (an unfinished compaction may have written those files) */
  private rolledBack = new Map<string, Set<string>>();
  /** changed entries, already formatted (compact in memory) */
  private dirty = new Map<string, string>();
  private lineCount = 0;

  private constructor(private readonly file: string) {}

  /**
   * Load the index, rolling back lines newer than the checkpoint generation.
   * @example const index = EntityIndex.load(repo, readCheckpoint(repo).generation)
   */
  static load(repo: Repo, generation: number): EntityIndex {
    const index = new EntityIndex(path.join(repo.dir, 'index'));
    // Read in chunks, one independent string per line: a substring of one big
    // string would keep the whole log (up to twice the live size) in memory.
    let fd: number;
    try {
      fd = fs.openSync(index.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return index;
      throw err;
    }
    try {
      let buf = Buffer.allocUnsafe(1 << 20);
      let have = 0;
      let first = true;
      for (;;) {
        if (have === buf.length) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, have);
          buf = bigger;
        }
        const n = fs.readSync(fd, buf, have, buf.length - have, null);
        have += n;
        let pos = 0;
        for (let nl = buf.indexOf(0x0a, pos); nl !== -1 && nl < have; nl = buf.indexOf(0x0a, pos)) {
          const line = buf.toString('utf8', pos, nl);
          pos = nl + 1;
          if (first) {
            first = false;
            if (line + '\n' === HEADER) continue;
          }
          index.addLine(line, generation);
        }
        buf.copy(buf, 0, pos, have);
        have -= pos;
        if (n === 0) break; // a torn last line (no newline) was never fsynced: ignored
      }
    } finally {
      fs.closeSync(fd);
    }
    return index;
  }

  private addLine(line: string, generation: number): void {
    const tab = line.indexOf('\t');
    if (tab <= 0) return;
    const target = line.slice(0, tab);
    const genEnd = line.indexOf('\t', tab + 1);
    const gen = Number(line.slice(tab + 1, genEnd));
    this.lineCount++;
    if (gen > generation) {
      const parsed = parseLine(line);
      if (parsed) {
        const blobs = this.rolledBack.get(target) ?? new Set<string>();
        blobs.add(parsed.entry.blob);
        this.rolledBack.set(target, blobs);
      }
      return;
    }
    this.lines.set(target, line);
  }

  get size(): number {
    return this.lines.size;
  }

  /** The entry of a target, or undefined. */
  get(target: string): IndexEntry | undefined {
    const line = this.dirty.get(target) ?? this.lines.get(target);
    return line ? parseLine(line)?.entry : undefined;
  }

  /** Blob ids that count as "written by walnut" for a target. */
  knownBlobs(target: string): string[] {
    const out: string[] = [];
    const e = this.get(target);
    if (e) out.push(e.blob);
    for (const b of this.rolledBack.get(target) ?? []) out.push(b);
    return out;
  }

  /** Every target the index knows. */
  targets(): IterableIterator<string> {
    return new Set([...this.lines.keys(), ...this.dirty.keys()]).values();
  }

  /** Change an entry (kept in memory until `save`). */
  set(target: string, entry: IndexEntry): void {
    this.dirty.set(target, formatLine(target, entry).slice(0, -1));
  }

  /** Number of changed entries not yet saved. */
  get pending(): number {
    return this.dirty.size;
  }

  /**
   * Append the changed entries (fsync), or rewrite the whole index when it has
   * grown to more than twice its live size.
   */
  save(): void {
    if (this.dirty.size === 0) return;
    const added = this.dirty.size;
    for (const [target, line] of this.dirty) this.lines.set(target, line);
    this.lineCount += added;
    // Only appends here: a rewrite now would drop the committed lines that an
    // unfinished generation must roll back to (see `tidy`).
    const fd = fs.openSync(this.file, 'a');
    try {
      writeLines(fd, this.dirty.values(), fs.fstatSync(fd).size === 0);
    } finally {
      fs.closeSync(fd);
    }
    this.dirty.clear();
  }

  /**
   * Rewrite the index with its live lines when it has grown to more than
   * twice their number. Call only at the start of a run, before any change:
   * then every live line is committed.
   */
  tidy(): void {
    if (this.dirty.size === 0 && this.rolledBack.size === 0 && this.lineCount > 2 * this.lines.size + 1000) this.rewrite();
  }

  private rewrite(): void {
    // streamed in pieces: the index can be tens of MB
    const tmp = this.file + '.' + process.pid + '.walnut-tmp';
    const fd = fs.openSync(tmp, 'w');
    try {
      writeLines(fd, this.lines.values(), true);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    fsyncDir(path.dirname(this.file));
    this.lineCount = this.lines.size;
  }
}

/** Write index lines in pieces of about 1 MiB (the index can be tens of MB), then fsync. */
function writeLines(fd: number, lines: Iterable<string>, header: boolean): void {
  let chunk: string[] = header ? [HEADER] : [];
  let bytes = 0;
  for (const line of lines) {
    chunk.push(line + '\n');
    bytes += line.length;
    if (bytes > 1 << 20) {
      fs.writeSync(fd, chunk.join(''));
      chunk = [];
      bytes = 0;
    }
  }
  fs.writeSync(fd, chunk.join(''));
  fs.fsyncSync(fd);
}
