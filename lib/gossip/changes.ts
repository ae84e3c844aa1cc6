/**
 * A stream of changes as they arrive: new records in `wal/` (this node's own
 * writes: `local`; other nodes' segments brought by pull: `pull`) and in
 * `.walnut/gossip/` (`gossip`). Only bytes appended after the start are
 * read; a record that arrives twice (by gossip, then by pull) is reported
 * once, the first time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeValue, RS_BYTE } from '../../formats/usv.js';
import { scanSegment, readHash, SEGMENT_NAME, type ReadIssue } from '../journal.js';
import type { Repo } from '../repo.js';
import { gossipDir } from './store.js';
import { FolderWatch } from './tail.js';

export type Via = 'local' | 'pull' | 'gossip';

export interface Change {
  target: string;
  field: string;
  /** the decoded value; null: the field was deleted */
  value: unknown;
  /** the node that wrote the record */
  origin: string;
  timestamp: string;
  via: Via;
  /** the file it arrived in, relative to the data directory */
  segment: string;
  hash: string;
}

/** The offset after the last complete record of a file (reads only its tail). */
function completeEnd(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return 0;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const n = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, size - n);
    let i = n - 1;
    if (i >= 0 && buf[i] === 0x0a) i--;
    for (; i >= 0; i--) {
      if (buf[i] === RS_BYTE || (buf[i] === 0x9e && i >= 2 && buf[i - 1] === 0x90 && buf[i - 2] === 0xe2)) {
        return size - n + i + 1 + (buf[i + 1] === 0x0a ? 1 : 0);
      }
    }
    return n === size ? 0 : size;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Follow the journal folders and report every new record until `signal` aborts.
 *
 * @param options.repo - the repository
 * @param options.signal - ends the stream
 * @param options.onChange - called for each new record, in arrival order
 * @param options.onReady - called once the folders are watched
 * @param options.onIssue - damaged pieces of a journal
 * @returns when stopped
 * @example await watchChanges({ repo, signal: ac.signal, onChange: (c) => console.log(c.target, c.field, c.value) })
 */
export async function watchChanges({ repo, signal, onChange, onReady, onIssue }: { repo: Repo; signal: AbortSignal; onChange: (c: Change) => void; onReady?: () => void; onIssue?: (i: ReadIssue) => void }): Promise<void> {
  const gdir = gossipDir(repo);
  const dirs = [repo.wal, gdir];
  const offsets = new Map<string, number>();
  const seen = new Map<string, true>();
  const remember = (hash: string): boolean => {
    if (seen.has(hash)) return false;
    seen.set(hash, true);
    if (seen.size > 100_000) seen.delete(seen.keys().next().value as string);
    return true;
  };
  for (const d of dirs) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(d);
    } catch {
      /* created by the watch */
    }
    for (const n of names) if (SEGMENT_NAME.test(n)) offsets.set(path.join(d, n), completeEnd(path.join(d, n)));
  }
  const onFile = (file: string): boolean => {
    const name = path.basename(file);
    if (!SEGMENT_NAME.test(name)) return false;
    const dir = path.dirname(file);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return false;
    }
    let from = offsets.get(file) ?? 0;
    if (size < from) from = 0; // replaced by a shorter file
    if (size === from) return false;
    const rel = path.relative(repo.root, file);
    const { complete } = scanSegment(
      file,
      { start: from, rel },
      ({ record, text }) => {
        const hash = readHash(record, text);
        if (!remember(hash)) return;
        const via: Via = dir === gdir ? 'gossip' : record.node === repo.node ? 'local' : 'pull';
        onChange({ target: record.target, field: record.field, value: decodeValue(record.value), origin: record.node, timestamp: record.timestamp, via, segment: rel, hash });
      },
      (i) => {
        if (i.code !== 'ETORN') onIssue?.(i); // a record being written: read at the next look
      },
    );
    offsets.set(file, complete);
    return complete > from;
  };
  const watch = new FolderWatch({ dirs, onFile, onRemove: (f) => offsets.delete(path.resolve(f)) });
  if (signal.aborted) return;
  await watch.start();
  try {
    onReady?.();
    watch.sweep(); // anything appended while chokidar started
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await watch.close();
  }
}
