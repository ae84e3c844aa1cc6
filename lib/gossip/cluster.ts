/**
 * What `walnut status --cluster` and `walnut gossip status` show, read from
 * the files the daemon keeps in `.walnut/` (pidfile and status file), so they
 * work without talking to the daemon.
 */
import type { Repo } from '../repo.js';
import { readStatusFile, readState, type Counters, type StatusFile } from './daemon.js';
import { daemonAlive, readPidfile } from './pidfile.js';
import { GossipStore } from './store.js';
import { segmentOrigin, type SummaryEntry } from './protocol.js';

export interface ClusterNode {
  node: string | null;
  self: boolean;
  address: string | null;
  /** mdns | static | fallback | inbound | self */
  how: string;
  lastSeen: string | null;
  lastSeenAgoMs: number | null;
  /** closed | open | half-open (null for this node) */
  circuit: string | null;
  /** what the node holds of the recent segments (from its last heartbeat) */
  holds: { records: number; bytes: number; segments: number } | null;
  /** records this node holds that it lacks (`lacks`) and records it holds that this node lacks (`extra`) */
  drift: { lacks: number; extra: number } | null;
}

export interface DaemonInfo {
  running: boolean;
  pid: number | null;
  port: number | null;
  bind: string | null;
  started: string | null;
  /** when the status file was last written */
  updated: string | null;
  epoch: number | null;
  fingerprint: string | null;
  heartbeatMs: number | null;
}

export interface ClusterReport {
  node: string;
  daemon: DaemonInfo;
  nodes: ClusterNode[];
}

export interface GossipStatusReport {
  node: string;
  daemon: DaemonInfo;
  peers: { known: number; live: number; open: number };
  counters: Counters | null;
  alerts: Array<{ code: string; message: string; at: string }>;
}

function daemonInfo(repo: Repo, sf: StatusFile | undefined): DaemonInfo {
  const pid = readPidfile(repo);
  const running = pid !== undefined && daemonAlive(pid.pid);
  const current = sf && (!running || sf.pid === pid?.pid) ? sf : undefined;
  return {
    running,
    pid: running ? pid!.pid : (sf?.pid ?? null),
    port: current?.port ?? null,
    bind: current?.bind ?? null,
    started: current?.started ?? null,
    updated: current?.updated ?? null,
    epoch: current?.epoch ?? null,
    fingerprint: current?.fingerprint ?? null,
    heartbeatMs: current?.heartbeatMs ?? null,
  };
}

/**
 * The daemon's state and counters, from the pidfile and the status file.
 * @example gossipStatus({ repo }).daemon.running
 */
export function gossipStatus({ repo }: { repo: Repo }): GossipStatusReport {
  const sf = readStatusFile(repo);
  const daemon = daemonInfo(repo, sf);
  const peers = sf?.peers ?? [];
  const updated = sf ? Date.parse(sf.updated) : 0;
  const window = (sf?.heartbeatMs ?? 60_000) * 3;
  return {
    node: repo.node,
    daemon,
    peers: {
      known: peers.length,
      live: peers.filter((p) => p.lastSeen && updated - Date.parse(p.lastSeen) <= window && p.circuit === 'closed').length,
      open: peers.filter((p) => p.circuit === 'open').length,
    },
    counters: sf?.counters ?? null,
    alerts: sf?.alerts ?? [],
  };
}

function previousDay(day: string): string {
  const ms = Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8))) - 86_400_000;
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** Records one side has that the other lacks, over the recent segments of each origin. */
function drift(mine: SummaryEntry[], theirs: SummaryEntry[]): { lacks: number; extra: number } {
  const newest = new Map<string, string>();
  for (const e of [...mine, ...theirs]) {
    const o = segmentOrigin(e.segment);
    if (!o) continue;
    const day = e.segment.slice(0, 8);
    if (!newest.has(o) || day > newest.get(o)!) newest.set(o, day);
  }
  const keep = (e: SummaryEntry) => {
    const o = segmentOrigin(e.segment);
    return o !== undefined && e.segment.slice(0, 8) >= previousDay(newest.get(o)!);
  };
  const a = new Map(mine.filter(keep).map((e) => [e.segment, e.count]));
  const b = new Map(theirs.filter(keep).map((e) => [e.segment, e.count]));
  let lacks = 0;
  let extra = 0;
  for (const s of new Set([...a.keys(), ...b.keys()])) {
    const d = (a.get(s) ?? 0) - (b.get(s) ?? 0);
    if (d > 0) lacks += d;
    else extra -= d;
  }
  return { lacks, extra };
}

function holds(entries: SummaryEntry[]): ClusterNode['holds'] {
  return { records: entries.reduce((n, e) => n + e.count, 0), bytes: entries.reduce((n, e) => n + e.length, 0), segments: entries.length };
}

/**
 * Every node of the cluster as this node knows it: address, how it was
 * found, when it was last heard from, what it holds and how far that is from
 * what this node holds, and its circuit breaker.
 *
 * @param options.repo - the repository
 * @param options.now - the wall clock (ms), for "last seen … ago"
 * @returns this node first, then the peers by node id
 * @example clusterStatus({ repo }).nodes.map((n) => n.node)
 */
export function clusterStatus({ repo, now = Date.now() }: { repo: Repo; now?: number }): ClusterReport {
  const sf = readStatusFile(repo);
  const daemon = daemonInfo(repo, sf);
  let mine = sf?.holdings;
  if (!daemon.running || !mine) {
    const store = new GossipStore({ repo, bases: readState(repo).bases });
    try {
      mine = store.summary();
    } finally {
      store.close();
    }
  }
  const nodes: ClusterNode[] = [
    {
      node: repo.node,
      self: true,
      address: daemon.port !== null ? `${daemon.bind ?? '0.0.0.0'}:${daemon.port}` : null,
      how: 'self',
      lastSeen: null,
      lastSeenAgoMs: null,
      circuit: null,
      holds: holds(mine),
      drift: null,
    },
  ];
  const byNode = new Map<string, StatusFile['peers'][number]>();
  const anonymous: StatusFile['peers'] = [];
  for (const p of sf?.peers ?? []) {
    if (!p.node) {
      anonymous.push(p);
      continue;
    }
    const cur = byNode.get(p.node);
    if (!cur || (p.lastSeen ?? '') > (cur.lastSeen ?? '')) byNode.set(p.node, { ...p, sources: [...new Set([...(cur?.sources ?? []), ...p.sources])] });
  }
  const order = ['mdns', 'static', 'fallback', 'inbound'];
  for (const p of [...[...byNode.values()].sort((a, b) => a.node!.localeCompare(b.node!)), ...anonymous]) {
    const seen = p.lastSeen ? Date.parse(p.lastSeen) : undefined;
    const known = p.summaryAt !== undefined;
    nodes.push({
      node: p.node ?? null,
      self: false,
      address: p.address,
      how: order.find((o) => p.sources.includes(o)) ?? p.how,
      lastSeen: p.lastSeen ?? null,
      lastSeenAgoMs: seen !== undefined ? Math.max(0, now - seen) : null,
      circuit: p.circuit,
      holds: known ? holds(p.summary) : null,
      drift: known ? drift(mine, p.summary) : null,
    });
  }
  return { node: repo.node, daemon, nodes };
}
