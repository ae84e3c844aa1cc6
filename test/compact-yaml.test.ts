/**
 * What compaction's speed relies on in the entity codec (formats/entity.ts)
 * gives the bytes the slow path gives: `editEntity` (one parse for reading
 * and changing a file) against `parseEntity` + `updateEntity`, and the fast
 * paths of `yamlValue` against yaml's own `stringify`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stringify } from 'yaml';
import { editEntity, parseEntity, updateEntity, yamlValue, BODY_FIELD } from '../formats/entity.js';
import { FormatError } from '../lib/errors.js';

/** yamlValue without its fast paths: yaml's text without its last newline, JSON for more lines. */
function slowValue(value: unknown): string {
  const drop = (t: string) => (t.endsWith('\n') ? t.slice(0, -1) : t);
  if (value !== null && typeof value === 'object') return drop(stringify(value, { collectionStyle: 'flow', lineWidth: 0 }));
  const text = drop(stringify(value, { lineWidth: 0 }));
  return text.includes('\n') ? JSON.stringify(value) : text;
}

function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    s = (s ^ (s >>> 12)) >>> 0;
    return s / 4294967296;
  };
}

test('yamlValue: strings, as yaml writes them', () => {
  const alphabet = ['a', 'Z', 'é', 'ß', '東', 'ж', '0', '7', '²', ' ', ' ', '-', '.', '/', '_', ':', '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', '?', '~', '\t', '\n', '+', '=', 'e', 'x', 'o', '\u0085', '\u00a0', '\u2028', '\ufeff', '\ud83d', '\ude00', '(', '$', '<'];
  const rnd = random(7);
  const fixed = ['yes', 'No', 'on', 'true', 'True', 'TRUE', 'false', 'null', 'Null', 'NULL', 'nan', 'inf', 'Infinity', 'e5', 'x1', 'a - b', 'a:b', 'a: b', 'a:', 'a ', 'a #b', 'a#b', 'https://c-21.example.com/juniper', 'São Paulo', 'Zürich', 'c-000123', 'a  b', 'a..', 'a/', 'y', 'n', '~',
    '+1 555 0123', '+1', '-1', '0123', '1e5', '1E5', '0x1F', '0o17', '0b1', '.5', '5.', '+.inf', '-.Inf', '.nan', '.NaN', '1_000', '12:30', '2026-11-22', '2026-11-22T10:00:00Z',
    '...', '---', '--- x', '... x', '...x', '---x', '-a', '- a', '-', '?a', '? a', '?', ':a', ': a', ':', '%a', '1 #2', '1#2', '1,2', '1 ', ' 1', 'a\u0085b', '1\u00a0', '\u00a0a', 'a\u2028b', '1\ufeff', '\ud800x', '+ 1', '=', '<a>', '$5', '(1)', '1/2', '1.2.3', '0.0.0.0', '1-2', '~a', 'a~'];
  let fast = 0;
  const strings = [...fixed];
  for (let i = 0; i < 60000; i++) {
    const len = 1 + Math.floor(rnd() * 8);
    let s = rnd() < 0.4 ? 'abc'[Math.floor(rnd() * 3)] : rnd() < 0.5 ? '+-0123456789.'[Math.floor(rnd() * 13)] : '';
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    strings.push(s);
  }
  for (const s of strings) {
    assert.is(yamlValue(s), slowValue(s), JSON.stringify(s));
    if (yamlValue(s) === s) fast++;
  }
  assert.ok(fast > 1000, `the fast path was taken (${fast} times)`);
  // flow lists of them, with numbers
  for (let i = 0; i < 5000; i++) {
    const list: unknown[] = [];
    const n = Math.floor(rnd() * 4);
    for (let j = 0; j < n; j++) list.push(rnd() < 0.3 ? Math.floor((rnd() - 0.5) * 1e6) / 100 : strings[Math.floor(rnd() * strings.length)]);
    assert.is(yamlValue(list), slowValue(list), JSON.stringify(list));
  }
});

