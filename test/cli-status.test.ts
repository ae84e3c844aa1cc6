/**
 * walnut status, end to end: pending records per node and entity, entity
 * files walnut has not seen, edited by hand or removed; damaged journals; a
 * broken config; discovery of the data directory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten, recordLine, ndjson, damageCases, damageWarning, DAMAGE_SEGMENT } from './cli-util.js';

const T = '2026-11-21T10:00:00.000Z';

function withRecords(): string {
  const dir = initRepoDir('hub');
  fs.writeFileSync(path.join(dir, 'wal', '20261121_pi-01.usv'), recordLine([T, 'pi-01', 'companies/acme', 'a', '1', 'hlc:0']) + recordLine([T, 'pi-01', 'companies/acme', 'b', '2', 'hlc:1']) + recordLine([T, 'pi-01', 'system', 'heartbeat', '{}', 'hlc:2']));
  fs.writeFileSync(path.join(dir, 'wal', '20261121_pi-02.usv'), recordLine([T, 'pi-02', 'people/jane', 'name', '"Jane"', 'hlc:0']));
  return dir;
}

test('status of a fresh data directory', () => {
  const dir = initRepoDir('laptop');
  expect(run(['status'], { cwd: dir }), { code: 0, stdout: 'node laptop\nno pending records\n', stderr: '' });
  expect(run(['status', '--json'], { cwd: dir }), {
    code: 0,
    stdout: JSON.stringify({ version: 1, node: 'laptop', pending: { total: 0, byNode: {}, byEntity: {}, system: 0 }, modified: [], untracked: [], missing: [], issues: 0 }) + '\n',
    stderr: '',
  });
});

test('status counts pending records per node and per entity, system records apart; reads only', () => {
  const dir = withRecords();
  nothingWritten(path.dirname(dir), () => {
    expect(run(['status'], { cwd: dir }), { code: 0, stdout: 'node hub\n4 pending records (pi-01: 3, pi-02: 1) in 2 entities, 1 system\n  companies/acme  2\n  people/jane  1\n', stderr: '' });
    const doc = JSON.parse(run(['status', '--json'], { cwd: dir }).stdout);
    assert.equal(doc.pending, { total: 4, byNode: { 'pi-01': 3, 'pi-02': 1 }, byEntity: { 'companies/acme': 2, 'people/jane': 1 }, system: 1 });
  }, 'status');
});

test('status lists entity files walnut has not seen yet', () => {
  const dir = initRepoDir('laptop');
  for (const t of ['companies/acme', 'people/jane']) {
    fs.mkdirSync(path.join(dir, t), { recursive: true });
    fs.writeFileSync(path.join(dir, t, '_index.md'), '---\nname: x\n---\n');
  }
  fs.mkdirSync(path.join(dir, 'companies', 'no-file'));
  fs.mkdirSync(path.join(dir, '.hidden', 'x'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.hidden', 'x', '_index.md'), '---\n---\n');
  expect(run(['status'], { cwd: dir }), { code: 0, stdout: 'node laptop\nno pending records\nnot yet seen by walnut (adopted by walnut record or compact --record):\n  companies/acme\n  people/jane\n', stderr: '' });
});

test('status after compact: a file edited by hand is listed as edited, a removed one as missing', () => {
  const dir = initRepoDir('laptop');
  run(['set', 'companies/acme', 'name', 'Acme'], { cwd: dir, env: { WALNUT_NOW: T } });
  run(['set', 'people/jane', 'name', 'Jane'], { cwd: dir, env: { WALNUT_NOW: T } });
  expect(run(['compact', '-q'], { cwd: dir, env: { WALNUT_NOW: T } }), { code: 0, stdout: '' });
  const before = JSON.parse(run(['status', '--json'], { cwd: dir }).stdout);
  assert.equal([before.modified, before.untracked, before.missing], [[], [], []]);
  fs.appendFileSync(path.join(dir, 'companies', 'acme', '_index.md'), 'A note typed in an editor.\n');
  fs.rmSync(path.join(dir, 'people', 'jane', '_index.md'));
  const after = JSON.parse(run(['status', '--json'], { cwd: dir }).stdout);
  assert.equal([after.modified, after.untracked, after.missing], [['companies/acme'], [], ['people/jane']]);
  const text = run(['status'], { cwd: dir });
  expect(text, { code: 0, stderr: '', stdout: /edited by hand \(recorded by walnut record or compact --record\):\n  companies\/acme\nmissing \(entity file removed\):\n  people\/jane\n$/ });
});

for (const c of damageCases()) {
  test(`status with a journal holding ${c.name}: a warning with file and byte offset, the good records counted, exit 0`, () => {
    const dir = initRepoDir('hub');
    fs.writeFileSync(path.join(dir, DAMAGE_SEGMENT), c.bytes);
    nothingWritten(path.dirname(dir), () => {
      expect(run(['status'], { cwd: dir }), { code: 0, stdout: 'node hub\n2 pending records (pi-02: 2) in 1 entities\n  companies/acme  2\n', stderr: damageWarning(c) });
      const j = run(['status', '--json'], { cwd: dir });
      expect(j, { code: 0 });
      assert.is(JSON.parse(j.stdout).issues, 1);
      assert.equal(ndjson(j.stderr).map((w) => (w.warning as Record<string, unknown>).code), [c.code]);
    }, c.name);
  });
}

const BAD_CONFIGS: Array<[string, string, number, string]> = [
  ['a malformed section header', '[core]\n\tnode = hub\n[remote "origin"\n', 3, 'malformed section header'],
  ['a line that is not key = value', '[core]\n\tnode = hub\n\tthis is not a key\n', 3, 'expected key = value'],
  ['an unterminated quote', '# config\n[core]\n\tnode = "hub\n', 3, 'unterminated quote'],
  ['a key outside any section', 'node = hub\n[core]\n\tnode = hub\n', 1, 'key outside any [section]'],
];

for (const [name, text, line, what] of BAD_CONFIGS) {
  test(`a .walnut/config with ${name}: exit 1, the error says the line and what is wrong, nothing written`, () => {
    const dir = initRepoDir('hub');
    fs.writeFileSync(path.join(dir, '.walnut', 'config'), text);
    nothingWritten(path.dirname(dir), () => {
      expect(run(['status'], { cwd: dir }), { code: 1, stdout: '', stderr: new RegExp(`^error: '.walnut/config': bad config line ${line}: ${what.replace(/[[\]]/g, '\\$&')}: .*\\nhint: config uses git-config syntax: .*\\n$`) });
      const j = run(['status', '--json'], { cwd: dir });
      expect(j, { code: 1, stdout: '' });
      const err = JSON.parse(j.stderr).error;
      assert.is(err.code, 'ECONFIG');
      assert.equal(err.data, { file: '.walnut/config', line });
    }, name);
  });
}

test('a .walnut/config with a syntax error: the message names the file (BUG: only the line is named)', () => {
  const dir = initRepoDir('hub');
  fs.writeFileSync(path.join(dir, '.walnut', 'config'), '[core]\n\tnode = hub\n[remote "origin"\n');
  const r = run(['status'], { cwd: dir });
  expect(r, { code: 1, stdout: '' });
  assert.match(r.stderr, /^error: .*'\.walnut\/config'.*line 3/, 'error names the file and the line');
});

test('a .walnut/config without core.node, or with an invalid one: exit 1', () => {
  const dir = initRepoDir('hub');
  fs.writeFileSync(path.join(dir, '.walnut', 'config'), '[core]\n');
  expect(run(['status'], { cwd: dir }), { code: 1, stdout: '', stderr: /^error: '.*\/\.walnut\/config' has no core\.node\nhint: set it with 'walnut config set core\.node <id>'\n$/ });
  fs.writeFileSync(path.join(dir, '.walnut', 'config'), '[core]\n\tnode = Bad_Node\n');
  expect(run(['status'], { cwd: dir }), { code: 1, stdout: '', stderr: /^error: invalid node id "Bad_Node"\n/ });
});

test('outside a data directory: exit 1 with a hint (text and JSON)', () => {
  const base = tmpDir();
  nothingWritten(base, () => {
    expect(run(['status'], { cwd: base }), { code: 1, stdout: '', stderr: `error: not a walnut data directory (or any of the parent directories): '${base}'\nhint: run 'walnut init' to make this directory one, or pass -C <dir> or set WALNUT_DIR\n` });
    const j = run(['status', '--json'], { cwd: base });
    expect(j, { code: 1, stdout: '' });
    assert.equal(JSON.parse(j.stderr), { version: 1, error: { code: 'ENOREPO', message: `not a walnut data directory (or any of the parent directories): '${base}'`, data: { dir: base }, hints: ["run 'walnut init' to make this directory one, or pass -C <dir> or set WALNUT_DIR"] } });
  }, 'outside');
});

test('discovery: -C, WALNUT_DIR, walking up from a subfolder', () => {
  const dir = withRecords();
  const sub = path.join(dir, 'companies', 'acme', 'deeper');
  fs.mkdirSync(sub, { recursive: true });
  const want = { code: 0, stdout: /^node hub\n4 pending records/, stderr: '' };
  expect(run(['status'], { cwd: sub }), want, 'walk up');
  expect(run(['-C', dir, 'status'], { cwd: tmpDir() }), want, '-C');
  expect(run(['status', '-C', dir], { cwd: tmpDir() }), want, '-C after the command');
  expect(run(['status'], { cwd: tmpDir(), env: { WALNUT_DIR: dir } }), want, 'WALNUT_DIR');
  expect(run(['-C', 'companies', 'status'], { cwd: dir }), { code: 1, stdout: '', stderr: /^error: '.*\/companies' is not a walnut data directory \(no \.walnut\/ folder\)\n/ });
});

test('status --cluster shows the gossip view instead (no daemon here)', () => {
  const dir = initRepoDir('laptop');
  expect(run(['status', '--cluster'], { cwd: dir }), { code: 0, stdout: /^gossip: not running\nNODE .*\nlaptop \* /, stderr: '' });
  const doc = JSON.parse(run(['status', '--cluster', '--json'], { cwd: dir }).stdout);
  assert.is(doc.version, 1);
  assert.is(doc.node, 'laptop');
  assert.equal(doc.nodes.map((n: { node: string; self: boolean }) => [n.node, n.self]), [['laptop', true]]);
});

test('status with an extra argument: usage error (2) with the usage line', () => {
  const dir = initRepoDir('laptop');
  expect(run(['status', 'extra'], { cwd: dir }), { code: 2, stdout: '', stderr: /^error: unknown argument: extra\nusage: walnut status \[--cluster\] \[--json\]\n$/ });
});

test.run();
