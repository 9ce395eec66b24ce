// Bundles the dashboard: src/main.js (and the CSS it imports) into
// assets/app.js + assets/app.css, src/index.html copied beside them.
// usage: node build.mjs <src dir> <out dir> <node_modules dir>
// Run by build.cmake at build time; node_modules lives in the build tree.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const [src, out, modules] = process.argv.slice(2);
if (!src || !out || !modules) {
  console.error('usage: node build.mjs <src dir> <out dir> <node_modules dir>');
  process.exit(2);
}
// esbuild is in the build tree's node_modules, not beside this script.
const { build } = createRequire(join(resolve(modules), 'noop.js'))('esbuild');
mkdirSync(join(out, 'assets'), { recursive: true });
await build({
  entryPoints: { app: join(src, 'main.js') },
  outdir: join(out, 'assets'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  nodePaths: [modules],
  legalComments: 'eof', // third-party licence notices ship with the code
  logLevel: 'warning',
});
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
