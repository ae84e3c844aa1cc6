/**
 * The repository: a data directory with a `.walnut/` folder, found like git
 * finds `.git`, and its configuration (git-config syntax in `.walnut/config`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigFile } from '../formats/config.js';
import { checkNodeId } from '../formats/usv.js';
import { WalnutError, FormatError } from './errors.js';
import { writeFileAtomic, readFileOrUndefined } from './fsutil.js';

export const WALNUT_DIR = '.walnut';
export const WAL_DIR = 'wal';

/** An opened data directory. */
export interface Repo {
  /** the data directory */
  root: string;
  /** its `.walnut/` folder */
  dir: string;
  /** `wal/` */
  wal: string;
  config: ConfigFile;
  /** this machine's node id (`core.node`) */
  node: string;
}

/**
 * Find and open the data directory: `dir` itself when given explicitly
 * (from -C or WALNUT_DIR), otherwise `cwd` and its parents.
 *
 * @param options.cwd - where to start walking up
 * @param options.explicit - a directory that must itself be the data directory
 * @returns the repository
 * @throws WalnutError `ENOREPO` when there is none; FormatError `ECONFIG`
 * @example const repo = openRepo({ cwd: process.cwd() })
 */
export function openRepo({ cwd, explicit }: { cwd: string; explicit?: string }): Repo {
  if (explicit) {
    const root = path.resolve(cwd, explicit);
    if (!fs.existsSync(path.join(root, WALNUT_DIR))) {
      throw new WalnutError('ENOREPO', `'${root}' is not a walnut data directory (no ${WALNUT_DIR}/ folder)`, { data: { dir: root }, hints: [`run 'walnut init ${explicit}' to make it one`] });
    }
    return loadRepo(root);
  }
  let dir = path.resolve(cwd);
  for (;;) {
    if (fs.existsSync(path.join(dir, WALNUT_DIR, 'config'))) return loadRepo(dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new WalnutError('ENOREPO', `not a walnut data directory (or any of the parent directories): '${path.resolve(cwd)}'`, {
    data: { dir: path.resolve(cwd) },
    hints: ["run 'walnut init' to make this directory one, or pass -C <dir> or set WALNUT_DIR"],
  });
}

function loadRepo(root: string): Repo {
  const dir = path.join(root, WALNUT_DIR);
  const file = path.join(dir, 'config');
  const text = readFileOrUndefined(file);
  if (text === undefined) throw new WalnutError('ENOREPO', `'${file}' is missing`, { hints: [`run 'walnut init ${root}' again to recreate it`] });
  const config = ConfigFile.parse(text, path.relative(root, file) || file);
  const node = config.get('core.node');
  if (!node) throw new FormatError('ECONFIG', `'${file}' has no core.node`, { file }, ["set it with 'walnut config set core.node <id>'"]);
  checkNodeId(node);
  return { root, dir, wal: path.join(root, WAL_DIR), config, node };
}

/** Save the repository's config atomically. */
export function saveConfig(repo: Repo): void {
  writeFileAtomic(path.join(repo.dir, 'config'), repo.config.toString());
}

/** Turn a host name into a node id: lower case, other characters to dashes. */
export function nodeIdFromHostname(hostname: string): string {
  const id = hostname.toLowerCase().split('.')[0].replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return id || 'node';
}

/**
 * Create a data directory (or re-initialise one: keeps its config).
 *
 * @param options.dir - the data directory (created if missing)
 * @param options.node - node id; default from `hostname`
 * @param options.hostname - this machine's host name
 * @returns the repository and whether it existed
 * @throws FormatError `ENODEID` for an invalid node id
 * @example initRepo({ dir: '/data', hostname: os.hostname() })
 */
export function initRepo({ dir, node, hostname }: { dir: string; node?: string; hostname: string }): { repo: Repo; existed: boolean; gitignore: boolean } {
  const root = path.resolve(dir);
  const id = checkNodeId(node ?? nodeIdFromHostname(hostname));
  const wdir = path.join(root, WALNUT_DIR);
  const configFile = path.join(wdir, 'config');
  const existed = fs.existsSync(configFile);
  fs.mkdirSync(path.join(root, WAL_DIR), { recursive: true });
  fs.mkdirSync(wdir, { recursive: true });
  if (!existed) {
    const config = ConfigFile.parse('');
    config.set('core.node', id);
    writeFileAtomic(configFile, config.toString());
  } else if (node) {
    const repo = loadRepo(root);
    if (repo.node !== id) {
      throw new WalnutError('EINITNODE', `'${root}' is already a data directory of node '${repo.node}'`, { data: { node: repo.node }, hints: ["change the node id with 'walnut config set core.node <id>' if you mean it"] });
    }
  }
  const gitignore = ignoreInGit(root);
  return { repo: loadRepo(root), existed, gitignore };
}

/** When the data directory is inside a git work tree, keep `.walnut/` out of git. */
function ignoreInGit(root: string): boolean {
  let dir = root;
  for (;;) {
    if (fs.existsSync(path.join(dir, '.git'))) break;
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
  const file = path.join(root, '.gitignore');
  const text = readFileOrUndefined(file) ?? '';
  if (text.split(/\r?\n/).some((l) => l.trim() === `/${WALNUT_DIR}/` || l.trim() === `${WALNUT_DIR}/` || l.trim() === WALNUT_DIR || l.trim() === `/${WALNUT_DIR}`)) return true;
  writeFileAtomic(file, text + (text === '' || text.endsWith('\n') ? '' : '\n') + `/${WALNUT_DIR}/\n`);
  return true;
}

/** Resolve a path in `.walnut/`, creating the folder it is in. */
export function statePath(repo: Repo, ...parts: string[]): string {
  const file = path.join(repo.dir, ...parts);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return file;
}

/** A config value as a number, with a default and a clear error. */
export function configNumber(repo: Repo, key: string, fallback: number): number {
  const raw = repo.config.get(key);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new FormatError('ECONFIG', `config ${key} = ${JSON.stringify(raw)} is not a number`, { key });
  return n;
}
