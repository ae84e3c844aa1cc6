/**
 * Versions on a remote (directory or S3), beside the journals:
 *
 *     versions/active                     the active pointer (JSON), switched by compare-and-swap
 *     versions/v/<id>.json                a version's manifest: the packs that hold its objects
 *     versions/packs/pack-<sha>.pack      packs, as the version store writes them
 *     versions/packs/pack-<sha>.idx
 *
 * A version is uploaded in isolation (manifest, then packs) and only becomes
 * visible to readers when the active pointer names it. See formats/remote.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { WalnutError } from '../errors.js';
import { writeFileAtomic, syncWritten } from '../fsutil.js';
import type { Store } from '../remote/index.js';
import type { Repo } from '../repo.js';
import { readCheckpoint, writeCheckpoint, tailHash, EntityIndex, type Checkpoint } from '../state.js';
import { checkTarget } from '../../formats/usv.js';
import { PackWriter, PackFile, objectId, MODE_TREE } from './objects.js';
import { VersionStore, OID, META_DIR, ENTITY_NAME } from './store.js';
import { parseStamps } from './create.js';

export const ACTIVE_KEY = 'versions/active';
export const MANIFEST_PREFIX = 'versions/v/';
export const PACK_PREFIX = 'versions/packs/';
/** a manifest lists at most this many packs; the next upload sends one whole pack instead */
export const MAX_PACK_CHAIN = 16;

/** The active pointer, locally (`.walnut/active`) and on a remote (`versions/active`). */
export interface ActivePointer {
  version: string;
  previous: string | null;
  /** ISO time */
  activated: string;
  /** node that activated it */
  node: string;
}

export interface Manifest {
  format: 1;
  version: string;
  parent: string | null;
  created: string;
  node: string;
  entities: number;
  generation: number;
  /** packs holding every object of the version (with those of earlier versions) */
  packs: string[];
}

export const manifestKey = (id: string) => `${MANIFEST_PREFIX}${id}.json`;
export const packKey = (name: string, ext: 'pack' | 'idx') => `${PACK_PREFIX}${name}.${ext}`;

/** Parse a pointer's text. @throws WalnutError `EPOINTER` */
export function parsePointer(body: Buffer | string, where: string): ActivePointer {
  try {
    const p = JSON.parse(body.toString()) as ActivePointer;
    if (typeof p.version === 'string' && OID.test(p.version) && (p.previous === null || OID.test(p.previous))) return p;
  } catch {
    // reported below
  }
  throw new WalnutError('EPOINTER', `the active pointer ${where} is not valid JSON naming a version`, {
    data: { where },
    hints: ['activate a version again (walnut activate <version>) to replace it'],
  });
}

/** The remote's active pointer and its change token (both undefined when none was set). */
export async function readRemoteActive(remote: Store): Promise<{ pointer?: ActivePointer; tag?: string }> {
  const o = await remote.getObject(ACTIVE_KEY);
  if (!o) return {};
  return { pointer: parsePointer(o.body, `of ${remote.url}`), tag: o.tag };
}

/** Replace the remote's pointer only if it is still `tag` (absent when undefined). @returns false when it changed meanwhile */
export async function swapRemoteActive(remote: Store, tag: string | undefined, pointer: ActivePointer): Promise<boolean> {
  const body = Buffer.from(JSON.stringify(pointer, null, 1) + '\n');
  return (await remote.putObject(ACTIVE_KEY, body, tag === undefined ? { ifNoneMatch: true } : { ifMatch: tag })) !== undefined;
}

async function readManifest(remote: Store, id: string): Promise<Manifest | undefined> {
  const o = await remote.getObject(manifestKey(id));
  if (!o) return undefined;
  try {
    return JSON.parse(o.body.toString()) as Manifest;
  } catch {
    throw new WalnutError('EMANIFEST', `the manifest of version ${id.slice(0, 12)} on ${remote.url} is not valid JSON`, { data: { key: manifestKey(id) } });
  }
}

/** The object ids of version `id` that are not in version `base` (compared path by path). */
export function objectsSince(store: VersionStore, id: string, base?: string): string[] {
  const out: string[] = [id];
  const walk = (tree: string, baseTree: string | undefined) => {
    if (tree === baseTree) return;
    out.push(tree);
    const old = new Map(baseTree ? store.readTree(baseTree).map((e) => [e.name, e]) : []);
    for (const e of store.readTree(tree)) {
      const o = old.get(e.name);
      if (e.mode === MODE_TREE) walk(e.oid, o?.mode === MODE_TREE ? o.oid : undefined);
      else if (o?.oid !== e.oid) out.push(e.oid);
    }
  };
  walk(store.readCommit(id).tree, base ? store.readCommit(base).tree : undefined);
  return out;
}

