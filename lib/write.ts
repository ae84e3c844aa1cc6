/**
 * Writing records: `set`, `unset` and batch mode. Values are checked, stamped
 * with the node's clock and appended to the node's segment. Never takes a lock.
 */
import fs from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { checkField, checkTarget, encodeValue, encodeRecord, MAX_RECORD_BYTES, type JournalRecord } from '../formats/usv.js';
import { FormatError } from './errors.js';
import { Clock, type ClockOptions } from './clock.js';
import { SegmentWriter, segmentName, openForAppend, type FsyncPolicy } from './journal.js';
import type { Repo } from './repo.js';

/** One field change to write; `value` is any JSON value, `null` deletes the field. */
export interface FieldChange {
  target: string;
  field: string;
  value: unknown;
}

// The last target and field checked: batches repeat them record after record.
let lastTarget: string | undefined;
let lastField: string | undefined;

/** A value unit may take this many bytes (the rest of a record's 1 MiB is for the other units). */
const MAX_VALUE_BYTES = MAX_RECORD_BYTES - 1024;

function checkNames(target: string, field: string): void {
  if (target !== lastTarget) {
    checkTarget(target);
    lastTarget = target;
  }
  if (field !== lastField) {
    checkField(field);
    lastField = field;
  }
}

function valueTooLarge(target: string, field: string, bytes: number, where = ''): FormatError {
  return new FormatError('ETOOLARGE', `${where}value for ${target} ${field} is ${bytes} bytes; a record is at most 1 MiB`, { target, field }, ['store large content in a file and record its path']);
}

/** Check a change at the public boundary; returns the encoded value unit. */
export function checkChange(change: FieldChange, where = ''): string {
  if (typeof change.target !== 'string') throw new FormatError('ETARGET', `${where}target must be a string`, {});
  if (typeof change.field !== 'string') throw new FormatError('EFIELD', `${where}field must be a string`, {});
  checkNames(change.target, change.field);
  const unit = encodeValue(change.value === undefined ? null : change.value);
  // a string takes at most 3 bytes per UTF-16 unit: count bytes only when that could be too many
  if (unit.length * 3 > MAX_VALUE_BYTES) {
    const bytes = Buffer.byteLength(unit);
    if (bytes > MAX_VALUE_BYTES) throw valueTooLarge(change.target, change.field, bytes, where);
  }
  return unit;
}

/**
 * Write field changes as journal records of this node.
 *
 * @param options.repo - the repository
 * @param options.changes - the changes, all checked before anything is written
 * @param options.clock - clock options (wall clock, bound)
 * @param options.fsync - 'always' (default) fsyncs each record
 * @returns the records written
 * @throws FormatError for a bad target, field or value; nothing is written then
 * @example writeChanges({ repo, changes: [{ target: 'companies/acme', field: 'name', value: 'Acme' }] })
 */
export function writeChanges({ repo, changes, clock: clockOptions, fsync = 'always' }: { repo: Repo; changes: FieldChange[]; clock?: ClockOptions; fsync?: FsyncPolicy }): JournalRecord[] {
  const units = changes.map((c) => checkChange(c));
  const clock = Clock.load(repo, clockOptions);
  const writer = new SegmentWriter(repo.wal, fsync);
  const written: JournalRecord[] = [];
  try {
    changes.forEach((c, i) => {
      const { timestamp, causality } = clock.tick();
      const record: JournalRecord = { timestamp, node: repo.node, target: c.target, field: c.field, value: units[i], causality, format: 1 };
      writer.append(record);
      written.push(record);
    });
  } finally {
    writer.close();
  }
  return written;
}

/** A problem with one line of batch input; the rest goes on. */
export interface BatchIssue {
  line: number;
  message: string;
}

