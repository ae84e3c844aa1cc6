/**
 * The fast paths of `set`, `unset` and `--version` (cmd/_fast.ts,
 * dist/bundle/fast.mjs) and of `version create`, `activate` and `compact`
 * (cmd/_publish.ts, dist/bundle/publish.mjs): they must behave exactly like
 * the yargs entry point.
 * Each argv case runs twice from the same starting data directory — once as
 * users run it, once with WALNUT_FAST_PATH=0 (always yargs) — and the exit
 * status, stdout, stderr and every file of the data directory must be equal.
 * A loader hook shows which bundle files a run loaded: the fast path never
 * loads dist/bundle/walnut.mjs (yargs and the other commands), and argv it
 * cannot read falls through to it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, initRepoDir, snapshotTree, tmpDir, type RunResult } from './helpers.js';
import { run } from './cli-util.js';
import { parseFast } from '../cmd/_fast.js';

const T = '2026-11-21T10:00:00.000Z';

/** A case: argv, optional stdin, where it runs ('repo' or 'outside' a data directory), and whether the fast path takes it. */
interface Case {
  args: string[];
  input?: string;
  where?: 'repo' | 'outside';
  fast: boolean;
}

// -C <dir> is written as '@DIR' and replaced by the data directory of the run.
const CASES: Case[] = [
  // plain writes
  { args: ['set', 'companies/acme', 'name', 'Acme Corp'], fast: true },
  { args: ['set', 'companies/acme', 'name', 'Acme Corp', '--json'], fast: true },
  { args: ['--json', 'set', 'companies/acme', 'name', 'Acme'], fast: true },
  { args: ['set', 'companies/acme', 'name', 'Acme', '-q'], fast: true },
  { args: ['set', 'companies/acme', 'name', 'Acme', '--quiet', '--no-color'], fast: true },
  { args: ['set', 'companies/acme', 'name', 'Acme', '--color'], fast: true },
  { args: ['-C', '@DIR', 'set', 'a/b', 'f', '1'], where: 'outside', fast: true },
  { args: ['set', 'a/b', 'f', '1', '-C', '@DIR', '--json'], where: 'outside', fast: true },
  { args: ['unset', 'companies/acme', 'phone'], fast: true },
  { args: ['unset', 'companies/acme', 'phone', '--json'], fast: true },
  { args: ['-q', 'unset', 'companies/acme', 'phone'], fast: true },
  { args: ['--version'], fast: true },
  // values yargs could coerce: they must reach the handler as the same strings
  ...['42', '007', '3.5', '42.0', '1e3', '1E3', '1e500', '0x10', '0b1', '0o7', '1_000', '+5', '.5', '5.', ' 42', '42 ', 'Infinity', 'NaN', 'true', 'false', 'null', '"42"', "'single'", '[1,"a"]', '{"a": 1}', '{broken', '', 'a b', 'line 1\nline 2', 'x=y', 'ünïcode ✓', 'x\u241fy', '2026-11-21', 'set', 'unset'].map((v): Case => ({ args: ['set', 'a/b', 'f', v], fast: true })),
  { args: ['set', 'a/b', 'f', '42', '--string'], fast: true },
  { args: ['set', 'a/b', 'f', 'true', '--string'], fast: true },
  { args: ['set', 'a/b', 'f', '{"a":[1]}', '--json-value'], fast: true },
  { args: ['set', 'a/b', 'f', '{"a":[1]}', '--json-value', '--json'], fast: true },
  { args: ['set', '1/2', '3', '4'], fast: true },
  { args: ['set', 'true/false', 'null', 'x'], fast: true },
  // errors the handlers throw, on the fast path
  { args: ['set', '../etc', 'name', 'x'], fast: true },
  { args: ['set', 'companies/acme/x', 'name', 'x', '--json'], fast: true },
  { args: ['set', 'companies', 'name', 'x'], fast: true },
  { args: ['set', '', 'name', 'x'], fast: true },
  { args: ['set', 'companies/acme', '', 'x'], fast: true },
  { args: ['set', 'companies/acme', 'na\x1fme', 'x'], fast: true },
  { args: ['set', 'companies/acme', 'name', '{bad', '--json-value'], fast: true },
  { args: ['set', 'companies/acme', 'name', 'Acme', '--json-value', '--json'], fast: true },
  { args: ['unset', 'a/..', 'f'], fast: true },
  { args: ['unset', 'a/b', 'f\x1eg', '--json'], fast: true },
  { args: ['set', 'a/b', 'f', '1'], where: 'outside', fast: true },
  { args: ['unset', 'a/b', 'f', '--json'], where: 'outside', fast: true },
  { args: ['-C', '@DIR/nowhere', 'set', 'a/b', 'f', '1'], where: 'outside', fast: true },
  // batch
  { args: ['set', '--batch'], input: '{"target":"a/b","field":"f","value":1}\n{"target":"a/b","field":"g","value":"x"}\n', fast: true },
  { args: ['set', '--batch', '--json'], input: '{"target":"a/b","field":"f","value":1}\n', fast: true },
  { args: ['set', '--batch', '-q'], input: '{"target":"a/b","field":"f","value":1}', fast: true },
  { args: ['set', '--batch'], input: '{"target":"a/b","field":"f","value":1}\n{not json\n{"target":"../x","field":"f","value":1}\n[1]\n{"target":"a/b","field":"g"}\n', fast: true },
  { args: ['set', '--batch', '--json'], input: 'nope\n', fast: true },
  { args: ['--no-color', 'set', '--batch', '--string'], input: '{"target":"a/b","field":"f","value":"1"}\n', fast: true },
  { args: ['set', '--batch', '--json-value', '-q'], input: '{"target":"a/b","field":"f","value":"1"}\n', fast: true },
  // left to yargs: help, unknown or repeated options, option values, wrong counts, '-' arguments
  { args: ['set', '--help'], fast: false },
  { args: ['unset', '--help'], fast: false },
  { args: ['--version', '--json'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '--version'], fast: false },
  { args: ['set', 'a/b', 'f'], fast: false },
  { args: ['set', 'a/b'], fast: false },
  { args: ['set'], fast: false },
  { args: ['set', 'a/b', 'f', 'v', 'extra'], fast: false },
  { args: ['unset', 'a/b'], fast: false },
  { args: ['unset', 'a/b', 'f', 'extra'], fast: false },
  { args: ['unset', 'a/b', 'f', '--string'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '--json-value', '--string'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '--frob'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '--json', '--json'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '-q', '--quiet'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '--color', '--no-color'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '--json=true'], fast: false },
  { args: ['set', 'a/b', '--json', 'false', 'f', '1'], fast: false },
  { args: ['set', 'a/b', 'f', '--string', 'true'], fast: false },
  ...['-5', '-5.5', '-0', '-007', '-.5', '-00.50'].map((v): Case => ({ args: ['set', 'a/b', 'f', v], fast: true })),
  { args: ['set', 'a/b', '-5', '1'], fast: true },
  { args: ['set', 'a/b', 'f', '--json', '-5'], fast: true },
  { args: ['unset', 'a/b', '-5'], fast: true },
  { args: ['set', 'a/b', 'f', '-x'], fast: false },
  ...['-1e3', '-5.', '-0x1', '-1_0', '--5', '-5-'].map((v): Case => ({ args: ['set', 'a/b', 'f', v], fast: false })),
  { args: ['set', 'a/b', 'f', '--', '1'], fast: false },
  { args: ['set', 'a/b', 'f', '1', '-C'], fast: false },
  { args: ['--string', 'set', 'a/b', 'f', '1'], fast: false },
  { args: ['set', 'a/b', '--batch'], input: '{"target":"a/b","field":"f","value":1}\n', fast: false },
  { args: ['sett', 'a/b', 'f', '1'], fast: false },
  { args: ['show', 'set'], fast: false },
];

