/** walnut remote: end to end through the built CLI. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten } from './cli-util.js';

test('add, list, remove a directory remote and an S3 remote', () => {
  const dir = initRepoDir('pi-01');
  const usb = path.join(tmpDir(), 'usb');
  expect(run(['-C', dir, 'remote', 'add', 'origin', usb]), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, 'remote', 'add', 'cloud', 's3://walnut-data/prod/', '--endpoint', 'http://127.0.0.1:7480', '--region', 'eu-1']), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, 'remote', 'list']), { code: 0, stdout: `origin\t${usb}\ncloud\ts3://walnut-data/prod\thttp://127.0.0.1:7480\n`, stderr: '' });
  const config = fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8');
  assert.match(config, `[remote "cloud"]\n\turl = s3://walnut-data/prod\n\tendpoint = http://127.0.0.1:7480\n\tregion = eu-1\n`);
  const json = run(['-C', dir, 'remote', 'list', '--json']);
  expect(json, { code: 0, stderr: '' });
  assert.equal(JSON.parse(json.stdout), {
    version: 1,
    remotes: [
      { name: 'origin', url: usb, kind: 'dir' },
      { name: 'cloud', url: 's3://walnut-data/prod', kind: 's3', endpoint: 'http://127.0.0.1:7480', region: 'eu-1' },
    ],
  });
  expect(run(['-C', dir, 'remote', 'remove', 'cloud', '--json']), { code: 0, stdout: JSON.stringify({ version: 1, removed: { name: 'cloud', url: 's3://walnut-data/prod', kind: 's3', endpoint: 'http://127.0.0.1:7480', region: 'eu-1' } }) + '\n', stderr: '' });
  expect(run(['-C', dir, 'remote', 'list']), { code: 0, stdout: `origin\t${usb}\n`, stderr: '' });
  assert.not.match(fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8'), 'cloud');
});

test('a relative directory is stored absolute; file:// URLs are kept', () => {
  const dir = initRepoDir('pi-01');
  const cwd = path.dirname(dir);
  expect(run(['-C', dir, 'remote', 'add', 'usb', '../usb'], { cwd: dir }), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, 'remote', 'add', 'nfs', 'file:///mnt/nfs/walnut'], { cwd }), { code: 0, stdout: '', stderr: '' });
  expect(run(['-C', dir, 'remote', 'list']), { code: 0, stdout: `usb\t${path.join(cwd, 'usb')}\nnfs\tfile:///mnt/nfs/walnut\n`, stderr: '' });
});

test('errors: duplicate, missing, bad URL, bad bucket, S3 options on a directory, inside the data directory', () => {
  const dir = initRepoDir('pi-01');
  run(['-C', dir, 'remote', 'add', 'origin', '/srv/walnut']);
  nothingWritten(path.dirname(dir), () => {
    expect(run(['-C', dir, 'remote', 'add', 'origin', '/other']), { code: 1, stdout: '', stderr: "error: remote 'origin' already exists (/srv/walnut)\nhint: remove it first with 'walnut remote remove origin'\n" });
    expect(run(['-C', dir, 'remote', 'remove', 'nope']), { code: 1, stdout: '', stderr: `error: no remote 'nope' in '${path.join(dir, '.walnut', 'config')}'\nhint: known remotes: origin\n` });
    expect(run(['-C', dir, 'remote', 'add', 'x', 'https://example.com/repo']), { code: 2, stdout: '', stderr: /^error: unsupported remote URL 'https:\/\/example.com\/repo'\nhint: a remote is a directory path, a file:\/\/ URL, or s3:\/\/bucket\/prefix\nusage: walnut remote add/ });
    expect(run(['-C', dir, 'remote', 'add', 'x', 's3://Bad_Bucket/p']), { code: 2, stdout: '', stderr: /^error: invalid S3 bucket name "Bad_Bucket" in 's3:\/\/Bad_Bucket\/p'\n/ });
    expect(run(['-C', dir, 'remote', 'add', 'x', '/srv/x', '--endpoint', 'http://h:1']), { code: 2, stdout: '', stderr: /^error: --endpoint and --region apply to s3:\/\/ remotes only\n/ });
    expect(run(['-C', dir, 'remote', 'add', 'x', path.join(dir, 'sub')]), { code: 2, stdout: '', stderr: new RegExp(`^error: remote directory '${path.join(dir, 'sub')}' is inside the data directory`) });
    expect(run(['-C', dir, 'remote', 'add', 'bad name', '/srv/x']), { code: 2, stdout: '', stderr: /^error: invalid remote name "bad name"/ });
    expect(run(['-C', dir, 'remote', 'add', 'x']), { code: 2, stdout: '', stderr: /^error: remote add needs <name> <url>\nusage: walnut remote add <name> <url> \[--endpoint <url>\] \[--region <name>\]\nusage: walnut remote remove <name>\nusage: walnut remote list \[--json\]\n$/ });
    expect(run(['-C', dir, 'remote', 'rename', 'a', 'b']), { code: 2, stdout: '', stderr: /^error: Invalid values:/ });
  }, 'failed remote commands');
});

test('outside a data directory', () => {
  const cwd = tmpDir();
  expect(run(['remote', 'list'], { cwd }), { code: 1, stdout: '', stderr: /^error: not a walnut data directory/ });
});

test.run();
