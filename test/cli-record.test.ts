import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { walnut, initRepoDir, snapshotTree } from './helpers.js';

function ok(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = walnut(args, { cwd, env });
  assert.is(r.code, 0, `walnut ${args.join(' ')}: ${r.stderr}`);
  return r;
}

function compacted(): string {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], dir);
  ok(['set', 'companies/acme', 'city', 'Berlin'], dir);
  ok(['compact'], dir);
  return dir;
}

test('nothing edited: silent, nothing written', () => {
  const dir = compacted();
  const before = snapshotTree(dir);
  const r = ok(['record'], dir);
  assert.is(r.stdout + r.stderr, '');
  assert.equal(snapshotTree(dir), before);
});

test('added, changed and removed keys and the body become records; status is clean after', () => {
  const dir = compacted();
  fs.writeFileSync(path.join(dir, 'companies/acme/_index.md'), '---\nname: Acme Inc\nowner: jane\n---\nA body.\n');
  const r = ok(['record', '--json'], dir);
  const doc = JSON.parse(r.stdout);
  assert.is(doc.version, 1);
  assert.equal(doc.records.map((x: { field: string; value: unknown }) => [x.field, x.value]), [['name', 'Acme Inc'], ['owner', 'jane'], ['@body', 'A body.\n'], ['city', null]]);
  assert.equal(doc.edited, ['companies/acme']);
  const st = JSON.parse(ok(['status', '--json'], dir).stdout);
  assert.equal(st.modified, [], 'recorded edits are no longer "edited by hand"');
  ok(['compact'], dir);
  assert.is(fs.readFileSync(path.join(dir, 'companies/acme/_index.md'), 'utf8'), '---\nname: Acme Inc\nowner: jane\n---\nA body.\n', 'compaction keeps the edited file as it is');
});

test('--dry-run lists what would be recorded and writes nothing', () => {
  const dir = compacted();
  fs.writeFileSync(path.join(dir, 'companies/acme/_index.md'), '---\nname: Acme\ncity: Paris\n---\n');
  const before = snapshotTree(dir);
  const r = ok(['record', '--dry-run'], dir);
  assert.is(r.stdout, 'companies/acme city "Paris"\n');
  assert.equal(snapshotTree(dir), before);
});

test('a removed entity file is recorded as a deletion', () => {
  const dir = compacted();
  fs.rmSync(path.join(dir, 'companies/acme'), { recursive: true });
  ok(['record'], dir);
  const log = ok(['log', 'companies/acme', '@deleted', '--json'], dir).stdout.trim().split('\n').map((l) => JSON.parse(l).value);
  assert.equal(log, [true]);
});

test('broken frontmatter: a warning with file and line, nothing recorded for it', () => {
  const dir = compacted();
  fs.writeFileSync(path.join(dir, 'companies/acme/_index.md'), '---\nname: Acme\nname: Twice\n---\n');
  const r = walnut(['record'], { cwd: dir });
  assert.is(r.code, 0);
  assert.match(r.stderr, /warning: 'companies\/acme\/_index.md' line 3: frontmatter does not parse/);
  assert.is(ok(['log', 'companies/acme', '--json'], dir).stdout.trim().split('\n').length, 2);
});

test('records are stamped when the file was saved (its mtime), not when the edit is noticed', () => {
  const dir = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
  ok(['compact'], dir, { WALNUT_NOW: '2026-11-21T10:00:00.000Z' });
  const file = path.join(dir, 'companies/acme/_index.md');
  fs.writeFileSync(file, '---\nname: Acme Inc\n---\n');
  fs.utimesSync(file, new Date('2026-11-21T10:42:00.000Z'), new Date('2026-11-21T10:42:00.000Z'));
  const doc = JSON.parse(ok(['record', '--json'], dir, { WALNUT_NOW: '2026-11-21T15:00:00.000Z' }).stdout);
  assert.equal(doc.records.map((x: { field: string; timestamp: string }) => [x.field, x.timestamp]), [['name', '2026-11-21T10:42:00.000Z']]);
  // a removed file counts from the mtime of its folder
  fs.rmSync(file);
  fs.utimesSync(path.dirname(file), new Date('2026-11-21T11:00:00.000Z'), new Date('2026-11-21T11:00:00.000Z'));
  const del = JSON.parse(ok(['record', '--json'], dir, { WALNUT_NOW: '2026-11-21T15:00:00.000Z' }).stdout);
  assert.equal(del.records.map((x: { field: string; value: unknown; timestamp: string }) => [x.field, x.value, x.timestamp]), [['@deleted', true, '2026-11-21T11:00:00.000Z']]);
  // the clock never goes back: a later set still orders after everything
  ok(['set', 'companies/acme', 'name', 'Back'], dir, { WALNUT_NOW: '2026-11-21T15:00:00.000Z' });
  ok(['compact'], dir, { WALNUT_NOW: '2026-11-21T15:00:00.000Z' });
  assert.is(fs.readFileSync(file, 'utf8'), '---\nname: Back\n---\n');
});

test('record waits for the compaction lease, then reports it held: exit 3', () => {
  const dir = compacted();
  fs.mkdirSync(path.join(dir, '.walnut/locks/compact.lock'), { recursive: true });
  const r = walnut(['record', '--wait', '200ms'], { cwd: dir, env: { WALNUT_LEASE_STALE_MS: '60000' } });
  assert.is(r.code, 3);
  assert.match(r.stderr, /^error: the compact lease is held by another walnut process/);
});

test.run();
