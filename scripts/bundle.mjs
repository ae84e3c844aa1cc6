// Bundle the CLI into dist/bundle/ so `walnut` starts fast (cron, git hooks):
// one file for the common path, separate chunks for modules loaded lazily.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
rmSync(new URL('../dist/bundle', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { walnut: 'cmd/main.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
  define: { __WALNUT_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __walnutRequire } from 'node:module'; const require = __walnutRequire(import.meta.url);" },
});
