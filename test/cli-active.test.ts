/**
 * `walnut active`: the local pointer printed, as JSON, absent; --wait and
 * --watch following activations made by other processes, timed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers.js';
import { run, ok, numberedVersions, activePointer, spawnWalnut, exited, lines, stderrOf, sleep, until } from './version-helpers.js';

let cache: { data: string; ids: string[] } | undefined;
function threeVersions(): { data: string; ids: string[] } {
  cache ??= numberedVersions(3, 1);
  const data = path.join(tmpDir(), 'data');
  fs.cpSync(cache.data, data, { recursive: true });
  return { data, ids: cache.ids };
}

/** When the pointer file was last replaced (ms). */
const switchedAt = (data: string) => fs.statSync(path.join(data, '.walnut', 'active')).mtimeMs;

test('no active version; then the pointer, as text and --json', () => {
  const { data, ids } = threeVersions();
  const none = run(['active'], data);
  assert.is(none.code, 0);
  assert.is(none.stdout, '(no active version)\n');
  assert.is(none.stderr, 'no version is active: walnut activate <version>\n');
  const noneJson = run(['active', '--json'], data);
  assert.is(noneJson.code, 0);
  assert.equal(JSON.parse(noneJson.stdout), { version: 1, remote: null, active: null });
  ok(['activate', ids[0]], data);
  ok(['activate', ids[1]], data);
  const p = activePointer(data)!;
  const text = ok(['active'], data);
  assert.is(text.stdout, `${ids[1]}  activated ${p.activated} by pi-01\n`);
  assert.is(text.stderr, '');
  const doc = JSON.parse(ok(['active', '--json'], data).stdout);
  assert.equal(doc, { version: 1, remote: null, active: { version: ids[1], previous: ids[0], activated: p.activated, node: 'pi-01' } });
});

test('--wait blocks while nothing changes, and returns within a few intervals of an activation by another process', async () => {
  const { data, ids } = threeVersions();
  ok(['activate', ids[0]], data);
  const file = path.join(data, '.walnut', 'active');
  for (const next of [ids[1], ids[2]]) {
    // mark the pointer unread: under relatime the waiter's first read moves atime past mtime
    const st = fs.statSync(file);
    fs.utimesSync(file, new Date(st.mtimeMs - 1000), st.mtime);
    const waiter = spawnWalnut(['active', '--wait', '--interval', '50ms'], data);
    const out = lines(waiter);
    const err = stderrOf(waiter);
    await sleep(1000);
    // and until it has read the pointer once (where atime is not kept, the second suffices)
    await Promise.race([sleep(5000), until('a read of the pointer', 5000, () => (fs.statSync(file).atimeMs > fs.statSync(file).mtimeMs ? true : undefined))]).catch(() => {});
    assert.is(waiter.exitCode, null, `--wait is still waiting while nothing changed (stdout ${JSON.stringify(out)}, stderr ${err.text})`);
    assert.equal(out, []);
    const r = ok(['activate', next], data);
    assert.is(r.code, 0);
    const switched = switchedAt(data);
    const end = await Promise.race([exited(waiter), sleep(5000).then(() => undefined)]);
    const returned = Date.now();
    if (!end) waiter.kill('SIGKILL');
    assert.ok(end, '--wait returned after the activation');
    assert.is(end!.code, 0, err.text);
    const latency = returned - switched;
    assert.ok(latency < 450, `--wait --interval 50ms returned ${Math.round(latency)} ms after the switch`);
    const p = activePointer(data)!;
    assert.equal(out, [`${next}  activated ${p.activated} by pi-01`]);
    assert.is(err.text, '');
  }
});

test('--watch prints the pointer, then each change; SIGTERM ends it with exit 0', async () => {
  const { data, ids } = threeVersions();
  ok(['activate', ids[0]], data);
  const watcher = spawnWalnut(['active', '--watch', '--interval', '50ms', '--json'], data);
  const out = lines(watcher);
  const err = stderrOf(watcher);
  await until('the first line of --watch', 10_000, () => (out.length >= 1 ? true : undefined));
  const seen = () => out.map((l) => JSON.parse(l).active?.version);
  assert.equal(seen(), [ids[0]], 'the current pointer first');
  const latencies: number[] = [];
  for (const [n, next] of [ids[1], ids[2]].entries()) {
    ok(['activate', next], data);
    const switched = switchedAt(data);
    await until(`--watch to print ${next.slice(0, 12)}`, 5000, () => (out.length >= n + 2 ? true : undefined));
    latencies.push(Date.now() - switched);
  }
  ok(['activate', '--previous'], data);
  await until('--watch to print the rollback', 5000, () => (out.length >= 4 ? true : undefined));
  ok(['activate', ids[1]], data); // already active: no change, no line
  await sleep(300);
  assert.equal(seen(), [ids[0], ids[1], ids[2], ids[1]], 'one line per change, none for a no-op');
  const docs = out.map((l) => JSON.parse(l));
  assert.ok(docs.every((d) => d.version === 1 && d.remote === null));
  assert.is(docs[3].active.previous, ids[2]);
  assert.ok(Math.max(...latencies) < 450, `each change printed within a few 50 ms intervals: ${latencies.map(Math.round)} ms`);
  watcher.kill('SIGTERM');
  const end = await exited(watcher);
  assert.equal(end, { code: 0, signal: null }, `SIGTERM ends --watch cleanly (stderr: ${err.text})`);
  assert.is(err.text, '');
});

test('bad arguments exit 2', () => {
  const { data } = threeVersions();
  const cases: [string[], string][] = [
    [['active', '--interval', '5ms'], 'error: --interval must be at least 10ms\n'],
    [['active', '--interval', 'often'], 'error: invalid --interval "often"\n'],
    [['active', '--wait', '--watch'], 'error: give --wait or --watch, not both\n'],
  ];
  for (const [args, first] of cases) {
    const started = Date.now();
    const r = run(args, data);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(first), `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /\nusage: walnut active /);
    assert.is(r.stdout, '');
    assert.ok(Date.now() - started < 5000, 'it did not start polling');
  }
});

test.run();
