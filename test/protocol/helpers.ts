/**
 * Shared pieces of the protocol tests: sample messages with boundary values,
 * raw frame building, decoding helpers and a seeded PRNG. Not a test file
 * itself (the runner picks up `*.test.ts` only).
 */
import * as assert from 'uvu/assert';
import {
  byteSum,
  CHUNK_HEADER_SIZE,
  decodeMessage,
  encodeMessage,
  FRAME_HEADER_SIZE,
  FRAME_POSTFIX_SIZE,
  FrameDecoder,
  FtsError,
  MAGIC,
  MessageType,
  type Frame,
  type FrameDecoderOptions,
  type Message,
} from '../../protocol/index.js';

export const T = MessageType;
export const U32_MAX = 0xffffffff;
export const U64_MAX = Number.MAX_SAFE_INTEGER;
export const I32_MIN = -0x80000000;
export const I32_MAX = 0x7fffffff;

export const ID_A = '00112233-4455-6677-8899-aabbccddeeff';
export const ID_B = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
export const ID_NIL = '00000000-0000-0000-0000-000000000000';

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
export const sha = (fill: number): Buffer => Buffer.alloc(32, fill);
/** 32 distinct bytes, so a shifted field would show. */
export const SHA_SEQ = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 1));

/** A name of exactly `bytes` UTF-8 bytes mixing 1-, 2-, 3- and 4-byte characters. */
export function utf8Name(bytes: number): string {
  const parts = ['a', 'é', '文', '😀'];
  let out = '';
  let used = 0;
  for (let i = 0; used < bytes; i++) {
    const p = parts[i % parts.length]!;
    const n = Buffer.byteLength(p);
    if (used + n > bytes) {
      out += 'b'.repeat(bytes - used);
      break;
    }
    out += p;
    used += n;
  }
  return out;
}

export const NAME_255 = utf8Name(255);
export const MULTIBYTE = 'Ünïcødé 文件 😀.txt';

