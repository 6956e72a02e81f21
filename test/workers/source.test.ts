/**
 * File sources (workers/source.ts and the `fileSource` task): one sender's
 * reads over one port, answered in order, each with its own bytes, CRC32 or
 * failure; an upload's source also hashes the file as it reads it; closing
 * answers what was sent before and refuses what comes after.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '@node-rs/crc32';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WorkerPool } from '../../workers/pool.js';
import type { FileSourceHandle } from '../../workers/source.js';
import type { ReadChunkResult } from '../../workers/types.js';
import { rejection, tempDir, within, type TempDir } from '../helpers/fixtures.js';

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

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

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

/** Runs `fn` with the test file open and a source on it (hashing it when `hash`), then closes both. */
async function withSource(hash: boolean, fn: (fd: number, source: FileSourceHandle) => Promise<void>): Promise<void> {
  const fd = openSync(path, 'r');
  const source = pool.openSource(hash ? { fd, size: data.length } : undefined);
  try {
    await fn(fd, source);
  } finally {
    source.close();
    await within(source.settled(), 5_000, 'settled');
    closeSync(fd);
  }
}

function readTask(fd: number, i: number, owned: boolean, directFd?: number) {
  const buffer = pool.buffers.acquire(lengthOf(i), owned);
  return { fd, ...(directFd !== undefined ? { directFd } : {}), ref: pool.buffers.refOf(buffer), position: i * CHUNK, length: lengthOf(i), compress: false };
}

test('reads started together (slab slots and owned buffers; adjacent ones are one vectored read) each come back with their own bytes and CRC32; a read past the end fails alone (-750)', () =>
  withSource(false, async (fd, source) => {
    const reads = [0, 1, 2, 3, 4, 5, 6].map((i) => source.read(readTask(fd, i, i % 2 === 1)));
    const past = pool.buffers.acquire(CHUNK);
    const beyond = source.read({ fd, ref: pool.buffers.refOf(past), position: 8 * CHUNK, length: CHUNK, compress: false });
    const results = await within(Promise.all(reads), 10_000, 'reads');
    results.forEach((r, i) => assertChunk(r, i));
    const failed = await within(beyond, 10_000, 'read past the end');
    assert.not.ok(failed.ok);
    if (!failed.ok) assert.is(failed.code, -750);
    pool.buffers.release(pool.buffers.viewOf(failed.ref));
  }));

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

/** The test file opened with O_DIRECT, or undefined where the file system refuses it. */
function openDirect(file = path): number | undefined {
  try {
    return openSync(file, fsc.O_RDONLY | fsc.O_DIRECT);
  } catch {
    return undefined;
  }
}

test('direct reads started together: adjacent ones (one vectored read of up to four), the short last chunk, a gap, an owned buffer and a buffered read among them, each right', async () => {
  const fd = openSync(path, 'r');
  const direct = openDirect();
  const source = pool.openSource();
  try {
    // 0-3 adjacent (one vectored read), 4 then a gap, 6 is the file's short tail; 5 buffered; 1 again into an owned buffer.
    const tasks = [0, 1, 2, 3, 4, 6].map((i) => ({ i, task: readTask(fd, i, false, direct) }));
    tasks.push({ i: 5, task: readTask(fd, 5, false) }, { i: 1, task: readTask(fd, 1, true, direct) });
    const results = await within(Promise.all(tasks.map((t) => source.read(t.task))), 10_000, 'reads');
    results.forEach((r, k) => assertChunk(r, tasks[k]!.i));
    // Twice through the same slots: nothing of the first round's bytes is taken for the second's.
    const again = [3, 4, 5, 6].map((i) => ({ i, task: readTask(fd, i, false, direct) }));
    (await within(Promise.all(again.map((t) => source.read(t.task))), 10_000, 'again')).forEach((r, k) => assertChunk(r, again[k]!.i));
  } finally {
    source.close();
    await within(source.settled(), 5_000, 'settled');
    closeSync(fd);
    if (direct !== undefined) closeSync(direct);
  }
});

test('direct reads of a file that shrank under them: the chunks still there come back right, the ones past its end fail alone (-750)', async () => {
  const shrunk = join(dir.path, 'shrunk.bin');
  writeFileSync(shrunk, data.subarray(0, 2 * CHUNK + 100));
  const fd = openSync(shrunk, 'r');
  const direct = openDirect(shrunk);
  const source = pool.openSource();
  try {
    const results = await within(Promise.all([0, 1, 2, 3].map((i) => source.read(readTask(fd, i, false, direct)))), 10_000, 'reads');
    assertChunk(results[0]!, 0);
    assertChunk(results[1]!, 1);
    for (const r of results.slice(2)) {
      assert.not.ok(r.ok, 'past the end: fails');
      if (!r.ok) assert.is(r.code, -750);
      pool.buffers.release(pool.buffers.viewOf(r.ref));
    }
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
    assert.is((await rejection(() => source.read(task))).code, -750, 'a read after close');
    pool.buffers.release(pool.buffers.viewOf(task.ref));
    await within(source.settled(), 5_000, 'settled');
  } finally {
    closeSync(fd);
  }
});

test('a hashing source: chunks read in order are hashed as read (before LZ4 packs them in place); a read again changes nothing; digest() is the file\'s SHA-256, twice alike', () =>
  withSource(true, async (fd, source) => {
    const reads = [0, 1, 2, 3, 4, 5, 6].map((i) => source.read({ ...readTask(fd, i, i % 3 === 0), compress: i % 2 === 0 }));
    const results = await within(Promise.all(reads), 10_000, 'reads');
    results.forEach((r, i) => {
      assert.ok(r.ok, `chunk ${i}`);
      pool.buffers.release(pool.buffers.viewOf(r.ref));
    });
    assertChunk(await within(source.read(readTask(fd, 1, false)), 5_000, 'chunk 1 again'), 1);
    assert.is(await within(source.digest(), 5_000, 'digest'), sha256(data));
    assert.is(await within(source.digest(), 5_000, 'digest again'), sha256(data));
  }));

test('a hashing source with gaps (a resumed upload skips chunks 2 and 3) and one never read (the last): digest() reads back what reads did not cover', () =>
  withSource(true, async (fd, source) => {
    for (const i of [0, 1, 4, 5]) assertChunk(await within(source.read(readTask(fd, i, false)), 5_000, `chunk ${i}`), i);
    assert.is(await within(source.digest(), 5_000, 'digest'), sha256(data));
  }));

test('digest(): from a file shorter than the size given, it fails (-750); from a source that does not hash, it fails (-750)', async () => {
  const fd = openSync(path, 'r');
  const long = pool.openSource({ fd, size: data.length + 10 });
  const plain = pool.openSource();
  try {
    assert.is((await rejection(() => long.digest())).code, -750, 'a file shorter than said');
    assert.is((await rejection(() => plain.digest())).code, -750, 'a source that does not hash');
  } finally {
    long.close();
    plain.close();
    await within(Promise.all([long.settled(), plain.settled()]), 5_000, 'settled');
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
    await rejection(() => source.read({ fd, ref: own.buffers.refOf(own.buffers.acquire(CHUNK)), position: 0, length: CHUNK, compress: false }));
    const after = own.openSource();
    await within(after.settled(), 5_000, 'a source of a closed pool settles');
  } finally {
    closeSync(fd);
  }
});

test.run();
