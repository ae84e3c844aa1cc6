/**
 * Helpers shared by the version tests (cli-version, cli-activate,
 * cli-active, cli-checkout): data directories whose versions are made from
 * hand-written entity files, and an independent reader of the version store
 * (the real git CLI).
 */
import * as assert from 'uvu/assert';
import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { walnut, walnutAsync, initRepoDir, BIN, type RunResult } from './helpers.js';

export const ENV = { NO_COLOR: '1', WALNUT_DIR: undefined, WALNUT_HOSTNAME: undefined, WALNUT_NOW: undefined, WALNUT_CRASH_AT: undefined };

/** Run the CLI in `cwd`. */
export function run(args: string[], cwd: string, env: Record<string, string | undefined> = {}, input?: string): RunResult {
  return walnut(args, { cwd, env: { ...ENV, ...env }, input });
}

/** Run the CLI without blocking the test's event loop. */
export function runAsync(args: string[], cwd: string, env: Record<string, string | undefined> = {}): Promise<RunResult> {
  return walnutAsync(args, { cwd, env: { ...ENV, ...env } });
}

/** Run the CLI and require exit 0. */
export function ok(args: string[], cwd: string, env: Record<string, string | undefined> = {}, input?: string): RunResult {
  const r = run(args, cwd, env, input);
  assert.is(r.code, 0, `walnut ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`);
  return r;
}

/** Spawn a long-running walnut (--follow, --watch, --wait). */
export function spawnWalnut(args: string[], cwd: string, env: Record<string, string | undefined> = {}): ChildProcess {
  const e: Record<string, string | undefined> = { ...process.env, ...ENV, ...env };
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
  return spawn(process.execPath, [BIN, ...args], { cwd, env: e as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A child's exit status (128 + signal number style: the signal name is returned too). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` every 5 ms until it returns a value other than undefined, or fail after `timeout` ms. */
export async function until<T>(what: string, timeout: number, fn: () => T | undefined): Promise<T> {
  const end = Date.now() + timeout;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** The version store of a data directory. */
export function gitdir(data: string): string {
  return path.join(data, '.walnut', 'versions');
}

/** Run the real git CLI on the version store; throws on failure. */
export function git(data: string, args: string[], { input }: { input?: string | Buffer } = {}): Buffer {
  const r = spawnSync('git', ['--git-dir', gitdir(data), ...args], { input, maxBuffer: 256 << 20, env: { ...process.env, GIT_INDEX_FILE: path.join(data, '.walnut', 'test-git-index') } });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The git CLI's status and output, for commands expected to fail or pass (fsck). */
export function gitStatus(data: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync('git', ['--git-dir', gitdir(data), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** Entity files of a version as the git CLI reads them: path → bytes (the `.walnut/` metadata left out). */
export function versionFiles(data: string, id: string): Map<string, Buffer> {
  const entries: { file: string; oid: string }[] = [];
  const listing = git(data, ['ls-tree', '-r', '-z', id]).toString('utf8');
  for (const line of listing.split('\0')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    const [mode, type, oid] = line.slice(0, tab).split(' ');
    const file = line.slice(tab + 1);
    assert.is(type, 'blob', `${file} is a blob`);
    assert.is(mode, '100644', `${file} is a plain file`);
    if (!file.startsWith('.walnut/')) entries.push({ file, oid });
  }
  // one `git cat-file --batch` for all the blobs: "<oid> blob <size>\n<content>\n" each
  const out = new Map<string, Buffer>();
  const batch = git(data, ['cat-file', '--batch'], { input: entries.map((e) => e.oid).join('\n') + '\n' });
  let pos = 0;
  for (const e of entries) {
    const nl = batch.indexOf(0x0a, pos);
    const [oid, type, size] = batch.toString('latin1', pos, nl).split(' ');
    assert.equal([oid, type], [e.oid, 'blob'], `git cat-file --batch answers for ${e.file}`);
    out.set(e.file, batch.subarray(nl + 1, nl + 1 + Number(size)));
    pos = nl + 1 + Number(size) + 1;
  }
  return out;
}

/** The entity files of a folder (a data directory or a checkout tree): path → bytes. */
export function entityFiles(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && (e.name === '.walnut' || e.name === 'wal')) continue;
      if (e.isDirectory()) walk(r);
      else out.set(r, fs.readFileSync(path.join(root, r)));
    }
  };
  walk('');
  return out;
}

/** Compare two path → bytes maps exactly (paths and contents). */
export function sameFiles(actual: Map<string, Buffer>, expected: Map<string, Buffer>, label: string): void {
  assert.equal([...actual.keys()].sort(), [...expected.keys()].sort(), `${label}: the same files`);
  for (const [p, b] of expected) assert.ok(actual.get(p)!.equals(b), `${label}: ${p} has the same bytes\n  got ${JSON.stringify(actual.get(p)!.toString())}\n  want ${JSON.stringify(b.toString())}`);
}

/** Write entity files by hand: target → file text; `null` deletes the entity folder. */
export function writeEntities(data: string, files: Record<string, string | null>): void {
  for (const [target, text] of Object.entries(files)) {
    const folder = path.join(data, target);
    if (text === null) fs.rmSync(folder, { recursive: true, force: true });
    else {
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(path.join(folder, '_index.md'), text);
    }
  }
}

/** `version create --record` after writing the files by hand; returns the new version's id (checked to be new). */
export function makeVersion(data: string, files: Record<string, string | null>, env: Record<string, string | undefined> = {}): string {
  writeEntities(data, files);
  const r = ok(['version', 'create', '--record'], data, env);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{40}$/, `version create prints the id: ${r.stdout}`);
  assert.match(r.stderr, /created version/, `a new version: ${r.stderr}`);
  return id;
}

/** Frontmatter text of an entity with the given fields (strings and numbers). */
export function entity(fields: Record<string, string | number>): string {
  return '---\n' + Object.entries(fields).map(([k, v]) => `${k}: ${v}\n`).join('') + '---\n';
}

/**
 * A data directory with `n` versions; version i (1-based) has `count`
 * companies c0..c(count-1) each with `v: i`, so every entity differs from
 * one version to the next.
 */
export function numberedVersions(n: number, count: number, node = 'pi-01'): { data: string; ids: string[] } {
  const data = initRepoDir(node);
  const ids: string[] = [];
  for (let v = 1; v <= n; v++) {
    const files: Record<string, string> = {};
    for (let i = 0; i < count; i++) files[`companies/c${i}`] = entity({ name: `Company ${i}`, v });
    ids.push(makeVersion(data, files));
  }
  return { data, ids };
}

/** The local active pointer file, parsed (undefined when none). */
export function activePointer(data: string): { version: string; previous: string | null; activated: string; node: string } | undefined {
  const file = path.join(data, '.walnut', 'active');
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Collect a child's stdout lines as they come. */
export function lines(child: ChildProcess): string[] {
  const got: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      got.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  return got;
}

/** Collect a child's stderr. */
export function stderrOf(child: ChildProcess): { text: string } {
  const s = { text: '' };
  child.stderr!.on('data', (d) => (s.text += d));
  return s;
}
