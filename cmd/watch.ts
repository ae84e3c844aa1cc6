import { showValue, JSON_VERSION, type Command } from './_cli.js';
import type * as Changes from '../lib/gossip/changes.js';

export const watch: Command = {
  command: 'watch',
  describe: 'print changes to records as they arrive: local writes, gossip, pull',
  usage: ['walnut watch [--json]'],
  async handler(ctx) {
    const { watchChanges }: typeof Changes = await import('../lib/gossip/changes.js');
    const out = ctx.out;
    const repo = ctx.repo;
    const ac = new AbortController();
    const stop = () => ac.abort();
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const s of signals) process.on(s, stop);
    try {
      await watchChanges({
        repo,
        signal: ac.signal,
        onReady: () => {
          if (out.json) {
            if (!out.quiet) process.stderr.write(JSON.stringify({ version: JSON_VERSION, status: 'watching', dirs: ['wal', '.walnut/gossip'] }) + '\n');
          } else out.status("watching 'wal/' and '.walnut/gossip/' (Ctrl-C to stop)");
        },
        onChange: (c) => {
          if (out.json) out.jsonDoc({ target: c.target, field: c.field, value: c.value, origin: c.origin, via: c.via, timestamp: c.timestamp, segment: c.segment, hash: c.hash });
          else out.data(`${c.timestamp}  ${c.via.padEnd(6)}  ${c.origin}  ${c.target}  ${c.value === null ? `${c.field} (deleted)` : `${c.field} = ${showValue(c.value)}`}`);
        },
        onIssue: (i) => out.issue(i),
      });
    } finally {
      for (const s of signals) process.off(s, stop);
    }
  },
};
