/**
 * The compaction state (lib/state.ts, formats/state.md): the entity index in
 * format 2 (sorted base with a key directory, then a log), its rollback of
 * uncommitted lines, the merge of the log into the base, reading format 1,
 * torn appends, and the stat cache with its validity checks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { EntityIndex, FileStats, INDEX_LIMITS, loadIndexEntries, writeCheckpoint, type IndexEntry } from '../lib/state.js';
import { initRepo, type Repo } from '../lib/repo.js';
import { statFiles } from '../lib/stat-files.js';
import { tmpDir } from './helpers.js';

function repo(): Repo {
  return initRepo({ dir: path.join(tmpDir(), 'data'), node: 'pi-01', hostname: 'x' }).repo;
}

const blob = (n: number) => n.toString(16).padStart(40, '0');

function entry(n: number, generation: number, extra: Partial<IndexEntry> = {}): IndexEntry {
  return {
    blob: blob(n),
    size: 100 + n,
    mtimeMs: 1_795_000_000_000 + n,
    stamps: new Map([
      ['name', { stamp: `0mwq8lds0 00000${n % 10} pi-01 d82b9a9b6aa7d35f`, vhash: 'aaaaaaaaaaaa' }],
      ['@body', { stamp: '', vhash: 'bbbbbbbbbbbb' }],
    ]),
    generation,
    ...extra,
  };
}

/** Targets whose order as JS strings differs from their order by collection. */
function targets(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(i % 3 === 0 ? `a-b/s${i}` : i % 3 === 1 ? `a/s${i}` : `zürich/ø${i}`);
  return out;
}

/** A new index of generation 1 with `entry(i, 1)` for each of `targets(n)`, saved (still open). */
function savedIndex(r: Repo, n: number): { index: EntityIndex; ts: string[] } {
  const ts = targets(n);
  const index = EntityIndex.load(r, 0);
  ts.forEach((t, i) => index.set(t, entry(i, 1)));
  index.save();
  return { index, ts };
}

function indexText(r: Repo): string {
  return fs.readFileSync(path.join(r.dir, 'index'), 'utf8');
}

function dump(index: EntityIndex): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [t, e] of index.entries()) out[t] = { ...e, stamps: [...e.stamps] };
  return out;
}

test('a new index: entries round-trip, sorted, one line per change', () => {
  const r = repo();
  const ts = targets(50);
  const index = EntityIndex.load(r, 0);
  ts.forEach((t, i) => index.set(t, entry(i, 1)));
  assert.is(index.pending, 50);
  index.save();
  assert.is(index.pending, 0);
  assert.ok(indexText(r).startsWith('walnut-index 2 '));
  assert.is(indexText(r).split('\n').length, 1 + 50 + 1, 'header, 50 lines, final newline');
  index.close();
  const again = EntityIndex.load(r, 1);
  assert.equal([...again.targets()], [...ts].sort());
  ts.forEach((t, i) => {
    const e = again.get(t)!;
    assert.is(e.blob, blob(i));
    assert.is(e.size, 100 + i);
    assert.equal([...e.stamps.keys()], ['name', '@body']);
  });
  assert.is(again.get('a/none'), undefined);
  again.close();
});

test('lines newer than the checkpoint are rolled back, their blobs still known', () => {
  const r = repo();
  const index = EntityIndex.load(r, 0);
  index.set('a/x', entry(1, 1));
  index.save();
  index.set('a/x', entry(2, 2));
  index.set('a/new', entry(3, 2));
  index.save();
  index.close();
  const at1 = EntityIndex.load(r, 1);
  assert.is(at1.get('a/x')!.blob, blob(1));
  assert.equal(at1.knownBlobs('a/x').sort(), [blob(1), blob(2)]);
  assert.is(at1.get('a/new'), undefined);
  assert.equal(at1.knownBlobs('a/new'), [blob(3)]);
  assert.equal([...at1.targets()], ['a/x']);
  at1.tidy(); // never merges while lines are rolled back
  assert.is(indexText(r).split('\n').length, 5);
  at1.close();
  const at2 = EntityIndex.load(r, 2);
  assert.is(at2.get('a/x')!.blob, blob(2));
  at2.close();
});

