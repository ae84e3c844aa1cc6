// The journal reader alone, for the reading benchmark: scan every segment of
// <dir>/wal with dist/lib/journal.js scanSegment and print one JSON line with
// the count of records and issues, bytes, and the wall and CPU time the scan
// took (Node start-up and module loading excluded). Run as a child so its peak RSS is its own.
//   node bench/lib/scan-journals.mjs <data-dir>
import path from 'node:path';
import { ROOT } from './walnut.mjs';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/lib/scan-journals.mjs <data-dir>\n');
  process.exit(2);
}
const { listSegmentsIn, scanSegment } = await import(path.join(ROOT, 'dist/lib/journal.js'));
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
let records = 0;
let issues = 0;
let bytes = 0;
let fields = 0;
const segments = listSegmentsIn(path.join(dir, 'wal'), dir);
for (const seg of segments) {
  const { size } = scanSegment(
    seg.file,
    { rel: seg.rel },
    ({ record }) => {
      records++;
      fields += record.field.length; // touch the parsed record
    },
    () => issues++,
  );
  bytes += size;
}
const scanMs = Number(process.hrtime.bigint() - t0) / 1e6;
const cpu = process.cpuUsage(c0);
const cpuMs = (cpu.user + cpu.system) / 1000;
console.log(JSON.stringify({ segments: segments.length, records, issues, bytes, scanMs, cpuMs, fields }));
