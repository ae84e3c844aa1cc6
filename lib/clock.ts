/**
 * The hybrid logical clock (HLC). A record's `timestamp` is the clock's time
 * part `ms`, its `causality` the logical counter (`hlc:<n>`). A node never
 * stamps a record earlier than its own previous record nor than any record it
 * has read; a record stamped further ahead of the wall clock than the bound
 * moves the clock no further than wall + bound.
 *
 * The state survives restarts twice over: in `.walnut/clock`, written after the
 * node reads others' records, and in the node's own newest segment, whose last
 * record is read at start. So a plain `set` never has to write the clock file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { causalityCounter, encodeCausality, timestampMs, type JournalRecord } from '../formats/usv.js';
import { writeFileAtomic, readFileOrUndefined } from './fsutil.js';
import { lastRecord, SEGMENT_NAME } from './journal.js';
import type { Repo } from './repo.js';

/** Default bound for records stamped ahead of the wall clock: 1 hour. */
export const DEFAULT_MAX_AHEAD_MS = 60 * 60 * 1000;

export interface ClockOptions {
  /** the wall clock, in ms since the epoch */
  now?: () => number;
  /** how far ahead of the wall clock a record may move this clock */
  maxAheadMs?: number;
}

/** A record that was stamped further ahead than the bound. */
export interface AheadReport {
  node: string;
  /** the furthest-ahead timestamp seen from this node */
  timestamp: string;
  aheadMs: number;
  /** how many records of this node were beyond the bound */
  records: number;
}

export class Clock {
  private ms = 0;
  private counter = 0;
  private saved = '';
  private isoMs = -1;
  private iso = '';
  private readonly now: () => number;
  private readonly maxAheadMs: number;
  /** Records seen that were stamped beyond the bound (reported by the caller). */
  readonly ahead: AheadReport[] = [];

  private constructor(private readonly file: string, { now = Date.now, maxAheadMs = DEFAULT_MAX_AHEAD_MS }: ClockOptions) {
    this.now = now;
    this.maxAheadMs = maxAheadMs;
  }

  /**
   * Load the clock of a repository: the greater of `.walnut/clock` and the
   * last record of the node's own newest segment.
   *
   * @example const clock = Clock.load(repo, { now: Date.now }); const { timestamp, causality } = clock.tick()
   */
  static load(repo: Repo, options: ClockOptions = {}): Clock {
    const clock = new Clock(path.join(repo.dir, 'clock'), options);
    const text = readFileOrUndefined(clock.file);
    if (text) {
      const [ms, counter] = text.trim().split(/\s+/).map(Number);
      if (Number.isSafeInteger(ms) && Number.isSafeInteger(counter)) {
        clock.ms = ms;
        clock.counter = counter;
        clock.saved = clock.state();
      }
    }
    const own = newestOwnSegment(repo);
    if (own) {
      const last = lastRecord(own);
      if (last) clock.raise(Date.parse(last.timestamp), causalityCounter(last.causality));
    }
    return clock;
  }

  private state(): string {
    return `${this.ms} ${this.counter}\n`;
  }

  private raise(ms: number, counter: number): void {
    if (ms > this.ms) {
      this.ms = ms;
      this.counter = counter;
    } else if (ms === this.ms && counter > this.counter) {
      this.counter = counter;
    }
  }

  /** The current time part, ms since the epoch. */
  get time(): number {
    return this.ms;
  }

  /**
   * Stamp a new local record: later than every record this node wrote or read.
   * @returns the record's `timestamp` and `causality` units
   */
  tick(): { timestamp: string; causality: string; ms: number; counter: number } {
    const wall = this.now();
    if (wall > this.ms) {
      this.ms = wall;
      this.counter = 0;
    } else {
      this.counter++;
    }
    if (this.isoMs !== this.ms) {
      this.isoMs = this.ms;
      this.iso = new Date(this.ms).toISOString();
    }
    return { timestamp: this.iso, causality: encodeCausality(this.counter), ms: this.ms, counter: this.counter };
  }

  /** The wall clock now (ms since the epoch), as this clock reads it. */
  wall(): number {
    return this.now();
  }

  /**
   * Stamp a local record at a given time rather than now: a hand edit noticed
   * after it was made is stamped when its file was saved. At or after the
   * clock's time this is `tick` at `ms` (the clock moves there, so later
   * records order after it); earlier, the record keeps `ms` with counter 0 and
   * the clock does not move back. Like `observe`, a time beyond the wall
   * clock + bound moves the clock only to the bound.
   * @param ms - when the record happened, ms since the epoch
   * @returns the record's `timestamp` and `causality` units
   * @example const { timestamp, causality } = clock.at(fs.statSync(file).mtimeMs)
   */
  at(ms: number): { timestamp: string; causality: string; ms: number; counter: number } {
    ms = Math.max(0, Math.floor(ms));
    let counter = 0;
    const limit = this.now() + this.maxAheadMs;
    if (ms > limit) {
      this.raise(limit, 0);
    } else if (ms > this.ms) {
      this.ms = ms;
      this.counter = 0;
    } else if (ms === this.ms) {
      counter = ++this.counter;
    }
    return { timestamp: new Date(ms).toISOString(), causality: encodeCausality(counter), ms, counter };
  }

  /**
   * Take a record this node has read into account. A record more than the
   * bound ahead of the wall clock is remembered in `ahead` and moves the
   * clock only up to wall + bound.
   */
  observe(record: Pick<JournalRecord, 'timestamp' | 'causality' | 'node'>): void {
    const ms = timestampMs(record.timestamp);
    if (Number.isNaN(ms)) return;
    const limit = this.now() + this.maxAheadMs;
    if (ms > limit) {
      const seen = this.ahead.find((a) => a.node === record.node);
      const aheadMs = ms - this.now();
      if (!seen) this.ahead.push({ node: record.node, timestamp: record.timestamp, aheadMs, records: 1 });
      else {
        seen.records++;
        if (aheadMs > seen.aheadMs) Object.assign(seen, { timestamp: record.timestamp, aheadMs });
      }
      this.raise(limit, 0);
      return;
    }
    this.raise(ms, causalityCounter(record.causality));
  }

  /** Persist the clock if it moved since it was loaded or saved. */
  save({ fsync = true }: { fsync?: boolean } = {}): void {
    const state = this.state();
    if (state === this.saved) return;
    writeFileAtomic(this.file, state, { fsync });
    this.saved = state;
  }
}

function newestOwnSegment(repo: Repo): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(repo.wal);
  } catch {
    return undefined;
  }
  let best: string | undefined;
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m && m[2] === repo.node && (!best || name > best)) best = name;
  }
  return best ? path.join(repo.wal, best) : undefined;
}
