/**
 * The entity file codec (formats/entity.ts): YAML frontmatter + markdown body;
 * editing one key keeps everything else byte for byte.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseEntity, updateEntity, BODY_FIELD, DELETED_FIELD } from '../formats/entity.js';
import { FormatError } from '../lib/errors.js';
import { blobId } from '../lib/hash.js';
import { spawnSync } from 'node:child_process';

const FILE = [
  '---',
  '# company record, kept by hand',
  'name: "Acme"   # legal name',
  "city: 'Berlin'",
  'employees: 42',
  'tags: [b2b, saas]',
  'unknown_key: keep me exactly   ',
  'address:',
  '  street: Main St 1  # ground floor',
  '  zip: "10115"',
  'notes: |',
  '  multi',
  '  line',
  'folded: >-',
  '  one',
  '  two',
  '---',
  'Body text',
  '',
  'with *markdown* and a --- line',
  '---',
  '',
].join('\n');

const edit = (text: string, ...changes: Array<[string, unknown]>) => updateEntity(text, new Map(changes));
/** Replace exactly one line of FILE (by its text) with another, or remove it (null). */
function expected(from: string, to: string | null, base = FILE): string {
  const lines = base.split('\n');
  const i = lines.indexOf(from);
  if (i === -1) throw new Error(`no line ${from}`);
  if (to === null) lines.splice(i, 1);
  else lines[i] = to;
  return lines.join('\n');
}

test('parse: keys in file order, body after the closing fence', () => {
  const p = parseEntity(FILE);
  assert.equal(Object.keys(p.data), ['name', 'city', 'employees', 'tags', 'unknown_key', 'address', 'notes', 'folded']);
  assert.equal(p.data.address, { street: 'Main St 1', zip: '10115' });
  assert.is(p.data.notes, 'multi\nline\n');
  assert.is(p.data.folded, 'one two');
  assert.is(p.body, 'Body text\n\nwith *markdown* and a --- line\n---\n');
  assert.is(p.hasFrontmatter, true);
});

test('changing one key keeps comments, key order, quoting of other keys, unknown keys and the body byte for byte', () => {
  assert.is(edit(FILE, ['employees', 45]), expected('employees: 42', 'employees: 45'));
  assert.is(edit(FILE, ['name', 'Acme Corp']), expected('name: "Acme"   # legal name', 'name: "Acme Corp"   # legal name'), 'double quotes and the comment kept');
  assert.is(edit(FILE, ['city', "O'Brien"]), expected("city: 'Berlin'", "city: 'O''Brien'"), 'single quotes kept');
  assert.is(edit(FILE, ['unknown_key', 'x']), expected('unknown_key: keep me exactly   ', 'unknown_key: x   '));
});

test('a value that must be quoted to keep its type or meaning is quoted', () => {
  const base = '---\nzip: 10115\nok: yes\ncity: Berlin\n---\n';
  assert.is(edit(base, ['zip', '10116']), '---\nzip: "10116"\nok: yes\ncity: Berlin\n---\n');
  assert.is(edit(base, ['city', 'x: y']), '---\nzip: 10115\nok: yes\ncity: "x: y"\n---\n');
  assert.is(edit(base, ['city', 'true']), '---\nzip: 10115\nok: yes\ncity: "true"\n---\n');
  assert.is(edit(base, ['city', ' lead']), '---\nzip: 10115\nok: yes\ncity: " lead"\n---\n');
  for (const [k, v] of [['zip', '10116'], ['city', 'x: y'], ['city', 'true'], ['city', 'l1\nl2'], ['city', '# not a comment'], ['zip', null], ['city', 3.5], ['city', false]] as const) {
    assert.equal(parseEntity(edit(base, [k, v])).data[k], v === null ? undefined : v, `${k} = ${JSON.stringify(v)}`);
  }
});

