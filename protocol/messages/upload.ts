/** UPLOAD_REQUEST, UPLOAD_ACCEPT, UPLOAD_REJECT, UPLOAD_COMPLETE, UPLOAD_VERIFY (§3). */
import { MessageType as T } from '../constants.js';
import { FieldReader, FrameWriter, utf8 } from '../fields.js';
import type { UploadAccept, UploadComplete, UploadReject, UploadRequest, UploadVerify } from './types.js';

export function encodeUploadRequest(m: UploadRequest): Buffer {
  const name = utf8(m.filename);
  return new FrameWriter(T.UPLOAD_REQUEST, 16 + 2 + name.length + 8 + 32 + 4 + 8 + 1 + 4 + 8)
    .uuid(m.transferId)
    .str16(name)
    .u64(m.fileSize)
    .sha256(m.sha256)
    .u32(m.chunkSize)
    .u64(m.chunkCount)
    .u8(m.compression)
    .u32(m.options)
    .u64(m.modifiedMs)
    .finish();
}

export function decodeUploadRequest(p: Buffer): UploadRequest {
  const r = new FieldReader(p, 'UPLOAD_REQUEST');
  const m: UploadRequest = {
    type: T.UPLOAD_REQUEST,
    transferId: r.uuid('transfer_id'),
    filename: r.filename('filename'),
    fileSize: r.u64('file_size'),
    sha256: r.sha256('sha256'),
    chunkSize: r.u32('chunk_size'),
    chunkCount: r.u64('chunk_count'),
    compression: r.u8('compression'),
    options: r.u32('options'),
    modifiedMs: r.u64('modified_ms'),
  };
  r.end();
  return m;
}

export function encodeUploadAccept(m: UploadAccept): Buffer {
  return new FrameWriter(T.UPLOAD_ACCEPT, 25).uuid(m.transferId).u8(m.compression).u32(m.chunkSize).u32(m.window).finish();
}

export function decodeUploadAccept(p: Buffer): UploadAccept {
  const r = new FieldReader(p, 'UPLOAD_ACCEPT');
  const m: UploadAccept = {
    type: T.UPLOAD_ACCEPT,
    transferId: r.uuid('transfer_id'),
    compression: r.u8('compression'),
    chunkSize: r.u32('chunk_size'),
    window: r.u32('window'),
  };
  r.end();
  return m;
}

export function encodeUploadReject(m: UploadReject): Buffer {
  const text = utf8(m.message);
  return new FrameWriter(T.UPLOAD_REJECT, 20 + 2 + text.length + 16)
    .uuid(m.transferId)
    .i32(m.errorCode)
    .str16(text)
    .u64(m.available)
    .u64(m.requested)
    .finish();
}

export function decodeUploadReject(p: Buffer): UploadReject {
  const r = new FieldReader(p, 'UPLOAD_REJECT');
  const m: UploadReject = {
    type: T.UPLOAD_REJECT,
    transferId: r.uuid('transfer_id'),
    errorCode: r.i32('error_code'),
    message: r.str16('message'),
    available: r.u64('available'),
    requested: r.u64('requested'),
  };
  r.end();
  return m;
}

export function encodeUploadComplete(m: UploadComplete): Buffer {
  return new FrameWriter(T.UPLOAD_COMPLETE, 16 + 24 + 32)
    .uuid(m.transferId)
    .u64(m.totalChunks)
    .u64(m.bytesSent)
    .u64(m.bytesOnWire)
    .sha256(m.sha256)
    .finish();
}

export function decodeUploadComplete(p: Buffer): UploadComplete {
  const r = new FieldReader(p, 'UPLOAD_COMPLETE');
  const m: UploadComplete = {
    type: T.UPLOAD_COMPLETE,
    transferId: r.uuid('transfer_id'),
    totalChunks: r.u64('total_chunks'),
    bytesSent: r.u64('bytes_sent'),
    bytesOnWire: r.u64('bytes_on_wire'),
    sha256: r.sha256('sha256'),
  };
  r.end();
  return m;
}

export function encodeUploadVerify(m: UploadVerify): Buffer {
  const name = utf8(m.storedName);
  return new FrameWriter(T.UPLOAD_VERIFY, 16 + 1 + 4 + 32 + 2 + name.length)
    .uuid(m.transferId)
    .u8(m.verified ? 1 : 0)
    .i32(m.errorCode)
    .sha256(m.sha256)
    .str16(name)
    .finish();
}

export function decodeUploadVerify(p: Buffer): UploadVerify {
  const r = new FieldReader(p, 'UPLOAD_VERIFY');
  const m: UploadVerify = {
    type: T.UPLOAD_VERIFY,
    transferId: r.uuid('transfer_id'),
    verified: r.u8('verified') !== 0,
    errorCode: r.i32('error_code'),
    sha256: r.sha256('sha256'),
    storedName: r.str16('stored_name'),
  };
  r.end();
  return m;
}
