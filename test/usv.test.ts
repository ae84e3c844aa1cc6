import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { parseRecord, encodeRecord, decodeValue, causalityCounter, recordHash, stampOf, splitRecords, checkTarget, checkField, checkNodeId, canonicalText, canonicalMs, timestampMs, textHash } from '../formats/usv.js';
import { scanSegment, type ReadIssue } from '../lib/journal.js';
import { entityFile } from '../lib/view.js';
import { FormatError } from '../lib/errors.js';
import { ROOT, tmpDir } from './helpers.js';

interface Vector {
  name: string;
  input: string;
  expected: Array<Record<string, unknown>>;
  issues: Array<{ code: string; offset: number }>;
}
const { vectors } = JSON.parse(fs.readFileSync(path.join(ROOT, 'formats', 'journal-vectors.json'), 'utf8')) as { vectors: Vector[] };

function readAll(text: string | Buffer, chunkSize?: number) {
  const file = path.join(tmpDir(), 'seg.usv');
  fs.writeFileSync(file, text);
  const records: Array<Record<string, unknown>> = [];
  const issues: ReadIssue[] = [];
  scanSegment(file, { rel: 'seg.usv', chunkSize }, ({ record }) => {
    const r: Record<string, unknown> = { timestamp: record.timestamp, node: record.node, target: record.target, field: record.field, value: decodeValue(record.value), counter: causalityCounter(record.causality), format: record.format };
    if (record.campaign !== undefined) r.campaign = record.campaign;
    if (record.environment !== undefined) r.environment = record.environment;
    records.push(r);
  }, (i) => issues.push(i));
  return { records, issues };
}

for (const v of vectors) {
  test(`vector: ${v.name}`, () => {
    for (const chunkSize of [1 << 20, 7]) {
      const { records, issues } = readAll(v.input, chunkSize);
      assert.equal(records, v.expected, `records (chunk ${chunkSize})`);
      assert.equal(issues.map((i) => ({ code: i.code, offset: i.offset })), v.issues, `issues (chunk ${chunkSize})`);
    }
  });
}

test('encode then parse round-trips', () => {
  const rec = { timestamp: '2026-11-21T10:00:00.123Z', node: 'pi-01', target: 'companies/acme', field: 'notes', value: JSON.stringify('line 1\nline 2 \u001f'), causality: 'hlc:7' };
  const text = encodeRecord(rec);
  assert.ok(text.endsWith('\u001e\n'));
  assert.not.ok(text.slice(0, -2).includes('\n'), 'JSON escapes newlines, so a record is one line');
  const parsed = parseRecord(text.slice(0, -2));
  assert.equal(parsed, { ...rec, format: 1 });
  assert.is(decodeValue(parsed.value), 'line 1\nline 2 \u001f');
});

test('record hash ignores the separator style', () => {
  const a = parseRecord('2026-11-21T10:00:00.000Z\u001fhub\u001fpeople/jane\u001fname\u001f"Jane"\u001fhlc:1');
  const b = parseRecord('2026-11-21T10:00:00.000Z\u241fhub\u241fpeople/jane\u241fname\u241f"Jane"\u241fhlc:1');
  assert.is(recordHash(a), recordHash(b));
  assert.is(canonicalText(a), canonicalText(b));
  assert.is(recordHash(a).length, 16);
});

test('the record hash from a record\'s text is the hash of its canonical text', () => {
  const texts = [
    '2026-11-21T10:00:00.000Z\u001fpi-01\u001fcompanies/acme\u001fname\u001f"Acme \u00e9\u4e2d\u{1f600}"\u001fhlc:3',
    '2026-11-21T10:00:00.000Z\u001fpi-01\u001fspring\u001fcompanies/acme\u001fname\u001fAcme\u001fhlc:0',
    '2026-11-21T10:00:00.000Z\u001fpi-01\u001fspring\u001fprod\u001fcompanies/acme\u001fname\u001fAcme\u001f',
    '2026-11-21T10:00:00+00:00\u001fpi-01\u001fcompanies/acme\u001fname\u001f\u001fx',
  ];
  for (const t of texts) assert.is(textHash(t), recordHash(parseRecord(t)), t);
  const visible = '2026-11-21T10:00:00.000Z\u241fhub\u241fpeople/jane\u241fname\u241f"Jane"\u241fhlc:1';
  assert.is(textHash(visible), undefined, 'visible separators: the canonical text differs from the text');
  assert.is(recordHash(parseRecord(visible)), textHash(visible.replace(/\u241f/g, '\u001f')));
});

