/**
 * What the benchmarks share: size arguments, medians, the generated source
 * file, and a server in its own process (the bench agent's, or the minimal
 * copy's) that writes its port to a file and prints its figures as its last
 * output line when stopped with SIGTERM.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The bundled agent both sides run from (npm run build), as a deployment would, rather than through tsx's loader. */
export const AGENT = join(import.meta.dirname, '..', 'dist', 'bench-agent.mjs');

/** `1048576`, `512K`, `256M`, `2G` (binary) as bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([KMG])?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * 1024 ** ({ '': 0, K: 1, M: 2, G: 3 }[(m[2] ?? '').toUpperCase()] ?? 0);
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Writes `size` bytes to `path` unless it already holds that many: random, or compressible (random words repeated, about 3:1 with LZ4). */
export function generate(path: string, size: number, kind: 'random' | 'compressible' = 'random'): void {
  if (existsSync(path) && statSync(path).size === size) return;
  const fd = openSync(path, 'w');
  const block = 4 * 1024 * 1024;
  for (let done = 0; done < size; done += block) {
    const n = Math.min(block, size - done);
    writeSync(fd, kind === 'compressible' ? Buffer.from(randomBytes(n / 8).toString('hex').repeat(4).slice(0, n)) : randomBytes(n));
  }
  closeSync(fd);
}

export interface ServerProcess {
  /** The port it listens on, as the port file holds it. */
  port: string;
  /** SIGTERM; resolves with its last output line, parsed. */
  stop<T>(): Promise<T>;
}

/** Runs `node script server root portFile` in its own process; resolves once it has written its port. */
export async function startServer(script: string, root: string, portFile: string, env?: NodeJS.ProcessEnv): Promise<ServerProcess> {
  rmSync(portFile, { force: true });
  const server = spawn(process.execPath, [script, 'server', root, portFile], { stdio: ['ignore', 'pipe', 'inherit'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  let out = '';
  server.stdout.on('data', (d: Buffer) => (out += d));
  // A bench that fails (an uncaught error) must not leave its server running.
  const orphaned = () => void server.kill('SIGKILL');
  process.once('exit', orphaned);
  while (!existsSync(portFile)) await sleep(50);
  return {
    port: readFileSync(portFile, 'utf8'),
    stop: async <T>() => {
      process.off('exit', orphaned);
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      return JSON.parse(out.trim().split('\n').pop()!) as T;
    },
  };
}
