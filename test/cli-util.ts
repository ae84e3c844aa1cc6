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

/** A journal damaged in one way, between (or after) two good records of pi-02. */
export interface DamageCase {
  name: string;
  bytes: Buffer;
  code: string;
  offset: number;
  message: string;
}

export const DAMAGE_T1 = '2026-11-21T10:00:00.000Z';
export const DAMAGE_T2 = '2026-11-21T10:00:05.000Z';
export const DAMAGE_SEGMENT = 'wal/20261121_pi-02.usv';

/**
 * The damaged journals of the bad-input list: a torn last record,
 * binary garbage, a wrong unit count, invalid UTF-8. Each still holds the two
 * good records `companies/acme name = Acme` and `city = Berlin`.
 */
export function damageCases(): DamageCase[] {
  const g1 = Buffer.from(recordLine([DAMAGE_T1, 'pi-02', 'companies/acme', 'name', '"Acme"', 'hlc:0']));
  const g2 = Buffer.from(recordLine([DAMAGE_T2, 'pi-02', 'companies/acme', 'city', '"Berlin"', 'hlc:0']));
  const torn = Buffer.from(['2026-11-21T10:00:06.000Z', 'pi-02', 'companies/acme', 'employ'].join(US));
  const garbage = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x13, 0x37, 0xc0, 0x1e, 0x0a]);
  const units = Buffer.from(['2026-11-21T10:00:01.000Z', 'pi-02', 'companies/acme'].join(US) + RS + '\n');
  const utf8 = Buffer.concat([Buffer.from(['2026-11-21T10:00:02.000Z', 'pi-02', 'companies/acme', 'motto', '"caf'].join(US)), Buffer.from([0xe9]), Buffer.from('"' + US + 'hlc:0' + RS + '\n')]);
  return [
    { name: 'a torn last record', bytes: Buffer.concat([g1, g2, torn]), code: 'ETORN', offset: g1.length + g2.length, message: `torn last record (${torn.length} bytes without a terminator); skipped` },
    { name: 'binary garbage', bytes: Buffer.concat([g1, garbage, g2]), code: 'EUTF8', offset: g1.length, message: 'record is not valid UTF-8; skipped' },
    { name: 'a wrong unit count', bytes: Buffer.concat([g1, units, g2]), code: 'EUNITS', offset: g1.length, message: 'record has 3 units, expected 6, 7 or 8: "2026-11-21T10:00:01.000Z|pi-02|companies…"' },
    { name: 'invalid UTF-8 in a value', bytes: Buffer.concat([g1, utf8, g2]), code: 'EUTF8', offset: g1.length, message: 'record is not valid UTF-8; skipped' },
  ];
}

/** The warning line walnut prints for a damage case. */
export function damageWarning(c: DamageCase): string {
  return `warning: '${DAMAGE_SEGMENT}' at byte ${c.offset}: ${c.message}\n`;
}
