/**
 * connect() retrying a server that is not up yet, and disconnect() called in
 * the middle of it: the retries stop at once, connect() rejects, and nothing
 * keeps the process alive afterwards.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { FileTransferServer } from '../../engine/server.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { sleep, tempDir, within } from '../helpers/fixtures.js';
import { freePort } from '../helpers/resume-helpers.js';

const test = suite('engine: connect() and disconnect() while retrying');

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('disconnect() while connect() waits to retry: connect rejects (-711) at once, no retry follows, no timer is left', async () => {
  const port = await freePort();
  const pool = new WorkerPool({ threads: 1 });
  const before = timers();
  const client = new FileTransferClient({ pool, stateDir: false, reconnect: { initialDelayMs: 1_000, maxAttempts: 10 } });
  let attempts = 0;
  client.on('reconnecting', () => attempts++);
  const connecting = client.connect({ host: '127.0.0.1', port }).then(
    () => undefined,
    (e: unknown) => e,
  );
  await sleep(200); // the first attempt was refused; the client waits 1 s for the second
  const t0 = performance.now();
  await within(client.disconnect(), 2_000, 'disconnect');
  const error = await within(connecting, 2_000, 'connect settles');
  assert.ok(performance.now() - t0 < 500, 'disconnect() did not wait out the backoff');
  assert.instance(error, FtsError);
  assert.is((error as FtsError).code, ErrorCode.TRANSFER_CANCELLED);
  const seen = attempts;
  await sleep(1_500);
  assert.is(attempts, seen, 'no retry after disconnect()');
  assert.is(timers(), before, 'no timer left to keep the process alive');
  await pool.close();
});

test('disconnect() while an attempt is in flight and the server comes up: the new connection is closed, connect rejects', async () => {
  const port = await freePort();
  const root = await tempDir('fts-connect-');
  const pool = new WorkerPool({ threads: 1 });
  const server = new FileTransferServer({ host: '127.0.0.1', port, root: root.path, pool });
  const client = new FileTransferClient({ pool, stateDir: false, reconnect: { initialDelayMs: 300, maxAttempts: 10 } });
  try {
    const connecting = client.connect({ host: '127.0.0.1', port }).then(
      () => 'connected',
      (e: unknown) => e,
    );
    await server.start();
    // The retry lands on the live server; disconnect() is called before or while it does.
    await sleep(250);
    await within(client.disconnect(), 5_000, 'disconnect');
    const outcome = await within(connecting, 5_000, 'connect settles');
    if (outcome !== 'connected') {
      assert.instance(outcome, FtsError);
      assert.is((outcome as FtsError).code, ErrorCode.TRANSFER_CANCELLED);
    }
    await sleep(100);
    assert.is(server.connectionCount, 0, 'no connection left on the server');
  } finally {
    await within(server.stop(), 10_000, 'stop');
    await pool.close();
    await root.remove();
  }
});

test.run();
