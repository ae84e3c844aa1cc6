/**
 * Writing entity files for compaction, a batch at a time, durably with
 * syncs of the file system instead of two fsyncs per file. For one batch:
 *
 *  1. every file's temporary file is written in its folder (not fsynced),
 *     one after the other with blocking calls;
 *  2. one syncfs of the data directory's file system (`sync -f`): every
 *     temporary file's content is on disk;
 *  3. every temporary file is renamed over its file;
 *  4. one more syncfs: the renames are on disk; only then is the batch done.
 *
 * A batch of 16 files or fewer (and any batch when `sync -f` fails) fsyncs
 * each temporary file before its rename and each folder after, as
 * `writeFileAtomic` does. Either way a power cut leaves each file old or new,
 * never half written.
 *
 * Large runs write on a worker thread, so that the compaction goes on
 * computing the next files while the disk works (the worker makes folders
 * and writes with blocking calls, a file at a time: far less CPU than the
 * promise API; renames go to the thread pool), and there the batches
 * overlap (`pipeline`): the temporary files of the next batch are written
 * while the previous batch is synced and renamed, and one syncfs serves as
 * step 4 of a batch and step 2 of the next. The order that makes it safe
 * holds for every file: its rename starts only after a syncfs that started
 * after its temporary file was written and closed, and its batch is reported
 * done only after a syncfs that started after all of the batch's renames.
 *
 * The caller keeps the crash-safety order: the index lines of a batch are
 * saved (fsynced) before the batch is handed over, and every batch is done
 * before the checkpoint is written.
 *
 * The worker also reads files for the caller (`read`), in between the files
 * it writes: a compaction has the next chunk's entity files read there while
 * it computes the current chunk, so that its own thread does not wait on
 * the reads.
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
export type Job = [target: string, file: string, text: string, create: boolean];

/** The worker thread's young generation (MB). */
const WORKER_YOUNG_MB = 8;

/** Batches at least this large start the worker thread (when more work follows). */
const WORKER_MIN_BATCH = 100;

/** What the batch writer may use (passed in: it also runs from its source text in the worker). */
export interface BatchEnv {
  fs: typeof fs;
  path: typeof path;
  spawn: typeof spawn;
  /** fsyncs at once (small batches, or when `sync -f` fails) */
  concurrency: number;
  suffix: string;
  /** a path on the file system to sync */
  root: string;
  /** more files than this: syncfs instead of fsyncs */
  syncMin: number;
  /** called after each rename */
  renamed: () => void;
}

/** The steps of a batch write, over the files of a batch (see `batchSteps`). */
export interface BatchSteps {
  /** write the temporary files (with `fsync`, each is fsynced too); their sizes and mtimes */
  temps(jobs: Job[], fsync?: boolean): Promise<Written[]>;
  /** sync the file system; false when `sync -f` failed */
  syncfs(): Promise<boolean>;
  /** fsync the temporary files */
  fsyncTemps(jobs: Job[]): Promise<void>;
  /** rename the temporary files over their files */
  renames(jobs: Job[]): Promise<void>;
  /** fsync the folders of the files */
  fsyncDirs(jobs: Job[]): Promise<void>;
  /** the whole protocol for one batch (steps 1–4, or fsyncs for a small batch) */
  write(jobs: Job[]): Promise<Written[]>;
}

/** A message of the worker: after the first rename, a batch durable, a batch failed, files read. */
export type WriterMessage = { first: true } | { id: number; out: Written[] } | { id: number; error: { message: string; code?: string } } | { read: number; texts: FileText[] };

/** A file read: its text, null when there is no such file, undefined when it could not be read (read it again, for the error). */
export type FileText = string | null | undefined;

/**
 * The worker: CommonJS, self-contained (it runs from this text, so the bundle
 * needs no second entry point). Messages in: `{ id, jobs: Job[] }` (a batch),
 * `{ read, files }` (files to read now, in between batches); out:
 * `WriterMessage`s. Batches are written in order, overlapping (`pipeline`).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
let first = true;
const env = { fs, path, spawn, concurrency: workerData.concurrency, suffix: workerData.suffix, root: workerData.root, syncMin: workerData.syncMin,
  renamed: () => { if (first) { first = false; parentPort.postMessage({ first: true }); } } };
const steps = (${batchSteps.toString()})(env);
const add = (${pipeline.toString()})(steps, (m) => parentPort.postMessage(m));
const readText = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    return err.code === 'ENOENT' || err.code === 'ENOTDIR' ? null : undefined;
  }
};
parentPort.on('message', (m) => (m.read !== undefined ? parentPort.postMessage({ read: m.read, texts: m.files.map(readText) }) : add(m.id, m.jobs)));
`;

/**
 * The steps of the durable batch write. Runs in the worker (from its source
 * text) and in process: it may use only its parameters.
 */
