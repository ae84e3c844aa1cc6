// The daemon in-process (lib level, real sockets on 127.0.0.1): circuit
// breaker, socket restart, clock observation, key rotation, fallback
// addresses, dropping gossip copies that wal/ covers, duplicate node ids.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeRecord } from '../formats/usv.js';
import { openRepo, type Repo } from '../lib/repo.js';
import { writeChanges } from '../lib/write.js';
import { GossipDaemon, type GossipEvent } from '../lib/gossip/daemon.js';
import { initRepoDir, tmpDir } from './helpers.js';
import { bytesOf, freePorts, waitFor } from './gossip-harness.js';

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const DAY = new Date().toISOString().slice(0, 10).replace(/-/g, '');

interface Node {
  repo: Repo;
  port: number;
  daemon?: GossipDaemon;
  events: GossipEvent[];
}

async function node(name: string, port: number): Promise<Node> {
  return { repo: openRepo({ cwd: initRepoDir(name, path.join(tmpDir(), name)) }), port, events: [] };
}

async function run(n: Node, { peers = [] as number[], fallback = [] as number[], keys = [K1], heartbeatMs = 60, threshold = 2, backoffMs = 200, now }: { peers?: number[]; fallback?: number[]; keys?: Buffer[]; heartbeatMs?: number; threshold?: number; backoffMs?: number; now?: () => number } = {}) {
  n.daemon = new GossipDaemon({
    repo: n.repo,
    keys,
    port: n.port,
    bind: '127.0.0.1',
    peers: peers.map((port) => ({ host: '127.0.0.1', port })),
    fallback: fallback.map((port) => ({ host: '127.0.0.1', port })),
    mdns: false,
    heartbeatMs,
    batchMs: 5,
    breaker: { threshold, backoffMs, maxBackoffMs: 10_000 },
    clock: now ? { now } : undefined,
    onEvent: (e) => n.events.push(e),
  });
  await n.daemon.start();
}

const stopAll = (...ns: Node[]) => Promise.all(ns.map((n) => n.daemon?.stop()));
const gfile = (n: Node, origin: string, day = DAY) => path.join(n.repo.dir, 'gossip', `${day}_${origin}.usv`);
const set = (n: Node, field: string, value: unknown) => writeChanges({ repo: n.repo, changes: [{ target: 'companies/acme', field, value }] });
const circuit = (n: Node, port: number) => n.daemon!.status().peers.find((p) => p.address === `127.0.0.1:${port}`)!;

test('circuit breaker: a silent peer is opened, probed after the back-off, closed when it answers', async () => {
  const [pa, pb] = await freePorts(2);
  const a = await node('node-a', pa);
  const b = await node('node-b', pb);
  try {
    await run(a, { peers: [pb] });
    await waitFor(() => circuit(a, pb).circuit === 'open', 2000, 'the silent peer to be opened');
    assert.is(circuit(a, pb).failures, 1);
    set(a, 'x', 1);
    await new Promise((r) => setTimeout(r, 50));
    const sentWhileOpen = a.daemon!.counters.sent;
    await waitFor(() => circuit(a, pb).circuit === 'half-open', 2000, 'half-open after the back-off');
    await waitFor(() => circuit(a, pb).failures === 2, 2000, 'the unanswered probe to open it again');
    assert.is(circuit(a, pb).circuit, 'open');
    const backoff = Date.parse(circuit(a, pb).openUntil!) - Date.now();
    assert.ok(backoff > 200 && backoff <= 400, `back-off doubled: ${backoff} ms`);
    assert.ok(a.daemon!.counters.sent - sentWhileOpen <= 2, 'nothing but probes sent to an open peer');
    assert.ok(a.events.some((e) => e.code === 'CIRCUIT' && /not answering/.test(e.message)));
    await run(b, { peers: [pa] });
    await waitFor(() => circuit(a, pb).circuit === 'closed', 3000, 'closed once the peer answers');
    await waitFor(() => bytesOf(gfile(b, 'node-a')).length > 0, 3000, 'the record written while it was open (anti-entropy)');
    assert.ok(a.events.some((e) => e.code === 'CIRCUIT' && /answers again/.test(e.message)));
  } finally {
    await stopAll(a, b);
  }
});

