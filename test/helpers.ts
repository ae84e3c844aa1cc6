/**
 * Test helpers: temporary folders (removed at exit), fixtures copied before
 * use, and running the real built CLI.
 */
import { spawnSync, spawn, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project folder. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = path.join(ROOT, 'bin', 'walnut.js');
export const FIXTURES = path.join(ROOT, 'fixtures');

const made: string[] = [];
process.on('exit', () => {
  if (process.env.WALNUT_KEEP_TMP) return;
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A new empty temporary folder, removed when the test process exits. */
export function tmpDir(prefix = 'walnut-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return fs.realpathSync(dir);
}

/** Copy `fixtures/<name>` to a temporary folder and return its path. */
export function makeFixture(name: string): string {
  const dir = path.join(tmpDir('walnut-fixture-'), name);
  fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the built CLI synchronously.
 * @param args - arguments after `walnut`
 * @param options.cwd - working folder
 * @param options.env - extra environment (merged over the test's)
 * @param options.input - stdin
 */
export function walnut(args: string[], { cwd = process.cwd(), env = {}, input }: { cwd?: string; env?: Record<string, string | undefined>; input?: string | Buffer } = {}): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status ?? (r.signal ? 128 : -1), stdout: r.stdout, stderr: r.stderr };
}

/** Run the built CLI asynchronously (for daemons and concurrency tests). */
export function walnutAsync(args: string[], { cwd = process.cwd(), env = {}, input }: { cwd?: string; env?: Record<string, string | undefined>; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** A fresh data directory made by `walnut init --node <node>`. */
export function initRepoDir(node = 'pi-01', dir = path.join(tmpDir(), 'data')): string {
  const r = walnut(['init', dir, '--node', node]);
  if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`);
  return dir;
}

/** Every file below a folder with its bytes, for before/after comparisons. */
export function snapshotTree(dir: string, { skip = [] as string[] } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (skip.some((s) => rel === s || rel.startsWith(s + '/'))) continue;
      if (e.isDirectory()) walk(p);
      else out[rel] = fs.readFileSync(p).toString('base64');
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/** This environment with `dir` first on PATH (the launcher line of bin/walnut.js runs the `node` it finds there). */
export function envWithPathFirst(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dir}${path.delimiter}${process.env.PATH}` };
}

/** Node's flags on the launcher line (line two) of bin/walnut.js. */
export function launcherFlags(): string[] {
  const line = fs.readFileSync(BIN, 'utf8').split('\n')[1];
  const m = /^':' \/\/; exec node (.*) "\$0" "\$@"$/.exec(line);
  if (!m) throw new Error(`line two of bin/walnut.js is not the launcher: ${line}`);
  return m[1].split(' ');
}
