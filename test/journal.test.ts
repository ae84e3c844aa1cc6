/**
 * Journal segments (lib/journal.ts): the append stream (torn tails closed
 * with CAN RS LF, fsync policies, one segment per node per HLC day),
 * lastRecord, listing and chunked reading.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { SegmentWriter, lastRecord, listSegments, scanSegment, segmentName, SEGMENT_NAME, type ReadIssue } from '../lib/journal.js';
import { writeChanges } from '../lib/write.js';
import { initRepo } from '../lib/repo.js';
import { encodeRecord, type JournalRecord } from '../formats/usv.js';
import { FormatError } from '../lib/errors.js';
import { tmpDir } from './helpers.js';

const rec = (timestamp: string, field = 'f', value = '1', causality = 'hlc:0', node = 'pi-01'): Omit<JournalRecord, 'format'> => ({ timestamp, node, target: 'a/b', field, value, causality });
const T = '2026-11-21T10:00:00.000Z';

function wal(): string {
  return path.join(tmpDir(), 'wal');
}

function read(file: string) {
  const records: JournalRecord[] = [];
  const issues: ReadIssue[] = [];
  scanSegment(file, { rel: path.basename(file) }, (r) => records.push(r.record), (i) => issues.push(i));
  return { records, issues };
}

/** Count fsync calls made through the shared `fs` module object while `fn` runs. */
function countFsyncs(fn: () => void): number {
  const original = fs.fsyncSync;
  let n = 0;
  (fs as { fsyncSync: typeof fs.fsyncSync }).fsyncSync = (fd: number) => {
    n++;
    return original(fd);
  };
  try {
    fn();
  } finally {
    (fs as { fsyncSync: typeof fs.fsyncSync }).fsyncSync = original;
  }
  return n;
}

test('segment naming: wal/YYYYMMDD_<node>.usv by the UTC day of the HLC timestamp', () => {
  assert.is(segmentName('pi-01', Date.parse('2026-11-21T23:59:59.999Z')), '20261121_pi-01.usv');
  assert.is(segmentName('pi-01', Date.parse('2026-11-22T00:00:00.000Z')), '20261122_pi-01.usv');
  assert.is(segmentName('pi-01', Date.parse('2026-11-22T00:30:00.000+01:00')), '20261121_pi-01.usv');
  assert.is(segmentName('laptop', 0), '19700101_laptop.usv');
  assert.ok(SEGMENT_NAME.test('20261121_pi-01.usv'));
  for (const bad of ['2026112_pi-01.usv', '20261121-pi-01.usv', '20261121_pi-01.txt', '20261121_.usv', '.20261121_pi-01.usv']) assert.not.ok(SEGMENT_NAME.test(bad), bad);
});

test('the writer appends whole V1 records and picks the segment from each record\'s day', () => {
  const dir = wal();
  const w = new SegmentWriter(dir, 'never');
  w.append(rec('2026-11-21T23:59:59.999Z'));
  w.append(rec('2026-11-22T00:00:00.000Z'));
  w.append(rec('2026-11-22T00:00:00.000Z', 'g', '2', 'hlc:1'));
  w.close();
  assert.equal(fs.readdirSync(dir), ['20261121_pi-01.usv', '20261122_pi-01.usv']);
  assert.is(fs.readFileSync(path.join(dir, '20261122_pi-01.usv'), 'utf8'), encodeRecord(rec('2026-11-22T00:00:00.000Z')) + encodeRecord(rec('2026-11-22T00:00:00.000Z', 'g', '2', 'hlc:1')));
});

test('writeChanges on a node whose wall clock is in 1970 keeps writing to its newest segment (HLC day)', () => {
  const { repo } = initRepo({ dir: path.join(tmpDir(), 'd'), node: 'pi-01', hostname: 'x' });
  writeChanges({ repo, changes: [{ target: 'a/b', field: 'f', value: 1 }], clock: { now: () => Date.parse(T) } });
  const [written] = writeChanges({ repo, changes: [{ target: 'a/b', field: 'f', value: 2 }], clock: { now: () => 1000 } });
  assert.equal([written.timestamp, written.causality], [T, 'hlc:1']);
  assert.equal(fs.readdirSync(repo.wal), ['20261121_pi-01.usv']);
});