test('a socket error reopens the socket with back-off; gossip goes on', async () => {
  const [pa, pb] = await freePorts(2);
  const a = await node('node-a', pa);
  const b = await node('node-b', pb);
  try {
    await run(a, { peers: [pb], heartbeatMs: 200 });
    await run(b, { peers: [pa], heartbeatMs: 200 });
    a.daemon!.breakSocket();
    await waitFor(() => a.daemon!.counters.socketRestarts === 1 && a.events.some((e) => /socket reopened/.test(e.message)), 3000, 'the socket to be reopened');
    assert.ok(a.events.some((e) => e.code === 'SOCKET' && /reopening in 100 ms/.test(e.message)));
    set(a, 'after', 'restart');
    await waitFor(() => bytesOf(gfile(b, 'node-a')).includes('restart'), 3000, 'records after the restart');
    set(b, 'back', 'too');
    await waitFor(() => bytesOf(gfile(a, 'node-b')).includes('too'), 3000, 'and received too');
  } finally {
    await stopAll(a, b);
  }
});

test('received records move the clock: a later local write orders after them', async () => {
  const [pa, pb] = await freePorts(2);
  const a = await node('node-a', pa);
  const b = await node('node-b', pb);
  try {
    await run(a, { peers: [pb], heartbeatMs: 200 });
    await run(b, { peers: [pa], heartbeatMs: 200 });
    const ahead = Date.now() + 10 * 60_000; // a's clock is 10 minutes fast
    const seg = path.join(a.repo.wal, `${new Date(ahead).toISOString().slice(0, 10).replace(/-/g, '')}_node-a.usv`);
    fs.appendFileSync(seg, encodeRecord({ timestamp: new Date(ahead).toISOString(), node: 'node-a', target: 'companies/acme', field: 'name', value: '"from a"', causality: 'hlc:3' }));
    await waitFor(() => fs.existsSync(path.join(b.repo.dir, 'clock')) && Number(fs.readFileSync(path.join(b.repo.dir, 'clock'), 'utf8').split(' ')[0]) >= ahead, 3000, "b's clock to observe the record");
    const [mine] = set(b, 'name', 'from b');
    assert.ok(Date.parse(mine.timestamp) > ahead || (Date.parse(mine.timestamp) === ahead && mine.causality === 'hlc:4'), `b's write ${mine.timestamp} ${mine.causality} orders after ${new Date(ahead).toISOString()}`);
  } finally {
    await stopAll(a, b);
  }
});

test('key rotation: the first key signs, every key is accepted; a node without the new key drops', async () => {
  const [pa, pb, pc] = await freePorts(3);
  const a = await node('node-a', pa);
  const b = await node('node-b', pb);
  const c = await node('node-c', pc);
  try {
    await run(a, { peers: [pb, pc], keys: [K2, K1], heartbeatMs: 200, threshold: 100 });
    await run(b, { peers: [pa], keys: [K1, K2], heartbeatMs: 200, threshold: 100 });
    await run(c, { peers: [pa], keys: [K1], heartbeatMs: 200, threshold: 100 });
    set(a, 'k', 'rotated');
    set(b, 'k', 'old key');
    await waitFor(() => bytesOf(gfile(b, 'node-a')).includes('rotated'), 3000, 'b to accept the new key');
    await waitFor(() => bytesOf(gfile(a, 'node-b')).includes('old key'), 3000, 'a to accept the old key');
    await waitFor(() => c.daemon!.counters.dropped.unauthenticated > 0, 3000, 'c to drop what it cannot verify');
    assert.not.ok(fs.existsSync(gfile(c, 'node-a')));
  } finally {
    await stopAll(a, b, c);
  }
});

