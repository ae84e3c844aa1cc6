/**
 * The sync protocol (formats/remote.md): both sides state what they hold —
 * per segment its name, length and SHA-256 — and only missing bytes travel.
 * A segment has one writer, so of two copies one must be a prefix of the
 * other (checked by hashing the longer copy's first bytes and comparing with
 * the shorter copy's hash); anything else is a divergence, reported and kept
 * aside in `.walnut/quarantine/`, never merged or lost.
 *
 * Received bytes land in `wal/` only after their hash matched, through a
 * temporary file in `wal/`, fsync and rename: a crash leaves the old or the
 * new segment. A node's own segments are never replaced by a pull (its
 * writer may be appending to them right now).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { listSegments, lastRecord, type SegmentInfo } from '../journal.js';
import { WalnutError } from '../errors.js';
import { fsyncDir, writeFileAtomic, TEMP_SUFFIX } from '../fsutil.js';
import { statePath, type Repo } from '../repo.js';
import { Clock, type AheadReport, type ClockOptions } from '../clock.js';
import {
  hashFile,
  loadRemoteState,
  machineId,
  openStore,
  ownerKey,
  remoteSpec,
  saveRemoteState,
  shortHash,
  MARKER_KEY,
  REMOTE_FORMAT,
  type OpenStoreOptions,
  type RemoteSegment,
  type RemoteSpec,
  type RemoteState,
  type Store,
  type StoreStats,
} from './index.js';
import { withSyncLock } from './lease.js';

/** Progress of a transfer, for a progress bar. */
export interface SyncProgress {
  phase: 'push' | 'pull';
  /** the segment being moved, e.g. wal/20261121_pi-01.usv */
  segment: string;
  /** segments done so far / to move */
  done: number;
  total: number;
  /** bytes moved so far / to move */
  bytes: number;
  totalBytes: number;
}

/** One segment moved. */
export interface Transfer {
  segment: string;
  node: string;
  /** length before and after on the receiving side */
  from: number;
  to: number;
  /** bytes that travelled */
  bytes: number;
}

/** Two copies of a segment of which neither is a prefix of the other. */
export interface Divergence {
  segment: string;
  node: string;
  /** why: 'differs' (neither copy is a prefix of the other), 'own-ahead' (the remote holds bytes of this node's segment that this machine never wrote) */
  reason: 'differs' | 'own-ahead';
  local: { length: number; sha256: string };
  remote: { length: number; sha256: string };
  /** where the remote copy was kept, relative to the data directory */
  quarantine?: string;
}

export interface SyncResult {
  remote: string;
  url: string;
  kind: 'dir' | 's3';
  sent: { segments: number; bytes: number };
  received: { segments: number; bytes: number };
  transfers: Transfer[];
  divergences: Divergence[];
  /** records pulled that were stamped further ahead than the clock bound */
  ahead: AheadReport[];
  /** everything the store moved, requests included */
  wire: StoreStats;
  /** nothing moved and nothing diverged */
  inSync: boolean;
}

export interface SyncOptions {
  repo: Repo;
  /** the remote's name in the config (default 'origin') */
  remote?: string;
  /** a remote not in the config (clone) */
  spec?: RemoteSpec;
  /** extra store options (tests: credentials) */
  storeOptions?: OpenStoreOptions;
  /** wall clock, for observing pulled records */
  clock?: ClockOptions;
  /** how long to wait for another push/pull in this data directory (ms) */
  waitMs?: number;
  /** a crashed push/pull's sync lease is taken over after this long (ms; default 10 s) */
  lockStaleMs?: number;
  onProgress?: (p: SyncProgress) => void;
  /** called at named points of the transfer; tests crash the process there */
  crashPoint?: (name: string) => void;
}

/**
 * Push: send this node's segments, and any other segment this data directory
 * holds, to the remote where the remote lacks them or has a shorter copy.
 *
 * @returns what moved and what diverged (divergences are not thrown: the caller reports them)
 * @throws WalnutError `ENODEOWNER` (exit 4) when the node id belongs to another machine; `ENOREMOTE`; store errors; LockHeldError
 * @example const r = await push({ repo, remote: 'origin' }); if (r.divergences.length) ...
 */
