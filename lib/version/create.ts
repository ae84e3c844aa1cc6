/**
 * `walnut version create`: compact, then snapshot the entity files and the
 * checkpoint into the version store as a git tree and commit.
 *
 * The tree is built from the entity index, not by reading every file: the
 * index holds the blob id of each file as compaction left it, so only the
 * files whose blob the store lacks are read (and checked against the index).
 * Objects a version shares with the previous one are not written again: a
 * version that differs in 1 k entities costs about 3 k new objects (blob,
 * folder tree and stamps blob of each), the collection trees and a commit,
 * written as one pack. See formats/versions.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WalnutError } from '../errors.js';
import { blobId } from '../hash.js';
import type { Repo } from '../repo.js';
import { withLease } from '../lease.js';
import { readCheckpoint, EntityIndex, type FieldStamp, type IndexMark } from '../state.js';
import { readFileOrUndefined, writeFileAtomic } from '../fsutil.js';
import { PackWriter, objectId, folderTreeId, textBlobId, treeBytes, uniformTreeBytes, patchTreeBytes, sortNames, commitBytes, MODE_FILE, MODE_TREE, type TreeEntry } from './objects.js';
import { VersionStore, ENTITY_NAME, META_DIR, MAX_PACKS, type VersionInfo } from './store.js';

export const CREATE_CRASH_POINTS = ['version:after-pack', 'version:after-ref'] as const;

export interface CreateOptions {
  repo: Repo;
  /** wait this long (ms) for the compaction lease */
  wait?: number;
  stale?: number;
  /** the creation time (ms; default now) */
  now?: number;
  crashPoint?: (name: string) => void;
  /** build from every index entry even when only the changes since the head version would do */
  full?: boolean;
}

export interface CreateResult {
  version: VersionInfo;
  /** false when the newest version already held exactly this state (nothing written) */
  created: boolean;
  /** objects written */
  objects: number;
  /** entities whose file differs from the previous version */
  changed: number;
  /** `changes`: from the entities changed since the version built last; `full`: from every entity */
  built: 'changes' | 'full';
}

/** The stamps of an index entry as the index writes them (`field RS stamp RS vhash`, joined by US). */
export function stampsText(stamps: Map<string, FieldStamp>): string {
  return [...stamps].map(([f, s]) => f + '\x1e' + s.stamp + '\x1e' + s.vhash).join('\x1f');
}

/** Parse a stamps blob back into the index's map. */
export function parseStamps(text: string): Map<string, FieldStamp> {
  const out = new Map<string, FieldStamp>();
  if (!text) return out;
  for (const triple of text.split('\x1f')) {
    const [field, stamp, vhash] = triple.split('\x1e');
    if (field && vhash !== undefined) out.set(field, { stamp, vhash });
  }
  return out;
}

/** The tree of an entity folder holding only `_index.md`. */
export function folderTree(blob: string): Buffer {
  return treeBytes([{ mode: MODE_FILE, name: ENTITY_NAME, oid: blob }]);
}

/**
 * Build a version from the compacted state. The caller compacts first; this
 * takes the compaction lease so that no compaction runs while the index is read.
 *
 * @returns the version, and whether a new one was written
 * @throws WalnutError `EFILECHANGED` when an entity file changed since compaction (run again)
 * @example const { version } = await createVersion({ repo })
 */
export async function createVersion(options: CreateOptions): Promise<CreateResult> {
  const { repo } = options;
  return withLease(repo, 'compact', { wait: options.wait ?? 0, stale: options.stale }, async () => {
    const store = await VersionStore.open(repo);
    try {
      return build(repo, store, options);
    } finally {
      store.close();
    }
  });
}

/** What `build` and `patch` produce: the collection trees and counts (objects go into the pack). */
interface Built {
  /** collection → tree of its entity folders (only collections with live entities) */
  collections: TreeEntry[];
  /** collection → tree of its stamps files */
  stampEntries: TreeEntry[];
  entities: number;
  /** entities whose file differs from the previous version */
  changed: number;
}

type Put = (type: 'blob' | 'tree' | 'commit', content: Buffer, oid?: string) => string;

/** Where new objects go: `put` adds one unless the store or the pack holds it. */
interface Out {
  put: Put;
  has(oid: string): boolean;
}

/** Where the index stood when the head version was built (`<store>/walnut-build`). */
interface BuildMark {
  version: 1;
  /** the version built */
  id: string;
  /** the checkpoint generation it was built at */
  generation: number;
  index: IndexMark;
}

