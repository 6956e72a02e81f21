/**
 * 100 clients at once against one server with the default connection limit
 * (100): each uploads its own file, then downloads it back.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { ErrorCode } from '../../protocol/errors.js';
import { listDir, rejection, sha256File, sleep, startPair, within, writeRandomFile, type Pair } from '../helpers/fixtures.js';

const CLIENTS = 100;
const test = suite('engine: 100 concurrent clients');
let pair: Pair;

test.before(async () => {
  pair = await startPair({ noConnect: true });
});
test.after(async () => {
  await pair.cleanup();
});

test('100 clients each upload then download their own file; all verified', async () => {
  const files = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const size = randomInt(64 * 1024, 300 * 1024 + 1);
      const local = join(pair.work, `c${i}.src`);
      return { i, size, local, sha: await writeRandomFile(local, size) };
    }),
  );
  const clients = await Promise.all(files.map(() => pair.newClient()));
  assert.is(pair.server.connectionCount, CLIENTS, 'all 100 connected at once');

  // the 101st is one too many
  const extra = new FileTransferClient({ stateDir: false, autoReconnect: false, ...(pair.pool ? { pool: pair.pool } : {}) });
  assert.is((await rejection(() => extra.connect(pair.addr))).code, ErrorCode.SERVER_BUSY);

  const started = Date.now();
  const results = await within(
    Promise.all(
      files.map(async (f, i) => {
        const c = clients[i]!;
        const up = await c.uploadFile(f.local, `f${f.i}.bin`);
        const target = join(pair.work, `c${f.i}.down`);
        const down = await c.downloadFile(`f${f.i}.bin`, target);
        return { f, up, down, target };
      }),
    ),
    60_000,
    '100 round trips',
  );
  const elapsed = Date.now() - started;

  for (const { f, up, down, target } of results) {
    assert.ok(up.verified, `upload ${f.i} verified`);
    assert.ok(down.verified, `download ${f.i} verified`);
    assert.is(up.bytes, f.size);
    assert.is(down.bytes, f.size);
    assert.is(up.sha256, f.sha, `upload ${f.i} sha`);
    assert.is(down.sha256, f.sha, `download ${f.i} sha`);
    assert.is(await sha256File(target), f.sha, `downloaded ${f.i} content`);
    assert.is(await sha256File(join(pair.root, `f${f.i}.bin`)), f.sha, `stored ${f.i} content`);
  }
  assert.is(new Set(results.map((r) => r.up.transferId)).size, CLIENTS);
  assert.equal(await listDir(join(pair.root, '.fts', 'tmp')), []);
  const list = await clients[0]!.listFiles({ pattern: 'f*.bin', limit: 1000 });
  assert.is(list.total, CLIENTS, 'all 100 listed');
  assert.ok(elapsed < 60_000);

  await Promise.all(clients.map((c) => c.disconnect()));
  const end = Date.now() + 5_000;
  while (pair.server.connectionCount > 0 && Date.now() < end) await sleep(20);
  assert.is(pair.server.connectionCount, 0, 'every connection closed on the server');
});

test.run();
