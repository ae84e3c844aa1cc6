// Deterministic data set generators for benchmarks. Everything streams to disk
// through small buffers (memory stays bounded whatever the size) and depends
// only on the options and the seed, never on the wall clock: the same options
// give byte-identical files on every machine.
//
//   generateJournals(): USV journal segments as walnut writes them (V1 records:
//     timestamp, node, target, field, JSON value, hlc:<n>; units separated by
//     U+001F; each record ended by U+001E and a newline), in
//     <dir>/wal/YYYYMMDD_<node>.usv, from several nodes.
//   generateBatch(): NDJSON {"target","field","value"} lines for `walnut set --batch`.
//
// Command line (handy for trying a benchmark by hand):
//   node bench/lib/generate.mjs journals <dir> [--records 1000000] [--entities 100000] [--nodes 5] [--days 1] [--seed 1]
//   node bench/lib/generate.mjs batch <file> [--entities 100000] [--fields 10] [--seed 1]
import fs from 'node:fs';
import path from 'node:path';

const US = '\x1f';
const TERMINATOR = '\x1e\n';
const FLUSH_BYTES = 1 << 20;

/**
 * A seeded pseudo-random generator (sfc32 seeded through splitmix32): fast,
 * good enough for data sets, and identical on every platform.
 */
export function createRandom(seed = 1) {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (arr) => arr[Math.floor(next() * arr.length)] };
}

const FIELDS = ['name', 'website', 'phone', 'city', 'country', 'employees', 'revenue', 'status', 'score', 'tags'];
const CITIES = ['Berlin', 'Lisbon', 'Austin', 'Osaka', 'Nairobi', 'Lyon', 'Porto', 'Denver', 'Tartu', 'Cork', 'São Paulo', 'Zürich'];
const COUNTRIES = ['DE', 'PT', 'US', 'JP', 'KE', 'FR', 'EE', 'IE', 'BR', 'CH'];
const STATUSES = ['lead', 'contacted', 'qualified', 'customer', 'churned'];
const WORDS = ['alpha', 'bravo', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'indigo', 'juniper', 'kestrel', 'lumen', 'maple', 'nectar', 'orbit', 'pebble'];

/** The field names used for `n` fields per entity: realistic names, then f10, f11, … */
export function fieldNames(n = 10) {
  return Array.from({ length: n }, (_, i) => FIELDS[i] ?? `f${i}`);
}

/** The target of entity number `i` (zero-padded so names sort by number). */
export function targetName(i, { collection = 'companies', width = 6 } = {}) {
  return `${collection}/c-${String(i).padStart(width, '0')}`;
}

/** A JSON value unit for a field, 5–60 bytes, drawn from `rng`. */
export function valueFor(field, entity, rng) {
  switch (field) {
    case 'name':
      return JSON.stringify(`${rng.pick(WORDS)} ${rng.pick(WORDS)} ${entity}`);
    case 'website':
      return JSON.stringify(`https://c-${entity}.example.com/${rng.pick(WORDS)}`);
    case 'phone':
      return JSON.stringify(`+1 555 ${String(rng.int(10000)).padStart(4, '0')}`);
    case 'city':
      return JSON.stringify(rng.pick(CITIES));
    case 'country':
      return JSON.stringify(rng.pick(COUNTRIES));
    case 'employees':
      return String(1 + rng.int(5000));
    case 'revenue':
      return String(Math.round(rng.next() * 1e8) / 100);
    case 'status':
      return JSON.stringify(rng.pick(STATUSES));
    case 'score':
      return String(rng.int(101));
    case 'tags':
      return JSON.stringify([rng.pick(WORDS), rng.pick(WORDS)]);
    default:
      return JSON.stringify(`${rng.pick(WORDS)}-${rng.int(1e6)}`);
  }
}

/** A buffered append-only file writer: bounded memory, one write per MiB. */
class BufferedFile {
  constructor(file) {
    this.fd = fs.openSync(file, 'w');
    this.parts = [];
    this.size = 0;
    this.bytes = 0;
  }
  write(text) {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= FLUSH_BYTES) this.flush();
  }
  flush() {
    if (this.parts.length === 0) return;
    this.bytes += fs.writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
  close() {
    this.flush();
    fs.closeSync(this.fd);
  }
}

/**
 * Write journal segments for `records` V1 records spread over `entities`
 * entities and `nodes` nodes (pi-01, pi-02, …), timestamps spread evenly from
 * `start` over `days` UTC days (one segment per node per day, as walnut
 * writes them). Each record picks its node, entity and field at random; each
 * node's hybrid logical clock is kept (counter > 0 when two of its records
 * share a millisecond). A fraction `nullRate` of values is `null` (deletion).
 *
 * @returns { records, bytes, segments: [{ file, records, bytes }], nodes, entities }
 * @example generateJournals({ dir: '/tmp/d', records: 1e6, entities: 1e5, nodes: 5 })
 */
