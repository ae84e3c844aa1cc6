/**
 * The version store: a bare git repository in `.walnut/versions/`.
 *
 * - objects: packs only (`objects/pack/pack-<sha>.{pack,idx}`), one per
 *   `version create`, per fetched version, or per repack (see objects.ts);
 * - `refs/versions/<id>`: one ref per version kept (its id is the commit id);
 * - `refs/heads/main` (HEAD): the newest version created here, so that
 *   `git --git-dir=.walnut/versions log` shows the versions as a history.
 *
 * The tree of a version (formats/versions.md):
 *
 *     <collection>/<slug>/_index.md          the entity files
 *     .walnut/checkpoint                      the compaction checkpoint it was built at
 *     .walnut/stamps/<collection>/<slug>      per entity: the field stamps of the index
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { WalnutError } from '../errors.js';
import { writeFileAtomic, fsyncDir, readFileOrUndefined } from '../fsutil.js';
import type { Repo } from '../repo.js';
import { checkTarget } from '../../formats/usv.js';
import { PackFile, PackWriter, parseCommit, parseTree, MODE_TREE, type ObjectType, type TreeEntry, type CommitFields } from './objects.js';

export const STORE_DIR = 'versions';
/** the entity file inside an entity's folder */
export const ENTITY_NAME = '_index.md';
/** the folder of walnut's own metadata inside a version's tree */
export const META_DIR = '.walnut';
export const OID = /^[0-9a-f]{40}$/;
/** `version create` repacks the store when it holds more packs than this */
export const MAX_PACKS = 32;

/** What a version says of itself (from its commit). */
export interface VersionInfo {
  id: string;
  tree: string;
  parent: string | null;
  /** ISO time */
  created: string;
  node: string;
  entities: number;
  generation: number;
}

/**
 * The entities of a version: collection → its entity folders (name = slug,
 * oid = the folder's tree), in the order of the git tree.
 */
export type Listing = Map<string, TreeEntry[]>;

export class VersionStore {
  readonly gitdir: string;
  readonly packDir: string;
  private packs: PackFile[] = [];
  private packNames = new Set<string>();
  /** whether `objects/` holds loose-object folders (walnut never writes any) */
  private loose = false;
  private readonly trees = new Map<string, TreeEntry[]>();
  private readonly listings = new Map<string, Listing>();

  private constructor(gitdir: string) {
    this.gitdir = gitdir;
    this.packDir = path.join(gitdir, 'objects', 'pack');
    this.refresh();
  }

  /**
   * Open the store of a data directory, creating it (a bare git repository)
   * when it does not exist yet.
   */
  static async open(repo: Repo): Promise<VersionStore> {
    const gitdir = path.join(repo.dir, STORE_DIR);
    if (!fs.existsSync(path.join(gitdir, 'HEAD'))) {
      // bundled, the CommonJS build is loaded: its exports are under `default`
      const mod = await import('isomorphic-git');
      const git = (mod as unknown as { default?: typeof mod }).default?.init ? (mod as unknown as { default: typeof mod }).default : mod;
      await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
      fs.mkdirSync(path.join(gitdir, 'refs', 'versions'), { recursive: true });
      fs.mkdirSync(path.join(gitdir, 'objects', 'pack'), { recursive: true });
      fsyncDir(gitdir);
    }
    return new VersionStore(gitdir);
  }

