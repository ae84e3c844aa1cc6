/**
 * walnut show, end to end: the merged view of an entity (file + records not
 * yet compacted), damaged journals, bad targets, broken files.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten, recordLine, damageCases, damageWarning, DAMAGE_SEGMENT, DAMAGE_T1, DAMAGE_T2 } from './cli-util.js';

const T = '2026-11-21T10:00:00.000Z';
const at = (time = T) => ({ WALNUT_NOW: time });

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function writeEntity(dir: string, target: string, text: string): void {
  fs.mkdirSync(path.join(dir, target), { recursive: true });
  fs.writeFileSync(path.join(dir, target, '_index.md'), text);
}

test('show: file keys, overridden by pending records; text on stdout, the pending count on stderr', () => {
  const dir = initRepoDir('laptop');
  writeEntity(dir, 'companies/acme', '---\n# legal data\nname: "Acme"   # short name\ncity: Berlin\nphone: "+49 30 1"\n---\nMet at the fair.\n\nTwice.\n');
  run(['set', 'companies/acme', 'city', 'Paris'], { cwd: dir, env: at() });
  run(['unset', 'companies/acme', 'phone'], { cwd: dir, env: at() });
  run(['set', 'companies/acme', 'employees', '42'], { cwd: dir, env: at() });
  nothingWritten(path.dirname(dir), () => {
    expect(run(['show', 'companies/acme'], { cwd: dir }), {
      code: 0,
      stdout: `companies/acme\nname: Acme\ncity: Paris  # pending: laptop ${T}\nemployees: 42  # pending: laptop ${T}\n---\nMet at the fair.\n\nTwice.\n`,
      stderr: '3 records not yet compacted\n',
    });
  }, 'show');
});

test('show --json: one document with fields, sources, body, pending', () => {
  const dir = initRepoDir('laptop');
  writeEntity(dir, 'companies/acme', '---\nname: Acme\ntags: [a, b]\n---\nBody\n');
  run(['set', 'companies/acme', 'employees', '42'], { cwd: dir, env: at() });
  const r = run(['show', 'companies/acme', '--json'], { cwd: dir });
  expect(r, { code: 0, stderr: '' });
  assert.is(r.stdout.split('\n').length, 2, 'one line');
  assert.equal(JSON.parse(r.stdout), {
    version: 1,
    target: 'companies/acme',
    file: 'companies/acme/_index.md',
    exists: true,
    deleted: false,
    fields: { name: 'Acme', tags: ['a', 'b'], employees: 42 },
    sources: { name: { source: 'file' }, tags: { source: 'file' }, employees: { source: 'journal', node: 'laptop', timestamp: T } },
    body: 'Body\n',
    pending: 1,
  });
});

test('show: an entity known only from the journal; @body and @deleted', () => {
  const dir = initRepoDir('laptop');
  run(['set', 'people/jane', 'name', 'Jane'], { cwd: dir, env: at() });
  run(['set', 'people/jane', '@body', 'Likes tea.\n'], { cwd: dir, env: at() });
  expect(run(['show', 'people/jane'], { cwd: dir }), { code: 0, stdout: `people/jane\nname: Jane  # pending: laptop ${T}\n---\nLikes tea.\n`, stderr: '2 records not yet compacted\n' });
  run(['set', 'people/jane', '@deleted', 'true'], { cwd: dir, env: at() });
  expect(run(['show', 'people/jane'], { cwd: dir }), { code: 0, stdout: `people/jane (deleted)\nname: Jane  # pending: laptop ${T}\n---\nLikes tea.\n`, stderr: '3 records not yet compacted\n' });
  const doc = JSON.parse(run(['show', 'people/jane', '--json'], { cwd: dir }).stdout);
  assert.is(doc.deleted, true);
  assert.is(doc.exists, false);
  run(['set', 'people/jane', '@deleted', 'false'], { cwd: dir, env: at() });
  assert.is(JSON.parse(run(['show', 'people/jane', '--json'], { cwd: dir }).stdout).deleted, false);
});

test('show: the greatest record wins: later time, then counter, then node id', () => {
  const dir = initRepoDir('hub');
  fs.writeFileSync(
    path.join(dir, 'wal', '20261121_pi-01.usv'),
    recordLine(['2026-11-21T10:00:00.000Z', 'pi-01', 'a/b', 'f', '"pi-01 late"', 'hlc:0']) + recordLine(['2026-11-21T09:00:00.000Z', 'pi-01', 'a/b', 'g', '"pi-01 c5"', 'hlc:5']) + recordLine(['2026-11-21T08:00:00.000Z', 'pi-01', 'a/b', 'h', '"pi-01"', 'hlc:3']),
  );
  fs.writeFileSync(
    path.join(dir, 'wal', '20261121_pi-02.usv'),
    recordLine(['2026-11-21T09:59:59.999Z', 'pi-02', 'a/b', 'f', '"pi-02 early"', 'hlc:9']) + recordLine(['2026-11-21T09:00:00.000Z', 'pi-02', 'a/b', 'g', '"pi-02 c4"', 'hlc:4']) + recordLine(['2026-11-21T08:00:00.000Z', 'pi-02', 'a/b', 'h', '"pi-02"', 'hlc:3']),
  );
  const doc = JSON.parse(run(['show', 'a/b', '--json'], { cwd: dir }).stdout);
  assert.equal(doc.fields, { f: 'pi-01 late', g: 'pi-01 c5', h: 'pi-02' });
});

test('show reads the records received by gossip (.walnut/gossip/) too', () => {
  const dir = initRepoDir('hub');
  fs.mkdirSync(path.join(dir, '.walnut', 'gossip'));
  fs.writeFileSync(path.join(dir, '.walnut', 'gossip', '20261121_pi-09.usv'), recordLine([T, 'pi-09', 'a/b', 'f', '1', 'hlc:0']));
  expect(run(['show', 'a/b'], { cwd: dir }), { code: 0, stdout: `a/b\nf: 1  # pending: pi-09 ${T}\n`, stderr: '1 record not yet compacted\n' });
});

test('show -q: no status line; show of an entity with only a file prints no status', () => {
  const dir = initRepoDir('laptop');
  writeEntity(dir, 'a/b', '---\nx: 1\n---\n');
  expect(run(['show', 'a/b'], { cwd: dir }), { code: 0, stdout: 'a/b\nx: 1\n', stderr: '' });
  run(['set', 'a/b', 'y', '2'], { cwd: dir, env: at() });
  expect(run(['show', 'a/b', '-q'], { cwd: dir }), { code: 0, stdout: `a/b\nx: 1\ny: 2  # pending: laptop ${T}\n`, stderr: '' });
});

test('show of an unknown entity: exit 1 with a hint', () => {
  const dir = initRepoDir('laptop');
  expect(run(['show', 'companies/nope'], { cwd: dir }), { code: 1, stdout: '', stderr: "error: no entity 'companies/nope': no file and no journal records\nhint: create it with 'walnut set companies/nope <field> <value>'\n" });
  const j = run(['show', 'companies/nope', '--json'], { cwd: dir });
  expect(j, { code: 1, stdout: '' });
  assert.equal(JSON.parse(j.stderr), { version: 1, error: { code: 'ENOENTITY', message: "no entity 'companies/nope': no file and no journal records", data: { target: 'companies/nope' }, hints: ["create it with 'walnut set companies/nope <field> <value>'"] } });
});

for (const target of ['../x', 'companies/..', 'a/b/c', 'companies/', '/acme', 'a//b', 'companies/ac\x01me', 'companies/.git', 'a']) {
  test(`show with a bad target ${JSON.stringify(target)}: exit 1, nothing read outside, nothing written`, () => {
    const dir = initRepoDir('laptop');
    nothingWritten(path.dirname(dir), () => {
      expect(run(['show', target], { cwd: dir }), { code: 1, stdout: '', stderr: new RegExp(`^error: invalid target ${escapeRe(JSON.stringify(target))}: .*\nhint: .*\n$`) });
    }, target);
  });
}

for (const c of damageCases()) {
  test(`show with a journal holding ${c.name}: a warning with file and byte offset, the good records, exit 0`, () => {
    const dir = initRepoDir('hub');
    fs.writeFileSync(path.join(dir, DAMAGE_SEGMENT), c.bytes);
    nothingWritten(path.dirname(dir), () => {
      expect(run(['show', 'companies/acme'], { cwd: dir }), {
        code: 0,
        stdout: `companies/acme\nname: Acme  # pending: pi-02 ${DAMAGE_T1}\ncity: Berlin  # pending: pi-02 ${DAMAGE_T2}\n`,
        stderr: damageWarning(c) + '2 records not yet compacted\n',
      });
      const j = run(['show', 'companies/acme', '--json'], { cwd: dir });
      expect(j, { code: 0, stderr: JSON.stringify({ version: 1, warning: { message: damageWarning(c).slice('warning: '.length, -1), code: c.code, file: DAMAGE_SEGMENT, offset: c.offset } }) + '\n' });
      assert.equal(JSON.parse(j.stdout).fields, { name: 'Acme', city: 'Berlin' });
    }, c.name);
  });
}

test('WALNUT_STRICT_WARNINGS turns a damaged journal into exit 1 (output unchanged)', () => {
  const dir = initRepoDir('hub');
  const c = damageCases()[0];
  fs.writeFileSync(path.join(dir, DAMAGE_SEGMENT), c.bytes);
  expect(run(['show', 'companies/acme'], { cwd: dir, env: { WALNUT_STRICT_WARNINGS: '1' } }), { code: 1, stdout: /^companies\/acme\nname: Acme/, stderr: damageWarning(c) + '2 records not yet compacted\n' });
});

test('show of an entity file with broken frontmatter: exit 1, the error names the file and the line (BUG: file and line missing from the message)', () => {
  const dir = initRepoDir('laptop');
  writeEntity(dir, 'companies/acme', '---\nname: Acme\ncity: Berlin\nname: Again\n---\n');
  const r = run(['show', 'companies/acme'], { cwd: dir });
  expect(r, { code: 1, stdout: '', stderr: /^error: .*frontmatter/ });
  assert.match(r.stderr, "'companies/acme/_index.md'", 'the error names the file');
  assert.match(r.stderr, /line 4\b/, 'the error names the line of the duplicate key (line 4 of the file)');
});

test('show with broken frontmatter under --json: the error carries file and line (BUG: line is always 2)', () => {
  const dir = initRepoDir('laptop');
  writeEntity(dir, 'companies/acme', '---\nname: Acme\ncity: Berlin\nname: Again\n---\n');
  const r = run(['show', 'companies/acme', '--json'], { cwd: dir });
  expect(r, { code: 1, stdout: '' });
  const err = JSON.parse(r.stderr).error;
  assert.is(err.code, 'EFRONTMATTER');
  assert.equal(err.data, { file: 'companies/acme/_index.md', line: 4 });
});

test('show with an unclosed frontmatter: exit 1, EFRONTMATTER', () => {
  const dir = initRepoDir('laptop');
  writeEntity(dir, 'companies/acme', '---\nname: Acme\n');
  const r = run(['show', 'companies/acme', '--json'], { cwd: dir });
  expect(r, { code: 1, stdout: '' });
  assert.is(JSON.parse(r.stderr).error.code, 'EFRONTMATTER');
});

test('show with a .walnut/config that does not parse: exit 1, the error names the file and the line (BUG: file missing from the message)', () => {
  const dir = initRepoDir('laptop');
  fs.writeFileSync(path.join(dir, '.walnut', 'config'), '[core]\n\tnode = laptop\n[remote "origin"\n\turl = x\n');
  nothingWritten(path.dirname(dir), () => {
    const r = run(['show', 'a/b'], { cwd: dir });
    expect(r, { code: 1, stdout: '', stderr: /^error: '.walnut\/config': bad config line 3: malformed section header: "\[remote \\"origin\\""\nhint: / });
    assert.match(r.stderr, '.walnut/config', 'the error names the file');
  }, 'bad config');
});

test('show outside a data directory: exit 1 with a hint', () => {
  const base = tmpDir();
  expect(run(['show', 'a/b'], { cwd: base }), { code: 1, stdout: '', stderr: `error: not a walnut data directory (or any of the parent directories): '${base}'\nhint: run 'walnut init' to make this directory one, or pass -C <dir> or set WALNUT_DIR\n` });
  assert.equal(fs.readdirSync(base), []);
});

test('show without a target: usage error (2) with the usage line', () => {
  const dir = initRepoDir('laptop');
  expect(run(['show'], { cwd: dir }), { code: 2, stdout: '', stderr: /^error: .*\nusage: walnut show <target> \[--json\]\n$/ });
});

test.run();
