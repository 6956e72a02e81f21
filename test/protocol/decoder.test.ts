import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CHUNK_HEADER_SIZE,
  decodeMessage,
  FRAME_OVERHEAD,
  FrameDecoder,
  MAX_CONTROL_PAYLOAD,
  MAX_GARBAGE_BYTES,
  type FrameDecoderOptions,
  type Message,
} from '../../protocol/index.js';
import { collector, feed, frameKeys, frameOf, ID_A, ID_B, prng, rawFrame, sampleMessages, splitAt, T, timing } from './helpers.js';

const MiB = 1024 * 1024;

function chunkMessage(size: number, index = 0, fill = 0x61): Message {
  return {
    type: T.CHUNK_DATA,
    transferId: ID_A,
    chunkIndex: index,
    chunkOffset: index * size,
    originalSize: size,
    compressedSize: size,
    crc32: 0xdeadbeef,
    flags: 0,
    data: Buffer.alloc(size, fill),
  };
}

const errorFrame = (text: string) => frameOf({ type: T.ERROR, transferId: ID_B, errorCode: -709, message: text });

/** Many different frames: every sample message, some twice, some big chunks, a zero-length unknown frame. */
function mixedStream(): { stream: Buffer; frames: Buffer[] } {
  const frames: Buffer[] = [];
  for (const { message } of sampleMessages()) frames.push(frameOf(message));
  frames.push(frameOf(chunkMessage(256 * 1024, 1)));
  frames.push(frameOf(chunkMessage(65536 + 3, 2, 0x46)));
  frames.push(rawFrame(0x43, Buffer.alloc(0)));
  frames.push(frameOf({ type: T.HEARTBEAT, timestampUs: 1, sequence: 2 }));
  return { stream: Buffer.concat(frames), frames };
}

function smallStream(): Buffer {
  return Buffer.concat([
    frameOf({ type: T.HEARTBEAT, timestampUs: 1700000000000000, sequence: 1 }),
    frameOf(chunkMessage(5)),
    frameOf({ type: T.TRANSFER_PAUSE, transferId: ID_A }),
    rawFrame(0x43, Buffer.alloc(0)),
    frameOf({ type: T.CONNECT, protocolVersion: 0x00020000, capabilities: 0x17, clientId: ID_A, authToken: 'k' }),
  ]);
}

// ---------------------------------------------------------------------------
const split = suite('decoder: the same frames however the stream is cut');
timing(split);

split('a mixed stream fed whole, one byte at a time, and cut at random points', () => {
  const { stream, frames } = mixedStream();
  const expected = frames.map((f) => `${f[4]}:${f.subarray(9, f.length - 4).toString('hex')}`);
  const whole = feed([stream]);
  assert.equal(frameKeys(whole.frames), expected, 'whole');
  assert.is(whole.discards.length, 0);
  assert.is(whole.decoder.bufferedBytes, 0);

  const bytewise = collector();
  for (let i = 0; i < stream.length; i++) bytewise.decoder.push(stream.subarray(i, i + 1));
  assert.equal(frameKeys(bytewise.frames), expected, 'one byte at a time');
  assert.is(bytewise.decoder.bufferedBytes, 0);

  for (const seed of [1, 2, 3, 42, 1234, 99999]) {
    const rnd = prng(seed);
    const cuts: number[] = [];
    // Piece sizes from 1 byte to 200 KiB, mostly small.
    for (let at = 0; at < stream.length; at += 1 + Math.floor(rnd() ** 3 * 200_000)) cuts.push(at);
    const c = feed(splitAt(stream, cuts));
    assert.equal(frameKeys(c.frames), expected, `seed ${seed}`);
    assert.is(c.discards.length, 0);
    assert.is(c.errors.length, 0);
  }
});

split('a small stream cut at every offset, and at every pair of offsets', () => {
  const stream = smallStream();
  const expected = frameKeys(feed([stream]).frames);
  assert.is(expected.length, 5);
  for (let i = 1; i < stream.length; i++) {
    assert.equal(frameKeys(feed(splitAt(stream, [i])).frames), expected, `cut at ${i}`);
  }
  for (let i = 1; i < stream.length; i++) {
    for (let j = i + 1; j < stream.length; j += 3) {
      assert.equal(frameKeys(feed(splitAt(stream, [i, j])).frames), expected, `cut at ${i}, ${j}`);
    }
  }
});

