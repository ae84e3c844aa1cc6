import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { encodeRecord } from '../formats/usv.js';
import { BIN, initRepoDir } from './helpers.js';
import { makeCluster, ok, startNode, stopAll, waitFor } from './gossip-harness.js';

const DAY = new Date().toISOString().slice(0, 10).replace(/-/g, '');
const rec = (node: string, field: string, value: string) => encodeRecord({ timestamp: new Date().toISOString(), node, target: 'companies/acme', field, value, causality: 'hlc:0' });

function startWatch(dir: string, args: string[]) {
  const child = spawn(process.execPath, [BIN, '-C', dir, 'watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = { stdout: '', stderr: '', child };
  child.stdout.on('data', (d) => (io.stdout += d));
  child.stderr.on('data', (d) => (io.stderr += d));
  return io;
}

async function end(io: ReturnType<typeof startWatch>, signal: NodeJS.Signals): Promise<number | null> {
  const exit = new Promise<number | null>((r) => io.child.once('exit', (c) => r(c)));
  io.child.kill(signal);
  return exit;
}

test('--json: local, gossip and pull arrivals as NDJSON; a record seen twice is reported once; SIGTERM ends it', async () => {
  const dir = initRepoDir('pi-01');
  ok(['-C', dir, 'set', 'companies/acme', 'before', '1']);
  const io = startWatch(dir, ['--json']);
  try {
    await waitFor(() => io.stderr.includes('"status":"watching"'), 10_000, 'watch to be ready');
    assert.equal(JSON.parse(io.stderr.trim()), { version: 1, status: 'watching', dirs: ['wal', '.walnut/gossip'] });
    ok(['-C', dir, 'set', 'companies/acme', 'name', 'Acme']);
    await waitFor(() => io.stdout.includes('\n'), 5000, 'the local set');
    const g = rec('pi-02', 'city', '"Oslo"');
    fs.mkdirSync(path.join(dir, '.walnut', 'gossip'), { recursive: true });
    fs.appendFileSync(path.join(dir, '.walnut', 'gossip', `${DAY}_pi-02.usv`), g);
    // each arrival reported before the next is made: two folders' watchers report in no fixed order
    await waitFor(() => io.stdout.trim().split('\n').length >= 2, 5000, 'the gossiped record');
    const p = rec('pi-03', 'size', '12');
    fs.appendFileSync(path.join(dir, 'wal', `${DAY}_pi-03.usv`), p);
    await waitFor(() => io.stdout.trim().split('\n').length >= 3, 5000, 'three changes');
    // The gossiped record comes again by pull: not reported twice.
    fs.appendFileSync(path.join(dir, 'wal', `${DAY}_pi-02.usv`), g);
    ok(['-C', dir, 'unset', 'companies/acme', 'name']);
    await waitFor(() => io.stdout.trim().split('\n').length >= 4, 5000, 'the unset');
    await new Promise((r) => setTimeout(r, 300));
    const lines = io.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const key = (l: { field: string; value: unknown; origin: string; via: string }) => [l.field, l.value, l.origin, l.via];
    assert.equal(lines.map(key), [
      ['name', 'Acme', 'pi-01', 'local'],
      ['city', 'Oslo', 'pi-02', 'gossip'],
      ['size', 12, 'pi-03', 'pull'],
      ['name', null, 'pi-01', 'local'],
    ]);
    for (const l of lines) {
      assert.is(l.version, 1);
      assert.is(l.target, 'companies/acme');
      assert.match(l.timestamp, /^\d{4}-\d\d-\d\dT/);
      assert.match(l.hash, /^[0-9a-f]{16}$/);
    }
    assert.is(lines[1].segment, `.walnut/gossip/${DAY}_pi-02.usv`);
  } finally {
    assert.is(await end(io, 'SIGTERM'), 0, io.stderr);
  }
});

test('human format; SIGINT ends it with status 0', async () => {
  const dir = initRepoDir('pi-01');
  const io = startWatch(dir, []);
  try {
    await waitFor(() => io.stderr.includes('watching'), 10_000, 'watch to be ready');
    assert.is(io.stderr, "watching 'wal/' and '.walnut/gossip/' (Ctrl-C to stop)\n");
    ok(['-C', dir, 'set', 'companies/acme', 'tags', '["a","b"]']);
    await waitFor(() => io.stdout.includes('\n'), 5000, 'a change');
    assert.match(io.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}local {3}pi-01 {2}companies\/acme {2}tags = \["a","b"\]\n$/);
  } finally {
    assert.is(await end(io, 'SIGINT'), 0);
  }
});

test('records arriving from a gossip peer are reported with via gossip', async () => {
  const [a, b] = await makeCluster(2);
  const io = startWatch(b.dir, ['--json']);
  try {
    await Promise.all([startNode(a), startNode(b)]);
    await waitFor(() => io.stderr.includes('watching'), 10_000, 'watch to be ready');
    ok(['-C', a.dir, 'set', 'companies/acme', 'name', 'Acme']);
    await waitFor(() => io.stdout.includes('\n'), 5000, 'the gossiped change');
    const line = JSON.parse(io.stdout.trim().split('\n')[0]);
    assert.equal([line.field, line.value, line.origin, line.via], ['name', 'Acme', a.name, 'gossip']);
  } finally {
    await end(io, 'SIGTERM');
    await stopAll([a, b]);
  }
});

test('outside a data directory: exit 1', () => {
  const r = spawn(process.execPath, [BIN, '-C', '/nonexistent-walnut', 'watch']);
  return new Promise<void>((resolve) => r.on('exit', (code) => (assert.is(code, 1), resolve())));
});

test.run();
