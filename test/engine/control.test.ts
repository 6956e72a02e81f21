/**
 * Transfer control on the client: pause and resume (§4: a paused download's
 * server stops sending without timing out; a paused upload's client stops
 * sending), and cancel by id or AbortSignal (TRANSFER_CANCEL; the receiver
 * deletes its temporary file and checkpoint).
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { sha256File, sleep, startPair, within, writeRandomFile } from '../helpers/fixtures.js';
import { until } from '../helpers/resume-helpers.js';

const test = suite('engine: pause, resume, cancel');
const MiB = 1024 * 1024;
let pool: WorkerPool;
test.before(() => {
  pool = new WorkerPool({ threads: 2 });
});
test.after(async () => {
  await pool.close();
});


for (const direction of ['upload', 'download'] as const) {
  test(`${direction}: pause stops the data, resume finishes it verified`, async () => {
    const p = await startPair({ pool });
    try {
      const size = 48 * MiB;
      const source = join(direction === 'upload' ? p.work : p.root, 'paused.bin');
      const sha = await writeRandomFile(source, size);
      let id = '';
      let bytes = 0;
      let paused = false;
      const onProgress = (pr: { bytes: number }) => {
        bytes = pr.bytes;
        if (!paused && pr.bytes >= 4 * MiB) {
          paused = true;
          p.client.pause(id);
        }
      };
      const onStart = (transferId: string) => (id = transferId);
      const run =
        direction === 'upload'
          ? p.client.uploadFile(source, 'paused.bin', { onProgress, onStart, compression: 'none' })
          : p.client.downloadFile('paused.bin', join(p.work, 'paused.dl'), { onProgress, onStart, compression: 'none' });
      await until(() => paused, 10_000, 'pause');
      // What was in flight may still land; then nothing more moves.
      await sleep(400);
      const settled = bytes;
      await sleep(600);
      assert.is(bytes, settled, 'no progress while paused');
      assert.ok(settled < size, `paused at ${settled} of ${size}`);
      p.client.resume(id);
      const r = await within(run, 30_000, `${direction} after resume`);
      assert.ok(r.verified);
      assert.is(r.sha256, sha);
      assert.is(await sha256File(direction === 'upload' ? join(p.root, 'paused.bin') : join(p.work, 'paused.dl')), sha);
    } finally {
      await p.cleanup();
    }
  });

  test(`${direction}: cancel mid-way rejects -711 and the receiver's temporary file and checkpoint go`, async () => {
    const p = await startPair({ pool });
    try {
      const size = 48 * MiB;
      const source = join(direction === 'upload' ? p.work : p.root, 'cancel.bin');
      await writeRandomFile(source, size);
      const abort = new AbortController();
      let id = '';
      const onProgress = (pr: { bytes: number }) => {
        if (pr.bytes < 4 * MiB) return;
        if (direction === 'upload') p.client.cancel(id);
        else abort.abort();
      };
      const onStart = (transferId: string) => (id = transferId);
      const run =
        direction === 'upload'
          ? p.client.uploadFile(source, 'cancel.bin', { onProgress, onStart, compression: 'none' })
          : p.client.downloadFile('cancel.bin', join(p.work, 'cancel.dl'), { onProgress, onStart, signal: abort.signal, compression: 'none' });
      const err = await within(run.then(() => undefined, (e: unknown) => e), 20_000, 'cancelled transfer');
      assert.instance(err, FtsError);
      assert.is((err as FtsError).code, -711);
      if (direction === 'upload') {
        await until(async () => (await readdir(join(p.root, '.fts', 'tmp'))).length === 0, 5_000, 'server temp files removed');
        assert.not.ok((await readdir(p.root)).includes('cancel.bin'), 'nothing under the final name');
      } else {
        assert.equal((await readdir(p.work)).filter((n) => n !== 'cancel.bin'), [], 'no partial download beside the target');
      }
    } finally {
      await p.cleanup();
    }
  });
}

test('uploads whose signal was aborted before they started: each is refused with -711, and none leaves its source open', async () => {
  const p = await startPair({ pool });
  try {
    const source = join(p.work, 'never.src');
    await writeRandomFile(source, 1000);
    const openOnSource = async () => {
      let n = 0;
      for (const fd of await readdir('/proc/self/fd')) if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === source) n++;
      return n;
    };
    const abort = new AbortController();
    abort.abort();
    for (let i = 0; i < 20; i++) {
      const err = await p.client.uploadFile(source, 'never.bin', { signal: abort.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.instance(err, FtsError);
      assert.is((err as FtsError).code, -711);
    }
    assert.is(await openOnSource(), 0, 'descriptors left open on the source');
  } finally {
    await p.cleanup();
  }
});

test.run();
