/** CHUNK_DATA, CHUNK_ACK, CHUNK_NACK (§3). */
import {
  CHUNK_HEADER_SIZE,
  FRAME_HEADER_SIZE,
  FRAME_POSTFIX_SIZE,
  MAGIC,
  MessageType as T,
} from '../constants.js';
import { protocolError } from '../errors.js';
import { byteSum, FieldReader, FrameWriter } from '../fields.js';
import { writeUuid } from '../uuid.js';
import type { ChunkAck, ChunkData, ChunkHeader, ChunkNack } from './types.js';

const TWO_32 = 2 ** 32;

/**
 * Encodes a CHUNK_DATA frame without copying `data`: returns the three pieces
 * of one gathered socket write — frame header + chunk header (57 bytes), the
 * data section as given, and the 4-byte postfix. The frame checksum leaves
 * the data section out (§2 [change]); the chunk's CRC32 covers it.
 */
export function encodeChunkData(h: ChunkHeader, data: Uint8Array): [Buffer, Uint8Array, Buffer] {
  if (data.length !== h.compressedSize) {
    throw new RangeError(`CHUNK_DATA: compressed_size ${h.compressedSize} but ${data.length} data bytes`);
  }
  const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + CHUNK_HEADER_SIZE);
  const payloadLength = CHUNK_HEADER_SIZE + data.length;
  head.writeUInt32BE(MAGIC, 0);
  head[4] = T.CHUNK_DATA;
  head.writeUInt32BE(payloadLength, 5);
  writeUuid(h.transferId, head, 9);
  writeU64(head, 25, h.chunkIndex);
  writeU64(head, 33, h.chunkOffset);
  head.writeUInt32BE(h.originalSize, 41);
  head.writeUInt32BE(h.compressedSize, 45);
  head.writeUInt32BE(h.crc32 >>> 0, 49);
  head[53] = h.flags & 0xff;
  head[54] = 0;
  head[55] = 0;
  head[56] = 0;
  const postfix = Buffer.allocUnsafe(FRAME_POSTFIX_SIZE);
  postfix.writeUInt16BE(byteSum(head), 0);
  postfix.writeUInt16BE(payloadLength & 0xffff, 2);
  return [head, data, postfix];
}

function writeU64(buf: Buffer, at: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 out of range: ${value}`);
  buf.writeUInt32BE(Math.floor(value / TWO_32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

/** Decodes a CHUNK_DATA payload; `data` is a view into `p`. */
export function decodeChunkData(p: Buffer): ChunkData {
  const r = new FieldReader(p, 'CHUNK_DATA');
  const m: ChunkData = {
    type: T.CHUNK_DATA,
    transferId: r.uuid('transfer_id'),
    chunkIndex: r.u64('chunk_index'),
    chunkOffset: r.u64('chunk_offset'),
    originalSize: r.u32('original_size'),
    compressedSize: r.u32('compressed_size'),
    crc32: r.u32('crc32'),
    flags: r.u8('flags'),
    data: Buffer.alloc(0),
  };
  r.u8('reserved');
  r.u8('reserved');
  r.u8('reserved');
  m.data = r.rest();
  if (m.data.length !== m.compressedSize) {
    throw protocolError(`CHUNK_DATA: compressed_size ${m.compressedSize} but ${m.data.length} data bytes`);
  }
  return m;
}

export function encodeChunkAck(m: ChunkAck): Buffer {
  return new FrameWriter(T.CHUNK_ACK, 28).uuid(m.transferId).u64(m.chunkIndex).u32(m.count).finish();
}

export function decodeChunkAck(p: Buffer): ChunkAck {
  const r = new FieldReader(p, 'CHUNK_ACK');
  const m: ChunkAck = {
    type: T.CHUNK_ACK,
    transferId: r.uuid('transfer_id'),
    chunkIndex: r.u64('chunk_index'),
    count: r.u32('count'),
  };
  r.end();
  return m;
}

export function encodeChunkNack(m: ChunkNack): Buffer {
  const w = new FrameWriter(T.CHUNK_NACK, 24 + 8 * m.chunkIndices.length)
    .uuid(m.transferId)
    .i32(m.errorCode)
    .u32(m.chunkIndices.length);
  for (const index of m.chunkIndices) w.u64(index);
  return w.finish();
}

export function decodeChunkNack(p: Buffer): ChunkNack {
  const r = new FieldReader(p, 'CHUNK_NACK');
  const transferId = r.uuid('transfer_id');
  const errorCode = r.i32('error_code');
  const count = r.u32('count');
  // Check the declared count against the payload before allocating for it.
  if (count * 8 !== r.remaining) {
    throw protocolError(`CHUNK_NACK: count ${count} needs ${count * 8} bytes, ${r.remaining} left`);
  }
  const chunkIndices = new Array<number>(count);
  for (let i = 0; i < count; i++) chunkIndices[i] = r.u64('chunk_index');
  r.end();
  return { type: T.CHUNK_NACK, transferId, errorCode, chunkIndices };
}
