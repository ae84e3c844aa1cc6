// Bundle the CLI into dist/bundle/ so `walnut` starts fast (cron, git hooks):
// one file for the common path, separate chunks for modules loaded lazily,
// dist/bundle/fast.mjs, one self-contained file for the fast path of
// `set`, `unset` and `--version` (cmd/_fast.ts: no yargs, no other command),
// and dist/bundle/publish.mjs, the fast path of `version create`,
// `activate` and `compact` (cmd/_publish.ts; it shares the chunks of the full bundle).
// The swap is atomic for running processes: the chunks have content hashes in
// their names and are copied first, then the entry file is renamed into
// place; chunks unused for a while are removed.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = path.join(root, 'dist', 'bundle');
const tmp = path.join(root, 'dist', `bundle.tmp-${process.pid}`);
fs.rmSync(tmp, { recursive: true, force: true });
const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: tmp,
  outExtension: { '.js': '.mjs' },
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
  define: { __WALNUT_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __walnutRequire } from 'node:module'; const require = __walnutRequire(import.meta.url);" },
};
// publish.mjs (cmd/_publish.ts: `version create`, `activate`, `compact` without yargs) shares the chunks
await build({ ...common, entryPoints: { walnut: path.join(root, 'cmd/_main.ts'), publish: path.join(root, 'cmd/_publish.ts') }, splitting: true });
// One file without chunks: every module the fast path needs is loaded anyway,
// and each extra file costs the ESM loader a resolve, a read and a compile.
await build({ ...common, entryPoints: { fast: path.join(root, 'cmd/_fast.ts') }, splitting: false });
fs.mkdirSync(out, { recursive: true });
const names = fs.readdirSync(tmp);
const entry = (n) => /^(walnut|fast|publish)\.mjs(\.map)?$/.test(n);
for (const name of names.filter((n) => !entry(n))) fs.renameSync(path.join(tmp, name), path.join(out, name));
for (const name of names.filter(entry)) fs.renameSync(path.join(tmp, name), path.join(out, name));
fs.rmSync(tmp, { recursive: true, force: true });
const keep = new Set(names);
const hour = Date.now() - 3600_000;
for (const name of fs.readdirSync(out)) {
  const file = path.join(out, name);
  if (!keep.has(name) && fs.statSync(file).mtimeMs < hour) fs.rmSync(file, { force: true });
}
