/**
 * walnut init, end to end: the real built CLI in a temporary folder.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpDir, snapshotTree } from './helpers.js';
import { run, expect, nothingWritten } from './cli-util.js';

test('init <dir> --node creates .walnut/config and wal/, status on stderr, nothing on stdout', () => {
  const dir = path.join(tmpDir(), 'crm');
  expect(run(['init', dir, '--node', 'laptop']), { code: 0, stdout: '', stderr: `Initialized empty walnut data directory in ${dir} (node laptop)\n` });
  assert.is(fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8'), '[core]\n\tnode = laptop\n');
  assert.ok(fs.statSync(path.join(dir, 'wal')).isDirectory());
  assert.not.ok(fs.existsSync(path.join(dir, '.gitignore')), 'no .gitignore outside a git work tree');
});

test('init in the current directory takes the node id from WALNUT_HOSTNAME', () => {
  const dir = tmpDir();
  expect(run(['init'], { cwd: dir, env: { WALNUT_HOSTNAME: 'Pi_01.local' } }), { code: 0, stdout: '', stderr: `Initialized empty walnut data directory in ${dir} (node pi-01)\n` });
  expect(run(['config', 'get', 'core.node'], { cwd: dir }), { code: 0, stdout: 'pi-01\n', stderr: '' });
});

test('init -C <dir> creates that directory', () => {
  const base = tmpDir();
  expect(run(['-C', 'sub/data', 'init', '--node', 'hub'], { cwd: base }), { code: 0, stdout: '' });
  assert.ok(fs.existsSync(path.join(base, 'sub', 'data', '.walnut', 'config')));
});

test('init --json prints one document with the version field', () => {
  const dir = path.join(tmpDir(), 'd');
  const r = run(['init', dir, '--node', 'pi-02', '--json']);
  expect(r, { code: 0, stderr: '' });
  assert.equal(JSON.parse(r.stdout), { version: 1, dir, node: 'pi-02', reinitialized: false, gitignore: false });
  assert.is(r.stdout.split('\n').length, 2, 'one line');
});

test('init --quiet prints nothing', () => {
  const dir = path.join(tmpDir(), 'd');
  expect(run(['init', dir, '--node', 'pi-02', '-q']), { code: 0, stdout: '', stderr: '' });
  assert.ok(fs.existsSync(path.join(dir, '.walnut', 'config')));
});

test('init again keeps the config; a different --node is refused and changes nothing', () => {
  const dir = path.join(tmpDir(), 'd');
  run(['init', dir, '--node', 'laptop']);
  run(['config', 'set', 'remote.origin.url', '/mnt/usb'], { cwd: dir });
  const config = fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8');
  expect(run(['init', dir]), { code: 0, stdout: '', stderr: `Reinitialized existing walnut data directory in ${dir} (node laptop)\n` });
  expect(run(['init', dir, '--node', 'laptop', '--json']), { code: 0, stdout: JSON.stringify({ version: 1, dir, node: 'laptop', reinitialized: true, gitignore: false }) + '\n' });
  nothingWritten(path.dirname(dir), () => {
    expect(run(['init', dir, '--node', 'other']), {
      code: 1,
      stdout: '',
      stderr: `error: '${dir}' is already a data directory of node 'laptop'\nhint: change the node id with 'walnut config set core.node <id>' if you mean it\n`,
    });
  }, 'init with another node id');
  assert.is(fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8'), config);
});

test('init --node with an invalid id: exit 1, clear error, nothing written anywhere', () => {
  const base = tmpDir();
  for (const bad of ['Pi-01', 'pi_01', '-pi', 'pi 01', '', 'a'.repeat(64), '../x']) {
    nothingWritten(base, () => {
      const r = run(['init', path.join(base, 'd'), `--node=${bad}`]);
      expect(r, { code: 1, stdout: '', stderr: `error: invalid node id ${JSON.stringify(bad.length > 40 ? bad.slice(0, 40) + '…' : bad)}\nhint: a node id is lower-case letters, digits and dashes, starting with a letter or digit, e.g. pi-01\n` }, bad);
    }, `--node ${JSON.stringify(bad)}`);
  }
  assert.equal(fs.readdirSync(base), []);
});

test('init inside a git work tree adds /.walnut/ to .gitignore (once), and git ignores it', () => {
  const repo = tmpDir();
  assert.is(spawnSync('git', ['init', '-q', repo]).status, 0);
  fs.writeFileSync(path.join(repo, '.gitignore'), 'node_modules/'); // no final newline
  const r = run(['init', '--node', 'laptop', '--json'], { cwd: repo });
  expect(r, { code: 0, stderr: '' });
  assert.is(JSON.parse(r.stdout).gitignore, true);
  assert.is(fs.readFileSync(path.join(repo, '.gitignore'), 'utf8'), 'node_modules/\n/.walnut/\n');
  run(['init', '--node', 'laptop'], { cwd: repo });
  assert.is(fs.readFileSync(path.join(repo, '.gitignore'), 'utf8'), 'node_modules/\n/.walnut/\n', 'not added twice');
  const ignored = spawnSync('git', ['check-ignore', '.walnut/config'], { cwd: repo, encoding: 'utf8' });
  assert.is(ignored.status, 0, 'git ignores .walnut/config');
  const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: repo, encoding: 'utf8' });
  assert.not.match(status.stdout, /\.walnut/);
});

test('init in a subfolder of a git work tree writes the .gitignore of the data directory', () => {
  const repo = tmpDir();
  assert.is(spawnSync('git', ['init', '-q', repo]).status, 0);
  const dir = path.join(repo, 'data');
  expect(run(['init', dir, '--node', 'laptop']), { code: 0 });
  assert.is(fs.readFileSync(path.join(dir, '.gitignore'), 'utf8'), '/.walnut/\n');
  assert.not.ok(fs.existsSync(path.join(repo, '.gitignore')));
  assert.is(spawnSync('git', ['check-ignore', 'data/.walnut/config'], { cwd: repo }).status, 0);
});

test('init of a cocli-style folder keeps its files as they are', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'wal'));
  fs.mkdirSync(path.join(dir, 'companies', 'acme'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'wal', '20261121_hub.usv'), '2026-11-21T10:00:00.000Z\x1fhub\x1fcompanies/acme\x1fname\x1fAcme\x1f\x1e');
  fs.writeFileSync(path.join(dir, 'companies', 'acme', '_index.md'), '---\nname: Acme\n---\n');
  const before = snapshotTree(dir);
  expect(run(['init', '--node', 'hub'], { cwd: dir }), { code: 0, stdout: '' });
  const after = snapshotTree(dir, { skip: ['.walnut'] });
  assert.equal(after, before);
});

test('init with an unknown option is a usage error (2) with the usage line', () => {
  const base = tmpDir();
  nothingWritten(base, () => {
    expect(run(['init', 'd', '--nod', 'x'], { cwd: base }), { code: 2, stdout: '', stderr: /^error: unknown arguments?: nod.*\nusage: walnut init \[<dir>\] \[--node <id>\]\n$/ });
  }, 'unknown option');
});

test.run();