split('every decoded frame decodes as its message', () => {
  const { stream } = mixedStream();
  const c = feed(splitAt(stream, [100, 5000, 70000, 300000]));
  const messages = sampleMessages().map((s) => s.message);
  c.frames.slice(0, messages.length).forEach((f, i) => assert.equal(decodeMessage(f.type, f.payload), messages[i]));
});

split('a 1 MiB CHUNK_DATA fed one byte at a time takes linear time', () => {
  const frame = frameOf(chunkMessage(MiB));
  const c = collector();
  const t0 = performance.now();
  for (let i = 0; i < frame.length; i++) c.decoder.push(frame.subarray(i, i + 1));
  const ms = performance.now() - t0;
  assert.is(c.frames.length, 1);
  assert.is(c.frames[0]!.payload.length, CHUNK_HEADER_SIZE + MiB);
  assert.ok(c.frames[0]!.payload.subarray(48).every((b) => b === 0x61));
  // Quadratic buffer handling took minutes here; linear takes well under a second.
  assert.ok(ms < 15_000, `${ms.toFixed(0)} ms`);
});

split.run();

// ---------------------------------------------------------------------------
const bound = suite('decoder: the length bound is checked before anything is allocated');
timing(bound);

function header(type: number, length: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUInt32BE(0x46545331, 0);
  h[4] = type;
  h.writeUInt32BE(length, 5);
  return h;
}

bound('a control header claiming 4 MiB + 1 is discarded at once, without waiting for its payload', () => {
  const c = collector();
  c.decoder.push(header(T.ERROR, MAX_CONTROL_PAYLOAD + 1));
  assert.equal(c.discards[0], { bytes: 4, reason: `payload_length ${MAX_CONTROL_PAYLOAD + 1} over the bound ${MAX_CONTROL_PAYLOAD}` });
  assert.ok(c.decoder.bufferedBytes <= 5);
  const valid = errorFrame('after');
  c.decoder.push(valid);
  assert.is(c.frames.length, 1);
  assert.is((decodeMessage(c.frames[0]!.type, c.frames[0]!.payload) as { message: string }).message, 'after');
});

bound('a control header claiming exactly 4 MiB waits for it', () => {
  const c = collector();
  c.decoder.push(header(T.LIST_RESPONSE, MAX_CONTROL_PAYLOAD));
  c.decoder.push(Buffer.alloc(1000));
  assert.is(c.discards.length, 0);
  assert.is(c.decoder.bufferedBytes, 1009);
});

bound('a CHUNK_DATA header claiming 48 + maxChunkSize + 1 is discarded at once; exactly 48 + maxChunkSize waits', () => {
  for (const maxChunkSize of [undefined, 65536, 1000]) {
    const limit = CHUNK_HEADER_SIZE + (maxChunkSize ?? MiB);
    const c = collector(maxChunkSize === undefined ? {} : { maxChunkSize });
    c.decoder.push(header(T.CHUNK_DATA, limit + 1));
    assert.is(c.discards[0]?.bytes, 4);
    assert.match(c.discards[0]!.reason, new RegExp(`over the bound ${limit}$`));
    const d = collector(maxChunkSize === undefined ? {} : { maxChunkSize });
    d.decoder.push(header(T.CHUNK_DATA, limit));
    assert.is(d.discards.length, 0, 'at the bound: waits for the payload');
  }
});

bound('the scan resumes at the byte right after the rejected magic (§8.1)', () => {
  // "FTS1" then a valid frame: the first header reads type 0x46 and length
  // 0x54533142 ("TS1" + 0x42), over the bound; the valid frame begins 4 bytes in.
  const valid = frameOf({ type: T.TRANSFER_RESUME, transferId: ID_A });
  const c = feed([Buffer.concat([Buffer.from('FTS1'), valid])]);
  assert.equal(c.discards, [{ bytes: 4, reason: `payload_length ${0x54533142} over the bound ${MAX_CONTROL_PAYLOAD}` }]);
  assert.is(c.frames.length, 1);
  assert.equal(decodeMessage(c.frames[0]!.type, c.frames[0]!.payload), { type: T.TRANSFER_RESUME, transferId: ID_A });
});

