/**
 * Property tests (fast-check). Deterministic by default; FTS_FC_SEED=<n> and
 * FTS_FC_RUNS=<multiplier> explore further, e.g.
 *   FTS_FC_SEED=$RANDOM FTS_FC_RUNS=20 npx tsx test/protocol/property.test.ts
 */
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CHUNK_HEADER_SIZE,
  decodeMessage,
  Defaults,
  FRAME_OVERHEAD,
  FrameDecoder,
  FtsError,
  MAX_CONTROL_PAYLOAD,
  MESSAGE_TYPE_NAMES,
  type Frame,
  type Message,
} from '../../protocol/index.js';
import { frameOf, splitAt, T, timing, U64_MAX } from './helpers.js';

const SEED = Number(process.env['FTS_FC_SEED'] ?? 20261129);
const SCALE = Math.max(1, Number(process.env['FTS_FC_RUNS'] ?? 1));
const params = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns: numRuns * SCALE, endOnFailure: true });

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------
const u8 = fc.integer({ min: 0, max: 0xff });
const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 0xffffffff));
const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const u64 = fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, U64_MAX));
const uuid = fc.uuid();
const text = fc.string({ unit: 'binary', maxLength: 40 });
const sha = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

/** fc.record with ordinary objects (null-prototype records would not deep-equal decoded messages). */
function rec<R>(model: { [K in keyof R]: fc.Arbitrary<R[K]> }): fc.Arbitrary<R> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<R>;
}

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc
    .tuple(rec({ type: fc.constant(T.CONNECT), protocolVersion: u32, capabilities: u32, clientId: uuid }), fc.option(text))
    .map(([m, token]): Message => (token === null ? m : { ...m, authToken: token })),
  rec({ type: fc.constant(T.CONNECT_ACK), protocolVersion: u32, capabilities: u32, sessionId: uuid, maxChunkSize: u32, maxFileSize: u64, serverName: text }),
  rec({ type: fc.constant(T.DISCONNECT), reason: u32, message: text }),
  rec({ type: fc.constantFrom(T.HEARTBEAT, T.HEARTBEAT_ACK), timestampUs: u64, sequence: u32 }),
  rec({
    type: fc.constant(T.UPLOAD_REQUEST), transferId: uuid, filename: text, fileSize: u64, sha256: sha, chunkSize: u32, chunkCount: u64,
    compression: u8, options: u32, modifiedMs: u64,
  }),
  rec({ type: fc.constant(T.UPLOAD_ACCEPT), transferId: uuid, compression: u8, chunkSize: u32, window: u32 }),
  rec({ type: fc.constant(T.UPLOAD_REJECT), transferId: uuid, errorCode: i32, message: text, available: u64, requested: u64 }),
  rec({ type: fc.constant(T.UPLOAD_COMPLETE), transferId: uuid, totalChunks: u64, bytesSent: u64, bytesOnWire: u64, sha256: sha }),
  rec({ type: fc.constant(T.UPLOAD_VERIFY), transferId: uuid, verified: fc.boolean(), errorCode: i32, sha256: sha, storedName: text }),
  fc
    .record({ transferId: uuid, chunkIndex: u64, chunkOffset: u64, originalSize: u32, crc32: u32, flags: u8, data: bytes(300) })
    .map((c): Message => ({ type: T.CHUNK_DATA, ...c, compressedSize: c.data.length })),
  rec({ type: fc.constant(T.CHUNK_ACK), transferId: uuid, chunkIndex: u64, count: u32 }),
  rec({ type: fc.constant(T.CHUNK_NACK), transferId: uuid, errorCode: i32, chunkIndices: fc.array(u64, { maxLength: 12 }) }),
  rec({ type: fc.constant(T.RESUME_REQUEST), transferId: uuid, direction: u8, filename: text, sha256: sha, totalChunks: u64, held: bytes(64) }),
  rec({ type: fc.constant(T.RESUME_RESPONSE), transferId: uuid, status: u8, totalChunks: u64, receivedCount: u64, missing: bytes(64) }),
  rec({ type: fc.constant(T.TRANSFER_CANCEL), transferId: uuid, reason: i32 }),
  rec({ type: fc.constantFrom(T.TRANSFER_PAUSE, T.TRANSFER_RESUME), transferId: uuid }),
  rec({ type: fc.constant(T.DOWNLOAD_REQUEST), transferId: uuid, filename: text, compression: u8, chunkSize: u32, window: u32 }),
  rec({
    type: fc.constant(T.DOWNLOAD_ACCEPT), transferId: uuid, fileSize: u64, sha256: sha, compression: u8, chunkSize: u32, totalChunks: u64, modifiedMs: u64,
  }),
  rec({ type: fc.constant(T.DOWNLOAD_REJECT), transferId: uuid, errorCode: i32, message: text }),
  rec({ type: fc.constant(T.DOWNLOAD_COMPLETE), transferId: uuid, totalChunks: u64, bytesSent: u64, bytesOnWire: u64 }),
  rec({ type: fc.constant(T.DOWNLOAD_VERIFY), transferId: uuid, verified: fc.boolean(), errorCode: i32, bytesReceived: u64 }),
  rec({ type: fc.constant(T.LIST_REQUEST), requestId: uuid, pattern: text, offset: u32, limit: u32, sortBy: u8, sortOrder: u8 }),
  rec({
    type: fc.constant(T.LIST_RESPONSE), requestId: uuid, totalCount: u32, hasMore: fc.boolean(),
    entries: fc.array(rec({ name: text, size: u64, sha256: sha, createdMs: u64, modifiedMs: u64 }), { maxLength: 5 }),
  }),
  rec({ type: fc.constant(T.ERROR), transferId: uuid, errorCode: i32, message: text }),
);