export async function push(options: SyncOptions): Promise<SyncResult> {
  return session(options, async (ctx) => {
    const { repo, store, state } = ctx;
    await store.prepareWrite();
    await ensureMarker(ctx, true);
    await checkOwner(ctx, true);
    const remote = new Map((await store.listSegments()).map((r) => [r.name, r]));
    const locals = listSegments(repo);
    const work: Array<{ seg: SegmentInfo; r?: RemoteSegment }> = [];
    for (const seg of locals) {
      const r = remote.get(seg.name);
      if (r && r.length > seg.size) {
        // The remote is ahead: pull's business, unless it is our own segment.
        if (seg.node === repo.node) await ownAhead(ctx, seg, r);
        continue;
      }
      if (r && r.length === seg.size && sameAsCached(state, seg, r)) continue;
      work.push({ seg, r });
    }
    for (const r of remote.values()) {
      if (r.node === repo.node && !locals.some((l) => l.name === r.name)) await ownAhead(ctx, undefined, r);
    }
    const progress = ctx.progress('push', work.length, work.reduce((n, w) => n + w.seg.size - (w.r?.length ?? 0), 0));
    for (const { seg } of work) {
      let r = remote.get(seg.name);
      for (let attempt = 0; ; attempt++) {
        const outcome = await pushSegment(ctx, seg, r);
        if (outcome !== 'conflict') break;
        if (attempt === 4) {
          throw new WalnutError('EREMOTEBUSY', `remote copy of '${seg.rel}' kept changing while pushing it to '${store.url}'`, { data: { segment: seg.rel }, hints: ['another machine is pushing the same segment; run the command again'] });
        }
        r = await store.statSegment(seg.node, seg.name);
        if (r && r.length > seg.size) break; // someone pushed a longer copy meanwhile
      }
      progress.segmentDone(seg.rel);
    }
  });
}

/**
 * Pull: fetch every segment, or the missing end of every segment, that the
 * remote holds and this data directory lacks, into `wal/`. Does not compact.
 *
 * @returns what moved and what diverged
 * @throws WalnutError `ENODEOWNER` (exit 4); `ENOREMOTE`, `EREMOTEMISSING`; store errors; LockHeldError
 * @example const r = await pull({ repo, remote: 'origin', clock: { now: Date.now } })
 */
export async function pull(options: SyncOptions): Promise<SyncResult> {
  return session(options, async (ctx) => {
    const { repo, store, state } = ctx;
    if (!(await store.exists())) {
      throw new WalnutError('EREMOTEMISSING', `remote '${ctx.name}' does not exist: '${store.url}'`, { data: { remote: ctx.name, url: store.url }, hints: ['check the path or bucket, or push to it first'] });
    }
    await ensureMarker(ctx, false);
    await checkOwner(ctx, false);
    removeStaleTemps(repo);
    const remote = await store.listSegments();
    const locals = new Map(listSegments(repo).map((s) => [s.name, s]));
    const work: Array<{ r: RemoteSegment; local?: SegmentInfo }> = [];
    for (const r of remote) {
      const local = locals.get(r.name);
      if (r.node === repo.node) {
        // Our own segment: never replaced here; the remote copy must be a prefix of ours.
        if (!local || local.size < r.length) await ownAhead(ctx, local, r);
        else if (!(local.size === r.length && sameAsCached(state, local, r))) await checkPrefix(ctx, local, r);
        continue;
      }
      if (local && local.size > r.length) continue; // we are ahead: push's business
      if (local && local.size === r.length && sameAsCached(state, local, r)) continue;
      work.push({ r, local });
    }
    const progress = ctx.progress('pull', work.length, work.reduce((n, w) => n + w.r.length - (w.local?.size ?? 0), 0));
    const clock = Clock.load(repo, options.clock);
    for (const { r, local } of work) {
      const installed = await withRetry(ctx, r, (seg) => pullSegment(ctx, seg, local));
      if (installed) {
        const last = lastRecord(installed);
        if (last) clock.observe(last);
      }
      progress.segmentDone(`wal/${r.name}`);
    }
    clock.save();
    ctx.result.ahead.push(...clock.ahead);
  });
}

// ---------------------------------------------------------------------------