const BUILD_MARK = 'walnut-build';

function build(repo: Repo, store: VersionStore, options: CreateOptions): CreateResult {
  const cp = readCheckpoint(repo);
  const index = EntityIndex.load(repo, cp.generation);
  try {
    const parent = store.head();
    const mark = index.mark();
    // Only what changed since the head version, when the head was built here
    // from this very index (same file, only appended to since): the result is
    // the tree a full build would give (tested).
    const last = parent && !options.full ? readBuildMark(store) : undefined;
    const since = last && last.id === parent && last.generation <= cp.generation ? index.changedSince(last.index) : undefined;
    const pack = new PackWriter(store.packDir);
    try {
      const has = (oid: string) => pack.holds(oid) || store.has(oid);
      const put: Put = (type, content, oid = objectId(type, content)) => {
        if (!has(oid)) pack.add(type, content, oid);
        return oid;
      };
      const out: Out = { put, has };
      const parentTrees = parent ? rootTrees(store, parent) : undefined;
      const fromChanges = since !== undefined && parentTrees !== undefined;
      const built = fromChanges ? patch(repo, store, index, since, parentTrees, store.info(parent!).entities, out) : fullBuild(repo, store, index, parentTrees, out);
      const result = { ...commit(repo, store, options, cp, parent, parentTrees, built, pack, put), built: fromChanges ? ('changes' as const) : ('full' as const) };
      if (mark) writeBuildMark(store, { version: 1, id: result.version.id, generation: cp.generation, index: mark });
      return result;
    } catch (err) {
      pack.abort();
      throw err;
    }
  } finally {
    index.close();
  }
}

/** The root of a version: its collection trees and its stamps trees. */
interface RootTrees {
  tree: string;
  collections: TreeEntry[];
  stampsTree?: string;
  stamps: TreeEntry[];
}

function rootTrees(store: VersionStore, id: string): RootTrees {
  const tree = store.readCommit(id).tree;
  const collections: TreeEntry[] = [];
  let stampsTree: string | undefined;
  let stamps: TreeEntry[] = [];
  for (const e of store.readTree(tree)) {
    if (e.mode !== MODE_TREE) continue;
    if (e.name === META_DIR) {
      stampsTree = store.readTree(e.oid).find((x) => x.name === 'stamps')?.oid;
      stamps = stampsTree ? store.readTree(stampsTree) : [];
    } else collections.push(e);
  }
  return { tree, collections, stampsTree, stamps };
}

/** The folder tree of an entity (and its blob, read from its file) into the pack unless the store or the pack has it. */
function putEntity(repo: Repo, out: Out, collection: string, slug: string, blob: string, folderOid = folderTreeId(blob)): string {
  if (!out.has(folderOid)) {
    if (!out.has(blob)) out.put('blob', entityContent(repo, collection, slug, blob), blob);
    out.put('tree', folderTree(blob), folderOid);
  }
  return folderOid;
}

/**
 * A version from the previous one and the entities whose index line was
 * appended since it was built: the collection trees of the previous version
 * patched (O(changed · log n) lookups plus one copy of each changed collection's tree).
 */
function patch(repo: Repo, store: VersionStore, index: EntityIndex, targets: string[], prev: RootTrees, prevEntities: number, out: Out): Built {
  const { put } = out;
  const folders = new Map(prev.collections.map((e) => [e.name, e.oid]));
  const stamps = new Map(prev.stamps.map((e) => [e.name, e.oid]));
  const byCollection = new Map<string, string[]>();
  for (const target of targets) {
    const slash = target.indexOf('/');
    const c = target.slice(0, slash);
    let slugs = byCollection.get(c);
    if (!slugs) byCollection.set(c, (slugs = []));
    slugs.push(target.slice(slash + 1));
  }
  let entities = prevEntities;
  let changed = 0;
  for (const [collection, slugs] of byCollection) {
    const folderChanges: Array<[string, string | undefined]> = [];
    const stampChanges: Array<[string, string | undefined]> = [];
    for (const slug of slugs) {
      const e = index.get(`${collection}/${slug}`);
      if (!e) continue;
      const text = stampsText(e.stamps);
      stampChanges.push([slug, put('blob', Buffer.from(text, 'utf8'), textBlobId(text))]);
      folderChanges.push([slug, e.blob ? putEntity(repo, out, collection, slug, e.blob) : undefined]);
    }
    const before = folders.get(collection);
    const f = patchTreeBytes(before ? store.read(before).content : Buffer.alloc(0), folderChanges, MODE_TREE);
    entities += f.added - f.removed;
    changed += f.added + f.changed + f.removed;
    if (f.bytes.length > 0) folders.set(collection, put('tree', f.bytes));
    else folders.delete(collection);
    const stampsBefore = stamps.get(collection);
    stamps.set(collection, put('tree', patchTreeBytes(stampsBefore ? store.read(stampsBefore).content : Buffer.alloc(0), stampChanges, MODE_FILE).bytes));
  }
  const entries = (m: Map<string, string>) => [...m].map(([name, oid]): TreeEntry => ({ mode: MODE_TREE, name, oid }));
  return { collections: entries(folders), stampEntries: entries(stamps), entities, changed };
}

