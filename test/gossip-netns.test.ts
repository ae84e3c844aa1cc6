// Multi-host: three daemons in three network namespaces joined by a bridge
// (private 10.200.0.0/24 addresses only), with no static peers: they find
// each other by mDNS alone and converge. Needs root and a working `ip netns`;
// otherwise the test says why it was skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, tmpDir, walnut } from './helpers.js';
import { holdsAllOf, ok, waitFor, type GossipNode } from './gossip-harness.js';

const id = `wg${randomBytes(3).toString('hex')}`;
const bridgeNs = `${id}br`;
const hosts = [1, 2, 3].map((i) => ({ ns: `${id}h${i}`, address: `10.200.0.${i}` }));
const made: string[] = [];
const procs: ChildProcess[] = [];

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  for (const ns of made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns]);
}
process.on('exit', cleanup);

/** What this machine lacks for the test (all false: it can run). */
function lacks(): { linux: boolean; root: boolean; ip: boolean; netns: boolean; reason?: string } {
  const out = { linux: process.platform !== 'linux', root: process.getuid?.() !== 0, ip: false, netns: false, reason: undefined as string | undefined };
  if (out.linux) out.reason = `network namespaces need Linux (this is ${process.platform})`;
  else if (out.root) out.reason = `network namespaces need root (uid ${process.getuid?.()})`;
  else if (spawnSync('ip', ['-V']).error) {
    out.ip = true;
    out.reason = "'ip' (iproute2) is not installed: apt-get install iproute2";
  } else {
    const probe = `${id}probe`;
    const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
    if (r.status !== 0) {
      out.netns = true;
      out.reason = `'ip netns add' fails here: ${r.stderr.trim()}`;
    } else spawnSync('ip', ['netns', 'del', probe]);
  }
  return out;
}

function setUp(): void {
  ip('netns', 'add', bridgeNs);
  made.push(bridgeNs);
  ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', bridgeNs, 'link', 'set', 'br0', 'up');
  hosts.forEach((h, i) => {
    ip('netns', 'add', h.ns);
    made.push(h.ns);
    ip('-n', bridgeNs, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
    ip('-n', bridgeNs, 'link', 'set', `v${i}`, 'master', 'br0');
    ip('-n', bridgeNs, 'link', 'set', `v${i}`, 'up');
    ip('-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0');
    ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    ip('-n', h.ns, 'link', 'set', 'lo', 'up');
    ip('-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
  });
}

test('three hosts in network namespaces find each other by mDNS alone and converge', async () => {
  const missing = lacks();
  if (missing.reason) {
    console.log(`  skipped: ${missing.reason}`);
    assert.ok(missing.linux || missing.root || missing.ip || missing.netns, `the skip condition holds: ${missing.reason}`);
    return;
  }
  try {
    setUp();
    const root = tmpDir('walnut-netns-');
    const nodes: GossipNode[] = hosts.map((h, i) => ({ name: `host-${i + 1}`, dir: path.join(root, `h${i + 1}`), port: 9999, output: '', env: {} }));
    let key = '';
    for (const n of nodes) {
      ok(['init', n.dir, '--node', n.name]);
      if (!key) key = ok(['-C', n.dir, 'gossip', 'keygen']).trim();
      else ok(['-C', n.dir, 'gossip', 'keygen', '--key', key]);
      // No peers configured: discovery is mDNS only (on by default).
      fs.appendFileSync(path.join(n.dir, '.walnut', 'config'), '[gossip]\n\theartbeat = 300ms\n');
    }
    nodes.forEach((n, i) => {
      const p = spawn('ip', ['netns', 'exec', hosts[i].ns, process.execPath, BIN, '-C', n.dir, 'gossip', '--bind', hosts[i].address], { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      n.proc = p;
      p.stdout!.on('data', (d) => (n.output += d));
      p.stderr!.on('data', (d) => (n.output += d));
    });
    for (const n of nodes) await waitFor(() => n.output.includes('listening on'), 10_000, `${n.name} to listen`);
    for (const n of nodes) ok(['-C', n.dir, 'set', `companies/c-${n.name}`, 'owner', n.name]);
    const t0 = performance.now();
    for (const n of nodes) for (const m of nodes) if (m !== n) await waitFor(() => holdsAllOf(m, n), 20_000, `${m.name} to hold ${n.name}'s records`, 10);
    console.log(`  3 namespaces: converged ${(performance.now() - t0).toFixed(0)} ms after the writes`);
    for (const m of nodes) for (const n of nodes) {
      const r = walnut(['-C', m.dir, 'show', `companies/c-${n.name}`, '--json']);
      assert.is(JSON.parse(r.stdout).fields.owner, n.name, `${m.name} shows ${n.name}'s record`);
    }
    // Every node lists the two others as found by mDNS, at their namespace addresses.
    for (const [i, m] of nodes.entries()) {
      await waitFor(() => {
        const doc = JSON.parse(walnut(['-C', m.dir, 'status', '--cluster', '--json']).stdout);
        const peers = doc.nodes.filter((x: { self: boolean }) => !x.self);
        return peers.length === 2 && peers.every((p: { how: string; circuit: string }) => p.how === 'mdns' && p.circuit === 'closed');
      }, 10_000, `${m.name} to list its peers as found by mDNS`, 100);
      const doc = JSON.parse(walnut(['-C', m.dir, 'status', '--cluster', '--json']).stdout);
      const addrs = doc.nodes.filter((x: { self: boolean }) => !x.self).map((x: { address: string }) => x.address).sort();
      assert.equal(addrs, hosts.filter((_, j) => j !== i).map((h) => `${h.address}:9999`));
    }
    for (const n of nodes) {
      const exit = new Promise<number | null>((r) => n.proc!.once('exit', (c) => r(c)));
      n.proc!.kill('SIGTERM');
      assert.is(await exit, 0, n.output);
    }
  } finally {
    cleanup();
  }
  assert.not.ok(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(id), 'namespaces removed');
});

test.run();
