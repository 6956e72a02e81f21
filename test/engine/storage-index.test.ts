/**
 * The storage index (hashes of stored files) over real servers and files:
 * what an upload hashed is never hashed again, also by a server restarted
 * over the same root (stop() waits for the index, which is written in the
 * background); a file changed by other means is hashed once, then cached.
 */
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { FileTransferServer } from '../../engine/server.js';
import { WorkerPool } from '../../workers/pool.js';
import { sha256File, tempDir, within, writeRandomFile } from '../helpers/fixtures.js';
import { freePort } from '../helpers/resume-helpers.js';
import { startServerChild } from '../helpers/server-process.js';

const test = suite('engine: the storage index');
const FILES = 40;

/** A pool that counts the whole-file hashes asked of it (what storage does for a file it has no hash for). */
function countingPool(): { pool: WorkerPool; hashes: () => number } {
  const pool = new WorkerPool({ threads: 1 });
  const hashWholeFile = pool.hashWholeFile.bind(pool);
  let hashes = 0;
  pool.hashWholeFile = (fd: number, size: number) => {
    hashes++;
    return hashWholeFile(fd, size);
  };
  return { pool, hashes: () => hashes };
}

test('uploads at once, then a restart over the same root: listing and downloading every file hashes none; a file rewritten by other means is hashed once', async () => {
  const root = await tempDir('fts-index-root-');
  const work = await tempDir('fts-index-work-');
  const clientPool = new WorkerPool({ threads: 1 });
  const client = new FileTransferClient({ pool: clientPool, stateDir: false, autoReconnect: false });
  try {
    const src = join(work.path, 'src');
    const sha = await writeRandomFile(src, 5000);
    const first = countingPool();
    const server1 = new FileTransferServer({ host: '127.0.0.1', port: 0, root: root.path, pool: first.pool });
    await client.connect(await server1.start());
    // 16 at a time: the index saves of uploads that end together coalesce.
    for (let i = 0; i < FILES; i += 16) {
      await within(Promise.all(Array.from({ length: Math.min(16, FILES - i) }, (_, k) => client.uploadFile(src, `f${i + k}.bin`))), 20_000, 'uploads');
    }
    await client.disconnect();
    // Stopped right after the last upload: stop() writes what the background save had not yet.
    await server1.stop();
    await first.pool.close();
    assert.is(first.hashes(), 0, 'an upload hashes from the chunks it receives, never the stored file');

    const second = countingPool();
    const server2 = new FileTransferServer({ host: '127.0.0.1', port: 0, root: root.path, pool: second.pool });
    try {
      await client.connect(await server2.start());
      const listed = await client.listFiles({ pattern: '*', limit: 100 });
      assert.is(listed.total, FILES);
      for (const f of listed.files) assert.is(f.sha256, sha, `${f.name}: its hash, from the index`);
      for (let i = 0; i < FILES; i += 8) {
        await Promise.all(Array.from({ length: Math.min(8, FILES - i) }, (_, k) => client.downloadFile(`f${i + k}.bin`, join(work.path, `d${i + k}`))));
      }
      assert.is(second.hashes(), 0, 'the restarted server hashed nothing: every hash came from the index');

      // Rewritten behind the server's back: its size and mtime no longer match the index.
      const replaced = randomBytes(7000);
      await writeFile(join(root.path, 'f3.bin'), replaced);
      const expected = createHash('sha256').update(replaced).digest('hex');
      const down = await client.downloadFile('f3.bin', join(work.path, 'd3-again'));
      assert.is(down.sha256, expected);
      assert.is(await sha256File(join(work.path, 'd3-again')), expected);
      assert.is(second.hashes(), 1, 'the changed file hashed once');
      await client.downloadFile('f3.bin', join(work.path, 'd3-third'));
      assert.is((await client.listFiles({ pattern: 'f3.bin' })).files[0]!.sha256, expected);
      assert.is(second.hashes(), 1, 'and then served from the index');
    } finally {
      await client.disconnect().catch(() => undefined);
      await server2.stop();
      await second.pool.close();
    }
  } finally {
    await clientPool.close();
    await root.remove();
    await work.remove();
  }
});


