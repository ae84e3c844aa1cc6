import type { Command } from './_cli.js';
import type * as View from '../lib/view.js';

export const status: Command<{ cluster?: boolean }> = {
  command: 'status',
  describe: 'show pending records and entity files edited by hand',
  usage: ['walnut status [--cluster] [--json]'],
  builder: (y) => y.option('cluster', { type: 'boolean', describe: 'show every node of the cluster (needs gossip)' }),
  async handler(ctx, argv) {
    if (argv.cluster) return (await import('./gossip.js')).printCluster(ctx);
    const { status: repoStatus }: typeof View = await import('../lib/view.js');
    const report = repoStatus({ repo: ctx.repo });
    const out = ctx.out;
    for (const i of report.issues) out.issue(i);
    if (out.json) {
      const { issues, ...rest } = report;
      out.jsonDoc({ ...rest, issues: issues.length });
      return;
    }
    const p = report.pending;
    out.data(`node ${report.node}`);
    if (p.total === 0) out.data('no pending records');
    else {
      const nodes = Object.entries(p.byNode).map(([n, c]) => `${n}: ${c}`).join(', ');
      out.data(`${p.total} pending record${p.total === 1 ? '' : 's'} (${nodes}) in ${Object.keys(p.byEntity).length} entities${p.system ? `, ${p.system} system` : ''}`);
      for (const [t, c] of Object.entries(p.byEntity)) out.data(`  ${t}  ${c}`);
    }
    const section = (title: string, items: string[]) => {
      if (items.length === 0) return;
      out.data(title);
      for (const t of items) out.data(`  ${t}`);
    };
    section('edited by hand (recorded by walnut record or compact --record):', report.modified);
    section('not yet seen by walnut (adopted by walnut record or compact --record):', report.untracked);
    section('missing (entity file removed):', report.missing);
  },
};