test('the log is merged into a sorted base; lookups read the base; later lines win', () => {
  const r = repo();
  const saved = savedIndex(r, 3000);
  const ts = saved.ts;
  let index = saved.index;
  index.set(ts[7], entry(9999, 1)); // a second line for one target
  index.save();
  index.close();
  index = EntityIndex.load(r, 1);
  const before = dump(index);
  index.tidy();
  const text = indexText(r);
  const head = text.slice(0, text.indexOf('\n')).split(' ');
  assert.is(head[0] + ' ' + head[1], 'walnut-index 2');
  assert.ok(Number(head[3]) > Number(head[2]), 'a key directory after the base');
  assert.is(Number(head[4]), 3000);
  index.close();
  index = EntityIndex.load(r, 1);
  assert.equal(dump(index), before, 'same entries after the merge');
  // random lookups, absent targets before, between and after the keys
  for (const i of [0, 1, 2, 7, 1500, 2999]) assert.is(index.get(ts[i])!.blob, blob(i === 7 ? 9999 : i));
  for (const t of ['0/first', 'a/s0', 'a/s1x', 'zzz/last']) assert.is(index.get(t), undefined, t);
  assert.equal(index.knownBlobs(ts[5]), [blob(5)]);
  // new lines go to the log and win over the base
  index.set(ts[5], entry(5005, 2));
  index.save();
  index.close();
  index = EntityIndex.load(r, 2);
  assert.is(index.get(ts[5])!.blob, blob(5005));
  assert.is(index.get(ts[6])!.blob, blob(6));
  assert.is([...index.targets()].length, 3000);
  index.close();
  index = EntityIndex.load(r, 1);
  assert.is(index.get(ts[5])!.blob, blob(5), 'rolled back to the base line');
  assert.equal(index.knownBlobs(ts[5]).sort(), [blob(5), blob(5005)]);
  index.close();
});

test('a base of several MiB is written and read back in pieces through one buffer, merge after merge', () => {
  const r = repo();
  const ts = targets(12_000); // ~2.5 MiB of lines: saves and merges write, and reads read, several 1 MiB pieces
  const expected = new Map<string, IndexEntry>();
  let index = EntityIndex.load(r, 0);
  ts.forEach((t, i) => {
    const e = entry(i, 1, { blob: blob(i), size: i });
    index.set(t, e);
    expected.set(t, e);
  });
  index.save();
  index.close();
  for (let gen = 1; gen <= 3; gen++) {
    index = EntityIndex.load(r, gen);
    index.tidy(); // a merge of everything so far
    index.close();
    index = EntityIndex.load(r, gen);
    // every entry as written, read through the pieces of the base
    for (const [t, e] of index.entries()) {
      const want = expected.get(t)!;
      assert.ok(want, t);
      assert.is(e.blob, want.blob, t);
      assert.is(e.size, want.size, t);
    }
    assert.is([...index.targets()].length, ts.length);
    // change a third of them for the next round
    for (let i = gen % 3; i < ts.length; i += 3) {
      const e = entry(i, gen + 1, { blob: blob(gen * 100_000 + i), size: gen * 100_000 + i });
      index.set(ts[i], e);
      expected.set(ts[i], e);
    }
    index.save();
    index.close();
    const limit = INDEX_LIMITS.logLines;
    INDEX_LIMITS.logLines = 5;
    try {
      index = EntityIndex.load(r, gen + 1);
      index.tidy();
      index.close();
    } finally {
      INDEX_LIMITS.logLines = limit;
    }
  }
  assert.ok(fs.statSync(path.join(r.dir, 'index')).size > 2 * 1024 * 1024, 'the base is larger than two pieces');
  index = EntityIndex.load(r, 4);
  for (const i of [0, 1, 2, 5_999, 11_999]) assert.is(index.get(ts[i])!.blob, expected.get(ts[i])!.blob);
  index.close();
});