bound('a frame with a bad checksum is skipped from after its magic, so a frame hidden in its payload is found', () => {
  const inner = frameOf({ type: T.TRANSFER_PAUSE, transferId: ID_B });
  const outer = rawFrame(T.ERROR, Buffer.concat([Buffer.alloc(20), Buffer.from([0, inner.length]), inner]), { checksum: 0 });
  const c = feed([outer, errorFrame('next')]);
  assert.equal(c.discards[0], { bytes: 4, reason: 'checksum mismatch' });
  assert.equal(
    c.frames.map((f) => decodeMessage(f.type, f.payload).type),
    [T.TRANSFER_PAUSE, T.ERROR],
  );
});

bound('allocateChunkPayload is asked for exactly payload_length, never more than the bound', () => {
  const sizes: number[] = [];
  const pool = Buffer.alloc(CHUNK_HEADER_SIZE + 65536);
  const c = collector({
    maxChunkSize: 65536,
    allocateChunkPayload: (n) => {
      sizes.push(n);
      return pool.subarray(0, n);
    },
  });
  c.decoder.push(frameOf(chunkMessage(65536)));
  c.decoder.push(header(T.CHUNK_DATA, CHUNK_HEADER_SIZE + 65537));
  c.decoder.push(Buffer.alloc(70000));
  c.decoder.push(frameOf(chunkMessage(10)));
  c.decoder.push(frameOf({ type: T.HEARTBEAT, timestampUs: 5, sequence: 6 }));
  assert.equal(sizes, [CHUNK_HEADER_SIZE + 65536, CHUNK_HEADER_SIZE + 10]);
  assert.equal(c.frames.map((f) => f.type), [T.CHUNK_DATA, T.CHUNK_DATA, T.HEARTBEAT]);
});

bound('maxChunkSize is settable: a client lowers or raises it after CONNECT_ACK', () => {
  const c = collector();
  assert.is(c.decoder.maxChunkSize, MiB);
  c.decoder.maxChunkSize = 65536;
  c.decoder.push(frameOf(chunkMessage(65537)));
  assert.is(c.frames.length, 0);
  assert.match(c.discards[0]!.reason, /over the bound 65584/);
  c.decoder.maxChunkSize = 2 * MiB;
  c.decoder.push(frameOf(chunkMessage(2 * MiB)));
  assert.is(c.frames.length, 1);
  assert.is(c.frames[0]!.payload.length, 48 + 2 * MiB);
});

bound('maxControlPayload is an option', () => {
  const c = collector({ maxControlPayload: 100 });
  c.decoder.push(errorFrame('x'.repeat(100)));
  assert.is(c.frames.length, 0);
  assert.match(c.discards[0]!.reason, /over the bound 100/);
  c.decoder.push(errorFrame('x'.repeat(78)));
  assert.is(c.frames.length, 1);
  assert.is(c.frames[0]!.payload.length, 100);
});

bound.run();

// ---------------------------------------------------------------------------
const recover = suite('decoder: bad frames and garbage are skipped');
timing(recover);

recover('bad checksum and bad length echo are discarded and the next valid frame decoded', () => {
  const good = errorFrame('good');
  const badSum = Buffer.from(good);
  badSum.writeUInt16BE((badSum.readUInt16BE(badSum.length - 4) + 1) & 0xffff, badSum.length - 4);
  const badEcho = Buffer.from(good);
  badEcho.writeUInt16BE(badEcho.readUInt16BE(badEcho.length - 2) ^ 1, badEcho.length - 2);
  const badPayload = Buffer.from(good);
  badPayload[20] = badPayload[20]! ^ 0x80;
  for (const [bad, reason] of [
    [badSum, 'checksum mismatch'],
    [badEcho, 'length echo mismatch'],
    [badPayload, 'checksum mismatch'],
  ] as const) {
    for (const pieces of [[Buffer.concat([bad, good])], [bad, good], splitAt(Buffer.concat([bad, good]), [3, 10, 50])]) {
      const c = feed(pieces);
      assert.equal(c.discards[0], { bytes: 4, reason });
      assert.is(c.frames.length, 1, reason);
      assert.equal(c.frames[0]!.payload, good.subarray(9, good.length - 4));
      assert.is(c.errors.length, 0);
    }
  }
});

