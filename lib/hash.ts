/**
 * Content hashes are git blob ids, so `git hash-object` agrees with walnut.
 */
import crypto, { createHash } from 'node:crypto';

/**
 * The git blob id of some content: SHA-1 of `blob <length>\0<content>`.
 * @example blobId('hello\n') // 'ce013625030ba8dba906f756967f9e9ca394464a'
 */
export function blobId(content: string | Uint8Array): string {
  // a text: one call, encoded once (no Hash object, no Buffer of its own)
  if (typeof content === 'string') return crypto.hash('sha1', `blob ${Buffer.byteLength(content)}\0${content}`, 'hex');
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}
