import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { walnut, tmpDir, BIN, launcherFlags } from './helpers.js';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ok(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = walnut(args, { cwd, env });
  assert.is(r.code, 0, `walnut ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** A bare repository and two clones, each with a walnut data directory `data/`. */
function twoClones() {
  const base = tmpDir();
  const bare = path.join(base, 'origin.git');
  git(base, 'init', '-q', '--bare', '-b', 'main', bare);
  const a = path.join(base, 'a');
  const b = path.join(base, 'b');
  git(base, 'clone', '-q', bare, a);
  git(a, 'checkout', '-q', '-b', 'main');
  ok(['init', 'data', '--node', 'pi-01'], a);
  ok(['-C', 'data', 'hooks', 'install'], a);
  ok(['-C', 'data', 'set', 'companies/acme', 'name', 'Acme'], a);
  ok(['-C', 'data', 'compact'], a);
  git(a, 'add', '-A');
  git(a, 'commit', '-q', '-m', 'first');
  git(a, 'push', '-q', 'origin', 'main');
  git(base, 'clone', '-q', '-b', 'main', bare, b);
  ok(['init', 'data', '--node', 'laptop'], b);
  ok(['-C', 'data', 'hooks', 'install'], b);
  ok(['-C', 'data', 'compact'], b);
  return { a, b, bare };
}

test('the hooks run walnut with node by its path and the flags of bin/walnut.js', () => {
  const { a } = twoClones();
  const hook = fs.readFileSync(path.join(a, '.git/hooks/post-merge'), 'utf8');
  const line = hook.split('\n').find((l) => l.includes(' compact --quiet'))!;
  const flags = launcherFlags();
  const expected = [process.execPath, ...flags, fs.realpathSync(BIN)].map((x) => `'${x}'`).join(' ');
  assert.ok(line.startsWith(expected + ' '), `${line} starts with ${expected}`);
});

test('init keeps .walnut/ out of git', () => {
  const { a } = twoClones();
  assert.is(fs.readFileSync(path.join(a, 'data/.gitignore'), 'utf8'), '/.walnut/\n');
  assert.not.match(git(a, 'ls-files'), /\.walnut\//);
});

test('git pull runs the post-merge hook, which compacts the records it brought', () => {
  const { a, b } = twoClones();
  ok(['-C', 'data', 'set', 'companies/acme', 'employees', '42'], a);
  ok(['-C', 'data', 'set', 'people/jane', 'email', 'jane@example.com'], a);
  ok(['-C', 'data', 'compact'], a);
  git(a, 'add', '-A');
  git(a, 'commit', '-q', '-m', 'more');
  git(a, 'push', '-q', 'origin', 'main');
  git(b, 'pull', '-q', 'origin', 'main');
  assert.is(fs.readFileSync(path.join(b, 'data/companies/acme/_index.md'), 'utf8'), '---\nname: Acme\nemployees: 42\n---\n');
  assert.is(fs.readFileSync(path.join(b, 'data/people/jane/_index.md'), 'utf8'), '---\nemail: jane@example.com\n---\n');
  const st = JSON.parse(ok(['-C', 'data', 'status', '--json'], b).stdout);
  assert.equal(st.modified, [], 'files git brought are not taken for hand edits');
  assert.is(git(b, 'status', '--porcelain', '--', '*.md'), '', 'entity files are clean: walnut computed the same files');
});

test('a file git brought never beats a newer local record', () => {
  const { a, b } = twoClones();
  // b writes a newer value for the field a changes; b has not committed it
  ok(['-C', 'data', 'set', 'companies/acme', 'name', 'Acme Old'], a, { WALNUT_NOW: '2026-11-21T09:00:00.000Z' });
  ok(['-C', 'data', 'compact'], a);
  git(a, 'add', '-A');
  git(a, 'commit', '-q', '-m', 'older rename');
  git(a, 'push', '-q', 'origin', 'main');
  ok(['-C', 'data', 'set', 'companies/acme', 'name', 'Acme New'], b, { WALNUT_NOW: '2099-01-01T00:00:00.000Z' });
  ok(['-C', 'data', 'compact'], b, { WALNUT_NOW: '2099-01-01T00:00:00.000Z' });
  git(b, 'add', '-A');
  git(b, 'commit', '-q', '-m', 'newer rename');
  git(b, 'pull', '-q', '--no-rebase', '--no-edit', '-X', 'theirs', 'origin', 'main');
  assert.match(fs.readFileSync(path.join(b, 'data/companies/acme/_index.md'), 'utf8'), /name: Acme New/);
});

test('pre-commit records hand edits and adds the journal to the commit', () => {
  const { a } = twoClones();
  fs.writeFileSync(path.join(a, 'data/companies/acme/_index.md'), '---\nname: Acme\nowner: jane # by hand\n---\n');
  git(a, 'add', '-A');
  git(a, 'commit', '-q', '-m', 'hand edit');
  const shown = git(a, 'show', '--stat', 'HEAD');
  assert.match(shown, /data\/wal\/\d{8}_pi-01\.usv/, 'the journal segment is part of the commit');
  const log = ok(['-C', 'data', 'log', 'companies/acme', 'owner', '--json'], a).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.map((e) => e.value), ['jane']);
});

test('install is idempotent, honours core.hooksPath, chains an existing hook; uninstall restores it', () => {
  const { a } = twoClones();
  const custom = path.join(a, '.githooks');
  fs.mkdirSync(custom);
  git(a, 'config', 'core.hooksPath', '.githooks');
  fs.writeFileSync(path.join(custom, 'post-merge'), '#!/bin/sh\necho mine > "$(git rev-parse --show-toplevel)/chained-ran"\n', { mode: 0o755 });
  ok(['-C', 'data', 'hooks', 'install'], a);
  const once = fs.readFileSync(path.join(custom, 'post-merge'), 'utf8');
  ok(['-C', 'data', 'hooks', 'install'], a);
  assert.is(fs.readFileSync(path.join(custom, 'post-merge'), 'utf8'), once, 'idempotent');
  assert.ok(fs.existsSync(path.join(custom, 'post-merge.walnut-chained')));
  const st = JSON.parse(ok(['-C', 'data', 'hooks', 'status', '--json'], a).stdout);
  assert.equal(st.hooks.map((h: { name: string; installed: boolean }) => [h.name, h.installed]), [['post-merge', true], ['post-checkout', true], ['post-rewrite', true], ['pre-commit', true]]);
  execFileSync(path.join(custom, 'post-merge'), ['0'], { cwd: a });
  assert.ok(fs.existsSync(path.join(a, 'chained-ran')), 'the previous hook still runs');
  ok(['-C', 'data', 'hooks', 'uninstall'], a);
  assert.match(fs.readFileSync(path.join(custom, 'post-merge'), 'utf8'), /echo mine/);
  assert.not.ok(fs.existsSync(path.join(custom, 'pre-commit')));
});

test('hooks outside a git work tree: clear error, exit 1', () => {
  const dir = path.join(tmpDir(), 'plain');
  ok(['init', dir, '--node', 'pi-01'], tmpDir());
  const r = walnut(['hooks', 'install'], { cwd: dir });
  assert.is(r.code, 1);
  assert.match(r.stderr, /error: '.*' is not inside a git work tree\nhint: /);
});

test.run();
