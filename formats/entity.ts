/**
 * The entity file codec (see formats/entity.md): YAML frontmatter between
 * `---` lines, then a markdown body. Pure functions over strings.
 */
import { parseDocument, isMap, isScalar, isSeq, isPair, stringify, Scalar, type Document, type Pair, type Node } from 'yaml';
import { FormatError, quote } from '../lib/errors.js';

/** Reserved field: the markdown body of an entity. */
export const BODY_FIELD = '@body';
/** Reserved field: `true` deletes the entity (its file moves to `.walnut/trash/`). */
export const DELETED_FIELD = '@deleted';

export interface ParsedEntity {
  /** frontmatter keys and values, in file order */
  data: Record<string, unknown>;
  /** everything after the closing `---` line */
  body: string;
  /** true when the file starts with a frontmatter block */
  hasFrontmatter: boolean;
}

interface Split {
  open: string; // the opening fence line, newline included ('' when none)
  yaml: string;
  close: string; // the closing fence line, newline included
  body: string;
  eol: string;
}

const FENCE_OPEN = /^---[ \t]*(\r?\n)/;

function split(whole: string, file?: string): Split {
  // A UTF-8 byte order mark before the fence is kept in front of it.
  const bom = whole.startsWith('\ufeff') ? '\ufeff' : '';
  const text = bom ? whole.slice(1) : whole;
  const parts = splitFence(text, file);
  return bom && parts.open ? { ...parts, open: bom + parts.open } : bom ? { ...parts, body: whole } : parts;
}

function splitFence(text: string, file?: string): Split {
  const open = FENCE_OPEN.exec(text);
  if (!open) return { open: '', yaml: '', close: '', body: text, eol: '\n' };
  const eol = open[1];
  const start = open[0].length;
  const closing = /^(---|\.\.\.)[ \t]*(\r?\n|$)/gm;
  closing.lastIndex = start;
  let m: RegExpExecArray | null;
  while ((m = closing.exec(text))) {
    if (m.index >= start && (m.index === start || text[m.index - 1] === '\n')) {
      return { open: open[0], yaml: text.slice(start, m.index), close: m[0], body: text.slice(m.index + m[0].length), eol };
    }
    if (m[0].length === 0) closing.lastIndex++;
  }
  const line = text.slice(0, start).split('\n').length;
  throw new FormatError('EFRONTMATTER', `frontmatter opened on line 1 is never closed`, { file, line }, ["end the frontmatter with a line '---'"]);
}

function parseYaml(yaml: string, file?: string): Document.Parsed {
  const doc = parseDocument(yaml, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const line = (err.linePos?.[0]?.line ?? 1) + 1; // +1 for the opening fence
    throw new FormatError('EFRONTMATTER', `frontmatter does not parse: ${err.message.split('\n')[0]}`, { file, line }, ['fix the YAML between the --- lines, then run walnut again']);
  }
  const contents = doc.contents;
  if (contents !== null && !isMap(contents) && !(isScalar(contents) && contents.value === null)) {
    throw new FormatError('EFRONTMATTER', `frontmatter is not a mapping of keys to values`, { file, line: 2 }, ['write frontmatter as `key: value` lines']);
  }
  return doc;
}

/**
 * Parse an entity file.
 *
 * @param text - the whole file
 * @param file - its path, for error messages
 * @returns keys and values, body
 * @throws FormatError `EFRONTMATTER` with the line of the fault
 * @example parseEntity('---\nname: Acme\n---\nNotes\n') // { data: { name: 'Acme' }, body: 'Notes\n', hasFrontmatter: true }
 */
export function parseEntity(text: string, file?: string): ParsedEntity {
  const parts = split(text, file);
  if (!parts.open) return { data: {}, body: text, hasFrontmatter: false };
  const doc = parseYaml(parts.yaml, file);
  const data = isMap(doc.contents) ? (doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>) ?? {} : {};
  return { data, body: parts.body, hasFrontmatter: true };
}

