import { UsageError } from '../lib/errors.js';
import { parseDuration, type Command } from './_cli.js';
import { openRemote, pointerText, stopSignal } from './_version.js';
import type * as Activate from '../lib/version/activate.js';

export const active: Command<{ remote?: string; wait?: boolean; watch?: boolean; interval?: string }> = {
  command: 'active',
  describe: 'print the active version, here or on a remote; wait for or watch its changes',
  usage: ['walnut active [--remote <name>] [--wait | --watch] [--interval <duration>] [--json]'],
  builder: (y) =>
    y
      .option('remote', { type: 'string', requiresArg: true, describe: "read this remote's active pointer" })
      .option('wait', { type: 'boolean', describe: 'block until the active version changes, then print it' })
      .option('watch', { type: 'boolean', describe: 'print the active version and then every change (until interrupted)' })
      .option('interval', { type: 'string', requiresArg: true, describe: 'how often to poll (default 500ms)' }),
  async handler(ctx, argv) {
    if (argv.wait && argv.watch) throw new UsageError('give --wait or --watch, not both');
    const interval = parseDuration(argv.interval ?? '500ms', '--interval');
    if (interval < 10) throw new UsageError('--interval must be at least 10ms');
    const { readActive, watchActive }: typeof Activate = await import('../lib/version/activate.js');
    const { out, repo } = ctx;
    const remote = argv.remote !== undefined ? await openRemote(ctx, argv.remote) : undefined;
    const place: Activate.PointerPlace = remote ? { kind: 'remote', ...remote } : { kind: 'local', repo };
    const show = (p: Awaited<ReturnType<typeof readActive>>['pointer']) => {
      if (out.json) out.jsonDoc({ remote: remote?.name ?? null, active: p ?? null });
      else out.data(p ? pointerText(p) : '(no active version)');
    };
    try {
      if (!argv.wait && !argv.watch) {
        const { pointer } = await readActive(place);
        show(pointer);
        if (!pointer) out.status(`no version is active${remote ? ` on ${remote.name}` : ''}: walnut activate <version>${remote ? ` --remote ${remote.name}` : ''}`);
        return;
      }
      const stop = stopSignal();
      try {
        await watchActive(place, {
          interval,
          signal: stop.signal,
          initial: Boolean(argv.watch),
          onChange: (p) => {
            show(p);
            return argv.watch ? true : false;
          },
          onError: (err) => out.warn(`reading the active pointer failed: ${err.message}; trying again`, { code: 'EPOLL' }),
        });
      } finally {
        stop.done();
      }
    } finally {
      await remote?.store.close();
    }
  },
};
