/**
 * A directory remote: local disk, USB stick or network mount, holding the
 * layout of formats/remote.md as plain files. A segment is extended by
 * copying the remote file to a temporary file beside it, appending the new
 * bytes, fsync and rename, so a reader (or a power cut) sees the old or the
 * new segment, never half of one. Its SHA-256 is kept in a sidecar file
 * `<segment>.sha256` written after the segment; a sidecar whose length does
 * not match is ignored and the hash recomputed. Compare-and-swap writes are
 * serialised with proper-lockfile locks in `.locks/`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SEGMENT_NAME } from '../journal.js';
import { WalnutError } from '../errors.js';
import { fsyncDir, TEMP_SUFFIX } from '../fsutil.js';
import { hashFile, sha256, MARKER_KEY, type RemoteSegment, type Store, type StoreStats, type StoredObject, type WriteCondition } from './index.js';

/** Entries walnut itself makes at a directory remote's root. */
const OWN_ENTRIES = new Set([MARKER_KEY, 'wal', 'nodes', 'locks', 'probe', 'versions', '.locks']);

export class DirStore implements Store {
  readonly kind = 'dir' as const;
  readonly stats: StoreStats = { bytesSent: 0, bytesReceived: 0, requests: 0 };

  /**
   * @param root - the remote directory (absolute)
   * @param url - the URL it was configured with, for messages
   */
  constructor(
    readonly root: string,
    readonly url: string,
  ) {}

