/**
 * Gossip settings from `.walnut/config` (`[gossip]` section), and the cluster
 * keys: `gossip.key` is repeatable; the first key signs, every key is
 * accepted (so a cluster can rotate keys without a gap).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FormatError, WalnutError } from '../errors.js';
import { saveConfig, type Repo } from '../repo.js';
import { DEFAULT_BREAKER, parseHostPort, type BreakerOptions } from './peers.js';
import { keyFingerprint, parseKey } from './protocol.js';

export const DEFAULT_PORT = 9999;
export const DEFAULT_HEARTBEAT_MS = 60_000;
export const DEFAULT_BATCH_MS = 5;

export interface GossipConfig {
  port: number;
  bind: string;
  keys: Buffer[];
  peers: Array<{ host: string; port: number }>;
  fallback: Array<{ host: string; port: number }>;
  mdns: boolean;
  heartbeatMs: number;
  batchMs: number;
  breaker: BreakerOptions;
}

/** Parse `500ms`, `30s`, `5m`, `2h` or plain milliseconds. */
export function parseMs(text: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new FormatError('ECONFIG', `config ${key} = ${JSON.stringify(text)} is not a duration`, { key }, ['use a number with a unit: 100ms, 30s, 5m, 1h']);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms']);
}

function num(repo: Repo, key: string, fallback: number, min: number): number {
  const raw = repo.config.get(key);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new FormatError('ECONFIG', `config ${key} = ${JSON.stringify(raw)} is not a number >= ${min}`, { key });
  return n;
}

function dur(repo: Repo, key: string, fallback: number, min: number): number {
  const raw = repo.config.get(key);
  if (raw === undefined) return fallback;
  const ms = parseMs(raw, key);
  if (ms < min) throw new FormatError('ECONFIG', `config ${key} = ${JSON.stringify(raw)} is shorter than ${min} ms`, { key });
  return ms;
}

function bool(repo: Repo, key: string, fallback: boolean): boolean {
  const raw = repo.config.get(key);
  if (raw === undefined) return fallback;
  if (/^(true|yes|on|1)$/i.test(raw)) return true;
  if (/^(false|no|off|0)$/i.test(raw)) return false;
  throw new FormatError('ECONFIG', `config ${key} = ${JSON.stringify(raw)} is not a boolean`, { key }, ['use true or false']);
}

function addresses(repo: Repo, key: string, port: number): Array<{ host: string; port: number }> {
  return repo.config.getAll(key).map((v) => {
    const a = parseHostPort(v, port);
    if (!a) throw new FormatError('ECONFIG', `config ${key} = ${JSON.stringify(v)} is not host:port`, { key }, [`e.g. ${key} = 192.168.1.20:${DEFAULT_PORT}`]);
    return a;
  });
}

/**
 * Read the gossip settings.
 * @param options.requireKey - throw when no cluster key is configured (the daemon needs one)
 * @throws FormatError `ECONFIG` for a bad value, `EGOSSIPKEY` for a bad key; WalnutError `EGOSSIPNOKEY`
 * @example const cfg = gossipConfig({ repo }); cfg.port // 9999
 */
export function gossipConfig({ repo, requireKey = true }: { repo: Repo; requireKey?: boolean }): GossipConfig {
  const port = num(repo, 'gossip.port', DEFAULT_PORT, 0);
  const keys = repo.config.getAll('gossip.key').map((k, i) => parseKey(k, i === 0 ? 'gossip.key' : `gossip.key (#${i + 1})`));
  if (requireKey && keys.length === 0) {
    throw new WalnutError('EGOSSIPNOKEY', `no cluster key in '${path.join(repo.dir, 'config')}' (gossip.key)`, {
      hints: ["generate one with 'walnut gossip keygen' on one node, then 'walnut gossip keygen --key <key>' on the others"],
    });
  }
  return {
    port,
    bind: repo.config.get('gossip.bind') ?? '0.0.0.0',
    keys,
    peers: addresses(repo, 'gossip.peer', DEFAULT_PORT),
    fallback: addresses(repo, 'gossip.fallback', DEFAULT_PORT),
    mdns: bool(repo, 'gossip.mdns', true),
    heartbeatMs: dur(repo, 'gossip.heartbeat', DEFAULT_HEARTBEAT_MS, 20),
    batchMs: dur(repo, 'gossip.batch', DEFAULT_BATCH_MS, 1),
    breaker: {
      threshold: num(repo, 'gossip.breakerThreshold', DEFAULT_BREAKER.threshold, 1),
      backoffMs: dur(repo, 'gossip.breakerBackoff', DEFAULT_BREAKER.backoffMs, 10),
      maxBackoffMs: dur(repo, 'gossip.breakerMaxBackoff', DEFAULT_BREAKER.maxBackoffMs, 10),
    },
  };
}

export type KeygenMode = 'new' | 'rotate' | 'accept' | 'retire';

export interface KeygenResult {
  /** the key generated or given (the signing key for `retire`) */
  key: string;
  fingerprint: string;
  /** fingerprints of the configured keys, signing key first */
  keys: string[];
}

/**
 * Create or rotate the cluster key in `.walnut/config` (made readable by its owner only).
 *
 * - `new`: set the key; refused when one is configured
 * - `rotate`: the key becomes the first (signing) key; the others stay accepted
 * - `accept`: the key is added as accepted only (the current key still signs)
 * - `retire`: keep only the signing key
 *
 * @param options.key - use this key (64 hex digits) instead of generating one
 * @returns the key and the fingerprints of all configured keys
 * @throws WalnutError `EGOSSIPKEYEXISTS` for `new` when a key exists; FormatError `EGOSSIPKEY`
 * @example keygen({ repo, mode: 'new' }).key
 */
export function keygen({ repo, key, mode = 'new' }: { repo: Repo; key?: string; mode?: KeygenMode }): KeygenResult {
  const current = repo.config.getAll('gossip.key').map((k) => k.trim().toLowerCase());
  let next: string[];
  let chosen: string;
  if (mode === 'retire') {
    if (current.length === 0) throw new WalnutError('EGOSSIPNOKEY', 'no cluster key to keep (gossip.key is not set)', { hints: ["generate one with 'walnut gossip keygen'"] });
    chosen = current[0];
    next = [chosen];
  } else {
    chosen = key !== undefined ? parseKey(key, '--key').toString('hex') : randomBytes(32).toString('hex');
    if (mode === 'new') {
      if (current.length > 0 && !(current.length === 1 && current[0] === chosen)) {
        throw new WalnutError('EGOSSIPKEYEXISTS', `a cluster key is already set (fingerprint ${keyFingerprint(Buffer.from(current[0], 'hex'))})`, {
          hints: ['use --rotate to make a new key the signing key (the old one stays accepted), or --accept to add a key that peers have started to use'],
        });
      }
      next = [chosen];
    } else if (mode === 'rotate') next = [chosen, ...current.filter((k) => k !== chosen)];
    else next = current.includes(chosen) ? current : [...current, chosen];
  }
  repo.config.unset('gossip.key');
  for (const k of next) repo.config.add('gossip.key', k);
  saveConfig(repo);
  try {
    fs.chmodSync(path.join(repo.dir, 'config'), 0o600);
  } catch {
    /* a file system without modes */
  }
  return { key: chosen, fingerprint: keyFingerprint(Buffer.from(chosen, 'hex')), keys: next.map((k) => keyFingerprint(Buffer.from(k, 'hex'))) };
}
