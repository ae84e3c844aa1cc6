/**
 * The gossip daemon: follows this node's segments in `wal/` and sends every
 * new record to every live peer by unicast UDP; takes peers' records into
 * `.walnut/gossip/`; sends heartbeats with a summary of what it holds and asks
 * peers for what it lacks (anti-entropy), so lost datagrams are repaired
 * without push/pull. See formats/gossip.md and walnut-gossip(1).
 *
 * Files in `.walnut/`: `gossip.pid` (one daemon per data directory),
 * `gossip-state.json` (epoch, per-segment send offsets, gossip file bases,
 * replay marks: a restart resumes where it left off), `gossip-status.json`
 * (written periodically for `walnut gossip status` and `status --cluster`).
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import path from 'node:path';
import { splitRecords, type JournalRecord } from '../../formats/usv.js';
import { Clock, type ClockOptions } from '../clock.js';
import { WalnutError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import type { Repo } from '../repo.js';
import { MAX_RECORD_BYTES } from '../../formats/usv.js';
import { FolderWatch } from './tail.js';
import { GossipStore, gossipDir } from './store.js';
import { PeerTable, howFound, peerAddress, type BreakerOptions, type CircuitChange, type Peer } from './peers.js';
import { acquirePidfile } from './pidfile.js';
import { ReplayGuard, dataCapacity, decodeDatagram, encodeDatagram, heartbeats, keyFingerprint, segmentOrigin, type DataMessage, type HeartbeatMessage, type Message, type RequestMessage, type SummaryEntry } from './protocol.js';
import type { MdnsDiscovery } from './mdns.js';

export const STATE_FILE = 'gossip-state.json';
export const STATUS_FILE = 'gossip-status.json';
/** Bytes a peer sends in answer to one request. */
export const RESPONSE_BYTES = 32 * 1024;

export interface GossipEvent {
  level: 'info' | 'warn';
  code: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface DaemonOptions {
  repo: Repo;
  keys: Buffer[];
  port: number;
  bind: string;
  peers?: Array<{ host: string; port: number }>;
  fallback?: Array<{ host: string; port: number }>;
  mdns?: boolean;
  heartbeatMs: number;
  batchMs: number;
  breaker: BreakerOptions;
  /** test hook: share (0..1) of outgoing datagrams dropped on purpose */
  dropRate?: number;
  clock?: ClockOptions;
  random?: () => number;
  now?: () => number;
  onEvent?: (e: GossipEvent) => void;
}

export interface Counters {
  received: number;
  accepted: number;
  sent: number;
  sendErrors: number;
  lossInjected: number;
  dropped: { oversized: number; malformed: number; unauthenticated: number; replayed: number; self: number; invalid: number; divergent: number; overflow: number; error: number };
  duplicates: number;
  recordsReceived: number;
  recordsSent: number;
  requestsSent: number;
  requestsServed: number;
  socketRestarts: number;
  gossipFilesDropped: number;
}

export interface StatusFile {
  version: 1;
  pid: number;
  node: string;
  running: boolean;
  started: string;
  updated: string;
  port: number;
  bind: string;
  epoch: number;
  heartbeatMs: number;
  fingerprint: string;
  counters: Counters;
  holdings: SummaryEntry[];
  peers: Array<{
    node?: string;
    address: string;
    how: string;
    sources: string[];
    lastSeen?: string;
    circuit: string;
    failures: number;
    openUntil?: string;
    summary: SummaryEntry[];
    summaryAt?: string;
  }>;
  alerts: Array<{ code: string; message: string; at: string }>;
}

interface PersistedState {
  version: 1;
  epoch: number;
  sent: Record<string, number>;
  bases: Record<string, number>;
  replay: Record<string, { epoch: number; seq: number }>;
}

interface Want {
  to: number;
  /** created or last progress; a want without progress for long is dropped (a later claim renews it) */
  since: number;
  peers: Peer[];
  next: number;
  lastAsk: number;
  askedEnd: number;
  rto: number;
}

function newCounters(): Counters {
  return {
    received: 0,
    accepted: 0,
    sent: 0,
    sendErrors: 0,
    lossInjected: 0,
    dropped: { oversized: 0, malformed: 0, unauthenticated: 0, replayed: 0, self: 0, invalid: 0, divergent: 0, overflow: 0, error: 0 },
    duplicates: 0,
    recordsReceived: 0,
    recordsSent: 0,
    requestsSent: 0,
    requestsServed: 0,
    socketRestarts: 0,
    gossipFilesDropped: 0,
  };
}

/** Read `.walnut/gossip-state.json` (empty state when there is none). */
export function readState(repo: Repo): PersistedState {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(repo.dir, STATE_FILE), 'utf8')) as Partial<PersistedState>;
    return { version: 1, epoch: Number(s.epoch) || 0, sent: s.sent ?? {}, bases: s.bases ?? {}, replay: s.replay ?? {} };
  } catch {
    return { version: 1, epoch: 0, sent: {}, bases: {}, replay: {} };
  }
}

