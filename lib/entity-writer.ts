/**
 * Writing entity files for compaction, a batch at a time, durably with two
 * syncs per batch instead of two fsyncs per file:
 *
 *  1. every file's temporary file is written in its folder (not fsynced),
 *     `concurrency` at a time;
 *  2. one syncfs of the data directory's file system (`sync -f`): every
 *     temporary file's content is on disk;
 *  3. every temporary file is renamed over its file;
 *  4. one more syncfs: the renames are on disk; only then is the batch done.
 *
 * A batch of 16 files or fewer (and any batch when `sync -f` fails) fsyncs
 * each temporary file before its rename and each folder after, as
 * `writeFileAtomic` does. Either way a power cut leaves each file old or new,
 * never half written. Large runs write on a worker thread, so that the
 * compaction goes on computing the next files while the disk works.
 *
 * The caller keeps the crash-safety order: the index lines of a batch are
 * saved (fsynced) before the batch is handed over, and every batch is done
 * before the checkpoint is written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { TEMP_SUFFIX, SYNCFS_MIN_FILES } from './fsutil.js';

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

/** A job as the batch writer takes it: target, file, text, create. */
type Job = [target: string, file: string, text: string, create: boolean];

/** The worker thread's young generation (MB). */
const WORKER_YOUNG_MB = 8;

/** Batches at least this large start the worker thread (when more work follows). */
const WORKER_MIN_BATCH = 100;

/** What the batch writer may use (passed in: it also runs from its source text in the worker). */
interface BatchEnv {
  fs: typeof fs;
  path: typeof path;
  spawn: typeof spawn;
  concurrency: number;
  suffix: string;
  /** a path on the file system to sync */
  root: string;
  /** more files than this: syncfs instead of fsyncs */
  syncMin: number;
  /** called after each rename */
  renamed: () => void;
}

/**
 * The worker: CommonJS, self-contained (it runs from this text, so the bundle
 * needs no second entry point). Messages in: `{ id, jobs: Job[] }`; out:
 * `{ first: true }` after the first rename, `{ id, out: Written[] }` when a
 * batch is durable, `{ id, error }`. Batches are written one after the other.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const writeBatch = (${writeBatch.toString()});
let first = true;
let chain = Promise.resolve();
const env = { fs, path, spawn, concurrency: workerData.concurrency, suffix: workerData.suffix, root: workerData.root, syncMin: workerData.syncMin,
  renamed: () => { if (first) { first = false; parentPort.postMessage({ first: true }); } } };
parentPort.on('message', (batch) => {
  chain = chain.then(() => writeBatch(env, batch.jobs)).then(
    (out) => parentPort.postMessage({ id: batch.id, out }),
    (err) => parentPort.postMessage({ id: batch.id, error: { message: err.message, code: err.code } }),
  );
});
`;

/**
 * Replace a batch of files durably (steps 1–4 above); returns their sizes and
 * mtimes. Runs in the worker (from its source text) and in process: it may
 * use only its parameters.
 */
async function writeBatch(env: BatchEnv, jobs: Job[]): Promise<Written[]> {
  const { fs: fsm, path: pathm } = env;
  const each = async (fn: (i: number) => Promise<void>) => {
    let next = 0;
    const run = async () => {
      while (next < jobs.length) await fn(next++);
    };
    await Promise.all(Array.from({ length: Math.min(env.concurrency, jobs.length) }, run));
  };
  const syncfs = () =>
    new Promise<boolean>((resolve) => {
      const child = env.spawn('sync', ['-f', env.root], { stdio: 'ignore' });
      child.on('error', () => resolve(false));
      child.on('exit', (code) => resolve(code === 0));
    });
  const fsyncPath = async (file: string, folder: boolean) => {
    const h = await fsm.promises.open(file, 'r');
    try {
      if (folder) await h.sync().catch(() => {}); // a file system that refuses fsync on folders: nothing more to do
      else await h.sync();
    } finally {
      await h.close();
    }
  };
  const one = jobs.length <= env.syncMin; // fsync each file
  const tmps: string[] = new Array(jobs.length);
  const out: Written[] = new Array(jobs.length);
  // 1. temporary files
  await each(async (i) => {
    const [target, file, text, create] = jobs[i];
    const dir = pathm.dirname(file);
    const tmp = pathm.join(dir, '.' + pathm.basename(file) + env.suffix);
    if (create) await fsm.promises.mkdir(dir, { recursive: true });
    let handle;
    try {
      handle = await fsm.promises.open(tmp, 'w');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await fsm.promises.mkdir(dir, { recursive: true }); // its folder is gone
      handle = await fsm.promises.open(tmp, 'w');
    }
    try {
      await handle.writeFile(text);
      if (one) await handle.sync();
      const st = await handle.stat(); // a rename keeps the mtime
      out[i] = [target, st.size, Math.round(st.mtimeMs)];
    } finally {
      await handle.close();
    }
    tmps[i] = tmp;
  });
  // 2. their content on disk before any rename
  if (!one && !(await syncfs())) await each((i) => fsyncPath(tmps[i], false));
  // 3. renames
  await each(async (i) => {
    await fsm.promises.rename(tmps[i], jobs[i][1]);
    env.renamed();
  });
  // 4. the renames on disk
  if (one || !(await syncfs())) {
    const dirs = [...new Set(jobs.map((j) => pathm.dirname(j[1])))];
    let next = 0;
    const run = async () => {
      while (next < dirs.length) await fsyncPath(dirs[next++], true);
    };
    await Promise.all(Array.from({ length: Math.min(env.concurrency, dirs.length) }, run));
  }
  return out;
}

/**
 * Writes batches of entity files. `write` resolves when every file of the
 * batch is durable (its content and its rename on disk).
 *
 * @example const w = new EntityWriter({ root: repo.root, concurrency: 8 }); await w.write(jobs, false); await w.close()
 */
export class EntityWriter {
  private worker?: Worker;
  private nextId = 0;
  private waiting = new Map<number, { resolve: (w: Written[]) => void; reject: (e: Error) => void }>();
  private failure?: Error;
  private firstDone = false;
  private readonly concurrency: number;
  private readonly onFirst: () => void;
  private readonly root: string;
  private here = Promise.resolve();

  /**
   * @param options.root - the data directory (its file system is synced)
   * @param options.concurrency - files written at once
   * @param options.onFirst - called after the first file was renamed into place
   */
  constructor({ root, concurrency = 8, onFirst = () => {} }: { root: string; concurrency?: number; onFirst?: () => void }) {
    this.root = root;
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

  private writeHere(jobs: EntityWrite[]): Promise<Written[]> {
    const env: BatchEnv = { fs, path, spawn, concurrency: this.concurrency, suffix: TEMP_SUFFIX, root: this.root, syncMin: SYNCFS_MIN_FILES, renamed: () => this.first() };
    // one batch after the other, like the worker
    const done = this.here.then(() => writeBatch(env, jobs.map((j) => [j.target, j.file, j.text, !!j.create])));
    this.here = done.then(
      () => {},
      () => {},
    );
    return done;
  }

  private startWorker(): void {
    // a small young generation: the worker only copies texts to files, and its default
    // (tens of MB of new space) would count in the compaction's peak RSS
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { concurrency: this.concurrency, suffix: TEMP_SUFFIX, root: this.root, syncMin: SYNCFS_MIN_FILES }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
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
