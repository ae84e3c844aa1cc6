// Timing helpers: repeated runs with median and p90, hyperfine when present,
// one measured run of a child process with its wall time and peak RSS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execFileSync } from 'node:child_process';

/** Summary statistics of samples (ms): median, p90, mean, min, max, n. */
export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => {
    if (s.length === 0) return NaN;
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    const hi = Math.ceil(i);
    return s[lo] + (s[hi] - s[lo]) * (i - lo);
  };
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, median: q(0.5), p90: q(0.9), mean, min: s[0], max: s[s.length - 1] };
}

/**
 * The environment of a timed child process: this one's, without
 * NODE_EXTRA_CA_CERTS. Node 20 parses the certificates it names while it
 * starts, before any script runs (40–45 ms for a system CA bundle on the
 * bench VM, whose environment sets it for its sandbox); none of the timed
 * processes makes a TLS connection, and the machines walnut runs on do not
 * set it. Benches that want the figure with it say so (the compaction bench
 * reports walnut's time both ways).
 */
export function timedEnv(env = process.env) {
  const out = { ...env };
  delete out.NODE_EXTRA_CA_CERTS;
  return out;
}

/** Round to `d` decimals (for reports). */
export function round(x, d = 1) {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Find hyperfine; when missing and running as root, install the Debian package
 * (`apt-get update && apt-get install -y hyperfine`). Returns its path or
 * undefined (the caller then times its own loop).
 */
export function ensureHyperfine({ log = () => {} } = {}) {
  let bin = which('hyperfine');
  if (bin || process.env.WALNUT_BENCH_NO_HYPERFINE) return process.env.WALNUT_BENCH_NO_HYPERFINE ? undefined : bin;
  if (typeof process.getuid === 'function' && process.getuid() === 0 && which('apt-get')) {
    log('hyperfine is missing; installing the Debian package (apt-get install -y hyperfine)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const r = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq hyperfine'], { stdio: ['ignore', 'ignore', 'pipe'], env, timeout: 300_000 });
    if (r.status !== 0) log(`could not install hyperfine (${String(r.stderr).trim().split('\n').pop()}); timing with a loop instead`);
    bin = which('hyperfine');
  }
  return bin;
}

/**
 * Time commands, each run `runs` times after `warmup` runs. The commands take
 * turns, so a change of load on the machine touches all of them alike (the
 * ratios stay fair on a shared machine): with hyperfine, in `rounds` rounds of
 * runs/rounds runs per command, samples pooled; with the own loop, one run of
 * each command per turn.
 *
 * @param commands - [{ name, argv: [cmd, ...args] }]
 * @param options.cwd, options.env - where and how to run them
 * @param options.hyperfine - path of hyperfine, or undefined for the own loop
 * @returns { tool, results: [{ name, command, samples (ms), ...stats, cpuMean (ms of user + system time; hyperfine only) }] }
 */
