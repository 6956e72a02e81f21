import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  byteSum,
  Capability,
  CHUNK_HEADER_SIZE,
  Defaults,
  FRAME_OVERHEAD,
  isUuid,
  MAGIC,
  MAGIC_BYTES,
  MAX_CONTROL_PAYLOAD,
  MAX_GARBAGE_BYTES,
  MESSAGE_SENDER,
  MESSAGE_TYPE_NAMES,
  MessageType,
  newUuid,
  NIL_UUID,
  OUR_CAPABILITIES,
  PROTOCOL_VERSION,
  readUuid,
  writeUuid,
} from '../../protocol/index.js';
import { FieldReader, FrameWriter, typeName, utf8 } from '../../protocol/fields.js';
import { ID_A, throwsFts } from './helpers.js';

const fields = suite('fields: readers, writers, checksum');

fields('byteSum is the sum mod 65536 over a range, with a running start', () => {
  assert.is(byteSum(Buffer.alloc(0)), 0);
  assert.is(byteSum(Buffer.from([1, 2, 3])), 6);
  assert.is(byteSum(Buffer.alloc(257, 0xff)), (257 * 255) & 0xffff);
  assert.is(byteSum(Buffer.alloc(4 * 1024 * 1024 + 100, 0xff)), ((4 * 1024 * 1024 + 100) * 255) % 65536);
  assert.is(byteSum(Buffer.from([9, 1, 2, 9]), 1, 3), 3);
  assert.is(byteSum(Buffer.from([1]), 0, 1, 0xffff), 0, 'wraps');
});

fields('typeName names known types and prints unknown ones as hex', () => {
  assert.is(typeName(0x20), 'CHUNK_DATA');
  assert.is(typeName(0xff), 'ERROR');
  assert.is(typeName(0x43), '0x43');
  assert.is(typeName(0x07), '0x07');
});

fields('FieldReader reads each field type big-endian and checks the length before every read', () => {
  const b = Buffer.concat([
    Buffer.from([0xfe]),
    Buffer.from('fffffffe', 'hex'),
    Buffer.from('ffffffff', 'hex'),
    Buffer.from('001fffffffffffff', 'hex'),
    Buffer.from(ID_A.replace(/-/g, ''), 'hex'),
    Buffer.alloc(32, 0xaa),
    Buffer.from('0003616263', 'hex'),
    Buffer.from('0002c3a9', 'hex'),
    Buffer.from('00000002beef', 'hex'),
    Buffer.from('7a7a', 'hex'),
  ]);
  const r = new FieldReader(b, 'T');
  assert.is(r.u8('a'), 0xfe);
  assert.is(r.u32('b'), 0xfffffffe);
  assert.is(r.i32('c'), -1);
  assert.is(r.u64('d'), Number.MAX_SAFE_INTEGER);
  assert.is(r.uuid('e'), ID_A);
  const hash = r.sha256('f');
  assert.equal(hash, Buffer.alloc(32, 0xaa));
  assert.is(r.str16('g'), 'abc');
  assert.is(r.filename('h'), 'é');
  const bits = r.bitmap('i');
  assert.is(bits.toString('hex'), 'beef');
  assert.is(r.remaining, 2);
  const rest = r.rest();
  assert.is(rest.toString(), 'zz');
  assert.is(rest.buffer, b.buffer, 'rest is a view');
  assert.is(r.remaining, 0);
  r.end();
  b.fill(0);
  assert.equal(hash, Buffer.alloc(32, 0xaa), 'sha256 is a copy');
  assert.is(bits.toString('hex'), 'beef', 'bitmap is a copy');
  assert.is(rest.toString('hex'), '0000', 'rest is a view');
  for (const read of [(x: FieldReader) => x.u8('f'), (x: FieldReader) => x.u32('f'), (x: FieldReader) => x.u64('f'), (x: FieldReader) => x.str16('f')]) {
    throwsFts(() => read(new FieldReader(Buffer.alloc(0), 'T')), -709);
  }
});

fields('FieldReader.u64: the boundary at 2^53', () => {
  const at = (hex: string) => new FieldReader(Buffer.from(hex, 'hex'), 'T').u64('x');
  assert.is(at('0000000000000000'), 0);
  assert.is(at('00000000ffffffff'), 0xffffffff);
  assert.is(at('0000000100000000'), 2 ** 32);
  assert.is(at('001fffffffffffff'), 2 ** 53 - 1);
  throwsFts(() => at('0020000000000000'));
  throwsFts(() => at('0020000000000001'));
  throwsFts(() => at('ffffffffffffffff'));
});

fields('FieldReader.end rejects unread bytes', () => {
  const r = new FieldReader(Buffer.alloc(5), 'MSG');
  r.u32('x');
  assert.match(throwsFts(() => r.end()).message, /MSG: 1 trailing bytes/);
});

