/**
 * `walnut version create | list | show | diff | prune`, end to end, with the
 * version store read back by independent readers: the real git CLI and
 * isomorphic-git.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import git from 'isomorphic-git';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, ok, git as gitCli, gitStatus, gitdir, versionFiles, entityFiles, sameFiles, makeVersion, entity, writeEntities, activePointer } from './version-helpers.js';

const ID = /^[0-9a-f]{40}$/;

function refs(data: string): string[] {
  return fs.readdirSync(path.join(gitdir(data), 'refs', 'versions')).sort();
}

function packs(data: string): string[] {
  return fs.readdirSync(path.join(gitdir(data), 'objects', 'pack')).sort();
}

/** Object ids in a pack, read by the git CLI from its index. */
function packObjects(data: string, pack: string): string[] {
  const idx = fs.readFileSync(path.join(gitdir(data), 'objects', 'pack', pack));
  return gitCli(data, ['show-index'], { input: idx })
    .toString()
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[1])
    .sort();
}

/** Every file below a tree, read with isomorphic-git: path → bytes. */
async function isoFiles(data: string, id: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const dir = gitdir(data);
  const { commit } = await git.readCommit({ fs, gitdir: dir, oid: id });
  const walk = async (oid: string, prefix: string) => {
    const { tree } = await git.readTree({ fs, gitdir: dir, oid });
    for (const e of tree) {
      const p = prefix + e.path;
      if (e.type === 'tree') await walk(e.oid, p + '/');
      else if (!p.startsWith('.walnut/')) out.set(p, Buffer.from((await git.readBlob({ fs, gitdir: dir, oid: e.oid })).blob));
    }
  };
  await walk(commit.tree, '');
  return out;
}

test('create compacts first, prints the id; git and isomorphic-git read exactly the entity files', async () => {
  const data = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], data);
  ok(['set', 'companies/acme', 'employees', '12'], data);
  ok(['set', 'companies/zeta', 'name', 'Zeta'], data);
  writeEntities(data, { 'people/ann': '---\nname: Ann   # by hand\n---\nA body\nwith two lines.\n' });
  assert.not.ok(fs.existsSync(path.join(data, 'companies/acme/_index.md')), 'not compacted yet');
  // --record: the hand-written file no record touches is adopted first
  const r = ok(['version', 'create', '--record'], data);
  const id = r.stdout.trim();
  assert.match(id, ID);
  assert.is(r.stdout, id + '\n', 'stdout is only the id');
  assert.match(r.stderr, new RegExp(`^created version ${id.slice(0, 12)}: 3 entities, 3 changed, \\d+ new objects\\n$`));
  // compaction ran first: the files exist and nothing is pending
  assert.is(fs.readFileSync(path.join(data, 'companies/acme/_index.md'), 'utf8'), '---\nname: Acme\nemployees: 12\n---\n');
  assert.is(fs.readFileSync(path.join(data, 'companies/zeta/_index.md'), 'utf8'), '---\nname: Zeta\n---\n');

  // the git CLI reads the version: a commit whose tree holds exactly the entity files
  assert.is(gitCli(data, ['cat-file', '-t', id]).toString(), 'commit\n');
  const files = versionFiles(data, id);
  sameFiles(files, entityFiles(data), 'git ls-tree/cat-file vs the data directory');
  assert.is(files.get('people/ann/_index.md')!.toString(), '---\nname: Ann   # by hand\n---\nA body\nwith two lines.\n', 'a hand-written file byte for byte');
  assert.match(gitCli(data, ['log', '--format=%H %s']).toString(), new RegExp(`^${id} walnut version: 3 entities, generation \\d+\\n$`), 'git log shows the one version');
  // isomorphic-git agrees
  sameFiles(await isoFiles(data, id), files, 'isomorphic-git vs git');
  const fsck = gitStatus(data, ['fsck', '--strict']);
  assert.is(fsck.code, 0, `git fsck --strict: ${fsck.out}`);
});

