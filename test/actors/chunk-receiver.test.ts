/**
 * The receiving half of the pipeline against a real worker pool and real
 * files: what reaches the owner when the file sink dies under it.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '@node-rs/crc32';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkReceiver, type ChunkSynced, type ChunkWritten } from '../../actors/chunk-receiver.js';
import type { FrameSink } from '../../actors/ports.js';
import { ReceiveBudget } from '../../actors/receive-budget.js';
import { poolWorkers } from '../../engine/workers.js';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import { MessageType } from '../../protocol/constants.js';
import { FtsError } from '../../protocol/errors.js';
import type { ChunkData } from '../../protocol/messages/types.js';
import { WorkerPool } from '../../workers/pool.js';
import { tempDir, within, type TempDir } from '../helpers/fixtures.js';

const CHUNK = 64 * 1024;
const test = suite('actors: chunk receiver');
let pool: WorkerPool;
let dir: TempDir;

test.before(async () => {
  pool = new WorkerPool({ threads: 1 });
  dir = await tempDir('fts-receiver-');
});

test.after(async () => {
  await pool.close();
  await dir.remove();
});

/** Frames the receiver sends, kept (ACKs and NACKs are not under test here). */
const frames: FrameSink = { send: () => undefined, close: () => undefined, destroy: () => undefined, closed: false, backlog: 0 };

function chunkOf(index: number, data: Buffer): ChunkData {
  // The data in an owned pool buffer, as the decoder leaves it: it is moved to the sink's worker.
  const owned = pool.buffers.acquire(data.length, true);
  data.copy(owned);
  return {
    type: MessageType.CHUNK_DATA,
    transferId: '00000000-0000-4000-8000-000000000001',
    chunkIndex: index,
    chunkOffset: index * CHUNK,
    originalSize: data.length,
    compressedSize: data.length,
    crc32: crc32(data) >>> 0,
    flags: 0,
    data: owned,
  };
}

test('a sink that dies with a write in flight fails the transfer with its own code, not a TypeError over moved buffers', async () => {
  // A resumed transfer whose record says chunk 0 is in the file, which is empty:
  // the sink's read-back of chunk 0 fails (-750) while chunk 1's write waits.
  const path = join(dir.path, 'lying-resume.part');
  const fd = openSync(path, 'w+');
  try {
    const kept = new ChunkBitmap(2);
    kept.set(0);
    let failed: unknown;
    const settled = new Promise<void>((resolve) => {
      const receiver: ChunkReceiver = new ChunkReceiver({
        transferId: '00000000-0000-4000-8000-000000000001',
        fd,
        path,
        fileSize: 2 * CHUNK,
        chunkSize: CHUNK,
        received: kept,
        sink: frames,
        workers: poolWorkers(pool),
        deliver: (event: ChunkWritten | ChunkSynced) => {
          if (event.kind === 'chunkWritten') receiver.written(event);
          else receiver.synced(event);
        },
        onFailed: (error) => {
          failed = error;
          resolve();
        },
      });
      receiver.chunk(chunkOf(1, Buffer.alloc(CHUNK, 7)));
    });
    await within(settled, 10_000, 'the receiver reports the failure');
    assert.instance(failed, FtsError);
    assert.is((failed as FtsError).code, -750, String(failed));
  } finally {
    closeSync(fd);
  }
});

test('syncs every syncEveryBytes; reports the synced chunks durable at the first sync, then only every durableEveryBytes', async () => {
  const path = join(dir.path, 'cadence.part');
  const fd = openSync(path, 'w+');
  const workers = poolWorkers(pool);
  let syncs = 0;
  const counted = {
    ...workers,
    openSink: (opts: Parameters<typeof workers.openSink>[0]) => {
      const sink = workers.openSink(opts);
      return { ...sink, write: sink.write.bind(sink), finish: sink.finish.bind(sink), abort: sink.abort.bind(sink), settled: sink.settled.bind(sink), sync: () => (syncs++, sink.sync()) };
    },
  };
  const durable: number[][] = [];
  let acked = 0;
  const acks: FrameSink = { ...frames, send: () => void acked++ };
  try {
    const receiver: ChunkReceiver = new ChunkReceiver({
      transferId: '00000000-0000-4000-8000-000000000001',
      fd,
      path,
      fileSize: 8 * CHUNK,
      chunkSize: CHUNK,
      sink: acks,
      workers: counted,
      syncEveryBytes: CHUNK,
      durableEveryBytes: 3 * CHUNK,
      deliver: (event: ChunkWritten | ChunkSynced) => {
        if (event.kind === 'chunkWritten') receiver.written(event);
        else receiver.synced(event);
      },
      onDurable: (bitmap) => durable.push([...bitmap.indices()]),
      onFailed: (error) => assert.unreachable(String(error)),
    });
    // One chunk at a time, each acknowledged (written) and its sync settled before the next.
    for (let i = 0; i < 8; i++) {
      receiver.chunk(chunkOf(i, Buffer.alloc(CHUNK, i + 1)));
      await within(
        (async () => {
          while (acked <= i || syncs <= i) await new Promise((r) => setTimeout(r, 2));
          await new Promise((r) => setTimeout(r, 20));
        })(),
        10_000,
        `chunk ${i} written and synced`,
      );
    }
    assert.is(syncs, 8, 'a sync after every chunk (syncEveryBytes: one chunk)');
    assert.equal(durable, [
      [0],
      [0, 1, 2, 3],
      [0, 1, 2, 3, 4, 5, 6],
    ], 'reported after the first sync, then after 3 more chunks synced each time, never more than was synced');
    assert.is(await within(receiver.finishHash(), 10_000, 'finish').then((h) => h.length), 64);
    await within(receiver.idle(), 10_000, 'idle');
  } finally {
    closeSync(fd);
  }
});

