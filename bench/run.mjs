// `npm run bench` (npm runs the build first): runs every bench/*.bench.mjs in
// name order, or only those whose file name contains one of the arguments,
// each in its own child process; collects their BENCH_RESULT lines, prints a
// summary table and writes bench/results.json with the machine description.
//
//   node bench/run.mjs [<name-substring>...] [--scale <x>] [--keep] [--strict] [--list] [--markdown]
//
//   --scale <x>  multiply data set sizes by x (WALNUT_BENCH_SCALE; e.g. 0.1 to try a bench quickly)
//   --keep       keep the generated data sets (WALNUT_BENCH_KEEP); their folder is printed
//   --strict     exit 1 when a goal is missed (default: only when a bench fails to run)
//   --list       list the bench modules and exit
//   --markdown   print bench/results.json as markdown tables (for bench/README.md) and exit; runs nothing
//   WALNUT_BENCH_ROOT=<dir>  measure the bin/ and dist/ of a copy of the tree (a frozen build) instead of this one
//
// THE BENCH_RESULT CONVENTION (details in bench/README.md and bench/lib/report.mjs):
// a bench module is a Node script `bench/<name>.bench.mjs`. For each figure it
// prints one line on stdout
//
//   BENCH_RESULT {"bench":"<name>","id":"<key>","figure":"<what>","value":<number>,"unit":"<unit>",
//                 "goal":"<goal text>"|null,"pass":true|false|null,"text":"<optional>","details":{...}}
//
// (use `report()` from bench/lib/report.mjs). Progress goes to stderr. It puts
// its data under WALNUT_BENCH_TMP (set here; default os.tmpdir()) and removes
// it at the end. Exit 0 when it measured (a missed goal is a result), non-zero
// when it could not.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseResultLine, markdownTables } from './lib/report.mjs';
import { describeMachine, machineLine } from './lib/machine.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsFile = path.join(here, 'results.json');

const filters = [];
const env = { ...process.env };
let strict = false;
let list = false;
let markdown = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--scale') env.WALNUT_BENCH_SCALE = argv[++i];
  else if (a === '--keep') env.WALNUT_BENCH_KEEP = '1';
  else if (a === '--strict') strict = true;
  else if (a === '--list') list = true;
  else if (a === '--markdown') markdown = true;
  else if (a === '-h' || a === '--help') {
    const head = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
    process.stdout.write(head.slice(0, head.findIndex((l) => l.includes('THE BENCH_RESULT CONVENTION')) - 1).map((l) => l.slice(3)).join('\n') + '\n');
    process.exit(0);
  } else if (a.startsWith('-')) {
    process.stderr.write(`error: unknown option '${a}'\nusage: node bench/run.mjs [<name-substring>...] [--scale <x>] [--keep] [--strict] [--list] [--markdown]\n`);
    process.exit(2);
  } else filters.push(a);
}
env.WALNUT_BENCH_TMP ||= os.tmpdir();
if (markdown) {
  process.stdout.write(markdownTables(JSON.parse(fs.readFileSync(resultsFile, 'utf8')), filters) + '\n');
  process.exit(0);
}

const files = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (list) {
  for (const f of files) console.log(f);
  process.exit(0);
}
if (files.length === 0) {
  process.stderr.write(`error: no bench module matches ${filters.map((f) => `'${f}'`).join(', ')}\nhint: node bench/run.mjs --list\n`);
  process.exit(2);
}

const machine = describeMachine({ dataDir: env.WALNUT_BENCH_TMP });
const measured = env.WALNUT_BENCH_ROOT ? path.resolve(env.WALNUT_BENCH_ROOT) : path.dirname(here);
const commit = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: here, encoding: 'utf8' }).stdout?.trim() || 'unknown';
process.stderr.write(`machine: ${machineLine(machine)}\nmeasuring the build in ${measured} (commit ${commit}); data under ${env.WALNUT_BENCH_TMP}${env.WALNUT_BENCH_SCALE ? `, scale ${env.WALNUT_BENCH_SCALE}` : ''}\n`);

/** Run one bench module; resolves to its entry for results.json. */
function runBench(file) {
  const name = file.replace(/\.bench\.mjs$/, '');
  process.stderr.write(`\n== ${name} ==\n`);
  const started = Date.now();
  const loadavg = os.loadavg();
  const child = spawn(process.execPath, [path.join(here, file)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const results = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const result = parseResultLine(line);
    if (result) {
      results.push(result);
      const mark = result.pass === null ? '' : result.pass ? '  [pass]' : '  [MISS]';
      process.stderr.write(`  -> ${result.figure}: ${result.text ?? `${result.value} ${result.unit}`}${mark}\n`);
    } else process.stdout.write(line + '\n');
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      resolve({
        file: `bench/${file}`,
        date: new Date(started).toISOString(),
        durationMs: Date.now() - started,
        exitCode: code ?? signal,
        loadavgAtStart: loadavg.map((x) => Math.round(x * 100) / 100),
        scale: Number(env.WALNUT_BENCH_SCALE || 1),
        commit,
        machine,
        results,
      });
    });
  });
}

const runs = {};
for (const file of files) runs[file.replace(/\.bench\.mjs$/, '')] = await runBench(file);

// Summary table.
const rows = [['bench', 'figure', 'measured', 'goal', 'result']];
for (const [name, run] of Object.entries(runs)) {
  if (run.exitCode !== 0) rows.push([name, `(bench exited with ${run.exitCode})`, '', '', 'ERROR']);
  for (const x of run.results) rows.push([name, x.figure, x.text ?? `${x.value} ${x.unit}`, x.goal ?? '—', x.pass === null ? '—' : x.pass ? 'pass' : 'MISS']);
}
const widths = rows[0].map((_, c) => Math.min(70, Math.max(...rows.map((r) => r[c].length))));
const line = (r) => r.map((cell, c) => (cell.length > widths[c] ? cell.slice(0, widths[c] - 1) + '…' : cell.padEnd(widths[c]))).join('  ').trimEnd();
process.stdout.write(`\nmachine: ${machineLine(machine)}\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.slice(1).map(line).join('\n')}\n`);

// results.json: merged per bench, so running one bench keeps the others' figures.
let previous = {};
try {
  previous = JSON.parse(fs.readFileSync(resultsFile, 'utf8')).benches ?? {};
} catch {
  /* first run */
}
const doc = { version: 1, updated: new Date().toISOString(), machine, benches: { ...previous, ...runs } };
fs.writeFileSync(resultsFile, JSON.stringify(doc, null, 2) + '\n');
process.stderr.write(`wrote ${path.relative(process.cwd(), resultsFile)}\n`);

const crashed = Object.values(runs).filter((r) => r.exitCode !== 0 || r.results.length === 0);
const missed = Object.values(runs).flatMap((r) => r.results.filter((x) => x.pass === false));
if (crashed.length) process.stderr.write(`error: ${crashed.map((r) => r.file).join(', ')} did not complete\n`);
if (missed.length) process.stderr.write(`${missed.length} goal${missed.length === 1 ? '' : 's'} missed: ${missed.map((x) => `${x.bench}/${x.id}`).join(', ')}\n`);
process.exitCode = crashed.length ? 1 : strict && missed.length ? 1 : 0;
