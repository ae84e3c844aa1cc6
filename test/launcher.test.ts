/**
 * bin/walnut.js run as a program (as npm links it): its first two lines are a
 * shell script that runs it with Node and one V8 helper thread; to Node the
 * same file is walnut's entry.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, tmpDir, launcherFlags, envWithPathFirst as withNode } from './helpers.js';

test('run as a program, bin/walnut.js execs node with its flags, its own path and every argument as given', () => {
  const dir = tmpDir();
  // a `node` first on PATH that prints what it was given, one argument per line
  fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
  const r = spawnSync(BIN, ['compact', '--wait', '2 s', "it's", ''], { env: withNode(dir), encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.equal(r.stdout.split('\n').slice(0, -1), [...launcherFlags(), BIN, 'compact', '--wait', '2 s', "it's", '']);
  assert.equal(launcherFlags(), ['--v8-pool-size=1']);
});

test('run as a program and through a link, with the real node: walnut runs, its flags in place', () => {
  const dir = tmpDir();
  const link = path.join(dir, 'walnut');
  fs.symlinkSync(BIN, link); // as npm links a package's bin
  const env = withNode(path.dirname(process.execPath));
  for (const bin of [BIN, link]) {
    const v = spawnSync(bin, ['--version'], { env, encoding: 'utf8' });
    assert.is(v.status, 0, v.stderr);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  }
  // the flags reach the process: a module preloaded by NODE_OPTIONS reports them
  const hook = path.join(dir, 'argv.mjs');
  fs.writeFileSync(hook, "process.stderr.write(JSON.stringify(process.execArgv) + '\\n');\n");
  const r = spawnSync(link, ['--version'], { env: { ...env, NODE_OPTIONS: `--import=${hook}` }, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stderr.trim().split('\n')[0]), launcherFlags());
});

test.run();
