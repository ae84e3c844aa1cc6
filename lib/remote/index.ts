/**
 * Remotes: where journals are shipped to and fetched from. A remote is a
 * directory (local disk, USB stick, NFS mount) or an S3-compatible bucket and
 * prefix; both hold the same layout (see formats/remote.md) behind one
 * `Store` interface, and the protocol (lib/remote/sync.ts) only talks to that.
 *
 * This module holds the shared pieces: remote URLs and their config, the
 * `Store` interface, the machine id, segment hashing, and the per-remote
 * state cache in `.walnut/remotes/<name>.json`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { WalnutError, UsageError } from '../errors.js';
import { saveConfig, statePath, type Repo } from '../repo.js';
import { readFileOrUndefined, writeFileAtomic, isInside } from '../fsutil.js';

/** The layout version written in the remote's marker (formats/remote.md). */
export const REMOTE_FORMAT = 1;
/** Name of the marker object at the root of a remote. */
export const MARKER_KEY = 'walnut-remote';
/** A remote's name: like a git remote name. */
export const REMOTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Where a remote is, parsed from its URL and config. */
export type RemoteSpec =
  | { kind: 'dir'; name: string; url: string; path: string }
  | { kind: 's3'; name: string; url: string; bucket: string; prefix: string; endpoint?: string; region?: string };

/**
 * Parse a remote URL: a directory path (absolute, or relative to `cwd`), a
 * `file://` URL, or `s3://bucket[/prefix]`.
 *
 * @param url - the URL as the user wrote it
 * @param options.cwd - base of a relative directory path
 * @returns the URL to store (directories made absolute) and its parts
 * @throws UsageError for an unsupported scheme or a bad bucket name
 * @example parseRemoteUrl('s3://walnut-data/prod', { cwd: '/' }) // { kind: 's3', bucket: 'walnut-data', prefix: 'prod', ... }
 */
export function parseRemoteUrl(url: string, { cwd }: { cwd: string }): { kind: 'dir'; url: string; path: string } | { kind: 's3'; url: string; bucket: string; prefix: string } {
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new UsageError(`invalid S3 bucket name ${JSON.stringify(bucket)} in '${url}'`, ['bucket names are 3 to 63 characters: lower-case letters, digits, dots and dashes']);
    }
    if (prefix.split('/').some((p) => p === '.' || p === '..')) throw new UsageError(`invalid S3 prefix in '${url}': no '.' or '..' parts`);
    return { kind: 's3', url: `s3://${bucket}${prefix ? '/' + prefix : ''}`, bucket, prefix };
  }
  if (url.startsWith('file://')) {
    let p: string;
    try {
      p = fileURLToPath(url);
    } catch (err) {
      throw new UsageError(`invalid file URL '${url}': ${(err as Error).message}`, ['write file:///absolute/path or a plain path']);
    }
    return { kind: 'dir', url, path: p };
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) || /^[^/]+@[^/]+:/.test(url)) {
    throw new UsageError(`unsupported remote URL '${url}'`, ['a remote is a directory path, a file:// URL, or s3://bucket/prefix']);
  }
  if (url === '') throw new UsageError('empty remote URL');
  const abs = path.resolve(cwd, url);
  return { kind: 'dir', url: abs, path: abs };
}

/**
 * The remote `name` of a repository, from `[remote "<name>"]` in its config.
 *
 * @throws WalnutError `ENOREMOTE` when it is not configured
 * @example remoteSpec(repo, 'origin')
 */
export function remoteSpec(repo: Repo, name: string): RemoteSpec {
  const url = repo.config.get(`remote.${name}.url`);
  if (url === undefined) {
    const names = repo.config.subsections('remote').filter((n) => repo.config.get(`remote.${n}.url`) !== undefined);
    throw new WalnutError('ENOREMOTE', `no remote '${name}' in '${path.join(repo.dir, 'config')}'`, {
      data: { remote: name },
      hints: names.length ? [`known remotes: ${names.join(', ')}`] : [`add one with 'walnut remote add ${name} <url>'`],
    });
  }
  const parsed = parseRemoteUrl(url, { cwd: repo.root });
  if (parsed.kind === 'dir') return { ...parsed, name };
  return { ...parsed, name, endpoint: repo.config.get(`remote.${name}.endpoint`), region: repo.config.get(`remote.${name}.region`) };
}

