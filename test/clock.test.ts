/**
 * The hybrid logical clock (lib/clock.ts): a node's stamps never go backwards,
 * within a run, across restarts and when the wall clock jumps back; never
 * earlier than a record it has observed; a record far in the future moves the
 * clock only to wall + bound and is reported.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { Clock, DEFAULT_MAX_AHEAD_MS } from '../lib/clock.js';
import { initRepo, type Repo } from '../lib/repo.js';
import { writeChanges } from '../lib/write.js';
import { encodeRecord } from '../formats/usv.js';
import { tmpDir } from './helpers.js';

const T = Date.parse('2026-11-21T10:00:00.000Z');
const HOUR = 3_600_000;

function repo(node = 'pi-01'): Repo {
  return initRepo({ dir: path.join(tmpDir(), 'data'), node, hostname: 'x' }).repo;
}

/** (ms, counter) pairs compare like the record order does. */
function later(a: { ms: number; counter: number }, b: { ms: number; counter: number }): boolean {
  return a.ms > b.ms || (a.ms === b.ms && a.counter > b.counter);
}

test('monotonic within a run: a frozen wall clock gives increasing counters; a moving one resets the counter', () => {
  let wall = T;
  const clock = Clock.load(repo(), { now: () => wall });
  const stamps = [clock.tick(), clock.tick(), clock.tick()];
  assert.equal(stamps.map((s) => [s.timestamp, s.causality]), [
    ['2026-11-21T10:00:00.000Z', 'hlc:0'],
    ['2026-11-21T10:00:00.000Z', 'hlc:1'],
    ['2026-11-21T10:00:00.000Z', 'hlc:2'],
  ]);
  wall = T + 5;
  assert.equal([clock.tick().timestamp, clock.tick().causality], ['2026-11-21T10:00:00.005Z', 'hlc:1']);
});

test('the wall clock jumps back: stamps still increase', () => {
  const walls = [T, T + 10, T - 10 * 60_000, T - HOUR, T + 11, T + 11, T + 5];
  let i = 0;
  const clock = Clock.load(repo(), { now: () => walls[i++] });
  const stamps = walls.map(() => clock.tick());
  for (let k = 1; k < stamps.length; k++) assert.ok(later(stamps[k], stamps[k - 1]), `stamp ${k} ${JSON.stringify(stamps[k])} after ${JSON.stringify(stamps[k - 1])}`);
  assert.equal(stamps.map((s) => [s.ms - T, s.counter]), [[0, 0], [10, 0], [10, 1], [10, 2], [11, 0], [11, 1], [11, 2]]);
});

test('across restarts: the last record of the own newest segment is read back (no clock file needed)', () => {
  const r = repo();
  writeChanges({ repo: r, changes: [{ target: 'a/b', field: 'f', value: 1 }, { target: 'a/b', field: 'g', value: 2 }], clock: { now: () => T } });
  assert.not.ok(fs.existsSync(path.join(r.dir, 'clock')), 'a plain set writes no clock file');
  // The machine reboots with its clock an hour behind (or in 1970).
  for (const wall of [T - HOUR, 0]) {
    const clock = Clock.load(r, { now: () => wall });
    const s = clock.tick();
    assert.equal([s.ms, s.counter], [T, 2], `wall ${wall}`);
  }
});

test('across restarts: only the node\'s own segments count, and the newest of them', () => {
  const r = repo('pi-01');
  fs.writeFileSync(path.join(r.wal, '20261120_pi-01.usv'), encodeRecord({ timestamp: '2026-11-20T10:00:00.000Z', node: 'pi-01', target: 'a/b', field: 'f', value: '1', causality: 'hlc:0' }));
  fs.writeFileSync(path.join(r.wal, '20261121_pi-01.usv'), encodeRecord({ timestamp: '2026-11-21T10:00:00.000Z', node: 'pi-01', target: 'a/b', field: 'f', value: '1', causality: 'hlc:4' }));
  fs.writeFileSync(path.join(r.wal, '20261125_pi-02.usv'), encodeRecord({ timestamp: '2026-11-25T10:00:00.000Z', node: 'pi-02', target: 'a/b', field: 'f', value: '1', causality: 'hlc:0' }));
  const s = Clock.load(r, { now: () => 0 }).tick();
  assert.equal([s.timestamp, s.counter], ['2026-11-21T10:00:00.000Z', 5]);
});

