/**
 * fsck: check journals (torn tails, malformed records, duplicates), entity
 * files (frontmatter parses, agreement with the index), the checkpoint,
 * leftover temporary files and stale locks. `repair` fixes what is safe and
 * never deletes bytes: a torn tail is copied into `.walnut/quarantine/`
 * before the segment is cut back to its last whole record; leftover temporary
 * files are moved there too; stale locks are removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseEntity } from '../formats/entity.js';
import { FormatError } from './errors.js';
import { scanSegment, readHash } from './journal.js';
import { readCheckpoint, tailHash, EntityIndex } from './state.js';
import { allSegments, listEntityTargets, scanEntityFiles, ENTITY_FILE } from './view.js';
import { TEMP_SUFFIX, fsyncDir } from './fsutil.js';
import { DEFAULT_STALE_MS, lockAge } from './lease.js';
import type { Repo } from './repo.js';

export interface Problem {
  kind: 'journal' | 'closed' | 'duplicate' | 'entity' | 'index' | 'checkpoint' | 'temp' | 'lock';
  code: string;
  file: string;
  offset?: number;
  line?: number;
  message: string;
  /** what --repair did */
  repaired?: string;
}

export interface FsckReport {
  segments: number;
  records: number;
  entities: number;
  problems: Problem[];
}

/**
 * Check (and with `repair`, fix what is safe in) a data directory.
 * @example const { problems } = fsck({ repo, repair: false })
 */
export function fsck({ repo, repair = false, staleMs = DEFAULT_STALE_MS, now = Date.now() }: { repo: Repo; repair?: boolean; staleMs?: number; now?: number }): FsckReport {
  const report: FsckReport = { segments: 0, records: 0, entities: 0, problems: [] };
  const seen = new Map<string, string>();
  const cp = readCheckpoint(repo);
  for (const seg of allSegments(repo)) {
    report.segments++;
    const gossip = seg.rel.startsWith('.walnut');
    let torn: { offset: number } | undefined;
    scanSegment(
      seg.file,
      { rel: seg.rel },
      ({ record, start, text }) => {
        report.records++;
        if (gossip) return;
        const h = readHash(record, text);
        const first = seen.get(h);
        if (first) report.problems.push({ kind: 'duplicate', code: 'EDUPLICATE', file: seg.rel, offset: start, message: `record repeats one at ${first}` });
        else seen.set(h, `${seg.rel}:${start}`);
      },
      (i) => {
        if (i.code === 'ETORN') torn = { offset: i.offset };
        // a torn record closed by a later append (ECLOSED) is what a power cut leaves: noted, not a fault
        report.problems.push({ kind: i.code === 'ECLOSED' ? 'closed' : 'journal', code: i.code, file: i.file, offset: i.offset, message: i.message });
      },
    );
    if (torn && repair) {
      const problem = report.problems[report.problems.length - 1];
      const qdir = path.join(repo.dir, 'quarantine');
      fs.mkdirSync(qdir, { recursive: true });
      const qfile = path.join(qdir, `${seg.name}.${torn.offset}.torn`);
      const fd = fs.openSync(seg.file, 'r+');
      try {
        const size = fs.fstatSync(fd).size;
        const bytes = Buffer.alloc(size - torn.offset);
        fs.readSync(fd, bytes, 0, bytes.length, torn.offset);
        const q = fs.openSync(qfile, 'w');
        fs.writeSync(q, bytes);
        fs.fsyncSync(q);
        fs.closeSync(q);
        fsyncDir(qdir);
        fs.ftruncateSync(fd, torn.offset);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      problem.repaired = `torn tail moved to ${path.relative(repo.root, qfile)}; segment cut to ${torn.offset} bytes`;
    }
    const mark = cp.segments[seg.rel];
    if (mark && (mark.offset > fs.statSync(seg.file).size || tailHash(seg.file, mark.offset) !== mark.tail)) {
      report.problems.push({ kind: 'checkpoint', code: 'ECHANGED', file: seg.rel, offset: mark.offset, message: 'segment changed below its compaction checkpoint; the next compaction reads it again from the start' });
    }
  }
  const index = EntityIndex.load(repo, cp.generation);
  for (const target of listEntityTargets(repo)) {
    report.entities++;
    const rel = path.join(target, ENTITY_FILE);
    try {
      parseEntity(fs.readFileSync(path.join(repo.root, rel), 'utf8'), rel);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      report.problems.push({ kind: 'entity', code: err.code, file: rel, line: (err.data as { line?: number }).line, message: err.message });
    }
  }
  const files = scanEntityFiles(repo, index);
  for (const c of files.modified) report.problems.push({ kind: 'index', code: 'EEDITED', file: path.relative(repo.root, c.file), message: "edited by hand, not yet recorded (run 'walnut record')" });
  for (const t of files.missing) report.problems.push({ kind: 'index', code: 'EMISSING', file: path.join(t, ENTITY_FILE), message: "in the index but gone from disk (the next compaction records it as deleted)" });
  for (const file of findTemps(repo.root)) {
    const rel = path.relative(repo.root, file);
    const p: Problem = { kind: 'temp', code: 'ETEMP', file: rel, message: 'leftover temporary file of an interrupted write' };
    if (repair) {
      const to = path.join(repo.dir, 'quarantine', 'temp', rel.replace(/\//g, '__'));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.renameSync(file, to);
      p.repaired = `moved to ${path.relative(repo.root, to)}`;
    }
    report.problems.push(p);
  }
  const locks = path.join(repo.dir, 'locks');
  for (const name of fs.existsSync(locks) ? fs.readdirSync(locks) : []) {
    if (!name.endsWith('.lock')) continue;
    const age = lockAge(path.join(locks, name.slice(0, -5)));
    if (age === undefined || age < staleMs) continue;
    const p: Problem = { kind: 'lock', code: 'ESTALELOCK', file: path.relative(repo.root, path.join(locks, name)), message: `stale lock, not renewed for ${Math.round(age / 1000)} s` };
    if (repair) {
      fs.rmSync(path.join(locks, name), { recursive: true, force: true });
      p.repaired = 'removed';
    }
    report.problems.push(p);
  }
  void now;
  return report;
}

function findTemps(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < 3 && e.name !== 'quarantine' && e.name !== 'node_modules' && e.name !== '.git') walk(p, depth + 1);
      } else if (e.name.endsWith(TEMP_SUFFIX)) out.push(p);
    }
  };
  walk(root, 0);
  return out;
}