/** A configured remote, as `remote list` shows it. */
export interface RemoteEntry {
  name: string;
  url: string;
  kind: 'dir' | 's3';
  endpoint?: string;
  region?: string;
}

/** Every remote of a repository, in config order. */
export function listRemotes(repo: Repo): RemoteEntry[] {
  const out: RemoteEntry[] = [];
  for (const name of repo.config.subsections('remote')) {
    const url = repo.config.get(`remote.${name}.url`);
    if (url === undefined) continue;
    const kind = url.startsWith('s3://') ? 's3' : 'dir';
    const entry: RemoteEntry = { name, url, kind };
    const endpoint = repo.config.get(`remote.${name}.endpoint`);
    const region = repo.config.get(`remote.${name}.region`);
    if (endpoint !== undefined) entry.endpoint = endpoint;
    if (region !== undefined) entry.region = region;
    out.push(entry);
  }
  return out;
}

/**
 * Add a remote to the config.
 *
 * @param options.url - directory path, file:// URL or s3://bucket/prefix; a relative path is made absolute against `cwd`
 * @param options.endpoint - S3 endpoint URL (S3 only), e.g. http://127.0.0.1:7480
 * @param options.region - S3 region (S3 only)
 * @returns the entry written
 * @throws UsageError for a bad name or URL, or S3 options on a directory; WalnutError `EREMOTEEXISTS`
 * @example addRemote({ repo, name: 'origin', url: '/mnt/usb/walnut', cwd: process.cwd() })
 */
export function addRemote({ repo, name, url, endpoint, region, cwd }: { repo: Repo; name: string; url: string; endpoint?: string; region?: string; cwd: string }): RemoteEntry {
  if (!REMOTE_NAME.test(name)) throw new UsageError(`invalid remote name ${JSON.stringify(name)}`, ['use letters, digits, dots, dashes and underscores, e.g. origin']);
  if (repo.config.get(`remote.${name}.url`) !== undefined) {
    throw new WalnutError('EREMOTEEXISTS', `remote '${name}' already exists (${repo.config.get(`remote.${name}.url`)})`, { data: { remote: name }, hints: [`remove it first with 'walnut remote remove ${name}'`] });
  }
  const parsed = parseRemoteUrl(url, { cwd });
  if (parsed.kind === 'dir' && (endpoint !== undefined || region !== undefined)) throw new UsageError('--endpoint and --region apply to s3:// remotes only');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) throw new UsageError(`invalid endpoint ${JSON.stringify(endpoint)}`, ['write it as a URL, e.g. http://127.0.0.1:7480 or https://s3.eu-central-1.amazonaws.com']);
  if (parsed.kind === 'dir' && isInside(repo.root, parsed.path)) {
    throw new UsageError(`remote directory '${parsed.path}' is inside the data directory '${repo.root}'`, ['use a directory outside it, e.g. on a USB stick or a network mount']);
  }
  repo.config.set(`remote.${name}.url`, parsed.url);
  if (endpoint !== undefined) repo.config.set(`remote.${name}.endpoint`, endpoint);
  if (region !== undefined) repo.config.set(`remote.${name}.region`, region);
  saveConfig(repo);
  return listRemotes(repo).find((r) => r.name === name)!;
}

/**
 * Remove a remote from the config, with its cached state.
 *
 * @throws WalnutError `ENOREMOTE` when there is no such remote
 * @example removeRemote({ repo, name: 'origin' })
 */
export function removeRemote({ repo, name }: { repo: Repo; name: string }): RemoteEntry {
  const entry = listRemotes(repo).find((r) => r.name === name);
  if (!entry) remoteSpec(repo, name); // throws ENOREMOTE with the known names
  repo.config.removeSection('remote', name);
  saveConfig(repo);
  fs.rmSync(remoteStateFile(repo, name), { force: true });
  return entry!;
}

// ---------------------------------------------------------------------------
// The store interface

/** A journal segment as a remote holds it. */
export interface RemoteSegment {
  /** the node whose segment it is */
  node: string;
  /** the segment file name, `YYYYMMDD_<node>.usv` */
  name: string;
  /** its length in bytes */
  length: number;
  /** change token: the ETag on S3, size-mtime-inode on directories */
  tag: string;
}

