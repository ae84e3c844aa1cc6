/**
 * Versions through a remote, end to end with the built CLI and two (or more)
 * data directories sharing one remote: activation followed by a checkout on
 * another machine, discovery, the activation race, rollback, the health
 * check, uploads in isolation, crash points, pull, clone from a version,
 * remote pruning, and hostile input. Each scenario takes a `Kit`: a fresh
 * directory remote (`dirKit`) or a bucket on the real S3 server (`s3Kit`,
 * test/s3-server.ts). Used by version-remote-dir.test.ts and
 * version-remote-s3.test.ts.
 */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, ListObjectsV2Command, CopyObjectCommand } from '@aws-sdk/client-s3';
import type { ChildProcess } from 'node:child_process';
import { initRepoDir, tmpDir, type RunResult } from './helpers.js';
import { run, runAsync, ok, git, entityFiles, sameFiles, writeEntities, entity, spawnWalnut, exited, stderrOf, lines, sleep, until } from './version-helpers.js';
import { s3Server, s3Client, newBucket } from './s3-server.js';
import { PackWriter, objectId, treeBytes, commitBytes, MODE_FILE, MODE_TREE } from '../lib/version/objects.js';

// ---------------------------------------------------------------- remotes

/** A remote the scenarios share, with direct access to its objects (to inspect and to tamper with). */
export interface Kit {
  kind: 'dir' | 's3';
  url: string;
  /** extra arguments of `walnut remote add` and `walnut clone` */
  add: string[];
  /** environment of every walnut run that reaches the remote */
  env: Record<string, string>;
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, body: Buffer): Promise<void>;
  /** keys below `prefix`, sorted */
  keys(prefix: string): Promise<string[]>;
  /** a new remote of the same kind with every object except those under versions/ */
  withoutVersions(): Promise<Kit>;
}

/** A new directory remote (made by the first walnut that writes to it). */
export async function dirKit(root = path.join(tmpDir(), 'remote')): Promise<Kit> {
  const file = (key: string) => path.join(root, ...key.split('/'));
  return {
    kind: 'dir',
    url: root,
    add: [],
    env: {},
    async get(key) {
      try {
        return fs.readFileSync(file(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async put(key, body) {
      fs.mkdirSync(path.dirname(file(key)), { recursive: true });
      fs.writeFileSync(file(key), body);
    },
    async keys(prefix) {
      const out: string[] = [];
      const walk = (rel: string) => {
        const abs = rel ? file(rel) : root;
        if (!fs.existsSync(abs)) return;
        for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
          const key = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) walk(key);
          else out.push(key);
        }
      };
      walk('');
      return out.filter((k) => k.startsWith(prefix)).sort();
    },
    async withoutVersions() {
      const copy = path.join(tmpDir(), 'remote-without-versions');
      fs.cpSync(root, copy, { recursive: true });
      fs.rmSync(path.join(copy, 'versions'), { recursive: true, force: true });
      fs.rmSync(path.join(copy, '.locks'), { recursive: true, force: true });
      return dirKit(copy);
    },
  };
}

/** A new bucket on the test's S3 server (Ceph RGW), remote prefix `team`. */
export async function s3Kit(bucket?: string): Promise<Kit> {
  const s = s3Server();
  bucket ??= await newBucket('walnut-vr');
  const client = s3Client(s);
  const prefix = 'team/';
  const keys = async (p: string) => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix + p, ContinuationToken: token }));
      for (const o of r.Contents ?? []) out.push(o.Key!.slice(prefix.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  };
  return {
    kind: 's3',
    url: `s3://${bucket}/team`,
    add: ['--endpoint', s.endpoint],
    env: s.env,
    async get(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + key }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    },
    async put(key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + key, Body: body }));
    },
    keys,
    async withoutVersions() {
      const other = await newBucket('walnut-vr-copy');
      for (const k of await keys('')) {
        if (k.startsWith('versions/') || k.startsWith('probe/')) continue;
        await client.send(new CopyObjectCommand({ Bucket: other, Key: prefix + k, CopySource: `${bucket}/${prefix}${k}` }));
      }
      return s3Kit(other);
    },
  };
}

// ---------------------------------------------------------------- helpers

/**
 * A new data directory of `node` (walnut init) with `origin` = the kit's
 * remote, written into .walnut/config as `walnut remote add` writes it (one
 * CLI run less per machine: the tests run on a loaded 2-core machine).
 */
function machine(kit: Kit, node: string): string {
  const data = initRepoDir(node);
  const endpoint = kit.add[0] === '--endpoint' ? `\tendpoint = ${kit.add[1]}\n` : '';
  fs.appendFileSync(path.join(data, '.walnut', 'config'), `[remote "origin"]\n\turl = ${kit.url}\n${endpoint}`);
  return data;
}

const children = new Set<ChildProcess>();

