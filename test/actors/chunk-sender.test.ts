/**
 * The sending half of the pipeline against a real worker pool and a real
 * file: its reads go through one file source, which it closes when it stops;
 * and a read that never runs (the pool closed under it) fails the transfer
 * with its code instead of ending the read stream unseen.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkSender, type ChunkRead } from '../../actors/chunk-sender.js';
import type { ChunkSource, ChunkWorkers, FrameSink } from '../../actors/ports.js';
import { poolWorkers } from '../../engine/workers.js';
import { FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { tempDir, within, type TempDir } from '../helpers/fixtures.js';

const CHUNK = 64 * 1024;
const test = suite('actors: chunk sender');
let dir: TempDir;
let path: string;

test.before(async () => {
  dir = await tempDir('fts-sender-');
  path = join(dir.path, 'file.bin');
  writeFileSync(path, Buffer.alloc(8 * CHUNK + 5, 7));
});

test.after(async () => {
  await dir.remove();
});

/** A socket stand-in that takes every frame at once. */
function frames(sent: number[]): FrameSink {
  return {
    send: (pieces, written) => {
      sent.push(pieces.reduce((n, p) => n + p.length, 0));
      written?.();
    },
    close: () => undefined,
    destroy: () => undefined,
    closed: false,
    backlog: 0,
  };
}

/** A sender over the test file, 4 chunks in flight, no compression; its reads come back through a microtask. */
function senderOver(fd: number, transferId: string, sink: FrameSink, workers: ChunkWorkers, onFailed: (e: FtsError) => void): ChunkSender {
  const sender: ChunkSender = new ChunkSender({
    transferId,
    fd,
    fileSize: 8 * CHUNK + 5,
    chunkSize: CHUNK,
    window: 4,
    compression: 'none',
    sink,
    workers,
    clock: new FakeClock(),
    deliver: (read: ChunkRead) => queueMicrotask(() => sender.sendRead(read)),
    onAllAcked: () => undefined,
    onFailed,
  });
  return sender;
}

test('all chunks go out through one source; stop() closes it and idle() waits until it has ended', async () => {
  const pool = new WorkerPool({ threads: 1 });
  const workers = poolWorkers(pool);
  const opened: ChunkSource[] = [];
  const fd = openSync(path, 'r');
  const sent: number[] = [];
  let failed: FtsError | undefined;
  let settled = false;
  const counted: ChunkWorkers = {
    ...workers,
    openSource: () => {
      const source = workers.openSource!();
      void source.settled().then(() => (settled = true));
      opened.push(source);
      return source;
    },
  };
  const sender = senderOver(fd, '00000000-0000-4000-8000-000000000001', frames(sent), counted, (e) => (failed = e));
  sender.start();
  // Acknowledge each chunk once it is out, so the window moves on.
  for (let i = 0; i < 9; i++) {
    await within(
      (async () => {
        while (sent.length <= i) await new Promise((r) => setImmediate(r));
      })(),
      5_000,
      `chunk ${i} sent`,
    );
    sender.ack(i, 1);
  }
  assert.is(sent.length, 9, 'nine chunks, no more');
  assert.ok(sender.isDone);
  assert.is(failed, undefined);
  assert.is(opened.length, 1, 'one source for the whole transfer');
  assert.not.ok(settled, 'the source lives until the sender stops');
  sender.stop();
  await within(sender.idle(), 5_000, 'idle');
  assert.ok(settled, 'idle() resolved once the source had ended');
  closeSync(fd);
  await pool.close();
});

/** A sender with its own options over the test file; its reads come back through a microtask. */
function custom(fd: number, workers: ChunkWorkers, sent: number[], o: { window: number; readConcurrency: number; fileSize: number }): { sender: ChunkSender; failures: FtsError[] } {
  const failures: FtsError[] = [];
  const sender: ChunkSender = new ChunkSender({
    transferId: '00000000-0000-4000-8000-000000000004',
    fd,
    fileSize: o.fileSize,
    chunkSize: CHUNK,
    window: o.window,
    readConcurrency: o.readConcurrency,
    compression: 'none',
    sink: frames(sent),
    workers,
    clock: new FakeClock(),
    deliver: (read: ChunkRead) => queueMicrotask(() => sender.sendRead(read)),
    onAllAcked: () => undefined,
    onFailed: (e) => failures.push(e),
  });
  return { sender, failures };
}

async function until(what: string, done: () => boolean): Promise<void> {
  await within(
    (async () => {
      while (!done()) await new Promise((r) => setTimeout(r, 5));
    })(),
    5_000,
    what,
  );
}

