/**
 * Many clients against one server: N client processes each upload their own
 * copy of a generated file at once, then each download it back at once. Run
 * for each `maxBufferedBytes` given, so the server's memory with and without
 * a tighter bound on received data shows side by side, in the same run.
 *
 *   npm run bench:concurrent -- [--clients 8] [--size 256M] [--buffered 16M,64M,1G] [--runs 3]
 *
 * Prints per run and as medians: aggregate MB/s of the uploads and of the
 * downloads (from the first client's start to the last one's end, process
 * start-ups included), the server's peak RSS, CPU seconds, and the most
 * received chunk data it held at once (`server.buffered.peakBytes`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT as agent, generate, median, parseSize, startServer } from './common.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '8' },
    size: { type: 'string', default: '256M' },
    buffered: { type: 'string', default: '16M,64M,1G' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '.fts-bench' },
  },
});

const clients = Number(values.clients);
const size = parseSize(values.size!);
const budgets = values.buffered!.split(',').map(parseSize);
const runs = Number(values.runs);
const dir = resolve(values.dir!);

/** Runs `node agent args` in its own process; resolves with its last output line, parsed. */
function runAgent(args: string[]): Promise<{ verified?: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [agent, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`agent ${args[0]} exited ${code}`))));
  });
}

interface Row {
  budget: number;
  upMBps: number;
  downMBps: number;
  serverPeakRssMB: number;
  serverCpuSeconds: number;
  bufferedPeakMB: number;
}

async function once(file: string, budget: number): Promise<Row> {
  const root = join(dir, 'concurrent-storage');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  execFileSync('sync');
  const server = await startServer(agent, root, join(dir, 'concurrent-port'), { FTS_BUFFERED: String(budget) });
  const port = server.port;
  const ids = Array.from({ length: clients }, (_, i) => i);
  let started = performance.now();
  const ups = await Promise.all(ids.map((i) => runAgent(['put', port, file, `c${i}.bin`])));
  const upSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  const downs = await Promise.all(ids.map((i) => runAgent(['get', port, join(dir, `concurrent-${i}.down`), `c${i}.bin`])));
  const downSeconds = (performance.now() - started) / 1000;
  if (![...ups, ...downs].every((r) => r.verified)) throw new Error('a transfer was not verified');
  const s = await server.stop<{ peakRssMB: number; cpuSeconds: number; bufferedPeakMB: number }>();
  for (const i of ids) rmSync(join(dir, `concurrent-${i}.down`), { force: true });
  rmSync(root, { recursive: true, force: true });
  const total = (clients * size) / 1e6;
  return { budget, upMBps: total / upSeconds, downMBps: total / downSeconds, serverPeakRssMB: s.peakRssMB, serverCpuSeconds: s.cpuSeconds, bufferedPeakMB: s.bufferedPeakMB };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

execFileSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'build.mjs')], { stdio: 'inherit' });
mkdirSync(dir, { recursive: true });
const file = join(dir, `source-random-${size}.bin`);
generate(file, size);
console.log(`${clients} clients, ${size} bytes each (random), maxBufferedBytes ${budgets.map(mib).join(', ')}, ${runs} runs`);
const rows: Row[] = [];
for (let run = 1; run <= runs; run++) {
  // Interleaved, so a slow spell of the machine hits every budget alike.
  for (const budget of budgets) {
    const r = await once(file, budget);
    rows.push(r);
    console.log(
      `run ${run}, maxBufferedBytes ${mib(budget)}: uploads ${r.upMBps.toFixed(0)} MB/s, downloads ${r.downMBps.toFixed(0)} MB/s | server peak RSS ${r.serverPeakRssMB.toFixed(0)} MB, ` +
        `${r.serverCpuSeconds.toFixed(2)} cpu-s, held at most ${r.bufferedPeakMB.toFixed(1)} MiB of received data`,
    );
  }
}
console.log('medians:');
for (const budget of budgets) {
  const mine = rows.filter((r) => r.budget === budget);
  const m = (f: (r: Row) => number) => Number(median(mine.map(f)).toFixed(1));
  console.log(JSON.stringify({ maxBufferedBytes: budget, clients, sizeBytes: size, uploadMBps: m((r) => r.upMBps), downloadMBps: m((r) => r.downMBps), serverPeakRssMB: m((r) => r.serverPeakRssMB), serverCpuSeconds: m((r) => r.serverCpuSeconds), bufferedPeakMB: m((r) => r.bufferedPeakMB) }));
}
