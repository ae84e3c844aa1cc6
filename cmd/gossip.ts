import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Command, Context } from './_cli.js';
import { UsageError, WalnutError, LockHeldError } from '../lib/errors.js';
import type * as Daemon from '../lib/gossip/daemon.js';
import type * as Config from '../lib/gossip/config.js';
import type * as Cluster from '../lib/gossip/cluster.js';
import type * as Pidfile from '../lib/gossip/pidfile.js';

type Args = { action?: string; port?: number; bind?: string; key?: string; rotate?: boolean; accept?: boolean; retire?: boolean };

export const gossip: Command<Args> = {
  command: 'gossip [action]',
  describe: 'run the LAN daemon that sends new records to peers by UDP within milliseconds',
  usage: ['walnut gossip [--port <n>] [--bind <addr>]', 'walnut gossip start | stop | status | keygen'],
  builder: (y) =>
    y
      .positional('action', { choices: ['start', 'stop', 'status', 'keygen'] as const, describe: 'manage a background daemon, or the cluster key' })
      .option('port', { type: 'number', requiresArg: true, describe: 'UDP port (default gossip.port or 9999)' })
      .option('bind', { type: 'string', requiresArg: true, describe: 'address to listen on (default gossip.bind or 0.0.0.0)' })
      .option('key', { type: 'string', requiresArg: true, describe: 'keygen: use this key (64 hex digits) instead of a new one' })
      .option('rotate', { type: 'boolean', describe: 'keygen: the key becomes the signing key; the old ones stay accepted' })
      .option('accept', { type: 'boolean', describe: 'keygen: add the key as accepted only' })
      .option('retire', { type: 'boolean', describe: 'keygen: keep only the signing key' })
      .conflicts('rotate', ['accept', 'retire'])
      .conflicts('accept', 'retire'),
  async handler(ctx, argv) {
    const keyOpts = argv.key !== undefined || argv.rotate || argv.accept || argv.retire;
    if (keyOpts && argv.action !== 'keygen') throw new UsageError('--key, --rotate, --accept and --retire go with keygen');
    if ((argv.port !== undefined || argv.bind !== undefined) && argv.action !== undefined && argv.action !== 'start') throw new UsageError(`--port and --bind go with the daemon, not with '${argv.action}'`);
    if (argv.port !== undefined && (!Number.isInteger(argv.port) || argv.port < 0 || argv.port > 65535)) throw new UsageError(`--port ${argv.port} is not a port number`);
    switch (argv.action) {
      case undefined:
        return runForeground(ctx, argv);
      case 'start':
        return startBackground(ctx, argv);
      case 'stop':
        return stopBackground(ctx);
      case 'status':
        return showStatus(ctx);
      case 'keygen':
        return runKeygen(ctx, argv);
    }
  },
};

/** The test hook: WALNUT_GOSSIP_DROP=0.3 drops 30 % of outgoing datagrams. */
function dropRate(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.WALNUT_GOSSIP_DROP;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`WALNUT_GOSSIP_DROP=${JSON.stringify(raw)} is not a share between 0 and 1`);
  return n;
}

async function runForeground(ctx: Context, argv: Args): Promise<void> {
  const { gossipConfig }: typeof Config = await import('../lib/gossip/config.js');
  const { GossipDaemon }: typeof Daemon = await import('../lib/gossip/daemon.js');
  const repo = ctx.repo;
  const cfg = gossipConfig({ repo });
  const out = ctx.out;
  const daemon = new GossipDaemon({
    repo,
    keys: cfg.keys,
    port: argv.port ?? cfg.port,
    bind: argv.bind ?? cfg.bind,
    peers: cfg.peers,
    fallback: cfg.fallback,
    mdns: cfg.mdns,
    heartbeatMs: cfg.heartbeatMs,
    batchMs: cfg.batchMs,
    breaker: cfg.breaker,
    dropRate: dropRate(ctx.env),
    clock: ctx.clock,
    onEvent: (e) => {
      if (out.json) out.jsonDoc({ time: new Date().toISOString(), level: e.level, event: e.code, message: e.message, ...e.data });
      else if (e.level === 'warn') out.warn(e.message);
      else out.status(e.message);
    },
  });
  // Signals are caught before the daemon starts: one that arrives while it
  // starts stops it as soon as it has started.
  let started = false;
  let stopAsked = false;
  const stop = () => {
    stopAsked = true;
    if (started) void daemon.stop();
  };
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, stop);
  try {
    await daemon.start();
    started = true;
    if (stopAsked) void daemon.stop();
    await daemon.done;
  } finally {
    for (const sig of signals) process.off(sig, stop);
  }
  if (!out.json) out.status('gossip: stopped');
}

