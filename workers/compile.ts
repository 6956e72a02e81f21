/**
 * Worker threads do not inherit tsx's loader, and running tsx inside each
 * worker costs about a second of CPU and tens of MB per thread (measured with
 * --cpu-prof: its synchronous module hooks dominate a worker's profile). So
 * the task module is bundled once to plain JavaScript with esbuild (already
 * tsx's own compiler) into `workers/.compiled/`, keyed by a hash of its
 * sources, and the pool loads that.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';

const SOURCES = ['tasks.ts', 'types.ts'];

let cached: string | undefined;

/** The file URL of the compiled task module, building it if its sources changed. */
export function compiledTasksUrl(): string {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const hash = createHash('sha256');
  for (const name of SOURCES) hash.update(readFileSync(join(here, name)));
  const outDir = join(here, '.compiled');
  const out = join(outDir, `tasks-${hash.digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(out)) {
    mkdirSync(outDir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    buildSync({ entryPoints: [join(here, 'tasks.ts')], bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', outfile: tmp, logLevel: 'error' });
    renameSync(tmp, out);
  }
  cached = pathToFileURL(out).href;
  return cached;
}
