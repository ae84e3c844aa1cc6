/**
 * The listing of entity folders kept in `.walnut/dirs` (lib/view.ts,
 * listEntityDirs): used while the data directory's and the collections'
 * mtimes are unchanged, read again after any change, never kept while a
 * folder changed within the last 2 s.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, walnut } from './helpers.js';

const HOUR_AGO = new Date(Date.now() - 3600_000);

function status(data: string): { untracked: string[]; missing: string[] } {
  const r = walnut(['status', '--json'], { cwd: data });
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function writeEntity(data: string, target: string): void {
  fs.mkdirSync(path.join(data, target), { recursive: true });
  fs.writeFileSync(path.join(data, target, '_index.md'), `---\nname: ${path.basename(target)}\n---\n`);
}

/** Set the mtime of the data directory and of its collection folders an hour back. */
function age(data: string): void {
  for (const c of ['companies', 'people']) if (fs.existsSync(path.join(data, c))) fs.utimesSync(path.join(data, c), HOUR_AGO, HOUR_AGO);
  fs.utimesSync(data, HOUR_AGO, HOUR_AGO);
}

const cacheFile = (data: string) => path.join(data, '.walnut', 'dirs');

test('a listing read right after a change is not kept; an old one is, and is used', () => {
  const data = initRepoDir('pi-01');
  writeEntity(data, 'companies/acme');
  writeEntity(data, 'people/ann');
  assert.equal(status(data).untracked, ['companies/acme', 'people/ann']);
  assert.not.ok(fs.existsSync(cacheFile(data)), 'folders changed within 2 s: not kept');
  age(data);
  assert.equal(status(data).untracked, ['companies/acme', 'people/ann']);
  assert.ok(fs.existsSync(cacheFile(data)), 'kept');
  const kept = JSON.parse(fs.readFileSync(cacheFile(data), 'utf8'));
  assert.equal(kept.targets, ['companies/acme', 'people/ann']);
  // used: a folder added behind its back (its collection's mtime put back) is not seen
  writeEntity(data, 'companies/zeta');
  age(data);
  assert.equal(status(data).untracked, ['companies/acme', 'people/ann'], 'the kept listing was used');
});

test('any change to a collection or to the data directory reads the folders again', () => {
  const data = initRepoDir('pi-01');
  writeEntity(data, 'companies/acme');
  age(data);
  status(data);
  assert.ok(fs.existsSync(cacheFile(data)));
  // a new entity folder (the collection's mtime changes)
  writeEntity(data, 'companies/beta');
  assert.equal(status(data).untracked, ['companies/acme', 'companies/beta']);
  // a removed one
  age(data);
  status(data);
  fs.rmSync(path.join(data, 'companies/acme'), { recursive: true });
  assert.equal(status(data).untracked, ['companies/beta']);
  // a new collection (the data directory's mtime changes)
  age(data);
  status(data);
  writeEntity(data, 'people/ann');
  assert.equal(status(data).untracked, ['companies/beta', 'people/ann']);
  // a damaged cache is read as none
  age(data);
  status(data);
  fs.writeFileSync(cacheFile(data), '{"version":1,"mtimes":');
  assert.equal(status(data).untracked, ['companies/beta', 'people/ann']);
});

test.run();