test('prefetch: lookups after reading a chunk of the base at once give what single lookups give', () => {
  const r = repo();
  const saved = savedIndex(r, 3000);
  const ts = saved.ts;
  let index = saved.index;
  index.close();
  index = EntityIndex.load(r, 1);
  index.tidy(); // a base of many 4 KiB groups
  index.close();
  index = EntityIndex.load(r, 1);
  index.set(ts[11], entry(1111, 2)); // dirty: wins over the base
  const sorted = [...ts].sort();
  const absent = ['0/first', 'a/s1x', 'a-b/s3x', 'zzz/last'];
  const lookup = (i: EntityIndex, t: string) => JSON.stringify(i.get(t) ? { ...i.get(t), stamps: [...i.get(t)!.stamps] } : null) + i.knownBlobs(t).join();
  const single = new Map([...ts, ...absent].map((t) => [t, lookup(index, t)]));
  assert.match(single.get(ts[11])!, blob(1111));
  let reads = 0;
  // chunks as compaction makes them: sorted slices, some far apart, some overlapping the cached part
  for (const [from, to] of [[0, 40], [30, 700], [1000, 1001], [2900, 3000], [1500, 2600], [0, 3000]]) {
    const chunk = [...sorted.slice(from, to), ...absent].sort();
    index.prefetch(chunk);
    for (const t of chunk) {
      assert.is(lookup(index, t), single.get(t), t);
      reads++;
    }
  }
  assert.ok(reads > 3000);
  index.close();
});

test('the merge waits for enough log lines', () => {
  const r = repo();
  let index = EntityIndex.load(r, 0);
  for (let i = 0; i < 10; i++) index.set(`a/s${i}`, entry(i, 1));
  index.save();
  index.close();
  index = EntityIndex.load(r, 1);
  index.tidy();
  index.close();
  const lines = indexText(r).split('\n');
  assert.is(lines.length, 12, 'below the threshold: still a log');
  const saved = INDEX_LIMITS.logLines;
  INDEX_LIMITS.logLines = 5;
  try {
    index = EntityIndex.load(r, 1);
    index.tidy();
    index.close();
  } finally {
    INDEX_LIMITS.logLines = saved;
  }
  assert.ok(Number(indexText(r).slice(0, 66).split(' ')[3]) > 66, 'merged: a base and its keys');
});

test('format 1 is read (last committed line wins, torn line ignored) and merged into format 2', () => {
  const r = repo();
  const line = (t: string, gen: number, b: string, size: number, mtime: number) => `${t}\t${gen}\t${b}\t${size}\t${mtime}\tname\x1e0mwq8lds0 000000 pi-01 c5a42732a219e4a0\x1e1eb7e393b819\n`;
  const v1 =
    'walnut-index 1\n' +
    line('companies/b', 1, blob(1), 10, 111) +
    line('companies/a', 1, blob(2), 20, 222) +
    line('companies/b', 2, blob(3), 30, 333) +
    line('companies/a', 3, blob(4), 40, 444) + // not committed at generation 2
    line('companies/c', 2, blob(5), 50, 555).slice(0, 30); // torn
  fs.writeFileSync(path.join(r.dir, 'index'), v1);
  let index = EntityIndex.load(r, 2);
  assert.equal([...index.targets()], ['companies/a', 'companies/b']);
  assert.is(index.get('companies/b')!.blob, blob(3));
  assert.is(index.get('companies/a')!.blob, blob(2));
  assert.equal(index.knownBlobs('companies/a').sort(), [blob(2), blob(4)]);
  assert.equal(index.fileStats().get('companies/b'), [30, 333], 'sizes and mtimes from the lines');
  index.tidy(); // rolled-back lines: not yet
  assert.ok(indexText(r).startsWith('walnut-index 1\n'));
  index.set('companies/a', entry(6, 3));
  index.save(); // the torn line is cut before the append
  index.close();
  assert.not.ok(indexText(r).includes('companies/c'));
  writeCheckpoint(r, { version: 1, generation: 3, segments: {} });
  index = EntityIndex.load(r, 3);
  const before = dump(index);
  index.tidy();
  index.close();
  assert.ok(indexText(r).startsWith('walnut-index 2 '));
  index = EntityIndex.load(r, 3);
  assert.equal(dump(index), before);
  assert.is(index.get('companies/a')!.blob, blob(6));
  index.close();
});

