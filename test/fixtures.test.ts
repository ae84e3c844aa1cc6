/**
 * The sample data directories in fixtures/ read as documented in
 * fixtures/README.md: exact values, exact warnings with file and byte offset.
 * Each test works on a copy (makeFixture).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeFixture, tmpDir, snapshotTree, FIXTURES, ROOT } from './helpers.js';
import { run, expect, ndjson, nothingWritten } from './cli-util.js';

// ---------------------------------------------------------------- crm

test('crm: the fixture is exactly what fixtures/make-crm.sh makes with this walnut', () => {
  const dir = path.join(tmpDir(), 'crm');
  const r = spawnSync('bash', [path.join(ROOT, 'fixtures', 'make-crm.sh'), dir], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.is(r.status, 0, r.stderr);
  assert.equal(snapshotTree(dir), snapshotTree(path.join(FIXTURES, 'crm')));
});

test('crm: show merges every pending record of an entity', () => {
  const dir = makeFixture('crm');
  expect(run(['show', 'companies/acme-corp'], { cwd: dir }), {
    code: 0,
    stdout: [
      'companies/acme-corp',
      'name: Acme Corp  # pending: laptop 2026-11-21T09:00:00.000Z',
      'employees: 45  # pending: laptop 2026-11-22T08:30:00.000Z',
      'tags: ["b2b","saas"]  # pending: laptop 2026-11-21T09:00:00.000Z',
      'city: Berlin  # pending: laptop 2026-11-21T09:05:00.000Z',
      'zip: 10115  # pending: laptop 2026-11-21T11:00:00.000Z',
      '',
    ].join('\n'),
    stderr: '6 records not yet compacted\n',
  });
  const j = run(['show', 'companies/acme-corp', '--json'], { cwd: dir });
  expect(j, { code: 0, stderr: '' });
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.fields, { name: 'Acme Corp', employees: 45, tags: ['b2b', 'saas'], city: 'Berlin', zip: '10115' });
  assert.is(doc.version, 1);
  assert.is(doc.exists, false);
  assert.is(doc.pending, 6);
});

test('crm: an unset (null record) removes the field from the view', () => {
  const dir = makeFixture('crm');
  expect(run(['show', 'companies/globex'], { cwd: dir }), { code: 0, stdout: 'companies/globex\nname: Globex  # pending: laptop 2026-11-21T09:10:00.000Z\n', stderr: '3 records not yet compacted\n' });
});

test('crm: log of one field shows its history across both segments', () => {
  const dir = makeFixture('crm');
  expect(run(['log', 'companies/acme-corp', 'employees'], { cwd: dir }), {
    code: 0,
    stdout: '2026-11-21T09:00:00.000Z laptop companies/acme-corp employees 42\n2026-11-22T08:30:00.000Z laptop companies/acme-corp employees 45\n',
    stderr: '',
  });
  const all = ndjson(run(['log', '--json'], { cwd: dir }).stdout);
  assert.is(all.length, 12);
  assert.equal(all.map((e) => e.segment), [...Array(11).fill('wal/20261121_laptop.usv'), 'wal/20261122_laptop.usv']);
  assert.equal(all[0], { version: 1, timestamp: '2026-11-21T09:00:00.000Z', node: 'laptop', target: 'companies/acme-corp', field: 'name', value: 'Acme Corp', hash: all[0].hash, segment: 'wal/20261121_laptop.usv', offset: 0, compacted: false });
  assert.match(String(all[0].hash), /^[0-9a-f]{16}$/);
});

test('crm: status counts pending records per node and entity; reading writes nothing', () => {
  const dir = makeFixture('crm');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['status'], { cwd: dir }), {
      code: 0,
      stdout: 'node laptop\n12 pending records (laptop: 12) in 3 entities\n  companies/acme-corp  6\n  companies/globex  3\n  people/jane-doe  3\n',
      stderr: '',
    });
    run(['show', 'people/jane-doe'], { cwd: dir });
    run(['log'], { cwd: dir });
  }, 'crm read-only');
});

// ---------------------------------------------------------------- cocli

test('cocli: show merges the entity file with V1, V3 and symbol-separated records', () => {
  const dir = makeFixture('cocli');
  expect(run(['show', 'companies/acme-corp'], { cwd: dir }), {
    code: 0,
    stdout: [
      'companies/acme-corp',
      'name: Acme Corporation  # pending: hub 2026-11-20T08:00:00.000Z',
      'domain: acme.example',
      'employees: 42  # pending: pi-01 2026-11-21T07:00:00.000Z',
      'stage: customer  # pending: pi-02 2026-11-21T07:00:00.000Z',
      'website: https://acme.example  # pending: hub 2026-11-20T08:00:01.000Z',
      '---',
      'Met at the trade fair.',
      '',
    ].join('\n'),
    stderr: '6 records not yet compacted\n',
  });
});

test('cocli: equal time and counter: the greater node id wins (pi-02 over pi-01)', () => {
  const dir = makeFixture('cocli');
  const doc = JSON.parse(run(['show', 'companies/acme-corp', '--json'], { cwd: dir }).stdout);
  assert.equal(doc.fields.stage, 'customer');
  assert.equal(doc.sources.stage, { source: 'journal', node: 'pi-02', timestamp: '2026-11-21T07:00:00.000Z' });
  assert.equal(doc.sources.domain, { source: 'file' });
  assert.is(doc.body, 'Met at the trade fair.\n');
  assert.is(doc.exists, true);
});

test('cocli: raw strings, JSON arrays, a V2 record and a null from the symbol-separated file', () => {
  const dir = makeFixture('cocli');
  const j = run(['show', 'companies/globex', '--json'], { cwd: dir });
  expect(j, { code: 0, stderr: '' });
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.fields, { name: 'Globex', city: 'Springfield', tags: ['energy', 'nuclear'], status: 'active' });
  assert.is(doc.pending, 4);
  expect(run(['show', 'companies/initech'], { cwd: dir }), {
    code: 0,
    stdout: 'companies/initech\nname: Initech  # pending: pi-01 2026-11-21T07:30:00.000Z\ncity: Austin  # pending: pi-01 2026-11-21T07:31:00.000Z\n',
    stderr: '2 records not yet compacted\n',
  });
});

test('cocli: log lists all 13 records in the total order', () => {
  const dir = makeFixture('cocli');
  expect(run(['log'], { cwd: dir }), {
    code: 0,
    stdout: [
      '2026-11-20T08:00:00.000Z hub companies/acme-corp employees 40',
      '2026-11-20T08:00:00.000Z hub companies/acme-corp name Acme Corporation',
      '2026-11-20T08:00:01.000Z hub companies/acme-corp website https://acme.example',
      '2026-11-20T08:00:02.000Z hub system heartbeat {"uptime":3600}',
      '2026-11-20T09:00:00.000Z hub companies/globex tags ["energy","nuclear"]',
      '2026-11-20T09:00:00.000Z hub companies/globex city Springfield',
      '2026-11-21T07:00:00.000Z pi-01 companies/acme-corp stage lead',
      '2026-11-21T07:00:00.000Z pi-01 companies/acme-corp employees 42',
      '2026-11-21T07:00:00.000Z pi-02 companies/acme-corp stage customer',
      '2026-11-21T07:30:00.000Z pi-01 companies/initech name Initech',
      '2026-11-21T07:31:00.000Z pi-01 companies/initech city Austin',
      '2026-11-21T08:00:00.000Z pi-02 companies/globex status active',
      '2026-11-21T08:00:00.000Z pi-02 companies/globex phone null',
      '',
    ].join('\n'),
    stderr: '',
  });
  expect(run(['log', 'system'], { cwd: dir }), { code: 0, stdout: '2026-11-20T08:00:02.000Z hub system heartbeat {"uptime":3600}\n', stderr: '' });
  const v3 = ndjson(run(['log', 'companies/initech', '--node', 'pi-01', '--json'], { cwd: dir }).stdout);
  assert.equal(v3.map((e) => [e.field, e.value, e.segment, e.offset]), [
    ['name', 'Initech', 'wal/20261121_pi-01.usv', 162],
    ['city', 'Austin', 'wal/20261121_pi-01.usv', 242],
  ]);
});

test('cocli: status shows pending records per node, the system record and the files walnut has not seen', () => {
  const dir = makeFixture('cocli');
  expect(run(['status'], { cwd: dir }), {
    code: 0,
    stdout: [
      'node hub',
      '13 pending records (hub: 6, pi-01: 4, pi-02: 3) in 3 entities, 1 system',
      '  companies/acme-corp  6',
      '  companies/globex  4',
      '  companies/initech  2',
      'not yet seen by walnut (adopted by walnut record or compact --record):',
      '  companies/acme-corp',
      '  companies/globex',
      '',
    ].join('\n'),
    stderr: '',
  });
  const doc = JSON.parse(run(['status', '--json'], { cwd: dir }).stdout);
  assert.equal(doc, {
    version: 1,
    node: 'hub',
    pending: { total: 13, byNode: { hub: 6, 'pi-01': 4, 'pi-02': 3 }, byEntity: { 'companies/acme-corp': 6, 'companies/globex': 4, 'companies/initech': 2 }, system: 1 },
    modified: [],
    untracked: ['companies/acme-corp', 'companies/globex'],
    missing: [],
    issues: 0,
  });
});

test('cocli: walnut appends its own V1 records to a cocli directory; cocli files stay as they were', () => {
  const dir = makeFixture('cocli');
  const before = snapshotTree(dir);
  expect(run(['set', 'companies/globex', 'city', 'Cypress Creek'], { cwd: dir, env: { WALNUT_NOW: '2026-11-22T10:00:00.000Z' } }), { code: 0, stdout: '', stderr: '' });
  const after = snapshotTree(dir);
  assert.equal(Object.keys(after).filter((k) => !(k in before)), ['wal/20261122_hub.usv']);
  for (const k of Object.keys(before)) assert.is(after[k], before[k], k);
  assert.is(fs.readFileSync(path.join(dir, 'wal/20261122_hub.usv'), 'utf8'), '2026-11-22T10:00:00.000Z\x1fhub\x1fcompanies/globex\x1fcity\x1f"Cypress Creek"\x1fhlc:0\x1e\n');
  assert.equal(JSON.parse(run(['show', 'companies/globex', '--json'], { cwd: dir }).stdout).fields.city, 'Cypress Creek');
});

// ---------------------------------------------------------------- damaged

const DAMAGE = [
  ["wal/20261121_pi-01.usv", 147, 'ETORN', 'torn last record (62 bytes without a terminator); skipped'],
  ["wal/20261121_pi-02.usv", 69, 'EUTF8', 'record is not valid UTF-8; skipped'],
  ["wal/20261121_pi-02.usv", 85, 'EUNITS', 'record has 4 units, expected 6, 7 or 8: "2026-11-21T11:00:01.000Z|pi-02|companies…"'],
  ["wal/20261121_pi-02.usv", 139, 'EUTF8', 'record is not valid UTF-8; skipped'],
  ["wal/20261121_pi-02.usv", 207, 'ETIMESTAMP', 'record timestamp "21/11/2026 11:00" is not ISO-8601 UTC'],
  ["wal/20261121_pi-03.usv", 0, 'ETORN', 'torn last record (24 bytes without a terminator); skipped'],
  ["wal/20261122_pi-01.usv", 0, 'ECLOSED', 'torn record (closed by a later append); skipped'],
] as const;
const WARNINGS = DAMAGE.map(([file, offset, , message]) => `warning: '${file}' at byte ${offset}: ${message}\n`).join('');

test('damaged: show warns about every damaged piece (file and byte) and still shows the good records, exit 0', () => {
  const dir = makeFixture('damaged');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['show', 'companies/acme-corp'], { cwd: dir }), {
      code: 0,
      stdout: 'companies/acme-corp\nname: Acme Corp  # pending: pi-01 2026-11-21T10:00:00.000Z\ncity: Berlin  # pending: pi-01 2026-11-21T10:00:01.000Z\nstage: customer  # pending: pi-01 2026-11-22T06:00:05.000Z\n',
      stderr: WARNINGS + '3 records not yet compacted\n',
    });
    expect(run(['show', 'companies/globex'], { cwd: dir }), {
      code: 0,
      stdout: 'companies/globex\nname: Globex  # pending: pi-02 2026-11-21T11:00:00.000Z\nphone: +1 555 0100  # pending: pi-02 2026-11-21T11:00:04.000Z\n',
      stderr: WARNINGS + '2 records not yet compacted\n',
    });
  }, 'show on damaged journals');
});

test('damaged: log --json gives the five good records and JSON warnings with code, file and offset', () => {
  const dir = makeFixture('damaged');
  const r = run(['log', '--json'], { cwd: dir });
  expect(r, { code: 0 });
  const entries = ndjson(r.stdout);
  assert.equal(entries.map((e) => [e.segment, e.offset, e.field, e.value]), [
    ['wal/20261121_pi-01.usv', 0, 'name', 'Acme Corp'],
    ['wal/20261121_pi-01.usv', 75, 'city', 'Berlin'],
    ['wal/20261121_pi-02.usv', 0, 'name', 'Globex'],
    ['wal/20261121_pi-02.usv', 273, 'phone', '+1 555 0100'],
    ['wal/20261122_pi-01.usv', 63, 'stage', 'customer'],
  ]);
  const warnings = ndjson(r.stderr);
  assert.equal(
    warnings.map((w) => w.warning as Record<string, unknown>).map((w) => [w.file, w.offset, w.code]),
    DAMAGE.map(([file, offset, code]) => [file, offset, code]),
  );
  assert.ok(warnings.every((w) => w.version === 1));
});

test('damaged: status reports the damage as warnings and counts the good records', () => {
  const dir = makeFixture('damaged');
  expect(run(['status'], { cwd: dir }), {
    code: 0,
    stdout: 'node hub\n5 pending records (pi-01: 3, pi-02: 2) in 2 entities\n  companies/acme-corp  3\n  companies/globex  2\n',
    stderr: WARNINGS,
  });
  const j = run(['status', '--json'], { cwd: dir });
  expect(j, { code: 0 });
  assert.is(JSON.parse(j.stdout).issues, 7);
  assert.is(ndjson(j.stderr).length, 7);
});

test.run();
