// The BENCH_RESULT convention (see bench/README.md and bench/run.mjs).
//
// A bench module (bench/<name>.bench.mjs) is a plain Node script. For each
// figure it measured it prints ONE line on stdout:
//
//   BENCH_RESULT {"bench":"foundation","id":"set-vs-node","figure":"walnut set / node -e 0 (median wall time)",
//                 "value":1.7,"unit":"×","goal":"≤ 2×","pass":true,"text":"1.7× (64 ms vs 38 ms)","details":{…}}
//
//   bench    the module's name (file name without .bench.mjs)
//   id       a short key, stable across runs, unique within the bench
//   figure   what was measured, for people
//   value    the number; unit its unit ('ms', 'records/s', 'MB', '×', …)
//   goal     the goal as text ('≥ 500000 records/s'), or null when there is none
//   pass     true / false against the goal, null when there is no goal
//   text     optional: how the summary shows the value (e.g. with p90)
//   group    optional: a heading that groups figures in README tables ('startup')
//   details  optional: anything else (samples, data set size, commands, tool)
//
// Everything else a bench prints (progress) goes to stderr. A bench exits 0
// when it could measure (a missed goal is a result, not a crash) and non-zero
// when it could not.
export const PREFIX = 'BENCH_RESULT ';

/** Print one figure as a BENCH_RESULT line; returns the result object. */
export function report({ bench, id, figure, value, unit, goal = null, pass = null, text, group, details }) {
  if (typeof bench !== 'string' || typeof id !== 'string' || typeof figure !== 'string') throw new Error('report() needs bench, id and figure strings');
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`report(${id}): value must be a finite number, got ${value}`);
  const result = { bench, id, figure, value, unit: unit ?? '', goal, pass: goal === null ? null : Boolean(pass), ...(text ? { text } : {}), ...(group ? { group } : {}), ...(details ? { details } : {}) };
  process.stdout.write(PREFIX + JSON.stringify(result) + '\n');
  return result;
}

/** Parse a line printed by {@link report}; undefined for any other line. */
export function parseResultLine(line) {
  if (!line.startsWith(PREFIX)) return undefined;
  try {
    return JSON.parse(line.slice(PREFIX.length));
  } catch {
    return undefined;
  }
}

/** Progress for people, on stderr (keeps stdout for BENCH_RESULT lines). */
export function log(message) {
  process.stderr.write(`  ${message}\n`);
}

/** Format a number with thousands separators: 1234567 → "1,234,567". */
export function fmt(n, digits = 0) {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Markdown tables (one per bench and group) of a results.json document. */
export function markdownTables(doc, names) {
  const out = [];
  for (const [name, run] of Object.entries(doc.benches ?? {})) {
    if (names?.length && !names.some((n) => name.includes(n))) continue;
    const groups = new Map();
    for (const x of run.results) {
      const g = x.group ?? name;
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(x);
    }
    for (const [g, results] of groups) {
      out.push(`#### ${name}: ${g}`, '', '| figure | goal | measured | result |', '|---|---|---|---|');
      for (const x of results) out.push(`| ${x.figure} | ${x.goal ?? '—'} | ${x.text ?? `${x.value} ${x.unit}`} | ${x.pass === null ? '—' : x.pass ? 'pass' : '**MISS**'} |`);
      out.push('');
    }
    out.push(`Measured ${run.date.slice(0, 16).replace('T', ' ')} UTC at commit ${run.commit ?? '?'}, load average at start ${run.loadavgAtStart?.join(' ') ?? '?'}${run.scale !== 1 ? `, scale ${run.scale}` : ''}.`, '');
  }
  return out.join('\n');
}
