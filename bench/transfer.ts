/**
 * End-to-end benchmark: uploads and downloads a generated file over loopback,
 * server and client in separate processes, and copies the same file with a
 * raw netcat pipe (socket to file) in the same run as the baseline.
 *
 *   npm run bench -- [--size 1G] [--runs 3] [--kind random|compressible] [--dir DIR]
 *
 * A second baseline, closer to what fts does, is the "minimal
 * single-threaded Node copy" (bench/minimal-copy.ts): CRC32 and SHA-256 inline
 * on the main thread of both ends, 64 KiB writes, fsync.
 *
 * Prints, per run and as medians: MB/s, CPU seconds and peak RSS of each side,
 * and the ratios to the netcat copy and to the minimal copy. Needs `nc` (Debian netcat-openbsd); it is
 * installed with apt-get when missing.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { AGENT as agent, generate, median, parseSize, startServer } from './common.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    runs: { type: 'string', default: '3' },
    kind: { type: 'string', default: 'random' },
    dir: { type: 'string', default: '.fts-bench' },
    'skip-netcat': { type: 'boolean', default: false },
  },
});
const size = parseSize(values.size!);
const runs = Number(values.runs);
const dir = resolve(values.dir!);
function ensureNetcat(): void {
  if (spawnSync('sh', ['-c', 'command -v nc']).status === 0) return;
  execFileSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq netcat-openbsd'], { stdio: 'inherit' });
}

interface SideFigures {
  cpuSeconds: number;
  /** A server's CPU from its client's connection on (its own start-up left out). */
  sessionCpuSeconds?: number;
  peakRssMB: number;
}

async function runAgentPair(kind: 'put' | 'get', file: string, root: string): Promise<{ seconds: number; server: SideFigures; client: SideFigures }> {
  const server = await startServer(agent, root, join(dir, 'port'));
  const port = server.port;
  const local = kind === 'put' ? file : join(dir, 'downloaded.bin');
  rmSync(join(dir, 'downloaded.bin'), { force: true });
  const out = execFileSync(process.execPath, [agent, kind, port, local, 'bench.bin'], { encoding: 'utf8' });
  const client = JSON.parse(out.trim().split('\n').pop()!) as SideFigures & { seconds: number; verified: boolean };
  if (!client.verified) throw new Error('transfer not verified');
  return { seconds: client.seconds, server: await server.stop<SideFigures>(), client };
}

/**
 * The raw copy: netcat from a socket into a file, timed until netcat is done
 * (`seconds`), and until the file is also on disk (`durableSeconds`: then
 * `sync -d`), since fts fsyncs every file it stores and the plain copy does not.
 */
async function netcatCopy(file: string): Promise<{ seconds: number; durableSeconds: number }> {
  const out = join(dir, 'nc.out');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const listener = spawn('sh', ['-c', `exec nc -l 127.0.0.1 ${port} > ${out}`], { stdio: 'inherit' });
  await sleep(300);
  const started = performance.now();
  execFileSync('sh', ['-c', `nc -N 127.0.0.1 ${port} < ${file}`]);
  await new Promise((r) => listener.once('exit', r));
  const seconds = (performance.now() - started) / 1000;
  execFileSync('sync', ['-d', out]);
  const durableSeconds = (performance.now() - started) / 1000;
  if (statSync(out).size !== size) throw new Error('netcat copy incomplete');
  rmSync(out);
  return { seconds, durableSeconds };
}

/** The minimal Node copy of the same file, server and client in their own processes like fts's. */
async function minimalCopy(file: string): Promise<{ seconds: number; server: SideFigures; client: SideFigures }> {
  const script = join(import.meta.dirname, '..', 'dist', 'minimal-copy.mjs');
  const target = join(dir, 'minimal');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target);
  const server = await startServer(script, target, join(dir, 'port'));
  const out = execFileSync(process.execPath, [script, 'client', server.port, file], { encoding: 'utf8' });
  const client = JSON.parse(out.trim().split('\n').pop()!) as SideFigures & { seconds: number; verified: boolean };
  const serverFigures = await server.stop<SideFigures>();
  if (!client.verified || statSync(join(target, 'minimal.bin')).size !== size) throw new Error('minimal copy failed');
  rmSync(target, { recursive: true, force: true });
  return { seconds: client.seconds, server: serverFigures, client };
}

/**
 * Lets the disk finish what earlier steps left it (this file system may be
 * mounted with `discard`: deleting a 1 GiB file queues a gigabyte of discards,
 * issued at the journal's next commit, in the middle of whatever runs next),
 * so each copy starts on a quiet disk.
 */
async function settleDisk(): Promise<void> {
  execFileSync('sync');
  await sleep(500);
}

const mbps = (seconds: number) => size / 1e6 / seconds;

ensureNetcat();
execFileSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'build.mjs')], { stdio: 'inherit' });
mkdirSync(dir, { recursive: true });
const file = join(dir, `source-${values.kind}-${size}.bin`);
generate(file, size, values.kind === 'compressible' ? 'compressible' : 'random');
const root = join(dir, 'storage');
rmSync(root, { recursive: true, force: true });
console.log(`file: ${size} bytes (${values.kind}), ${runs} runs`);