test('stamps order by time, counter, node, hash', () => {
  const mk = (ts: string, node: string, c: number, value = '1') => parseRecord(`${ts}\u001f${node}\u001fa/b\u001ff\u001f${value}\u001fhlc:${c}`);
  const order = [
    mk('2026-11-21T10:00:00.000Z', 'zz', 5),
    mk('2026-11-21T10:00:00.000Z', 'aa', 6),
    mk('2026-11-21T10:00:00.000Z', 'pi', 7),
    mk('2026-11-21T10:00:00.000Z', 'pi-01', 7),
    mk('2026-11-21T10:00:00.001Z', 'aa', 0),
    mk('2026-11-22T00:00:00.000Z', 'aa', 0),
  ];
  const stamps = order.map((r) => stampOf(r));
  assert.equal([...stamps].sort(), stamps);
  const x = mk('2026-11-21T10:00:00.000Z', 'aa', 6, '2');
  assert.is.not(stampOf(x), stamps[1], 'equal time, counter and node: the hash decides');
});

test('timestamps in walnut\'s own form are read from their digits as Date.parse reads them', () => {
  const iso = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number) =>
    `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}Z`;
  const cases = [
    '2026-11-21T10:00:00.000Z',
    '1970-01-01T00:00:00.000Z',
    '2024-02-29T23:59:59.999Z',
    '2025-02-29T00:00:00.000Z', // not a day: Date.parse takes it as March 1
    '2026-02-31T12:00:00.000Z',
    '2026-04-31T00:00:00.000Z',
    '9999-12-31T23:59:59.999Z',
    '0100-01-01T00:00:00.000Z',
    '0099-12-31T00:00:00.000Z', // left to Date.parse (Date.UTC would read 1999)
    '0050-01-01T00:00:00.000Z',
    '2026-11-21T24:00:00.000Z', // left to Date.parse
    '2026-00-01T00:00:00.000Z',
    '2026-13-01T00:00:00.000Z',
    '2026-11-00T00:00:00.000Z',
    '2026-11-32T00:00:00.000Z',
    '2026-11-21T23:60:00.000Z',
    '2026-11-21T23:59:60.000Z',
    '2026-11-21T10:00:00.00aZ',
    '2026-11-21T10:00:00.000z',
    '2026-11-21 10:00:00.000Z',
    '2026-11-21T10:00:00.000+00:00',
    '2026-11-21T10:00:00Z',
    '2026-11-21T10:00:00.0000Z',
    '+2026-11-21T10:00:00.000Z',
    '2026-1-21T10:00:00.000Z',
  ];
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  for (let i = 0; i < 20000; i++) cases.push(iso(rand(10000), rand(14), rand(33), rand(26), rand(62), rand(62), rand(1000)));
  let own = 0;
  for (const t of cases) {
    const want = Date.parse(t);
    const fast = canonicalMs(t);
    if (!Number.isNaN(fast)) {
      own++;
      assert.is(fast, want, t);
    }
    assert.ok(Object.is(timestampMs(t), want), t); // NaN for NaN
  }
  assert.ok(own > 10000, `most are read from their digits (${own})`);
  assert.ok(Number.isNaN(canonicalMs('0099-12-31T00:00:00.000Z')));
  assert.ok(Number.isNaN(canonicalMs('2026-11-21T24:00:00.000Z')));
});

test('a stamp\'s time and counter are base-36 numerals of nine and six digits', () => {
  const mk = (ts: string, c: number) => parseRecord(`${ts}\u001fpi\u001fa/b\u001ff\u001f1\u001fhlc:${c}`);
  const times = ['1970-01-01T00:00:00.000Z', '1970-01-01T00:27:59.615Z', '1970-01-01T00:27:59.616Z', '2026-11-21T10:00:00.000Z', '2026-11-21T10:27:59.999Z', '5138-11-16T09:46:39.999Z', '5138-11-16T09:46:40.000Z', '9999-12-31T23:59:59.999Z'];
  for (let i = 0; i < 2000; i++) times.push(new Date(1.6e12 + i * 977_531).toISOString());
  for (const ts of times) {
    for (const c of [0, 1, 35, 36, 2 ** 31, 36 ** 6]) {
      const ms = Date.parse(ts);
      const want = ms.toString(36).padStart(9, '0') + ' ' + c.toString(36).padStart(6, '0') + ' pi ';
      assert.is(stampOf(mk(ts, c), 'h').slice(0, -1), want, `${ts} hlc:${c}`);
    }
  }
});

