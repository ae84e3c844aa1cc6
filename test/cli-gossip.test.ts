import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, initRepoDir, walnut } from './helpers.js';
import { freePorts, makeCluster, ok, startNode, stopNode, waitFor } from './gossip-harness.js';

const pidOf = (dir: string) => Number(fs.readFileSync(path.join(dir, '.walnut', 'gossip.pid'), 'utf8').trim());
/** A running process (a zombie left by a reparented daemon does not count). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
};

test('keygen: a new key, refused twice, rotate, accept, retire; the config is private', () => {
  const dir = initRepoDir('pi-01');
  const r = walnut(['-C', dir, 'gossip', 'keygen']);
  assert.is(r.code, 0, r.stderr);
  const key = r.stdout.trim();
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.match(r.stderr, /cluster key [0-9a-f]{8} in '\.walnut\/config'/);
  assert.is(fs.statSync(path.join(dir, '.walnut', 'config')).mode & 0o777, 0o600);
  const again = walnut(['-C', dir, 'gossip', 'keygen']);
  assert.is(again.code, 1);
  assert.match(again.stderr, /^error: a cluster key is already set \(fingerprint [0-9a-f]{8}\)\nhint: use --rotate/);
  const rot = walnut(['-C', dir, 'gossip', 'keygen', '--rotate', '--json']);
  assert.is(rot.code, 0, rot.stderr);
  const doc = JSON.parse(rot.stdout);
  assert.is(doc.version, 1);
  assert.is(doc.mode, 'rotate');
  assert.is(doc.keys.length, 2);
  assert.is(doc.keys[0], doc.fingerprint, 'the new key signs');
  assert.equal(walnut(['-C', dir, 'config', 'get', 'gossip.key']).stdout.trim(), key, 'the old key is still accepted (last value)');
  const other = 'ab'.repeat(32);
  assert.is(walnut(['-C', dir, 'gossip', 'keygen', '--accept', '--key', other]).code, 0);
  const cfg = fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8');
  assert.is((cfg.match(/key = /g) ?? []).length, 3);
  assert.ok(cfg.indexOf(doc.key) < cfg.indexOf(key) && cfg.indexOf(key) < cfg.indexOf(other), 'signing key first, accepted keys after');
  const ret = walnut(['-C', dir, 'gossip', 'keygen', '--retire']);
  assert.is(ret.code, 0);
  assert.is(ret.stdout, '', 'retire prints no key');
  assert.is((fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8').match(/key = /g) ?? []).length, 1);
  const bad = walnut(['-C', dir, 'gossip', 'keygen', '--key', 'nothex']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /error: config --key is not a cluster key: expected 64 hexadecimal digits/);
});

test('usage errors exit 2; no key exits 1 with a hint', () => {
  const dir = initRepoDir('pi-01');
  const noKey = walnut(['-C', dir, 'gossip']);
  assert.is(noKey.code, 1);
  assert.match(noKey.stderr, /error: no cluster key in '.*config' \(gossip\.key\)\nhint: generate one with 'walnut gossip keygen'/);
  for (const args of [['gossip', '--rotate'], ['gossip', 'stop', '--port', '7'], ['gossip', 'frobnicate'], ['gossip', 'keygen', '--rotate', '--retire'], ['gossip', '--port', '99999']]) {
    const r = walnut(['-C', dir, ...args]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: walnut gossip/);
  }
  ok(['-C', dir, 'gossip', 'keygen']);
  const drop = walnut(['-C', dir, 'gossip'], { env: { WALNUT_GOSSIP_DROP: '2' } });
  assert.is(drop.code, 2);
  assert.match(drop.stderr, /WALNUT_GOSSIP_DROP="2" is not a share between 0 and 1/);
  const json = walnut(['-C', dir, 'gossip', 'frobnicate', '--json']);
  assert.is(json.code, 2);
  assert.is(JSON.parse(json.stderr).error.code, 'EUSAGE');
});

test('start, status, second daemon refused, stop; status after stop', async () => {
  const [a] = await makeCluster(1, { names: ['pi-a'] });
  const start = walnut(['-C', a.dir, 'gossip', 'start']);
  try {
    assert.is(start.code, 0, start.stderr);
    assert.is(start.stdout, '');
    assert.match(start.stderr, /^gossip: started \(pid \d+\), node pi-a listening on 127\.0\.0\.1:\d+; log in '\.walnut\/gossip\.log'/);
    const pid = pidOf(a.dir);
    assert.ok(alive(pid));
    const st = walnut(['-C', a.dir, 'gossip', 'status', '--json']);
    assert.is(st.code, 0, st.stderr);
    const doc = JSON.parse(st.stdout);
    assert.is(doc.version, 1);
    assert.is(doc.daemon.running, true);
    assert.is(doc.daemon.pid, pid);
    assert.is(doc.daemon.port, a.port);
    assert.is(doc.counters.dropped.unauthenticated, 0);
    const text = walnut(['-C', a.dir, 'gossip', 'status']);
    assert.match(text.stdout, new RegExp(`^gossip: running \\(pid ${pid}\\), node pi-a listening on 127\\.0\\.0\\.1:${a.port}`));
    assert.match(text.stdout, /\nreceived: 0 datagrams, 0 accepted, 0 dropped \(oversized 0, malformed 0, unauthenticated 0, replayed 0/);
    // A second daemon on the same data directory: refused, in the background and in the foreground.
    const second = walnut(['-C', a.dir, 'gossip', 'start']);
    assert.is(second.code, 3);
    assert.match(second.stderr, new RegExp(`^error: a gossip daemon already runs for '.*' \\(pid ${pid}\\)\\nhint: stop it`));
    const fg = walnut(['-C', a.dir, 'gossip', '--port', String((await freePorts(1))[0])]);
    assert.is(fg.code, 3);
    assert.match(fg.stderr, /error: a gossip daemon already runs for/);
    assert.ok(alive(pid), 'the first one still runs');
    const stop = walnut(['-C', a.dir, 'gossip', 'stop']);
    assert.is(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, new RegExp(`^gossip: stopped \\(pid ${pid}\\)`));
    assert.not.ok(alive(pid));
    assert.not.ok(fs.existsSync(path.join(a.dir, '.walnut', 'gossip.pid')), 'pidfile removed');
    const after = walnut(['-C', a.dir, 'gossip', 'status', '--json']);
    assert.is(after.code, 1);
    assert.is(JSON.parse(after.stdout).daemon.running, false);
    assert.match(after.stderr, /EGOSSIPNOTRUNNING/);
    const again = walnut(['-C', a.dir, 'gossip', 'stop']);
    assert.is(again.code, 0);
    assert.match(again.stderr, /^gossip: not running/);
    assert.match(fs.readFileSync(path.join(a.dir, '.walnut', 'gossip.log'), 'utf8'), /listening on/);
  } finally {
    walnut(['-C', a.dir, 'gossip', 'stop']);
  }
});

test('a stale pidfile (its process is gone) is taken over; stop cleans up a stale one', async () => {
  const [a] = await makeCluster(1, { names: ['pi-a'] });
  const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
  assert.not.ok(alive(dead));
  fs.writeFileSync(path.join(a.dir, '.walnut', 'gossip.pid'), `${dead}\n`);
  const st = walnut(['-C', a.dir, 'gossip', 'stop']);
  assert.is(st.code, 0);
  assert.match(st.stderr, new RegExp(`removed a stale pidfile \\(pid ${dead} is gone\\)`));
  fs.writeFileSync(path.join(a.dir, '.walnut', 'gossip.pid'), `${process.pid}\n`); // alive, but not a gossip daemon
  await startNode(a);
  try {
    assert.match(a.output, new RegExp(`took over a stale pidfile \\(pid ${process.pid} is gone\\)`));
    assert.is(pidOf(a.dir), a.proc!.pid);
  } finally {
    assert.is(await stopNode(a), 0);
  }
  assert.not.ok(fs.existsSync(path.join(a.dir, '.walnut', 'gossip.pid')));
});

test('foreground: SIGTERM exits 0; a port in use is a clear error; --json streams events', async () => {
  const [a] = await makeCluster(1, { names: ['pi-a'] });
  const blocker = dgram.createSocket('udp4');
  await new Promise<void>((r) => blocker.bind(a.port, '127.0.0.1', () => r()));
  try {
    const r = walnut(['-C', a.dir, 'gossip']);
    assert.is(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${a.port}: EADDRINUSE\\nhint: another program`));
    assert.not.ok(fs.existsSync(path.join(a.dir, '.walnut', 'gossip.pid')), 'no pidfile left behind');
  } finally {
    blocker.close();
  }
  const child = spawn(process.execPath, [BIN, '-C', a.dir, 'gossip', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await waitFor(() => out.includes('LISTENING'), 10_000, 'listening');
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGTERM');
  assert.is(await exit, 0);
  const first = JSON.parse(out.split('\n')[0]);
  assert.is(first.version, 1);
  assert.is(first.event, 'LISTENING');
  assert.is(first.port, a.port);
  const status = JSON.parse(fs.readFileSync(path.join(a.dir, '.walnut', 'gossip-status.json'), 'utf8'));
  assert.is(status.running, false, 'the last status says stopped');
});

test('status --cluster without a daemon: this node only, text and JSON', () => {
  const dir = initRepoDir('pi-01');
  ok(['-C', dir, 'set', 'companies/acme', 'name', 'Acme']);
  const r = walnut(['-C', dir, 'status', '--cluster', '--json']);
  assert.is(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.is(doc.daemon.running, false);
  assert.equal(doc.nodes.map((n: { node: string; self: boolean; holds: { records: number } }) => [n.node, n.self, n.holds.records]), [['pi-01', true, 1]]);
  const t = walnut(['-C', dir, 'status', '--cluster']);
  assert.is(t.code, 0);
  assert.match(t.stdout, /^gossip: not running\nNODE\s+ADDRESS\s+HOW\s+LAST SEEN\s+RECORDS\s+LACKS\s+EXTRA\s+CIRCUIT\npi-01 \*\s+-\s+self\s+-\s+1\s+-\s+-\s+-\n$/);
});

test.run();
