/**
 * `walnut checkout`: versions materialised under <dir>/<id>/ with an atomic
 * `current` link; hard links and recycled trees when switching; crash points;
 * a concurrent reader that must never see a mixed or missing version; and
 * `--active --follow` tracking local activations.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { initRepoDir, tmpDir, snapshotTree } from './helpers.js';
import { run, runAsync, ok, git, versionFiles, entityFiles, sameFiles, makeVersion, entity, spawnWalnut, exited, stderrOf, sleep, until, lines as stdoutLines } from './version-helpers.js';

/**
 * Four versions of 20 companies:
 * A: c0..c19 at rev 0; B: c0..c2 at rev 1; C: c3, c4 at rev 2, people/d0 added, c19 deleted;
 * D: c5 at rev 3, people/d1 added.
 */
let four: { data: string; A: string; B: string; C: string; D: string } | undefined;
function fourVersions() {
  if (!four) {
    const data = initRepoDir('pi-01');
    const files: Record<string, string> = {};
    for (let i = 0; i < 20; i++) files[`companies/c${i}`] = entity({ name: `Company ${i}`, rev: 0 });
    const A = makeVersion(data, files);
    const B = makeVersion(data, { 'companies/c0': entity({ name: 'Company 0', rev: 1 }), 'companies/c1': entity({ name: 'Company 1', rev: 1 }), 'companies/c2': entity({ name: 'Company 2', rev: 1 }) });
    ok(['set', 'companies/c19', '@deleted', 'true'], data);
    const C = makeVersion(data, { 'companies/c3': entity({ name: 'Company 3', rev: 2 }), 'companies/c4': entity({ name: 'Company 4', rev: 2 }), 'people/d0': entity({ name: 'D0' }) });
    const D = makeVersion(data, { 'companies/c5': entity({ name: 'Company 5', rev: 3 }), 'people/d1': entity({ name: 'D1' }) });
    four = { data, A, B, C, D };
  }
  return four;
}

/** Entities added, modified and deleted from version x to y, as git sees them. */
function gitDelta(data: string, x: string, y: string): { A: number; M: number; D: number } {
  const out = { A: 0, M: 0, D: 0 };
  for (const line of git(data, ['diff-tree', '-r', '--name-status', x, y]).toString().trim().split('\n')) {
    const [status, file] = line.split('\t');
    if (file && !file.startsWith('.walnut/')) out[status as 'A' | 'M' | 'D']++;
  }
  return out;
}

/** The tree <dir>/<id> holds exactly the version's files, read-only. */
function treeIsVersion(data: string, dir: string, id: string, label: string): void {
  const root = path.join(dir, id);
  const files = entityFiles(root);
  sameFiles(files, versionFiles(data, id), `${label}: ${id.slice(0, 12)}`);
  for (const p of files.keys()) assert.is(fs.statSync(path.join(root, p)).mode & 0o222, 0, `${label}: ${p} is read-only`);
}

const currentOf = (dir: string) => {
  try {
    return fs.readlinkSync(path.join(dir, 'current'));
  } catch {
    return undefined;
  }
};
const trees = (dir: string) => fs.readdirSync(dir).filter((n) => /^[0-9a-f]{40}$/.test(n)).sort();
const ino = (file: string) => fs.statSync(file).ino;

test('checkout <id> <dir>: the version\'s files byte for byte, read-only, and current -> <id>', () => {
  const { data, A } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  const r = ok(['checkout', A.slice(0, 9), dir], data);
  assert.is(r.stdout, `${dir}/current -> ${A}\n`);
  assert.match(r.stderr, new RegExp(`^checked out ${A.slice(0, 12)} in \\d+ ms \\(written: 20 written, 0 linked, 0 removed\\)\\n$`));
  assert.ok(fs.lstatSync(path.join(dir, 'current')).isSymbolicLink(), 'current is a symbolic link');
  assert.is(currentOf(dir), A, 'a relative link to the tree');
  assert.is(fs.realpathSync(path.join(dir, 'current')), path.join(fs.realpathSync(dir), A));
  treeIsVersion(data, dir, A, 'first checkout');
  assert.equal(fs.readdirSync(dir).sort(), ['.walnut-checkout', A, 'current'].sort(), 'nothing else in the folder');
  const again = ok(['checkout', A, dir, '--json'], data);
  const doc = JSON.parse(again.stdout);
  assert.equal({ v: doc.version, id: doc.id, switched: doc.switched, method: doc.method, written: doc.written }, { v: 1, id: A, switched: false, method: 'none', written: 0 });
  const relative = ok(['checkout', A, 'co'], path.dirname(dir), { WALNUT_DIR: data });
  assert.match(relative.stderr, /already points at/, `a relative <dir> is the same folder: ${relative.stderr}`);
});

