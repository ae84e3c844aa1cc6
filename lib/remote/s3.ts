/**
 * An S3 remote: any S3-compatible store, path-style, holding the layout of
 * formats/remote.md under a bucket prefix. Objects cannot be appended to, so
 * a segment that grew is uploaded whole, with its SHA-256 and length as
 * object metadata, and only when it changed. Every write is conditional
 * (`If-None-Match: *` to create, `If-Match: <ETag>` to replace), so two
 * writers never undo each other; `probe()` refuses a server that ignores
 * the conditions. Credentials come from the AWS SDK's default chain
 * (environment, profiles) and are never written or printed.
 *
 * This module is loaded only when an S3 remote is used.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  S3Client,
  ListObjectsV2Command,
  HeadObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { WalnutError } from '../errors.js';
import { SEGMENT_NAME } from '../journal.js';
import { sha256, type OpenStoreOptions, type RemoteSegment, type RemoteSpec, type Store, type StoreStats, type StoredObject, type WriteCondition } from './index.js';

/** Segments up to this size are uploaded from memory (retries need a replayable body). */
const BUFFERED_UPLOAD_MAX = 256 * 1024 * 1024;
/** A segment is uploaded whole again rather than get more parts than this… */
export const MAX_PARTS = 32;
/** …or parts that weigh more than this many times its base object. */
export const PARTS_RATIO = 4;

/** One object of a segment: the base (start 0) or an appended part. */
interface Part {
  key: string;
  start: number;
  size: number;
  etag: string;
}

/** How a segment is stored: the objects that make it up, in order. */
interface Layout {
  /** base, then the parts that extend it (each may overlap the one before) */
  chain: Part[];
  /** every part object listed, in the chain or not */
  parts: Part[];
  length: number;
  /** change token: the ETags of the chain */
  tag: string;
}

/**
 * The chain of a segment: from the base object, repeatedly the part that
 * starts at or before the end so far and reaches furthest. Honest parts
 * agree on every byte (a segment only grows), so any cover reads the same.
 */
function chainOf(base: Part | undefined, parts: Part[]): Layout {
  const chain: Part[] = base ? [base] : [];
  let pos = base ? base.size : 0;
  for (;;) {
    let best: Part | undefined;
    for (const p of parts) if (p.start <= pos && p.start + p.size > pos && (!best || p.start + p.size > best.start + best.size)) best = p;
    if (!best) break;
    chain.push(best);
    pos = best.start + best.size;
  }
  return { chain, parts, length: pos, tag: chain.map((p) => `${p.start}:${p.etag.replace(/"/g, '')}`).join('+') };
}

