// Foundation benchmarks (issue 2): start-up of `walnut set` against
// `node -e 0`, batch append throughput, and reading 1 M journal records.
// Prints one BENCH_RESULT line per figure (see bench/lib/report.mjs); progress
// goes to stderr. Run alone with `node bench/run.mjs foundation`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, log, fmt } from './lib/report.mjs';
import { stats, round, ensureHyperfine, timeCommands, measureRun, measureRepeated } from './lib/timing.mjs';
import { generateBatch, generateJournals } from './lib/generate.mjs';
import { walnutArgv, walnutEnv, initDataDir, walnutSync, makeTempRoot, requireBuild, scaled, SCALE, folderBytes } from './lib/walnut.mjs';
import { profileWalnut, profileLines } from './lib/profile.mjs';

const BENCH = 'foundation';
const SCAN = fileURLToPath(new URL('./lib/scan-journals.mjs', import.meta.url));
const MB = 1e6;
/** 1000000 → '1 M', 100000 → '100 k' (labels follow the scale). */
const count = (n) => (n >= 1e6 ? `${round(n / 1e6, 1)} M` : n >= 1e3 ? `${round(n / 1e3, 1)} k` : String(n));

requireBuild();
const tmp = makeTempRoot(BENCH);
const only = process.env.WALNUT_BENCH_ONLY?.split(',');
const want = (part) => !only || only.includes(part);
let group = '';
const r = (fields) => report({ bench: BENCH, group, ...fields, details: { ...fields.details, loadavg: os.loadavg().map((x) => round(x, 2)), ...(SCALE !== 1 ? { scale: SCALE } : {}) } });

try {
  if (want('startup')) await startup();
  if (want('batch')) await batch();
  if (want('read')) await reading();
} finally {
  tmp.cleanup();
}