async function startBackground(ctx: Context, argv: Args): Promise<void> {
  const { readPidfile, daemonAlive }: typeof Pidfile = await import('../lib/gossip/pidfile.js');
  const { readStatusFile }: typeof Daemon = await import('../lib/gossip/daemon.js');
  const { gossipConfig }: typeof Config = await import('../lib/gossip/config.js');
  const repo = ctx.repo;
  gossipConfig({ repo }); // fail here, not in the background, on a bad config or a missing key
  dropRate(ctx.env);
  const cur = readPidfile(repo);
  if (cur && daemonAlive(cur.pid)) {
    throw new LockHeldError(`a gossip daemon already runs for '${repo.root}' (pid ${cur.pid})`, { pid: cur.pid }, ["stop it with 'walnut gossip stop'"]);
  }
  const log = path.join(repo.dir, 'gossip.log');
  try {
    if (fs.statSync(log).size > 1 << 20) fs.renameSync(log, log + '.1');
  } catch {
    /* no log yet */
  }
  const fd = fs.openSync(log, 'a');
  const args = [...process.execArgv, process.argv[1], '-C', repo.root, 'gossip'];
  if (argv.port !== undefined) args.push('--port', String(argv.port));
  if (argv.bind !== undefined) args.push('--bind', argv.bind);
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: repo.root, env: ctx.env, detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const deadline = started + 15_000;
  for (;;) {
    const sf = readStatusFile(repo);
    if (sf && sf.pid === child.pid && sf.running && Date.parse(sf.updated) >= started - 1000) {
      child.unref();
      if (ctx.out.json) ctx.out.jsonDoc({ started: true, pid: child.pid, port: sf.port, bind: sf.bind, log: path.relative(repo.root, log) });
      else ctx.out.status(`gossip: started (pid ${child.pid}), node ${sf.node} listening on ${sf.bind}:${sf.port}; log in '${path.relative(repo.root, log)}'`);
      return;
    }
    if (exited !== undefined || Date.now() > deadline) {
      if (exited === undefined) child.kill('SIGTERM');
      const tail = readTail(log, started);
      throw new WalnutError('EGOSSIPSTART', `the gossip daemon did not start${exited !== undefined ? ` (exit status ${exited})` : ' within 15 s'}${tail ? `:\n${tail}` : ''}`, {
        data: { log },
        hints: [`see '${path.relative(repo.root, log)}'; run 'walnut gossip' in the foreground to watch it start`],
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readTail(log: string, since: number): string {
  try {
    const text = fs.readFileSync(log, 'utf8');
    return text.trim().split('\n').slice(-5).join('\n') + (since ? '' : '');
  } catch {
    return '';
  }
}

async function stopBackground(ctx: Context): Promise<void> {
  const { readPidfile, daemonAlive, pidfilePath }: typeof Pidfile = await import('../lib/gossip/pidfile.js');
  const repo = ctx.repo;
  const out = ctx.out;
  const cur = readPidfile(repo);
  if (!cur) {
    if (out.json) out.jsonDoc({ stopped: false, running: false });
    else out.status('gossip: not running');
    return;
  }
  if (!daemonAlive(cur.pid)) {
    fs.rmSync(pidfilePath(repo), { force: true });
    if (out.json) out.jsonDoc({ stopped: false, running: false, stalePidfile: cur.pid });
    else out.status(`gossip: not running; removed a stale pidfile (pid ${cur.pid} is gone)`);
    return;
  }
  process.kill(cur.pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (daemonAlive(cur.pid)) {
    if (Date.now() > deadline) {
      throw new WalnutError('EGOSSIPSTOP', `the gossip daemon (pid ${cur.pid}) did not stop within 10 s of SIGTERM`, { data: { pid: cur.pid }, hints: [`kill it with 'kill -9 ${cur.pid}', then run 'walnut gossip stop' again to clean up`] });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (out.json) out.jsonDoc({ stopped: true, pid: cur.pid });
  else out.status(`gossip: stopped (pid ${cur.pid})`);
}

async function showStatus(ctx: Context): Promise<void> {
  const { gossipStatus }: typeof Cluster = await import('../lib/gossip/cluster.js');
  const r = gossipStatus({ repo: ctx.repo });
  const out = ctx.out;
  if (out.json) out.jsonDoc({ ...r });
  else {
    const d = r.daemon;
    if (d.running) out.data(`gossip: running (pid ${d.pid}), node ${r.node} listening on ${d.bind ?? '?'}:${d.port ?? '?'}${d.updated ? `, status of ${d.updated}` : ''}`);
    else out.data(`gossip: not running${d.updated ? ` (last run stopped; status of ${d.updated})` : ''}`);
    if (d.fingerprint) out.data(`key: ${d.fingerprint}`);
    out.data(`peers: ${r.peers.known} known, ${r.peers.live} live, ${r.peers.open} skipped (circuit open)`);
    const c = r.counters;
    if (c) {
      const dropped = Object.entries(c.dropped);
      const total = dropped.reduce((n, [, v]) => n + v, 0);
      out.data(`received: ${c.received} datagrams, ${c.accepted} accepted, ${total} dropped (${dropped.map(([k, v]) => `${k} ${v}`).join(', ')}), ${c.duplicates} duplicates`);
      out.data(`records: ${c.recordsReceived} received, ${c.recordsSent} sent`);
      out.data(`sent: ${c.sent} datagrams, ${c.sendErrors} send errors${c.lossInjected ? `, ${c.lossInjected} dropped by WALNUT_GOSSIP_DROP` : ''}; requests: ${c.requestsSent} sent, ${c.requestsServed} served; socket restarts: ${c.socketRestarts}`);
    }
    for (const a of r.alerts) out.data(`alert: ${a.at} ${a.message}`);
  }
  if (!r.daemon.running) {
    throw new WalnutError('EGOSSIPNOTRUNNING', `no gossip daemon runs for '${ctx.repo.root}'`, { hints: ["start one with 'walnut gossip start' (or run 'walnut gossip' under a supervisor)"] });
  }
}

async function runKeygen(ctx: Context, argv: Args): Promise<void> {
  const { keygen }: typeof Config = await import('../lib/gossip/config.js');
  const mode = argv.rotate ? 'rotate' : argv.accept ? 'accept' : argv.retire ? 'retire' : 'new';
  if (mode === 'retire' && argv.key !== undefined) throw new UsageError('--retire keeps the signing key; it takes no --key');
  const r = keygen({ repo: ctx.repo, key: argv.key, mode });
  const out = ctx.out;
  if (out.json) {
    out.jsonDoc({ ...(mode === 'retire' ? {} : { key: r.key }), fingerprint: r.fingerprint, keys: r.keys, mode });
    return;
  }
  if (mode !== 'retire') out.data(r.key);
  const what = { new: 'cluster key', rotate: 'new signing key', accept: 'accepted key', retire: 'kept only the signing key' }[mode];
  out.status(`${what} ${r.fingerprint} in '.walnut/config' (gossip.key: ${r.keys.join(', ')}, the first signs)`);
  if (mode === 'new' && argv.key === undefined) out.status("copy it to the other nodes with 'walnut gossip keygen --key <key>'");
  out.status('restart a running daemon to use it (walnut gossip stop; walnut gossip start)');
}

/** `walnut status --cluster`: every node the gossip daemon knows. */
export async function printCluster(ctx: Context): Promise<void> {
  const { clusterStatus }: typeof Cluster = await import('../lib/gossip/cluster.js');
  const r = clusterStatus({ repo: ctx.repo });
  const out = ctx.out;
  if (out.json) {
    out.jsonDoc({ ...r });
    return;
  }
  const d = r.daemon;
  out.data(d.running ? `gossip: running (pid ${d.pid})${d.updated ? `, status of ${d.updated}` : ''}` : `gossip: not running${d.updated ? ` (status of ${d.updated}, when it stopped)` : ''}`);
  const ago = (ms: number | null) => (ms === null ? 'never' : ms < 1000 ? `${ms}ms ago` : ms < 120_000 ? `${Math.round(ms / 1000)}s ago` : ms < 7_200_000 ? `${Math.round(ms / 60_000)}m ago` : `${Math.round(ms / 3_600_000)}h ago`);
  const rows = [['NODE', 'ADDRESS', 'HOW', 'LAST SEEN', 'RECORDS', 'LACKS', 'EXTRA', 'CIRCUIT']];
  for (const n of r.nodes) {
    rows.push([
      (n.node ?? '?') + (n.self ? ' *' : ''),
      n.address ?? '-',
      n.how,
      n.self ? '-' : ago(n.lastSeenAgoMs),
      n.holds ? String(n.holds.records) : '?',
      n.drift ? String(n.drift.lacks) : '-',
      n.drift ? String(n.drift.extra) : '-',
      n.circuit ?? '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows) out.data(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}
