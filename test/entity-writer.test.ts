/**
 * The entity writer (lib/entity-writer.ts): the overlapping batch pipeline
 * keeps, for every file, the order that makes a batch write durable — its
 * rename starts only after a syncfs that started after its temporary file
 * was written, and its batch is reported done only after a syncfs that
 * started after all of the batch's renames — with random step durations,
 * with a failing `sync -f` (fsyncs instead), and with a failing batch. Then
 * the real worker thread writes files in a folder.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline, EntityWriter, type BatchSteps, type Job, type WriterMessage, type Written } from '../lib/entity-writer.js';
import { tmpDir } from './helpers.js';

interface Span {
  start: number;
  end: number;
}

/** Fake steps that log when each step starts and ends (a logical clock), with random durations. */
function fakeSteps(seed: number, { syncOk = (): boolean => true, failTemps = (_: Job[]): boolean => false }: { syncOk?: () => boolean; failTemps?: (jobs: Job[]) => boolean } = {}) {
  let clock = 0;
  let s = seed;
  const rand = () => {
    // mulberry32: 0–3 ms
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % 4;
  };
  const pause = () => new Promise<void>((resolve) => setTimeout(resolve, rand()));
  const temps = new Map<string, Span>();
  const renames = new Map<string, Span>();
  const syncs: Array<Span & { ok: boolean }> = [];
  const fsyncedTemps = new Map<string, Span>();
  const fsyncedDirs = new Map<string, Span>();
  const step = async <T>(fn: () => T): Promise<[Span, T]> => {
    const start = ++clock;
    await pause();
    const v = fn();
    return [{ start, end: ++clock }, v];
  };
  const steps: BatchSteps = {
    async temps(jobs) {
      const out: Written[] = [];
      for (const [target, file] of jobs) {
        const [span] = await step(() => undefined);
        if (failTemps(jobs)) throw Object.assign(new Error(`cannot write '${file}'`), { code: 'EIO' });
        temps.set(file, span);
        out.push([target, 10, 1000]);
      }
      return out;
    },
    async syncfs() {
      const ok = syncOk();
      const [span] = await step(() => undefined);
      syncs.push({ ...span, ok });
      return ok;
    },
    async fsyncTemps(jobs) {
      for (const [, file] of jobs) fsyncedTemps.set(file, (await step(() => undefined))[0]);
    },
    async renames(jobs) {
      for (const [, file] of jobs) renames.set(file, (await step(() => undefined))[0]);
    },
    async fsyncDirs(jobs) {
      for (const [, file] of jobs) fsyncedDirs.set(file, (await step(() => undefined))[0]);
    },
    write: () => Promise.reject(new Error('not used by the pipeline')),
  };
  return { steps, temps, renames, syncs, fsyncedTemps, fsyncedDirs, now: () => ++clock };
}

const batchOf = (b: number, n: number): Job[] => Array.from({ length: n }, (_, i) => [`c/e${b}-${i}`, `/d/c/e${b}-${i}/_index.md`, `text ${b} ${i}`, true]);

/** Run batches through the pipeline (added at random moments); the messages with the clock when each came. */
async function runPipeline(fake: ReturnType<typeof fakeSteps>, batches: Job[][]) {
  const messages: Array<{ m: WriterMessage; at: number }> = [];
  let settle: () => void;
  const all = new Promise<void>((resolve) => (settle = resolve));
  let left = batches.length;
  const add = pipeline(fake.steps, (m) => {
    messages.push({ m, at: fake.now() });
    if (!('first' in m) && --left === 0) settle();
  });
  for (let b = 0; b < batches.length; b++) {
    add(b, batches[b]);
    if (b % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 3)); // sometimes the next batch comes late
  }
  await all;
  return messages;
}

/** A sync (or the per-file fsync) that started after `after` and ended before `before`. */
function syncBetween(fake: ReturnType<typeof fakeSteps>, after: number, before: number, perFile?: Span): boolean {
  if (fake.syncs.some((s) => s.ok && s.start > after && s.end < before)) return true;
  return perFile !== undefined && perFile.start > after && perFile.end < before;
}

