/**
 * Versions through an S3 remote on the real server (Ceph RGW,
 * test/s3-server.ts) shared by several data directories (scenarios in
 * test/version-remote-cases.ts): what depends on the store — polling the
 * pointer with GET, If-Match / If-None-Match swaps under a race, uploads,
 * listing and deleting for pruning. Clone, pull, tampered packs and hostile
 * trees go through the same store calls and run on the directory remote
 * only (version-remote-dir.test.ts), to keep the runtime down.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { s3Server, closeClients } from './s3-server.js';
import * as cases from './version-remote-cases.js';

const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    console.log(`  s3 ${name}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
};

test.before(() => {
  s3Server();
});

test('s3: follow, active --wait, an upload losing the swap, 3k + 7 objects, rollback, health check, crash points', async () => {
  const r = await timed('lifecycle', async () => cases.lifecycle(await cases.s3Kit(), { pull: false }));
  console.log(`  s3: current followed the pointer after ${r.lags.join(', ')} ms (100 ms polls); uploads ${r.uploads.map((u) => `k=${u.k}: ${u.objects}`).join(', ')} objects`);
  assert.ok(Math.max(...r.lags) < 1500, `B switched within a few 100 ms polls of each pointer change: ${r.lags} ms`);
});

test('s3: activation race, 3 machines x 3 rounds: exactly one wins (If-Match), the others exit 3 with EACTIVECHANGED', async () => {
  await timed('race', async () => cases.activationRace(await cases.s3Kit()));
});

test('s3: pruning with versions.keep 3 keeps the active, previous and newest manifests and every pack they need', async () => {
  await timed('prune', async () => cases.remotePruning(await cases.s3Kit()));
});

test.after(() => {
  cases.stopChildren();
  closeClients();
});

test.run();