test('without --record a version is the compacted state: a hand edit is in it once recorded, never lost', () => {
  const data = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], data);
  ok(['set', 'companies/zeta', 'name', 'Zeta'], data);
  const v1 = JSON.parse(ok(['version', 'create', '--json'], data).stdout);
  // by hand: zeta edited (no record touches it), acme edited and then set by a record, a new file
  const acme = path.join(data, 'companies/acme/_index.md');
  writeEntities(data, { 'companies/zeta': entity({ name: 'Zeta', city: 'by hand' }), 'companies/acme': entity({ name: 'Acme', note: 'by hand' }), 'people/ann': entity({ name: 'Ann' }) });
  ok(['set', 'companies/acme', 'employees', '7'], data);
  const v2 = JSON.parse(ok(['version', 'create', '--json'], data).stdout);
  assert.is.not(v2.id, v1.id);
  assert.is(v2.recorded, 1, 'only the file the compaction changed was checked: its edit recorded before the record was applied');
  const files2 = versionFiles(data, v2.id);
  assert.is(files2.get('companies/acme/_index.md')!.toString(), fs.readFileSync(acme, 'utf8'), 'acme: the edit and the record');
  assert.match(fs.readFileSync(acme, 'utf8'), /note: by hand/);
  assert.match(fs.readFileSync(acme, 'utf8'), /employees: 7/);
  assert.is(files2.get('companies/zeta/_index.md')!.toString(), '---\nname: Zeta\n---\n', 'zeta: the compacted state, not the unrecorded edit');
  assert.not.ok(files2.has('people/ann/_index.md'), 'a file never recorded is not in the version');
  // nothing lost: the files keep the edits and status names them
  assert.match(fs.readFileSync(path.join(data, 'companies/zeta/_index.md'), 'utf8'), /city: by hand/);
  const st = ok(['status', '--json'], data).stdout;
  assert.match(st, /companies\/zeta/);
  assert.match(st, /people\/ann/);
  // --record publishes them
  const v3 = JSON.parse(ok(['version', 'create', '--record', '--json'], data).stdout);
  assert.is(v3.recorded, 1, 'zeta recorded (ann adopted as it is)');
  sameFiles(versionFiles(data, v3.id), entityFiles(data), 'with --record the version holds what the files hold');
});

test('nothing changed: create prints the same id and writes no new version', () => {
  const data = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], data);
  const first = ok(['version', 'create'], data).stdout.trim();
  const second = ok(['version', 'create'], data);
  const state = { refs: refs(data), packs: packs(data) };
  const third = ok(['version', 'create'], data);
  assert.is(third.stdout, second.stdout, 'a third create finds nothing new');
  assert.is(third.stderr, `nothing changed since version ${second.stdout.slice(0, 12)}\n`);
  assert.equal({ refs: refs(data), packs: packs(data) }, state, 'no new ref, no new pack');
  // no record and no edit between the first and the second create either
  assert.is(second.stdout, first + '\n', `the second create gives the same version id (stderr: ${second.stderr.trim()})`);
  assert.is(second.stderr, `nothing changed since version ${first.slice(0, 12)}\n`);
  assert.is(refs(data).length, 1, 'one version');
});

test('a version differing in k entities writes 3k objects plus a few trees and the commit, as one pack', () => {
  const data = initRepoDir('pi-01');
  const base: string[] = [];
  for (let i = 0; i < 60; i++) base.push(JSON.stringify({ target: `${i % 2 ? 'companies' : 'people'}/e${i}`, field: 'name', value: `Entity ${i}` }));
  const setBatch = (lines: string[]) => ok(['set', '--batch'], data, {}, lines.join('\n'));
  setBatch(base);
  const v1 = ok(['version', 'create'], data).stdout.trim();
  const k = 10;
  const changes: string[] = [];
  for (let i = 0; i < k; i++) changes.push(JSON.stringify({ target: `${i % 2 ? 'companies' : 'people'}/e${i * 5}`, field: 'city', value: `City ${i}` }));
  setBatch(changes);
  const packsBefore = packs(data);
  const doc = JSON.parse(ok(['version', 'create', '--json'], data).stdout);
  assert.is(doc.version, 1);
  assert.ok(doc.new === true);
  assert.is(doc.parent, v1);
  assert.is(doc.changed, k, 'changed entities');
  assert.is(doc.entities, 60);
  const newPacks = packs(data).filter((p) => !packsBefore.includes(p));
  assert.is(newPacks.length, 2, `one new pack (.pack and .idx): ${newPacks}`);
  const inPack = packObjects(data, newPacks.find((p) => p.endsWith('.idx'))!);
  // what is new, by git's own reachability: objects of v2 not reachable from v1
  const reachable = gitCli(data, ['rev-list', '--objects', doc.id, `^${v1}`]).toString().trim().split('\n').map((l) => l.split(' ')[0]).sort();
  assert.equal(inPack, reachable, 'the pack holds exactly the objects v1 lacks');
  assert.is(doc.objects, inPack.length, 'the reported count');
  // per changed entity: its blob, its folder tree, its stamps blob; then 2 collection trees,
  // 2 stamps collection trees, the stamps tree, the .walnut tree, the checkpoint, the root tree and the commit
  assert.ok(inPack.length >= 3 * k && inPack.length <= 3 * k + 9, `about 3k objects: ${inPack.length} for k=${k}`);
  const fsck = gitStatus(data, ['fsck', '--strict']);
  assert.is(fsck.code, 0, fsck.out);
});