test('a torn tail is closed with CAN RS LF before the next record; the reader skips it (ECLOSED) and reads the rest', () => {
  const dir = wal();
  fs.mkdirSync(dir);
  const file = path.join(dir, '20261121_pi-01.usv');
  const first = encodeRecord(rec(T));
  const torn = '2026-11-21T10:00:01.000Z\x1fpi-01\x1fa/b\x1ff\x1f"half';
  fs.writeFileSync(file, first + torn);
  assert.equal(read(file).issues.map((i) => [i.code, i.offset]), [['ETORN', first.length]]);
  const w = new SegmentWriter(dir, 'always');
  w.append(rec('2026-11-21T10:00:02.000Z', 'g'));
  w.append(rec('2026-11-21T10:00:03.000Z', 'h'));
  w.close();
  assert.is(fs.readFileSync(file, 'utf8'), first + torn + '\x18\x1e\n' + encodeRecord(rec('2026-11-21T10:00:02.000Z', 'g')) + encodeRecord(rec('2026-11-21T10:00:03.000Z', 'h')));
  const { records, issues } = read(file);
  assert.equal(records.map((r) => r.field), ['f', 'g', 'h']);
  assert.equal(issues.map((i) => [i.code, i.offset]), [['ECLOSED', first.length]]);
});

test('a truncated record can never be read as a valid one, even when its cut looks like a whole record', () => {
  const dir = wal();
  fs.mkdirSync(dir);
  const file = path.join(dir, '20261121_pi-01.usv');
  // cut right after the value unit: 5 units and a dangling separator
  fs.writeFileSync(file, '2026-11-21T10:00:01.000Z\x1fpi-01\x1fa/b\x1ff\x1f"1"\x1fhlc:');
  const w = new SegmentWriter(dir, 'never');
  w.append(rec('2026-11-21T10:00:02.000Z', 'g'));
  w.close();
  const { records, issues } = read(file);
  assert.equal(records.map((r) => r.field), ['g']);
  assert.equal(issues.map((i) => i.code), ['ECLOSED']);
});

test('no CAN after a complete tail: RS LF, RS alone (cocli) or U+241E', () => {
  for (const tail of ['\x1e\n', '\x1e', '\u241e', '\u241e\n']) {
    const dir = wal();
    fs.mkdirSync(dir);
    const file = path.join(dir, '20261121_pi-01.usv');
    const before = '2026-11-21T10:00:00.000Z\x1fpi-01\x1fa/b\x1ff\x1f1\x1f' + tail;
    fs.writeFileSync(file, before);
    const w = new SegmentWriter(dir, 'never');
    w.append(rec('2026-11-21T10:00:02.000Z', 'g'));
    w.close();
    assert.is(fs.readFileSync(file, 'utf8'), before + encodeRecord(rec('2026-11-21T10:00:02.000Z', 'g')), JSON.stringify(tail));
    assert.equal(read(file).issues, [], JSON.stringify(tail));
  }
});

test('a record over 1 MiB is refused by the writer and nothing is written', () => {
  const dir = wal();
  const w = new SegmentWriter(dir, 'always');
  try {
    assert.throws(() => w.append(rec(T, 'f', JSON.stringify('x'.repeat(1024 * 1024)))), (e: unknown) => e instanceof FormatError && e.code === 'ETOOLARGE');
  } finally {
    w.close();
  }
  assert.not.ok(fs.existsSync(path.join(dir, '20261121_pi-01.usv')) && fs.statSync(path.join(dir, '20261121_pi-01.usv')).size > 0);
});

test('fsync policy "always": one fsync per record', () => {
  const dir = wal();
  const n = countFsyncs(() => {
    const w = new SegmentWriter(dir, 'always');
    for (let i = 0; i < 5; i++) w.append(rec(T, `f${i}`));
    w.close();
  });
  assert.is(n, 5);
});