test('null removes the key and only its lines (also nested maps, lists and block scalars)', () => {
  assert.is(edit(FILE, ['employees', null]), expected('employees: 42', null));
  assert.is(edit(FILE, ['address', null]), expected('address:', null, expected('  street: Main St 1  # ground floor', null, expected('  zip: "10115"', null))));
  assert.is(edit(FILE, ['notes', null]), FILE.replace('notes: |\n  multi\n  line\n', ''));
  assert.is(edit(FILE, ['folded', null]), FILE.replace('folded: >-\n  one\n  two\n', ''));
  assert.is(edit('---\ntags:\n  - a\n  - b\nx: 1\n---\n', ['tags', null]), '---\nx: 1\n---\n');
  assert.is(edit('---\na: 1\nb: 2\n# about c\nc: 3\n---\n', ['b', null]), '---\na: 1\n# about c\nc: 3\n---\n', 'the comment line after it stays');
  assert.is(edit(FILE, ['missing', null]), FILE, 'removing an absent key changes nothing');
});

test('new keys are appended at the end of the frontmatter, in order', () => {
  assert.is(edit(FILE, ['website', 'https://acme.example'], ['founded', 1999]), FILE.replace('  two\n---\n', '  two\nwebsite: https://acme.example\nfounded: 1999\n---\n'));
  assert.is(edit('---\n# only a comment\n---\n', ['a', 1]), '---\n# only a comment\na: 1\n---\n');
  assert.is(edit('---\n---\nbody\n', ['a', 1]), '---\na: 1\n---\nbody\n');
  assert.is(edit('---\na: 1\n---', ['b', 2]), '---\na: 1\nb: 2\n---', 'no newline after the closing fence');
  assert.is(edit('---\na: 1\n---\n', ['my key: x', 'v']), '---\na: 1\n"my key: x": v\n---\n', 'a key that needs quoting');
});

test('block scalars and nested maps: replaced whole, the rest kept', () => {
  assert.is(edit(FILE, ['notes', 'new\nnotes']), FILE.replace('notes: |\n  multi\n  line\n', 'notes: "new\\nnotes"\n'));
  assert.is(edit(FILE, ['address', { street: 'Elm 2', zip: '1' }]), FILE.replace('address:\n  street: Main St 1  # ground floor\n  zip: "10115"\n', 'address: { street: Elm 2, zip: "1" }\n'));
  assert.is(edit(FILE, ['tags', ['x', 'y z']]), expected('tags: [b2b, saas]', 'tags: [ x, y z ]'));
  assert.equal(parseEntity(edit(FILE, ['address', { street: 'Elm 2', zip: '1' }])).data.address, { street: 'Elm 2', zip: '1' });
  assert.is(edit('---\ndesc: this is\n  continued\nnext: 1\n---\n', ['desc', 'new']), '---\ndesc: new\nnext: 1\n---\n', 'a multi-line plain scalar');
});

test('the body: kept on key edits; @body replaces it and nothing else', () => {
  const p = parseEntity(edit(FILE, ['employees', 1]));
  assert.is(p.body, parseEntity(FILE).body);
  assert.is(edit(FILE, [BODY_FIELD, 'New body\n']), FILE.slice(0, FILE.indexOf('---\nBody') + 4) + 'New body\n');
  assert.is(edit('---\na: 1\n---\nold\n', [BODY_FIELD, null]), '---\na: 1\n---\n');
  assert.is(BODY_FIELD, '@body');
  assert.is(DELETED_FIELD, '@deleted');
});

test('files without frontmatter: everything is body; a key edit adds a frontmatter block', () => {
  assert.equal(parseEntity('Just notes.\n'), { data: {}, body: 'Just notes.\n', hasFrontmatter: false });
  assert.equal(parseEntity(''), { data: {}, body: '', hasFrontmatter: false });
  assert.is(edit('Just notes.\n', ['name', 'x']), '---\nname: x\n---\nJust notes.\n');
  assert.is(edit('', ['name', 'x']), '---\nname: x\n---\n');
  assert.is(edit('Just notes.\n', ['name', null]), 'Just notes.\n');
  assert.equal(parseEntity('---\n---\nbody\n'), { data: {}, body: 'body\n', hasFrontmatter: true });
  assert.equal(parseEntity('---\na: 1\n...\nbody\n').data, { a: 1 }, 'YAML document end marker closes too');
});

