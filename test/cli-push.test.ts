/**
 * walnut push: end to end through the built CLI, against a directory remote
 * and a real S3 server (Ceph RGW, test/s3-server.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initRepoDir, tmpDir, walnutAsync, BIN } from './helpers.js';
import { run, expect, nothingWritten } from './cli-util.js';
import { s3Server, newBucket, closeClients } from './s3-server.js';

const NOW = { WALNUT_NOW: '2026-11-21T10:00:00Z' };

function withRecords(node: string, remoteUrl: string, extra: string[] = []): string {
  const dir = initRepoDir(node);
  expect(run(['-C', dir, 'remote', 'add', 'origin', remoteUrl, ...extra]), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, 'set', 'companies/acme', 'name', 'Acme'], { env: NOW }), { code: 0 });
  return dir;
}

const segBytes = (dir: string, node: string) => fs.statSync(path.join(dir, 'wal', `20261121_${node}.usv`)).size;

test('push to a directory: status line, then silent when in sync', () => {
  const remote = path.join(tmpDir(), 'remote');
  const dir = withRecords('pi-01', remote);
  const n = segBytes(dir, 'pi-01');
  expect(run(['-C', dir, 'push']), { code: 0, stdout: '', stderr: `pushed 1 segment (${n} B) to origin\n` });
  assert.equal(fs.readFileSync(path.join(remote, 'wal', 'pi-01', '20261121_pi-01.usv')), fs.readFileSync(path.join(dir, 'wal', '20261121_pi-01.usv')));
  expect(run(['-C', dir, 'push']), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, '-q', 'push']), { code: 0, stdout: '', stderr: '' });
});

test('push --json: one document with sent, transfers, divergences, wire', () => {
  const remote = path.join(tmpDir(), 'remote');
  const dir = withRecords('pi-01', remote);
  const n = segBytes(dir, 'pi-01');
  const r = run(['-C', dir, 'push', '--json']);
  expect(r, { code: 0, stderr: '' });
  const doc = JSON.parse(r.stdout);
  assert.equal({ ...doc, wire: undefined }, {
    version: 1,
    remote: 'origin',
    url: remote,
    kind: 'dir',
    inSync: false,
    sent: { segments: 1, bytes: n },
    received: { segments: 0, bytes: 0 },
    transfers: [{ segment: 'wal/20261121_pi-01.usv', node: 'pi-01', from: 0, to: n, bytes: n }],
    divergences: [],
    wire: undefined,
  });
  assert.ok(doc.wire.bytesSent >= n && doc.wire.requests > 0);
  const again = JSON.parse(run(['-C', dir, 'push', '--json']).stdout);
  assert.equal([again.inSync, again.sent, again.transfers], [true, { segments: 0, bytes: 0 }, []]);
});

test('push names the remote; a missing remote is a clear error', () => {
  const remote = path.join(tmpDir(), 'usb');
  const dir = withRecords('pi-01', remote);
  expect(run(['-C', dir, 'remote', 'add', 'usb', remote]), { code: 0 });
  expect(run(['-C', dir, 'push', 'usb']), { code: 0, stderr: /^pushed 1 segment/ });
  expect(run(['-C', dir, 'push', 'backup']), { code: 1, stdout: '', stderr: `error: no remote 'backup' in '${path.join(dir, '.walnut', 'config')}'\nhint: known remotes: origin, usb\n` });
  const bare = initRepoDir('pi-02');
  expect(run(['-C', bare, 'push']), { code: 1, stdout: '', stderr: `error: no remote 'origin' in '${path.join(bare, '.walnut', 'config')}'\nhint: add one with 'walnut remote add origin <url>'\n` });
});

test('a directory that holds other files is not taken for a remote', () => {
  const remote = tmpDir();
  fs.writeFileSync(path.join(remote, 'thesis.tex'), 'x');
  const dir = withRecords('pi-01', remote);
  nothingWritten(remote, () => {
    expect(run(['-C', dir, 'push']), { code: 1, stdout: '', stderr: new RegExp(`^error: '${remote}' is not a walnut remote: it holds other files \\('thesis.tex'\\) and no 'walnut-remote' file\\nhint: `) });
  });
});

test('a second machine with the same node id is refused with exit 4, before anything is sent', () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = withRecords('pi-01', remote);
  const twin = withRecords('pi-01', remote);
  expect(run(['-C', a, 'push']), { code: 0 });
  nothingWritten(remote, () => {
    expect(run(['-C', twin, 'push']), {
      code: 4,
      stdout: '',
      stderr: /^error: node id 'pi-01' belongs to another machine at remote 'origin' \(.*\): 'nodes\/pi-01' names machine [0-9a-f]{12}, this is machine [0-9a-f]{12}\nhint: give this machine its own node id: walnut config set core.node <new-id>\nhint: if this machine really replaces the old one, delete 'nodes\/pi-01' on the remote and run the command again\n$/,
    });
  });
  const j = run(['-C', twin, 'push', '--json']);
  assert.is(j.code, 4);
  assert.is(JSON.parse(j.stderr).error.code, 'ENODEOWNER');
});

test('divergence: exit 4, both hashes reported, the remote copy quarantined, the other segments still pushed', () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = withRecords('pi-01', remote);
  expect(run(['-C', a, 'push']), { code: 0 });
  const copy = path.join(tmpDir(), 'copy');
  fs.cpSync(a, copy, { recursive: true });
  expect(run(['-C', a, 'set', 'companies/acme', 'city', 'Paris'], { env: NOW }), { code: 0 });
  expect(run(['-C', a, 'push']), { code: 0 });
  expect(run(['-C', copy, 'set', 'companies/acme', 'city', 'Rome!'], { env: NOW }), { code: 0 });
  expect(run(['-C', copy, 'set', 'companies/acme', 'zip', '1'], { env: { WALNUT_NOW: '2026-11-22T10:00:00Z' } }), { code: 0 });
  const r = run(['-C', copy, 'push', '--json']);
  assert.is(r.code, 4, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.transfers.map((t: { segment: string }) => t.segment), ['wal/20261122_pi-01.usv']);
  assert.is(doc.divergences.length, 1);
  const d = doc.divergences[0];
  assert.is(d.segment, 'wal/20261121_pi-01.usv');
  assert.match(d.quarantine, /^\.walnut\/quarantine\/origin\/20261121_pi-01\.usv@[0-9a-f]{16}$/);
  assert.equal(fs.readFileSync(path.join(copy, d.quarantine)), fs.readFileSync(path.join(remote, 'wal', 'pi-01', '20261121_pi-01.usv')));
  const err = JSON.parse(r.stderr);
  assert.is(err.error.code, 'EDIVERGED');
  const text = run(['-C', copy, 'push']);
  expect(text, {
    code: 4,
    stdout: '',
    stderr: new RegExp(
      `^error: 'wal/20261121_pi-01.usv' differs from the copy at remote 'origin': local ${d.local.length} bytes sha256 ${d.local.sha256.slice(0, 12)}, remote ${d.remote.length} bytes sha256 ${d.remote.sha256.slice(0, 12)}\\nhint: the remote copy is kept in '.walnut/quarantine/origin/'; nothing was changed on either side\\nhint: two machines may be using node id 'pi-01'`,
    ),
  });
});

test('killed right after an upload: the remote holds whole segments, a rerun completes and says so', () => {
  const remote = path.join(tmpDir(), 'remote');
  const dir = withRecords('pi-01', remote);
  expect(run(['-C', dir, 'set', 'companies/acme', 'city', 'Paris'], { env: { WALNUT_NOW: '2026-11-22T10:00:00Z' } }), { code: 0 });
  const crashed = run(['-C', dir, 'push'], { env: { WALNUT_CRASH_AT: 'push:after-upload' } });
  assert.is(crashed.code, 128, crashed.stderr);
  const files = fs.readdirSync(path.join(remote, 'wal', 'pi-01')).filter((f) => f.endsWith('.usv'));
  assert.equal(files, ['20261121_pi-01.usv'], 'the first segment is there, whole');
  assert.equal(fs.readFileSync(path.join(remote, 'wal', 'pi-01', files[0])), fs.readFileSync(path.join(dir, 'wal', files[0])));
  expect(run(['-C', dir, 'push'], { env: { WALNUT_LEASE_STALE_MS: '2000' } }), { code: 0, stdout: '', stderr: /^pushed 1 segment \(\d+ B\) to origin\n$/ });
  expect(run(['-C', dir, 'push']), { code: 0, stdout: '', stderr: '' });
});

test('a progress bar on a terminal for multi-segment transfers, none in a pipe', () => {
  const remote = path.join(tmpDir(), 'remote');
  const dir = withRecords('pi-01', remote);
  for (const day of ['22', '23', '24']) expect(run(['-C', dir, 'set', 'companies/acme', 'city', day], { env: { WALNUT_NOW: `2026-11-${day}T10:00:00Z` } }), { code: 0 });
  // script(1) gives walnut a terminal; its output is what the terminal showed.
  const r = spawnSync('script', ['-qec', `${process.execPath} ${BIN} -C ${dir} push`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.is(r.status, 0, r.stdout);
  assert.match(r.stdout, /\rpushing \[[#.]{24}\] \d\/4 segments, /);
  assert.match(r.stdout, /\r\x1b\[Kpushed 4 segments \(\d+ B\) to origin\r?\n/);
});

// ---------------------------------------------------------------- S3

test('push to S3: only the new bytes of changed segments, silent when in sync, one request', async () => {
  const s = s3Server();
  const bucket = await newBucket();
  const dir = withRecords('pi-01', `s3://${bucket}/prod`, ['--endpoint', s.endpoint]);
  const n = segBytes(dir, 'pi-01');
  expect(run(['-C', dir, 'push'], { env: s.env }), { code: 0, stdout: '', stderr: `pushed 1 segment (${n} B) to origin\n` });
  expect(run(['-C', dir, 'push'], { env: s.env }), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, 'set', 'companies/acme', 'city', 'Paris'], { env: NOW }), { code: 0 });
  const r = run(['-C', dir, 'push', '--json'], { env: s.env });
  expect(r, { code: 0, stderr: '' });
  const doc = JSON.parse(r.stdout);
  const m = segBytes(dir, 'pi-01');
  assert.equal(doc.transfers, [{ segment: 'wal/20261121_pi-01.usv', node: 'pi-01', from: n, to: m, bytes: m - n }]);
  assert.equal(doc.wire, { bytesSent: m - n, bytesReceived: 0, requests: 2 }, 'one listing, one upload of the new bytes');
  const quiet = JSON.parse(run(['-C', dir, 'push', '--json'], { env: s.env }).stdout);
  assert.equal([quiet.inSync, quiet.wire], [true, { bytesSent: 0, bytesReceived: 0, requests: 1 }]);
  // Credentials are never written or printed.
  const all = fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8') + fs.readdirSync(path.join(dir, '.walnut', 'remotes')).map((f) => fs.readFileSync(path.join(dir, '.walnut', 'remotes', f), 'utf8')).join('');
  assert.not.match(all, s.secretAccessKey);
  assert.not.match(all, s.accessKeyId);
});

test('S3: wrong credentials, no credentials, no bucket, no server: clear errors, exit 1', async () => {
  const s = s3Server();
  const bucket = await newBucket();
  const dir = withRecords('pi-01', `s3://${bucket}/prod`, ['--endpoint', s.endpoint]);
  const wrong = run(['-C', dir, 'push'], { env: { ...s.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' } });
  expect(wrong, {
    code: 1,
    stdout: '',
    stderr: `error: S3 refused the credentials for 's3://${bucket}/prod' at ${s.endpoint}: SignatureDoesNotMatch (HTTP 403)\nhint: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that this key may read and write the bucket\n`,
  });
  assert.not.match(wrong.stderr, 'not-the-secret');
  const j = run(['-C', dir, 'push', '--json'], { env: { ...s.env, AWS_ACCESS_KEY_ID: 'NOSUCHKEY0000000000', AWS_SECRET_ACCESS_KEY: 'x' } });
  assert.is(j.code, 1);
  assert.is(JSON.parse(j.stderr).error.code, 'ES3AUTH');
  expect(run(['-C', dir, 'push'], { env: { ...s.env, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined } }), {
    code: 1,
    stdout: '',
    stderr: `error: no S3 credentials found for 's3://${bucket}/prod' at ${s.endpoint}\nhint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials\n`,
  });
  const other = withRecords('pi-02', `s3://no-such-bucket-${process.pid}/x`, ['--endpoint', s.endpoint]);
  expect(run(['-C', other, 'push'], { env: s.env }), { code: 1, stdout: '', stderr: `error: bucket 'no-such-bucket-${process.pid}' does not exist at ${s.endpoint}\nhint: create the bucket first (walnut does not create buckets), or fix the remote URL\n` });
  const closed = withRecords('pi-03', `s3://${bucket}/x`, ['--endpoint', 'http://127.0.0.1:9']);
  expect(run(['-C', closed, 'push'], { env: s.env }), { code: 1, stdout: '', stderr: /^error: cannot reach the S3 endpoint of 's3:\/\/.*' at http:\/\/127.0.0.1:9: ECONNREFUSED\nhint: / });
});

test('S3: a server that ignores conditional writes is refused before any segment is sent', async () => {
  // A small fake (the real server honours conditions): every PUT succeeds.
  const puts: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'PUT') {
        puts.push(req.url ?? '');
        res.writeHead(200, { ETag: '"0123456789abcdef0123456789abcdef"' });
        res.end();
      } else if (req.method === 'DELETE') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(404, { 'Content-Type': 'application/xml' });
        res.end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const dir = withRecords('pi-01', 's3://fake-bucket/p', ['--endpoint', `http://127.0.0.1:${port}`]);
    const r = await walnutAsync(['-C', dir, 'push'], { env: { ...s3Server().env, NO_COLOR: '1' } });
    assert.is(r.code, 1, r.stderr);
    assert.is(r.stdout, '');
    assert.is(
      r.stderr,
      `error: the S3 server of 's3://fake-bucket/p' at http://127.0.0.1:${port} ignores conditional writes (If-None-Match: * did not stop an overwrite); walnut cannot use it safely\nhint: use a server that supports If-None-Match and If-Match on PUT (AWS S3, Ceph RGW, recent MinIO), or a directory remote\n`,
    );
    assert.ok(puts.every((u) => u.startsWith('/fake-bucket/p/probe/')), `only probe objects were written: ${puts.join(', ')}`);
  } finally {
    server.close();
  }
});

test.after(closeClients);

test.run();