export function timeCommands(commands, { runs = 30, warmup = 3, rounds = 5, cwd = process.cwd(), env = timedEnv(), hyperfine } = {}) {
  if (hyperfine) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-hf-'));
    const pooled = commands.map(() => []);
    const cpu = commands.map(() => 0); // user + system seconds, summed over runs
    const per = Math.ceil(runs / rounds);
    let failure = '';
    for (let round = 0; round < rounds && !failure; round++) {
      const out = path.join(tmp, `hf-${round}.json`);
      const args = ['-N', '--style', 'none', '--warmup', String(round === 0 ? warmup : 1), '--runs', String(per), '--export-json', out];
      for (const c of commands) args.push('-n', c.name, c.argv.map(shellQuote).join(' '));
      const r = spawnSync(hyperfine, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      if (r.status !== 0) failure = r.stderr.trim() || `exit ${r.status}`;
      else
        JSON.parse(fs.readFileSync(out, 'utf8')).results.forEach((res, i) => {
          pooled[i].push(...res.times.map((t) => t * 1000));
          cpu[i] += (res.user + res.system) * res.times.length;
        });
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!failure) {
      const version = spawnSync(hyperfine, ['--version'], { encoding: 'utf8' }).stdout.trim();
      return {
        tool: `${version || 'hyperfine'} -N, ${rounds} rounds × ${per} runs (+ warm-up), samples pooled`,
        results: commands.map((c, i) => ({ name: c.name, command: c.argv.join(' '), samples: pooled[i], ...stats(pooled[i]), cpuMean: (cpu[i] * 1000) / pooled[i].length })),
      };
    }
    process.stderr.write(`hyperfine failed (${failure}); timing with a loop instead\n`);
  }
  const samples = commands.map(() => []);
  for (let round = 0; round < warmup + runs; round++) {
    commands.forEach((c, i) => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(c.argv[0], c.argv.slice(1), { cwd, env, stdio: 'ignore' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${c.argv.join(' ')} exited with ${r.status ?? r.signal}`);
      if (round >= warmup) samples[i].push(ms);
    });
  }
  return { tool: `own loop (spawnSync, ${runs} runs, ${warmup} warm-up)`, results: commands.map((c, i) => ({ name: c.name, command: c.argv.join(' '), samples: samples[i], ...stats(samples[i]) })) };
}

function shellQuote(s) {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * Run one command once and measure it: wall time (hrtime around the child),
 * CPU time (user + system; GNU time's %U %S, 10 ms resolution), peak resident
 * set size (GNU time's %M; without GNU time, VmHWM of /proc/<pid>/status polled
 * every 5 ms, and no CPU time), exit status, and optionally its stdout. CPU time
 * moves much less than wall time when other work loads the machine.
 *
 * @param argv - [cmd, ...args]
 * @param options.stdin - a file to feed on stdin (default: nothing)
 * @param options.stdout - 'ignore' (like > /dev/null), 'capture', or a file path
 * @returns { wallMs, cpuMs, peakRssKB, rssMethod, code, stdout, stderr }
 */
export async function measureRun(argv, { cwd = process.cwd(), env = timedEnv(), stdin, stdout = 'ignore' } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-rss-'));
  const timeFile = path.join(tmp, 'time');
  const useTime = TIME && !process.env.WALNUT_BENCH_NO_GNU_TIME;
  const full = useTime ? [TIME, '-f', '%M %U %S', '-o', timeFile, ...argv] : argv;
  const inFd = stdin ? fs.openSync(stdin, 'r') : 'ignore';
  const outFd = stdout === 'ignore' ? 'ignore' : stdout === 'capture' ? 'pipe' : fs.openSync(stdout, 'w');
  const t0 = process.hrtime.bigint();
  const child = spawn(full[0], full.slice(1), { cwd, env, stdio: [inFd, outFd, 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  let hwm = 0;
  const poll = useTime
    ? undefined
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) hwm = Math.max(hwm, Number(m[1]));
        } catch {
          /* exited */
        }
      }, 5);
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? sig));
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (poll) clearInterval(poll);
  if (typeof inFd === 'number') fs.closeSync(inFd);
  if (typeof outFd === 'number') fs.closeSync(outFd);
  let peakRssKB = hwm;
  let cpuMs;
  if (useTime) {
    const text = fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8').trim().split('\n') : [];
    const [rss, user, sys] = (text[text.length - 1] ?? '').split(' ').map(Number);
    peakRssKB = rss || 0;
    if (Number.isFinite(user) && Number.isFinite(sys)) cpuMs = (user + sys) * 1000;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  return { wallMs, cpuMs, peakRssKB, rssMethod: useTime ? '/usr/bin/time -f %M' : '/proc/<pid>/status VmHWM (polled)', code, stdout: out, stderr: err };
}

/**
 * Repeat `measureRun`: statistics of wall time and of CPU time (when known),
 * and the largest peak RSS. `prepare(i)` runs before each repetition (untimed), e.g. to make a
 * fresh data directory.
 */
export async function measureRepeated(argv, { reps = 3, prepare, check, ...options } = {}) {
  const runs = [];
  for (let i = 0; i < reps; i++) {
    const extra = prepare ? await prepare(i) : {};
    const r = await measureRun(argv, { ...options, ...extra });
    if (r.code !== 0) throw new Error(`${argv.join(' ')} exited with ${r.code}: ${r.stderr.trim().slice(0, 2000)}`);
    if (check) check(r, i);
    runs.push(r);
  }
  const wall = stats(runs.map((r) => r.wallMs));
  const cpu = runs.every((r) => r.cpuMs !== undefined) ? stats(runs.map((r) => r.cpuMs)) : undefined;
  return { runs, wall, cpu, peakRssKB: Math.max(...runs.map((r) => r.peakRssKB)), rssMethod: runs[0].rssMethod };
}
