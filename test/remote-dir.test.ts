/**
 * Directory remotes and the shared pieces of lib/remote: URLs, the directory
 * store (compare-and-swap writes, sidecar hashes), leases on a directory,
 * the machine id, the sync lock, the state cache.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { encodeRecord } from '../formats/usv.js';
import { openRepo, type Repo } from '../lib/repo.js';
import { WalnutError } from '../lib/errors.js';
import { addRemote, hashFile, machineId, parseRemoteUrl, sha256, loadRemoteState, type RemoteSegment } from '../lib/remote/index.js';
import { DirStore } from '../lib/remote/dir.js';
import { acquireLease, releaseLease, renewLease, withSyncLock, type Lease } from '../lib/remote/lease.js';
import { push, pull } from '../lib/remote/sync.js';
import { initRepoDir, tmpDir } from './helpers.js';

function rejectsSync(fn: () => unknown): WalnutError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, WalnutError);
    return err as WalnutError;
  }
  assert.unreachable('expected an error');
  throw new Error('unreachable');
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

function repoWith(node: string, remote: string, records = 0): Repo {
  const root = initRepoDir(node);
  const repo = openRepo({ cwd: root, explicit: root });
  addRemote({ repo, name: 'origin', url: remote, cwd: root });
  const lines = Array.from({ length: records }, (_, i) => encodeRecord({ timestamp: '2026-11-21T10:00:00.000Z', node, target: `companies/c${i}`, field: 'name', value: `"n${i}"`, causality: `hlc:${i}` })).join('');
  if (records) fs.writeFileSync(path.join(repo.wal, `20261121_${node}.usv`), lines);
  return repo;
}

test('remote URLs: directories, file://, s3://; the rest refused', () => {
  assert.equal(parseRemoteUrl('/mnt/usb/w', { cwd: '/x' }), { kind: 'dir', url: '/mnt/usb/w', path: '/mnt/usb/w' });
  assert.equal(parseRemoteUrl('../usb', { cwd: '/home/me/data' }), { kind: 'dir', url: '/home/me/usb', path: '/home/me/usb' });
  assert.equal(parseRemoteUrl('file:///mnt/nfs/w', { cwd: '/x' }), { kind: 'dir', url: 'file:///mnt/nfs/w', path: '/mnt/nfs/w' });
  assert.equal(parseRemoteUrl('s3://walnut-data', { cwd: '/' }), { kind: 's3', url: 's3://walnut-data', bucket: 'walnut-data', prefix: '' });
  assert.equal(parseRemoteUrl('s3://walnut-data//prod/eu/', { cwd: '/' }), { kind: 's3', url: 's3://walnut-data/prod/eu', bucket: 'walnut-data', prefix: 'prod/eu' });
  for (const bad of ['s3://A_B/x', 's3://ab/x', 's3://walnut/../x', 'https://h/x', 'ssh://h/x', 'git@github.com:a/b', '']) {
    assert.is(rejectsSync(() => parseRemoteUrl(bad, { cwd: '/' })).code, 'EUSAGE', bad);
  }
});

test('directory store: compare-and-swap writes append the new bytes beside the old file', async () => {
  const root = path.join(tmpDir(), 'remote');
  const st = new DirStore(root, root);
  await st.prepareWrite();
  const src = path.join(tmpDir(), 'seg.usv');
  fs.writeFileSync(src, 'aaaa\nbbbb\ncccc\n');
  const t1 = await st.writeSegment({ node: 'n', name: '20261121_n.usv', file: src, length: 5, sha256: sha256('aaaa\n') });
  const [v1] = await st.listSegments();
  assert.equal([v1.length, v1.tag], [5, t1]);
  assert.is(await st.writeSegment({ node: 'n', name: '20261121_n.usv', file: src, length: 10, sha256: sha256('aaaa\nbbbb\n') }), undefined, 'create refused: it exists');
  assert.type(await st.writeSegment({ node: 'n', name: '20261121_n.usv', file: src, length: 10, sha256: sha256('aaaa\nbbbb\n'), expect: v1 }), 'string');
  assert.is(await st.writeSegment({ node: 'n', name: '20261121_n.usv', file: src, length: 15, sha256: sha256('aaaa\nbbbb\ncccc\n'), expect: v1 }), undefined, 'stale expectation refused');
  assert.is(fs.readFileSync(path.join(root, 'wal', 'n', '20261121_n.usv'), 'utf8'), 'aaaa\nbbbb\n');
  assert.is(st.stats.bytesSent, 10, 'only new bytes counted');
  const [v2] = await st.listSegments();
  assert.equal(await st.segmentHash(v2), { sha256: sha256('aaaa\nbbbb\n'), length: 10, tag: v2.tag });
  assert.equal(fs.readdirSync(path.join(root, 'wal', 'n')).sort(), ['20261121_n.usv', '20261121_n.usv.sha256']);
});

test('directory store: a stale or missing sidecar (crash after the rename) is recomputed', async () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = repoWith('pi-01', remote, 10);
  await push({ repo: a });
  const file = path.join(remote, 'wal', 'pi-01', '20261121_pi-01.usv');
  // The segment grew but the sidecar still describes the old length.
  fs.appendFileSync(path.join(a.wal, '20261121_pi-01.usv'), encodeRecord({ timestamp: '2026-11-21T11:00:00.000Z', node: 'pi-01', target: 'companies/z', field: 'name', value: '"z"', causality: 'hlc:0' }));
  const old = fs.readFileSync(`${file}.sha256`);
  await push({ repo: a });
  fs.writeFileSync(`${file}.sha256`, old);
  const b = repoWith('pi-02', remote);
  const r = await pull({ repo: b });
  assert.equal(r.divergences, []);
  assert.equal(fs.readFileSync(path.join(b.wal, '20261121_pi-01.usv')), fs.readFileSync(file));
  fs.rmSync(`${file}.sha256`);
  const st = new DirStore(remote, remote);
  const [seg] = await st.listSegments();
  assert.is((await st.segmentHash(seg)).sha256, hashFile(file, seg.length).full);
});

test('a directory with other files is not taken for a remote; nothing is written there', async () => {
  const remote = tmpDir();
  fs.writeFileSync(path.join(remote, 'photo.jpg'), 'x');
  const a = repoWith('pi-01', remote, 3);
  const err = await rejects(push({ repo: a }));
  assert.is(err.code, 'ENOTREMOTE');
  assert.equal(fs.readdirSync(remote), ['photo.jpg']);
});

test('directory leases: 10 concurrent acquirers, exactly one wins each round; expiry and take-over', async () => {
  const root = path.join(tmpDir(), 'remote');
  const contenders = Array.from({ length: 10 }, () => new DirStore(root, root));
  for (let round = 0; round < 5; round++) {
    const results = await Promise.all(contenders.map((st, i) => acquireLease(st, { name: 'activate', owner: `m${i}`, ttlMs: round === 3 ? 300 : 30_000 })));
    const winners = results.filter((r): r is Lease => 'key' in r);
    assert.is(winners.length, 1, `round ${round}: ${winners.length} winners`);
    if (round === 3) await new Promise((r) => setTimeout(r, 400));
    else await releaseLease(contenders[results.indexOf(winners[0])], winners[0]);
  }
  const [a, b] = contenders;
  const la = (await acquireLease(a, { name: 'x', owner: 'a', ttlMs: 200 })) as Lease;
  await new Promise((r) => setTimeout(r, 300));
  assert.ok('key' in (await acquireLease(b, { name: 'x', owner: 'b' })));
  assert.is((await rejects(renewLease(a, la))).code, 'ELEASELOST');
});

test('machine id: made once, kept, the same for concurrent first uses', async () => {
  const root = initRepoDir('pi-01');
  const repo = openRepo({ cwd: root, explicit: root });
  const ids = await Promise.all(Array.from({ length: 8 }, async () => machineId(repo)));
  assert.is(new Set(ids).size, 1);
  assert.match(ids[0], /^[0-9a-f]{32}$/);
  assert.is(fs.readFileSync(path.join(root, '.walnut', 'machine-id'), 'utf8'), ids[0] + '\n');
  assert.is(machineId(repo), ids[0]);
});

test('sync lock: overlapping runs in one data directory take turns; a held lock past the wait is exit 3', async () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = repoWith('pi-01', remote, 50);
  await push({ repo: a });
  const b = repoWith('pi-02', remote);
  const results = await Promise.all([pull({ repo: b }), pull({ repo: b }), pull({ repo: b })]);
  assert.equal(results.map((r) => r.received.segments).sort(), [0, 0, 1]);
  assert.equal(fs.readdirSync(b.wal).filter((n) => n.startsWith('.')), []);
  let release!: () => void;
  const held = withSyncLock(b, {}, () => new Promise<void>((r) => (release = r)));
  await new Promise((r) => setTimeout(r, 50));
  const err = await rejects(pull({ repo: b, waitMs: 200 }));
  assert.is(err.code, 'ELOCKED');
  assert.is(err.exit, 'lockHeld');
  release();
  await held;
});

test('the state cache: a damaged or foreign one is ignored and rebuilt', async () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = repoWith('pi-01', remote, 5);
  await push({ repo: a });
  const file = path.join(a.dir, 'remotes', 'origin.json');
  assert.is(Object.keys(loadRemoteState(a, 'origin', remote).segments).length, 1);
  assert.is(Object.keys(loadRemoteState(a, 'origin', '/elsewhere').segments).length, 0);
  fs.writeFileSync(file, '{not json');
  const r = await push({ repo: a });
  assert.ok(r.inSync);
  assert.ok(JSON.parse(fs.readFileSync(file, 'utf8')).segments);
});

test('stat of a remote segment reflects growth; a vanished segment is a clear error', async () => {
  const root = path.join(tmpDir(), 'remote');
  const st = new DirStore(root, root);
  const src = path.join(tmpDir(), 's.usv');
  fs.writeFileSync(src, 'abcdef');
  await st.writeSegment({ node: 'n', name: '20261121_n.usv', file: src, length: 6, sha256: sha256('abcdef') });
  const seg = (await st.statSegment('n', '20261121_n.usv')) as RemoteSegment;
  assert.is(seg.length, 6);
  fs.rmSync(path.join(root, 'wal', 'n', '20261121_n.usv'));
  const err = await rejects(st.readSegment(seg, 0, 6, () => {}));
  assert.is(err.code, 'EREMOTECHANGED');
});

test.run();
