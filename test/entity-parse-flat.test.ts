/**
 * parseEntity reads flat frontmatter (`key: value` lines) without yaml's
 * parser: differential test against yaml's own reading of the same text
 * (values, and whether it is an error at all), over random documents made of
 * tokens near the edges of what the flat reader accepts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDocument } from 'yaml';
import { parseEntity, editEntity } from '../formats/entity.js';
import { FormatError } from '../lib/errors.js';

const KEYS = ['name', 'city', 'a', 'x-y', 'x_y', 'Name', 'n1', 'true', 'null', '__proto__', 'key with space', 'k:', '-k', '"q"', 'é'];
const VALUES = [
  'Acme', 'Acme Corp', '12', '-3', '1.5', '1e3', '0x1f', '0o17', '.5', '+1', '007', '1_000', 'true', 'false', 'True', 'yes', 'no', 'null', '~', '',
  '"quoted"', '"with \\"escape\\""', '"a\\nb"', "'single'", "'it''s'", "'open", '"open', '[]', '[ a, b ]', '[a, b]', '[ 1, true, x ]', '[ a: b ]', '{}', '{ a: b }',
  'a: b', 'a #c', 'a#c', '#c', 'x ', 'http://x.y/z', '- item', '? q', ': c', '&anchor v', '*alias', '!tag v', '|', '>', '@at', '`tick`', '%p', 'ünïcode', '2026-11-21',
  '.inf', '-.Inf', '.nan', '1.', '12345678901234567', 'a\tb', '"tab\there"',
  // letters first (one test decides most of these): words, core words, spaces, indicators inside
  'Null', 'NULL', 'TRUE', 'False', 'nulls', 'Truely', 'a b', 'a  b', 'a.b/c-d_e', 'Abc1', 'x y z', 'Yes', 'a -b', 'a-', 'x.', 'a b ', 'a:b', 'a, b', 'a[1]', 'a{b}', 'e1', 'E5', 'inf', 'nan',
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function yamlReading(yaml: string): { ok: true; data: unknown } | { ok: false } {
  const doc = parseDocument(yaml, { uniqueKeys: true });
  if (doc.errors.length > 0) return { ok: false };
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: 100 });
  } catch {
    return { ok: false };
  }
  if (js === null || js === undefined) return { ok: true, data: {} };
  // a scalar or a sequence at the top: walnut refuses it (not a mapping)
  if (typeof js !== 'object' || Array.isArray(js)) return { ok: false };
  return { ok: true, data: js };
}

test('flat frontmatter: parseEntity reads what yaml reads, and fails where yaml fails', () => {
  const r = rng(42);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  let flatDocs = 0;
  for (let round = 0; round < 4000; round++) {
    const lines: string[] = [];
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) lines.push(`${pick(KEYS)}: ${pick(VALUES)}`);
    const yaml = lines.join('\n') + '\n';
    const text = `---\n${yaml}---\nbody\n`;
    const expected = yamlReading(yaml);
    let got: { ok: true; data: unknown } | { ok: false };
    try {
      got = { ok: true, data: parseEntity(text).data };
    } catch {
      got = { ok: false };
    }
    if (expected.ok && got.ok) assert.equal(JSON.stringify(got.data), JSON.stringify(expected.data), `values of:\n${yaml}`);
    else assert.is(got.ok, expected.ok, `${expected.ok ? 'yaml reads' : 'yaml refuses'}:\n${yaml}`);
    if (expected.ok) flatDocs++;
  }
  assert.ok(flatDocs > 500, `enough documents that read: ${flatDocs}`);
});

test('an alias without its anchor is a format error with file and line, not a crash', () => {
  for (const read of [parseEntity, editEntity]) {
    try {
      read('---\nname: *alias\n---\nbody\n', 'companies/x/_index.md');
      assert.unreachable('it parsed');
    } catch (err) {
      assert.instance(err, FormatError);
      assert.is((err as FormatError).code, 'EFRONTMATTER');
      assert.match((err as FormatError).message, /alias/);
      assert.equal((err as FormatError).data, { file: 'companies/x/_index.md', line: 2 });
    }
  }
});

test.run();
