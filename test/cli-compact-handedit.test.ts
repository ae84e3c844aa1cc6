// Hand edits as compaction finds them: by default only in the files the new
// records touch; every file with `compact --record` and `record`. A hand-edit
// record is stamped when the file was saved (its mtime), so a record made
// later on another node still wins and an older one loses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { walnut, initRepoDir, tmpDir, snapshotTree } from './helpers.js';
import { CRASH_POINTS } from '../lib/compact.js';

const NOW = { WALNUT_NOW: '2026-11-21T12:00:00.000Z' };
const FAST_LEASE = { WALNUT_LEASE_STALE_MS: '2000' };

function ok(args: string[], cwd: string, env: Record<string, string> = {}, input?: string) {
  const r = walnut(args, { cwd, env: { ...NOW, ...env }, input });
  assert.is(r.code, 0, `walnut ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}

const file = (dir: string, target: string) => path.join(dir, target, '_index.md');
const read = (dir: string, target: string) => fs.readFileSync(file(dir, target), 'utf8');

/** Write a file by hand, saved at `at`. */
function edit(dir: string, target: string, text: string, at: string): void {
  fs.mkdirSync(path.dirname(file(dir, target)), { recursive: true });
  fs.writeFileSync(file(dir, target), text);
  fs.utimesSync(file(dir, target), new Date(at), new Date(at));
}

/** Records of another node, made at the given times, copied in as `pull` would. */
function fromOtherNode(dir: string, records: Array<[at: string, target: string, field: string, value: string]>): void {
  const other = initRepoDir('hub');
  for (const [at, target, field, value] of records) ok(['set', target, field, value], other, { WALNUT_NOW: at });
  for (const f of fs.readdirSync(path.join(other, 'wal'))) fs.copyFileSync(path.join(other, 'wal', f), path.join(dir, 'wal', f));
}

function log(dir: string, target: string, field?: string): Array<{ timestamp: string; node: string; field: string; value: unknown }> {
  const out = ok(['log', target, ...(field ? [field] : []), '--json'], dir).stdout.trim();
  return out ? out.split('\n').map((l) => JSON.parse(l)) : [];
}

function copyDir(dir: string): string {
  const to = path.join(tmpDir(), 'copy');
  fs.cpSync(dir, to, { recursive: true, preserveTimestamps: true });
  return to;
}

/** Two entities compacted at 10:00 by pi-01. */
function base(): string {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/x', 'stage', 'lead'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
  ok(['set', 'companies/y', 'stage', 'lead'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
  ok(['compact'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
  return dir;
}

test('an edit in a file no new record touches: not recorded by compact, recorded by compact --record and by record', () => {
  const dir = base();
  edit(dir, 'companies/y', '---\nstage: prospect\n---\n', '2026-11-21T10:30:00.000Z');
  ok(['set', 'companies/x', 'phone', '555'], dir, { WALNUT_NOW: '2026-11-21T11:00:00.000Z' });
  const doc = JSON.parse(ok(['compact', '--json'], dir).stdout);
  assert.is(doc.recorded, 0);
  assert.is(read(dir, 'companies/x'), '---\nstage: lead\nphone: 555\n---\n');
  assert.equal(log(dir, 'companies/y', 'stage').map((e) => e.value), ['lead'], 'not recorded');
  assert.equal(JSON.parse(ok(['status', '--json'], dir).stdout).modified, ['companies/y'], 'still listed as edited by hand');
  const a = copyDir(dir);
  const b = copyDir(dir);
  assert.is(JSON.parse(ok(['compact', '--record', '--json'], a).stdout).recorded, 1);
  assert.equal(JSON.parse(ok(['record', '--json'], b).stdout).edited, ['companies/y']);
  for (const d of [a, b]) {
    const stage = log(d, 'companies/y', 'stage');
    assert.equal(stage.map((e) => [e.value, e.node, e.timestamp]), [['lead', 'pi-01', '2026-11-21T10:00:00.000Z'], ['prospect', 'pi-01', '2026-11-21T10:30:00.000Z']], 'stamped at the mtime');
    assert.equal(JSON.parse(ok(['status', '--json'], d).stdout).modified, []);
    assert.is(read(d, 'companies/y'), '---\nstage: prospect\n---\n');
  }
});

test('an edit in a file a new record touches is recorded first, stamped at its mtime', () => {
  const dir = base();
  edit(dir, 'companies/x', '---\nstage: prospect\nowner: jane\n---\n', '2026-11-21T10:30:00.000Z');
  ok(['set', 'companies/x', 'phone', '555'], dir, { WALNUT_NOW: '2026-11-21T11:00:00.000Z' });
  const doc = JSON.parse(ok(['compact', '--json'], dir).stdout);
  assert.is(doc.recorded, 2);
  assert.is(read(dir, 'companies/x'), '---\nstage: prospect\nowner: jane\nphone: 555\n---\n');
  assert.equal(log(dir, 'companies/x').map((e) => `${e.timestamp} ${e.field}=${JSON.stringify(e.value)}`).sort(), [
    '2026-11-21T10:00:00.000Z stage="lead"',
    '2026-11-21T10:30:00.000Z owner="jane"',
    '2026-11-21T10:30:00.000Z stage="prospect"',
    '2026-11-21T11:00:00.000Z phone=555',
  ]);
  assert.equal(JSON.parse(ok(['status', '--json'], dir).stdout).modified, []);
  const again = ok(['compact'], dir);
  assert.is(again.stdout + again.stderr, '', 'the next run re-reads the recorded edit silently');
});

for (const how of ['compact', 'compact --record', 'record, then compact']) {
  test(`${how}: an edit made before another node's record loses to it, one made after wins`, () => {
    for (const [saved, expected] of [
      ['2026-11-21T10:30:00.000Z', 'customer'],
      ['2026-11-21T11:30:00.000Z', 'prospect'],
    ]) {
      const dir = base();
      edit(dir, 'companies/x', '---\nstage: prospect\n---\n', saved);
      fromOtherNode(dir, [['2026-11-21T11:00:00.000Z', 'companies/x', 'stage', 'customer']]);
      if (how === 'record, then compact') ok(['record'], dir);
      ok(how === 'compact --record' ? ['compact', '--record'] : ['compact'], dir);
      assert.is(read(dir, 'companies/x'), `---\nstage: ${expected}\n---\n`, `edit saved at ${saved}`);
      const stage = log(dir, 'companies/x', 'stage').map((e) => `${e.timestamp} ${e.node} ${e.value}`);
      const hand = `${saved} pi-01 prospect`;
      const hub = '2026-11-21T11:00:00.000Z hub customer';
      assert.equal(stage, ['2026-11-21T10:00:00.000Z pi-01 lead', ...(expected === 'customer' ? [hand, hub] : [hub, hand])]);
    }
  });
}

