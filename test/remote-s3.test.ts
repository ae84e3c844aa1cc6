/**
 * The S3 store and remote leases against a real S3 server (Ceph RGW started
 * by scripts/s3-server.sh): put, list, ranged get, conditional writes, the
 * lease race, expiry and take-over, the conditions probe, wrong credentials.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { openStore, sha256, type RemoteSpec, type Store } from '../lib/remote/index.js';
import { S3Store, MAX_PARTS } from '../lib/remote/s3.js';
import { acquireLease, renewLease, releaseLease, withRemoteLease, type Lease } from '../lib/remote/lease.js';
import { WalnutError } from '../lib/errors.js';
import { tmpDir } from './helpers.js';
import { s3Server, s3Client, newBucket, closeClients } from './s3-server.js';

const stores: Store[] = [];

async function store(bucket: string, { secret, endpoint }: { secret?: string; endpoint?: string } = {}): Promise<S3Store> {
  const s = s3Server();
  const spec: RemoteSpec = { kind: 's3', name: 'origin', url: `s3://${bucket}/p`, bucket, prefix: 'p', endpoint: endpoint ?? s.endpoint };
  const st = (await openStore(spec, { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: secret ?? s.secretAccessKey } })) as S3Store;
  stores.push(st);
  return st;
}

async function rejects(p: Promise<unknown>): Promise<WalnutError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, WalnutError);
    return err as WalnutError;
  }
  assert.unreachable('expected an error');
  throw new Error('unreachable');
}

function localFile(content: string | Buffer): string {
  const file = path.join(tmpDir(), 'seg.usv');
  fs.writeFileSync(file, content);
  return file;
}

test('segments: put, list, stat, hash from metadata, ranged get', async () => {
  const bucket = await newBucket();
  const st = await store(bucket);
  const text = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
  const file = localFile(text);
  const tag = await st.writeSegment({ node: 'pi-01', name: '20261121_pi-01.usv', file, length: 20, sha256: sha256(text.subarray(0, 20)) });
  assert.type(tag, 'string');
  await st.writeSegment({ node: 'pi-02', name: '20261121_pi-02.usv', file, length: 5, sha256: sha256(text.subarray(0, 5)) });
  const list = await st.listSegments();
  assert.equal(list.map((s) => [s.node, s.name, s.length]), [['pi-01', '20261121_pi-01.usv', 20], ['pi-02', '20261121_pi-02.usv', 5]]);
  assert.is(list[0].tag, tag);
  assert.equal(await st.statSegment('pi-01', '20261121_pi-01.usv'), list[0]);
  assert.is(await st.statSegment('pi-03', '20261121_pi-03.usv'), undefined);
  assert.equal(await st.segmentHash(list[0]), { sha256: sha256(text.subarray(0, 20)), length: 20, tag: tag! });
  const chunks: Buffer[] = [];
  await st.readSegment(list[0], 7, 15, (c) => chunks.push(c));
  assert.is(Buffer.concat(chunks).toString(), '789abcde');
  assert.is(st.stats.bytesReceived, 8, 'a ranged read moves only the range');
  // The object carries its hash and length as metadata.
  const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/wal/pi-01/20261121_pi-01.usv' }));
  assert.equal(head.Metadata, { sha256: sha256(text.subarray(0, 20)), length: '20' });
  // Objects that are not segments of their folder's node are left out.
  await st.putObject('wal/pi-01/notes.txt', Buffer.from('x'));
  await st.putObject('wal/pi-01/20261121_pi-02.usv', Buffer.from('x'));
  assert.is((await st.listSegments()).length, 2);
});

test('segments: conditional replace; a stale writer changes nothing', async () => {
  const bucket = await newBucket();
  const st = await store(bucket);
  const file = localFile('aaaa\nbbbb\ncccc\n');
  await st.writeSegment({ node: 'n', name: '20261121_n.usv', file, length: 5, sha256: 'x'.repeat(64) });
  const [v1] = await st.listSegments();
  assert.type(await st.writeSegment({ node: 'n', name: '20261121_n.usv', file, length: 10, sha256: 'y'.repeat(64), expect: v1 }), 'string');
  // A writer that still believes in v1 is refused, and so is a create.
  assert.is(await st.writeSegment({ node: 'n', name: '20261121_n.usv', file, length: 15, sha256: 'z'.repeat(64), expect: v1 }), undefined);
  assert.is(await st.writeSegment({ node: 'n', name: '20261121_n.usv', file, length: 15, sha256: 'z'.repeat(64) }), undefined);
  const [now] = await st.listSegments();
  assert.is(now.length, 10);
});

test('a segment grows by parts: ranged reads across them; consolidated past MAX_PARTS; stale readers told', async () => {
  const bucket = await newBucket();
  const st = await store(bucket);
  const name = '20261121_n.usv';
  const text = Buffer.from(Array.from({ length: 200 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
  const file = localFile(text);
  await st.writeSegment({ node: 'n', name, file, length: 100, sha256: sha256(text.subarray(0, 100)) });
  let seg = (await st.statSegment('n', name))!;
  const before = st.stats.bytesSent;
  for (let to = 101; to <= 100 + MAX_PARTS; to++) {
    assert.type(await st.writeSegment({ node: 'n', name, file, length: to, sha256: sha256(text.subarray(0, to)), expect: seg }), 'string');
    seg = (await st.statSegment('n', name))!;
    assert.is(seg.length, to);
  }
  assert.is(st.stats.bytesSent - before, MAX_PARTS, 'one byte per append');
  const keys = async () => ((await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `p/wal/n/${name}` }))).Contents ?? []).map((o) => o.Key!);
  assert.is((await keys()).length, MAX_PARTS + 1, 'the base and its parts');
  const reader = await store(bucket);
  const [listed] = await reader.listSegments();
  const read = async (r: S3Store, sg: typeof seg, a: number, b: number) => {
    const chunks: Buffer[] = [];
    await r.readSegment(sg, a, b, (c) => chunks.push(Buffer.from(c)));
    return Buffer.concat(chunks).toString();
  };
  for (const [a, b] of [[0, seg.length], [95, 110], [100, 101], [seg.length - 7, seg.length], [3, 12]]) {
    assert.is(await read(reader, listed, a, b), text.subarray(a, b).toString(), `bytes ${a}-${b}`);
  }
  assert.equal(await reader.segmentHash(listed), { sha256: sha256(text.subarray(0, seg.length)), length: seg.length, tag: listed.tag });
  // One more part would pass MAX_PARTS: the segment is uploaded whole and its parts deleted.
  const to = seg.length + 5;
  const b2 = st.stats.bytesSent;
  assert.type(await st.writeSegment({ node: 'n', name, file, length: to, sha256: sha256(text.subarray(0, to)), expect: seg }), 'string');
  assert.is(st.stats.bytesSent - b2, to);
  assert.equal(await keys(), [`p/wal/n/${name}`]);
  // A reader that listed the parts before finds them gone and is told so; listing again reads right.
  const e = await rejects(read(reader, listed, 110, 120));
  assert.is(e.code, 'EREMOTECHANGED');
  const again = (await reader.statSegment('n', name))!;
  assert.is(await read(reader, again, 0, to), text.subarray(0, to).toString());
  // Parts whose bytes outweigh the base four times also make a whole upload.
  seg = again;
  const big = Buffer.alloc(4 * to + 1, 'z');
  const f2 = localFile(Buffer.concat([text.subarray(0, to), big]));
  const b3 = st.stats.bytesSent;
  await st.writeSegment({ node: 'n', name, file: f2, length: to + big.length, sha256: 'c'.repeat(64), expect: seg });
  assert.is(st.stats.bytesSent - b3, to + big.length);
});

test('the conditions probe passes on the real server and finds the ETag style', async () => {
  const st = await store(await newBucket());
  assert.equal(await st.probe(), { ifMatchQuoted: false });
  assert.equal(await st.listSegments(), []);
  assert.is(await st.getObject('probe'), undefined);
});

test('lease race: 10 concurrent acquirers, exactly one wins each round (6 rounds: fresh, released, expired)', async () => {
  const bucket = await newBucket();
  const contenders = await Promise.all(Array.from({ length: 10 }, () => store(bucket)));
  for (let round = 0; round < 6; round++) {
    const results = await Promise.all(contenders.map((st, i) => acquireLease(st, { name: 'activate', owner: `m${i}`, ttlMs: round === 4 ? 1000 : 30_000 })));
    const winners = results.filter((r): r is Lease => 'key' in r);
    assert.is(winners.length, 1, `round ${round}: ${winners.length} winners`);
    for (const r of results) if (!('key' in r)) assert.is(r.owner, winners[0].owner, 'the losers see the winner');
    const w = contenders[results.indexOf(winners[0])];
    if (round === 4) {
      // The winner dies: after its time to live (by the server's clock) the lease is free again.
      await new Promise((r) => setTimeout(r, 2200));
    } else {
      await releaseLease(w, winners[0]);
    }
  }
});

test('lease: renew keeps it; an expired lease taken over cannot be renewed by its old holder', async () => {
  const bucket = await newBucket();
  const [a, b] = [await store(bucket), await store(bucket)];
  // 4 s: long enough that acquire, renew and the competing acquire all happen within it on a loaded machine
  const la = (await acquireLease(a, { name: 'x', owner: 'a', ttlMs: 4000 })) as Lease;
  assert.ok('key' in la);
  const renewedAt = Date.now();
  await renewLease(a, la);
  const busy = await acquireLease(b, { name: 'x', owner: 'b', ttlMs: 1000 });
  assert.not.ok('key' in busy, 'held while the renewed lease runs');
  await new Promise((r) => setTimeout(r, Math.max(0, renewedAt + 5200 - Date.now())));
  const lb = await acquireLease(b, { name: 'x', owner: 'b', ttlMs: 30_000 });
  assert.ok('key' in lb, 'taken over after expiry');
  const err = await rejects(renewLease(a, la));
  assert.is(err.code, 'ELEASELOST');
  await releaseLease(a, la); // a late release of a lost lease changes nothing
  assert.not.ok('key' in (await acquireLease(a, { name: 'x', owner: 'a' })));
});

test('withRemoteLease: runs exclusively, waits, reports the holder', async () => {
  const bucket = await newBucket();
  const [a, b] = [await store(bucket), await store(bucket)];
  let inside = 0;
  let most = 0;
  const work = (st: S3Store, owner: string) =>
    withRemoteLease(st, { name: 'job', owner, ttlMs: 5000, waitMs: 20_000 }, async () => {
      most = Math.max(most, ++inside);
      await new Promise((r) => setTimeout(r, 300));
      inside--;
    });
  await Promise.all([work(a, 'a'), work(b, 'b'), work(a, 'a2')]);
  assert.is(most, 1);
  const held = (await acquireLease(a, { name: 'job2', owner: 'pi-01 (machine 1234)', ttlMs: 60_000 })) as Lease;
  const err = await rejects(withRemoteLease(b, { name: 'job2', owner: 'b', waitMs: 0 }, async () => {}));
  assert.is(err.code, 'ELOCKED');
  assert.is(err.exit, 'lockHeld');
  assert.match(err.message, /^remote lease 'job2' at 's3:\/\/.*\/p' is held by pi-01 \(machine 1234\) \(expires in \d+ s unless renewed\)$/);
  await releaseLease(a, held);
});

test('wrong credentials, a missing bucket, no server: clear errors', async () => {
  const bucket = await newBucket();
  const bad = await store(bucket, { secret: 'wrong-secret' });
  const e1 = await rejects(bad.listSegments());
  assert.is(e1.code, 'ES3AUTH');
  assert.match(e1.message, /^S3 refused the credentials for 's3:\/\/.*\/p' at http:\/\/127\.0\.0\.1:\d+: SignatureDoesNotMatch \(HTTP 403\)$/);
  assert.not.match(JSON.stringify(e1.toJSON()), 'wrong-secret');
  const e2 = await rejects(bad.exists());
  assert.is(e2.code, 'ES3AUTH');
  const missing = await store('no-such-bucket-here');
  assert.is(await missing.exists(), false);
  assert.is((await rejects(missing.listSegments())).code, 'ES3NOBUCKET');
  const closed = await store(bucket, { endpoint: 'http://127.0.0.1:9' });
  const e3 = await rejects(closed.listSegments());
  assert.is(e3.code, 'ES3CONNECT');
});

test('a server that ignores conditional writes is refused by the probe', async () => {
  let puts = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'PUT') puts++;
      res.writeHead(req.method === 'PUT' ? 200 : 204, { ETag: `"${String(puts).padStart(32, '0')}"` });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const st = await store('fake-bucket', { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}` });
    const err = await rejects(st.probe());
    assert.is(err.code, 'ES3CONDITIONS');
    assert.match(err.message, /ignores conditional writes \(If-None-Match: \* did not stop an overwrite\)/);
    assert.is(puts, 2);
  } finally {
    server.close();
  }
});

test.after(async () => {
  for (const st of stores.splice(0)) await st.close();
  closeClients();
});

test.run();
