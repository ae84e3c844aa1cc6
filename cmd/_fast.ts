/**
 * The fast path of the entry point, for the commands cron jobs and scrapers
 * run most: `walnut set`, `walnut unset` and `walnut --version` here, and
 * `walnut version create`, `walnut activate` and `walnut compact` through
 * cmd/_publish.ts (the same parser). Loading yargs (and every command module) costs about two
 * thirds of walnut's start-up, so a plain invocation that the small parser
 * below reads fully and unambiguously runs the same handler (cmd/set.ts,
 * cmd/unset.ts, cmd/version.ts, cmd/activate.ts, cmd/compact.ts) without it.
 * Anything else — help, an option it does not know, a repeated option, an
 * argument that starts with '-' (but a plain negative number), a wrong number
 * of arguments — is not decided here: `parseFast` returns undefined and
 * bin/walnut.js runs the yargs entry point (cmd/_main.ts), so messages and
 * exit statuses stay those of yargs. Errors the handlers throw end the run through cmd/_exit.ts, as in
 * cmd/_main.ts. dist/bundle/fast.mjs bundles this file alone.
 */
import { Context, Output, type Command, type GlobalArgs } from './_cli.js';
import { set } from './set.js';
import { unset } from './unset.js';
import { failStatus, okStatus, usageText } from './_exit.js';

declare const __WALNUT_VERSION__: string | undefined;
/** walnut's version (package.json's, set by the bundler). */
export const VERSION = typeof __WALNUT_VERSION__ === 'string' ? __WALNUT_VERSION__ : '0.0.0-dev';

/** A run the fast path can do: the command and its arguments as yargs would give them. */
export type FastRun =
  | { command: 'version' }
  | { command: 'set' | 'unset'; argv: GlobalArgs & { target?: string; field?: string; value?: string; jsonValue?: boolean; string?: boolean; batch?: boolean } }
  | { command: 'activate'; argv: GlobalArgs & { id?: string; previous?: boolean; remote?: string } }
  | { command: 'version create'; argv: GlobalArgs & { action: 'create'; record?: boolean; full?: boolean; wait?: string } }
  | { command: 'compact'; argv: GlobalArgs & { wait?: string; record?: boolean; dryRun?: boolean; gitBase?: string } };

/** The arguments of one run, keyed as yargs keys them. */
type ArgvOf<C extends FastRun['command']> = Extract<FastRun, { command: C; argv: unknown }>['argv'];

// Options the fast path reads, with the key and value yargs gives them.
const GLOBAL_FLAGS: Record<string, [keyof GlobalArgs, boolean]> = {
  '--json': ['json', true],
  '-q': ['quiet', true],
  '--quiet': ['quiet', true],
  '--color': ['color', true],
  '--no-color': ['color', false],
};
// The options of each command (by its first word) that the fast path reads: a flag, or an option with a value.
const LOCAL_FLAGS: Record<string, Record<string, string>> = {
  set: { '--json-value': 'jsonValue', '--string': 'string', '--batch': 'batch' },
  activate: { '--previous': 'previous' },
  version: { '--record': 'record', '--full': 'full' },
  compact: { '--record': 'record', '--dry-run': 'dryRun' },
};
const LOCAL_VALUES: Record<string, Record<string, string>> = {
  activate: { '--remote': 'remote' },
  version: { '--wait': 'wait' },
  compact: { '--wait': 'wait', '--git-base': 'gitBase' },
};

// A negative number is an argument for yargs too (`set sensors/t1 celsius -3.5`);
// other forms (-1e3, -5.) it reads as options.
const NEGATIVE = /^-(\d+(\.\d+)?|\.\d+)$/;

/**
 * Read argv when it is a plain `set`, `set --batch`, `unset`, `--version`,
 * `version create`, `activate` or `compact`.
 *
 * @param args - the arguments after `walnut`
 * @returns what to run, or undefined when yargs must decide (the full entry point runs then)
 * @example parseFast(['set', 'companies/acme', 'name', 'Acme', '--json']) // { command: 'set', argv: { … } }
 */
