/**
 * The received-record store: `.walnut/gossip/<YYYYMMDD>_<origin>.usv`.
 *
 * A gossip file is a byte-exact copy of a piece of its origin's segment
 * `wal/<same name>` on the origin machine: origin bytes [base, base + length),
 * where `base` is 0 unless this machine already held the start of the segment
 * in `wal/` (brought by pull) when the file was created. Bytes are placed by
 * their origin offset, so a record that arrives twice (directly, relayed by a
 * peer, or also by pull) is stored once: an overlap is compared byte for byte
 * (hence by record hash) with what is held, and a difference is a divergence.
 * Out-of-order pieces wait in memory until the bytes before them arrive; only
 * whole, well-formed records are appended, one write per record. Files only
 * grow; a file whose records `wal/<same name>` holds too is deleted whole once
 * the origin has moved on to a later segment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { CAN, MAX_RECORD_BYTES, checkField, checkTarget, isSystemTarget, parseRecord, splitRecords, type JournalRecord } from '../../formats/usv.js';
import { listSegmentsIn, scanSegment } from '../journal.js';
import { fsyncDir } from '../fsutil.js';
import type { Repo } from '../repo.js';
import { segmentOrigin, type SummaryEntry } from './protocol.js';

export const GOSSIP_DIR = 'gossip';

/** The gossip folder of a repository. */
export function gossipDir(repo: Pick<Repo, 'dir'>): string {
  return path.join(repo.dir, GOSSIP_DIR);
}

interface SegState {
  name: string;
  origin: string;
  walLen: number;
  walCount: number;
  /** origin offset of the gossip file's first byte; undefined: no gossip file */
  base: number | undefined;
  gLen: number;
  gCount: number;
  /** records of the gossip file beyond `walLen` */
  beyond: number;
  pending: Map<number, Buffer>;
  pendingBytes: number;
  blockedUntil: number;
}

export type ReceiveStatus = 'appended' | 'duplicate' | 'buffered' | 'invalid' | 'divergent' | 'full' | 'blocked';

export interface ReceiveResult {
  status: ReceiveStatus;
  /** records appended by this call, in order */
  records: JournalRecord[];
  /** bytes held contiguously from the segment's start after the call */
  held: number;
  /** true when bytes before the received ones are missing */
  gap: boolean;
  /** what was wrong, for invalid and divergent */
  detail?: string;
}

/**
 * Per-segment view of what this machine holds (wal/ plus gossip/), with the
 * append path for received bytes and the read path for serving requests.
 */
export class GossipStore {
  private readonly segs = new Map<string, SegState>();
  private readonly fds = new Map<string, number>();
  private readonly dir: string;
  private dirty = new Set<number>();
  private totalPending = 0;

  /**
   * @param options.repo - the repository
   * @param options.bases - persisted gossip file bases (origin offset of their first byte)
   * @param options.maxPendingBytes - memory for out-of-order pieces, all segments together
   * @param options.now - the clock, for blocking a segment with invalid content for a while
   */
  constructor(
    private readonly options: { repo: Repo; bases?: Record<string, number>; maxPendingBytes?: number; now?: () => number },
  ) {
    this.dir = gossipDir(options.repo);
  }

  private get repo(): Repo {
    return this.options.repo;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The gossip file bases, to persist. */
  bases(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.segs.values()) if (s.base !== undefined) out[s.name] = s.base;
    for (const [k, v] of Object.entries(this.options.bases ?? {})) if (!this.segs.has(k)) out[k] = v;
    return out;
  }

  private walFile(name: string): string {
    return path.join(this.repo.wal, name);
  }

  private gossipFile(name: string): string {
    return path.join(this.dir, name);
  }

  /** The state of a segment, loaded from disk on first use. */
  private get(name: string): SegState {
    let s = this.segs.get(name);
    if (s) return s;
    const origin = segmentOrigin(name);
    if (!origin) throw new Error(`not a segment name: ${name}`);
    s = { name, origin, walLen: 0, walCount: 0, base: undefined, gLen: 0, gCount: 0, beyond: 0, pending: new Map(), pendingBytes: 0, blockedUntil: 0 };
    const w = countRecords(this.walFile(name), 0);
    s.walLen = w.complete;
    s.walCount = w.count;
    const gfile = this.gossipFile(name);
    if (fs.existsSync(gfile)) {
      const g = countRecords(gfile, 0);
      const size = fs.statSync(gfile).size;
      if (size > g.complete) fs.truncateSync(gfile, g.complete); // a torn tail: never a record
      s.gLen = g.complete;
      s.gCount = g.count;
      s.base = this.options.bases?.[name] ?? inferBase(this.walFile(name), gfile, s.walLen);
    }
    this.segs.set(name, s);
    this.recountBeyond(s);
    return s;
  }