test('fsync policy "batch": every batchBytes and at close; everything is written', () => {
  const dir = wal();
  const value = JSON.stringify('v'.repeat(1000));
  const recordBytes = Buffer.byteLength(encodeRecord(rec(T, 'f0000', value)));
  const count = 1000;
  let afterHalf = 0;
  const n = countFsyncs(() => {
    const w = new SegmentWriter(dir, 'batch', 64 * 1024);
    for (let i = 0; i < count; i++) {
      w.append(rec(T, `f${String(i).padStart(4, '0')}`, value));
      if (i === count / 2) afterHalf = fs.statSync(path.join(dir, '20261121_pi-01.usv')).size;
    }
    w.close();
  });
  const total = recordBytes * count;
  assert.ok(afterHalf > 0 && afterHalf <= total / 2 + recordBytes, `half way, whole batches are on disk (${afterHalf} bytes)`);
  assert.is(afterHalf % recordBytes, 0, 'only whole records are written');
  assert.ok(n >= Math.floor(total / (64 * 1024)) && n <= Math.ceil(total / (64 * 1024)) + 1, `${n} fsyncs for ${total} bytes`);
  const { records, issues } = read(path.join(dir, '20261121_pi-01.usv'));
  assert.is(records.length, count);
  assert.equal(issues, []);
  assert.is(records[count - 1].field, `f${String(count - 1).padStart(4, "0")}`);
});

test('fsync policy "batch": records buffered below the batch size reach the file at close', () => {
  const dir = wal();
  const w = new SegmentWriter(dir, 'batch');
  w.append(rec(T));
  w.append(rec(T, 'g'));
  w.close();
  assert.is(read(path.join(dir, '20261121_pi-01.usv')).records.length, 2);
});

test('lastRecord: the last complete record; skips a torn tail and a CAN-closed record; handles big records', () => {
  const dir = wal();
  fs.mkdirSync(dir);
  const file = path.join(dir, '20261121_pi-01.usv');
  assert.is(lastRecord(file), undefined, 'no file');
  fs.writeFileSync(file, '');
  assert.is(lastRecord(file), undefined, 'empty file');
  const a = encodeRecord(rec(T, 'a', '1', 'hlc:1'));
  const b = encodeRecord(rec(T, 'b', '2', 'hlc:2'));
  fs.writeFileSync(file, a + b);
  assert.is(lastRecord(file)?.field, 'b');
  fs.appendFileSync(file, '2026-11-21T10:00:09.000Z\x1fpi-01\x1fa/b');
  assert.is(lastRecord(file)?.field, 'b', 'torn tail skipped');
  fs.appendFileSync(file, '\x18\x1e\n');
  assert.is(lastRecord(file)?.field, 'b', 'CAN-closed record skipped');
  const big = encodeRecord(rec(T, 'big', JSON.stringify('x'.repeat(100_000)), 'hlc:3'));
  fs.appendFileSync(file, big);
  assert.equal([lastRecord(file)?.field, lastRecord(file)?.causality], ['big', 'hlc:3']);
  fs.writeFileSync(file, big);
  assert.is(lastRecord(file)?.field, 'big', 'one big record only');
  fs.writeFileSync(file, 'x'.repeat(20_000) + '\x1e\n');
  assert.is(lastRecord(file), undefined, 'only garbage');
});

test('listSegments: only segment files, sorted, with day, node, size and a relative path', () => {
  const root = tmpDir();
  const dir = path.join(root, 'wal');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, '20261122_pi-01.usv'), 'abc');
  fs.writeFileSync(path.join(dir, '20261121_pi-02.usv'), '');
  fs.writeFileSync(path.join(dir, 'notes.txt'), '');
  fs.writeFileSync(path.join(dir, '20261121_pi-02.usv.walnut-tmp'), '');
  fs.mkdirSync(path.join(dir, '20261123_pi-03.usv'));
  const segs = listSegments({ root, wal: dir });
  assert.equal(segs.map((s) => [s.name, s.rel, s.day, s.node, s.size]), [
    ['20261121_pi-02.usv', 'wal/20261121_pi-02.usv', '20261121', 'pi-02', 0],
    ['20261122_pi-01.usv', 'wal/20261122_pi-01.usv', '20261122', 'pi-01', 3],
  ]);
  assert.equal(listSegments({ root, wal: path.join(root, 'missing') }), []);
});

