/**
 * Compaction in several passes (lib/compact.ts): after the first pass, the
 * records of other passes are skipped by their bytes before being decoded.
 * A journal with every record shape a reader accepts (V1, V2 and V3 unit
 * counts, visible separators, targets with non-ASCII characters, system
 * records, a malformed record, an invalid target) is compacted in one pass
 * and in many; the entity files, the counts and the issues must be the same.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepo, type Repo } from '../lib/repo.js';
import { compact } from '../lib/compact.js';
import { snapshotTree, tmpDir } from './helpers.js';

const US = '\x1f';
const RS = '\x1e';
const USV = '\u241f';
const RSV = '\u241e';

function repo(): Repo {
  return initRepo({ dir: path.join(tmpDir(), 'data'), node: 'hub', hostname: 'x' }).repo;
}

/** A journal of `n` records on `entities` entities, in every shape; the same for a seed. */
function journal(n: number, entities: number, seed: number): Record<string, string> {
  let s = seed;
  const rand = (m: number) => {
    // mulberry32
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % m;
  };
  const slugs = Array.from({ length: entities }, (_, i) => (i % 7 === 3 ? `café-${i}` : i % 11 === 5 ? `日本-${i}` : `e-${i}`));
  const segments: Record<string, string[]> = { '20261121_pi-01.usv': [], '20261121_pi-02.usv': [], '20261122_pi-03.usv': [] };
  const names = Object.keys(segments);
  const t0 = Date.parse('2026-11-21T10:00:00.000Z');
  for (let i = 0; i < n; i++) {
    const name = names[rand(names.length)];
    const node = name.slice(9, -4);
    const ts = new Date(t0 + i * 1000 + rand(3)).toISOString();
    const target = `${i % 3 === 0 ? 'people' : 'companies'}/${slugs[rand(entities)]}`;
    const field = ['name', 'city', 'size', 'tags'][rand(4)];
    const value = rand(20) === 0 ? 'null' : rand(3) === 0 ? `plain ${i} ü` : JSON.stringify(`v${i}`);
    const kind = rand(20);
    let units: string[];
    if (kind === 0) units = [ts, node, 'campaign-a', target, field, value, `hlc:${rand(3)}`];
    else if (kind === 1) units = [ts, node, 'campaign-b', 'prod', target, field, value, `hlc:${rand(3)}`];
    else if (kind === 2) units = [ts, node, 'system', 'heartbeat', '{}', 'hlc:0'];
    else units = [ts, node, target, field, value, `hlc:${rand(3)}`];
    if (kind === 3) segments[name].push(units.join(USV) + RSV + '\n');
    else segments[name].push(units.join(US) + RS + (rand(4) === 0 ? '' : '\n'));
  }
  segments['20261121_pi-01.usv'].push(['2026-11-21T12:00:00.000Z', 'pi-01', 'companies/e-1', 'name'].join(US) + RS + '\n'); // 4 units
  segments['20261121_pi-02.usv'].push(['2026-11-21T12:00:00.000Z', 'pi-02', 'a/b/c', 'name', '"x"', 'hlc:0'].join(US) + RS + '\n'); // invalid target
  segments['20261121_pi-02.usv'].push(['2026-11-21', 'pi-02', 'companies/e-2', 'name', '"y"', 'hlc:0'].join(US) + RS + '\n'); // bad timestamp
  // from a node whose clock runs years ahead: reported once each, whatever the passes
  for (const t of ['companies/e-4', 'people/e-6', 'system']) segments['20261122_pi-03.usv'].push(['2099-01-01T00:00:00.000Z', 'pi-03', t, 'city', '"later"', 'hlc:0'].join(US) + RS + '\n');
  return Object.fromEntries(Object.entries(segments).map(([k, v]) => [k, v.join('')]));
}

async function compactWith(segments: Record<string, string>, passBytes?: number) {
  const r = repo();
  for (const [name, text] of Object.entries(segments)) fs.writeFileSync(path.join(r.wal, name), text);
  const result = await compact({ repo: r, passBytes });
  return { result, files: snapshotTree(r.root, { skip: ['.walnut', 'wal'] }) };
}

test('many passes compute the same files, counts and issues as one pass, for every record shape', async () => {
  for (const seed of [1, 2]) {
    const segments = journal(3000, 300, seed);
    const bytes = Object.values(segments).reduce((a, t) => a + Buffer.byteLength(t), 0);
    const one = await compactWith(segments);
    const many = await compactWith(segments, Math.ceil(bytes / 7)); // 7 or 8 passes
    assert.ok(Object.keys(one.files).length > 250, `${Object.keys(one.files).length} entity files`);
    assert.ok(Object.keys(one.files).some((f) => f.includes('café')) && Object.keys(one.files).some((f) => f.includes('日本')), 'non-ASCII targets made files');
    assert.equal(many.files, one.files);
    for (const k of ['records', 'systemRecords', 'created', 'updated', 'deleted'] as const) assert.is(many.result[k], one.result[k], k);
    const issues = (r: typeof one) => r.result.issues.map((i) => `${i.code} ${i.file} ${i.offset}`).sort();
    assert.equal(issues(many), issues(one));
    assert.ok(one.result.issues.some((i) => i.code === 'EUNITS') && one.result.issues.some((i) => i.code === 'ETARGET') && one.result.issues.some((i) => i.code === 'ETIMESTAMP'), 'the malformed records and the invalid target are reported');
    const ahead = (r: typeof one) => r.result.ahead.map((a) => `${a.node} ${a.timestamp} ${a.records}`);
    assert.equal(ahead(many), ahead(one));
    assert.equal(ahead(one), ['pi-03 2099-01-01T00:00:00.000Z 3']);
  }
});

test.run();
