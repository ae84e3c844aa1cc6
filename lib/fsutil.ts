/**
 * File helpers shared by the engine: atomic replace (write temporary in the
 * same folder, fsync, rename, fsync the folder), so a reader never sees half
 * a file, and a crash leaves either the old or the new content.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';

/** Temporary files walnut creates end with this; fsck reports leftovers. */
export const TEMP_SUFFIX = '.walnut-tmp';

/**
 * Replace a file atomically.
 *
 * @param file - the file to replace or create
 * @param data - its new content
 * @param options.fsync - fsync the file and its folder (default true)
 * @example writeFileAtomic('/data/companies/acme/_index.md', text)
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, { fsync = true, mode }: { fsync?: boolean; mode?: number } = {}): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
  const fd = fs.openSync(tmp, 'w', mode ?? 0o666);
  try {
    fs.writeFileSync(fd, data);
    if (fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (fsync) fsyncDir(dir);
}

/** fsync a folder so a rename or create in it survives a power cut. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* some file systems refuse fsync on folders; nothing more to do */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Up to this many files are fsynced one by one; more get one syncfs (`syncWritten`). */
export const SYNCFS_MIN_FILES = 16;

/**
 * Make many written files durable at once: one syncfs of the file system
 * holding `root` (`sync -f`, coreutils; Node has no syncfs) instead of an
 * fsync per file and per folder. Falls back to fsyncing each file and each
 * folder for `SYNCFS_MIN_FILES` files or fewer, or when `sync -f` fails.
 *
 * @param root - a path on the file system to sync (the data directory)
 * @param written - files whose content must be durable
 * @param options.dirs - folders whose entries must be durable (default: the folders of `written`)
 * @returns true when one syncfs did it, false when files and folders were fsynced one by one
 * @example syncWritten(repo.root, files) // after writing, before the checkpoint
 */
export function syncWritten(root: string, written: string[], { dirs }: { dirs?: string[] } = {}): boolean {
  const folders = dirs ?? [...new Set(written.map((f) => path.dirname(f)))];
  if (written.length === 0 && folders.length === 0) return true;
  if (Math.max(written.length, folders.length) > SYNCFS_MIN_FILES && syncFileSystem(root)) return true;
  for (const file of written) {
    const fd = fs.openSync(file, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  for (const d of new Set(folders)) fsyncDir(d);
  return false;
}

/** syncfs of the file system holding `root` (`sync -f`); false when it could not be done. */
export function syncFileSystem(root: string): boolean {
  const r = spawnSync('sync', ['-f', root], { stdio: 'ignore' });
  return r.status === 0;
}

/** Read a file, or undefined when it does not exist. */
export function readFileOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** True when `child` is `parent` or inside it, after resolving both. */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