recover('a CHUNK_DATA checksum leaves the data section out: corrupt data still passes, corrupt header does not', () => {
  const frame = frameOf(chunkMessage(100));
  const dataHit = Buffer.from(frame);
  dataHit[9 + 48 + 10] ^= 0xff;
  assert.is(feed([dataHit]).frames.length, 1, 'data is the CRC32’s job');
  const headerHit = Buffer.from(frame);
  headerHit[9 + 20] ^= 0xff;
  const c = feed([headerHit]);
  assert.is(c.frames.length, 0);
  assert.equal(c.discards[0], { bytes: 4, reason: 'checksum mismatch' });
});

recover('a CHUNK_DATA frame shorter than its 48-byte header is checksummed whole and delivered (decodeMessage rejects it)', () => {
  const c = feed([rawFrame(T.CHUNK_DATA, Buffer.alloc(10, 7))]);
  assert.is(c.frames.length, 1);
  assert.is(c.frames[0]!.payload.length, 10);
});

recover('garbage before a valid frame is skipped, including partial magics', () => {
  const valid = frameOf({ type: T.CONNECT, protocolVersion: 0x00020000, capabilities: 0, clientId: ID_A });
  const rnd = prng(7);
  const noise = Buffer.from(Array.from({ length: 5000 }, () => Math.floor(rnd() * 256)));
  for (const garbage of [Buffer.from('F'), Buffer.from('FT'), Buffer.from('FTS'), Buffer.from('FTFTSFTS0FTS'), Buffer.from('FFFF'), noise, Buffer.alloc(100_000, 0x46)]) {
    const stream = Buffer.concat([garbage, valid]);
    for (const pieces of [[stream], splitAt(stream, [1, 2, 3, garbage.length - 1, garbage.length + 1]), [...stream].map((b) => Buffer.from([b]))]) {
      const c = feed(pieces);
      assert.is(c.frames.length, 1, `after ${garbage.length} bytes of garbage`);
      assert.is(c.errors.length, 0);
      assert.is(c.discards.reduce((n, d) => n + d.bytes, 0), garbage.length, 'exactly the garbage is discarded');
    }
  }
});

recover('a prefix of a magic at the end of the input is kept until the rest arrives', () => {
  const valid = frameOf({ type: T.TRANSFER_PAUSE, transferId: ID_A });
  const c = collector();
  c.decoder.push(Buffer.concat([Buffer.alloc(10, 0x20), valid.subarray(0, 3)]));
  assert.is(c.decoder.bufferedBytes, 3);
  c.decoder.push(valid.subarray(3));
  assert.is(c.frames.length, 1);
});

recover('2 MiB of garbage without a valid frame: onError once with -709, then the decoder stops', () => {
  for (const [label, pieces] of [
    ['one push', [Buffer.alloc(MAX_GARBAGE_BYTES + 10, 0x20)]],
    ['64 KiB pieces', Array.from({ length: 33 }, () => Buffer.alloc(65536, 0x46))],
    ['failed frames', Array.from({ length: 3 * 1024 }, () => rawFrame(T.ERROR, Buffer.alloc(1000, 0x01), { checksum: 1 }))],
  ] as const) {
    const c = collector();
    let pushes = 0;
    for (const p of pieces) {
      c.decoder.push(p);
      pushes++;
      if (c.decoder.isStopped) break;
    }
    assert.is(c.errors.length, 1, label);
    assert.is(c.errors[0]!.code, -709);
    assert.is(c.errors[0]!.codeName, 'protocol_error');
    assert.match(c.errors[0]!.message, /without a valid frame/);
    assert.ok(c.decoder.isStopped);
    assert.is(c.decoder.bufferedBytes, 0);
    const discarded = c.discards.reduce((n, d) => n + d.bytes, 0);
    assert.ok(discarded >= MAX_GARBAGE_BYTES && discarded < MAX_GARBAGE_BYTES + 70_000, `${label}: ${discarded}`);
    // Stopped: everything after is ignored, valid frames included, and no second error.
    c.decoder.push(errorFrame('late'));
    c.decoder.push(Buffer.alloc(MAX_GARBAGE_BYTES));
    assert.is(c.frames.length, 0);
    assert.is(c.errors.length, 1);
    assert.is(c.decoder.bufferedBytes, 0);
    assert.ok(pushes <= pieces.length);
  }
});

