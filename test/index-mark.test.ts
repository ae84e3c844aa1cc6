/**
 * EntityIndex.mark / changedSince (lib/state.ts): which entities changed
 * since a moment, as `version create` asks to build only what changed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { EntityIndex, INDEX_LIMITS, type IndexEntry } from '../lib/state.js';
import { initRepo, type Repo } from '../lib/repo.js';
import { tmpDir } from './helpers.js';

function repo(): Repo {
  return initRepo({ dir: path.join(tmpDir(), 'data'), node: 'pi-01', hostname: 'x' }).repo;
}

function entry(n: number, generation: number): IndexEntry {
  return {
    blob: n.toString(16).padStart(40, '0'),
    size: 100 + n,
    mtimeMs: 1_795_000_000_000 + n,
    stamps: new Map([['name', { stamp: `0mwq8lds0 00000${n % 10} pi-01 d82b9a9b6aa7d35f`, vhash: 'aaaaaaaaaaaa' }]]),
    generation,
  };
}

/** Write one generation of entries and return the index reopened at it. */
function commit(r: Repo, generation: number, changes: Array<[string, number]>): void {
  const index = EntityIndex.load(r, generation - 1);
  for (const [t, n] of changes) index.set(t, entry(n, generation));
  index.save();
  index.close();
}

test('no file, no mark; a mark on a fresh index names only later changes', () => {
  const r = repo();
  const empty = EntityIndex.load(r, 0);
  assert.is(empty.mark(), undefined);
  empty.close();
  commit(r, 1, [['c/a', 1], ['c/b', 2], ['c/c', 3]]);
  const at1 = EntityIndex.load(r, 1);
  const mark = at1.mark()!;
  assert.ok(mark);
  assert.equal(at1.changedSince(mark), []);
  at1.close();
  commit(r, 2, [['c/b', 20], ['c/d', 4]]);
  commit(r, 3, [['c/a', 10]]);
  const at3 = EntityIndex.load(r, 3);
  assert.equal(at3.changedSince(mark), ['c/a', 'c/b', 'c/d']);
  at3.close();
});

test('lines of an unfinished run are not changes, and a mark stops before them', () => {
  const r = repo();
  commit(r, 1, [['c/a', 1], ['c/b', 2]]);
  // a run of generation 2 that never reached its checkpoint
  const crashed = EntityIndex.load(r, 1);
  crashed.set('c/a', entry(99, 2));
  crashed.save();
  crashed.close();
  const at1 = EntityIndex.load(r, 1);
  const mark = at1.mark()!;
  assert.equal(at1.changedSince(mark), []);
  at1.close();
  // the rerun of generation 2 changes only c/b: the crashed line for c/a now
  // reads as committed, and it is after the mark, so it is reported
  commit(r, 2, [['c/b', 3]]);
  const at2 = EntityIndex.load(r, 2);
  assert.equal(at2.changedSince(mark), ['c/a', 'c/b']);
  at2.close();
});

test('a merged or replaced index answers undefined (a full read is needed)', () => {
  const r = repo();
  const limits = { ...INDEX_LIMITS };
  commit(r, 1, [['c/a', 1]]);
  const at1 = EntityIndex.load(r, 1);
  const mark = at1.mark()!;
  at1.close();
  Object.assign(INDEX_LIMITS, { logLines: 0, logFraction: 0 });
  try {
    const index = EntityIndex.load(r, 1);
    index.tidy(); // merges the log into a new base (a new file)
    index.close();
  } finally {
    Object.assign(INDEX_LIMITS, limits);
  }
  const merged = EntityIndex.load(r, 1);
  assert.is(merged.changedSince(mark), undefined);
  assert.ok(merged.mark());
  merged.close();
  // the same bytes rewritten in place under the mark: the tail no longer matches
  const file = path.join(r.dir, 'index');
  commit(r, 2, [['c/b', 2]]);
  const at2 = EntityIndex.load(r, 2);
  const mark2 = at2.mark()!;
  at2.close();
  const bytes = fs.readFileSync(file);
  bytes[mark2.end - 2] ^= 1;
  fs.writeFileSync(file, bytes);
  const tampered = EntityIndex.load(r, 2);
  assert.is(tampered.changedSince(mark2), undefined);
  tampered.close();
});

test.run();
