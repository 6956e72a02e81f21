/**
 * Many small files, as a batch job sends them: one client uploads N files of
 * SIZE bytes over one connection to a server in its own process, P at a time,
 * then downloads them back the same way. Every file is fsynced, renamed and
 * its folder fsynced before its result, so this measures the per-file path,
 * not bandwidth.
 *
 *   npm run bench:small -- [--files 2000] [--size 4K] [--parallel 1,16] [--runs 3]
 *
 * Prints per run and as medians: files/s up and down for each parallelism,
 * and the upload rate of the first and the last tenth of the files (flat if
 * nothing grows with the number of files stored), the server's CPU seconds and peak RSS.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FileTransferClient } from '../engine/client.js';
import { Defaults } from '../protocol/constants.js';
import { AGENT as agent, median, parseSize, startServer } from './common.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '2000' },
    size: { type: 'string', default: '4K' },
    parallel: { type: 'string', default: '1,16' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '.fts-bench' },
  },
});

const files = Number(values.files);
const size = parseSize(values.size!);
const parallels = values.parallel!.split(',').map(Number);
const runs = Number(values.runs);
const dir = resolve(values.dir!);
// One connection: the server refuses more transfers at once than its limit (-749).
const tooMany = parallels.find((p) => !(p >= 1 && p <= Defaults.MAX_TRANSFERS_PER_CONNECTION));
if (tooMany !== undefined) {
  console.error(`--parallel ${tooMany}: between 1 and ${Defaults.MAX_TRANSFERS_PER_CONNECTION} (the server's maxTransfersPerConnection) over one connection`);
  process.exit(2);
}

interface Row {
  parallel: number;
  upFilesPerSecond: number;
  downFilesPerSecond: number;
  firstTenthPerSecond: number;
  lastTenthPerSecond: number;
  serverCpuSeconds: number;
  serverPeakRssMB: number;
}

/** Runs `job(i)` for i in [0, n), `parallel` at a time; returns when each finished (ms since start). */
async function inParallel(n: number, parallel: number, job: (i: number) => Promise<unknown>): Promise<number[]> {
  const started = performance.now();
  const finishedAt: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        await job(next++);
        finishedAt.push(performance.now() - started);
      }
    }),
  );
  return finishedAt;
}

async function once(source: string, parallel: number): Promise<Row> {
  const root = join(dir, 'small-storage');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  execFileSync('sync');
  const server = await startServer(agent, root, join(dir, 'small-port'));
  const client = new FileTransferClient({ stateDir: false });
  await client.connect({ host: '127.0.0.1', port: Number(server.port) });
  const ups = await inParallel(files, parallel, (i) => client.uploadFile(source, `s${i}.bin`));
  const downDir = join(dir, 'small-downloads');
  rmSync(downDir, { recursive: true, force: true });
  mkdirSync(downDir);
  const downs = await inParallel(files, parallel, (i) => client.downloadFile(`s${i}.bin`, join(downDir, `s${i}.bin`)));
  await client.disconnect();
  const s = await server.stop<{ peakRssMB: number; cpuSeconds: number }>();
  rmSync(downDir, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
  const tenth = Math.max(1, Math.floor(files / 10));
  const rate = (count: number, ms: number) => (count * 1000) / ms;
  return {
    parallel,
    upFilesPerSecond: rate(files, ups[files - 1]!),
    downFilesPerSecond: rate(files, downs[files - 1]!),
    firstTenthPerSecond: rate(tenth, ups[tenth - 1]!),
    lastTenthPerSecond: rate(tenth, ups[files - 1]! - ups[files - 1 - tenth]!),
    serverCpuSeconds: s.cpuSeconds,
    serverPeakRssMB: s.peakRssMB,
  };
}


execFileSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'build.mjs')], { stdio: 'inherit' });
mkdirSync(dir, { recursive: true });
const source = join(dir, `small-${size}.bin`);
writeFileSync(source, randomBytes(size));
console.log(`${files} files of ${size} bytes, ${parallels.join(' and ')} at a time, ${runs} runs`);
const rows: Row[] = [];
for (let run = 1; run <= runs; run++) {
  for (const parallel of parallels) {
    const r = await once(source, parallel);
    rows.push(r);
    console.log(
      `run ${run}, ${parallel} at a time: uploads ${r.upFilesPerSecond.toFixed(0)} files/s (first tenth ${r.firstTenthPerSecond.toFixed(0)}, last tenth ${r.lastTenthPerSecond.toFixed(0)}), ` +
        `downloads ${r.downFilesPerSecond.toFixed(0)} files/s | server ${r.serverCpuSeconds.toFixed(2)} cpu-s, peak RSS ${r.serverPeakRssMB.toFixed(0)} MB`,
    );
  }
}
console.log('medians:');
for (const parallel of parallels) {
  const mine = rows.filter((r) => r.parallel === parallel);
  const m = (f: (r: Row) => number) => Number(median(mine.map(f)).toFixed(1));
  console.log(JSON.stringify({ files, sizeBytes: size, parallel, uploadFilesPerSecond: m((r) => r.upFilesPerSecond), firstTenthPerSecond: m((r) => r.firstTenthPerSecond), lastTenthPerSecond: m((r) => r.lastTenthPerSecond), downloadFilesPerSecond: m((r) => r.downFilesPerSecond), serverCpuSeconds: m((r) => r.serverCpuSeconds), serverPeakRssMB: m((r) => r.serverPeakRssMB) }));
}