test('a version built from the changes since the last one is the tree a full build gives', () => {
  const data = initRepoDir('pi-01');
  const setBatch = (lines: object[]) => ok(['set', '--batch'], data, {}, lines.map((l) => JSON.stringify(l)).join('\n'));
  // slugs whose git order differs from their order as strings ('a-b/' < 'a/'), and non-ASCII ones
  const slugs = ['a', 'a-b', 'a.b', 'ab', 'b', 'zürich', 'zz', 'é', '\u{1f330}nut', 'ﬀ'];
  setBatch(slugs.map((s, i) => ({ target: `companies/${s}`, field: 'name', value: `N${i}` })));
  setBatch([{ target: 'people/ann', field: 'name', value: 'Ann' }]);
  const v1 = JSON.parse(ok(['version', 'create', '--json'], data).stdout);
  assert.is(v1.built, 'full', 'the first version is built from every entity');
  const step = (changes: object[], hand: Record<string, string | null> = {}) => {
    if (changes.length) setBatch(changes);
    writeEntities(data, hand);
    const doc = JSON.parse(ok(['version', 'create', '--json', ...(Object.keys(hand).length ? ['--record'] : [])], data).stdout);
    assert.is(doc.built, 'changes', `built from the changes: ${JSON.stringify(doc)}`);
    // a full build of the same state finds nothing new: the very same trees
    const full = ok(['version', 'create', '--full', '--json'], data);
    const again = JSON.parse(full.stdout);
    assert.is(again.built, 'full');
    assert.is(again.new, false, `a full build gives the same tree: ${full.stdout}`);
    assert.is(again.id, doc.id);
    sameFiles(versionFiles(data, doc.id), entityFiles(data), `version ${doc.id} = the entity files`);
    return doc;
  };
  // changed, added between existing names (both orders), added at both ends, a new collection
  const v2 = step([
    { target: 'companies/a', field: 'city', value: 'Oslo' },
    { target: 'companies/a-a', field: 'name', value: 'new' },
    { target: 'companies/a0', field: 'name', value: 'new too' },
    { target: 'companies/0first', field: 'name', value: 'first' },
    { target: 'companies/\u{1f331}sprout', field: 'name', value: 'last' },
    { target: 'notes/n1', field: 'title', value: 'T' },
  ]);
  assert.is(v2.changed, 6);
  assert.is(v2.entities, slugs.length + 1 + 5);
  // deleted, a hand edit recorded before the build (--record), an unchanged field set again
  const v3 = step([{ target: 'companies/a-b', field: '@deleted', value: true }, { target: 'companies/b', field: 'name', value: 'N4' }], { 'people/ann': entity({ name: 'Ann', role: 'by hand' }) });
  assert.is(v3.changed, 2, 'a-b deleted, ann edited (b unchanged)');
  assert.is(v3.entities, v2.entities - 1);
  // every entity of a collection deleted: the collection leaves the tree
  const v4 = step([{ target: 'notes/n1', field: '@deleted', value: true }]);
  assert.not.ok([...versionFiles(data, v4.id).keys()].some((f) => f.startsWith('notes/')), 'no notes/ tree');
  // and it comes back
  step([{ target: 'notes/n1', field: 'title', value: 'back' }]);
  const fsck = gitStatus(data, ['fsck', '--strict']);
  assert.is(fsck.code, 0, fsck.out);
});

