/**
 * `walnut activate` on the local pointer (.walnut/active): by id and prefix,
 * rollback, the health check (every entity file parses; the configured
 * command run in a checkout of the version), concurrent activations, and the
 * crash points of activate and version create.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers.js';
import { run, runAsync, ok, git, gitStatus, versionFiles, entityFiles, sameFiles, numberedVersions, activePointer, entity } from './version-helpers.js';

const FAST_LEASE = { WALNUT_LEASE_STALE_MS: '2000' };

/** Four versions of three companies (v: 1..4), built once and copied per test. */
let cache: { data: string; ids: string[] } | undefined;
function fourVersions(): { data: string; ids: string[] } {
  cache ??= numberedVersions(4, 3);
  const data = path.join(tmpDir(), 'data');
  fs.cpSync(cache.data, data, { recursive: true });
  return { data, ids: cache.ids };
}

const pointerFile = (data: string) => path.join(data, '.walnut', 'active');
const pointerBytes = (data: string) => (fs.existsSync(pointerFile(data)) ? fs.readFileSync(pointerFile(data), 'utf8') : undefined);

/** A pointer as walnut must leave it: valid JSON naming versions the store has. */
function validPointer(data: string, label: string) {
  const p = activePointer(data);
  assert.ok(p, `${label}: a pointer`);
  assert.match(p!.version, /^[0-9a-f]{40}$/, label);
  assert.ok(p!.previous === null || /^[0-9a-f]{40}$/.test(p!.previous), label);
  assert.is(git(data, ['cat-file', '-t', p!.version]).toString(), 'commit\n', `${label}: the active version is in the store`);
  assert.ok(!Number.isNaN(Date.parse(p!.activated)), label);
  assert.equal(fs.readdirSync(path.join(data, '.walnut')).filter((n) => n.includes('walnut-tmp')), [], `${label}: no temporary file left`);
  return p!;
}

test('activate by id and by prefix; already active changes nothing; --json', () => {
  const { data, ids } = fourVersions();
  const [v1, v2] = ids;
  assert.is(activePointer(data), undefined);
  const r = ok(['activate', v1], data);
  assert.is(r.stdout, v1 + '\n');
  assert.is(r.stderr, `activated ${v1.slice(0, 12)} (was none); 3 changed entities checked\n`);
  const p1 = validPointer(data, 'first activation');
  assert.equal({ version: p1.version, previous: p1.previous, node: p1.node }, { version: v1, previous: null, node: 'pi-01' });
  const doc = JSON.parse(ok(['activate', v2.slice(0, 7), '--json'], data).stdout);
  assert.equal({ v: doc.version, active: doc.active, previous: doc.previous, changed: doc.changed, checked: doc.checked }, { v: 1, active: v2, previous: v1, changed: true, checked: 3 });
  const p2 = validPointer(data, 'by prefix');
  assert.equal([p2.version, p2.previous], [v2, v1]);
  const before = pointerBytes(data);
  const again = ok(['activate', v2], data);
  assert.is(again.stdout, v2 + '\n');
  assert.is(again.stderr, `version ${v2.slice(0, 12)} is already active\n`);
  assert.is(pointerBytes(data), before, 'the pointer file is not rewritten');
  const j = JSON.parse(ok(['activate', v2, '--json'], data).stdout);
  assert.is(j.changed, false);
});

test('--previous rolls back (and forth); without a previous version it exits 1 with ENOPREVIOUS', () => {
  const { data, ids } = fourVersions();
  const [v1, v2, v3] = ids;
  const none = run(['activate', '--previous'], data);
  assert.is(none.code, 1);
  assert.is(none.stdout, '');
  assert.is(none.stderr, 'error: there is no previous version to go back to in this data directory\nhint: see walnut version list and activate one by id\n');
  assert.is(pointerBytes(data), undefined, 'no pointer written');
  ok(['activate', v1], data);
  const first = run(['activate', '--previous', '--json'], data);
  assert.is(first.code, 1, 'one activation has no previous version');
  assert.is(JSON.parse(first.stderr).error.code, 'ENOPREVIOUS');
  assert.is(activePointer(data)!.version, v1);
  ok(['activate', v2], data);
  ok(['activate', v3], data);
  const back = ok(['activate', '--previous'], data);
  assert.is(back.stdout, v2 + '\n');
  assert.equal([activePointer(data)!.version, activePointer(data)!.previous], [v2, v3], 'rolled back to v2; v3 is now the previous one');
  ok(['activate', '--previous'], data);
  assert.equal([activePointer(data)!.version, activePointer(data)!.previous], [v3, v2], 'and forth');
});

