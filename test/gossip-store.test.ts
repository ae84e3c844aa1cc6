import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { encodeRecord, recordHash, parseRecord } from '../formats/usv.js';
import { openRepo } from '../lib/repo.js';
import { GossipStore, dropCoveredGossip } from '../lib/gossip/store.js';
import { chunkRecords } from '../lib/gossip/daemon.js';
import { logRecords } from '../lib/view.js';
import { initRepoDir } from './helpers.js';

/** Compare bytes without dumping them. */
function same(actual: Buffer, expected: Buffer, msg = 'bytes') {
  assert.ok(actual.equals(expected), `${msg}: ${actual.length} bytes, expected ${expected.length}`);
}

const SEG = '20261121_pi-02.usv';
const rec = (i: number, value = `"v${i}"`, node = 'pi-02') =>
  encodeRecord({ timestamp: `2026-11-21T10:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000Z`, node, target: 'companies/acme', field: `f${i}`, value, causality: 'hlc:0' });

function origin(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => rec(i)).join(''));
}

function setup() {
  const dir = initRepoDir('pi-01');
  const repo = openRepo({ cwd: dir });
  return { dir, repo, gfile: path.join(dir, '.walnut', 'gossip', SEG) };
}

test('in-order bytes are appended and read back; duplicates are dropped', () => {
  const { repo, gfile } = setup();
  const store = new GossipStore({ repo });
  const data = origin(10);
  const chunks = chunkRecords(data, 0, 300);
  for (const c of chunks) assert.is(store.receive(SEG, c.offset, c.bytes, c.whole).status, 'appended');
  same(fs.readFileSync(gfile), data);
  assert.is(store.held(SEG), data.length);
  assert.is(store.count(SEG), 10);
  assert.is(store.receive(SEG, chunks[1].offset, chunks[1].bytes, true).status, 'duplicate');
  same(store.read(SEG, 0, data.length), data);
  store.close();
  same(fs.readFileSync(gfile), data, 'nothing written twice');
});

test('out of order and lost pieces: buffered, gap reported, assembled when filled', () => {
  const { repo, gfile } = setup();
  const store = new GossipStore({ repo });
  const data = origin(40);
  const chunks = chunkRecords(data, 0, 200);
  const order = chunks.map((_, i) => i).reverse();
  for (const i of order.slice(0, -1)) {
    const r = store.receive(SEG, chunks[i].offset, chunks[i].bytes, true);
    assert.is(r.status, 'buffered');
    assert.ok(r.gap);
  }
  assert.not.ok(fs.existsSync(gfile), 'nothing on disk before the first piece');
  const r = store.receive(SEG, chunks[0].offset, chunks[0].bytes, true);
  assert.is(r.status, 'appended');
  assert.is(r.records.length, 40);
  same(fs.readFileSync(gfile), data);
  store.close();
});

test('a record larger than a datagram arrives in pieces, in any order', () => {
  const { repo, gfile } = setup();
  const store = new GossipStore({ repo });
  const data = Buffer.concat([Buffer.from(rec(0)), Buffer.from(rec(1, JSON.stringify('y'.repeat(20_000)))), Buffer.from(rec(2))]);
  const chunks = chunkRecords(data, 0, 1300);
  assert.ok(chunks.filter((c) => !c.whole).length >= 15);
  const shuffled = [...chunks].sort((a, b) => (a.offset * 7919) % 13 - (b.offset * 7919) % 13);
  for (const c of shuffled) store.receive(SEG, c.offset, c.bytes, c.whole);
  same(fs.readFileSync(gfile), data);
  assert.is(store.count(SEG), 3);
  store.close();
});

test('invalid records, wrong node, bad targets: the datagram is dropped, nothing written', () => {
  const { repo, gfile } = setup();
  const store = new GossipStore({ repo });
  const bad = [
    Buffer.from('not a record\u001e\n'),
    Buffer.from(rec(0) + rec(1, '"x"', 'pi-03')),
    Buffer.from(encodeRecord({ timestamp: '2026-11-21T10:00:00.000Z', node: 'pi-02', target: '../../etc', field: 'x', value: '1', causality: 'hlc:0' })),
    Buffer.from(rec(0).slice(0, -2)),
    Buffer.from([0xff, 0xfe, 0x1e, 0x0a]),
  ];
  for (const b of bad) assert.is(store.receive(SEG, 0, b, true).status, 'invalid', b.toString());
  assert.not.ok(fs.existsSync(gfile));
  // Pieces (not whole records) are checked once assembled.
  assert.is(store.receive(SEG, 0, Buffer.from('garbage garbage garbage'), false).status, 'buffered');
  assert.is(store.receive(SEG, 23, Buffer.from('\u001e\n'), false).status, 'invalid');
  assert.not.ok(fs.existsSync(gfile));
  store.close();
});

