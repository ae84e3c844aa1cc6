/**
 * The peer table: every node this daemon knows, how it was found (mDNS,
 * static `gossip.peer`, `gossip.fallback`, or because it wrote to us), when
 * it was last heard from, what it holds, and its circuit breaker.
 *
 * Circuit breaker: a peer that sends nothing for `threshold` heartbeat
 * intervals while this daemon sends it heartbeats is opened (skipped) for a back-off period that doubles at each failure up
 * to `maxBackoffMs`; then it is half-open: one heartbeat probe asks it to
 * answer, and the breaker closes on any authenticated datagram from it or
 * opens again when the probe stays unanswered.
 */
import type { SummaryEntry } from './protocol.js';

export type Discovery = 'mdns' | 'static' | 'fallback' | 'inbound';
export type Circuit = 'closed' | 'open' | 'half-open';

/** Discovery sources, best first. */
export const DISCOVERY_ORDER: Discovery[] = ['mdns', 'static', 'fallback', 'inbound'];

export interface BreakerOptions {
  /** silent heartbeat intervals before a peer is opened */
  threshold: number;
  /** first back-off period */
  backoffMs: number;
  /** longest back-off period */
  maxBackoffMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { threshold: 3, backoffMs: 30_000, maxBackoffMs: 600_000 };

export interface Peer {
  /** host as configured or discovered (an address or a name) */
  host: string;
  /** resolved address, when known */
  address?: string;
  port: number;
  node?: string;
  sources: Set<Discovery>;
  addedAt: number;
  lastSeen?: number;
  circuit: Circuit;
  failures: number;
  openUntil: number;
  probeAt: number;
  /** what it holds per segment, from its heartbeats */
  summary: Map<string, { length: number; count: number }>;
  summaryAt?: number;
  /** when this daemon last answered it with a heartbeat */
  repliedAt: number;
  /** when this daemon last sent it a heartbeat */
  heartbeatAt: number;
  /** first heartbeat sent since it was last heard from (its silence counts from here) */
  contactedAt?: number;
}

/** A breaker state change, for the log. */
export interface CircuitChange {
  peer: Peer;
  from: Circuit;
  to: Circuit;
}

/** The best (first in {@link DISCOVERY_ORDER}) source of a peer. */
export function howFound(p: Peer): Discovery {
  return DISCOVERY_ORDER.find((d) => p.sources.has(d)) ?? 'inbound';
}

/** `address:port` (or `host:port` before resolution), IPv6 in brackets. */
export function peerAddress(p: Pick<Peer, 'host' | 'address' | 'port'>): string {
  const h = p.address ?? p.host;
  return `${h.includes(':') ? `[${h}]` : h}:${p.port}`;
}

/**
 * Parse `host:port` (`[v6]:port`); the port defaults to `defaultPort`.
 * @returns undefined when the text is not an address
 * @example parseHostPort('10.0.0.2:9999', 9999) // { host: '10.0.0.2', port: 9999 }
 */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } | undefined {
  const t = text.trim();
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(t);
  const m = v6 ?? /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(t);
  if (!m) return undefined;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1], port };
}

export class PeerTable {
  private readonly peers: Peer[] = [];

  constructor(
    private readonly breaker: BreakerOptions,
    private readonly now: () => number,
    private readonly self: string,
  ) {}

  /** Every peer, in the order they were added. */
  list(): Peer[] {
    return [...this.peers];
  }

  /**
   * Add a peer (or a source to a known one).
   * @returns the peer
   */
  add(host: string, port: number, how: Discovery, node?: string, address?: string): Peer | undefined {
    if (node === this.self) return undefined;
    const addr = address ?? (isAddress(host) ? host : undefined);
    let p = this.peers.find((q) => q.port === port && (q.host === host || (addr !== undefined && q.address === addr)));
    if (!p && node) p = this.peers.find((q) => q.node === node && q.port === port && (how === 'mdns' || how === 'inbound') && (q.sources.has('mdns') || q.sources.has('inbound')));
    if (p) {
      p.sources.add(how);
      if (node) p.node = node;
      if (addr && how !== 'static' && how !== 'fallback') p.address = addr;
      return p;
    }
    if (this.peers.length >= 1024) return undefined;
    p = {
      host,
      address: addr,
      port,
      node,
      sources: new Set([how]),
      addedAt: this.now(),
      circuit: 'closed',
      failures: 0,
      openUntil: 0,
      probeAt: 0,
      summary: new Map(),
      repliedAt: 0,
      heartbeatAt: 0,
    };
    this.peers.push(p);
    return p;
  }

