/**
 * The command table: every command walnut has, in one place (like git's
 * commands[]). A command module exports one `Command`; add it here, give it a
 * man page `man/walnut-<name>.1` and a test file `test/cli-<name>.test.ts`.
 */
import type { Command } from './_cli.js';
import { init } from './init.js';
import { set } from './set.js';
import { unset } from './unset.js';
import { show } from './show.js';
import { log } from './log.js';
import { status } from './status.js';
import { config } from './config.js';
import { compact } from './compact.js';
import { record } from './record.js';
import { hooks } from './hooks.js';
import { fsck } from './fsck.js';
import { remote } from './remote.js';
import { push } from './push.js';
import { pull } from './pull.js';
import { clone } from './clone.js';
import { gossip } from './gossip.js';
import { watch } from './watch.js';
import { version } from './version.js';
import { activate } from './activate.js';
import { active } from './active.js';
import { checkout } from './checkout.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: Array<Command<any>> = [init, set, unset, show, log, status, config, compact, record, hooks, fsck, remote, push, pull, clone, gossip, watch, version, activate, active, checkout];

/** The command's name: the first word of its yargs command string. */
export function commandName(c: Command<unknown>): string {
  return c.command.split(' ')[0];
}
