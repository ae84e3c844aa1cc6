/**
 * Errors: one class per kind, each with a stable string `code`, structured
 * `data`, optional `hints` and a `toJSON()`. The CLI entry point maps the
 * `exit` of an error to the process exit status (see walnut(1) EXIT STATUS).
 */

/** Exit statuses, documented in every man page. */
export const EXIT = {
  ok: 0,
  user: 1,
  usage: 2,
  lockHeld: 3,
  divergence: 4,
  internal: 255,
} as const;

export type ExitKind = keyof typeof EXIT;

export class WalnutError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;
  readonly hints: string[];
  readonly exit: ExitKind;

  constructor(code: string, message: string, { data = {}, hints = [], exit = 'user' }: { data?: Record<string, unknown>; hints?: string[]; exit?: ExitKind } = {}) {
    super(message);
    this.name = 'WalnutError';
    this.code = code;
    this.data = data;
    this.hints = hints;
    this.exit = exit;
  }

  toJSON() {
    return { code: this.code, message: this.message, data: this.data, hints: this.hints };
  }
}

/** Bad arguments: exit 2 with the usage line. */
export class UsageError extends WalnutError {
  constructor(message: string, hints: string[] = []) {
    super('EUSAGE', message, { exit: 'usage', hints });
    this.name = 'UsageError';
  }
}

/** A lease (lock) held by someone else: its own exit status so cron can tell. */
export class LockHeldError extends WalnutError {
  constructor(message: string, data: Record<string, unknown> = {}, hints: string[] = []) {
    super('ELOCKED', message, { exit: 'lockHeld', data, hints });
    this.name = 'LockHeldError';
  }
}

/**
 * A codec fault: what is wrong, the expected shape, a short quote of the input,
 * and the file and byte offset when known.
 */
export class FormatError extends WalnutError {
  constructor(code: string, message: string, data: { file?: string; offset?: number; line?: number; [k: string]: unknown } = {}, hints: string[] = []) {
    super(code, message, { data, hints });
    this.name = 'FormatError';
  }

  /** "'wal/x.usv' at byte 12: " style prefix, empty when the place is unknown. */
  get where(): string {
    const { file, offset, line } = this.data as { file?: string; offset?: number; line?: number };
    const parts: string[] = [];
    if (file) parts.push(`'${file}'`);
    if (line !== undefined) parts.push(`line ${line}`);
    else if (offset !== undefined) parts.push(`at byte ${offset}`);
    return parts.join(' ');
  }
}

/** Quote a short piece of input for an error message. */
export function quote(text: string, max = 40): string {
  const cut = text.length > max ? text.slice(0, max) + '…' : text;
  return JSON.stringify(cut);
}