recover('just under 2 MiB of garbage, then a valid frame: decoded, and the count starts again', () => {
  const c = collector();
  c.decoder.push(Buffer.alloc(MAX_GARBAGE_BYTES - 1, 0x20));
  c.decoder.push(errorFrame('ok'));
  assert.is(c.errors.length, 0);
  assert.is(c.frames.length, 1);
  c.decoder.push(Buffer.alloc(MAX_GARBAGE_BYTES - 1, 0x20));
  c.decoder.push(errorFrame('ok again'));
  assert.is(c.errors.length, 0);
  assert.is(c.frames.length, 2);
});

recover('maxGarbage is an option', () => {
  const c = collector({ maxGarbage: 100 });
  c.decoder.push(Buffer.alloc(99, 0x20));
  assert.is(c.errors.length, 0);
  c.decoder.push(Buffer.alloc(1, 0x20));
  assert.is(c.errors.length, 0, 'under 4 bytes held: not judged yet');
  c.decoder.push(Buffer.alloc(3, 0x20));
  assert.is(c.errors.length, 1);
});

/** 200k frame headers of `type`, each claiming a 1 MiB payload, 9 bytes apart, then 2 MiB of filler. */
function nestedHeaders(type: number): Buffer {
  const fake = Buffer.alloc(9 * 200_000 + 2 * MiB, 0x01);
  for (let i = 0; i < 200_000; i++) {
    fake.writeUInt32BE(0x46545331, 9 * i);
    fake[9 * i + 4] = type;
    fake.writeUInt32BE(MiB, 9 * i + 5);
  }
  return fake;
}

recover('nested fake headers cannot make the decoder sum forever: the checksum work is bounded', () => {
  // 200k headers, each claiming a 1 MiB control payload, 9 bytes apart, then
  // filler: every candidate fails its checksum only after 1 MiB is summed.
  const fake = nestedHeaders(T.ERROR);
  const c = collector();
  const t0 = performance.now();
  for (let at = 0; at < fake.length && !c.decoder.isStopped; at += 65536) c.decoder.push(fake.subarray(at, at + 65536));
  const ms = performance.now() - t0;
  assert.is(c.errors.length, 1);
  assert.is(c.errors[0]!.code, -709);
  assert.match(c.errors[0]!.message, /failing their checksum/);
  assert.ok(ms < 10_000, `${ms.toFixed(0)} ms`);
});

recover('nested fake CHUNK_DATA headers and a streaming decoder: only the first is streamed, the rest are held whole, so the cost stays linear', () => {
  // Each streamed candidate that fails costs a copy of its payload: streamed
  // one after another, 200k of them would copy ~200 GB.
  const fake = nestedHeaders(T.CHUNK_DATA);
  let allocated = 0;
  let released = 0;
  const c = collector({
    streamChunkPayloadsFrom: 64 * 1024,
    allocateChunkPayload: (n) => (allocated++, Buffer.alloc(n)),
    releaseChunkPayload: () => released++,
  });
  const t0 = performance.now();
  for (let at = 0; at < fake.length && !c.decoder.isStopped; at += 65536) c.decoder.push(fake.subarray(at, at + 65536));
  const ms = performance.now() - t0;
  assert.is(c.errors.length, 1);
  assert.is(c.errors[0]!.code, -709);
  assert.is(allocated, 1, 'one payload streamed: the first candidate');
  assert.is(released, 1, 'and given back when it failed');
  assert.ok(ms < 10_000, `${ms.toFixed(0)} ms`);
});

recover('a corrupted 1 MiB frame followed by valid frames is recovered from (well inside the work bound)', () => {
  const bad = rawFrame(T.LIST_RESPONSE, Buffer.alloc(MiB, 0x02), { checksum: 0 });
  const c = feed([bad, errorFrame('a'), errorFrame('b')]);
  assert.is(c.errors.length, 0);
  assert.is(c.frames.length, 2);
});

recover.run();

// ---------------------------------------------------------------------------
const memory = suite('decoder: payload memory');
timing(memory);

memory('a payload inside one pushed buffer is a view of it (no copy) without an allocator', () => {
  const stream = Buffer.concat([errorFrame('one'), frameOf(chunkMessage(1000)), errorFrame('two')]);
  const c = feed([stream]);
  assert.is(c.frames.length, 3);
  let at = 0;
  for (const f of c.frames) {
    assert.is(f.payload.buffer, stream.buffer, 'shares memory');
    assert.is(f.payload.byteOffset, stream.byteOffset + at + 9);
    at += f.payload.length + FRAME_OVERHEAD;
  }
});

