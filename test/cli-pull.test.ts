/**
 * walnut pull: end to end through the built CLI, against a directory remote
 * and a real S3 server (Ceph RGW, test/s3-server.ts): fetch, compaction,
 * crashes in the middle of a transfer, divergence.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir, snapshotTree } from './helpers.js';
import { sha256 } from '../lib/remote/index.js';
import { run, expect, nothingWritten } from './cli-util.js';
import { s3Server, newBucket, closeClients } from './s3-server.js';

const NOW = { WALNUT_NOW: '2026-11-21T10:00:00Z' };

type Kind = 'dir' | 's3';

async function remoteUrl(kind: Kind): Promise<{ url: string; extra: string[]; env: Record<string, string> }> {
  if (kind === 'dir') return { url: path.join(tmpDir(), 'remote'), extra: [], env: {} };
  const s = s3Server();
  return { url: `s3://${await newBucket()}/data`, extra: ['--endpoint', s.endpoint], env: s.env };
}

function node(id: string, r: { url: string; extra: string[] }): string {
  const dir = initRepoDir(id);
  expect(run(['-C', dir, 'remote', 'add', 'origin', r.url, ...r.extra]), { code: 0, stdout: '', stderr: '' });
  return dir;
}

/** `n` records of `dir`'s node in one batch. */
function setMany(dir: string, n: number, from = 0, env: Record<string, string> = NOW): void {
  const input = Array.from({ length: n }, (_, i) => JSON.stringify({ target: `companies/c${from + i}`, field: 'name', value: `Company ${from + i}` })).join('\n') + '\n';
  expect(run(['-C', dir, 'set', '--batch'], { env, input }), { code: 0 });
}

/** SHA-256 of each segment in wal/ (no temporary files), leaving out those of `except`. */
function wal(dir: string, except?: string): Record<string, string> {
  const snap = snapshotTree(path.join(dir, 'wal'));
  return Object.fromEntries(Object.entries(snap).filter(([k]) => !k.startsWith('.') && !(except && k.endsWith(`_${except}.usv`))).map(([k, v]) => [k, sha256(Buffer.from(v, 'base64'))]));
}

