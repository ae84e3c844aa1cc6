/**
 * walnut config, end to end: get, set, list on .walnut/config (git-config
 * syntax), keeping every other line; errors.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten } from './cli-util.js';

const configOf = (dir: string) => fs.readFileSync(path.join(dir, '.walnut', 'config'), 'utf8');

test('config get core.node; --json', () => {
  const dir = initRepoDir('pi-07');
  expect(run(['config', 'get', 'core.node'], { cwd: dir }), { code: 0, stdout: 'pi-07\n', stderr: '' });
  expect(run(['config', 'get', 'CORE.Node', '--json'], { cwd: dir }), { code: 0, stdout: '{"version":1,"key":"CORE.Node","value":"pi-07"}\n', stderr: '' });
});

test('config set adds sections and keys, keeps comments and other lines; list in file order', () => {
  const dir = initRepoDir('hub');
  fs.writeFileSync(path.join(dir, '.walnut', 'config'), '# hand-written\n[core]\n\tnode = hub ; this machine\n\n[gossip]\n\tpeer = 10.0.0.2:9999\n\tpeer = 10.0.0.3:9999\n');
  expect(run(['config', 'set', 'remote.origin.url', '/mnt/usb/crm'], { cwd: dir }), { code: 0, stdout: '', stderr: '' });
  expect(run(['config', 'set', 'core.maxClockAhead', '2h'], { cwd: dir }), { code: 0, stdout: '', stderr: '' });
  expect(run(['config', 'set', 'gossip.key', ' spaced # and ; quoted "x" '], { cwd: dir }), { code: 0, stdout: '', stderr: '' });
  assert.is(
    configOf(dir),
    '# hand-written\n[core]\n\tnode = hub ; this machine\n\tmaxclockahead = 2h\n\n[gossip]\n\tpeer = 10.0.0.2:9999\n\tpeer = 10.0.0.3:9999\n\tkey = " spaced # and ; quoted \\"x\\" "\n[remote "origin"]\n\turl = /mnt/usb/crm\n',
  );
  expect(run(['config', 'list'], { cwd: dir }), {
    code: 0,
    stdout: 'core.node=hub\ncore.maxclockahead=2h\ngossip.peer=10.0.0.2:9999\ngossip.peer=10.0.0.3:9999\ngossip.key= spaced # and ; quoted "x" \nremote.origin.url=/mnt/usb/crm\n',
    stderr: '',
  });
  expect(run(['config', 'get', 'gossip.key'], { cwd: dir }), { code: 0, stdout: ' spaced # and ; quoted "x" \n', stderr: '' });
  expect(run(['config', 'get', 'gossip.peer'], { cwd: dir }), { code: 0, stdout: '10.0.0.3:9999\n', stderr: '' });
});

test('config set replaces every value of a repeated key', () => {
  const dir = initRepoDir('hub');
  fs.appendFileSync(path.join(dir, '.walnut', 'config'), '[gossip]\n\tpeer = a:1\n\tpeer = b:2\n');
  run(['config', 'set', 'gossip.peer', 'c:3'], { cwd: dir });
  assert.is(configOf(dir), '[core]\n\tnode = hub\n[gossip]\n\tpeer = c:3\n');
});

test('config list --json and config set --json', () => {
  const dir = initRepoDir('hub');
  expect(run(['config', 'set', 'remote.usb.url', '/mnt/usb', '--json'], { cwd: dir }), { code: 0, stdout: '{"version":1,"key":"remote.usb.url","value":"/mnt/usb"}\n', stderr: '' });
  expect(run(['config', 'list', '--json'], { cwd: dir }), { code: 0, stdout: JSON.stringify({ version: 1, config: [{ name: 'core.node', value: 'hub' }, { name: 'remote.usb.url', value: '/mnt/usb' }] }) + '\n', stderr: '' });
});

test('config set core.node checks the node id; an invalid one changes nothing', () => {
  const dir = initRepoDir('hub');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['config', 'set', 'core.node', 'Bad Node'], { cwd: dir }), { code: 1, stdout: '', stderr: 'error: invalid node id "Bad Node"\nhint: a node id is lower-case letters, digits and dashes, starting with a letter or digit, e.g. pi-01\n' });
  }, 'bad node');
  expect(run(['config', 'set', 'core.node', 'hub-2'], { cwd: dir }), { code: 0, stdout: '', stderr: '' });
  expect(run(['status'], { cwd: dir }), { code: 0, stdout: /^node hub-2\n/ });
});

test('config get of a key that is not set: exit 1 (ENOKEY)', () => {
  const dir = initRepoDir('hub');
  expect(run(['config', 'get', 'remote.origin.url'], { cwd: dir }), { code: 1, stdout: '', stderr: "error: config key 'remote.origin.url' is not set\n" });
  const j = run(['config', 'get', 'remote.origin.url', '--json'], { cwd: dir });
  expect(j, { code: 1, stdout: '' });
  assert.equal(JSON.parse(j.stderr), { version: 1, error: { code: 'ENOKEY', message: "config key 'remote.origin.url' is not set", data: { key: 'remote.origin.url' }, hints: [] } });
});

for (const key of ['core', 'core.', '.node', 'core.no de', 'core.9node']) {
  test(`config with the invalid key ${JSON.stringify(key)}: exit 1 (ECONFIGKEY), nothing written`, () => {
    const dir = initRepoDir('hub');
    nothingWritten(path.dirname(dir), () => {
      for (const args of [['get', key], ['set', key, 'v']]) {
        const r = run(['config', ...args, '--json'], { cwd: dir });
        expect(r, { code: 1, stdout: '' }, args.join(' '));
        assert.is(JSON.parse(r.stderr).error.code, 'ECONFIGKEY');
      }
    }, key);
  });
}

test('config usage errors: unknown action, missing key or value, extra argument (exit 2, usage lines)', () => {
  const dir = initRepoDir('hub');
  const usage = 'usage: walnut config get <key>\nusage: walnut config set <key> <value>\nusage: walnut config list\n';
  nothingWritten(path.dirname(dir), () => {
    expect(run(['config', 'frob'], { cwd: dir }), { code: 2, stdout: '', stderr: new RegExp(`frob[^]*\\n${usage.replace(/[[\]<>]/g, '\\$&')}$`) });
    expect(run(['config', 'get'], { cwd: dir }), { code: 2, stdout: '', stderr: 'error: config get needs a <key>\n' + usage });
    expect(run(['config', 'set', 'core.node'], { cwd: dir }), { code: 2, stdout: '', stderr: 'error: config set needs <key> <value>\n' + usage });
    expect(run(['config', 'get', 'core.node', 'extra'], { cwd: dir }), { code: 2, stdout: '', stderr: 'error: config get takes one <key>\n' + usage });
    expect(run(['config'], { cwd: dir }), { code: 2, stdout: '' });
  }, 'usage');
});

test('config on a file with a syntax error: exit 1 with the line, the file is not changed', () => {
  const dir = initRepoDir('hub');
  const broken = '[core]\n\tnode = hub\n[gossip\n\tport = 9999\n';
  fs.writeFileSync(path.join(dir, '.walnut', 'config'), broken);
  nothingWritten(path.dirname(dir), () => {
    for (const args of [['get', 'core.node'], ['set', 'gossip.port', '1'], ['list']]) {
      expect(run(['config', ...args], { cwd: dir }), { code: 1, stdout: '', stderr: /^error: '.walnut\/config': bad config line 3: malformed section header: "\[gossip"\nhint: / }, args.join(' '));
    }
  }, 'broken config');
  assert.is(configOf(dir), broken);
});

test('config outside a data directory: exit 1 with a hint', () => {
  const base = tmpDir();
  nothingWritten(base, () => {
    expect(run(['config', 'list'], { cwd: base }), { code: 1, stdout: '', stderr: /^error: not a walnut data directory .*\nhint: / });
  }, 'outside');
});

test('config -C and WALNUT_DIR', () => {
  const dir = initRepoDir('pi-03');
  expect(run(['-C', dir, 'config', 'get', 'core.node'], { cwd: tmpDir() }), { code: 0, stdout: 'pi-03\n', stderr: '' });
  expect(run(['config', 'get', 'core.node'], { cwd: tmpDir(), env: { WALNUT_DIR: dir } }), { code: 0, stdout: 'pi-03\n', stderr: '' });
});

test.run();