interface Session {
  repo: Repo;
  name: string;
  store: Store;
  state: RemoteState;
  result: SyncResult;
  options: SyncOptions;
  crash(point: string): void;
  progress(phase: 'push' | 'pull', total: number, totalBytes: number): { segmentDone(segment: string): void; bytes(n: number, segment: string): void };
  onBytes?: (n: number, segment: string) => void;
}

async function session(options: SyncOptions, fn: (ctx: Session) => Promise<void>): Promise<SyncResult> {
  const { repo, waitMs = 30_000 } = options;
  const spec = options.spec ?? remoteSpec(repo, options.remote ?? 'origin');
  return withSyncLock(repo, { waitMs, staleMs: options.lockStaleMs }, async () => {
    const state = loadRemoteState(repo, spec.name, spec.url);
    const store = await openStore(spec, { ifMatchQuoted: state.conditions?.ifMatchQuoted, ...options.storeOptions });
    const result: SyncResult = {
      remote: spec.name,
      url: spec.url,
      kind: spec.kind,
      sent: { segments: 0, bytes: 0 },
      received: { segments: 0, bytes: 0 },
      transfers: [],
      divergences: [],
      ahead: [],
      wire: store.stats,
      inSync: true,
    };
    const ctx: Session = {
      repo,
      name: spec.name,
      store,
      state,
      result,
      options,
      crash: (point) => options.crashPoint?.(point),
      progress(p, total, totalBytes) {
        let done = 0;
        let bytes = 0;
        let current = '';
        const emit = () => options.onProgress?.({ phase: p, segment: current, done, total, bytes, totalBytes });
        ctx.onBytes = (n, segment) => {
          bytes += n;
          current = segment;
          emit();
        };
        return {
          segmentDone(segment) {
            done++;
            current = segment;
            emit();
          },
          bytes: (n, segment) => ctx.onBytes?.(n, segment),
        };
      },
    };
    try {
      await fn(ctx);
    } finally {
      await store.close().catch(() => {});
      saveRemoteState(repo, spec.name, state);
    }
    result.inSync = result.transfers.length === 0 && result.divergences.length === 0;
    return result;
  });
}

/** Check (and on push, write) the remote's layout marker; cached once seen. */
async function ensureMarker(ctx: Session, create: boolean): Promise<void> {
  const { store, state } = ctx;
  if (state.marker) return;
  if (create && store.kind === 's3' && !state.conditions) {
    const { S3Store } = await import('./s3.js');
    if (store instanceof S3Store) state.conditions = { checkedAt: new Date().toISOString(), ...(await store.probe()) };
  }
  let current = await store.getObject(MARKER_KEY);
  if (!current && create) {
    await store.putObject(MARKER_KEY, Buffer.from(JSON.stringify({ format: 'walnut-remote', version: REMOTE_FORMAT }) + '\n'), { ifNoneMatch: true });
    current = await store.getObject(MARKER_KEY);
  }
  if (!current) return; // an empty remote: nothing to read
  let version: unknown;
  try {
    version = (JSON.parse(current.body.toString('utf8')) as { version?: unknown }).version;
  } catch {
    version = undefined;
  }
  if (version !== REMOTE_FORMAT) {
    throw new WalnutError('EREMOTEFORMAT', `remote '${ctx.name}' (${store.url}) has layout version ${JSON.stringify(version)}; this walnut knows version ${REMOTE_FORMAT}`, { data: { url: store.url, version }, hints: ['upgrade walnut on this machine'] });
  }
  state.marker = true;
}

/**
 * Check that no other machine owns this node id at the remote; on push,
 * claim it (create-only write of `nodes/<node>`) when nobody has.
 */
async function checkOwner(ctx: Session, claim: boolean): Promise<void> {
  const { repo, store, state } = ctx;
  const machine = machineId(repo);
  if (state.owner?.node === repo.node && state.owner.machine === machine) return;
  const key = ownerKey(repo.node);
  let current = await store.getObject(key);
  if (!current && claim) {
    const body = Buffer.from(JSON.stringify({ node: repo.node, machine, claimedAt: new Date().toISOString() }) + '\n');
    if ((await store.putObject(key, body, { ifNoneMatch: true })) !== undefined) {
      state.owner = { node: repo.node, machine };
      return;
    }
    current = await store.getObject(key);
  }
  if (!current) return;
  let owner: string | undefined;
  try {
    owner = (JSON.parse(current.body.toString('utf8')) as { machine?: string }).machine;
  } catch {
    owner = undefined;
  }
  if (owner === machine) {
    state.owner = { node: repo.node, machine };
    return;
  }
  throw nodeOwnerError(ctx.name, store.url, repo.node, owner, machine);
}