  private file(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  async exists(): Promise<boolean> {
    return fs.existsSync(this.root);
  }

  /**
   * Make sure the directory can take walnut's layout: created when missing;
   * refused when it holds other files and no marker (a typo in a path must not
   * scatter journals into someone's home folder).
   */
  async prepareWrite(): Promise<void> {
    fs.mkdirSync(this.root, { recursive: true });
    if (fs.existsSync(path.join(this.root, MARKER_KEY))) return;
    const foreign = fs.readdirSync(this.root).filter((n) => !OWN_ENTRIES.has(n));
    if (foreign.length > 0) {
      throw new WalnutError('ENOTREMOTE', `'${this.root}' is not a walnut remote: it holds other files (${foreign.slice(0, 3).map((n) => `'${n}'`).join(', ')}${foreign.length > 3 ? ', …' : ''}) and no '${MARKER_KEY}' file`, {
        data: { url: this.url },
        hints: ['point the remote at an empty or new directory: walnut remote remove <name>, then walnut remote add <name> <dir>'],
      });
    }
  }

  async listSegments(): Promise<RemoteSegment[]> {
    const wal = path.join(this.root, 'wal');
    const out: RemoteSegment[] = [];
    let nodes: string[];
    try {
      nodes = fs.readdirSync(wal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw err;
    }
    this.stats.requests++;
    for (const node of nodes.sort()) {
      let names: string[];
      try {
        names = fs.readdirSync(path.join(wal, node));
      } catch {
        continue;
      }
      this.stats.requests++;
      for (const name of names.sort()) {
        const m = SEGMENT_NAME.exec(name);
        if (!m || m[2] !== node) continue;
        let st: fs.Stats;
        try {
          st = fs.statSync(path.join(wal, node, name));
        } catch {
          continue;
        }
        if (!st.isFile()) continue;
        out.push({ node, name, length: st.size, tag: tagOf(st) });
      }
    }
    return out;
  }

  async statSegment(node: string, name: string): Promise<RemoteSegment | undefined> {
    this.stats.requests++;
    try {
      const st = fs.statSync(this.file(`wal/${node}/${name}`));
      return st.isFile() ? { node, name, length: st.size, tag: tagOf(st) } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async segmentHash(seg: RemoteSegment): Promise<{ sha256: string; length: number; tag: string }> {
    const file = this.file(`wal/${seg.node}/${seg.name}`);
    this.stats.requests++;
    const side = readSidecar(file);
    if (side && side.length === seg.length) return { sha256: side.sha256, length: seg.length, tag: seg.tag };
    // No sidecar, or one from before a crash: hash the file itself. It only
    // grows, so its first seg.length bytes are what the listing saw.
    try {
      return { sha256: hashFile(file, seg.length).full, length: seg.length, tag: seg.tag };
    } catch (err) {
      throw this.gone(seg, err);
    }
  }

  private gone(seg: RemoteSegment, err: unknown): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || (err instanceof WalnutError && err.code === 'ESHORT')) {
      return new WalnutError('EREMOTECHANGED', `remote segment 'wal/${seg.node}/${seg.name}' at '${this.url}' disappeared or shrank while reading it`, { data: { url: this.url, segment: seg.name }, hints: ['someone changed the remote directory by hand; run the command again'] });
    }
    return err as Error;
  }

  async readSegment(seg: RemoteSegment, start: number, end: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    const file = this.file(`wal/${seg.node}/${seg.name}`);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw this.gone(seg, err);
    }
    this.stats.requests++;
    try {
      let pos = start;
      while (pos < end) {
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, end - pos));
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) throw this.gone(seg, new WalnutError('ESHORT', 'short'));
        pos += n;
        this.stats.bytesReceived += n;
        onChunk(buf.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  async writeSegment({ node, name, file, length, sha256: hash, expect }: { node: string; name: string; file: string; length: number; sha256: string; expect?: RemoteSegment }): Promise<string | undefined> {
    const target = this.file(`wal/${node}/${name}`);
    const dir = path.dirname(target);
    fs.mkdirSync(dir, { recursive: true });
    return this.locked(`wal/${node}/${name}`, () => {
      // Compare: the remote copy must still be the one the caller checked.
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (expect ? !st || tagOf(st) !== expect.tag : st !== undefined) return undefined;
      // Swap: old bytes + new bytes in a temporary file, fsync, rename.
      const from = expect ? expect.length : 0;
      const tmp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
      try {
        if (expect) fs.copyFileSync(target, tmp);
        const out = fs.openSync(tmp, expect ? 'r+' : 'w');
        try {
          copyRange(file, out, from, length);
          fs.fsyncSync(out);
        } finally {
          fs.closeSync(out);
        }
        fs.renameSync(tmp, target);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      fsyncDir(dir);
      writeSidecar(target, hash, length);
      this.stats.bytesSent += length - from;
      this.stats.requests++;
      return tagOf(fs.statSync(target));
    });
  }

  async getObject(key: string): Promise<StoredObject | undefined> {
    const file = this.file(key);
    this.stats.requests++;
    let body: Buffer;
    let st: fs.Stats;
    try {
      body = fs.readFileSync(file);
      st = fs.statSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    this.stats.bytesReceived += body.length;
    return { body, tag: sha256(body).slice(0, 32), modifiedMs: st.mtimeMs, nowMs: Date.now() };
  }

  async putObject(key: string, body: Buffer, condition?: WriteCondition): Promise<string | undefined> {
    const target = this.file(key);
    const dir = path.dirname(target);
    fs.mkdirSync(dir, { recursive: true });
    const tag = sha256(body).slice(0, 32);
    const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
    this.stats.requests++;
    try {
      fs.writeFileSync(tmp, body);
      const fd = fs.openSync(tmp, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (condition && 'ifNoneMatch' in condition) {
        // Exclusive create of a complete file: link fails if the name exists.
        try {
          fs.linkSync(tmp, target);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') return undefined;
          if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
          // No hard links (FAT, some network mounts): compare under a lock.
          const made = await this.locked(key, () => {
            if (fs.existsSync(target)) return false;
            fs.renameSync(tmp, target);
            return true;
          });
          if (!made) return undefined;
        }
      } else if (condition && 'ifMatch' in condition) {
        const ok = await this.locked(key, () => {
          let current: Buffer;
          try {
            current = fs.readFileSync(target);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
            throw err;
          }
          if (sha256(current).slice(0, 32) !== condition.ifMatch) return false;
          fs.renameSync(tmp, target);
          return true;
        });
        if (!ok) return undefined;
      } else {
        fs.renameSync(tmp, target);
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    fsyncDir(dir);
    this.stats.bytesSent += body.length;
    return tag;
  }

  async listKeys(prefix: string): Promise<string[]> {
    this.stats.requests++;
    const out: string[] = [];
    const walk = (rel: string) => {
      let names: fs.Dirent[];
      try {
        names = fs.readdirSync(this.file(rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const d of names) {
        if (d.name.endsWith(TEMP_SUFFIX) || d.name.startsWith('.')) continue;
        const key = rel ? `${rel}/${d.name}` : d.name;
        if (d.isDirectory()) walk(key);
        else out.push(key);
      }
    };
    const dir = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix.slice(0, prefix.lastIndexOf('/') + 1).replace(/\/$/, '');
    walk(dir);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  async deleteObject(key: string): Promise<void> {
    this.stats.requests++;
    fs.rmSync(this.file(key), { force: true });
  }

  async close(): Promise<void> {}

  /** Run `fn` holding the proper-lockfile lock of `key` in `.locks/`. */
  private async locked<T>(key: string, fn: () => T): Promise<T> {
    const { default: lockfile } = await import('proper-lockfile');
    const locks = path.join(this.root, '.locks');
    fs.mkdirSync(locks, { recursive: true });
    const lockfilePath = path.join(locks, key.replace(/\//g, '~') + '.lock');
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.file(key), { realpath: false, lockfilePath, stale: 10_000, retries: { retries: 200, minTimeout: 5, maxTimeout: 100, factor: 1.3 } });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
        throw new WalnutError('ELOCKED', `'${lockfilePath}' is held by another walnut for too long`, { exit: 'lockHeld', data: { url: this.url, key }, hints: ['wait for the other push to finish and run the command again'] });
      }
      throw err;
    }
    try {
      return fn();
    } finally {
      await release().catch(() => {});
    }
  }
}

/** A file's change token: size, modification time and inode. */
function tagOf(st: fs.Stats): string {
  return `${st.size}-${Math.round(st.mtimeMs * 1000)}-${st.ino}`;
}

function readSidecar(file: string): { sha256: string; length: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`${file}.sha256`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^([0-9a-f]{64}) (\d+)\n?$/.exec(text);
  return m ? { sha256: m[1], length: Number(m[2]) } : undefined;
}

function writeSidecar(file: string, hash: string, length: number): void {
  const side = `${file}.sha256`;
  const tmp = `${path.dirname(side)}/.${path.basename(side)}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`;
  fs.writeFileSync(tmp, `${hash} ${length}\n`);
  fs.renameSync(tmp, side);
}

/** Copy bytes [from, to) of `src` to the same offsets of the open file `out`. */
function copyRange(src: string, out: number, from: number, to: number): void {
  const fd = fs.openSync(src, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = from;
    while (pos < to) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
      if (n === 0) throw new WalnutError('ESHORT', `'${src}' is shorter than ${to} bytes`, { data: { file: src } });
      fs.writeSync(out, buf, 0, n, pos);
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}
