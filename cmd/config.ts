import type { Command } from './_cli.js';
import { saveConfig } from '../lib/repo.js';
import { WalnutError, UsageError } from '../lib/errors.js';
import { checkNodeId } from '../formats/usv.js';

export const config: Command<{ action: string; key?: string; value?: string }> = {
  command: 'config <action> [key] [value]',
  describe: 'get and set options of the data directory',
  usage: ['walnut config get <key>', 'walnut config set <key> <value>', 'walnut config list'],
  builder: (y) => y.positional('action', { choices: ['get', 'set', 'list'] as const }).positional('key', { type: 'string' }).positional('value', { type: 'string' }),
  handler(ctx, argv) {
    const { repo, out } = ctx;
    if (argv.action === 'list') {
      const entries = repo.config.list();
      if (out.json) out.jsonDoc({ config: entries });
      else for (const e of entries) out.data(`${e.name}=${e.value}`);
      return;
    }
    if (!argv.key) throw new UsageError(`config ${argv.action} needs a <key>`);
    if (argv.action === 'get') {
      if (argv.value !== undefined) throw new UsageError('config get takes one <key>');
      const value = repo.config.get(argv.key);
      if (value === undefined) throw new WalnutError('ENOKEY', `config key '${argv.key}' is not set`, { data: { key: argv.key } });
      if (out.json) out.jsonDoc({ key: argv.key, value });
      else out.data(value);
      return;
    }
    if (argv.value === undefined) throw new UsageError('config set needs <key> <value>');
    if (argv.key.toLowerCase() === 'core.node') checkNodeId(argv.value);
    repo.config.set(argv.key, argv.value);
    saveConfig(repo);
    if (out.json) out.jsonDoc({ key: argv.key, value: argv.value });
  },
};
