// Gossip benchmark (standalone; needs a build: npm run build).
//
//   node bench/gossip.bench.mjs [--records 1000] [--nodes 10] [--loss 0.05] [--json]
//
// 1. Latency: two daemons on loopback; one record at a time is appended to
//    node A's segment (in-process, like `walnut set`) and timed until the
//    bytes are in node B's gossip file. Target: p50 <= 20 ms, p99 <= 100 ms
//    over 1000 records.
// 2. Loss: ten daemons on loopback ports, each dropping 5 % of its outgoing
//    datagrams (WALNUT_GOSSIP_DROP); records are written on random nodes
//    every 10 ms; each is timed until every other node holds it. Target:
//    every record on every node within 2 s. Default heartbeat (60 s): the
//    repair comes from gap detection and the short summaries sent after a
//    burst, not from frequent heartbeats.
//
// Prints its figures as BENCH_RESULT lines (JSON; see bench/README.md) on
// stdout, then with --json one JSON document of everything; a human summary
// on stderr. Exits 0 when it could measure (a missed goal is a result).
// Only 127.0.0.1 is used.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { report, log } from './lib/report.mjs';
import { ROOT, BIN, makeTempRoot, requireBuild } from './lib/walnut.mjs';

requireBuild();
const { writeChanges } = await import(path.join(ROOT, 'dist', 'lib', 'write.js'));
const { openRepo } = await import(path.join(ROOT, 'dist', 'lib', 'repo.js'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? def : Number(args[i + 1]);
};
const RECORDS = opt('records', 1000);
const NODES = opt('nodes', 10);
const LOSS = opt('loss', 0.05);
const LOSS_RECORDS = opt('loss-records', 300);

const root = makeTempRoot('gossip');
const tmp = root.dir;
const procs = [];
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  root.cleanup();
};
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