test('an mtime not after the replaced value counts just after it; one in the future counts as now', () => {
  const dir = base();
  edit(dir, 'companies/x', '---\nstage: prospect\n---\n', '2026-11-21T09:00:00.000Z');
  edit(dir, 'companies/y', '---\nstage: prospect\n---\n', '2026-11-22T09:00:00.000Z');
  ok(['record'], dir);
  assert.equal(log(dir, 'companies/x', 'stage').map((e) => e.timestamp), ['2026-11-21T10:00:00.000Z', '2026-11-21T10:00:00.001Z']);
  assert.equal(log(dir, 'companies/y', 'stage').map((e) => e.timestamp), ['2026-11-21T10:00:00.000Z', NOW.WALNUT_NOW]);
  // the clock moved to the latest record: a later set orders after it
  ok(['set', 'companies/y', 'stage', 'won'], dir);
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/y'), '---\nstage: won\n---\n');
});

test('a file removed by hand and touched by an older record stays deleted (@deleted recorded first)', () => {
  const dir = base();
  fs.rmSync(file(dir, 'companies/x'));
  const removed = new Date('2026-11-21T10:30:00.000Z');
  fs.utimesSync(path.join(dir, 'companies/x'), removed, removed);
  fromOtherNode(dir, [['2026-11-21T10:15:00.000Z', 'companies/x', 'phone', '555']]);
  const doc = JSON.parse(ok(['compact', '--json'], dir).stdout);
  assert.is(doc.recorded, 1);
  assert.not.ok(fs.existsSync(file(dir, 'companies/x')), 'not re-created');
  assert.equal(log(dir, 'companies/x', '@deleted').map((e) => `${e.timestamp} ${e.node} ${e.value}`), ['2026-11-21T10:30:00.000Z pi-01 true'], 'stamped when its folder changed');
  assert.equal(JSON.parse(ok(['status', '--json'], dir).stdout).missing, []);
  const again = ok(['compact'], dir);
  assert.is(again.stdout + again.stderr, '');
  assert.not.ok(fs.existsSync(file(dir, 'companies/x')));
  // a record made after the deletion re-creates the entity with only what was written after it, as on every machine
  fromOtherNode(dir, [['2026-11-21T10:45:00.000Z', 'companies/x', 'city', 'Oslo']]);
  ok(['compact'], dir);
  assert.is(read(dir, 'companies/x'), '---\ncity: Oslo\n---\n');
});

