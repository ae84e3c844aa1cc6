/**
 * Git objects as bytes, and the pack writer of the version store.
 *
 * A version is stored as ordinary git objects (blobs, trees, a commit), so
 * `git --git-dir=.walnut/versions log` and isomorphic-git read it. walnut
 * writes the objects of one version as one pack (`objects/pack/pack-<sha>.pack`
 * and its version-2 `.idx`): one file pair per version instead of thousands
 * of loose objects, fsynced once, and the very file a remote receives.
 * See formats/versions.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto, { createHash } from 'node:crypto';
import { writeFileAtomic, TEMP_SUFFIX } from '../fsutil.js';

export type ObjectType = 'blob' | 'tree' | 'commit';

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };
const CODE_TYPE: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob' };

/** Mode of a tree entry: a file or a folder. */
export const MODE_FILE = '100644';
export const MODE_TREE = '40000';

export interface TreeEntry {
  mode: typeof MODE_FILE | typeof MODE_TREE;
  name: string;
  /** object id, 40 hex digits */
  oid: string;
}

/** The object id (SHA-1 of `<type> <size>\0<content>`) of some content. */
export function objectId(type: ObjectType, content: Uint8Array): string {
  return createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');
}

/** The object id of a blob holding `text` (UTF-8), without building a Buffer. */
export function textBlobId(text: string): string {
  return crypto.hash('sha1', `blob ${Buffer.byteLength(text)}\0${text}`);
}

// "tree 45\0100644 _index.md\0" followed by the 20 bytes of the blob id
const FOLDER_HEAD = Buffer.from('tree 37\x00100644 _index.md\x00', 'latin1');
const folderScratch = Buffer.alloc(FOLDER_HEAD.length + 20);
FOLDER_HEAD.copy(folderScratch);

/** The id of the tree of an entity folder holding only `_index.md` with blob `blob` (hot: once per entity). */
export function folderTreeId(blob: string): string {
  folderScratch.write(blob, FOLDER_HEAD.length, 'hex');
  return crypto.hash('sha1', folderScratch);
}

/** A tree object's content; entries are sorted the way git sorts them (a folder compares as `name/`). */
export function treeBytes(entries: TreeEntry[]): Buffer {
  const sorted = entries.map((e) => ({ e, key: Buffer.from(e.mode === MODE_TREE ? e.name + '/' : e.name, 'utf8') }));
  sorted.sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { e } of sorted) {
    parts.push(Buffer.from(`${e.mode} ${e.name}\0`, 'utf8'), Buffer.from(e.oid, 'hex'));
  }
  return Buffer.concat(parts);
}

/**
 * A tree whose entries are all folders (or all files), already sorted with
 * `sortNames` (faster than `treeBytes` for the 100 k entries of a collection).
 */
export function uniformTreeBytes(names: string[], oids: string[], mode: typeof MODE_FILE | typeof MODE_TREE = MODE_TREE): Buffer {
  const prefix = mode + ' ';
  let size = 0;
  for (const n of names) size += prefix.length + 1 + Buffer.byteLength(n) + 20;
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  for (let i = 0; i < names.length; i++) {
    pos += buf.write(prefix, pos, 'latin1');
    pos += buf.write(names[i], pos, 'utf8');
    buf[pos++] = 0;
    pos += buf.write(oids[i], pos, 'hex');
  }
  return buf;
}

/**
 * Sort the names of a tree whose entries are all folders (git compares a
 * folder as `name/`) or all files, the way git sorts them (by bytes).
 */
export function sortNames(names: string[], mode: typeof MODE_FILE | typeof MODE_TREE = MODE_TREE): string[] {
  const suffix = mode === MODE_TREE ? '/' : '';
  // UTF-16 order equals byte order for text without surrogate pairs; keys made once
  if (!names.some((n) => /[\ud800-\udfff]/.test(n))) {
    const keys = names.map((n) => n + suffix).sort();
    return suffix ? keys.map((k) => k.slice(0, -1)) : keys;
  }
  return names.sort((a, b) => compareNames(a, b, mode));
}