  private recountBeyond(s: SegState): void {
    if (s.base === undefined || s.base + s.gLen <= s.walLen) {
      s.beyond = 0;
      return;
    }
    if (s.walLen <= s.base) {
      s.beyond = s.gCount;
      return;
    }
    s.beyond = countRecords(this.gossipFile(s.name), s.walLen - s.base).count;
  }

  /** Origin offset of the first out-of-order piece waiting above the held end, if any. */
  nextBuffered(name: string): number | undefined {
    const s = this.segs.get(name);
    if (!s || s.pending.size === 0) return undefined;
    const held = heldOf(s);
    let best: number | undefined;
    for (const off of s.pending.keys()) if (off > held && (best === undefined || off < best)) best = off;
    return best;
  }

  /** True when the segment's state is in memory. */
  isLoaded(name: string): boolean {
    return this.segs.has(name);
  }

  /** Bytes of a segment held contiguously from its start (wal/ and gossip/ together). */
  held(name: string): number {
    return heldOf(this.get(name));
  }

  /** Records in those bytes. */
  count(name: string): number {
    const s = this.get(name);
    return s.walCount + (s.base !== undefined && s.base + s.gLen > s.walLen ? s.beyond : 0);
  }

  /** Bytes of the segment in `wal/` (complete records). */
  walLength(name: string): number {
    return this.get(name).walLen;
  }

  /**
   * Take note that `wal/<name>` may have grown (own append, pull); rescans only new bytes.
   * @returns the new `wal/` length
   */
  refreshWal(name: string): number {
    const s = this.segs.get(name);
    if (!s) return this.get(name).walLen;
    let size = 0;
    try {
      size = fs.statSync(this.walFile(name)).size;
    } catch {
      size = 0;
    }
    if (size < s.walLen) {
      const w = countRecords(this.walFile(name), 0);
      s.walLen = w.complete;
      s.walCount = w.count;
    } else if (size > s.walLen) {
      const w = countRecords(this.walFile(name), s.walLen);
      s.walLen = w.complete;
      s.walCount += w.count;
    } else return s.walLen;
    this.recountBeyond(s);
    return s.walLen;
  }

  /** Every segment this machine has in wal/ or gossip/, by name. */
  knownSegments(): string[] {
    const names = new Set<string>();
    for (const seg of listSegmentsIn(this.repo.wal, this.repo.root)) if (segmentOrigin(seg.name)) names.add(seg.name);
    for (const seg of listSegmentsIn(this.dir, this.repo.root)) if (segmentOrigin(seg.name)) names.add(seg.name);
    for (const n of this.segs.keys()) names.add(n);
    return [...names].sort();
  }

  /**
   * What this machine holds of the recent segments of every origin: per
   * origin, its segments of the newest day held and the day before.
   */
  summary(): SummaryEntry[] {
    const byOrigin = new Map<string, string[]>();
    for (const name of this.knownSegments()) {
      const origin = segmentOrigin(name)!;
      const list = byOrigin.get(origin) ?? [];
      list.push(name);
      byOrigin.set(origin, list);
    }
    const out: SummaryEntry[] = [];
    for (const names of byOrigin.values()) {
      const newest = names.map((n) => n.slice(0, 8)).sort().pop()!;
      const floor = previousDay(newest);
      for (const name of names) {
        if (name.slice(0, 8) < floor) continue;
        const length = this.held(name);
        if (length > 0) out.push({ segment: name, length, count: this.count(name) });
      }
    }
    return out;
  }

