/**
 * The USV journal record codec (see formats/journal.md). Pure functions over
 * strings and bytes: no I/O.
 */
import crypto from 'node:crypto';
import { FormatError, quote } from '../lib/errors.js';

export const US = '\x1f';
export const RS = '\x1e';
export const US_SYMBOL = '\u241f';
export const RS_SYMBOL = '\u241e';
/** CAN: closes a torn record so the next append starts a fresh one. */
export const CAN = '\x18';
export const RS_BYTE = 0x1e;
export const RS_SYMBOL_BYTES = Buffer.from(RS_SYMBOL, 'utf8');
export const MAX_RECORD_BYTES = 1024 * 1024;

/** One journal record as read or written. `value` is the raw unit text. */
export interface JournalRecord {
  timestamp: string;
  node: string;
  target: string;
  field: string;
  value: string;
  causality: string;
  campaign?: string;
  environment?: string;
  /** 1, 2 or 3: cocli's record versions, told apart by unit count. */
  format: 1 | 2 | 3;
}

export interface Where {
  file?: string;
  offset?: number;
}

const UNIT_COUNTS: Record<number, 1 | 2 | 3> = { 6: 1, 7: 2, 8: 3 };
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]00:?00)$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f\u241e\u241f\u2028\u2029]/;
const NODE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const NAME = /^[^\s/\\\x00-\x1f\x7f]+$/;

/**
 * Parse the text of one record (without its terminator).
 *
 * @param text - the units, separated by US or U+241F
 * @param where - file and byte offset, for the error message
 * @returns the record
 * @throws FormatError `EUNITS` for a wrong unit count, `ETIMESTAMP`, `ENAME`
 * @example parseRecord('2026-11-21T10:00:00.000Z\x1fpi-01\x1fcompanies/acme\x1fname\x1f"Acme"\x1fhlc:0')
 */
export function parseRecord(text: string, where: Where = {}): JournalRecord {
  const units = text.includes(US_SYMBOL) ? text.split(/[\x1f\u241f]/) : text.split(US);
  const format = UNIT_COUNTS[units.length];
  if (!format) {
    throw new FormatError('EUNITS', `record has ${units.length} unit${units.length === 1 ? '' : 's'}, expected 6, 7 or 8: ${quote(text.replace(/[\x1f\u241f]/g, '|'))}`, { ...where, units: units.length }, [
      'a record is timestamp, node_id, [campaign_name, [environment,]] target, field, value, causality',
    ]);
  }
  const timestamp = units[0];
  const node = units[1];
  // the target is the unit after the node, campaign and environment (as many as the format has)
  const t = format + 1;
  const target = units[t];
  const field = units[t + 1];
  // (timestampMs leaves lastCanonical for this timestamp: walnut's own form needs no regex)
  if (Number.isNaN(timestampMs(timestamp)) || (!lastCanonical && !ISO_UTC.test(timestamp))) {
    throw new FormatError('ETIMESTAMP', `record timestamp ${quote(timestamp)} is not ISO-8601 UTC`, { ...where }, ['expected a form like 2026-11-21T10:00:00.000Z']);
  }
  if (!node || CONTROL.test(node)) throw new FormatError('ENODE', `record node id ${quote(node)} is empty or has control characters`, { ...where });
  checkName('target', target, where);
  checkName('field', field, where);
  const record: JournalRecord = { timestamp, node, target, field, value: units[t + 2], causality: units[t + 3], format };
  if (format >= 2) record.campaign = units[2];
  if (format === 3) record.environment = units[3];
  return record;
}

function checkName(kind: 'target' | 'field', text: string, where: Where): void {
  if (text === '' || CONTROL.test(text)) {
    throw new FormatError('ENAME', `record ${kind} ${quote(text)} is empty or has control characters`, { ...where });
  }
}

/**
 * Encode a record as walnut writes it: V1 units, US between, RS and a newline after.
 *
 * @param record - timestamp, node, target, field, value (raw unit text), causality
 * @returns the record's text, terminator included
 * @example encodeRecord({ timestamp, node: 'pi-01', target: 'companies/acme', field: 'name', value: '"Acme"', causality: 'hlc:0' })
 */
