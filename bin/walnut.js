#!/usr/bin/env node
// walnut's entry. The commands that compact (compact, pull, clone) run with a
// capped heap so memory stays bounded on a 1 GB Pi: V8 otherwise lets its heap
// grow with garbage long before it collects. They are re-run once with
// --max-old-space-size (WALNUT_HEAP_MB, default 256), unless a cap was given.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const compacting = args.some((a) => a === 'compact' || a === 'pull' || a === 'clone');
const capped = process.execArgv.some((a) => a.startsWith('--max-old-space-size')) || /max-old-space-size/.test(process.env.NODE_OPTIONS ?? '');
if (compacting && !capped && process.env.WALNUT_HEAP_MB !== '0') {
  const mb = process.env.WALNUT_HEAP_MB || '256';
  const r = spawnSync(process.execPath, [`--max-old-space-size=${mb}`, ...process.execArgv, fileURLToPath(import.meta.url), ...args], { stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.signal) process.kill(process.pid, r.signal);
  process.exit(r.status ?? 255);
} else {
  await import('../dist/bundle/walnut.mjs');
}