  /**
   * Read held bytes of a segment (for serving a request or comparing).
   * @returns bytes [from, min(to, held)); empty when nothing is held there
   */
  read(name: string, from: number, to: number): Buffer {
    const s = this.get(name);
    const end = Math.min(to, heldOf(s));
    if (from >= end) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let pos = from;
    if (pos < s.walLen) {
      const stop = Math.min(end, s.walLen);
      parts.push(readBytes(this.walFile(name), pos, stop - pos));
      pos = stop;
    }
    if (pos < end && s.base !== undefined && pos >= s.base) {
      parts.push(readBytes(this.gossipFile(name), pos - s.base, end - pos));
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /**
   * Take received bytes of an origin segment at an origin offset.
   *
   * @param name - the segment name (its origin is the node in the name)
   * @param offset - origin offset of `bytes[0]`
   * @param bytes - segment bytes (whole records or pieces of one)
   * @param whole - the bytes are whole records: all are checked first, and
   *   nothing is kept when one of them is not a valid record of the segment
   * @returns what happened, with the records appended
   */
  receive(name: string, offset: number, bytes: Buffer, whole = false): ReceiveResult {
    const s = this.get(name);
    let held = heldOf(s);
    if (whole) {
      const { records: raws, used } = splitRecords(bytes, offset, true);
      if (used !== bytes.length) return { status: 'invalid', records: [], held, gap: false, detail: `'${name}' at byte ${offset + used}: data does not end with a record terminator` };
      for (const raw of raws) {
        const v = validate(raw.bytes, s.origin);
        if (typeof v === 'string') return { status: 'invalid', records: [], held, gap: false, detail: `'${name}' at byte ${raw.start}: ${v}` };
      }
    }
    const end = offset + bytes.length;
    if (offset < held) {
      const overlap = Math.min(end, held);
      const mine = this.read(name, offset, overlap);
      if (!mine.equals(bytes.subarray(0, overlap - offset))) {
        return { status: 'divergent', records: [], held, gap: false, detail: `bytes ${offset}..${overlap} of '${name}' differ from the copy held here` };
      }
      if (end <= held) return { status: 'duplicate', records: [], held, gap: false };
      bytes = bytes.subarray(held - offset);
      offset = held;
    }
    if (s.blockedUntil > this.now()) return { status: 'blocked', records: [], held, gap: false };
    const limit = this.options.maxPendingBytes ?? 8 * MAX_RECORD_BYTES;
    const prev = s.pending.get(offset);
    if (!prev || prev.length < bytes.length) {
      if (this.totalPending + bytes.length - (prev?.length ?? 0) > limit) return { status: 'full', records: [], held, gap: offset > held };
      s.pending.set(offset, Buffer.from(bytes));
      s.pendingBytes += bytes.length - (prev?.length ?? 0);
      this.totalPending += bytes.length - (prev?.length ?? 0);
    }
    if (offset > held && ![...s.pending.keys()].some((off) => off <= held)) return { status: 'buffered', records: [], held, gap: true };
    const r = this.assemble(s);
    held = heldOf(s);
    return { ...r, held, gap: s.pending.size > 0 && Math.min(...s.pending.keys()) > held };
  }

  /** Append what has become contiguous at the held end. */
  private assemble(s: SegState): { status: ReceiveStatus; records: JournalRecord[]; detail?: string } {
    const held = heldOf(s);
    const parts: Buffer[] = [];
    let cursor = held;
    for (;;) {
      let best: [number, Buffer] | undefined;
      for (const [off, buf] of s.pending) {
        if (off <= cursor && off + buf.length > cursor && (!best || off + buf.length > best[0] + best[1].length)) best = [off, buf];
      }
      if (!best) break;
      parts.push(best[1].subarray(cursor - best[0]));
      cursor = best[0] + best[1].length;
    }
    // Drop every piece that is now below the cursor (consumed or covered).
    for (const [off, buf] of [...s.pending]) {
      if (off + buf.length <= cursor || off < cursor) this.dropPending(s, off);
    }
    if (parts.length === 0) return { status: 'buffered', records: [] };
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const records: JournalRecord[] = [];
    const pieces: Buffer[] = [];
    // A newline after a terminator belongs to the record before it, even
    // when it arrives in a later piece.
    const lead = held > 0 && data[0] === 0x0a ? 1 : 0;
    if (lead) pieces.push(data.subarray(0, 1));
    const split = splitRecords(data.subarray(lead), held + lead, true);
    const raws = split.records;
    const used = split.used + lead;
    let bad: string | undefined;
    for (const raw of raws) {
      const piece = data.subarray(raw.start - held, raw.end - held);
      const v = validate(raw.bytes, s.origin);
      if (typeof v === 'string') {
        bad = `'${s.name}' at byte ${raw.start}: ${v}`;
        break;
      }
      if (v) records.push(v);
      pieces.push(piece);
    }
    if (pieces.length > 0) this.append(s, pieces, records.length);
    if (bad) {
      for (const off of [...s.pending.keys()]) this.dropPending(s, off);
      s.blockedUntil = this.now() + 60_000;
      return { status: 'invalid', records, detail: bad };
    }
    const rest = data.subarray(used);
    if (rest.length > 0) {
      if (rest.length > MAX_RECORD_BYTES + 8) {
        for (const off of [...s.pending.keys()]) this.dropPending(s, off);
        s.blockedUntil = this.now() + 60_000;
        return { status: 'invalid', records, detail: `'${s.name}' at byte ${held + used}: record larger than 1 MiB` };
      }
      s.pending.set(held + used, Buffer.from(rest));
      s.pendingBytes += rest.length;
      this.totalPending += rest.length;
    }
    return { status: pieces.length > 0 ? 'appended' : 'buffered', records };
  }

  private dropPending(s: SegState, off: number): void {
    const b = s.pending.get(off);
    if (!b) return;
    s.pending.delete(off);
    s.pendingBytes -= b.length;
    this.totalPending -= b.length;
  }

  /** Append whole records at the held end of a segment's gossip file. */
  private append(s: SegState, pieces: Buffer[], count: number): void {
    const held = heldOf(s);
    const file = this.gossipFile(s.name);
    if (s.base === undefined) {
      fs.mkdirSync(this.dir, { recursive: true });
      s.base = held;
      s.gLen = 0;
      s.gCount = 0;
      s.beyond = 0;
      if (fs.existsSync(file)) fs.truncateSync(file, 0); // a stray file no state knew about
    } else if (s.base + s.gLen < held) {
      // wal/ (pull) got ahead of the gossip file: extend the copy from wal/ so it stays contiguous.
      const gap = readBytes(this.walFile(s.name), s.base + s.gLen, held - s.base - s.gLen);
      this.write(s.name, file, [gap]);
      s.gLen += gap.length;
      s.gCount += countIn(gap, s.origin);
      s.beyond = 0;
    }
    this.write(s.name, file, pieces);
    for (const p of pieces) s.gLen += p.length;
    s.gCount += count;
    // Appends start at the held end, so they are always beyond wal/.
    if (s.base + s.gLen > s.walLen) s.beyond += count;
  }

  private write(name: string, file: string, pieces: Buffer[]): void {
    let fd = this.fds.get(name);
    if (fd === undefined) {
      fd = fs.openSync(file, 'a');
      this.fds.set(name, fd);
      if (this.fds.size > 64) {
        const [oldName, oldFd] = this.fds.entries().next().value as [string, number];
        fs.closeSync(oldFd);
        this.fds.delete(oldName);
        this.dirty.delete(oldFd);
      }
    }
    for (const p of pieces) fs.writeSync(fd, p);
    this.dirty.add(fd);
  }

  /** fsync the gossip files written since the last call. */
  sync(): void {
    for (const fd of this.dirty) {
      try {
        fs.fsyncSync(fd);
      } catch {
        /* closed meanwhile */
      }
    }
    this.dirty.clear();
  }

  /**
   * Delete the gossip file of a segment when `wal/` holds every byte of it
   * (compared byte for byte) and the segment is closed (the caller knows the
   * origin has moved on and `wal/` holds the segment's final length).
   * @returns true when the file was deleted
   */
  dropIfCovered(name: string): boolean {
    const s = this.get(name);
    this.refreshWal(name);
    if (s.base === undefined || s.walLen < s.base + s.gLen || s.pending.size > 0) return false;
    const file = this.gossipFile(name);
    if (!sameBytes(this.walFile(name), s.base, file, s.gLen)) return false;
    const fd = this.fds.get(name);
    if (fd !== undefined) {
      fs.closeSync(fd);
      this.fds.delete(name);
      this.dirty.delete(fd);
    }
    fs.rmSync(file, { force: true });
    fsyncDir(this.dir);
    s.base = undefined;
    s.gLen = 0;
    s.gCount = 0;
    s.beyond = 0;
    return true;
  }

  /** Segment names that have a gossip file. */
  gossipSegments(): string[] {
    return listSegmentsIn(this.dir, this.repo.root)
      .map((s) => s.name)
      .filter((n) => segmentOrigin(n));
  }

  /** Forget cached state of a segment (after it changed behind our back). */
  forget(name: string): void {
    const fd = this.fds.get(name);
    if (fd !== undefined) {
      fs.closeSync(fd);
      this.fds.delete(name);
      this.dirty.delete(fd);
    }
    const s = this.segs.get(name);
    if (s) this.totalPending -= s.pendingBytes;
    this.segs.delete(name);
  }

  /** Close open files (after syncing them). */
  close(): void {
    this.sync();
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

function heldOf(s: SegState): number {
  return s.base === undefined ? s.walLen : Math.max(s.walLen, s.base + s.gLen);
}

/**
 * Check one received record for its segment.
 * @returns the record, null for a piece readers skip (empty, closed torn record), or what is wrong
 */
function validate(bytes: Buffer, origin: string): JournalRecord | null | string {
  if (bytes.length === 0) return null;
  if (bytes.length > MAX_RECORD_BYTES) return 'record larger than 1 MiB';
  if (!isUtf8(bytes)) return 'record is not valid UTF-8';
  const text = bytes.toString('utf8');
  if (text.includes(CAN)) return null;
  try {
    const r = parseRecord(text);
    if (r.node !== origin) return `record of node '${r.node}' in a segment of '${origin}'`;
    if (!isSystemTarget(r.target)) checkTarget(r.target);
    checkField(r.field);
    return r;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Records (and the end of the last complete one) of a file from `start`. */
function countRecords(file: string, start: number): { complete: number; count: number } {
  let count = 0;
  if (!fs.existsSync(file)) return { complete: 0, count: 0 };
  const { complete } = scanSegment(file, { start }, () => count++);
  return { complete, count };
}

function countIn(buf: Buffer, origin: string): number {
  let n = 0;
  for (const raw of splitRecords(buf, 0, true).records) {
    const v = validate(raw.bytes, origin);
    if (v !== null && typeof v !== 'string') n++;
  }
  return n;
}

function readBytes(file: string, from: number, len: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(fd, buf, got, len - got, from + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

function sameBytes(a: string, aFrom: number, b: string, len: number): boolean {
  const step = 1 << 20;
  for (let pos = 0; pos < len; pos += step) {
    const n = Math.min(step, len - pos);
    if (!readBytes(a, aFrom + pos, n).equals(readBytes(b, pos, n))) return false;
  }
  return true;
}

/** Where a gossip file starts in its origin segment, when no state says (lost state). */
function inferBase(walFile: string, gossipFile: string, walLen: number): number {
  if (walLen === 0) return 0;
  const head = readBytes(gossipFile, 0, 4096);
  if (head.length === 0) return walLen;
  const wal = readBytes(walFile, 0, walLen);
  const at = wal.indexOf(head.subarray(0, Math.min(head.length, 512)));
  return at === -1 ? 0 : at;
}

function previousDay(day: string): string {
  const ms = Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8))) - 86_400_000;
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/**
 * Delete every gossip file whose records `wal/<same name>` holds too, when a
 * later segment of the same origin exists here (so the origin has moved on).
 * For use after pull when no gossip daemon runs (the daemon does the same by
 * itself, with what its peers told it about segment lengths).
 *
 * @param options.repo - the repository
 * @returns the names of the files deleted
 * @example dropCoveredGossip({ repo }) // ['20261120_pi-02.usv']
 */
export function dropCoveredGossip({ repo }: { repo: Repo }): string[] {
  const store = new GossipStore({ repo, bases: readBases(repo) });
  const names = store.knownSegments();
  const newest = new Map<string, string>();
  for (const n of names) {
    const o = segmentOrigin(n)!;
    if (!newest.has(o) || n > newest.get(o)!) newest.set(o, n);
  }
  const out: string[] = [];
  try {
    for (const n of store.gossipSegments()) {
      if (newest.get(segmentOrigin(n)!) === n) continue;
      if (store.dropIfCovered(n)) out.push(n);
    }
  } finally {
    store.close();
  }
  return out;
}

/** The gossip file bases persisted by the daemon (`.walnut/gossip-state.json`). */
export function readBases(repo: Repo): Record<string, number> {
  try {
    const st = JSON.parse(fs.readFileSync(path.join(repo.dir, 'gossip-state.json'), 'utf8')) as { bases?: Record<string, number> };
    return st.bases ?? {};
  } catch {
    return {};
  }
}

