/**
 * Differences between two versions: which entities were added, changed or
 * removed (by comparing the entity folders' tree ids, so unchanged entities
 * cost one string comparison), and for `version diff` which fields.
 */
import { parseEntity, BODY_FIELD } from '../../formats/entity.js';
import { stableJson } from '../state.js';
import type { Listing, VersionStore } from './store.js';

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
