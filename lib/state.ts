/**
 * Per-machine compaction state in `.walnut/`:
 *
 * - the checkpoint (`.walnut/checkpoint`): per segment, how far it has been
 *   compacted, with a hash of the bytes just before that offset, and a
 *   generation number that grows with every compaction;
 * - the entity index (`.walnut/index`): per entity, the git blob id, size and
 *   mtime of the file as walnut last wrote or recorded it, and per field the
 *   stamp of the record whose value the file holds. A sorted *base* (one line
 *   per entity, with a sparse key directory, so a lookup reads a few KiB)
 *   followed by a *log* of lines appended since; the last line of an entity
 *   wins. The log is merged into a new base when it has grown to a quarter of
 *   the base. A line carries the generation it was written for; lines newer
 *   than the checkpoint belong to a compaction that did not finish and are
 *   rolled back on load (their blob is still accepted as "written by
 *   walnut", so a crash is never taken for a hand edit);
 * - the stat cache (`.walnut/stat`): size and mtime of every live entity
 *   file, sorted, so finding hand edits costs one `stat` per file and no
 *   index lookup. A cache: checked against the checkpoint generation and the
 *   index it was written with, rebuilt from the index when it does not match.
 *
 * See formats/state.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto, { createHash } from 'node:crypto';
import { writeFileAtomic, readFileOrUndefined, fsyncDir, TEMP_SUFFIX } from './fsutil.js';
import { WalnutError } from './errors.js';
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

/** Hash of a field value (stable JSON), to tell which keys a hand edit changed. */
export function valueHash(value: unknown): string {
  return crypto.hash('sha256', stableJson(value), 'hex').slice(0, 12);
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

/** An index line without its newline. */
function formatLine(target: string, e: IndexEntry): string {
  const triples: string[] = [];
  e.stamps.forEach((s, f) => triples.push(f + '\x1e' + s.stamp + '\x1e' + s.vhash));
  const stamps = triples.join('\x1f');
  return `${target}\t${e.generation}\t${e.blob}\t${e.size}\t${Math.round(e.mtimeMs)}\t${stamps}`;
}

/** The columns of a line before its stamps: target, generation, blob, size, mtime (no stamp parsing). */
function lineHead(line: string): { target: string; generation: number; blob: string; size: number; mtimeMs: number; rest: number } | undefined {
  const t1 = line.indexOf('\t');
  const t2 = line.indexOf('\t', t1 + 1);
  const t3 = line.indexOf('\t', t2 + 1);
  const t4 = line.indexOf('\t', t3 + 1);
  const t5 = line.indexOf('\t', t4 + 1);
  if (t1 <= 0 || t5 < 0) return undefined;
  return { target: line.slice(0, t1), generation: Number(line.slice(t1 + 1, t2)), blob: line.slice(t2 + 1, t3), size: Number(line.slice(t3 + 1, t4)), mtimeMs: Number(line.slice(t4 + 1, t5)), rest: t5 };
}

const V1_HEADER = 'walnut-index 1\n';
const V2_TAG = 'walnut-index 2';
const NUM_WIDTH = 16;
/** `walnut-index 2 <base end> <keys end> <base lines>\n`, the numbers zero-padded to 16 digits */
const V2_HEADER_BYTES = V2_TAG.length + 3 * (1 + NUM_WIDTH) + 1;
/** a key is written for the first line starting this many bytes after the previous key */
const KEY_SPACING = 4096;
/** The most of the base `prefetch` reads at once. */
const PREFETCH_MAX = 8 * 1024 * 1024;
const CHUNK = 1 << 20;
const NL = 0x0a;
const TAB = 0x09;

function v2Header(baseEnd: number, keysEnd: number, lines: number): string {
  const n = (x: number) => String(x).padStart(NUM_WIDTH, '0');
  return `${V2_TAG} ${n(baseEnd)} ${n(keysEnd)} ${n(lines)}\n`;
}

/** Where a line is in the index file (`len` without the newline). */
interface Loc {
  off: number;
  len: number;
}

/** Where the index file stood at some moment (see EntityIndex.mark). */
export interface IndexMark {
  /** the file's inode: a merge or a new file replaces it */
  ino: number;
  /** end of the base (0 in format 1) */
  base: number;
  /** end of the lines committed then, and before any rolled-back line */
  end: number;
  /** tailHash of the file at `end` */
  tail: string;
}

/** Closes the file descriptors of indexes nobody closed (long-running processes). */
const finalizer = new FinalizationRegistry<{ fds: number[] }>(({ fds }) => {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
  }
});

