import path from 'node:path';
import type { Command } from './_cli.js';
import { initRepo } from '../lib/repo.js';

export const init: Command<{ dir?: string; node?: string }> = {
  command: 'init [dir]',
  describe: 'create a walnut data directory',
  usage: ['walnut init [<dir>] [--node <id>]'],
  builder: (y) =>
    y.positional('dir', { type: 'string', describe: 'the data directory (default: -C or the current directory)' }).option('node', { type: 'string', describe: "this machine's node id (default: from the host name)" }),
  handler(ctx, argv) {
    const dir = path.resolve(ctx.cwd, argv.dir ?? ctx.dirOption ?? '.');
    const { repo, existed, gitignore } = initRepo({ dir, node: argv.node, hostname: ctx.hostname });
    if (ctx.out.json) ctx.out.jsonDoc({ dir: repo.root, node: repo.node, reinitialized: existed, gitignore });
    else ctx.out.status(`${existed ? 'Reinitialized existing' : 'Initialized empty'} walnut data directory in ${repo.root} (node ${repo.node})`);
  },
};
