#!/usr/bin/env node
// walnut's entry. The commands that compact or hold a data set's listings
// (compact, pull, clone, checkout) run with a capped heap so memory
// stays bounded: V8 otherwise lets its heap grow with garbage long before it
// collects. They are re-run once with --max-old-space-size (WALNUT_HEAP_MB,
// default 256), unless a cap was given or V8's own limit is no larger (V8
// sizes it from the machine's memory: about 256 MB on a 1 GB Pi, where the
// second start-up is saved).
//
// `set`, `unset` and `--version` try the fast path first (dist/bundle/fast.mjs,
// cmd/_fast.ts: no yargs, only the modules they need), `version create` and
// `activate` theirs (dist/bundle/publish.mjs, cmd/_publish.ts); it runs
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
const larger = compacting && !capped && mb !== '0' && (await import('node:v8')).getHeapStatistics().heap_size_limit > Number(mb) * 1.25 * 2 ** 20;
if (larger) {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = spawn(process.execPath, [`--max-old-space-size=${mb}`, ...process.execArgv, fileURLToPath(import.meta.url), ...args], { stdio: 'inherit' });
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
  const publish = quick && !fast && (command === 'version' || command === 'activate');
  const code = fast ? await (await import('../dist/bundle/fast.mjs')).runFast(args) : publish ? await (await import('../dist/bundle/publish.mjs')).runPublish(args) : undefined;
  if (code === undefined) await import('../dist/bundle/walnut.mjs');
  else process.exitCode = code;
}