const rows: { run: number; nc: number; ncDurable: number; minimal: Awaited<ReturnType<typeof minimalCopy>>; up: Awaited<ReturnType<typeof runAgentPair>>; down: Awaited<ReturnType<typeof runAgentPair>> }[] = [];
for (let run = 1; run <= runs; run++) {
  await settleDisk();
  const copy = await netcatCopy(file);
  const nc = copy.seconds;
  await settleDisk();
  const minimal = await minimalCopy(file);
  // Each upload stores a new file, as the first one did, instead of replacing the last run's.
  rmSync(root, { recursive: true, force: true });
  await settleDisk();
  const up = await runAgentPair('put', file, root);
  rmSync(join(dir, 'downloaded.bin'), { force: true });
  await settleDisk();
  const down = await runAgentPair('get', file, root);
  rows.push({ run, nc, ncDurable: copy.durableSeconds, minimal, up, down });
  console.log(
    `run ${run}: netcat ${mbps(nc).toFixed(0)} MB/s (${mbps(copy.durableSeconds).toFixed(0)} with sync) | minimal copy ${mbps(minimal.seconds).toFixed(0)} MB/s ` +
      `server ${minimal.server.cpuSeconds.toFixed(2)} cpu-s, client ${minimal.client.cpuSeconds.toFixed(2)} cpu-s | upload ${mbps(up.seconds).toFixed(0)} MB/s (${(nc / up.seconds).toFixed(2)}x netcat, ${(minimal.seconds / up.seconds).toFixed(2)}x minimal) ` +
      `server ${up.server.cpuSeconds.toFixed(2)} cpu-s (${(up.server.sessionCpuSeconds ?? NaN).toFixed(2)} after start-up) ${up.server.peakRssMB.toFixed(0)} MB, client ${up.client.cpuSeconds.toFixed(2)} cpu-s ${up.client.peakRssMB.toFixed(0)} MB | ` +
      `download ${mbps(down.seconds).toFixed(0)} MB/s (${(nc / down.seconds).toFixed(2)}x netcat, ${(minimal.seconds / down.seconds).toFixed(2)}x minimal) server ${down.server.cpuSeconds.toFixed(2)} cpu-s (${(down.server.sessionCpuSeconds ?? NaN).toFixed(2)} after start-up) ${down.server.peakRssMB.toFixed(0)} MB, client ${down.client.cpuSeconds.toFixed(2)} cpu-s ${down.client.peakRssMB.toFixed(0)} MB`,
  );
}
const summary = {
  sizeBytes: size,
  kind: values.kind,
  runs,
  netcatMBps: median(rows.map((r) => mbps(r.nc))),
  netcatThenSyncMBps: median(rows.map((r) => mbps(r.ncDurable))),
  minimalCopy: {
    MBps: median(rows.map((r) => mbps(r.minimal.seconds))),
    ratioToNetcat: median(rows.map((r) => r.nc / r.minimal.seconds)),
    serverCpuSeconds: median(rows.map((r) => r.minimal.server.cpuSeconds)),
    clientCpuSeconds: median(rows.map((r) => r.minimal.client.cpuSeconds)),
  },
  upload: {
    MBps: median(rows.map((r) => mbps(r.up.seconds))),
    ratioToNetcat: median(rows.map((r) => r.nc / r.up.seconds)),
    ratioToNetcatThenSync: median(rows.map((r) => r.ncDurable / r.up.seconds)),
    ratioToMinimalCopy: median(rows.map((r) => r.minimal.seconds / r.up.seconds)),
    serverCpuSeconds: median(rows.map((r) => r.up.server.cpuSeconds)),
    serverCpuSecondsAfterStartup: median(rows.map((r) => r.up.server.sessionCpuSeconds ?? NaN)),
    clientCpuSeconds: median(rows.map((r) => r.up.client.cpuSeconds)),
    serverPeakRssMB: median(rows.map((r) => r.up.server.peakRssMB)),
    clientPeakRssMB: median(rows.map((r) => r.up.client.peakRssMB)),
  },
  download: {
    MBps: median(rows.map((r) => mbps(r.down.seconds))),
    ratioToNetcat: median(rows.map((r) => r.nc / r.down.seconds)),
    ratioToNetcatThenSync: median(rows.map((r) => r.ncDurable / r.down.seconds)),
    ratioToMinimalCopy: median(rows.map((r) => r.minimal.seconds / r.down.seconds)),
    serverCpuSeconds: median(rows.map((r) => r.down.server.cpuSeconds)),
    serverCpuSecondsAfterStartup: median(rows.map((r) => r.down.server.sessionCpuSeconds ?? NaN)),
    clientCpuSeconds: median(rows.map((r) => r.down.client.cpuSeconds)),
    serverPeakRssMB: median(rows.map((r) => r.down.server.peakRssMB)),
    clientPeakRssMB: median(rows.map((r) => r.down.client.peakRssMB)),
  },
};
console.log('medians:');
console.log(JSON.stringify(summary, null, 2));
rmSync(root, { recursive: true, force: true });
