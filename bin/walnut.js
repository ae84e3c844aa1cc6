#!/bin/sh
':' //; exec node --v8-pool-size=1 "$0" "$@"
// walnut's entry. Run as a program, the two lines above are a shell script
// that runs this file with Node and one V8 helper thread (--v8-pool-size=1;
// `#!/usr/bin/env node` cannot pass a flag everywhere: BusyBox env has no
// -S); to Node, line two is a string and a comment. V8's default is four
// helper threads, which compile hot functions and help the garbage
// collector: for a short command on a machine of two cores, four of them
// take turns on the CPU with walnut's own thread (measured: the main thread
// of a 2 k-entity compaction waited 40–85 ms for a core; with one helper,
// 0–20 ms, and the run took 9 % less). The heavy commands' re-run below
// keeps V8's default. `node bin/walnut.js` (tests) runs without the flag.
//
// The commands that compact or hold a data set's listings
// (compact, pull, clone, checkout) run with a capped heap so memory
// stays bounded: V8 otherwise lets its heap grow with garbage long before it
// collects. They are re-run once with --max-old-space-size (WALNUT_HEAP_MB,
// default 256) and --max-semi-space-size=8, unless a cap was given, V8's own
// limit is no larger (V8 sizes it from the machine's memory: about 256 MB on
// a 1 GB Pi, where the second start-up is saved), or a compaction has little
// to read (`smallCompaction` below: the usual run from cron or a hook).
//
// `set`, `unset` and `--version` try the fast path first (dist/bundle/fast.mjs,
// cmd/_fast.ts: no yargs, only the modules they need), `version create`,
// `activate` and `compact` theirs (dist/bundle/publish.mjs, cmd/_publish.ts); it runs
// nothing and returns undefined for any argv it cannot read unambiguously,
// and the full entry point (dist/bundle/walnut.mjs, cmd/_main.ts) runs then.
// WALNUT_FAST_PATH=0 always takes the full entry point (tests compare both).
const args = process.argv.slice(2);
const HEAVY = new Set(['compact', 'pull', 'clone', 'checkout']);
// the command is the first word that is neither an option nor -C's folder
let command;
for (let i = 0; i < args.length && command === undefined; i++) {
  if (args[i] === '-C') i++;
  else if (!args[i].startsWith('-')) command = args[i];
}
const compacting = HEAVY.has(command);
const capped = compacting && (process.execArgv.some((a) => a.startsWith('--max-old-space-size')) || /max-old-space-size/.test(process.env.NODE_OPTIONS ?? ''));
const mb = process.env.WALNUT_HEAP_MB || '256';
// the limit V8 chose counts the young generation too (some tens of MB): a quarter more than the cap is "no larger"
const larger = compacting && !capped && mb !== '0' && (await import('node:v8')).getHeapStatistics().heap_size_limit > Number(mb) * 1.25 * 2 ** 20 && !(command === 'compact' && (await smallCompaction()));
if (larger) {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  // a young generation of 8 MB per semi-space instead of V8's 16 (unless one was given): the
  // compaction's texts die young either way; measured on the update path of the compaction
  // bench, 231–236 MB peak RSS instead of 245–257 MB, in the same time
  const semi = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('max-semi-space-size')) ? [] : ['--max-semi-space-size=8'];
  // V8's own helper threads for the long run (their parallel garbage collection pays there)
  const flags = process.execArgv.filter((a) => !a.startsWith('--v8-pool-size'));
  const child = spawn(process.execPath, [`--max-old-space-size=${mb}`, ...semi, ...flags, fileURLToPath(import.meta.url), ...args], { stdio: 'inherit' });
  // signals reach the real walnut (checkout --follow, a compaction being stopped); this process only waits
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => {
    throw err;
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeAllListeners(sig);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 255);
  });
} else {
  const quick = process.env.WALNUT_FAST_PATH !== '0';
  const fast = quick && (args.includes('set') || args.includes('unset') || (args.length === 1 && args[0] === '--version'));
  const publish = quick && !fast && (command === 'version' || command === 'activate' || command === 'compact');
  const code = fast ? await (await import('../dist/bundle/fast.mjs')).runFast(args) : publish ? await (await import('../dist/bundle/publish.mjs')).runPublish(args) : undefined;
  if (code === undefined) await import('../dist/bundle/walnut.mjs');
  else process.exitCode = code;
}

/**
 * A compaction with little to read (the usual run from cron or a git hook)
 * stays small in memory whatever V8's limit, so it runs in this process
 * (saving the second start-up, 100 ms or more): at most SMALL_PENDING bytes of
 * journal after the checkpoint and an entity index of at most SMALL_INDEX
 * bytes (some 20 k to 40 k entities). Measured at 35 k entities and 7 MB of
 * journal: peak RSS 176 MB without the cap, 163 MB with it. Anything it
 * cannot tell (no data directory found, an unreadable checkpoint): false,
 * and the cap applies.
 */
async function smallCompaction() {
  const SMALL_PENDING = 8 * 2 ** 20;
  const SMALL_INDEX = 8 * 2 ** 20;
  try {
    const fs = await import('node:fs');
    const path = await import('node:path');
    let root;
    const c = args.indexOf('-C');
    if (c >= 0) root = path.resolve(args[c + 1]);
    else if (process.env.WALNUT_DIR) root = path.resolve(process.env.WALNUT_DIR);
    else {
      for (let dir = process.cwd(); root === undefined; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, '.walnut', 'config'))) root = dir;
        else if (path.dirname(dir) === dir) return false;
      }
    }
    const size = (file) => {
      try {
        return fs.statSync(file).size;
      } catch (err) {
        if (err.code === 'ENOENT') return 0;
        throw err;
      }
    };
    const state = path.join(root, '.walnut');
    if (size(path.join(state, 'index')) > SMALL_INDEX) return false;
    const checkpoint = path.join(state, 'checkpoint');
    // its deferred records are merged too
    let pending = size(checkpoint);
    const marks = pending > 0 ? JSON.parse(fs.readFileSync(checkpoint, 'utf8')).segments ?? {} : {};
    for (const sub of ['wal', '.walnut/gossip']) {
      let names = [];
      try {
        names = fs.readdirSync(path.join(root, sub));
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
      }
      for (const name of names) {
        if (!name.endsWith('.usv')) continue;
        const bytes = size(path.join(root, sub, name));
        const done = marks[`${sub}/${name}`]?.offset ?? 0;
        // a segment shorter than its checkpoint is read again from its start
        pending += done <= bytes ? bytes - done : bytes;
      }
    }
    return pending <= SMALL_PENDING;
  } catch {
    return false;
  }
}