/** A parsed entity file that can be changed without parsing it again. */
export interface EntityEditor extends ParsedEntity {
  /** `updateEntity(text, changes)`, reusing this parse (call once) */
  update(changes: FieldChanges): string;
}

/**
 * Parse an entity file once for reading and changing it: `data` and `body` as
 * `parseEntity` gives them, and `update(changes)` returning what
 * `updateEntity(text, changes)` would.
 *
 * @param text - the whole file ('' for a new entity)
 * @param file - its path, for error messages
 * @throws FormatError `EFRONTMATTER` with the line of the fault
 * @example const e = editEntity(text); if (e.data.name !== 'Acme') text = e.update(new Map([['name', 'Acme']]))
 */
export function editEntity(text: string, file?: string): EntityEditor {
  const parts = split(text, file);
  if (!parts.open) return { data: {}, body: text, hasFrontmatter: false, update: (changes) => applyChanges(parts, () => parseYaml(parts.yaml, file), changes, file) };
  const doc = parseYaml(parts.yaml, file);
  const data = isMap(doc.contents) ? (doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>) ?? {} : {};
  let used = false;
  return {
    data,
    body: parts.body,
    hasFrontmatter: true,
    update(changes) {
      // the fallback of applyChanges edits the document: a second update parses afresh
      const d = used ? parseYaml(parts.yaml, file) : doc;
      used = true;
      return applyChanges(parts, () => d, changes, file);
    },
  };
}

/** Strings that YAML writes plain, as they are: a letter first; no `#`, no `: `, nothing at the end that YAML trims or reads as a key. */
const PLAIN_STRING = /^\p{L}[\p{L}\p{N} _./:-]*$/u;
const NOT_PLAIN = /: |[: ]$|^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/;

/** A number or string as yaml writes it plain (also inside a flow list), or undefined. */
function plainScalar(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? JSON.stringify(value) : undefined;
  if (typeof value === 'string') return PLAIN_STRING.test(value) && !NOT_PLAIN.test(value) ? value : undefined;
  return undefined;
}

/** A value as YAML text on one line (a block scalar would need indentation). */
export function yamlValue(value: unknown): string {
  // fast paths for what yaml's stringify gives anyway (checked against it in test/compact-yaml.test.ts)
  const plain = plainScalar(value);
  if (plain !== undefined) return plain;
  if (Array.isArray(value) && value.length > 0 && value.length <= 64) {
    const items = value.map(plainScalar);
    if (!items.includes(undefined)) return `[ ${items.join(', ')} ]`;
  }
  if (value !== null && typeof value === 'object') {
    return stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trimEnd();
  }
  const text = stringify(value, { lineWidth: 0 }).trimEnd();
  return text.includes('\n') ? JSON.stringify(value) : text;
}

const keyTexts = new Map<string, string>();

function yamlKey(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = stringify(key, { lineWidth: 0 }).trimEnd();
    if (text.includes('\n')) text = JSON.stringify(key);
    if (keyTexts.size < 10_000) keyTexts.set(key, text);
  }
  return text;
}

function keyOf(pair: Pair): string | undefined {
  const k = pair.key as Node | null;
  if (isScalar(k)) return String(k.value);
  return undefined;
}

/** Changes to apply: a field and its new value, `undefined` to remove it. */
export type FieldChanges = Map<string, unknown>;

/**
 * Apply field changes to an entity file, keeping everything else byte for byte:
 * comments, key order, quoting of untouched keys, unknown keys and the body.
 * `BODY_FIELD` replaces the body.
 *
 * @param text - the current file ('' for a new entity)
 * @param changes - field → new value (`undefined` or `null` removes the key)
 * @returns the new file text
 * @throws FormatError `EFRONTMATTER` when the current frontmatter does not parse
 * @example updateEntity('---\nname: Acme # legal\n---\n', new Map([['name', 'Acme Corp']]))
 */
