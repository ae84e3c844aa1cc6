/**
 * The fast path of `walnut version create` and `walnut activate`, the
 * commands a hub's cron job runs to publish, and of `walnut compact`, which
 * cron and the git hooks run (dist/bundle/publish.mjs):
 * argv that cmd/_fast.ts's parser reads fully runs the handler without yargs
 * and the other commands; anything else returns undefined and bin/walnut.js
 * runs the full entry point (cmd/_main.ts).
 */
import { parseFast, runHandler } from './_fast.js';
import { activate } from './activate.js';
import { version } from './version.js';
import { compact } from './compact.js';
import type { Command } from './_cli.js';

/**
 * Run `version create`, `activate` or `compact` when `parseFast` reads the arguments.
 *
 * @returns the exit status, or undefined when the full entry point must run (nothing was done then)
 * @example await runPublish(['activate', '4c8d', '--json'])
 */
export async function runPublish(args: readonly string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number | undefined> {
  const run = parseFast(args);
  if (run?.command === 'activate') return runHandler(activate as Command<never>, run.argv, env, cwd);
  if (run?.command === 'version create') return runHandler(version as Command<never>, run.argv, env, cwd);
  if (run?.command === 'compact') return runHandler(compact as Command<never>, run.argv, env, cwd);
  return undefined;
}