test('values and keys that end (or start) in white space YAML keeps read back as they were written', () => {
  const spaces = ['\u00a0', '\u1680', '\u2000', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u0085', ' ', '\t'];
  for (const sp of spaces) {
    for (const value of [`1${sp}`, `${sp}`, `a${sp}`, `${sp}a`, `true${sp}`, `x y${sp}${sp}`, [`1${sp}`, 'b'], { k: `v${sp}` }]) {
      const text = updateEntity('', new Map<string, unknown>([['k', value], [`key${sp}`, 1]]));
      assert.equal(parseEntity(text).data, { k: value, [`key${sp}`]: 1 }, `${JSON.stringify(value)} in ${JSON.stringify(text)}`);
    }
  }
});

test('yamlValue: numbers, booleans, null, lists and maps, as yaml writes them', () => {
  const rnd = random(11);
  const values: unknown[] = [0, -0, 1, -1, 0.1, 1.5, 1e21, 1e-7, 123456789012345680000, 814471.11, Number.MAX_SAFE_INTEGER, 5e-324, NaN, Infinity, -Infinity, true, false, null, ['a', 1], { a: 1 }];
  for (let i = 0; i < 5000; i++) values.push((rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20), Math.floor((rnd() - 0.5) * 1e9));
  for (const v of values) assert.is(yamlValue(v), slowValue(v), String(v));
});

const FILES = [
  '',
  'no frontmatter, just a body\n',
  '---\nname: Acme # legal name\ncity: "Berlin"\ntags: [a, b]\n---\nNotes.\n',
  '---\r\nname: Acme\r\ncity: Berlin\r\n---\r\nCRLF body\r\n',
  '\ufeff---\nname: BOM\n---\n',
  '---\n---\n',
  '---\nbase: &b {x: 1}\nother: *b\n---\n',
  "---\nquote: 'single'\nblock: |\n  line one\n  line two\nnum: 0x1F\n---\nbody\n",
];
const CHANGES: Array<Map<string, unknown>> = [
  new Map<string, unknown>([['name', 'Acme Corp']]),
  new Map<string, unknown>([['city', null], ['new', 42]]),
  new Map<string, unknown>([[BODY_FIELD, 'New body.\n']]),
  new Map<string, unknown>([['block', 'one line'], ['quote', "it's"], ['tags', ['x', { y: 2 }]]]),
  new Map<string, unknown>([['other', 7]]),
  new Map<string, unknown>([['base', null], ['name', 'x: y # z']]),
];

test('editEntity: the data of parseEntity, the text of updateEntity', () => {
  for (const text of [...FILES, '---\nname: [unclosed\n---\n']) {
    let parsed: unknown;
    let err: unknown;
    try {
      parsed = parseEntity(text, 'x.md');
    } catch (e) {
      err = e;
    }
    if (err) {
      assert.throws(() => editEntity(text, 'x.md'), (e: unknown) => e instanceof FormatError && e.message === (err as Error).message);
      continue;
    }
    const ed = editEntity(text, 'x.md');
    assert.equal({ data: ed.data, body: ed.body, hasFrontmatter: ed.hasFrontmatter }, parsed, JSON.stringify(text));
    for (const changes of CHANGES) {
      const expect = (() => {
        try {
          return updateEntity(text, changes, 'x.md');
        } catch (e) {
          return e instanceof FormatError ? `error: ${e.message}` : String(e);
        }
      })();
      const got = (() => {
        try {
          return editEntity(text, 'x.md').update(changes);
        } catch (e) {
          return e instanceof FormatError ? `error: ${e.message}` : String(e);
        }
      })();
      assert.is(got, expect, `${JSON.stringify(text)} with ${JSON.stringify([...changes])}`);
    }
    // a second update on the same editor gives the same as a fresh one
    const twice = editEntity(text, 'x.md');
    try {
      twice.update(CHANGES[4]);
      assert.is(twice.update(CHANGES[0]), updateEntity(text, CHANGES[0], 'x.md'));
    } catch (e) {
      assert.ok(e instanceof FormatError);
    }
  }
});

test('updateEntity: random files and changes read back as the old values with the changes', () => {
  const rnd = random(23);
  const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)];
  const scalars = ['plain', "'single'", '"double"', '"with \\"esc\\""', '42', '-1.5', 'true', 'null', '~', '', '[ a, b ]', '{ x: 1 }', 'Berlin # city', '"a: b"', "'it''s'", 'x y z'];
  const values: unknown[] = ['new', 'two words', 'a: b', 'with # hash', "it's", 'line\nbreak', 'tab\there', '', ' lead', 'trail ', '-', 'yes', 'true', 'null', '1e3', '0x1F', 'é ü 東', '\u2028', 'x\u0085y', 'e\u00a0', '\u3000', 'zero\u200bwidth', '\ufeffbom', 7, -0, 1.25, 1e21, true, false, null, ['a', 'b'], [1, 'x y'], [], ['a: b'], { k: 'v' }];
  const keys = ['name', 'city', 'tags', 'n', 'new_key', 'a b', '1', 'x:y', 'ünï'];
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    const eol = rnd() < 0.2 ? '\r\n' : '\n';
    const lines: string[] = [];
    const used = new Set<string>();
    const n = Math.floor(rnd() * 5);
    for (let j = 0; j < n; j++) {
      const k = pick(keys.slice(0, 5));
      if (used.has(k)) continue;
      used.add(k);
      const shape = rnd();
      if (shape < 0.7) lines.push(`${k}: ${pick(scalars)}`);
      else if (shape < 0.8) lines.push(`${k}:`, `  - ${pick(['a', 'b c', '3'])}`, `  - z`);
      else if (shape < 0.9) lines.push(`${k}:`, `  ${pick(['plain', '"q"', '5'])}`);
      else lines.push(`# comment ${j}`, `${k}: ${pick(scalars)}`);
    }
    if (rnd() < 0.2) lines.push('# trailing');
    const yaml = lines.map((l) => l + eol).join('');
    const text = `---${eol}${yaml}---${eol}body${eol}`;
    let before: Record<string, unknown>;
    try {
      before = parseEntity(text).data;
    } catch {
      continue;
    }
    const changes = new Map<string, unknown>();
    const m = 1 + Math.floor(rnd() * 3);
    for (let j = 0; j < m; j++) changes.set(pick(keys), pick(values));
    let result: string;
    try {
      result = editEntity(text).update(changes);
    } catch (e) {
      assert.ok(e instanceof FormatError, String(e));
      continue;
    }
    const expected: Record<string, unknown> = { ...before };
    for (const [k, v] of changes) {
      if (v === null) delete expected[k];
      else expected[k] = v;
    }
    assert.equal(JSON.parse(JSON.stringify(parseEntity(result).data)), JSON.parse(JSON.stringify(expected)), `${JSON.stringify(text)} with ${JSON.stringify([...changes])} gave ${JSON.stringify(result)}`);
    assert.is(result, updateEntity(text, changes));
    checked++;
  }
  assert.ok(checked > 1500, `${checked} cases checked`);
});

