import pc from 'picocolors';
import { showValue, type Command } from './_cli.js';
import type * as View from '../lib/view.js';

export const show: Command<{ target: string }> = {
  command: 'show <target>',
  describe: 'show the merged view of an entity: its file plus records not yet compacted',
  usage: ['walnut show <target> [--json]'],
  builder: (y) => y.positional('target', { type: 'string', describe: '<collection>/<slug>' }),
  async handler(ctx, argv) {
    const { showEntity }: typeof View = await import('../lib/view.js');
    const view = showEntity({ repo: ctx.repo, target: argv.target, onIssue: (i) => ctx.out.issue(i) });
    const out = ctx.out;
    if (out.json) {
      const fields = Object.fromEntries(Object.entries(view.fields).map(([k, f]) => [k, f.value]));
      const sources = Object.fromEntries(Object.entries(view.fields).map(([k, f]) => [k, { source: f.source, node: f.node, timestamp: f.timestamp }]));
      out.jsonDoc({ target: view.target, file: view.file, exists: view.exists, deleted: view.deleted, fields, sources, body: view.body, pending: view.pending });
      return;
    }
    out.data(out.c(pc.bold, view.target) + (view.deleted ? ' (deleted)' : ''));
    for (const [k, f] of Object.entries(view.fields)) {
      const mark = f.source === 'journal' ? out.c(pc.yellow, `  # pending: ${f.node} ${f.timestamp}`) : '';
      out.data(`${k}: ${showValue(f.value)}${mark}`);
    }
    if (view.body.trim() !== '') {
      out.data('---');
      out.data(view.body.replace(/\n$/, ''));
    }
    if (view.pending > 0) out.status(`${view.pending} record${view.pending === 1 ? '' : 's'} not yet compacted`);
  },
};
