/**
 * Shared fixtures of the engine tests: temporary folders, random files,
 * SHA-256 of a file, and a started server + connected client with one
 * cleanup that leaves nothing behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTransferClient, type ClientOptions } from '../../engine/client.js';
import { FileTransferServer, type ServerAddress, type ServerOptions } from '../../engine/server.js';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/** A fresh folder under the OS temp folder. */
export async function tempDir(prefix = 'fts-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Writes `size` random bytes to `path`, 1 MiB at a time; returns the hex SHA-256. */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    const piece = 1024 * 1024;
    for (let done = 0; done < size; ) {
      const n = Math.min(piece, size - done);
      const buf = randomBytes(n);
      hash.update(buf);
      await handle.write(buf, 0, n);
      done += n;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Writes a highly compressible file (repeated text); returns the hex SHA-256. */
export async function writeCompressibleFile(path: string, size: number): Promise<string> {
  const line = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i += line.length) line.copy(block, i);
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(block.length, size - done);
      hash.update(block.subarray(0, n));
      await handle.write(block, 0, n);
      done += n;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Hex SHA-256 of a file's content. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => hash.update(d))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Names in a folder, sorted; [] when it does not exist. */
export async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The FtsError `fn` rejects with; fails the test when it resolves or throws something else. */
export async function rejection(fn: () => Promise<unknown>): Promise<FtsError> {
  let value: unknown;
  try {
    value = await fn();
  } catch (err) {
    if (err instanceof FtsError) return err;
    throw new Error(`expected an FtsError, got ${String(err)}`, { cause: err });
  }
  throw new Error(`expected an FtsError, got a result: ${JSON.stringify(value)}`);
}

/** Rejects with a clear message when `p` takes longer than `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface PairOptions {
  server?: ServerOptions;
  client?: ClientOptions;
  /** One worker pool for both sides (cheaper); default true. */
  sharedPool?: boolean;
  /** A pool owned by the caller, used by both sides and left open by cleanup(). */
  pool?: WorkerPool;
  /** Don't connect the client. */
  noConnect?: boolean;
}

export interface Pair {
  server: FileTransferServer;
  client: FileTransferClient;
  addr: ServerAddress;
  /** The server's storage root. */
  root: string;
  /** A scratch folder for the client's local files. */
  work: string;
  pool: WorkerPool | undefined;
  /** A new client on the same pool, connected; closed by cleanup(). */
  newClient(opts?: ClientOptions): Promise<FileTransferClient>;
  cleanup(): Promise<void>;
}

/** A started server over a temp root, and a client connected to it. */
export async function startPair(opts: PairOptions = {}): Promise<Pair> {
  const rootDir = await tempDir('fts-root-');
  const workDir = await tempDir('fts-work-');
  const ownPool = !opts.pool && opts.sharedPool !== false;
  const pool = opts.pool ?? (ownPool ? new WorkerPool({ threads: 2 }) : undefined);
  const server = new FileTransferServer({ host: '127.0.0.1', port: 0, root: rootDir.path, ...(pool ? { pool } : {}), ...opts.server });
  const addr = await server.start();
  const clients: FileTransferClient[] = [];
  // These suites test one connection's behaviour; reconnection has its own suite.
  const newClient = async (copts: ClientOptions = {}) => {
    const c = new FileTransferClient({ autoReconnect: false, stateDir: false, ...(pool ? { pool } : {}), ...opts.client, ...copts });
    clients.push(c);
    await c.connect(addr);
    return c;
  };
  const client = new FileTransferClient({ autoReconnect: false, stateDir: false, ...(pool ? { pool } : {}), ...opts.client });
  clients.push(client);
  if (!opts.noConnect) await client.connect(addr);
  return {
    server,
    client,
    addr,
    root: rootDir.path,
    work: workDir.path,
    pool,
    newClient,
    cleanup: async () => {
      // Bounded (and ref'd timers keep the loop alive meanwhile): a hung stop
      // must fail its own test, not end the whole run early.
      await Promise.all(clients.map((c) => within(c.disconnect({ timeoutMs: 2_000 }), 5_000, 'client.disconnect()').catch(() => undefined)));
      await within(server.stop(), 8_000, 'server.stop()').catch(() => undefined);
      if (ownPool) await pool?.close();
      await rootDir.remove();
      await workDir.remove();
    },
  };
}