/** An edit of a byte stream; positions are taken modulo its length. */
type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'insert'; at: number; data: Uint8Array }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; len: number; to: number }
  | { kind: 'magic'; at: number; type: number; length: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  rec({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  rec({ kind: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 20 }) }),
  rec({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 30 }) }),
  rec({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  rec({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 200 }), to: fc.nat() }),
  // A fake header: magic, any type, a length that may be over or under the bound.
  rec({
    kind: fc.constant('magic' as const),
    at: fc.nat(),
    type: fc.oneof(u8, fc.constant(T.CHUNK_DATA)),
    length: fc.oneof(fc.nat(400), fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(MAX_CONTROL_PAYLOAD, MAX_CONTROL_PAYLOAD + 1)),
  }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let b = input;
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) {
          b = Buffer.from(b);
          b[m.at % b.length] ^= m.xor;
        }
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.data, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'duplicate': {
        const piece = b.subarray(at, at + m.len);
        const to = b.length === 0 ? 0 : m.to % (b.length + 1);
        b = Buffer.concat([b.subarray(0, to), piece, b.subarray(to)]);
        break;
      }
      case 'magic': {
        const h = Buffer.alloc(9);
        h.writeUInt32BE(0x46545331, 0);
        h[4] = m.type;
        h.writeUInt32BE(m.length >>> 0, 5);
        b = Buffer.concat([b.subarray(0, at), h, b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

const streamArb = fc.array(messageArb, { minLength: 1, maxLength: 6 }).map((ms) => Buffer.concat(ms.map(frameOf)));

const optionsArb = rec({
  maxChunkSize: fc.constantFrom(undefined, 16, 100, 1000),
  maxControlPayload: fc.constantFrom(undefined, 64, 300, 2000),
  maxGarbage: fc.constantFrom(undefined, 64, 1000),
});
type Options = { maxChunkSize: number | undefined; maxControlPayload: number | undefined; maxGarbage: number | undefined };

interface Run {
  frames: Frame[];
  /** Bytes of input consumed (delivered or discarded) when each frame was delivered. */
  frameEnds: number[];
  errors: FtsError[];
  discarded: number;
  maxAllocated: number;
  decoder: FrameDecoder;
}

/**
 * Pushes `pieces` and checks the decoder's invariants after every push: it
 * never throws, holds at most one frame's bound (+12) bytes, accounts for
 * every byte (delivered + discarded + held = pushed), allocates only within
 * the bound, and reports at most one error, after which it is stopped.
 */
function runDecoder(pieces: Buffer[], o: Options): Run {
  const maxChunkSize = o.maxChunkSize ?? Defaults.MAX_CHUNK_SIZE;
  const maxControl = o.maxControlPayload ?? MAX_CONTROL_PAYLOAD;
  const chunkBound = CHUNK_HEADER_SIZE + maxChunkSize;
  const run: Run = { frames: [], frameEnds: [], errors: [], discarded: 0, maxAllocated: 0, decoder: undefined as unknown as FrameDecoder };
  let delivered = 0;
  run.decoder = new FrameDecoder({
    ...(o.maxChunkSize === undefined ? {} : { maxChunkSize: o.maxChunkSize }),
    ...(o.maxControlPayload === undefined ? {} : { maxControlPayload: o.maxControlPayload }),
    ...(o.maxGarbage === undefined ? {} : { maxGarbage: o.maxGarbage }),
    allocateChunkPayload: (n) => {
      if (n > chunkBound) throw new Error(`asked to allocate ${n} > ${chunkBound}`);
      run.maxAllocated = Math.max(run.maxAllocated, n);
      return Buffer.alloc(n);
    },
    onFrame: (f) => {
      if (run.errors.length > 0) throw new Error('frame after the error');
      const limit = f.type === T.CHUNK_DATA ? chunkBound : maxControl;
      if (f.payload.length > limit) throw new Error(`payload ${f.payload.length} over the bound ${limit}`);
      run.frames.push(f);
      delivered += f.payload.length + FRAME_OVERHEAD;
      run.frameEnds.push(delivered + run.discarded);
    },
    onDiscard: (n) => {
      if (n <= 0) throw new Error(`discarded ${n} bytes`);
      run.discarded += n;
    },
    onError: (e) => {
      run.errors.push(e);
    },
  });
  let pushed = 0;
  stats.runs++;
  stats.pieces += pieces.length;
  for (const piece of pieces) {
    run.decoder.push(piece); // must not throw: a throw fails the property
    pushed += piece.length;
    const d = run.decoder;
    if (run.errors.length > 1) throw new Error('onError called twice');
    if (run.errors.length === 1) {
      if (run.errors[0]!.code !== -709) throw new Error(`error ${run.errors[0]!.code}`);
      if (!d.isStopped || d.bufferedBytes !== 0) throw new Error('not stopped after the error');
      continue;
    }
    if (d.bufferedBytes > Math.max(maxControl, chunkBound) + FRAME_OVERHEAD - 1) throw new Error(`holds ${d.bufferedBytes} bytes`);
    if (delivered + run.discarded + d.bufferedBytes !== pushed) {
      throw new Error(`bytes unaccounted: ${delivered} delivered + ${run.discarded} discarded + ${d.bufferedBytes} held != ${pushed} pushed`);
    }
  }
  stats.frames += run.frames.length;
  stats.discarded += run.discarded;
  stats.errors += run.errors.length;
  stats.allocated = Math.max(stats.allocated, run.maxAllocated);
  return run;
}

/** What the generated inputs exercised; printed with FTS_TEST_TIMING=1. */
const stats = { runs: 0, pieces: 0, frames: 0, discarded: 0, errors: 0, allocated: 0, decoded: 0, rejected: 0, flushed: 0 };

/** decodeMessage either returns a message of the frame's type or throws FtsError(-709), nothing else. */
function decodeOrReject(f: Frame): Message | undefined {
  try {
    const m = decodeMessage(f.type, f.payload);
    if (m.type !== f.type) throw new Error(`decoded type ${m.type} from a frame of type ${f.type}`);
    stats.decoded++;
    return m;
  } catch (e) {
    if (e instanceof FtsError && e.code === -709) {
      stats.rejected++;
      return undefined;
    }
    throw e;
  }
}

const cutsArb = fc.array(fc.nat(), { maxLength: 40, size: 'medium' });
const cut = (b: Buffer, cuts: number[]) => splitAt(b, cuts.map((c) => (b.length === 0 ? 0 : c % b.length)));

// ---------------------------------------------------------------------------
const props = suite('property: decoder and codec on arbitrary input');
timing(props);

props('round trip: any message, encoded, split anywhere, decodes to itself', () => {
  fc.assert(
    fc.property(fc.array(messageArb, { minLength: 1, maxLength: 5 }), cutsArb, (messages, cuts) => {
      const stream = Buffer.concat(messages.map(frameOf));
      const run = runDecoder(cut(stream, cuts), { maxChunkSize: undefined, maxControlPayload: undefined, maxGarbage: undefined });
      assert.is(run.frames.length, messages.length);
      assert.is(run.discarded, 0);
      run.frames.forEach((f, i) => assert.equal(decodeMessage(f.type, f.payload), messages[i]));
    }),
    params(300),
  );
});

props('random bytes: the decoder never throws, stays within its bounds; decodeMessage only rejects with -709', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000, size: 'max' }), cutsArb, optionsArb, (data, cuts, o) => {
      const run = runDecoder(cut(Buffer.from(data), cuts), o);
      for (const f of run.frames) decodeOrReject(f);
    }),
    params(1000),
  );
});

