/**
 * Worker threads do not inherit tsx's loader, and running tsx inside each
 * worker costs about a second of CPU and tens of MB per thread (measured with
 * --cpu-prof: its synchronous module hooks dominate a worker's profile). So
 * the task module is bundled once to plain JavaScript with esbuild (already
 * tsx's own compiler) into `workers/.compiled/`, keyed by a hash of its
 * sources, and the pool loads that. It is bundled as CommonJS, which piscina
 * require()s: an ES module would start the ES module loader in each worker
 * (0.27-0.35 s of CPU and 72-77 MB for a worker, against 0.2 s and 65 MB).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';


let cached: string | undefined;

/** The file URL of the compiled task module, building it if its sources changed. */
export function compiledTasksUrl(): string {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  // Running from a bundle in dist/ (npm run build): the task module was built beside it.
  const prebuilt = join(here, 'tasks.cjs');
  if (!existsSync(join(here, 'tasks.ts')) && existsSync(prebuilt)) return (cached = pathToFileURL(prebuilt).href);
  const hash = createHash('sha256');
  // Every source of this folder (the task module imports only from here), so none can go stale in the cache.
  for (const name of readdirSync(here).filter((n) => n.endsWith('.ts')).sort()) hash.update(name).update(readFileSync(join(here, name)));
  const outDir = join(here, '.compiled');
  const out = join(outDir, `tasks-${hash.digest('hex').slice(0, 16)}.cjs`);
  if (!existsSync(out)) {
    mkdirSync(outDir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    // Loaded only when a build is needed, so a bundled fts never loads esbuild.
    const { buildSync } = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
    buildSync({ entryPoints: [join(here, 'tasks.ts')], bundle: true, format: 'cjs', platform: 'node', target: 'node20', packages: 'external', outfile: tmp, logLevel: 'error' });
    renameSync(tmp, out);
  }
  cached = pathToFileURL(out).href;
  return cached;
}