test('overlap with different bytes is a divergence; nothing is written', () => {
  const { repo, gfile } = setup();
  const store = new GossipStore({ repo });
  const a = Buffer.from(rec(0) + rec(1));
  store.receive(SEG, 0, a, true);
  const b = Buffer.from(rec(0, '"other"'));
  assert.is(store.receive(SEG, 0, b, true).status, 'divergent');
  same(fs.readFileSync(gfile), a);
  store.close();
});

test('with wal/<segment> from pull: bytes it holds are duplicates; the gossip file starts after it and stays contiguous', () => {
  const { dir, repo, gfile } = setup();
  const data = origin(20);
  const cut = Buffer.from(Array.from({ length: 8 }, (_, i) => rec(i)).join('')).length;
  fs.writeFileSync(path.join(dir, 'wal', SEG), data.subarray(0, cut));
  const store = new GossipStore({ repo });
  assert.is(store.held(SEG), cut);
  assert.is(store.receive(SEG, 0, data.subarray(0, cut), true).status, 'duplicate');
  const cut2 = Buffer.from(Array.from({ length: 12 }, (_, i) => rec(i)).join('')).length;
  assert.is(store.receive(SEG, cut, data.subarray(cut, cut2), true).status, 'appended');
  same(fs.readFileSync(gfile), data.subarray(cut, cut2));
  assert.equal(store.bases(), { [SEG]: cut });
  // Pull brings more than the gossip copy holds; the next record extends the gossip copy from wal/.
  const cut3 = Buffer.from(Array.from({ length: 15 }, (_, i) => rec(i)).join('')).length;
  fs.writeFileSync(path.join(dir, 'wal', SEG), data.subarray(0, cut3));
  store.refreshWal(SEG);
  assert.is(store.held(SEG), cut3);
  assert.is(store.receive(SEG, cut3, data.subarray(cut3), true).status, 'appended');
  same(fs.readFileSync(gfile), data.subarray(cut));
  assert.is(store.held(SEG), data.length);
  assert.is(store.count(SEG), 20);
  store.close();
  // A fresh store (restart) with the persisted base sees the same.
  const again = new GossipStore({ repo, bases: { [SEG]: cut } });
  assert.is(again.held(SEG), data.length);
  assert.is(again.count(SEG), 20);
  same(again.read(SEG, 0, data.length), data);
  again.close();
  // Every record is read once by log (deduplicated by record hash).
  const hashes = logRecords({ repo }).map((e) => e.hash);
  assert.is(hashes.length, 20);
  assert.is(new Set(hashes).size, 20);
  assert.ok(hashes.includes(recordHash(parseRecord(rec(19).slice(0, -2)))));
});

test('a torn tail of a gossip file (power cut) is cut at start', () => {
  const { repo, gfile } = setup();
  fs.mkdirSync(path.dirname(gfile), { recursive: true });
  const data = origin(3);
  fs.writeFileSync(gfile, Buffer.concat([data, Buffer.from(rec(3).slice(0, 20))]));
  const store = new GossipStore({ repo, bases: { [SEG]: 0 } });
  assert.is(store.held(SEG), data.length);
  same(fs.readFileSync(gfile), data);
  assert.is(store.receive(SEG, data.length, Buffer.from(rec(3)), true).status, 'appended');
  store.close();
});

test('dropCoveredGossip: deletes a gossip file wal/ covers once a later segment exists', () => {
  const { dir, repo, gfile } = setup();
  const store = new GossipStore({ repo });
  const data = origin(5);
  store.receive(SEG, 0, data, true);
  store.close();
  fs.writeFileSync(path.join(dir, 'wal', SEG), data);
  assert.equal(dropCoveredGossip({ repo }), [], 'the newest segment of its origin is kept');
  fs.writeFileSync(path.join(dir, 'wal', '20261122_pi-02.usv'), rec(0));
  fs.writeFileSync(path.join(dir, 'wal', SEG), data.subarray(0, data.length - 5));
  assert.equal(dropCoveredGossip({ repo }), [], 'not covered: kept');
  fs.writeFileSync(path.join(dir, 'wal', SEG), data);
  assert.equal(dropCoveredGossip({ repo }), [SEG]);
  assert.not.ok(fs.existsSync(gfile));
});

test.run();
