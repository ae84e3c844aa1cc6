/**
 * Small helpers shared by the end-to-end tests (test/cli-*.test.ts,
 * test/fixtures.test.ts): run the built CLI and check stdout, stderr and the
 * exit status together; check that a command left a folder untouched.
 */
import * as assert from 'uvu/assert';
import path from 'node:path';
import { walnut, snapshotTree, type RunResult } from './helpers.js';

export const US = '\x1f';
export const RS = '\x1e';

/** Run the CLI with colour off and no inherited WALNUT_DIR. */
export function run(args: string[], { cwd, env = {}, input }: { cwd?: string; env?: Record<string, string | undefined>; input?: string | Buffer } = {}): RunResult {
  return walnut(args, { cwd, env: { NO_COLOR: '1', WALNUT_DIR: undefined, WALNUT_HOSTNAME: undefined, ...env }, input });
}

/**
 * Check a run: exit status, stdout and stderr at once. Strings are compared
 * exactly; a RegExp must match; `undefined` skips that stream.
 */
export function expect(r: RunResult, want: { code: number; stdout?: string | RegExp; stderr?: string | RegExp }, label = ''): void {
  const show = `${label ? label + ': ' : ''}exit ${r.code}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
  assert.is(r.code, want.code, `exit status\n${show}`);
  for (const stream of ['stdout', 'stderr'] as const) {
    const w = want[stream];
    if (w === undefined) continue;
    if (typeof w === 'string') assert.fixture(r[stream], w, `${stream}\n${show}`);
    else assert.match(r[stream], w, `${stream}\n${show}`);
  }
}

/**
 * Run `fn` and check that nothing below `dir` changed (no file created,
 * changed or removed). Pass the parent of the data directory to also catch
 * writes next to it.
 */
export function nothingWritten<T>(dir: string, fn: () => T, label = ''): T {
  const before = snapshotTree(dir);
  const result = fn();
  const after = snapshotTree(dir);
  assert.equal(Object.keys(after).sort(), Object.keys(before).sort(), `${label}: the set of files below ${dir} changed`);
  assert.equal(after, before, `${label}: a file below ${dir} changed`);
  return result;
}

/** A record line as walnut writes it (V1, RS and newline). */
export function recordLine(units: string[]): string {
  return units.join(US) + RS + '\n';
}

/** Parse NDJSON output. */
export function ndjson(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

/** The parent folder of a data directory (to snapshot around it). */
export function around(dir: string): string {
  return path.dirname(dir);
}