const label = (c: Case) => `${c.where ?? 'repo'}: walnut ${c.args.map((a) => JSON.stringify(a)).join(' ')}`;

test('parseFast takes exactly the cases marked fast', () => {
  for (const c of CASES) {
    const args = c.args.map((a) => a.replace('@DIR', '/data'));
    assert.is(parseFast(args) !== undefined, c.fast, label(c));
  }
});

test('parseFast gives the handler the arguments yargs gives it', () => {
  assert.equal(parseFast(['-C', 'd', 'set', 'a/b', 'f', '007', '--json', '--string', '--no-color', '-q']), { command: 'set', argv: { C: 'd', target: 'a/b', field: 'f', value: '007', json: true, string: true, color: false, quiet: true } });
  assert.equal(parseFast(['set', '--batch', '--json']), { command: 'set', argv: { batch: true, json: true, target: undefined, field: undefined, value: undefined } });
  assert.equal(parseFast(['unset', 'a/b', 'f']), { command: 'unset', argv: { target: 'a/b', field: 'f' } });
  assert.equal(parseFast(['--version']), { command: 'version' });
});

/** Run a case in `dir`, restored from `template` first; the result and the files after it. */
function runCase(c: Case, template: string, dir: string, outside: string, env: Record<string, string>): { r: RunResult; files: Record<string, string> } {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(template, dir, { recursive: true });
  const args = c.args.map((a) => a.replace('@DIR', dir));
  const r = run(args, { cwd: c.where === 'outside' ? outside : dir, env: { WALNUT_NOW: T, ...env }, input: c.input ?? '' });
  return { r, files: { ...snapshotTree(dir), ...Object.fromEntries(Object.entries(snapshotTree(outside)).map(([k, v]) => [`outside/${k}`, v])) } };
}