test('switching: unchanged files hard-linked, a spare tree recycled writing only what changed, previous kept, older trees removed', () => {
  const { data, A, B, C, D } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  ok(['checkout', A, dir], data);
  const json = (args: string[]) => JSON.parse(ok([...args, '--json'], data).stdout);

  // A -> B: no spare yet, so the new tree links what did not change
  const toB = json(['checkout', B, dir]);
  const ab = gitDelta(data, A, B);
  assert.equal({ method: toB.method, written: toB.written, linked: toB.linked, previous: toB.previous }, { method: 'linked', written: ab.A + ab.M, linked: 20 - ab.A - ab.M, previous: A });
  assert.is(ino(path.join(dir, B, 'companies/c7/_index.md')), ino(path.join(dir, A, 'companies/c7/_index.md')), 'an unchanged file is the same inode');
  assert.is.not(ino(path.join(dir, B, 'companies/c0/_index.md')), ino(path.join(dir, A, 'companies/c0/_index.md')), 'a changed file is a new one');
  treeIsVersion(data, dir, B, 'B');
  treeIsVersion(data, dir, A, 'A, the previous tree, untouched');
  assert.equal(trees(dir), [A, B].sort());

  // B -> C with --grace 0: A is the previous tree, never recycled: linked again
  const toC = json(['checkout', C, dir, '--grace', '0']);
  const bc = gitDelta(data, B, C);
  assert.is(toC.method, 'linked');
  assert.is(toC.written, bc.A + bc.M);
  assert.is(toC.linked, versionFiles(data, C).size - bc.A - bc.M);
  treeIsVersion(data, dir, C, 'C');
  assert.equal(trees(dir), [A, B, C].sort(), 'A stays as the spare');

  // C -> D with --grace 0: the spare A is recycled; only the entities that differ from A are written
  const toD = json(['checkout', D, dir, '--grace', '0']);
  const ad = gitDelta(data, A, D);
  assert.equal({ method: toD.method, written: toD.written, removed: toD.removed, linked: toD.linked }, { method: 'recycled', written: ad.A + ad.M, removed: ad.D, linked: 0 });
  assert.ok(toD.written < versionFiles(data, D).size, 'fewer files written than the version holds');
  treeIsVersion(data, dir, D, 'D, made from A');
  for (const id of [B, C]) treeIsVersion(data, dir, id, 'the trees sharing inodes with the recycled one');
  assert.equal(trees(dir), [B, C, D].sort());
  assert.is(currentOf(dir), D);

  // D -> A with the default grace (10 s): the spare B was switched out moments ago, so it is neither
  // recycled nor removed (a reader may still be in it): the new tree links D's unchanged files
  const toA = json(['checkout', A, dir]);
  assert.is(toA.method, 'linked');
  const da = gitDelta(data, D, A);
  assert.is(toA.written, da.A + da.M);
  assert.equal(toA.pruned, []);
  assert.equal(trees(dir), [A, B, C, D].sort());
  treeIsVersion(data, dir, A, 'A again');
  for (const id of [B, C, D]) treeIsVersion(data, dir, id, 'kept');
  // back to the previous tree with --grace 0: instant, nothing written; current (D), previous (A)
  // and the newest spare (C) stay, the older B is removed
  const back = json(['checkout', D, dir, '--grace', '0']);
  assert.equal({ method: back.method, written: back.written, pruned: back.pruned }, { method: 'existing', written: 0, pruned: [B] });
  assert.is(currentOf(dir), D);
  assert.equal(trees(dir), [A, C, D].sort());
  assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('.') && !n.startsWith('.walnut-checkout')), [], 'no leftover');
  for (const id of [A, C, D]) treeIsVersion(data, dir, id, 'after pruning');
});