/** A small object read with its change token and times (for leases). */
export interface StoredObject {
  body: Buffer;
  tag: string;
  /** when the object was last written, by the store's clock (ms) */
  modifiedMs: number;
  /** the store's clock at the time of the read (ms) */
  nowMs: number;
}

/** Condition of a write: create only, or replace only the version with this tag. */
export type WriteCondition = { ifNoneMatch: true } | { ifMatch: string } | undefined;

/** Transfer counters of a store, for --json and the benchmarks. */
export interface StoreStats {
  /** payload bytes written to the remote (segments and small objects) */
  bytesSent: number;
  /** payload bytes read from the remote */
  bytesReceived: number;
  /** requests (S3) or file operations (directories) */
  requests: number;
}

/**
 * What the protocol needs from a remote. Keys are relative to the remote's
 * root (bucket prefix or directory), `/`-separated.
 */
export interface Store {
  readonly kind: 'dir' | 's3';
  readonly url: string;
  readonly stats: StoreStats;
  /** True when the remote exists (directory present / bucket reachable). */
  exists(): Promise<boolean>;
  /** Check the remote can take walnut's layout before the first write (creates a directory). */
  prepareWrite(): Promise<void>;
  /** Every segment of every node (`wal/<node>/<name>`). */
  listSegments(): Promise<RemoteSegment[]>;
  /** One segment as it is now, or undefined when the remote lacks it. */
  statSegment(node: string, name: string): Promise<RemoteSegment | undefined>;
  /**
   * SHA-256 (hex) of a segment's whole content, as the remote records it,
   * with the length and token it belongs to (a copy that grew since the
   * listing is described anew).
   */
  segmentHash(seg: RemoteSegment): Promise<{ sha256: string; length: number; tag: string }>;
  /** Stream bytes [start, end) of a segment to `onChunk`; throws if it is shorter. */
  readSegment(seg: RemoteSegment, start: number, end: number, onChunk: (chunk: Buffer) => void): Promise<void>;
  /**
   * Replace or create a segment with bytes [0, length) of a local file whose
   * SHA-256 is `sha256`, only if the remote copy is still `expect` (or absent
   * when `expect` is undefined). The caller has checked that `expect` is a
   * prefix of the local file. Returns the new token, or undefined when the
   * remote copy changed meanwhile (nothing written).
   */
  writeSegment(args: { node: string; name: string; file: string; length: number; sha256: string; expect?: RemoteSegment }): Promise<string | undefined>;
  /** Read a small object, or undefined when it does not exist. */
  getObject(key: string): Promise<StoredObject | undefined>;
  /** Write a small object under a condition; returns its token, or undefined when the condition failed. */
  putObject(key: string, body: Buffer, condition?: WriteCondition): Promise<string | undefined>;
  /** Delete an object (no error when missing). */
  deleteObject(key: string): Promise<void>;
  /** Keys of the objects under a prefix (`versions/`), relative to the remote's root. */
  listKeys(prefix: string): Promise<string[]>;
  /** Release connections and locks. */
  close(): Promise<void>;
}

/** Key of a segment in the remote layout. */
export function segmentKey(node: string, name: string): string {
  return `wal/${node}/${name}`;
}

/** Key of a node's owner object. */
export function ownerKey(node: string): string {
  return `nodes/${node}`;
}

// ---------------------------------------------------------------------------
// Hashing

/**
 * SHA-256 of bytes [0, end) of a file, and of the prefixes [0, m) for each
 * mark m < end, in one pass.
 *
 * @param file - the file
 * @param end - how many bytes to hash; throws ESHORT if the file is shorter
 * @param marks - prefix lengths whose hashes are wanted too
 * @returns `full` (of [0, end)) and `at` (mark → hash)
 * @example hashFile('wal/20261121_pi-01.usv', 4096, [1024]).at.get(1024)
 */
