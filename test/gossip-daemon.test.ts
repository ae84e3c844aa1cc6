// Real daemons on loopback: two and three nodes, latency, large records,
// restart resuming where it left off, 30 % loss repaired by anti-entropy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { walnut, walnutAsync } from './helpers.js';
import { bytesOf, gossipStatus, holdsAllOf, makeCluster, ok, startNode, stopAll, stopNode, waitFor, type GossipNode } from './gossip-harness.js';

function show(node: GossipNode, target: string): Record<string, unknown> {
  const r = walnut(['-C', node.dir, 'show', target, '--json']);
  if (r.code !== 0) return {};
  return JSON.parse(r.stdout).fields;
}

function gossipFile(node: GossipNode, origin: GossipNode): string {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  return path.join(node.dir, '.walnut', 'gossip', `${day}_${origin.name}.usv`);
}

test('two daemons: a set on one is visible via show on the other, both ways', async () => {
  const [a, b] = await makeCluster(2);
  try {
    await Promise.all([startNode(a), startNode(b)]);
    // Latency: from the record's arrival in a's wal/ to its arrival in b's gossip file.
    const latencies: number[] = [];
    const walFile = gossipFile(b, a).replace(path.join(b.dir, '.walnut', 'gossip'), path.join(a.dir, 'wal'));
    for (let i = 0; i < 10; i++) {
      const mark = `\u001f${100 + i}\u001f`;
      const run = walnutAsync(['-C', a.dir, 'set', 'companies/acme', 'employees', String(100 + i)]);
      await waitFor(() => bytesOf(walFile).includes(mark), 5000, 'the record in wal/', 0);
      latencies.push(await waitFor(() => bytesOf(gossipFile(b, a)).includes(mark), 5000, 'the record at b', 0));
      assert.is((await run).code, 0);
    }
    assert.equal(show(b, 'companies/acme'), { employees: 109 });
    ok(['-C', b.dir, 'set', 'people/jane', 'name', 'Jane']);
    await waitFor(() => bytesOf(gossipFile(a, b)).includes('Jane'), 5000, 'the record at a');
    assert.equal(show(a, 'people/jane'), { name: 'Jane' });
    assert.not.ok(fs.readdirSync(path.join(b.dir, 'wal')).some((n) => n.includes(a.name)), 'received records never go to wal/');
    latencies.sort((x, y) => x - y);
    console.log(`  two nodes: record in wal/ -> in the peer's gossip file: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
    assert.ok(latencies[5] < 500, `median latency ${latencies[5]} ms`);
  } finally {
    await stopAll([a, b]);
  }
});

test('three daemons: every set reaches the two others; status --cluster lists them', async () => {
  const nodes = await makeCluster(3);
  try {
    await Promise.all(nodes.map((n) => startNode(n)));
    const t0 = performance.now();
    for (const n of nodes) ok(['-C', n.dir, 'set', `companies/c-${n.name}`, 'owner', n.name]);
    for (const n of nodes) for (const m of nodes) if (m !== n) await waitFor(() => holdsAllOf(m, n), 5000, `${m.name} to hold ${n.name}`);
    console.log(`  three nodes: 3 sets on 3 nodes everywhere after ${(performance.now() - t0).toFixed(0)} ms (CLI start-up included)`);
    for (const n of nodes) for (const m of nodes) assert.equal(show(m, `companies/c-${n.name}`), { owner: n.name }, `${m.name} sees ${n.name}`);
    // The status file is written at least once per heartbeat (200 ms here).
    await new Promise((r) => setTimeout(r, 600));
    const r = walnut(['-C', nodes[0].dir, 'status', '--cluster', '--json']);
    assert.is(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.is(doc.version, 1);
    assert.is(doc.daemon.running, true);
    assert.equal(doc.nodes.map((x: { node: string }) => x.node), ['node-a', 'node-b', 'node-c']);
    for (const peer of doc.nodes.slice(1)) {
      assert.is(peer.how, 'static');
      assert.is(peer.circuit, 'closed');
      assert.ok(peer.lastSeenAgoMs < 2000, `last seen ${peer.lastSeenAgoMs} ms ago`);
      assert.equal(peer.drift, { lacks: 0, extra: 0 });
      assert.is(peer.holds.records, 3);
    }
    const text = walnut(['-C', nodes[1].dir, 'status', '--cluster']);
    assert.match(text.stdout, /^gossip: running/);
    assert.match(text.stdout, /node-b \*\s+127\.0\.0\.1:\d+\s+self/);
    assert.match(text.stdout, /node-a\s+127\.0\.0\.1:\d+\s+static\s+\d+m?s ago\s+3\s+0\s+0\s+closed/);
  } finally {
    await stopAll(nodes);
  }
});

test('a record larger than a datagram travels in pieces', async () => {
  const [a, b] = await makeCluster(2);
  try {
    await Promise.all([startNode(a), startNode(b)]);
    const big = 'lorem ipsum '.repeat(10_000);
    ok(['-C', a.dir, 'set', 'companies/acme', 'notes', big]);
    await waitFor(() => holdsAllOf(b, a), 5000, 'the big record at b');
    assert.is(show(b, 'companies/acme').notes, big);
  } finally {
    await stopAll([a, b]);
  }
});

test('SIGTERM drains; a restart resumes where it left off (sent offsets), and a node that was down catches up', async () => {
  const [a, b] = await makeCluster(2);
  try {
    await Promise.all([startNode(a), startNode(b)]);
    ok(['-C', a.dir, 'set', 'companies/acme', 'n', '1']);
    await waitFor(() => holdsAllOf(b, a), 5000, 'b to hold a');
    assert.is(await stopNode(a), 0, a.output);
    const state = JSON.parse(fs.readFileSync(path.join(a.dir, '.walnut', 'gossip-state.json'), 'utf8'));
    const seg = [...Object.keys(state.sent)][0];
    assert.is(state.sent[seg], fs.statSync(path.join(a.dir, 'wal', seg)).size, 'offset of the last send persisted');
    // Written while a's daemon was down: sent at its restart.
    ok(['-C', a.dir, 'set', 'companies/acme', 'n', '2']);
    await startNode(a);
    await waitFor(() => holdsAllOf(b, a), 5000, 'b to get the record written while a was down');
    assert.equal(show(b, 'companies/acme'), { n: 2 });
    // b down while a writes: b catches up through a's heartbeat summary (anti-entropy).
    assert.is(await stopNode(b), 0);
    ok(['-C', a.dir, 'set', 'companies/acme', 'n', '3']);
    await startNode(b);
    await waitFor(() => holdsAllOf(b, a), 5000, 'b to catch up after its restart');
    assert.equal(show(b, 'companies/acme'), { n: 3 });
    assert.ok(gossipStatus(b).counters.requestsSent >= 1, 'b asked for what it lacked');
  } finally {
    await stopAll([a, b]);
  }
});

test('30 % of datagrams lost: anti-entropy still converges', async () => {
  const nodes = await makeCluster(3);
  const [a, b, c] = nodes;
  try {
    await Promise.all(nodes.map((n) => startNode(n, { WALNUT_GOSSIP_DROP: '0.3' })));
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ target: `companies/c${i % 30}`, field: `f${i}`, value: i })).join('\n');
    const t0 = performance.now();
    ok(['-C', a.dir, 'set', '--batch'], { input: lines });
    for (let i = 0; i < 20; i++) ok(['-C', b.dir, 'set', 'people/p', `g${i}`, String(i)]);
    for (const n of nodes) for (const m of nodes) if (m !== n) await waitFor(() => holdsAllOf(m, n), 20_000, `${m.name} to hold every record of ${n.name}`, 10);
    console.log(`  30 % loss, 3 nodes, 320 records: converged ${(performance.now() - t0).toFixed(0)} ms after the first write`);
    for (const m of [b, c]) assert.is(show(m, 'companies/c29').f299, 299);
    assert.is(show(c, 'people/p').g19, 19);
    await new Promise((r) => setTimeout(r, 400));
    const st = gossipStatus(a);
    assert.ok(st.counters.lossInjected > 0, 'the test hook dropped datagrams');
    const repaired = nodes.map((n) => gossipStatus(n).counters.requestsSent).reduce((x, y) => x + y, 0);
    assert.ok(repaired > 0, 'lost datagrams were asked for again');
  } finally {
    await stopAll(nodes);
  }
});

test.run();
