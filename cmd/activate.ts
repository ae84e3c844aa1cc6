import { UsageError } from '../lib/errors.js';
import type { Command } from './_cli.js';
import { crashHook } from './_lease.js';
import { openRemote } from './_version.js';
import type * as Activate from '../lib/version/activate.js';

export const activate: Command<{ id?: string; previous?: boolean; remote?: string }> = {
  command: 'activate [id]',
  describe: 'health-check a version and make it the active one, here or on a remote (compare-and-swap)',
  usage: ['walnut activate <version> [--remote <name>] [--json]', 'walnut activate --previous [--remote <name>] [--json]'],
  builder: (y) =>
    y
      .positional('id', { type: 'string', describe: 'a version id (or unique prefix)' })
      .option('previous', { type: 'boolean', describe: 'go back to the version that was active before (rollback)' })
      .option('remote', { type: 'string', requiresArg: true, describe: "activate on this remote: upload the version's objects, then switch its pointer" }),
  async handler(ctx, argv) {
    if (argv.previous && argv.id !== undefined) throw new UsageError('give either a <version> or --previous, not both');
    if (!argv.previous && argv.id === undefined) throw new UsageError('activate needs a <version> (see walnut version list) or --previous');
    const { activate: run }: typeof Activate = await import('../lib/version/activate.js');
    const { out, repo } = ctx;
    const remote = argv.remote !== undefined ? await openRemote(ctx, argv.remote) : undefined;
    try {
      const r = await run({ repo, version: argv.id, previous: argv.previous, remote, now: (ctx.clock.now ?? Date.now)(), crashPoint: crashHook(ctx) });
      if (out.json) {
        out.jsonDoc({ active: r.version, previous: r.previous, changed: r.changed, remote: r.remote ?? null, checked: r.health.checked, command: r.health.command ?? null, upload: r.upload ?? null, pruned: r.pruned });
        return;
      }
      out.data(r.version);
      const where = r.remote ? ` on ${r.remote}` : '';
      if (!r.changed) out.status(`version ${r.version.slice(0, 12)} is already active${where}`);
      else out.status(`activated ${r.version.slice(0, 12)}${where} (was ${r.previous ? r.previous.slice(0, 12) : 'none'}); ${r.health.checked} changed entit${r.health.checked === 1 ? 'y' : 'ies'} checked${r.health.command ? ', check command passed' : ''}${r.upload?.uploaded ? `, ${r.upload.objects} objects uploaded` : ''}${r.pruned.length ? `, ${r.pruned.length} old version${r.pruned.length === 1 ? '' : 's'} pruned` : ''}`);
    } finally {
      await remote?.store.close();
    }
  },
};
