/**
 * walnut unset, end to end: a null record that removes a field.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { initRepoDir, tmpDir } from './helpers.js';
import { run, expect, nothingWritten, recordLine } from './cli-util.js';

const T = '2026-11-21T10:00:00.000Z';
const at = (time = T) => ({ WALNUT_NOW: time });

test('unset writes a null record; show no longer shows the field; nothing on stdout', () => {
  const dir = initRepoDir('laptop');
  run(['set', 'companies/acme', 'phone', '+49 30 1'], { cwd: dir, env: at() });
  run(['set', 'companies/acme', 'name', 'Acme'], { cwd: dir, env: at() });
  expect(run(['unset', 'companies/acme', 'phone'], { cwd: dir, env: at('2026-11-21T10:00:01.000Z') }), { code: 0, stdout: '', stderr: '' });
  assert.is(
    fs.readFileSync(path.join(dir, 'wal', '20261121_laptop.usv'), 'utf8'),
    recordLine([T, 'laptop', 'companies/acme', 'phone', '"+49 30 1"', 'hlc:0']) + recordLine([T, 'laptop', 'companies/acme', 'name', '"Acme"', 'hlc:1']) + recordLine(['2026-11-21T10:00:01.000Z', 'laptop', 'companies/acme', 'phone', 'null', 'hlc:0']),
  );
  expect(run(['show', 'companies/acme'], { cwd: dir }), { code: 0, stdout: `companies/acme\nname: Acme  # pending: laptop ${T}\n`, stderr: '3 records not yet compacted\n' });
});

test('unset removes a key the entity file holds', () => {
  const dir = initRepoDir('laptop');
  fs.mkdirSync(path.join(dir, 'companies', 'acme'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'companies', 'acme', '_index.md'), '---\nname: Acme\nphone: "+49"\n---\n');
  run(['unset', 'companies/acme', 'phone'], { cwd: dir, env: at() });
  assert.equal(JSON.parse(run(['show', 'companies/acme', '--json'], { cwd: dir }).stdout).fields, { name: 'Acme' });
});

test('unset of a field that was never set still writes the record (it wins over an older value arriving later)', () => {
  const dir = initRepoDir('laptop');
  expect(run(['unset', 'a/b', 'f'], { cwd: dir, env: at() }), { code: 0, stdout: '', stderr: '' });
  fs.writeFileSync(path.join(dir, 'wal', '20261121_pi-01.usv'), recordLine(['2026-11-21T09:00:00.000Z', 'pi-01', 'a/b', 'f', '"old"', 'hlc:0']) + recordLine(['2026-11-21T09:00:00.000Z', 'pi-01', 'a/b', 'g', '1', 'hlc:1']));
  assert.equal(JSON.parse(run(['show', 'a/b', '--json'], { cwd: dir }).stdout).fields, { g: 1 });
});

test('unset --json prints the record written', () => {
  const dir = initRepoDir('laptop');
  expect(run(['unset', 'a/b', 'f', '--json'], { cwd: dir, env: at() }), { code: 0, stderr: '', stdout: JSON.stringify({ version: 1, target: 'a/b', field: 'f', value: null, timestamp: T, node: 'laptop' }) + '\n' });
});

for (const [target, field, code] of [['../x', 'f', 'ETARGET'], ['a/..', 'f', 'ETARGET'], ['a/b/c', 'f', 'ETARGET'], ['a/', 'f', 'ETARGET'], ['a/b\x07', 'f', 'ETARGET'], ['a/b', 'f\x1fg', 'EFIELD'], ['a/b', 'f\x1eg', 'EFIELD'], ['a/b', '', 'EFIELD']]) {
  test(`unset ${JSON.stringify(target)} ${JSON.stringify(field)}: exit 1 (${code}), nothing written`, () => {
    const dir = initRepoDir('laptop');
    nothingWritten(path.dirname(dir), () => {
      const r = run(['unset', target, field, '--json'], { cwd: dir, env: at() });
      expect(r, { code: 1, stdout: '' });
      assert.is(JSON.parse(r.stderr).error.code, code);
      expect(run(['unset', target, field], { cwd: dir, env: at() }), { code: 1, stdout: '', stderr: /^error: invalid (target|field name) .*\nhint: .*\n$/ });
    }, `${target} ${field}`);
  });
}

test('unset with a missing field: usage error (2) with the usage line', () => {
  const dir = initRepoDir('laptop');
  nothingWritten(path.dirname(dir), () => {
    expect(run(['unset', 'a/b'], { cwd: dir }), { code: 2, stdout: '', stderr: /^error: .*\nusage: walnut unset <target> <field>\n$/ });
  }, 'usage');
});

test('unset outside a data directory: exit 1 with a hint', () => {
  const base = tmpDir();
  nothingWritten(base, () => {
    expect(run(['unset', 'a/b', 'f'], { cwd: base }), { code: 1, stdout: '', stderr: /^error: not a walnut data directory .*\nhint: run 'walnut init'/ });
  }, 'outside');
});

test.run();
