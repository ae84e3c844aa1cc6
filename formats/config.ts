/**
 * The `.walnut/config` codec: git-config syntax (sections, "subsections",
 * `key = value`, `#`/`;` comments, quoted values, repeated keys). Pure.
 * Editing keeps every other line as it was.
 */
import { FormatError, quote } from '../lib/errors.js';

/** One parsed line of a config file. */
type Line =
  | { kind: 'section'; section: string; subsection?: string; text: string }
  | { kind: 'entry'; section: string; subsection?: string; key: string; value: string; text: string }
  | { kind: 'other'; text: string };

/** A parsed config that keeps its text for editing. */
export class ConfigFile {
  private constructor(private lines: Line[]) {}

  /**
   * Parse config text.
   * @throws FormatError `ECONFIG` with the line number and the line
   * @example ConfigFile.parse('[core]\n\tnode = pi-01\n').get('core.node') // 'pi-01'
   */
  static parse(text: string, file?: string): ConfigFile {
    const lines: Line[] = [];
    let section = '';
    let subsection: string | undefined;
    const raw = text.split('\n');
    if (raw[raw.length - 1] === '') raw.pop();
    raw.forEach((textLine, i) => {
      const line = textLine.replace(/\r$/, '');
      const trimmed = line.trim();
      const fail = (what: string): never => {
        throw new FormatError('ECONFIG', `bad config line ${i + 1}: ${what}: ${quote(line)}`, { file, line: i + 1 }, ['config uses git-config syntax: [section] or [section "name"], then key = value lines']);
      };
      if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
        lines.push({ kind: 'other', text: textLine });
        return;
      }
      if (trimmed.startsWith('[')) {
        const m = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(?:[#;].*)?$/.exec(trimmed);
        if (!m) fail('malformed section header');
        section = m![1].toLowerCase();
        subsection = m![2]?.replace(/\\(.)/g, '$1');
        lines.push({ kind: 'section', section, subsection, text: textLine });
        return;
      }
      const m = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$/.exec(trimmed);
      if (!m) fail('expected key = value');
      if (!section) fail('key outside any [section]');
      const value = m![2] === undefined ? 'true' : parseValue(m![2], () => fail('unterminated quote'));
      lines.push({ kind: 'entry', section, subsection, key: m![1].toLowerCase(), value, text: textLine });
    });
    return new ConfigFile(lines);
  }

  /** The last value of `section[.subsection].key`, or undefined. */
  get(name: string): string | undefined {
    const all = this.getAll(name);
    return all[all.length - 1];
  }

  /** Every value of a repeatable key, in file order. */
  getAll(name: string): string[] {
    const { section, subsection, key } = splitName(name);
    return this.lines.filter((l): l is Extract<Line, { kind: 'entry' }> => l.kind === 'entry' && l.section === section && l.subsection === subsection && l.key === key).map((l) => l.value);
  }

  /** Every entry as `name=value`, in file order. */
  list(): Array<{ name: string; value: string }> {
    return this.lines
      .filter((l): l is Extract<Line, { kind: 'entry' }> => l.kind === 'entry')
      .map((l) => ({ name: l.subsection === undefined ? `${l.section}.${l.key}` : `${l.section}.${l.subsection}.${l.key}`, value: l.value }));
  }

  /** Subsection names of a section, e.g. the remotes of `remote`. */
  subsections(section: string): string[] {
    const names = this.lines.filter((l) => l.kind === 'section' && l.section === section && l.subsection !== undefined).map((l) => (l as { subsection: string }).subsection);
    return [...new Set(names)];
  }

  /** Set a key (replacing every existing value), adding the section if needed. */
  set(name: string, value: string): void {
    this.unset(name);
    this.add(name, value);
  }

  /** Add one more value of a key. */
  add(name: string, value: string): void {
    const { section, subsection, key } = splitName(name);
    const entry: Line = { kind: 'entry', section, subsection, key, value, text: `\t${key} = ${formatValue(value)}` };
    let at = -1;
    for (let i = 0; i < this.lines.length; i++) {
      const l = this.lines[i];
      if ((l.kind === 'section' || l.kind === 'entry') && l.section === section && l.subsection === subsection) at = i;
    }
    if (at === -1) {
      this.lines.push({ kind: 'section', section, subsection, text: subsection === undefined ? `[${section}]` : `[${section} "${subsection.replace(/["\\]/g, '\\$&')}"]` });
      this.lines.push(entry);
    } else {
      this.lines.splice(at + 1, 0, entry);
    }
  }

  /** Remove every value of a key; returns how many were removed. */
  unset(name: string): number {
    const { section, subsection, key } = splitName(name);
    const before = this.lines.length;
    this.lines = this.lines.filter((l) => !(l.kind === 'entry' && l.section === section && l.subsection === subsection && l.key === key));
    return before - this.lines.length;
  }

  /** Remove a whole `[section "subsection"]` and its entries. */
  removeSection(section: string, subsection?: string): boolean {
    const before = this.lines.length;
    this.lines = this.lines.filter((l) => !((l.kind === 'section' || l.kind === 'entry') && l.section === section && l.subsection === subsection));
    return before !== this.lines.length;
  }

  toString(): string {
    return this.lines.map((l) => l.text + '\n').join('');
  }
}

/** Split `remote.origin.url` into section, subsection and key (git's rule: first and last dot). */
export function splitName(name: string): { section: string; subsection?: string; key: string } {
  const first = name.indexOf('.');
  const last = name.lastIndexOf('.');
  if (first <= 0 || last === name.length - 1) {
    throw new FormatError('ECONFIGKEY', `invalid config key ${quote(name)}: expected section.key or section.name.key`, { key: name });
  }
  const section = name.slice(0, first).toLowerCase();
  const key = name.slice(last + 1).toLowerCase();
  if (!/^[a-z][a-z0-9-]*$/.test(key) || !/^[a-z0-9.-]+$/.test(section)) {
    throw new FormatError('ECONFIGKEY', `invalid config key ${quote(name)}`, { key: name }, ['keys are letters, digits and dashes, e.g. core.node or remote.origin.url']);
  }
  return first === last ? { section, key } : { section, subsection: name.slice(first + 1, last), key };
}

function parseValue(raw: string, fail: () => never): string {
  let out = '';
  let inQuote = false;
  let pendingSpace = '';
  const text = raw.trim();
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (!inQuote && (c === '#' || c === ';')) break;
    if (c === '"') {
      out += pendingSpace;
      pendingSpace = '';
      inQuote = !inQuote;
      continue;
    }
    if (c === '\\' && i + 1 < text.length) {
      const n = text[++i];
      const escapes: Record<string, string | undefined> = { n: '\n', t: '\t', b: '\b', '"': '"', '\\': '\\' };
      out += pendingSpace + (escapes[n] ?? n);
      pendingSpace = '';
      continue;
    }
    if (!inQuote && (c === ' ' || c === '\t')) {
      pendingSpace += c;
      continue;
    }
    out += pendingSpace + c;
    pendingSpace = '';
  }
  if (inQuote) fail();
  return out;
}

function formatValue(value: string): string {
  const escaped = value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  return /^\s|\s$|[#;]/.test(value) || escaped !== value ? `"${escaped}"` : value;
}
