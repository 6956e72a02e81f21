/**
 * File sources (workers/source.ts and the `fileSource` task): one sender's
 * reads over one port, answered in order, each with its own bytes, CRC32 or
 * failure; closing answers what was sent before and refuses what comes after.
 */
import { closeSync, constants as fsc, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '@node-rs/crc32';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import type { ReadChunkResult } from '../../workers/types.js';
import { tempDir, within, type TempDir } from '../helpers/fixtures.js';

const test = suite('workers: file sources');
const CHUNK = 256 * 1024;
let pool: WorkerPool;
let dir: TempDir;
let data: Buffer;
let path: string;

test.before(async () => {
  pool = new WorkerPool({ threads: 1 });
  dir = await tempDir('fts-source-');
  data = Buffer.alloc(6 * CHUNK + 1234);
  for (let i = 0; i < data.length; i++) data[i] = (i * 197 + (i >> 11)) & 0xff;
  path = join(dir.path, 'source.bin');
  writeFileSync(path, data);
});

test.after(async () => {
  await pool.close();
  await dir.remove();
});

function lengthOf(i: number): number {
  return Math.min(CHUNK, data.length - i * CHUNK);
}

/** Checks a result against chunk `i` of the file and gives its buffer back. */
function assertChunk(result: ReadChunkResult, i: number): void {
  assert.ok(result.ok, `chunk ${i}: ${result.ok ? '' : result.message}`);
  const view = pool.buffers.viewOf(result.ref).subarray(0, lengthOf(i));
  const want = data.subarray(i * CHUNK, i * CHUNK + lengthOf(i));
  assert.ok(view.equals(want), `chunk ${i}: its own bytes`);
  if (result.ok) assert.is(result.crc32, crc32(want) >>> 0, `chunk ${i}: its CRC32`);
  pool.buffers.release(view);
}

function readTask(fd: number, i: number, owned: boolean, directFd?: number) {
  const buffer = pool.buffers.acquire(lengthOf(i), owned);
  return { fd, ...(directFd !== undefined ? { directFd } : {}), ref: pool.buffers.refOf(buffer), position: i * CHUNK, length: lengthOf(i), compress: false };
}

test('reads started together (slab slots and owned buffers) each come back with their own bytes and CRC32; a read past the end fails alone (-750)', async () => {
  const fd = openSync(path, 'r');
  const source = pool.openSource();
  try {
    const reads = [0, 1, 2, 3, 4, 5, 6].map((i) => source.read(readTask(fd, i, i % 2 === 1)));
    const past = pool.buffers.acquire(CHUNK);
    const beyond = source.read({ fd, ref: pool.buffers.refOf(past), position: 8 * CHUNK, length: CHUNK, compress: false });
    const results = await within(Promise.all(reads), 10_000, 'reads');
    results.forEach((r, i) => assertChunk(r, i));
    const failed = await within(beyond, 10_000, 'read past the end');
    assert.not.ok(failed.ok);
    if (!failed.ok) assert.is(failed.code, -750);
    pool.buffers.release(pool.buffers.viewOf(failed.ref));
  } finally {
    source.close();
    await within(source.settled(), 5_000, 'settled');
    closeSync(fd);
  }
});

test('reads in later turns, one at a time, in order; and direct reads (O_DIRECT where the file system takes it) are right too', async () => {
  const fd = openSync(path, 'r');
  let direct: number | undefined;
  try {
    direct = openSync(path, fsc.O_RDONLY | fsc.O_DIRECT);
  } catch {
    direct = undefined;
  }
  const source = pool.openSource();
  try {
    for (const i of [5, 0, 3]) assertChunk(await within(source.read(readTask(fd, i, false)), 5_000, `chunk ${i}`), i);
    for (const i of [1, 2, 6]) assertChunk(await within(source.read(readTask(fd, i, false, direct)), 5_000, `direct chunk ${i}`), i);
  } finally {
    source.close();
    await within(source.settled(), 5_000, 'settled');
    closeSync(fd);
    if (direct !== undefined) closeSync(direct);
  }
});

test('close(): reads sent before it are answered, one after it rejects with -750, and the source settles', async () => {
  const fd = openSync(path, 'r');
  const source = pool.openSource();
  try {
    const before = [0, 1, 2].map((i) => source.read(readTask(fd, i, i === 1)));
    source.close();
    const results = await within(Promise.all(before), 5_000, 'reads before close');
    results.forEach((r, i) => assertChunk(r, i));
    const task = readTask(fd, 3, false);
    const late = await source.read(task).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(late, FtsError);
    assert.is((late as FtsError).code, -750);
    pool.buffers.release(pool.buffers.viewOf(task.ref));
    await within(source.settled(), 5_000, 'settled');
  } finally {
    closeSync(fd);
  }
});

test('a pool that closes ends its live sources: they settle and later reads reject; a source of a closed pool settles at once', async () => {
  const own = new WorkerPool({ threads: 1 });
  const fd = openSync(path, 'r');
  try {
    const source = own.openSource();
    const first = await within(source.read({ fd, ref: own.buffers.refOf(own.buffers.acquire(CHUNK)), position: 0, length: CHUNK, compress: false }), 5_000, 'first read');
    assert.ok(first.ok);
    await own.close();
    await within(source.settled(), 5_000, 'settled after the pool closed');
    const late = await source.read({ fd, ref: own.buffers.refOf(own.buffers.acquire(CHUNK)), position: 0, length: CHUNK, compress: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(late, FtsError);
    const after = own.openSource();
    await within(after.settled(), 5_000, 'a source of a closed pool settles');
  } finally {
    closeSync(fd);
  }
});

test.run();