function checkOrder(fake: ReturnType<typeof fakeSteps>, batches: Job[][], messages: Array<{ m: WriterMessage; at: number }>) {
  const done = messages.filter((x) => 'out' in x.m);
  assert.equal(
    done.map((x) => (x.m as { id: number }).id),
    batches.map((_, i) => i),
    'every batch is reported done once, in order',
  );
  for (const { m, at } of done) {
    const { id, out } = m as { id: number; out: Written[] };
    const jobs = batches[id];
    assert.equal(out.length, jobs.length);
    let lastRename = 0;
    for (const [, file] of jobs) {
      const t = fake.temps.get(file)!;
      const r = fake.renames.get(file)!;
      assert.ok(t && r, `${file} written and renamed`);
      assert.ok(syncBetween(fake, t.end, r.start, fake.fsyncedTemps.get(file)), `${file}: a sync between its temporary file (${t.end}) and its rename (${r.start})`);
      lastRename = Math.max(lastRename, r.end);
    }
    const dirsSynced = jobs.every(([, file]) => {
      const d = fake.fsyncedDirs.get(file);
      return d !== undefined && d.start > fake.renames.get(file)!.end && d.end < at;
    });
    assert.ok(syncBetween(fake, lastRename, at) || dirsSynced, `batch ${id}: a sync between its last rename (${lastRename}) and its report (${at})`);
  }
}

test('pipeline: each rename after a sync that follows its temporary file; each batch reported after a sync that follows its renames', async () => {
  for (let seed = 1; seed <= 12; seed++) {
    const fake = fakeSteps(seed);
    const batches = Array.from({ length: 6 }, (_, b) => batchOf(b, 1 + ((seed + b) % 4)));
    const messages = await runPipeline(fake, batches);
    checkOrder(fake, batches, messages);
    // the batches overlap: one sync per batch and one at the end when they come back to back, never two per batch
    assert.ok(fake.syncs.length <= batches.length * 2, `${fake.syncs.length} syncs`);
  }
});

test('pipeline: back-to-back batches share syncs (batches + 1) and the next temporary files are written before the previous batch is done', async () => {
  const fake = fakeSteps(7);
  const batches = Array.from({ length: 5 }, (_, b) => batchOf(b, 3));
  const messages: Array<{ m: WriterMessage; at: number }> = [];
  await new Promise<void>((resolve) => {
    let left = batches.length;
    const add = pipeline(fake.steps, (m) => {
      messages.push({ m, at: fake.now() });
      if (!('first' in m) && --left === 0) resolve();
    });
    batches.forEach((jobs, b) => add(b, jobs)); // all at once
  });
  checkOrder(fake, batches, messages);
  assert.is(fake.syncs.length, batches.length + 1);
  const doneAt = (id: number) => messages.find((x) => 'out' in x.m && x.m.id === id)!.at;
  assert.ok(fake.temps.get(batches[1][0][1])!.start < doneAt(0), 'batch 1 is being written before batch 0 is reported done');
});

test('pipeline: a failing sync -f falls back to fsyncs of the temporary files and of the folders, in the same order', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    let n = 0;
    const fake = fakeSteps(seed, { syncOk: () => n++ % 2 === 0 });
    const batches = Array.from({ length: 5 }, (_, b) => batchOf(b, 2));
    const messages = await runPipeline(fake, batches);
    checkOrder(fake, batches, messages);
  }
});

test('pipeline: a batch that fails is reported, the batches after it fail without a rename, the one before is still made durable', async () => {
  const fake = fakeSteps(3, { failTemps: (jobs) => jobs[0][0] === 'c/e2-0' });
  const batches = Array.from({ length: 5 }, (_, b) => batchOf(b, 2));
  const messages = await runPipeline(fake, batches);
  const byId = new Map(messages.filter((x) => !('first' in x.m)).map((x) => [(x.m as { id: number }).id, x.m]));
  assert.is(byId.size, 5);
  for (const id of [0, 1]) assert.ok('out' in byId.get(id)!, `batch ${id} done`);
  for (const id of [2, 3, 4]) assert.equal((byId.get(id) as { error: { code?: string } }).error.code, 'EIO', `batch ${id} failed`);
  checkOrder(
    fake,
    batches.slice(0, 2),
    messages.filter((x) => 'out' in x.m),
  );
  for (const b of [2, 3, 4]) for (const [, file] of batches[b]) assert.not.ok(fake.renames.has(file), `${file} not renamed`);
  for (const b of [3, 4]) for (const [, file] of batches[b]) assert.not.ok(fake.temps.has(file), `${file} not written`);
});