props('mutated streams of valid frames: same invariants, whatever the edits', () => {
  fc.assert(
    fc.property(streamArb, fc.array(mutationArb, { minLength: 1, maxLength: 8 }), cutsArb, optionsArb, (stream, mutations, cuts, o) => {
      const t0 = performance.now();
      const run = runDecoder(cut(mutate(stream, mutations), cuts), o);
      for (const f of run.frames) decodeOrReject(f);
      if (performance.now() - t0 > 2000) throw new Error('too slow: a hang in the making');
    }),
    params(2000),
  );
});

/** After each piece: the frames delivered and the errors reported during it, and the bytes discarded or held so far. */
type Trace = { frames: string[]; errors: number[]; discardedOrHeld: number }[];

/**
 * Runs one decoder over `pieces`: held whole (`streamFrom` undefined), or
 * streaming CHUNK_DATA payloads of `streamFrom` bytes or more and fed as a
 * socket with `onread` would feed it: while the decoder offers a target,
 * bytes land there (never more than it asks for) and the rest is pushed.
 */
function trace(pieces: Buffer[], o: Options, streamFrom?: number): Trace {
  const t: Trace = [];
  let frames: string[] = [];
  let errors: number[] = [];
  let discarded = 0;
  const pushed = new Set<Buffer>();
  const released = new Set<Buffer>();
  const decoder = new FrameDecoder({
    ...(o.maxChunkSize === undefined ? {} : { maxChunkSize: o.maxChunkSize }),
    ...(o.maxControlPayload === undefined ? {} : { maxControlPayload: o.maxControlPayload }),
    ...(o.maxGarbage === undefined ? {} : { maxGarbage: o.maxGarbage }),
    ...(streamFrom === undefined ? {} : { streamChunkPayloadsFrom: streamFrom }),
    allocateChunkPayload: (n) => Buffer.alloc(n, 0xee),
    // Released input is overwritten at once, as a recycled socket buffer would be.
    releaseInput: (b) => {
      if (!pushed.has(b)) throw new Error('released a buffer that was not pushed');
      if (released.has(b)) throw new Error('released twice');
      released.add(b);
      b.fill(0xdd);
    },
    onFrame: (f) => frames.push(`${f.type} ${f.payload.toString('hex')}`),
    onDiscard: (n) => (discarded += n),
    onError: (e) => errors.push(e.code),
  });
  for (const piece of pieces) {
    let rest = piece;
    while (rest.length > 0) {
      const target = streamFrom === undefined ? undefined : decoder.directTarget();
      if (!target) {
        const own = Buffer.from(rest);
        pushed.add(own);
        decoder.push(own);
        break;
      }
      const n = Math.min(target.length, rest.length);
      rest.copy(target, 0, 0, n);
      decoder.filledDirect(n);
      rest = rest.subarray(n);
    }
    t.push({ frames, errors, discardedOrHeld: discarded + decoder.bufferedBytes });
    if (released.size > pushed.size) throw new Error('released more than pushed');
    frames = [];
    errors = [];
  }
  decoder.stop();
  if (released.size !== pushed.size) throw new Error(`${pushed.size} buffers pushed, ${released.size} released after stop()`);
  return t;
}