export function updateEntity(text: string, changes: FieldChanges, file?: string): string {
  const parts = split(text, file);
  return applyChanges(parts, () => parseYaml(parts.yaml, file), changes, file);
}

/** The work of `updateEntity` on a split file; `parsed` gives its frontmatter document (parsed only when needed). */
function applyChanges(parts: Split, parsed: () => Document.Parsed, changes: FieldChanges, file?: string): string {
  let body = parts.body;
  const fields = new Map<string, unknown>();
  for (const [k, v] of changes) {
    if (k === BODY_FIELD) body = v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
    else fields.set(k, v === null ? undefined : v);
  }
  if (fields.size === 0) return parts.open ? parts.open + parts.yaml + parts.close + body : body;
  const eol = parts.eol;
  if (!parts.open) {
    const lines = [...fields].filter(([, v]) => v !== undefined).map(([k, v]) => `${yamlKey(k)}: ${yamlValue(v)}${eol}`);
    if (lines.length === 0) return body;
    return `---${eol}${lines.join('')}---${eol}${body}`;
  }
  const doc = parsed();
  const { text: yaml, simple } = spliceFields(parts.yaml, doc, fields, eol);
  const result = parts.open + yaml + parts.close + body;
  if (simple) return result;
  // Check the splice against the meaning it must have; fall back to the Document API.
  const expected = isMap(doc.contents) ? ((doc.toJS() as Record<string, unknown>) ?? {}) : {};
  for (const [k, v] of fields) {
    if (v === undefined) delete expected[k];
    else expected[k] = v;
  }
  try {
    const check = parseEntity(result, file).data;
    if (sameJson(check, expected)) return result;
  } catch {
    /* fall through */
  }
  try {
    for (const [k, v] of fields) {
      if (v === undefined) doc.delete(k);
      else doc.set(k, v);
    }
    return parts.open + doc.toString({ lineWidth: 0 }) + parts.close + body;
  } catch (err) {
    throw new FormatError('EFRONTMATTER', `cannot change ${[...fields.keys()].map((k) => JSON.stringify(k)).join(', ')}: ${(err as Error).message.split('\n')[0]}`, { file, line: 2 }, [
      'the frontmatter uses YAML features walnut cannot edit in place (anchors and aliases); write the values out in full',
    ]);
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

interface Splice {
  from: number;
  to: number;
  text: string;
}

/**
 * Splice the changed fields into the frontmatter text. `simple` tells that
 * the result certainly parses to the old values with the changes (so the
 * check by parsing it again can be skipped): the text has no anchor, alias,
 * tag or block scalar; values were replaced only where they were one-line
 * scalars or flow collections, by printable one-line values; keys were added
 * only to a block mapping starting at column 0 (or to empty frontmatter), and
 * removed only where the pair was alone on its line.
 */
function spliceFields(yaml: string, doc: Document.Parsed, fields: Map<string, unknown>, eol: string): { text: string; simple: boolean } {
  const splices: Splice[] = [];
  const contents = doc.contents;
  const items = isMap(contents) ? (contents.items as Pair[]) : [];
  const appended: string[] = [];
  let simple = !SPECIAL_YAML.test(yaml);
  for (const [field, value] of fields) {
    const pair = items.find((p) => isPair(p) && keyOf(p) === field);
    if (!pair) {
      if (value !== undefined) {
        appended.push(`${yamlKey(field)}: ${yamlValue(value)}${eol}`);
        simple &&= simpleValue(value) && field.length <= 200 && printable(field) && (isMap(contents) ? !contents.flow && atLineStart(yaml, items[0]) : contents === null && BLANK_YAML.test(yaml));
      }
      continue;
    }
    const keyNode = pair.key as Node;
    const valueNode = pair.value as Node | null;
    const lineStart = yaml.lastIndexOf('\n', keyNode.range![0] - 1) + 1;
    const nodeEnd = valueNode?.range ? valueNode.range[2] : keyNode.range![2];
    // one pair on one line of its own (a key at column 0)
    const span = yaml.slice(lineStart, nodeEnd); // the node's end includes its newline
    const oneLine = lineStart === keyNode.range![0] && !(span.endsWith('\n') ? span.slice(0, -1) : span).includes('\n');
    if (value === undefined) {
      simple &&= oneLine;
      let end = yaml.indexOf('\n', Math.max(nodeEnd - 1, lineStart));
      end = end === -1 ? yaml.length : end + 1;
      splices.push({ from: lineStart, to: end, text: '' });
    } else if (isScalar(valueNode) && valueNode.range && (value === null || typeof value !== 'object') && !isBlockScalar(valueNode)) {
      const [from, to] = valueNode.range;
      simple &&= to > from && !yaml.slice(from, to).includes('\n') && typeof value !== 'object' && simpleValue(value);
      splices.push({ from, to, text: scalarLike(valueNode, value) });
    } else {
      simple &&= oneLine && (isSeq(valueNode) || isMap(valueNode)) && valueNode.flow === true && simpleValue(value);
      let end = yaml.indexOf('\n', Math.max(nodeEnd - 1, lineStart));
      end = end === -1 ? yaml.length : end + 1;
      const keyText = yaml.slice(lineStart, keyNode.range![1]);
      splices.push({ from: lineStart, to: end, text: `${keyText}: ${yamlValue(value)}${eol}` });
    }
  }
  let out = yaml;
  splices.sort((a, b) => b.from - a.from);
  for (const s of splices) out = out.slice(0, s.from) + s.text + out.slice(s.to);
  if (appended.length > 0) {
    if (out.length > 0 && !out.endsWith('\n')) out += eol;
    out += appended.join('');
  }
  return { text: out, simple };
}

/** Anchors, aliases, tags, block scalars: an edit near them needs the check by parsing. */
const SPECIAL_YAML = /[&*!|>]/;
/** Only blank and comment lines. */
const BLANK_YAML = /^(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]*$/;
/** Printable characters on one line (no surrogates), as YAML allows them in quoted and plain scalars … */
const PRINTABLE_CHARS = /^[\t\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]*$/;
/** … but no space other than SP and TAB (JavaScript's trimEnd would drop some), no zero-width space or BOM */
const ODD_SPACE = /[^\S \t]|[\u200b\ufeff]/;

function printable(text: string): boolean {
  return PRINTABLE_CHARS.test(text) && !ODD_SPACE.test(text);
}

/** A value whose YAML text is one printable line and reads back as itself. */
function simpleValue(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value === 'boolean') return true;
  if (typeof value === 'string') return printable(value);
  return Array.isArray(value) && value.length > 0 && value.every((v) => plainScalar(v) !== undefined) && plainScalar(value) === undefined && value.length <= 64;
}

/** The pair's key starts a line (column 0). */
function atLineStart(yaml: string, pair: Pair | undefined): boolean {
  const start = (pair?.key as Node | null | undefined)?.range?.[0];
  return start !== undefined && (start === 0 || yaml[start - 1] === '\n');
}

function isBlockScalar(node: Scalar): boolean {
  return node.type === Scalar.BLOCK_FOLDED || node.type === Scalar.BLOCK_LITERAL;
}

/** Write a new scalar in the old one's quoting style where that style fits. */
function scalarLike(old: Scalar, value: unknown): string {
  if (typeof value === 'string' && !value.includes('\n')) {
    if (old.type === Scalar.QUOTE_DOUBLE) return JSON.stringify(value);
    if (old.type === Scalar.QUOTE_SINGLE) return `'${value.replace(/'/g, "''")}'`;
  }
  return yamlValue(value);
}

/** Short description of a YAML parse fault for messages. */
export function describeEntityError(err: unknown): string {
  return err instanceof FormatError ? `${err.where}: ${err.message}` : quote(String(err));
}