test('a torn append is ignored, then cut before the next one', () => {
  const r = repo();
  let index = EntityIndex.load(r, 0);
  index.set('a/x', entry(1, 1));
  index.save();
  index.close();
  fs.appendFileSync(path.join(r.dir, 'index'), 'a/y\t2\t' + blob(2).slice(0, 10));
  index = EntityIndex.load(r, 1);
  assert.is(index.get('a/y'), undefined);
  assert.equal(index.knownBlobs('a/y'), []);
  index.set('a/z', entry(3, 2));
  index.save();
  index.close();
  const lines = indexText(r).split('\n');
  assert.equal(lines.map((l) => l.split('\t')[0]).slice(1), ['a/x', 'a/z', '']);
  index = EntityIndex.load(r, 2);
  assert.is(index.get('a/z')!.blob, blob(3));
  index.close();
});

test('a torn header of a new index: nothing committed, the file starts over', () => {
  const r = repo();
  fs.writeFileSync(path.join(r.dir, 'index'), 'walnut-index 2 00000');
  const index = EntityIndex.load(r, 0);
  assert.equal([...index.targets()], []);
  index.set('a/x', entry(1, 1));
  index.save();
  index.close();
  const again = EntityIndex.load(r, 1);
  assert.is(again.get('a/x')!.blob, blob(1));
  again.close();
});

test('the stat cache is used while it matches the generation and the index, rebuilt otherwise', () => {
  const r = repo();
  let index = EntityIndex.load(r, 0);
  for (let i = 0; i < 20; i++) index.set(`a/s${i}`, entry(i, 1, { mtimeMs: 0 }));
  index.set('a/gone', entry(99, 1, { blob: '' }));
  index.save();
  index.fileStats();
  index.noteStat('a/s3', 103, 42);
  index.saveStats(1);
  index.close();
  const statFile = path.join(r.dir, 'stat');
  assert.match(fs.readFileSync(statFile, 'utf8'), /^walnut-stat 1 1 \d+ \d+ 20 [0-9a-f]{16}\n/);
  index = EntityIndex.load(r, 1);
  assert.equal(index.statOf('a/s3'), [103, 42], 'from the cache');
  assert.equal(index.statOf('a/s4'), [104, 0]);
  assert.is(index.statOf('a/gone'), undefined, 'deleted entities are not in it');
  writeCheckpoint(r, { version: 1, generation: 1, segments: {} });
  assert.equal(loadIndexEntries(r).get('a/s3')!.mtimeMs, 42, 'loadIndexEntries takes sizes and mtimes from the cache');
  index.close();
  // another generation: the cache is stale, the index lines count
  index = EntityIndex.load(r, 2);
  assert.equal(index.statOf('a/s3'), [103, 0]);
  index.close();
  // a damaged cache
  fs.writeFileSync(statFile, fs.readFileSync(statFile, 'utf8').replace('a/s3\t103\t42', 'a/s3\t103\t43'));
  index = EntityIndex.load(r, 1);
  assert.equal(index.statOf('a/s3'), [103, 0]);
  index.saveStats(1); // rebuilt: written again
  index.close();
  index = EntityIndex.load(r, 1);
  assert.equal(index.statOf('a/s3'), [103, 0]);
  // lines appended by a run that did not commit keep the cache valid
  index.noteStat('a/s5', 105, 55);
  index.saveStats(1);
  index.set('a/s6', entry(6, 2));
  index.save();
  index.close();
  index = EntityIndex.load(r, 1);
  assert.equal(index.statOf('a/s5'), [105, 55]);
  index.close();
  // a merged index is another file: the cache written before it no longer applies
  writeCheckpoint(r, { version: 1, generation: 2, segments: {} });
  index = EntityIndex.load(r, 2);
  index.noteStat('a/s5', 105, 56);
  index.saveStats(2);
  index.close();
  const saved = INDEX_LIMITS.logLines;
  INDEX_LIMITS.logLines = 1;
  try {
    index = EntityIndex.load(r, 2);
    index.tidy(); // merges, taking sizes and mtimes from the cache into the base
    index.close();
  } finally {
    INDEX_LIMITS.logLines = saved;
  }
  index = EntityIndex.load(r, 2);
  assert.equal(index.statOf('a/s5'), [105, 56], 'the base holds the cached stat');
  assert.is(index.get('a/s5')!.mtimeMs, 56);
  index.close();
});