test('EntityWriter: the worker thread writes overlapping batches; files whole, no temporary file left, sizes reported', async () => {
  const root = tmpDir();
  let first = 0;
  const writer = new EntityWriter({ root, concurrency: 4, onFirst: () => first++ });
  const batches = Array.from({ length: 4 }, (_, b) =>
    Array.from({ length: 150 }, (_, i) => ({ target: `c${b % 2}/e${b}-${i}`, file: path.join(root, `c${b % 2}`, `e${b}-${i}`, '_index.md'), text: `---\nn: ${b * 1000 + i}\n---\n${'x'.repeat(i)}\n`, create: true })),
  );
  // one file exists already: replaced
  fs.mkdirSync(path.dirname(batches[0][0].file), { recursive: true });
  fs.writeFileSync(batches[0][0].file, 'old');
  try {
    const results = await Promise.all(batches.map((jobs, b) => writer.write(jobs, b < batches.length - 1)));
    assert.is(first, 1);
    for (let b = 0; b < batches.length; b++) {
      assert.is(results[b].length, batches[b].length);
      for (let i = 0; i < batches[b].length; i++) {
        const { target, file, text } = batches[b][i];
        assert.is(fs.readFileSync(file, 'utf8'), text);
        const [t, size, mtimeMs] = results[b][i];
        assert.is(t, target);
        assert.is(size, Buffer.byteLength(text));
        assert.is(mtimeMs, Math.round(fs.statSync(file).mtimeMs));
      }
    }
    for (const c of ['c0', 'c1']) for (const e of fs.readdirSync(path.join(root, c))) assert.equal(fs.readdirSync(path.join(root, c, e)), ['_index.md'], `${c}/${e} holds only its file`);
  } finally {
    await writer.close();
  }
});

test('EntityWriter: a batch the worker cannot write rejects, and so does every write after it', async () => {
  const root = tmpDir();
  fs.writeFileSync(path.join(root, 'c'), 'a file where a collection folder should be');
  const writer = new EntityWriter({ root, concurrency: 4 });
  const good = Array.from({ length: 120 }, (_, i) => ({ target: `ok/e${i}`, file: path.join(root, 'ok', `e${i}`, '_index.md'), text: `n: ${i}\n`, create: true }));
  const bad = Array.from({ length: 120 }, (_, i) => ({ target: `c/e${i}`, file: path.join(root, 'c', `e${i}`, '_index.md'), text: `n: ${i}\n`, create: true }));
  try {
    let err: NodeJS.ErrnoException | undefined;
    const a = writer.write(good, true);
    const b = writer.write(bad, true).catch((e) => (err = e));
    await a;
    assert.is(fs.readFileSync(good[7].file, 'utf8'), 'n: 7\n');
    await b;
    assert.ok(err, 'the bad batch rejects');
    assert.is(err!.code, 'ENOTDIR');
    let later: Error | undefined;
    await writer.write(good, false).catch((e) => (later = e));
    assert.ok(later, 'a write after a failure rejects');
  } finally {
    await writer.close();
  }
});

test('EntityWriter.read: files read on the worker thread, between the batches it writes', async () => {
  const root = tmpDir();
  const writer = new EntityWriter({ root, concurrency: 4 });
  const files = Array.from({ length: 300 }, (_, i) => path.join(root, 'r', `e${i}`, '_index.md'));
  files.forEach((f, i) => {
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, `---\nn: ${i}\nname: caf\u00e9 ${'\u{1F600}'.repeat(i % 3)}\n---\n`);
  });
  const batch = Array.from({ length: 150 }, (_, i) => ({ target: `w/e${i}`, file: path.join(root, 'w', `e${i}`, '_index.md'), text: `n: ${i}\n`, create: true }));
  try {
    const writing = writer.write(batch, true);
    const missing = path.join(root, 'r', 'none', '_index.md');
    const notDir = path.join(files[0], 'x'); // below a file: ENOTDIR, read as "no file"
    const folder = path.dirname(files[1]); // EISDIR: not read, the caller reads it again (and gets the error)
    const texts = await writer.read([...files, missing, notDir, folder]);
    await writing;
    assert.is(texts.length, files.length + 3);
    files.forEach((f, i) => assert.is(texts[i], fs.readFileSync(f, 'utf8'), f));
    assert.is(texts[files.length], null);
    assert.is(texts[files.length + 1], null);
    assert.is(texts[files.length + 2], undefined);
    assert.is(fs.readFileSync(batch[3].file, 'utf8'), 'n: 3\n');
  } finally {
    await writer.close();
  }
});

test.run();
