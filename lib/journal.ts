/**
 * Journal segments: `wal/<YYYYMMDD>_<node>.usv`, one per node per UTC day,
 * appended only by their node. Appending writes one whole record per write to
 * a file opened for append; reading streams a segment in chunks and survives
 * torn tails and garbage, reporting file and byte offset.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { encodeRecord, parseRecord, eachRecord, recordHash, textHash, endsWithTerminator, CAN, RS, RS_BYTE, RS_SYMBOL_BYTES, MAX_RECORD_BYTES, type JournalRecord } from '../formats/usv.js';
import { FormatError } from './errors.js';
import type { Repo } from './repo.js';

/** A segment name: `YYYYMMDD_<node>.usv` (cocli's naming). */
export const SEGMENT_NAME = /^(\d{8})_([A-Za-z0-9][A-Za-z0-9_.-]*)\.usv$/;

export interface SegmentInfo {
  /** file name, e.g. 20261121_pi-01.usv */
  name: string;
  /** absolute path */
  file: string;
  /** path relative to the data directory, for messages */
  rel: string;
  day: string;
  node: string;
  size: number;
}

/** A problem found while reading; the reader goes on after it. */
export interface ReadIssue {
  code: 'ETORN' | 'ECLOSED' | 'EUTF8' | 'ETOOLARGE' | string;
  message: string;
  file: string;
  offset: number;
}

/** A record as read, with where it is. */
export interface ReadRecord {
  record: JournalRecord;
  file: string;
  start: number;
  end: number;
  /** the record's text as read, without its terminator */
  text: string;
}

/** The record hash of a record as read: from its text when that is its canonical text (`textHash`), else `recordHash`. */
export function readHash(record: JournalRecord, text: string): string {
  return textHash(text) ?? recordHash(record);
}

/** The segment file name for a node and a time (the UTC day of `ms`). */
export function segmentName(node: string, ms: number): string {
  const day = new Date(Math.max(0, ms)).toISOString().slice(0, 10).replace(/-/g, '');
  return `${day}_${node}.usv`;
}

/**
 * List the journal segments in `wal/`, sorted by name.
 *
 * @param repo - the repository
 * @returns segment descriptions; files that are not segments are left out
 */
export function listSegments(repo: Pick<Repo, 'root' | 'wal'>): SegmentInfo[] {
  return listSegmentsIn(repo.wal, repo.root);
}

/** List segments of a folder (also used for gossip and remote staging folders). */
export function listSegmentsIn(dir: string, root: string): SegmentInfo[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SegmentInfo[] = [];
  for (const name of names.sort()) {
    const m = SEGMENT_NAME.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    let size: number;
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) continue;
      size = st.size;
    } catch {
      continue;
    }
    out.push({ name, file, rel: path.relative(root, file), day: m[1], node: m[2], size });
  }
  return out;
}

/**
 * Read a segment's records from `start` to `end` (default: end of file) in
 * chunks; never holds more than one chunk plus one record in memory.
 *
 * @param file - the segment
 * @param options.start - first byte (a record boundary)
 * @param options.end - stop before this byte
 * @param options.rel - the name to use in issues
 * @param options.accept - a filter on a record's bytes `buf[start, end)` before it is decoded:
 *   false skips the record silently (no issue is reported for it, whatever its shape)
 * @param onRecord - called for each well-formed record
 * @param onIssue - called for each damaged piece; reading goes on
 * @returns `complete`: the offset after the last complete record; `size`: bytes seen
 */