/** Compare two names the way git orders the entries of a tree (a folder compares as `name/`). */
export function compareNames(a: string, b: string, mode: typeof MODE_FILE | typeof MODE_TREE = MODE_TREE): number {
  const suffix = mode === MODE_TREE ? '/' : '';
  const x = a + suffix;
  const y = b + suffix;
  // UTF-16 order equals byte order for text without surrogate pairs
  if (!/[\ud800-\udfff]/.test(x + y)) return x < y ? -1 : x > y ? 1 : 0;
  return Buffer.compare(Buffer.from(x), Buffer.from(y));
}

/**
 * Apply changes to a tree whose entries are all folders (or all files) on its
 * bytes: each name gets the id given, or leaves the tree when the id is
 * undefined. Entries are found by binary search over their offsets; the
 * unchanged runs between changes are copied as they are.
 * @returns the new tree's bytes, and how many names were added, changed and removed
 */
export function patchTreeBytes(content: Buffer, changes: Iterable<[name: string, oid: string | undefined]>, mode: typeof MODE_FILE | typeof MODE_TREE = MODE_TREE): { bytes: Buffer; added: number; changed: number; removed: number } {
  // where each entry starts, and where its name starts and ends
  const starts: number[] = [];
  const nameStarts: number[] = [];
  const nameEnds: number[] = [];
  for (let pos = 0; pos < content.length; ) {
    const space = content.indexOf(0x20, pos);
    const nul = content.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > content.length) throw new Error('malformed tree object');
    starts.push(pos);
    nameStarts.push(space + 1);
    nameEnds.push(nul);
    pos = nul + 21;
  }
  const tree = mode === MODE_TREE;
  /** git's order of a name (bytes) against entry i: a folder compares as `name/` */
  const compare = (key: Buffer, i: number): number => {
    const a = nameStarts[i];
    const elen = nameEnds[i] - a;
    const n = Math.min(key.length, elen);
    const c = key.compare(content, a, a + n, 0, n);
    if (c !== 0 || key.length === elen) return c;
    if (!tree) return key.length < elen ? -1 : 1;
    // one is a prefix of the other: the shorter one continues with '/'
    return key.length < elen ? (0x2f <= content[a + n] ? -1 : 1) : 0x2f < key[n] ? 1 : -1;
  };
  const edits: Array<{ at: number; hit: boolean; name: string; key: Buffer; oid?: string }> = [];
  const seen = new Set<string>();
  for (const [name, oid] of changes) {
    if (seen.has(name)) throw new Error(`patchTreeBytes: ${name} changed twice`);
    seen.add(name);
    const key = Buffer.from(name, 'utf8');
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(key, mid) > 0) lo = mid + 1;
      else hi = mid;
    }
    const hit = lo < starts.length && compare(key, lo) === 0;
    edits.push({ at: lo, hit, name, key, oid });
  }
  // in tree order: by position, then (insertions at the same place) by name
  edits.sort((x, y) => x.at - y.at || (x.hit !== y.hit ? (x.hit ? 1 : -1) : compareNames(x.name, y.name, mode)));
  let added = 0;
  let changed = 0;
  let removed = 0;
  const parts: Buffer[] = [];
  let copied = 0; // entries before this index are copied or replaced already
  const prefix = mode + ' ';
  for (const e of edits) {
    if (e.at > copied) parts.push(content.subarray(starts[copied], starts[e.at]));
    copied = Math.max(copied, e.at);
    if (e.hit) {
      const old = content.toString('hex', nameEnds[e.at] + 1, nameEnds[e.at] + 21);
      if (e.oid === old) continue; // unchanged: copied with the next run
      copied = e.at + 1;
      if (e.oid === undefined) removed++;
      else {
        changed++;
        parts.push(content.subarray(starts[e.at], nameEnds[e.at] + 1), Buffer.from(e.oid, 'hex'));
      }
    } else if (e.oid !== undefined) {
      added++;
      parts.push(Buffer.from(prefix, 'latin1'), e.key, Buffer.from([0]), Buffer.from(e.oid, 'hex'));
    }
  }
  if (copied < starts.length) parts.push(content.subarray(starts[copied]));
  return { bytes: added + changed + removed === 0 ? content : Buffer.concat(parts), added, changed, removed };
}