memory('a payload spanning pushed buffers is copied once into its own buffer', () => {
  const frame = frameOf(chunkMessage(100_000));
  const pieces = splitAt(frame, [1000, 50_000]);
  const c = feed(pieces);
  assert.is(c.frames.length, 1);
  const p = c.frames[0]!.payload;
  for (const piece of pieces) assert.is.not(p.buffer, piece.buffer);
  assert.equal(p, frame.subarray(9, frame.length - 4));
  assert.is(p.byteOffset, 0, 'CHUNK_DATA copies own their memory (transferable)');
  assert.is(p.buffer.byteLength, p.length);
  const ctl = errorFrame('spanning');
  const d = feed(splitAt(ctl, [20]));
  assert.equal(d.frames[0]!.payload, ctl.subarray(9, ctl.length - 4));
});

memory('CHUNK_DATA payloads go through allocateChunkPayload even when contiguous; control payloads never do', () => {
  const given: Buffer[] = [];
  const c = collector({
    allocateChunkPayload: (n) => {
      const b = Buffer.alloc(n);
      given.push(b);
      return b;
    },
  });
  const chunkFrame = frameOf(chunkMessage(500));
  c.decoder.push(Buffer.concat([chunkFrame, errorFrame('ctl')]));
  c.decoder.push(chunkFrame.subarray(0, 100));
  c.decoder.push(chunkFrame.subarray(100));
  assert.is(given.length, 2);
  assert.is(c.frames[0]!.payload, given[0]);
  assert.is(c.frames[2]!.payload, given[1]);
  assert.equal(given[0], chunkFrame.subarray(9, chunkFrame.length - 4));
  assert.equal(given[1], given[0]);
  assert.is(c.frames[1]!.type, T.ERROR);
});

memory('an allocator that returns the wrong size is a programming error, reported loudly', () => {
  const c = collector({ allocateChunkPayload: (n) => Buffer.alloc(n - 1) });
  assert.throws(() => c.decoder.push(frameOf(chunkMessage(10))), /returned 57 bytes/);
});

memory('a zero-length payload is an empty buffer; the decoder delivers unknown types for decodeMessage to reject', () => {
  const c = feed([rawFrame(0x43, Buffer.alloc(0)), rawFrame(0x00, Buffer.alloc(3))]);
  assert.equal(c.frames.map((f) => [f.type, f.payload.length]), [
    [0x43, 0],
    [0x00, 3],
  ]);
});

memory('bufferedBytes counts what is held; stop() drops it and ignores further input', () => {
  const frame = frameOf(chunkMessage(1000));
  const c = collector();
  c.decoder.push(frame.subarray(0, 500));
  assert.is(c.decoder.bufferedBytes, 500);
  assert.is(c.decoder.isStopped, false);
  c.decoder.stop();
  assert.is(c.decoder.bufferedBytes, 0);
  assert.ok(c.decoder.isStopped);
  c.decoder.push(frame);
  assert.is(c.frames.length, 0);
  assert.is(c.errors.length, 0);
});

memory('onFrame may stop the decoder: later frames in the same push are not delivered', () => {
  const frames: number[] = [];
  const d: FrameDecoder = new FrameDecoder({
    onFrame: (f) => {
      frames.push(f.type);
      if (f.type === T.DISCONNECT) d.stop();
    },
    onError: () => assert.unreachable(),
  });
  d.push(Buffer.concat([errorFrame('1'), frameOf({ type: T.DISCONNECT, reason: 0, message: '' }), errorFrame('2')]));
  assert.equal(frames, [T.ERROR, T.DISCONNECT]);
});

memory('onFrame may push: a re-entrant push is handled in order', () => {
  const seen: string[] = [];
  const d: FrameDecoder = new FrameDecoder({
    onFrame: (f) => {
      const m = decodeMessage(f.type, f.payload);
      if (m.type === T.ERROR) {
        seen.push(m.message);
        if (m.message === 'a') d.push(errorFrame('c'));
      }
    },
    onError: () => assert.unreachable(),
  });
  d.push(Buffer.concat([errorFrame('a'), errorFrame('b')]));
  assert.equal(seen, ['a', 'b', 'c'].filter((x) => seen.includes(x)));
  assert.is(seen.length, 3);
  assert.is(d.bufferedBytes, 0);
});