// How the bytes between frames split into discards, and whether the last 1-3
// of them are held (too few to tell a magic) or dropped, depends on how they
// came in buffers; a failed streamed frame comes back as one buffer. So may,
// by those few bytes, the moment the garbage limit is crossed: errors are
// compared where no limit can be reached.
props('streamed CHUNK_DATA payloads, read in place as a socket would, decode exactly like frames held whole: the same frames after the same pieces, every byte accounted for, every input buffer released once', () => {
  const inputArb = fc.oneof(
    fc.tuple(streamArb, fc.array(mutationArb, { maxLength: 8 })).map(([s, m]) => mutate(s, m)),
    fc.uint8Array({ maxLength: 3000, size: 'max' }).map((a) => Buffer.from(a)),
  );
  fc.assert(
    fc.property(inputArb, cutsArb, optionsArb, fc.constantFrom(1, 16, 49, 200), (input, cuts, o, streamFrom) => {
      const pieces = cut(input, cuts);
      const whole = trace(pieces, o);
      const streamed = trace(pieces.map((p) => Buffer.from(p)), o, streamFrom);
      const limited = o.maxGarbage !== undefined;
      const errorsAt = (t: Trace) => t.findIndex((step) => step.errors.length > 0);
      // Once either gave up, the two may differ; up to then they must not.
      const upTo = limited ? Math.min(...[errorsAt(whole), errorsAt(streamed)].map((k) => (k === -1 ? pieces.length : k))) : pieces.length;
      for (let k = 0; k < upTo; k++) {
        assert.equal(streamed[k]!.frames, whole[k]!.frames, `frames after piece ${k}`);
        assert.equal(streamed[k]!.errors, whole[k]!.errors, `errors after piece ${k}`);
        assert.is(streamed[k]!.discardedOrHeld, whole[k]!.discardedOrHeld, `bytes after piece ${k}`);
      }
    }),
    params(2000),
  );
});

