// Running the built walnut CLI from benchmarks: paths, data directories,
// temporary folders, and the scale knob for quick runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { timedEnv } from './timing.mjs';

/**
 * The tree whose bin/ and dist/ are measured: this repository, or
 * WALNUT_BENCH_ROOT (a copy of bin/, dist/, package.json and a node_modules
 * link), to measure a frozen build while the working tree is being rebuilt.
 */
export const ROOT = process.env.WALNUT_BENCH_ROOT ? path.resolve(process.env.WALNUT_BENCH_ROOT) + path.sep : fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(ROOT, 'bin', 'walnut.js');

/**
 * argv that runs the built CLI as users run it: bin/walnut.js as a program
 * (its launcher line runs node with walnut's flags), with ...args. The node
 * it finds is the one on PATH: `walnutEnv` puts this process's first.
 */
export function walnutArgv(...args) {
  return [BIN, ...args];
}

/** The environment for walnut children: no WALNUT_DIR from the caller, no colour, no NODE_EXTRA_CA_CERTS (`timedEnv`), this node first on PATH (for the launcher line). */
export function walnutEnv(extra = {}) {
  const env = { ...timedEnv(), NO_COLOR: '1', PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`, ...extra };
  delete env.WALNUT_DIR;
  return env;
}

/** Stop with a clear message when dist/ is missing (`npm run bench` builds first). */
export function requireBuild() {
  for (const f of ['dist/bundle/walnut.mjs', 'dist/lib/journal.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) {
      process.stderr.write(`error: '${f}' is missing\nhint: build first with 'npm run build' (npm run bench does)\n`);
      process.exit(2);
    }
  }
}

/**
 * Data sizes are multiplied by WALNUT_BENCH_SCALE (default 1; e.g. 0.1 for a
 * quick check of a bench). Figures of a scaled run are not comparable.
 */
export const SCALE = Number(process.env.WALNUT_BENCH_SCALE || 1);
export function scaled(n) {
  return Math.max(1, Math.round(n * SCALE));
}

/**
 * A fresh folder for a bench's data sets, under WALNUT_BENCH_TMP (run.mjs sets
 * it) or os.tmpdir(); never inside the repository unless asked (bench/data/ is
 * git-ignored). `cleanup()` removes it unless WALNUT_BENCH_KEEP is set; so
 * does process exit when cleanup() was not called. For a fresh file system
 * per part (ext4 with a journal on a loop device), see fresh-fs.mjs.
 */
export function makeTempRoot(name) {
  const base = process.env.WALNUT_BENCH_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base, `walnut-bench-${name}-`));
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    process.off('exit', cleanup);
    if (process.env.WALNUT_BENCH_KEEP) process.stderr.write(`  kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  };
  // also when the bench exits without reaching its cleanup (process.exit, or
  // a signal caught by lib/fresh-fs.mjs, which then exits)
  process.on('exit', cleanup);
  return { dir, cleanup };
}

/** `walnut init <dir> --node <node>`; throws with walnut's stderr on failure. */
export function initDataDir(dir, { node = 'bench' } = {}) {
  const r = spawnSync(process.execPath, [BIN, 'init', dir, '--node', node], { env: walnutEnv(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`walnut init ${dir} failed (${r.status}): ${r.stderr}`);
  return dir;
}

/** Run walnut synchronously (untimed setup steps); throws on a non-zero exit. */
export function walnutSync(args, { cwd, input } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, input, env: walnutEnv(), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`walnut ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Total size in bytes of the files in a folder (not recursive). */
export function folderBytes(dir) {
  let n = 0;
  for (const name of fs.readdirSync(dir)) {
    const st = fs.statSync(path.join(dir, name));
    if (st.isFile()) n += st.size;
  }
  return n;
}
