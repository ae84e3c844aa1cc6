/**
 * Batch append (lib/write.ts writeBatch) against a reference: the plain
 * algorithm it replaced (JSON.parse of every line, checkChange, SegmentWriter
 * in 'batch' mode). For the same input, chunking and clock, both must write
 * the same bytes to the same segments and report the same counts and the same
 * issues — for hand-picked lines (every shape the byte-level reader takes or
 * hands on), for seeded random lines, for input split at every kind of
 * boundary, across a UTC day, and after a torn tail.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { writeBatch, checkChange, type BatchIssue, type FieldChange } from '../lib/write.js';
import { Clock, type ClockOptions } from '../lib/clock.js';
import { SegmentWriter } from '../lib/journal.js';
import { initRepo, type Repo } from '../lib/repo.js';
import { FormatError } from '../lib/errors.js';
import { snapshotTree, tmpDir } from './helpers.js';

/** The batch writer before the byte-level reader: one JSON.parse per line, one SegmentWriter. */
async function referenceBatch({ repo, input, clock: clockOptions, onIssue }: { repo: Repo; input: AsyncIterable<Buffer | string>; clock?: ClockOptions; onIssue?: (i: BatchIssue) => void }): Promise<{ written: number; refused: number }> {
  const clock = Clock.load(repo, clockOptions);
  const writer = new SegmentWriter(repo.wal, 'batch');
  let written = 0;
  let refused = 0;
  let lineNo = 0;
  let carry = '';
  const decoder = new StringDecoder('utf8');
  const handle = (line: string) => {
    lineNo++;
    if (line.trim() === '') return;
    try {
      let obj: FieldChange;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        throw new FormatError('EBATCH', `not JSON: ${(err as Error).message}`, {});
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FormatError('EBATCH', `expected an object {"target","field","value"}`, {});
      if (!('value' in obj)) throw new FormatError('EBATCH', `missing "value" (use null to delete a field)`, {});
      const unit = checkChange(obj);
      const { timestamp, causality } = clock.tick();
      writer.append({ timestamp, node: repo.node, target: obj.target, field: obj.field, value: unit, causality });
      written++;
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      refused++;
      onIssue?.({ line: lineNo, message: err.message });
    }
  };
  try {
    for await (const chunk of input) {
      const text = carry + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
      let pos = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', pos)) {
        handle(text.slice(pos, nl));
        pos = nl + 1;
      }
      carry = text.slice(pos);
    }
    carry += decoder.end();
    if (carry !== '') handle(carry);
  } finally {
    writer.close();
  }
  return { written, refused };
}

/** A seeded PRNG (mulberry32). */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] };
}

/** Chunks of `bytes`: cut at the given sizes, cycling. */
async function* chunked(bytes: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let i = 0;
  for (let pos = 0; pos < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    yield bytes.subarray(pos, pos + n);
    pos += n;
  }
}

const T0 = Date.parse('2026-11-21T23:59:59.990Z');

/**
 * Run both writers over the same input, chunks and clock from the same start;
 * assert equal results, issues and files. The wall clock moves one ms every
 * `step` ticks, so a long input crosses into the next UTC day.
 */
async function same(input: Buffer, { sizes = [1 << 20], step = 7, label = '', before }: { sizes?: number[]; step?: number; label?: string; before?: (repo: Repo) => void } = {}) {
  const runs = [];
  for (const writer of [referenceBatch, writeBatch]) {
    const repo = initRepo({ dir: path.join(tmpDir(), 'data'), node: 'pi-01', hostname: 'x' }).repo;
    before?.(repo);
    let calls = 0;
    const issues: BatchIssue[] = [];
    const result = await writer({ repo, input: chunked(input, sizes), clock: { now: () => T0 + Math.floor(calls++ / step) }, onIssue: (i) => issues.push(i) });
    runs.push({ result, issues, files: snapshotTree(repo.wal) });
  }
  const [want, got] = runs;
  assert.equal(got.result, want.result, `${label}: counts`);
  assert.equal(got.issues, want.issues, `${label}: issues`);
  assert.equal(Object.keys(got.files), Object.keys(want.files), `${label}: segments`);
  for (const name of Object.keys(want.files)) {
    const a = Buffer.from(want.files[name], 'base64').toString('utf8');
    const b = Buffer.from(got.files[name], 'base64').toString('utf8');
    assert.fixture(b, a, `${label}: ${name}`);
    assert.is(got.files[name], want.files[name], `${label}: ${name} bytes`);
  }
  return want;
}