export function generateJournals({
  dir,
  records = 1_000_000,
  entities = 100_000,
  nodes = 5,
  fieldsPerEntity = 10,
  days = 1,
  start = '2026-01-05T00:00:00.000Z',
  seed = 1,
  nullRate = 0.01,
  collection = 'companies',
  nodeNames = Array.from({ length: nodes }, (_, i) => `pi-${String(i + 1).padStart(2, '0')}`),
}) {
  const wal = path.join(dir, 'wal');
  fs.mkdirSync(wal, { recursive: true });
  const rng = createRandom(seed);
  const fields = fieldNames(fieldsPerEntity);
  const width = Math.max(6, String(entities - 1).length);
  const startMs = Date.parse(start);
  const spanMs = days * 86_400_000 - 1;
  const state = nodeNames.map((node) => ({ node, day: '', out: undefined, file: '', lastMs: -1, counter: 0, records: 0 }));
  const segments = [];
  const closeSegment = (s) => {
    if (!s.out) return;
    s.out.close();
    segments.push({ file: s.file, records: s.records, bytes: s.out.bytes });
    s.out = undefined;
  };
  let isoMs = -1;
  let iso = '';
  for (let i = 0; i < records; i++) {
    const s = state[rng.int(nodeNames.length)];
    let ms = startMs + Math.floor((i * spanMs) / records);
    if (ms <= s.lastMs) {
      ms = s.lastMs;
      s.counter++;
    } else {
      s.counter = 0;
    }
    s.lastMs = ms;
    if (ms !== isoMs) {
      isoMs = ms;
      iso = new Date(ms).toISOString();
    }
    const day = iso.slice(0, 10).replace(/-/g, '');
    if (day !== s.day) {
      closeSegment(s);
      s.day = day;
      s.file = path.join(wal, `${day}_${s.node}.usv`);
      s.out = new BufferedFile(s.file);
      s.records = 0;
    }
    const entity = rng.int(entities);
    const field = fields[rng.int(fields.length)];
    const value = rng.next() < nullRate ? 'null' : valueFor(field, entity, rng);
    s.out.write(iso + US + s.node + US + targetName(entity, { collection, width }) + US + field + US + value + US + 'hlc:' + s.counter + TERMINATOR);
    s.records++;
  }
  for (const s of state) closeSegment(s);
  segments.sort((a, b) => (a.file < b.file ? -1 : 1));
  return { records, bytes: segments.reduce((n, s) => n + s.bytes, 0), segments, nodes: nodeNames, entities };
}

/**
 * Write NDJSON input for `walnut set --batch`: one line
 * `{"target","field","value"}` per field of each entity, entity by entity
 * (`entities` × `fields` lines).
 *
 * @returns { file, lines, bytes }
 * @example generateBatch({ file: '/tmp/batch.ndjson', entities: 100000, fields: 10 })
 */
export function generateBatch({ file, entities = 100_000, fields = 10, seed = 2, collection = 'companies' }) {
  const rng = createRandom(seed);
  const names = fieldNames(fields);
  const width = Math.max(6, String(entities - 1).length);
  const out = new BufferedFile(file);
  for (let e = 0; e < entities; e++) {
    const target = JSON.stringify(targetName(e, { collection, width }));
    for (const f of names) out.write(`{"target":${target},"field":"${f}","value":${valueFor(f, e, rng)}}\n`);
  }
  out.close();
  return { file, lines: entities * fields, bytes: out.bytes };
}

function parseFlags(args) {
  const flags = {};
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith('--')) flags[args[i].slice(2)] = Number(args[++i]);
    else rest.push(args[i]);
  }
  return { flags, rest };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [what, ...args] = process.argv.slice(2);
  const { flags, rest } = parseFlags(args);
  const t0 = Date.now();
  let result;
  if (what === 'journals' && rest[0]) result = generateJournals({ dir: rest[0], ...flags });
  else if (what === 'batch' && rest[0]) result = generateBatch({ file: rest[0], ...flags });
  else {
    process.stderr.write('usage: node bench/lib/generate.mjs journals <dir> [--records N] [--entities N] [--nodes N] [--days N] [--seed N]\n       node bench/lib/generate.mjs batch <file> [--entities N] [--fields N] [--seed N]\n');
    process.exit(2);
  }
  const { segments, ...summary } = result;
  process.stderr.write(`generated in ${Date.now() - t0} ms\n`);
  console.log(JSON.stringify({ ...summary, segments: segments?.length }));
}