test('bad arguments exit 2; an unknown version exits 1; neither touches the pointer', () => {
  const { data, ids } = fourVersions();
  ok(['activate', ids[0]], data);
  const before = pointerBytes(data);
  for (const args of [['activate'], ['activate', ids[1], '--previous']]) {
    const r = run(args, data);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .*\nusage: walnut activate <version>/);
  }
  const unknown = run(['activate', 'abcdef0123'], data);
  assert.is(unknown.code, 1);
  assert.is(unknown.stderr.split('\n')[0], "error: no version 'abcdef0123' in this data directory");
  assert.is(pointerBytes(data), before);
});

/**
 * A version as another tool might have made it: `base` with some entity
 * files replaced, written with the git CLI (blob, tree, commit, ref).
 */
function forgeVersion(data: string, base: string, files: Record<string, string>): string {
  git(data, ['read-tree', base]);
  for (const [file, text] of Object.entries(files)) {
    const blob = git(data, ['hash-object', '-w', '--stdin'], { input: text }).toString().trim();
    git(data, ['update-index', '--add', '--cacheinfo', `100644,${blob},${file}`]);
  }
  const tree = git(data, ['write-tree']).toString().trim();
  const message = `walnut version: forged\n\nWalnut-Node: elsewhere\nWalnut-Created: ${new Date().toISOString()}\nWalnut-Entities: 3\nWalnut-Generation: 1\n`;
  const id = git(data, ['commit-tree', tree, '-p', base], { input: message }).toString().trim();
  git(data, ['update-ref', `refs/versions/${id}`, id]);
  return id;
}

test('a version with an entity file that does not parse fails the health check: EUNHEALTHY, pointer unchanged', () => {
  const { data, ids } = fourVersions();
  const [v1, v2] = ids;
  const broken = '---\nname: Broken\n  city: [unclosed\n---\n';
  const bad = forgeVersion(data, v2, { 'companies/c1/_index.md': broken });
  assert.is(versionFiles(data, bad).get('companies/c1/_index.md')!.toString(), broken, 'the broken file is in the version');
  ok(['activate', v1], data);
  const before = pointerBytes(data);
  const r = run(['activate', bad], data);
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stdout, '');
  assert.match(r.stderr, new RegExp(`^error: version ${bad.slice(0, 12)} failed its health check; not activated: 1 entity file does not parse: .*companies/c1/_index\\.md`));
  assert.match(r.stderr, /\nhint: fix the files/);
  assert.is(pointerBytes(data), before, 'the pointer is unchanged');
  const j = run(['activate', bad, '--json'], data);
  const err = JSON.parse(j.stderr).error;
  assert.is(err.code, 'EUNHEALTHY');
  assert.equal(err.data.failures.map((f: { file: string }) => f.file), ['companies/c1/_index.md']);
  // the healthy version still activates
  ok(['activate', v2], data);
  assert.is(activePointer(data)!.version, v2);
});

test('config activate.check runs in a checkout of the version with WALNUT_VERSION: failing refuses, passing activates', () => {
  const { data, ids } = fourVersions();
  const [v1, v2] = ids;
  const seen = tmpDir();
  // the command records what it sees, and passes only when c0 is at v: 2
  const check = 'cat companies/c0/_index.md > "$SEEN/$WALNUT_VERSION"; ls -R . > "$SEEN/$WALNUT_VERSION.ls"; grep -q "^v: 2$" companies/c0/_index.md || { echo "c0 is not v2 in $WALNUT_VERSION"; exit 7; }';
  ok(['config', 'set', 'activate.check', check], data);
  const env = { SEEN: seen };
  const bad = run(['activate', v1], data, env);
  assert.is(bad.code, 1, bad.stderr);
  assert.is(bad.stderr.split('\n')[0], `error: version ${v1.slice(0, 12)} failed its health check; not activated: the check command exited with 7: c0 is not v2 in ${v1}`);
  assert.match(bad.stderr, /\nhint: see the command in config activate\.check\n/);
  assert.is(activePointer(data), undefined, 'not activated');
  assert.ok(fs.readFileSync(path.join(seen, v1)).equals(versionFiles(data, v1).get('companies/c0/_index.md')!), 'the command read v1\'s file');
  const good = ok(['activate', v2], data, env);
  assert.is(good.stderr, `activated ${v2.slice(0, 12)} (was none); 3 changed entities checked, check command passed\n`);
  assert.is(activePointer(data)!.version, v2);
  assert.ok(fs.readFileSync(path.join(seen, v2)).equals(versionFiles(data, v2).get('companies/c0/_index.md')!), 'the command read v2\'s file');
  const listed = fs.readFileSync(path.join(seen, `${v2}.ls`), 'utf8');
  for (const c of ['c0', 'c1', 'c2']) assert.match(listed, new RegExp(`^${c}$`, 'm'), `the checkout holds ${c}`);
  // a failing command keeps the active version
  const back = run(['activate', v1], data, env);
  assert.is(back.code, 1);
  assert.is(activePointer(data)!.version, v2);
  const j = JSON.parse(run(['activate', v1, '--json'], data, env).stderr).error;
  assert.is(j.code, 'EUNHEALTHY');
  assert.is(j.data.command.status, 7);
});