test('value decoding: JSON, else raw string', () => {
  assert.is(decodeValue('42'), 42);
  assert.is(decodeValue('"42"'), '42');
  assert.is(decodeValue('Berlin'), 'Berlin');
  assert.is(decodeValue('{broken'), '{broken');
  assert.is(decodeValue('null'), null);
  assert.is(decodeValue('true'), true);
  assert.is(decodeValue(''), '');
  assert.is(decodeValue('2026-11-21'), '2026-11-21');
});

test('splitRecords waits for a possible newline at a chunk end', () => {
  const buf = Buffer.from('a\u001e');
  assert.equal(splitRecords(buf, 0, false).records.length, 0);
  assert.equal(splitRecords(buf, 0, true).records.map((r) => [r.start, r.end]), [[0, 2]]);
});

test('invalid UTF-8 and binary garbage are reported, the rest is read', () => {
  const good = '2026-11-21T10:00:00.000Z\u001fpi-01\u001fcompanies/acme\u001fname\u001f"A"\u001fhlc:0\u001e\n';
  const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x1e, 0x0a]);
  const { records, issues } = readAll(Buffer.concat([Buffer.from(good), garbage, Buffer.from(good)]));
  assert.is(records.length, 2);
  assert.equal(issues.map((i) => [i.code, i.offset]), [['EUTF8', Buffer.byteLength(good)]]);
});

test('a record over 1 MiB is skipped with an error, the next one is read', () => {
  const good = '2026-11-21T10:00:00.000Z\u001fpi-01\u001fcompanies/acme\u001fname\u001f"A"\u001fhlc:0\u001e\n';
  const huge = 'x'.repeat(1024 * 1024 + 100) + '\u001e\n';
  for (const chunkSize of [1 << 20, 65536]) {
    const { records, issues } = readAll(good + huge + good, chunkSize);
    assert.is(records.length, 2, `chunk ${chunkSize}`);
    assert.equal(issues.map((i) => i.code), ['ETOOLARGE']);
  }
});

test('names: path tricks and control characters are refused', () => {
  for (const bad of ['../x', 'a/..', 'a/b/c', 'a', '/a', 'a/', 'a/.hidden', 'a/b\u0000', 'a/b\n', 'a/b c', 'a\\b/c', '']) {
    assert.throws(() => checkTarget(bad), (e: unknown) => e instanceof FormatError && e.code === 'ETARGET', bad);
  }
  assert.equal(checkTarget('companies/acme-corp'), { collection: 'companies', slug: 'acme-corp' });
  for (const bad of ['', 'a\u001fb', 'a\nb', 'a\u241eb']) assert.throws(() => checkField(bad), (e: unknown) => e instanceof FormatError && e.code === 'EFIELD');
  for (const bad of ['', 'Pi', '-pi', 'pi_01', 'a'.repeat(64)]) assert.throws(() => checkNodeId(bad));
  assert.is(checkNodeId('pi-01'), 'pi-01');
});

test('entity files: the path joined under any root; path tricks refused', () => {
  for (const root of ['/data/crm', '/data/crm/', '/', '/data/./crm', '/data/x/../crm', '/data/crm', 'relative/dir']) {
    for (const target of ['companies/acme', 'people/' + 'j'.repeat(150), 'c/\u00e9t\u00e9']) {
      assert.is(entityFile({ root }, target), path.join(root, target, '_index.md'), `${root} ${target}`);
    }
    for (const bad of ['../x', 'a/..', 'a/b/c', 'a/.hidden', 'a/b c']) assert.throws(() => entityFile({ root }, bad), (e: unknown) => e instanceof FormatError && e.code === 'ETARGET', bad);
  }
});

test.run();
