/**
 * walnut log, end to end: history with filters, NDJSON, damaged journals.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, makeFixture, tmpDir } from './helpers.js';
import { run, expect, nothingWritten, recordLine, ndjson, damageCases, damageWarning, DAMAGE_SEGMENT, DAMAGE_T1, DAMAGE_T2 } from './cli-util.js';

function twoNodes(): string {
  const dir = initRepoDir('hub');
  fs.writeFileSync(
    path.join(dir, 'wal', '20261121_pi-01.usv'),
    recordLine(['2026-11-21T08:00:00.000Z', 'pi-01', 'companies/acme', 'stage', '"lead"', 'hlc:0']) + recordLine(['2026-11-21T12:00:00.000Z', 'pi-01', 'companies/acme', 'employees', '40', 'hlc:0']),
  );
  fs.writeFileSync(
    path.join(dir, 'wal', '20261121_pi-02.usv'),
    recordLine(['2026-11-21T09:00:00.000Z', 'pi-02', 'companies/acme', 'stage', '"customer"', 'hlc:0']) + recordLine(['2026-11-21T09:00:00.000Z', 'pi-02', 'people/jane', 'name', '"Jane"', 'hlc:1']) + recordLine(['2026-11-21T10:00:00.000Z', 'pi-02', 'system', 'heartbeat', '{"up":1}', 'hlc:0']),
  );
  return dir;
}

test('log lists every record oldest first: time, node, target, field, value', () => {
  const dir = twoNodes();
  nothingWritten(path.dirname(dir), () => {
    expect(run(['log'], { cwd: dir }), {
      code: 0,
      stdout: [
        '2026-11-21T08:00:00.000Z pi-01 companies/acme stage lead',
        '2026-11-21T09:00:00.000Z pi-02 companies/acme stage customer',
        '2026-11-21T09:00:00.000Z pi-02 people/jane name Jane',
        '2026-11-21T10:00:00.000Z pi-02 system heartbeat {"up":1}',
        '2026-11-21T12:00:00.000Z pi-01 companies/acme employees 40',
        '',
      ].join('\n'),
      stderr: '',
    });
  }, 'log');
});

test('log <target> and log <target> <field>', () => {
  const dir = twoNodes();
  expect(run(['log', 'companies/acme', 'stage'], { cwd: dir }), { code: 0, stdout: '2026-11-21T08:00:00.000Z pi-01 companies/acme stage lead\n2026-11-21T09:00:00.000Z pi-02 companies/acme stage customer\n', stderr: '' });
  expect(run(['log', 'people/jane'], { cwd: dir }), { code: 0, stdout: '2026-11-21T09:00:00.000Z pi-02 people/jane name Jane\n', stderr: '' });
  expect(run(['log', 'system'], { cwd: dir }), { code: 0, stdout: '2026-11-21T10:00:00.000Z pi-02 system heartbeat {"up":1}\n', stderr: '' });
  expect(run(['log', 'companies/nobody'], { cwd: dir }), { code: 0, stdout: '', stderr: '' });
});

test('log --node and --since (ISO time and a duration ago, with WALNUT_NOW)', () => {
  const dir = twoNodes();
  expect(run(['log', '--node', 'pi-01'], { cwd: dir }), { code: 0, stdout: '2026-11-21T08:00:00.000Z pi-01 companies/acme stage lead\n2026-11-21T12:00:00.000Z pi-01 companies/acme employees 40\n', stderr: '' });
  expect(run(['log', '--since', '2026-11-21T10:00:00Z'], { cwd: dir }), { code: 0, stdout: '2026-11-21T10:00:00.000Z pi-02 system heartbeat {"up":1}\n2026-11-21T12:00:00.000Z pi-01 companies/acme employees 40\n', stderr: '' });
  expect(run(['log', '--since', '1h'], { cwd: dir, env: { WALNUT_NOW: '2026-11-21T12:30:00.000Z' } }), { code: 0, stdout: '2026-11-21T12:00:00.000Z pi-01 companies/acme employees 40\n', stderr: '' });
  expect(run(['log', 'companies/acme', '--node', 'pi-02', '--since', '2026-11-21'], { cwd: dir }), { code: 0, stdout: '2026-11-21T09:00:00.000Z pi-02 companies/acme stage customer\n', stderr: '' });
});

test('log --json: NDJSON, one document per record, with hash, segment and offset', () => {
  const dir = twoNodes();
  const r = run(['log', 'companies/acme', '--json'], { cwd: dir });
  expect(r, { code: 0, stderr: '' });
  const docs = ndjson(r.stdout);
  assert.is(docs.length, 3);
  assert.equal(docs[1], { version: 1, timestamp: '2026-11-21T09:00:00.000Z', node: 'pi-02', target: 'companies/acme', field: 'stage', value: 'customer', hash: docs[1].hash, segment: 'wal/20261121_pi-02.usv', offset: 0, compacted: false });
  assert.match(String(docs[1].hash), /^[0-9a-f]{16}$/);
  assert.equal(docs.map((d) => d.offset), [0, 0, 66]);
});

test('log lists a record held both in wal/ and .walnut/gossip/ once', () => {
  const dir = twoNodes();
  fs.mkdirSync(path.join(dir, '.walnut', 'gossip'));
  fs.copyFileSync(path.join(dir, 'wal', '20261121_pi-01.usv'), path.join(dir, '.walnut', 'gossip', '20261121_pi-01.usv'));
  assert.is(ndjson(run(['log', '--json'], { cwd: dir }).stdout).length, 5);
});

test('log of the cocli fixture reads raw values and V3 records', () => {
  const dir = makeFixture('cocli');
  expect(run(['log', 'companies/acme-corp', 'employees'], { cwd: dir }), { code: 0, stdout: '2026-11-20T08:00:00.000Z hub companies/acme-corp employees 40\n2026-11-21T07:00:00.000Z pi-01 companies/acme-corp employees 42\n', stderr: '' });
});

for (const c of damageCases()) {
  test(`log with a journal holding ${c.name}: a warning with file and byte offset, the good records, exit 0`, () => {
    const dir = initRepoDir('hub');
    fs.writeFileSync(path.join(dir, DAMAGE_SEGMENT), c.bytes);
    nothingWritten(path.dirname(dir), () => {
      expect(run(['log'], { cwd: dir }), { code: 0, stdout: `${DAMAGE_T1} pi-02 companies/acme name Acme\n${DAMAGE_T2} pi-02 companies/acme city Berlin\n`, stderr: damageWarning(c) });
      const j = run(['log', '--json'], { cwd: dir });
      expect(j, { code: 0 });
      assert.equal(ndjson(j.stdout).map((d) => d.value), ['Acme', 'Berlin']);
      assert.equal(ndjson(j.stderr), [{ version: 1, warning: { message: damageWarning(c).slice('warning: '.length, -1), code: c.code, file: DAMAGE_SEGMENT, offset: c.offset } }]);
    }, c.name);
  });
}

test('log with an invalid node id: exit 1', () => {
  const dir = twoNodes();
  expect(run(['log', '--node', 'PI_01'], { cwd: dir }), { code: 1, stdout: '', stderr: 'error: invalid node id "PI_01"\nhint: a node id is lower-case letters, digits and dashes, starting with a letter or digit, e.g. pi-01\n' });
});

test('log with an invalid --since: usage error (2) with a hint and the usage line', () => {
  const dir = twoNodes();
  expect(run(['log', '--since', 'yesterday'], { cwd: dir }), {
    code: 2,
    stdout: '',
    stderr: 'error: invalid time "yesterday"\nhint: use an ISO-8601 time (2026-11-21 or 2026-11-21T10:00:00Z) or a duration ago (2h, 3d)\nusage: walnut log [<target> [<field>]] [--node <id>] [--since <time>] [--json]\n',
  });
});

for (const target of ['../x', 'a/..', 'a/b/c', 'a//b', 'a/.b']) {
  test(`log with a bad target ${JSON.stringify(target)}: exit 1`, () => {
    const dir = twoNodes();
    const r = run(['log', target, '--json'], { cwd: dir });
    expect(r, { code: 1, stdout: '' });
    assert.is(JSON.parse(r.stderr).error.code, 'ETARGET');
  });
}

test('log outside a data directory: exit 1 with a hint', () => {
  const base = tmpDir();
  expect(run(['log'], { cwd: base }), { code: 1, stdout: '', stderr: /^error: not a walnut data directory .*\nhint: / });
});

test('log | head: a closed pipe ends walnut quietly', async () => {
  const dir = initRepoDir('pi-01');
  const input = Array.from({ length: 20000 }, (_, i) => JSON.stringify({ target: 'a/b', field: 'f', value: i })).join('\n');
  run(['set', '--batch', '-q'], { cwd: dir, input });
  const { spawnSync } = await import('node:child_process');
  const { BIN } = await import('./helpers.js');
  const r = spawnSync('sh', ['-c', `node '${BIN}' log | head -n 2`], { cwd: dir, encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.is(r.stdout.split('\n').length, 3);
  assert.is(r.stderr, '');
});

test.run();