test('fast path and yargs path: same exit status, stdout, stderr and data directory bytes for every case', () => {
  const template = initRepoDir('pi-01');
  // one record already in the journal, so the clock and the segment append are exercised
  assert.is(run(['set', 'companies/acme', 'phone', '+49 30 1'], { cwd: template, env: { WALNUT_NOW: T, WALNUT_FAST_PATH: '0' } }).code, 0);
  const base = tmpDir();
  const dir = path.join(base, 'data');
  const outside = path.join(base, 'elsewhere');
  fs.mkdirSync(outside);
  let compared = 0;
  for (const c of CASES) {
    const viaYargs = runCase(c, template, dir, outside, { WALNUT_FAST_PATH: '0' });
    const viaFast = runCase(c, template, dir, outside, {});
    const show = (x: RunResult) => `exit ${x.code}\n--- stdout ---\n${x.stdout}--- stderr ---\n${x.stderr}`;
    assert.is(show(viaFast.r), show(viaYargs.r), label(c));
    assert.equal(viaFast.files, viaYargs.files, `${label(c)}: files`);
    compared++;
  }
  assert.is(compared, CASES.length);
});

test('the cases do something: writes append to the journal, errors write nothing, exit statuses as documented', () => {
  const template = initRepoDir('pi-01');
  const seg = path.join(template, 'wal', '20261121_pi-01.usv');
  const r1 = run(['set', 'a/b', 'f', '007', '--json'], { cwd: template, env: { WALNUT_NOW: T } });
  assert.is(r1.stdout, JSON.stringify({ version: 1, target: 'a/b', field: 'f', value: '007', timestamp: T, node: 'pi-01' }) + '\n');
  assert.is(fs.readFileSync(seg, 'utf8'), `${T}\x1fpi-01\x1fa/b\x1ff\x1f"007"\x1fhlc:0\x1e\n`);
  const r2 = run(['set', 'a/b', 'f', '{bad', '--json-value'], { cwd: template, env: { WALNUT_NOW: T } });
  assert.is(r2.code, 2);
  assert.match(r2.stderr, /\nusage: walnut set <target> <field> <value> \[--json-value \| --string\]\nusage: walnut set --batch\n$/);
  assert.is(run(['unset', 'a/..', 'f'], { cwd: template }).code, 1);
  assert.is(run(['set', 'a/b', 'f', '1', '--frob'], { cwd: template }).code, 2);
  assert.is(fs.readFileSync(seg, 'utf8').split('\n').length, 2, 'only the first set wrote');
});

/**
 * Run the CLI with a loader hook that writes every URL it loads to a file;
 * returns the result and the dist/bundle files loaded.
 */