/** Parse a tree object's content. */
export function parseTree(content: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  let pos = 0;
  while (pos < content.length) {
    const space = content.indexOf(0x20, pos);
    const nul = content.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > content.length) throw new Error('malformed tree object');
    const mode = content.toString('latin1', pos, space) === MODE_TREE ? MODE_TREE : MODE_FILE;
    out.push({ mode, name: content.toString('utf8', space + 1, nul), oid: content.toString('hex', nul + 1, nul + 21) });
    pos = nul + 21;
  }
  return out;
}

export interface CommitFields {
  tree: string;
  parents: string[];
  /** author and committer name */
  name: string;
  email: string;
  /** seconds since the epoch */
  time: number;
  message: string;
}

/** A commit object's content (UTC timestamps). */
export function commitBytes(c: CommitFields): Buffer {
  const who = `${c.name} <${c.email}> ${c.time} +0000`;
  const lines = [`tree ${c.tree}`, ...c.parents.map((p) => `parent ${p}`), `author ${who}`, `committer ${who}`, '', c.message];
  return Buffer.from(lines.join('\n'), 'utf8');
}

/** Parse a commit object's content. */
export function parseCommit(content: Buffer): CommitFields {
  const text = content.toString('utf8');
  const blank = text.indexOf('\n\n');
  const head = text.slice(0, blank < 0 ? text.length : blank).split('\n');
  const c: CommitFields = { tree: '', parents: [], name: '', email: '', time: 0, message: blank < 0 ? '' : text.slice(blank + 2) };
  for (const line of head) {
    const sp = line.indexOf(' ');
    const key = line.slice(0, sp);
    const value = line.slice(sp + 1);
    if (key === 'tree') c.tree = value;
    else if (key === 'parent') c.parents.push(value);
    else if (key === 'author') {
      const m = /^(.*) <(.*)> (\d+) [+-]\d{4}$/.exec(value);
      if (m) [c.name, c.email, c.time] = [m[1], m[2], Number(m[3])];
    }
  }
  return c;
}

// ---------------------------------------------------------------------------
// Packs

/**
 * Writes objects into a new pack in `<objects>/pack/`, streaming to a
 * temporary file; `finish` writes the index and renames both into place
 * (the `.idx` last: git and walnut only see a pack once its index exists).
 */
/** Objects of this size or more are stored with zlib level 0. */
const LARGE_OBJECT = 256 * 1024;
const STORED = { level: 0 };
const FAST = { level: 1 };
/** A small window and state: a third of the set-up time per object, the same bytes for objects under 4 KiB. */
const SMALL = { level: 1, windowBits: 9, memLevel: 1 };

export class PackWriter {
  private readonly tmp: string;
  private readonly fd: number;
  private readonly hash = createHash('sha1');
  private offset = 12;
  private readonly entries: { oid: Buffer; offset: number; crc: number }[] = [];
  private readonly seen = new Set<string>();
  /** bytes added but not yet written (written in pieces of about 1 MiB) */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingAt = 12;

  constructor(private readonly packDir: string) {
    fs.mkdirSync(packDir, { recursive: true });
    this.tmp = path.join(packDir, `tmp-${process.pid}-${Date.now()}${TEMP_SUFFIX}`);
    this.fd = fs.openSync(this.tmp, 'w+');
    // the object count is patched in at the end: reserve the header
    fs.writeSync(this.fd, Buffer.alloc(12));
  }

  /** Objects added so far. */
  get count(): number {
    return this.entries.length;
  }

  /** True when `oid` was added to this pack. */
  holds(oid: string): boolean {
    return this.seen.has(oid);
  }