export function hashFile(file: string, end: number, marks: number[] = []): { full: string; at: Map<number, string> } {
  const hash = createHash('sha256');
  const at = new Map<number, string>();
  const wanted = [...new Set(marks.filter((m) => m >= 0 && m < end))].sort((a, b) => a - b);
  let pos = 0;
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (const stop of [...wanted, end]) {
      while (pos < stop) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, stop - pos), pos);
        if (n === 0) throw new WalnutError('ESHORT', `'${file}' is shorter than ${end} bytes`, { data: { file, end } });
        hash.update(buf.subarray(0, n));
        pos += n;
      }
      if (stop !== end) at.set(stop, hash.copy().digest('hex'));
    }
  } finally {
    fs.closeSync(fd);
  }
  const full = hash.digest('hex');
  return { full, at };
}

/** SHA-256 (hex) of some bytes. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A short form of a hash for messages. */
export function shortHash(hash: string | undefined): string {
  return hash ? hash.slice(0, 12) : '-';
}

// ---------------------------------------------------------------------------
// The machine id

/**
 * This machine's id: random, made at first use, kept in `.walnut/machine-id`.
 * A remote records which machine owns each node id, so two machines that
 * were given the same node id are told apart.
 *
 * @returns 32 hex digits
 * @example const id = machineId(repo)
 */
export function machineId(repo: Repo): string {
  const file = path.join(repo.dir, 'machine-id');
  const existing = readFileOrUndefined(file)?.trim();
  if (existing && /^[0-9a-f]{32}$/.test(existing)) return existing;
  const id = randomBytes(16).toString('hex');
  const tmp = `${file}.${randomBytes(4).toString('hex')}.walnut-tmp`;
  fs.writeFileSync(tmp, id + '\n');
  try {
    if (existing === undefined) {
      // Exclusive create: two processes starting at once agree on one id.
      try {
        fs.linkSync(tmp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        return machineId(repo);
      }
    } else {
      fs.renameSync(tmp, file); // a damaged id file: replace it
      return id;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return id;
}

// ---------------------------------------------------------------------------
// Per-remote state cached in .walnut/remotes/<name>.json

/** What a node remembers about one segment after a sync with a remote. */
export interface SegmentState {
  /** the remote copy: length, token, hash */
  remote?: { length: number; tag: string; sha256: string };
  /** the local copy when last hashed: size, mtime, inode, hash */
  local?: { size: number; mtimeMs: number; ino: number; sha256: string };
}

export interface RemoteState {
  version: 1;
  url: string;
  /** result of the conditional-write probe (S3) */
  conditions?: { checkedAt: string; ifMatchQuoted: boolean };
  /** the remote's layout marker was seen */
  marker?: boolean;
  /** this machine owns this node id at the remote */
  owner?: { node: string; machine: string };
  segments: Record<string, SegmentState>;
}

function remoteStateFile(repo: Repo, name: string): string {
  return path.join(repo.dir, 'remotes', `${name}.json`);
}

/** Load the cached state of a remote (empty when missing, damaged, or for another URL). */
export function loadRemoteState(repo: Repo, name: string, url: string): RemoteState {
  const text = readFileOrUndefined(remoteStateFile(repo, name));
  if (text) {
    try {
      const state = JSON.parse(text) as RemoteState;
      if (state.version === 1 && state.url === url && state.segments && typeof state.segments === 'object') return state;
    } catch {
      /* a damaged cache is rebuilt */
    }
  }
  return { version: 1, url, segments: {} };
}

/** Save the cached state of a remote atomically. */
export function saveRemoteState(repo: Repo, name: string, state: RemoteState): void {
  writeFileAtomic(statePath(repo, 'remotes', `${name}.json`), JSON.stringify(state) + '\n');
}

/** Options every store gets. */
export interface OpenStoreOptions {
  /** S3: whether If-Match wants the ETag in quotes (from the probe) */
  ifMatchQuoted?: boolean;
  /** S3: the region when the remote has none configured (default us-east-1) */
  defaultRegion?: string;
  /** S3: credentials instead of the AWS default chain (tests) */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * Open the store of a remote. The S3 client is loaded only here.
 *
 * @example const store = await openStore(remoteSpec(repo, 'origin')); try { ... } finally { await store.close() }
 */
export async function openStore(spec: RemoteSpec, options: OpenStoreOptions = {}): Promise<Store> {
  if (spec.kind === 'dir') {
    const { DirStore } = await import('./dir.js');
    return new DirStore(spec.path, spec.url);
  }
  const { openS3Store } = await import('./s3.js');
  return openS3Store(spec, options);
}