export interface UploadResult {
  /** false when the remote already had the version */
  uploaded: boolean;
  objects: number;
  bytes: number;
}

/**
 * Upload a version's objects the remote lacks, as one pack, and its manifest.
 * Nothing refers to them until the active pointer does.
 */
export async function uploadVersion(store: VersionStore, remote: Store, id: string): Promise<UploadResult> {
  const keys = new Set(await remote.listKeys('versions/'));
  const existing = keys.has(manifestKey(id)) ? await readManifest(remote, id) : undefined;
  if (existing && existing.packs.every((p) => keys.has(packKey(p, 'pack')) && keys.has(packKey(p, 'idx')))) return { uploaded: false, objects: 0, bytes: 0 };

  // the base: a version the remote has and this store has too (the active one first)
  const { pointer } = await readRemoteActive(remote);
  const candidates = [pointer?.version, pointer?.previous, ...[...keys].filter((k) => k.startsWith(MANIFEST_PREFIX)).map((k) => k.slice(MANIFEST_PREFIX.length, -5))];
  let base: Manifest | undefined;
  for (const c of candidates) {
    if (!c || c === id || !OID.test(c) || !store.hasVersion(c)) continue;
    const m = await readManifest(remote, c);
    if (m && m.packs.length < MAX_PACK_CHAIN && m.packs.every((p) => keys.has(packKey(p, 'pack')))) {
      base = m;
      break;
    }
  }
  const oids = objectsSince(store, id, base?.version);
  const tmpDir = path.join(store.gitdir, 'upload');
  fs.rmSync(tmpDir, { recursive: true, force: true });
  const writer = new PackWriter(tmpDir);
  let name: string | undefined;
  try {
    for (const oid of oids) {
      const o = store.read(oid);
      writer.add(o.type, o.content, oid);
    }
    name = writer.finish()!;
    const info = store.info(id);
    const manifest: Manifest = { format: 1, version: id, parent: info.parent, created: info.created, node: info.node, entities: info.entities, generation: info.generation, packs: [...(base?.packs ?? []), name] };
    // the manifest first: a prune running meanwhile keeps the packs a manifest names
    await remote.putObject(manifestKey(id), Buffer.from(JSON.stringify(manifest, null, 1) + '\n'));
    const pack = fs.readFileSync(path.join(tmpDir, `${name}.pack`));
    const idx = fs.readFileSync(path.join(tmpDir, `${name}.idx`));
    await remote.putObject(packKey(name, 'pack'), pack, { ifNoneMatch: true });
    await remote.putObject(packKey(name, 'idx'), idx, { ifNoneMatch: true });
    return { uploaded: true, objects: oids.length, bytes: pack.length + idx.length };
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

export interface FetchResult {
  /** false when the store already had the version */
  fetched: boolean;
  packs: number;
  bytes: number;
}

/**
 * Bring a version of a remote into the local store: the packs its manifest
 * names that the store lacks, checked against their own checksums.
 * @throws WalnutError `ENOVERSION` (the remote does not have it), `EBADPACK`
 */
export async function fetchVersion(store: VersionStore, remote: Store, id: string): Promise<FetchResult> {
  if (store.hasVersion(id) && store.has(id)) return { fetched: false, packs: 0, bytes: 0 };
  const manifest = await readManifest(remote, id);
  if (!manifest) {
    throw new WalnutError('ENOVERSION', `${remote.url} has no version ${id.slice(0, 12)}`, { data: { url: remote.url, version: id }, hints: ['it was pruned there: activate or fetch a newer one'] });
  }
  let packs = 0;
  let bytes = 0;
  // every pack is fetched and checked (checksums, and each object against its id)
  // before any is installed: a damaged or forged pack leaves the store as it was
  const staged: { name: string; pack: Buffer; idx: Buffer }[] = [];
  for (const name of manifest.packs) {
    if (store.hasPack(name)) continue;
    const pack = await remote.getObject(packKey(name, 'pack'));
    const idx = await remote.getObject(packKey(name, 'idx'));
    if (!pack || !idx) {
      throw new WalnutError('EBADPACK', `${remote.url} lacks ${name} of version ${id.slice(0, 12)}`, { data: { url: remote.url, pack: name }, hints: ['the upload was cut short or the pack was pruned: activate the version again from the machine that made it'] });
    }
    checkPack(name, pack.body, idx.body, remote.url);
    checkObjects(store, name, pack.body, idx.body, remote.url);
    staged.push({ name, pack: pack.body, idx: idx.body });
    packs++;
    bytes += pack.body.length + idx.body.length;
  }
  for (const p of staged) installPack(store, p.name, p.pack, p.idx);
  store.refresh();
  if (!store.has(id)) {
    throw new WalnutError('EBADPACK', `the packs of version ${id.slice(0, 12)} on ${remote.url} do not hold its commit`, { data: { url: remote.url, version: id } });
  }
  store.addVersion(id);
  store.updateShallow();
  return { fetched: true, packs, bytes };
}

function checkPack(name: string, pack: Buffer, idx: Buffer, url: string): void {
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  const trailer = pack.subarray(pack.length - 20).toString('hex');
  const ok =
    pack.length > 32 &&
    pack.toString('latin1', 0, 4) === 'PACK' &&
    sha1(pack.subarray(0, pack.length - 20)) === trailer &&
    name === `pack-${trailer}` &&
    idx.length > 40 &&
    sha1(idx.subarray(0, idx.length - 20)) === idx.subarray(idx.length - 20).toString('hex') &&
    idx.subarray(idx.length - 40, idx.length - 20).toString('hex') === trailer;
  if (!ok) {
    throw new WalnutError('EBADPACK', `${name} from ${url} is damaged (its checksums do not match)`, { data: { url, pack: name }, hints: ['fetch again; if it stays damaged, activate the version again from the machine that made it'] });
  }
}

/** Every object of a pack must hash to the id its index gives it. */
function checkObjects(store: VersionStore, name: string, pack: Buffer, idx: Buffer, url: string): void {
  const dir = fs.mkdtempSync(path.join(store.gitdir, 'verify-'));
  try {
    fs.writeFileSync(path.join(dir, `${name}.pack`), pack);
    fs.writeFileSync(path.join(dir, `${name}.idx`), idx);
    let p: PackFile | undefined;
    try {
      p = PackFile.open(dir, name);
      let i = 0;
      for (const oid of p.oids()) {
        const o = p.read(i++);
        if (objectId(o.type, o.content) !== oid) {
          throw new WalnutError('EBADPACK', `${name} from ${url} is damaged: object ${oid} does not hold what its id says`, {
            data: { url, pack: name, oid },
            hints: ['do not use this remote until the pack is replaced; activate the version again from the machine that made it'],
          });
        }
      }
    } catch (err) {
      if (err instanceof WalnutError) throw err;
      throw new WalnutError('EBADPACK', `${name} from ${url} is damaged: ${(err as Error).message}`, { data: { url, pack: name } });
    } finally {
      p?.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function installPack(store: VersionStore, name: string, pack: Buffer, idx: Buffer): void {
  fs.mkdirSync(store.packDir, { recursive: true });
  writeFileAtomic(path.join(store.packDir, `${name}.pack`), pack);
  writeFileAtomic(path.join(store.packDir, `${name}.idx`), idx);
}

/**
 * Remove from a remote the versions that are neither active, previous, nor
 * among the newest `keep`, and the packs no remaining manifest names.
 * @returns the versions removed
 */
export async function pruneRemote(remote: Store, keep: number): Promise<string[]> {
  const keys = await remote.listKeys('versions/');
  const { pointer } = await readRemoteActive(remote);
  const manifests: Manifest[] = [];
  for (const k of keys) {
    if (!k.startsWith(MANIFEST_PREFIX) || !k.endsWith('.json')) continue;
    const m = await readManifest(remote, k.slice(MANIFEST_PREFIX.length, -5)).catch(() => undefined);
    if (m) manifests.push(m);
  }
  const keepIds = chooseKept(
    manifests.map((m) => ({ id: m.version, created: m.created })),
    [pointer?.version, pointer?.previous],
    keep,
  );
  const removed: string[] = [];
  const packsKept = new Set<string>();
  for (const m of manifests) {
    if (keepIds.has(m.version)) for (const p of m.packs) packsKept.add(p);
  }
  for (const m of manifests) {
    if (keepIds.has(m.version)) continue;
    await remote.deleteObject(manifestKey(m.version));
    removed.push(m.version);
  }
  for (const k of keys) {
    if (!k.startsWith(PACK_PREFIX)) continue;
    const name = k.slice(PACK_PREFIX.length).replace(/\.(pack|idx)$/, '');
    if (!packsKept.has(name)) await remote.deleteObject(k);
  }
  return removed;
}

/** The versions to keep: the pinned ones (active, previous), then the newest, up to `keep` in all. */
export function chooseKept(versions: { id: string; created: string }[], pinned: (string | null | undefined)[], keep: number): Set<string> {
  const out = new Set<string>();
  const known = new Set(versions.map((v) => v.id));
  for (const p of pinned) if (p && known.has(p)) out.add(p);
  const newest = [...versions].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  for (const v of newest) {
    if (out.size >= keep) break;
    out.add(v.id);
  }
  return out;
}


/**
 * `pull`: bring the remote's active version into the local store (objects
 * and a ref; the local active pointer is not changed).
 * @returns the active version and whether it was fetched now; undefined when the remote has none
 */
export async function fetchActiveVersion(repo: Repo, remote: Store): Promise<{ version: string; fetch: FetchResult } | undefined> {
  const { pointer } = await readRemoteActive(remote);
  if (!pointer) return undefined;
  const store = await VersionStore.open(repo);
  try {
    return { version: pointer.version, fetch: await fetchVersion(store, remote, pointer.version) };
  } finally {
    store.close();
  }
}

/**
 * `clone`: start a new data directory from the remote's active version: its
 * entity files, the index with its stamps, and its checkpoint (journal
 * segments only; `.walnut/gossip/` offsets belong to the machine that made
 * it). Compaction then replays only the records after the checkpoint; a
 * record the version already holds loses or ties against its stamp.
 * @returns the version, or undefined when the remote has none
 */
export async function bootstrapFromActive(repo: Repo, remote: Store): Promise<{ version: string; entities: number } | undefined> {
  const { pointer } = await readRemoteActive(remote);
  if (!pointer) return undefined;
  const store = await VersionStore.open(repo);
  try {
    await fetchVersion(store, remote, pointer.version);
    const id = pointer.version;
    const commit = store.readCommit(id);
    const root = store.readTree(commit.tree);
    const meta = root.find((e) => e.name === META_DIR);
    const metaTree = meta ? store.readTree(meta.oid) : [];
    const cpEntry = metaTree.find((e) => e.name === 'checkpoint');
    const stampsEntry = metaTree.find((e) => e.name === 'stamps');
    const index = EntityIndex.load(repo, 0);
    const written: string[] = [];
    let entities = 0;
    const stampsOf = new Map<string, Map<string, string>>();
    for (const c of stampsEntry ? store.readTree(stampsEntry.oid) : []) stampsOf.set(c.name, new Map(store.readTree(c.oid).map((e) => [e.name, e.oid])));
    const seen = new Set<string>();
    for (const [collection, folders] of store.listing(id)) {
      for (const e of folders) {
        const slug = e.name;
        const target = `${collection}/${slug}`;
        checkTarget(target);
        const blob = store.entityBlob(e.oid);
        if (!blob) continue;
        const folder = path.join(repo.root, collection, slug);
        fs.mkdirSync(folder, { recursive: true });
        const file = path.join(folder, ENTITY_NAME);
        const content = store.readBlob(blob);
        fs.writeFileSync(file, content);
        written.push(file);
        const st = fs.statSync(file);
        const sOid = stampsOf.get(collection)?.get(slug);
        index.set(target, { blob, size: st.size, mtimeMs: st.mtimeMs, stamps: parseStamps(sOid ? store.readBlob(sOid).toString('utf8') : ''), generation: 1 });
        seen.add(target);
        entities++;
      }
    }
    // deleted entities: their stamps only
    for (const [collection, slugs] of stampsOf) {
      for (const [slug, oid] of slugs) {
        const target = `${collection}/${slug}`;
        if (seen.has(target)) continue;
        checkTarget(target);
        index.set(target, { blob: '', size: 0, mtimeMs: 0, stamps: parseStamps(store.readBlob(oid).toString('utf8')), generation: 1 });
      }
    }
    syncWritten(repo.root, written);
    index.save();
    index.close();
    const built = cpEntry ? (JSON.parse(store.readBlob(cpEntry.oid).toString('utf8')) as Checkpoint) : undefined;
    const segments: Checkpoint['segments'] = {};
    for (const [k, v] of Object.entries(built?.segments ?? {})) if (k.startsWith('wal/')) segments[k] = v;
    writeCheckpoint(repo, { version: 1, generation: 1, high: built?.high, segments, deferred: built?.deferred });
    return { version: id, entities };
  } finally {
    store.close();
  }
}

/**
 * After a clone's journal fetch: drop the checkpoint entries of segments
 * that are shorter here than the version's machine had them, or differ
 * below the offset (they are then read from the start, which is harmless:
 * the stamps decide), so compaction does not report them as changed.
 */
export function reconcileCheckpoint(repo: Repo): string[] {
  const cp = readCheckpoint(repo);
  const dropped: string[] = [];
  for (const [seg, mark] of Object.entries(cp.segments)) {
    const file = path.join(repo.root, seg);
    let ok = false;
    try {
      ok = fs.statSync(file).size >= mark.offset && tailHash(file, mark.offset) === mark.tail;
    } catch {
      ok = false;
    }
    if (!ok) {
      delete cp.segments[seg];
      dropped.push(seg);
    }
  }
  if (dropped.length > 0) writeCheckpoint(repo, cp);
  return dropped;
}