test('concurrent activations: each one wins or exits 3 with EACTIVECHANGED; the pointer history is one chain', async () => {
  const { data, ids } = fourVersions();
  ok(['activate', ids[0]], data);
  // a check that takes a while: every contender reads the pointer before any of them switches it
  ok(['config', 'set', 'activate.check', 'sleep 0.4'], data);
  let start = ids[0];
  let losses = 0;
  for (let round = 0; round < 2; round++) {
    const contenders = ids.filter((id) => id !== start).slice(0, 3);
    const runs = await Promise.all(contenders.map((id) => runAsync(['activate', id, '--json'], data)));
    const wins: { active: string; previous: string }[] = [];
    runs.forEach((r, i) => {
      if (r.code === 0) {
        const doc = JSON.parse(r.stdout);
        assert.is(doc.active, contenders[i]);
        wins.push(doc);
        return;
      }
      assert.is(r.code, 3, `exit 0 or 3, not ${r.code}: ${r.stderr}`);
      losses++;
      const err = JSON.parse(r.stderr).error;
      assert.is(err.code, 'EACTIVECHANGED', r.stderr);
      assert.is(err.data.version, contenders[i]);
      assert.match(err.message, /^the active version in this data directory changed while activating \(now [0-9a-f]{12}, by pi-01\); [0-9a-f]{12} was not activated$/);
    });
    assert.ok(wins.length >= 1, `round ${round}: one activation at least wins`);
    // every win switched from the pointer the previous win left: a chain from `start`
    let at = start;
    const left = [...wins];
    while (left.length > 0) {
      const i = left.findIndex((w) => w.previous === at);
      assert.ok(i >= 0, `round ${round}: a win switched from ${at.slice(0, 12)} (wins: ${JSON.stringify(wins)})`);
      at = left.splice(i, 1)[0].active;
    }
    const p = validPointer(data, `round ${round}`);
    assert.is(p.version, at, 'the pointer is the last win');
    start = at;
  }
  assert.ok(losses > 0, 'the race was exercised: some activation lost');
});

test('concurrent activations: each check command sees its own version\'s files, whole', async () => {
  const { data, ids } = fourVersions();
  const seen = tmpDir();
  // list and print every entity file after a pause, as a slow schema check would read them
  const check = 'sleep 0.4; export LC_ALL=C; for f in $(find . -name _index.md | sort); do echo "$f"; cat "$f"; done > "$SEEN/$WALNUT_VERSION"';
  ok(['config', 'set', 'activate.check', check], data);
  const runs = await Promise.all(ids.slice(0, 3).map((id) => runAsync(['activate', id], data, { SEEN: seen })));
  runs.forEach((r, i) => assert.ok(r.code === 0 || r.code === 3, `${ids[i].slice(0, 12)}: exit ${r.code}: ${r.stderr}`));
  for (const id of ids.slice(0, 3)) {
    const files = versionFiles(data, id);
    const want = [...files.keys()].sort().map((p) => `./${p}\n${files.get(p)!.toString()}`).join('');
    assert.is(fs.readFileSync(path.join(seen, id), 'utf8'), want, `the check of ${id.slice(0, 12)} read that version`);
  }
});

