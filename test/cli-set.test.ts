/**
 * walnut set (and set --batch), end to end: the real built CLI in a temporary
 * folder; stdout, stderr and exit status checked together; every refused
 * input leaves every file as it was.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten, recordLine, ndjson } from './cli-util.js';

const T = '2026-11-21T10:00:00.000Z';
const SEG = 'wal/20261121_pi-01.usv';
const at = (time = T) => ({ WALNUT_NOW: time });
const segment = (dir: string, name = SEG) => fs.readFileSync(path.join(dir, name), 'utf8');

test('set writes one V1 record (JSON value, HLC causality) to the segment of the day; prints nothing', () => {
  const dir = initRepoDir('pi-01');
  expect(run(['set', 'companies/acme', 'name', 'Acme Corp'], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' });
  expect(run(['set', 'companies/acme', 'employees', '42'], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' });
  assert.is(segment(dir), recordLine([T, 'pi-01', 'companies/acme', 'name', '"Acme Corp"', 'hlc:0']) + recordLine([T, 'pi-01', 'companies/acme', 'employees', '42', 'hlc:1']));
  assert.equal(fs.readdirSync(path.join(dir, 'wal')), ['20261121_pi-01.usv']);
});

test('value parsing: JSON when it is JSON, else a string; --string and --json-value force it', () => {
  const dir = initRepoDir('pi-01');
  const cases: Array<[string[], string]> = [
    [['42'], '42'],
    [['3.5'], '3.5'],
    [['true'], 'true'],
    [['null'], 'null'],
    [['"42"'], '"42"'],
    [['[1,"a"]'], '[1,"a"]'],
    [['{"a": 1}'], '{"a":1}'],
    [['Berlin'], '"Berlin"'],
    [['007'], '"007"'],
    [['2026-11-21'], '"2026-11-21"'],
    [['{broken'], '"{broken"'],
    [[''], '""'],
    [['line 1\nline 2'], '"line 1\\nline 2"'],
    [['42', '--string'], '"42"'],
    [['[1,2]', '--string'], '"[1,2]"'],
    [['{"a":[1]}', '--json-value'], '{"a":[1]}'],
  ];
  cases.forEach(([args, unit], i) => {
    expect(run(['set', 'a/b', `f${i}`, ...args], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' }, args.join(' '));
  });
  const units = segment(dir).split('\x1e\n').filter(Boolean).map((l) => l.split('\x1f')[4]);
  assert.equal(units, cases.map(([, u]) => u));
});

test('set --json prints the record written', () => {
  const dir = initRepoDir('pi-01');
  const r = run(['set', 'companies/acme', 'tags', '["b2b"]', '--json'], { cwd: dir, env: at() });
  expect(r, { code: 0, stderr: '', stdout: JSON.stringify({ version: 1, target: 'companies/acme', field: 'tags', value: ['b2b'], timestamp: T, node: 'pi-01' }) + '\n' });
});

test('the clock: same wall time gives increasing counters; a wall clock that jumps back never goes back; a Pi booting in 1970 keeps writing to its newest segment', () => {
  const dir = initRepoDir('pi-01');
  run(['set', 'a/b', 'f', '1'], { cwd: dir, env: at() });
  run(['set', 'a/b', 'f', '2'], { cwd: dir, env: at('2026-11-21T09:00:00.000Z') });
  run(['set', 'a/b', 'f', '3'], { cwd: dir, env: at('0') });
  run(['set', 'a/b', 'f', '4'], { cwd: dir, env: at('2026-11-21T10:00:00.001Z') });
  assert.is(
    segment(dir),
    [
      recordLine([T, 'pi-01', 'a/b', 'f', '1', 'hlc:0']),
      recordLine([T, 'pi-01', 'a/b', 'f', '2', 'hlc:1']),
      recordLine([T, 'pi-01', 'a/b', 'f', '3', 'hlc:2']),
      recordLine(['2026-11-21T10:00:00.001Z', 'pi-01', 'a/b', 'f', '4', 'hlc:0']),
    ].join(''),
  );
  assert.equal(fs.readdirSync(path.join(dir, 'wal')), ['20261121_pi-01.usv'], 'no 19700101 segment');
  expect(run(['show', 'a/b', '--json'], { cwd: dir }), { code: 0 });
  assert.is(JSON.parse(run(['show', 'a/b', '--json'], { cwd: dir }).stdout).fields.f, 4, 'the last write wins');
});

test('a new UTC day starts a new segment', () => {
  const dir = initRepoDir('pi-01');
  run(['set', 'a/b', 'f', '1'], { cwd: dir, env: at('2026-11-21T23:59:59.999Z') });
  run(['set', 'a/b', 'f', '2'], { cwd: dir, env: at('2026-11-22T00:00:00.000Z') });
  assert.equal(fs.readdirSync(path.join(dir, 'wal')), ['20261121_pi-01.usv', '20261122_pi-01.usv']);
});

test('set after a power cut: the torn tail of the own segment is closed with CAN RS LF, then the record follows', () => {
  const dir = initRepoDir('pi-01');
  const good = recordLine([T, 'pi-01', 'a/b', 'f', '1', 'hlc:0']);
  fs.writeFileSync(path.join(dir, SEG), good + '2026-11-21T10:00:01.000Z\x1fpi-01\x1fa/b\x1ff\x1f"tor');
  expect(run(['set', 'a/b', 'g', '2'], { cwd: dir, env: at('2026-11-21T10:00:02.000Z') }), { code: 0, stdout: '', stderr: '' });
  assert.is(segment(dir), good + '2026-11-21T10:00:01.000Z\x1fpi-01\x1fa/b\x1ff\x1f"tor\x18\x1e\n' + recordLine(['2026-11-21T10:00:02.000Z', 'pi-01', 'a/b', 'g', '2', 'hlc:0']));
  expect(run(['log', '--json'], { cwd: dir }), { code: 0, stderr: `{"version":1,"warning":{"message":"'${SEG}' at byte ${Buffer.byteLength(good)}: torn record (closed by a later append); skipped","code":"ECLOSED","file":"${SEG}","offset":${Buffer.byteLength(good)}}}\n` });
});

test('a value holding the visible separators U+241F / U+241E round-trips (BUG: written raw, read back as another record or as garbage)', () => {
  const dir = initRepoDir('pi-01');
  expect(run(['set', 'a/b', 'f', 'x\u241fy'], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' });
  expect(run(['set', 'a/b', 'g', 'p\u241eq'], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' });
  const r = run(['show', 'a/b', '--json'], { cwd: dir });
  expect(r, { code: 0, stderr: '' }, 'no warnings about the journal');
  assert.equal(JSON.parse(r.stdout).fields, { f: 'x\u241fy', g: 'p\u241eq' });
});

// ------------------------------------------------------------ bad input

const BAD_TARGETS: Array<[string, string]> = [
  ['../etc', 'invalid target "../etc": ".." is not a valid collection or slug'],
  ['../../x', 'invalid target "../../x": expected <collection>/<slug>'],
  ['companies/..', 'invalid target "companies/..": ".." is not a valid collection or slug'],
  ['../acme', 'invalid target "../acme": ".." is not a valid collection or slug'],
  ['companies/acme/x', 'invalid target "companies/acme/x": expected <collection>/<slug>'],
  ['/etc/passwd', 'invalid target "/etc/passwd": expected <collection>/<slug>'],
  ['companies', 'invalid target "companies": expected <collection>/<slug>'],
  ['companies/', 'invalid target "companies/": "" is not a valid collection or slug'],
  ['/acme', 'invalid target "/acme": "" is not a valid collection or slug'],
  ['companies//acme', 'invalid target "companies//acme": expected <collection>/<slug>'],
  ['companies/.hidden', 'invalid target "companies/.hidden": ".hidden" is not a valid collection or slug'],
  ['companies/ac\x01me', 'invalid target "companies/ac\\u0001me": "ac\\u0001me" is not a valid collection or slug'],
  ['companies/ac\tme', 'invalid target "companies/ac\\tme": "ac\\tme" is not a valid collection or slug'],
  ['compa\x1fnies/acme', 'invalid target "compa\\u001fnies/acme": "compa\\u001fnies" is not a valid collection or slug'],
  ['companies/ac\\me', 'invalid target "companies/ac\\\\me": "ac\\\\me" is not a valid collection or slug'],
];
const TARGET_HINT_1 = 'hint: e.g. companies/acme-corp\n';
const TARGET_HINT_2 = 'hint: collections and slugs are non-empty, do not start with a dot, and have no separators, spaces or control characters\n';

for (const [target, message] of BAD_TARGETS) {
  test(`bad target ${JSON.stringify(target)}: exit 1, clear error, nothing written anywhere`, () => {
    const dir = initRepoDir('pi-01');
    run(['set', 'a/b', 'f', '1'], { cwd: dir, env: at() });
    nothingWritten(path.dirname(dir), () => {
      const hint = message.endsWith('expected <collection>/<slug>') ? TARGET_HINT_1 : TARGET_HINT_2;
      expect(run(['set', target, 'name', 'x'], { cwd: dir, env: at() }), { code: 1, stdout: '', stderr: `error: ${message}\n${hint}` });
    }, target);
  });
}

test('bad field names (separators, control characters, newline, empty): exit 1, nothing written', () => {
  const dir = initRepoDir('pi-01');
  for (const [field, shown] of [['na\x1fme', 'na\\u001fme'], ['na\x1eme', 'na\\u001eme'], ['na\u241fme', 'na\u241fme'], ['na\u241eme', 'na\u241eme'], ['na\nme', 'na\\nme'], ['na\x00me', null], ['', '']] as const) {
    if (shown === null) continue; // a NUL cannot be passed in an argument; covered by the batch test
    nothingWritten(path.dirname(dir), () => {
      expect(run(['set', 'companies/acme', field, 'x'], { cwd: dir, env: at() }), {
        code: 1,
        stdout: '',
        stderr: `error: invalid field name "${shown}"\nhint: field names may not be empty nor contain separators, newlines or control characters\n`,
      }, JSON.stringify(field));
    }, JSON.stringify(field));
  }
});

test('--json-value with invalid JSON: usage error (2) with the usage lines, nothing written', () => {
  const dir = initRepoDir('pi-01');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['set', 'companies/acme', 'name', '{bad', '--json-value'], { cwd: dir, env: at() }), {
      code: 2,
      stdout: '',
      stderr:
        `error: --json-value: "{bad" is not valid JSON (Expected property name or '}' in JSON at position 1)\n` +
        `hint: quote strings as JSON ("\\"text\\"") or drop --json-value\n` +
        'usage: walnut set <target> <field> <value> [--json-value | --string]\nusage: walnut set --batch\n',
    });
    const j = run(['set', 'companies/acme', 'name', 'Acme', '--json-value', '--json'], { cwd: dir, env: at() });
    expect(j, { code: 2, stdout: '' });
    assert.is(JSON.parse(j.stderr).error.code, 'EUSAGE');
  }, '--json-value');
});

test('--json-value with --string, or missing arguments: usage error (2), nothing written', () => {
  const dir = initRepoDir('pi-01');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['set', 'a/b', 'f', '1', '--json-value', '--string'], { cwd: dir }), { code: 2, stdout: '', stderr: /mutually exclusive\nusage: walnut set <target>/i });
    expect(run(['set', 'a/b', 'f'], { cwd: dir }), { code: 2, stdout: '', stderr: 'error: set needs <target> <field> <value>, or --batch\nusage: walnut set <target> <field> <value> [--json-value | --string]\nusage: walnut set --batch\n' });
    expect(run(['set', 'a/b', 'f', 'v', 'extra'], { cwd: dir }), { code: 2, stdout: '', stderr: /^error: unknown argument: extra\nusage: walnut set/ });
  }, 'usage errors');
});

test('a value near the 1 MiB limit is written; one over it is refused (batch: the only way to pass it)', () => {
  const dir = initRepoDir('pi-01');
  const big = 'x'.repeat(100_000);
  expect(run(['set', 'a/b', 'notes', big], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' });
  const line = (n: number) => JSON.stringify({ target: 'a/b', field: 'blob', value: 'y'.repeat(n) }) + '\n';
  expect(run(['set', '--batch'], { cwd: dir, env: at(), input: line(1024 * 1024 - 2048) }), { code: 0, stdout: '', stderr: 'wrote 1 record\n' });
  nothingWritten(path.dirname(dir), () => {
    expect(run(['set', '--batch'], { cwd: dir, env: at(), input: line(1024 * 1024) }), {
      code: 1,
      stdout: '',
      stderr: `warning: stdin line 1: value for a/b blob is ${1024 * 1024 + 2} bytes; a record is at most 1 MiB; line skipped\nwrote 0 records, refused 1 line\nerror: 1 line of batch input refused (see warnings above)\n`,
    });
  }, 'over 1 MiB');
});

test('outside a data directory: exit 1 with a hint, nothing written', () => {
  const base = tmpDir();
  nothingWritten(base, () => {
    expect(run(['set', 'a/b', 'f', '1'], { cwd: base }), {
      code: 1,
      stdout: '',
      stderr: `error: not a walnut data directory (or any of the parent directories): '${base}'\nhint: run 'walnut init' to make this directory one, or pass -C <dir> or set WALNUT_DIR\n`,
    });
  }, 'outside');
});

// ------------------------------------------------------------ discovery

test('discovery: -C, WALNUT_DIR, and walking up from a subfolder all write to the same data directory', () => {
  const dir = initRepoDir('pi-01');
  const sub = path.join(dir, 'companies', 'acme', 'notes');
  fs.mkdirSync(sub, { recursive: true });
  const elsewhere = tmpDir();
  expect(run(['-C', dir, 'set', 'a/b', 'f', '1'], { cwd: elsewhere, env: at() }), { code: 0, stdout: '', stderr: '' });
  expect(run(['set', 'a/b', 'f', '2'], { cwd: elsewhere, env: { ...at(), WALNUT_DIR: dir } }), { code: 0, stdout: '', stderr: '' });
  expect(run(['set', 'a/b', 'f', '3'], { cwd: sub, env: at() }), { code: 0, stdout: '', stderr: '' });
  expect(run(['set', 'a/b', 'f', '4', '-C', dir], { cwd: elsewhere, env: at() }), { code: 0, stdout: '', stderr: '' });
  assert.is(segment(dir).split('\n').filter(Boolean).length, 4);
  assert.equal(fs.readdirSync(elsewhere), []);
  assert.equal(fs.readdirSync(sub), []);
});

test('-C wins over WALNUT_DIR; -C to a folder that is not a data directory is an error with a hint', () => {
  const a = initRepoDir('pi-01');
  const b = initRepoDir('pi-02');
  expect(run(['-C', a, 'set', 'x/y', 'f', '1'], { env: { ...at(), WALNUT_DIR: b } }), { code: 0 });
  assert.ok(fs.existsSync(path.join(a, SEG)));
  assert.equal(fs.readdirSync(path.join(b, 'wal')), []);
  const empty = tmpDir();
  nothingWritten(empty, () => {
    expect(run(['-C', empty, 'set', 'x/y', 'f', '1']), { code: 1, stdout: '', stderr: `error: '${empty}' is not a walnut data directory (no .walnut/ folder)\nhint: run 'walnut init ${empty}' to make it one\n` });
    expect(run(['set', 'x/y', 'f', '1'], { env: { WALNUT_DIR: empty } }), { code: 1, stdout: '', stderr: /is not a walnut data directory/ });
  }, 'not a data dir');
});

// ------------------------------------------------------------ batch

test('set --batch: NDJSON lines are written in order; a bad line is refused with its line number, the others written, exit 1', () => {
  const dir = initRepoDir('pi-01');
  const input = [
    '{"target":"companies/acme","field":"name","value":"Acme"}',
    '{not json',
    '{"target":"../etc","field":"x","value":1}',
    '',
    '{"target":"companies/acme","field":"phone"}',
    '[1,2]',
    '{"target":"companies/acme","field":"na\\u001fme","value":1}',
    '{"target":"companies/acme","field":"employees","value":42}',
    '{"target":"companies/acme","field":"city","value":null}',
  ].join('\n');
  const r = run(['set', '--batch'], { cwd: dir, env: at(), input });
  expect(r, {
    code: 1,
    stdout: '',
    stderr: [
      `warning: stdin line 2: not JSON: Expected property name or '}' in JSON at position 1; line skipped`,
      'warning: stdin line 3: invalid target "../etc": ".." is not a valid collection or slug; line skipped',
      'warning: stdin line 5: missing "value" (use null to delete a field); line skipped',
      'warning: stdin line 6: expected an object {"target","field","value"}; line skipped',
      'warning: stdin line 7: invalid field name "na\\u001fme"; line skipped',
      'wrote 3 records, refused 5 lines',
      'error: 5 lines of batch input refused (see warnings above)',
      '',
    ].join('\n'),
  });
  assert.is(
    segment(dir),
    recordLine([T, 'pi-01', 'companies/acme', 'name', '"Acme"', 'hlc:0']) + recordLine([T, 'pi-01', 'companies/acme', 'employees', '42', 'hlc:1']) + recordLine([T, 'pi-01', 'companies/acme', 'city', 'null', 'hlc:2']),
  );
});

test('set --batch --json and --quiet', () => {
  const dir = initRepoDir('pi-01');
  const input = '{"target":"a/b","field":"f","value":1}\n{"target":"a/b","field":"g","value":2}\n';
  expect(run(['set', '--batch', '--json'], { cwd: dir, env: at(), input }), { code: 0, stdout: '{"version":1,"written":2,"refused":0}\n', stderr: '' });
  expect(run(['set', '--batch', '-q'], { cwd: dir, env: at(), input }), { code: 0, stdout: '', stderr: '' });
  const bad = run(['set', '--batch', '--json'], { cwd: dir, env: at(), input: 'nope\n' });
  expect(bad, { code: 1, stdout: '{"version":1,"written":0,"refused":1}\n' });
  const errs = ndjson(bad.stderr);
  assert.is((errs[0].warning as Record<string, unknown>).line, 1);
  assert.equal((errs[1].error as Record<string, unknown>).code, 'EBATCH');
  assert.is(segment(dir).split('\n').filter(Boolean).length, 4);
});

test('set --batch with many lines (and no final newline) writes them all, one stream, increasing stamps', () => {
  const dir = initRepoDir('pi-01');
  const n = 5000;
  const input = Array.from({ length: n }, (_, i) => JSON.stringify({ target: `people/p${i % 50}`, field: 'n', value: i })).join('\n');
  expect(run(['set', '--batch'], { cwd: dir, env: at(), input }), { code: 0, stdout: '', stderr: `wrote ${n} records\n` });
  const lines = segment(dir).split('\x1e\n').filter(Boolean);
  assert.is(lines.length, n);
  assert.is(lines[n - 1].split('\x1f')[5], `hlc:${n - 1}`);
  const log = ndjson(run(['log', 'people/p7', 'n', '--json'], { cwd: dir }).stdout);
  assert.is(log.length, n / 50);
  assert.is(log[log.length - 1].value, n - 50 + 7);
});

test('set --batch with a target argument is a usage error', () => {
  const dir = initRepoDir('pi-01');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['set', 'a/b', '--batch'], { cwd: dir, input: '{"target":"a/b","field":"f","value":1}\n' }), { code: 2, stdout: '', stderr: /^error: --batch reads records from stdin and takes no target, field or value\nusage: walnut set/ });
  }, 'batch with target');
});

test('set --batch with a NUL in a field name refuses that line', () => {
  const dir = initRepoDir('pi-01');
  expect(run(['set', '--batch'], { cwd: dir, env: at(), input: '{"target":"a/b","field":"x\\u0000y","value":1}\n' }), { code: 1, stdout: '', stderr: /^warning: stdin line 1: invalid field name "x\\u0000y"; line skipped\n/ });
  assert.equal(fs.readdirSync(path.join(dir, 'wal')), []);
});

test.run();