/**
 * Batch mode: NDJSON `{"target","field","value"}` lines from a byte stream,
 * appended as one stream. Records are encoded into a buffer that is written
 * every MiB; after each write an fsync starts in the background (one at a
 * time, so writing goes on meanwhile) and the end waits for a last one. A bad
 * line is reported and skipped, nothing of it is written. String chunks are
 * taken as their UTF-8 bytes (a lone surrogate as U+FFFD).
 *
 * The bytes written are always those `JSON.parse` of the line,
 * {@link checkChange} and `encodeRecord` (formats/usv.ts) give. Lines of the
 * usual shape `{"target":"…","field":"…","value":…}` whose target and field
 * have no escapes are read without `JSON.parse`: their target, field and value
 * bytes are copied as they are when `JSON.stringify` would write them
 * unchanged (a string without escapes, `true`, `false`, `null`, an integer of
 * up to 15 digits); any other value is parsed alone; any other line is parsed
 * whole.
 *
 * @param options.repo - the repository
 * @param options.input - NDJSON bytes (stdin)
 * @param options.clock - clock options (wall clock, bound)
 * @param options.onIssue - called for each refused line (lines counted from 1)
 * @returns counts of records written and lines refused
 * @throws what the file system throws (a failed write or fsync); a bad line is reported, not thrown
 * @example await writeBatch({ repo, input: fs.createReadStream('batch.ndjson') })
 */
export async function writeBatch({ repo, input, clock: clockOptions, onIssue }: { repo: Repo; input: AsyncIterable<Buffer | string>; clock?: ClockOptions; onIssue?: (i: BatchIssue) => void }): Promise<{ written: number; refused: number }> {
  const out = new BatchAppender(repo.wal);
  const lines = new BatchLines(out, Clock.load(repo, clockOptions), repo.node);
  let lineNo = 0;
  let refused = 0;
  const line = (b: Buffer, s: number, e: number, utf8: boolean) => {
    lineNo++;
    try {
      if (!(utf8 && lines.fast(b, s, e))) lines.slow(b.toString('utf8', s, e));
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      refused++;
      onIssue?.({ line: lineNo, message: err.message });
    }
  };
  try {
    // the start of a line whose newline has not come yet
    const carry: Buffer[] = [];
    // a high surrogate that ended a string chunk: the rest of its character comes next
    let high = '';
    for await (const chunk of input) {
      let b: Buffer;
      if (typeof chunk === 'string') {
        let text = high + chunk;
        high = '';
        const last = text.charCodeAt(text.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) {
          high = text.slice(-1);
          text = text.slice(0, -1);
        }
        b = Buffer.from(text, 'utf8');
      } else b = chunk;
      const nl = b.lastIndexOf(NL);
      if (nl === -1) {
        if (b.length > 0) carry.push(Buffer.from(b));
        continue;
      }
      let end = nl + 1;
      if (carry.length > 0) {
        end += carry.reduce((n, c) => n + c.length, 0);
        b = Buffer.concat([...carry, b]);
        carry.length = 0;
      }
      // Lines end at a newline, which is never part of a multi-byte character:
      // each line is valid UTF-8 when all complete lines are.
      const utf8 = isUtf8(b.subarray(0, end));
      for (let s = 0; s < end; ) {
        const e = b.indexOf(NL, s);
        line(b, s, e, utf8);
        s = e + 1;
      }
      if (end < b.length) carry.push(Buffer.from(b.subarray(end)));
    }
    if (high) carry.push(Buffer.from(high, 'utf8'));
    if (carry.length > 0) {
      const b = Buffer.concat(carry);
      line(b, 0, b.length, isUtf8(b));
    }
  } finally {
    await out.close();
  }
  return { written: lines.written, refused };
}

const NL = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const CLOSE_BRACE = 0x7d;
const US_BYTE = 0x1f;
const RS_BYTE = 0x1e;
const LINE_START = Buffer.from('{"target":"');
const AFTER_TARGET = Buffer.from('","field":"');
const AFTER_FIELD = Buffer.from('","value":');
const SHORTEST_LINE = LINE_START.length + AFTER_TARGET.length + AFTER_FIELD.length + 2;

/** The lines of one batch: each is checked, stamped and handed to the appender. */
class BatchLines {
  written = 0;
  /** the timestamp of the last stamp, and its segment and record prefix (timestamp US node US) */
  private timestamp = '';
  private segment = '';
  private prefix = Buffer.alloc(0);
  /** the bytes of the last target that passed checkTarget (batches repeat it) */
  private target = Buffer.alloc(256);
  private targetLength = -1;

