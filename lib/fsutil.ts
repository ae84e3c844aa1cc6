/**
 * File helpers shared by the engine: atomic replace (write temporary in the
 * same folder, fsync, rename, fsync the folder), so a reader never sees half
 * a file, and a crash leaves either the old or the new content.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

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
