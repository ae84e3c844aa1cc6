// Where the time goes: run a walnut command under `node --cpu-prof` (by
// default the unbundled dist/cmd/_main.js, so function names and files are
// readable; the bundle for start-up, which bundling changes) and
// sum the self time per function and per file from the .cpuprofile.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SourceMap } from 'node:module';
import { ROOT, walnutEnv } from './walnut.mjs';

/**
 * Profile `walnut <args>` once.
 *
 * @param args - walnut arguments
 * @param options.cwd - the data directory
 * @param options.stdin - a file fed on stdin
 * @param options.top - how many functions to keep
 * @param options.bundle - profile the bundle that users run (bin/walnut.js; start-up) instead of dist/cmd/_main.js
 * @param options.intervalUs - sampling interval
 * @returns { totalMs, functions: [{ name, where, selfMs, percent }], files: [{ file, selfMs, percent }] }
 */
export function profileWalnut(args, { cwd, stdin, top = 12, bundle = false, intervalUs = 1000 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-prof-'));
  const inFd = stdin ? fs.openSync(stdin, 'r') : 'ignore';
  const entry = path.join(ROOT, bundle ? 'bin/walnut.js' : 'dist/cmd/_main.js');
  const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(intervalUs), entry, ...args], { cwd, env: walnutEnv(), stdio: [inFd, 'ignore', 'pipe'], encoding: 'utf8' });
  if (typeof inFd === 'number') fs.closeSync(inFd);
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (r.status !== 0 || !file) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`profiling walnut ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  fs.rmSync(dir, { recursive: true, force: true });
  return summarizeProfile(profile, { top });
}

const sourceMaps = new Map();
/** The original source of a position in a bundled file, through its .map (or undefined). */
function originalSource(file, line, column) {
  if (!sourceMaps.has(file)) {
    let map;
    try {
      map = new SourceMap(JSON.parse(fs.readFileSync(file + '.map', 'utf8')));
    } catch {
      map = undefined;
    }
    sourceMaps.set(file, map);
  }
  const entry = sourceMaps.get(file)?.findEntry(line, column);
  if (!entry?.originalSource) return undefined;
  const src = entry.originalSource.replace(/^file:\/\//, '');
  const nm = src.lastIndexOf('node_modules/');
  return nm >= 0 ? src.slice(nm) : path.relative(ROOT, path.resolve(path.dirname(file), src));
}

/**
 * Self time per function and per file of a V8 .cpuprofile. Positions in a
 * bundle with a source map (dist/bundle/*.mjs.map) are attributed to their
 * original source file (cmd/set.ts, node_modules/yargs/…).
 */
export function summarizeProfile(profile, { top = 12 } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const fn = new Map();
  const files = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const { callFrame: cf } = byId.get(id);
    const abs = cf.url ? cf.url.replace(/^file:\/\//, '') : '';
    const mapped = abs.endsWith('.mjs') && abs.includes('/dist/bundle/') ? originalSource(abs, cf.lineNumber, cf.columnNumber) : undefined;
    const rel = mapped ?? (abs ? abs.replace(ROOT, '') : '');
    const name = cf.functionName || (rel ? '(anonymous)' : cf.functionName || '(native)');
    const where = rel ? `${rel}:${cf.lineNumber + 1}` : '';
    const label = name === '' ? '(program)' : name;
    const key = `${label} ${where}`;
    fn.set(key, { name: label, where, selfUs: (fn.get(key)?.selfUs ?? 0) + us });
    const fileKey = rel || label;
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
    total += us;
  }
  const pct = (us) => Math.round((1000 * us) / total) / 10;
  return {
    totalMs: Math.round(total / 1000),
    functions: [...fn.values()].sort((a, b) => b.selfUs - a.selfUs).slice(0, top).map((f) => ({ name: f.name, where: f.where, selfMs: Math.round(f.selfUs / 1000), percent: pct(f.selfUs) })),
    files: [...files.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([file, us]) => ({ file, selfMs: Math.round(us / 1000), percent: pct(us) })),
  };
}

/** The profile as a few indented lines, for stderr and the README. */
export function profileLines(p, n = 8) {
  return [
    `cpu profile: ${p.totalMs} ms sampled; top self time:`,
    ...p.functions.slice(0, n).map((f) => `  ${String(f.percent).padStart(5)}%  ${f.name}  ${f.where}`),
    'by file:',
    ...p.files.slice(0, 6).map((f) => `  ${String(f.percent).padStart(5)}%  ${f.file}`),
  ];
}