props('a valid frame after garbage (under the limit) is still decoded', () => {
  const garbageArb = fc.oneof(
    fc.uint8Array({ maxLength: 2000, size: 'large' }).map((a) => Buffer.from(a)),
    fc.tuple(streamArb, fc.array(mutationArb, { minLength: 1, maxLength: 6 })).map(([s, m]) => mutate(s, m)),
  );
  fc.assert(
    fc.property(garbageArb, cutsArb, fc.constantFrom(undefined, 16, 300), fc.constantFrom(undefined, 64, 1000), fc.nat(), (garbage, cuts, maxChunkSize, maxControlPayload, tag) => {
      const sentinel = frameOf({ type: T.ERROR, transferId: '00000000-0000-4000-8000-000000000000', errorCode: -709, message: `sentinel ${tag}` });
      const o = { maxChunkSize, maxControlPayload, maxGarbage: undefined };
      const run = runDecoder(cut(Buffer.concat([garbage, sentinel]), cuts), o);
      assert.is(run.errors.length, 0);
      const isSentinel = (f: Frame) => {
        const m = decodeOrReject(f);
        return m?.type === T.ERROR && m.message === `sentinel ${tag}`;
      };
      if (run.frames.some(isSentinel)) return;
      // A frame that ends inside the sentinel took its first bytes: a mutated
      // frame cut short whose length echo the sentinel's magic completed (the
      // echo is the postfix's low 16 bits, 'F' = 0x46 fits any length 0x..46).
      // The sentinel is then no longer a frame on the wire, rightly not decoded.
      if (run.frameEnds.some((end, k) => end > garbage.length && !isSentinel(run.frames[k]!))) return;
      // A fake header in the garbage may claim up to the bound and hold the
      // sentinel until that many more bytes arrive; then the scan goes back
      // to the byte after its magic (§8.1) and finds it.
      assert.ok(run.decoder.bufferedBytes >= sentinel.length, 'the sentinel is still held');
      stats.flushed++;
      const bound = Math.max(maxControlPayload ?? MAX_CONTROL_PAYLOAD, CHUNK_HEADER_SIZE + (maxChunkSize ?? Defaults.MAX_CHUNK_SIZE));
      run.decoder.push(Buffer.alloc(bound + FRAME_OVERHEAD, 0x20));
      assert.ok(run.frames.some(isSentinel), 'sentinel decoded');
    }),
    params(1000),
  );
});

props('decodeMessage on arbitrary payloads of every type: a message of that type or FtsError(-709)', () => {
  const types = [...MESSAGE_TYPE_NAMES.keys(), 0x43, 0x00, 0x99];
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 400, size: 'large' }), (type, data) => {
      decodeOrReject({ type, payload: Buffer.from(data) });
    }),
    params(2000),
  );
});

props('decodeMessage on a valid payload with one byte changed or cut: never anything but -709', () => {
  fc.assert(
    fc.property(messageArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (m, at, xor, cutInstead) => {
      const frame = frameOf(m);
      const payload = Buffer.from(frame.subarray(9, frame.length - 4));
      if (payload.length === 0) return;
      const i = at % payload.length;
      if (cutInstead) decodeOrReject({ type: m.type, payload: payload.subarray(0, i) });
      else {
        payload[i] ^= xor;
        decodeOrReject({ type: m.type, payload });
      }
    }),
    params(1000),
  );
});

props.after(() => {
  if (process.env['FTS_TEST_TIMING']) process.stderr.write(`\n  property stats: ${JSON.stringify(stats)}\n`);
});

props.run();
