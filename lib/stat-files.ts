/**
 * `stat` many files at once, for the hand-edit scan: one system call per
 * entity file is what that scan costs (formats/state.md, `stat`), so a large
 * data directory is split between this thread and a worker thread (the
 * caller stays synchronous: it waits for the worker with Atomics.wait).
 */
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';

/** Fewer files than this are stat'ed on this thread alone (a worker takes tens of ms to start). */
const PARALLEL_MIN = 20_000;

/** Give up waiting for the worker after this long and finish on this thread. */
const WORKER_TIMEOUT_MS = 60_000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const flag = new Int32Array(workerData.sab, 0, 1);
const out = new Float64Array(workerData.sab, 8);
try {
  const statRange = ${statRange.toString()};
  statRange(fs, workerData.files, 0, workerData.files.length, out, 0);
  Atomics.store(flag, 0, 1);
} catch {
  Atomics.store(flag, 0, 2);
}
Atomics.notify(flag, 0);
`;

/**
 * Size and mtime (ms, not rounded) of each file, or size -1 when it is not a
 * regular file (missing, a folder, unreadable path). Runs in the worker from
 * its source text too: it may use only its parameters.
 */
function statRange(fsm: typeof fs, files: string[], from: number, to: number, out: Float64Array, at: number): void {
  for (let i = from; i < to; i++, at += 2) {
    let st: fs.Stats | undefined;
    try {
      st = fsm.statSync(files[i], { throwIfNoEntry: false });
    } catch {
      st = undefined; // ENOTDIR (a file where a folder was expected), EACCES …
    }
    if (st && st.isFile()) {
      out[at] = st.size;
      out[at + 1] = st.mtimeMs;
    } else out[at] = -1;
  }
}

/**
 * Stat every file.
 *
 * @param files - absolute paths
 * @returns pairs (size, mtimeMs) in the order of `files`; size -1: not a regular file
 * @example const st = statFiles(['/data/companies/acme/_index.md']); st[0] // size
 */
export function statFiles(files: string[]): Float64Array {
  const out = new Float64Array(files.length * 2);
  const split = files.length >= PARALLEL_MIN ? files.length >> 1 : files.length;
  let sab: SharedArrayBuffer | undefined;
  let worker: Worker | undefined;
  if (split < files.length) {
    sab = new SharedArrayBuffer(8 + 16 * (files.length - split));
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { files: files.slice(split), sab } });
      worker.unref();
      worker.on('error', () => {}); // reported through the flag
    } catch {
      worker = undefined;
    }
  }
  statRange(fs, files, 0, split, out, 0);
  if (split === files.length) return out;
  const flag = new Int32Array(sab!, 0, 1);
  const deadline = Date.now() + WORKER_TIMEOUT_MS;
  while (worker && Atomics.load(flag, 0) === 0 && Date.now() < deadline) Atomics.wait(flag, 0, 0, 1000);
  if (worker && Atomics.load(flag, 0) === 1) out.set(new Float64Array(sab!, 8), split * 2);
  else statRange(fs, files, split, files.length, out, split * 2);
  void worker?.terminate();
  return out;
}