function loadedBundleFiles(args: string[], cwd: string, env: Record<string, string> = {}): { r: RunResult; files: string[] } {
  const base = tmpDir();
  const log = path.join(base, 'loaded.txt');
  const hooks = path.join(base, 'hooks.mjs');
  fs.writeFileSync(hooks, `import fs from 'node:fs';\nexport async function load(url, context, next) { fs.appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }\n`);
  const preload = path.join(base, 'preload.mjs');
  fs.writeFileSync(preload, `import { register } from 'node:module';\nregister(${JSON.stringify('file://' + hooks)});\n`);
  const r = spawnSync(process.execPath, ['--import', preload, BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', WALNUT_NOW: T, ...env } });
  const urls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  return { r: { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }, files: urls.filter((u) => u.includes('/dist/bundle/')).map((u) => path.basename(u)) };
}

test('the fast path loads dist/bundle/fast.mjs alone (no yargs, no other command); other argv falls through to walnut.mjs', () => {
  const dir = initRepoDir('pi-01');
  for (const args of [['set', 'a/b', 'f', '1'], ['unset', 'a/b', 'f', '--json'], ['--version'], ['set', 'a/b', '../x', '1']]) {
    const { r, files } = loadedBundleFiles(args, dir);
    assert.ok(r.code === 0 || r.code === 1, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.equal(files, ['fast.mjs'], args.join(' '));
  }
  const help = loadedBundleFiles(['set', '--help'], dir);
  assert.is(help.r.code, 0);
  assert.match(help.r.stdout, /usage: walnut set <target> <field> <value>/);
  assert.equal(help.files.slice(0, 2), ['fast.mjs', 'walnut.mjs'], 'set --help: tried the fast path, then the full entry point');
  const show = loadedBundleFiles(['show', 'a/b'], dir);
  assert.is(show.r.code, 0);
  assert.not.ok(show.files.includes('fast.mjs'), 'show never loads the fast path');
  assert.is(show.files[0], 'walnut.mjs');
  const off = loadedBundleFiles(['set', 'a/b', 'f', '2'], dir, { WALNUT_FAST_PATH: '0' });
  assert.is(off.r.code, 0);
  assert.is(off.files[0], 'walnut.mjs', 'WALNUT_FAST_PATH=0 takes the full entry point');
  assert.not.ok(off.files.includes('fast.mjs'));
});

// `version create` and `activate` (cmd/_publish.ts, dist/bundle/publish.mjs); '@V1' is the template's first version
const PUBLISH_CASES: Case[] = [
  { args: ['version', 'create'], fast: true },
  { args: ['version', 'create', '--json'], fast: true },
  { args: ['-C', '@DIR', 'version', 'create', '--record', '--full', '-q'], where: 'outside', fast: true },
  { args: ['version', 'create', '--wait', '5s', '--json'], fast: true },
  { args: ['version', '--json', 'create', '--record'], fast: true },
  { args: ['version', 'create', '--wait', 'soon'], fast: true },
  { args: ['activate', '@V1'], fast: true },
  { args: ['activate', '@V1', '--json', '--no-color'], fast: true },
  { args: ['-q', 'activate', '--previous'], fast: true },
  { args: ['activate', '--previous', '--json'], fast: true },
  { args: ['activate', 'ffff'], fast: true },
  { args: ['activate', 'not-hex', '--json'], fast: true },
  { args: ['activate', '@V1', '--remote', 'nowhere'], fast: true },
  { args: ['activate', '@V1'], where: 'outside', fast: true },
  { args: ['compact'], fast: true },
  { args: ['compact', '--json'], fast: true },
  { args: ['compact', '--dry-run', '--json'], fast: true },
  { args: ['-C', '@DIR', 'compact', '--record', '-q'], where: 'outside', fast: true },
  { args: ['compact', '--wait', '5s', '--no-color'], fast: true },
  { args: ['compact', '--wait', 'soon'], fast: true },
  { args: ['compact', '--git-base', 'HEAD'], fast: true },
  { args: ['compact'], where: 'outside', fast: true },
  // left to yargs
  { args: ['compact', 'now'], fast: false },
  { args: ['compact', '--wait'], fast: false },
  { args: ['compact', '--dry-run', '--dry-run'], fast: false },
  { args: ['compact', '--dry-run=true'], fast: false },
  { args: ['compact', '--record', 'false'], fast: false },
  { args: ['compact', '--full'], fast: false },
  { args: ['compact', '--help'], fast: false },
  { args: ['activate'], fast: false },
  { args: ['activate', '@V1', '--previous'], fast: false },
  { args: ['activate', '@V1', '@V1'], fast: false },
  { args: ['activate', '@V1', '--remote'], fast: false },
  { args: ['activate', '@V1', '--remote', '--json'], fast: false },
  { args: ['activate', '@V1', '--remote', 'true'], fast: false },
  { args: ['activate', '@V1', '--remote=nowhere'], fast: false },
  { args: ['activate', '@V1', '--full'], fast: false },
  { args: ['activate', '-5'], fast: false },
  { args: ['activate', '--help'], fast: false },
  { args: ['version', 'list'], fast: false },
  { args: ['version', 'create', 'x'], fast: false },
  { args: ['version', 'create', '--keep', '3'], fast: false },
  { args: ['version', 'create', '--wait'], fast: false },
  { args: ['version', 'create', '--record', '--record'], fast: false },
  { args: ['version'], fast: false },
];

/** A data directory with two versions, the second active after the first. */
function publishTemplate(): { template: string; v1: string } {
  const template = initRepoDir('pi-01');
  const env = { WALNUT_NOW: T, WALNUT_FAST_PATH: '0' };
  const step = (args: string[]) => {
    const r = run(args, { cwd: template, env });
    assert.is(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  step(['set', 'companies/acme', 'name', 'Acme']);
  const v1 = step(['version', 'create']);
  step(['activate', v1]);
  step(['set', 'companies/acme', 'employees', '12']);
  step(['activate', step(['version', 'create'])]);
  step(['set', 'companies/zeta', 'name', 'Zeta']);
  return { template, v1 };
}

// caches whose bytes hold inode numbers or folder mtimes of the copy
const VOLATILE = ['.walnut/dirs', '.walnut/stat', '.walnut/locks', '.walnut/versions/walnut-build'];

test('publish path and yargs path: same exit status, stdout, stderr and data directory bytes for version create, activate and compact', () => {
  const { template, v1 } = publishTemplate();
  const base = tmpDir();
  const dir = path.join(base, 'data');
  const outside = path.join(base, 'elsewhere');
  fs.mkdirSync(outside);
  const runPublishCase = (c: Case, env: Record<string, string>) => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.cpSync(template, dir, { recursive: true });
    const args = c.args.map((a) => a.replace('@DIR', dir).replace('@V1', v1));
    const r = run(args, { cwd: c.where === 'outside' ? outside : dir, env: { WALNUT_NOW: T, ...env } });
    return { r, files: snapshotTree(dir, { skip: VOLATILE }) };
  };
  let changed = 0;
  for (const c of PUBLISH_CASES) {
    assert.is(parseFast(c.args.map((a) => a.replace('@DIR', '/data').replace('@V1', v1))) !== undefined, c.fast, `parseFast: ${label(c)}`);
    const viaYargs = runPublishCase(c, { WALNUT_FAST_PATH: '0' });
    const viaFast = runPublishCase(c, {});
    const show = (x: RunResult) => `exit ${x.code}\n--- stdout ---\n${x.stdout}--- stderr ---\n${x.stderr}`;
    assert.is(show(viaFast.r), show(viaYargs.r), label(c));
    assert.equal(viaFast.files, viaYargs.files, `${label(c)}: files`);
    if (viaFast.r.code === 0 && JSON.stringify(viaFast.files) !== JSON.stringify(snapshotTree(template, { skip: VOLATILE }))) changed++;
  }
  assert.ok(changed >= 11, `the successful cases change the data directory (${changed})`);
});

test('version create, activate and compact load publish.mjs and its chunks, never walnut.mjs (yargs)', () => {
  const { template, v1 } = publishTemplate();
  for (const args of [['version', 'create', '--json'], ['activate', v1], ['activate', '--previous', '-q'], ['activate', 'ffff'], ['compact', '--json'], ['compact']]) {
    const { r, files } = loadedBundleFiles(args, template);
    assert.ok(r.code === 0 || r.code === 1, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.is(files[0], 'publish.mjs', args.join(' '));
    assert.not.ok(files.includes('walnut.mjs'), `${args.join(' ')}: ${files.join(' ')}`);
    assert.not.ok(files.includes('fast.mjs'), args.join(' '));
  }
  const list = loadedBundleFiles(['version', 'list'], template);
  assert.is(list.r.code, 0);
  assert.is(list.files[0], 'publish.mjs', 'version list: tried the publish path first');
  assert.ok(list.files.includes('walnut.mjs'), 'then the full entry point');
  const text = fs.readFileSync(path.join(path.dirname(BIN), '..', 'dist', 'bundle', 'publish.mjs'), 'utf8');
  assert.not.match(text, /yargs-parser|y18n|cliui/);
});

test('the fast bundle holds no yargs', () => {
  const text = fs.readFileSync(path.join(path.dirname(BIN), '..', 'dist', 'bundle', 'fast.mjs'), 'utf8');
  assert.not.match(text, /yargs-parser|y18n|cliui/);
  assert.not.match(text, /from\s*["']\.\/chunk-/, 'no chunks shared with the full bundle');
});

test.run();
