import type { Command } from './_cli.js';
import { WalnutError } from '../lib/errors.js';

export const fsck: Command<{ repair?: boolean }> = {
  command: 'fsck',
  describe: 'check journals, entity files, temporary files and locks; repair what is safe',
  usage: ['walnut fsck [--repair] [--json]'],
  builder: (y) => y.option('repair', { type: 'boolean', describe: 'fix what is safe; never deletes bytes' }),
  async handler(ctx, argv) {
    const { fsck: run } = await import('../lib/fsck.js');
    const stale = ctx.env.WALNUT_LEASE_STALE_MS ? Number(ctx.env.WALNUT_LEASE_STALE_MS) : undefined;
    const report = run({ repo: ctx.repo, repair: argv.repair, staleMs: stale });
    const out = ctx.out;
    if (out.json) out.jsonDoc(report);
    else {
      for (const p of report.problems) {
        const where = p.line !== undefined ? ` line ${p.line}` : p.offset !== undefined ? ` at byte ${p.offset}` : '';
        out.data(`${p.kind}: '${p.file}'${where}: ${p.message}${p.repaired ? ` [repaired: ${p.repaired}]` : ''}`);
      }
      out.status(`checked ${report.segments} segments, ${report.records} records, ${report.entities} entities: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`);
    }
    const left = report.problems.filter((p) => !p.repaired && p.kind !== 'index' && p.kind !== 'duplicate' && p.kind !== 'closed');
    if (left.length > 0) throw new WalnutError('EFSCK', `${left.length} problem${left.length === 1 ? '' : 's'} found${argv.repair ? ' that --repair cannot fix safely' : ''}`, { data: { problems: left.length }, hints: argv.repair ? [] : ["run 'walnut fsck --repair' to fix what is safe"] });
  },
};
