import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeMessage,
  encodeChunkData,
  encodeControl,
  encodeMessage,
  FRAME_HEADER_SIZE,
  MESSAGE_TYPE_NAMES,
  type Message,
} from '../../protocol/index.js';
import { FieldReader, FrameWriter } from '../../protocol/fields.js';
import {
  feed,
  frameOf,
  ID_A,
  payloadOf,
  rawFrame,
  roundTrip,
  sampleMessages,
  sha,
  T,
  throwsFts,
  timing,
  U32_MAX,
  U64_MAX,
} from './helpers.js';

const samples = sampleMessages();

// ---------------------------------------------------------------------------
// An independent writer of §3 layouts, to check field order and widths (a
// round trip alone cannot see an encoder and decoder that agree on a wrong
// layout).
// ---------------------------------------------------------------------------
class Bytes {
  private parts: Buffer[] = [];
  private push(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  u8(v: number) {
    return this.push(Buffer.from([v]));
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return this.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    return this.push(b);
  }
  uuid(id: string) {
    return this.push(Buffer.from(id.replace(/-/g, ''), 'hex'));
  }
  raw(b: Uint8Array) {
    return this.push(Buffer.from(b));
  }
  str16(s: string) {
    const b = Buffer.from(s, 'utf8');
    return this.u16(b.length).raw(b);
  }
  u16(v: number) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.push(b);
  }
  bitmap(b: Uint8Array) {
    return this.u32(b.length).raw(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function specPayload(m: Message): Buffer {
  const b = new Bytes();
  switch (m.type) {
    case T.CONNECT:
      b.u32(m.protocolVersion).u32(m.capabilities).uuid(m.clientId);
      if (m.authToken !== undefined) b.str16(m.authToken);
      break;
    case T.CONNECT_ACK:
      b.u32(m.protocolVersion).u32(m.capabilities).uuid(m.sessionId).u32(m.maxChunkSize).u64(m.maxFileSize).str16(m.serverName);
      break;
    case T.DISCONNECT:
      b.u32(m.reason).str16(m.message);
      break;
    case T.HEARTBEAT:
    case T.HEARTBEAT_ACK:
      b.u64(m.timestampUs).u32(m.sequence);
      break;
    case T.UPLOAD_REQUEST:
      b.uuid(m.transferId).str16(m.filename).u64(m.fileSize).raw(m.sha256).u32(m.chunkSize).u64(m.chunkCount).u8(m.compression).u32(m.options).u64(m.modifiedMs);
      break;
    case T.UPLOAD_ACCEPT:
      b.uuid(m.transferId).u8(m.compression).u32(m.chunkSize).u32(m.window);
      break;
    case T.UPLOAD_REJECT:
      b.uuid(m.transferId).i32(m.errorCode).str16(m.message).u64(m.available).u64(m.requested);
      break;
    case T.UPLOAD_COMPLETE:
      b.uuid(m.transferId).u64(m.totalChunks).u64(m.bytesSent).u64(m.bytesOnWire).raw(m.sha256);
      break;
    case T.UPLOAD_VERIFY:
      b.uuid(m.transferId).u8(m.verified ? 1 : 0).i32(m.errorCode).raw(m.sha256).str16(m.storedName);
      break;
    case T.CHUNK_DATA:
      b.uuid(m.transferId).u64(m.chunkIndex).u64(m.chunkOffset).u32(m.originalSize).u32(m.compressedSize).u32(m.crc32).u8(m.flags).u8(0).u8(0).u8(0).raw(m.data);
      break;
    case T.CHUNK_ACK:
      b.uuid(m.transferId).u64(m.chunkIndex).u32(m.count);
      break;
    case T.CHUNK_NACK:
      b.uuid(m.transferId).i32(m.errorCode).u32(m.chunkIndices.length);
      for (const i of m.chunkIndices) b.u64(i);
      break;
    case T.RESUME_REQUEST:
      b.uuid(m.transferId).u8(m.direction).str16(m.filename).raw(m.sha256).u64(m.totalChunks).bitmap(m.held);
      break;
    case T.RESUME_RESPONSE:
      b.uuid(m.transferId).u8(m.status).u64(m.totalChunks).u64(m.receivedCount).bitmap(m.missing);
      break;
    case T.TRANSFER_CANCEL:
      b.uuid(m.transferId).i32(m.reason);
      break;
    case T.TRANSFER_PAUSE:
    case T.TRANSFER_RESUME:
      b.uuid(m.transferId);
      break;
    case T.DOWNLOAD_REQUEST:
      b.uuid(m.transferId).str16(m.filename).u8(m.compression).u32(m.chunkSize).u32(m.window);
      break;
    case T.DOWNLOAD_ACCEPT:
      b.uuid(m.transferId).u64(m.fileSize).raw(m.sha256).u8(m.compression).u32(m.chunkSize).u64(m.totalChunks).u64(m.modifiedMs);
      break;
    case T.DOWNLOAD_REJECT:
      b.uuid(m.transferId).i32(m.errorCode).str16(m.message);
      break;
    case T.DOWNLOAD_COMPLETE:
      b.uuid(m.transferId).u64(m.totalChunks).u64(m.bytesSent).u64(m.bytesOnWire);
      break;
    case T.DOWNLOAD_VERIFY:
      b.uuid(m.transferId).u8(m.verified ? 1 : 0).i32(m.errorCode).u64(m.bytesReceived);
      break;
    case T.LIST_REQUEST:
      b.uuid(m.requestId).str16(m.pattern).u32(m.offset).u32(m.limit).u8(m.sortBy).u8(m.sortOrder);
      break;
    case T.LIST_RESPONSE:
      b.uuid(m.requestId).u32(m.totalCount).u32(m.entries.length).u8(m.hasMore ? 1 : 0);
      for (const e of m.entries) b.str16(e.name).u64(e.size).raw(e.sha256).u64(e.createdMs).u64(e.modifiedMs);
      break;
    case T.ERROR:
      b.uuid(m.transferId).i32(m.errorCode).str16(m.message);
      break;
  }
  return b.done();
}

// ---------------------------------------------------------------------------
const roundtrip = suite('codec: round trip of every message type');
timing(roundtrip);

roundtrip('the samples cover every message type of §3', () => {
  const covered = new Set(samples.map((s) => s.message.type));
  for (const [code, name] of MESSAGE_TYPE_NAMES) assert.ok(covered.has(code as Message['type']), `no sample for ${name}`);
  assert.is(MESSAGE_TYPE_NAMES.size, 26);
});

for (const { label, message } of samples) {
  roundtrip(`${label}: encode → FrameDecoder → decodeMessage gives it back`, () => {
    assert.equal(roundTrip(message), message);
  });
}

roundtrip('every sample has the §3 layout byte for byte, with a correct header and postfix', () => {
  for (const { label, message } of samples) {
    const frame = frameOf(message);
    const payload = payloadOf(frame);
    assert.is(payload.toString('hex'), specPayload(message).toString('hex'), label);
    assert.is(frame.readUInt32BE(0), 0x46545331, `${label}: magic`);
    assert.is(frame[4], message.type, `${label}: type`);
    assert.is(frame.readUInt32BE(5), payload.length, `${label}: payload_length`);
    assert.is(frame.readUInt16BE(frame.length - 2), payload.length & 0xffff, `${label}: length echo`);
  }
});

roundtrip('CONNECT without auth_token ends after client_id; with one it carries a str16', () => {
  const without = payloadOf(frameOf({ type: T.CONNECT, protocolVersion: 0x00020000, capabilities: 1, clientId: ID_A }));
  assert.is(without.length, 24);
  const decoded = decodeMessage(T.CONNECT, without);
  assert.ok(decoded.type === T.CONNECT && !('authToken' in decoded), 'no authToken key when absent');
  const withEmpty = payloadOf(frameOf({ type: T.CONNECT, protocolVersion: 0x00020000, capabilities: 1, clientId: ID_A, authToken: '' }));
  assert.is(withEmpty.length, 26);
  assert.equal((decodeMessage(T.CONNECT, withEmpty) as { authToken?: string }).authToken, '');
  const withToken = payloadOf(frameOf({ type: T.CONNECT, protocolVersion: 0x00020000, capabilities: 1, clientId: ID_A, authToken: 's3cret' }));
  assert.is(withToken.length, 24 + 2 + 6);
  assert.is((decodeMessage(T.CONNECT, withToken) as { authToken?: string }).authToken, 's3cret');
});

roundtrip('CHUNK_DATA is three pieces with the data passed through uncopied; decoded data is a view', () => {
  const data = Buffer.from('0123456789');
  const pieces = encodeMessage({ type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: 1, chunkOffset: 10, originalSize: 10, compressedSize: 10, crc32: 1, flags: 0, data });
  assert.is(pieces.length, 3);
  assert.is(pieces[1], data, 'data section is the caller buffer');
  assert.is(pieces[0]!.length, FRAME_HEADER_SIZE + 48);
  const payload = payloadOf(Buffer.concat(pieces));
  const m = decodeMessage(T.CHUNK_DATA, payload);
  assert.ok(m.type === T.CHUNK_DATA);
  if (m.type !== T.CHUNK_DATA) return;
  assert.is(m.data.buffer, payload.buffer, 'same memory');
  assert.is(m.data.byteOffset, payload.byteOffset + 48);
});

roundtrip('control messages are one buffer; sha256 and bitmaps are copies that do not pin the frame', () => {
  const m = samples.find((s) => s.message.type === T.RESUME_REQUEST && s.message.held.length > 0)!.message;
  const pieces = encodeMessage(m);
  assert.is(pieces.length, 1);
  const payload = Buffer.from(payloadOf(pieces[0] as Buffer));
  const d = decodeMessage(m.type, payload);
  assert.ok(d.type === T.RESUME_REQUEST);
  if (d.type !== T.RESUME_REQUEST) return;
  payload.fill(0);
  assert.equal(d.held, (m as { held: Buffer }).held, 'held survives the frame buffer being reused');
  assert.equal(d.sha256, (m as { sha256: Buffer }).sha256, 'sha256 too');
});

roundtrip('encodeControl gives the same bytes as encodeMessage', () => {
  for (const { label, message } of samples) {
    if (message.type === T.CHUNK_DATA) continue;
    assert.equal(encodeControl(message), frameOf(message), label);
  }
});

roundtrip('§8.4: unknown flag bits and non-zero reserved bytes are accepted', () => {
  const frame = frameOf({ type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: 0, chunkOffset: 0, originalSize: 3, compressedSize: 3, crc32: 0, flags: 0xf8, data: Buffer.from('abc') });
  const payload = Buffer.from(payloadOf(frame));
  payload[45] = 1;
  payload[46] = 0xff;
  payload[47] = 0x80;
  const m = decodeMessage(T.CHUNK_DATA, payload);
  assert.ok(m.type === T.CHUNK_DATA && m.flags === 0xf8 && m.data.toString() === 'abc');
});

roundtrip('str16 text fields decode leniently: invalid UTF-8 becomes U+FFFD, never an error', () => {
  const code = Buffer.alloc(4);
  code.writeInt32BE(-709);
  const payload = Buffer.concat([Buffer.from(ID_A.replace(/-/g, ''), 'hex'), code, Buffer.from([0, 3, 0x61, 0xc0, 0xaf])]);
  const m = decodeMessage(T.ERROR, payload);
  assert.equal(m, { type: T.ERROR, transferId: ID_A, errorCode: -709, message: 'a\ufffd\ufffd' });
});

roundtrip('verified and has_more read any non-zero byte as true', () => {
  const p = Buffer.from(payloadOf(frameOf({ type: T.DOWNLOAD_VERIFY, transferId: ID_A, verified: true, errorCode: 0, bytesReceived: 1 })));
  p[16] = 0x80;
  assert.is((decodeMessage(T.DOWNLOAD_VERIFY, p) as { verified: boolean }).verified, true);
  p[16] = 0;
  assert.is((decodeMessage(T.DOWNLOAD_VERIFY, p) as { verified: boolean }).verified, false);
});

roundtrip.run();

// ---------------------------------------------------------------------------
const reject = suite('codec: malformed payloads are FtsError(-709)');
timing(reject);

reject('every message truncated at every length shorter than its payload', () => {
  let checked = 0;
  // ~300k rejections: skip the stack traces nobody reads.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    checkTruncations();
  } finally {
    Error.stackTraceLimit = limit;
  }
  function checkTruncations() {
  for (const { label, message } of samples) {
    const payload = payloadOf(frameOf(message));
    for (let len = 0; len < payload.length; len++) {
      // §1: CONNECT may end before its optional auth_token.
      if (message.type === T.CONNECT && len === 24) {
        assert.not.throws(() => decodeMessage(T.CONNECT, payload.subarray(0, 24)));
        continue;
      }
      throwsFts(() => decodeMessage(message.type, payload.subarray(0, len)), -709, `${label} cut to ${len} of ${payload.length}`);
      checked++;
    }
  }
  }
  assert.ok(checked > 100_000, `${checked} truncations`);
});

reject('truncated payloads in well-formed frames pass the decoder and fail decodeMessage', () => {
  for (const { label, message } of samples) {
    const payload = payloadOf(frameOf(message));
    if (payload.length > 400) continue;
    const frames = [];
    for (let len = 0; len < payload.length; len++) frames.push(rawFrame(message.type, payload.subarray(0, len)));
    const c = feed([Buffer.concat(frames)]);
    assert.is(c.frames.length, payload.length, `${label}: all frames delivered`);
    let ok = 0;
    for (const f of c.frames) {
      try {
        decodeMessage(f.type, f.payload);
        ok++;
      } catch (e) {
        assert.is((e as { code?: number }).code, -709, label);
      }
    }
    assert.is(ok, message.type === T.CONNECT && message.authToken !== undefined ? 1 : 0, label);
  }
});

reject('trailing bytes after a complete message', () => {
  for (const { label, message } of samples) {
    const payload = payloadOf(frameOf(message));
    for (const extra of [Buffer.from([0xab]), Buffer.from([0xab, 0xcd]), Buffer.alloc(8, 0xab), Buffer.alloc(300, 0x01)]) {
      throwsFts(() => decodeMessage(message.type, Buffer.concat([payload, extra])), -709, `${label} + ${extra.length}`);
    }
  }
});

reject('CONNECT without token followed by 00 00 is a CONNECT with an empty token, not trailing bytes', () => {
  const payload = payloadOf(frameOf({ type: T.CONNECT, protocolVersion: 1, capabilities: 2, clientId: ID_A }));
  const m = decodeMessage(T.CONNECT, Buffer.concat([payload, Buffer.from([0, 0])]));
  assert.is((m as { authToken?: string }).authToken, '');
  throwsFts(() => decodeMessage(T.CONNECT, Buffer.concat([payload, Buffer.from([0])])), -709, 'one byte');
  throwsFts(() => decodeMessage(T.CONNECT, Buffer.concat([payload, Buffer.from([0, 0, 0])])), -709, 'three bytes');
});

/** Offsets of the str16 length prefix in the payload of one sample of each type. */
const STR16_AT: [Message, number][] = [
  [{ type: T.CONNECT, protocolVersion: 1, capabilities: 2, clientId: ID_A, authToken: 'tok' }, 24],
  [{ type: T.CONNECT_ACK, protocolVersion: 1, capabilities: 2, sessionId: ID_A, maxChunkSize: 3, maxFileSize: 4, serverName: 'srv' }, 36],
  [{ type: T.DISCONNECT, reason: 1, message: 'bye' }, 4],
  [{ type: T.UPLOAD_REQUEST, transferId: ID_A, filename: 'f.txt', fileSize: 1, sha256: sha(1), chunkSize: 2, chunkCount: 3, compression: 0, options: 0, modifiedMs: 5 }, 16],
  [{ type: T.UPLOAD_REJECT, transferId: ID_A, errorCode: -745, message: 'full', available: 1, requested: 2 }, 20],
  [{ type: T.UPLOAD_VERIFY, transferId: ID_A, verified: true, errorCode: 0, sha256: sha(2), storedName: 'f.txt' }, 53],
  [{ type: T.RESUME_REQUEST, transferId: ID_A, direction: 0, filename: 'f.txt', sha256: sha(3), totalChunks: 9, held: Buffer.from([1, 2]) }, 17],
  [{ type: T.DOWNLOAD_REQUEST, transferId: ID_A, filename: 'f.txt', compression: 0, chunkSize: 0, window: 0 }, 16],
  [{ type: T.DOWNLOAD_REJECT, transferId: ID_A, errorCode: -746, message: 'nope' }, 20],
  [{ type: T.LIST_REQUEST, requestId: ID_A, pattern: '*', offset: 0, limit: 0, sortBy: 0, sortOrder: 0 }, 16],
  [{ type: T.LIST_RESPONSE, requestId: ID_A, totalCount: 1, hasMore: false, entries: [{ name: 'n', size: 1, sha256: sha(4), createdMs: 2, modifiedMs: 3 }] }, 25],
  [{ type: T.ERROR, transferId: ID_A, errorCode: -709, message: 'bad' }, 20],
];

reject('str16 lengths running past the payload', () => {
  for (const [message, at] of STR16_AT) {
    const good = Buffer.from(payloadOf(frameOf(message)));
    const name = MESSAGE_TYPE_NAMES.get(message.type);
    assert.not.throws(() => decodeMessage(message.type, good), name);
    const len = good.readUInt16BE(at);
    assert.ok(len > 0, `${name}: offset ${at} holds the str16 length`);
    for (const bad of [0xffff, good.length - at - 2 + 1, good.length]) {
      if (bad === len) continue;
      const p = Buffer.from(good);
      p.writeUInt16BE(bad, at);
      throwsFts(() => decodeMessage(message.type, p), -709, `${name}: str16 length ${bad}`);
    }
    // A length that runs past by one when the string is the last field.
    const cut = Buffer.from(good.subarray(0, at + 2 + len));
    if (cut.length < good.length) continue;
    cut.writeUInt16BE(len + 1, at);
    throwsFts(() => decodeMessage(message.type, cut), -709, `${name}: str16 one past the end`);
  }
});

reject('bitmap lengths running past the payload', () => {
  const req: Message = { type: T.RESUME_REQUEST, transferId: ID_A, direction: 0, filename: 'f', sha256: sha(3), totalChunks: 9, held: Buffer.from([1, 2, 3]) };
  const res: Message = { type: T.RESUME_RESPONSE, transferId: ID_A, status: 0, totalChunks: 9, receivedCount: 1, missing: Buffer.from([4, 5, 6]) };
  for (const [m, at] of [
    [req, 16 + 1 + 2 + 1 + 32 + 8],
    [res, 16 + 1 + 8 + 8],
  ] as const) {
    const good = Buffer.from(payloadOf(frameOf(m)));
    assert.is(good.readUInt32BE(at), 3);
    for (const bad of [4, 0x10000, U32_MAX]) {
      const p = Buffer.from(good);
      p.writeUInt32BE(bad, at);
      throwsFts(() => decodeMessage(m.type, p), -709, `bitmap length ${bad}`);
    }
    const p = Buffer.from(good);
    p.writeUInt32BE(2, at);
    throwsFts(() => decodeMessage(m.type, p), -709, 'bitmap shorter than the rest: trailing byte');
  }
});

reject('CHUNK_NACK count inconsistent with the payload', () => {
  const good = Buffer.from(payloadOf(frameOf({ type: T.CHUNK_NACK, transferId: ID_A, errorCode: -720, chunkIndices: [1, 2, 3] })));
  assert.is(good.length, 24 + 24);
  for (const count of [0, 2, 4, 1 << 29, U32_MAX]) {
    const p = Buffer.from(good);
    p.writeUInt32BE(count, 20);
    throwsFts(() => decodeMessage(T.CHUNK_NACK, p), -709, `count ${count}`);
  }
  throwsFts(() => decodeMessage(T.CHUNK_NACK, good.subarray(0, good.length - 1)), -709, 'partial index');
  throwsFts(() => decodeMessage(T.CHUNK_NACK, Buffer.concat([good, Buffer.alloc(8)])), -709, 'one index too many');
});

reject('LIST_RESPONSE returned_count that cannot fit', () => {
  const m: Message = { type: T.LIST_RESPONSE, requestId: ID_A, totalCount: 5, hasMore: true, entries: [{ name: 'a', size: 1, sha256: sha(1), createdMs: 2, modifiedMs: 3 }] };
  const good = Buffer.from(payloadOf(frameOf(m)));
  for (const count of [2, 1000, 1 << 26, U32_MAX]) {
    const p = Buffer.from(good);
    p.writeUInt32BE(count, 20);
    throwsFts(() => decodeMessage(T.LIST_RESPONSE, p), -709, `returned_count ${count}`);
  }
  const p = Buffer.from(good);
  p.writeUInt32BE(0, 20);
  throwsFts(() => decodeMessage(T.LIST_RESPONSE, p), -709, 'count 0 with an entry: trailing bytes');
  // Fits by the fixed-size estimate but the names do not: caught by the entry reads.
  const two = Buffer.concat([good, Buffer.alloc(58)]);
  two.writeUInt32BE(2, 20);
  two.writeUInt16BE(0xffff, good.length);
  throwsFts(() => decodeMessage(T.LIST_RESPONSE, two), -709, 'second entry name runs past');
});

reject('CHUNK_DATA whose compressed_size differs from the data length, or shorter than its header', () => {
  const good = Buffer.from(payloadOf(frameOf({ type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: 0, chunkOffset: 0, originalSize: 5, compressedSize: 5, crc32: 0, flags: 0, data: Buffer.from('hello') })));
  for (const size of [0, 4, 6, U32_MAX]) {
    const p = Buffer.from(good);
    p.writeUInt32BE(size, 36);
    throwsFts(() => decodeMessage(T.CHUNK_DATA, p), -709, `compressed_size ${size}`);
  }
  for (let len = 0; len < 48; len++) throwsFts(() => decodeMessage(T.CHUNK_DATA, good.subarray(0, len)), -709, `payload of ${len}`);
  const headerOnly = Buffer.from(good.subarray(0, 48));
  headerOnly.writeUInt32BE(0, 36);
  const m = decodeMessage(T.CHUNK_DATA, headerOnly);
  assert.ok(m.type === T.CHUNK_DATA && m.data.length === 0, 'an empty data section with compressed_size 0 is fine');
});

/** Number of u64 fields in each type (LIST_RESPONSE: per entry). */
const U64_FIELDS: Partial<Record<number, number>> = {
  [T.CONNECT_ACK]: 1,
  [T.HEARTBEAT]: 1,
  [T.HEARTBEAT_ACK]: 1,
  [T.UPLOAD_REQUEST]: 3,
  [T.UPLOAD_REJECT]: 2,
  [T.UPLOAD_COMPLETE]: 3,
  [T.CHUNK_DATA]: 2,
  [T.CHUNK_ACK]: 1,
  [T.CHUNK_NACK]: 1,
  [T.RESUME_REQUEST]: 1,
  [T.RESUME_RESPONSE]: 2,
  [T.DOWNLOAD_ACCEPT]: 3,
  [T.DOWNLOAD_COMPLETE]: 3,
  [T.DOWNLOAD_VERIFY]: 1,
  [T.LIST_RESPONSE]: 3,
};

reject('every u64 field: 2^53-1 decodes exactly; 2^53, 2^53+1 and 2^64-1 are rejected, never rounded', () => {
  const maxBytes = Buffer.from('001fffffffffffff', 'hex');
  const seen = new Map<number, number>();
  for (const { label, message } of samples) {
    const payload = payloadOf(frameOf(message));
    let found = 0;
    for (let at = payload.indexOf(maxBytes); at !== -1; at = payload.indexOf(maxBytes, at + 1)) {
      found++;
      for (const [hi, lo] of [
        [0x00200000, 0],
        [0x00200000, 1],
        [0x00300000, 0],
        [0x80000000, 0],
        [U32_MAX, U32_MAX],
      ] as const) {
        const p = Buffer.from(payload);
        p.writeUInt32BE(hi, at);
        p.writeUInt32BE(lo, at + 4);
        const e = throwsFts(() => decodeMessage(message.type, p), -709, `${label} u64 at ${at} = ${hi}:${lo}`);
        assert.match(e.message, /2\^53-1/, `${label}: rejected for the u64, not something else`);
      }
    }
    seen.set(message.type, Math.max(seen.get(message.type) ?? 0, found));
    if (found > 0) assert.equal(decodeMessage(message.type, payload), message, `${label}: 2^53-1 is exact`);
  }
  for (const [type, fields] of Object.entries(U64_FIELDS)) {
    assert.ok((seen.get(Number(type)) ?? 0) >= fields!, `${MESSAGE_TYPE_NAMES.get(Number(type))}: all ${fields} u64 fields tested at 2^53-1`);
  }
});

reject('unknown message types, 0x43 included, whatever their payload', () => {
  let unknown = 0;
  for (let type = 0; type < 256; type++) {
    if (MESSAGE_TYPE_NAMES.has(type)) continue;
    unknown++;
    for (const payload of [Buffer.alloc(0), Buffer.alloc(16), Buffer.alloc(100, 0xff)]) {
      const e = throwsFts(() => decodeMessage(type, payload), -709, `type ${type}`);
      assert.match(e.message, /unknown message type/);
    }
  }
  assert.is(unknown, 256 - 26);
  assert.match(throwsFts(() => decodeMessage(0x43, Buffer.alloc(16))).message, /0x43/);
});

reject.run();

// ---------------------------------------------------------------------------
const encoder = suite('codec: the encoder refuses values the wire cannot carry');
timing(encoder);

const base = { type: T.UPLOAD_REQUEST, transferId: ID_A, filename: 'f', fileSize: 1, sha256: sha(0), chunkSize: 1, chunkCount: 1, compression: 0, options: 0, modifiedMs: 0 } as const;

encoder('out-of-range integers, bad hashes and ids are RangeError / TypeError', () => {
  const bad: [Message, new (...a: never[]) => Error][] = [
    [{ ...base, compression: 256 }, RangeError],
    [{ ...base, compression: -1 }, RangeError],
    [{ ...base, chunkSize: 2 ** 32 }, RangeError],
    [{ ...base, chunkSize: 1.5 }, RangeError],
    [{ ...base, fileSize: U64_MAX + 1 }, RangeError],
    [{ ...base, fileSize: -1 }, RangeError],
    [{ ...base, modifiedMs: Number.NaN }, RangeError],
    [{ ...base, sha256: Buffer.alloc(31) }, RangeError],
    [{ ...base, sha256: Buffer.alloc(33) }, RangeError],
    [{ ...base, transferId: 'not-a-uuid' }, TypeError],
    [{ ...base, filename: 'x'.repeat(65536) }, RangeError],
    [{ type: T.ERROR, transferId: ID_A, errorCode: 2 ** 31, message: '' }, RangeError],
    [{ type: T.ERROR, transferId: ID_A, errorCode: -(2 ** 31) - 1, message: '' }, RangeError],
    [{ type: T.CHUNK_NACK, transferId: ID_A, errorCode: 0, chunkIndices: [2 ** 53] }, RangeError],
    [{ type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: 0, chunkOffset: 0, originalSize: 1, compressedSize: 2, crc32: 0, flags: 0, data: Buffer.alloc(1) }, RangeError],
    [{ type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: 2 ** 53, chunkOffset: 0, originalSize: 1, compressedSize: 1, crc32: 0, flags: 0, data: Buffer.alloc(1) }, RangeError],
    [{ type: T.CHUNK_DATA, transferId: ID_A, chunkIndex: 0, chunkOffset: -1, originalSize: 1, compressedSize: 1, crc32: 0, flags: 0, data: Buffer.alloc(1) }, RangeError],
  ];
  for (const [m, kind] of bad) assert.throws(() => encodeMessage(m), (e: unknown) => e instanceof kind, JSON.stringify(m).slice(0, 120));
});

encoder('a message object of no known type is a programming error', () => {
  assert.throws(() => encodeMessage({ type: 0x43 } as unknown as Message), /unhandled message/);
});

encoder('encodeChunkData: crc32 is written unsigned, flags masked to a byte, reserved zeroed', () => {
  const [head] = encodeChunkData({ transferId: ID_A, chunkIndex: 3, chunkOffset: 9, originalSize: 1, compressedSize: 1, crc32: -1, flags: 0x103 }, Buffer.from('z'));
  assert.is(head.readUInt32BE(9 + 40), U32_MAX);
  assert.is(head[9 + 44], 0x03);
  assert.is(head.subarray(9 + 45, 9 + 48).toString('hex'), '000000');
});

encoder('FrameWriter refuses to finish a frame sized wrongly', () => {
  assert.throws(() => new FrameWriter(T.HEARTBEAT, 13).u64(1).u32(2).finish(), /sized for 13/);
  assert.throws(() => new FrameWriter(0x43, 1).finish(), /0x43/);
});

encoder('FieldReader names the message and field that ran short', () => {
  const r = new FieldReader(Buffer.alloc(3), 'TEST');
  assert.is(r.remaining, 3);
  const e = throwsFts(() => r.u32('some_field'));
  assert.match(e.message, /TEST: payload too short for some_field \(3 of 4 bytes left\)/);
});

encoder.run();
