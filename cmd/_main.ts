/**
 * The entry point: parse arguments, run one command, map errors to exit codes.
 * Only this file (and the fast path, cmd/_fast.ts, through the same
 * cmd/_exit.ts) decides the exit status (see walnut(1) EXIT STATUS).
 */
import yargs from 'yargs';
import { commands } from './index.js';
import { Context, Output, type GlobalArgs } from './_cli.js';
import { UsageError } from '../lib/errors.js';
import { failStatus, okStatus, usageText } from './_exit.js';
import { VERSION } from './_fast.js';

/** Run walnut with arguments; resolves to the exit status. */
export async function main(args: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number> {
  let out = new Output({ json: args.includes('--json'), quiet: args.includes('-q') || args.includes('--quiet') }, env);
  let usage = '';
  try {
    const y = yargs(args)
      .scriptName('walnut')
      .usage('usage: walnut [-C <dir>] [--json] [-q] [--no-color] <command> [<args>]')
      .option('C', { type: 'string', requiresArg: true, describe: 'run as if walnut was started in <dir> (the data directory)' })
      .option('json', { type: 'boolean', describe: 'print one JSON document (or NDJSON) instead of text' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'no status messages' })
      .option('color', { type: 'boolean', describe: 'colour on a terminal (--no-color: never)' })
      .strict()
      .demandCommand(1, 'walnut needs a command')
      .recommendCommands()
      .version(VERSION)
      .help()
      .locale('en')
      .wrap(Math.min(100, process.stdout.columns || 80))
      .fail((msg, err) => {
        if (err) throw err;
        const suggestion = /^Did you mean (.*)\?$/.exec(msg ?? '');
        if (suggestion) {
          const word = args.find((a) => !a.startsWith('-')) ?? '';
          throw new UsageError(`unknown command '${word}'`, [`did you mean '${suggestion[1]}'?`]);
        }
        throw new UsageError((msg ?? 'bad arguments').replace(/^Unknown argument/, 'unknown argument').replace(/^Unknown arguments/, 'unknown arguments'));
      });
    for (const c of commands) {
      y.command(
        c.command,
        c.describe,
        (b) => {
          // yargs renders the whole help text before every command runs, to
          // have it at hand after an async failure; walnut never shows help
          // then, and the rendering costs ~10 ms of start-up (cron, hooks).
          (b as unknown as { getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } } }).getInternalMethods().getUsageInstance().cacheHelpMessage = () => {};
          usage = usageText(c.usage);
          return (c.builder ? c.builder(b) : b).usage(usage);
        },
        // Not async: yargs renders (and caches) the whole help text whenever a
        // handler returns a promise, which costs ~10 ms of start-up.
        (argv) => {
          const g = argv as unknown as GlobalArgs;
          out = new Output({ json: g.json, quiet: g.quiet, color: g.color }, env);
          return c.handler(new Context(out, env, cwd, g.C), argv as never) as never;
        },
      );
    }
    await y.parseAsync();
    return okStatus(out, env);
  } catch (err) {
    return failStatus(err, out, usage, env);
  }
}

// A closed pipe (`walnut log | head`) ends the output, not the process with a stack.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const code = await main(process.argv.slice(2));
process.exitCode = code;