test('a folder holding other files is refused with ECHECKOUTDIR and left alone', () => {
  const { data, A } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine\n');
  const before = snapshotTree(path.dirname(dir));
  const r = run(['checkout', A, dir], data);
  assert.is(r.code, 1);
  assert.is(r.stdout, '');
  assert.is(r.stderr, `error: '${dir}' cannot be a checkout folder: it holds other files (notes.txt)\nhint: give walnut checkout a new or empty folder (it holds <id>/ trees and the current link)\n`);
  assert.equal(snapshotTree(path.dirname(dir)), before, 'nothing written');
  const file = path.join(tmpDir(), 'plain-file');
  fs.writeFileSync(file, 'x');
  const f = run(['checkout', A, file, '--json'], data);
  assert.is(f.code, 1);
  assert.is(JSON.parse(f.stderr).error.code, 'ECHECKOUTDIR');
  assert.match(JSON.parse(f.stderr).error.message, /it is not a folder$/);
});

test('bad arguments exit 2; an unknown version or no active version exits 1', () => {
  const { data, A } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  const usage: [string[], string][] = [
    [['checkout'], 'error: checkout needs a <version> and a <dir>'],
    [['checkout', A], 'error: checkout needs a <version> and a <dir>'],
    [['checkout', A, dir, '--follow'], 'error: --follow needs --active'],
    [['checkout', '--active', dir, '--interval', '1ms'], 'error: --interval must be at least 10ms'],
  ];
  for (const [args, first] of usage) {
    const r = run(args, data);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr.split('\n')[0], first, args.join(' '));
    assert.match(r.stderr, /\nusage: walnut checkout <version> <dir>/);
  }
  const unknown = run(['checkout', 'abcdef01', dir], data);
  assert.is(unknown.code, 1);
  assert.is(unknown.stderr.split('\n')[0], "error: no version 'abcdef01' in this data directory");
  const noActive = run(['checkout', '--active', dir], data);
  assert.is(noActive.code, 1);
  assert.is(noActive.stderr, 'error: no version is active\nhint: walnut activate <version>\n');
  assert.is(currentOf(dir), undefined, 'no link made');
});

test('a leftover temporary file of a killed run does not make a checkout folder foreign', () => {
  const { data, A, B } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  ok(['checkout', A, dir], data);
  // what a run killed while replacing .walnut-checkout (write-temporary-then-rename) leaves behind
  fs.writeFileSync(path.join(dir, '..walnut-checkout.0badc0de.walnut-tmp'), '{"cur');
  const r = run(['checkout', B, dir], data);
  assert.is(r.code, 0, r.stderr);
  assert.is(currentOf(dir), B);
  treeIsVersion(data, dir, B, 'B');
});

test('concurrent checkouts into one folder: each succeeds or exits 3; current is one whole version', async () => {
  const { data, A, B, C } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  ok(['checkout', A, dir], data);
  for (let round = 0; round < 2; round++) {
    const runs = await Promise.all([B, C, A].map((id) => runAsync(['checkout', id, dir, '--grace', '0'], data)));
    runs.forEach((r) => assert.ok(r.code === 0 || r.code === 3, `exit 0 or 3, not ${r.code}: ${r.stderr}`));
    const cur = currentOf(dir)!;
    assert.ok([A, B, C].includes(cur), 'current is one of them');
    treeIsVersion(data, dir, cur, `round ${round}`);
  }
});

