/**
 * The sync protocol against both kinds of remote: a directory and a real
 * S3 server (Ceph RGW, test/s3-server.ts). Every test runs once per kind.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { encodeRecord } from '../formats/usv.js';
import { openRepo, type Repo } from '../lib/repo.js';
import { WalnutError } from '../lib/errors.js';
import { addRemote, openStore, sha256, type OpenStoreOptions } from '../lib/remote/index.js';
import { push, pull, type SyncResult } from '../lib/remote/sync.js';
import { initRepoDir, tmpDir } from './helpers.js';
import { s3Server, s3Client, newBucket, closeClients } from './s3-server.js';

type Kind = 'dir' | 's3';
const DAY = '20261121';

interface Remote {
  kind: Kind;
  url: string;
  endpoint?: string;
  /** read a segment's bytes straight from the remote */
  read(node: string, name: string): Promise<Buffer | undefined>;
  /** overwrite a segment straight on the remote (tampering) */
  tamper(node: string, name: string, bytes: Buffer): Promise<void>;
}

async function makeRemote(kind: Kind): Promise<Remote> {
  if (kind === 'dir') {
    const root = path.join(tmpDir(), 'remote');
    const file = (node: string, name: string) => path.join(root, 'wal', node, name);
    return {
      kind,
      url: root,
      read: async (node, name) => (fs.existsSync(file(node, name)) ? fs.readFileSync(file(node, name)) : undefined),
      tamper: async (node, name, bytes) => fs.writeFileSync(file(node, name), bytes), // in place: sidecar left as it was
    };
  }
  const s = s3Server();
  const bucket = await newBucket();
  const client = s3Client();
  const key = (node: string, name: string) => `data/wal/${node}/${name}`;
  return {
    kind,
    url: `s3://${bucket}/data`,
    endpoint: s.endpoint,
    async read(node, name) {
      // The segment as a reader assembles it (base and parts).
      const st = await openStore({ kind: 's3', name: 'x', url: `s3://${bucket}/data`, bucket, prefix: 'data', endpoint: s.endpoint }, storeOptions('s3'));
      try {
        const seg = await st.statSegment(node, name);
        if (!seg) return undefined;
        const chunks: Buffer[] = [];
        await st.readSegment(seg, 0, seg.length, (c) => chunks.push(Buffer.from(c)));
        return Buffer.concat(chunks);
      } finally {
        await st.close();
      }
    },
    async tamper(node, name, bytes) {
      // Damage the last object of the segment (base or appended part) under
      // its metadata: same hash and length recorded, other bytes.
      const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key(node, name) }));
      const last = (list.Contents ?? []).map((o) => o.Key!).sort().pop()!;
      const start = last.includes('@') ? Number(last.split('@')[1]) : 0;
      const old = await client.send(new GetObjectCommand({ Bucket: bucket, Key: last }));
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: last, Body: bytes.subarray(start), Metadata: old.Metadata }));
    },
  };
}

function storeOptions(kind: Kind): OpenStoreOptions {
  if (kind === 'dir') return {};
  const s = s3Server();
  return { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } };
}

function repoFor(node: string, remote: Remote, dir?: string): Repo {
  const root = initRepoDir(node, dir);
  const repo = openRepo({ cwd: root, explicit: root });
  addRemote({ repo, name: 'origin', url: remote.url, endpoint: remote.endpoint, cwd: root });
  return repo;
}

let seq = 0;
/** Append `n` records of `node` to the segment of DAY in `repo`'s wal/. */
function append(repo: Repo, node: string, n: number, tag = 'v'): Buffer {
  const lines = Array.from({ length: n }, (_, i) =>
    encodeRecord({ timestamp: `2026-11-21T10:00:${String(seq++ % 60).padStart(2, '0')}.000Z`, node, target: `companies/c${i}`, field: 'name', value: JSON.stringify(`${tag}${seq}`), causality: 'hlc:0' }),
  ).join('');
  fs.mkdirSync(repo.wal, { recursive: true });
  fs.appendFileSync(path.join(repo.wal, `${DAY}_${node}.usv`), lines);
  return Buffer.from(lines);
}

function seg(repo: Repo, node: string): Buffer {
  return fs.readFileSync(path.join(repo.wal, `${DAY}_${node}.usv`));
}

const sync = (kind: Kind, fn: typeof push, repo: Repo): Promise<SyncResult> => fn({ repo, remote: 'origin', storeOptions: storeOptions(kind), clock: { now: () => Date.parse('2026-11-21T12:00:00Z') } });

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