/**
 * Split segment bytes (starting at a record boundary, origin offset `base`)
 * into datagram payloads of at most `cap` bytes: whole records packed
 * together, a record larger than `cap` cut into pieces (never leaving a
 * lone newline for the last piece).
 *
 * @example chunkRecords(bytes, 0, 1200).map((c) => c.offset)
 */
export function chunkRecords(bytes: Buffer, base: number, cap: number): Array<{ offset: number; bytes: Buffer; whole: boolean }> {
  const { records } = splitRecords(bytes, base, true);
  const out: Array<{ offset: number; bytes: Buffer; whole: boolean }> = [];
  let start = -1;
  let end = -1;
  const flush = () => {
    if (start >= 0) out.push({ offset: start, bytes: bytes.subarray(start - base, end - base), whole: true });
    start = -1;
  };
  for (const raw of records) {
    const len = raw.end - raw.start;
    if (len > cap) {
      flush();
      for (let pos = raw.start; pos < raw.end; ) {
        let n = Math.min(cap, raw.end - pos);
        const rem = raw.end - pos - n;
        if (rem > 0 && rem < 2) n -= 2 - rem;
        out.push({ offset: pos, bytes: bytes.subarray(pos - base, pos + n - base), whole: false });
        pos += n;
      }
      continue;
    }
    if (start >= 0 && end - start + len > cap) flush();
    if (start < 0) start = raw.start;
    end = raw.end;
  }
  flush();
  return out;
}

/**
 * The daemon. `start()` binds the socket and begins; `stop()` drains (sends
 * what was appended, saves offsets) and closes; `done` resolves after stop.
 *
 * @example const d = new GossipDaemon({ repo, keys, port: 9999, bind: '0.0.0.0', heartbeatMs: 60000, batchMs: 5, breaker }); await d.start(); ...; await d.stop()
 */
export class GossipDaemon {
  readonly counters = newCounters();
  private socket: dgram.Socket | undefined;
  private store!: GossipStore;
  private readonly peers: PeerTable;
  private replay!: ReplayGuard;
  private epoch = 0;
  private seq = 0;
  private sent: Record<string, number> = {};
  private readonly wants = new Map<string, Want>();
  private readonly timers: NodeJS.Timeout[] = [];
  private trailing: NodeJS.Timeout[] = [];
  private trailingSegs = new Set<string>();
  private watch: FolderWatch | undefined;
  private mdns: MdnsDiscovery | undefined;
  private lock: { release: () => void } | undefined;
  private stopping = false;
  private stopped = false;
  private inflight = 0;
  private restartDelay = 100;
  private restartTimer: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private started = new Date();
  private stateDirty = false;
  private stateTimer: NodeJS.Timeout | undefined;
  private statusAt = 0;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly alerts: Array<{ code: string; message: string; at: string }> = [];
  private readonly alertAt = new Map<string, number>();
  private tickCount = 0;
  /** tags of recently sent datagrams: an echo of one is this node's own, anything else with its id a twin */
  private readonly sentTags = new Set<string>();
  private resolveDone!: () => void;
  /** resolves when the daemon has stopped */
  readonly done: Promise<void>;