export function batchSteps(env: BatchEnv): BatchSteps {
  const { fs: fsm, path: pathm } = env;
  /** files written between two turns of the event loop (a sync that ended is noticed, batches come in) */
  const YIELD_EVERY = 16;
  const each = async <T>(items: T[], fn: (item: T, i: number) => Promise<void>) => {
    let next = 0;
    const run = async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(env.concurrency, items.length) }, run));
  };
  const tmpOf = (file: string) => pathm.join(pathm.dirname(file), '.' + pathm.basename(file) + env.suffix);
  const fsyncPath = async (file: string, folder: boolean) => {
    const h = await fsm.promises.open(file, 'r');
    try {
      if (folder) await h.sync().catch(() => {}); // a file system that refuses fsync on folders: nothing more to do
      else await h.sync();
    } finally {
      await h.close();
    }
  };
  const steps: BatchSteps = {
    async temps(jobs, fsync = false) {
      // blocking calls, a file at a time: far less CPU per file than the promise API,
      // and folders made at once in one collection would only contend for its lock
      const out: Written[] = new Array(jobs.length);
      for (let i = 0; i < jobs.length; i++) {
        if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
        const [target, file, text, create] = jobs[i];
        const dir = pathm.dirname(file);
        const tmp = tmpOf(file);
        if (create) fsm.mkdirSync(dir, { recursive: true });
        let fd;
        try {
          fd = fsm.openSync(tmp, 'w');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          fsm.mkdirSync(dir, { recursive: true }); // its folder is gone
          fd = fsm.openSync(tmp, 'w');
        }
        try {
          fsm.writeFileSync(fd, text);
          if (fsync) fsm.fsyncSync(fd);
          const st = fsm.fstatSync(fd); // a rename keeps the mtime
          out[i] = [target, st.size, Math.round(st.mtimeMs)];
        } finally {
          fsm.closeSync(fd);
        }
      }
      return out;
    },
    syncfs: () =>
      new Promise<boolean>((resolve) => {
        const child = env.spawn('sync', ['-f', env.root], { stdio: 'ignore' });
        child.on('error', () => resolve(false));
        child.on('exit', (code) => resolve(code === 0));
      }),
    fsyncTemps: (jobs) => each(jobs, (j) => fsyncPath(tmpOf(j[1]), false)),
    async renames(jobs) {
      // all handed to the thread pool at once (a rename over a file frees its old inode:
      // work the kernel spreads over the cores), while this thread writes the next batch's files
      await Promise.all(
        jobs.map(
          (j) =>
            new Promise<void>((resolve, reject) =>
              fsm.rename(tmpOf(j[1]), j[1], (err) => {
                if (err) return reject(err);
                env.renamed();
                resolve();
              }),
            ),
        ),
      );
    },
    fsyncDirs: (jobs) => each([...new Set(jobs.map((j) => pathm.dirname(j[1])))], (dir) => fsyncPath(dir, true)),
    async write(jobs) {
      const one = jobs.length <= env.syncMin; // fsync each file
      const out = await steps.temps(jobs, one);
      // their content on disk before any rename
      if (!one && !(await steps.syncfs())) await steps.fsyncTemps(jobs);
      await steps.renames(jobs);
      // the renames on disk
      if (one || !(await steps.syncfs())) await steps.fsyncDirs(jobs);
      return out;
    },
  };
  return steps;
}

/**
 * Batches written in order, overlapping: a batch's temporary files are
 * written as soon as it arrives (after those of the batch before), while the
 * batch before is synced and renamed. One loop then, per batch: wait for its
 * temporary files; one syncfs (their content, and the renames of the batch
 * before); report the batch before done; rename this batch's files. With
 * nothing more to come, one last syncfs makes the last renames durable. When
 * `sync -f` fails, the temporary files are fsynced one by one, and the
 * renamed files' folders. A failed batch is reported; the batches after it
 * fail with the same error without being written.
 *
 * Runs in the worker (from its source text) and in tests: it may use only its
 * parameters.
 *
 * @returns add(id, jobs): queue a batch; `post` gets `{ id, out }` or `{ id, error }` for it
 */
