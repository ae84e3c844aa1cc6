import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { walnut, walnutAsync, initRepoDir, tmpDir, snapshotTree } from './helpers.js';
import { CRASH_POINTS } from '../lib/compact.js';

const NOW = { WALNUT_NOW: '2026-11-21T10:00:00.000Z' };
const FAST_LEASE = { WALNUT_LEASE_STALE_MS: '2000' };

function ok(args: string[], cwd: string, env: Record<string, string> = {}, input?: string) {
  const r = walnut(args, { cwd, env: { ...NOW, ...env }, input });
  assert.is(r.code, 0, `walnut ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}

function read(dir: string, target: string): string {
  return fs.readFileSync(path.join(dir, target, '_index.md'), 'utf8');
}

/** Only the entity files: what compaction must produce identically. */
function entityFiles(dir: string) {
  return snapshotTree(dir, { skip: ['.walnut', 'wal'] });
}

/** A data directory with compacted files, hand edits, and new records from two nodes. */
function scenario(): string {
  const dir = initRepoDir('pi-01');
  const batch = [];
  for (let i = 0; i < 40; i++) batch.push(JSON.stringify({ target: `companies/c${i}`, field: 'name', value: `Company ${i}` }));
  ok(['set', '--batch'], dir, {}, batch.join('\n'));
  ok(['compact'], dir);
  // a hand edit keeping a comment, and a brand new file written by hand
  fs.writeFileSync(path.join(dir, 'companies/c1/_index.md'), '---\n# keep me\nname: "Company One"  # edited\nowner: jane\n---\nBody by hand.\n');
  fs.mkdirSync(path.join(dir, 'people/bob'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'people/bob/_index.md'), '---\nname: Bob\n---\n');
  // new records: this node and a second node's segment (as pulled)
  const more = [];
  for (let i = 0; i < 40; i += 3) more.push(JSON.stringify({ target: `companies/c${i}`, field: 'employees', value: i * 10 }));
  more.push(JSON.stringify({ target: 'companies/c2', field: 'name', value: null }));
  more.push(JSON.stringify({ target: 'companies/c5', field: '@deleted', value: true }));
  ok(['set', '--batch'], dir, { WALNUT_NOW: '2026-11-21T11:00:00.000Z' }, more.join('\n'));
  const other = initRepoDir('laptop');
  ok(['set', '--batch'], other, { WALNUT_NOW: '2026-11-21T12:00:00.000Z' }, [JSON.stringify({ target: 'companies/c3', field: 'name', value: 'Laptop Three' }), JSON.stringify({ target: 'companies/c1', field: 'city', value: 'Oslo' })].join('\n'));
  for (const f of fs.readdirSync(path.join(other, 'wal'))) fs.copyFileSync(path.join(other, 'wal', f), path.join(dir, 'wal', f));
  return dir;
}

function copyDir(dir: string): string {
  const to = path.join(tmpDir(), 'copy');
  fs.cpSync(dir, to, { recursive: true, preserveTimestamps: true });
  return to;
}

test('compaction applies winners, keeps hand edits and formatting', () => {
  const dir = scenario();
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/c1'), '---\n# keep me\nname: "Company One"  # edited\nowner: jane\ncity: Oslo\n---\nBody by hand.\n');
  assert.is(read(dir, 'companies/c3'), '---\nname: Laptop Three\nemployees: 30\n---\n');
  assert.is(read(dir, 'companies/c2'), '---\n---\n');
  assert.not.ok(fs.existsSync(path.join(dir, 'companies/c5/_index.md')), 'deleted entity');
  assert.ok(fs.existsSync(path.join(dir, '.walnut/trash/companies/c5')), 'deleted entity kept in trash');
  const log = ok(['log', 'companies/c1', '--json'], dir).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.filter((e) => e.field === 'owner').map((e) => e.value), ['jane'], 'the hand edit became a record');
  assert.equal(log.filter((e) => e.field === '@body').map((e) => e.value), ['Body by hand.\n']);
  // a file no new record touches is not looked at by a plain compaction
  assert.equal(JSON.parse(ok(['status', '--json'], dir).stdout).untracked, ['people/bob']);
  const doc = JSON.parse(ok(['compact', '--record', '--json'], dir).stdout);
  assert.is(doc.adopted, 1);
  assert.is(read(dir, 'people/bob'), '---\nname: Bob\n---\n', 'a file walnut never saw is adopted as it is');
  const st = JSON.parse(ok(['status', '--json'], dir).stdout);
  assert.equal(st.modified, []);
  assert.equal(st.untracked, []);
});

test('untouched files are not written again; a rerun is idle and silent', () => {
  const dir = scenario();
  ok(['compact'], dir);
  const before = fs.statSync(path.join(dir, 'companies/c7/_index.md')).mtimeMs;
  const r1 = ok(['compact'], dir);
  const r2 = ok(['compact'], dir);
  assert.is(r1.stderr + r2.stderr, '', 'cron-quiet when there is nothing to do');
  assert.is(r2.stdout, '');
  assert.is(fs.statSync(path.join(dir, 'companies/c7/_index.md')).mtimeMs, before);
});

test('an older record never overwrites a newer value, whatever the arrival order', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'stage', 'customer'], dir, { WALNUT_NOW: '2026-11-21T12:00:00.000Z' });
  ok(['compact'], dir);
  const old = initRepoDir('pi-02');
  ok(['set', 'companies/x', 'stage', 'lead'], old, { WALNUT_NOW: '2026-11-21T09:00:00.000Z' });
  ok(['set', 'companies/x', 'phone', '555'], old, { WALNUT_NOW: '2026-11-21T09:00:01.000Z' });
  for (const f of fs.readdirSync(path.join(old, 'wal'))) fs.copyFileSync(path.join(old, 'wal', f), path.join(dir, 'wal', f));
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/x'), '---\nstage: customer\nphone: 555\n---\n');
});

test('a hand edit loses to a newer record from another node, and stays in the log', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'stage', 'lead'], dir);
  ok(['compact'], dir);
  fs.writeFileSync(path.join(dir, 'companies/x/_index.md'), '---\nstage: prospect\n---\n');
  ok(['record'], dir, { WALNUT_NOW: '2026-11-21T10:00:01.000Z' });
  const other = initRepoDir('hub');
  ok(['set', 'companies/x', 'stage', 'customer'], other, { WALNUT_NOW: '2026-11-21T10:00:02.000Z' });
  for (const f of fs.readdirSync(path.join(other, 'wal'))) fs.copyFileSync(path.join(other, 'wal', f), path.join(dir, 'wal', f));
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/x'), '---\nstage: customer\n---\n');
  const values = ok(['log', 'companies/x', 'stage', '--json'], dir).stdout.trim().split('\n').map((l) => JSON.parse(l).value);
  assert.equal(values, ['lead', 'prospect', 'customer']);
});

test('broken frontmatter: reported with file and line, left untouched, applied once fixed', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/ok', 'name', 'OK'], dir);
  ok(['set', 'companies/bad', 'name', 'Bad'], dir);
  ok(['compact'], dir);
  const broken = '---\nname: Bad\n  city: [unclosed\n---\n';
  fs.writeFileSync(path.join(dir, 'companies/bad/_index.md'), broken);
  ok(['set', 'companies/bad', 'employees', '3'], dir);
  ok(['set', 'companies/ok', 'employees', '4'], dir);
  const r = walnut(['compact'], { cwd: dir, env: NOW });
  assert.is(r.code, 0);
  assert.match(r.stderr, /warning: 'companies\/bad\/_index.md' line \d+: frontmatter does not parse/);
  assert.is(read(dir, 'companies/bad'), broken, 'left byte for byte');
  assert.is(read(dir, 'companies/ok'), '---\nname: OK\nemployees: 4\n---\n');
  fs.writeFileSync(path.join(dir, 'companies/bad/_index.md'), '---\nname: Bad\n---\n');
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/bad'), '---\nname: Bad\nemployees: 3\n---\n', 'the deferred record is applied after the fix');
});

test('delete then re-create: the same file whether the deletion was compacted alone or not', () => {
  const make = () => {
    const dir = initRepoDir('pi-01');
    ok(['set', 'companies/x', 'old', '1'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
    ok(['compact'], dir);
    return dir;
  };
  const later = [JSON.stringify({ target: 'companies/x', field: '@deleted', value: true })];
  const a = make();
  const b = make();
  ok(['set', '--batch'], a, { WALNUT_NOW: '2026-11-21T11:00:00.000Z' }, later.join('\n'));
  ok(['set', '--batch'], b, { WALNUT_NOW: '2026-11-21T11:00:00.000Z' }, later.join('\n'));
  ok(['compact'], a); // a compacts the deletion alone
  ok(['set', 'companies/x', 'new', '2'], a, { WALNUT_NOW: '2026-11-21T12:00:00.000Z' });
  ok(['set', 'companies/x', 'new', '2'], b, { WALNUT_NOW: '2026-11-21T12:00:00.000Z' });
  ok(['compact'], a);
  ok(['compact'], b);
  assert.is(read(a, 'companies/x'), '---\nnew: 2\n---\n');
  assert.is(read(b, 'companies/x'), read(a, 'companies/x'));
});

test('a deleted entity restored from the trash by hand is recorded in full', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'name', 'X'], dir);
  ok(['compact'], dir);
  ok(['set', 'companies/x', '@deleted', 'true'], dir);
  ok(['compact'], dir);
  const trashed = path.join(dir, '.walnut/trash/companies/x', fs.readdirSync(path.join(dir, '.walnut/trash/companies/x'))[0]);
  fs.mkdirSync(path.join(dir, 'companies/x'), { recursive: true });
  fs.copyFileSync(trashed, path.join(dir, 'companies/x/_index.md'));
  ok(['compact'], dir);
  assert.equal(JSON.parse(ok(['status', '--json'], dir).stdout).modified, ['companies/x'], 'no new record touches it: not looked at');
  ok(['compact', '--record'], dir);
  assert.is(read(dir, 'companies/x'), '---\nname: X\n---\n');
  const fields = ok(['log', 'companies/x', '--json'], dir).stdout.trim().split('\n').map((l) => JSON.parse(l)).map((e) => `${e.field}=${JSON.stringify(e.value)}`);
  assert.equal(fields, ['name="X"', '@deleted=true', '@deleted=false', 'name="X"']);
});

test('--dry-run shows changes and writes nothing', () => {
  const dir = scenario();
  const before = snapshotTree(dir);
  const r = ok(['compact', '--dry-run'], dir);
  assert.match(r.stdout, /update companies\/c3\n {2}name: Company 3 -> Laptop Three/);
  assert.match(r.stdout, /delete companies\/c5/);
  assert.equal(snapshotTree(dir), before);
});

test('--json summary', () => {
  const dir = scenario();
  const doc = JSON.parse(ok(['compact', '--json'], dir).stdout);
  assert.is(doc.version, 1);
  assert.is(doc.deleted, 1);
  assert.is(doc.adopted, 0, 'people/bob: no record touches it');
  assert.ok(doc.records >= 16);
  assert.is(doc.recorded, 3, 'companies/c1 (touched by a record): name, owner, body');
  const again = scenario();
  const swept = JSON.parse(ok(['compact', '--record', '--json'], again).stdout);
  assert.is(swept.adopted, 1);
  assert.is(swept.recorded, 3);
});

for (const point of CRASH_POINTS) {
  test(`crash at ${point}: the rerun gives byte-identical files and loses no record`, () => {
    const base = scenario();
    const a = copyDir(base);
    const b = copyDir(base);
    ok(['compact'], a);
    const crashed = walnut(['compact'], { cwd: b, env: { ...NOW, WALNUT_CRASH_AT: point } });
    assert.is(crashed.code, 128, `the process was killed at ${point} (exit ${crashed.code}: ${crashed.stderr})`);
    ok(['compact', '--wait', '20s'], b, FAST_LEASE);
    assert.equal(entityFiles(b), entityFiles(a));
    const records = (dir: string) => ok(['log', '--json'], dir).stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.target !== 'system').map((e) => `${e.node} ${e.target} ${e.field} ${JSON.stringify(e.value)}`).sort();
    assert.equal(records(b), records(a), 'no record lost, none recorded twice');
    ok(['compact'], b);
    assert.equal(entityFiles(b), entityFiles(a), 'and stays so');
  });
}

test('an index in format 1 is read, then rewritten in format 2: the same files as without the migration', () => {
  const base = scenario();
  ok(['compact'], base);
  const more = [];
  for (let i = 0; i < 40; i += 4) more.push(JSON.stringify({ target: `companies/c${i}`, field: 'stage', value: `s${i}` }));
  ok(['set', '--batch'], base, { WALNUT_NOW: '2026-11-21T13:00:00.000Z' }, more.join('\n'));
  const a = copyDir(base);
  const b = copyDir(base);
  // b: the same index as format 1 wrote it (a log of lines after a header), no stat cache
  const index = path.join(b, '.walnut/index');
  const text = fs.readFileSync(index, 'utf8');
  assert.ok(text.startsWith('walnut-index 2 '));
  fs.writeFileSync(index, 'walnut-index 1\n' + text.slice(text.indexOf('\n') + 1));
  fs.rmSync(path.join(b, '.walnut/stat'));
  fs.writeFileSync(path.join(b, 'companies/c9/_index.md'), '---\nname: Nine by hand\n---\n');
  fs.writeFileSync(path.join(a, 'companies/c9/_index.md'), '---\nname: Nine by hand\n---\n');
  assert.equal(JSON.parse(ok(['status', '--json'], b).stdout).modified, ['companies/c9'], 'status reads format 1');
  ok(['compact', '--record'], a);
  ok(['compact', '--record'], b);
  assert.equal(entityFiles(b), entityFiles(a));
  assert.ok(fs.readFileSync(index, 'utf8').startsWith('walnut-index 2 '), 'rewritten in format 2');
  for (const dir of [a, b]) {
    const st = JSON.parse(ok(['status', '--json'], dir).stdout);
    assert.equal([st.modified, st.untracked, st.missing], [[], [], []]);
  }
});

test('files and hidden folders in a collection folder are not entities', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'a', '1'], dir);
  ok(['compact'], dir);
  fs.writeFileSync(path.join(dir, 'companies/README.md'), 'notes\n');
  fs.mkdirSync(path.join(dir, 'companies/.cache/y'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'companies/.cache/_index.md'), '---\nb: 2\n---\n');
  fs.mkdirSync(path.join(dir, 'companies/empty'));
  const st = JSON.parse(ok(['status', '--json'], dir).stdout);
  assert.equal([st.modified, st.untracked, st.missing], [[], [], []]);
  ok(['set', 'companies/x', 'a', '2'], dir);
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/x'), '---\na: 2\n---\n');
});

test('a lost or stale stat cache: hand edits and deletions are still found', () => {
  const dir = scenario();
  ok(['compact'], dir);
  const stat = path.join(dir, '.walnut/stat');
  const old = fs.readFileSync(stat);
  fs.writeFileSync(path.join(dir, 'companies/c4/_index.md'), '---\nname: Four by hand\n---\n');
  fs.rmSync(path.join(dir, 'companies/c6'), { recursive: true });
  fs.rmSync(stat);
  const st = JSON.parse(ok(['status', '--json'], dir).stdout);
  assert.equal([st.modified, st.missing], [['companies/c4'], ['companies/c6']]);
  ok(['compact', '--record'], dir);
  fs.writeFileSync(stat, old); // the cache of an older generation
  fs.writeFileSync(path.join(dir, 'companies/c8/_index.md'), '---\nname: Eight by hand\n---\n');
  const st2 = JSON.parse(ok(['status', '--json'], dir).stdout);
  assert.equal([st2.modified, st2.missing], [['companies/c8'], []]);
  ok(['record'], dir);
  assert.is(read(dir, 'companies/c4'), '---\nname: Four by hand\n---\n');
  assert.not.ok(fs.existsSync(path.join(dir, 'companies/c6')));
  const log = ok(['log', 'companies/c6', '@deleted', '--json'], dir).stdout.trim().split('\n').map((l) => JSON.parse(l).value);
  assert.equal(log, [true]);
});

test('a run of several chunks writes on the worker thread; killed after its first write, the rerun gives the same files', () => {
  const base = initRepoDir('pi-01');
  const batch = [];
  for (let i = 0; i < 4500; i++) batch.push(JSON.stringify({ target: `companies/c${i}`, field: 'name', value: `Company ${i}` }), JSON.stringify({ target: `companies/c${i}`, field: 'n', value: i }));
  ok(['set', '--batch'], base, {}, batch.join('\n'));
  const a = copyDir(base);
  const b = copyDir(base);
  const r = JSON.parse(ok(['compact', '--json'], a).stdout);
  assert.is(r.created, 4500);
  assert.is(read(a, 'companies/c4321'), '---\nname: Company 4321\nn: 4321\n---\n');
  const crashed = walnut(['compact'], { cwd: b, env: { ...NOW, WALNUT_CRASH_AT: 'compact:after-first-write' } });
  assert.is(crashed.code, 128, crashed.stderr);
  ok(['compact', '--wait', '20s'], b, FAST_LEASE);
  assert.equal(entityFiles(b), entityFiles(a));
  for (const dir of [a, b]) {
    const st = JSON.parse(ok(['status', '--json'], dir).stdout);
    assert.equal([st.modified, st.untracked, st.missing], [[], [], []]);
    assert.equal(fs.readdirSync(path.join(dir, 'companies/c17')), ['_index.md'], 'no temporary file left');
  }
});

test('concurrent set during compaction: every record applied exactly once', async () => {
  const dir = initRepoDir('pi-01');
  const batch = [];
  for (let i = 0; i < 3000; i++) batch.push(JSON.stringify({ target: `companies/c${i % 300}`, field: `f${i % 7}`, value: i }));
  ok(['set', '--batch'], dir, {}, batch.join('\n'));
  const writer = (async () => {
    for (let i = 0; i < 30; i++) {
      const r = await walnutAsync(['set', `companies/live`, `k${i}`, String(i)], { cwd: dir });
      assert.is(r.code, 0, r.stderr);
    }
  })();
  const compactions = (async () => {
    for (let i = 0; i < 6; i++) {
      const r = await walnutAsync(['compact', '--wait', '30s'], { cwd: dir });
      assert.is(r.code, 0, r.stderr);
    }
  })();
  await Promise.all([writer, compactions]);
  ok(['compact'], dir);
  const text = read(dir, 'companies/live');
  for (let i = 0; i < 30; i++) assert.ok(text.includes(`k${i}: ${i}\n`), `k${i} applied`);
  assert.is(text.split('\n').filter((l) => l.startsWith('k')).length, 30, 'each once');
  const c5 = read(dir, 'companies/c5');
  for (let f = 0; f < 7; f++) {
    const last = Math.max(...[...Array(3000).keys()].filter((i) => i % 300 === 5 && i % 7 === f));
    assert.ok(c5.includes(`f${f}: ${last}\n`), `companies/c5 f${f} = ${last}`);
  }
  const st = JSON.parse(ok(['status', '--json'], dir).stdout);
  assert.is(st.pending.total - st.pending.system, 0, 'nothing left pending');
});

test('a live lease is waited for, then reported with exit 3', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'a', '1'], dir);
  // a lease renewed just now, as a running compaction keeps it
  const lockDir = path.join(dir, '.walnut/locks/compact.lock');
  fs.mkdirSync(lockDir, { recursive: true });
  const started = Date.now();
  const r = walnut(['compact', '--wait', '600ms'], { cwd: dir, env: { WALNUT_LEASE_STALE_MS: '60000' } });
  assert.is(r.code, 3, r.stderr);
  assert.ok(Date.now() - started >= 600, 'it waited');
  assert.match(r.stderr, /^error: the compact lease is held by another walnut process \(renewed \d+ s ago\)\nhint: it was still held after waiting 1 s/);
  assert.ok(fs.existsSync(lockDir), 'the live lease is left alone');
});

test('a crashed holder\'s stale lease is taken over', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'a', '1'], dir);
  const lockDir = path.join(dir, '.walnut/locks/compact.lock');
  fs.mkdirSync(lockDir, { recursive: true });
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(lockDir, old, old);
  ok(['compact', '--wait', '0'], dir, FAST_LEASE);
  assert.is(read(dir, 'companies/x'), '---\na: 1\n---\n');
});

test('a segment changed below its checkpoint is reported and read again', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'a', '1'], dir);
  ok(['compact'], dir);
  const seg = path.join(dir, 'wal', fs.readdirSync(path.join(dir, 'wal'))[0]);
  const text = fs.readFileSync(seg, 'utf8');
  fs.writeFileSync(seg, text.replace('companies/x\u001fa\u001f1', 'companies/x\u001fa\u001f2'));
  const r = walnut(['compact'], { cwd: dir, env: NOW });
  assert.is(r.code, 0);
  assert.match(r.stderr, /segment changed below its checkpoint/);
});

test.run();