for (const kind of ['dir', 's3'] as const) {
  test(`${kind}: pull fetches and compacts; pull && push is silent when in sync`, async () => {
    const r = await remoteUrl(kind);
    const a = node('pi-01', r);
    const b = node('pi-02', r);
    expect(run(['-C', a, 'set', 'companies/acme', 'name', 'Acme'], { env: NOW }), { code: 0 });
    expect(run(['-C', a, 'set', 'companies/acme', 'employees', '42'], { env: NOW }), { code: 0 });
    expect(run(['-C', a, 'push'], { env: r.env }), { code: 0 });
    const n = fs.statSync(path.join(a, 'wal', '20261121_pi-01.usv')).size;
    expect(run(['-C', b, 'pull'], { env: { ...r.env, ...NOW } }), { code: 0, stdout: '', stderr: `pulled 1 segment (${n} B) from origin; compacted 2 records (1 created, 0 updated, 0 deleted)\n` });
    assert.is(fs.readFileSync(path.join(b, 'companies', 'acme', '_index.md'), 'utf8'), '---\nname: Acme\nemployees: 42\n---\n');
    expect(run(['-C', b, 'show', 'companies/acme']), { code: 0, stdout: 'companies/acme\nname: Acme\nemployees: 42\n' });
    // cron: pull && push. Compacting writes a sync_checkpoint record that
    // travels once; after two rounds everything is in sync and silent.
    for (const d of [a, b, a, b]) {
      expect(run(['-C', d, 'pull'], { env: { ...r.env, ...NOW } }), { code: 0, stdout: '' });
      expect(run(['-C', d, 'push'], { env: r.env }), { code: 0, stdout: '' });
    }
    for (const d of [a, b, a, b]) {
      expect(run(['-C', d, 'pull'], { env: { ...r.env, ...NOW } }), { code: 0, stdout: '', stderr: '' }, `pull in ${path.basename(path.dirname(d))}`);
      expect(run(['-C', d, 'push'], { env: r.env }), { code: 0, stdout: '', stderr: '' });
    }
    assert.equal(wal(a), wal(b), 'both machines hold the same journals');
  });

  test(`${kind}: pull --no-compact --json`, async () => {
    const r = await remoteUrl(kind);
    const a = node('pi-01', r);
    const b = node('pi-02', r);
    setMany(a, 30);
    expect(run(['-C', a, 'push'], { env: r.env }), { code: 0 });
    const n = fs.statSync(path.join(a, 'wal', '20261121_pi-01.usv')).size;
    const p = run(['-C', b, 'pull', '--no-compact', '--json'], { env: r.env });
    expect(p, { code: 0, stderr: '' });
    const doc = JSON.parse(p.stdout);
    assert.equal({ ...doc, wire: undefined }, {
      version: 1,
      remote: 'origin',
      url: r.url,
      kind,
      inSync: false,
      sent: { segments: 0, bytes: 0 },
      received: { segments: 1, bytes: n },
      transfers: [{ segment: 'wal/20261121_pi-01.usv', node: 'pi-01', from: 0, to: n, bytes: n }],
      divergences: [],
      wire: undefined,
      compact: null,
      active: null,
    });
    assert.is(doc.wire.bytesReceived >= n, true);
    assert.not.ok(fs.existsSync(path.join(b, 'companies')), 'not compacted');
    const again = JSON.parse(run(['-C', b, 'pull', '--json'], { env: { ...r.env, ...NOW } }).stdout);
    assert.equal([again.inSync, again.received, again.compact.created], [true, { segments: 0, bytes: 0 }, 30]);
  });

  // The points after the fetch do not depend on the kind of remote: S3 runs the first only.
  for (const point of kind === 'dir' ? ['pull:mid-fetch', 'pull:before-rename', 'pull:after-rename'] : ['pull:mid-fetch']) {
    test(`${kind}: killed at ${point}: wal/ holds the old or the new segments, and a rerun completes`, async () => {
      const r = await remoteUrl(kind);
      const a = node('pi-01', r);
      const c = node('pi-03', r);
      const b = node('pi-02', r);
      setMany(a, 200);
      setMany(c, 50);
      expect(run(['-C', a, 'push'], { env: r.env }), { code: 0 });
      expect(run(['-C', c, 'push'], { env: r.env }), { code: 0 });
      expect(run(['-C', b, 'pull'], { env: { ...r.env, ...NOW } }), { code: 0 });
      setMany(a, 300, 200);
      setMany(c, 10, 50);
      expect(run(['-C', a, 'push'], { env: r.env }), { code: 0 });
      expect(run(['-C', c, 'push'], { env: r.env }), { code: 0 });
      const before = wal(b);
      const crashed = run(['-C', b, 'pull', '--no-compact'], { env: { ...r.env, WALNUT_CRASH_AT: point } });
      assert.is(crashed.code, 128, `killed: ${crashed.stderr}`);
      const after = wal(b);
      const wanted = { a: sha256(fs.readFileSync(path.join(a, 'wal', '20261121_pi-01.usv'))), c: sha256(fs.readFileSync(path.join(c, 'wal', '20261121_pi-03.usv'))) };
      assert.equal(Object.keys(after).sort(), Object.keys(before).sort());
      assert.ok([before['20261121_pi-01.usv'], wanted.a].includes(after['20261121_pi-01.usv']), 'pi-01 segment is the old or the new one');
      assert.ok([before['20261121_pi-03.usv'], wanted.c].includes(after['20261121_pi-03.usv']), 'pi-03 segment is the old or the new one');
      if (point !== 'pull:after-rename') assert.equal(after, before, 'nothing installed before the rename');
      // The rerun takes the dead run's sync lease over (stale after 2 s here), completes and cleans up.
      const t0 = Date.now();
      expect(run(['-C', b, 'pull'], { env: { ...r.env, ...NOW, WALNUT_LEASE_STALE_MS: '2000' } }), { code: 0, stdout: '', stderr: /^pulled [12] segments? / });
      assert.ok(Date.now() - t0 < 10_000, 'the stale lease did not hold the rerun long');
      assert.equal(wal(b, 'pi-02'), { '20261121_pi-01.usv': wanted.a, '20261121_pi-03.usv': wanted.c });
      assert.equal(fs.readdirSync(path.join(b, 'wal')).filter((f) => f.startsWith('.')), [], 'no temporary files left');
      expect(run(['-C', b, 'show', 'companies/c499']), { code: 0, stdout: 'companies/c499\nname: Company 499\n' });
    });
  }

  test(`${kind}: divergence on pull: exit 4, quarantined, good segments still fetched and compacted`, async () => {
    const r = await remoteUrl(kind);
    const a = node('pi-01', r);
    const b = node('pi-02', r);
    setMany(a, 5);
    expect(run(['-C', a, 'push'], { env: r.env }), { code: 0 });
    // b holds a tampered copy of pi-01's segment.
    const theirs = fs.readFileSync(path.join(a, 'wal', '20261121_pi-01.usv'));
    const tampered = Buffer.from(theirs.toString('utf8').replace('Company 3', 'Company X'));
    fs.writeFileSync(path.join(b, 'wal', '20261121_pi-01.usv'), tampered);
    const c = node('pi-03', r);
    setMany(c, 2);
    expect(run(['-C', c, 'push'], { env: r.env }), { code: 0 });
    const p = run(['-C', b, 'pull'], { env: { ...r.env, ...NOW } });
    expect(p, {
      code: 4,
      stdout: '',
      stderr: /^pulled 1 segment \(.*\) from origin; compacted \d+ records .*\nerror: 'wal\/20261121_pi-01.usv' differs from the copy at remote 'origin': local \d+ bytes sha256 [0-9a-f]{12}, remote \d+ bytes sha256 [0-9a-f]{12}\nhint: the remote copy is kept in '.walnut\/quarantine\/origin\/'; nothing was changed on either side\n/,
    });
    assert.equal(fs.readFileSync(path.join(b, 'wal', '20261121_pi-01.usv')), tampered, 'local copy left alone');
    const q = fs.readdirSync(path.join(b, '.walnut', 'quarantine', 'origin')).filter((f) => !f.endsWith('.json'));
    assert.is(q.length, 1);
    assert.equal(fs.readFileSync(path.join(b, '.walnut', 'quarantine', 'origin', q[0])), theirs);
    assert.ok(fs.existsSync(path.join(b, 'companies', 'c1', '_index.md')), "pi-03's records were compacted");
  });
}

test('pull from a directory that does not exist; from a remote of the wrong layout version', () => {
  const gone = path.join(tmpDir(), 'nowhere');
  const b = node('pi-02', { url: gone, extra: [] });
  nothingWritten(path.join(b, 'wal'), () => {
    expect(run(['-C', b, 'pull']), { code: 1, stdout: '', stderr: `error: remote 'origin' does not exist: '${gone}'\nhint: check the path or bucket, or push to it first\n` });
  });
  const future = tmpDir();
  fs.writeFileSync(path.join(future, 'walnut-remote'), JSON.stringify({ format: 'walnut-remote', version: 9 }) + '\n');
  const c = node('pi-03', { url: future, extra: [] });
  expect(run(['-C', c, 'pull']), { code: 1, stdout: '', stderr: `error: remote 'origin' (${future}) has layout version 9; this walnut knows version 1\nhint: upgrade walnut on this machine\n` });
});

test('an empty remote directory: nothing to pull, silent', () => {
  const empty = tmpDir();
  const b = node('pi-02', { url: empty, extra: [] });
  expect(run(['-C', b, 'pull']), { code: 0, stdout: '', stderr: '' });
});

test.after(closeClients);

test.run();