/** Consolidation thresholds (exported for tests). */
export const INDEX_LIMITS = {
  /** merge the log into the base when it holds more than this many lines … */
  logLines: 1000,
  /** … and more bytes than this fraction of the base */
  logFraction: 0.5,
};

/**
 * The entity index. The base is read only where a lookup needs it; the log
 * (lines appended since the base was written) is read once, keeping only
 * where each entity's last committed line is.
 */
export class EntityIndex {
  private fd: number | undefined;
  private wfd: number | undefined;
  private readonly fds: { fds: number[] } = { fds: [] };
  private ino = 0;
  /** 0: no file, 1: log only (format 1), 2: base + log */
  private version = 0;
  private baseEnd = 0;
  private keysEnd = 0;
  private keys?: { targets: string[]; offsets: number[] };
  /** end of the last complete line: where the next line goes */
  private end = 0;
  /** bytes after `end` (a torn last line), cut before the next append */
  private torn = false;
  private logStart = 0;
  private logLines = 0;
  /** committed log lines: the last line of each target */
  private log = new Map<string, Loc>();
  /** blobs of lines rolled back (an unfinished compaction may have written those files) */
  private rolledBack = new Map<string, Set<string>>();
  /** offset of the first rolled-back line (it may become committed by a later run of its generation) */
  private rolledBackFrom = Infinity;
  /** changed entries, already formatted (compact in memory) */
  private dirty = new Map<string, string>();
  private group?: { off: number; end: number; buf: Buffer };
  private stats?: FileStats;
  private statsState: 'unknown' | 'loaded' | 'rebuilt' = 'unknown';
  private statsDirty = false;
  /** stat changes made before the stat cache was read */
  private statPending = new Map<string, [number, number] | null>();

  private constructor(
    private readonly file: string,
    private readonly generation: number,
  ) {
    finalizer.register(this, this.fds, this);
  }

  /**
   * Open the index, rolling back lines newer than the checkpoint generation.
   * Reads the log part; the base is read only for the entities looked up.
   * @param repo - the repository
   * @param generation - the committed generation (the checkpoint's)
   * @throws WalnutError `EINDEX` when the file is damaged
   * @example const index = EntityIndex.load(repo, readCheckpoint(repo).generation)
   */
  static load(repo: Repo, generation: number): EntityIndex {
    const index = new EntityIndex(path.join(repo.dir, 'index'), generation);
    index.open();
    return index;
  }

  private open(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    this.fd = fd;
    this.fds.fds.push(fd);
    const st = fs.fstatSync(fd);
    this.ino = st.ino;
    const head = Buffer.alloc(Math.min(V2_HEADER_BYTES, st.size));
    fs.readSync(fd, head, 0, head.length, 0);
    const text = head.toString('latin1');
    if (text.startsWith(V2_TAG + ' ')) {
      if (head.length < V2_HEADER_BYTES || !text.endsWith('\n')) return this.tornHeader();
      const [, , baseEnd, keysEnd, lines] = text.trimEnd().split(' ');
      this.version = 2;
      this.baseEnd = Number(baseEnd);
      this.keysEnd = Number(keysEnd);
      void lines;
      if (!(this.baseEnd >= V2_HEADER_BYTES && this.keysEnd >= this.baseEnd && this.keysEnd <= st.size)) {
        throw new WalnutError('EINDEX', `cannot read '.walnut/index': its header says ${this.keysEnd} bytes of base, the file has ${st.size}`, {
          data: { file: this.file },
          hints: ["move '.walnut/index' aside and run 'walnut compact': the files are adopted as they are (run 'walnut record' first if some were edited by hand)"],
        });
      }
      this.logStart = this.keysEnd;
    } else if (text.startsWith(V1_HEADER)) {
      this.version = 1;
      this.logStart = V1_HEADER.length;
    } else if (V1_HEADER.startsWith(text) || V2_TAG.startsWith(text)) {
      return this.tornHeader();
    } else {
      this.version = 1; // format 1 without a header line
      this.logStart = 0;
    }
    this.readLog(st.size);
  }

  /** A header torn when the file was created: nothing was ever committed in it. */
  private tornHeader(): void {
    this.version = 0;
    this.end = 0;
    this.torn = true;
  }