memory('empty pushes are ignored', () => {
  const c = collector();
  c.decoder.push(Buffer.alloc(0));
  assert.is(c.decoder.bufferedBytes, 0);
});

memory('many small frames across many small pieces: the buffer list is compacted, nothing leaks', () => {
  const one = frameOf({ type: T.HEARTBEAT, timestampUs: 1, sequence: 1 });
  const stream = Buffer.concat(Array.from({ length: 3000 }, () => one));
  const c = collector();
  // Pieces of 7 bytes never line up with 25-byte frames.
  for (let at = 0; at < stream.length; at += 7) c.decoder.push(stream.subarray(at, at + 7));
  assert.is(c.frames.length, 3000);
  assert.is(c.decoder.bufferedBytes, 0);
});

/**
 * A decoder whose input buffers are recycled: each pushed piece is a copy the
 * test owns; once released it is filled with 0xEE at once (as a reused socket
 * buffer would be), so a frame still referring to it would come out wrong.
 */
function recyclingFeed(pieces: Buffer[], opts: Partial<FrameDecoderOptions> = {}): { c: ReturnType<typeof collector>; pushed: Buffer[]; released: Buffer[] } {
  const pushed: Buffer[] = [];
  const released: Buffer[] = [];
  const c = collector({
    ...opts,
    releaseInput: (b) => {
      released.push(b);
      b.fill(0xee);
    },
  });
  for (const p of pieces) {
    const own = Buffer.from(p);
    pushed.push(own);
    c.decoder.push(own);
  }
  return { c, pushed, released };
}

memory('releaseInput: a stream cut at random points decodes the same, and every consumed buffer is released exactly once', () => {
  const frames = [errorFrame('one'), frameOf(chunkMessage(100_000)), errorFrame('two'), frameOf(chunkMessage(3)), errorFrame('three')];
  const stream = Buffer.concat(frames);
  const expected = frameKeys(feed([stream]).frames);
  const rand = prng(7);
  for (let round = 0; round < 40; round++) {
    const cuts = Array.from({ length: 1 + Math.floor(rand() * 30) }, () => Math.floor(rand() * stream.length));
    const { c, pushed, released } = recyclingFeed(splitAt(stream, cuts), { allocateChunkPayload: (n) => Buffer.alloc(n) });
    assert.equal(frameKeys(c.frames), expected, `round ${round}`);
    assert.is(released.length, pushed.length, 'all consumed: all released');
    assert.is(new Set(released).size, released.length, 'none twice');
    for (const b of released) assert.ok(pushed.includes(b), 'released as pushed');
  }
});

memory('releaseInput: a buffer still holding part of a frame is kept; stop() releases what is held; input after stop is released at once', () => {
  const frame = frameOf(chunkMessage(1000));
  const { c, pushed, released } = recyclingFeed([frame.subarray(0, 300), frame.subarray(300, 600)]);
  assert.is(released.length, 0, 'a partial frame keeps its buffers');
  c.decoder.stop();
  assert.equal(new Set(released), new Set(pushed));
  const late = Buffer.from('late');
  c.decoder.push(late);
  assert.is(released.at(-1), late);
});

memory('releaseInput: garbage and failed frames release their buffers; a control payload is a copy, never a view', () => {
  const bad = rawFrame(T.ERROR, Buffer.from('xxxxxxxxxxxxxxxx'), { checksum: 1 });
  const good = errorFrame('after');
  const { c, pushed, released } = recyclingFeed([Buffer.from('garbage!'), bad, good]);
  assert.is(c.frames.length, 1);
  assert.is(released.length, pushed.length);
  const payload = c.frames[0]!.payload;
  // Small buffers may share Node's allocation pool: what matters is that the byte ranges never overlap.
  const overlaps = (x: Buffer, y: Buffer) => x.buffer === y.buffer && x.byteOffset < y.byteOffset + y.length && y.byteOffset < x.byteOffset + x.length;
  for (const p of pushed) assert.not.ok(overlaps(payload, p), 'not a view of its input');
  assert.equal(payload, good.subarray(9, good.length - 4), 'intact after its input was overwritten');
});

memory.run();