export function encodeRecord(record: Pick<JournalRecord, 'timestamp' | 'node' | 'target' | 'field' | 'value' | 'causality'>): string {
  return record.timestamp + US + record.node + US + record.target + US + record.field + US + record.value + US + record.causality + RS + '\n';
}

/** The canonical units of a record (control separators, all units, no terminator). */
export function canonicalText(r: JournalRecord): string {
  if (r.format === 1) return r.timestamp + US + r.node + US + r.target + US + r.field + US + r.value + US + r.causality + RS;
  const units = [r.timestamp, r.node];
  if (r.format >= 2) units.push(r.campaign ?? '');
  if (r.format === 3) units.push(r.environment ?? '');
  units.push(r.target, r.field, r.value, r.causality);
  return units.join(US) + RS;
}

/**
 * The record hash: the first 16 hex digits of SHA-256 over the canonical text.
 * Equal on every machine that holds the record, whatever its separators.
 */
export function recordHash(r: JournalRecord): string {
  return crypto.hash('sha256', canonicalText(r), 'hex').slice(0, 16);
}

/**
 * The record hash of the record `parseRecord(text)` reads, from its text: a
 * text with control separators is its canonical text but for the RS (one
 * string less to build per record). Any other text: undefined.
 */
export function textHash(text: string): string | undefined {
  return text.includes(US_SYMBOL) ? undefined : crypto.hash('sha256', text + RS, 'hex').slice(0, 16);
}

/**
 * Decode a value unit: JSON when it parses as JSON, otherwise the raw string
 * (cocli writes scalars raw). JSON `null` means "delete the field".
 */
