import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { walnut, initRepoDir } from './helpers.js';

function ok(args: string[], cwd: string) {
  const r = walnut(args, { cwd });
  assert.is(r.code, 0, `walnut ${args.join(' ')}: ${r.stderr}`);
  return r;
}

function segment(dir: string): string {
  return path.join(dir, 'wal', fs.readdirSync(path.join(dir, 'wal')).find((f) => f.endsWith('.usv'))!);
}

test('a clean data directory passes', () => {
  const dir = initRepoDir();
  ok(['set', 'companies/a', 'x', '1'], dir);
  ok(['compact'], dir);
  const r = ok(['fsck'], dir);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /checked 1 segments, 2 records, 1 entities: 0 problems/);
});

test('a torn tail is reported; --repair moves it to quarantine and cuts the segment, losing no byte', () => {
  const dir = initRepoDir();
  ok(['set', 'companies/a', 'x', '1'], dir);
  const seg = segment(dir);
  const good = fs.readFileSync(seg);
  const tail = '2026-11-21T10:00:00.000Z\u001fpi-01\u001fcompanies/a\u001fx\u001f"tor';
  fs.appendFileSync(seg, tail);
  const r = walnut(['fsck'], { cwd: dir });
  assert.is(r.code, 1);
  assert.match(r.stdout, new RegExp(`journal: 'wal/\\d{8}_pi-01.usv' at byte ${good.length}: torn last record`));
  assert.match(r.stderr, /hint: run 'walnut fsck --repair'/);
  const fixed = walnut(['fsck', '--repair', '--json'], { cwd: dir });
  assert.is(fixed.code, 0, fixed.stderr);
  const doc = JSON.parse(fixed.stdout);
  assert.is(doc.problems[0].code, 'ETORN');
  assert.match(doc.problems[0].repaired, /quarantine/);
  assert.equal(fs.readFileSync(seg), good, 'segment cut back to its last whole record');
  const q = path.join(dir, '.walnut/quarantine', `${path.basename(seg)}.${good.length}.torn`);
  assert.is(fs.readFileSync(q, 'utf8'), tail, 'the torn bytes are kept');
  ok(['fsck'], dir);
});

test('malformed records, broken frontmatter, leftover temp files and stale locks are reported', () => {
  const dir = initRepoDir();
  ok(['set', 'companies/a', 'x', '1'], dir);
  ok(['compact'], dir);
  fs.appendFileSync(segment(dir), 'only\u001ftwo\u001e\n');
  fs.writeFileSync(path.join(dir, 'companies/a/_index.md'), '---\nx: [1\n---\n');
  fs.writeFileSync(path.join(dir, 'companies/a/._index.md.abcd.walnut-tmp'), 'half');
  const lock = path.join(dir, '.walnut/locks/compact.lock');
  fs.mkdirSync(lock, { recursive: true });
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(lock, old, old);
  const r = walnut(['fsck', '--json'], { cwd: dir });
  assert.is(r.code, 1);
  const codes = JSON.parse(r.stdout).problems.map((p: { code: string }) => p.code).sort();
  assert.equal(codes, ['EDITED', 'EFRONTMATTER', 'ESTALELOCK', 'ETEMP', 'EUNITS'].map((c) => (c === 'EDITED' ? 'EEDITED' : c)).sort());
  const fixed = walnut(['fsck', '--repair', '--json'], { cwd: dir });
  const repaired = JSON.parse(fixed.stdout).problems.filter((p: { repaired?: string }) => p.repaired).map((p: { code: string }) => p.code).sort();
  assert.equal(repaired, ['ESTALELOCK', 'ETEMP']);
  assert.not.ok(fs.existsSync(lock));
  assert.ok(fs.readdirSync(path.join(dir, '.walnut/quarantine/temp')).length === 1, 'temp file kept in quarantine');
  assert.is(fixed.code, 1, 'malformed record and broken file remain: exit 1');
});

test.run();