/** 1. Start-up: walnut set / show / status / --version against node -e 0, same run. */
async function startup() {
  group = '1. start-up (`walnut set` vs `node -e 0`)';
  log('startup: a small data directory (20 entities × 5 fields)');
  const dir = initDataDir(path.join(tmp.dir, 'small'));
  const input = path.join(tmp.dir, 'small.ndjson');
  generateBatch({ file: input, entities: 20, fields: 5 });
  walnutSync(['set', '--batch'], { cwd: dir, input: fs.readFileSync(input) });
  const hyperfine = ensureHyperfine({ log });
  const runs = Math.max(30, scaled(30));
  const commands = [
    { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    { name: 'walnut set', argv: walnutArgv('set', 'companies/c-000001', 'city', 'Lisbon') },
    { name: 'walnut show', argv: walnutArgv('show', 'companies/c-000001') },
    { name: 'walnut status', argv: walnutArgv('status') },
    { name: 'walnut --version', argv: walnutArgv('--version') },
    // for reference: the same set through yargs (the fast path off; env(1) adds about 1 ms)
    { name: 'walnut set, yargs path', id: 'set-yargs', argv: ['/usr/bin/env', 'WALNUT_FAST_PATH=0', ...walnutArgv('set', 'companies/c-000001', 'city', 'Lisbon')] },
  ];
  log(`startup: ${commands.length} commands × ${runs} runs with ${hyperfine ? 'hyperfine' : 'an own loop'}`);
  const { tool, results } = timeCommands(commands, { runs, warmup: 3, cwd: dir, env: walnutEnv(), hyperfine });
  const [base, ...rest] = results;
  const show = (x) => `${round(x.median)} ms (p90 ${round(x.p90)})`;
  const common = (x) => ({ tool, command: x.command, runs: x.n, median: round(x.median, 2), p90: round(x.p90, 2), mean: round(x.mean, 2), min: round(x.min, 2), max: round(x.max, 2), ...(x.cpuMean ? { cpuMean: round(x.cpuMean, 2) } : {}) });
  r({ id: 'node-e-0', figure: '`node -e 0` wall time (baseline, same run)', value: round(base.median, 2), unit: 'ms', text: show(base), details: common(base) });
  for (const [i, x] of rest.entries()) {
    const id = commands[i + 1].id ?? x.name.replace(/^walnut -*/, '');
    const ratio = x.median / base.median;
    r({ id, figure: `\`${x.name}\` wall time`, value: round(x.median, 2), unit: 'ms', text: `${show(x)}, ${round(ratio, 2)}× node`, details: { ...common(x), ratioToNode: round(ratio, 3), ratioP90: round(x.p90 / base.p90, 3) } });
  }
  const set = rest[0];
  const ratio = set.median / base.median;
  const cpuRatio = set.cpuMean && base.cpuMean ? set.cpuMean / base.cpuMean : undefined;
  let profile;
  if (ratio > 2) {
    log(`startup: walnut set is ${round(ratio, 2)}× node -e 0, over the goal of 2×; profiling one run of the bundle`);
    profile = profileWalnut(['set', 'companies/c-000002', 'city', 'Porto'], { cwd: dir, bundle: true, intervalUs: 100 });
    for (const line of profileLines(profile)) log(line);
  }
  r({
    id: 'set-vs-node',
    figure: '`walnut set` / `node -e 0`, median wall time',
    value: round(ratio, 2),
    unit: '×',
    goal: '≤ 2×',
    pass: ratio <= 2,
    text: `${round(ratio, 2)}× (${round(set.median)} vs ${round(base.median)} ms; p90 ${round(set.p90 / base.p90, 2)}×${cpuRatio ? `; CPU time ${round(cpuRatio, 2)}×` : ''})`,
    details: { tool, setMedian: round(set.median, 2), nodeMedian: round(base.median, 2), overheadMs: round(set.median - base.median, 2), ...(cpuRatio ? { cpuMeanSet: round(set.cpuMean, 2), cpuMeanNode: round(base.cpuMean, 2), cpuRatio: round(cpuRatio, 2) } : {}), ...(profile ? { profile } : {}) },
  });
}

/** 2. Batch append: `walnut set --batch` fed 1 M NDJSON lines (100 k entities × 10 fields). */
async function batch() {
  group = '2. batch append';
  const entities = scaled(100_000);
  const input = path.join(tmp.dir, 'batch.ndjson');
  const gen = generateBatch({ file: input, entities, fields: 10 });
  log(`batch: ${fmt(gen.lines)} lines, ${round(gen.bytes / MB)} MB of NDJSON; 3 runs, each into a fresh data directory`);
  let journalBytes = 0;
  const dirs = [];
  const m = await measureRepeated(walnutArgv('set', '--batch', '--json'), {
    reps: 3,
    stdin: input,
    stdout: 'capture',
    env: walnutEnv(),
    prepare: (i) => {
      if (dirs.length) fs.rmSync(dirs.pop(), { recursive: true, force: true });
      const dir = initDataDir(path.join(tmp.dir, `batch-${i}`));
      dirs.push(dir);
      return { cwd: dir };
    },
    check: (run) => {
      const out = JSON.parse(run.stdout);
      if (out.written !== gen.lines || out.refused !== 0) throw new Error(`walnut set --batch wrote ${out.written} and refused ${out.refused} of ${gen.lines} lines`);
      journalBytes = folderBytes(path.join(dirs[0], 'wal'));
    },
  });
  const s = m.wall.median / 1000;
  const rate = gen.lines / s;
  const best = gen.lines / (m.wall.min / 1000);
  const goal = 500_000;
  const perCpu = m.cpu ? gen.lines / (m.cpu.median / 1000) : undefined;
  const details = { records: gen.lines, inputBytes: gen.bytes, journalBytes, wallMs: m.runs.map((x) => round(x.wallMs)), cpuMs: m.runs.map((x) => x.cpuMs), bestRecordsPerS: Math.round(best), ...(perCpu ? { recordsPerCpuSecond: Math.round(perCpu) } : {}), rssMethod: m.rssMethod, command: 'walnut set --batch --json < batch.ndjson (an fsync started in the background after each MiB written, and one at the end)' };
  if (rate < goal) {
    log(`batch: ${fmt(rate)} records/s misses the goal of ${fmt(goal)}; profiling one run (unbundled dist/cmd/_main.js)`);
    const dir = initDataDir(path.join(tmp.dir, 'batch-prof'));
    details.profile = profileWalnut(['set', '--batch'], { cwd: dir, stdin: input });
    for (const line of profileLines(details.profile)) log(line);
  }
  r({ id: 'batch-records-per-s', figure: `\`walnut set --batch\`, ${count(gen.lines)} records (${count(entities)} entities × 10 fields)`, value: Math.round(rate), unit: 'records/s', goal: `≥ ${fmt(goal)} records/s`, pass: rate >= goal, text: `${fmt(rate)} records/s (${round(s, 2)} s; best run ${fmt(best)}/s${perCpu ? `; ${fmt(perCpu)} per CPU-second` : ''})`, details });
  r({ id: 'batch-mb-per-s', figure: '`walnut set --batch` input read', value: round(gen.bytes / MB / s), unit: 'MB/s', text: `${round(gen.bytes / MB / s)} MB/s of NDJSON in, ${round(journalBytes / MB / s)} MB/s of journal out`, details: { inputMB: round(gen.bytes / MB), journalMB: round(journalBytes / MB) } });
  r({ id: 'batch-peak-rss', figure: '`walnut set --batch` peak RSS', value: round(m.peakRssKB / 1024), unit: 'MiB', details: { rssMethod: m.rssMethod } });
}

/** 3. Reading 1 M records from 5 nodes: the lib reader alone, and `walnut status`. */
async function reading() {
  group = `3. reading ${count(scaled(1_000_000))} records`;
  const records = scaled(1_000_000);
  const dir = initDataDir(path.join(tmp.dir, 'read'));
  const t0 = Date.now();
  const gen = generateJournals({ dir, records, entities: scaled(100_000), nodes: 5 });
  log(`read: generated ${fmt(records)} records, ${round(gen.bytes / MB)} MB in ${gen.segments.length} segments in ${Date.now() - t0} ms`);

  // (a) the reader alone: scanSegment over every segment, in a child process.
  const scans = [];
  const scanCpu = [];
  const m = await measureRepeated([process.execPath, SCAN, dir], {
    reps: 5,
    stdout: 'capture',
    check: (run) => {
      const out = JSON.parse(run.stdout);
      if (out.records !== records || out.issues !== 0) throw new Error(`scan read ${out.records} records and ${out.issues} issues, expected ${records} and 0`);
      scans.push(out.scanMs);
      scanCpu.push(out.cpuMs);
    },
  });
  const scan = stats(scans);
  const rate = records / (scan.median / 1000);
  const perCpu = records / (stats(scanCpu).median / 1000);
  r({ id: 'read-lib-records-per-s', figure: `lib reader (\`scanSegment\`) over ${count(records)} records, 5 segments`, value: Math.round(rate), unit: 'records/s', text: `${fmt(rate)} records/s (${round(scan.median)} ms; best ${fmt(records / (scan.min / 1000))}/s; ${fmt(perCpu)} per CPU-second)`, details: { scanMs: scans.map((x) => round(x)), cpuMs: scanCpu.map((x) => round(x)), recordsPerCpuSecond: Math.round(perCpu), processWallMs: round(m.wall.median), bytes: gen.bytes, cache: 'warm (files just written)' } });
  r({ id: 'read-lib-mb-per-s', figure: 'lib reader (`scanSegment`) throughput', value: round(gen.bytes / MB / (scan.median / 1000)), unit: 'MB/s' });
  r({ id: 'read-lib-peak-rss', figure: `lib reader peak RSS, ${count(records)} records (${round(gen.bytes / MB)} MB)`, value: round(m.peakRssKB / 1024), unit: 'MiB', details: { rssMethod: m.rssMethod } });

  // Bounded memory: one segment of 1 M and one of 3 M records. A reader that
  // held a whole segment would grow by at least the extra journal (+147 MiB);
  // V8's heap sizing moves peak RSS by up to ~40 MiB from run to run, so the
  // goal is half the extra journal.
  const sizes = [scaled(1_000_000), scaled(3_000_000)];
  const rss = [];
  for (const n of sizes) {
    const one = path.join(tmp.dir, `one-${n}`);
    const g = generateJournals({ dir: one, records: n, entities: scaled(100_000), nodes: 1, seed: 3 });
    const run = await measureRun([process.execPath, SCAN, one], { stdout: 'capture' });
    if (run.code !== 0) throw new Error(`scan of ${one} failed: ${run.stderr}`);
    rss.push({ records: n, bytes: g.bytes, peakRssMiB: round(run.peakRssKB / 1024) });
    fs.rmSync(one, { recursive: true, force: true });
  }
  const growth = rss[1].peakRssMiB - rss[0].peakRssMiB;
  const extra = (rss[1].bytes - rss[0].bytes) / 1024 / 1024;
  const limit = round(extra / 2);
  r({
    id: 'read-lib-rss-growth',
    figure: `lib reader peak RSS growth, one segment of ${count(sizes[0])} → ${count(sizes[1])} records (+${round(extra)} MiB of journal)`,
    value: round(growth),
    unit: 'MiB',
    goal: `< ${limit} MiB (half the extra journal)`,
    pass: growth < limit,
    text: `${round(growth)} MiB (${rss[0].peakRssMiB} → ${rss[1].peakRssMiB} MiB)`,
    details: { runs: rss },
  });

  // (b) walnut status over 1 M pending records (it scans them all).
  const st = await measureRepeated(walnutArgv('status', '--json'), {
    reps: 3,
    cwd: dir,
    env: walnutEnv(),
    stdout: 'capture',
    check: (run) => {
      const out = JSON.parse(run.stdout);
      if (out.pending.total !== records) throw new Error(`walnut status counted ${out.pending.total} pending records, expected ${records}`);
    },
  });
  const srate = records / (st.wall.median / 1000);
  const scpu = st.cpu ? `; CPU ${fmt(st.cpu.median / 1000, 2)} s` : '';
  r({ id: 'status-1m-wall', figure: `\`walnut status\` over ${count(records)} pending records (${count(scaled(100_000))} entities)`, value: Math.round(st.wall.median), unit: 'ms', text: `${fmt(st.wall.median / 1000, 2)} s (${fmt(srate)} records/s; best ${fmt(st.wall.min / 1000, 2)} s${scpu})`, details: { wallMs: st.runs.map((x) => round(x.wallMs)), cpuMs: st.runs.map((x) => x.cpuMs), recordsPerS: Math.round(srate) } });
  r({ id: 'status-1m-peak-rss', figure: `\`walnut status\` peak RSS over ${count(records)} pending records`, value: round(st.peakRssKB / 1024), unit: 'MiB', details: { rssMethod: st.rssMethod } });

  // (c) for reference: `walnut log --json > /dev/null` formats every record (one run).
  const lg = await measureRun(walnutArgv('log', '--json'), { cwd: dir, env: walnutEnv() });
  if (lg.code !== 0) throw new Error(`walnut log --json failed (${lg.code}): ${lg.stderr.slice(0, 2000)}`);
  r({ id: 'log-1m-wall', figure: `\`walnut log --json > /dev/null\` over ${count(records)} records (one run)`, value: Math.round(lg.wallMs), unit: 'ms', text: `${fmt(lg.wallMs / 1000, 2)} s${lg.cpuMs !== undefined ? ` (CPU ${fmt(lg.cpuMs / 1000, 2)} s)` : ''}, peak RSS ${fmt(lg.peakRssKB / 1024)} MiB`, details: { cpuMs: lg.cpuMs, peakRssMiB: round(lg.peakRssKB / 1024), rssMethod: lg.rssMethod } });
}