export function decodeValue(raw: string): unknown {
  const c = raw.charCodeAt(0);
  // Fast path: only text that could start a JSON document is tried.
  if (c === 0x22 || c === 0x7b || c === 0x5b || c === 0x2d || (c >= 0x30 && c <= 0x39) || raw === 'true' || raw === 'false' || raw === 'null') {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

/**
 * Encode a value as its JSON unit; refuses values with no JSON form. The
 * visible separators U+241F and U+241E are written as JSON escapes, so a value
 * can never be read as a separator.
 */
export function encodeValue(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new FormatError('EVALUE', `value has no JSON form`, {});
  return text.includes('\u241f') || text.includes('\u241e') ? text.replace(/\u241f/g, '\\u241f').replace(/\u241e/g, '\\u241e') : text;
}

/** The logical counter carried in `causality` (`hlc:<n>`); 0 for other forms. */
export function causalityCounter(causality: string): number {
  if (causality === 'hlc:0') return 0;
  if (causality.startsWith('hlc:')) {
    const n = Number(causality.slice(4));
    if (Number.isSafeInteger(n) && n >= 0) return n;
  }
  return 0;
}

/** Format the causality unit for a logical counter. */
export function encodeCausality(counter: number): string {
  return `hlc:${counter}`;
}

/**
 * A record's position in the total order of DESIGN.md as a string that sorts
 * the same way: (timestamp ms, logical counter, node id, record hash).
 */
export function stampOf(r: JournalRecord, hash = recordHash(r)): string {
  const ms = Math.max(0, timestampMs(r.timestamp));
  const counter = causalityCounter(r.causality);
  // one flat string (concatenating would build four)
  return [msDigits(ms), counter === 0 ? '000000' : base36(counter, 6), r.node, hash].join(' ');
}

const DIGITS36 = '0123456789abcdefghijklmnopqrstuvwxyz';
/** the two-digit base-36 numerals 00 … zz */
const PAIRS36 = Array.from({ length: 36 * 36 }, (_, i) => DIGITS36[Math.floor(i / 36)] + DIGITS36[i % 36]);
let lastHigh = -1;
let lastHighDigits = '';

/** `ms.toString(36).padStart(9, '0')`: the upper five digits change every 28 minutes, and are kept. */
function msDigits(ms: number): string {
  const high = Math.floor(ms / 1679616); // 36 ** 4
  if (high >= 60466176) return base36(ms, 9); // 36 ** 5: more than nine digits
  if (high !== lastHigh) {
    lastHigh = high;
    lastHighDigits = base36(high, 5);
  }
  const low = ms - high * 1679616;
  const upper = Math.floor(low / 1296);
  return lastHighDigits + PAIRS36[upper] + PAIRS36[low - upper * 1296];
}

/** A non-negative integer in base 36, padded with zeros to `width` digits. */
function base36(n: number, width: number): string {
  return n.toString(36).padStart(width, '0');
}

let lastTimestamp = '';
let lastMs = NaN;
/** the last timestamp is in walnut's own form (see `canonicalMs`) */
let lastCanonical = false;

/**
 * `Date.parse` of a record's timestamp, remembering the last one: reading a
 * record parses its timestamp three times (checking it, the clock, its
 * stamp), so two of them are free. Timestamps in walnut's own form are
 * computed from their digits (`canonicalMs`), the others by `Date.parse`.
 */
export function timestampMs(timestamp: string): number {
  if (timestamp !== lastTimestamp) {
    const ms = canonicalMs(timestamp);
    lastCanonical = !Number.isNaN(ms);
    lastMs = lastCanonical ? ms : Date.parse(timestamp);
    lastTimestamp = timestamp;
  }
  return lastMs;
}

/**
 * The time of a timestamp in walnut's own form, `YYYY-MM-DDTHH:MM:SS.sssZ`,
 * from its digits: what `Date.parse` gives for it, in a tenth of the time.
 * NaN for any other form, and for the values left to `Date.parse` (a year
 * before 100, which `Date.UTC` would take as 19xx; hour 24; a month or day
 * out of range). Days 29 to 31 of any month are taken as `Date.parse` takes
 * them (February 30 is March 1 or 2).
 */
export function canonicalMs(t: string): number {
  if (t.length !== 24 || t.charCodeAt(4) !== 0x2d || t.charCodeAt(7) !== 0x2d || t.charCodeAt(10) !== 0x54 || t.charCodeAt(13) !== 0x3a || t.charCodeAt(16) !== 0x3a || t.charCodeAt(19) !== 0x2e || t.charCodeAt(23) !== 0x5a) return NaN;
  const year = digits(t, 0, 4);
  const month = digits(t, 5, 2);
  const day = digits(t, 8, 2);
  const hour = digits(t, 11, 2);
  const minute = digits(t, 14, 2);
  const second = digits(t, 17, 2);
  const milli = digits(t, 20, 3);
  // a NaN (not a digit) fails every comparison
  if (!(year >= 100 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 59 && milli >= 0)) return NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, milli);
}

/** The decimal number of `n` digits at `t[at]`, or NaN when one is not a digit. */
function digits(t: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = t.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return v;
}

/** The milliseconds part of a stamp. */
export function stampMs(stamp: string): number {
  return parseInt(stamp.slice(0, 9), 36);
}

/** True for system records (`target` without a '/'), which never become entities. */
export function isSystemTarget(target: string): boolean {
  return !target.includes('/');
}

/**
 * Check a node id: `[a-z0-9][a-z0-9-]*`, at most 63 characters.
 * @throws FormatError `ENODEID`
 */
export function checkNodeId(node: string): string {
  if (!NODE_ID.test(node)) {
    throw new FormatError('ENODEID', `invalid node id ${quote(node)}`, { node }, ['a node id is lower-case letters, digits and dashes, starting with a letter or digit, e.g. pi-01']);
  }
  return node;
}

/**
 * Check an entity target `<collection>/<slug>` (or a system target) and a
 * field name for what may appear in a journal and on disk.
 * @throws FormatError `ETARGET`, `EFIELD`
 */
// Fast path: one regex for the common valid target; the detailed checks below
// run only to explain a refusal.
const PART = '[^\\s/\\\\\\x00-\\x1f\\x7f.\\u241e\\u241f\\u2028\\u2029][^\\s/\\\\\\x00-\\x1f\\x7f\\u241e\\u241f\\u2028\\u2029]*';
const VALID_TARGET = new RegExp(`^(${PART})/(${PART})$`);

/** True for a valid target of the usual shape (checkTarget passes it); false: ask checkTarget. */
export function isPlainTarget(target: string): boolean {
  return target.length <= 130 && VALID_TARGET.test(target);
}

export function checkTarget(target: string): { collection: string; slug: string } {
  const m = target.length <= 130 ? VALID_TARGET.exec(target) : null;
  if (m) return { collection: m[1], slug: m[2] };
  const parts = target.split('/');
  if (parts.length !== 2) {
    throw new FormatError('ETARGET', `invalid target ${quote(target)}: expected <collection>/<slug>`, { target }, ['e.g. companies/acme-corp']);
  }
  for (const part of parts) checkPathName(part, target);
  return { collection: parts[0], slug: parts[1] };
}

function checkPathName(part: string, target: string): void {
  if (part === '' || part === '.' || part === '..' || part.startsWith('.') || !NAME.test(part) || CONTROL.test(part) || Buffer.byteLength(part) > 200) {
    throw new FormatError('ETARGET', `invalid target ${quote(target)}: ${quote(part)} is not a valid collection or slug`, { target }, [
      'collections and slugs are non-empty, do not start with a dot, and have no separators, spaces or control characters',
    ]);
  }
}

/** @throws FormatError `EFIELD` for a field name with separators or control characters */
export function checkField(field: string): string {
  if (field === '' || CONTROL.test(field) || Buffer.byteLength(field) > 1000) {
    throw new FormatError('EFIELD', `invalid field name ${quote(field)}`, { field }, ['field names may not be empty nor contain separators, newlines or control characters']);
  }
  return field;
}

/** A piece of a segment between terminators, as found by {@link splitRecords}. */
export interface RawRecord {
  /** byte offset of the record's first byte */
  start: number;
  /** byte offset just past its terminator (and the newline after it) */
  end: number;
  /** record bytes without terminator */
  bytes: Buffer;
}

/**
 * Find complete records in a buffer. Terminators: RS or U+241E, each optionally
 * followed by one newline. Returns the records and how many bytes were used;
 * the rest (an unterminated tail) belongs to the next call.
 *
 * @param buf - bytes of a segment from `base`
 * @param base - the file offset of `buf[0]`
 * @param final - true at end of file: a terminator at the very end is complete
 */
export function splitRecords(buf: Buffer, base: number, final: boolean): { records: RawRecord[]; used: number } {
  const records: RawRecord[] = [];
  const used = eachRecord(buf, final, (start, cut, end) => records.push({ start: base + start, end: base + end, bytes: buf.subarray(start, cut) }));
  return { records, used };
}

/**
 * The complete records of a buffer as offsets into it, as {@link splitRecords}
 * finds them, without a view or an object per record: `fn(start, cut, end)`
 * for each, `buf[start, cut)` its bytes and `end` just past its terminator
 * (and newline). Returns how many bytes were used.
 */
export function eachRecord(buf: Buffer, final: boolean, fn: (start: number, cut: number, end: number) => void): number {
  let pos = 0;
  let nextRs = buf.indexOf(RS_BYTE, 0);
  let nextSym = buf.indexOf(RS_SYMBOL_BYTES, 0);
  while (pos < buf.length) {
    if (nextRs !== -1 && nextRs < pos) nextRs = buf.indexOf(RS_BYTE, pos);
    if (nextSym !== -1 && nextSym < pos) nextSym = buf.indexOf(RS_SYMBOL_BYTES, pos);
    let cut: number;
    let width: number;
    if (nextRs === -1 && nextSym === -1) break;
    if (nextSym === -1 || (nextRs !== -1 && nextRs < nextSym)) {
      cut = nextRs;
      width = 1;
    } else {
      cut = nextSym;
      width = 3;
    }
    let end = cut + width;
    if (end < buf.length) {
      if (buf[end] === 0x0a) end++;
    } else if (!final) {
      break; // a newline may still follow in the next chunk
    }
    fn(pos, cut, end);
    pos = end;
  }
  return pos;
}

/** True when the bytes end with a record terminator (RS or U+241E, optional newline). */
export function endsWithTerminator(tail: Buffer): boolean {
  let n = tail.length;
  if (n === 0) return true;
  if (tail[n - 1] === 0x0a) n--;
  if (n >= 1 && tail[n - 1] === RS_BYTE) return true;
  return n >= 3 && tail[n - 3] === 0xe2 && tail[n - 2] === 0x90 && tail[n - 1] === 0x9e;
}
