/**
 * bin/walnut.js: a heavy command (here `checkout --follow`, which stays up)
 * is re-run with --max-old-space-size=<WALNUT_HEAP_MB> when V8's own heap
 * limit is larger than that cap, and runs in the first process when it is not.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { initRepoDir, tmpDir } from './helpers.js';
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
  assert.is(procs.length, 2, 'the first process waits for it');
});

test('a cap no smaller than V8 own limit: no second process', async () => {
  const mb = String(Math.ceil(ownLimitMb));
  const procs = await following(mb);
  assert.is(procs.length, 1, `one process: ${JSON.stringify(procs)}`);
  assert.not.ok(procs[0].some((a) => a.startsWith('--max-old-space-size')), 'runs as started');
});

test.run();
