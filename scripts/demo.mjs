// `npm start`: a real local demo of walnut on an embedded default — two
// machines' data directories and a directory remote in ./demo-data/, records
// written on one machine, hand-edited, compacted, pushed, pulled and shown on
// the other; then two gossip daemons on loopback spread a record in
// milliseconds; a version is published to the remote, checked out on the hub
// with an atomic switch, and rolled back. Everything is the real CLI
// (bin/walnut.js) on real files.
import { spawnSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'walnut.js');
const base = path.join(root, 'demo-data');
const hub = path.join(base, 'hub');
const pi = path.join(base, 'pi-01');
const remote = path.join(base, 'remote');
const commands = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }).stdout;
const has = (name) => new RegExp(`^\\s+walnut ${name}\\b`, 'm').test(commands);

function walnut(dir, args, input) {
  console.log(`\n$ walnut ${args.join(' ')}${input ? ' <<< ' + JSON.stringify(input.split('\n').length + ' NDJSON lines') : ''}   # in ${path.relative(root, dir) || '.'}`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, input, encoding: 'utf8' });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.status !== 0) throw new Error(`walnut ${args.join(' ')} exited ${r.status}`);
  return r.stdout;
}

fs.rmSync(base, { recursive: true, force: true });
fs.mkdirSync(base, { recursive: true });
walnut(base, ['init', pi, '--node', 'pi-01']);
walnut(pi, ['set', 'companies/acme-corp', 'name', 'Acme Corp']);
walnut(pi, ['set', 'companies/acme-corp', 'employees', '42']);
walnut(pi, ['set', '--batch'], [1, 2, 3].map((i) => JSON.stringify({ target: `companies/shop-${i}`, field: 'city', value: ['Berlin', 'Oslo', 'Lyon'][i - 1] })).join('\n'));
walnut(pi, ['show', 'companies/acme-corp']);
walnut(pi, ['compact']);
console.log(`\n--- ${path.relative(root, path.join(pi, 'companies/acme-corp/_index.md'))} ---\n${fs.readFileSync(path.join(pi, 'companies/acme-corp/_index.md'), 'utf8')}`);
console.log('(editing the file by hand: a comment, a new key and a body)');
fs.writeFileSync(path.join(pi, 'companies/acme-corp/_index.md'), '---\n# our biggest customer\nname: Acme Corp\nemployees: 42\nowner: jane\n---\nMet at the fair.\n');
walnut(pi, ['status']);
walnut(pi, ['set', 'companies/acme-corp', 'employees', '43']);
walnut(pi, ['compact']);
console.log(`\n--- after compaction: the hand edit is kept and recorded, the new value applied ---\n${fs.readFileSync(path.join(pi, 'companies/acme-corp/_index.md'), 'utf8')}`);
walnut(pi, ['log', 'companies/acme-corp']);

if (has('remote') && has('push') && has('clone')) {
  walnut(pi, ['remote', 'add', 'origin', remote]);
  walnut(pi, ['push']);
  walnut(base, ['clone', remote, hub, '--node', 'hub']);
  walnut(hub, ['show', 'companies/acme-corp']);
} else {
  console.log('\n(push/pull/clone are not built yet: skipping the remote part of the demo)');
}

if (has('activate') && has('checkout') && fs.existsSync(hub)) {
  versionDemo();
}

if (has('gossip') && fs.existsSync(hub)) {
  await gossipDemo();
} else {
  console.log('\n(gossip is not built yet, or no second machine: skipping the gossip part of the demo)');
}
console.log(`\ndemo done: the data directories are in ${path.relative(process.cwd(), base) || base}/`);

async function gossipDemo() {
  walnut(pi, ['gossip', 'keygen']);
  const key = walnut(pi, ['config', 'get', 'gossip.key']).trim();
  walnut(hub, ['config', 'set', 'gossip.key', key]);
  walnut(pi, ['config', 'set', 'gossip.peer', '127.0.0.1:19992']);
  walnut(hub, ['config', 'set', 'gossip.peer', '127.0.0.1:19991']);
  const daemons = [
    spawn(process.execPath, [bin, 'gossip', '--port', '19991', '--bind', '127.0.0.1'], { cwd: pi, stdio: 'ignore' }),
    spawn(process.execPath, [bin, 'gossip', '--port', '19992', '--bind', '127.0.0.1'], { cwd: hub, stdio: 'ignore' }),
  ];
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const started = Date.now();
    walnut(pi, ['set', 'companies/acme-corp', 'stage', 'customer']);
    for (;;) {
      const r = spawnSync(process.execPath, [bin, 'show', 'companies/acme-corp', '--json'], { cwd: hub, encoding: 'utf8' });
      if (r.status === 0 && JSON.parse(r.stdout).fields.stage === 'customer') break;
      if (Date.now() - started > 10_000) throw new Error('gossip did not deliver the record within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(`\n(the record reached the hub by gossip in ${Date.now() - started} ms, including two CLI start-ups)`);
    walnut(hub, ['show', 'companies/acme-corp']);
  } finally {
    for (const d of daemons) d.kill('SIGTERM');
  }
}

/** Publish a version from the Pi, check it out on the hub, roll back. */
function versionDemo() {
  const v1 = walnut(pi, ['version', 'create']).trim();
  walnut(pi, ['activate', v1, '--remote', 'origin']);
  const site = path.join(base, 'site');
  walnut(hub, ['checkout', '--active', site, '--remote', 'origin']);
  console.log(`(the hub reads ${path.relative(root, site)}/current/companies/acme-corp/_index.md:)`);
  process.stdout.write(fs.readFileSync(path.join(site, 'current', 'companies', 'acme-corp', '_index.md'), 'utf8'));
  walnut(pi, ['set', 'companies/acme-corp', 'employees', '44']);
  const v2 = walnut(pi, ['version', 'create']).trim();
  walnut(pi, ['version', 'diff', v1, v2]);
  walnut(pi, ['activate', v2, '--remote', 'origin']);
  walnut(hub, ['active', '--remote', 'origin']);
  walnut(hub, ['checkout', '--active', site, '--remote', 'origin']);
  walnut(pi, ['activate', '--previous', '--remote', 'origin']);
  walnut(hub, ['checkout', '--active', site, '--remote', 'origin']);
  console.log(`(after the rollback ${path.relative(root, site)}/current -> ${fs.readlinkSync(path.join(site, 'current')).slice(0, 12)}…, the first version again)`);
}