const line = (target: unknown, field: unknown, value: unknown) => JSON.stringify({ target, field, value });

// Lines of every shape: the byte-level reader's own, and all it hands on.
const LINES = [
  line('companies/acme', 'name', 'Acme Corp'),
  line('companies/acme', 'employees', 42),
  line('companies/acme', 'revenue', 179614.69),
  line('companies/acme', 'tags', ['b2b', 'eu']),
  line('companies/acme', 'meta', { a: [1, { b: null }], c: 'd' }),
  line('companies/acme', 'ok', true),
  line('companies/acme', 'ok', false),
  line('companies/acme', 'gone', null),
  line('companies/acme', 'zero', 0),
  line('companies/acme', 'neg', -17),
  line('companies/acme', 'big', 123456789012345),
  line('companies/acme', 'bigger', 1234567890123456),
  line('companies/acme', 'empty', ''),
  line('companies/acme', 'city', 'Zürich ✓ 日本 😀'),
  line('companies/acme', 'sep', 'x\u241fy\u241ez'),
  line('companies/acme', 'ls', 'a\u2028b\u2029c'),
  line('companies/acme', 'del', 'a\x7fb\u0085c'),
  line('companies/acme', 'esc', 'quote " backslash \\ tab \t newline \n nul \0'),
  line('companies/ünï', 'név', 'x'),
  line('companies/acme', 'na me', 1),
  line('companies/acme', 'a'.repeat(1000), 1),
  line('companies/acme', 'a'.repeat(1001), 1),
  line('companies/acme', 'é'.repeat(501), 1),
  line('companies/' + 's'.repeat(129), 'f', 1),
  line('companies/' + 's'.repeat(200), 'f', 1),
  line('companies/' + 's'.repeat(201), 'f', 1),
  // the same values written by hand, not as JSON.stringify writes them
  '{"target":"a/b","field":"f","value":-0}',
  '{"target":"a/b","field":"f","value":007}',
  '{"target":"a/b","field":"f","value":1.50}',
  '{"target":"a/b","field":"f","value":1e3}',
  '{"target":"a/b","field":"f","value":1E+3}',
  '{"target":"a/b","field":"f","value":12345678901234567890}',
  '{"target":"a/b","field":"f","value":-}',
  '{"target":"a/b","field":"f","value":"\\u00e9\\/\\u241f"}',
  '{"target":"a/b","field":"f","value":"a"  }',
  '{"target":"a/b","field":"f","value": 1}',
  '{"target":"a/b","field":"f","value":[ 1 , 2 ]}',
  '{"target":"a/b","field":"f","value":tru}',
  '{"target":"a/b","field":"f","value":True}',
  '{"target":"a/b","field":"f","value":nulll}',
  '{"target":"a/b","field":"f","value":"x"}}',
  '{"target":"a/b","field":"f","value":"x","value":"y"}',
  '{"target":"a/b","field":"f","value":1,"extra":2}',
  '{"target":"a/b","field":"f","value":}',
  '{"target":"a/b","field":"f","value":"unterminated}',
  '{"target":"a/b","field":"f","value":"a"b"}',
  '{"target":"a\\/b","field":"f","value":1}',
  '{"target":"a/b","field":"\\u0066","value":1}',
  '{"target":"a/b","field":"f\tg","value":1}',
  '{"target":"a/b","field":"f","value":"a\tb"}',
  '{"target":"a/b","field":"f","value":"a\x01b\x1f"}',
  '{"target":"a/b","field":"f","value":"a\rb"}',
  '{"target":"a/b","field":"","value":1}',
  '{"target":"","field":"f","value":1}',
  '{"target": "a/b", "field": "f", "value": 1}',
  '{"field":"f","target":"a/b","value":1}',
  '{"target":"a/b","field":"f"}',
  '{"target":"a/b","field":"f","value":1}\r',
  '  {"target":"a/b","field":"f","value":1}',
  '{"target":"a/b","field":"f","value":1} ',
  '{"target":1,"field":"f","value":1}',
  '{"target":"a/b","field":null,"value":1}',
  '{"target":"../etc","field":"f","value":1}',
  '{"target":"a/.b","field":"f","value":1}',
  '{"target":"a/b/c","field":"f","value":1}',
  '{"target":"a b/c","field":"f","value":1}',
  '{"target":"a/b\u00a0","field":"f","value":1}',
  '{"target":"a/b","field":"x\u241ey","value":1}',
  '{"target":"a/b","field":"f","value":"' + 'v'.repeat(1024 * 1024 - 1026) + '"}',
  '{"target":"a/b","field":"f","value":"' + 'v'.repeat(1024 * 1024 - 1024) + '"}',
  '{"target":"a/' + 's'.repeat(200) + '","field":"' + 'f'.repeat(1000) + '","value":"' + 'v'.repeat(1024 * 1024 - 1026) + '"}',
  '[1,2]',
  'null',
  '"a/b"',
  '{not json',
  '',
  '   ',
  '{"target":"a/b","field":"f","value":1',
];