/** The error for a node id that another machine uses (exit 4). */
export function nodeOwnerError(remote: string, url: string, node: string, owner: string | undefined, machine: string): WalnutError {
  return new WalnutError('ENODEOWNER', `node id '${node}' belongs to another machine at remote '${remote}' (${url}): 'nodes/${node}' names machine ${shortHash(owner)}, this is machine ${shortHash(machine)}`, {
    exit: 'divergence',
    data: { remote, url, node, owner, machine },
    hints: [
      "give this machine its own node id: walnut config set core.node <new-id>",
      `if this machine really replaces the old one, delete 'nodes/${node}' on the remote and run the command again`,
    ],
  });
}

/** Is the local copy known (by the cache) to equal the remote one? */
function sameAsCached(state: RemoteState, seg: SegmentInfo, r: RemoteSegment): boolean {
  const c = state.segments[seg.name];
  if (!c?.remote || !c.local) return false;
  if (c.remote.length !== r.length || c.remote.tag !== r.tag) return false;
  const st = statOrUndefined(seg.file);
  return !!st && st.size === c.local.size && st.mtimeMs === c.local.mtimeMs && st.ino === c.local.ino && c.local.sha256 === c.remote.sha256 && c.local.size === r.length;
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

/** The remote's hash of a segment, from the cache when its token is unchanged. */
async function remoteHash(ctx: Session, r: RemoteSegment): Promise<RemoteSegment & { sha256: string }> {
  const c = ctx.state.segments[r.name]?.remote;
  if (c && c.length === r.length && c.tag === r.tag) return { ...r, sha256: c.sha256 };
  const h = await ctx.store.segmentHash(r);
  const fresh = { ...r, length: h.length, tag: h.tag, sha256: h.sha256 };
  rememberRemote(ctx, fresh);
  return fresh;
}

function rememberRemote(ctx: Session, r: RemoteSegment & { sha256: string }): void {
  const entry = (ctx.state.segments[r.name] ??= {});
  entry.remote = { length: r.length, tag: r.tag, sha256: r.sha256 };
}

function rememberLocal(ctx: Session, name: string, file: string, size: number, sha256: string): void {
  const st = statOrUndefined(file);
  if (!st || st.size !== size) return;
  const entry = (ctx.state.segments[name] ??= {});
  entry.local = { size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
}

/** Hash a local segment's first `length` bytes and the prefixes in `marks`. */
function localHash(ctx: Session, seg: { name: string; file: string }, length: number, marks: number[] = []): { full: string; at: Map<number, string> } {
  const c = ctx.state.segments[seg.name]?.local;
  if (marks.length === 0 && c && c.size === length) {
    const st = statOrUndefined(seg.file);
    if (st && st.size === c.size && st.mtimeMs === c.mtimeMs && st.ino === c.ino) return { full: c.sha256, at: new Map() };
  }
  const h = hashFile(seg.file, length, marks);
  if (statOrUndefined(seg.file)?.size === length) rememberLocal(ctx, seg.name, seg.file, length, h.full);
  return h;
}

/** Push one segment; 'conflict' when the remote copy changed under us. */
async function pushSegment(ctx: Session, seg: SegmentInfo, r: RemoteSegment | undefined): Promise<'done' | 'conflict'> {
  const { store } = ctx;
  const length = seg.size;
  const before = store.stats.bytesSent;
  if (!r) {
    const { full } = localHash(ctx, seg, length);
    const tag = await store.writeSegment({ node: seg.node, name: seg.name, file: seg.file, length, sha256: full });
    if (tag === undefined) return 'conflict';
    sent(ctx, seg, 0, length, full, tag, store.stats.bytesSent - before);
    return 'done';
  }
  const rh = await remoteHash(ctx, r);
  if (rh.length > length) return 'done'; // grew past us meanwhile
  const { full, at } = localHash(ctx, seg, length, rh.length < length ? [rh.length] : []);
  const prefix = rh.length === length ? full : at.get(rh.length)!;
  if (prefix !== rh.sha256) {
    await diverged(ctx, seg, length, full, rh);
    return 'done';
  }
  if (rh.length === length) {
    rememberLocal(ctx, seg.name, seg.file, length, full);
    return 'done';
  }
  const tag = await store.writeSegment({ node: seg.node, name: seg.name, file: seg.file, length, sha256: full, expect: rh });
  if (tag === undefined) return 'conflict';
  sent(ctx, seg, rh.length, length, full, tag, store.stats.bytesSent - before);
  return 'done';
}

function sent(ctx: Session, seg: SegmentInfo, from: number, to: number, sha256: string, tag: string, bytes: number): void {
  ctx.result.transfers.push({ segment: seg.rel, node: seg.node, from, to, bytes });
  ctx.result.sent.segments++;
  ctx.result.sent.bytes += bytes;
  rememberRemote(ctx, { node: seg.node, name: seg.name, length: to, tag, sha256 });
  rememberLocal(ctx, seg.name, seg.file, to, sha256);
  ctx.onBytes?.(to - from, seg.rel);
  ctx.crash('push:after-upload');
}

/**
 * Run `fn` on a remote segment; when the remote rewrote it meanwhile (an S3
 * segment consolidated by another machine: EREMOTECHANGED), look at it again
 * and retry, up to three times.
 */
async function withRetry<T>(ctx: Session, r: RemoteSegment, fn: (r: RemoteSegment) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(r);
    } catch (err) {
      if (!(err instanceof WalnutError && err.code === 'EREMOTECHANGED') || attempt === 2) throw err;
      const again = await ctx.store.statSegment(r.node, r.name);
      if (!again) throw err;
      r = again;
    }
  }
}

