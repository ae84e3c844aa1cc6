/**
 * The winners of an entity (lib/compact.ts `offer`): a flat array while the
 * entity has at most 32 fields, a Map past that. Either way each field's
 * value is its greatest record's, the fields come in the order the journal
 * first names them, and a value deferred for a broken file survives the
 * checkpoint. Entities of 5, 32, 33 and 200 fields, each field written
 * several times by two nodes in shuffled order, are checked against the
 * expected winners computed here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepo, type Repo } from '../lib/repo.js';
import { compact } from '../lib/compact.js';
import { parseEntity } from '../formats/entity.js';
import { tmpDir } from './helpers.js';

const US = '\x1f';
const RS = '\x1e';
const SIZES = [5, 32, 33, 200];

function repo(): Repo {
  return initRepo({ dir: path.join(tmpDir(), 'data'), node: 'hub', hostname: 'x' }).repo;
}

function line(ms: number, node: string, target: string, field: string, value: unknown): string {
  return [new Date(ms).toISOString(), node, target, field, JSON.stringify(value), 'hlc:0'].join(US) + RS + '\n';
}

/** mulberry32: the same shuffles every run */
function random(seed: number): (m: number) => number {
  let s = seed;
  return (m) => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % m;
  };
}

interface Write {
  ms: number;
  node: string;
  target: string;
  field: string;
  value: string;
}

/** Every field of every entity written 3 times at distinct instants, the records shuffled; the expected file per entity. */
function writes(seed: number): { lines: Record<string, string[]>; expected: Map<string, Array<[string, string]>> } {
  const rand = random(seed);
  const all: Write[] = [];
  const t0 = Date.parse('2026-11-20T08:00:00.000Z');
  let tick = 0;
  for (const n of SIZES) {
    const target = `companies/f-${n}`;
    for (let round = 0; round < 3; round++) {
      for (let f = 0; f < n; f++) all.push({ ms: t0 + tick++ * 7, node: rand(2) ? 'pi-01' : 'pi-02', target, field: `field_${String(f).padStart(3, '0')}`, value: `v${round}-${f}-${rand(1000)}` });
    }
  }
  // shuffled: the journal order is not the time order
  for (let i = all.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const lines: Record<string, string[]> = { 'pi-01': [], 'pi-02': [] };
  const best = new Map<string, Map<string, Write>>();
  const order = new Map<string, string[]>();
  // the reader goes segment by segment (pi-01's, then pi-02's), each in its order
  for (const node of ['pi-01', 'pi-02']) {
    for (const w of all.filter((x) => x.node === node)) {
      lines[node].push(line(w.ms, w.node, w.target, w.field, w.value));
      if (!best.has(w.target)) (best.set(w.target, new Map()), order.set(w.target, []));
      const cur = best.get(w.target)!.get(w.field);
      if (!cur) order.get(w.target)!.push(w.field);
      if (!cur || cur.ms < w.ms) best.get(w.target)!.set(w.field, w);
    }
  }
  const expected = new Map<string, Array<[string, string]>>();
  for (const [target, fields] of best) expected.set(target, order.get(target)!.map((f) => [f, fields.get(f)!.value]));
  return { lines, expected };
}

test('entities of 5 to 200 fields: greatest record per field, fields in the order the journal first names them', async () => {
  for (const seed of [1, 2, 3]) {
    const r = repo();
    const { lines, expected } = writes(seed);
    for (const [node, l] of Object.entries(lines)) fs.writeFileSync(path.join(r.wal, `20261120_${node}.usv`), l.join(''));
    const res = await compact({ repo: r });
    assert.is(res.created, SIZES.length);
    for (const [target, fields] of expected) {
      const text = fs.readFileSync(path.join(r.root, target, '_index.md'), 'utf8');
      const { data } = parseEntity(text);
      assert.equal(Object.entries(data), fields, `${target} (seed ${seed})`);
    }
  }
});

test('a broken file defers its many-field winners to the checkpoint; they land once it is fixed', async () => {
  const r = repo();
  const t0 = Date.parse('2026-11-20T08:00:00.000Z');
  const target = 'companies/wide';
  fs.writeFileSync(path.join(r.wal, '20261120_pi-01.usv'), line(t0, 'pi-01', target, 'name', 'Wide'));
  await compact({ repo: r });
  const file = path.join(r.root, target, '_index.md');
  fs.writeFileSync(file, '---\nname: [unclosed\n---\n');
  const more: string[] = [];
  for (let f = 0; f < 50; f++) more.push(line(t0 + 1000 + f, 'pi-02', target, `k${f}`, f));
  fs.writeFileSync(path.join(r.wal, '20261120_pi-02.usv'), more.join(''));
  const broken = await compact({ repo: r });
  assert.equal(
    broken.broken.map((b) => b.target),
    [target],
  );
  assert.is(fs.readFileSync(file, 'utf8'), '---\nname: [unclosed\n---\n', 'left as it is');
  const cp = JSON.parse(fs.readFileSync(path.join(r.dir, 'checkpoint'), 'utf8'));
  assert.is(Object.keys(cp.deferred[target]).length, 50, 'the 50 winners are kept in the checkpoint');
  // fixed by hand: the deferred winners are applied on top of the hand edit
  fs.writeFileSync(file, '---\nname: Wide again\n---\n');
  await compact({ repo: r });
  const { data } = parseEntity(fs.readFileSync(file, 'utf8'));
  assert.is(data.name, 'Wide again');
  for (let f = 0; f < 50; f++) assert.is(data[`k${f}`], f, `k${f}`);
  assert.equal(Object.keys(data).slice(1), Array.from({ length: 50 }, (_, f) => `k${f}`), 'in the order they were written');
});

test.run();
