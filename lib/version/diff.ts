/**
 * Differences between two versions: which entities were added, changed or
 * removed (by comparing the entity folders' tree ids, so unchanged entities
 * cost one string comparison), and for `version diff` which fields.
 */
import { parseEntity, BODY_FIELD } from '../../formats/entity.js';
import { stableJson } from '../state.js';
import { META_DIR, checkEntityName, type Listing, type VersionStore } from './store.js';
import { MODE_TREE } from './objects.js';

export interface EntityDelta {
  collection: string;
  slug: string;
  /** folder tree in the old version (absent when added) */
  from?: string;
  /** folder tree in the new version (absent when removed) */
  to?: string;
}

/** Entities that differ between two listings (`from` undefined: every entity of `to` is added). */
export function diffListings(from: Listing | undefined, to: Listing): EntityDelta[] {
  const out: EntityDelta[] = [];
  for (const [collection, now] of to) {
    const old = from?.get(collection) ?? [];
    // both lists are in git tree order: one merge walk, no maps
    let i = 0;
    let j = 0;
    while (i < old.length || j < now.length) {
      const o = old[i];
      const n = now[j];
      const c = !o ? 1 : !n ? -1 : o.name === n.name ? 0 : folderOrder(o.name, n.name);
      if (c === 0) {
        if (o.oid !== n.oid) out.push({ collection, slug: n.name, from: o.oid, to: n.oid });
        i++;
        j++;
      } else if (c < 0) {
        out.push({ collection, slug: o.name, from: o.oid });
        i++;
      } else {
        out.push({ collection, slug: n.name, to: n.oid });
        j++;
      }
    }
  }
  for (const [collection, old] of from ?? []) {
    if (to.has(collection)) continue;
    for (const o of old) out.push({ collection, slug: o.name, from: o.oid });
  }
  return out;
}

/** git's order of two folder entries: by bytes of `name/`. */
function folderOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a + '/'), Buffer.from(b + '/'));
}

export interface FieldDiff {
  target: string;
  action: 'added' | 'changed' | 'removed';
  /** fields whose value differs (`@body` for the body); every field for added/removed entities */
  fields: string[];
  /** set when a side does not parse */
  error?: string;
}

/** Entities and fields changed from version `a` to version `b`. */
export function diffVersions(store: VersionStore, a: string, b: string): FieldDiff[] {
  const deltas = diffListings(store.listing(a), store.listing(b));
  deltas.sort((x, y) => (x.collection + '/' + x.slug < y.collection + '/' + y.slug ? -1 : 1));
  return deltas.map((d) => {
    const target = `${d.collection}/${d.slug}`;
    const action = !d.from ? 'added' : !d.to ? 'removed' : 'changed';
    try {
      const before = d.from ? fieldsOf(store, d.from, target) : new Map<string, string>();
      const after = d.to ? fieldsOf(store, d.to, target) : new Map<string, string>();
      const fields = new Set<string>();
      for (const [k, v] of after) if (before.get(k) !== v) fields.add(k);
      for (const k of before.keys()) if (!after.has(k)) fields.add(k);
      return { target, action, fields: [...fields] };
    } catch (err) {
      return { target, action, fields: [], error: (err as Error).message };
    }
  });
}

/** field → stable JSON of the value, body included. */
function fieldsOf(store: VersionStore, folderTree: string, target: string): Map<string, string> {
  const blob = store.entityBlob(folderTree);
  const text = blob ? store.readBlob(blob).toString('utf8') : '';
  const parsed = parseEntity(text, `${target}/_index.md`);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(parsed.data)) out.set(k, stableJson(v));
  if (parsed.body) out.set(BODY_FIELD, JSON.stringify(parsed.body));
  return out;
}

/**
 * Entities that differ between two versions, read from the raw collection
 * trees: unchanged entries are compared as bytes and never become strings or
 * objects, so a diff of two 100 k-entity versions costs about the change
 * (plus one pass over the tree bytes). Names of the entries returned are
 * checked as `<collection>/<slug>` (they become paths).
 */
export function diffVersionTrees(store: VersionStore, from: string | undefined, to: string): EntityDelta[] {
  const collections = (id: string) => new Map(store.readTree(store.readCommit(id).tree).filter((e) => e.mode === MODE_TREE && e.name !== META_DIR).map((e) => [e.name, e.oid]));
  const a = from ? collections(from) : new Map<string, string>();
  const b = collections(to);
  const out: EntityDelta[] = [];
  for (const [collection, oid] of b) {
    const old = a.get(collection);
    if (old === oid) continue;
    diffRaw(collection, old ? store.read(old).content : undefined, store.read(oid).content, out);
  }
  for (const [collection, oid] of a) if (!b.has(collection)) diffRaw(collection, store.read(oid).content, undefined, out);
  for (const d of out) checkEntityName(to, d.collection, d.slug);
  return out;
}

/** One folder entry of a raw tree: name bytes [name, nul), id bytes [nul + 1, nul + 21). */
interface RawEntry {
  name: number;
  nul: number;
  next: number;
}

/** The next folder entry at or after `pos` (file entries are skipped: a collection holds folders). */
function nextFolder(buf: Buffer, pos: number): RawEntry | undefined {
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    const nul = buf.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > buf.length) throw new Error('malformed tree object');
    const folder = space - pos === 5 && buf[pos] === 0x34; // "40000"
    if (folder) return { name: space + 1, nul, next: nul + 21 };
    pos = nul + 21;
  }
  return undefined;
}

/** git's order of two folder names in raw trees (`name/` compared as bytes). */
function rawOrder(x: Buffer, e: RawEntry, y: Buffer, f: RawEntry): number {
  const lx = e.nul - e.name;
  const ly = f.nul - f.name;
  const n = Math.min(lx, ly);
  const c = x.compare(y, f.name, f.name + n, e.name, e.name + n);
  if (c !== 0) return c;
  const cx = lx > n ? x[e.name + n] : 0x2f;
  const cy = ly > n ? y[f.name + n] : 0x2f;
  return cx - cy;
}

function diffRaw(collection: string, before: Buffer | undefined, after: Buffer | undefined, out: EntityDelta[]): void {
  const x = before ?? Buffer.alloc(0);
  const y = after ?? Buffer.alloc(0);
  let e = nextFolder(x, 0);
  let f = nextFolder(y, 0);
  const name = (buf: Buffer, r: RawEntry) => buf.toString('utf8', r.name, r.nul);
  const oid = (buf: Buffer, r: RawEntry) => buf.toString('hex', r.nul + 1, r.nul + 21);
  while (e || f) {
    const c = !e ? 1 : !f ? -1 : rawOrder(x, e, y, f);
    if (c === 0) {
      if (x.compare(y, f!.nul + 1, f!.nul + 21, e!.nul + 1, e!.nul + 21) !== 0) out.push({ collection, slug: name(y, f!), from: oid(x, e!), to: oid(y, f!) });
      e = nextFolder(x, e!.next);
      f = nextFolder(y, f!.next);
    } else if (c < 0) {
      out.push({ collection, slug: name(x, e!), from: oid(x, e!) });
      e = nextFolder(x, e!.next);
    } else {
      out.push({ collection, slug: name(y, f!), to: oid(y, f!) });
      f = nextFolder(y, f!.next);
    }
  }
}