  /** Re-list the packs (after another process added one). */
  refresh(): void {
    const objects = path.dirname(this.packDir);
    // walnut writes packs only: without loose-object folders, a lookup need not probe for one
    this.loose = fs.existsSync(objects) && fs.readdirSync(objects).some((n) => /^[0-9a-f]{2}$/.test(n));
    const names = fs.existsSync(this.packDir) ? fs.readdirSync(this.packDir).filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -4)) : [];
    for (const name of names) {
      if (this.packNames.has(name) || !fs.existsSync(path.join(this.packDir, `${name}.pack`))) continue;
      this.packs.push(PackFile.open(this.packDir, name));
      this.packNames.add(name);
    }
  }

  /** Names of the packs present (`pack-<sha>`). */
  packList(): string[] {
    return [...this.packNames];
  }

  hasPack(name: string): boolean {
    return this.packNames.has(name);
  }

  /** Forget the packs (before they are deleted). */
  close(): void {
    for (const p of this.packs) p.close();
  }

  /** True when the store holds the object. */
  has(oid: string): boolean {
    return this.locate(oid) !== undefined || (this.loose && fs.existsSync(this.loosePath(oid)));
  }

  /** The pack holding an object, and its position there. */
  private locate(oid: string): { pack: PackFile; i: number } | undefined {
    const key = Buffer.from(oid, 'hex');
    for (const pack of this.packs) {
      const i = pack.find(key);
      if (i >= 0) return { pack, i };
    }
    return undefined;
  }

  /** Read an object. @throws WalnutError `ENOOBJECT` */
  read(oid: string): { type: ObjectType; content: Buffer } {
    const at = this.locate(oid);
    if (at) return at.pack.read(at.i);
    const loose = this.loosePath(oid);
    if (fs.existsSync(loose)) {
      const raw = zlib.inflateSync(fs.readFileSync(loose));
      const nul = raw.indexOf(0);
      return { type: raw.toString('latin1', 0, raw.indexOf(0x20)) as ObjectType, content: raw.subarray(nul + 1) };
    }
    throw new WalnutError('ENOOBJECT', `the version store has no object ${oid}`, {
      data: { oid, store: this.gitdir },
      hints: ['the version was pruned or only partly fetched: fetch it again (walnut pull) or create a new one'],
    });
  }

  readBlob(oid: string): Buffer {
    return this.expect(oid, 'blob');
  }

  /** A tree's entries (cached: trees are read again by diff and checkout). */
  readTree(oid: string): TreeEntry[] {
    let t = this.trees.get(oid);
    if (!t) {
      t = parseTree(this.expect(oid, 'tree'));
      if (this.trees.size > 64) this.trees.clear();
      this.trees.set(oid, t);
    }
    return t;
  }

  readCommit(oid: string): CommitFields {
    return parseCommit(this.expect(oid, 'commit'));
  }

  private expect(oid: string, type: ObjectType): Buffer {
    const o = this.read(oid);
    if (o.type !== type) throw new WalnutError('EOBJECTTYPE', `object ${oid} is a ${o.type}, not a ${type}`, { data: { oid } });
    return o.content;
  }

  private loosePath(oid: string): string {
    return path.join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
  }

  /**
   * Write one pack with every object the kept versions need, then delete the
   * other packs and leftover temporary files, and mark where the history is
   * cut (`shallow`). The caller holds the compaction lease.
   */
  repack(): { repacked: number; objects: number } {
    const old = this.packList();
    const writer = new PackWriter(this.packDir);
    const seen = new Set<string>();
    // Objects are copied as their packs hold them; only commits and trees are
    // inflated (to find what they refer to), never re-compressed.
    const visit = (oid: string) => {
      if (seen.has(oid)) return;
      seen.add(oid);
      const at = this.locate(oid);
      if (at) {
        const e = at.pack.entry(at.i);
        writer.addRaw(oid, e.raw);
        if (e.type === 'commit' || e.type === 'tree') follow(e.type, zlib.inflateSync(e.raw.subarray(e.dataAt)));
        return;
      }
      const o = this.read(oid); // a loose object (walnut writes none)
      writer.add(o.type, o.content, oid);
      follow(o.type, o.content);
    };
    const follow = (type: ObjectType, content: Buffer) => {
      if (type === 'commit') visit(parseCommit(content).tree);
      else if (type === 'tree') for (const e of parseTree(content)) visit(e.oid);
    };
    try {
      for (const id of this.versionIds()) visit(id);
    } catch (err) {
      writer.abort();
      throw err;
    }
    const name = writer.finish();
    this.close();
    for (const p of old) {
      if (p === name) continue;
      fs.rmSync(path.join(this.packDir, `${p}.idx`), { force: true });
      fs.rmSync(path.join(this.packDir, `${p}.pack`), { force: true });
    }
    const hour = Date.now() - 3_600_000;
    for (const n of fs.readdirSync(this.packDir)) {
      const f = path.join(this.packDir, n);
      if (n.endsWith('.walnut-tmp') && fs.statSync(f).mtimeMs < hour) fs.rmSync(f, { force: true });
    }
    this.packs = [];
    this.packNames.clear();
    this.refresh();
    this.updateShallow();
    return { repacked: old.length, objects: seen.size };
  }

  /**
   * Write `shallow`: the kept versions whose parent commit the store does not
   * hold (pruned, or never fetched). git then treats them as the first
   * commits, so `git log` and `git fsck` work on a store with a cut history.
   */
  updateShallow(): void {
    const cut = this.versionIds().filter((id) => {
      const parent = this.readCommit(id).parents[0];
      return parent !== undefined && !this.has(parent);
    });
    const file = path.join(this.gitdir, 'shallow');
    if (cut.length === 0) fs.rmSync(file, { force: true });
    else writeFileAtomic(file, cut.sort().join('\n') + '\n');
  }

  // -------------------------------------------------------------------------
  // Versions (refs)

  /** Ids of the versions kept (refs/versions/*). */
  versionIds(): string[] {
    const dir = path.join(this.gitdir, 'refs', 'versions');
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => OID.test(n)) : [];
  }

  hasVersion(id: string): boolean {
    return fs.existsSync(path.join(this.gitdir, 'refs', 'versions', id));
  }

  /** Keep a version (its objects must be in the store). */
  addVersion(id: string): void {
    writeFileAtomic(path.join(this.gitdir, 'refs', 'versions', id), id + '\n');
  }

  removeVersion(id: string): void {
    fs.rmSync(path.join(this.gitdir, 'refs', 'versions', id), { force: true });
  }

  /** The newest version created here (refs/heads/main), if any. */
  head(): string | undefined {
    const text = readFileOrUndefined(path.join(this.gitdir, 'refs', 'heads', 'main'))?.trim();
    return text && OID.test(text) && this.hasVersion(text) ? text : undefined;
  }

  setHead(id: string): void {
    fs.mkdirSync(path.join(this.gitdir, 'refs', 'heads'), { recursive: true });
    writeFileAtomic(path.join(this.gitdir, 'refs', 'heads', 'main'), id + '\n');
  }

  /**
   * The full id of a version from its id or a unique prefix (at least 4 hex digits).
   * @throws WalnutError `ENOVERSION`, `EAMBIGUOUS`
   */
  resolve(ref: string): string {
    const wanted = ref.toLowerCase();
    if (!/^[0-9a-f]{4,40}$/.test(wanted)) {
      throw new WalnutError('ENOVERSION', `not a version id: '${ref}'`, { data: { ref }, hints: ['a version id is 40 hex digits (or a unique prefix of at least 4); see walnut version list'] });
    }
    const matches = this.versionIds().filter((id) => id.startsWith(wanted));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) {
      throw new WalnutError('EAMBIGUOUS', `version prefix '${ref}' is ambiguous: ${matches.map((m) => m.slice(0, 12)).join(', ')}`, { data: { ref, matches }, hints: ['give more digits'] });
    }
    throw new WalnutError('ENOVERSION', `no version '${ref}' in this data directory`, { data: { ref }, hints: ['see walnut version list; a version of a remote is fetched by walnut pull or walnut checkout --remote'] });
  }

  /** What a version's commit says. */
  info(id: string): VersionInfo {
    const c = this.readCommit(id);
    const trailer = (key: string) => new RegExp(`^${key}: (.*)$`, 'm').exec(c.message)?.[1]?.trim();
    return {
      id,
      tree: c.tree,
      parent: c.parents[0] ?? null,
      created: trailer('Walnut-Created') ?? new Date(c.time * 1000).toISOString(),
      node: trailer('Walnut-Node') ?? c.name,
      entities: Number(trailer('Walnut-Entities') ?? 0),
      generation: Number(trailer('Walnut-Generation') ?? 0),
    };
  }

  /** Every version kept, newest first. */
  list(): VersionInfo[] {
    return this.versionIds()
      .map((id) => this.info(id))
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1));
  }

  // -------------------------------------------------------------------------
  // Trees of a version

  /** The entities of a version, by collection (the last few are cached: `checkout --follow` diffs them again). */
  listing(id: string): Listing {
    let l = this.listings.get(id);
    if (!l) {
      l = this.readListing(id);
      this.listings.set(id, l);
      if (this.listings.size > 4) this.listings.delete(this.listings.keys().next().value!);
    }
    return l;
  }

  private readListing(id: string): Listing {
    const root = this.readTree(this.readCommit(id).tree);
    const out: Listing = new Map();
    for (const c of root) {
      if (c.mode !== MODE_TREE || c.name === META_DIR) continue;
      const folders = this.readTree(c.oid).filter((s) => s.mode === MODE_TREE);
      // names become paths when a version is checked out: refuse `..`, separators, …
      for (const s of folders) checkEntityName(id, c.name, s.name);
      out.set(c.name, folders);
    }
    return out;
  }

  /** The blob of `_index.md` in an entity folder's tree. */
  entityBlob(folderTree: string): string | undefined {
    return this.readTree(folderTree).find((e) => e.name === ENTITY_NAME)?.oid;
  }

  /** A path's entry in a version (undefined when absent). */
  entry(id: string, filepath: string): TreeEntry | undefined {
    let tree = this.readCommit(id).tree;
    const parts = filepath.split('/');
    for (let i = 0; i < parts.length; i++) {
      const e = this.readTree(tree).find((x) => x.name === parts[i]);
      if (!e) return undefined;
      if (i === parts.length - 1) return e;
      if (e.mode !== MODE_TREE) return undefined;
      tree = e.oid;
    }
    return undefined;
  }
}

const NAME_OK = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$/;

/** Refuse an entity name that would not be a safe path (`..`, separators, …). @throws WalnutError `EBADTREE` */
export function checkEntityName(id: string, collection: string, slug: string): void {
  if (NAME_OK.test(slug) && NAME_OK.test(collection) && slug.length + collection.length < 129) return; // the common case, without building a target
  const target = `${collection}/${slug}`;
  try {
    checkTarget(target);
  } catch {
    throw new WalnutError('EBADTREE', `version ${id.slice(0, 12)} holds an entry that is not a valid <collection>/<slug>: ${JSON.stringify(target)}`, {
      data: { version: id, target },
      hints: ['the version was not made by walnut or is damaged; do not check it out'],
    });
  }
}