test('CRLF files stay CRLF', () => {
  const crlf = '---\r\n# c\r\nname: "Acme"\r\ncity: Berlin\r\n---\r\nBody\r\n';
  assert.is(edit(crlf, ['city', 'Paris']), '---\r\n# c\r\nname: "Acme"\r\ncity: Paris\r\n---\r\nBody\r\n');
  assert.is(edit(crlf, ['zip', '1']), '---\r\n# c\r\nname: "Acme"\r\ncity: Berlin\r\nzip: "1"\r\n---\r\nBody\r\n');
  assert.is(edit(crlf, ['name', null]), '---\r\n# c\r\ncity: Berlin\r\n---\r\nBody\r\n');
  assert.equal(parseEntity(crlf), { data: { name: 'Acme', city: 'Berlin' }, body: 'Body\r\n', hasFrontmatter: true });
});

test('round trip: every edit re-parses to the expected data, other keys untouched', () => {
  const values: unknown[] = ['plain', 'with: colon', "it's", 'say "hi"', '', ' ', 'multi\nline', 0, -1.5, true, null, [], {}, [1, 'a', { b: [2] }], { 'k y': 'v' }, 'ünïcødé 中文 😀', '@at', '- dash', '[not a list]', '{not: a map}', '*star', '&amp', '!tag', '%pct', '>', '|'];
  const before = parseEntity(FILE).data;
  for (const key of ['name', 'city', 'employees', 'tags', 'address', 'notes', 'folded', 'brand-new']) {
    for (const v of values) {
      const out = edit(FILE, [key, v]);
      const data = parseEntity(out).data;
      const want = { ...before } as Record<string, unknown>;
      if (v === null) delete want[key];
      else want[key] = v;
      assert.equal(data, want, `${key} = ${JSON.stringify(v)}`);
      assert.is(parseEntity(out).body, parseEntity(FILE).body);
    }
  }
});

test('content hashes are git blob ids: git hash-object agrees', () => {
  assert.is(blobId('hello\n'), 'ce013625030ba8dba906f756967f9e9ca394464a');
  const r = spawnSync('git', ['hash-object', '--stdin'], { input: FILE, encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.is(blobId(FILE), r.stdout.trim());
  assert.is(blobId(Buffer.from(FILE)), r.stdout.trim());
});

test('broken frontmatter: EFRONTMATTER with the file', () => {
  for (const text of ['---\nname: a\nbad: [\n---\n', '---\nname: a\nname: b\n---\n', '---\n- a\n- b\n---\n', '---\nname: a\n']) {
    assert.throws(() => parseEntity(text, 'companies/x/_index.md'), (e: unknown) => e instanceof FormatError && e.code === 'EFRONTMATTER' && e.data.file === 'companies/x/_index.md', JSON.stringify(text));
    assert.throws(() => edit(text, ['k', 1]), (e: unknown) => e instanceof FormatError && e.code === 'EFRONTMATTER', JSON.stringify(text));
  }
});

test('broken frontmatter: the error has the line of the fault in the file (BUG: line is always 2)', () => {
  const cases: Array<[string, number]> = [
    ['---\nname: a\ncity: b\nname: c\n---\n', 4], // duplicate key on line 4
    ['---\na: 1\nb: 2\n  c: 3\n---\n', 3], // bad indentation: the mapping on line 3
  ];
  for (const [text, line] of cases) {
    try {
      parseEntity(text, 'x.md');
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, FormatError);
      assert.is((e as FormatError).data.line, line, JSON.stringify(text));
    }
  }
});

test('a file starting with a UTF-8 byte order mark is read as frontmatter, and edits keep the mark (BUG: read as body, edit adds a second frontmatter)', () => {
  const bom = '\ufeff---\nname: Acme\n---\nBody\n';
  assert.equal(parseEntity(bom).data, { name: 'Acme' });
  assert.is(edit(bom, ['city', 'Berlin']), '\ufeff---\nname: Acme\ncity: Berlin\n---\nBody\n');
});

test('editing a key whose value is an anchor used by an alias gives a valid file or a FormatError (BUG: throws a plain Error)', () => {
  const text = '---\nbase: &b {x: 1}\nother: *b\n---\n';
  try {
    const out = edit(text, ['base', 2]);
    assert.is(parseEntity(out).data.base, 2);
  } catch (e) {
    assert.instance(e, FormatError, `threw ${(e as Error).message}`);
  }
});

test.run();