  constructor(
    private readonly out: BatchAppender,
    private readonly clock: Clock,
    private readonly node: string,
  ) {}

  /**
   * A line of the usual shape, from its bytes `b[s, e)` (valid UTF-8).
   * @returns false, having done nothing, when the line must take the `JSON.parse` path
   * @throws FormatError when the line is refused
   */
  fast(b: Buffer, s: number, e: number): boolean {
    if (e - s < SHORTEST_LINE || !bytesAt(b, s, LINE_START)) return false;
    const t0 = s + LINE_START.length;
    const t1 = plainStringEnd(b, t0, e);
    if (t1 < 0 || !bytesAt(b, t1, AFTER_TARGET)) return false;
    const f0 = t1 + AFTER_TARGET.length;
    const f1 = plainStringEnd(b, f0, e);
    if (f1 < 0 || !bytesAt(b, f1, AFTER_FIELD)) return false;
    const v0 = f1 + AFTER_FIELD.length;
    const v1 = e - 1;
    if (v1 <= v0 || b[v1] !== CLOSE_BRACE) return false;
    // The value's unit, unless its bytes are the unit as they are.
    let unit: string | undefined;
    if (!unitAsIs(b, v0, v1)) {
      let value: unknown;
      try {
        value = JSON.parse(b.toString('utf8', v0, v1));
      } catch {
        return false;
      }
      unit = encodeValue(value);
    }
    // The line is JSON of the usual shape: from here it is written or refused.
    if (!this.sameTarget(b, t0, t1)) {
      checkTarget(b.toString('utf8', t0, t1));
      this.rememberTarget(b, t0, t1);
    }
    if (!plainField(b, f0, f1)) checkField(b.toString('utf8', f0, f1));
    const unitBytes = unit === undefined ? v1 - v0 : Buffer.byteLength(unit);
    if (unitBytes > MAX_VALUE_BYTES) throw valueTooLarge(b.toString('utf8', t0, t1), b.toString('utf8', f0, f1), unitBytes);
    const causality = this.stamp();
    const size = this.prefix.length + (t1 - t0) + (f1 - f0) + unitBytes + causality.length + 5;
    if (size > MAX_RECORD_BYTES) throw recordTooLarge(b.toString('utf8', t0, t1), b.toString('utf8', f0, f1), size);
    const buf = this.out.buffer;
    let o = this.out.begin(this.segment, size);
    buf.set(this.prefix, o);
    o += this.prefix.length;
    o = copyBytes(b, t0, t1, buf, o);
    buf[o++] = US_BYTE;
    o = copyBytes(b, f0, f1, buf, o);
    buf[o++] = US_BYTE;
    if (unit === undefined) o = copyBytes(b, v0, v1, buf, o);
    else o += buf.write(unit, o, 'utf8');
    buf[o++] = US_BYTE;
    for (let i = 0; i < causality.length; i++) buf[o++] = causality.charCodeAt(i);
    buf[o++] = RS_BYTE;
    buf[o++] = NL;
    this.out.end(o);
    this.written++;
    return true;
  }

  /**
   * Any other line: `JSON.parse`, {@link checkChange}, `encodeRecord`.
   * @throws FormatError when the line is refused
   */
  slow(line: string): void {
    if (line.trim() === '') return;
    let obj: FieldChange;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new FormatError('EBATCH', `not JSON: ${(err as Error).message}`, {});
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FormatError('EBATCH', `expected an object {"target","field","value"}`, {});
    if (!('value' in obj)) throw new FormatError('EBATCH', `missing "value" (use null to delete a field)`, {});
    const unit = checkChange(obj);
    const causality = this.stamp();
    const text = encodeRecord({ timestamp: this.timestamp, node: this.node, target: obj.target, field: obj.field, value: unit, causality });
    const size = Buffer.byteLength(text);
    if (size > MAX_RECORD_BYTES) throw recordTooLarge(obj.target, obj.field, size);
    const o = this.out.begin(this.segment, size);
    this.out.end(o + this.out.buffer.write(text, o, 'utf8'));
    this.written++;
  }