for (const kind of ['dir', 's3'] as const) {
  test(`${kind}: push to an empty remote, pull into another node; byte for byte`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    const b = repoFor('pi-02', remote);
    append(a, 'pi-01', 20);
    append(b, 'pi-02', 5);
    const pa = await sync(kind, push, a);
    assert.is(pa.sent.segments, 1);
    assert.is(pa.sent.bytes, seg(a, 'pi-01').length);
    assert.equal(pa.transfers.map((t) => [t.segment, t.from, t.to]), [[`wal/${DAY}_pi-01.usv`, 0, seg(a, 'pi-01').length]]);
    assert.equal(await remote.read('pi-01', `${DAY}_pi-01.usv`), seg(a, 'pi-01'));
    const pb = await sync(kind, pull, b);
    assert.is(pb.received.segments, 1);
    assert.equal(seg(b, 'pi-01'), seg(a, 'pi-01'));
    assert.equal(pb.divergences, []);
    // b pushes its own; a pulls it.
    await sync(kind, push, b);
    await sync(kind, pull, a);
    assert.equal(seg(a, 'pi-02'), seg(b, 'pi-02'));
  });

  test(`${kind}: in sync is a no-op that costs almost nothing`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    append(a, 'pi-01', 10);
    await sync(kind, push, a);
    await sync(kind, pull, a);
    const again = await sync(kind, push, a);
    assert.ok(again.inSync);
    assert.equal([again.sent, again.transfers, again.divergences], [{ segments: 0, bytes: 0 }, [], []]);
    assert.is(again.wire.bytesSent, 0);
    if (kind === 's3') assert.is(again.wire.requests, 1, 'one listing request');
    const pulled = await sync(kind, pull, a);
    assert.ok(pulled.inSync);
    assert.is(pulled.wire.bytesReceived, 0);
  });

  test(`${kind}: a grown segment: pull fetches only the missing bytes; push sends only that segment`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    const b = repoFor('pi-02', remote);
    append(a, 'pi-01', 50);
    fs.writeFileSync(path.join(a.wal, `20261120_pi-01.usv`), encodeRecord({ timestamp: '2026-11-20T10:00:00.000Z', node: 'pi-01', target: 'companies/old', field: 'name', value: '"old"', causality: 'hlc:0' }));
    await sync(kind, push, a);
    await sync(kind, pull, b);
    const before = seg(a, 'pi-01').length;
    const added = append(a, 'pi-01', 7);
    const p = await sync(kind, push, a);
    assert.equal(p.transfers.map((t) => t.segment), [`wal/${DAY}_pi-01.usv`], 'only the changed segment');
    assert.is(p.sent.bytes, added.length, 'only the new bytes travel');
    assert.is(p.wire.bytesSent, added.length);
    const r = await sync(kind, pull, b);
    assert.equal(r.transfers.map((t) => [t.from, t.to, t.bytes]), [[before, before + added.length, added.length]]);
    assert.is(r.wire.bytesReceived, added.length, 'ranged read of the missing bytes only');
    assert.equal(seg(b, 'pi-01'), seg(a, 'pi-01'));
  });

  test(`${kind}: many small pushes: every reader sees the same bytes; S3 parts are consolidated`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    const b = repoFor('pi-02', remote);
    let sentTotal = 0;
    for (let i = 0; i < 40; i++) {
      append(a, 'pi-01', 2);
      const p = await sync(kind, push, a);
      sentTotal += p.sent.bytes;
      if (i % 7 === 3) {
        const q = await sync(kind, pull, b);
        assert.equal(q.divergences, []);
        assert.equal(seg(b, 'pi-01'), seg(a, 'pi-01'), `pull after push ${i}`);
      }
    }
    assert.equal(await remote.read('pi-01', `${DAY}_pi-01.usv`), seg(a, 'pi-01'));
    const total = seg(a, 'pi-01').length;
    // Directories append; S3 appends parts and re-uploads whole only now and then.
    if (kind === 'dir') assert.is(sentTotal, total);
    else assert.ok(sentTotal < 3 * total, `sent ${sentTotal} bytes for a ${total}-byte segment`);
    const fresh = repoFor('pi-03', remote);
    await sync(kind, pull, fresh);
    assert.equal(seg(fresh, 'pi-01'), seg(a, 'pi-01'));
  });

  test(`${kind}: push forwards other nodes' segments the remote lacks or has shorter (hub)`, async () => {
    const remote = await makeRemote(kind);
    const hub = repoFor('hub', remote);
    const a = repoFor('pi-01', remote);
    // The hub got pi-01's journal some other way (USB stick).
    append(a, 'pi-01', 5);
    fs.copyFileSync(path.join(a.wal, `${DAY}_pi-01.usv`), path.join(hub.wal, `${DAY}_pi-01.usv`));
    const p = await sync(kind, push, hub);
    assert.equal(p.transfers.map((t) => t.segment), [`wal/${DAY}_pi-01.usv`]);
    // pi-01 now pushes more: its copy extends the hub's.
    append(a, 'pi-01', 3);
    const q = await sync(kind, push, a);
    assert.is(q.transfers[0].from, seg(hub, 'pi-01').length);
    // The hub's shorter copy is not pushed back over it.
    const h = await sync(kind, push, hub);
    assert.equal(h.transfers, []);
    assert.equal(await remote.read('pi-01', `${DAY}_pi-01.usv`), seg(a, 'pi-01'));
  });

  test(`${kind}: two machines with one node id: the second is refused (exit kind divergence)`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    const twin = repoFor('pi-01', remote);
    append(a, 'pi-01', 3, 'a');
    append(twin, 'pi-01', 3, 'twin');
    await sync(kind, push, a);
    const before = await remote.read('pi-01', `${DAY}_pi-01.usv`);
    const err = await rejects(sync(kind, push, twin));
    assert.is(err.code, 'ENODEOWNER');
    assert.is(err.exit, 'divergence');
    assert.match(err.message, /node id 'pi-01' belongs to another machine/);
    assert.equal(await remote.read('pi-01', `${DAY}_pi-01.usv`), before, 'remote unchanged');
    const err2 = await rejects(sync(kind, pull, twin));
    assert.is(err2.code, 'ENODEOWNER');
  });

  test(`${kind}: divergence: reported with lengths and hashes, remote copy quarantined, nothing changed`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    append(a, 'pi-01', 4, 'a');
    await sync(kind, push, a);
    // A copy of the data directory (same machine id) writes on its own.
    const copy = path.join(tmpDir(), 'copy');
    fs.cpSync(a.root, copy, { recursive: true });
    const twin = openRepo({ cwd: copy, explicit: copy });
    append(a, 'pi-01', 2, 'a');
    append(twin, 'pi-01', 3, 'twin');
    await sync(kind, push, a);
    const remoteBytes = (await remote.read('pi-01', `${DAY}_pi-01.usv`))!;
    const localBytes = seg(twin, 'pi-01');
    const p = await sync(kind, push, twin);
    assert.is(p.divergences.length, 1);
    const d = p.divergences[0];
    assert.equal([d.segment, d.node, d.reason], [`wal/${DAY}_pi-01.usv`, 'pi-01', 'differs']);
    assert.equal(d.local, { length: localBytes.length, sha256: sha256(localBytes) });
    assert.equal(d.remote, { length: remoteBytes.length, sha256: sha256(remoteBytes) });
    assert.equal(fs.readFileSync(path.join(twin.root, d.quarantine!)), remoteBytes, 'remote copy kept aside');
    assert.ok(fs.existsSync(path.join(twin.root, d.quarantine! + '.json')));
    assert.equal(seg(twin, 'pi-01'), localBytes, 'local copy unchanged');
    assert.equal(await remote.read('pi-01', `${DAY}_pi-01.usv`), remoteBytes, 'remote copy unchanged');
    // Pull sees it too: the remote holds bytes of its own segment it never wrote.
    const q = await sync(kind, pull, twin);
    assert.is(q.divergences.length, 1);
    assert.equal(seg(twin, 'pi-01'), localBytes);
  });

  test(`${kind}: a damaged remote copy is never installed: the hash of every received byte is checked`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    const b = repoFor('pi-02', remote);
    append(a, 'pi-01', 6);
    await sync(kind, push, a);
    await sync(kind, pull, b);
    const good = seg(b, 'pi-01');
    append(a, 'pi-01', 2);
    await sync(kind, push, a);
    const full = (await remote.read('pi-01', `${DAY}_pi-01.usv`))!;
    const bad = Buffer.from(full);
    bad[full.length - 5] ^= 0x20; // flip a bit in the new part
    await remote.tamper('pi-01', `${DAY}_pi-01.usv`, bad);
    const r = await sync(kind, pull, b);
    assert.is(r.received.segments, 0);
    assert.is(r.divergences.length, 1);
    assert.equal(seg(b, 'pi-01'), good, 'wal/ keeps the verified copy');
    assert.equal(fs.readdirSync(b.wal).filter((n) => n.startsWith('.')), [], 'no temporary file left');
  });

  test(`${kind}: pull never replaces this node's own segment`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    append(a, 'pi-01', 3);
    await sync(kind, push, a);
    // The same data directory restored from an old backup: its own segment is shorter.
    const full = seg(a, 'pi-01');
    const old = full.subarray(0, full.indexOf('\n') + 1);
    fs.writeFileSync(path.join(a.wal, `${DAY}_pi-01.usv`), old);
    const r = await sync(kind, pull, a);
    assert.equal(r.divergences.map((d) => d.reason), ['own-ahead']);
    assert.equal(seg(a, 'pi-01'), old);
  });

  test(`${kind}: concurrent pushes of one segment from two machines never shrink it`, async () => {
    const remote = await makeRemote(kind);
    const a = repoFor('pi-01', remote);
    const hub = repoFor('hub', remote);
    const other = repoFor('pi-03', remote);
    append(a, 'pi-01', 3);
    const short = seg(a, 'pi-01');
    append(a, 'pi-01', 30);
    fs.writeFileSync(path.join(hub.wal, `${DAY}_pi-01.usv`), short);
    fs.writeFileSync(path.join(other.wal, `${DAY}_pi-01.usv`), short);
    await Promise.all([sync(kind, push, a), sync(kind, push, hub), sync(kind, push, other)]);
    assert.equal(await remote.read('pi-01', `${DAY}_pi-01.usv`), seg(a, 'pi-01'));
  });
}

test.after(closeClients);

test.run();