test('scanSegment: the same records and issues whatever the chunk size; start and end offsets', () => {
  const dir = wal();
  fs.mkdirSync(dir);
  const file = path.join(dir, '20261121_pi-01.usv');
  const parts = [encodeRecord(rec(T, 'a')), 'garbage\x1e\n', encodeRecord(rec(T, 'b', '"\u00e9\u4e2d\u{1f600}"')), '2026-11-21T10:00:00.000Z\u241fpi-01\u241fa/b\u241fc\u241f3\u241fhlc:0\u241e', encodeRecord(rec(T, 'd'))];
  fs.writeFileSync(file, parts.join(''));
  const results = [1, 2, 3, 7, 64, 1 << 20].map((chunkSize) => {
    const out: string[] = [];
    const r = scanSegment(file, { chunkSize, rel: 'x' }, (x) => out.push(`${x.record.field}@${x.start}-${x.end}`), (i) => out.push(`${i.code}@${i.offset}`));
    return JSON.stringify([out, r]);
  });
  for (const r of results) assert.is(r, results[results.length - 1]);
  const starts = parts.map((_, i) => Buffer.byteLength(parts.slice(0, i).join('')));
  const size = Buffer.byteLength(parts.join(''));
  const at = (i: number) => `${starts[i]}-${starts[i + 1] ?? size}`;
  assert.is(results[0], JSON.stringify([[`a@${at(0)}`, `EUNITS@${starts[1]}`, `b@${at(2)}`, `c@${at(3)}`, `d@${at(4)}`], { complete: size, size }]));
});

test('scanSegment: accept sees each record\'s bytes; invalid UTF-8 is reported whatever the chunk size', () => {
  const dir = wal();
  fs.mkdirSync(dir);
  const file = path.join(dir, '20261121_pi-01.usv');
  const parts = [Buffer.from(encodeRecord(rec(T, 'a', '"\u00e9\u00e9"'))), Buffer.from([0x41, 0xc3, 0x1e, 0x0a]), Buffer.from(encodeRecord(rec(T, 'b', '"\u4e2d\u{1f600}"')))];
  fs.writeFileSync(file, Buffer.concat(parts));
  const texts = parts.map((p) => p.toString('utf8').replace(/\x1e\n$/, ''));
  for (const chunkSize of [1, 5, 64, 1 << 20]) {
    const seen: string[] = [];
    const out: string[] = [];
    scanSegment(file, { chunkSize, accept: (buf, s, e) => (seen.push(buf.toString('utf8', s, e)), true) }, (x) => out.push(x.record.field), (i) => out.push(`${i.code}@${i.offset}`));
    assert.equal(seen, texts, `chunk ${chunkSize}`);
    assert.equal(out, ['a', `EUTF8@${parts[0].length}`, 'b'], `chunk ${chunkSize}`);
    const skipped: string[] = [];
    scanSegment(file, { chunkSize, accept: (buf, s, e) => !buf.toString('utf8', s, e).includes('\x1fa\x1f') }, (x) => skipped.push(x.record.field));
    assert.equal(skipped, ['b'], 'a record refused by accept is not decoded');
  }
});

test('scanSegment: from a start to an end offset', () => {
  const dir = wal();
  fs.mkdirSync(dir);
  const file = path.join(dir, '20261121_pi-01.usv');
  const parts = ['a', 'b', 'c', 'd', 'e'].map((f) => encodeRecord(rec(T, f)));
  fs.writeFileSync(file, parts.join(''));
  const starts = parts.map((_, i) => Buffer.byteLength(parts.slice(0, i).join('')));
  const fields: string[] = [];
  scanSegment(file, { start: starts[2], end: starts[4] }, (x) => fields.push(x.record.field));
  assert.equal(fields, ['c', 'd']);
});

test.run();
