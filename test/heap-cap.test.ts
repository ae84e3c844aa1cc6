/**
 * bin/walnut.js: a heavy command (here `checkout --follow`, which stays up)
 * is re-run with --max-old-space-size=<WALNUT_HEAP_MB> (and
 * --max-semi-space-size=8) when V8's own heap
 * limit is larger than that cap, and runs in the first process when it is not.
 * `compact` is re-run only when it has much to read (more than 8 MiB of
 * journal after its checkpoint, or a large entity index).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { spawnSync } from 'node:child_process';
import { BIN, envWithPathFirst, initRepoDir, tmpDir, walnut } from './helpers.js';
import { ok, spawnWalnut, exited, until } from './version-helpers.js';

/** Command lines of the processes whose parent is `pid`, or `pid` itself. */
function family(pid: number): string[][] {
  const out: string[][] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number(p) === pid || ppid === pid) out.push(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function following(mb: string): Promise<string[][]> {
  const data = initRepoDir('pi-01');
  ok(['set', 'companies/acme', 'name', 'Acme'], data);
  const id = ok(['version', 'create'], data).stdout.trim();
  ok(['activate', id], data);
  const co = path.join(tmpDir(), 'co');
  const child = spawnWalnut(['checkout', '--active', co, '--follow', '--interval', '50ms'], data, { WALNUT_HEAP_MB: mb });
  try {
    await until('the first checkout', 20_000, () => (fs.existsSync(path.join(co, 'current')) ? true : undefined));
    return family(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
}

const ownLimitMb = v8.getHeapStatistics().heap_size_limit / 2 ** 20;

test('a cap below V8 own limit: re-run once with --max-old-space-size', async () => {
  assert.ok(ownLimitMb > 64 * 1.25, `this machine's own limit (${ownLimitMb} MB) is above 80 MB`);
  const procs = await following('64');
  const capped = procs.filter((argv) => argv.includes('--max-old-space-size=64'));
  assert.is(capped.length, 1, `one child with the cap: ${JSON.stringify(procs)}`);
  assert.ok(capped[0].includes('--max-semi-space-size=8'), `and 8 MB semi-spaces: ${JSON.stringify(procs)}`);
  assert.is(procs.length, 2, 'the first process waits for it');
});

test('a cap no smaller than V8 own limit: no second process', async () => {
  const mb = String(Math.ceil(ownLimitMb));
  const procs = await following(mb);
  assert.is(procs.length, 1, `one process: ${JSON.stringify(procs)}`);
  assert.not.ok(procs[0].some((a) => a.startsWith('--max-old-space-size')), 'runs as started');
});

/**
 * Every node process of one `walnut compact` (a module preloaded through
 * NODE_OPTIONS, which children inherit, logs each one's arguments).
 */
function compactProcesses(data: string, { launcher = false } = {}): string[][] {
  const dir = tmpDir();
  const log = path.join(dir, 'procs.log');
  const hook = path.join(dir, 'log-process.mjs');
  fs.writeFileSync(hook, `import fs from 'node:fs'; fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(process.execArgv) + '\\n');\n`);
  const env = { ...envWithPathFirst(path.dirname(process.execPath)), NODE_OPTIONS: `--import=${hook}`, WALNUT_HEAP_MB: '256' };
  // as a program (bin/walnut.js's launcher line), or as `node bin/walnut.js`
  if (launcher) {
    const r = spawnSync(BIN, ['compact', '--json'], { cwd: data, env, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
  } else {
    const r = walnut(['compact', '--json'], { cwd: data, env });
    assert.is(r.code, 0, r.stderr);
  }
  return fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
}

test('compact with little to read runs in the first process', () => {
  assert.ok(ownLimitMb > 256 * 1.25, `this machine's own limit (${ownLimitMb} MB) is above 320 MB`);
  const data = initRepoDir('pi-01');
  for (let i = 0; i < 3; i++) ok(['set', `companies/c-${i}`, 'name', `C ${i}`], data);
  const procs = compactProcesses(data);
  assert.is(procs.length, 1, `one process: ${JSON.stringify(procs)}`);
  assert.ok(fs.existsSync(path.join(data, 'companies/c-2/_index.md')), 'compacted');
});

test('compact with more than 8 MiB of journal to read is re-run with the cap', () => {
  assert.ok(ownLimitMb > 256 * 1.25, `this machine's own limit (${ownLimitMb} MB) is above 320 MB`);
  const data = initRepoDir('pi-01');
  // another node's segment, as a pull brings it: 110 k records, about 9.5 MB
  const t0 = Date.parse('2026-01-01T00:00:00.000Z');
  const lines: string[] = [];
  for (let i = 0; i < 110_000; i++) lines.push(`${new Date(t0 + i).toISOString()}\x1fpi-02\x1fcompanies/c-${i % 500}\x1fname\x1f"value number ${i}"\x1fhlc:0\x1e\n`);
  fs.writeFileSync(path.join(data, 'wal', '20260101_pi-02.usv'), lines.join(''));
  assert.ok(fs.statSync(path.join(data, 'wal', '20260101_pi-02.usv')).size > 8 * 2 ** 20, 'more than 8 MiB');
  const procs = compactProcesses(data, { launcher: true });
  assert.is(procs.length, 2, `two processes: ${JSON.stringify(procs)}`);
  assert.ok(procs[0].includes('--v8-pool-size=1'), `the first, started as a program, has one V8 helper thread: ${JSON.stringify(procs)}`);
  assert.not.ok(procs[1].some((a) => a.startsWith('--v8-pool-size')), `the re-run keeps V8's default helpers: ${JSON.stringify(procs)}`);
  assert.ok(procs[1].includes('--max-old-space-size=256'), `the second is capped: ${JSON.stringify(procs)}`);
  assert.ok(procs[1].includes('--max-semi-space-size=8'), `with a young generation of 8 MB semi-spaces: ${JSON.stringify(procs)}`);
  assert.match(fs.readFileSync(path.join(data, 'companies/c-499/_index.md'), 'utf8'), 'value number 109999');
  // the same directory again: nothing left to read, one process
  assert.is(compactProcesses(data).length, 1);
});

test.run();
