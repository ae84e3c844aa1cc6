/**
 * Writing entity files for compaction: each file is replaced atomically
 * (temporary file in its folder, write, fsync, rename over the old one, fsync
 * of the folder), `concurrency` files at a time. Large runs write on a worker
 * thread, so that the compaction goes on computing the next files while the
 * disk works (one batch durable before the next is computed would leave the
 * CPU idle during every fsync, and the disk idle during every computation).
 *
 * The caller keeps the crash-safety order: the index lines of a batch are
 * saved before the batch is handed over, and every batch is durable before
 * the checkpoint is written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { TEMP_SUFFIX } from './fsutil.js';

/** One entity file to write. */
export interface EntityWrite {
  target: string;
  file: string;
  text: string;
  /** a new entity: make its folder first */
  create?: boolean;
}

/** A file written: its size and mtime (ms, rounded) after the rename. */
export type Written = [target: string, size: number, mtimeMs: number];

/** Batches at least this large start the worker thread (when more work follows). */
const WORKER_MIN_BATCH = 100;

/**
 * The worker: CommonJS, self-contained (it runs from this text, so the bundle
 * needs no second entry point). Messages in: `{ id, jobs: [target, file, text][] }`;
 * out: `{ first: true }` after the first file, `{ id, out: Written[] }` when a
 * batch is durable, `{ id, error }`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const writeOne = (${writeOne.toString()});
const queue = [];
let head = 0;
let active = 0;
let first = true;
parentPort.on('message', (batch) => {
  batch.left = batch.jobs.length;
  batch.out = [];
  batch.failed = false;
  if (batch.left === 0) parentPort.postMessage({ id: batch.id, out: [] });
  for (const job of batch.jobs) queue.push([batch, job]);
  batch.jobs = undefined;
  pump();
});
function pump() {
  while (active < workerData.concurrency && head < queue.length) {
    const [batch, job] = queue[head];
    queue[head++] = undefined;
    if (head > 4096 && head * 2 > queue.length) { queue.splice(0, head); head = 0; }
    active++;
    writeOne(fs, path, job[0], job[1], job[2], job[3], workerData.suffix).then(
      (r) => {
        if (first) { first = false; parentPort.postMessage({ first: true }); }
        batch.out.push(r);
        if (--batch.left === 0 && !batch.failed) parentPort.postMessage({ id: batch.id, out: batch.out });
      },
      (err) => {
        if (!batch.failed) parentPort.postMessage({ id: batch.id, error: { message: err.message, code: err.code } });
        batch.failed = true;
      },
    ).finally(() => { active--; pump(); });
  }
}
`;

/**
 * Replace one file atomically; returns its size and mtime. Runs in the worker
 * (from its source text) and in process: it may use only its parameters.
 */
async function writeOne(fsm: typeof fs, pathm: typeof path, target: string, file: string, text: string, create: boolean, suffix: string): Promise<Written> {
  const dir = pathm.dirname(file);
  const tmp = pathm.join(dir, '.' + pathm.basename(file) + suffix);
  if (create) await fsm.promises.mkdir(dir, { recursive: true });
  let handle;
  try {
    handle = await fsm.promises.open(tmp, 'w');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fsm.promises.mkdir(dir, { recursive: true }); // its folder is gone
    handle = await fsm.promises.open(tmp, 'w');
  }
  let st;
  try {
    await handle.writeFile(text);
    await handle.sync();
    st = await handle.stat(); // a rename keeps the mtime
  } finally {
    await handle.close();
  }
  await fsm.promises.rename(tmp, file);
  const d = await fsm.promises.open(dir, 'r');
  try {
    await d.sync().catch(() => {});
  } finally {
    await d.close();
  }
  return [target, st.size, Math.round(st.mtimeMs)];
}

/**
 * Writes batches of entity files. `write` resolves when every file of the
 * batch and its folder are fsynced.
 *
 * @example const w = new EntityWriter({ concurrency: 8 }); await w.write(jobs, false); await w.close()
 */
export class EntityWriter {
  private worker?: Worker;
  private nextId = 0;
  private waiting = new Map<number, { resolve: (w: Written[]) => void; reject: (e: Error) => void }>();
  private failure?: Error;
  private firstDone = false;
  private readonly concurrency: number;
  private readonly onFirst: () => void;

  constructor({ concurrency = 8, onFirst = () => {} }: { concurrency?: number; onFirst?: () => void }) {
    this.concurrency = concurrency;
    this.onFirst = onFirst;
  }

  /**
   * Write a batch.
   * @param jobs - the files
   * @param more - more batches will follow (the worker thread pays off)
   * @returns the sizes and mtimes of the written files
   */
  write(jobs: EntityWrite[], more: boolean): Promise<Written[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.worker && more && jobs.length >= WORKER_MIN_BATCH) this.startWorker();
    if (!this.worker) return this.writeHere(jobs);
    const id = this.nextId++;
    const done = new Promise<Written[]>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.worker.postMessage({ id, jobs: jobs.map((j) => [j.target, j.file, j.text, !!j.create]) });
    return done;
  }

  private first(): void {
    if (this.firstDone) return;
    this.firstDone = true;
    this.onFirst();
  }

  private async writeHere(jobs: EntityWrite[]): Promise<Written[]> {
    const out: Written[] = [];
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const job = jobs[next++];
        out.push(await writeOne(fs, path, job.target, job.file, job.text, !!job.create, TEMP_SUFFIX));
        this.first();
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, Math.max(1, jobs.length)) }, worker));
    return out;
  }

  private startWorker(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { concurrency: this.concurrency, suffix: TEMP_SUFFIX } });
    worker.on('message', (m: { first?: true; id?: number; out?: Written[]; error?: { message: string; code?: string } }) => {
      if (m.first) return this.first();
      const w = this.waiting.get(m.id!);
      if (!w) return;
      this.waiting.delete(m.id!);
      if (m.error) {
        const err = Object.assign(new Error(m.error.message), { code: m.error.code });
        this.failure ??= err;
        w.reject(err);
      } else w.resolve(m.out!);
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.waiting.size > 0) fail(new Error(`the entity writer stopped (exit ${code}) with files still to write`));
    });
    this.worker = worker;
  }

  /** Stop the worker thread (after every batch was awaited). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}
