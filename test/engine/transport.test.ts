/**
 * engine/transport.ts over a real TCP connection: socket reads into recycled
 * buffers, and large CHUNK_DATA payloads read straight into their own buffers
 * (the decoder's directTarget), whatever sizes the peer writes in.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeControl } from '../../protocol/codec.js';
import { decodeMessage, type Frame } from '../../protocol/index.js';
import type { ChunkData, Message } from '../../protocol/messages/types.js';
import { adoptSocket, pipeSocket, ReadBuffers } from '../../engine/transport.js';
import { ReceiveBudget } from '../../actors/receive-budget.js';
import { WorkerPool } from '../../workers/pool.js';
import { frameOf, ID_A, prng, rawFrame, T } from '../protocol/helpers.js';
import { within } from '../helpers/fixtures.js';
import { until } from '../helpers/resume-helpers.js';

const test = suite('engine: socket transport');
let pool: WorkerPool;

test.before(() => {
  pool = new WorkerPool({ threads: 1 });
});
test.after(async () => {
  await pool.close();
});

function chunk(index: number, data: Buffer): ChunkData {
  return { type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: index, chunkOffset: index * data.length, originalSize: data.length, compressedSize: data.length, crc32: index, flags: 0, data };
}

/** A server that pipes its one accepted socket (re-made with `onread`) into a collector; resolves once the peer closes. */
async function receive(bytes: Buffer, writeSizes: () => number, o: { pauseEvery?: number; cutAt?: number } = {}): Promise<{ frames: Frame[]; reads: ReadBuffers }> {
  const reads = new ReadBuffers();
  const frames: Frame[] = [];
  let server: Server | undefined;
  const done = new Promise<void>((resolve, reject) => {
    server = createServer({ pauseOnConnect: true }, (raw: Socket) => {
      const { socket } = adoptSocket(raw, reads);
      const piped = pipeSocket(
        socket,
        pool,
        {
          // With pauseEvery, every so many frames the target is full: reading pauses until it resumes, a little later.
          frame: (f) => {
            frames.push(f);
            if (!o.pauseEvery || frames.length % o.pauseEvery !== 0) return true;
            setTimeout(() => piped.resume(), 2);
            return false;
          },
          decodeError: reject,
          closed: () => resolve(),
        },
        1024 * 1024,
        reads,
      );
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server!.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  // A receiver that fails closes on us: the assertions below tell what went wrong.
  client.on('error', () => undefined);
  await new Promise<void>((r) => client.once('connect', r));
  const end = o.cutAt ?? bytes.length;
  for (let at = 0; at < end && !client.destroyed; ) {
    const n = Math.min(writeSizes(), end - at);
    if (!client.write(bytes.subarray(at, at + n))) await new Promise((r) => (client.once('drain', r), client.once('close', r)));
    at += n;
  }
  // cutAt: the peer vanishes there, in the middle of whatever frame it was sending.
  if (o.cutAt !== undefined) client.destroy();
  else client.end();
  await within(done, 20_000, 'all received');
  server!.close();
  return { frames, reads };
}

test('large CHUNK_DATA payloads are read in place, around control frames and a corrupted frame, in writes of any size: every good frame arrives intact, in order', async () => {
  const rand = prng(11);
  const sent: Message[] = [];
  const pieces: Buffer[] = [];
  for (let i = 0; i < 24; i++) {
    const size = [256 * 1024, 64 * 1024, 1024 * 1024, 70_000, 1000][i % 5]!;
    const m = chunk(i, randomBytes(size));
    sent.push(m);
    pieces.push(frameOf(m));
    if (i % 3 === 0) {
      const hb: Message = { type: T.HEARTBEAT, timestampUs: i, sequence: i };
      sent.push(hb);
      pieces.push(encodeControl(hb));
    }
    if (i === 10) {
      // A CHUNK_DATA frame whose checksum fails: dropped, and the scan finds the next frame.
      const bad = frameOf(chunk(99, randomBytes(200_000)));
      bad.writeUInt16BE((bad.readUInt16BE(bad.length - 4) + 1) & 0xffff, bad.length - 4);
      pieces.push(bad);
    }
  }
  const stream = Buffer.concat(pieces);
  for (const sizes of [() => 1 + Math.floor(rand() * 300_000), () => 1 + Math.floor(rand() * 100), () => stream.length]) {
    const { frames, reads } = await receive(stream, sizes);
    const got = frames.map((f) => decodeMessage(f.type, f.payload));
    assert.is(got.length, sent.length, 'every good frame, the corrupted one dropped');
    got.forEach((m, k) => assert.equal(m, sent[k], `frame ${k}`));
    assert.ok(reads.bytesInPlace > stream.length / 2, `most payload bytes read in place (${reads.bytesInPlace} of ${stream.length})`);
    for (const f of frames) if (f.type === T.CHUNK_DATA) pool.buffers.release(f.payload);
  }
});

test('a receiver that pauses reading every few frames (its mailbox full) while a payload is being read in place: nothing lost, nothing out of order', async () => {
  const rand = prng(5);
  const sent = Array.from({ length: 30 }, (_, i) => chunk(i, randomBytes(i % 2 === 0 ? 256 * 1024 : 100_000)));
  const stream = Buffer.concat(sent.map(frameOf));
  for (const pauseEvery of [1, 3]) {
    const { frames, reads } = await receive(stream, () => 1 + Math.floor(rand() * 200_000), { pauseEvery });
    assert.is(frames.length, sent.length);
    frames.forEach((f, k) => assert.equal(decodeMessage(f.type, f.payload), sent[k], `frame ${k}`));
    assert.ok(reads.bytesInPlace > 0, 'payloads read in place');
    for (const f of frames) pool.buffers.release(f.payload);
  }
});

test('a peer that vanishes in the middle of a payload being read in place: the frames before it arrive, the connection closes, nothing throws', async () => {
  const sent = Array.from({ length: 3 }, (_, i) => chunk(i, randomBytes(256 * 1024)));
  const stream = Buffer.concat(sent.map(frameOf));
  const { frames } = await receive(stream, () => 65_536, { cutAt: 2 * frameOf(sent[0]!).length + 150_000 });
  assert.is(frames.length, 2);
  frames.forEach((f, k) => assert.equal(decodeMessage(f.type, f.payload), sent[k]));
});

test('a frame whose claimed length hides the next one: streamed, failed, and scanned again, the hidden frame still arrives', async () => {
  const good = frameOf(chunk(1, randomBytes(100_000)));
  // A CHUNK_DATA header claiming 300,000 bytes (streamed: it looks like a chunk until its postfix, which is filler), then the good frame inside it.
  const fake = rawFrame(T.CHUNK_DATA, Buffer.concat([frameOf(chunk(0, Buffer.alloc(48))).subarray(9, 9 + 48), Buffer.alloc(300_000 - 48)]));
  const stream = Buffer.concat([fake.subarray(0, 9 + 48), good, Buffer.alloc(300_000 - 48 - good.length + 4, 0x20)]);
  const { frames } = await receive(stream, () => 65_536);
  const got = frames.map((f) => decodeMessage(f.type, f.payload));
  assert.is(got.length, 1);
  assert.equal(got[0], decodeMessage(T.CHUNK_DATA, good.subarray(9, good.length - 4)));
});

test('a spent receive budget stops the socket being read: the peer is held back by TCP until the budget has room, then every frame arrives, in order', async () => {
  const budget = new ReceiveBudget(1024 * 1024);
  const reads = new ReadBuffers();
  const frames: Frame[] = [];
  const held: number[] = [];
  let server: Server | undefined;
  const closed = new Promise<void>((resolve, reject) => {
    server = createServer({ pauseOnConnect: true }, (raw: Socket) => {
      const { socket } = adoptSocket(raw, reads);
      pipeSocket(
        socket,
        pool,
        {
          // As a receiver behind a busy actor does: it claims each chunk a little later, and holds
          // its bytes until the test lets them go (its "write"). The budget counted them on arrival.
          frame: (f) => {
            frames.push(f);
            setImmediate(() => {
              budget.take(f.payload);
              held.push(f.payload.length);
            });
            return true;
          },
          decodeError: reject,
          closed: () => resolve(),
        },
        1024 * 1024,
        reads,
        budget,
      );
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const client = connect((server!.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  const sent = Array.from({ length: 160 }, (_, i) => chunk(i, randomBytes(256 * 1024)));
  // 40 MiB: far more than the kernel's socket buffers hold, so a reader that kept reading would take it all.
  const writing = (async () => {
    for (const m of sent) if (!client.write(frameOf(m))) await new Promise((r) => client.once('drain', r));
    client.end();
  })();
  await until(() => budget.waiting === 1, 5_000, 'the reader waits for the budget');
  // Nothing more is read while it waits, however long.
  const atPause = frames.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.is(frames.length, atPause, 'no frame read while the budget is spent');
  assert.ok(atPause <= 8, `about the budget's worth of chunks read (1 MiB = 4 chunks, ${atPause} read)`);
  assert.ok(client.writableLength > 0, 'the sender is held back');
  // The test's "writes" complete as they come from now on: the rest flows, pausing and resuming as the budget fills.
  const drain = setInterval(() => {
    while (held.length) budget.give(held.shift()!);
  }, 1);
  await within(closed, 20_000, 'all received');
  clearInterval(drain);
  await writing;
  assert.is(frames.length, sent.length);
  frames.forEach((f, k) => assert.equal(decodeMessage(f.type, f.payload), sent[k], `frame ${k}`));
  assert.ok(budget.peakBytes <= budget.limitBytes + 2 * 256 * 1024, `held at most the budget and a chunk or so beyond it (${budget.peakBytes})`);
  assert.is(budget.waiting, 0, 'nothing left waiting once the connection closed');
  for (const f of frames) pool.buffers.release(f.payload);
  server!.close();
});

test('a spent budget pauses only connections that bring chunk data: control frames (a listing, ACKs, heartbeats) keep being read', async () => {
  const budget = new ReceiveBudget(1024);
  budget.take(Buffer.alloc(4096)); // spent by other connections' uploads
  const reads = new ReadBuffers();
  const frames: Frame[] = [];
  // Once `writing`, each chunk is claimed and written at once, as a receiver with an idle disk does.
  let writing = false;
  const write = (f: Frame) => {
    budget.take(f.payload);
    budget.give(f.payload.length);
  };
  let server: Server | undefined;
  const closed = new Promise<void>((resolve, reject) => {
    server = createServer({ pauseOnConnect: true }, (raw: Socket) => {
      const { socket } = adoptSocket(raw, reads);
      const frame = (f: Frame) => {
        frames.push(f);
        if (writing && f.type === T.CHUNK_DATA) write(f);
        return true;
      };
      pipeSocket(socket, pool, { frame, decodeError: reject, closed: () => resolve() }, 1024 * 1024, reads, budget);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const client = connect((server!.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  const heartbeats = Array.from({ length: 500 }, (_, i) => ({ type: T.HEARTBEAT, timestampUs: i, sequence: i }) as const);
  client.write(Buffer.concat(heartbeats.map((m) => encodeControl(m))));
  await until(() => frames.length === heartbeats.length, 5_000, 'every control frame read despite the spent budget');
  assert.is(budget.waiting, 0, 'no wait for the budget');
  // Chunk data: this connection now waits for the budget after its first chunk.
  client.write(Buffer.concat([0, 1, 2].map((i) => frameOf(chunk(i, randomBytes(256 * 1024))))));
  await until(() => budget.waiting === 1, 5_000, 'the connection waits once chunk data comes');
  await new Promise((r) => setTimeout(r, 200));
  const chunks = () => frames.filter((f) => f.type === T.CHUNK_DATA).length;
  assert.ok(chunks() < 3, `reading stopped after the first chunks (${chunks()} of 3)`);
  writing = true;
  for (const f of frames) if (f.type === T.CHUNK_DATA) write(f);
  budget.give(4096);
  await until(() => chunks() === 3, 5_000, 'the rest once the budget has room');
  client.end();
  await within(closed, 5_000, 'closed');
  for (const f of frames) if (f.type === T.CHUNK_DATA) pool.buffers.release(f.payload);
  server!.close();
});

test.run();