test('reads run ahead of the window, yet never more than window chunks are sent unacknowledged; an ACK lets a chunk already read out at once', async () => {
  const pool = new WorkerPool({ threads: 1 });
  const workers = poolWorkers(pool);
  const fd = openSync(path, 'r');
  const sent: number[] = [];
  let reads = 0;
  const counted: ChunkWorkers = {
    ...workers,
    openSource: () => {
      const source = workers.openSource!();
      return { ...source, read: (task) => (reads++, source.read(task)), digest: () => source.digest(), close: () => source.close(), settled: () => source.settled() };
    },
  };
  const { sender, failures } = custom(fd, counted, sent, { window: 4, readConcurrency: 2, fileSize: 8 * CHUNK + 5 });
  sender.start();
  await until('the window is full', () => sent.length === 4);
  await until('two chunks read ahead', () => reads === 6);
  // Give a sender that ignored the window every chance to show it.
  await new Promise((r) => setTimeout(r, 50));
  assert.is(sent.length, 4, 'no fifth chunk before an ACK');
  assert.is(reads, 6, 'window + readConcurrency chunks read, no more');
  sender.ack(0, 2);
  assert.is(sent.length, 6, 'the two chunks read ahead go out with the ACK, before any new read');
  await until('two more read ahead', () => reads === 8);
  sender.ack(2, 4);
  await until('the rest sent', () => sent.length === 9);
  sender.ack(6, 3);
  assert.ok(sender.isDone);
  assert.equal(failures, []);
  sender.stop();
  await within(sender.idle(), 5_000, 'idle');
  closeSync(fd);
  await pool.close();
});

test('a NACKed chunk acknowledged while it is read again is not sent again, nor counted twice; every buffer comes back', async () => {
  const pool = new WorkerPool({ threads: 1 });
  const fd = openSync(path, 'r');
  const free = pool.buffers.freeSlots;
  const sent: number[] = [];
  const { sender, failures } = custom(fd, poolWorkers(pool), sent, { window: 2, readConcurrency: 1, fileSize: 3 * CHUNK });
  sender.start();
  await until('two chunks sent', () => sent.length === 2);
  // The receiver NACKs chunk 0, then (a duplicate that crossed the NACK) acknowledges it before the re-read is back.
  sender.nack([0], -720);
  sender.ack(0, 1);
  sender.ack(1, 1);
  await until('chunk 2 sent', () => sent.length >= 3);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(sent.length, 3, 'chunks 0, 1, 2 once each: the stale re-read of 0 was dropped');
  assert.not.ok(sender.isDone, 'chunk 2 is not acknowledged yet');
  sender.ack(2, 1);
  assert.ok(sender.isDone);
  assert.equal(failures, []);
  sender.stop();
  await within(sender.idle(), 5_000, 'idle');
  assert.is(pool.buffers.freeSlots, free, 'every slot given back');
  closeSync(fd);
  await pool.close();
});

test('paused (TRANSFER_PAUSE), a sender sends nothing new, not even what it read ahead; resume() lets it out', async () => {
  const pool = new WorkerPool({ threads: 1 });
  const fd = openSync(path, 'r');
  const free = pool.buffers.freeSlots;
  const sent: number[] = [];
  const { sender, failures } = custom(fd, poolWorkers(pool), sent, { window: 2, readConcurrency: 2, fileSize: 8 * CHUNK });
  sender.start();
  await until('the window is full', () => sent.length === 2);
  await new Promise((r) => setTimeout(r, 50));
  sender.pause();
  sender.ack(0, 2);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(sent.length, 2, 'nothing sent while paused, though the window has room and two chunks are read');
  sender.resume();
  assert.is(sent.length, 4, 'the two chunks read ahead go out at once on resume');
  sender.stop();
  await within(sender.idle(), 5_000, 'idle');
  assert.is(pool.buffers.freeSlots, free, 'stopped with chunks read ahead: every slot given back');
  assert.equal(failures, []);
  closeSync(fd);
  await pool.close();
});

test('the pool closes under a sender: its reads are refused, and the transfer fails with the code (no stream error escapes)', async () => {
  const pool = new WorkerPool({ threads: 1 });
  await pool.close();
  const fd = openSync(path, 'r');
  const failure = new Promise<FtsError>((resolve) => senderOver(fd, '00000000-0000-4000-8000-000000000002', frames([]), poolWorkers(pool), resolve).start());
  const error = await within(failure, 5_000, 'the transfer fails');
  assert.instance(error, FtsError);
  assert.ok(error.code === -750 || error.code === -740, `code ${error.code}`);
  closeSync(fd);
});

test.run();
