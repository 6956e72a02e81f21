/**
 * The `fts` command line: `serve`, `put`, `get`, `ls`.
 * commander is pinned to 14: commander 15 needs Node 22.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { FileTransferClient, type TransferProgress, type TransferResult } from '../client.js';
import { FileTransferServer } from '../server.js';
import { ClientStateStore, defaultStateDir } from '../client-state.js';
import { isFtsError } from '../../protocol/errors.js';

const DEFAULT_PORT = 19000;

function intArg(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** Sizes like 1048576, 512K, 10M, 2G, 1T (binary units). */
function sizeArg(value: string): number {
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a size such as 1048576, 512K, 10M or 2G');
  const unit = (m[2] ?? '').charAt(0).toUpperCase();
  const power = { '': 0, K: 1, M: 2, G: 3, T: 4 }[unit] ?? 0;
  return Number(m[1]) * 1024 ** power;
}

interface ClientFlags {
  host: string;
  port: number;
  token?: string;
  json?: boolean;
  reconnect?: boolean;
  stateDir?: string;
}

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--host <host>', 'server host', '127.0.0.1')
    .option('--port <port>', 'server port', intArg, DEFAULT_PORT)
    .option('--token <token>', 'authentication token')
    .option('--no-reconnect', 'fail at once when the connection is lost (default: reconnect and resume)')
    .option('--state-dir <dir>', 'where interrupted transfers are recorded, to resume them when run again')
    .option('--json', 'print one JSON result on stdout');
}

async function withClient<T>(flags: ClientFlags, run: (client: FileTransferClient) => Promise<T>): Promise<T> {
  const client = new FileTransferClient({
    ...(flags.token !== undefined ? { token: flags.token } : {}),
    ...(flags.reconnect === false ? { autoReconnect: false } : {}),
    ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
  });
  try {
    await client.connect({ host: flags.host, port: flags.port });
    return await run(client);
  } finally {
    await client.disconnect({ timeoutMs: 1000 }).catch(() => undefined);
  }
}