export function scanSegment(
  file: string,
  { start = 0, end, rel = file, chunkSize = 1 << 20, accept }: { start?: number; end?: number; rel?: string; chunkSize?: number; accept?: (buf: Buffer, start: number, end: number) => boolean },
  onRecord: (r: ReadRecord) => void,
  onIssue: (i: ReadIssue) => void = () => {},
): { complete: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { complete: start, size: 0 };
    throw err;
  }
  // where a record is, for parseRecord's errors (the offset is set record by record)
  const where = { file: rel, offset: start };
  try {
    const limit = end ?? fs.fstatSync(fd).size;
    // One buffer for the whole scan: the unfinished tail of a chunk is moved to
    // its front and the next chunk read after it (no allocation per chunk).
    let buf = Buffer.allocUnsafe(chunkSize * 2);
    let pos = start;
    let carryLen = 0;
    let carryStart = start;
    let skipping = false; // inside an oversized record, looking for its end
    let complete = start;
    for (;;) {
      if (carryLen + chunkSize > buf.length) {
        const bigger = Buffer.allocUnsafe(carryLen + chunkSize);
        buf.copy(bigger, 0, 0, carryLen);
        buf = bigger;
      }
      const want = Math.min(chunkSize, limit - pos);
      const n = want > 0 ? fs.readSync(fd, buf, carryLen, want, pos) : 0;
      pos += n;
      const final = n === 0 || pos >= limit;
      const data = buf.subarray(0, carryLen + n);
      const base = carryStart;
      // Checked as a whole: the bytes before the last terminator (a character boundary), which
      // hold every complete record of the chunk. Not UTF-8: each record is checked alone.
      const last = Math.max(data.lastIndexOf(RS_BYTE), data.lastIndexOf(RS_SYMBOL_BYTES));
      const chunkUtf8 = last > 0 && isUtf8(data.subarray(0, last));
      const used = eachRecord(data, final, (s, cut, e) => {
        if (skipping) skipping = false;
        else if (!accept || accept(data, s, cut)) decode(data, s, cut, e, base, chunkUtf8, where, onRecord, onIssue);
        complete = base + e;
      });
      let restLen = data.length - used;
      if (restLen > MAX_RECORD_BYTES + 8 && !skipping) {
        onIssue({ code: 'ETOOLARGE', message: `record is larger than 1 MiB; skipped to the next record`, file: rel, offset: base + used });
        skipping = true;
      }
      if (skipping) {
        restLen = 0;
        carryStart = pos;
      } else {
        buf.copy(buf, 0, used, used + restLen);
        carryStart = base + used;
      }
      carryLen = restLen;
      if (buf.length > chunkSize * 2 && carryLen < chunkSize) buf = Buffer.from(buf.subarray(0, chunkSize * 2));
      if (final) {
        if (carryLen > 0) {
          onIssue({ code: 'ETORN', message: `torn last record (${carryLen} bytes without a terminator); skipped`, file: rel, offset: carryStart });
        }
        return { complete, size: limit };
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Decode the record `buf[s, cut)` (its terminator ends at `e`), at file offset `base + s`; `where` is the scan's, its offset set here. */
function decode(buf: Buffer, s: number, cut: number, e: number, base: number, utf8Known: boolean, where: { file: string; offset: number }, onRecord: (r: ReadRecord) => void, onIssue: (i: ReadIssue) => void): void {
  if (cut === s) return;
  const start = base + s;
  const rel = where.file;
  if (cut - s > MAX_RECORD_BYTES) {
    onIssue({ code: 'ETOOLARGE', message: `record is larger than 1 MiB; skipped`, file: rel, offset: start });
    return;
  }
  if (!utf8Known && !isUtf8(buf.subarray(s, cut))) {
    onIssue({ code: 'EUTF8', message: `record is not valid UTF-8; skipped`, file: rel, offset: start });
    return;
  }
  const text = buf.toString(undefined, s, cut); // UTF-8 (no encoding: Buffer's shortest path to it)
  if (text.includes(CAN)) {
    if (text !== CAN) onIssue({ code: 'ECLOSED', message: `torn record (closed by a later append); skipped`, file: rel, offset: start });
    return;
  }
  where.offset = start;
  let record: JournalRecord;
  try {
    record = parseRecord(text, where);
  } catch (err) {
    if (err instanceof FormatError) onIssue({ code: err.code, message: err.message, file: rel, offset: start });
    else throw err;
    return;
  }
  onRecord({ record, file: rel, start, end: base + e, text });
}

/**
 * Read the last complete record of a segment (for the clock), or undefined.
 * Reads only the segment's tail.
 */
export function lastRecord(file: string): JournalRecord | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    for (const span of [8192, MAX_RECORD_BYTES * 2 + 16]) {
      const from = Math.max(0, size - span);
      const buf = Buffer.alloc(size - from);
      fs.readSync(fd, buf, 0, buf.length, from);
      let last: JournalRecord | undefined;
      // Start at a record boundary: after the first terminator unless reading from 0.
      let skipFirst = from > 0;
      const where = { file, offset: from };
      eachRecord(buf, true, (s, cut, e) => {
        if (skipFirst) skipFirst = false;
        else decode(buf, s, cut, e, from, false, where, (r) => (last = r.record), () => {});
      });
      if (last || from === 0) return last;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export type FsyncPolicy = 'always' | 'batch' | 'never';

/**
 * Open a segment for appending (creating `wal/` and the file as needed). A
 * segment whose last record is torn (no terminator: a writer died mid-append)
 * is closed first with CAN RS LF, so the next record starts clean.
 * @returns the file descriptor, opened with 'a'
 */
export function openForAppend(wal: string, segment: string): number {
  fs.mkdirSync(wal, { recursive: true });
  const file = path.join(wal, segment);
  const fd = fs.openSync(file, 'a');
  const size = fs.fstatSync(fd).size;
  if (size > 0) {
    const tail = Buffer.alloc(Math.min(4, size));
    const rfd = fs.openSync(file, 'r');
    try {
      fs.readSync(rfd, tail, 0, tail.length, size - tail.length);
    } finally {
      fs.closeSync(rfd);
    }
    if (!endsWithTerminator(tail)) fs.writeSync(fd, CAN + RS + '\n');
  }
  return fd;
}

/**
 * An append stream to this node's segments. Each `append` is one write of one
 * whole record (or, in batch mode, of many whole records) to a file opened
 * for append; a torn tail left by a power cut is closed first with CAN RS LF
 * so the next record starts fresh. Never takes a lock.
 */
export class SegmentWriter {
  private fd: number | undefined;
  private current: string | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private unsynced = 0;

  /**
   * @param wal - the `wal/` folder
   * @param fsync - 'always': fsync after each record; 'batch': every `batchBytes` and at close; 'never'
   */
  constructor(
    private readonly wal: string,
    private readonly fsync: FsyncPolicy = 'always',
    private readonly batchBytes = 1 << 20,
  ) {}

  /** Append one record (already stamped) to the segment of its day. */
  append(record: Pick<JournalRecord, 'timestamp' | 'node' | 'target' | 'field' | 'value' | 'causality'>): { segment: string; bytes: number } {
    const text = encodeRecord(record);
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_RECORD_BYTES) {
      throw new FormatError('ETOOLARGE', `record for ${record.target} ${record.field} is ${bytes} bytes, more than the 1 MiB limit`, { target: record.target, field: record.field, bytes }, ['store large content in a file and record its path']);
    }
    // walnut's own timestamps are ISO with a Z: the UTC day is in the text
    const ts = record.timestamp;
    const segment = ts.length >= 10 && ts.endsWith('Z') ? `${ts.slice(0, 4)}${ts.slice(5, 7)}${ts.slice(8, 10)}_${record.node}.usv` : segmentName(record.node, Date.parse(ts));
    if (segment !== this.current) {
      this.flush();
      this.open(segment);
    }
    if (this.fsync === 'batch') {
      this.pending.push(text);
      this.pendingBytes += bytes;
      if (this.pendingBytes >= this.batchBytes) this.flush();
    } else {
      fs.writeSync(this.fd!, text);
      if (this.fsync === 'always') fs.fsyncSync(this.fd!);
    }
    return { segment, bytes };
  }

  private open(segment: string): void {
    this.closeFd();
    this.fd = openForAppend(this.wal, segment);
    this.current = segment;
  }

  /** Write what is buffered (batch mode) and fsync per the policy. */
  flush(): void {
    if (this.fd === undefined) return;
    if (this.pending.length > 0) {
      fs.writeSync(this.fd, this.pending.join(''));
      this.pending = [];
      this.unsynced += this.pendingBytes;
      this.pendingBytes = 0;
    }
    if (this.fsync === 'batch' && this.unsynced > 0) {
      fs.fsyncSync(this.fd);
      this.unsynced = 0;
    }
  }

  private closeFd(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Flush and close. */
  close(): void {
    this.flush();
    this.closeFd();
    this.current = undefined;
  }
}
