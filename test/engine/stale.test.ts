/**
 * Stale state is cleaned: at start the server removes temporary files that no
 * checkpoint names, and a checkpoint older than the resume TTL is expired at
 * once (its data deleted, its transfer answered EXPIRED); on the client, a
 * record of an upload whose source changed is not resumed (FILE_CHANGED).
 */
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientStateStore } from '../../engine/client-state.js';
import { FileTransferClient } from '../../engine/client.js';
import { writeCheckpoint } from '../../engine/checkpoint.js';
import { FileTransferServer } from '../../engine/server.js';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { tempDir, writeRandomFile } from '../helpers/fixtures.js';

const test = suite('engine: stale state');
const HOUR = 3_600_000;

test('server start: orphaned temporary files go; a checkpoint past the TTL expires at once and is answered EXPIRED', async () => {
  const root = await tempDir('fts-stale-');
  const work = await tempDir('fts-stale-work-');
  const pool = new WorkerPool({ threads: 1 });
  const tmp = join(root.path, '.fts', 'tmp');
  await mkdir(tmp, { recursive: true });
  // An orphan: data with no checkpoint.
  await writeFile(join(tmp, '11111111-1111-4111-8111-111111111111.part'), Buffer.alloc(1024));
  // A checkpoint saved two hours ago, with a one-hour TTL.
  const id = '22222222-2222-4222-8222-222222222222';
  const local = join(work.path, 'old.bin');
  await writeRandomFile(local, 512 * 1024);
  await writeFile(join(tmp, `${id}.part`), Buffer.alloc(256 * 1024));
  const saved = Date.now() - 2 * HOUR;
  await writeCheckpoint(join(tmp, `${id}.ckpt`), {
    version: 1,
    transferId: id,
    filename: 'old.bin',
    fileSize: 512 * 1024,
    sha256: '0'.repeat(64),
    chunkSize: 256 * 1024,
    compression: 0,
    options: 2,
    modifiedMs: saved,
    received: Buffer.from([0b01]).toString('base64'),
    createdMs: saved,
    savedMs: saved,
  });
  const server = new FileTransferServer({ root: root.path, port: 0, pool, resumeTtlMs: HOUR });
  const { port } = await server.start();
  const state = await tempDir('fts-stale-state-');
  try {
    // Expired at start: its data and checkpoint are gone, the orphan too.
    assert.equal(await readdir(tmp), []);
    assert.is(server.parkedUploadCount, 1, 'still known, as expired, for one more TTL');
    // A client that recorded this upload resumes it: EXPIRED, -760 with 'fail'.
    const st = await import('node:fs/promises').then((fs) => fs.stat(local));
    await new ClientStateStore(state.path).save({
      kind: 'upload',
      transferId: id,
      endpoint: `127.0.0.1:${port}`,
      remoteName: 'old.bin',
      localPath: local,
      size: st.size,
      mtimeMs: st.mtimeMs,
      chunkSize: 256 * 1024,
      window: 64,
      compression: 0,
      savedMs: saved,
    });
    const client = new FileTransferClient({ pool, stateDir: state.path, onResumeFailure: 'fail' });
    await client.connect({ host: '127.0.0.1', port });
    const err = await client.uploadFile(local, 'old.bin').then(() => undefined, (e: unknown) => e);
    assert.instance(err, FtsError);
    assert.is((err as FtsError).code, -760);
    await client.disconnect();
  } finally {
    await server.stop();
    await pool.close();
    await root.remove();
    await work.remove();
    await state.remove();
  }
});

test('client: a recorded upload whose source changed is not resumed (-761 with fail, a fresh upload with restart)', async () => {
  const root = await tempDir('fts-stale2-');
  const work = await tempDir('fts-stale2-work-');
  const state = await tempDir('fts-stale2-state-');
  const pool = new WorkerPool({ threads: 1 });
  const server = new FileTransferServer({ root: root.path, port: 0, pool });
  const { port } = await server.start();
  try {
    const local = join(work.path, 'src.bin');
    await writeRandomFile(local, 300 * 1024);
    const record = {
      kind: 'upload' as const,
      transferId: '33333333-3333-4333-8333-333333333333',
      endpoint: `127.0.0.1:${port}`,
      remoteName: 'src.bin',
      localPath: local,
      size: 300 * 1024,
      mtimeMs: 1_000, // the source's time when the upload began: not its time now
      chunkSize: 256 * 1024,
      window: 64,
      compression: 0,
      savedMs: Date.now(),
    };
    const store = new ClientStateStore(state.path);
    await store.save(record);
    const failing = new FileTransferClient({ pool, stateDir: state.path, onResumeFailure: 'fail' });
    await failing.connect({ host: '127.0.0.1', port });
    const err = await failing.uploadFile(local, 'src.bin').then(() => undefined, (e: unknown) => e);
    await failing.disconnect();
    assert.instance(err, FtsError);
    assert.is((err as FtsError).code, -761);
    assert.equal(await store.list(), [], 'the stale record is dropped');

    await store.save(record);
    await utimes(local, new Date(), new Date());
    const restarting = new FileTransferClient({ pool, stateDir: state.path });
    await restarting.connect({ host: '127.0.0.1', port });
    const r = await restarting.uploadFile(local, 'src.bin');
    await restarting.disconnect();
    assert.ok(r.verified);
    assert.is.not(r.transferId, record.transferId, 'uploaded afresh');
  } finally {
    await server.stop();
    await pool.close();
    await root.remove();
    await work.remove();
    await state.remove();
  }
});

test.run();