/** Spawn a long-running walnut, killed by `stopChildren` if a test fails before it ends it. */
function spawnTracked(args: string[], cwd: string, env: Record<string, string | undefined>): ChildProcess {
  const child = spawnWalnut(args, cwd, env);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const cleanups: (() => void)[] = [];

/** Kill the followers and waiters a failed test left running, release waiting health checks (call in `test.after`). */
export function stopChildren(): void {
  for (const c of children) c.kill('SIGKILL');
  for (const f of cleanups.splice(0)) f();
}

const wok = (kit: Kit, args: string[], cwd: string, env: Record<string, string | undefined> = {}, input?: string) => ok(args, cwd, { ...kit.env, ...env }, input);
const wrun = (kit: Kit, args: string[], cwd: string, env: Record<string, string | undefined> = {}) => run(args, cwd, { ...kit.env, ...env });
const wasync = (kit: Kit, args: string[], cwd: string, env: Record<string, string | undefined> = {}) => runAsync(args, cwd, { ...kit.env, ...env });

interface Pointer {
  version: string;
  previous: string | null;
  activated: string;
  node: string;
}

/** The remote's active pointer, parsed (undefined when none). */
async function remotePointer(kit: Kit): Promise<Pointer | undefined> {
  const body = await kit.get('versions/active');
  return body && JSON.parse(body.toString());
}

/** A made version: its id and A's entity files at that moment. */
interface Made {
  id: string;
  files: Map<string, Buffer>;
}

/** Write entity files by hand, `version create --record`, and keep the data directory's entity files of that version. */
function makeV(data: string, files: Record<string, string | null>): Made {
  writeEntities(data, files);
  const r = ok(['version', 'create', '--record'], data);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{40}$/, `version create prints an id: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^created version /, r.stderr);
  return { id, files: entityFiles(data) };
}

/** `n` companies c0.. with `v` (and the other fields given). */
function companies(n: number, fields: Record<string, string | number>, from = 0): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = from; i < from + n; i++) out[`companies/c${i}`] = entity({ name: `Company ${i}`, ...fields });
  return out;
}

/** The version `<dir>/current` points at. */
function currentOf(dir: string): string | undefined {
  try {
    return fs.readlinkSync(path.join(dir, 'current'));
  } catch {
    return undefined;
  }
}

/** The files readers of a checkout folder see: below the resolved `current`. */
function checkedOut(dir: string): Map<string, Buffer> {
  return entityFiles(fs.realpathSync(path.join(dir, 'current')));
}

/** What a checkout folder holds once no checkout runs there: its entries, the link, and the current tree's files (base64). */
async function checkoutState(dir: string): Promise<string> {
  await until(`no checkout running in ${dir}`, 20_000, () => (fs.existsSync(path.join(dir, '.walnut-checkout.lock')) ? undefined : true));
  const names = fs.readdirSync(dir).sort();
  const files = [...checkedOut(dir)].map(([p, b]) => `${p}=${b.toString('base64')}`).sort();
  return JSON.stringify({ names, current: currentOf(dir), files });
}

/** Every object under versions/ with its bytes (to show that nothing changed). */
async function versionsSnapshot(kit: Kit): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of await kit.keys('versions/')) out[k] = (await kit.get(k))!.toString('base64');
  return out;
}

const manifests = async (kit: Kit) => (await kit.keys('versions/v/')).map((k) => k.slice('versions/v/'.length, -'.json'.length)).sort();
const packsOn = async (kit: Kit) => (await kit.keys('versions/packs/')).map((k) => k.slice('versions/packs/'.length)).sort();
const short = (id: string) => id.slice(0, 12);
const sorted = (a: string[]) => [...a].sort();

/** A pointer that names a version whose manifest and packs are all on the remote. */
async function wholePointer(kit: Kit, label: string): Promise<Pointer> {
  const p = await remotePointer(kit);
  assert.ok(p, `${label}: a pointer`);
  assert.match(p!.version, /^[0-9a-f]{40}$/, label);
  const m = await kit.get(`versions/v/${p!.version}.json`);
  assert.ok(m, `${label}: the active version ${short(p!.version)} has its manifest`);
  const have = new Set(await packsOn(kit));
  for (const pack of JSON.parse(m!.toString()).packs as string[]) {
    assert.ok(have.has(`${pack}.pack`) && have.has(`${pack}.idx`), `${label}: ${pack} of the active version is on the remote`);
  }
  return p!;
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

/** The error document walnut prints on stderr with --json. */
function jsonError(r: RunResult): { code: string; message: string; data: Record<string, unknown> } {
  try {
    return JSON.parse(r.stderr).error;
  } catch {
    assert.unreachable(`stderr is a JSON error (exit ${r.code}):\n${r.stderr}`);
    throw new Error('unreachable');
  }
}

/** Poll the remote pointer and `<co>/current` until both name `id`: how long current lagged behind the pointer (ms). */
async function followLag(kit: Kit, co: string, id: string, timeout = 20_000): Promise<number> {
  let seenPointer: number | undefined;
  let seenCurrent: number | undefined;
  const end = Date.now() + timeout;
  while (seenPointer === undefined || seenCurrent === undefined) {
    if (seenPointer === undefined && (await remotePointer(kit))?.version === id) seenPointer = Date.now();
    if (seenCurrent === undefined && currentOf(co) === id) seenCurrent = Date.now();
    if (Date.now() > end) throw new Error(`timed out: pointer ${seenPointer ? 'switched' : 'not switched'}, current -> ${currentOf(co)}, waiting for ${short(id)}`);
    await sleep(15);
  }
  return seenCurrent - seenPointer;
}

// ---------------------------------------------------------------- scenarios

/** A child's exit, or a failure after `ms` (a test must not hang on a process that does not end). */
async function exitedWithin(child: ChildProcess, ms: number, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)));
  try {
    return await Promise.race([exited(child), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the lifecycle scenario measured. */
export interface LifecycleReport {
  /** ms from the remote pointer's change to B's `current` naming the version */
  lags: number[];
  /** upload sizes of versions differing in k entities */
  uploads: { k: number; objects: number }[];
}

/**
 * One remote, three machines, the whole life of versions:
 * - A activates v1; `active --remote` on B prints it; B's
 *   `checkout --active --follow --interval 100ms` materialises it, byte for
 *   byte; `active --remote --wait` on B returns on A's next activation;
 * - A activates versions differing in k = 1 and 4 entities (3k + 7 objects
 *   uploaded) and B follows each within a few polls;
 * - L started an activation before those and waited in its health check: its
 *   upload completes, its swap loses (exit 3, EACTIVECHANGED), and neither the
 *   pointer nor B's checkout changes;
 * - `activate --previous --remote` rolls back and B follows;
 * - a failing check command changes nothing on the remote;
 * - killed at activate:after-upload the pointer stays, at
 *   activate:after-switch it is the new version, whole (B follows it); reruns
 *   succeed without uploading again;
 * - SIGTERM stops B; `pull` then fetches the active version, and `checkout
 *   <id>` / `activate <id>` work without the remote (`offline` hides it);
 * - L's rerun only swaps the pointer; `--previous` from L fetches the version
 *   it never had.
 */
export async function lifecycle(kit: Kit, { pull = true, offline }: { pull?: boolean; offline?: () => () => void } = {}): Promise<LifecycleReport> {
  const A = machine(kit, 'pi-01');
  const B = machine(kit, 'pi-02');
  const L = machine(kit, 'pi-03');
  const N = 12;
  const report: LifecycleReport = { lags: [], uploads: [] };
  const v1 = makeV(A, { ...companies(N, { v: 1 }), 'people/jane': entity({ name: 'Jane' }) });
  assert.is(wrun(kit, ['active', '--remote', 'origin'], B).stdout, '(no active version)\n', 'nothing active on a new remote');
  const first = JSON.parse(wok(kit, ['activate', v1.id, '--remote', 'origin', '--json'], A).stdout);
  // 3 objects per entity, 2 trees per collection, root, .walnut, checkpoint, stamps root, commit
  assert.equal(first.upload, { uploaded: true, objects: 3 * (N + 1) + 2 * 2 + 5, bytes: first.upload.bytes }, 'the first upload sends every object of the version');
  const p1 = (await remotePointer(kit))!;
  assert.equal([p1.version, p1.previous, p1.node], [v1.id, null, 'pi-01']);
  assert.is(wok(kit, ['active', '--remote', 'origin'], B).stdout, `${v1.id}  activated ${p1.activated} by pi-01\n`, 'B prints the version A activated');
  assert.equal(JSON.parse(wok(kit, ['active', '--remote', 'origin', '--json'], B).stdout), { version: 1, remote: 'origin', active: p1 });

  const waiter = spawnTracked(['active', '--remote', 'origin', '--wait', '--interval', '100ms'], B, kit.env);
  const waited = lines(waiter);
  const werr = stderrOf(waiter);
  const co = path.join(tmpDir(), 'co');
  const follower = spawnTracked(['checkout', '--active', co, '--remote', 'origin', '--follow', '--interval', '100ms', '--grace', '0'], B, kit.env);
  const ferr = stderrOf(follower);
  const waiterStarted = Date.now();

  // L reads the pointer (v1), then waits in its health check until released
  const gate = tmpDir('walnut-gate-');
  ok(['config', 'set', 'activate.check', 'touch "$GATE/ready"; i=0; while [ ! -e "$GATE/go" ]; do i=$((i+1)); [ $i -gt 6000 ] && exit 9; sleep 0.01; done'], L);
  const vL = makeV(L, { ...companies(N, { v: 'L' }), 'people/lost': entity({ name: 'Lost' }) });
  const loser = wasync(kit, ['activate', vL.id, '--remote', 'origin', '--json'], L, { GATE: gate });
  cleanups.push(() => fs.writeFileSync(path.join(gate, 'go'), '')); // never leave L waiting
  await until('L read the pointer', 30_000, () => (fs.existsSync(path.join(gate, 'ready')) ? true : undefined));

  await until(`B's first checkout of ${short(v1.id)}`, 30_000, () => (currentOf(co) === v1.id ? true : follower.exitCode !== null ? assert.unreachable(`the follower ended: ${ferr.text}`) : undefined));
  sameFiles(checkedOut(co), v1.files, 'B checked out v1: the files A had');
  await sleep(Math.max(0, 1000 - (Date.now() - waiterStarted)));
  assert.is(waiter.exitCode, null, `--wait is still waiting while nothing changes: ${werr.text}`);

  /** A activates `v` (already made); B must follow. */
  const activateAndFollow = async (args: string[], v: Made) => {
    const activation = wasync(kit, ['activate', ...args, '--remote', 'origin', '--json'], A);
    report.lags.push(await followLag(kit, co, v.id));
    const r = await activation;
    assert.is(r.code, 0, r.stderr);
    sameFiles(checkedOut(co), v.files, `B followed to ${short(v.id)}`);
    return JSON.parse(r.stdout);
  };
  const made: Made[] = [v1];
  for (const k of [1, 4]) {
    const next = makeV(A, companies(k, { v: `k${k}` }));
    const doc = await activateAndFollow([next.id], next);
    assert.equal(pick(doc, ['active', 'previous', 'changed']), { active: next.id, previous: made[made.length - 1].id, changed: true });
    assert.is(doc.upload.objects, 3 * k + 7, `a version differing in ${k} entit${k === 1 ? 'y' : 'ies'} sends 3 per entity + 7 objects`);
    report.uploads.push({ k, objects: doc.upload.objects });
    made.push(next);
    if (k === 1) {
      assert.equal(await exitedWithin(waiter, 20_000, 'active --wait'), { code: 0, signal: null }, `--wait returns after the activation: ${werr.text}`);
      const p = (await remotePointer(kit))!;
      assert.equal(waited, [`${next.id}  activated ${p.activated} by pi-01`], '--wait prints the new version');
    }
  }
  const [, vk1, vk4] = made;

  // L's upload happens now, after two activations: its swap loses and changes nothing readers see
  await sleep(300);
  let pointerBytes = (await kit.get('versions/active'))!;
  let coBefore = await checkoutState(co);
  fs.writeFileSync(path.join(gate, 'go'), '');
  const lost = await loser;
  assert.is(lost.code, 3, `L lost and exits 3: ${lost.stderr}`);
  assert.is(lost.stdout, '');
  const err = jsonError(lost);
  assert.is(err.code, 'EACTIVECHANGED');
  assert.is(err.message, `the active version on remote 'origin' changed while activating (now ${short(vk4.id)}, by pi-01); ${short(vL.id)} was not activated`);
  assert.ok(await kit.get(`versions/v/${vL.id}.json`), "L's upload was made (a manifest nothing refers to)");
  assert.ok((await kit.get('versions/active'))!.equals(pointerBytes), 'the remote pointer is unchanged, byte for byte');
  await sleep(500); // several polls of B
  assert.is(await checkoutState(co), coBefore, "B's checkout is unchanged");
  assert.not.ok(fs.existsSync(path.join(B, '.walnut', 'versions', 'refs', 'versions', vL.id)), 'B never fetched the losing version');

  // rollback
  const back = await activateAndFollow(['--previous'], vk1);
  assert.equal(pick(back, ['active', 'previous', 'changed', 'remote']), { active: vk1.id, previous: vk4.id, changed: true, remote: 'origin' });
  const pb = (await remotePointer(kit))!;
  assert.equal([pb.version, pb.previous], [vk1.id, vk4.id], 'the remote pointer is back at the previous version');
  const trees = fs.readdirSync(co).filter((n) => /^[0-9a-f]{40}$/.test(n));
  assert.ok(trees.includes(vk1.id) && trees.includes(vk4.id) && trees.length <= 3, `trees: current, previous, at most one spare: ${trees}`);

  // a failing health check: nothing uploaded, the pointer untouched, B untouched
  const v5 = makeV(A, companies(2, { v: 5 }, 4));
  ok(['config', 'set', 'activate.check', 'echo "schema: c4 lacks a city" >&2; exit 7'], A);
  const before = await versionsSnapshot(kit);
  coBefore = await checkoutState(co);
  const bad = wrun(kit, ['activate', v5.id, '--remote', 'origin'], A);
  assert.is(bad.code, 1, bad.stderr);
  assert.is(bad.stdout, '');
  assert.is(bad.stderr, `error: version ${short(v5.id)} failed its health check; not activated: the check command exited with 7: schema: c4 lacks a city\nhint: see the command in config activate.check\n`);
  assert.equal(await versionsSnapshot(kit), before, 'nothing on the remote changed: no manifest, no pack, the same pointer');
  ok(['config', 'set', 'activate.check', 'true'], A);

  // killed after the upload: the old pointer, byte for byte; the upload unreferenced; the rerun only swaps
  pointerBytes = (await kit.get('versions/active'))!;
  const c1 = wrun(kit, ['activate', v5.id, '--remote', 'origin'], A, { WALNUT_CRASH_AT: 'activate:after-upload' });
  assert.is(c1.code, 128, `killed at activate:after-upload: ${c1.stderr}`);
  assert.ok((await kit.get('versions/active'))!.equals(pointerBytes), 'the old pointer, byte for byte');
  await wholePointer(kit, 'after-upload');
  assert.ok(await kit.get(`versions/v/${v5.id}.json`), 'the upload was made, in isolation');
  await sleep(300);
  assert.is(await checkoutState(co), coBefore, "B's checkout is unchanged");
  const re1 = await activateAndFollow([v5.id], v5);
  assert.equal(pick(re1, ['active', 'previous', 'changed', 'upload']), { active: v5.id, previous: vk1.id, changed: true, upload: { uploaded: false, objects: 0, bytes: 0 } }, 'the rerun finds the upload complete and only swaps the pointer');

  // killed after the switch: the new pointer, whole; B follows it; the rerun changes nothing
  const v6 = makeV(A, companies(1, { v: 6 }, 6));
  const crashed = wasync(kit, ['activate', v6.id, '--remote', 'origin'], A, { WALNUT_CRASH_AT: 'activate:after-switch' });
  report.lags.push(await followLag(kit, co, v6.id));
  const c2 = await crashed;
  assert.is(c2.code, 128, `killed at activate:after-switch: ${c2.stderr}`);
  const p6 = await wholePointer(kit, 'after-switch');
  assert.equal([p6.version, p6.previous], [v6.id, v5.id]);
  sameFiles(checkedOut(co), v6.files, 'B follows the version the killed activation switched to');
  const re2 = wok(kit, ['activate', v6.id, '--remote', 'origin'], A);
  assert.is(re2.stderr, `version ${short(v6.id)} is already active on origin\n`);

  await sleep(300);
  assert.is(follower.exitCode, null, `still following: ${ferr.text}`);
  follower.kill('SIGTERM');
  assert.equal(await exitedWithin(follower, 20_000, 'the follower after SIGTERM'), { code: 0, signal: null }, `SIGTERM stops the follower cleanly:\n${ferr.text}`);
  assert.is(currentOf(co), v6.id);
  assert.equal(fs.readdirSync(co).filter((n) => n.startsWith('.build-') || n.startsWith('.current-')), [], 'no temporary entry left');

  // pull on B (not following any more) fetches the active version; then no remote is needed
  let last = v6;
  if (pull) {
    const v7 = makeV(A, companies(1, { v: 7 }, 7));
    wok(kit, ['activate', v7.id, '--remote', 'origin'], A);
    const pulled = JSON.parse(wok(kit, ['pull', '--json'], B).stdout);
    assert.ok(pulled.active?.fetched && pulled.active.packs >= 1 && pulled.active.bytes > 0, `pull fetched the active version: ${JSON.stringify(pulled.active)}`);
    assert.is(pulled.active.version, v7.id);
    assert.equal(JSON.parse(wok(kit, ['pull', '--json'], B).stdout).active, { version: v7.id, fetched: false, packs: 0, bytes: 0 }, 'a second pull fetches nothing');
    assert.not.ok(fs.existsSync(path.join(B, '.walnut', 'active')), 'pull does not change the local pointer');
    const restore = offline?.();
    try {
      const co2 = path.join(tmpDir(), 'co2');
      // no --remote, no credentials: only B's own store
      const r = ok(['checkout', v7.id.slice(0, 8), co2], B);
      assert.is(r.stdout, `${co2}/current -> ${v7.id}\n`);
      sameFiles(checkedOut(co2), v7.files, "B's checkout of the pulled version");
      ok(['activate', v7.id], B);
      assert.is(JSON.parse(fs.readFileSync(path.join(B, '.walnut', 'active'), 'utf8')).version, v7.id);
    } finally {
      restore?.();
    }
    last = v7;
  }

  // L again: its upload is complete, only the pointer is swapped; then L rolls back to a version it never had
  ok(['config', 'set', 'activate.check', 'true'], L);
  const again = JSON.parse(wok(kit, ['activate', vL.id, '--remote', 'origin', '--json'], L).stdout);
  assert.equal(pick(again, ['active', 'previous', 'changed', 'upload']), { active: vL.id, previous: last.id, changed: true, upload: { uploaded: false, objects: 0, bytes: 0 } });
  assert.is(wok(kit, ['activate', '--previous', '--remote', 'origin'], L).stdout, last.id + '\n');
  const pl = (await remotePointer(kit))!;
  assert.equal([pl.version, pl.previous, pl.node], [last.id, vL.id, 'pi-03']);

  // last, B's stderr while it followed: one status line per switch (and per spare brought up to date), nothing else
  const errLines = ferr.text.trim().split('\n');
  assert.equal(errLines.filter((l) => !/^checked out [0-9a-f]{12} in \d+ ms /.test(l) && !/^spare tree brought up to [0-9a-f]{12} \(\d+ written, \d+ removed\)$/.test(l)), [`following the active version of origin into ${co} (Ctrl-C to stop)`], `only status lines on the follower's stderr:\n${ferr.text}`);
  assert.is(errLines.filter((l) => l.startsWith('checked out ')).length, 6, `one status line per switch (v1, k1, k4, rollback, v5, v6):\n${ferr.text}`);
  return report;
}

/**
 * The activation race: `n` data directories activate different versions on
 * the same remote at the same moment, `rounds` times. A barrier in the health
 * check (activate.check) holds every contender until all have read the
 * pointer, so each round is a real race for the same pointer: exactly one
 * wins; the others exit 3 with EACTIVECHANGED naming the winner, and the
 * remote pointer names the winner.
 */
export async function activationRace(kit: Kit, { n = 3, rounds = 3 } = {}): Promise<void> {
  const nodes = Array.from({ length: n }, (_, i) => `pi-0${i + 1}`);
  const dirs = nodes.map((node) => machine(kit, node));
  const barrier = 'touch "$BARRIER/$WALNUT_VERSION"; i=0; while [ "$(ls "$BARRIER" | wc -l)" -lt "$N" ]; do i=$((i+1)); [ $i -gt 1500 ] && exit 9; sleep 0.01; done';
  for (const d of dirs) ok(['config', 'set', 'activate.check', barrier], d);
  let previous: string | null = null;
  for (let round = 0; round < rounds; round++) {
    // each machine makes its own version (different content, so different ids)
    for (const [i, d] of dirs.entries()) writeEntities(d, { [`companies/${nodes[i]}`]: entity({ name: nodes[i], round }), 'companies/shared': entity({ by: nodes[i], round }) });
    const made = await Promise.all(dirs.map((d) => runAsync(['version', 'create', '--record'], d)));
    const ids = made.map((r) => (assert.is(r.code, 0, r.stderr), r.stdout.trim()));
    assert.is(new Set(ids).size, n, 'different versions');
    const bar = tmpDir('walnut-barrier-');
    cleanups.push(() => { for (let i = 0; i < n; i++) fs.writeFileSync(path.join(bar, `release-${i}`), ''); });
    const json = round !== 1; // round 1 checks the text of the message
    const runs = await Promise.all(dirs.map((d, i) => wasync(kit, ['activate', ids[i], '--remote', 'origin', ...(json ? ['--json'] : [])], d, { BARRIER: bar, N: String(n) })));
    const won = runs.flatMap((r, i) => (r.code === 0 ? [i] : []));
    assert.is(won.length, 1, `round ${round}: exactly one activation wins:\n${runs.map((r, i) => `${nodes[i]}: exit ${r.code} ${r.stderr}`).join('\n')}`);
    const w = won[0];
    const winner = ids[w];
    for (const [i, r] of runs.entries()) {
      if (i === w) {
        if (json) assert.equal(pick(JSON.parse(r.stdout), ['active', 'previous', 'changed']), { active: winner, previous, changed: true });
        else assert.is(r.stdout, winner + '\n');
        continue;
      }
      assert.is(r.code, 3, `round ${round}: ${nodes[i]} lost and exits 3, not ${r.code}: ${r.stderr}`);
      assert.is(r.stdout, '', 'a loser prints nothing on stdout');
      const message = `the active version on remote 'origin' changed while activating (now ${short(winner)}, by ${nodes[w]}); ${short(ids[i])} was not activated`;
      if (json) {
        const err = jsonError(r);
        assert.is(err.code, 'EACTIVECHANGED');
        assert.is(err.message, message);
        assert.is(err.data.version, ids[i]);
        assert.is((err.data.active as Pointer).version, winner, 'the error names the winner');
      } else {
        assert.is(r.stderr, `error: ${message}\nhint: another machine activated a version at the same time: check walnut active and run again if yours should win\n`);
      }
    }
    const p = await wholePointer(kit, `round ${round}`);
    assert.equal([p.version, p.previous, p.node], [winner, previous, nodes[w]], `round ${round}: the pointer names the winner`);
    previous = winner;
  }
  assert.is(wok(kit, ['active', '--remote', 'origin'], dirs[0]).stdout.split(' ')[0], previous, 'the last winner is active');
}

// T0: older than T1 but the same day, so that C's segment sorts after A's and
// keys reach a clone from the journals alone in the order A wrote them (see
// the known limit on key order in formats/state.md)
const T0 = '2026-11-21T09:00:00Z';
const T1 = '2026-11-21T10:00:00Z';
const T2 = '2026-11-21T11:00:00Z';
const T3 = '2026-11-22T10:00:00Z';
const T4 = '2026-11-23T10:00:00Z';

function batch(records: { target: string; field: string; value: unknown }[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/**
 * `clone` from a remote with an active version: `startedFrom` names it, the
 * entity files are A's; records pushed after the version are replayed; an
 * older record arriving later does not override a newer value of the version
 * (nor resurrect an entity it deleted): the result is byte-identical to a
 * clone of the same journals with no version active.
 */
export async function cloneFromVersion(kit: Kit): Promise<void> {
  const A = machine(kit, 'pi-01');
  wok(kit, ['set', '--batch'], A, { WALNUT_NOW: T1 }, batch([
    { target: 'companies/acme', field: 'name', value: 'Acme' },
    { target: 'companies/acme', field: 'employees', value: 42 },
    { target: 'companies/beta', field: 'name', value: 'Beta' },
    { target: 'companies/gone', field: 'name', value: 'Gone' },
    { target: 'people/jane', field: 'name', value: 'Jane' },
  ]));
  wok(kit, ['set', 'companies/gone', '@deleted', 'true', '--json-value'], A, { WALNUT_NOW: T2 });
  const made = ok(['version', 'create'], A, { WALNUT_NOW: T2 });
  const v = made.stdout.trim();
  const atVersion = entityFiles(A);
  assert.not.ok(atVersion.has('companies/gone/_index.md'), 'the deleted entity has no file in the version');
  wok(kit, ['push'], A);
  wok(kit, ['activate', v, '--remote', 'origin'], A);

  // after the activation: a newer field on A, and older records of another machine
  wok(kit, ['set', 'companies/acme', 'city', 'Paris'], A, { WALNUT_NOW: T3 });
  wok(kit, ['push'], A);
  const C = machine(kit, 'pi-03');
  wok(kit, ['set', '--batch'], C, { WALNUT_NOW: T0 }, batch([
    { target: 'companies/acme', field: 'employees', value: 7 },
    { target: 'companies/gone', field: 'name', value: 'Zombie' },
    { target: 'companies/beta', field: 'name', value: 'Old Beta' },
  ]));
  wok(kit, ['set', 'people/jane', 'role', 'lead'], C, { WALNUT_NOW: T4 });
  wok(kit, ['push'], C);

  // the version alone: a clone that does not compact holds exactly A's files of the version
  const raw = path.join(tmpDir(), 'raw');
  const r0 = JSON.parse(wok(kit, ['clone', kit.url, raw, '--node', 'laptop-0', '--no-compact', '--json', ...kit.add], tmpDir()).stdout);
  assert.equal(r0.startedFrom, { version: v, entities: 3 });
  sameFiles(entityFiles(raw), atVersion, 'a clone starts from the version: the entity files A had');

  const X = path.join(tmpDir(), 'x');
  const rx = JSON.parse(wok(kit, ['clone', kit.url, X, '--node', 'laptop-1', '--json', ...kit.add], tmpDir()).stdout);
  assert.equal(rx.startedFrom, { version: v, entities: 3 }, 'startedFrom names the active version');
  assert.is(rx.received.segments, 4, 'two days of A, two of C');
  const file = (t: string) => fs.readFileSync(path.join(X, t, '_index.md'), 'utf8');
  assert.is(file('companies/acme'), '---\nname: Acme\nemployees: 42\ncity: Paris\n---\n', "A's newer field is replayed; C's older employees does not win");
  assert.is(file('companies/beta'), '---\nname: Beta\n---\n', "C's older name does not win");
  assert.is(file('people/jane'), '---\nname: Jane\nrole: lead\n---\n', "C's newer field is replayed");
  assert.not.ok(fs.existsSync(path.join(X, 'companies', 'gone')), "C's older record does not bring back the entity the version deleted");
  // the same journals without any version: byte-identical entity files
  const bare = await kit.withoutVersions();
  const Y = path.join(tmpDir(), 'y');
  const ry = JSON.parse(wok(kit, ['clone', bare.url, Y, '--node', 'laptop-2', '--json', ...bare.add], tmpDir()).stdout);
  assert.is(ry.startedFrom, null, 'no version active there');
  sameFiles(entityFiles(X), entityFiles(Y), 'the clone from the version equals the clone from the journals alone');
  // and A, once it has C's records, agrees too
  wok(kit, ['pull'], A);
  sameFiles(entityFiles(A), entityFiles(Y), "A's own files after it pulled C's records");
}

/**
 * Remote pruning with versions.keep = 3: after more activations than that,
 * the remote keeps exactly the active, the previous and the newest up to 3
 * manifests; a pack no kept manifest names is deleted, none a kept one names
 * is, and every kept version can still be checked out from the remote.
 */
export async function remotePruning(kit: Kit): Promise<void> {
  const A = machine(kit, 'pi-01');
  const C = machine(kit, 'pi-03');
  const B = machine(kit, 'pi-02');
  // versions.keep of the activating machine applies (what `walnut config set versions.keep 3` writes)
  for (const d of [A, C]) fs.appendFileSync(path.join(d, '.walnut', 'config'), '[versions]\n\tkeep = 3\n');
  const activate = (data: string, id: string) => JSON.parse(wok(kit, ['activate', id, '--remote', 'origin', '--json'], data).stdout);
  const namedPacks = async () => {
    const named = new Set<string>();
    for (const id of await manifests(kit)) for (const p of JSON.parse((await kit.get(`versions/v/${id}.json`))!.toString()).packs as string[]) named.add(p);
    return [...named].flatMap((p) => [`${p}.idx`, `${p}.pack`]).sort();
  };
  // C's version first: it shares nothing with A's and is uploaded as a pack of its own
  const vc = makeV(C, { 'people/c': entity({ name: 'C' }) });
  activate(C, vc.id);
  const [cPack] = JSON.parse((await kit.get(`versions/v/${vc.id}.json`))!.toString()).packs as string[];
  const v: Made[] = [];
  const expected = [[vc], [vc, 0], [vc, 0, 1], [2, 1, 0]] as const;
  for (let i = 0; i < 3; i++) {
    v.push(makeV(A, companies(i === 0 ? 4 : 1, { v: i + 1 }, i)));
    const doc = activate(A, v[i].id);
    const want = expected[i + 1].map((x) => (typeof x === 'number' ? v[x].id : x.id));
    assert.equal(await manifests(kit), sorted(want), `after A's activation ${i + 1}: the active, previous and newest, at most 3`);
    assert.is(doc.pruned.length, i === 2 ? 1 : 0);
  }
  assert.not.ok((await packsOn(kit)).includes(`${cPack}.pack`), "the pruned version's own pack is deleted");
  assert.equal(await packsOn(kit), await namedPacks(), 'exactly the packs the kept manifests name');
  // C activates its version again (pruned there, so uploaded again): kept are vc (active), v3 (previous), v2 (newest)
  const doc = activate(C, vc.id);
  assert.equal(doc.pruned, [v[0].id], 'the oldest of A\'s is pruned');
  assert.is(doc.upload.uploaded, true, 'the pruned version is uploaded again');
  assert.equal(await manifests(kit), sorted([vc.id, v[2].id, v[1].id]), 'exactly the active, the previous and the newest');
  assert.equal(await packsOn(kit), await namedPacks(), 'no pack a kept manifest needs is gone, and no other pack is left');
  // B can check out every kept version, and not a pruned one
  const co = path.join(tmpDir(), 'co');
  for (const m of [vc, v[2], v[1]]) {
    wok(kit, ['checkout', m.id, co, '--remote', 'origin', '--grace', '0'], B);
    sameFiles(checkedOut(co), m.files, `B's checkout of kept ${short(m.id)}`);
  }
  const gone = wrun(kit, ['checkout', v[0].id, path.join(tmpDir(), 'co2'), '--remote', 'origin'], B);
  assert.is(gone.code, 1, gone.stderr);
  assert.is(gone.stderr, `error: ${kit.url} has no version ${short(v[0].id)}\nhint: it was pruned there: activate or fetch a newer one\n`);
}

/** Files of a data directory's version store that hold objects or refs. */
function storeContent(data: string): string[] {
  const gitdir = path.join(data, '.walnut', 'versions');
  const out: string[] = [];
  for (const sub of ['objects/pack', 'refs/versions']) {
    const d = path.join(gitdir, sub);
    if (fs.existsSync(d)) for (const n of fs.readdirSync(d)) out.push(`${sub}/${n}`);
  }
  return out.sort();
}

/**
 * A manifest naming a pack whose bytes were tampered with (one byte flipped;
 * or the bytes of another valid pack): the fetch fails with EBADPACK and a
 * clear message, and nothing is installed; once the bytes are right again,
 * the fetch works.
 */
export async function tamperedPack(kit: Kit): Promise<void> {
  const A = machine(kit, 'pi-01');
  const B = machine(kit, 'pi-02');
  makeV(A, companies(8, { v: 1 }));
  const v2 = makeV(A, companies(8, { v: 2 }));
  wok(kit, ['activate', v2.id, '--remote', 'origin'], A);
  const [pack] = JSON.parse((await kit.get(`versions/v/${v2.id}.json`))!.toString()).packs as string[];
  const key = `versions/packs/${pack}.pack`;
  const good = (await kit.get(key))!;
  const goodIdx = (await kit.get(`versions/packs/${pack}.idx`))!;
  const co = path.join(tmpDir(), 'co');
  const message = `error: ${pack} from ${kit.url} is damaged (its checksums do not match)\nhint: fetch again; if it stays damaged, activate the version again from the machine that made it\n`;

  // one byte flipped in the middle of the compressed objects
  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)] ^= 0x40;
  await kit.put(key, flipped);
  const r1 = wrun(kit, ['checkout', '--active', co, '--remote', 'origin'], B);
  assert.is(r1.code, 1, r1.stderr);
  assert.is(r1.stdout, '');
  assert.is(r1.stderr, message);
  assert.is(jsonError(wrun(kit, ['pull', '--json'], B)).code, 'EBADPACK', 'pull refuses it too');
  assert.equal(storeContent(B), [], 'nothing installed: no pack, no version ref');
  assert.is(currentOf(co), undefined, 'nothing checked out');

  // the bytes of another valid pack (A's own pack of its first version) under this name
  const packDir = path.join(A, '.walnut', 'versions', 'objects', 'pack');
  const other = fs.readdirSync(packDir).find((n) => n.endsWith('.pack') && n !== `${pack}.pack`)!.slice(0, -'.pack'.length);
  await kit.put(key, fs.readFileSync(path.join(packDir, `${other}.pack`)));
  await kit.put(`versions/packs/${pack}.idx`, fs.readFileSync(path.join(packDir, `${other}.idx`)));
  const r2 = wrun(kit, ['checkout', '--active', co, '--remote', 'origin'], B);
  assert.is(r2.code, 1, r2.stderr);
  assert.is(r2.stderr, message, 'a whole pack under the wrong name is refused');
  assert.equal(storeContent(B), [], 'nothing installed');

  // the right bytes again: the fetch works and gives A's files
  await kit.put(key, good);
  await kit.put(`versions/packs/${pack}.idx`, goodIdx);
  wok(kit, ['checkout', '--active', co, '--remote', 'origin'], B);
  sameFiles(checkedOut(co), v2.files, 'fetched once the pack is whole');
}

/**
 * A version whose tree holds a `..` collection and slug (crafted with the
 * pack writer, uploaded by hand, the pointer switched to it): checkout,
 * a following checkout and clone refuse it with EBADTREE and write nothing
 * outside (or inside) their folders.
 */
export async function hostileTree(kit: Kit): Promise<void> {
  const A = machine(kit, 'pi-01');
  const B = machine(kit, 'pi-02');
  const v1 = makeV(A, companies(3, { v: 1 }));
  wok(kit, ['activate', v1.id, '--remote', 'origin'], A);
  const co = path.join(tmpDir(), 'co');
  const follower = spawnTracked(['checkout', '--active', co, '--remote', 'origin', '--follow', '--interval', '100ms'], B, kit.env);
  const ferr = stderrOf(follower);
  await until('B follows v1', 20_000, () => (currentOf(co) === v1.id ? true : undefined));
  const coBefore = await checkoutState(co);

  // the crafted version: companies/acme (valid) and ../.. (escaping the checkout folder)
  const work = tmpDir('walnut-evil-');
  const writer = new PackWriter(work);
  const add = (type: 'blob' | 'tree' | 'commit', content: Buffer) => writer.add(type, content, objectId(type, content));
  const blob = add('blob', Buffer.from('---\nname: evil\n---\n'));
  const folder = add('tree', treeBytes([{ mode: MODE_FILE, name: '_index.md', oid: blob }]));
  const companiesTree = add('tree', treeBytes([{ mode: MODE_TREE, name: 'acme', oid: folder }]));
  const dotdot = add('tree', treeBytes([{ mode: MODE_TREE, name: '..', oid: folder }]));
  const checkpoint = add('blob', Buffer.from('{\n "version": 1,\n "generation": 1,\n "segments": {}\n}\n'));
  const meta = add('tree', treeBytes([{ mode: MODE_FILE, name: 'checkpoint', oid: checkpoint }]));
  const root = add('tree', treeBytes([
    { mode: MODE_TREE, name: 'companies', oid: companiesTree },
    { mode: MODE_TREE, name: '..', oid: dotdot },
    { mode: MODE_TREE, name: '.walnut', oid: meta },
  ]));
  const created = '2026-11-21T12:00:00.000Z';
  const evil = add('commit', commitBytes({ tree: root, parents: [], name: 'evil', email: 'evil@walnut', time: Date.parse(created) / 1000, message: `walnut version: 2 entities, generation 1\n\nWalnut-Node: evil\nWalnut-Created: ${created}\nWalnut-Entities: 2\nWalnut-Generation: 1\n` }));
  const name = writer.finish()!;
  await kit.put(`versions/packs/${name}.pack`, fs.readFileSync(path.join(work, `${name}.pack`)));
  await kit.put(`versions/packs/${name}.idx`, fs.readFileSync(path.join(work, `${name}.idx`)));
  await kit.put(`versions/v/${evil}.json`, Buffer.from(JSON.stringify({ format: 1, version: evil, parent: null, created, node: 'evil', entities: 2, generation: 1, packs: [name] }, null, 1) + '\n'));
  await kit.put('versions/active', Buffer.from(JSON.stringify({ version: evil, previous: v1.id, activated: created, node: 'evil' }, null, 1) + '\n'));

  const message = `version ${short(evil)} holds an entry that is not a valid <collection>/<slug>: "../.."`;
  const outside = (dir: string) => [path.join(dir, '_index.md'), path.join(path.dirname(dir), '_index.md'), path.join(path.dirname(path.dirname(dir)), '_index.md')].filter((f) => fs.existsSync(f));

  // the follower warns and keeps the version it has
  await until('the follower reports the bad tree', 20_000, () => (ferr.text.includes(message) ? true : undefined));
  await sleep(300);
  assert.is(await checkoutState(co), coBefore, 'the following checkout is unchanged');
  assert.equal(outside(co), [], 'nothing written outside the checkout folder');
  follower.kill('SIGTERM');
  assert.equal(await exitedWithin(follower, 20_000, 'the follower after SIGTERM'), { code: 0, signal: null }, ferr.text);

  const co2 = path.join(tmpDir(), 'co2');
  const r = wrun(kit, ['checkout', '--active', co2, '--remote', 'origin'], B);
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stderr, `error: ${message}\nhint: the version was not made by walnut or is damaged; do not check it out\n`);
  assert.is(jsonError(wrun(kit, ['checkout', '--active', co2, '--remote', 'origin', '--json'], B)).code, 'EBADTREE');
  assert.is(currentOf(co2), undefined);
  assert.equal(fs.existsSync(co2) ? fs.readdirSync(co2).filter((n) => !n.startsWith('.walnut-checkout')) : [], [], 'no tree made');
  assert.equal(outside(co2), [], 'nothing written outside the checkout folder');

  const parent = tmpDir();
  const X = path.join(parent, 'deep', 'x');
  const c = wrun(kit, ['clone', kit.url, X, '--node', 'laptop', '--json', ...kit.add], parent);
  assert.is(c.code, 1, `clone refuses the version: ${c.stdout}${c.stderr}`);
  assert.is(jsonError(c).code, 'EBADTREE');
  assert.equal(outside(X), [], 'clone wrote nothing outside its folder');
  assert.not.ok(fs.existsSync(path.join(X, 'companies')), 'clone wrote no entity file');
}

