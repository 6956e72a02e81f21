/** DOWNLOAD_REQUEST, DOWNLOAD_ACCEPT, DOWNLOAD_REJECT, DOWNLOAD_COMPLETE, DOWNLOAD_VERIFY (§3). */
import { MessageType as T } from '../constants.js';
import { FieldReader, FrameWriter, utf8 } from '../fields.js';
import type { DownloadAccept, DownloadComplete, DownloadReject, DownloadRequest, DownloadVerify } from './types.js';

export function encodeDownloadRequest(m: DownloadRequest): Buffer {
  const name = utf8(m.filename);
  return new FrameWriter(T.DOWNLOAD_REQUEST, 16 + 2 + name.length + 9)
    .uuid(m.transferId)
    .str16(name)
    .u8(m.compression)
    .u32(m.chunkSize)
    .u32(m.window)
    .finish();
}

export function decodeDownloadRequest(p: Buffer): DownloadRequest {
  const r = new FieldReader(p, 'DOWNLOAD_REQUEST');
  const m: DownloadRequest = {
    type: T.DOWNLOAD_REQUEST,
    transferId: r.uuid('transfer_id'),
    filename: r.filename('filename'),
    compression: r.u8('compression'),
    chunkSize: r.u32('chunk_size'),
    window: r.u32('window'),
  };
  r.end();
  return m;
}

export function encodeDownloadAccept(m: DownloadAccept): Buffer {
  return new FrameWriter(T.DOWNLOAD_ACCEPT, 16 + 8 + 32 + 1 + 4 + 8 + 8)
    .uuid(m.transferId)
    .u64(m.fileSize)
    .sha256(m.sha256)
    .u8(m.compression)
    .u32(m.chunkSize)
    .u64(m.totalChunks)
    .u64(m.modifiedMs)
    .finish();
}

export function decodeDownloadAccept(p: Buffer): DownloadAccept {
  const r = new FieldReader(p, 'DOWNLOAD_ACCEPT');
  const m: DownloadAccept = {
    type: T.DOWNLOAD_ACCEPT,
    transferId: r.uuid('transfer_id'),
    fileSize: r.u64('file_size'),
    sha256: r.sha256('sha256'),
    compression: r.u8('compression'),
    chunkSize: r.u32('chunk_size'),
    totalChunks: r.u64('total_chunks'),
    modifiedMs: r.u64('modified_ms'),
  };
  r.end();
  return m;
}

export function encodeDownloadReject(m: DownloadReject): Buffer {
  const text = utf8(m.message);
  return new FrameWriter(T.DOWNLOAD_REJECT, 20 + 2 + text.length).uuid(m.transferId).i32(m.errorCode).str16(text).finish();
}

export function decodeDownloadReject(p: Buffer): DownloadReject {
  const r = new FieldReader(p, 'DOWNLOAD_REJECT');
  const m: DownloadReject = {
    type: T.DOWNLOAD_REJECT,
    transferId: r.uuid('transfer_id'),
    errorCode: r.i32('error_code'),
    message: r.str16('message'),
  };
  r.end();
  return m;
}

export function encodeDownloadComplete(m: DownloadComplete): Buffer {
  return new FrameWriter(T.DOWNLOAD_COMPLETE, 16 + 24).uuid(m.transferId).u64(m.totalChunks).u64(m.bytesSent).u64(m.bytesOnWire).finish();
}

export function decodeDownloadComplete(p: Buffer): DownloadComplete {
  const r = new FieldReader(p, 'DOWNLOAD_COMPLETE');
  const m: DownloadComplete = {
    type: T.DOWNLOAD_COMPLETE,
    transferId: r.uuid('transfer_id'),
    totalChunks: r.u64('total_chunks'),
    bytesSent: r.u64('bytes_sent'),
    bytesOnWire: r.u64('bytes_on_wire'),
  };
  r.end();
  return m;
}

export function encodeDownloadVerify(m: DownloadVerify): Buffer {
  return new FrameWriter(T.DOWNLOAD_VERIFY, 16 + 1 + 4 + 8)
    .uuid(m.transferId)
    .u8(m.verified ? 1 : 0)
    .i32(m.errorCode)
    .u64(m.bytesReceived)
    .finish();
}

export function decodeDownloadVerify(p: Buffer): DownloadVerify {
  const r = new FieldReader(p, 'DOWNLOAD_VERIFY');
  const m: DownloadVerify = {
    type: T.DOWNLOAD_VERIFY,
    transferId: r.uuid('transfer_id'),
    verified: r.u8('verified') !== 0,
    errorCode: r.i32('error_code'),
    bytesReceived: r.u64('bytes_received'),
  };
  r.end();
  return m;
}