/** Every message type of §3, several times, with boundary values. */
export function sampleMessages(): { label: string; message: Message }[] {
  const s: { label: string; message: Message }[] = [];
  const add = (label: string, message: Message) => s.push({ label, message });

  add('CONNECT no token', { type: T.CONNECT, protocolVersion: 0x00020000, capabilities: 0x17, clientId: ID_A });
  add('CONNECT empty token', { type: T.CONNECT, protocolVersion: 0, capabilities: 0, clientId: ID_NIL, authToken: '' });
  add('CONNECT max values + multibyte token', { type: T.CONNECT, protocolVersion: U32_MAX, capabilities: U32_MAX, clientId: ID_B, authToken: `tøken-😀-${'x'.repeat(300)}` });
  add('CONNECT_ACK', { type: T.CONNECT_ACK, protocolVersion: 0x00020000, capabilities: 0x13, sessionId: ID_A, maxChunkSize: 1 << 20, maxFileSize: 10 * 2 ** 30, serverName: 'fts-server' });
  add('CONNECT_ACK bounds', { type: T.CONNECT_ACK, protocolVersion: U32_MAX, capabilities: 0, sessionId: ID_B, maxChunkSize: U32_MAX, maxFileSize: U64_MAX, serverName: '' });
  add('CONNECT_ACK zero u64', { type: T.CONNECT_ACK, protocolVersion: 0, capabilities: U32_MAX, sessionId: ID_NIL, maxChunkSize: 0, maxFileSize: 0, serverName: MULTIBYTE });
  add('DISCONNECT empty', { type: T.DISCONNECT, reason: 0, message: '' });
  add('DISCONNECT max', { type: T.DISCONNECT, reason: U32_MAX, message: MULTIBYTE });
  add('HEARTBEAT zero', { type: T.HEARTBEAT, timestampUs: 0, sequence: 0 });
  add('HEARTBEAT max', { type: T.HEARTBEAT, timestampUs: U64_MAX, sequence: U32_MAX });
  add('HEARTBEAT_ACK', { type: T.HEARTBEAT_ACK, timestampUs: 1700000000000000, sequence: 42 });
  add('HEARTBEAT_ACK max', { type: T.HEARTBEAT_ACK, timestampUs: U64_MAX, sequence: U32_MAX });
  add('UPLOAD_REQUEST 255-byte name', {
    type: T.UPLOAD_REQUEST, transferId: ID_A, filename: NAME_255, fileSize: U64_MAX, sha256: SHA_SEQ, chunkSize: U32_MAX,
    chunkCount: U64_MAX, compression: 255, options: U32_MAX, modifiedMs: U64_MAX,
  });
  add('UPLOAD_REQUEST empty name zeros', {
    type: T.UPLOAD_REQUEST, transferId: ID_NIL, filename: '', fileSize: 0, sha256: sha(0), chunkSize: 0, chunkCount: 0, compression: 0, options: 0, modifiedMs: 0,
  });
  add('UPLOAD_REQUEST multibyte', {
    type: T.UPLOAD_REQUEST, transferId: ID_B, filename: MULTIBYTE, fileSize: 12345, sha256: sha(0xab), chunkSize: 262144, chunkCount: 1, compression: 2, options: 7, modifiedMs: 1700000000000,
  });
  add('UPLOAD_ACCEPT', { type: T.UPLOAD_ACCEPT, transferId: ID_A, compression: 1, chunkSize: 65536, window: 64 });
  add('UPLOAD_ACCEPT bounds', { type: T.UPLOAD_ACCEPT, transferId: ID_B, compression: 255, chunkSize: U32_MAX, window: U32_MAX });
  add('UPLOAD_REJECT', { type: T.UPLOAD_REJECT, transferId: ID_A, errorCode: -745, message: 'storage full 💾', available: 1024, requested: U64_MAX });
  add('UPLOAD_REJECT bounds', { type: T.UPLOAD_REJECT, transferId: ID_NIL, errorCode: I32_MIN, message: '', available: 0, requested: 0 });
  add('UPLOAD_REJECT i32 max', { type: T.UPLOAD_REJECT, transferId: ID_B, errorCode: I32_MAX, message: 'x'.repeat(1000), available: U64_MAX, requested: U64_MAX });
  add('UPLOAD_COMPLETE', { type: T.UPLOAD_COMPLETE, transferId: ID_A, totalChunks: U64_MAX, bytesSent: U64_MAX, bytesOnWire: U64_MAX, sha256: SHA_SEQ });
  add('UPLOAD_COMPLETE zeros', { type: T.UPLOAD_COMPLETE, transferId: ID_NIL, totalChunks: 0, bytesSent: 0, bytesOnWire: 0, sha256: sha(0) });
  add('UPLOAD_VERIFY ok', { type: T.UPLOAD_VERIFY, transferId: ID_A, verified: true, errorCode: 0, sha256: SHA_SEQ, storedName: NAME_255 });
  add('UPLOAD_VERIFY failed', { type: T.UPLOAD_VERIFY, transferId: ID_B, verified: false, errorCode: -723, sha256: sha(0xff), storedName: '' });
  add('CHUNK_DATA empty', chunk(0, Buffer.alloc(0), 0));
  add('CHUNK_DATA hello', chunk(0, Buffer.from('hello'), 0x03));
  add('CHUNK_DATA max header values', {
    type: T.CHUNK_DATA, transferId: ID_B, chunkIndex: U64_MAX, chunkOffset: U64_MAX, originalSize: U32_MAX, compressedSize: 100,
    crc32: U32_MAX, flags: 0xff, data: Buffer.alloc(100, 0x46),
  });
  add('CHUNK_DATA 4 KiB', chunk(7, Buffer.alloc(4096, 0x5a), 0x04));
  add('CHUNK_ACK', { type: T.CHUNK_ACK, transferId: ID_A, chunkIndex: 0, count: 1 });
  add('CHUNK_ACK bounds', { type: T.CHUNK_ACK, transferId: ID_B, chunkIndex: U64_MAX, count: U32_MAX });
  add('CHUNK_NACK none', { type: T.CHUNK_NACK, transferId: ID_A, errorCode: -720, chunkIndices: [] });
  add('CHUNK_NACK one', { type: T.CHUNK_NACK, transferId: ID_A, errorCode: I32_MIN, chunkIndices: [U64_MAX] });
  add('CHUNK_NACK many', { type: T.CHUNK_NACK, transferId: ID_B, errorCode: -722, chunkIndices: Array.from({ length: 1000 }, (_, i) => (i * 7919) % 100003) });
  add('RESUME_REQUEST empty bitmap', { type: T.RESUME_REQUEST, transferId: ID_A, direction: 0, filename: 'a', sha256: sha(0), totalChunks: 0, held: Buffer.alloc(0) });
  add('RESUME_REQUEST large bitmap', {
    type: T.RESUME_REQUEST, transferId: ID_B, direction: 1, filename: NAME_255, sha256: SHA_SEQ, totalChunks: U64_MAX,
    held: Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 37) & 0xff)),
  });
  add('RESUME_RESPONSE empty bitmap', { type: T.RESUME_RESPONSE, transferId: ID_A, status: 1, totalChunks: 0, receivedCount: 0, missing: Buffer.alloc(0) });
  add('RESUME_RESPONSE large bitmap', { type: T.RESUME_RESPONSE, transferId: ID_B, status: 255, totalChunks: U64_MAX, receivedCount: U64_MAX, missing: Buffer.alloc(16384, 0xff) });
  add('TRANSFER_CANCEL', { type: T.TRANSFER_CANCEL, transferId: ID_A, reason: -711 });
  add('TRANSFER_CANCEL bounds', { type: T.TRANSFER_CANCEL, transferId: ID_B, reason: I32_MAX });
  add('TRANSFER_PAUSE', { type: T.TRANSFER_PAUSE, transferId: ID_A });
  add('TRANSFER_RESUME', { type: T.TRANSFER_RESUME, transferId: ID_B });
  add('DOWNLOAD_REQUEST', { type: T.DOWNLOAD_REQUEST, transferId: ID_A, filename: MULTIBYTE, compression: 2, chunkSize: 0, window: 0 });
  add('DOWNLOAD_REQUEST bounds', { type: T.DOWNLOAD_REQUEST, transferId: ID_B, filename: NAME_255, compression: 255, chunkSize: U32_MAX, window: U32_MAX });
  add('DOWNLOAD_REQUEST empty name', { type: T.DOWNLOAD_REQUEST, transferId: ID_NIL, filename: '', compression: 0, chunkSize: 0, window: 0 });
  add('DOWNLOAD_ACCEPT', { type: T.DOWNLOAD_ACCEPT, transferId: ID_A, fileSize: U64_MAX, sha256: SHA_SEQ, compression: 255, chunkSize: U32_MAX, totalChunks: U64_MAX, modifiedMs: U64_MAX });
  add('DOWNLOAD_ACCEPT zeros', { type: T.DOWNLOAD_ACCEPT, transferId: ID_NIL, fileSize: 0, sha256: sha(0), compression: 0, chunkSize: 0, totalChunks: 0, modifiedMs: 0 });
  add('DOWNLOAD_REJECT', { type: T.DOWNLOAD_REJECT, transferId: ID_A, errorCode: -746, message: 'not found: 文件' });
  add('DOWNLOAD_REJECT bounds', { type: T.DOWNLOAD_REJECT, transferId: ID_B, errorCode: I32_MIN, message: '' });
  add('DOWNLOAD_COMPLETE', { type: T.DOWNLOAD_COMPLETE, transferId: ID_A, totalChunks: U64_MAX, bytesSent: U64_MAX, bytesOnWire: U64_MAX });
  add('DOWNLOAD_COMPLETE zeros', { type: T.DOWNLOAD_COMPLETE, transferId: ID_NIL, totalChunks: 0, bytesSent: 0, bytesOnWire: 0 });
  add('DOWNLOAD_VERIFY ok', { type: T.DOWNLOAD_VERIFY, transferId: ID_A, verified: true, errorCode: 0, bytesReceived: U64_MAX });
  add('DOWNLOAD_VERIFY failed', { type: T.DOWNLOAD_VERIFY, transferId: ID_B, verified: false, errorCode: I32_MIN, bytesReceived: 0 });
  add('LIST_REQUEST', { type: T.LIST_REQUEST, requestId: ID_A, pattern: '*.txt', offset: 0, limit: 0, sortBy: 0, sortOrder: 0 });
  add('LIST_REQUEST bounds', { type: T.LIST_REQUEST, requestId: ID_B, pattern: `[!a]?${MULTIBYTE}`, offset: U32_MAX, limit: U32_MAX, sortBy: 255, sortOrder: 255 });
  add('LIST_REQUEST empty pattern', { type: T.LIST_REQUEST, requestId: ID_NIL, pattern: '', offset: 1, limit: 1000, sortBy: 2, sortOrder: 1 });
  add('LIST_RESPONSE no entries', { type: T.LIST_RESPONSE, requestId: ID_A, totalCount: 0, hasMore: false, entries: [] });
  add('LIST_RESPONSE many entries', {
    type: T.LIST_RESPONSE, requestId: ID_B, totalCount: U32_MAX, hasMore: true,
    entries: Array.from({ length: 120 }, (_, i) => ({
      name: i === 0 ? NAME_255 : i === 1 ? '' : `${MULTIBYTE}-${i}`,
      size: i === 0 ? U64_MAX : i,
      sha256: sha(i & 0xff),
      createdMs: i === 0 ? U64_MAX : 1700000000000 + i,
      modifiedMs: i === 0 ? U64_MAX : 1700000000000 + 2 * i,
    })),
  });
  add('ERROR nil id', { type: T.ERROR, transferId: ID_NIL, errorCode: -709, message: 'protocol_error' });
  add('ERROR bounds', { type: T.ERROR, transferId: ID_B, errorCode: I32_MIN, message: '' });
  add('ERROR long multibyte message', { type: T.ERROR, transferId: ID_A, errorCode: I32_MAX, message: '😀'.repeat(16383) });
  return s;
}