/**
 * A manifest of two packs, the second one damaged, fetched by a machine that
 * has neither: EBADPACK, and nothing installed (formats/remote.md, *Fetching
 * a version*: every pack is verified before any is installed).
 */
export async function tamperedSecondPack(kit: Kit): Promise<void> {
  const A = machine(kit, 'pi-01');
  const B = machine(kit, 'pi-02');
  const v1 = makeV(A, companies(4, { v: 1 }));
  wok(kit, ['activate', v1.id, '--remote', 'origin'], A);
  const v2 = makeV(A, companies(1, { v: 2 }));
  wok(kit, ['activate', v2.id, '--remote', 'origin'], A);
  const packs = JSON.parse((await kit.get(`versions/v/${v2.id}.json`))!.toString()).packs as string[];
  assert.is(packs.length, 2, 'v2 is uploaded as the packs of v1 plus one of its own');
  const key = `versions/packs/${packs[1]}.pack`;
  const good = (await kit.get(key))!;
  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)] ^= 0x40;
  await kit.put(key, flipped);
  const co = path.join(tmpDir(), 'co');
  const r = wrun(kit, ['checkout', '--active', co, '--remote', 'origin'], B);
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stderr, `error: ${packs[1]} from ${kit.url} is damaged (its checksums do not match)\nhint: fetch again; if it stays damaged, activate the version again from the machine that made it\n`);
  assert.equal(storeContent(B), [], `nothing installed when the second of two packs is damaged`);
}