  /** Tick the clock for a record: its causality unit; its timestamp, segment and prefix are kept. */
  private stamp(): string {
    const { timestamp, causality } = this.clock.tick();
    if (timestamp !== this.timestamp) {
      this.timestamp = timestamp;
      this.prefix = Buffer.from(timestamp + US + this.node + US, 'utf8');
      // as SegmentWriter names it: walnut's own timestamps are ISO with a Z, the UTC day is in the text
      const ts = timestamp;
      this.segment = ts.length >= 10 && ts.endsWith('Z') ? `${ts.slice(0, 4)}${ts.slice(5, 7)}${ts.slice(8, 10)}_${this.node}.usv` : segmentName(this.node, Date.parse(ts));
    }
    return causality;
  }

  private sameTarget(b: Buffer, s: number, e: number): boolean {
    if (e - s !== this.targetLength) return false;
    const t = this.target;
    for (let i = 0; s < e; i++, s++) if (b[s] !== t[i]) return false;
    return true;
  }

  private rememberTarget(b: Buffer, s: number, e: number): void {
    if (e - s > this.target.length) this.target = Buffer.alloc(e - s);
    copyBytes(b, s, e, this.target, 0);
    this.targetLength = e - s;
  }
}

const US = '\x1f';

function recordTooLarge(target: string, field: string, bytes: number): FormatError {
  // the message of SegmentWriter.append
  return new FormatError('ETOOLARGE', `record for ${target} ${field} is ${bytes} bytes, more than the 1 MiB limit`, { target, field, bytes }, ['store large content in a file and record its path']);
}

/** True when `lit` is at `b[i]`. */
function bytesAt(b: Buffer, i: number, lit: Buffer): boolean {
  for (let k = 0; k < lit.length; k++) if (b[i + k] !== lit[k]) return false;
  return true;
}