function progressBar(label: string): { update: (p: TransferProgress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} bytes | {rate} MB/s`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (p) => {
      if (!started) {
        bar.start(p.total, 0, { rate: '0' });
        started = true;
      }
      bar.update(p.bytes, { rate: (p.rate / 1e6).toFixed(1) });
    },
    stop: () => started && bar.stop(),
  };
}

function report(result: TransferResult, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const mbps = result.durationMs > 0 ? (result.bytes / 1e6 / (result.durationMs / 1000)).toFixed(1) : '-';
  const verb = result.direction === 'upload' ? 'uploaded' : 'downloaded';
  process.stdout.write(`${verb} ${result.direction === 'upload' ? result.localPath : result.remoteName} -> ${result.direction === 'upload' ? result.remoteName : result.localPath}: ${result.bytes} bytes in ${result.durationMs} ms (${mbps} MB/s), sha256 ${result.sha256}, verified\n`);
}

export function buildProgram(): Command {
  const program = new Command('fts').description('high-throughput file transfer over the FTS1 protocol').showHelpAfterError();

  program
    .command('serve')
    .description('run a server over a storage folder')
    .option('--root <dir>', 'storage folder (created if missing)', './storage')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', intArg, DEFAULT_PORT)
    .option('--token <token>', 'require this token from clients')
    .option('--max-file-size <size>', 'largest file accepted', sizeArg)
    .option('--quota <size>', 'total bytes stored files may take', sizeArg)
    .option('--max-connections <n>', 'concurrent connections', intArg)
    .option('--max-buffered <size>', 'received chunk data held in memory at once, all uploads together (default 64M)', sizeArg)
    .option('--no-direct-io', 'read and write files through the page cache (default: O_DIRECT where the file system allows it)')
    .action(async (o: { root: string; host: string; port: number; token?: string; maxFileSize?: number; quota?: number; maxConnections?: number; maxBuffered?: number; directIo: boolean }) => {
      const server = new FileTransferServer({
        root: o.root,
        host: o.host,
        port: o.port,
        ...(o.token !== undefined ? { authToken: o.token } : {}),
        ...(o.maxFileSize !== undefined ? { maxFileSize: o.maxFileSize } : {}),
        ...(o.quota !== undefined ? { quotaBytes: o.quota } : {}),
        ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
        ...(o.maxBuffered !== undefined ? { maxBufferedBytes: o.maxBuffered } : {}),
        directIo: o.directIo,
      });
      // Handlers first: a signal sent as soon as the "serving" line is read must shut down cleanly.
      const shutdown = () => {
        process.stderr.write('shutting down\n');
        void server.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
      server.on('uploadComplete', (e: { file: { name: string; size: number } }) => process.stderr.write(`stored ${e.file.name} (${e.file.size} bytes)\n`));
      server.on('transferFailed', (e: { transferId: string; error: Error }) => process.stderr.write(`transfer ${e.transferId} failed: ${String(e.error)}\n`));
      let addr: Awaited<ReturnType<FileTransferServer['start']>>;
      try {
        addr = await server.start();
      } catch (err) {
        process.off('SIGINT', shutdown);
        process.off('SIGTERM', shutdown);
        // Stopped by a signal while starting: the shutdown handler exits.
        if (server.isStopping) return;
        await server.stop();
        throw err;
      }
      process.stderr.write(`fts serving ${server.storage.root} on ${addr.host}:${addr.port}\n`);
    });

  clientOptions(program.command('put <local> [remote]').description('upload a file'))
    .option('--overwrite', 'replace an existing file of that name')
    .action(async (local: string, remote: string | undefined, o: ClientFlags & { overwrite?: boolean }) => {
      const bar = progressBar('put');
      const result = await withClient(o, (c) => c.uploadFile(local, remote, { overwrite: o.overwrite ?? false, onProgress: bar.update })).finally(bar.stop);
      report(result, o.json);
    });

  clientOptions(program.command('get <remote> [local]').description('download a file')).action(async (remote: string, local: string | undefined, o: ClientFlags) => {
    const bar = progressBar('get');
    const result = await withClient(o, (c) => c.downloadFile(remote, local, { onProgress: bar.update })).finally(bar.stop);
    report(result, o.json);
  });

  clientOptions(program.command('ls [pattern]').description('list stored files'))
    .option('--offset <n>', 'skip this many', intArg, 0)
    .option('--limit <n>', 'at most this many (0 = 100, max 1000)', intArg, 0)
    .addOption(new Option('--sort <key>', 'sort key').choices(['name', 'size', 'time']).default('name'))
    .option('--desc', 'descending order')
    .action(async (pattern: string | undefined, o: ClientFlags & { offset: number; limit: number; sort: string; desc?: boolean }) => {
      const result = await withClient(o, (c) =>
        c.listFiles({ pattern: pattern ?? '*', offset: o.offset, limit: o.limit, sortBy: o.sort as 'name' | 'size' | 'time', order: o.desc ? 'desc' : 'asc' }),
      );
      if (o.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      for (const f of result.files) process.stdout.write(`${String(f.size).padStart(14)}  ${new Date(f.modifiedMs).toISOString()}  ${f.name}\n`);
      process.stdout.write(`${result.files.length} of ${result.total} files${result.hasMore ? ' (more: use --offset)' : ''}\n`);
    });

  program
    .command('resumable')
    .description('list the interrupted transfers this machine can resume (run the same put/get again to resume one)')
    .option('--clear', 'forget them all, and delete the partial downloads')
    .option('--state-dir <dir>', 'the state folder', defaultStateDir())
    .option('--json', 'print one JSON result on stdout')
    .action(async (o: { clear?: boolean; stateDir: string; json?: boolean }) => {
      const store = new ClientStateStore(o.stateDir);
      if (o.clear) {
        const n = await store.clear();
        process.stdout.write(o.json ? `${JSON.stringify({ cleared: n })}\n` : `cleared ${n} interrupted transfer${n === 1 ? '' : 's'}\n`);
        return;
      }
      const records = await store.list();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(records)}\n`);
        return;
      }
      for (const r of records) {
        const what = r.kind === 'upload' ? `put ${r.localPath} -> ${r.remoteName}` : `get ${r.remoteName} -> ${r.localPath}`;
        process.stdout.write(`${r.transferId}  ${r.endpoint}  ${what}  (${new Date(r.savedMs).toISOString()})\n`);
      }
      process.stdout.write(`${records.length} interrupted transfer${records.length === 1 ? '' : 's'} in ${o.stateDir}\n`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (isFtsError(err)) {
      process.stderr.write(`fts: error ${err.code} ${err.codeName}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`fts: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

/** Whether this module is the script node was started with (through a symlink, or a path with spaces, too). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const code = await main(process.argv);
  if (code !== 0) process.exit(code);
}