test('across restarts: a torn last record of the own segment is skipped; the one before it counts', () => {
  const r = repo('pi-01');
  const good = encodeRecord({ timestamp: '2026-11-21T10:00:00.000Z', node: 'pi-01', target: 'a/b', field: 'f', value: '1', causality: 'hlc:3' });
  fs.writeFileSync(path.join(r.wal, '20261121_pi-01.usv'), good + '2026-11-21T11:00:00.000Z\x1fpi-01\x1fa/b\x1ff\x1f');
  const s = Clock.load(r, { now: () => 0 }).tick();
  assert.equal([s.timestamp, s.counter], ['2026-11-21T10:00:00.000Z', 4]);
});

test('never earlier than a record observed; the observation survives a restart through .walnut/clock', () => {
  const r = repo();
  const clock = Clock.load(r, { now: () => T });
  clock.observe({ timestamp: new Date(T + 30 * 60_000).toISOString(), causality: 'hlc:7', node: 'pi-02' });
  assert.equal(clock.ahead, []);
  const s = clock.tick();
  assert.equal([s.ms, s.counter], [T + 30 * 60_000, 8]);
  clock.save();
  assert.is(fs.readFileSync(path.join(r.dir, 'clock'), 'utf8'), `${T + 30 * 60_000} 8\n`);
  const again = Clock.load(r, { now: () => T }).tick();
  assert.equal([again.ms, again.counter], [T + 30 * 60_000, 9]);
});

test('observing an older record does not move the clock; other causality forms count as 0', () => {
  const clock = Clock.load(repo(), { now: () => T });
  clock.tick();
  clock.observe({ timestamp: new Date(T - 1000).toISOString(), causality: 'hlc:99', node: 'pi-02' });
  clock.observe({ timestamp: new Date(T).toISOString(), causality: 'vc:pi-02=9', node: 'pi-02' });
  clock.observe({ timestamp: 'not a time', causality: 'hlc:5', node: 'pi-02' });
  const s = clock.tick();
  assert.equal([s.ms, s.counter], [T, 1]);
});

test('a record far in the future is reported in clock.ahead and moves the clock only to wall + bound', () => {
  const clock = Clock.load(repo(), { now: () => T });
  const far = new Date(T + 5 * HOUR).toISOString();
  clock.observe({ timestamp: far, causality: 'hlc:3', node: 'pi-broken' });
  assert.equal(clock.ahead, [{ node: 'pi-broken', timestamp: far, aheadMs: 5 * HOUR, records: 1 }]);
  const s = clock.tick();
  assert.is(s.ms, T + DEFAULT_MAX_AHEAD_MS);
  assert.ok(s.ms < T + 5 * HOUR);
  assert.is(DEFAULT_MAX_AHEAD_MS, HOUR);
});

test('the bound is configurable; a record exactly at the bound is not reported', () => {
  const clock = Clock.load(repo(), { now: () => T, maxAheadMs: 60_000 });
  clock.observe({ timestamp: new Date(T + 60_000).toISOString(), causality: 'hlc:2', node: 'pi-02' });
  assert.equal(clock.ahead, []);
  clock.observe({ timestamp: new Date(T + 60_001).toISOString(), causality: 'hlc:2', node: 'pi-03' });
  assert.is(clock.ahead.length, 1);
  const s = clock.tick();
  assert.equal([s.ms, s.counter], [T + 60_000, 3]);
});

test('save writes the clock state; a second save with no tick in between does not rewrite it; an unreadable file is ignored', () => {
  const r = repo();
  const file = path.join(r.dir, 'clock');
  const clock = Clock.load(r, { now: () => T });
  clock.tick();
  clock.save();
  assert.is(fs.readFileSync(file, 'utf8'), `${T} 0\n`);
  fs.writeFileSync(file, 'garbage here\n');
  clock.save();
  assert.is(fs.readFileSync(file, 'utf8'), 'garbage here\n', 'not rewritten: the clock did not move');
  clock.tick();
  clock.save();
  assert.is(fs.readFileSync(file, 'utf8'), `${T} 1\n`);
  fs.writeFileSync(file, 'garbage here\n');
  const fresh = Clock.load(r, { now: () => T - HOUR });
  assert.equal(fresh.tick().ms, T - HOUR, 'an unreadable clock file is ignored (no segment yet)');
});

test.run();