/** A version from every index entry (the first version, or when the index was rewritten since the last). */
function fullBuild(repo: Repo, store: VersionStore, index: EntityIndex, parentTrees: RootTrees | undefined, out: Out): Built {
  const { put } = out;
  const prev = parentTrees ? previousTrees(store, parentTrees) : undefined;
  let entities = 0;
  let changed = 0;
  const collections: TreeEntry[] = [];
  const stampEntries: TreeEntry[] = [];
  /** live entities the previous version had too (to count the ones gone since) */
  let presentInPrev = 0;

  // One entity at a time (the index streams them sorted by target): only
  // names and ids are kept, per collection, never the entries themselves.
  let current: { collection: string; slugs: string[]; stampOids: string[]; folders: Map<string, string> } | undefined;
  const finishCollection = () => {
    if (!current) return;
    const { collection, slugs, stampOids, folders } = current;
    if (folders.size > 0) {
      const names = sortNames([...folders.keys()], MODE_TREE);
      collections.push({ mode: MODE_TREE, name: collection, oid: put('tree', uniformTreeBytes(names, names.map((n) => folders.get(n)!), MODE_TREE)) });
    }
    // the stamps tree holds files: sorted by name (byte order)
    const order = sortNames(slugs.map((x, i) => `${x}\x00${i}`), MODE_FILE).map((k) => Number(k.slice(k.indexOf('\x00') + 1)));
    stampEntries.push({ mode: MODE_TREE, name: collection, oid: put('tree', uniformTreeBytes(order.map((i) => slugs[i]), order.map((i) => stampOids[i]), MODE_FILE)) });
    current = undefined;
  };
  const seen = new Set<string>();
  for (const [target, e] of index.entries()) {
    const slash = target.indexOf('/');
    const collection = target.slice(0, slash);
    const slug = target.slice(slash + 1);
    if (current?.collection !== collection) {
      // entries come sorted by target; a collection seen before would split its tree
      if (seen.has(collection)) throw new Error(`index entries out of order at ${target}`);
      seen.add(collection);
      finishCollection();
      current = { collection, slugs: [], stampOids: [], folders: new Map() };
    }
    // deleted entities keep their stamps (an older record must still lose), but have no folder
    const stamps = stampsText(e.stamps);
    const stampOid = textBlobId(stamps);
    if (prev?.stamps.get(collection)?.get(slug) !== stampOid) put('blob', Buffer.from(stamps, 'utf8'), stampOid);
    current.slugs.push(slug);
    current.stampOids.push(stampOid);
    if (!e.blob) continue;
    const before = prev?.folders.get(collection)?.get(slug);
    if (before !== undefined) presentInPrev++;
    const folderOid = folderTreeId(e.blob);
    if (before !== folderOid) {
      changed++;
      putEntity(repo, out, collection, slug, e.blob, folderOid);
    }
    current.folders.set(slug, folderOid);
    entities++;
  }
  finishCollection();
  if (prev) {
    // entities gone since the previous version
    let prevLive = 0;
    for (const slugs of prev.folders.values()) prevLive += slugs.size;
    changed += prevLive - presentInPrev;
  }
  return { collections, stampEntries, entities, changed };
}

