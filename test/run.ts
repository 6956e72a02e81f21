/**
 * Runs every `test/**\/*.test.ts` (or those whose path contains one of the
 * arguments) as one uvu run, then prints the plain closing line
 * `N passed, N failed` that CI reads. Each test file also runs on its own:
 * `npx tsx test/protocol/decoder.test.ts`.
 */
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

type SuiteResult = [errors: string | true, passed: number, skipped: number, total: number];
type QueuedSuite = () => Promise<SuiteResult>;

declare global {
  // uvu's own globals for deferred (CLI-style) runs.
  var UVU_DEFER: number | undefined;
  var UVU_INDEX: number | undefined;
  var UVU_QUEUE: (string | null | QueuedSuite)[][];
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const root = resolve(import.meta.dirname);
const filters = process.argv.slice(2);
const files = findTests(root).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));

globalThis.UVU_DEFER = 1;
globalThis.UVU_QUEUE = [];
const uvu = await import('uvu');

let index = 0;
for (const file of files) {
  globalThis.UVU_INDEX = index++;
  globalThis.UVU_QUEUE.push([relative(root, file)]);
  await import(pathToFileURL(file).href);
}

let passed = 0;
let failed = 0;
for (const group of globalThis.UVU_QUEUE) {
  for (let i = 1; i < group.length; i++) {
    const run = group[i] as QueuedSuite;
    group[i] = async () => {
      const result = await run();
      passed += result[1];
      failed += result[3] - result[1];
      return result;
    };
  }
}

await uvu.exec(false);
console.log(`${passed} passed, ${failed} failed`);
// Sockets or pools a failed test left open must not keep CI waiting.
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