  constructor(private readonly o: DaemonOptions) {
    this.peers = new PeerTable(o.breaker, () => this.now(), o.repo.node);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private get node(): string {
    return this.o.repo.node;
  }

  private event(level: GossipEvent['level'], code: string, message: string, data?: Record<string, unknown>): void {
    this.o.onEvent?.({ level, code, message, data });
  }

  private alert(code: string, message: string): void {
    const last = this.alertAt.get(code + message) ?? 0;
    if (this.now() - last < 60_000) return;
    this.alertAt.set(code + message, this.now());
    this.alerts.push({ code, message, at: new Date(this.now()).toISOString() });
    if (this.alerts.length > 20) this.alerts.shift();
    this.event('warn', code, message);
  }

  /** The port the socket is bound to (after start). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * Take the pidfile, bind the socket, start watching and discovery.
   * @throws LockHeldError `EGOSSIPRUNNING` when a daemon runs for this data directory; WalnutError `EGOSSIPBIND` when the port cannot be bound
   */
  async start(): Promise<{ port: number; bind: string }> {
    const { repo } = this.o;
    if (this.o.keys.length === 0) throw new WalnutError('EGOSSIPNOKEY', 'no cluster key', { hints: ["run 'walnut gossip keygen'"] });
    const lock = acquirePidfile(repo, { pid: process.pid });
    this.lock = lock;
    if (lock.stale) this.event('info', 'STALEPID', `took over a stale pidfile${lock.stale.pid ? ` (pid ${lock.stale.pid} is gone)` : ''}`, { pid: lock.stale.pid });
    try {
      const st = readState(repo);
      this.epoch = Math.max(st.epoch + 1, Math.floor(this.now() / 1000)) >>> 0;
      this.sent = st.sent;
      this.replay = new ReplayGuard(st.replay);
      this.store = new GossipStore({ repo, bases: st.bases, now: () => this.now() });
      this.saveState(); // the new epoch is on disk before any datagram carries it
      for (const p of this.o.peers ?? []) this.peers.add(p.host, p.port, 'static');
      for (const p of this.o.fallback ?? []) this.peers.add(p.host, p.port, 'fallback');
      await this.resolvePeers();
      try {
        await this.openSocket();
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new WalnutError('EGOSSIPBIND', `cannot listen on ${this.o.bind}:${this.o.port}: ${e.code ?? e.message}`, {
          data: { port: this.o.port, bind: this.o.bind, errno: e.code },
          hints: e.code === 'EADDRINUSE' ? ['another program (or a gossip daemon of another data directory) uses this port; choose one with --port or gossip.port'] : [],
        });
      }
      // Segments that existed before the first run count as sent; peers ask for what they lack.
      if (st.epoch === 0) {
        for (const name of this.store.knownSegments()) if (segmentOrigin(name) === this.node) this.sent[name] = fileSize(path.join(repo.wal, name));
      }
      this.watch = new FolderWatch({
        dirs: [repo.wal],
        onFile: (f) => this.walChanged(f),
        onError: (err) => this.event('warn', 'WATCH', `watching '${path.relative(repo.root, repo.wal)}': ${err.message}`),
        pollMs: this.o.batchMs,
      });
      await this.watch.start();
      if (this.o.mdns) await this.startMdns();
      const hb = this.o.heartbeatMs;
      this.timers.push(setInterval(() => this.heartbeatTick(), hb));
      this.timers.push(setInterval(() => this.repairTick(), Math.max(5, Math.min(25, hb / 4))));
      this.timers.push(setInterval(() => this.store.sync(), 1000));
      this.event('info', 'LISTENING', `gossip: node ${this.node} listening on ${this.o.bind}:${this.boundPort}`, { port: this.boundPort, bind: this.o.bind });
      for (const p of this.peers.targets(hb)) this.sendHeartbeat(p, true);
      this.watch.sweep(); // resume: send what was appended while we were down
      this.writeStatus(true);
      return { port: this.boundPort, bind: this.o.bind };
    } catch (err) {
      await this.teardown();
      throw err;
    }
  }

  private async startMdns(): Promise<void> {
    const { startMdns } = await import('./mdns.js');
    const wildcard = this.o.bind === '0.0.0.0' || this.o.bind === '::';
    try {
      this.mdns = await startMdns({
        node: this.node,
        port: this.boundPort,
        fingerprint: keyFingerprint(this.o.keys[0]),
        interfaceAddress: wildcard ? undefined : this.o.bind,
        browseMs: Math.min(30_000, Math.max(1000, this.o.heartbeatMs)),
        onFound: (f) => {
          const known = this.peers.list().some((p) => p.node === f.node && p.address === f.address && p.port === f.port);
          const p = this.peers.add(f.address, f.port, 'mdns', f.node, f.address);
          if (p && !known) {
            this.event('info', 'PEER', `found ${f.node} at ${peerAddress(p)} by mDNS`, { node: f.node, address: peerAddress(p), how: 'mdns' });
            this.sendHeartbeat(p, true);
          }
        },
        onWarning: (m) => this.event('warn', 'MDNS', m),
      });
    } catch (err) {
      this.alert('MDNS', `mDNS discovery is off: ${(err as Error).message}`);
    }
  }

  private async resolvePeers(): Promise<void> {
    await Promise.all(
      this.peers.list().map(async (p) => {
        if (p.sources.has('mdns') || p.sources.has('inbound')) return;
        if (/^\d{1,3}(\.\d{1,3}){3}$/.test(p.host) || p.host.includes(':')) {
          p.address = p.host;
          return;
        }
        try {
          const r = await dns.promises.lookup(p.host, { family: this.o.bind.includes(':') ? 6 : 4 });
          p.address = r.address;
        } catch (err) {
          this.alert('RESOLVE', `cannot resolve peer '${p.host}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }),
    );
  }

  private openSocket(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type: this.o.bind.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
      const fail = (err: Error) => {
        s.removeAllListeners();
        try {
          s.close();
        } catch {
          /* already closed */
        }
        reject(err);
      };
      s.once('error', fail);
      s.bind(this.boundPort || this.o.port, this.o.bind, () => {
        s.removeListener('error', fail);
        s.on('error', (err) => this.socketError(s, err));
        s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
        this.socket = s;
        this.boundPort = s.address().port;
        this.restartDelay = 100;
        resolve();
      });
    });
  }

  private socketError(s: dgram.Socket, err: Error): void {
    if (this.socket !== s || this.stopping) return;
    this.socket = undefined;
    try {
      s.close();
    } catch {
      /* already closed */
    }
    this.scheduleReopen(err.message);
  }

  /** Reopen the socket after a back-off that doubles while reopening fails. */
  private scheduleReopen(reason: string): void {
    const delay = this.restartDelay;
    this.restartDelay = Math.min(30_000, this.restartDelay * 2);
    this.event('warn', 'SOCKET', `socket error: ${reason}; reopening in ${delay} ms`, { delayMs: delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.counters.socketRestarts++;
      this.openSocket().then(
        () => this.event('info', 'SOCKET', `socket reopened on ${this.o.bind}:${this.boundPort}`),
        (e: Error) => this.scheduleReopen(e.message),
      );
    }, delay);
  }

  /** Simulate a socket failure (tests): the socket is closed and reopened with back-off. */
  breakSocket(): void {
    if (this.socket) this.socketError(this.socket, new Error('simulated failure'));
  }

  // ---- sending ----------------------------------------------------------

  private send(peer: Peer, message: Message): void {
    this.sendMany([peer], message);
  }

  private sendMany(peers: Peer[], message: Message): void {
    const s = this.socket;
    if (!s || peers.length === 0) return;
    const buf = encodeDatagram({ node: this.node, epoch: this.epoch, seq: ++this.seq >>> 0 }, message, this.o.keys[0]);
    this.sentTags.add(buf.toString('base64', buf.length - 12));
    if (this.sentTags.size > 4096) this.sentTags.delete(this.sentTags.values().next().value as string);
    if (this.seq >= 0xffffffff) {
      this.epoch++;
      this.seq = 0;
      this.markState();
    }
    const random = this.o.random ?? Math.random;
    for (const p of peers) {
      const address = p.address;
      if (!address) continue;
      if (this.o.dropRate && random() < this.o.dropRate) {
        this.counters.lossInjected++;
        continue;
      }
      this.inflight++;
      this.counters.sent++;
      s.send(buf, p.port, address, (err) => {
        this.inflight--;
        if (err) {
          this.counters.sendErrors++;
          const change = this.peers.failed(p);
          if (change) this.circuitChanged(change);
        }
      });
    }
  }

  private targets(): Peer[] {
    return this.peers.targets(this.o.heartbeatMs);
  }

  /** A file of wal/ changed: send own new records, or note a pulled segment. */
  private walChanged(file: string): boolean {
    const name = path.basename(file);
    const origin = segmentOrigin(name);
    if (!origin || path.dirname(file) !== this.o.repo.wal) return false;
    if (origin === this.node) return this.flushOwn(name);
    if (!this.store.isLoaded(name)) return false; // read when first needed
    const before = this.store.walLength(name);
    const after = this.store.refreshWal(name);
    if (after !== before) this.progress(name);
    return after !== before;
  }

  /** Send the bytes of an own segment appended since the last send. */
  private flushOwn(name: string): boolean {
    const size = fileSize(path.join(this.o.repo.wal, name));
    const from = this.sent[name] ?? 0;
    if (size === from) return false;
    if (size < from) {
      this.alert('SHRUNK', `own segment 'wal/${name}' is shorter (${size} bytes) than what was already sent (${from}); it was rewritten`);
      this.sent[name] = this.store.refreshWal(name);
      this.markState();
      return false;
    }
    const len = this.store.refreshWal(name);
    if (len <= from) return false; // only a torn or unfinished record so far
    const bytes = this.store.read(name, from, len);
    const targets = this.targets();
    const cap = dataCapacity(this.node, name);
    let records = 0;
    for (const chunk of chunkRecords(bytes, from, cap)) {
      this.sendMany(targets, { type: 'data', segment: name, offset: chunk.offset, total: len, whole: chunk.whole, bytes: chunk.bytes });
    }
    for (const raw of splitRecords(bytes, from, true).records) if (raw.bytes.length > 0) records++;
    this.counters.recordsSent += records;
    this.sent[name] = len;
    this.markState();
    this.scheduleTrailing(name);
    return true;
  }

  /** After a burst, tell peers the new lengths a few times so a lost last datagram is noticed. */
  private scheduleTrailing(name: string): void {
    this.trailingSegs.add(name);
    for (const t of this.trailing) clearTimeout(t);
    this.trailing = [30, 300, 1500].map((ms) =>
      setTimeout(() => {
        const entries = [...this.trailingSegs].map((s) => ({ segment: s, length: this.store.held(s), count: this.store.count(s) }));
        for (const m of heartbeats(this.node, entries, false)) this.sendMany(this.targets(), m);
        if (ms === 1500) this.trailingSegs.clear();
      }, ms),
    );
  }

  private sendHeartbeat(peer: Peer, reply: boolean, entries: SummaryEntry[] = this.store.summary()): void {
    peer.heartbeatAt = this.now();
    peer.contactedAt ??= peer.heartbeatAt;
    for (const m of heartbeats(this.node, entries, reply)) this.send(peer, m);
  }

  // ---- receiving --------------------------------------------------------

  private onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.stopped) return;
    this.counters.received++;
    try {
      const r = decodeDatagram(buf, this.o.keys);
      if (!r.ok) {
        this.counters.dropped[r.reason]++;
        return;
      }
      const d = r.datagram;
      if (d.node === this.node) {
        this.counters.dropped.self++;
        if (this.sentTags.has(buf.toString('base64', buf.length - 12))) {
          const p = this.peers.at(rinfo.address, rinfo.port);
          if (p) {
            this.peers.remove(p);
            this.event('info', 'SELFPEER', `peer ${peerAddress(p)} is this node itself; left out`);
          }
        } else this.alert('DUPLICATENODE', `an authenticated datagram from ${rinfo.address}:${rinfo.port} claims this node's id '${this.node}': two machines with one node id?`);
        return;
      }
      if (!this.replay.accept(d.node, d.epoch, d.seq)) {
        this.counters.dropped.replayed++;
        return;
      }
      this.markState();
      const { peer, change } = this.peers.heard(rinfo.address, rinfo.port, d.node);
      if (change) this.circuitChanged(change);
      if (!peer) return;
      if (peer.sources.size === 1 && peer.sources.has('inbound') && peer.lastSeen === peer.addedAt) {
        this.event('info', 'PEER', `heard from ${d.node} at ${peerAddress(peer)}`, { node: d.node, address: peerAddress(peer), how: 'inbound' });
      }
      let ok = true;
      const m = d.message;
      if (m.type === 'data') ok = this.onData(peer, m);
      else if (m.type === 'heartbeat') this.onHeartbeat(peer, m);
      else this.onRequest(peer, m, rinfo);
      if (ok) this.counters.accepted++;
    } catch (err) {
      // Never die on input; a failure here is a bug or a full disk.
      this.counters.dropped.error++;
      this.alert('RECEIVE', `handling a datagram from ${rinfo.address}:${rinfo.port} failed: ${(err as Error).message}`);
    } finally {
      this.writeStatus(false);
    }
  }

  private onData(peer: Peer, m: DataMessage): boolean {
    const origin = segmentOrigin(m.segment)!;
    if (origin === this.node) {
      this.counters.dropped.self++;
      return false;
    }
    const res = this.store.receive(m.segment, m.offset, m.bytes, m.whole);
    if (res.records.length > 0) {
      this.counters.recordsReceived += res.records.length;
      this.observe(res.records);
      this.progress(m.segment);
    }
    switch (res.status) {
      case 'invalid':
      case 'blocked':
        this.counters.dropped.invalid++;
        if (res.detail) this.alert('INVALID', `invalid record from ${peer.node}: ${res.detail}`);
        return false;
      case 'divergent':
        this.counters.dropped.divergent++;
        this.alert('DIVERGENT', `${peer.node} sent bytes that differ from the copy held here: ${res.detail}`);
        return false;
      case 'full':
        this.counters.dropped.overflow++;
        this.claim(m.segment, m.total, peer, res.gap);
        return false;
      case 'duplicate':
        this.counters.duplicates++;
        break;
    }
    this.claim(m.segment, m.total, peer, res.gap);
    return true;
  }

  private onHeartbeat(peer: Peer, m: HeartbeatMessage): void {
    this.peers.learn(peer, m.entries);
    for (const e of m.entries) this.claim(e.segment, e.length, peer, true);
    if (m.reply && this.now() - peer.repliedAt >= Math.min(1000, this.o.heartbeatMs / 2)) {
      peer.repliedAt = this.now();
      this.sendHeartbeat(peer, false);
    }
  }

  private onRequest(peer: Peer, m: RequestMessage, rinfo: dgram.RemoteInfo): void {
    const held = this.store.held(m.segment);
    if (m.from >= held) return;
    const limit = Math.min(held, m.to > 0 ? Math.max(m.to, m.from + 1) : held, m.from + RESPONSE_BYTES);
    let bytes = this.store.read(m.segment, m.from, limit);
    let { used } = splitRecords(bytes, m.from, m.from + bytes.length === held);
    if (used === 0) {
      // One record larger than the response budget: send it whole, in pieces.
      bytes = this.store.read(m.segment, m.from, Math.min(held, m.from + MAX_RECORD_BYTES + 16));
      const first = splitRecords(bytes, m.from, m.from + bytes.length === held).records[0];
      used = first ? first.end - m.from : 0;
    }
    if (used === 0) return;
    this.counters.requestsServed++;
    const target = peer.address === rinfo.address && peer.port === rinfo.port ? peer : { ...peer, address: rinfo.address, port: rinfo.port };
    for (const c of chunkRecords(bytes.subarray(0, used), m.from, dataCapacity(this.node, m.segment))) {
      this.send(target, { type: 'data', segment: m.segment, offset: c.offset, total: held, whole: c.whole, bytes: c.bytes });
    }
  }

  /** A peer holds `length` bytes of a segment: ask for what is missing here. */
  private claim(segment: string, length: number, peer: Peer, urgent: boolean): void {
    if (segmentOrigin(segment) === this.node) {
      const own = this.store.walLength(segment);
      if (length > own) this.alert('DIVERGENT', `${peer.node} holds ${length} bytes of this node's own segment '${segment}', but 'wal/${segment}' has ${own}: two machines with node id '${this.node}'?`);
      return;
    }
    const held = this.store.held(segment);
    if (held >= length) return;
    let w = this.wants.get(segment);
    if (!w) {
      // Not urgent (the rest of a burst is probably in flight): ask only if it has not come within the timeout.
      w = { to: length, since: this.now(), peers: [], next: 0, lastAsk: urgent ? 0 : this.now(), askedEnd: urgent ? 0 : length, rto: this.baseRto() };
      this.wants.set(segment, w);
    }
    w.to = Math.max(w.to, length);
    if (!w.peers.includes(peer)) w.peers.unshift(peer);
    if (w.peers.length > 8) w.peers.pop();
    if (urgent && this.now() - w.lastAsk >= Math.min(20, w.rto)) this.ask(segment, w);
  }

  private baseRto(): number {
    return Math.max(20, Math.min(100, this.o.heartbeatMs / 2));
  }

  private ask(segment: string, w: Want): void {
    const held = this.store.held(segment);
    if (held >= w.to) {
      this.wants.delete(segment);
      return;
    }
    const live = w.peers.filter((p) => p.circuit !== 'open' && p.address);
    const pool = live.length > 0 ? live : w.peers.filter((p) => p.address);
    if (pool.length === 0) return;
    const peer = pool[w.next++ % pool.length];
    // With later bytes already buffered, ask only for the gap before them.
    const to = Math.min(w.to, this.store.nextBuffered(segment) ?? w.to);
    this.send(peer, { type: 'request', segment, from: held, to });
    this.counters.requestsSent++;
    w.askedEnd = Math.min(to, held + RESPONSE_BYTES);
    if (w.lastAsk !== 0 && this.now() - w.lastAsk < w.rto * 2) w.rto = Math.min(5000, w.rto * 2);
    w.lastAsk = this.now();
  }

  /** Held bytes of a segment grew: drop or advance its want. */
  private progress(segment: string): void {
    const w = this.wants.get(segment);
    if (!w) return;
    const held = this.store.held(segment);
    if (held >= w.to) {
      this.wants.delete(segment);
      return;
    }
    w.rto = this.baseRto();
    w.since = this.now();
    if (held >= w.askedEnd) this.ask(segment, w);
  }

  private repairTick(): void {
    const t = this.now();
    const giveUp = Math.max(60_000, 3 * this.o.heartbeatMs);
    for (const [segment, w] of [...this.wants]) {
      if (this.store.held(segment) >= w.to || t - w.since > giveUp) this.wants.delete(segment);
      else if (t - w.lastAsk >= w.rto) this.ask(segment, w);
    }
  }

  /** Take received records into this node's clock, so local writes order after them. */
  private observe(records: JournalRecord[]): void {
    try {
      const clock = Clock.load(this.o.repo, this.o.clock);
      for (const r of records) clock.observe(r);
      const wall = (this.o.clock?.now ?? Date.now)();
      clock.save({ fsync: records.some((r) => Date.parse(r.timestamp) >= wall - 1000) });
      for (const a of clock.ahead.splice(0)) this.alert('AHEAD', `record of ${a.node} stamped ${a.timestamp} is ${Math.round(a.aheadMs / 1000)} s ahead of this clock`);
    } catch (err) {
      this.alert('CLOCK', `cannot update the clock: ${(err as Error).message}`);
    }
  }

  // ---- periodic work ----------------------------------------------------

  private heartbeatTick(): void {
    try {
      this.tickCount++;
      for (const c of this.peers.tick(this.o.heartbeatMs)) this.circuitChanged(c);
      const entries = this.store.summary();
      const t = this.now();
      for (const p of this.targets()) this.sendHeartbeat(p, p.lastSeen === undefined || t - p.lastSeen > this.o.heartbeatMs * 1.5, entries);
      this.watch?.sweep();
      this.dropCovered();
      if (this.tickCount % 10 === 0) void this.resolvePeers();
      this.markState();
      this.writeStatus(true);
    } catch (err) {
      this.alert('TICK', `heartbeat failed: ${(err as Error).message}`);
    }
  }

  private circuitChanged(c: CircuitChange): void {
    const who = `${c.peer.node ?? c.peer.host} (${peerAddress(c.peer)})`;
    if (c.to === 'open') this.event('warn', 'CIRCUIT', `peer ${who} is not answering: skipped until ${new Date(c.peer.openUntil).toISOString()}`, { node: c.peer.node, circuit: c.to });
    else if (c.to === 'half-open') {
      this.event('info', 'CIRCUIT', `peer ${who}: trying again`, { node: c.peer.node, circuit: c.to });
      this.sendHeartbeat(c.peer, true);
    } else this.event('info', 'CIRCUIT', `peer ${who} answers again`, { node: c.peer.node, circuit: c.to });
  }

  /** Delete gossip files whose closed segment `wal/` now holds in full. */
  private dropCovered(): void {
    const names = this.store.knownSegments();
    const newest = new Map<string, string>();
    const claimed = new Map<string, number>();
    for (const p of this.peers.list()) {
      for (const [s, v] of p.summary) {
        names.push(s);
        claimed.set(s, Math.max(claimed.get(s) ?? 0, v.length));
      }
    }
    for (const n of names) {
      const o = segmentOrigin(n);
      if (o && (!newest.has(o) || n > newest.get(o)!)) newest.set(o, n);
    }
    for (const n of this.store.gossipSegments()) {
      if (newest.get(segmentOrigin(n)!) === n) continue;
      const wal = this.store.refreshWal(n);
      if (wal < (claimed.get(n) ?? 0) || wal < this.store.held(n)) continue;
      if (this.store.dropIfCovered(n)) {
        this.counters.gossipFilesDropped++;
        this.markState();
        this.event('info', 'DROPPED', `'.walnut/gossip/${n}': every record is in 'wal/${n}' now; gossip copy removed`);
      }
    }
  }

  private markState(): void {
    this.stateDirty = true;
    if (this.stateTimer || this.stopping) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      if (this.stateDirty) this.saveState();
    }, 200);
  }

  private saveState(): void {
    this.stateDirty = false;
    const st: PersistedState = { version: 1, epoch: this.epoch, sent: this.sent, bases: this.store.bases(), replay: this.replay.marks() };
    writeFileAtomic(path.join(this.o.repo.dir, STATE_FILE), JSON.stringify(st) + '\n', { fsync: false });
  }

  /** Write the status file now (`force`) or within the throttle period. */
  private writeStatus(force: boolean): void {
    const every = Math.min(1000, this.o.heartbeatMs);
    const t = this.now();
    if (!force && t - this.statusAt < every) {
      if (!this.statusTimer && !this.stopped) this.statusTimer = setTimeout(() => ((this.statusTimer = undefined), this.writeStatus(true)), every - (t - this.statusAt));
      return;
    }
    this.statusAt = t;
    try {
      writeFileAtomic(path.join(this.o.repo.dir, STATUS_FILE), JSON.stringify(this.status()) + '\n', { fsync: false });
    } catch (err) {
      this.event('warn', 'STATUS', `cannot write the status file: ${(err as Error).message}`);
    }
  }

  /** The daemon's status (what the status file holds). */
  status(): StatusFile {
    const iso = (ms?: number) => (ms ? new Date(ms).toISOString() : undefined);
    return {
      version: 1,
      pid: process.pid,
      node: this.node,
      running: !this.stopped,
      started: this.started.toISOString(),
      updated: new Date(this.now()).toISOString(),
      port: this.boundPort,
      bind: this.o.bind,
      epoch: this.epoch,
      heartbeatMs: this.o.heartbeatMs,
      fingerprint: keyFingerprint(this.o.keys[0]),
      counters: this.counters,
      holdings: this.store.summary(),
      peers: this.peers.list().map((p) => ({
        node: p.node,
        address: peerAddress(p),
        how: howFound(p),
        sources: [...p.sources],
        lastSeen: iso(p.lastSeen),
        circuit: p.circuit,
        failures: p.failures,
        openUntil: p.circuit === 'open' ? iso(p.openUntil) : undefined,
        summary: [...p.summary].map(([segment, v]) => ({ segment, ...v })),
        summaryAt: iso(p.summaryAt),
      })),
      alerts: this.alerts,
    };
  }

  /**
   * Drain and stop: send what was appended, wait for sends in flight (up to
   * 1 s), save offsets and status, close everything, remove the pidfile.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.done;
    this.stopping = true;
    try {
      for (const t of this.timers) clearInterval(t);
      await this.watch?.close();
      if (this.socket) {
        for (const name of this.store.knownSegments()) if (segmentOrigin(name) === this.node) this.flushOwn(name);
        const until = Date.now() + 1000;
        while (this.inflight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await this.teardown();
    }
  }

  private async teardown(): Promise<void> {
    this.stopping = true;
    for (const t of [...this.timers, ...this.trailing]) clearTimeout(t);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.stateTimer) clearTimeout(this.stateTimer);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    await this.watch?.close();
    await this.mdns?.close().catch(() => {});
    this.store?.close();
    if (this.store && this.replay) this.saveState();
    this.stopped = true;
    if (this.store && this.boundPort) this.writeStatus(true);
    await new Promise<void>((r) => {
      if (!this.socket) return r();
      this.socket.close(() => r());
      this.socket = undefined;
    });
    this.lock?.release();
    this.lock = undefined;
    this.resolveDone();
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Read the status file the daemon writes (undefined when there is none). */
export function readStatusFile(repo: Repo): StatusFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(repo.dir, STATUS_FILE), 'utf8')) as StatusFile;
  } catch {
    return undefined;
  }
}

export { gossipDir };