  /** Add an object (once; a second add of the same id is ignored). Returns its id. */
  add(type: ObjectType, content: Uint8Array, oid = objectId(type, content)): string {
    if (this.seen.has(oid)) return oid;
    this.seen.add(oid);
    const head: number[] = [];
    let size = content.length;
    let byte = (TYPE_CODE[type] << 4) | (size & 0x0f);
    size >>>= 4;
    while (size > 0) {
      head.push(byte | 0x80);
      byte = size & 0x7f;
      size >>>= 7;
    }
    head.push(byte);
    // large objects are collection trees: mostly object ids, which do not
    // compress; level 0 costs a tenth of the time for a third more bytes
    return this.append(oid, Buffer.concat([Buffer.from(head), zlib.deflateSync(content, content.length >= LARGE_OBJECT ? STORED : content.length < 4096 ? SMALL : FAST)]));
  }

  /**
   * Add an object as another pack holds it (`PackFile.entry`: header and zlib
   * stream), without inflating and deflating it again.
   */
  addRaw(oid: string, raw: Buffer): string {
    if (this.seen.has(oid)) return oid;
    this.seen.add(oid);
    return this.append(oid, raw);
  }

  /** An object's pack entry (header and zlib stream) at the end of the pack, buffered up to 1 MiB. */
  private append(oid: string, entry: Buffer): string {
    this.entries.push({ oid: Buffer.from(oid, 'hex'), offset: this.offset, crc: zlib.crc32(entry) });
    this.offset += entry.length;
    this.pending.push(entry);
    this.pendingBytes += entry.length;
    if (this.pendingBytes >= 1 << 20) this.flush();
    return oid;
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    for (let done = 0; done < data.length; ) done += fs.writeSync(this.fd, data, done, data.length - done, this.pendingAt + done);
    this.pendingAt += data.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Drop the pack being written. */
  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.tmp, { force: true });
  }

  /**
   * Write the header, trailer and index, fsync, and rename both into place.
   * @returns the pack's name (`pack-<sha>`) or undefined when no object was added (nothing written)
   */
  finish(): string | undefined {
    if (this.entries.length === 0) {
      this.abort();
      return undefined;
    }
    if (this.offset > 0x7fffffff) throw new Error('pack larger than 2 GiB');
    this.flush();
    const header = Buffer.alloc(12);
    header.write('PACK', 0, 'latin1');
    header.writeUInt32BE(2, 4);
    header.writeUInt32BE(this.entries.length, 8);
    fs.writeSync(this.fd, header, 0, 12, 0);
    // the trailer hashes the whole file: read it back in pieces (it is in the page cache)
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < this.offset; ) {
      const n = fs.readSync(this.fd, buf, 0, Math.min(buf.length, this.offset - pos), pos);
      this.hash.update(buf.subarray(0, n));
      pos += n;
    }
    const trailer = this.hash.digest();
    fs.writeSync(this.fd, trailer, 0, 20, this.offset);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    const name = `pack-${trailer.toString('hex')}`;
    const idx = indexBytes(this.entries, trailer);
    // the pack first, then its index: git and walnut only see a pack once its index exists
    fs.renameSync(this.tmp, path.join(this.packDir, `${name}.pack`));
    writeFileAtomic(path.join(this.packDir, `${name}.idx`), idx);
    return name;
  }
}

/** A version-2 pack index for the given entries. */
function indexBytes(entries: { oid: Buffer; offset: number; crc: number }[], packSha: Buffer): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.oid, b.oid));
  const n = sorted.length;
  const out = Buffer.alloc(8 + 1024 + n * 28 + 40);
  out.writeUInt32BE(0xff744f63, 0);
  out.writeUInt32BE(2, 4);
  let pos = 8;
  let k = 0;
  for (let b = 0; b < 256; b++) {
    while (k < n && sorted[k].oid[0] <= b) k++;
    out.writeUInt32BE(k, pos);
    pos += 4;
  }
  for (const e of sorted) pos += e.oid.copy(out, pos);
  for (const e of sorted) pos = out.writeUInt32BE(e.crc >>> 0, pos);
  for (const e of sorted) pos = out.writeUInt32BE(e.offset, pos);
  pos += packSha.copy(out, pos);
  createHash('sha1').update(out.subarray(0, pos)).digest().copy(out, pos);
  return out;
}