function chunk(index: number, data: Buffer, flags: number): Message {
  return {
    type: T.CHUNK_DATA,
    transferId: ID_A,
    chunkIndex: index,
    chunkOffset: index * 65536,
    originalSize: data.length,
    compressedSize: data.length,
    crc32: 0x3610a686,
    flags,
    data,
  };
}

/** The whole frame of `m` as one Buffer. */
export function frameOf(m: Message): Buffer {
  return Buffer.concat(encodeMessage(m));
}

/** The payload section of a whole frame. */
export function payloadOf(frame: Buffer): Buffer {
  return frame.subarray(FRAME_HEADER_SIZE, frame.length - FRAME_POSTFIX_SIZE);
}

/**
 * A frame with any type and payload, with a correct checksum and echo unless
 * overridden: how a peer could send a payload that does not decode.
 */
export function rawFrame(type: number, payload: Buffer, over: { checksum?: number; echo?: number; length?: number } = {}): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_SIZE + payload.length + FRAME_POSTFIX_SIZE);
  out.writeUInt32BE(MAGIC, 0);
  out[4] = type;
  out.writeUInt32BE(over.length ?? payload.length, 5);
  payload.copy(out, FRAME_HEADER_SIZE);
  const end = FRAME_HEADER_SIZE + payload.length;
  const summed = type === T.CHUNK_DATA ? FRAME_HEADER_SIZE + Math.min(CHUNK_HEADER_SIZE, payload.length) : end;
  out.writeUInt16BE(over.checksum ?? byteSum(out, 0, summed), end);
  out.writeUInt16BE(over.echo ?? payload.length & 0xffff, end + 2);
  return out;
}

