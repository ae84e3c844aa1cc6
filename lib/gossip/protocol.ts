/**
 * The gossip datagram codec (normative description: formats/gossip.md).
 * Pure functions over bytes plus the replay window; no I/O.
 *
 * Every datagram is
 *
 *   magic "WG" · version 1 · type · sender node id · epoch · sequence · body · HMAC-SHA-256
 *
 * and is at most {@link MAX_DATAGRAM} bytes. The tag covers everything before
 * it; a datagram is accepted under any of the cluster keys (rotation), and
 * signed with the first.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SEGMENT_NAME } from '../journal.js';
import { FormatError } from '../errors.js';

/** The largest datagram walnut sends or accepts, in bytes (UDP payload). */
export const MAX_DATAGRAM = 1400;
export const TAG_BYTES = 32;
export const MAGIC = Buffer.from('WG', 'ascii');
export const PROTOCOL_VERSION = 1;
/** Largest offset a datagram can carry (48 bits). */
const MAX_OFFSET = 2 ** 48 - 1;

export const TYPE = { data: 1, heartbeat: 2, request: 3 } as const;
export type MessageType = keyof typeof TYPE;

/** What a node holds of one origin segment: bytes from its start and records in them. */
export interface SummaryEntry {
  segment: string;
  length: number;
  count: number;
}

/** A byte range of an origin segment; `total` is the segment's length at the sender. */
export interface DataMessage {
  type: 'data';
  segment: string;
  offset: number;
  total: number;
  /** true when `bytes` are whole records (false: a piece of a record larger than a datagram) */
  whole: boolean;
  bytes: Buffer;
}

/** What the sender holds; `reply` asks the receiver to answer with its own heartbeat. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  reply: boolean;
  entries: SummaryEntry[];
}

/** Ask for the bytes of `segment` from `from` (up to `to`, 0: as much as held). */
export interface RequestMessage {
  type: 'request';
  segment: string;
  from: number;
  to: number;
}

export type Message = DataMessage | HeartbeatMessage | RequestMessage;

/** The authenticated envelope of a message. */
export interface Envelope {
  node: string;
  epoch: number;
  seq: number;
}

export type Datagram = Envelope & { message: Message };

/** Why a datagram was dropped before its content was looked at. */
export type DecodeFailure = 'oversized' | 'malformed' | 'unauthenticated';

export type DecodeResult = { ok: true; datagram: Datagram; key: number } | { ok: false; reason: DecodeFailure; detail: string };

const NODE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Parse a cluster key: 64 hexadecimal digits (32 bytes).
 * @throws FormatError `EGOSSIPKEY`
 * @example parseKey('00'.repeat(32)).length // 32
 */
export function parseKey(text: string, name = 'gossip.key'): Buffer {
  const t = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(t)) {
    throw new FormatError('EGOSSIPKEY', `config ${name} is not a cluster key: expected 64 hexadecimal digits, got ${t.length} characters`, { key: name }, [
      "generate one with 'walnut gossip keygen' and copy it to every node of the cluster",
    ]);
  }
  return Buffer.from(t, 'hex');
}

/** A short public fingerprint of a key (8 hex digits), shown in status and mDNS. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('walnut-gossip-fingerprint\0').update(key).digest('hex').slice(0, 8);
}

/** Check that a segment name is a journal segment of a valid node; returns the node. */
export function segmentOrigin(segment: string): string | undefined {
  const m = SEGMENT_NAME.exec(segment);
  if (!m || !NODE_ID.test(m[2])) return undefined;
  return m[2];
}