/** The end (the closing quote) of JSON string content from `i` that has no escapes nor control characters, or -1. */
function plainStringEnd(b: Buffer, i: number, e: number): number {
  for (; i < e; i++) {
    const c = b[i];
    if (c === QUOTE) return i;
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/**
 * True when the JSON value `b[s, e)` is its own unit: what `encodeValue` of
 * its `JSON.parse` writes. A string without escapes, control characters or
 * the visible separators U+241E/U+241F (which `encodeValue` escapes); `true`,
 * `false`, `null`; an integer of at most 15 digits, without a leading zero,
 * other than -0.
 */
function unitAsIs(b: Buffer, s: number, e: number): boolean {
  const c = b[s];
  if (c === QUOTE) {
    if (e - s < 2 || b[e - 1] !== QUOTE) return false;
    for (let i = s + 1; i < e - 1; i++) {
      const x = b[i];
      if (x === QUOTE || x === BACKSLASH || x < 0x20) return false;
      if (x === 0xe2 && b[i + 1] === 0x90 && (b[i + 2] === 0x9e || b[i + 2] === 0x9f)) return false;
    }
    return true;
  }
  if (c === 0x74) return e - s === 4 && b[s + 1] === 0x72 && b[s + 2] === 0x75 && b[s + 3] === 0x65; // true
  if (c === 0x66) return e - s === 5 && b[s + 1] === 0x61 && b[s + 2] === 0x6c && b[s + 3] === 0x73 && b[s + 4] === 0x65; // false
  if (c === 0x6e) return e - s === 4 && b[s + 1] === 0x75 && b[s + 2] === 0x6c && b[s + 3] === 0x6c; // null
  const d = c === 0x2d ? s + 1 : s;
  if (d >= e || e - d > 15) return false;
  if (b[d] === 0x30) return e - d === 1 && d === s; // 0, but not -0 nor 007
  for (let i = d; i < e; i++) if (b[i] < 0x30 || b[i] > 0x39) return false;
  return true;
}

/** True for a field name of printable ASCII, 1 to 1000 bytes: checkField would pass it. */
function plainField(b: Buffer, s: number, e: number): boolean {
  if (e <= s || e - s > 1000) return false;
  for (let i = s; i < e; i++) if (b[i] < 0x20 || b[i] > 0x7e) return false;
  return true;
}

/** Copy `src[s, e)` to `dst` at `o`; returns the offset after it. Short runs in a loop (no view allocated). */
function copyBytes(src: Buffer, s: number, e: number, dst: Buffer, o: number): number {
  if (e - s > 64) return o + src.copy(dst, o, s, e);
  while (s < e) dst[o++] = src[s++];
  return o;
}

/** Write a whole buffer to a file descriptor. */
function writeAll(fd: number, b: Buffer, length: number): void {
  for (let done = 0; done < length; ) done += fs.writeSync(fd, b, done, length - done);
}

const FLUSH_BYTES = 1 << 20;

/**
 * The append stream of batch mode: records are placed straight into one
 * buffer (room for 1 MiB plus a largest record), written to the segment of
 * their day every MiB. Opening a segment closes a torn tail with CAN RS LF as
 * SegmentWriter does. fsync: one in the background after each write (writing
 * goes on meanwhile), a synchronous one when a segment ends and at close.
 */
class BatchAppender {
  readonly buffer = Buffer.allocUnsafe(FLUSH_BYTES + MAX_RECORD_BYTES + 64);
  private offset = 0;
  private fd: number | undefined;
  private segment: string | undefined;
  /** bytes written since the last fsync started */
  private unsynced = 0;
  private inflight: Promise<void> | undefined;
  /** segments closed once the fsync running on them is done */
  private closing: Promise<void>[] = [];
  private failure: Error | undefined;

  constructor(private readonly wal: string) {}

  /** Start a record of `size` bytes for `segment`: the offset in `buffer` to write it at. */
  begin(segment: string, size: number): number {
    if (segment !== this.segment) {
      this.endSegment();
      this.open(segment);
    }
    if (this.offset + size > this.buffer.length) this.write();
    return this.offset;
  }

  /** End a record: `offset` is just past it. */
  end(offset: number): void {
    this.offset = offset;
    if (offset >= FLUSH_BYTES) {
      this.write();
      this.startFsync();
    }
  }

  private write(): void {
    if (this.offset === 0) return;
    writeAll(this.fd!, this.buffer, this.offset);
    this.unsynced += this.offset;
    this.offset = 0;
  }

  private startFsync(): void {
    if (this.inflight || this.unsynced === 0) return;
    const fd = this.fd!;
    this.unsynced = 0;
    const done: Promise<void> = new Promise((resolve) =>
      fs.fsync(fd, (err) => {
        if (err) this.failure ??= err;
        if (this.inflight === done) this.inflight = undefined;
        resolve();
      }),
    );
    this.inflight = done;
  }

  private open(segment: string): void {
    this.fd = openForAppend(this.wal, segment);
    this.segment = segment;
  }

  /** Write what is buffered, fsync and close the current segment (after an fsync running on it). */
  private endSegment(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.write();
    if (this.unsynced > 0) fs.fsyncSync(fd);
    this.unsynced = 0;
    this.fd = undefined;
    this.segment = undefined;
    const running = this.inflight;
    this.inflight = undefined;
    if (!running) fs.closeSync(fd);
    else
      this.closing.push(
        running.then(() => {
          try {
            fs.closeSync(fd);
          } catch (err) {
            this.failure ??= err as Error;
          }
        }),
      );
  }

  /** Write what is buffered, wait for the fsyncs, fsync what they did not cover, close. */
  async close(): Promise<void> {
    const fd = this.fd;
    try {
      if (fd !== undefined) {
        this.write();
        if (this.inflight) await this.inflight;
        if (this.unsynced > 0) fs.fsyncSync(fd);
        this.unsynced = 0;
      }
    } finally {
      if (this.inflight) await this.inflight;
      if (fd !== undefined) fs.closeSync(fd);
      this.fd = undefined;
      this.segment = undefined;
      await Promise.all(this.closing);
    }
    if (this.failure) throw this.failure;
  }
}