/**
 * One pack with its index, for lookups by binary search (the index is not
 * parsed into a map: opening a pack costs one read of its `.idx`).
 */
export class PackFile {
  private readonly count: number;
  private fd: number | undefined;
  private sortedOffsets: Uint32Array | undefined;

  constructor(
    readonly name: string,
    private readonly packPath: string,
    private readonly idx: Buffer,
  ) {
    if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error(`unsupported pack index: ${name}.idx`);
    this.count = idx.readUInt32BE(8 + 255 * 4);
  }

  static open(packDir: string, name: string): PackFile {
    return new PackFile(name, path.join(packDir, `${name}.pack`), fs.readFileSync(path.join(packDir, `${name}.idx`)));
  }

  /** Number of objects. */
  get size(): number {
    return this.count;
  }

  /** Every object id in the pack, sorted. */
  *oids(): IterableIterator<string> {
    for (let i = 0; i < this.count; i++) yield this.idx.toString('hex', 1032 + i * 20, 1052 + i * 20);
  }

  /** The position of an object in the index, or -1. */
  find(oid: string | Buffer): number {
    const key = typeof oid === 'string' ? Buffer.from(oid, 'hex') : oid;
    const first = key[0];
    const head = key.readUInt32BE(0);
    let lo = first === 0 ? 0 : this.idx.readUInt32BE(8 + (first - 1) * 4);
    let hi = this.idx.readUInt32BE(8 + first * 4) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      // the first 4 bytes as a number decide almost every step without a native call
      const at = this.idx.readUInt32BE(1032 + mid * 20);
      const c = head < at ? -1 : head > at ? 1 : key.compare(this.idx, 1032 + mid * 20, 1052 + mid * 20);
      if (c === 0) return mid;
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  /** Read the object at index position `i`. */
  read(i: number): { type: ObjectType; content: Buffer } {
    const e = this.entry(i);
    const content = zlib.inflateSync(e.raw.subarray(e.dataAt));
    if (content.length !== e.size) throw new Error(`pack ${this.name}: object at ${e.offset} has ${content.length} bytes, header says ${e.size}`);
    return { type: e.type, content };
  }

  /**
   * The bytes of the object at index position `i` as the pack holds them
   * (its header and its zlib stream), for copying into another pack unchanged.
   */
  entry(i: number): { type: ObjectType; size: number; raw: Buffer; dataAt: number; offset: number } {
    const offsetsAt = 1032 + this.count * 24;
    const offset = this.idx.readUInt32BE(offsetsAt + i * 4);
    if (offset & 0x80000000) throw new Error(`pack ${this.name}: 64-bit offsets are not supported`);
    const end = this.nextOffset(offset);
    this.fd ??= fs.openSync(this.packPath, 'r');
    const raw = Buffer.allocUnsafe(end - offset);
    fs.readSync(this.fd, raw, 0, raw.length, offset);
    let pos = 0;
    let byte = raw[pos++];
    const code = (byte >> 4) & 7;
    let size = byte & 0x0f;
    let shift = 4;
    while (byte & 0x80) {
      byte = raw[pos++];
      size += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    }
    const type = CODE_TYPE[code];
    if (!type) throw new Error(`pack ${this.name}: object at ${offset} is a delta or of unknown type ${code}; walnut writes none`);
    return { type, size, raw, dataAt: pos, offset };
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  /** Where the object after `offset` begins (the trailer for the last one). */
  private nextOffset(offset: number): number {
    if (!this.sortedOffsets) {
      const offsetsAt = 1032 + this.count * 24;
      const arr = new Uint32Array(this.count + 1);
      for (let i = 0; i < this.count; i++) arr[i] = this.idx.readUInt32BE(offsetsAt + i * 4);
      arr[this.count] = fs.statSync(this.packPath).size - 20;
      arr.sort();
      this.sortedOffsets = arr;
    }
    const arr = this.sortedOffsets;
    let lo = 0;
    let hi = arr.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (arr[mid] <= offset) lo = mid + 1;
      else hi = mid;
    }
    return arr[lo];
  }
}
