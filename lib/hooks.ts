/**
 * Git integration: hook scripts (hooks/) installed into the data directory's
 * git repository, honouring core.hooksPath, chaining any hook already there,
 * idempotent; and the bases a git merge replaced (see `restoreGitBases`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { WalnutError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import { blobId } from './hash.js';
import { EntityIndex, readCheckpoint } from './state.js';
import { ENTITY_FILE } from './view.js';
import type { Repo } from './repo.js';

export const HOOK_NAMES = ['post-merge', 'post-checkout', 'post-rewrite', 'pre-commit'] as const;
const MARK = '# walnut-hook:';
const CHAINED = '.walnut-chained';

export interface HookState {
  name: string;
  file: string;
  installed: boolean;
  /** a hook that was there before and is called first */
  chained: boolean;
  /** a hook that is not walnut's (before install) */
  foreign: boolean;
}

async function gitOf(dir: string) {
  const { simpleGit } = await import('simple-git');
  const git = simpleGit({ baseDir: dir });
  if (!(await git.checkIsRepo())) {
    throw new WalnutError('ENOGIT', `'${dir}' is not inside a git work tree`, { hints: ["run 'git init' first, or use walnut without hooks (cron: walnut compact)"] });
  }
  return git;
}

/** The git hooks folder (core.hooksPath honoured) and the data directory relative to the work tree top. */
export async function hooksLocation(repo: Repo): Promise<{ hooksDir: string; top: string; dataDir: string }> {
  const git = await gitOf(repo.root);
  const top = (await git.revparse(['--show-toplevel'])).trim();
  const hooksRaw = (await git.raw(['rev-parse', '--git-path', 'hooks'])).trim();
  const hooksDir = path.resolve(repo.root, hooksRaw);
  const dataDir = path.relative(fs.realpathSync(top), fs.realpathSync(repo.root)) || '.';
  return { hooksDir, top, dataDir };
}

/** State of each walnut hook. */
export async function hooksStatus({ repo }: { repo: Repo }): Promise<HookState[]> {
  const { hooksDir } = await hooksLocation(repo);
  return HOOK_NAMES.map((name) => {
    const file = path.join(hooksDir, name);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    const installed = text?.includes(MARK) ?? false;
    return { name, file, installed, chained: fs.existsSync(file + CHAINED), foreign: text !== undefined && !installed };
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Install the hooks. An existing hook that is not walnut's is kept as
 * `<name>.walnut-chained` and called first; installing twice changes nothing.
 *
 * @param options.templates - the hooks/ folder with the scripts
 * @param options.walnut - the command that runs walnut (absolute), e.g. `'/usr/bin/node' '/opt/walnut/bin/walnut.js'`
 * @returns the hooks' state after installing
 */
export async function installHooks({ repo, templates, walnut }: { repo: Repo; templates: string; walnut: string }): Promise<HookState[]> {
  const { hooksDir, dataDir } = await hooksLocation(repo);
  fs.mkdirSync(hooksDir, { recursive: true });
  for (const name of HOOK_NAMES) {
    const file = path.join(hooksDir, name);
    const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (existing !== undefined && !existing.includes(MARK)) {
      if (fs.existsSync(file + CHAINED)) throw new WalnutError('EHOOK', `cannot chain '${file}': '${file}${CHAINED}' exists already`, { hints: ['move one of them away, then install again'] });
      fs.renameSync(file, file + CHAINED);
    }
    const chain = fs.existsSync(file + CHAINED) ? `${shellQuote(file + CHAINED)} "$@" || exit $?` : '';
    const text = fs
      .readFileSync(path.join(templates, name), 'utf8')
      .replace('@CHAIN@', chain)
      .replaceAll('@WALNUT@', walnut)
      .replaceAll('@DATADIR@', shellQuote(dataDir));
    writeFileAtomic(file, text, { mode: 0o755 });
    fs.chmodSync(file, 0o755);
  }
  return hooksStatus({ repo });
}

/** Remove walnut's hooks, putting chained hooks back. */
export async function uninstallHooks({ repo }: { repo: Repo }): Promise<HookState[]> {
  const { hooksDir } = await hooksLocation(repo);
  for (const name of HOOK_NAMES) {
    const file = path.join(hooksDir, name);
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(MARK)) fs.rmSync(file);
    if (fs.existsSync(file + CHAINED) && !fs.existsSync(file)) fs.renameSync(file + CHAINED, file);
  }
  return hooksStatus({ repo });
}

/**
 * After git replaced entity files (merge, checkout, rebase), put back this
 * node's own version of each file git changed — when the index knows that
 * version, i.e. it was not edited by hand — so compaction merges the journal
 * records the same git operation brought, by the total order, instead of
 * taking another machine's compacted file for a hand edit.
 *
 * @param options.rev - the revision before the git operation (ORIG_HEAD, or the previous HEAD)
 * @returns the targets whose own version was put back
 */
export async function restoreGitBases({ repo, rev }: { repo: Repo; rev: string }): Promise<string[]> {
  const git = await gitOf(repo.root);
  const { top, dataDir } = await hooksLocation(repo);
  const prefix = dataDir === '.' ? '' : dataDir + '/';
  let names: string;
  try {
    // git runs in the data directory: '.' limits the diff to it; names come relative to the top
    names = await git.raw(['diff', '--name-only', '-z', rev, 'HEAD', '--', '.']);
  } catch {
    return []; // an unknown revision (first checkout): nothing to put back
  }
  const cp = readCheckpoint(repo);
  const index = EntityIndex.load(repo, cp.generation);
  const restored: string[] = [];
  for (const name of names.split('\0')) {
    if (!name.startsWith(prefix) || !name.endsWith('/' + ENTITY_FILE)) continue;
    const parts = name.slice(prefix.length).split('/');
    if (parts.length !== 3) continue;
    const target = `${parts[0]}/${parts[1]}`;
    let base: string;
    try {
      base = await git.show([`${rev}:${name}`]);
    } catch {
      continue; // new in this operation: adopted, then the journal applies
    }
    const known = index.knownBlobs(target);
    const file = path.join(top, name);
    const now = fs.existsSync(file) ? blobId(fs.readFileSync(file)) : '';
    if (known.includes(blobId(base)) && !known.includes(now)) {
      writeFileAtomic(file, base);
      restored.push(target);
    }
  }
  return restored;
}