test('every shape of line: same bytes, counts and issues as JSON.parse of each line', async () => {
  const input = Buffer.from(LINES.join('\n') + '\n');
  const want = await same(input, { step: 3, label: 'all lines' });
  assert.ok(want.result.written > 40 && want.result.refused > 15, `the lines do both (${JSON.stringify(want.result)})`);
  assert.ok(Object.keys(want.files).length === 2, 'the lines cross into the next UTC day');
  for (const [i, l] of LINES.entries()) await same(Buffer.from(l), { label: `line ${i + 1} alone, no final newline` });
});

test('input cut anywhere: in a line, in a multi-byte character, one byte at a time', async () => {
  const input = Buffer.from(LINES.slice(0, 30).join('\n') + '\n' + LINES.slice(30, 60).join('\r\n') + '\n');
  for (const sizes of [[1], [2, 3], [7, 1, 64], [100], [4096, 13], [1 << 16]]) await same(input, { sizes, label: `chunks of ${sizes.join(',')}` });
});

test('invalid UTF-8 and stray bytes: decoded per line as a stream decoder does', async () => {
  const parts = [
    Buffer.from('{"target":"a/b","field":"f","value":"caf'),
    Buffer.from([0xe9]),
    Buffer.from('"}\n{"target":"a/b","field":"g","value":"ok"}\n{"target":"a/b","field":"h","value":"'),
    Buffer.from([0xf0, 0x9f]),
    Buffer.from('"}\n'),
    Buffer.from([0xff, 0xfe, 0x00, 0x0a]),
    Buffer.from('{"target":"a/b","field":"i","value":"\u00e9"}\n'),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from('\n{"target":"a/b","field":"j","value":"x"}\n{"target":"a/b","field":"k","value":"'),
    Buffer.from([0xe2, 0x82]),
  ];
  const input = Buffer.concat(parts);
  for (const sizes of [[1 << 20], [1], [3, 5], [40]]) await same(input, { sizes, label: `invalid UTF-8, chunks of ${sizes.join(',')}` });
});

