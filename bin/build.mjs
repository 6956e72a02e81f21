#!/usr/bin/env node
// Bundles fts to plain JavaScript in dist/ (npm run build): the CLI, the
// benchmark agent and the worker task module. Running from dist skips tsx's
// loader (about 0.4 s of CPU and 20 MB at start-up); dependencies stay in
// node_modules.
import { buildSync } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Pure-JavaScript dependencies are bundled: rxjs loaded from node_modules is
// hundreds of modules, 0.15 s of CPU and 12 MB at every start; bundled, only
// the operators fts uses are in. Native addons, piscina (it starts workers
// from its own files) and the build tools stay in node_modules.
const external = ['piscina', 'lz4-napi', '@node-rs/crc32', 'esbuild', 'tsx', 'tsx/*'];
// CommonJS dependencies bundled into an ES module still call require() for
// Node's built-ins: give the bundle one.
const banner = { js: "import { createRequire as __ftsCreateRequire } from 'node:module'; const require = __ftsCreateRequire(import.meta.url);" };
// rxjs's "node" export is its CommonJS build, which a bundler cannot trim: its ES2015 modules let esbuild keep only the operators fts uses.
const alias = { rxjs: join(root, 'node_modules', 'rxjs', 'dist', 'esm', 'index.js') };
const common = { bundle: true, format: 'esm', platform: 'node', target: 'node20', external, banner, alias, logLevel: 'warning' };
const entries = {
  'fts.mjs': 'engine/cli/main.ts',
  'bench-agent.mjs': 'bench/agent.ts',
  'minimal-copy.mjs': 'bench/minimal-copy.ts',
  // CommonJS: piscina require()s it, which in a worker costs 0.1 s of CPU and
  // 10 MB less than starting the ES module loader there (see workers/compile.ts).
  'tasks.cjs': 'workers/tasks.ts',
};
for (const [out, src] of Object.entries(entries)) {
  buildSync({ ...common, ...(out.endsWith('.cjs') ? { format: 'cjs', banner: {} } : {}), entryPoints: [join(root, src)], outfile: join(root, 'dist', out) });
}
console.log(`built ${Object.keys(entries).map((f) => `dist/${f}`).join(', ')}`);