test('a lost or stale build mark, or a newest version from elsewhere, means a full build', () => {
  const data = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], data);
  ok(['version', 'create'], data);
  const mark = path.join(gitdir(data), 'walnut-build');
  assert.ok(fs.existsSync(mark));
  ok(['set', 'companies/acme', 'name', 'Acme 2'], data);
  fs.rmSync(mark);
  assert.is(JSON.parse(ok(['version', 'create', '--json'], data).stdout).built, 'full', 'no mark');
  ok(['set', 'companies/acme', 'name', 'Acme 3'], data);
  fs.writeFileSync(mark, '{"version":1,"id":"torn');
  assert.is(JSON.parse(ok(['version', 'create', '--json'], data).stdout).built, 'full', 'a damaged mark');
  // the mark names another version than the newest
  ok(['set', 'companies/acme', 'name', 'Acme 4'], data);
  const good = fs.readFileSync(mark, 'utf8');
  fs.writeFileSync(mark, good.replace(/"id":"[0-9a-f]{40}"/, `"id":"${'0'.repeat(40)}"`));
  assert.is(JSON.parse(ok(['version', 'create', '--json'], data).stdout).built, 'full', 'a mark for another version');
  ok(['set', 'companies/acme', 'name', 'Acme 5'], data);
  const doc = JSON.parse(ok(['version', 'create', '--json'], data).stdout);
  assert.is(doc.built, 'changes', 'and the mark written by that full build is used');
  sameFiles(versionFiles(data, doc.id), entityFiles(data), 'the version = the entity files');
});

/**
 * Three versions, built once and copied per test that writes:
 * v1 = x (Berlin), gone, same, n1 (first body);
 * v2 = gone deleted, x (Oslo, 5 employees), n1 (second body), people/new added;
 * v3 = people/ann added.
 */
let fixture: { data: string; v1: string; v2: string; v3: string } | undefined;
function threeVersions({ copy = true } = {}) {
  if (!fixture) {
    const data = initRepoDir('pi-01');
    const v1 = makeVersion(data, {
      'companies/x': entity({ name: 'X', city: 'Berlin' }),
      'companies/gone': entity({ name: 'Gone' }),
      'companies/same': entity({ name: 'Same' }),
      'notes/n1': '---\ntitle: Note\n---\nfirst body\n',
    });
    ok(['set', 'companies/gone', '@deleted', 'true'], data);
    const v2 = makeVersion(data, {
      'companies/x': entity({ name: 'X', city: 'Oslo', employees: 5 }),
      'notes/n1': '---\ntitle: Note\n---\nsecond body\n',
      'people/new': entity({ name: 'New', role: 'cto' }),
    });
    const v3 = makeVersion(data, { 'people/ann': entity({ name: 'Ann' }) });
    fixture = { data, v1, v2, v3 };
  }
  if (!copy) return fixture;
  const data = path.join(tmpDir(), 'data');
  fs.cpSync(fixture.data, data, { recursive: true });
  return { ...fixture, data };
}