test('fallback addresses are used only while no other peer answers', async () => {
  const [pa, pb, pc] = await freePorts(3);
  const a = await node('node-a', pa);
  const b = await node('node-b', pb);
  const c = await node('node-c', pc);
  try {
    await run(b, { peers: [pa], heartbeatMs: 60, threshold: 100 });
    await run(c, { heartbeatMs: 60, threshold: 100 });
    await run(a, { peers: [pb], fallback: [pc], heartbeatMs: 100, threshold: 6, backoffMs: 5000 });
    await waitFor(() => circuit(a, pb).lastSeen !== undefined, 2000, 'b to be heard');
    set(a, 'n', 1);
    await waitFor(() => bytesOf(gfile(b, 'node-a')).length > 0, 2000, 'b to get it');
    await new Promise((r) => setTimeout(r, 300));
    assert.not.ok(fs.existsSync(gfile(c, 'node-a')), 'the fallback is not used while b answers');
    await b.daemon!.stop();
    set(a, 'n', 2);
    await waitFor(() => bytesOf(gfile(c, 'node-a')).length > 0, 5000, 'the fallback to be used once b is silent');
    assert.equal(a.daemon!.status().peers.map((p) => p.how), ['static', 'fallback']);
  } finally {
    await stopAll(a, b, c);
  }
});

test('a gossip copy that wal/ holds in full (after pull) is deleted once its origin has moved on', async () => {
  const [pa, pb] = await freePorts(2);
  const a = await node('node-a', pa);
  const b = await node('node-b', pb);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');
  const old = path.join(a.repo.wal, `${yesterday}_node-a.usv`);
  fs.writeFileSync(old, encodeRecord({ timestamp: new Date(Date.now() - 86_400_000).toISOString(), node: 'node-a', target: 'companies/acme', field: 'old', value: '1', causality: 'hlc:0' }));
  try {
    await run(a, { peers: [pb], heartbeatMs: 100, threshold: 100 });
    await run(b, { peers: [pa], heartbeatMs: 100, threshold: 100 });
    set(a, 'new', 2);
    await waitFor(() => bytesOf(gfile(b, 'node-a', yesterday)).equals(fs.readFileSync(old)) && bytesOf(gfile(b, 'node-a')).length > 0, 3000, "b to hold both of a's segments");
    fs.copyFileSync(old, path.join(b.repo.wal, path.basename(old))); // what pull does
    await waitFor(() => !fs.existsSync(gfile(b, 'node-a', yesterday)), 3000, 'the covered copy to be dropped');
    assert.ok(fs.existsSync(gfile(b, 'node-a')), "today's copy stays");
    assert.is(b.daemon!.counters.gossipFilesDropped, 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.not.ok(fs.existsSync(gfile(b, 'node-a', yesterday)), 'not fetched again: wal/ holds it');
  } finally {
    await stopAll(a, b);
  }
});

test('two machines with one node id: detected and reported, nothing of the other taken', async () => {
  const [p1, p2] = await freePorts(2);
  const a1 = await node('node-a', p1);
  const a2 = await node('node-a', p2);
  try {
    await run(a1, { peers: [p2], heartbeatMs: 100 });
    await run(a2, { peers: [p1], heartbeatMs: 100 });
    set(a2, 'x', 'twin');
    await waitFor(() => a1.events.some((e) => e.code === 'DUPLICATENODE'), 3000, 'the duplicate id to be reported');
    assert.match(a1.daemon!.status().alerts[0].message, /claims this node's id 'node-a': two machines with one node id\?/);
    assert.ok(a1.daemon!.counters.dropped.self > 0);
    assert.not.ok(fs.existsSync(path.join(a1.repo.dir, 'gossip')), 'nothing written');
  } finally {
    await stopAll(a1, a2);
  }
});

test.run();