/** The pool's sink with its writes held until `open()`: what a slow disk does. */
function gatedWorkers() {
  const workers = poolWorkers(pool);
  const gates: (() => void)[] = [];
  let isOpen = false;
  const gated = {
    ...workers,
    openSink: (opts: Parameters<typeof workers.openSink>[0]) => {
      const sink = workers.openSink(opts);
      return {
        ...sink,
        write: async (chunks: Parameters<typeof sink.write>[0]) => {
          if (!isOpen) await new Promise<void>((r) => gates.push(r));
          return sink.write(chunks);
        },
        finish: sink.finish.bind(sink),
        abort: sink.abort.bind(sink),
        settled: sink.settled.bind(sink),
        sync: sink.sync.bind(sink),
      };
    },
  };
  return { workers: gated, open: () => ((isOpen = true), gates.splice(0).forEach((g) => g())) };
}

test('receive budget: a chunk is held from its acceptance until its write settles; resends are not counted twice; all is given back, also by a receiver stopped with chunks queued and a write in flight', async () => {
  const budget = new ReceiveBudget(2 * CHUNK);
  for (const stopEarly of [false, true]) {
    const path = join(dir.path, `budget-${stopEarly}.part`);
    const fd = openSync(path, 'w+');
    const { workers, open } = gatedWorkers();
    let acked = 0;
    let receiver: ChunkReceiver | undefined;
    try {
      receiver = new ChunkReceiver({
        transferId: '00000000-0000-4000-8000-000000000001',
        fd,
        path,
        fileSize: 5 * CHUNK,
        chunkSize: CHUNK,
        sink: { ...frames, send: () => void acked++ },
        workers,
        budget,
        // A stopped owner handles nothing more: what it was owed must come back without it.
        deliver: (event: ChunkWritten | ChunkSynced) => {
          if (stopEarly) return;
          if (event.kind === 'chunkWritten') receiver!.written(event);
          else receiver!.synced(event);
        },
        onFailed: (error) => assert.unreachable(String(error)),
      });
      for (let i = 0; i < 5; i++) receiver.chunk(chunkOf(i, Buffer.alloc(CHUNK, i + 1)));
      receiver.chunk(chunkOf(2, Buffer.alloc(CHUNK, 3))); // a resend of a chunk being written: released at once
      assert.is(budget.heldBytes, 5 * CHUNK, 'five chunks held while their writes wait');
      assert.ok(budget.exhausted, 'past the limit: the transport would stop reading');
      if (stopEarly) {
        receiver.stop();
        open();
        await within(receiver.idle(), 10_000, 'the stopped receiver goes idle');
        assert.is(budget.heldBytes, 0, 'queued chunks given back at stop, the batch in flight once it settled');
      } else {
        open();
        await within(
          (async () => {
            while (receiver.chunksReceived < 5) await new Promise((r) => setTimeout(r, 2));
          })(),
          10_000,
          'all five written',
        );
        assert.ok(acked >= 2, 'acknowledged (a CHUNK_ACK per run of written chunks)');
        assert.is(budget.heldBytes, 0, 'everything given back once written');
        assert.is(await within(receiver.finishHash(), 10_000, 'finish').then((h) => h.length), 64);
        await within(receiver.idle(), 10_000, 'idle');
      }
      assert.is(budget.peakBytes, 5 * CHUNK);
    } finally {
      // A failed assertion must not leave the sink open: the pool would wait for it at close.
      open();
      receiver?.stop();
      await within(receiver?.idle() ?? Promise.resolve(), 10_000, 'idle at the end');
      closeSync(fd);
    }
  }
});

test.run();