test('crash at checkout:after-build / checkout:after-switch: current is a whole old or new tree; the next run completes', async () => {
  const { data, A, B } = fourVersions();
  const started = Date.now();
  await Promise.all(
    ['checkout:after-build', 'checkout:after-switch'].map(async (point) => {
      const dir = path.join(tmpDir(), 'co');
      ok(['checkout', A, dir], data);
      const crashed = await runAsync(['checkout', B, dir], data, { WALNUT_CRASH_AT: point });
      assert.is(crashed.code, 128, `killed at ${point}: ${crashed.stderr}`);
      const cur = currentOf(dir);
      assert.is(cur, point === 'checkout:after-build' ? A : B, `${point}: current`);
      treeIsVersion(data, dir, cur!, `${point}: the tree current points at`);
      assert.equal(
        fs.readdirSync(dir).filter((n) => n.startsWith('.build-') || n.startsWith('.current-')),
        [],
        `${point}: no half-made tree or link left`,
      );
      // the dead run's lock on the folder is taken over once stale (10 s without renewal): age it,
      // as if the crash had happened a while ago, rather than wait
      const lock = path.join(dir, '.walnut-checkout.lock');
      assert.ok(fs.existsSync(lock), `${point}: the killed run held the folder's lock`);
      const old = (Date.now() - 11_000) / 1000;
      fs.utimesSync(lock, old, old);
      const rerun = await runAsync(['checkout', B, dir, '--json'], data);
      assert.is(rerun.code, 0, `${point}: rerun: ${rerun.stderr}`);
      assert.is(currentOf(dir), B);
      treeIsVersion(data, dir, B, `${point}: after the rerun`);
      treeIsVersion(data, dir, A, `${point}: the previous tree`);
      const doc = JSON.parse(rerun.stdout);
      assert.is(doc.method, point === 'checkout:after-build' ? 'existing' : 'none', `${point}: the rerun reuses the finished tree`);
    }),
  );
  const secs = (Date.now() - started) / 1000;
  assert.ok(secs < 20, `a stale lock is taken over at once: ${secs} s`);
});

/** A reader, as an application would be: resolve current once, read every file, check they are one version. */
const READER = `
const fs = require('fs');
const path = require('path');
const [dir, stop, versionsJson] = process.argv.slice(1);
const versions = JSON.parse(versionsJson); // id -> { v, files }
const r = { passes: 0, seen: {}, errors: [] };
const pause = new Int32Array(new SharedArrayBuffer(4));
while (!fs.existsSync(stop) && r.errors.length < 20) {
  let real;
  try {
    real = fs.realpathSync(path.join(dir, 'current'));
  } catch (e) {
    r.errors.push('current missing: ' + e.code);
    continue;
  }
  try {
    const want = versions[path.basename(real)];
    if (!want) throw new Error('current points at ' + real);
    const vs = new Set();
    let n = 0;
    for (const c of fs.readdirSync(real)) {
      for (const s of fs.readdirSync(path.join(real, c))) {
        const text = fs.readFileSync(path.join(real, c, s, '_index.md'), 'utf8');
        const m = /\\nv: (\\d+)\\n/.exec(text);
        vs.add(m ? Number(m[1]) : -1);
        n++;
      }
    }
    if (vs.size !== 1 || !vs.has(want.v)) r.errors.push('mixed: ' + [...vs].join(',') + ' in ' + path.basename(real) + ' (version ' + want.v + ')');
    else if (n !== want.files) r.errors.push('version ' + want.v + ' had ' + n + ' files, not ' + want.files);
    else r.seen[want.v] = (r.seen[want.v] || 0) + 1;
    r.passes++;
  } catch (e) {
    r.errors.push('read failed: ' + e.message);
  }
  Atomics.wait(pause, 0, 0, 3);
}
process.stdout.write(JSON.stringify(r));
`;

