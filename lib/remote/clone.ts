/**
 * Clone: bootstrap a new machine from a remote. Steps, in order:
 *
 *  1. check the URL and that the remote exists, and that no machine already
 *     uses the new node id there (before anything is written);
 *  2. create the data directory and add the remote as `origin`;
 *  3. bootstrap from a published version (`bootstrap` hook: the activate
 *     issue fetches the remote's active version here, so the journal fetch
 *     then only has to bring what came after its checkpoint);
 *  4. fetch every journal segment (lib/remote/sync.ts `pull`).
 *
 * Compaction is the caller's last step. A clone that fails removes the
 * directory it created.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WalnutError } from '../errors.js';
import { initRepo, nodeIdFromHostname, type Repo } from '../repo.js';
import { checkNodeId } from '../../formats/usv.js';
import { addRemote, openStore, ownerKey, parseRemoteUrl, shortHash, type OpenStoreOptions, type RemoteSpec, type Store } from './index.js';
import { pull, type SyncOptions, type SyncResult } from './sync.js';

export interface CloneOptions {
  /** the remote URL: directory, file:// or s3://bucket/prefix */
  url: string;
  /** the new data directory (must not exist or be empty) */
  dir: string;
  /** node id of the new machine (default: from `hostname`) */
  node?: string;
  hostname: string;
  /** S3 endpoint and region, stored with the remote */
  endpoint?: string;
  region?: string;
  /** base of relative paths */
  cwd: string;
  storeOptions?: OpenStoreOptions;
  clock?: SyncOptions['clock'];
  onProgress?: SyncOptions['onProgress'];
  crashPoint?: SyncOptions['crashPoint'];
  lockStaleMs?: number;
  /** step 3: bring the data directory to a published version before the journals */
  bootstrap?: (args: { repo: Repo; store: Store; spec: RemoteSpec }) => Promise<void>;
}

/**
 * Clone a remote into a new data directory.
 *
 * @returns the new repository and what the journal fetch moved (divergences cannot occur in a new directory)
 * @throws WalnutError `EDESTEXISTS`, `EREMOTEMISSING`, `ENODEOWNER` (exit 4), store errors
 * @example const { repo } = await clone({ url: '/mnt/usb/walnut', dir: 'data', hostname: os.hostname(), cwd: process.cwd() })
 */
export async function clone(options: CloneOptions): Promise<{ repo: Repo; result: SyncResult }> {
  const { url, cwd, hostname, endpoint, region } = options;
  const dir = path.resolve(cwd, options.dir);
  const node = checkNodeId(options.node ?? nodeIdFromHostname(hostname));
  const parsed = parseRemoteUrl(url, { cwd });
  const spec: RemoteSpec = parsed.kind === 'dir' ? { ...parsed, name: 'origin' } : { ...parsed, name: 'origin', endpoint, region };
  if (fs.existsSync(dir) && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0)) {
    throw new WalnutError('EDESTEXISTS', `destination '${dir}' already exists and is not an empty directory`, { data: { dir }, hints: ['clone into a new directory'] });
  }
  await checkRemote(spec, node, options.storeOptions);
  const created = !fs.existsSync(dir);
  try {
    const { repo } = initRepo({ dir, node, hostname });
    addRemote({ repo, name: 'origin', url: spec.url, endpoint, region, cwd });
    if (options.bootstrap) {
      const store = await openStore(spec, options.storeOptions);
      try {
        await options.bootstrap({ repo, store, spec });
      } finally {
        await store.close();
      }
    }
    const result = await pull({ repo, remote: 'origin', storeOptions: options.storeOptions, clock: options.clock, onProgress: options.onProgress, crashPoint: options.crashPoint, lockStaleMs: options.lockStaleMs });
    return { repo, result };
  } catch (err) {
    if (created) fs.rmSync(dir, { recursive: true, force: true });
    else for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    throw err;
  }
}

/** The remote must exist, and the node id must be free there. */
async function checkRemote(spec: RemoteSpec, node: string, storeOptions?: OpenStoreOptions): Promise<void> {
  const store = await openStore(spec, storeOptions);
  try {
    if (!(await store.exists())) {
      throw new WalnutError('EREMOTEMISSING', `remote does not exist: '${spec.url}'`, { data: { url: spec.url }, hints: ['check the path or bucket name'] });
    }
    const owner = await store.getObject(ownerKey(node));
    const taken = owner !== undefined || (await store.listSegments()).some((s) => s.node === node);
    if (taken) {
      let machine: string | undefined;
      try {
        machine = owner ? (JSON.parse(owner.body.toString('utf8')) as { machine?: string }).machine : undefined;
      } catch {
        machine = undefined;
      }
      throw new WalnutError('ENODEOWNER', `node id '${node}' is already used at '${spec.url}' by another machine${machine ? ` (${shortHash(machine)})` : ''}`, {
        exit: 'divergence',
        data: { url: spec.url, node, owner: machine },
        hints: ['give this machine a node id of its own: walnut clone <url> <dir> --node <id>'],
      });
    }
  } finally {
    await store.close();
  }
}
