// Push benchmark (standalone; needs a build: npm run build).
//
//   node bench/push.bench.mjs [--entities 100000] [--records 500000] [--days 10] [--new 1000] [--reps 3]
//
// A data directory of node pi-01 with 100 k entity files and the journals of
// five nodes over ten past days, already in sync with a real S3 server (Ceph
// RGW from scripts/s3-server.sh, on loopback) both ways:
//   - `walnut push` to s3://<bucket>/walnut, and
//   - `aws s3 sync <data dir> s3://<bucket>/mirror` (Debian package awscli,
//     installed with apt-get when missing).
// Then, per repetition, 1 k new records (`walnut set --batch`, into today's
// segment) and both tools are timed sending them, in the same run:
//   1. `walnut push` wall time vs `aws s3 sync` wall time: goal ≥ 50× faster;
//   2. bytes walnut sent (its S3 store counts every payload byte it PUTs,
//      `push --json` .wire.bytesSent) vs the new journal bytes: goal
//      ≤ 1.1 × new bytes + 64 KiB.
// A third figure: 1 k records appended to a segment that already holds 50 k
// records (S3 objects cannot be appended to: walnut sends the new bytes as a
// part object, see formats/remote.md; no goal).
//
// Prints BENCH_RESULT lines and one JSON document on stdout, a human summary
// on stderr (bench/README.md). Exits 0 when it could measure.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { report, log, fmt } from './lib/report.mjs';
import { stats, round } from './lib/timing.mjs';
import { generateJournals, createRandom, fieldNames, targetName, valueFor } from './lib/generate.mjs';
import { makeTempRoot, initDataDir, walnutArgv, walnutEnv, requireBuild, scaled, ROOT } from './lib/walnut.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? def : Number(args[i + 1]);
};
const ENTITIES = opt('entities', scaled(100_000));
const RECORDS = opt('records', scaled(500_000));
const DAYS = opt('days', 10);
const NEW = opt('new', 1000);
const REPS = opt('reps', 3);
const SCRIPT = path.join(fileURLToPath(new URL('..', import.meta.url)), 'scripts', 's3-server.sh');

requireBuild();
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const tmp = makeTempRoot('push');
const s3dir = path.join(tmp.dir, 's3');
process.on('exit', () => {
  spawnSync('sh', [SCRIPT, 'stop', s3dir], { stdio: 'ignore' });
  tmp.cleanup();
});
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function ensureAws() {
  if (which('aws')) return which('aws');
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    log('aws is missing; installing the Debian package awscli (apt-get)');
    const r = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends awscli'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
    if (r.status !== 0) throw new Error('could not install awscli');
  }
  const bin = which('aws');
  if (!bin) throw new Error('aws (awscli) is not installed and cannot be installed (not root)');
  return bin;
}

