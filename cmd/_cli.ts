/**
 * What every command handler gets: parsed options, output channels (stdout for
 * data, stderr for status, warnings and errors), the repository, and the
 * process-level settings lib must not read itself (clock, hostname, env).
 */
import os from 'node:os';
import pc from 'picocolors';
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { openRepo, type Repo } from '../lib/repo.js';
import { UsageError, FormatError, type WalnutError } from '../lib/errors.js';
import type { ClockOptions } from '../lib/clock.js';
import type { ReadIssue } from '../lib/journal.js';

export const JSON_VERSION = 1;

export interface GlobalArgs {
  C?: string;
  json?: boolean;
  quiet?: boolean;
  color?: boolean;
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly color: boolean;
  readonly tty: boolean;
  private readonly colorErr: boolean;
  private warned = 0;

  constructor({ json = false, quiet = false, color }: { json?: boolean; quiet?: boolean; color?: boolean }, env: NodeJS.ProcessEnv) {
    this.json = json;
    this.quiet = quiet;
    this.tty = Boolean(process.stderr.isTTY);
    this.color = !json && color !== false && !env.NO_COLOR && Boolean(process.stdout.isTTY);
    this.colorErr = !json && color !== false && !env.NO_COLOR && this.tty;
  }

  /** A line of data on stdout. */
  data(line: string): void {
    process.stdout.write(line + '\n');
  }

  /** One JSON document (or one NDJSON line) on stdout, with the format version. */
  jsonDoc(doc: object): void {
    process.stdout.write(JSON.stringify({ version: JSON_VERSION, ...doc }) + '\n');
  }

  /** Status on stderr, silenced by --quiet and --json. */
  status(line: string): void {
    if (!this.quiet && !this.json) process.stderr.write(line + '\n');
  }

  /** A warning on stderr (JSON under --json); never silenced. */
  warn(message: string, data?: object): void {
    this.warned++;
    if (this.json) process.stderr.write(JSON.stringify({ version: JSON_VERSION, warning: { message, ...data } }) + '\n');
    else process.stderr.write(`${this.paint('warning:', pc.yellow)} ${message}\n`);
  }

  /** Warn about a damaged piece of a journal. */
  issue(i: ReadIssue): void {
    this.warn(`'${i.file}' at byte ${i.offset}: ${i.message}`, { code: i.code, file: i.file, offset: i.offset });
  }

  /** Warn about an entity file that could not be read and was left untouched. */
  broken(b: { file: string; line?: number; message: string }): void {
    this.warn(`'${b.file}'${b.line ? ` line ${b.line}` : ''}: ${b.message}; left untouched`, { code: 'EBROKEN', file: b.file, line: b.line });
  }

  get warnings(): number {
    return this.warned;
  }

  /** Colour for stderr text. */
  paint(text: string, how: (s: string) => string): string {
    return this.colorErr ? how(text) : text;
  }

  /** Colour for stdout text. */
  c(how: (s: string) => string, text: string): string {
    return this.color ? how(text) : text;
  }

  /** Print an error (and hints) on stderr. */
  error(err: WalnutError | Error, stack = false): void {
    const e = err as WalnutError;
    if (this.json) {
      process.stderr.write(JSON.stringify({ version: JSON_VERSION, error: typeof e.toJSON === 'function' ? e.toJSON() : { code: 'EINTERNAL', message: err.message } }) + '\n');
      return;
    }
    process.stderr.write(`${this.paint('error:', pc.red)} ${placed(err)}\n`);
    for (const h of e.hints ?? []) process.stderr.write(`hint: ${h}\n`);
    if (stack && err.stack) process.stderr.write(err.stack + '\n');
  }
}

/** A message with the file and line (or byte offset) of a codec error in front, as STYLE.md asks. */
function placed(err: Error): string {
  if (!(err instanceof FormatError)) return err.message;
  const { file, line } = err.data as { file?: string; line?: number };
  if (!file || err.message.includes(`'${file}'`)) return err.message;
  const where = line !== undefined && err.message.includes(`line ${line}`) ? `'${file}'` : err.where;
  return `${where}: ${err.message}`;
}

/** Everything a handler needs. */
export class Context {
  private repoCache: Repo | undefined;

  constructor(
    readonly out: Output,
    readonly env: NodeJS.ProcessEnv,
    readonly cwd: string,
    readonly dirOption: string | undefined,
  ) {}

  /** The data directory (from -C, WALNUT_DIR, or walking up). */
  get repo(): Repo {
    this.repoCache ??= openRepo({ cwd: this.cwd, explicit: this.dirOption ?? this.env.WALNUT_DIR });
    return this.repoCache;
  }

  /** The wall clock: WALNUT_NOW (ISO or ms; for tests) or the system clock. */
  get clock(): ClockOptions {
    const fixed = this.env.WALNUT_NOW;
    let now = Date.now;
    if (fixed) {
      const ms = /^\d+$/.test(fixed) ? Number(fixed) : Date.parse(fixed);
      if (Number.isNaN(ms)) throw new UsageError(`WALNUT_NOW=${JSON.stringify(fixed)} is not a time`);
      now = () => ms;
    }
    const bound = this.repoCache?.config.get('core.maxclockahead');
    return { now, maxAheadMs: bound ? parseDuration(bound, 'core.maxClockAhead') : undefined };
  }

  get hostname(): string {
    return this.env.WALNUT_HOSTNAME ?? os.hostname();
  }
}

/** A registered command. */
export interface Command<A = Record<string, unknown>> {
  /** yargs command string, e.g. 'show <target>' */
  command: string;
  /** one line; also the man page NAME line */
  describe: string;
  /** the usage lines; the man page SYNOPSIS must list exactly these */
  usage: string[];
  builder?: (y: Argv) => Argv;
  handler: (ctx: Context, argv: ArgumentsCamelCase<A & GlobalArgs>) => Promise<void> | void;
}

/** Parse a duration: `500ms`, `30s`, `5m`, `2h`, `1d`, or plain milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(text)}`, ['use a number with a unit: 500ms, 30s, 5m, 2h, 1d']);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * unit);
}

/** Parse a time for --since: an ISO-8601 date/time or a duration ago ("2h"). */
export function parseSince(text: string, now: number): number {
  if (/^\d+(?:\.\d+)?(ms|s|m|h|d)$/.test(text)) return now - parseDuration(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`invalid time ${JSON.stringify(text)}`, ['use an ISO-8601 time (2026-11-21 or 2026-11-21T10:00:00Z) or a duration ago (2h, 3d)']);
  return ms;
}

/** Render a value for people: strings raw, everything else as JSON. */
export function showValue(value: unknown): string {
  return typeof value === 'string' && !/[\n\r\t]/.test(value) ? value : JSON.stringify(value);
}