test('seeded random lines (valid and not), random chunks, clock moving: same as the reference', async () => {
  const rng = random(7);
  const targets = ['companies/acme', 'companies/c-000001', 'people/jane-doe', 'a/b', 'x/ü', '../x', 'a/b/c', 'a', 'a/.b', 'a/b c', 'co\\"m/x', 'a/\\u0062'];
  const fields = ['name', 'city', 'f', 'née', 'a b', '', 'x\\u001fy', 'tab\\t', 'q\\"'];
  const values = ['"Lisbon"', '"Zürich"', '"😀"', '"a\\nb"', '"\\u241f"', '"\u241e"', '"\\\\"', '""', '0', '-0', '7', '-42', '007', '3.14', '1e21', '1.0', '100000000000000000000', 'true', 'false', 'null', '[]', '{}', '[1,"a",null]', '{"k":{"l":[true]}}', ' 5', '"x" ', 'nan', '-', '"', '"open'];
  const out: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const r = rng.next();
    if (r < 0.9) out.push(`{"target":"${rng.pick(targets)}","field":"${rng.pick(fields)}","value":${rng.pick(values)}}`);
    else if (r < 0.95) out.push(`{"field":"${rng.pick(fields)}","target":"${rng.pick(targets)}","value":${rng.pick(values)}}`);
    else if (r < 0.97) out.push('');
    else out.push(rng.pick(['{', '[1]', '{"target":"a/b","field":"f"}', '{"target":"a/b","field":"f","value":1}x']));
  }
  const input = Buffer.from(out.join('\n'));
  const want = await same(input, { sizes: [1 << 20], step: 50, label: 'random, one chunk' });
  assert.ok(want.result.written > 1000 && want.result.refused > 500, JSON.stringify(want.result));
  await same(input, { sizes: [17, 1000, 3, 65536], step: 50, label: 'random, random chunks' });
});

test('many records: the buffer is written every MiB, and a segment that ends is written and closed', async () => {
  const rng = random(3);
  const out: string[] = [];
  for (let i = 0; i < 60_000; i++) out.push(line(`companies/c-${String(i >> 3).padStart(6, '0')}`, rng.pick(['name', 'city', 'score']), rng.next() < 0.5 ? `value ${i}` : i));
  const input = Buffer.from(out.join('\n') + '\n');
  // 60 k records over ~4.5 MB of journal; the clock crosses midnight after 3 500 ticks
  const want = await same(input, { sizes: [1 << 20], step: 350, label: 'many' });
  assert.is(want.result.written, 60_000);
  assert.is(Object.keys(want.files).length, 2);
});

test('a torn tail in the segment is closed with CAN RS LF before the first record, as SegmentWriter does', async () => {
  const before = (repo: Repo) => {
    fs.mkdirSync(repo.wal, { recursive: true });
    fs.writeFileSync(path.join(repo.wal, '20261121_pi-01.usv'), '2026-11-21T10:00:00.000Z\x1fpi-01\x1fa/b\x1ff\x1f"tor');
  };
  await same(Buffer.from(LINES.slice(0, 5).join('\n')), { before, step: 1000, label: 'torn tail' });
  await same(Buffer.from('{bad\n'), { before, label: 'torn tail, nothing written' });
});

test('string chunks are taken as UTF-8, also when a chunk ends inside a surrogate pair', async () => {
  const repo = initRepo({ dir: path.join(tmpDir(), 'data'), node: 'pi-01', hostname: 'x' }).repo;
  async function* strings() {
    yield '{"target":"a/b","field":"f","value":"Zü';
    yield 'rich \ud83d';
    yield '\ude00"}\n{"target":"a/b","field":"g","value":2}';
  }
  const r = await writeBatch({ repo, input: strings(), clock: { now: () => Date.parse('2026-11-21T10:00:00.000Z') } });
  assert.equal(r, { written: 2, refused: 0 });
  assert.is(fs.readFileSync(path.join(repo.wal, '20261121_pi-01.usv'), 'utf8'), '2026-11-21T10:00:00.000Z\x1fpi-01\x1fa/b\x1ff\x1f"Zürich 😀"\x1fhlc:0\x1e\n2026-11-21T10:00:00.000Z\x1fpi-01\x1fa/b\x1fg\x1f2\x1fhlc:1\x1e\n');
});

test.run();