function time(argv, { cwd, env, input } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, env, input, encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

const walBytes = (dir) => fs.readdirSync(path.join(dir, 'wal')).filter((n) => n.endsWith('.usv')).reduce((n, f) => n + fs.statSync(path.join(dir, 'wal', f)).size, 0);

/** 100 k entity files as compaction would write them (generated directly: faster than compacting). */
function generateEntities(dir, entities) {
  const rng = createRandom(7);
  const fields = fieldNames(5);
  const width = Math.max(6, String(entities - 1).length);
  for (let e = 0; e < entities; e++) {
    const folder = path.join(dir, targetName(e, { width }));
    fs.mkdirSync(folder, { recursive: true });
    const lines = fields.map((f) => `${f}: ${valueFor(f, e, rng)}`);
    fs.writeFileSync(path.join(folder, '_index.md'), `---\n${lines.join('\n')}\n---\n`);
  }
}

/** Upload every file of `dir` (but .walnut/) under `prefix` in the bench bucket, 32 at a time. */
async function seedMirror(dir, prefix) {
  const { S3Client, PutObjectCommand } = await import(path.join(ROOT, 'node_modules', '@aws-sdk', 'client-s3', 'dist-cjs', 'index.js'));
  const client = new S3Client({ endpoint: s3.S3_ENDPOINT, region: s3.AWS_REGION, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', credentials: { accessKeyId: s3.AWS_ACCESS_KEY_ID, secretAccessKey: s3.AWS_SECRET_ACCESS_KEY } });
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(dir);
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < files.length) {
      const f = files[next++];
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${path.relative(dir, f).split(path.sep).join('/')}`, Body: fs.readFileSync(f) }));
    }
  }));
  client.destroy();
  return Date.now() - t0;
}

function batch(n, from) {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ target: `companies/new-${from + i}`, field: 'name', value: `New company ${from + i}` })).join('\n') + '\n';
}

// ---------------------------------------------------------------- set-up
log(`starting the S3 server (scripts/s3-server.sh; installs Ceph RGW on first use)`);
const started = spawnSync('sh', [SCRIPT, 'start', s3dir], { encoding: 'utf8', timeout: 600_000 });
if (started.status !== 0) throw new Error(`s3-server.sh start failed: ${started.stderr}`);
const s3 = Object.fromEntries(started.stdout.trim().split('\n').map((l) => l.split('=')));
const aws = ensureAws();
const awsEnv = {
  ...process.env,
  AWS_ACCESS_KEY_ID: s3.AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: s3.AWS_SECRET_ACCESS_KEY,
  AWS_DEFAULT_REGION: s3.AWS_REGION,
  AWS_REGION: s3.AWS_REGION,
  AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
  AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};
const env = walnutEnv(awsEnv);
const awsArgv = (...a) => [aws, '--endpoint-url', s3.S3_ENDPOINT, ...a];
const bucket = 'walnut-bench-push';
time(awsArgv('s3', 'mb', `s3://${bucket}`), { env: awsEnv });

const dir = initDataDir(path.join(tmp.dir, 'data'), { node: 'pi-01' });
log(`generating ${fmt(RECORDS)} records from 5 nodes over ${DAYS} days and ${fmt(ENTITIES)} entity files`);
const gen = generateJournals({ dir, records: RECORDS, entities: ENTITIES, nodes: 5, days: DAYS, start: '2026-01-05T00:00:00.000Z' });
generateEntities(dir, ENTITIES);
const run = (a, o = {}) => time(walnutArgv(...a), { cwd: dir, env, ...o });
run(['remote', 'add', 'origin', `s3://${bucket}/walnut`, '--endpoint', s3.S3_ENDPOINT]);
log(`initial walnut push (${fmt(gen.bytes / 1048576, 1)} MiB of journal, ${gen.segments.length} segments)`);
const first = run(['push', '--json']);
log(`  ${round(first.ms / 1000, 1)} s`);
// The mirror's first copy is uploaded with the SDK, 32 at a time (aws s3 sync
// manages ~250 files/s here); afterwards the objects are newer than the files
// and of the same size, which is what `aws s3 sync` calls in sync. One
// untimed `aws s3 sync` then confirms it.
log(`seeding s3://${bucket}/mirror with the data directory (${fmt(ENTITIES)} entity files + journals)`);
const seedMs = await seedMirror(dir, `mirror`);
log(`  ${round(seedMs / 1000, 1)} s; checking with aws s3 sync`);
const firstSync = time(awsArgv('s3', 'sync', '--only-show-errors', dir, `s3://${bucket}/mirror`), { env: awsEnv });
log(`  ${round(firstSync.ms / 1000, 1)} s`);
// Both in sync now: a second round sends nothing.
if (!JSON.parse(run(['push', '--json']).stdout).inSync) throw new Error('walnut push did not reach a steady state');

// ---------------------------------------------------------------- measure
const reps = [];
for (let rep = 0; rep < REPS; rep++) {
  const before = walBytes(dir);
  run(['set', '--batch'], { input: batch(NEW, rep * NEW) });
  const newBytes = walBytes(dir) - before;
  const p = run(['push', '--json']);
  const doc = JSON.parse(p.stdout);
  const s = time(awsArgv('s3', 'sync', '--only-show-errors', dir, `s3://${bucket}/mirror`), { env: awsEnv });
  reps.push({ pushMs: p.ms, syncMs: s.ms, newBytes, sent: doc.wire.bytesSent, segments: doc.sent.segments, requests: doc.wire.requests });
  log(`rep ${rep + 1}: walnut push ${round(p.ms)} ms (${doc.sent.segments} segment, ${fmt(doc.wire.bytesSent)} B sent, ${doc.wire.requests} requests); aws s3 sync ${round(s.ms)} ms; new journal ${fmt(newBytes)} B`);
}
const push = stats(reps.map((r) => r.pushMs));
const sync = stats(reps.map((r) => r.syncMs));
const speedup = sync.median / push.median;
const worst = reps.reduce((w, r) => Math.max(w, r.sent / (1.1 * r.newBytes + 65536)), 0);
const last = reps[reps.length - 1];

// Whole-object uploads: today's segment already holds 50 k records.
log('appending 1 k records to a segment that already holds 50 k records');
run(['set', '--batch'], { input: batch(scaled(50_000), 1_000_000) });
run(['push']);
const before = walBytes(dir);
run(['set', '--batch'], { input: batch(NEW, 2_000_000) });
const grownNew = walBytes(dir) - before;
const grown = JSON.parse(run(['push', '--json']).stdout);

const details = { entities: ENTITIES, records: RECORDS, journalBytes: gen.bytes, segments: gen.segments.length, newRecords: NEW, reps, initialPushMs: round(first.ms), seedMs: round(seedMs), firstSyncCheckMs: round(firstSync.ms), awscli: spawnSync(aws, ['--version'], { encoding: 'utf8' }).stdout.trim() || spawnSync(aws, ['--version'], { encoding: 'utf8' }).stderr.trim() };
report({ bench: 'push', id: 'push-vs-s3-sync', group: 'push', figure: `\`walnut push\` vs \`aws s3 sync\` after ${fmt(NEW)} new records, ${fmt(ENTITIES)}-entity data directory (median wall time)`, value: round(speedup, 1), unit: '×', goal: '≥ 50×', pass: speedup >= 50, text: `${round(speedup, 1)}× (${round(push.median)} ms vs ${round(sync.median)} ms)`, details });
report({ bench: 'push', id: 'push-ms', group: 'push', figure: `\`walnut push\` of ${fmt(NEW)} new records to S3 (median of ${REPS})`, value: round(push.median), unit: 'ms', text: `${round(push.median)} ms (p90 ${round(push.p90)} ms)`, details: { samples: reps.map((r) => round(r.pushMs)) } });
report({ bench: 'push', id: 'push-bytes', group: 'push', figure: 'bytes sent by `walnut push` / (1.1 × new journal bytes + 64 KiB), worst repetition', value: round(worst, 3), unit: '×', goal: '≤ 1', pass: worst <= 1, text: `${fmt(last.sent)} B sent for ${fmt(last.newBytes)} B of new journal`, details: { reps } });
report({ bench: 'push', id: 'push-bytes-grown-segment', group: 'push', figure: `bytes sent by \`walnut push\` for ${fmt(NEW)} records appended to a segment of ${fmt(scaled(50_000))} records`, value: grown.wire.bytesSent, unit: 'B', text: `${fmt(grown.wire.bytesSent)} B sent for ${fmt(grownNew)} B of new journal`, details: { newBytes: grownNew } });

const result = { bench: 'push', pushMs: push, syncMs: sync, speedup: round(speedup, 1), bytes: { sent: last.sent, newJournal: last.newBytes, limit: Math.round(1.1 * last.newBytes + 65536), worstRatio: round(worst, 3) }, grownSegment: { sent: grown.wire.bytesSent, newJournal: grownNew }, ...details };
process.stdout.write(JSON.stringify(result) + '\n');
process.stderr.write(
  `\npush benchmark: ${fmt(ENTITIES)} entities, ${fmt(RECORDS)} records (${fmt(gen.bytes / 1048576, 1)} MiB, ${gen.segments.length} segments), ${fmt(NEW)} new records per repetition\n` +
    `  walnut push   ${round(push.median)} ms (median of ${REPS})\n` +
    `  aws s3 sync   ${round(sync.median)} ms\n` +
    `  speed-up      ${round(speedup, 1)}×  (goal ≥ 50×: ${speedup >= 50 ? 'pass' : 'MISS'})\n` +
    `  bytes sent    ${fmt(last.sent)} B for ${fmt(last.newBytes)} B of new journal (limit ${fmt(Math.round(1.1 * last.newBytes + 65536))} B: ${worst <= 1 ? 'pass' : 'MISS'})\n` +
    `  grown segment ${fmt(grown.wire.bytesSent)} B sent for ${fmt(grownNew)} B new (appended as a part object)\n`,
);