test('FileStats: changes merged into the sorted text', () => {
  const base = new FileStats('a/b\t1\t10\na/d\t2\t20\nb/a\t3\t30\n');
  assert.equal(base.get('a/d'), [2, 20]);
  assert.is(base.get('a/c'), undefined);
  base.set('a/c', 5, 50);
  base.set('a/d', 6, 60);
  base.delete('b/a');
  base.set('0/first', 7, 70);
  base.set('c/last', 8, 80);
  base.delete('x/none');
  const { text, count } = base.serialize();
  assert.is(text, '0/first\t7\t70\na/b\t1\t10\na/c\t5\t50\na/d\t6\t60\nc/last\t8\t80\n');
  assert.is(count, 5);
  assert.equal([...base.entries()].map((e) => e[0]), ['0/first', 'a/b', 'a/c', 'a/d', 'c/last']);
});

test('FileStats.get: every target found, every other absent (prefixes, non-ASCII, astral characters, the ends)', () => {
  const pool = ['a/b', 'a/ba', 'a/b-', 'a/bb', 'a/é', 'a/e\u0301', 'a/日本', 'a/\u{1F600}x', 'a/\uFF01', 'b/a', 'A/z', '0/0', 'z/zz', 'a/b\u00a0'];
  for (let seed = 1; seed <= 20; seed++) {
    let x = seed;
    const rand = (m: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % m;
    const present = new Set<string>();
    for (const t of pool) if (rand(2) === 0) present.add(t);
    for (let i = 0; i < 40; i++) present.add(`c/${rand(1000)}`);
    const sorted = [...present].sort();
    const stats = new FileStats(sorted.map((t, i) => `${t}\t${i}\t${i * 10}\n`).join(''));
    for (const t of [...pool, ...Array.from({ length: 60 }, (_, i) => `c/${i * 17}`), 'a/', 'a', '', 'zz/z', '/']) {
      const i = sorted.indexOf(t);
      assert.equal(stats.get(t), i < 0 ? undefined : [i, i * 10], `${JSON.stringify(t)} (seed ${seed})`);
    }
  }
});

test('statFiles: size and mtime of regular files, -1 for the rest, with a worker thread for many', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'a.md'), 'hello');
  fs.mkdirSync(path.join(dir, 'folder'));
  fs.writeFileSync(path.join(dir, 'plain'), 'x');
  const special = [path.join(dir, 'a.md'), path.join(dir, 'folder'), path.join(dir, 'plain', '_index.md'), path.join(dir, 'none')];
  for (const n of [special.length, 30_001]) {
    const files = Array.from({ length: n }, (_, i) => (i < special.length ? special[i] : i % 1000 === 0 ? special[0] : path.join(dir, `missing-${i}`)));
    files.reverse(); // the real file in both halves
    const st = statFiles(files);
    files.forEach((f, i) => {
      if (f === special[0]) {
        assert.is(st[2 * i], 5, f);
        assert.is(st[2 * i + 1], fs.statSync(f).mtimeMs);
      } else assert.is(st[2 * i], -1, f);
    });
  }
});

test.run();
