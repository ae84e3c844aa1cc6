import type { Command } from './_cli.js';
import type * as Sync from '../lib/remote/sync.js';
import { runSync, syncJson, segmentsText } from './remote.js';

export const push: Command<{ remote?: string }> = {
  command: 'push [remote]',
  describe: "send this node's journal segments, and any the remote lacks, to a remote",
  usage: ['walnut push [<remote>] [--json]'],
  builder: (y) => y.positional('remote', { type: 'string', describe: 'the remote (default: origin)' }),
  async handler(ctx, argv) {
    const { push: run, divergenceError }: typeof Sync = await import('../lib/remote/sync.js');
    const { out } = ctx;
    const { result } = await runSync(ctx, run, argv.remote);
    if (out.json) out.jsonDoc(syncJson(result));
    else if (result.sent.segments > 0) out.status(`pushed ${segmentsText(result.sent)} to ${result.remote}`);
    if (result.divergences.length > 0) throw divergenceError(result);
  },
};