test('list: newest first, the active marker and the previous one; --json', () => {
  const { data, v1, v2, v3 } = threeVersions();
  const plain = ok(['version', 'list'], data).stdout.split('\n').filter(Boolean);
  assert.is(plain.length, 3);
  const row = (line: string) => /^([* ]) ([0-9a-f]{40})  (\S+)  (\S+)  (\d+) entit(?:y|ies)(  \(previous\))?$/.exec(line);
  assert.equal(plain.map((l) => row(l)?.[2]), [v3, v2, v1], `newest first:\n${plain.join('\n')}`);
  assert.ok(plain.every((l) => row(l)?.[1] === ' '), 'nothing active yet');
  ok(['activate', v1], data);
  ok(['activate', v3], data);
  const after = ok(['version', 'list'], data).stdout.split('\n').filter(Boolean).map((l) => row(l)!);
  assert.equal(after.map((m) => m[1]), ['*', ' ', ' '], 'v3 is active');
  assert.equal(after.map((m) => Boolean(m[6])), [false, false, true], 'v1 is the previous one');
  assert.equal(after.map((m) => Number(m[5])), [5, 4, 4], 'entity counts');
  assert.ok(after.every((m) => m[4] === 'pi-01'));
  const doc = JSON.parse(ok(['version', 'list', '--json'], data).stdout);
  assert.is(doc.version, 1);
  assert.equal(doc.versions.map((v: { id: string }) => v.id), [v3, v2, v1]);
  assert.equal(doc.versions.map((v: { active: boolean }) => v.active), [true, false, false]);
  assert.equal(doc.versions.map((v: { previous: boolean }) => v.previous), [false, false, true]);
  assert.equal(doc.versions.map((v: { parent: string | null }) => v.parent), [v2, v1, null]);
  const created = doc.versions.map((v: { created: string }) => v.created);
  assert.ok(created.every((c: string) => !Number.isNaN(Date.parse(c))), 'ISO times');
  assert.equal([...created].sort().reverse(), created, 'newest first by time');
  // the counts agree with git
  for (const v of doc.versions) assert.is(v.entities, versionFiles(data, v.id).size, `${v.id} entity count`);
});

test('show: by id and prefix, text and --json, agreeing with git', () => {
  const { data, v2, v3 } = threeVersions();
  ok(['activate', v3], data);
  const tree = gitCli(data, ['rev-parse', `${v3}^{tree}`]).toString().trim();
  const text = ok(['version', 'show', v3.slice(0, 8)], data).stdout;
  assert.match(text, new RegExp(`^version    ${v3}  \\(active\\)\\ncreated    \\S+ by pi-01\\nentities   5 \\(companies: 2, notes: 1, people: 2\\)\\ngeneration \\d+\\nparent     ${v2}\\ntree       ${tree}\\n$`));
  const doc = JSON.parse(ok(['version', 'show', v2, '--json'], data).stdout);
  assert.is(doc.version, 1);
  assert.is(doc.id, v2);
  assert.is(doc.active, false);
  assert.equal(doc.collections, { companies: 2, notes: 1, people: 1 });
  assert.is(doc.tree, gitCli(data, ['rev-parse', `${v2}^{tree}`]).toString().trim());
  assert.is(doc.parent, gitCli(data, ['rev-parse', `${v2}^`]).toString().trim());
  assert.is(doc.entities, 4);
});

test('diff: added, modified (with field names), deleted; --json; reversed; identical', () => {
  const { data, v1: a, v2: b } = threeVersions({ copy: false });
  assert.not.ok(versionFiles(data, b).has('companies/gone/_index.md'), 'the deleted entity is not in b');
  const r = ok(['version', 'diff', a, b], data);
  assert.is(r.stdout, 'D companies/gone\nM companies/x  city, employees\nM notes/n1  @body\nA people/new\n');
  const doc = JSON.parse(ok(['version', 'diff', a.slice(0, 10), b, '--json'], data).stdout);
  assert.is(doc.version, 1);
  assert.is(doc.from, a);
  assert.is(doc.to, b);
  assert.equal(doc.entities, [
    { target: 'companies/gone', action: 'removed', fields: ['name'] },
    { target: 'companies/x', action: 'changed', fields: ['city', 'employees'] },
    { target: 'notes/n1', action: 'changed', fields: ['@body'] },
    { target: 'people/new', action: 'added', fields: ['name', 'role'] },
  ]);
  assert.is(ok(['version', 'diff', b, a], data).stdout, 'A companies/gone\nM companies/x  city, employees\nM notes/n1  @body\nD people/new\n');
  assert.is(ok(['version', 'diff', a, a], data).stdout, '');
  // the same entities git sees as changed (its paths, without the metadata)
  const gitChanged = gitCli(data, ['diff-tree', '-r', '--name-status', a, b]).toString().trim().split('\n').filter((l) => !l.includes('.walnut/'));
  assert.equal(gitChanged, ['D\tcompanies/gone/_index.md', 'M\tcompanies/x/_index.md', 'M\tnotes/n1/_index.md', 'A\tpeople/new/_index.md']);
});