  /** Read the log: where each target's last committed line is, and the blobs of rolled-back lines. */
  private readLog(size: number): void {
    const fd = this.fd!;
    let buf = Buffer.allocUnsafe(CHUNK);
    let have = 0;
    let bufStart = this.logStart; // file offset of buf[0]
    let pos = this.logStart;
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const n = pos < size ? fs.readSync(fd, buf, have, Math.min(buf.length - have, size - pos), pos) : 0;
      pos += n;
      have += n;
      let at = 0;
      for (let nl = buf.indexOf(NL, at); nl !== -1 && nl < have; nl = buf.indexOf(NL, at)) {
        this.addLogLine(buf, at, nl, bufStart + at);
        at = nl + 1;
      }
      buf.copy(buf, 0, at, have);
      have -= at;
      bufStart += at;
      if (n === 0) break;
    }
    this.end = bufStart;
    this.torn = have > 0; // a torn last line (no newline) was never fsynced: ignored, cut before the next append
  }

  private addLogLine(buf: Buffer, from: number, to: number, off: number): void {
    const tab = buf.indexOf(TAB, from);
    if (tab <= from || tab >= to) return;
    const target = buf.toString('utf8', from, tab);
    let gen = 0;
    let i = tab + 1;
    for (; i < to && buf[i] !== TAB; i++) gen = gen * 10 + (buf[i] - 0x30);
    this.logLines++;
    if (gen > this.generation) {
      const blobEnd = buf.indexOf(TAB, i + 1);
      if (blobEnd > i && blobEnd < to) this.rollBack(target, buf.toString('latin1', i + 1, blobEnd));
      if (off < this.rolledBackFrom) this.rolledBackFrom = off;
      return;
    }
    this.log.set(target, { off, len: to - from });
  }

  private rollBack(target: string, blob: string): void {
    const blobs = this.rolledBack.get(target) ?? new Set<string>();
    blobs.add(blob);
    this.rolledBack.set(target, blobs);
  }

  /** `len` bytes at `off` (fewer at the end of the file), in a new buffer or at the start of `into`. */
  private readAt(off: number, len: number, into?: Buffer): Buffer {
    const buf = into ?? Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd!, buf, got, len - got, off + got);
      if (n === 0) break;
      got += n;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  }

  private loadKeys(): { targets: string[]; offsets: number[] } {
    if (this.keys) return this.keys;
    const keys = { targets: [] as string[], offsets: [] as number[] };
    if (this.keysEnd > this.baseEnd) {
      const text = this.readAt(this.baseEnd, this.keysEnd - this.baseEnd).toString('utf8');
      for (let at = 0; at < text.length; ) {
        let nl = text.indexOf('\n', at);
        if (nl < 0) nl = text.length;
        const t2 = text.indexOf('\t', at + 1);
        keys.offsets.push(Number(text.slice(at + 1, t2)));
        keys.targets.push(text.slice(t2 + 1, nl));
        at = nl + 1;
      }
    }
    return (this.keys = keys);
  }

  /** The index of the last key not greater than a target (its line is in that key's group), or -1. */
  private keyGroup(target: string): number {
    const { targets } = this.loadKeys();
    let lo = 0;
    let hi = targets.length - 1;
    let k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (targets[mid] <= target) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return k;
  }

  /** Where a key's group of base lines starts and ends. */
  private groupSpan(k: number): [off: number, end: number] {
    const { offsets } = this.loadKeys();
    return [offsets[k], k + 1 < offsets.length ? offsets[k + 1] : this.baseEnd];
  }

  /** The base line of a target (committed or not), by the key directory and one read. */
  private baseLine(target: string): string | undefined {
    if (this.version !== 2 || this.baseEnd <= V2_HEADER_BYTES) return undefined;
    const k = this.keyGroup(target);
    if (k < 0) return undefined;
    const [off, end] = this.groupSpan(k);
    if (!this.group || off < this.group.off || end > this.group.end) this.group = { off, end, buf: this.readAt(off, end - off) };
    const buf = this.group.buf;
    const stop = Math.min(buf.length, end - this.group.off);
    for (let at = off - this.group.off; at < stop; ) {
      let nl = buf.indexOf(NL, at);
      if (nl < 0 || nl > stop) nl = stop;
      const tab = buf.indexOf(TAB, at);
      const t = buf.toString('utf8', at, tab > at && tab < nl ? tab : nl);
      if (t === target) return buf.toString('utf8', at, nl);
      if (t > target) return undefined;
      at = nl + 1;
    }
    return undefined;
  }

  /**
   * Read, in one read, the part of the base that holds the lines of these
   * targets (sorted): the lookups of a chunk of a compaction then need no
   * read of their own. Not when the part is larger than PREFETCH_MAX bytes.
   */
  prefetch(targets: readonly string[]): void {
    if (targets.length < 2 || this.version !== 2 || this.baseEnd <= V2_HEADER_BYTES) return;
    const last = this.keyGroup(targets[targets.length - 1]);
    if (last < 0) return;
    const [off] = this.groupSpan(Math.max(0, this.keyGroup(targets[0])));
    const [, end] = this.groupSpan(last);
    if (end - off > PREFETCH_MAX || (this.group && off >= this.group.off && end <= this.group.end)) return;
    this.group = { off, end, buf: this.readAt(off, end - off) };
  }

  /** The last line read from the file (get and knownBlobs of one target read it once). */
  private lastRead?: { target: string; line: string | undefined };

  /** The committed line of a target (or a dirty one), or undefined. */
  private line(target: string): string | undefined {
    const dirty = this.dirty.get(target);
    if (dirty !== undefined) return dirty;
    if (this.lastRead?.target === target) return this.lastRead.line;
    const line = this.fileLine(target);
    this.lastRead = { target, line };
    return line;
  }

  private fileLine(target: string): string | undefined {
    const loc = this.log.get(target);
    if (loc) return this.readAt(loc.off, loc.len).toString('utf8');
    const line = this.baseLine(target);
    if (line === undefined) return undefined;
    const gen = Number(line.slice(line.indexOf('\t') + 1, line.indexOf('\t', line.indexOf('\t') + 1)));
    if (gen > this.generation) {
      // a base written before the checkpoint went back (restored from a backup): not committed
      const head = lineHead(line);
      if (head) this.rollBack(target, head.blob);
      return undefined;
    }
    return line;
  }

  /**
   * Where the file stands now, for asking later which entities changed
   * since (`changedSince`); undefined when there is no file or unsaved changes.
   * @example const mark = index.mark() // kept with what was built from the index
   */
  mark(): IndexMark | undefined {
    if (this.fd === undefined || this.version === 0 || this.dirty.size > 0) return undefined;
    const end = Math.min(this.end, this.rolledBackFrom);
    return { ino: this.ino, base: this.baseEnd, end, tail: tailHash(this.file, end) };
  }

  /**
   * The targets whose committed line was appended after a mark, sorted (a
   * superset of the entities whose entry changed). Undefined when the file was
   * replaced or rewritten since (a merge, a new index): then the answer needs a full read.
   * @example const changed = index.changedSince(mark) ?? [...everything]
   */
  changedSince(mark: IndexMark): string[] | undefined {
    if (this.fd === undefined || this.version === 0 || this.ino !== mark.ino || this.baseEnd !== mark.base) return undefined;
    if (mark.end < this.logStart || mark.end > this.end || tailHash(this.file, mark.end) !== mark.tail) return undefined;
    const out: string[] = [];
    for (const [target, loc] of this.log) if (loc.off >= mark.end) out.push(target);
    return out.sort();
  }

  /** Number of entities the index knows (reads the whole base). */
  get size(): number {
    let n = 0;
    for (const _ of this.targets()) n++;
    return n;
  }

  /** The entry of a target, or undefined. */
  get(target: string): IndexEntry | undefined {
    const line = this.line(target);
    return line ? parseLine(line)?.entry : undefined;
  }

  /** Blob ids that count as "written by walnut" for a target. */
  knownBlobs(target: string): string[] {
    const out: string[] = [];
    const line = this.line(target);
    const head = line ? lineHead(line) : undefined;
    if (head) out.push(head.blob);
    for (const b of this.rolledBack.get(target) ?? []) out.push(b);
    return out;
  }

  /** Every target the index knows, sorted (reads the whole base). */
  *targets(): IterableIterator<string> {
    for (const [target] of this.lines()) yield target;
  }

  /**
   * Every entry, sorted by target (reads the whole base). Sizes and mtimes
   * come from the stat cache when it is current (index lines of files written
   * since the last merge of the log hold mtime 0).
   * @example for (const [target, entry] of index.entries()) console.log(target, entry.blob)
   */
  *entries(): IterableIterator<[string, IndexEntry]> {
    const stats = this.statsState === 'unknown' ? this.loadStatCache() : this.stats;
    for (const [target, line] of this.lines()) {
      const parsed = parseLine(line);
      if (!parsed) continue;
      const st = parsed.entry.blob ? stats?.get(target) : undefined;
      if (st) {
        parsed.entry.size = st[0];
        parsed.entry.mtimeMs = st[1];
      }
      yield [target, parsed.entry];
    }
  }

  /**
   * Committed (and dirty) lines in target order: the base merged with the log,
   * the log winning, dirty entries over both. Base lines newer than the
   * checkpoint are rolled back (`rolledBackBase` is called for each).
   */
  private *lines(rolledBackBase?: (target: string) => void): IterableIterator<[string, string]> {
    const logTargets = [...this.log.keys()];
    for (const t of this.dirty.keys()) if (!this.log.has(t)) logTargets.push(t);
    logTargets.sort();
    let li = 0;
    const fromLog = (t: string): string => this.dirty.get(t) ?? this.readAt(this.log.get(t)!.off, this.log.get(t)!.len).toString('utf8');
    for (const line of this.baseSequence()) {
      const tab = line.indexOf('\t');
      const target = line.slice(0, tab);
      while (li < logTargets.length && logTargets[li] < target) {
        const t = logTargets[li++];
        yield [t, fromLog(t)];
      }
      if (li < logTargets.length && logTargets[li] === target) {
        li++;
        yield [target, fromLog(target)];
        continue;
      }
      const gen = Number(line.slice(tab + 1, line.indexOf('\t', tab + 1)));
      if (gen > this.generation) {
        const head = lineHead(line);
        if (head) this.rollBack(target, head.blob);
        rolledBackBase?.(target);
        continue;
      }
      if (this.dirty.has(target)) yield [target, this.dirty.get(target)!];
      else yield [target, line];
    }
    while (li < logTargets.length) {
      const t = logTargets[li++];
      yield [t, fromLog(t)];
    }
  }

  /** The base lines in order, read in pieces. */
  private *baseSequence(): IterableIterator<string> {
    if (this.version !== 2) return;
    let pos = V2_HEADER_BYTES;
    let carry = '';
    // one buffer for every piece: a read of the whole base (a merge: tens of MB) leaves no
    // trail of dead 1 MiB buffers outside the heap, that the process would keep as RSS
    const piece = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(0, this.baseEnd - pos)));
    while (pos < this.baseEnd) {
      const buf = this.readAt(pos, Math.min(CHUNK, this.baseEnd - pos), piece); // len bytes at most: a view of them
      pos += buf.length;
      const cut = buf.lastIndexOf(NL) + 1;
      const text = carry + buf.toString('utf8', 0, cut);
      carry = buf.toString('utf8', cut);
      let at = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', at)) {
        yield text.slice(at, nl);
        at = nl + 1;
      }
      if (buf.length === 0) break;
    }
  }

  /** Change an entry (kept in memory until `save`). */
  set(target: string, entry: IndexEntry): void {
    this.dirty.set(target, formatLine(target, entry));
    const st: [number, number] | null = entry.blob ? [entry.size, Math.round(entry.mtimeMs)] : null;
    if (this.stats) this.applyStat(target, st);
    else this.statPending.set(target, st);
  }

  private applyStat(target: string, st: [number, number] | null): void {
    if (st) this.stats!.set(target, st[0], st[1]);
    else this.stats!.delete(target);
    this.statsDirty = true;
  }

  /** Number of changed entries not yet saved. */
  get pending(): number {
    return this.dirty.size;
  }

  private writable(): number {
    if (this.wfd !== undefined) return this.wfd;
    if (this.version === 0) {
      // a new index: an empty base, then the log
      const fd = fs.openSync(this.file, 'w');
      fs.writeSync(fd, v2Header(V2_HEADER_BYTES, V2_HEADER_BYTES, 0));
      fs.fsyncSync(fd);
      fsyncDir(path.dirname(this.file));
      this.version = 2;
      this.baseEnd = this.keysEnd = this.logStart = this.end = V2_HEADER_BYTES;
      this.torn = false;
      this.ino = fs.fstatSync(fd).ino;
      if (this.fd !== undefined) fs.closeSync(this.fd);
      this.fd = fs.openSync(this.file, 'r');
      this.wfd = fd;
      this.fds.fds = [this.fd, fd];
      return fd;
    }
    const fd = fs.openSync(this.file, 'r+');
    this.fds.fds.push(fd);
    if (this.torn) {
      fs.ftruncateSync(fd, this.end);
      this.torn = false;
    }
    return (this.wfd = fd);
  }

  /** Append the changed entries to the log (fsync). */
  save(): void {
    const fd = this.append();
    if (fd !== undefined) fs.fsyncSync(fd);
  }

  /**
   * `save` with the fsync on the thread pool: the entries are appended now,
   * and on disk when the promise resolves (the caller goes on computing
   * meanwhile). Keep the index open until then.
   */
  saveAsync(): Promise<void> {
    const fd = this.append();
    if (fd === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Append the changed entries to the log, not synced; the file's descriptor, or undefined when nothing changed. */
  private append(): number | undefined {
    if (this.dirty.size === 0) return undefined;
    // Only appends here: a merge now would drop the committed lines that an
    // unfinished generation must roll back to (see `tidy`).
    const fd = this.writable();
    let pos = this.end;
    let chunk: string[] = [];
    let bytes = 0;
    let chunkStart = pos;
    const locs: Array<[string, Loc]> = [];
    for (const [target, line] of this.dirty) {
      const len = Buffer.byteLength(line);
      locs.push([target, { off: pos, len }]);
      chunk.push(line, '\n');
      pos += len + 1;
      bytes += len + 1;
      if (bytes > CHUNK) {
        writeAll(fd, chunk.join(''), chunkStart);
        chunk = [];
        bytes = 0;
        chunkStart = pos;
      }
    }
    if (chunk.length) writeAll(fd, chunk.join(''), chunkStart);
    this.end = pos;
    this.lastRead = undefined;
    this.logLines += locs.length;
    for (const [target, loc] of locs) this.log.set(target, loc);
    this.dirty.clear();
    return fd;
  }

  /**
   * Merge the log into a new base when it has grown past a quarter of the
   * base (or the file is in format 1). Call only at the start of a run,
   * before any change: then every line is committed.
   */
  tidy(): void {
    if (this.version === 0 || this.dirty.size > 0 || this.rolledBack.size > 0) return;
    const logBytes = this.end - this.logStart;
    const baseBytes = this.baseEnd - V2_HEADER_BYTES;
    if (this.version === 2 && (this.logLines <= INDEX_LIMITS.logLines || logBytes <= INDEX_LIMITS.logFraction * baseBytes)) return;
    this.loadStatCache();
    this.merge();
  }

  /** Write base + log as a new base (temporary file, fsync, rename). */
  private merge(): void {
    const tmp = `${this.file}.${process.pid}${TEMP_SUFFIX}`;
    const fd = fs.openSync(tmp, 'w');
    let aborted = false;
    let count = 0;
    try {
      let pos = V2_HEADER_BYTES;
      let chunk: string[] = [];
      let chunkStart = pos;
      let bytes = 0;
      const keys: string[] = [];
      let lastKey = -Infinity;
      const stats = this.stats;
      for (const [target, original] of this.lines(() => (aborted = true))) {
        let line = original;
        // files written since the last merge: their size and mtime from the stat cache
        const st = stats?.get(target);
        if (st) {
          const head = lineHead(line);
          if (head && head.blob && (head.size !== st[0] || head.mtimeMs !== st[1])) line = `${target}\t${head.generation}\t${head.blob}\t${st[0]}\t${st[1]}${line.slice(head.rest)}`;
        }
        if (pos - lastKey >= KEY_SPACING) {
          keys.push(`\t${pos}\t${target}\n`);
          lastKey = pos;
        }
        const len = Buffer.byteLength(line) + 1;
        chunk.push(line, '\n');
        pos += len;
        bytes += len;
        count++;
        if (bytes > CHUNK) {
          writeAll(fd, chunk.join(''), chunkStart);
          chunk = [];
          bytes = 0;
          chunkStart = pos;
        }
      }
      if (aborted) return; // a base line newer than the checkpoint: keep the file as it is
      const baseEnd = pos;
      chunk.push(...keys);
      const keyText = keys.join('');
      const all = chunk.join('');
      writeAll(fd, all, chunkStart);
      pos += Buffer.byteLength(keyText);
      writeAll(fd, v2Header(baseEnd, pos, count), 0);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
      if (aborted) fs.rmSync(tmp, { force: true });
    }
    if (aborted) return;
    fs.renameSync(tmp, this.file);
    fsyncDir(path.dirname(this.file));
    this.reopen();
  }

  private reopen(): void {
    this.close();
    this.lastRead = undefined;
    this.statsDirty = true; // the cache names the index file it goes with
    this.version = 0;
    this.keys = undefined;
    this.group = undefined;
    this.log.clear();
    this.logLines = 0;
    this.torn = false;
    this.open();
  }

  /** Close the index file (the entries in memory stay usable until the next read). */
  close(): void {
    for (const fd of this.fds.fds) {
      try {
        fs.closeSync(fd);
      } catch {
        /* closed */
      }
    }
    this.fds.fds = [];
    this.fd = undefined;
    this.wfd = undefined;
  }

  // ------------------------------------------------------------ stat cache

  private get statFile(): string {
    return path.join(path.dirname(this.file), 'stat');
  }

  /** The stat cache if it is current, else undefined (state 'loaded' either way). */
  private loadStatCache(): FileStats | undefined {
    if (this.statsState !== 'unknown') return this.stats;
    this.statsState = 'loaded';
    if (this.version === 0) {
      this.stats = new FileStats('');
      this.applyPendingStats();
      return this.stats;
    }
    const text = readFileOrUndefined(this.statFile);
    if (text === undefined) return undefined;
    const stats = this.parseStatCache(text);
    if (stats) {
      this.stats = stats;
      this.applyPendingStats();
    }
    return stats;
  }

  private applyPendingStats(): void {
    for (const [target, st] of this.statPending) this.applyStat(target, st);
    this.statPending.clear();
  }

  private parseStatCache(text: string): FileStats | undefined {
    const nl = text.indexOf('\n');
    const [tag, version, generation, ino, bytes, lines, hash] = text.slice(0, nl).split(' ');
    if (tag !== 'walnut-stat' || version !== '1' || Number(generation) !== this.generation || Number(ino) !== this.ino || Number(bytes) > this.end) return undefined;
    const body = text.slice(nl + 1);
    if (createHash('sha1').update(body).digest('hex').slice(0, 16) !== hash) return undefined;
    const stats = new FileStats(body);
    return stats.baseCount === Number(lines) ? stats : undefined;
  }

  /**
   * Size and mtime of every live entity file as walnut last wrote, recorded
   * or checked it: the stat cache, or (when it is missing or stale) the
   * index's own sizes and mtimes, read from the whole index.
   */
  fileStats(): FileStats {
    if (this.loadStatCache()) return this.stats!;
    const parts: string[] = [];
    for (const [target, line] of this.lines()) {
      const head = lineHead(line);
      if (head?.blob) parts.push(`${target}\t${head.size}\t${head.mtimeMs}\n`);
    }
    this.stats = new FileStats(parts.join(''));
    this.statsState = 'rebuilt';
    this.statsDirty = true;
    this.applyPendingStats();
    return this.stats;
  }

  /** The cached size and mtime of a target's file, if known. */
  statOf(target: string): [number, number] | undefined {
    return this.fileStats().get(target);
  }

  /** Remember the size and mtime of a file whose content is the entry's blob (just written or checked). */
  noteStat(target: string, size: number, mtimeMs: number): void {
    this.fileStats().set(target, size, Math.round(mtimeMs));
    this.statsDirty = true;
  }

  /**
   * Write the stat cache for `generation` (call after the checkpoint that
   * commits it, or with the current one when nothing was committed). Not
   * fsynced: a cache that did not survive a crash is rebuilt from the index.
   */
  saveStats(generation: number): void {
    if (!this.stats || (!this.statsDirty && generation === this.generation)) return;
    const { text: body, count } = this.stats.serialize();
    const hash = createHash('sha1').update(body).digest('hex').slice(0, 16);
    writeFileAtomic(this.statFile, `walnut-stat 1 ${generation} ${this.ino} ${this.end} ${count} ${hash}\n${body}`, { fsync: false });
    this.statsDirty = false;
  }
}

/**
 * A buffer the texts written by `writeAll` are encoded into, reused (a save
 * or merge writes many pieces of about CHUNK bytes: one buffer each would
 * pile up outside the heap until a GC, and stay in the process's RSS).
 */
let scratch: Buffer | undefined;

function writeAll(fd: number, text: string, position: number): void {
  const need = Buffer.byteLength(text);
  let buf: Buffer;
  if (need > 4 * CHUNK) buf = Buffer.from(text, 'utf8'); // rare: not kept
  else {
    if (!scratch || scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, CHUNK + (CHUNK >> 2)));
    buf = scratch.subarray(0, scratch.write(text, 0, 'utf8'));
  }
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
}

