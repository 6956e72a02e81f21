/**
 * WorkerPool.ready(): a real pool's first task, run by a worker thread once
 * it has loaded the task module; what connect() and start() wait for.
 */
import { threadId } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { within } from '../helpers/fixtures.js';

const test = suite('workers: the pool');

test('ready() resolves from a worker thread, once however often it is asked', async () => {
  const pool = new WorkerPool({ threads: 1 });
  try {
    const first = pool.ready();
    assert.is(pool.ready(), first, 'one warm-up task, shared');
    const { threadId: worker } = await within(first, 10_000, 'ready');
    assert.ok(worker > 0 && worker !== threadId, `ran on worker thread ${worker}, not the main thread (${threadId})`);
  } finally {
    await pool.close();
  }
});

test('ready() of a closed pool rejects with -740 (connect() and start() go on without it)', async () => {
  const pool = new WorkerPool({ threads: 1 });
  await pool.close();
  let error: unknown;
  try {
    await pool.ready();
  } catch (err) {
    error = err;
  }
  assert.instance(error, FtsError);
  assert.is((error as FtsError).code, -740);
});

test.run();
