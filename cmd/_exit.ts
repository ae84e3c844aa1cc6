/**
 * How a run ends: the exit status of a handler that returned, and the message
 * and exit status of one that threw. Shared by the yargs entry point
 * (cmd/_main.ts) and the fast path (cmd/_fast.ts), so both end a run alike.
 */
import type { Output } from './_cli.js';
import { EXIT, UsageError, WalnutError } from '../lib/errors.js';

/** The exit status of a handler that returned: 0, or 1 after warnings under WALNUT_STRICT_WARNINGS. */
export function okStatus(out: Output, env: NodeJS.ProcessEnv): number {
  return out.warnings > 0 && env.WALNUT_STRICT_WARNINGS ? EXIT.user : EXIT.ok;
}

/**
 * Print an error the way walnut(1) documents it and return its exit status:
 * a WalnutError with its hints (a usage error also with the usage lines), any
 * other error as an internal error (255; its stack with DEBUG).
 *
 * @param usage - the usage lines of the command that ran ('' when none was chosen)
 */
export function failStatus(err: unknown, out: Output, usage: string, env: NodeJS.ProcessEnv): number {
  if (err instanceof WalnutError) {
    out.error(err);
    if (err instanceof UsageError && !out.json) process.stderr.write((usage || 'usage: walnut <command> [<args>]; see walnut --help') + '\n');
    return EXIT[err.exit];
  }
  const e = err as Error;
  out.error(new WalnutError('EINTERNAL', `internal error: ${e?.message ?? String(err)}`, { exit: 'internal', hints: ['this is a bug in walnut; please report it with the command you ran'] }), true);
  if (env.DEBUG && e?.stack) process.stderr.write(e.stack + '\n');
  return EXIT.internal;
}

/** The usage lines of a command as printed after a usage error. */
export function usageText(lines: string[]): string {
  return lines.map((u) => `usage: ${u}`).join('\n');
}
