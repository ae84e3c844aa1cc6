// Runs every compiled uvu test file (dist/test/**/*.test.js) in its own
// process, two at a time, with HOME and git configuration isolated; prints
// each file's result, the output of failing files, and one closing line
// `N passed, N failed[, N skipped]`. Exits non-zero on any failure.
// Usage: node scripts/test.mjs [substring-filter ...]
import { spawn } from 'node:child_process';
import { readdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = path.join(root, 'dist', 'test');
const filters = process.argv.slice(2);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return walk(file);
    return name.endsWith('.test.js') ? [file] : [];
  });
}

const files = walk(testDir).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
const home = mkdtempSync(path.join(tmpdir(), 'walnut-test-home-'));
const env = {
  ...process.env,
  HOME: home,
  XDG_CONFIG_HOME: path.join(home, '.config'),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: path.join(home, '.gitconfig'),
  GIT_AUTHOR_NAME: 'walnut test',
  GIT_AUTHOR_EMAIL: 'test@walnut.invalid',
  GIT_COMMITTER_NAME: 'walnut test',
  GIT_COMMITTER_EMAIL: 'test@walnut.invalid',
  NO_COLOR: '1',
  FORCE_COLOR: '0',
  WALNUT_TEST: '1',
};
delete env.WALNUT_DIR;
delete env.AWS_PROFILE;

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
const count = (text, label) => {
  const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const timeoutMs = Number(process.env.WALNUT_TEST_TIMEOUT_MS ?? 600_000);

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[test runner] ${path.relative(root, file)} timed out after ${timeoutMs} ms; killed\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const text = strip(out);
      const total = count(text, 'Total');
      const ok = count(text, 'Passed');
      const skip = count(text, 'Skipped') ?? 0;
      const name = path.relative(testDir, file);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (total === undefined || ok === undefined) {
        failed++;
        failures.push({ name, text });
        console.log(`FAIL ${name} (no uvu summary, exit ${code}) ${secs}s`);
      } else {
        const bad = total - ok - skip + (code !== 0 && total - ok - skip === 0 ? 1 : 0);
        passed += ok;
        failed += bad;
        skipped += skip;
        if (bad > 0) failures.push({ name, text });
        console.log(`${bad > 0 ? 'FAIL' : 'ok  '} ${name}: ${ok} passed${bad ? `, ${bad} failed` : ''}${skip ? `, ${skip} skipped` : ''} ${secs}s`);
      }
      resolve();
    });
  });
}

const queue = [...files];
const workers = Array.from({ length: Math.max(1, Math.min(Number(process.env.WALNUT_TEST_JOBS ?? 2), cpus().length)) }, async () => {
  while (queue.length > 0) await runFile(queue.shift());
});
await Promise.all(workers);
rmSync(home, { recursive: true, force: true });

for (const f of failures) {
  console.log(`\n===== ${f.name} =====\n${f.text.trim()}\n`);
}
if (files.length === 0) {
  console.log('no test files found');
  failed++;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 ? 1 : 0;