/** Six versions (v: 1..6 on every entity); v2 then v3 activated. Built once, copied per test. */
let sixCache: { data: string; ids: string[] } | undefined;
function sixVersions(): { data: string; ids: string[] } {
  if (!sixCache) {
    const data = initRepoDir('pi-01');
    const ids: string[] = [];
    for (let v = 1; v <= 6; v++) ids.push(makeVersion(data, { 'companies/a': entity({ name: 'A', v }), 'companies/b': entity({ name: 'B', v }) }));
    ok(['activate', ids[1]], data);
    ok(['activate', ids[2]], data);
    sixCache = { data, ids };
  }
  const copy = path.join(tmpDir(), 'data');
  fs.cpSync(sixCache.data, copy, { recursive: true });
  return { data: copy, ids: sixCache.ids };
}

test('prune --keep: the active, the previous and the newest stay; what is kept stays readable', () => {
  const { data, ids } = sixVersions();
  const [v1, v2, v3, v4, v5, v6] = ids;
  assert.equal(refs(data), [...ids].sort(), 'six versions before');
  const doc = JSON.parse(ok(['version', 'prune', '--keep', '4', '--json'], data).stdout);
  assert.is(doc.version, 1);
  assert.equal([...doc.removed].sort(), [v1, v4].sort(), 'removed: the oldest beyond the 4 kept, never active or previous');
  assert.equal([...doc.kept].sort(), [v2, v3, v5, v6].sort());
  assert.equal(refs(data), [v2, v3, v5, v6].sort(), 'the refs on disk');
  assert.is(packs(data).length, 2, `repacked into one pack: ${packs(data)}`);
  const listed = JSON.parse(ok(['version', 'list', '--json'], data).stdout).versions.map((v: { id: string }) => v.id);
  assert.equal(listed, [v6, v5, v3, v2]);
  // every kept version is whole: git reads v: n on every entity
  for (const [n, id] of [[2, v2], [3, v3], [5, v5], [6, v6]] as const) {
    const files = versionFiles(data, id);
    assert.equal([...files.keys()].sort(), ['companies/a/_index.md', 'companies/b/_index.md']);
    for (const [p, b] of files) assert.match(b.toString(), new RegExp(`\\nv: ${n}\\n`), `${p} of v${n}`);
  }
  assert.is(activePointer(data)!.version, v3, 'the pointer is untouched');
  // rollback still works: the previous version was kept
  ok(['activate', '--previous'], data);
  assert.is(activePointer(data)!.version, v2);
  // a pruned version is gone for every command
  const gone = run(['version', 'show', v1], data);
  assert.is(gone.code, 1);
  assert.is(gone.stderr.split('\n')[0], `error: no version '${v1}' in this data directory`);
});

test('prune --keep 1 still keeps the active and the previous version (and the newest, HEAD)', () => {
  const { data, ids } = sixVersions();
  const [, v2, v3, , , v6] = ids;
  const doc = JSON.parse(ok(['version', 'prune', '--keep', '1', '--json'], data).stdout);
  assert.equal([...doc.kept].sort(), [v2, v3, v6].sort());
  assert.equal(refs(data), [v2, v3, v6].sort());
  assert.is(gitCli(data, ['rev-parse', 'HEAD']).toString().trim(), v6);
  const again = JSON.parse(ok(['version', 'prune', '--keep', '1', '--json'], data).stdout);
  assert.equal(again.removed, [], 'a second prune removes nothing');
});

test('after prune the store is still a valid git repository: git log works, git fsck --strict passes', () => {
  const { data, ids } = sixVersions();
  ok(['version', 'prune', '--keep', '3'], data);
  const log = gitStatus(data, ['log', '--format=%H']);
  assert.is(log.code, 0, `git log: ${log.out}`);
  assert.is(log.out.split('\n')[0], ids[5], 'git log starts at the newest version');
  const fsck = gitStatus(data, ['fsck', '--strict', '--no-dangling']);
  assert.is(fsck.code, 0, `git fsck --strict after prune:\n${fsck.out}`);
});