  /** The peer at an address, if any. */
  at(address: string, port: number): Peer | undefined {
    return this.peers.find((p) => p.port === port && (p.address === address || p.host === address));
  }

  /**
   * An authenticated datagram came from `address:port`, sent by `node`.
   * Closes the peer's breaker; adds it as an inbound peer when unknown.
   * @returns the peer and the breaker change, if any
   */
  heard(address: string, port: number, node: string): { peer: Peer | undefined; change?: CircuitChange } {
    let p = this.at(address, port);
    if (!p) p = this.add(address, port, 'inbound', node, address);
    if (!p) return { peer: undefined };
    p.node = node;
    p.lastSeen = this.now();
    p.contactedAt = undefined;
    p.failures = 0;
    if (p.circuit !== 'closed') {
      const from = p.circuit;
      p.circuit = 'closed';
      return { peer: p, change: { peer: p, from, to: 'closed' } };
    }
    return { peer: p };
  }

  /** Record a peer's summary entries (a heartbeat may carry a part of them). */
  learn(p: Peer, entries: SummaryEntry[]): void {
    for (const e of entries) p.summary.set(e.segment, { length: e.length, count: e.count });
    p.summaryAt = this.now();
  }

  /** Closed breaker and an address: gets data and heartbeats (half-open peers get one probe). */
  private live(p: Peer): boolean {
    return p.circuit === 'closed' && (p.address !== undefined || isAddress(p.host));
  }

  /** Forget a peer (e.g. an address that turned out to be this node itself). */
  remove(p: Peer): void {
    const i = this.peers.indexOf(p);
    if (i !== -1) this.peers.splice(i, 1);
  }

  /**
   * The peers to send to: one per node (the one heard from last), breaker
   * closed; fallback addresses only while no other peer has been heard from
   * within the breaker window.
   */
  targets(intervalMs: number): Peer[] {
    const window = this.breaker.threshold * intervalMs;
    const t = this.now();
    const primary = this.peers.filter((p) => !(p.sources.size === 1 && p.sources.has('fallback')));
    // A peer not heard from yet is given the breaker window (from when it was added) to answer.
    const anyAlive = primary.some((p) => p.circuit === 'closed' && t - (p.lastSeen ?? p.addedAt) <= window);
    const pool = anyAlive ? primary : this.peers;
    const byNode = new Map<string, Peer>();
    const out: Peer[] = [];
    for (const p of pool) {
      if (!this.live(p)) continue;
      if (!p.node) {
        out.push(p);
        continue;
      }
      const cur = byNode.get(p.node);
      if (!cur || (p.lastSeen ?? 0) > (cur.lastSeen ?? 0)) byNode.set(p.node, p);
    }
    return [...out, ...byNode.values()];
  }

  /**
   * Advance the breakers (call once per heartbeat interval).
   * @returns the changes, and the peers that just became half-open (to probe)
   */
  tick(intervalMs: number): CircuitChange[] {
    const t = this.now();
    const window = this.breaker.threshold * intervalMs;
    const changes: CircuitChange[] = [];
    for (const p of this.peers) {
      const from = p.circuit;
      if (p.circuit === 'closed') {
        // Silence counts only while this daemon talks to the peer (not for an unused fallback).
        if (p.contactedAt !== undefined && t - p.contactedAt > window) this.open(p, t);
      } else if (p.circuit === 'open') {
        if (t >= p.openUntil) {
          p.circuit = 'half-open';
          p.probeAt = t;
        }
      } else if (t - p.probeAt > window) {
        this.open(p, t);
      }
      if (p.circuit !== from) changes.push({ peer: p, from, to: p.circuit });
    }
    return changes;
  }

  /** A send to the peer failed (e.g. ICMP unreachable reported by the socket). */
  failed(p: Peer): CircuitChange | undefined {
    if (p.circuit === 'open') return undefined;
    const from = p.circuit;
    this.open(p, this.now());
    return { peer: p, from, to: 'open' };
  }

  private open(p: Peer, t: number): void {
    p.failures++;
    p.circuit = 'open';
    p.openUntil = t + Math.min(this.breaker.maxBackoffMs, this.breaker.backoffMs * 2 ** Math.min(20, p.failures - 1));
  }
}

/** True for a literal IPv4 or IPv6 address. */
export function isAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || (host.includes(':') && /^[0-9a-fA-F:.]+$/.test(host));
}
