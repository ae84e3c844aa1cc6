import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from './_cli.js';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Node's flags for walnut, as the launcher line of bin/walnut.js gives them (test/cli-hooks.test.ts checks that they agree). */
const NODE_FLAGS = ['--v8-pool-size=1'];

export const hooks: Command<{ action: 'install' | 'uninstall' | 'status' }> = {
  command: 'hooks <action>',
  describe: 'install or remove the git hooks that run walnut after merges and before commits',
  usage: ['walnut hooks install | uninstall | status'],
  builder: (y) => y.positional('action', { choices: ['install', 'uninstall', 'status'] as const }),
  async handler(ctx, argv) {
    const lib = await import('../lib/hooks.js');
    const repo = ctx.repo;
    let states;
    if (argv.action === 'install') {
      const templates = fileURLToPath(new URL('../../hooks/', import.meta.url));
      // node by its absolute path: a hook may run with a PATH that has no node (cron, a GUI client)
      const walnut = [process.execPath, ...NODE_FLAGS, fs.realpathSync(process.argv[1])].map(quote).join(' ');
      states = await lib.installHooks({ repo, templates, walnut });
    } else if (argv.action === 'uninstall') {
      states = await lib.uninstallHooks({ repo });
    } else {
      states = await lib.hooksStatus({ repo });
    }
    if (ctx.out.json) {
      ctx.out.jsonDoc({ hooks: states });
      return;
    }
    if (argv.action === 'status') {
      for (const h of states) ctx.out.data(`${h.name}: ${h.installed ? 'installed' : h.foreign ? 'not walnut\'s' : 'not installed'}${h.chained ? ' (chains the previous hook)' : ''}  ${h.file}`);
    } else {
      ctx.out.status(`${argv.action === 'install' ? 'installed' : 'removed'} ${states.map((h) => h.name).join(', ')}${states.some((h) => h.chained) ? ' (existing hooks are chained)' : ''}`);
    }
  },
};
