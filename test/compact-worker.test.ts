/**
 * A compaction of several chunks writes the entity files on the entity
 * writer's worker thread, in overlapping batches; a dry run writes nothing.
 * Over updates, hand edits, files that do not parse, deletions (in the first
 * chunk, and in later chunks whose files are read ahead on the writer's thread), a
 * re-creation after a deletion and a removed key, the real run must show the
 * same changes as the dry run, and every file must hold exactly what its
 * records say.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepo, openRepo, type Repo } from '../lib/repo.js';
import { compact } from '../lib/compact.js';
import { tmpDir } from './helpers.js';

const US = '\x1f';
const RS = '\x1e';
const N = 2600; // more than one chunk of 2 000: the worker thread writes

function line(ms: number, node: string, target: string, field: string, value: unknown): string {
  return [new Date(ms).toISOString(), node, target, field, JSON.stringify(value), 'hlc:0'].join(US) + RS + '\n';
}

const t0 = Date.parse('2026-11-20T08:00:00.000Z');
// in the first chunk (read when their turn comes) and in later ones (read ahead on the writer's thread)
const EDITED = [5, 2005];
const BROKEN = [7, 2401];
const DELETED = [9, 1501];
const slug = (i: number) => `companies/e-${String(i).padStart(4, '0')}`;
const file = (r: Repo, i: number) => path.join(r.root, slug(i), '_index.md');

test('a run of several chunks changes what its dry run shows, and every file holds its records', async () => {
  const r = initRepo({ dir: path.join(tmpDir(), 'data'), node: 'hub', hostname: 'x' }).repo;
  const first: string[] = [];
  for (let i = 0; i < N; i++) first.push(line(t0 + i, 'pi-01', slug(i), 'name', `Name ${i}`), line(t0 + i, 'pi-01', slug(i), 'city', `City ${i % 17}`), line(t0 + i, 'pi-01', slug(i), 'size', i));
  fs.writeFileSync(path.join(r.wal, '20261120_pi-01.usv'), first.join(''));
  const made = await compact({ repo: r });
  assert.is(made.created, N);

  // by hand: an edit, a file broken; in the first chunk and in later ones (their files read ahead)
  for (const i of EDITED) fs.writeFileSync(file(r, i), `---\nname: By hand ${i}\ncity: City ${i % 17}\nsize: ${i}\n---\nNotes by hand\n`);
  for (const i of BROKEN) fs.writeFileSync(file(r, i), '---\nname: [unclosed\n---\n');
  const t1 = t0 + 3_600_000;
  const second: string[] = [];
  for (let i = 0; i < N; i++) if (i % 3 !== 2) second.push(line(t1 + i, 'pi-02', slug(i), 'name', `Name2 ${i}`));
  for (const i of DELETED) second.push(line(t1 + 10_000, 'pi-02', slug(i), '@deleted', true));
  second.push(line(t1 + 10_000, 'pi-02', slug(11), '@deleted', true), line(t1 + 10_001, 'pi-02', slug(11), 'name', 'Eleven again'));
  second.push(line(t1 + 10_000, 'pi-02', slug(13), 'city', null));
  fs.writeFileSync(path.join(r.wal, '20261120_pi-02.usv'), second.join(''));

  // the same directory twice: a dry run, and a real run
  const copy = path.join(path.dirname(r.root), 'copy');
  fs.cpSync(r.root, copy, { recursive: true });
  const dry = await compact({ repo: openRepo({ cwd: copy }), dryRun: true, listLimit: 1e6 });
  const real = await compact({ repo: r, listLimit: 1e6 });
  for (const k of ['records', 'created', 'updated', 'deleted', 'recorded'] as const) assert.is(real[k], dry[k], k);
  assert.equal(real.changes, dry.changes);
  assert.equal(
    real.broken.map((b) => [b.target, b.line]),
    dry.broken.map((b) => [b.target, b.line]),
  );
  assert.equal(
    real.broken.map((b) => b.target),
    BROKEN.map(slug),
  );
  assert.is(real.deleted, DELETED.length);
  assert.ok(real.updated > N / 2, `${real.updated} updated`);

  for (let i = 0; i < N; i++) {
    const at = file(r, i);
    if (DELETED.includes(i)) {
      assert.not.ok(fs.existsSync(at), 'deleted');
      assert.ok(fs.existsSync(path.join(r.dir, 'trash', slug(i))), 'the deleted file is in the trash');
      continue;
    }
    const text = fs.readFileSync(at, 'utf8');
    if (BROKEN.includes(i)) assert.is(text, '---\nname: [unclosed\n---\n', 'the broken file is left as it is');
    else if (i === 11) assert.is(text, '---\nname: Eleven again\n---\n', 're-created: only what was written after the deletion');
    else if (EDITED.includes(i)) assert.is(text, `---\nname: By hand ${i}\ncity: City ${i % 17}\nsize: ${i}\n---\nNotes by hand\n`, 'the hand edit (recorded now: newer than the records) is kept');
    else {
      const name = i % 3 !== 2 ? `Name2 ${i}` : `Name ${i}`;
      const city = i === 13 ? '' : `city: City ${i % 17}\n`;
      assert.is(text, `---\nname: ${name}\n${city}size: ${i}\n---\n`, slug(i));
    }
  }
  // the dry run wrote nothing
  assert.is(fs.readFileSync(path.join(copy, slug(0), '_index.md'), 'utf8'), '---\nname: Name 0\ncity: City 0\nsize: 0\n---\n');
});

test.run();