/** Pull one segment into wal/; returns the installed file, if any. */
async function pullSegment(ctx: Session, r0: RemoteSegment, local: SegmentInfo | undefined): Promise<string | undefined> {
  const { repo, store } = ctx;
  const r = await remoteHash(ctx, r0);
  const rel = `wal/${r.name}`;
  const target = path.join(repo.wal, r.name);
  const have = local?.size ?? 0;
  if (local && have >= r.length) {
    // Equal length (or the remote shrank back under us): compare hashes.
    const { full, at } = localHash(ctx, local, have, have > r.length ? [r.length] : []);
    if ((have === r.length ? full : at.get(r.length)) !== r.sha256) await diverged(ctx, local, have, full, r);
    return undefined;
  }
  fs.mkdirSync(repo.wal, { recursive: true });
  const tmp = path.join(repo.wal, `.${r.name}.pull-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
  let installed = false;
  try {
    if (local) fs.copyFileSync(local.file, tmp);
    const fd = fs.openSync(tmp, local ? 'r+' : 'w');
    try {
      let pos = have;
      let chunks = 0;
      await store.readSegment(r, have, r.length, (chunk) => {
        fs.writeSync(fd, chunk, 0, chunk.length, pos);
        pos += chunk.length;
        ctx.onBytes?.(chunk.length, rel);
        if (chunks++ === 0) ctx.crash('pull:mid-fetch');
      });
      fs.ftruncateSync(fd, r.length);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // Verify every byte before it becomes part of wal/.
    const got = hashFile(tmp, r.length).full;
    if (got !== r.sha256) {
      const localFull = local ? localHash(ctx, local, have).full : '';
      await diverged(ctx, local ?? { rel, node: r.node }, have, localFull, r);
      return undefined;
    }
    ctx.crash('pull:before-rename');
    // Replace only the copy we extended: nobody else writes another node's segment here.
    const now = statOrUndefined(target);
    if ((now?.size ?? 0) !== have || (local && now && now.ino !== statOrUndefined(local.file)?.ino)) {
      throw new WalnutError('ELOCALCHANGED', `'${rel}' changed while pulling it`, { data: { segment: rel }, hints: ['run the command again'] });
    }
    fs.renameSync(tmp, target);
    installed = true;
    fsyncDir(repo.wal);
  } finally {
    if (!installed) fs.rmSync(tmp, { force: true });
  }
  ctx.result.transfers.push({ segment: rel, node: r.node, from: have, to: r.length, bytes: r.length - have });
  ctx.result.received.segments++;
  ctx.result.received.bytes += r.length - have;
  rememberLocal(ctx, r.name, target, r.length, r.sha256);
  ctx.crash('pull:after-rename');
  return target;
}

/** Report a divergence unless the remote copy is a prefix of the local one. */
async function checkPrefix(ctx: Session, local: SegmentInfo, r0: RemoteSegment): Promise<void> {
  const r = await remoteHash(ctx, r0);
  if (r.length > local.size) return ownAhead(ctx, local, r);
  const { full, at } = localHash(ctx, local, local.size, r.length < local.size ? [r.length] : []);
  if ((r.length === local.size ? full : at.get(r.length)) !== r.sha256) await diverged(ctx, local, local.size, full, r);
}

/** The remote holds bytes of this node's own segment that this machine does not have. */
async function ownAhead(ctx: Session, local: SegmentInfo | undefined, r0: RemoteSegment): Promise<void> {
  const r = await remoteHash(ctx, r0);
  const have = local?.size ?? 0;
  if (local && have >= r.length) return;
  const full = local ? localHash(ctx, local, have).full : '';
  await diverged(ctx, local ?? { rel: `wal/${r.name}`, node: r.node }, have, full, r, 'own-ahead');
}

/** Record a divergence and keep the remote copy in .walnut/quarantine/. */
async function diverged(ctx: Session, seg: { rel: string; node: string }, length: number, sha: string, r: RemoteSegment & { sha256: string }, reason: Divergence['reason'] = 'differs'): Promise<void> {
  const { repo, store } = ctx;
  const file = statePath(repo, 'quarantine', ctx.name, `${r.name}@${r.sha256.slice(0, 16)}`);
  const rel = path.relative(repo.root, file);
  const d: Divergence = { segment: seg.rel, node: seg.node, reason, local: { length, sha256: sha }, remote: { length: r.length, sha256: r.sha256 }, quarantine: rel };
  if (!fs.existsSync(file)) {
    const chunks: Buffer[] = [];
    await store.readSegment(r, 0, r.length, (c) => chunks.push(Buffer.from(c)));
    writeFileAtomic(file, Buffer.concat(chunks));
    writeFileAtomic(`${file}.json`, JSON.stringify({ ...d, remoteName: ctx.name, url: store.url, keptAt: new Date().toISOString() }, null, 1) + '\n');
  }
  ctx.result.divergences.push(d);
}

/** Remove temporary files an interrupted pull left in wal/. */
function removeStaleTemps(repo: Repo): void {
  let names: string[];
  try {
    names = fs.readdirSync(repo.wal);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith('.') && n.includes('.pull-') && n.endsWith(TEMP_SUFFIX)) fs.rmSync(path.join(repo.wal, n), { force: true });
}

/**
 * The error to raise after reporting divergences (exit status 4).
 *
 * @example if (r.divergences.length) throw divergenceError(r)
 */
export function divergenceError(result: SyncResult): WalnutError {
  const d = result.divergences;
  const first = d[0];
  const what = first.reason === 'own-ahead'
    ? `remote '${result.remote}' holds ${first.remote.length} bytes of this node's segment '${first.segment}', this machine has ${first.local.length}`
    : `'${first.segment}' differs from the copy at remote '${result.remote}': local ${first.local.length} bytes sha256 ${shortHash(first.local.sha256)}, remote ${first.remote.length} bytes sha256 ${shortHash(first.remote.sha256)}`;
  const hints = [`the remote cop${d.length === 1 ? 'y is' : 'ies are'} kept in '${path.dirname(first.quarantine ?? '.walnut/quarantine/x')}/'; nothing was changed on either side`];
  if (d.some((x) => x.reason === 'own-ahead' || x.node === first.node)) hints.push(`two machines may be using node id '${first.node}': give each its own with 'walnut config set core.node <id>'`);
  return new WalnutError('EDIVERGED', `${what}${d.length > 1 ? ` (and ${d.length - 1} more divergent segment${d.length > 2 ? 's' : ''})` : ''}`, { exit: 'divergence', data: { divergences: d }, hints });
}
