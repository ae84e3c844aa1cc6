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

/** The values of parsed frontmatter; an alias to no anchor (or too many aliases) is a format error, not a crash. */
function docData(doc: Document.Parsed, file?: string): Record<string, unknown> {
  if (!isMap(doc.contents)) return {};
  try {
    return (doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>) ?? {};
  } catch (err) {
    throw new FormatError('EFRONTMATTER', `frontmatter does not parse: ${(err as Error).message.split('\n')[0]}`, { file, line: 2 }, ['fix the YAML between the --- lines (an alias *name needs an anchor &name before it), then run walnut again']);
  }
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
  // flat frontmatter (`key: value` lines) without yaml's parser: what it would read
  const flat = readFlat(parts.yaml);
  if (flat) return { data: { ...flat.data }, body: parts.body, hasFrontmatter: true };
  const doc = parseYaml(parts.yaml, file);
  const data = docData(doc, file);
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
  const fresh = () => parsedDoc(() => parseYaml(parts.yaml, file), file);
  if (!parts.open) return { data: {}, body: text, hasFrontmatter: false, update: (changes) => applyChanges(parts, fresh(), changes, file) };
  const flat = readFlat(parts.yaml);
  // flat frontmatter (`key: value` lines): read without yaml's parser, parsed by it only for a fallback
  if (flat) return { data: { ...flat.data }, body: parts.body, hasFrontmatter: true, update: (changes) => applyChanges(parts, flatParsed(flat, parts, file), changes, file) };
  const doc = parseYaml(parts.yaml, file);
  const data = docData(doc, file);
  let used = false;
  return {
    data,
    body: parts.body,
    hasFrontmatter: true,
    update(changes) {
      // the fallback of applyChanges edits the document: a second update parses afresh
      const d = used ? parseYaml(parts.yaml, file) : doc;
      used = true;
      return applyChanges(parts, parsedDoc(() => d, file), changes, file);
    },
  };
}

/** A key that yaml reads as this very string. */
const FLAT_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const RESERVED_WORD = /^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
/** A number in JSON's syntax, short enough to read back exactly whoever converts it. */
const FLAT_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;
const FLAT_DOUBLE = /^"(?:[^"\\\t]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"$/;
const FLAT_SINGLE = /^'(?:[^']|'')*'$/;

/**
 * Read frontmatter made only of `key: value` lines (plain keys; plain strings
 * and numbers, `true`/`false`, quoted strings, flow lists of plain scalars;
 * no comment, no blank line), as yaml would: its values and the outline a
 * splice needs, without yaml's parser (several times faster). Anything else:
 * undefined (yaml's parser reads it).
 */
function readFlat(yaml: string): { data: Record<string, unknown>; outline: Outline } | undefined {
  if (yaml.length === 0) return { data: {}, outline: { map: false, flow: false, empty: true, pairs: [], flat: true } };
  if (yaml.length > 65536 || !yaml.endsWith('\n')) return undefined;
  const data: Record<string, unknown> = {};
  const pairs: OutlinePair[] = [];
  for (let at = 0; at < yaml.length; ) {
    const nl = yaml.indexOf('\n', at);
    const end = yaml[nl - 1] === '\r' ? nl - 1 : nl;
    const colon = yaml.indexOf(': ', at);
    if (colon < 0 || colon >= end) return undefined;
    const key = yaml.slice(at, colon);
    if (key.length > 200 || !FLAT_KEY.test(key) || RESERVED_WORD.test(key) || key === '__proto__' || Object.prototype.hasOwnProperty.call(data, key)) return undefined;
    const token = yaml.slice(colon + 2, end);
    const value = flatValue(token);
    if (value === undefined) return undefined;
    data[key] = value.value;
    pairs.push({
      key,
      keyRange: [at, colon, colon],
      value: { range: [colon + 2, end, nl + 1], scalar: value.scalar, flow: value.scalar === undefined },
    });
    at = nl + 1;
  }
  return { data, outline: { map: true, flow: false, empty: false, pairs, flat: true } };
}

