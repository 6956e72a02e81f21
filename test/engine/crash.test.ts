/**
 * Process faults for real: the server process is killed with SIGKILL in the
 * middle of an upload and started again on the same storage folder; the
 * client reconnects and the upload resumes from the server's durable
 * checkpoint, sending again only what was not checkpointed; an upload
 * killed before its first checkpoint is sent anew.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient, type TransferResumed } from '../../engine/client.js';
import { WorkerPool } from '../../workers/pool.js';
import { listDir, sha256File, tempDir, within, writeRandomFile } from '../helpers/fixtures.js';
import { FaultProxy } from '../helpers/proxy.js';
import { freePort, until } from '../helpers/resume-helpers.js';
import { startServerChild } from '../helpers/server-process.js';

const test = suite('engine: server killed mid-upload');
const MiB = 1024 * 1024;

test('SIGKILL of the server mid-upload, restart on the same root: the upload resumes and ends verified', async () => {
  const root = await tempDir('fts-crash-root-');
  const work = await tempDir('fts-crash-work-');
  const pool = new WorkerPool({ threads: 1 });
  const port = await freePort();
  let child = await startServerChild(root.path, port);
  const client = new FileTransferClient({ stateDir: false, pool, reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: 40, jitter: 0 } });
  try {
    const size = 48 * MiB;
    const local = join(work.path, 'big.src');
    const sha = await writeRandomFile(local, size);
    await client.connect({ host: '127.0.0.1', port });
    let killed = false;
    let restarted: Promise<ChildProcess> | undefined;
    const reconnects: number[] = [];
    client.on('reconnected', () => reconnects.push(Date.now()));
    const resumes: TransferResumed[] = [];
    client.on('transferResumed', (r: TransferResumed) => resumes.push(r));
    const upload = client.uploadFile(local, 'big.bin', {
      onProgress: (p) => {
        // Kill once a good part is acknowledged, so a checkpoint names real chunks.
        if (!killed && p.bytes >= size / 2) {
          killed = true;
          child.kill('SIGKILL');
          restarted = once(child, 'exit').then(() => startServerChild(root.path, port));
        }
      },
    });
    const result = await within(upload, 60_000, 'upload across a server crash');
    assert.ok(killed, 'the server was killed');
    child = await restarted!;
    assert.ok(result.verified);
    assert.is(result.sha256, sha);
    assert.is(await sha256File(join(root.path, 'big.bin')), sha);
    assert.ok(reconnects.length >= 1, 'the client reconnected');
    // Resumed from the restarted server's checkpoint, not restarted: the
    // server answered RESUMABLE and kept chunks, and less than a second
    // whole file went on the wire.
    assert.ok(resumes.length >= 1, 'a RESUME_RESPONSE was received');
    assert.is(resumes.at(-1)!.status, 'resumable');
    assert.ok(resumes.at(-1)!.chunksKept > 0, `chunks kept: ${resumes.at(-1)!.chunksKept}`);
    assert.ok(result.bytesOnWire < 2 * size, `bytes on the wire ${result.bytesOnWire} for a ${size}-byte file`);
    assert.equal((await listDir(join(root.path, '.fts', 'tmp'))).filter((n) => !n.endsWith('.tmp')), []);
  } finally {
    await client.disconnect({ timeoutMs: 1000 }).catch(() => undefined);
    child.kill('SIGKILL');
    await pool.close();
    await root.remove();
    await work.remove();
  }
});

test('SIGKILL before an upload\'s first sync: it has no checkpoint, the restarted server answers NOT_FOUND, and the client sends it anew', async () => {
  const root = await tempDir('fts-crash-root-');
  const work = await tempDir('fts-crash-work-');
  const pool = new WorkerPool({ threads: 1 });
  const port = await freePort();
  let child = await startServerChild(root.path, port);
  // Past its first MiB, nothing more reaches the server: it holds part of a
  // 1.5 MiB file, less than one sync (2 MiB here), and no UPLOAD_COMPLETE.
  const proxy = new FaultProxy({ host: '127.0.0.1', port }, { kind: 'blackhole', direction: 'toServer', afterBytes: MiB });
  const endpoint = await proxy.start();
  const client = new FileTransferClient({ stateDir: false, pool, reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: 40, jitter: 0 } });
  try {
    const size = 1.5 * MiB;
    const local = join(work.path, 'small.src');
    const sha = await writeRandomFile(local, size);
    await client.connect(endpoint);
    const resumes: TransferResumed[] = [];
    client.on('transferResumed', (r: TransferResumed) => resumes.push(r));
    const upload = client.uploadFile(local, 'small.bin');
    const tmp = join(root.path, '.fts', 'tmp');
    await until(async () => (await listDir(tmp)).some((n) => n.endsWith('.part')), 10_000, 'the upload started on the server');
    await until(() => proxy.counters.bytesDropped > 0, 10_000, 'the rest held back');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await listDir(tmp)).filter((n) => n.includes('.ckpt')), [], 'no checkpoint: none could name a synced chunk');
    child.kill('SIGKILL');
    await once(child, 'exit');
    proxy.mode = { kind: 'pass' };
    child = await startServerChild(root.path, port);
    const result = await within(upload, 60_000, 'upload after the restart');
    assert.ok(result.verified);
    assert.is(result.sha256, sha);
    assert.is(await sha256File(join(root.path, 'small.bin')), sha);
    assert.ok(resumes.length >= 1, 'a RESUME_RESPONSE was received');
    assert.is(resumes[0]!.status, 'not_found', 'the restarted server did not know the upload');
    // The orphaned temporary file went at start-up, and the new one with its commit.
    assert.equal(await listDir(tmp), []);
  } finally {
    await client.disconnect({ timeoutMs: 1000 }).catch(() => undefined);
    child.kill('SIGKILL');
    await proxy.stop();
    await pool.close();
    await root.remove();
    await work.remove();
  }
});

test.run();