test('a file removed with its folder: the deletion counts from the collection folder\'s mtime', () => {
  const dir = base();
  fs.rmSync(path.join(dir, 'companies/x'), { recursive: true });
  const removed = new Date('2026-11-21T10:40:00.000Z');
  fs.utimesSync(path.join(dir, 'companies'), removed, removed);
  ok(['set', 'companies/x', 'phone', '555'], dir, { WALNUT_NOW: '2026-11-21T10:20:00.000Z' });
  ok(['compact'], dir);
  assert.not.ok(fs.existsSync(path.join(dir, 'companies/x')));
  assert.equal(log(dir, 'companies/x', '@deleted').map((e) => e.timestamp), ['2026-11-21T10:40:00.000Z']);
});

test('a file never seen that a record touches is adopted, then the record applies', () => {
  const dir = base();
  edit(dir, 'people/bob', '---\nname: Bob\n# a comment\n---\nNotes.\n', '2026-11-21T10:30:00.000Z');
  edit(dir, 'people/eve', '---\nname: Eve\n---\n', '2026-11-21T10:30:00.000Z');
  ok(['set', 'people/bob', 'name', 'Robert'], dir, { WALNUT_NOW: '2026-11-21T11:00:00.000Z' });
  const doc = JSON.parse(ok(['compact', '--json'], dir).stdout);
  assert.is(doc.adopted, 1);
  assert.is(read(dir, 'people/bob'), '---\nname: Robert\n# a comment\n---\nNotes.\n');
  assert.equal(JSON.parse(ok(['status', '--json'], dir).stdout).untracked, ['people/eve']);
});

/** A data directory where compaction meets every kind of hand change in the files it touches. */
function crashScenario(): string {
  const dir = initRepoDir('pi-01');
  const batch = [];
  for (let i = 0; i < 30; i++) batch.push(JSON.stringify({ target: `companies/c${i}`, field: 'name', value: `Company ${i}` }));
  ok(['set', '--batch'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' }, batch.join('\n'));
  ok(['compact'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
  edit(dir, 'companies/c1', '---\nname: One by hand\nowner: jane\n---\n', '2026-11-21T10:30:00.000Z');
  edit(dir, 'companies/c2', '---\nname: Two by hand\n---\n', '2026-11-21T10:30:00.000Z');
  fs.rmSync(file(dir, 'companies/c3'));
  fs.utimesSync(path.join(dir, 'companies/c3'), new Date('2026-11-21T10:30:00.000Z'), new Date('2026-11-21T10:30:00.000Z'));
  edit(dir, 'people/bob', '---\nname: Bob\n---\n', '2026-11-21T10:30:00.000Z');
  const more = [];
  for (let i = 0; i < 30; i += 2) more.push(JSON.stringify({ target: `companies/c${i}`, field: 'stage', value: `s${i}` }));
  for (const t of ['companies/c1', 'companies/c3', 'people/bob']) more.push(JSON.stringify({ target: t, field: 'city', value: 'Oslo' }));
  ok(['set', '--batch'], dir, { WALNUT_NOW: '2026-11-21T10:20:00.000Z' }, more.join('\n'));
  return dir;
}

for (const point of CRASH_POINTS) {
  test(`hand edits found file by file, crash at ${point}: the rerun gives the same files and records`, () => {
    const scenario = crashScenario();
    const a = copyDir(scenario);
    const b = copyDir(scenario);
    ok(['compact'], a);
    const crashed = walnut(['compact'], { cwd: b, env: { ...NOW, WALNUT_CRASH_AT: point } });
    assert.is(crashed.code, 128, `killed at ${point} (exit ${crashed.code}: ${crashed.stderr})`);
    ok(['compact', '--wait', '20s'], b, FAST_LEASE);
    const entities = (d: string) => snapshotTree(d, { skip: ['.walnut', 'wal'] });
    assert.equal(entities(b), entities(a));
    assert.is(read(a, 'companies/c1'), '---\nname: One by hand\nowner: jane\ncity: Oslo\n---\n');
    assert.is(read(a, 'companies/c2'), '---\nname: Two by hand\nstage: s2\n---\n');
    assert.not.ok(fs.existsSync(file(a, 'companies/c3')));
    assert.is(read(a, 'people/bob'), '---\nname: Bob\ncity: Oslo\n---\n');
    const records = (d: string) => ok(['log', '--json'], d).stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.target !== 'system').map((e) => `${e.timestamp} ${e.node} ${e.target} ${e.field} ${JSON.stringify(e.value)}`).sort();
    assert.equal(records(b), records(a), 'no record lost, none recorded twice');
    for (const d of [a, b]) assert.equal(JSON.parse(ok(['status', '--json'], d).stdout).modified, []);
  });
}

test.run();