test('bad arguments exit 2 with the usage', () => {
  const { data } = threeVersions({ copy: false });
  const before = refs(data);
  const cases: [string[], string][] = [
    [['version', 'show'], 'error: version show takes one <version>'],
    [['version', 'diff', 'abcd'], 'error: version diff takes two versions'],
    [['version', 'list', 'extra'], 'error: version list takes no arguments'],
    [['version', 'prune', '--keep', '0'], 'error: --keep must be a whole number of at least 1, not 0'],
    [['version', 'frob'], 'error: Invalid values:'],
    [['version'], 'error: '],
  ];
  for (const [args, first] of cases) {
    const r = run(args, data);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.ok(r.stderr.startsWith(first), `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /\nusage: walnut version /, `${args.join(' ')} prints the usage`);
    assert.is(r.stdout, '');
  }
  assert.equal(refs(data), before, 'nothing created or removed');
});

test('an unknown or malformed version exits 1 with a clear message; --json gives the code', () => {
  const { data, v1 } = threeVersions({ copy: false });
  const unknown = 'deadbeef'.repeat(5);
  const r = run(['version', 'show', unknown], data);
  assert.is(r.code, 1);
  assert.is(r.stdout, '');
  assert.is(r.stderr, `error: no version '${unknown}' in this data directory\nhint: see walnut version list; a version of a remote is fetched by walnut pull or walnut checkout --remote\n`);
  const d = run(['version', 'diff', v1, 'abcd0123'], data);
  assert.is(d.code, 1);
  assert.match(d.stderr, /^error: no version 'abcd0123' in this data directory\n/);
  const bad = run(['version', 'show', 'not-hex'], data);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /^error: not a version id: 'not-hex'\nhint: a version id is 40 hex digits/);
  const short = run(['version', 'show', v1.slice(0, 3)], data);
  assert.is(short.code, 1, 'a prefix under 4 digits is refused');
  const j = run(['version', 'show', unknown, '--json'], data);
  assert.is(j.code, 1);
  assert.is(JSON.parse(j.stderr).error.code, 'ENOVERSION');
});

/**
 * Two versions whose ids share their first 4 hex digits: commits written by
 * the git CLI (same tree as `base`, messages differing by a nonce found by
 * hashing), kept under refs/versions/ like walnut's own.
 */
function collidingVersions(data: string, base: string): [string, string] {
  const body = gitCli(data, ['cat-file', 'commit', base]).toString();
  const text = (n: number) => `${body}Nonce: ${n}\n`;
  const byPrefix = new Map<string, number>();
  for (let n = 0; ; n++) {
    const oid = createHash('sha1').update(`commit ${Buffer.byteLength(text(n))}\0`).update(text(n)).digest('hex');
    const earlier = byPrefix.get(oid.slice(0, 4));
    if (earlier === undefined) {
      byPrefix.set(oid.slice(0, 4), n);
      continue;
    }
    const ids = [earlier, n].map((m) => {
      const written = gitCli(data, ['hash-object', '-t', 'commit', '-w', '--stdin'], { input: text(m) }).toString().trim();
      gitCli(data, ['update-ref', `refs/versions/${written}`, written]);
      return written;
    });
    assert.is(ids[1], oid, 'git computed the same id');
    return ids as [string, string];
  }
}

test('an ambiguous prefix exits 1 and names the candidates; a longer prefix resolves', () => {
  const { data, v1 } = threeVersions();
  const [x, y] = collidingVersions(data, v1);
  const prefix = x.slice(0, 4);
  assert.is(y.slice(0, 4), prefix);
  const r = run(['version', 'show', prefix], data);
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stderr.split('\n')[0], `error: version prefix '${prefix}' is ambiguous: ${[x, y].sort().map((i) => i.slice(0, 12)).join(', ')}`);
  assert.match(r.stderr, /\nhint: give more digits\n/);
  let n = 5;
  while (x.slice(0, n) === y.slice(0, n)) n++;
  const doc = JSON.parse(ok(['version', 'show', x.slice(0, n), '--json'], data).stdout);
  assert.is(doc.id, x);
  const a = run(['activate', prefix], data);
  assert.is(a.code, 1, 'activate refuses it too');
  assert.match(a.stderr, /is ambiguous/);
  assert.is(activePointer(data), undefined, 'nothing activated');
});

test.run();