/**
 * Sizes and mtimes of live entity files, sorted by target: the text of the
 * stat cache (`target TAB size TAB mtimeMs LF` lines) plus changes in memory.
 */
export class FileStats {
  private readonly starts: Uint32Array;
  readonly baseCount: number;
  private readonly changes = new Map<string, [number, number] | null>();

  constructor(private readonly text: string) {
    let n = 0;
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) n++;
    this.starts = new Uint32Array(n + 1);
    let i = 0;
    let at = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', at)) {
      this.starts[i++] = at;
      at = nl + 1;
    }
    this.starts[n] = text.length;
    this.baseCount = n;
  }

  private targetAt(i: number): string {
    const s = this.starts[i];
    return this.text.slice(s, this.text.indexOf('\t', s));
  }

  private valueAt(i: number): [number, number] {
    const s = this.starts[i];
    const t1 = this.text.indexOf('\t', s);
    const t2 = this.text.indexOf('\t', t1 + 1);
    return [Number(this.text.slice(t1 + 1, t2)), Number(this.text.slice(t2 + 1, this.starts[i + 1] - 1))];
  }

  /** [size, mtimeMs] of a target, or undefined. */
  get(target: string): [number, number] | undefined {
    const c = this.changes.get(target);
    if (c !== undefined) return c ?? undefined;
    const i = this.position(target);
    return i < this.baseCount && this.compareAt(i, target) === 0 ? this.valueAt(i) : undefined;
  }

  set(target: string, size: number, mtimeMs: number): void {
    this.changes.set(target, [size, mtimeMs]);
  }

  delete(target: string): void {
    this.changes.set(target, null);
  }

  /** Every [target, size, mtimeMs], sorted by target. */
  *entries(): IterableIterator<[string, number, number]> {
    const changed = [...this.changes.keys()].sort();
    let ci = 0;
    for (let i = 0; i < this.baseCount; i++) {
      const t = this.targetAt(i);
      while (ci < changed.length && changed[ci] < t) {
        const c = this.changes.get(changed[ci]);
        if (c) yield [changed[ci], c[0], c[1]];
        ci++;
      }
      if (ci < changed.length && changed[ci] === t) {
        const c = this.changes.get(t);
        if (c) yield [t, c[0], c[1]];
        ci++;
        continue;
      }
      const [size, mtime] = this.valueAt(i);
      yield [t, size, mtime];
    }
    for (; ci < changed.length; ci++) {
      const c = this.changes.get(changed[ci]);
      if (c) yield [changed[ci], c[0], c[1]];
    }
  }

  /** The cache text with the changes applied. */
  serialize(): { text: string; count: number } {
    if (this.changes.size === 0) return { text: this.text, count: this.baseCount };
    // unchanged runs of lines are copied as slices of the old text
    const parts: string[] = [];
    let count = this.baseCount;
    let copied = 0; // base lines before this index are in `parts`
    for (const target of [...this.changes.keys()].sort()) {
      const c = this.changes.get(target)!;
      const i = this.position(target);
      const present = i < this.baseCount && this.targetAt(i) === target;
      if (i > copied) parts.push(this.text.slice(this.starts[copied], this.starts[i]));
      copied = present ? i + 1 : i;
      if (c) parts.push(`${target}\t${c[0]}\t${c[1]}\n`);
      count += (c ? 1 : 0) - (present ? 1 : 0);
    }
    if (copied < this.baseCount) parts.push(this.text.slice(this.starts[copied]));
    return { text: parts.join(''), count };
  }

  /** The first base line whose target is not less than `target`. */
  private position(target: string): number {
    let lo = 0;
    let hi = this.baseCount;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compareAt(mid, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The target of line i against `target`, as `<` orders strings (UTF-16
   * code units), without taking it out of the text: negative, 0, positive.
   * A tab ends a line's target (a target holds none).
   */
  private compareAt(i: number, target: string): number {
    const text = this.text;
    let p = this.starts[i];
    for (let k = 0; ; k++, p++) {
      const a = p < text.length ? text.charCodeAt(p) : 9;
      if (a === 9) return k === target.length ? 0 : -1;
      if (k === target.length) return 1;
      const d = a - target.charCodeAt(k);
      if (d !== 0) return d;
    }
  }
}

/**
 * Every entry of the index at the committed generation, sizes and mtimes
 * from the stat cache when it is current. Holds them all in memory (about
 * 1 KB an entity); `EntityIndex.entries()` streams them instead.
 *
 * @param repo - the repository
 * @returns target → entry, sorted by target
 * @throws WalnutError `EINDEX` when the index file is damaged
 * @example for (const [target, e] of loadIndexEntries(repo)) if (e.blob) console.log(target)
 */
export function loadIndexEntries(repo: Repo): Map<string, IndexEntry> {
  const index = EntityIndex.load(repo, readCheckpoint(repo).generation);
  try {
    return new Map(index.entries());
  } finally {
    index.close();
  }
}