export interface Collected {
  frames: Frame[];
  errors: FtsError[];
  discards: { bytes: number; reason: string }[];
  decoder: FrameDecoder;
}

/** A decoder that records everything it reports. */
export function collector(opts: Partial<FrameDecoderOptions> = {}): Collected {
  const c: Collected = { frames: [], errors: [], discards: [], decoder: undefined as unknown as FrameDecoder };
  c.decoder = new FrameDecoder({
    ...opts,
    onFrame: (f) => {
      c.frames.push(f);
      opts.onFrame?.(f);
    },
    onError: (e) => {
      c.errors.push(e);
      opts.onError?.(e);
    },
    onDiscard: (bytes, reason) => {
      c.discards.push({ bytes, reason });
      opts.onDiscard?.(bytes, reason);
    },
  });
  return c;
}

/** Pushes `pieces` into a fresh collecting decoder. */
export function feed(pieces: Buffer[], opts: Partial<FrameDecoderOptions> = {}): Collected {
  const c = collector(opts);
  for (const p of pieces) c.decoder.push(p);
  return c;
}

/** encode → FrameDecoder → decodeMessage, asserting exactly one frame and no discards. */
export function roundTrip(m: Message): Message {
  const c = feed([frameOf(m)]);
  assert.is(c.frames.length, 1, 'one frame');
  assert.is(c.discards.length, 0, 'nothing discarded');
  assert.is(c.errors.length, 0, 'no error');
  return decodeMessage(c.frames[0]!.type, c.frames[0]!.payload);
}

/** Asserts that `fn` throws an FtsError with `code` (default -709); returns it. */
export function throwsFts(fn: () => unknown, code = -709, what = ''): FtsError {
  let thrown: unknown;
  let threw = false;
  try {
    fn();
  } catch (e) {
    thrown = e;
    threw = true;
  }
  if (!threw) assert.unreachable(`${what}: expected FtsError ${code}, nothing thrown`);
  if (!(thrown instanceof FtsError)) {
    assert.unreachable(`${what}: expected FtsError ${code}, got ${String(thrown)}`);
    throw thrown;
  }
  assert.is(thrown.code, code, `${what}: error code (${thrown.message})`);
  return thrown;
}

/** mulberry32: a small seeded PRNG so "random" tests are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `buf` at the given offsets (sorted, deduplicated, inside it). */
export function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out;
}

/** Frames as comparable plain data. */
export function frameKeys(frames: Frame[]): string[] {
  return frames.map((f) => `${f.type}:${f.payload.toString('hex')}`);
}

interface TimedSuite {
  before: { each: (fn: (ctx: { __test__: string }) => void) => void };
  after: { each: (fn: (ctx: { __test__: string }) => void) => void };
}

/** With FTS_TEST_TIMING=1, prints how long each test of `s` took (to keep the suite fast). */
export function timing(s: TimedSuite): void {
  if (!process.env['FTS_TEST_TIMING']) return;
  let t0 = 0;
  s.before.each(() => {
    t0 = performance.now();
  });
  s.after.each((ctx) => {
    process.stderr.write(`\n  [${(performance.now() - t0).toFixed(0)} ms] ${ctx.__test__}\n`);
  });
}