export function parseFast(args: readonly string[]): FastRun | undefined {
  if (args.length === 1 && args[0] === '--version') return { command: 'version' };
  const seen = new Set<string>();
  const positionals: string[] = [];
  const argv: Record<string, string | boolean | undefined> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('-') || NEGATIVE.test(a)) {
      positionals.push(a);
      continue;
    }
    if (seen.has(a)) return undefined;
    seen.add(a);
    const valued = a === '-C' ? 'C' : LOCAL_VALUES[positionals[0]]?.[a];
    if (valued) {
      // yargs would read a following option, or 'true' / 'false', its own way
      const value = args[++i];
      if (value === undefined || value === '' || value.startsWith('-') || value === 'true' || value === 'false') return undefined;
      argv[valued] = value;
      continue;
    }
    const global = GLOBAL_FLAGS[a];
    const local = LOCAL_FLAGS[positionals[0]]?.[a];
    if (!global && !local) return undefined;
    // yargs takes a following 'true' or 'false' as the value of a boolean option
    const next = args[i + 1];
    if (next === 'true' || next === 'false') return undefined;
    if (global) argv[global[0]] = global[1];
    else argv[local!] = true;
  }
  if ((seen.has('--color') && seen.has('--no-color')) || (seen.has('-q') && seen.has('--quiet'))) return undefined;
  const [command, ...rest] = positionals;
  if (command === 'set') {
    if (argv.jsonValue && argv.string) return undefined;
    if (argv.batch ? rest.length !== 0 : rest.length !== 3) return undefined;
    [argv.target, argv.field, argv.value] = rest;
    return { command, argv: argv as ArgvOf<'set'> };
  }
  if (command === 'unset') {
    if (rest.length !== 2) return undefined;
    [argv.target, argv.field] = rest;
    return { command, argv: argv as ArgvOf<'unset'> };
  }
  if (command === 'activate') {
    // an id that looks like a negative number is an option to yargs' eyes
    if (argv.previous ? rest.length !== 0 : rest.length !== 1 || rest[0].startsWith('-')) return undefined;
    if (!argv.previous) argv.id = rest[0];
    return { command, argv: argv as ArgvOf<'activate'> };
  }
  if (command === 'version') {
    if (rest.length !== 1 || rest[0] !== 'create') return undefined;
    return { command: 'version create', argv: { ...argv, action: 'create' } as ArgvOf<'version create'> };
  }
  if (command === 'compact') {
    if (rest.length !== 0) return undefined;
    return { command, argv: argv as ArgvOf<'compact'> };
  }
  return undefined;
}

/**
 * Run walnut through the fast path when `parseFast` accepts the arguments
 * as `set`, `unset` or `--version` (`version create` and `activate` run
 * through cmd/_publish.ts).
 *
 * @returns the exit status, or undefined when the full entry point must run (nothing was done then)
 */
export async function runFast(args: readonly string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number | undefined> {
  const run = parseFast(args);
  if (!run) return undefined;
  if (run.command === 'version') {
    process.stdout.write(VERSION + '\n');
    return 0;
  }
  if (run.command === 'set' || run.command === 'unset') return runHandler(run.command === 'set' ? set : unset, run.argv, env, cwd);
  return undefined;
}

/**
 * Run a command's handler with the arguments `parseFast` read, as
 * cmd/_main.ts runs it after yargs: the same output, exit status and usage
 * text on a usage error.
 *
 * @returns the exit status
 */
export async function runHandler(command: Command<never>, argv: GlobalArgs, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  // A closed pipe (`walnut set … --json | head`) ends the output, not the process with a stack.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const out = new Output({ json: argv.json, quiet: argv.quiet, color: argv.color }, env);
  try {
    await command.handler(new Context(out, env, cwd, argv.C), argv as never);
    return okStatus(out, env);
  } catch (err) {
    return failStatus(err, out, usageText(command.usage), env);
  }
}
