/**
 * Versions through a directory remote shared by several data directories
 * (scenarios in test/version-remote-cases.ts): follow, discovery, uploads in
 * isolation, rollback, the health check, crash points, pull, the activation
 * race, clone from a version, pruning, hostile input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import * as cases from './version-remote-cases.js';

const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    console.log(`  dir ${name}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
};

test('dir: follow, active --wait, an upload losing the swap, 3k + 7 objects, rollback, health check, crash points, pull then offline', async () => {
  const kit = await cases.dirKit();
  const r = await timed('lifecycle', () =>
    cases.lifecycle(kit, {
      offline: () => {
        fs.renameSync(kit.url, kit.url + '.away');
        return () => fs.renameSync(kit.url + '.away', kit.url);
      },
    }),
  );
  console.log(`  dir: current followed the pointer after ${r.lags.join(', ')} ms (100 ms polls); uploads ${r.uploads.map((u) => `k=${u.k}: ${u.objects}`).join(', ')} objects`);
  assert.ok(Math.max(...r.lags) < 1500, `B switched within a few 100 ms polls of each pointer change: ${r.lags} ms`);
});

test('dir: activation race, 3 machines x 3 rounds: exactly one wins, the others exit 3 with EACTIVECHANGED', async () => {
  await timed('race', async () => cases.activationRace(await cases.dirKit()));
});

test('dir: clone starts from the active version, replays later records, LWW holds across the version boundary', async () => {
  await timed('clone', async () => cases.cloneFromVersion(await cases.dirKit()));
});

test('dir: pruning with versions.keep 3 keeps the active, previous and newest manifests and every pack they need', async () => {
  await timed('prune', async () => cases.remotePruning(await cases.dirKit()));
});

test('dir: a tampered pack is refused with EBADPACK, nothing installed', async () => {
  await timed('tampered', async () => cases.tamperedPack(await cases.dirKit()));
});

test('dir: a manifest of two packs, the second damaged: EBADPACK and nothing installed', async () => {
  await timed('tampered second pack', async () => cases.tamperedSecondPack(await cases.dirKit()));
});

test('dir: a pack with right checksums whose objects do not match their ids is refused with EBADPACK', async () => {
  await timed('forged objects', async () => cases.forgedObjects(await cases.dirKit()));
});

test('dir: a tree with a `..` entity name is refused with EBADTREE by checkout, --follow and clone', async () => {
  await timed('hostile', async () => cases.hostileTree(await cases.dirKit()));
});

test.after(cases.stopChildren);

test.run();
