/**
 * The reference point: a minimal single-threaded copy over TCP, with
 * CRC32 per 256 KiB chunk and SHA-256 of the whole file computed inline on the
 * main thread of both ends, chunks written with 64 KiB writes, then fsync
 * (fts makes every stored file durable, so this does too). No pool, no
 * actors, no resume, no flow control beyond the socket's own.
 *
 *   server <dir> <portFile>    client <port> <file>
 *
 * Frame: u32 length, u32 crc32, data; a zero length ends the file and is
 * followed by the 32-byte SHA-256. Prints one JSON line like bench/agent.ts.
 */
import { closeSync, fsyncSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { crc32 } from '@node-rs/crc32';

const CHUNK = 256 * 1024;
const WRITE = 64 * 1024;
const usage = () => {
  const u = process.resourceUsage();
  return { cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, peakRssMB: u.maxRSS / 1024 };
};
const [role, a, b] = process.argv.slice(2);

if (role === 'server') {
  const server = createServer((socket) => {
    const fd = openSync(join(a!, 'minimal.bin'), 'w');
    const hash = createHash('sha256');
    let pending = Buffer.alloc(0);
    let parts: Buffer[] = [];
    let have = 0;
    let need = 8;
    let position = 0;
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      have += data.length;
      if (have < need) return;
      pending = Buffer.concat([pending, ...parts]);
      parts = [];
      while (pending.length >= 8) {
        const length = pending.readUInt32LE(0);
        if (length === 0) {
          if (pending.length < 40) break;
          const ok = hash.digest().equals(pending.subarray(8, 40));
          if (process.env.MINIMAL_FSYNC !== "0") fsyncSync(fd);
          closeSync(fd);
          socket.end(ok ? 'ok' : 'bad');
          return;
        }
        if (pending.length < 8 + length) break;
        const chunk = pending.subarray(8, 8 + length);
        if ((crc32(chunk) >>> 0) !== pending.readUInt32LE(4)) throw new Error(`bad CRC at ${position}`);
        hash.update(chunk);
        for (let at = 0; at < length; at += WRITE) position += writeSync(fd, chunk, at, Math.min(WRITE, length - at), position);
        pending = pending.subarray(8 + length);
      }
      have = pending.length;
      need = pending.length < 8 ? 8 : pending.readUInt32LE(0) === 0 ? 40 : 8 + pending.readUInt32LE(0);
    });
  });
  server.listen(0, '127.0.0.1', () => writeFileSync(b!, String((server.address() as { port: number }).port)));
  process.once('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify({ role, ...usage() })}\n`);
    process.exit(0);
  });
} else {
  const socket = connect(Number(a), '127.0.0.1');
  const started = performance.now();
  const fd = openSync(b!, 'r');
  const hash = createHash('sha256');
  let bytes = 0;
  const pump = (): void => {
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK + 8);
      const n = readSync(fd, chunk, 8, CHUNK, bytes);
      if (n === 0) {
        const end = Buffer.alloc(40);
        hash.digest().copy(end, 8);
        socket.write(end);
        return;
      }
      bytes += n;
      const data = chunk.subarray(8, 8 + n);
      hash.update(data);
      chunk.writeUInt32LE(n, 0);
      chunk.writeUInt32LE(crc32(data) >>> 0, 4);
      if (!socket.write(chunk.subarray(0, 8 + n))) return void socket.once('drain', pump);
    }
  };
  socket.once('connect', pump);
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d));
  socket.on('end', () => {
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`${JSON.stringify({ role, seconds, bytes, verified: answer === 'ok', ...usage() })}\n`);
    socket.end();
  });
}