/** A value token of flat frontmatter, or undefined when yaml's parser must read it. */
function flatValue(token: string): { value: unknown; scalar?: Scalar.Type } | undefined {
  if (token.length === 0) return undefined;
  const c = token.charCodeAt(0);
  if (c === 0x22 /* " */) return FLAT_DOUBLE.test(token) && printable(token) ? { value: JSON.parse(token), scalar: Scalar.QUOTE_DOUBLE } : undefined;
  if (c === 0x27 /* ' */) return FLAT_SINGLE.test(token) && printable(token) ? { value: token.slice(1, -1).replace(/''/g, "'"), scalar: Scalar.QUOTE_SINGLE } : undefined;
  if (c === 0x5b /* [ */) {
    if (token === '[]') return { value: [] };
    if (!token.startsWith('[ ') || !token.endsWith(' ]')) return undefined;
    const items: unknown[] = [];
    for (const item of token.slice(2, -2).split(', ')) {
      const v = plainValue(item, true);
      if (v === undefined) return undefined;
      items.push(v);
    }
    return { value: items };
  }
  const v = plainValue(token);
  return v === undefined ? undefined : { value: v, scalar: Scalar.PLAIN };
}

/** What yaml's core schema reads as null, a boolean or a number (yaml/dist/schema/core, common/null). */
const CORE_NOT_STRING = [
  /^(?:~|[Nn]ull|NULL)?$/,
  /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/,
  /^0o[0-7]+$/,
  /^[-+]?[0-9]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/,
];
/** A plain token that yaml reads as this very string unless it is a CORE_WORD (no indicator, no `: `, no `#`, no space at the end). */
const SIMPLE_PLAIN = /^[A-Za-z][A-Za-z0-9_./-]*(?: [A-Za-z0-9_./-]+)*$/;
/** The words among SIMPLE_PLAIN tokens that yaml's core schema reads as null or a boolean. */
const CORE_WORD = /^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
/** Characters that cannot start a plain scalar (YAML's indicators, and space). */
const NOT_PLAIN_FIRST = /^[,[\]{}#&*!|>'"%@` ]|^[-?:](?: |$)/;

/**
 * A plain scalar token, as yaml reads it: true, false, a number in JSON's
 * syntax (at most 15 characters), or a string; undefined for anything else
 * (other numbers, null, comments, indicators: yaml's parser reads those).
 */
function plainValue(token: string, inFlow = false): unknown {
  if (token === 'true') return true;
  if (token === 'false') return false;
  if (token.length <= 15 && FLAT_NUMBER.test(token)) return Number(token);
  // the common case, decided by one test: words of letters, digits and `_./-`, a letter first
  if (SIMPLE_PLAIN.test(token)) return CORE_WORD.test(token) ? undefined : token;
  if (NOT_PLAIN_FIRST.test(token) || /: |:$|#|\s$|\t/.test(token) || !printable(token)) return undefined;
  if (inFlow && /[,[\]{}]/.test(token)) return undefined;
  return CORE_NOT_STRING.some((r) => r.test(token)) ? undefined : token;
}

/** Strings that YAML writes plain, as they are: a letter first; no `#`, no `: `, nothing at the end that YAML trims or reads as a key. */
const PLAIN_STRING = /^\p{L}[\p{L}\p{N} _./:-]*$/u;
const NOT_PLAIN = /: |[: ]$|^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/;

/**
 * Strings YAML may write otherwise than as they are, whatever their first
 * character (a subset of what yaml's `plainString` quotes or folds, made
 * wider where that is simpler: more strings take the slow path, none a wrong one):
 * empty; an indicator first; `?`, `:` or `-` alone or before a space; `: `,
 * `:` at the end, ` #`, white space first or last; a flow indicator; a control,
 * line-separator, BOM or lone-surrogate character; a document marker first.
 */
const NOT_PLAIN_ANY = /^$|^[ ,[\]{}#&*!|>'"%@`]|^[?:-](?: |$)|: |:$| #|^\s|\s$|[,[\]{}\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff]|^(?:---|\.\.\.)/;

/** A number or string as yaml writes it plain (also inside a flow list), or undefined. */
function plainScalar(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? JSON.stringify(value) : undefined;
  if (typeof value !== 'string') return undefined;
  if (PLAIN_STRING.test(value)) return NOT_PLAIN.test(value) ? undefined : value;
  // any other string (a character PLAIN_STRING does not take: phone numbers, codes, dates): plain unless
  // yaml would quote it or read it as something else
  return NOT_PLAIN_ANY.test(value) || CORE_NOT_STRING.some((r) => r.test(value)) ? undefined : value;
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
    return dropNewline(stringify(value, { collectionStyle: 'flow', lineWidth: 0 }));
  }
  const text = dropNewline(stringify(value, { lineWidth: 0 }));
  return text.includes('\n') ? JSON.stringify(value) : text;
}

/**
 * yaml's text without the newline it ends with. Only that: a value may end
 * in white space that YAML keeps (a no-break space, U+3000), and trimming it
 * would change the value ('1\u00a0' would read back as the number 1).
 */
function dropNewline(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

const keyTexts = new Map<string, string>();

function yamlKey(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = dropNewline(stringify(key, { lineWidth: 0 }));
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
  const flat = parts.open ? readFlat(parts.yaml) : undefined;
  if (flat) return applyChanges(parts, flatParsed(flat, parts, file), changes, file);
  let doc: Document.Parsed | undefined;
  return applyChanges(parts, parsedDoc(() => (doc ??= parseYaml(parts.yaml, file)), file), changes, file);
}

function flatParsed(flat: { data: Record<string, unknown>; outline: Outline }, parts: Split, file?: string): Parsed {
  return { outline: () => flat.outline, values: () => ({ ...flat.data }), doc: () => parseYaml(parts.yaml, file) };
}

/** What `applyChanges` needs of the frontmatter, each part made only when needed. */
interface Parsed {
  outline(): Outline;
  /** the values (a fresh object) */
  values(): Record<string, unknown>;
  /** yaml's document, for the fallback (it is changed) */
  doc(): Document.Parsed;
}

function parsedDoc(doc: () => Document.Parsed, file?: string): Parsed {
  return {
    outline: () => outlineOf(doc()),
    values: () => {
      const d = doc();
      return docData(d, file);
    },
    doc,
  };
}

/** The work of `updateEntity` on a split file. */
function applyChanges(parts: Split, parsed: Parsed, changes: FieldChanges, file?: string): string {
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
  const { text: yaml, simple } = spliceFields(parts.yaml, parsed.outline(), fields, eol);
  const result = parts.open + yaml + parts.close + body;
  if (simple) return result;
  // Check the splice against the meaning it must have; fall back to the Document API.
  const expected = parsed.values();
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
    const doc = parsed.doc();
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

/** What a splice needs to know of the frontmatter: from yaml's document, or read directly from flat frontmatter (`readFlat`). */
interface Outline {
  /** a mapping at the top (else a scalar, a list or nothing) */
  map: boolean;
  /** a flow mapping (`{a: 1}`) */
  flow: boolean;
  /** no node at all (only blank and comment lines) */
  empty: boolean;
  pairs: OutlinePair[];
  /** read by `readFlat`: one `key: value` pair per line, nothing else */
  flat?: boolean;
}

interface OutlinePair {
  /** the key as a field name (undefined: not a scalar) */
  key: string | undefined;
  keyRange?: [number, number, number];
  value?: {
    range: [number, number, number];
    /** a scalar's style (undefined: not a scalar) */
    scalar?: Scalar.Type;
    /** a collection in flow style */
    flow: boolean;
  };
}

function outlineOf(doc: Document.Parsed): Outline {
  const c = doc.contents;
  const pairs: OutlinePair[] = isMap(c)
    ? (c.items as Pair[]).map((p) => {
        const k = p.key as Node | null;
        const v = p.value as Node | null;
        return {
          key: isPair(p) ? keyOf(p) : undefined,
          keyRange: k?.range ?? undefined,
          value: v?.range ? { range: v.range, scalar: isScalar(v) ? (v.type ?? Scalar.PLAIN) : undefined, flow: (isSeq(v) || isMap(v)) && v.flow === true } : undefined,
        };
      })
    : [];
  return { map: isMap(c), flow: isMap(c) && c.flow === true, empty: c === null, pairs };
}

/**
 * Splice the changed fields into the frontmatter text. `simple` tells that
 * the result certainly parses to the old values with the changes (so the
 * check by parsing it again can be skipped): the frontmatter is flat (one
 * `key: value` pair per line, see `readFlat`) and has no `& * ! | >`
 * anywhere; values were replaced only where they were one-line
 * scalars or flow collections, by printable one-line values; keys were added
 * only to a block mapping starting at column 0 (or to empty frontmatter), and
 * removed only where the pair was alone on its line.
 */
function spliceFields(yaml: string, outline: Outline, fields: Map<string, unknown>, eol: string): { text: string; simple: boolean } {
  const splices: Splice[] = [];
  const items = outline.pairs;
  const appended: string[] = [];
  // only flat frontmatter, whose every line is understood (a field `__proto__`
  // would not be an own property of the values compared by the check)
  let simple = outline.flat === true && !SPECIAL_YAML.test(yaml) && !fields.has('__proto__');
  for (const [field, value] of fields) {
    const pair = items.find((p) => p.key === field);
    if (!pair) {
      if (value !== undefined) {
        appended.push(`${yamlKey(field)}: ${yamlValue(value)}${eol}`);
        simple &&= simpleValue(value) && field.length <= 200 && printable(field) && (outline.map ? !outline.flow && atLineStart(yaml, items[0]) : outline.empty && BLANK_YAML.test(yaml));
      }
      continue;
    }
    const keyRange = pair.keyRange!;
    const valueNode = pair.value;
    const lineStart = yaml.lastIndexOf('\n', keyRange[0] - 1) + 1;
    const nodeEnd = valueNode ? valueNode.range[2] : keyRange[2];
    // one pair on one line of its own (a key at column 0)
    const span = yaml.slice(lineStart, nodeEnd); // the node's end includes its newline
    const oneLine = lineStart === keyRange[0] && !(span.endsWith('\n') ? span.slice(0, -1) : span).includes('\n');
    if (value === undefined) {
      simple &&= oneLine;
      let end = yaml.indexOf('\n', Math.max(nodeEnd - 1, lineStart));
      end = end === -1 ? yaml.length : end + 1;
      splices.push({ from: lineStart, to: end, text: '' });
    } else if (valueNode?.scalar !== undefined && (value === null || typeof value !== 'object') && valueNode.scalar !== Scalar.BLOCK_FOLDED && valueNode.scalar !== Scalar.BLOCK_LITERAL) {
      const [from, to] = valueNode.range;
      simple &&= to > from && !yaml.slice(from, to).includes('\n') && typeof value !== 'object' && simpleValue(value);
      splices.push({ from, to, text: scalarLike(valueNode.scalar, value) });
    } else {
      simple &&= oneLine && valueNode?.flow === true && simpleValue(value);
      let end = yaml.indexOf('\n', Math.max(nodeEnd - 1, lineStart));
      end = end === -1 ? yaml.length : end + 1;
      const keyText = yaml.slice(lineStart, keyRange[1]);
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
function atLineStart(yaml: string, pair: OutlinePair | undefined): boolean {
  const start = pair?.keyRange?.[0];
  return start !== undefined && (start === 0 || yaml[start - 1] === '\n');
}

function isBlockScalar(node: Scalar): boolean {
  return node.type === Scalar.BLOCK_FOLDED || node.type === Scalar.BLOCK_LITERAL;
}

/** Write a new scalar in the old one's quoting style where that style fits. */
function scalarLike(oldType: Scalar.Type, value: unknown): string {
  if (typeof value === 'string' && !value.includes('\n')) {
    if (oldType === Scalar.QUOTE_DOUBLE) return JSON.stringify(value);
    if (oldType === Scalar.QUOTE_SINGLE) return `'${value.replace(/'/g, "''")}'`;
  }
  return yamlValue(value);
}

/** Short description of a YAML parse fault for messages. */
export function describeEntityError(err: unknown): string {
  return err instanceof FormatError ? `${err.where}: ${err.message}` : quote(String(err));
}
