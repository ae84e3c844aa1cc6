/**
 * The .walnut/config codec (formats/config.ts): git-config syntax; edits keep
 * every other line; errors name the line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigFile, splitName } from '../formats/config.js';
import { FormatError } from '../lib/errors.js';
import { tmpDir } from './helpers.js';

const TEXT = [
  '# walnut config, edited by hand',
  '[core]',
  '\tnode = pi-01   ; this machine',
  '\tmaxClockAhead = 2h',
  '',
  '[remote "origin"]',
  '\turl = s3://bucket/crm',
  '\tregion = eu-central-1',
  '[remote "USB Stick"]',
  '\turl = "/mnt/usb stick/crm"',
  '[gossip]',
  '\tpeer = 10.0.0.2:9999',
  '\tpeer = 10.0.0.3:9999 # the hub',
  '\tkey = "a#b;c \\"q\\" \\\\ x"',
  '\tenabled',
  '',
].join('\n');

test('parse: sections, subsections, comments, case-insensitive names', () => {
  const c = ConfigFile.parse(TEXT);
  assert.is(c.get('core.node'), 'pi-01');
  assert.is(c.get('CORE.Node'), 'pi-01');
  assert.is(c.get('core.maxclockahead'), '2h');
  assert.is(c.get('core.maxClockAhead'), '2h');
  assert.is(c.get('remote.origin.url'), 's3://bucket/crm');
  assert.is(c.get('remote.origin.region'), 'eu-central-1');
  assert.is(c.get('remote.USB Stick.url'), '/mnt/usb stick/crm');
  assert.is(c.get('remote.usb stick.url'), undefined, 'subsection names are case-sensitive');
  assert.is(c.get('remote.nope.url'), undefined);
  assert.equal(c.subsections('remote'), ['origin', 'USB Stick']);
});

test('quoting and escapes: quoted parts keep # ; and spaces; \\" and \\\\ unescape; a bare key is true', () => {
  const c = ConfigFile.parse(TEXT);
  assert.is(c.get('gossip.key'), 'a#b;c "q" \\ x');
  assert.is(c.get('gossip.enabled'), 'true');
  assert.is(ConfigFile.parse('[a]\n\tk = "  padded  "\n').get('a.k'), '  padded  ');
  assert.is(ConfigFile.parse('[a]\n\tk = one   two\n').get('a.k'), 'one   two');
  assert.is(ConfigFile.parse('[a]\n\tk = x\\ty\\nz\n').get('a.k'), 'x\ty\nz');
  assert.is(ConfigFile.parse('[a]\n\tk =\n').get('a.k'), '');
  assert.is(ConfigFile.parse('[a]\r\n\tk = v\r\n').get('a.k'), 'v', 'CRLF');
});

test('repeated keys: get gives the last, getAll all in order; list in file order', () => {
  const c = ConfigFile.parse(TEXT);
  assert.is(c.get('gossip.peer'), '10.0.0.3:9999');
  assert.equal(c.getAll('gossip.peer'), ['10.0.0.2:9999', '10.0.0.3:9999']);
  assert.equal(c.list().map((e) => e.name), ['core.node', 'core.maxclockahead', 'remote.origin.url', 'remote.origin.region', 'remote.USB Stick.url', 'gossip.peer', 'gossip.peer', 'gossip.key', 'gossip.enabled']);
});

test('the same keys as git config reads them', () => {
  const file = path.join(tmpDir(), 'config');
  fs.writeFileSync(file, TEXT);
  const c = ConfigFile.parse(TEXT);
  for (const key of ['core.node', 'core.maxclockahead', 'remote.origin.url', 'remote.USB Stick.url', 'gossip.key']) {
    const r = spawnSync('git', ['config', '--file', file, '--get', key], { encoding: 'utf8' });
    assert.is(r.status, 0, key);
    assert.is(c.get(key), r.stdout.replace(/\n$/, ''), key);
  }
});

test('set keeps every other line as it was (comments, blank lines, quoting, order)', () => {
  const c = ConfigFile.parse(TEXT);
  c.set('remote.origin.region', 'us-east-1');
  assert.is(c.toString(), TEXT.replace('\tregion = eu-central-1', '\tregion = us-east-1'));
});

test('set adds a key at the end of its section, or a new section at the end', () => {
  const c = ConfigFile.parse('[core]\n\tnode = a\n# between\n[gossip]\n\tport = 1\n');
  c.set('core.maxClockAhead', '30m');
  c.set('remote.usb.url', '/mnt/usb');
  c.set('gossip.port', '9999');
  assert.is(c.toString(), '[core]\n\tnode = a\n\tmaxclockahead = 30m\n# between\n[gossip]\n\tport = 9999\n[remote "usb"]\n\turl = /mnt/usb\n');
  assert.is(ConfigFile.parse(c.toString()).get('remote.usb.url'), '/mnt/usb');
});

test('set replaces every value of a repeated key; add appends one more', () => {
  const c = ConfigFile.parse(TEXT);
  c.set('gossip.peer', 'hub:9999');
  assert.equal(c.getAll('gossip.peer'), ['hub:9999']);
  c.add('gossip.peer', 'pi-02:9999');
  assert.equal(c.getAll('gossip.peer'), ['hub:9999', 'pi-02:9999']);
  assert.ok(c.toString().includes('\tkey = "a#b;c \\"q\\" \\\\ x"\n'), 'other lines untouched');
});

test('values that need it are written quoted and read back the same', () => {
  for (const v of ['plain', 'two words', ' lead', 'trail ', 'a#b', 'a;b', 'say "hi"', 'back\\slash', 'tab\there', 'new\nline', '', 'ünïcødé']) {
    const c = ConfigFile.parse('[a]\n');
    c.set('a.k', v);
    assert.is(ConfigFile.parse(c.toString()).get('a.k'), v, JSON.stringify(v));
  }
});

test('unset removes the key (all its values) and only its lines; removeSection', () => {
  const c = ConfigFile.parse(TEXT);
  assert.is(c.unset('gossip.peer'), 2);
  assert.is(c.toString(), TEXT.replace('\tpeer = 10.0.0.2:9999\n\tpeer = 10.0.0.3:9999 # the hub\n', ''));
  assert.is(c.unset('gossip.peer'), 0);
  assert.ok(c.removeSection('remote', 'origin'));
  assert.is(c.get('remote.origin.url'), undefined);
  assert.is(c.get('remote.USB Stick.url'), '/mnt/usb stick/crm');
  assert.not.ok(c.toString().includes('origin'));
});

test('syntax errors: ECONFIG with the line number and the line quoted', () => {
  const cases: Array<[string, number, string]> = [
    ['[core\n\tnode = a\n', 1, 'malformed section header'],
    ['[core]\n\tnode = a\n[remote "x]\n', 3, 'malformed section header'],
    ['[core]\n\tnode = a\n\tnot a key line\n', 3, 'expected key = value'],
    ['node = a\n', 1, 'key outside any [section]'],
    ['[core]\n# fine\n\n\tnode = "a\n', 4, 'unterminated quote'],
    ['[core]\n\t9node = a\n', 2, 'expected key = value'],
  ];
  for (const [text, line, what] of cases) {
    try {
      ConfigFile.parse(text, '.walnut/config');
      assert.unreachable(JSON.stringify(text));
    } catch (e) {
      assert.instance(e, FormatError);
      const err = e as FormatError;
      assert.is(err.code, 'ECONFIG');
      assert.equal(err.data, { file: '.walnut/config', line }, JSON.stringify(text));
      assert.ok(err.message.startsWith(`bad config line ${line}: ${what}: `), err.message);
      assert.is(err.where, `'.walnut/config' line ${line}`);
    }
  }
});

test('key names: section.key or section.sub.section.key; invalid ones are ECONFIGKEY', () => {
  assert.equal(splitName('core.node'), { section: 'core', key: 'node' });
  assert.equal(splitName('remote.origin.url'), { section: 'remote', subsection: 'origin', key: 'url' });
  assert.equal(splitName('remote.my.dotted.name.URL'), { section: 'remote', subsection: 'my.dotted.name', key: 'url' });
  for (const bad of ['core', 'core.', '.node', 'core.9x', 'core.a_b', 'co re.node', '']) {
    assert.throws(() => splitName(bad), (e: unknown) => e instanceof FormatError && e.code === 'ECONFIGKEY', JSON.stringify(bad));
  }
});

test('an empty file parses; set on it makes a valid config', () => {
  const c = ConfigFile.parse('');
  assert.equal(c.list(), []);
  c.set('core.node', 'pi-01');
  assert.is(c.toString(), '[core]\n\tnode = pi-01\n');
});

test.run();