test('a reader looping over current while versions switch never sees a mixed or missing version', async () => {
  // four versions of 20 companies, every file of version n has v: n; each version has one more company.
  // Cycling through four, the target tree is never one of the three kept: each switch recycles the spare.
  const data = initRepoDir('pi-01');
  const ids: string[] = [];
  for (let v = 1; v <= 4; v++) {
    const files: Record<string, string> = {};
    for (let i = 0; i < 19 + v; i++) files[`companies/c${i}`] = entity({ name: `Company ${i}`, v });
    ids.push(makeVersion(data, files));
  }
  const versions = Object.fromEntries(ids.map((id, i) => [id, { v: i + 1, files: 20 + i }]));
  const dir = path.join(tmpDir(), 'co');
  ok(['checkout', ids[0], dir], data);
  const stop = path.join(tmpDir(), 'stop');
  const reader = spawn(process.execPath, ['-e', READER, dir, stop, JSON.stringify(versions)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  reader.stdout.on('data', (d) => (out += d));
  reader.stderr.on('data', (d) => (err += d));
  const methods: string[] = [];
  await sleep(200);
  for (let i = 1; i <= 8; i++) {
    const r = await runAsync(['checkout', ids[i % 4], dir, '--grace', '0', '--json'], data);
    assert.is(r.code, 0, r.stderr);
    methods.push(JSON.parse(r.stdout).method);
    await sleep(30);
  }
  fs.writeFileSync(stop, '');
  const end = await exited(reader);
  assert.is(end.code, 0, err);
  const result = JSON.parse(out) as { passes: number; seen: Record<string, number>; errors: string[] };
  assert.equal(result.errors, [], `the reader saw: ${result.errors.slice(0, 5).join('; ')}`);
  assert.ok(result.passes >= 30, `the reader read often enough: ${result.passes} passes`);
  assert.is(Object.keys(result.seen).length, 4, `the reader saw every version: ${JSON.stringify(result.seen)}`);
  assert.ok(methods.filter((m) => m === 'recycled').length >= 5, `trees were recycled while it read: ${methods}`);
  treeIsVersion(data, dir, ids[8 % 4], 'the last one');
});

test('checkout --active --follow switches within a few intervals of each local activation; SIGTERM stops it', async () => {
  const { data: shared, A, B, C } = fourVersions();
  const data = path.join(tmpDir(), 'data');
  fs.cpSync(shared, data, { recursive: true });
  const ids = [A, B, C];
  ok(['activate', ids[0]], data);
  const dir = path.join(tmpDir(), 'co');
  const follower = spawnWalnut(['checkout', '--active', dir, '--follow', '--interval', '50ms', '--grace', '0'], data);
  const err = stderrOf(follower);
  await until('the first checkout', 10_000, () => (currentOf(dir) === ids[0] ? true : undefined));
  treeIsVersion(data, dir, ids[0], 'the active version');
  // polling starts right after this line
  await until('the follow status line', 10_000, () => (err.text.includes('following the active version') ? true : undefined));
  await sleep(300);
  const delays: number[] = [];
  for (const next of [ids[1], ids[2], ids[0]]) {
    ok(['activate', next], data);
    const switched = fs.statSync(path.join(data, '.walnut', 'active')).mtimeMs;
    await until(`current -> ${next.slice(0, 12)}`, 5000, () => (currentOf(dir) === next ? true : undefined));
    delays.push(Date.now() - switched);
    treeIsVersion(data, dir, next, 'followed');
  }
  assert.ok(Math.max(...delays) < 600, `current followed each activation within a few 50 ms intervals: ${delays.map(Math.round)} ms`);
  await sleep(700); // a dozen more polls with nothing to do
  assert.is(follower.exitCode, null, 'still following');
  follower.kill('SIGTERM');
  const end = await exited(follower);
  assert.equal(end, { code: 0, signal: null }, `SIGTERM stops it cleanly: ${err.text}`);
  assert.is(currentOf(dir), ids[0]);
  const lines = err.text.trim().split('\n');
  assert.equal(lines.filter((l) => l === `following the active version into ${dir} (Ctrl-C to stop)`).length, 1, err.text);
  assert.is(lines.filter((l) => /^checked out [0-9a-f]{12} in \d+ ms /.test(l)).length, 4, `a status line per switch:\n${err.text}`);
  const spares = lines.filter((l) => /^spare tree brought up to [0-9a-f]{12} \(\d+ written, \d+ removed\)$/.test(l)).length;
  assert.is(lines.length, 5 + spares, `only status lines on stderr:\n${err.text}`);
});

test('versions coming faster than the grace period: the newest tree past it is kept as the spare, newer ones too', () => {
  const { data, A, B, C, D } = fourVersions();
  const dir = path.join(tmpDir(), 'co');
  for (const id of [A, B, C, D]) ok(['checkout', id, dir], data);
  assert.equal(trees(dir), [A, B, C, D].sort(), 'all within the default 10 s grace period');
  // A went out of use an hour ago, B just now
  const stateFile = path.join(dir, '.walnut-checkout');
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  state.out[A] = Date.now() - 3600_000;
  fs.writeFileSync(stateFile, JSON.stringify(state));
  // back to C (existing): D becomes previous; B may still be in use; A is the spare, kept
  const back = JSON.parse(ok(['checkout', C, dir, '--json'], data).stdout);
  assert.equal({ method: back.method, pruned: back.pruned }, { method: 'existing', pruned: [] });
  assert.equal(trees(dir), [A, B, C, D].sort());
  // a new version recycles A (past the grace period) instead of linking every file
  const data2 = path.join(tmpDir(), 'data');
  fs.cpSync(data, data2, { recursive: true });
  const E = makeVersion(data2, { 'companies/c9': entity({ name: 'Company 9', rev: 4 }) });
  const toE = JSON.parse(ok(['checkout', E, dir, '--json'], data2).stdout);
  const ae = gitDelta(data2, A, E);
  assert.equal({ method: toE.method, written: toE.written, removed: toE.removed }, { method: 'recycled', written: ae.A + ae.M, removed: ae.D });
  treeIsVersion(data2, dir, E, 'E, made from A');
  assert.equal(trees(dir), [B, C, D, E].sort());
});

test('--follow brings the spare tree up to date between switches: the next switch writes only its change', async () => {
  const data = initRepoDir('pi-01');
  const all: Record<string, string> = {};
  for (let i = 0; i < 12; i++) all[`companies/c${i}`] = entity({ name: `Company ${i}`, rev: 0 });
  const ids = [makeVersion(data, all)];
  // each next version changes two entities (the last one also deletes one and adds one)
  for (let v = 1; v <= 4; v++) ids.push(makeVersion(data, { [`companies/c${2 * v}`]: entity({ name: `Company ${2 * v}`, rev: v }), [`companies/c${2 * v + 1}`]: entity({ name: `Company ${2 * v + 1}`, rev: v }) }));
  ok(['set', 'companies/c11', '@deleted', 'true'], data);
  ids.push(makeVersion(data, { 'people/p1': entity({ name: 'P1' }) }));
  ok(['activate', ids[0]], data);
  const dir = path.join(tmpDir(), 'co');
  const follower = spawnWalnut(['checkout', '--active', dir, '--follow', '--interval', '30ms', '--grace', '0', '--json'], data);
  const out = stdoutLines(follower);
  const err = stderrOf(follower);
  const docFor = (id: string) => until(`the switch to ${id.slice(0, 12)}`, 15_000, () => out.map((l) => JSON.parse(l)).find((d) => d.id === id && d.switched));
  const spareOf = (id: string) => path.join(dir, `.spare-${id}`);
  try {
    await docFor(ids[0]);
    for (let v = 1; v < ids.length; v++) {
      ok(['activate', ids[v]], data);
      const doc = await docFor(ids[v]);
      treeIsVersion(data, dir, ids[v], `switch ${v}`);
      const change = gitDelta(data, ids[v - 1], ids[v]);
      if (v >= 3) {
        // a spare brought up to the version before: exactly the change is written
        assert.is(doc.method, 'recycled', `switch ${v}: ${JSON.stringify(doc)}`);
        assert.is(doc.written, change.A + change.M, `switch ${v} writes only the change: ${JSON.stringify(doc)} vs ${JSON.stringify(change)}`);
        assert.is(doc.removed, change.D);
      }
      if (v >= 2) {
        // between switches the follower makes the spare of this version: a whole copy, never `current`
        await until(`.spare-${ids[v].slice(0, 12)}`, 15_000, () => (fs.existsSync(spareOf(ids[v])) ? true : undefined));
        sameFiles(entityFiles(spareOf(ids[v])), versionFiles(data, ids[v]), `the spare of ${ids[v].slice(0, 12)}`);
        assert.is(currentOf(dir), ids[v]);
        assert.is(fs.readdirSync(dir).filter((n) => n.startsWith('.spare-')).length, 1, 'one spare');
        assert.ok(trees(dir).length <= 3, `current, previous and at most one old tree: ${trees(dir)}`);
      }
    }
  } finally {
    follower.kill('SIGTERM');
    await exited(follower);
  }
  assert.not.match(err.text, /warning|error/, err.text);
  // a one-shot checkout of an older version takes the spare too: only what differs is written
  const last = ids[ids.length - 1];
  assert.ok(fs.existsSync(spareOf(last)), 'the spare of the last version');
  const back = JSON.parse(ok(['checkout', ids[1], dir, '--json'], data).stdout);
  const delta = gitDelta(data, last, ids[1]);
  assert.equal({ method: back.method, written: back.written, removed: back.removed }, { method: 'recycled', written: delta.A + delta.M, removed: delta.D });
  treeIsVersion(data, dir, ids[1], 'back to the first change');
  assert.not.ok(fs.existsSync(spareOf(last)), 'the spare was used');
});

test.run();