function run(argv, input) {
  const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`walnut ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function freePorts(n) {
  const socks = await Promise.all(Array.from({ length: n }, () => new Promise((res) => { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1', () => res(s)); })));
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function cluster(n, name) {
  const ports = await freePorts(n);
  const nodes = ports.map((port, i) => ({ name: `${name}-${i}`, dir: path.join(tmp, `${name}-${i}`), port }));
  let key;
  for (const node of nodes) {
    run(['init', node.dir, '--node', node.name]);
    key ??= run(['-C', node.dir, 'gossip', 'keygen']).trim();
    if (node !== nodes[0]) run(['-C', node.dir, 'gossip', 'keygen', '--key', key]);
    let cfg = `[gossip]\n\tport = ${node.port}\n\tbind = 127.0.0.1\n\tmdns = false\n`;
    for (const o of nodes) if (o !== node) cfg += `\tpeer = 127.0.0.1:${o.port}\n`;
    fs.appendFileSync(path.join(node.dir, '.walnut', 'config'), cfg);
    node.repo = openRepo({ cwd: node.dir });
  }
  return nodes;
}

async function start(node, env = {}) {
  const p = spawn(process.execPath, [BIN, '-C', node.dir, 'gossip'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(p);
  node.proc = p;
  let out = '';
  p.stderr.on('data', (d) => (out += d));
  const t0 = Date.now();
  while (!out.includes('listening on')) {
    if (p.exitCode !== null || Date.now() - t0 > 10_000) throw new Error(`daemon ${node.name} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function stop(nodes) {
  await Promise.all(nodes.map((n) => new Promise((r) => { if (n.proc.exitCode !== null) return r(); n.proc.once('exit', r); n.proc.kill('SIGTERM'); })));
}

function size(file) {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Bytes of `origin`'s segment `seg` that `node` holds (gossip copy or pulled wal/). */
function held(node, seg) {
  return Math.max(size(path.join(node.dir, '.walnut', 'gossip', seg)), size(path.join(node.dir, 'wal', seg)));
}

function write(node, i) {
  const [rec] = writeChanges({ repo: node.repo, changes: [{ target: `companies/c${i % 50}`, field: `f${i}`, value: i }] });
  const day = rec.timestamp.slice(0, 10).replace(/-/g, '');
  const seg = `${day}_${node.name}.usv`;
  return { seg, end: size(path.join(node.dir, 'wal', seg)) };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 100) / 100;
  return { n: s.length, p50: r(pct(s, 50)), p90: r(pct(s, 90)), p99: r(pct(s, 99)), max: r(s[s.length - 1]), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
};

// ---- 1. latency, two nodes ----------------------------------------------
log(`latency: 2 daemons on loopback, ${RECORDS} records one at a time`);
const pair = await cluster(2, 'lat');
await Promise.all(pair.map((n) => start(n)));
await new Promise((r) => setTimeout(r, 300));
const lat = [];
for (let i = 0; i < RECORDS; i++) {
  const t0 = performance.now();
  const { seg, end } = write(pair[0], i);
  while (held(pair[1], seg) < end) {
    if (performance.now() - t0 > 5000) throw new Error(`record ${i} not at the peer after 5 s`);
    await new Promise((r) => setImmediate(r));
  }
  lat.push(performance.now() - t0);
  if (i % 7 === 0) await new Promise((r) => setTimeout(r, Math.random() * 3));
}
await stop(pair);
const latency = stats(lat);

// ---- 2. ten nodes, 5 % loss --------------------------------------------
log(`loss: ${NODES} daemons on loopback, ${LOSS * 100} % of datagrams dropped, ${LOSS_RECORDS} records on random nodes every 10 ms`);
const ten = await cluster(NODES, 'loss');
await Promise.all(ten.map((n) => start(n, { WALNUT_GOSSIP_DROP: String(LOSS) })));
await new Promise((r) => setTimeout(r, 500));
const pending = [];
const done = [];
let written = 0;
const t0 = performance.now();
await new Promise((resolve, reject) => {
  const writer = setInterval(() => {
    if (written >= LOSS_RECORDS) return clearInterval(writer);
    const node = ten[Math.floor(Math.random() * ten.length)];
    const w = write(node, written++);
    pending.push({ ...w, origin: node, t0: performance.now() });
  }, 10);
  const check = () => {
    const now = performance.now();
    for (let i = pending.length - 1; i >= 0; i--) {
      const p = pending[i];
      if (ten.every((n) => n === p.origin || held(n, p.seg) >= p.end)) {
        done.push(now - p.t0);
        pending.splice(i, 1);
      } else if (now - p.t0 > 30_000) {
        clearInterval(writer);
        return reject(new Error(`a record of ${p.origin.name} was not everywhere after 30 s`));
      }
    }
    if (written >= LOSS_RECORDS && pending.length === 0) return resolve();
    setTimeout(check, 1);
  };
  check();
});
const elapsed = performance.now() - t0;
const counters = ten.map((n) => JSON.parse(run(['-C', n.dir, 'gossip', 'status', '--json'])).counters);
await stop(ten);
const everywhere = stats(done);
const sum = (k) => counters.reduce((a, c) => a + c[k], 0);

const result = {
  version: 1,
  benchmark: 'gossip',
  latency: { records: RECORDS, ms: latency, target: { p50: 20, p99: 100 }, ok: latency.p50 <= 20 && latency.p99 <= 100 },
  loss: {
    nodes: NODES,
    loss: LOSS,
    records: LOSS_RECORDS,
    msUntilOnEveryNode: everywhere,
    seconds: Math.round(elapsed) / 1000,
    datagramsSent: sum('sent'),
    datagramsDroppedByHook: sum('lossInjected'),
    repairRequests: sum('requestsSent'),
    target: { max: 2000 },
    ok: everywhere.max <= 2000,
  },
  machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}` },
};
const group = 'gossip (issue 5)';
report({ bench: 'gossip', id: 'latency-p50', group, figure: `append → visible at a peer on loopback, p50 of ${RECORDS} records`, value: latency.p50, unit: 'ms', goal: '≤ 20 ms', pass: latency.p50 <= 20, text: `${latency.p50} ms (p90 ${latency.p90} ms)`, details: latency });
report({ bench: 'gossip', id: 'latency-p99', group, figure: `append → visible at a peer on loopback, p99 of ${RECORDS} records`, value: latency.p99, unit: 'ms', goal: '≤ 100 ms', pass: latency.p99 <= 100, text: `${latency.p99} ms (max ${latency.max} ms)`, details: latency });
report({
  bench: 'gossip',
  id: 'loss-max',
  group,
  figure: `${NODES} nodes, ${LOSS * 100} % datagram loss: every record on every node (slowest of ${LOSS_RECORDS})`,
  value: everywhere.max,
  unit: 'ms',
  goal: '≤ 2000 ms',
  pass: everywhere.max <= 2000,
  text: `${everywhere.max} ms (p50 ${everywhere.p50} ms, p99 ${everywhere.p99} ms)`,
  details: result.loss,
});
if (args.includes('--json')) process.stdout.write(JSON.stringify(result) + '\n');
process.stderr.write(
  [
    `gossip latency, 2 nodes, ${RECORDS} records: p50 ${latency.p50} ms, p90 ${latency.p90} ms, p99 ${latency.p99} ms, max ${latency.max} ms (target p50 <= 20, p99 <= 100): ${result.latency.ok ? 'ok' : 'MISSED'}`,
    `gossip loss, ${NODES} nodes, ${LOSS * 100} % datagrams dropped, ${LOSS_RECORDS} records: on every node after p50 ${everywhere.p50} ms, p99 ${everywhere.p99} ms, max ${everywhere.max} ms (target max <= 2000): ${result.loss.ok ? 'ok' : 'MISSED'}`,
    `  ${result.loss.datagramsSent} datagrams sent, ${result.loss.datagramsDroppedByHook} dropped by the hook, ${result.loss.repairRequests} repair requests`,
  ].join('\n') + '\n',
);
cleanup();