class Writer {
  private buf = Buffer.alloc(MAX_DATAGRAM * 2);
  len = 0;
  u8(v: number) {
    this.buf[this.len++] = v;
  }
  u16(v: number) {
    this.buf.writeUInt16BE(v, this.len);
    this.len += 2;
  }
  u32(v: number) {
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
  }
  u48(v: number) {
    this.buf.writeUIntBE(v, this.len, 6);
    this.len += 6;
  }
  str(s: string) {
    const b = Buffer.from(s, 'latin1');
    this.u8(b.length);
    this.bytes(b);
  }
  bytes(b: Buffer) {
    if (this.len + b.length > this.buf.length) {
      const nb = Buffer.alloc(Math.max(this.buf.length * 2, this.len + b.length));
      this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer, private readonly end: number) {}
  need(n: number) {
    if (this.pos + n > this.end) throw new Error(`truncated at byte ${this.pos}`);
  }
  u8() {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16() {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u48() {
    this.need(6);
    const v = this.buf.readUIntBE(this.pos, 6);
    this.pos += 6;
    return v;
  }
  str() {
    const n = this.u8();
    this.need(n);
    const s = this.buf.toString('latin1', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return b;
  }
  get left() {
    return this.end - this.pos;
  }
}

function checkSegment(segment: string): void {
  if (segment.length > 255 || !segmentOrigin(segment)) throw new FormatError('EGOSSIPSEGMENT', `not a segment name: ${JSON.stringify(segment.slice(0, 80))}`, {});
}

function checkOffset(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_OFFSET) throw new FormatError('EGOSSIPOFFSET', `${what} ${n} is not an offset`, {});
}

/** Bytes of header, body header and tag around the data of a DATA datagram. */
export function dataOverhead(node: string, segment: string): number {
  return headerBytes(node) + 1 + Buffer.byteLength(segment, 'latin1') + 6 + 6 + 1 + TAG_BYTES;
}

function headerBytes(node: string): number {
  return 2 + 1 + 1 + 1 + Buffer.byteLength(node, 'latin1') + 4 + 4;
}

/** How many bytes of segment data fit in one DATA datagram. */
export function dataCapacity(node: string, segment: string): number {
  return MAX_DATAGRAM - dataOverhead(node, segment);
}

/** Bytes one summary entry takes in a heartbeat. */
export function entryBytes(e: SummaryEntry): number {
  return 1 + Buffer.byteLength(e.segment, 'latin1') + 6 + 4;
}

/**
 * Encode and sign one datagram.
 *
 * @param envelope - sender node id, epoch and sequence number
 * @param message - the body
 * @param key - the signing key (the first cluster key)
 * @returns the datagram, at most MAX_DATAGRAM bytes
 * @throws FormatError `EGOSSIPSIZE` when it would be larger; `EGOSSIPSEGMENT`, `EGOSSIPOFFSET`, `ENODEID` for bad fields
 * @example encodeDatagram({ node: 'pi-01', epoch: 1, seq: 1 }, { type: 'request', segment: '20261121_pi-02.usv', from: 0, to: 0 }, key)
 */
export function encodeDatagram(envelope: Envelope, message: Message, key: Buffer): Buffer {
  if (!NODE_ID.test(envelope.node)) throw new FormatError('ENODEID', `invalid node id ${JSON.stringify(envelope.node)}`, {});
  const w = new Writer();
  w.bytes(MAGIC);
  w.u8(PROTOCOL_VERSION);
  w.u8(TYPE[message.type]);
  w.str(envelope.node);
  w.u32(envelope.epoch);
  w.u32(envelope.seq);
  switch (message.type) {
    case 'data':
      checkSegment(message.segment);
      checkOffset(message.offset, 'offset');
      checkOffset(message.offset + message.bytes.length, 'end');
      checkOffset(message.total, 'total');
      w.str(message.segment);
      w.u48(message.offset);
      w.u48(Math.max(message.total, message.offset + message.bytes.length));
      w.u8(message.whole ? 1 : 0);
      w.bytes(message.bytes);
      break;
    case 'heartbeat':
      w.u8(message.reply ? 1 : 0);
      w.u16(message.entries.length);
      for (const e of message.entries) {
        checkSegment(e.segment);
        checkOffset(e.length, 'length');
        w.str(e.segment);
        w.u48(e.length);
        w.u32(Math.min(e.count, 0xffffffff));
      }
      break;
    case 'request':
      checkSegment(message.segment);
      checkOffset(message.from, 'from');
      checkOffset(message.to, 'to');
      w.str(message.segment);
      w.u48(message.from);
      w.u48(message.to);
      break;
  }
  const tag = createHmac('sha256', key).update(w.done()).digest();
  w.bytes(tag);
  const out = Buffer.from(w.done());
  if (out.length > MAX_DATAGRAM) throw new FormatError('EGOSSIPSIZE', `datagram would be ${out.length} bytes, more than ${MAX_DATAGRAM}`, { bytes: out.length });
  return out;
}

/**
 * Check and decode one received datagram. Never throws: any fault is a
 * `{ ok: false, reason }`. The size is checked first, then the framing,
 * then the tag under each accepted key, and only then the body.
 *
 * @param buf - the UDP payload
 * @param keys - the accepted cluster keys
 * @returns the datagram and the index of the key that verified it, or why it was dropped
 * @example const r = decodeDatagram(msg, keys); if (r.ok) handle(r.datagram)
 */
export function decodeDatagram(buf: Buffer, keys: Buffer[]): DecodeResult {
  if (buf.length > MAX_DATAGRAM) return { ok: false, reason: 'oversized', detail: `${buf.length} bytes` };
  if (buf.length < headerBytes('x') + TAG_BYTES) return { ok: false, reason: 'malformed', detail: `only ${buf.length} bytes` };
  if (buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1]) return { ok: false, reason: 'malformed', detail: 'bad magic' };
  if (buf[2] !== PROTOCOL_VERSION) return { ok: false, reason: 'malformed', detail: `version ${buf[2]}` };
  const end = buf.length - TAG_BYTES;
  let node: string;
  let epoch: number;
  let seq: number;
  let type: number;
  const r = new Reader(buf, end);
  try {
    r.pos = 3;
    type = r.u8();
    node = r.str();
    epoch = r.u32();
    seq = r.u32();
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  if (!NODE_ID.test(node)) return { ok: false, reason: 'malformed', detail: 'bad node id' };
  const tag = buf.subarray(end);
  let keyIndex = -1;
  for (let i = 0; i < keys.length; i++) {
    const want = createHmac('sha256', keys[i]).update(buf.subarray(0, end)).digest();
    if (timingSafeEqual(want, tag)) {
      keyIndex = i;
      break;
    }
  }
  if (keyIndex === -1) return { ok: false, reason: 'unauthenticated', detail: `from '${node}'` };
  let message: Message;
  try {
    switch (type) {
      case TYPE.data: {
        const segment = r.str();
        checkSegment(segment);
        const offset = r.u48();
        const total = r.u48();
        const flags = r.u8();
        if (flags > 1) throw new Error(`unknown data flags ${flags}`);
        const bytes = Buffer.from(r.rest());
        if (bytes.length === 0) throw new Error('empty data');
        if (total < offset + bytes.length || offset + bytes.length > MAX_OFFSET) throw new Error('total before end of data');
        message = { type: 'data', segment, offset, total, whole: flags === 1, bytes };
        break;
      }
      case TYPE.heartbeat: {
        const flags = r.u8();
        const n = r.u16();
        const entries: SummaryEntry[] = [];
        for (let i = 0; i < n; i++) {
          const segment = r.str();
          checkSegment(segment);
          entries.push({ segment, length: r.u48(), count: r.u32() });
        }
        message = { type: 'heartbeat', reply: (flags & 1) === 1, entries };
        break;
      }
      case TYPE.request: {
        const segment = r.str();
        checkSegment(segment);
        message = { type: 'request', segment, from: r.u48(), to: r.u48() };
        break;
      }
      default:
        throw new Error(`unknown type ${type}`);
    }
    if (r.left !== 0) throw new Error(`${r.left} bytes after the body`);
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  return { ok: true, datagram: { node, epoch, seq, message }, key: keyIndex };
}

/**
 * Split summary entries into as few heartbeat messages as fit in datagrams.
 * @example heartbeats('pi-01', entries, true).length // 1 for a small cluster
 */
export function heartbeats(node: string, entries: SummaryEntry[], reply: boolean): HeartbeatMessage[] {
  const room = MAX_DATAGRAM - headerBytes(node) - 1 - 2 - TAG_BYTES;
  const out: HeartbeatMessage[] = [];
  let cur: SummaryEntry[] = [];
  let used = 0;
  for (const e of entries) {
    const n = entryBytes(e);
    if (used + n > room && cur.length > 0) {
      out.push({ type: 'heartbeat', reply, entries: cur });
      cur = [];
      used = 0;
    }
    cur.push(e);
    used += n;
  }
  if (cur.length > 0 || out.length === 0) out.push({ type: 'heartbeat', reply, entries: cur });
  return out;
}

/** The replay state of one sender, as persisted between runs. */
export interface ReplayMark {
  epoch: number;
  seq: number;
}

/**
 * Replay protection: per sender, the newest epoch seen and a window of the
 * last {@link ReplayGuard.WINDOW} sequence numbers of that epoch. A datagram
 * of an older epoch, a sequence number below the window, or one already seen
 * is a replay. Epochs grow at every daemon start, so a restart of the sender
 * opens a new window; the receiver persists each sender's newest (epoch,
 * sequence) so its own restart does not reopen old ones.
 */
export class ReplayGuard {
  static readonly WINDOW = 1024;
  private readonly senders = new Map<string, { epoch: number; top: number; seen: Uint8Array }>();

  constructor(marks: Record<string, ReplayMark> = {}) {
    for (const [node, m] of Object.entries(marks)) {
      if (Number.isSafeInteger(m.epoch) && Number.isSafeInteger(m.seq)) this.senders.set(node, { epoch: m.epoch, top: m.seq, seen: this.full() });
    }
  }

  private full(): Uint8Array {
    return new Uint8Array(ReplayGuard.WINDOW).fill(1);
  }

  /**
   * Accept (and remember) a datagram's epoch and sequence number, or refuse it.
   * @returns true when the datagram is new
   */
  accept(node: string, epoch: number, seq: number): boolean {
    const s = this.senders.get(node);
    const W = ReplayGuard.WINDOW;
    if (!s || epoch > s.epoch) {
      const seen = new Uint8Array(W);
      seen[seq % W] = 1;
      this.senders.set(node, { epoch, top: seq, seen });
      return true;
    }
    if (epoch < s.epoch) return false;
    if (seq > s.top) {
      for (let q = Math.max(s.top + 1, seq - W + 1); q <= seq; q++) s.seen[q % W] = 0;
      s.top = seq;
      s.seen[seq % W] = 1;
      return true;
    }
    if (s.top - seq >= W) return false;
    if (s.seen[seq % W]) return false;
    s.seen[seq % W] = 1;
    return true;
  }

  /** The newest (epoch, sequence) of each sender, to persist. */
  marks(): Record<string, ReplayMark> {
    return Object.fromEntries([...this.senders].map(([n, s]) => [n, { epoch: s.epoch, seq: s.top }]));
  }
}
