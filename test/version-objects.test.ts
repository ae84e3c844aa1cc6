/**
 * Tree helpers of the version store (lib/version/objects.ts): patchTreeBytes, used
 * to build a version from the changes since the last, checked against sorting
 * the whole name set and against git's own order (via treeBytes).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { patchTreeBytes, sortNames, uniformTreeBytes, treeBytes, compareNames, MODE_FILE, MODE_TREE } from '../lib/version/objects.js';

const ALPHABET = ['a', 'b', '-', '.', '0', 'é', 'ﬀ', '\u{1f330}', 'z', '_'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function randomName(r: () => number): string {
  let n = '';
  const len = 1 + Math.floor(r() * 4);
  for (let i = 0; i < len; i++) n += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return n;
}

const oid = (r: () => number) => Math.floor(r() * 2 ** 32).toString(16).padStart(40, '0');

for (const mode of [MODE_TREE, MODE_FILE] as const) {
  test(`patchTreeBytes (${mode === MODE_TREE ? 'folders' : 'files'}) gives the tree a full sort gives, over random changes`, () => {
    const r = rng(mode === MODE_TREE ? 7 : 11);
    for (let round = 0; round < 300; round++) {
      const model = new Map<string, string>();
      for (let i = 0, n = Math.floor(r() * 40); i < n; i++) model.set(randomName(r), oid(r));
      const names = sortNames([...model.keys()], mode);
      const input = uniformTreeBytes(names, names.map((n) => model.get(n)!), mode);
      const copy = Buffer.from(input);
      const changes = new Map<string, string | undefined>();
      for (let i = 0, n = Math.floor(r() * 10); i < n; i++) {
        const existing = [...model.keys()];
        const name = r() < 0.5 && existing.length ? existing[Math.floor(r() * existing.length)] : randomName(r);
        changes.set(name, r() < 0.3 ? undefined : oid(r));
      }
      const before = new Map(model);
      const patched = patchTreeBytes(input, changes, mode);
      for (const [name, id] of changes) {
        if (id === undefined) model.delete(name);
        else model.set(name, id);
      }
      // git's tree of the new name set (treeBytes sorts by git's rule on its own)
      const expected = treeBytes([...model].map(([name, id]) => ({ mode, name, oid: id })));
      assert.ok(patched.bytes.equals(expected), `round ${round}: git's tree of the new names`);
      const added = [...model.keys()].filter((n) => !before.has(n)).length;
      const removed = [...before.keys()].filter((n) => !model.has(n)).length;
      const changed = [...model.keys()].filter((n) => before.has(n) && before.get(n) !== model.get(n)).length;
      assert.equal({ added: patched.added, removed: patched.removed, changed: patched.changed }, { added, removed, changed });
      assert.ok(input.equals(copy), 'the input is left as it was');
    }
  });
}

test('compareNames: a folder compares as name/', () => {
  assert.ok(compareNames('a-b', 'a', MODE_TREE) < 0, "'a-b/' < 'a/'");
  assert.ok(compareNames('a-b', 'a', MODE_FILE) > 0, "'a-b' > 'a'");
  assert.ok(compareNames('\u{1f330}', 'ﬀ', MODE_FILE) > 0, 'byte order, not UTF-16 order');
  assert.is(compareNames('x', 'x'), 0);
});

test('patchTreeBytes refuses a name changed twice', () => {
  assert.throws(() => patchTreeBytes(Buffer.alloc(0), [['a', '1'.repeat(40)], ['a', undefined]]), /twice/);
});

test.run();
