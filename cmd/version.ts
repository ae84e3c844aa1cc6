import { UsageError } from '../lib/errors.js';
import type { Command } from './_cli.js';
import { leaseOptions, crashHook } from './_lease.js';
import type * as Create from '../lib/version/create.js';
import type * as Store from '../lib/version/store.js';
import type * as Activate from '../lib/version/activate.js';
import type * as Diff from '../lib/version/diff.js';
import type * as CompactLib from '../lib/compact.js';

export const version: Command<{ action: string; a?: string; b?: string; wait?: string; keep?: number; full?: boolean; record?: boolean }> = {
  command: 'version <action> [a] [b]',
  describe: 'create, list, show, compare and prune versions: content-addressed snapshots of the entity files',
  usage: [
    'walnut version create [--record] [--full] [--wait <duration>] [--json]',
    'walnut version list [--json]',
    'walnut version show <version> [--json]',
    'walnut version diff <version> <version> [--json]',
    'walnut version prune [--keep <n>] [--json]',
  ],
  builder: (y) =>
    y
      .positional('action', { choices: ['create', 'list', 'show', 'diff', 'prune'] as const })
      .positional('a', { type: 'string', describe: 'a version id (or unique prefix)' })
      .positional('b', { type: 'string', describe: 'a second version id, for diff' })
      .option('wait', { type: 'string', requiresArg: true, describe: 'wait this long for a running compaction (default 60s)' })
      .option('record', { type: 'boolean', describe: 'create: record hand edits of every entity file first (as compact --record); by default only the files the compaction changes are checked' })
      .option('full', { type: 'boolean', describe: 'create: build from every entity, not only those changed since the version built last' })
      .option('keep', { type: 'number', requiresArg: true, describe: 'prune: how many versions to keep in all (default: config versions.keep, 10)' }),
  async handler(ctx, argv) {
    const { out, repo } = ctx;
    const args = [argv.a, argv.b].filter((x) => x !== undefined);
    const want = { create: 0, list: 0, show: 1, diff: 2, prune: 0 }[argv.action as 'create'];
    if (args.length !== want) throw new UsageError(`version ${argv.action} takes ${want === 0 ? 'no arguments' : want === 1 ? 'one <version>' : 'two versions'}`);
    if (argv.action === 'create') {
      const { compact }: typeof CompactLib = await import('../lib/compact.js');
      const { createVersion }: typeof Create = await import('../lib/version/create.js');
      const lease = leaseOptions(ctx, argv.wait);
      // a version is the compacted state at its checkpoint: hand edits are in it once recorded (with --record: all of them now)
      const compacted = await compact({ repo, clock: ctx.clock, ...lease, record: argv.record === true, crashPoint: crashHook(ctx) });
      for (const i of compacted.issues) out.issue(i);
      for (const b of compacted.broken) out.broken(b);
      const r = await createVersion({ repo, ...lease, full: argv.full, crashPoint: crashHook(ctx), now: (ctx.clock.now ?? Date.now)() });
      if (out.json) out.jsonDoc({ ...r.version, new: r.created, objects: r.objects, changed: r.changed, built: r.built, compacted: compacted.records, recorded: compacted.recorded });
      else {
        out.data(r.version.id);
        out.status(r.created ? `created version ${r.version.id.slice(0, 12)}: ${r.version.entities} entities, ${r.changed} changed, ${r.objects} new objects` : `nothing changed since version ${r.version.id.slice(0, 12)}`);
      }
      return;
    }
    const { VersionStore }: typeof Store = await import('../lib/version/store.js');
    const { readLocalActive }: typeof Activate = await import('../lib/version/activate.js');
    if (argv.action === 'prune') {
      const { pruneVersions }: typeof Activate = await import('../lib/version/activate.js');
      if (argv.keep !== undefined && !(Number.isInteger(argv.keep) && argv.keep >= 1)) throw new UsageError(`--keep must be a whole number of at least 1, not ${argv.keep}`);
      const r = await pruneVersions({ repo, keep: argv.keep, wait: leaseOptions(ctx, argv.wait).wait });
      if (out.json) out.jsonDoc(r);
      else out.status(`pruned ${r.removed.length} version${r.removed.length === 1 ? '' : 's'}, kept ${r.kept.length}${r.repacked ? `; ${r.repacked} pack${r.repacked === 1 ? '' : 's'} repacked into one (${r.objects} objects)` : ''}`);
      return;
    }
    const store = await VersionStore.open(repo);
    try {
      const active = readLocalActive(repo).pointer;
      if (argv.action === 'list') {
        const list = store.list().map((v) => ({ ...v, active: v.id === active?.version, previous: v.id === active?.previous }));
        if (out.json) out.jsonDoc({ versions: list });
        else for (const v of list) out.data(`${v.active ? '*' : ' '} ${v.id}  ${v.created}  ${v.node}  ${v.entities} entit${v.entities === 1 ? 'y' : 'ies'}${v.previous ? '  (previous)' : ''}`);
        return;
      }
      if (argv.action === 'show') {
        const id = store.resolve(argv.a!);
        const v = store.info(id);
        const listing = store.listing(id);
        const collections = Object.fromEntries([...listing].map(([c, s]) => [c, s.length]));
        if (out.json) out.jsonDoc({ ...v, active: id === active?.version, collections });
        else {
          out.data(`version    ${v.id}${id === active?.version ? '  (active)' : ''}`);
          out.data(`created    ${v.created} by ${v.node}`);
          out.data(`entities   ${v.entities} (${Object.entries(collections).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'})`);
          out.data(`generation ${v.generation}`);
          out.data(`parent     ${v.parent ?? '(none)'}`);
          out.data(`tree       ${v.tree}`);
        }
        return;
      }
      const { diffVersions }: typeof Diff = await import('../lib/version/diff.js');
      const a = store.resolve(argv.a!);
      const b = store.resolve(argv.b!);
      const diffs = diffVersions(store, a, b);
      if (out.json) out.jsonDoc({ from: a, to: b, entities: diffs });
      else {
        const mark = { added: 'A', changed: 'M', removed: 'D' } as const;
        for (const d of diffs) out.data(`${mark[d.action]} ${d.target}${d.error ? `  (${d.error})` : d.action === 'changed' ? `  ${d.fields.join(', ')}` : ''}`);
      }
    } finally {
      store.close();
    }
  },
};