fields('FrameWriter writes fields in order and fills header and postfix', () => {
  const frame = new FrameWriter(0x99, 1 + 4 + 4 + 8 + 16 + 32 + 2 + 1 + 4 + 2)
    .u8(7)
    .u32(0xffffffff)
    .i32(-2)
    .u64(2 ** 40 + 5)
    .uuid(ID_A)
    .sha256(Buffer.alloc(32, 1))
    .str16(utf8('x'))
    .str16Optional(undefined)
    .bitmap(Buffer.from([5, 6]))
    .finish();
  assert.is(frame.readUInt32BE(0), MAGIC);
  assert.is(frame[4], 0x99);
  const len = frame.readUInt32BE(5);
  assert.is(len, 74);
  assert.is(frame.length, len + FRAME_OVERHEAD);
  assert.is(frame.subarray(9, 26).toString('hex'), '07ffffffff' + 'fffffffe' + '0000010000000005');
  assert.is(frame.readUInt16BE(9 + len), byteSum(frame, 0, 9 + len));
  assert.is(frame.readUInt16BE(11 + len), len);
});

fields('utf8 encodes, lone surrogates as U+FFFD', () => {
  assert.is(utf8('é').toString('hex'), 'c3a9');
  assert.is(utf8('\ud800').toString('hex'), 'efbfbd');
});

fields.run();

// ---------------------------------------------------------------------------
const ids = suite('uuid');

ids('newUuid is a canonical lower-case RFC 4122 v4 id, and fresh', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const id = newUuid();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(id);
  }
  assert.is(seen.size, 100);
});

ids('isUuid accepts dashed or bare hex of either case, nothing else', () => {
  for (const ok of [ID_A, ID_A.toUpperCase(), ID_A.replace(/-/g, ''), NIL_UUID]) assert.ok(isUuid(ok), ok);
  for (const bad of ['', 'x', `${ID_A}0`, ID_A.slice(1), ID_A.replace('a', 'g'), `{${ID_A}}`]) assert.not.ok(isUuid(bad), bad);
});

ids('writeUuid / readUuid: 16 raw bytes, read back canonical', () => {
  const buf = Buffer.alloc(20, 0xee);
  writeUuid(ID_A.toUpperCase(), buf, 2);
  assert.is(buf.toString('hex'), 'eeee00112233445566778899aabbccddeeffeeee');
  assert.is(readUuid(buf, 2), ID_A);
  writeUuid(ID_A.replace(/-/g, ''), buf, 2);
  assert.is(readUuid(buf, 2), ID_A);
  assert.throws(() => writeUuid('nope', buf, 0), TypeError);
  assert.is(readUuid(Buffer.alloc(16), 0), NIL_UUID);
});

ids.run();

// ---------------------------------------------------------------------------
const consts = suite('constants match PROTOCOL.md');

consts('frame layout, bounds, version', () => {
  assert.is(MAGIC, 0x46545331);
  assert.is(MAGIC_BYTES.toString('latin1'), 'FTS1');
  assert.is(FRAME_OVERHEAD, 13);
  assert.is(CHUNK_HEADER_SIZE, 48);
  assert.is(MAX_CONTROL_PAYLOAD, 4 * 1024 * 1024);
  assert.is(MAX_GARBAGE_BYTES, 2 * 1024 * 1024);
  assert.is(PROTOCOL_VERSION, 0x00020000);
});

consts('every type has a sender; directions follow the §3 table', () => {
  assert.is(Object.keys(MESSAGE_SENDER).length, MESSAGE_TYPE_NAMES.size);
  assert.is(MESSAGE_SENDER[MessageType.CONNECT], 'client');
  assert.is(MESSAGE_SENDER[MessageType.CONNECT_ACK], 'server');
  assert.is(MESSAGE_SENDER[MessageType.CHUNK_DATA], 'both');
  assert.is(MESSAGE_SENDER[MessageType.DOWNLOAD_VERIFY], 'client');
  assert.is(MESSAGE_SENDER[MessageType.UPLOAD_VERIFY], 'server');
  assert.is(MESSAGE_SENDER[MessageType.ERROR], 'both');
  assert.is(MESSAGE_TYPE_NAMES.has(0x43), false, '0x43 is reserved');
});

consts('capabilities and §6 defaults', () => {
  assert.is(OUR_CAPABILITIES & Capability.QUIC, 0, 'never QUIC');
  assert.is(OUR_CAPABILITIES, Capability.LZ4 | Capability.RESUME | Capability.AUTO_RECONNECT);
  assert.is(Defaults.CHUNK_SIZE, 256 * 1024);
  assert.is(Defaults.MIN_CHUNK_SIZE, 64 * 1024);
  assert.is(Defaults.MAX_CHUNK_SIZE, 1024 * 1024);
  assert.is(Defaults.MAX_FILE_SIZE, 10 * 2 ** 30);
  assert.is(Defaults.WINDOW, 64);
  assert.is(Defaults.RESUME_TTL_MS, 24 * 3600 * 1000);
});

consts.run();