test('crash at activate:after-check leaves the old pointer; at activate:after-switch the new one; reruns complete', () => {
  const { data, ids } = fourVersions();
  const [v1, v2, v3] = ids;
  ok(['activate', v1], data);
  const before = pointerBytes(data);
  const c1 = run(['activate', v2], data, { WALNUT_CRASH_AT: 'activate:after-check' });
  assert.is(c1.code, 128, `killed at activate:after-check: ${c1.stderr}`);
  assert.is(pointerBytes(data), before, 'the old pointer, byte for byte');
  validPointer(data, 'after-check');
  ok(['activate', v2], data);
  assert.equal([activePointer(data)!.version, activePointer(data)!.previous], [v2, v1], 'the rerun activates');
  const c2 = run(['activate', v3], data, { WALNUT_CRASH_AT: 'activate:after-switch' });
  assert.is(c2.code, 128, `killed at activate:after-switch: ${c2.stderr}`);
  const p = validPointer(data, 'after-switch');
  assert.equal([p.version, p.previous], [v3, v2], 'the new pointer, whole');
  const rerun = ok(['activate', v3], data);
  assert.is(rerun.stderr, `version ${v3.slice(0, 12)} is already active\n`);
  ok(['activate', '--previous'], data);
  assert.is(activePointer(data)!.version, v2, 'rollback works after the crash');
});

test('crash at version:after-pack and version:after-ref: the rerun gives a valid version, git fsck passes', async () => {
  const { data, ids } = fourVersions();
  const cases = ['version:after-pack', 'version:after-ref'].map((point) => {
    const dir = path.join(tmpDir(), 'data');
    fs.cpSync(data, dir, { recursive: true });
    const files: Record<string, string> = {};
    for (let i = 0; i < 3; i++) files[`companies/c${i}`] = entity({ name: `Company ${i}`, v: 5 });
    files['people/new'] = entity({ name: 'New' });
    for (const [t, text] of Object.entries(files)) {
      fs.mkdirSync(path.join(dir, t), { recursive: true });
      fs.writeFileSync(path.join(dir, t, '_index.md'), text);
    }
    return { point, dir, refsBefore: fs.readdirSync(path.join(dir, '.walnut/versions/refs/versions')).sort() };
  });
  await Promise.all(
    cases.map(async ({ point, dir, refsBefore }) => {
      const crashed = await runAsync(['version', 'create', '--record'], dir, { WALNUT_CRASH_AT: point });
      assert.is(crashed.code, 128, `killed at ${point}: ${crashed.stderr}`);
      const refsNow = fs.readdirSync(path.join(dir, '.walnut/versions/refs/versions')).sort();
      const fsck1 = gitStatus(dir, ['fsck', '--strict']);
      assert.is(fsck1.code, 0, `${point}: git fsck right after the crash:\n${fsck1.out}`);
      if (point === 'version:after-pack') assert.equal(refsNow, refsBefore, 'no new version yet');
      else {
        assert.is(refsNow.length, refsBefore.length + 1, 'the version is in place');
        const made = refsNow.find((r) => !refsBefore.includes(r))!;
        assert.is(git(dir, ['rev-parse', 'HEAD']).toString().trim(), made);
        sameFiles(versionFiles(dir, made), entityFiles(dir), `${point}: the crashed run's version`);
      }
      const rerun = await runAsync(['version', 'create', '--record', '--wait', '20s'], dir, FAST_LEASE);
      assert.is(rerun.code, 0, `${point}: rerun: ${rerun.stderr}`);
      const id = rerun.stdout.trim();
      assert.match(id, /^[0-9a-f]{40}$/);
      sameFiles(versionFiles(dir, id), entityFiles(dir), `${point}: the rerun's version holds the files`);
      assert.match(versionFiles(dir, id).get('companies/c2/_index.md')!.toString(), /\nv: 5\n/);
      const fsck2 = gitStatus(dir, ['fsck', '--strict']);
      assert.is(fsck2.code, 0, `${point}: git fsck after the rerun:\n${fsck2.out}`);
      const log = git(dir, ['log', '--format=%H']).toString().trim().split('\n');
      assert.is(log[0], id, 'HEAD is the rerun\'s version');
      for (const old of ids) assert.ok(log.includes(old), `git log walks back to ${old.slice(0, 12)}`);
      const listed = JSON.parse((await runAsync(['version', 'list', '--json'], dir)).stdout).versions.map((v: { id: string }) => v.id);
      assert.ok(listed.includes(id));
      ok(['activate', id], dir);
      assert.is(activePointer(dir)!.version, id, 'the version activates');
    }),
  );
});

test.run();