/**
 * A pack whose checksums are right but whose objects are not what their ids
 * say (the bytes of companies/c0's blob replaced, the pack and index written
 * again, the manifest pointed at it): a version's id is the hash of its
 * content, so the fetch must refuse it (EBADPACK) rather than check out
 * other files under that id. `git fsck` reports such a pack as corrupt.
 */
export async function forgedObjects(kit: Kit): Promise<void> {
  const A = machine(kit, 'pi-01');
  const B = machine(kit, 'pi-02');
  const v = makeV(A, companies(3, { v: 1 }));
  wok(kit, ['activate', v.id, '--remote', 'origin'], A);
  // every object of the version, as the git CLI reads it from A's store
  const listing = git(A, ['rev-list', '--objects', v.id]).toString('utf8').trim().split('\n').map((l) => l.split(' ') as [string, string?]);
  const batch = git(A, ['cat-file', '--batch'], { input: listing.map(([oid]) => oid).join('\n') + '\n' });
  const work = tmpDir('walnut-forged-');
  const writer = new PackWriter(work);
  let pos = 0;
  for (const [oid, file] of listing) {
    const nl = batch.indexOf(10, pos);
    const [, type, size] = batch.toString('latin1', pos, nl).split(' ');
    let content = batch.subarray(nl + 1, nl + 1 + Number(size));
    pos = nl + 2 + Number(size);
    if (file === 'companies/c0/_index.md') content = Buffer.from('---\nname: FORGED\n---\n');
    writer.add(type as 'blob' | 'tree' | 'commit', content, oid);
  }
  const name = writer.finish()!;
  await kit.put(`versions/packs/${name}.pack`, fs.readFileSync(path.join(work, `${name}.pack`)));
  await kit.put(`versions/packs/${name}.idx`, fs.readFileSync(path.join(work, `${name}.idx`)));
  const manifest = JSON.parse((await kit.get(`versions/v/${v.id}.json`))!.toString());
  await kit.put(`versions/v/${v.id}.json`, Buffer.from(JSON.stringify({ ...manifest, packs: [name] }, null, 1) + '\n'));
  const co = path.join(tmpDir(), 'co');
  const r = wrun(kit, ['checkout', '--active', co, '--remote', 'origin', '--json'], B);
  const forged = currentOf(co) ? fs.readFileSync(path.join(co, 'current', 'companies', 'c0', '_index.md'), 'utf8') : undefined;
  assert.is(r.code, 1, `a pack whose objects do not match their ids is refused; got exit ${r.code}, companies/c0 checked out as ${JSON.stringify(forged)} under version ${short(v.id)}\n${r.stderr}`);
  assert.is(jsonError(r).code, 'EBADPACK');
  assert.equal(storeContent(B), [], 'nothing installed');
}
