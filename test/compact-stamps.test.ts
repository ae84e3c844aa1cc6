/**
 * Stamps of hand-edit records (lib/clock.ts `Clock.at`, lib/record.ts): a
 * record at a given past time keeps it without moving the clock back; at or
 * after the clock's time it moves the clock like a tick; beyond the bound it
 * moves the clock only to wall + bound; the clock survives a restart even when
 * the own segment's last record is older than the clock.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { Clock, DEFAULT_MAX_AHEAD_MS } from '../lib/clock.js';
import { initRepo, type Repo } from '../lib/repo.js';
import { EntityIndex, readCheckpoint } from '../lib/state.js';
import { recordEdits } from '../lib/record.js';
import { writeChanges } from '../lib/write.js';
import { compact } from '../lib/compact.js';
import { logRecords } from '../lib/view.js';
import { tmpDir } from './helpers.js';

const T = Date.parse('2026-11-21T10:00:00.000Z');
const MIN = 60_000;

function repo(node = 'pi-01'): Repo {
  return initRepo({ dir: path.join(tmpDir(), 'data'), node, hostname: 'x' }).repo;
}

test('Clock.at: earlier than the clock keeps its time (counter 0), the clock stays; at or after it moves the clock like a tick', () => {
  const clock = Clock.load(repo(), { now: () => T + 10 * MIN });
  clock.tick(); // the clock at T + 10 min, counter 0
  const past = clock.at(T);
  assert.equal([past.timestamp, past.causality], ['2026-11-21T10:00:00.000Z', 'hlc:0']);
  assert.is(clock.time, T + 10 * MIN, 'not moved back');
  const same = clock.at(T + 10 * MIN);
  assert.equal([same.ms, same.counter], [T + 10 * MIN, 1], 'the same ms: the next counter');
  const next = clock.tick();
  assert.equal([next.ms, next.counter], [T + 10 * MIN, 2], 'a later tick orders after it');
  const ahead = clock.at(T + 20 * MIN); // after the wall clock, within the bound
  assert.equal([ahead.ms, ahead.counter, clock.time], [T + 20 * MIN, 0, T + 20 * MIN]);
  assert.equal([clock.tick().ms, clock.tick().counter], [T + 20 * MIN, 2]);
});

test('Clock.at beyond wall + bound: the record keeps its time, the clock moves only to the bound', () => {
  const clock = Clock.load(repo(), { now: () => T });
  const far = clock.at(T + 5 * DEFAULT_MAX_AHEAD_MS);
  assert.is(far.ms, T + 5 * DEFAULT_MAX_AHEAD_MS);
  assert.is(clock.time, T + DEFAULT_MAX_AHEAD_MS);
});

test('recording an edit stamped in the past saves the clock: after a restart, stamps still come after every earlier record', () => {
  const r = repo();
  writeChanges({ repo: r, changes: [{ target: 'companies/x', field: 'stage', value: 'lead' }], clock: { now: () => T } });
  return compact({ repo: r, clock: { now: () => T } }).then(() => {
    writeChanges({ repo: r, changes: [{ target: 'companies/y', field: 'stage', value: 'lead' }], clock: { now: () => T + 30 * MIN } });
    const file = path.join(r.root, 'companies/x/_index.md');
    fs.writeFileSync(file, '---\nstage: prospect\n---\n');
    fs.utimesSync(file, new Date(T + 5 * MIN), new Date(T + 5 * MIN));
    const cp = readCheckpoint(r);
    const index = EntityIndex.load(r, cp.generation);
    try {
      // the wall clock is back at T + 1 min now (a Pi without a real-time clock)
      const clock = Clock.load(r, { now: () => T + MIN });
      const res = recordEdits({ repo: r, index, clock, generation: cp.generation + 1 });
      assert.equal(res.records.map((x) => [x.field, x.timestamp]), [['stage', new Date(T + MIN).toISOString()]], 'at most the wall clock');
      index.save();
    } finally {
      index.close();
    }
    // the own segment's last record is now the edit (T + 1 min); the clock file keeps T + 30 min
    const after = Clock.load(r, { now: () => T }).tick();
    assert.ok(after.ms >= T + 30 * MIN, `restarted clock at ${new Date(after.ms).toISOString()}`);
    const log = logRecords({ repo: r, target: 'companies/x', field: 'stage' }).map((e) => e.value);
    assert.equal(log, ['lead', 'prospect']);
  });
});

test.run();
