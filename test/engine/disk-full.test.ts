/**
 * A disk that fills up in the middle of a transfer, for real: a small tmpfs
 * is mounted, and once the transfer is under way a filler file takes the
 * rest of its space. The transfer must fail with a clear code, leave nothing
 * under the final name and no temporary file behind (the space comes back),
 * and the same transfer must succeed once there is room again.
 *
 * Mounting needs root (CAP_SYS_ADMIN); where it is refused the suite says so
 * and runs nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { FileTransferServer } from '../../engine/server.js';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { sha256File, tempDir, within, writeRandomFile, type TempDir } from '../helpers/fixtures.js';

const MiB = 1024 * 1024;
const FS_BYTES = 24 * MiB;
const FILE_BYTES = 16 * MiB;

function mountTmpfs(): string | undefined {
  const at = mkdtempSync(join(tmpdir(), 'fts-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_BYTES}`, 'tmpfs', at], { stdio: 'ignore' });
    return at;
  } catch {
    rmSync(at, { recursive: true, force: true });
    return undefined;
  }
}

/** Writes a file until the file system is full; returns its path. */
async function fill(dirPath: string): Promise<string> {
  const path = join(dirPath, 'filler');
  const handle = await open(path, 'a');
  const block = Buffer.alloc(256 * 1024, 1);
  try {
    for (;;) await handle.write(block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close();
  }
  return path;
}

/** Files under `dirPath`, recursively (relative names). */
async function filesUnder(dirPath: string): Promise<string[]> {
  const entries = await readdir(dirPath, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dirPath.length + 1));
}

const mountPoint = mountTmpfs();

/**
 * Transfer options that, once 2 MiB have arrived, pause the transfer, fill
 * the disk and resume it: the rest of the file then meets a full disk
 * (windows of 4 chunks keep what is in flight at the pause small).
 */
function fillMidway(client: FileTransferClient) {
  let id = '';
  let filling: Promise<string> | undefined;
  return {
    options: {
      onStart: (transferId: string) => (id = transferId),
      onProgress: (p: { bytes: number }) => {
        if (p.bytes < 2 * MiB || filling) return;
        client.pause(id);
        filling = fill(mountPoint!).then((path) => (client.resume(id), path));
      },
    },
    filled: () => filling,
  };
}

const test = suite('engine: a disk that fills up mid-transfer (real tmpfs)');

if (!mountPoint) {
  console.log('  (disk-full suite not run: mounting a tmpfs needs root)');
} else {
  let pool: WorkerPool;
  let work: TempDir;
  test.before(async () => {
    pool = new WorkerPool({ threads: 2 });
    work = await tempDir('fts-full-work-');
  });
  test.after(async () => {
    await pool.close();
    await work.remove();
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  test("the server's disk fills during an upload: the upload fails with -745 storage_full, nothing is stored or left behind, and it succeeds once there is room", async () => {
    const root = join(mountPoint, 'root');
    const server = new FileTransferServer({ host: '127.0.0.1', port: 0, root, pool, window: 4 });
    const client = new FileTransferClient({ pool, stateDir: false, autoReconnect: false });
    const local = join(work.path, 'up.src');
    const sha = await writeRandomFile(local, FILE_BYTES);
    let filler: string | undefined;
    try {
      await client.connect(await server.start());
      // Once the upload is under way, another writer takes the rest of the disk.
      const midway = fillMidway(client);
      const error = await within(
        client
          .uploadFile(local, 'big.bin', midway.options)
          .then(
            () => assert.unreachable('the upload should fail'),
            (e: unknown) => e,
          ),
        30_000,
        'the upload fails',
      );
      assert.ok(midway.filled(), 'the disk was filled while the transfer ran');
      filler = await midway.filled()!;
      assert.instance(error, FtsError);
      // The server's own full disk is, to its client, storage_full (-745); -754 is for a client's own disk.
      assert.is((error as FtsError).code, -745, String(error));
      assert.match(String(error), /ENOSPC/, 'the reason is in the message');
      // Nothing under the final name, no temporary file left holding the space.
      await within(
        (async () => {
          while ((await filesUnder(root)).some((f) => f.includes('.part'))) await new Promise((r) => setTimeout(r, 20));
        })(),
        5_000,
        'the temporary file removed',
      );
      const left = await filesUnder(root);
      assert.not.ok(left.includes('big.bin'), `nothing under the final name: ${left.join(', ')}`);
      assert.equal((await client.listFiles({ pattern: '*' })).files.length, 0, 'nothing listed');

      await rm(filler!);
      filler = undefined;
      const again = await within(client.uploadFile(local, 'big.bin'), 30_000, 'the upload with room again');
      assert.ok(again.verified);
      assert.is(await sha256File(join(root, 'big.bin')), sha);
    } finally {
      if (filler) await rm(filler, { force: true });
      await client.disconnect({ timeoutMs: 2_000 }).catch(() => undefined);
      await server.stop();
      await rm(root, { recursive: true, force: true });
    }
  });

  test("the client's disk fills during a download: it fails with -754, leaves no file under the target name and no temporary file, and succeeds once there is room", async () => {
    const serverRoot = await tempDir('fts-full-root-');
    const server = new FileTransferServer({ host: '127.0.0.1', port: 0, root: serverRoot.path, pool });
    const client = new FileTransferClient({ pool, stateDir: false, autoReconnect: false, window: 4 });
    const local = join(work.path, 'down.src');
    const sha = await writeRandomFile(local, FILE_BYTES);
    const targetDir = join(mountPoint, 'downloads');
    const target = join(targetDir, 'big.copy');
    let filler: string | undefined;
    try {
      await client.connect(await server.start());
      await client.uploadFile(local, 'big.bin');
      await mkdir(targetDir);
      const midway = fillMidway(client);
      const error = await within(
        client
          .downloadFile('big.bin', target, midway.options)
          .then(
            () => assert.unreachable('the download should fail'),
            (e: unknown) => e,
          ),
        30_000,
        'the download fails',
      );
      assert.ok(midway.filled(), 'the disk was filled while the transfer ran');
      filler = await midway.filled()!;
      assert.instance(error, FtsError);
      assert.is((error as FtsError).code, -754, String(error));
      assert.equal(await readdir(targetDir), [], 'no file under the target name, no temporary file');

      await rm(filler!);
      filler = undefined;
      const again = await within(client.downloadFile('big.bin', target), 30_000, 'the download with room again');
      assert.ok(again.verified);
      assert.is(await sha256File(target), sha);
      assert.is((await stat(target)).size, FILE_BYTES);
    } finally {
      if (filler) await rm(filler, { force: true });
      await client.disconnect({ timeoutMs: 2_000 }).catch(() => undefined);
      await server.stop();
      await serverRoot.remove();
      await rm(targetDir, { recursive: true, force: true });
    }
  });
}

test.run();