export function pipeline(steps: BatchSteps, post: (m: WriterMessage) => void): (id: number, jobs: Job[]) => void {
  interface Batch {
    id: number;
    jobs: Job[];
    temps: Promise<Written[]>;
  }
  const queue: Batch[] = [];
  let tempsDone: Promise<unknown> = Promise.resolve();
  let running = false;
  let failure: { message: string; code?: string } | undefined;
  const fail = (id: number, err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    failure ??= { message: e.message, code: e.code };
    post({ id, error: failure });
  };
  const run = async () => {
    running = true;
    /** renamed, not yet durable */
    let renamed: { id: number; jobs: Job[]; out: Written[] } | undefined;
    while (queue.length > 0 || renamed) {
      const cur = queue.shift();
      let out: Written[] | undefined;
      if (cur) {
        try {
          out = await cur.temps;
          if (failure) throw failure; // an earlier batch failed: not renamed
        } catch (err) {
          fail(cur.id, err);
          out = undefined;
        }
      }
      // one sync for the temporary files of `cur` and the renames of `renamed`
      if (!(await steps.syncfs())) {
        if (out) {
          try {
            await steps.fsyncTemps(cur!.jobs);
          } catch (err) {
            fail(cur!.id, err);
            out = undefined;
          }
        }
        if (renamed) {
          try {
            await steps.fsyncDirs(renamed.jobs);
          } catch (err) {
            fail(renamed.id, err);
            renamed = undefined;
          }
        }
      }
      if (renamed) post({ id: renamed.id, out: renamed.out });
      renamed = undefined;
      if (out) {
        try {
          await steps.renames(cur!.jobs);
          renamed = { id: cur!.id, jobs: cur!.jobs, out };
        } catch (err) {
          fail(cur!.id, err);
        }
      }
    }
    running = false;
  };
  return (id, jobs) => {
    // nothing more is written after a failure
    const temps = tempsDone.then(() => (failure ? Promise.reject(failure) : steps.temps(jobs)));
    tempsDone = temps.catch((err) => {
      const e = err as NodeJS.ErrnoException;
      failure ??= { message: e.message, code: e.code };
    });
    queue.push({ id, jobs, temps });
    if (!running) void run();
  };
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
  private reads = new Map<number, (texts: FileText[]) => void>();
  private nextRead = 0;

  /**
   * @param options.root - the data directory (its file system is synced)
   * @param options.concurrency - fsyncs at once (small batches, or when `sync -f` fails)
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
    // blocking calls on this thread: the batch is small or the last one, so nothing waits for it
    const env: BatchEnv = { fs, path, spawn, concurrency: this.concurrency, suffix: TEMP_SUFFIX, root: this.root, syncMin: SYNCFS_MIN_FILES, renamed: () => this.first() };
    // one batch after the other
    const done = this.here.then(() => batchSteps(env).write(jobs.map((j) => [j.target, j.file, j.text, !!j.create])));
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
    worker.on('message', (m: WriterMessage) => {
      if ('first' in m) return this.first();
      if ('read' in m) {
        const r = this.reads.get(m.read);
        this.reads.delete(m.read);
        return r?.(m.texts);
      }
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if ('error' in m) {
        const err = Object.assign(new Error(m.error.message), { code: m.error.code });
        this.failure ??= err;
        w.reject(err);
      } else w.resolve(m.out);
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
      this.unread();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.waiting.size > 0) fail(new Error(`the entity writer stopped (exit ${code}) with files still to write`));
    });
    this.worker = worker;
  }

  /**
   * Read files on the worker thread (started if need be), while this thread
   * computes: their texts, null for a file that is not there, undefined for
   * one to read again here (another error, or the worker stopped).
   */
  read(files: string[]): Promise<FileText[]> {
    if (this.failure) return Promise.resolve(files.map(() => undefined));
    if (!this.worker) this.startWorker();
    const id = this.nextRead++;
    return new Promise((resolve) => {
      this.reads.set(id, resolve);
      this.worker!.postMessage({ read: id, files });
    });
  }

  /** Reads still waiting get "read it again" for every file (an empty list). */
  private unread(): void {
    for (const resolve of this.reads.values()) resolve([]);
    this.reads.clear();
  }

  /** Stop the worker thread (after every batch was awaited). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.unread();
    if (worker) await worker.terminate();
  }
}