/** Bytes [from, to) of a local file as an upload body. */
function readBody(file: string, from: number, to: number): PutObjectCommandInput['Body'] {
  const length = to - from;
  if (length > BUFFERED_UPLOAD_MAX) return fs.createReadStream(file, { start: from, end: to - 1 });
  const buf = Buffer.alloc(length);
  const fd = fs.openSync(file, 'r');
  try {
    let pos = 0;
    while (pos < length) {
      const n = fs.readSync(fd, buf, pos, length - pos, from + pos);
      if (n === 0) throw new WalnutError('ESHORT', `'${file}' is shorter than ${to} bytes`, { data: { file } });
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return buf;
}

/**
 * Open an S3 store.
 *
 * @param spec - bucket, prefix, endpoint, region
 * @param options.ifMatchQuoted - send If-Match ETags in quotes (what the probe found)
 * @param options.credentials - explicit credentials (tests); default: the AWS chain
 * @example const store = openS3Store({ kind: 's3', name: 'origin', url: 's3://b/p', bucket: 'b', prefix: 'p', endpoint: 'http://127.0.0.1:7480' })
 */
export function openS3Store(spec: Extract<RemoteSpec, { kind: 's3' }>, options: OpenStoreOptions = {}): S3Store {
  return new S3Store(spec, options);
}

export class S3Store implements Store {
  readonly kind = 's3' as const;
  readonly url: string;
  readonly stats: StoreStats = { bytesSent: 0, bytesReceived: 0, requests: 0 };
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly base: string;
  private readonly endpoint: string | undefined;
  ifMatchQuoted: boolean;
  /** segment layouts seen by the last listing, by `<node>/<name>` */
  private readonly layouts = new Map<string, Layout>();

  constructor(spec: Extract<RemoteSpec, { kind: 's3' }>, { ifMatchQuoted = false, credentials, defaultRegion = 'us-east-1' }: OpenStoreOptions = {}) {
    this.url = spec.url;
    this.bucket = spec.bucket;
    this.base = spec.prefix ? `${spec.prefix}/` : '';
    this.endpoint = spec.endpoint;
    this.ifMatchQuoted = ifMatchQuoted;
    this.client = new S3Client({
      endpoint: spec.endpoint,
      region: spec.region ?? defaultRegion,
      forcePathStyle: true,
      // With the default checksums a streamed upload fails on Ceph (411).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 },
      ...(credentials ? { credentials } : {}),
    });
    // Keep the server's Date header with each result: lease expiry is judged
    // by the store's clock, not by the clocks of the machines (Pis have none).
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const headers = (result.response as { headers?: Record<string, string> } | undefined)?.headers;
        if (headers?.date && result.output && typeof result.output === 'object') (result.output as { serverDate?: string }).serverDate = headers.date;
        return result;
      },
      { step: 'deserialize', name: 'walnutServerDate' },
    );
  }

  private key(key: string): string {
    return this.base + key;
  }

  private ifMatch(tag: string): string {
    const bare = tag.replace(/^"|"$/g, '');
    return this.ifMatchQuoted ? `"${bare}"` : bare;
  }

  /** Send one command, counting it and turning S3 failures into clear errors. */
  private async send<T>(what: string, key: string | undefined, command: object): Promise<T> {
    this.stats.requests++;
    try {
      return (await this.client.send(command as never)) as T;
    } catch (err) {
      throw this.explain(err, what, key);
    }
  }

  /** Is this error an S3 "precondition failed" (or "no such key" for If-Match)? */
  private static failedCondition(err: unknown): boolean {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    const status = e?.$metadata?.httpStatusCode;
    return status === 412 || status === 409 || e?.name === 'PreconditionFailed' || e?.name === 'ConditionalRequestConflict';
  }

  private static notFound(err: unknown): boolean {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return e?.$metadata?.httpStatusCode === 404 || e?.name === 'NoSuchKey' || e?.name === 'NotFound';
  }

  /** Turn an SDK error into a WalnutError that says what and where. */
  explain(err: unknown, what: string, key?: string): Error {
    if (err instanceof WalnutError) return err;
    const e = err as { name?: string; code?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    const status = e?.$metadata?.httpStatusCode;
    const name = e?.Code ?? e?.name ?? 'Error';
    const where = `'${this.url}'${this.endpoint ? ` at ${this.endpoint}` : ''}`;
    const data = { url: this.url, endpoint: this.endpoint, key, status, s3Code: name };
    if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e?.message ?? '')) {
      return new WalnutError('ES3CREDENTIALS', `no S3 credentials found for ${where}`, {
        data,
        hints: ['set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials'],
      });
    }
    if (status === 403 || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || name === 'InvalidToken' || name === 'ExpiredToken') {
      const known = name !== 'Unknown' && name !== 'Forbidden' && name !== 'Error';
      return new WalnutError('ES3AUTH', `S3 refused the credentials for ${where}${known ? `: ${name}` : ''}${status ? ` (HTTP ${status})` : ''}`, {
        data,
        hints: ['check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that this key may read and write the bucket'],
      });
    }
    if (name === 'NoSuchBucket') {
      return new WalnutError('ES3NOBUCKET', `bucket '${this.bucket}' does not exist${this.endpoint ? ` at ${this.endpoint}` : ''}`, { data, hints: ['create the bucket first (walnut does not create buckets), or fix the remote URL'] });
    }
    const netCode = e?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
    if (netCode && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH)$/.test(netCode)) {
      return new WalnutError('ES3CONNECT', `cannot reach the S3 endpoint of ${where}: ${netCode}`, { data, hints: ['check the network and remote.<name>.endpoint in .walnut/config'] });
    }
    if (name === 'TimeoutError' || name === 'RequestTimeout') {
      return new WalnutError('ES3CONNECT', `S3 request timed out for ${where}`, { data, hints: ['check the network and run the command again'] });
    }
    return new WalnutError('ES3', `S3 ${what}${key ? ` of '${key}'` : ''} failed for ${where}: ${name}${status ? ` (HTTP ${status})` : ''}${e?.message && e.message !== 'UnknownError' ? `: ${e.message}` : ''}`, { data });
  }

  async exists(): Promise<boolean> {
    // A one-key listing rather than HeadBucket: its errors have a body that
    // names the fault (a HEAD answers a bare 403 or 404).
    try {
      await this.send('ListObjectsV2', this.base, new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base, MaxKeys: 1 }));
      return true;
    } catch (err) {
      if (err instanceof WalnutError && err.code === 'ES3NOBUCKET') return false;
      throw err;
    }
  }

  async prepareWrite(): Promise<void> {
    // Nothing to prepare: a missing bucket fails the first request with ES3NOBUCKET.
  }

  /** List the objects under a prefix: key, size, ETag. */
  private async listObjects(prefix: string): Promise<Array<{ key: string; size: number; etag: string }>> {
    const out: Array<{ key: string; size: number; etag: string }> = [];
    let token: string | undefined;
    do {
      const page = await this.send<{ Contents?: Array<{ Key?: string; Size?: number; ETag?: string }>; IsTruncated?: boolean; NextContinuationToken?: string }>(
        'ListObjectsV2',
        prefix,
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) out.push({ key: o.Key ?? '', size: o.Size ?? 0, etag: o.ETag ?? '' });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** Group listed objects into segment layouts (base object + appended parts). */
  private layoutsOf(objects: Array<{ key: string; size: number; etag: string }>): RemoteSegment[] {
    const prefix = this.key('wal/');
    const groups = new Map<string, { node: string; name: string; base?: Part; parts: Part[] }>();
    for (const o of objects) {
      if (!o.key.startsWith(prefix)) continue;
      const rest = o.key.slice(prefix.length).split('/');
      if (rest.length !== 2) continue;
      const [node, file] = rest;
      const m = /^(.*?)(?:@(\d{15}))?$/.exec(file)!;
      const name = m[1];
      const sm = SEGMENT_NAME.exec(name);
      if (!sm || sm[2] !== node) continue;
      const g = groups.get(`${node}/${name}`) ?? { node, name, parts: [] };
      groups.set(`${node}/${name}`, g);
      if (m[2] === undefined) g.base = { key: o.key, start: 0, size: o.size, etag: o.etag };
      else g.parts.push({ key: o.key, start: Number(m[2]), size: o.size, etag: o.etag });
    }
    const out: RemoteSegment[] = [];
    for (const g of groups.values()) {
      const layout = chainOf(g.base, g.parts);
      if (layout.chain.length === 0) continue;
      this.layouts.set(`${g.node}/${g.name}`, layout);
      out.push({ node: g.node, name: g.name, length: layout.length, tag: layout.tag });
    }
    return out.sort((a, b) => (a.node === b.node ? (a.name < b.name ? -1 : 1) : a.node < b.node ? -1 : 1));
  }

  async listSegments(): Promise<RemoteSegment[]> {
    return this.layoutsOf(await this.listObjects(this.key('wal/')));
  }

  async statSegment(node: string, name: string): Promise<RemoteSegment | undefined> {
    this.layouts.delete(`${node}/${name}`);
    return this.layoutsOf(await this.listObjects(this.key(`wal/${node}/${name}`))).find((s) => s.node === node && s.name === name);
  }

  /** The layout a listing saw for a segment, listing again if needed. */
  private async layoutFor(seg: RemoteSegment): Promise<Layout> {
    let layout = this.layouts.get(`${seg.node}/${seg.name}`);
    if (!layout || layout.tag !== seg.tag) {
      await this.statSegment(seg.node, seg.name);
      layout = this.layouts.get(`${seg.node}/${seg.name}`);
    }
    if (!layout || layout.length < seg.length) throw this.changed(seg);
    return layout;
  }

  async segmentHash(seg: RemoteSegment): Promise<{ sha256: string; length: number; tag: string }> {
    for (let attempt = 0; ; attempt++) {
      const layout = await this.layoutFor(seg);
      const last = layout.chain[layout.chain.length - 1];
      let head: { Metadata?: Record<string, string>; ETag?: string } | undefined;
      try {
        head = await this.send('HeadObject', last.key, new HeadObjectCommand({ Bucket: this.bucket, Key: last.key }));
      } catch (err) {
        if (!(err instanceof WalnutError && (err.data as { status?: number }).status === 404)) throw err;
      }
      if (!head || head.ETag !== last.etag) {
        // Rewritten or consolidated since the listing: look again.
        if (attempt === 2) throw this.changed(seg);
        seg = (await this.statSegment(seg.node, seg.name)) ?? seg;
        continue;
      }
      const meta = head.Metadata ?? {};
      const fresh = { length: layout.length, tag: layout.tag };
      if (meta.sha256 && /^[0-9a-f]{64}$/.test(meta.sha256) && Number(meta.length) === last.start + last.size) return { sha256: meta.sha256, ...fresh };
      // Not written by walnut (no metadata): hash the content itself.
      const { createHash } = await import('node:crypto');
      const h = createHash('sha256');
      await this.readSegment({ ...seg, ...fresh }, 0, layout.length, (c) => h.update(c));
      return { sha256: h.digest('hex'), ...fresh };
    }
  }

  private changed(seg: RemoteSegment): WalnutError {
    return new WalnutError('EREMOTECHANGED', `remote segment 'wal/${seg.node}/${seg.name}' at '${this.url}' changed or disappeared while reading it`, { data: { url: this.url, segment: seg.name }, hints: ['another machine rewrote it meanwhile; run the command again'] });
  }

  async readSegment(seg: RemoteSegment, start: number, end: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    if (end <= start) return;
    const layout = await this.layoutFor(seg);
    let pos = 0;
    for (const part of layout.chain) {
      const from = Math.max(start, pos);
      const to = Math.min(end, part.start + part.size);
      pos = part.start + part.size;
      if (from < to) await this.readRange(seg, part.key, from - part.start, to - part.start, onChunk);
      if (pos >= end) break;
    }
  }

  /** Stream bytes [start, end) of one object. */
  private async readRange(seg: RemoteSegment, key: string, start: number, end: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    let res: { Body?: AsyncIterable<Uint8Array> };
    try {
      res = await this.send('GetObject', key, new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
    } catch (err) {
      if (err instanceof WalnutError && [404, 416].includes((err.data as { status?: number }).status ?? 0)) throw this.changed(seg);
      throw err;
    }
    let got = 0;
    try {
      for await (const chunk of res.Body ?? []) {
        const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        const take = buf.subarray(0, Math.max(0, end - start - got));
        got += take.length;
        this.stats.bytesReceived += buf.length;
        if (take.length) onChunk(take);
      }
    } catch (err) {
      throw this.explain(err, 'GetObject', key);
    }
    if (got !== end - start) throw this.changed(seg);
  }

  /**
   * Write a segment. A new one is uploaded whole (`If-None-Match: *`). One
   * that grew gets its new bytes as a part object `<segment>@<offset>`
   * (`If-None-Match: *`: of two writers appending at the same offset one
   * wins), so only new bytes travel; when the segment would have more than
   * MAX_PARTS parts, or its parts would outweigh the base object
   * PARTS_RATIO times, it is uploaded whole instead (`If-Match` on the base
   * object's ETag) and the parts it covers are deleted.
   */
  async writeSegment({ node, name, file, length, sha256: hash, expect }: { node: string; name: string; file: string; length: number; sha256: string; expect?: RemoteSegment }): Promise<string | undefined> {
    const baseKey = this.key(`wal/${node}/${name}`);
    const metadata = { sha256: hash, length: String(length) };
    if (!expect) {
      const etag = await this.put(baseKey, readBody(file, 0, length), length, { ifNoneMatch: true }, metadata);
      if (etag === undefined) return undefined;
      const layout = chainOf({ key: baseKey, start: 0, size: length, etag }, []);
      this.layouts.set(`${node}/${name}`, layout);
      return layout.tag;
    }
    const layout = this.layouts.get(`${node}/${name}`);
    if (!layout || layout.tag !== expect.tag || layout.length !== expect.length) return undefined;
    const [base, ...parts] = layout.chain;
    const partBytes = parts.reduce((n, p) => n + p.size, 0) + (length - expect.length);
    if (base.start === 0 && base.key === baseKey && (parts.length + 1 > MAX_PARTS || partBytes > PARTS_RATIO * base.size)) {
      const etag = await this.put(baseKey, readBody(file, 0, length), length, { ifMatch: base.etag }, metadata);
      if (etag === undefined) return undefined;
      const known = this.layoutsAll(node, name);
      const fresh = chainOf({ key: baseKey, start: 0, size: length, etag }, known.filter((p) => p.start + p.size > length));
      this.layouts.set(`${node}/${name}`, fresh);
      // The parts the new base covers are garbage now; readers that listed
      // them meanwhile look again (EREMOTECHANGED) and read the base.
      for (const p of known) if (p.start + p.size <= length) await this.deleteObject(p.key.slice(this.base.length)).catch(() => {});
      return fresh.tag;
    }
    const key = `${baseKey}@${String(expect.length).padStart(15, '0')}`;
    const etag = await this.put(key, readBody(file, expect.length, length), length - expect.length, { ifNoneMatch: true }, metadata);
    if (etag === undefined) return undefined;
    const fresh = chainOf(base, [...parts, { key, start: expect.length, size: length - expect.length, etag }]);
    this.layouts.set(`${node}/${name}`, fresh);
    return fresh.tag;
  }

  /** Every part of a segment seen by the last listing (chain or not). */
  private layoutsAll(node: string, name: string): Part[] {
    return this.layouts.get(`${node}/${name}`)?.parts ?? [];
  }

  /** A conditional PUT; undefined when the condition failed. */
  private async put(key: string, body: PutObjectCommandInput['Body'], length: number, condition: WriteCondition, metadata?: Record<string, string>): Promise<string | undefined> {
    const input: PutObjectCommandInput = { Bucket: this.bucket, Key: key, Body: body, ContentLength: length, Metadata: metadata };
    if (condition && 'ifNoneMatch' in condition) input.IfNoneMatch = '*';
    if (condition && 'ifMatch' in condition) input.IfMatch = this.ifMatch(condition.ifMatch);
    this.stats.requests++;
    try {
      const res = await this.client.send(new PutObjectCommand(input));
      this.stats.bytesSent += length;
      return res.ETag ?? '';
    } catch (err) {
      if (S3Store.failedCondition(err)) return undefined;
      if (condition && 'ifMatch' in condition && S3Store.notFound(err)) return undefined;
      throw this.explain(err, 'PutObject', key);
    }
  }

  async getObject(key: string): Promise<StoredObject | undefined> {
    const k = this.key(key);
    let res: { Body?: { transformToByteArray(): Promise<Uint8Array> }; ETag?: string; LastModified?: Date; serverDate?: string };
    try {
      res = await this.send('GetObject', k, new GetObjectCommand({ Bucket: this.bucket, Key: k }));
    } catch (err) {
      if (err instanceof WalnutError && (err.data as { status?: number }).status === 404) return undefined;
      throw err;
    }
    const body = Buffer.from((await res.Body?.transformToByteArray()) ?? new Uint8Array());
    this.stats.bytesReceived += body.length;
    const nowMs = res.serverDate ? Date.parse(res.serverDate) : Date.now();
    return { body, tag: res.ETag ?? '', modifiedMs: res.LastModified?.getTime() ?? nowMs, nowMs: Number.isNaN(nowMs) ? Date.now() : nowMs };
  }

  async putObject(key: string, body: Buffer, condition?: WriteCondition): Promise<string | undefined> {
    return this.put(this.key(key), body, body.length, condition);
  }

  async listKeys(prefix: string): Promise<string[]> {
    const base = this.key('');
    return (await this.listObjects(this.key(prefix))).map((o) => o.key.slice(base.length));
  }

  async deleteObject(key: string): Promise<void> {
    const k = this.key(key);
    try {
      await this.send('DeleteObject', k, new DeleteObjectCommand({ Bucket: this.bucket, Key: k }));
    } catch (err) {
      if (err instanceof WalnutError && (err.data as { status?: number }).status === 404) return;
      throw err;
    }
  }

  /**
   * Check that the server honours conditional writes (walnut relies on them
   * to never lose a concurrent write): create a probe object, create it again
   * with `If-None-Match: *` (must fail), replace it with a wrong `If-Match`
   * (must fail) and with the right one (must succeed; tells whether the
   * server wants the ETag quoted).
   *
   * @returns whether If-Match wants a quoted ETag
   * @throws WalnutError `ES3CONDITIONS` when the server ignores conditions
   */
  async probe(): Promise<{ ifMatchQuoted: boolean }> {
    const key = `probe/${randomBytes(8).toString('hex')}`;
    const refuse = (what: string) =>
      new WalnutError('ES3CONDITIONS', `the S3 server of '${this.url}'${this.endpoint ? ` at ${this.endpoint}` : ''} ignores conditional writes (${what}); walnut cannot use it safely`, {
        data: { url: this.url, endpoint: this.endpoint },
        hints: ['use a server that supports If-None-Match and If-Match on PUT (AWS S3, Ceph RGW, recent MinIO), or a directory remote'],
      });
    try {
      const first = await this.putObject(key, Buffer.from('walnut probe 1\n'), { ifNoneMatch: true });
      if (first === undefined) throw refuse('If-None-Match: * failed on a new key');
      const second = await this.putObject(key, Buffer.from('walnut probe 2\n'), { ifNoneMatch: true });
      if (second !== undefined) throw refuse('If-None-Match: * did not stop an overwrite');
      const wrong = await this.putObject(key, Buffer.from('walnut probe 3\n'), { ifMatch: `"${sha256(key).slice(0, 32)}"` });
      if (wrong !== undefined) throw refuse('If-Match with a wrong ETag did not stop an overwrite');
      for (const quoted of [this.ifMatchQuoted, !this.ifMatchQuoted]) {
        this.ifMatchQuoted = quoted;
        const right = await this.putObject(key, Buffer.from('walnut probe 4\n'), { ifMatch: first });
        if (right !== undefined) return { ifMatchQuoted: quoted };
      }
      throw refuse('If-Match with the right ETag was refused');
    } finally {
      await this.deleteObject(key).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