test('flat frontmatter (read without the yaml parser): the same data, and changes read back', () => {
  const rnd = random(41);
  const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)];
  const chars = ['a', 'B', ' ', ':', '#', '-', ',', '[', ']', '{', '}', '"', "'", '\\', '\t', '.', '/', '_', 'é', '東', '\u00a0', '\u2028', '0', '7', '+', '\x7f', '@', '%', '!', '&', '*', '|', '>', '(', '~'];
  const rstr = () => Array.from({ length: Math.floor(rnd() * 6) }, () => pick(chars)).join('');
  const token = () =>
    pick([
      () => pick(['plain', 'two words', 'a:b', 'https://x.example.com/a', 'São Paulo', 'yes', 'true', 'false', 'True', 'null', '~', 'e5', '1e3', '-0', '0', '007', '1.50', '-2.5e-3', '123456789012345678', '0x1F', '.inf', '+1', 'a  b', '[ a, b ]', '[]', '[a, b]', '[ a, 1, x:y ]', '{ x: 1 }', '-']),
      () => pick(['+1 555 4577', 'jane@example.com', '(030) 123', 'a,b', ':a', '-a', '?a', '- a', 'a#b', 'a # b', '%x', '@x', '!x', '&x', '*x', '|x', '>x', 'x:', '0o17', '1_000', '.5', '5.', '+.inf', '.NaN', 'NULL', 'FALSE', '1 2', '[ é], b ]', '[ {a ]']),
      () => rstr(),
      () => JSON.stringify(rstr()),
      () => "'" + rstr().replace(/'/g, "''") + "'",
      () => String(Math.floor((rnd() - 0.5) * 1e6) / 100),
    ])();
  // keys yaml reads as these strings (a key `true` or `1` is another story, told by yaml's own parser)
  const keys = ['name', 'city', 'tags', 'n', 'new_key', 'a-b', '_x', 'Yes', 'k2'];
  let checked = 0;
  for (let i = 0; i < 4000; i++) {
    const eol = rnd() < 0.2 ? '\r\n' : '\n';
    const lines = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => `${pick(keys)}: ${token()}`);
    const text = `---${eol}${lines.map((l) => l + eol).join('')}---${eol}body${eol}`;
    let before: ReturnType<typeof parseEntity>;
    try {
      before = parseEntity(text);
    } catch (e) {
      assert.throws(() => editEntity(text), (x: unknown) => (x as Error).message === (e as Error).message, `${JSON.stringify(text)}: ${(e as Error).message}`);
      continue;
    }
    const ed = editEntity(text);
    assert.equal({ data: ed.data, body: ed.body, hasFrontmatter: ed.hasFrontmatter }, before, JSON.stringify(text));
    assert.equal(Object.keys(ed.data), Object.keys(before.data));
    const changes = new Map<string, unknown>();
    for (let j = 1 + Math.floor(rnd() * 3); j > 0; j--) changes.set(pick(keys), pick<unknown>([rstr(), 12.5, -3, true, null, ['a', 'b c'], 'x', 'a b', '', ['x:y', 3]]));
    const result = ed.update(changes);
    assert.is(result, updateEntity(text, changes));
    // tags and anchors make yaml's own document API write the change: not read back as written
    if (/[&*!|>]/.test(text)) continue;
    const expected: Record<string, unknown> = { ...before.data };
    for (const [k, v] of changes) {
      if (v === null) delete expected[k];
      else expected[k] = v;
    }
    assert.equal(JSON.parse(JSON.stringify(parseEntity(result).data)), JSON.parse(JSON.stringify(expected)), `${JSON.stringify(text)} with ${JSON.stringify([...changes])} gave ${JSON.stringify(result)}`);
    checked++;
  }
  assert.ok(checked > 1000, `${checked} cases checked`);
});

test.run();
