/**
 * maxBufferedBytes over real sockets and files: several transfers at once
 * hold no more received chunk data than the budget (and a chunk or two per
 * connection beyond it), and still all complete and verify.
 */
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { FileTransferServer } from '../../engine/server.js';
import { WorkerPool } from '../../workers/pool.js';
import { sha256File, startPair, tempDir, within, writeRandomFile, type Pair } from '../helpers/fixtures.js';

const test = suite('engine: received data bounded across transfers (maxBufferedBytes)');
const LIMIT = 512 * 1024;
const CHUNK = 256 * 1024;
const FILES = 4;
const SIZE = 6 * 1024 * 1024 + 123;
let pair: Pair;

test.before(async () => {
  pair = await startPair({ noConnect: true, server: { maxBufferedBytes: LIMIT }, client: { maxBufferedBytes: LIMIT } });
});
test.after(async () => {
  await pair.cleanup();
});

test('four uploads on four connections, then four downloads on one: every file verified, and each side held at most the budget and about a chunk a connection beyond it', async () => {
  const files = await Promise.all(
    Array.from({ length: FILES }, async (_, i) => {
      const local = join(pair.work, `b${i}.src`);
      return { i, local, sha: await writeRandomFile(local, SIZE) };
    }),
  );
  const uploaders = await Promise.all(files.map(() => pair.newClient()));
  const ups = await within(Promise.all(files.map((f, i) => uploaders[i]!.uploadFile(f.local, `b${f.i}.bin`))), 60_000, 'uploads');
  ups.forEach((r, i) => {
    assert.ok(r.verified);
    assert.is(r.sha256, files[i]!.sha);
  });
  const server = pair.server.buffered;
  assert.is(server.limitBytes, LIMIT);
  assert.is(server.bytes, 0, 'nothing held once the uploads are done');
  // Past the limit at some point (so the sockets were paused), never by more than two chunks a connection.
  assert.ok(server.peakBytes > LIMIT, `the budget was reached (peak ${server.peakBytes})`);
  assert.ok(server.peakBytes <= LIMIT + FILES * 2 * CHUNK, `server held at most ${LIMIT + FILES * 2 * CHUNK} (peak ${server.peakBytes})`);

  const downloader = await pair.newClient();
  const downs = await within(
    Promise.all(files.map((f) => downloader.downloadFile(`b${f.i}.bin`, join(pair.work, `b${f.i}.down`)))),
    60_000,
    'downloads',
  );
  for (const [k, r] of downs.entries()) {
    assert.ok(r.verified);
    assert.is(await sha256File(join(pair.work, `b${k}.down`)), files[k]!.sha);
  }
  const client = downloader.buffered;
  assert.is(client.bytes, 0);
  assert.ok(client.peakBytes > LIMIT, `the client's budget was reached (peak ${client.peakBytes})`);
  assert.ok(client.peakBytes <= LIMIT + 2 * CHUNK, `one connection: at most two chunks beyond the budget (peak ${client.peakBytes})`);
});

test("an upload whose sink waits for a worker slot (held by another upload) does not spend the budget: both finish, one after the other", async () => {
  // One long-lived task slot on the server: the second upload's sink waits for the first upload to end.
  const serverPool = new WorkerPool({ threads: 1, tasksPerThread: 65 });
  const clientPool = new WorkerPool({ threads: 1 });
  const root = await tempDir('fts-slot-root-');
  const server = new FileTransferServer({ host: '127.0.0.1', port: 0, root: root.path, pool: serverPool, maxBufferedBytes: LIMIT });
  const clients = [0, 1].map(() => new FileTransferClient({ pool: clientPool, stateDir: false, autoReconnect: false }));
  try {
    const addr = await server.start();
    const files = await Promise.all(
      [0, 1].map(async (i) => {
        const local = join(pair.work, `slot${i}.src`);
        return { local, sha: await writeRandomFile(local, 16 * 1024 * 1024) };
      }),
    );
    for (const c of clients) await c.connect(addr);
    // Before the fix, the waiting sink's queued chunks held the budget, every socket paused, and the first upload never ended (-724 after 30 s).
    const results = await within(Promise.all(files.map((f, i) => clients[i]!.uploadFile(f.local, `slot${i}.bin`))), 20_000, 'both uploads');
    results.forEach((r, i) => {
      assert.ok(r.verified);
      assert.is(r.sha256, files[i]!.sha);
    });
    assert.is(server.buffered.bytes, 0);
  } finally {
    for (const c of clients) await c.disconnect({ timeoutMs: 2_000 }).catch(() => undefined);
    await server.stop();
    await serverPool.close();
    await clientPool.close();
    await root.remove();
  }
});

test.run();
