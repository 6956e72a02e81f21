/**
 * The pool's read path: reads started in one turn go to a worker as one task
 * and each still gets its own result (data, CRC32, its own failure).
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '@node-rs/crc32';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WorkerPool } from '../../workers/pool.js';
import { tempDir, within, type TempDir } from '../helpers/fixtures.js';

const test = suite('workers: pool reads');
let pool: WorkerPool;
let dir: TempDir;

test.before(async () => {
  pool = new WorkerPool({ threads: 1 });
  dir = await tempDir('fts-pool-');
});

test.after(async () => {
  await pool.close();
  await dir.remove();
});

test('reads started together come back each with its own bytes and CRC32, and a read past the end fails alone (-750)', async () => {
  const CHUNK = 64 * 1024;
  const data = Buffer.alloc(5 * CHUNK + 100);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 9)) & 0xff;
  const path = join(dir.path, 'source.bin');
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  try {
    // Chunks 0..5 (the last one short), plus one that claims bytes past the end of the file.
    const reads = [0, 1, 2, 3, 4, 5, 6].map((i) => {
      const length = i === 6 ? CHUNK : Math.min(CHUNK, data.length - i * CHUNK);
      const buffer = pool.buffers.acquire(length, i % 2 === 0);
      return { i, length, buffer, result: pool.readChunk({ fd, ref: pool.buffers.refOf(buffer), position: i * CHUNK, length, compress: false }) };
    });
    const results = await within(Promise.all(reads.map((r) => r.result)), 10_000, 'reads');
    results.forEach((result, k) => {
      const { i, length } = reads[k]!;
      const view = pool.buffers.viewOf(result.ref).subarray(0, length);
      if (i === 6) {
        assert.not.ok(result.ok, 'the read past the end fails');
        if (!result.ok) assert.is(result.code, -750);
      } else {
        assert.ok(result.ok, `chunk ${i}`);
        const want = data.subarray(i * CHUNK, i * CHUNK + length);
        assert.ok(view.equals(want), `chunk ${i}: its own bytes`);
        if (result.ok) assert.is(result.crc32, crc32(want) >>> 0, `chunk ${i}: its CRC32`);
      }
      pool.buffers.release(view);
    });
  } finally {
    closeSync(fd);
  }
});

test.run();
