/**
 * Test harness for gossip: clusters of real `walnut gossip` daemons on
 * loopback ports (static peers, mDNS off), and waiting helpers. Only
 * 127.0.0.1 is ever used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, tmpDir, walnut } from './helpers.js';

export interface GossipNode {
  name: string;
  dir: string;
  port: number;
  proc?: ChildProcess;
  output: string;
  env: Record<string, string>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Free UDP ports on 127.0.0.1 (bound then released). */
export async function freePorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, () => new Promise<dgram.Socket>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** Run walnut and fail loudly when it fails. */
export function ok(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; input?: string } = {}): string {
  const r = walnut(args, options);
  if (r.code !== 0) throw new Error(`walnut ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Make `n` data directories sharing a cluster key, each with the others as
 * static peers on loopback ports.
 */
export async function makeCluster(n: number, { heartbeat = '200ms', config = {} as Record<string, string>, names }: { heartbeat?: string; config?: Record<string, string>; names?: string[] } = {}): Promise<GossipNode[]> {
  const root = tmpDir('walnut-gossip-');
  const ports = await freePorts(n);
  const nodes: GossipNode[] = ports.map((port, i) => ({ name: names?.[i] ?? `node-${String.fromCharCode(97 + i)}`, dir: path.join(root, `n${i}`), port, output: '', env: {} }));
  let key = '';
  for (const node of nodes) {
    ok(['init', node.dir, '--node', node.name]);
    if (!key) key = ok(['-C', node.dir, 'gossip', 'keygen']).trim();
    else ok(['-C', node.dir, 'gossip', 'keygen', '--key', key]);
    const cfgFile = path.join(node.dir, '.walnut', 'config');
    let text = fs.readFileSync(cfgFile, 'utf8');
    text += `[gossip]\n\tport = ${node.port}\n\tbind = 127.0.0.1\n\tmdns = false\n\theartbeat = ${heartbeat}\n\tbreakerBackoff = 500ms\n`;
    for (const other of nodes) if (other !== node) text += `\tpeer = 127.0.0.1:${other.port}\n`;
    for (const [k, v] of Object.entries(config)) text += `\t${k} = ${v}\n`;
    fs.writeFileSync(cfgFile, text);
  }
  return nodes;
}

/** Start a node's daemon in the foreground (a child process); resolves once it listens. */
export async function startNode(node: GossipNode, env: Record<string, string> = {}): Promise<void> {
  node.env = env;
  node.output = '';
  const proc = spawn(process.execPath, [BIN, '-C', node.dir, 'gossip'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  node.proc = proc;
  proc.stdout!.on('data', (d) => (node.output += d));
  proc.stderr!.on('data', (d) => (node.output += d));
  proc.on('exit', () => children.delete(proc));
  await waitFor(() => node.output.includes('listening on') || proc.exitCode !== null, 10_000, `${node.name} to listen`);
  if (proc.exitCode !== null) throw new Error(`${node.name} exited ${proc.exitCode}: ${node.output}`);
}

/** SIGTERM a node's daemon; resolves to its exit status. */
export async function stopNode(node: GossipNode): Promise<number | null> {
  const proc = node.proc;
  if (!proc || proc.exitCode !== null) return proc?.exitCode ?? null;
  const done = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGTERM');
  return done;
}

export async function stopAll(nodes: GossipNode[]): Promise<void> {
  await Promise.all(nodes.map(stopNode));
}

/** Poll `cond` every `everyMs` until true; resolves to the ms it took; rejects after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what = 'condition', everyMs = 2): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The bytes of a file, or an empty buffer. */
export function bytesOf(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

/** The node's own segments in wal/ (name → bytes). */
export function ownSegments(node: GossipNode): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const wal = path.join(node.dir, 'wal');
  for (const name of fs.readdirSync(wal)) if (name.endsWith(`_${node.name}.usv`)) out.set(name, fs.readFileSync(path.join(wal, name)));
  return out;
}

/** True when `node` holds a byte-exact copy of every own segment of `origin` (in wal/ or gossip/). */
export function holdsAllOf(node: GossipNode, origin: GossipNode): boolean {
  for (const [name, bytes] of ownSegments(origin)) {
    const g = bytesOf(path.join(node.dir, '.walnut', 'gossip', name));
    const w = bytesOf(path.join(node.dir, 'wal', name));
    const copy = w.length >= g.length ? w : g;
    if (!copy.equals(bytes)) return false;
  }
  return true;
}

/** `walnut gossip status --json` of a node. */
export function gossipStatus(node: GossipNode): { daemon: { running: boolean }; counters: Record<string, number> & { dropped: Record<string, number> } } {
  const r = walnut(['-C', node.dir, 'gossip', 'status', '--json']);
  return JSON.parse(r.stdout);
}