/** Write the version's commit (unless it holds exactly the head's state) and point the head at it. */
function commit(repo: Repo, store: VersionStore, options: CreateOptions, cp: ReturnType<typeof readCheckpoint>, parent: string | undefined, prev: RootTrees | undefined, built: Built, pack: PackWriter, put: Put): Omit<CreateResult, 'built'> {
  const { entities, changed } = built;
  const stampsTree = put('tree', treeBytes(built.stampEntries));
  if (parent && prev && prev.stampsTree === stampsTree && sameEntries(prev.collections, built.collections)) {
    // only the checkpoint moved (e.g. a sync_checkpoint record): the data set is the same
    pack.abort();
    return { version: store.info(parent), created: false, objects: 0, changed: 0 };
  }
  const checkpoint = Buffer.from(JSON.stringify({ version: 1, generation: cp.generation, high: cp.high, segments: cp.segments, deferred: cp.deferred }, null, 1) + '\n', 'utf8');
  const meta = treeBytes([
    { mode: MODE_FILE, name: 'checkpoint', oid: put('blob', checkpoint) },
    { mode: MODE_TREE, name: 'stamps', oid: stampsTree },
  ]);
  const rootEntries = [...built.collections, { mode: MODE_TREE, name: META_DIR, oid: put('tree', meta) } as TreeEntry];
  const tree = put('tree', treeBytes(rootEntries));
  if (parent && prev?.tree === tree) {
    pack.abort();
    return { version: store.info(parent), created: false, objects: 0, changed: 0 };
  }
  const now = options.now ?? Date.now();
  const created = new Date(now).toISOString();
  const message = [
    `walnut version: ${entities} entit${entities === 1 ? 'y' : 'ies'}, generation ${cp.generation}`,
    '',
    `Walnut-Node: ${repo.node}`,
    `Walnut-Created: ${created}`,
    `Walnut-Entities: ${entities}`,
    `Walnut-Generation: ${cp.generation}`,
    '',
  ].join('\n');
  const id = put('commit', commitBytes({ tree, parents: parent ? [parent] : [], name: repo.node, email: `${repo.node}@walnut`, time: Math.floor(now / 1000), message }));
  const objects = pack.count;
  pack.finish();
  options.crashPoint?.('version:after-pack');
  store.refresh();
  store.addVersion(id);
  store.setHead(id);
  options.crashPoint?.('version:after-ref');
  if (store.packList().length > MAX_PACKS) store.repack();
  return { version: store.info(id), created: true, objects, changed };
}

function readBuildMark(store: VersionStore): BuildMark | undefined {
  const text = readFileOrUndefined(path.join(store.gitdir, BUILD_MARK));
  if (!text) return undefined;
  try {
    const m = JSON.parse(text) as BuildMark;
    return m?.version === 1 && typeof m.id === 'string' && typeof m.generation === 'number' && m.index && typeof m.index.end === 'number' ? m : undefined;
  } catch {
    return undefined; // a damaged mark only costs a full build
  }
}

function writeBuildMark(store: VersionStore, mark: BuildMark): void {
  writeFileAtomic(path.join(store.gitdir, BUILD_MARK), JSON.stringify(mark) + '\n');
}

/** The previous version's folder and stamps trees by collection and slug. */
function previousTrees(store: VersionStore, roots: RootTrees): { folders: Map<string, Map<string, string>>; stamps: Map<string, Map<string, string>> } {
  const byName = (entries: TreeEntry[]) => new Map(entries.map((c) => [c.name, new Map(store.readTree(c.oid).map((x) => [x.name, x.oid]))]));
  return { folders: byName(roots.collections), stamps: byName(roots.stamps) };
}

/** The same collection trees (names and ids), in any order. */
function sameEntries(a: TreeEntry[], b: TreeEntry[]): boolean {
  const key = (l: TreeEntry[]) => l.map((e) => `${e.name} ${e.oid}`).sort().join('\n');
  return key(a) === key(b);
}

/** The bytes of an entity file, which must still be what the index says compaction left. */
function entityContent(repo: Repo, collection: string, slug: string, blob: string): Buffer {
  const file = path.join(collection, slug, ENTITY_NAME);
  let content: Buffer;
  try {
    content = fs.readFileSync(path.join(repo.root, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw changedError(file, 'it is gone');
  }
  if (blobId(content) !== blob) throw changedError(file, 'it differs from what compaction wrote or recorded');
  return content;
}

function changedError(file: string, what: string): WalnutError {
  return new WalnutError('EFILECHANGED', `'${file}' cannot go into a version: ${what}`, {
    data: { file },
    hints: [
      'if it was edited just now, run walnut version create again (it records the edit first)',
      'if it stays so, the edit could not be recorded: run walnut record to see why, fix the file, then create the version',
    ],
  });
}
