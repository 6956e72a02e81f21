/**
 * One side of a benchmark run, in its own process: `server <root> <portFile>`
 * or `put|get <port> <local> <remote>`. Prints one JSON line with its own
 * CPU seconds and peak RSS (process.resourceUsage covers its worker threads).
 */
import { writeFileSync } from 'node:fs';
import { FileTransferClient } from '../engine/client.js';
import { FileTransferServer } from '../engine/server.js';
import { WorkerPool } from '../workers/pool.js';

// FTS_THREADS sets the worker threads of this side's pool (default: one per core).
const threads = process.env.FTS_THREADS ? Number(process.env.FTS_THREADS) : undefined;
const pool = new WorkerPool(threads ? { threads } : {});

function usage(): { cpuSeconds: number; userSeconds: number; peakRssMB: number } {
  const u = process.resourceUsage();
  return { cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, userSeconds: u.userCPUTime / 1e6, peakRssMB: u.maxRSS / 1024 };
}

const [role, a, b, c] = process.argv.slice(2);
if (role === 'server') {
  const window = process.env.FTS_WINDOW ? Number(process.env.FTS_WINDOW) : undefined;
  const server = new FileTransferServer({ root: a!, port: 0, ...(process.env.FTS_BUFFERED ? { maxBufferedBytes: Number(process.env.FTS_BUFFERED) } : {}), maxFileSize: 64 * 1024 ** 3, pool, ...(window ? { window } : {}), ...(process.env.FTS_CHECKPOINT ? { checkpointEveryBytes: Number(process.env.FTS_CHECKPOINT) } : {}), ...(process.env.FTS_SYNC ? { syncEveryBytes: Number(process.env.FTS_SYNC) } : {}), ...(process.env.FTS_DIRECT_IO === '0' ? { directIo: false } : {}) });
  // The server's CPU from its first client on: what a long-running server spends on a transfer, without its own start-up.
  let atFirstClient: number | undefined;
  server.once('clientConnected', () => (atFirstClient = usage().cpuSeconds));
  const addr = await server.start();
  writeFileSync(b!, String(addr.port));
  process.once('SIGTERM', () => {
    void server.stop().then(async () => {
      await pool.close();
      const total = usage();
      const bufferedPeakMB = server.buffered.peakBytes / 2 ** 20;
      process.stdout.write(`${JSON.stringify({ role, ...total, bufferedPeakMB, ...(atFirstClient !== undefined ? { sessionCpuSeconds: total.cpuSeconds - atFirstClient } : {}) })}\n`);
      process.exit(0);
    });
  });
} else {
  const chunkSize = process.env.FTS_CHUNK ? Number(process.env.FTS_CHUNK) : undefined;
  const client = new FileTransferClient({ pool, ...(chunkSize ? { chunkSize } : {}), ...(process.env.FTS_SYNC ? { syncEveryBytes: Number(process.env.FTS_SYNC) } : {}), ...(process.env.FTS_DIRECT_IO === '0' ? { directIo: false } : {}) });
  await client.connect({ host: '127.0.0.1', port: Number(a) });
  const started = performance.now();
  const result = role === 'put' ? await client.uploadFile(b!, c!, { overwrite: true }) : await client.downloadFile(c!, b!);
  const seconds = (performance.now() - started) / 1000;
  await client.disconnect();
  await pool.close();
  process.stdout.write(`${JSON.stringify({ role, seconds, bytes: result.bytes, verified: result.verified, ...usage() })}\n`);
}
