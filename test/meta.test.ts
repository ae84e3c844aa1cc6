/**
 * Meta-tests that keep the parts honest (like git's t0450-txt-doc-vs-help.sh):
 * every registered command has a man page whose NAME line is the command's
 * `describe` and whose SYNOPSIS lists exactly its `usage` lines, a test file
 * test/cli-<name>.test.ts, and a mention in walnut(1). Every man page has the
 * sections a reader expects. The checks run over whatever cmd/index.ts
 * registers when the test runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { commands, commandName } from '../cmd/index.js';
import { ROOT } from './helpers.js';

const MAN = path.join(ROOT, 'man');

/** Undo the roff escapes and font changes a man page uses in running text. */
export function unroff(text: string): string {
  return text
    .replace(/\\f(\[[^\]]*\]|\(..|.)/g, '') // font changes \fB \fI \fR \fP \f[CR] \f(CW
    .replace(/\\&/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\\(em/g, '\u2014')
    .replace(/\\\(en/g, '\u2013')
    .replace(/\\\(aq/g, "'")
    .replace(/\\\(dq/g, '"')
    .replace(/\\\(ga/g, '`')
    .replace(/\\\(ti/g, '~')
    .replace(/\\\(ha/g, '^')
    .replace(/\\ /g, ' ')
    .replace(/\\e/g, '\\')
    .replace(/\\\\/g, '\\');
}

/** Split a macro line's arguments the way roff does (double quotes group). */
function macroArgs(rest: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"]|"")*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(rest))) out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]);
  return out;
}

/**
 * The text a line shows: plain lines unescaped; font macros (.B, .I, .BR, …)
 * reduced to their text; other requests give ''.
 */
export function lineText(line: string): string {
  const m = /^[.'](\S+)\s*(.*)$/.exec(line);
  if (!m) return unroff(line);
  const [, macro, rest] = m;
  if (macro === 'B' || macro === 'I' || macro === 'SM' || macro === 'SB') return unroff(macroArgs(rest).join(' '));
  if (/^(BR|RB|BI|IB|IR|RI)$/.test(macro)) return unroff(macroArgs(rest).join(''));
  return '';
}

export interface ManPage {
  file: string;
  title?: string;
  section?: string;
  /** section name → its source lines */
  sections: Map<string, string[]>;
}

/** Parse a roff man page into its .TH and .SH sections. */
export function parseMan(text: string, file = 'page'): ManPage {
  const page: ManPage = { file, sections: new Map() };
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const th = /^\.TH\s+(.*)$/.exec(line);
    if (th) {
      const [title, section] = macroArgs(th[1]);
      page.title = title;
      page.section = section;
      continue;
    }
    const sh = /^\.SH\s+(.*)$/.exec(line);
    if (sh) {
      const name = macroArgs(sh[1]).join(' ').toUpperCase();
      current = [];
      page.sections.set(name, current);
      continue;
    }
    current?.push(line);
  }
  return page;
}

/** The NAME section as one line of text. */
export function nameLine(page: ManPage): string {
  return (page.sections.get('NAME') ?? []).filter((l) => !l.startsWith('.\\"')).map((l) => l.trim()).filter((l) => l !== '').join(' ');
}

/** The lines of the SYNOPSIS section between .nf and .fi, unescaped, blank lines dropped. */
export function synopsisLines(page: ManPage): string[] {
  const out: string[] = [];
  let inside = false;
  for (const line of page.sections.get('SYNOPSIS') ?? []) {
    if (/^\.nf\b/.test(line) || /^\.EX\b/.test(line)) inside = true;
    else if (/^\.fi\b/.test(line) || /^\.EE\b/.test(line)) inside = false;
    else if (inside) {
      if (line.startsWith('.\\"')) continue;
      const text = lineText(line).replace(/\s+$/, '');
      if (text !== '') out.push(text);
    }
  }
  return out;
}

/**
 * Everything wrong with a command's man page, as messages ([] when it is right).
 * @param text - the roff source of man/walnut-<name>.1
 */
export function checkCommandPage(text: string, cmd: { name: string; describe: string; usage: string[] }): string[] {
  const problems: string[] = [];
  const page = parseMan(text, `walnut-${cmd.name}.1`);
  const name = nameLine(page);
  const want = `walnut-${cmd.name} \\- ${cmd.describe}`;
  if (unroff(name) !== unroff(want) || !name.startsWith(`walnut\\-${cmd.name} \\- `) && !name.startsWith(`walnut-${cmd.name} \\- `)) {
    problems.push(`NAME is ${JSON.stringify(name)}, expected ${JSON.stringify(want)} (the command's describe)`);
  }
  const synopsis = synopsisLines(page);
  if (synopsis.length === 0) problems.push('SYNOPSIS has no lines between .nf and .fi');
  for (const u of cmd.usage) if (!synopsis.includes(u)) problems.push(`SYNOPSIS lacks the usage line ${JSON.stringify(u)}`);
  for (const s of synopsis) if (!cmd.usage.includes(s)) problems.push(`SYNOPSIS has a line that is not a usage line: ${JSON.stringify(s)}`);
  if (problems.length === 0 && synopsis.join('\n') !== cmd.usage.join('\n')) problems.push(`SYNOPSIS lists the usage lines in another order: ${JSON.stringify(synopsis)}`);
  if (page.section !== '1') problems.push(`.TH section is ${JSON.stringify(page.section)}, expected "1"`);
  return problems;
}

const REQUIRED: Record<string, string[]> = {
  '1': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'EXIT STATUS', 'SEE ALSO'],
  '5': ['NAME', 'DESCRIPTION', 'SEE ALSO'],
};

/** Sections a page lacks for its manual section; also checks .TH. */
export function checkSections(text: string, file: string): string[] {
  const page = parseMan(text, file);
  const problems: string[] = [];
  const ext = path.extname(file).slice(1);
  if (!page.title) return [`${file}: no .TH line`];
  if (page.section !== ext) problems.push(`${file}: .TH section ${JSON.stringify(page.section)} does not match the file name`);
  if (page.title.toLowerCase() !== path.basename(file, '.' + ext).toLowerCase()) problems.push(`${file}: .TH title ${JSON.stringify(page.title)} does not match the file name`);
  for (const s of REQUIRED[ext] ?? REQUIRED['1']) if (!page.sections.has(s)) problems.push(`${file}: no ${s} section`);
  return problems;
}

// Requests and macros of man(7) and the few roff requests a page may use.
const KNOWN = new Set(['TH', 'SH', 'SS', 'PP', 'P', 'LP', 'TP', 'TQ', 'IP', 'HP', 'RS', 'RE', 'nf', 'fi', 'B', 'I', 'BR', 'RB', 'BI', 'IB', 'IR', 'RI', 'SM', 'SB', 'EX', 'EE', 'UR', 'UE', 'MT', 'ME', 'br', 'sp', 'in', 'ti', 'ad', 'na', 'hy', 'nh', 'ft', 'ne', 'ie', 'el', 'if', 'ds', 'nr', 'PD', 'OP', 'SY', 'YS', 'TS', 'TE', 'T{', 'T}', '\\"']);

/** Lines that start with a request roff does not know (a typo eats the line). */
export function unknownRequests(text: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    const m = /^[.'](\S*)/.exec(line);
    if (m && m[1] !== '' && !KNOWN.has(m[1]) && !m[1].startsWith('\\"')) out.push(`line ${i + 1}: .${m[1]}`);
  });
  return out;
}

// ---------------------------------------------------------------- self-checks

const GOOD = `.TH WALNUT-DEMO 1
.SH NAME
walnut-demo \\- do a thing
.SH SYNOPSIS
.nf
\\fBwalnut demo\\fR <target> [\\-\\-json]
walnut demo \\-\\-batch
.fi
.SH DESCRIPTION
x
.SH EXIT STATUS
0
.SH SEE ALSO
.BR walnut (1)
`;
const DEMO = { name: 'demo', describe: 'do a thing', usage: ['walnut demo <target> [--json]', 'walnut demo --batch'] };

test('self-check: a right page passes', () => {
  assert.equal(checkCommandPage(GOOD, DEMO), []);
  assert.equal(checkSections(GOOD, 'walnut-demo.1'), []);
  assert.equal(unknownRequests(GOOD), []);
});

test('self-check: a wrong synopsis is detected (changed option, missing line, extra line, order)', () => {
  const changed = GOOD.replace('[\\-\\-json]', '[\\-\\-jsn]');
  assert.equal(checkCommandPage(changed, DEMO), [
    'SYNOPSIS lacks the usage line "walnut demo <target> [--json]"',
    'SYNOPSIS has a line that is not a usage line: "walnut demo <target> [--jsn]"',
  ]);
  const missing = GOOD.replace('walnut demo \\-\\-batch\n', '');
  assert.equal(checkCommandPage(missing, DEMO), ['SYNOPSIS lacks the usage line "walnut demo --batch"']);
  const extra = GOOD.replace('.fi', 'walnut demo \\-\\-all\n.fi');
  assert.equal(checkCommandPage(extra, DEMO), ['SYNOPSIS has a line that is not a usage line: "walnut demo --all"']);
  const swapped = GOOD.replace('\\fBwalnut demo\\fR <target> [\\-\\-json]\nwalnut demo \\-\\-batch', 'walnut demo \\-\\-batch\nwalnut demo <target> [\\-\\-json]');
  assert.is(checkCommandPage(swapped, DEMO).length, 1);
  const outside = GOOD.replace('.nf\n', '').replace('.fi\n', '');
  assert.ok(checkCommandPage(outside, DEMO).includes('SYNOPSIS has no lines between .nf and .fi'));
});

test('self-check: a wrong NAME line and missing sections are detected', () => {
  assert.is(checkCommandPage(GOOD.replace('do a thing', 'does a thing'), DEMO).length, 1);
  assert.is(checkCommandPage(GOOD.replace('walnut-demo \\-', 'walnut-demo -'), DEMO).length, 1);
  assert.equal(checkSections(GOOD.replace('.SH EXIT STATUS', '.SH EXIT'), 'walnut-demo.1'), ['walnut-demo.1: no EXIT STATUS section']);
  assert.equal(checkSections(GOOD, 'walnut-other.1'), ['walnut-other.1: .TH title "WALNUT-DEMO" does not match the file name']);
  assert.equal(unknownRequests(GOOD.replace('.SH DESCRIPTION', '.Sh DESCRIPTION')), ['line 9: .Sh']);
});

// ---------------------------------------------------------------- the real pages

const registered = commands.map((c) => ({ name: commandName(c), describe: c.describe, usage: c.usage }));

test('the command table is not empty and names are unique', () => {
  assert.ok(registered.length >= 7, `only ${registered.length} commands registered`);
  assert.is(new Set(registered.map((c) => c.name)).size, registered.length);
});

for (const cmd of registered) {
  test(`${cmd.name}: man/walnut-${cmd.name}.1 has NAME = describe and SYNOPSIS = usage`, () => {
    const file = path.join(MAN, `walnut-${cmd.name}.1`);
    assert.ok(fs.existsSync(file), `man/walnut-${cmd.name}.1 is missing`);
    assert.equal(checkCommandPage(fs.readFileSync(file, 'utf8'), cmd), [], `man/walnut-${cmd.name}.1`);
  });

  test(`${cmd.name}: test/cli-${cmd.name}.test.ts exists`, () => {
    assert.ok(fs.existsSync(path.join(ROOT, 'test', `cli-${cmd.name}.test.ts`)), `test/cli-${cmd.name}.test.ts is missing`);
  });

  test(`${cmd.name}: walnut(1) lists walnut-${cmd.name}(1)`, () => {
    const text = fs.readFileSync(path.join(MAN, 'walnut.1'), 'utf8').split('\n').map(lineText).join('\n');
    assert.ok(text.includes(`walnut-${cmd.name}(1)`), `man/walnut.1 does not mention walnut-${cmd.name}(1)`);
  });
}

test('every man page has its sections, a matching .TH and only known requests', () => {
  const pages = fs.readdirSync(MAN).filter((f) => /\.[1-8]$/.test(f));
  for (const must of ['walnut.1', 'walnut-journal.5', 'walnut-entity.5']) assert.ok(pages.includes(must), `man/${must} is missing`);
  const problems = pages.flatMap((f) => {
    const text = fs.readFileSync(path.join(MAN, f), 'utf8');
    return [...checkSections(text, f), ...unknownRequests(text).map((u) => `${f}: unknown request ${u}`)];
  });
  assert.equal(problems, []);
});

test('walnut(1) lists every command of the design, built or not', () => {
  const text = fs.readFileSync(path.join(MAN, 'walnut.1'), 'utf8').split('\n').map(lineText).join('\n');
  const design = ['init', 'set', 'unset', 'show', 'log', 'status', 'record', 'compact', 'fsck', 'hooks', 'config', 'remote', 'push', 'pull', 'clone', 'version', 'activate', 'active', 'checkout', 'gossip', 'watch'];
  assert.equal(design.filter((c) => !text.includes(`walnut-${c}(1)`)), []);
});

test('SEE ALSO references point to pages that exist or are listed in walnut(1)', () => {
  const pages = new Set(fs.readdirSync(MAN).map((f) => f.replace(/\.(\d)$/, '($1)')));
  const listed = fs.readFileSync(path.join(MAN, 'walnut.1'), 'utf8').split('\n').map(lineText).join('\n');
  const problems: string[] = [];
  for (const f of fs.readdirSync(MAN).filter((f) => /\.[1-8]$/.test(f))) {
    const page = parseMan(fs.readFileSync(path.join(MAN, f), 'utf8'), f);
    const see = (page.sections.get('SEE ALSO') ?? []).map(lineText).join(' ');
    for (const m of see.matchAll(/(walnut(?:-[a-z]+)?)\((\d)\)/g)) {
      if (!pages.has(`${m[1]}(${m[2]})`) && !listed.includes(`${m[1]}(${m[2]})`)) problems.push(`${f}: ${m[0]}`);
    }
  }
  assert.equal(problems, []);
});

test.run();
