/**
 * Content hashes are git blob ids, so `git hash-object` agrees with walnut.
 */
import { createHash } from 'node:crypto';

/**
 * The git blob id of some content: SHA-1 of `blob <length>\0<content>`.
 * @example blobId('hello\n') // 'ce013625030ba8dba906f756967f9e9ca394464a'
 */
export function blobId(content: string | Uint8Array): string {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}