test('a file replaced by an upload of the same size and mtime, then a crash before the index was saved: the restarted server serves the new hash', async () => {
  const root = await tempDir('fts-index-crash-root-');
  const work = await tempDir('fts-index-crash-work-');
  const pool = new WorkerPool({ threads: 1 });
  const client = new FileTransferClient({ pool, stateDir: false, autoReconnect: false });
  const port = await freePort();
  let child = await startServerChild(root.path, port);
  try {
    await client.connect({ host: '127.0.0.1', port });
    const when = new Date(1_600_000_000_000);
    const src = join(work.path, 'src');
    const [v1, v2] = [randomBytes(4096), randomBytes(4096)];
    writeFileSync(src, v1);
    utimesSync(src, when, when);
    await client.uploadFile(src, 'x.bin', { preserveTimestamp: true });
    await new Promise((r) => setTimeout(r, 1_500)); // the index, with v1's hash, is saved
    writeFileSync(src, v2);
    utimesSync(src, when, when);
    await client.uploadFile(src, 'x.bin', { preserveTimestamp: true, overwrite: true });
    child.kill('SIGKILL'); // within the second: the index on disk still names v1
    await new Promise((r) => child.once('exit', r));
    await client.disconnect().catch(() => undefined);
    const sha2 = createHash('sha256').update(v2).digest('hex');
    child = await startServerChild(root.path, port);
    await client.connect({ host: '127.0.0.1', port });
    const listed = await client.listFiles({ pattern: 'x.bin' });
    assert.not.equal(listed.files[0]!.sha256, createHash('sha256').update(v1).digest('hex'), "the listing does not give the replaced file's hash");
    const down = await within(client.downloadFile('x.bin', join(work.path, 'out')), 10_000, 'download');
    assert.ok(down.verified);
    assert.is(down.sha256, sha2);
    assert.is(await sha256File(join(work.path, 'out')), sha2);
  } finally {
    await client.disconnect().catch(() => undefined);
    child.kill('SIGKILL');
    await pool.close();
    await root.remove();
    await work.remove();
  }
});

test("stop() while an upload is being committed: the commit's index entry is written before stop() resolves", async () => {
  const root = await tempDir('fts-index-stop-root-');
  const work = await tempDir('fts-index-stop-work-');
  const pool = new WorkerPool({ threads: 1 });
  const client = new FileTransferClient({ pool, stateDir: false, autoReconnect: false });
  const server = new FileTransferServer({ host: '127.0.0.1', port: 0, root: root.path, pool });
  try {
    const src = join(work.path, 'src');
    await writeRandomFile(src, 100_000);
    // The folder fsync of the commit, slowed, is where stop() is called.
    const storage = server.storage as unknown as { syncFolder: (dir: string) => Promise<void> };
    const syncFolder = storage.syncFolder;
    let stopped: Promise<void> | undefined;
    storage.syncFolder = async (folder) => {
      stopped ??= server.stop();
      await new Promise((r) => setTimeout(r, 300));
      return syncFolder(folder);
    };
    await client.connect(await server.start());
    const upload = client.uploadFile(src, 'x.bin').catch(() => undefined);
    await within(
      (async () => {
        while (!stopped) await new Promise((r) => setTimeout(r, 5));
      })(),
      10_000,
      'stop() called',
    );
    await within(stopped!, 10_000, 'stop()');
    const indexPath = join(root.path, '.fts', 'index.json');
    assert.ok(existsSync(join(root.path, 'x.bin')), 'the file was stored');
    assert.ok(existsSync(indexPath) && 'x.bin' in (JSON.parse(readFileSync(indexPath, 'utf8')) as object), 'and its hash is in the index when stop() resolves');
    await upload;
  } finally {
    await client.disconnect().catch(() => undefined);
    await server.stop();
    await pool.close();
    await root.remove();
    await work.remove();
  }
});

test.run();
