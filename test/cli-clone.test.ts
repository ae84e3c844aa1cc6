/**
 * walnut clone: end to end through the built CLI, from a directory remote
 * and from a real S3 server (Ceph RGW, test/s3-server.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten } from './cli-util.js';
import { s3Server, newBucket, closeClients } from './s3-server.js';

const NOW = { WALNUT_NOW: '2026-11-21T10:00:00Z' };

/** A data directory of `node` with two entities, pushed to `url`. */
function seeded(node: string, url: string, extra: string[] = [], env: Record<string, string> = {}): string {
  const dir = initRepoDir(node);
  expect(run(['-C', dir, 'remote', 'add', 'origin', url, ...extra]), { code: 0 });
  const input = [
    { target: 'companies/acme', field: 'name', value: 'Acme' },
    { target: 'companies/acme', field: 'employees', value: 42 },
    { target: 'people/jane', field: 'name', value: 'Jane' },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n';
  expect(run(['-C', dir, 'set', '--batch'], { env: NOW, input }), { code: 0 });
  expect(run(['-C', dir, 'push'], { env }), { code: 0 });
  return dir;
}

test('clone a directory remote: journals fetched, compacted, origin set; the clone can push', () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = seeded('pi-01', remote);
  const target = path.join(tmpDir(), 'laptop-data');
  const n = fs.statSync(path.join(a, 'wal', '20261121_pi-01.usv')).size;
  expect(run(['clone', remote, target, '--node', 'laptop'], { env: NOW }), { code: 0, stdout: '', stderr: `Cloned ${remote} into ${target} (node laptop): 1 segment (${n} B), 2 entities\n` });
  assert.is(fs.readFileSync(path.join(target, 'companies', 'acme', '_index.md'), 'utf8'), '---\nname: Acme\nemployees: 42\n---\n');
  assert.is(fs.readFileSync(path.join(target, 'people', 'jane', '_index.md'), 'utf8'), '---\nname: Jane\n---\n');
  expect(run(['-C', target, 'remote', 'list']), { code: 0, stdout: `origin\t${remote}\n` });
  expect(run(['-C', target, 'config', 'get', 'core.node']), { code: 0, stdout: 'laptop\n' });
  expect(run(['-C', target, 'set', 'companies/acme', 'city', 'Paris'], { env: NOW }), { code: 0 });
  expect(run(['-C', target, 'push']), { code: 0, stderr: /^pushed 1 segment/ });
  expect(run(['-C', a, 'pull'], { env: NOW }), { code: 0, stderr: /^pulled 1 segment/ });
  const shown = run(['-C', a, 'show', 'companies/acme', '--json']);
  expect(shown, { code: 0, stderr: '' });
  assert.equal(JSON.parse(shown.stdout).fields, { name: 'Acme', employees: 42, city: 'Paris' });
});

test('clone --json, --no-compact, a file:// URL', () => {
  const remote = path.join(tmpDir(), 'remote');
  const a = seeded('pi-01', remote);
  const n = fs.statSync(path.join(a, 'wal', '20261121_pi-01.usv')).size;
  const target = path.join(tmpDir(), 'x');
  const r = run(['clone', `file://${remote}`, target, '--node', 'pi-02', '--no-compact', '--json']);
  expect(r, { code: 0, stderr: '' });
  const doc = JSON.parse(r.stdout);
  assert.equal({ ...doc, wire: undefined }, {
    version: 1,
    dir: target,
    node: 'pi-02',
    remote: 'origin',
    url: `file://${remote}`,
    kind: 'dir',
    received: { segments: 1, bytes: n },
    transfers: [{ segment: 'wal/20261121_pi-01.usv', node: 'pi-01', from: 0, to: n, bytes: n }],
    wire: undefined,
    compact: null,
    startedFrom: null,
  });
  assert.not.ok(fs.existsSync(path.join(target, 'companies')));
  expect(run(['-C', target, 'show', 'companies/acme']), { code: 0, stdout: 'companies/acme\nname: Acme  # pending: pi-01 2026-11-21T10:00:00.000Z\nemployees: 42  # pending: pi-01 2026-11-21T10:00:00.000Z\n' });
});

test('clone refuses: a non-empty destination, a missing remote, a node id already used (exit 4); nothing left behind', () => {
  const remote = path.join(tmpDir(), 'remote');
  seeded('pi-01', remote);
  const busy = tmpDir();
  fs.writeFileSync(path.join(busy, 'notes.txt'), 'x');
  nothingWritten(busy, () => {
    expect(run(['clone', remote, busy, '--node', 'pi-02']), { code: 1, stdout: '', stderr: `error: destination '${busy}' already exists and is not an empty directory\nhint: clone into a new directory\n` });
  });
  const parent = tmpDir();
  nothingWritten(parent, () => {
    expect(run(['clone', path.join(parent, 'nowhere'), path.join(parent, 'd'), '--node', 'pi-02']), { code: 1, stdout: '', stderr: `error: remote does not exist: '${path.join(parent, 'nowhere')}'\nhint: check the path or bucket name\n` });
    expect(run(['clone', remote, path.join(parent, 'd'), '--node', 'pi-01']), {
      code: 4,
      stdout: '',
      stderr: `error: node id 'pi-01' is already used at '${remote}' by another machine (${fs.readFileSync(path.join(remote, 'nodes', 'pi-01'), 'utf8').match(/"machine":"([0-9a-f]{12})/)![1]})\nhint: give this machine a node id of its own: walnut clone <url> <dir> --node <id>\n`,
    });
    expect(run(['clone', 'https://example.com/x', path.join(parent, 'd')]), { code: 2, stdout: '', stderr: /^error: unsupported remote URL/ });
  });
  // An empty destination folder is fine.
  const empty = tmpDir();
  expect(run(['clone', remote, empty, '--node', 'pi-03'], { env: NOW }), { code: 0, stderr: /^Cloned / });
});

test('clone from S3', async () => {
  const s = s3Server();
  const url = `s3://${await newBucket()}/team`;
  seeded('pi-01', url, ['--endpoint', s.endpoint], s.env);
  const target = path.join(tmpDir(), 'c');
  expect(run(['clone', url, target, '--node', 'pi-09', '--endpoint', s.endpoint], { env: { ...s.env, ...NOW } }), { code: 0, stdout: '', stderr: new RegExp(`^Cloned ${url} into ${target} \\(node pi-09\\): 1 segment \\(\\d+ B\\), 2 entities\\n$`) });
  expect(run(['-C', target, 'remote', 'list', '--json']), { code: 0, stdout: JSON.stringify({ version: 1, remotes: [{ name: 'origin', url, kind: 's3', endpoint: s.endpoint }] }) + '\n' });
  expect(run(['-C', target, 'show', 'people/jane']), { code: 0, stdout: 'people/jane\nname: Jane\n' });
  expect(run(['-C', target, 'pull'], { env: { ...s.env, ...NOW } }), { code: 0, stdout: '', stderr: '' });
  // Wrong credentials: a clear error and no directory left.
  const t2 = path.join(tmpDir(), 'd');
  expect(run(['clone', url, t2, '--node', 'pi-10', '--endpoint', s.endpoint], { env: { ...s.env, AWS_SECRET_ACCESS_KEY: 'wrong' } }), { code: 1, stdout: '', stderr: /^error: S3 refused the credentials for 's3:\/\/.*' at http:\/\/127\.0\.0\.1:\d+: SignatureDoesNotMatch \(HTTP 403\)\n/ });
  assert.not.ok(fs.existsSync(t2));
});

test.after(closeClients);

test.run();
