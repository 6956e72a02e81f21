/** RESUME_REQUEST, RESUME_RESPONSE, TRANSFER_CANCEL, TRANSFER_PAUSE, TRANSFER_RESUME (§3). */
import { MessageType as T } from '../constants.js';
import { FieldReader, FrameWriter, utf8 } from '../fields.js';
import type { ResumeRequest, ResumeResponse, TransferCancel, TransferPauseResume } from './types.js';

export function encodeResumeRequest(m: ResumeRequest): Buffer {
  const name = utf8(m.filename);
  return new FrameWriter(T.RESUME_REQUEST, 16 + 1 + 2 + name.length + 32 + 8 + 4 + m.held.length)
    .uuid(m.transferId)
    .u8(m.direction)
    .str16(name)
    .sha256(m.sha256)
    .u64(m.totalChunks)
    .bitmap(m.held)
    .finish();
}

export function decodeResumeRequest(p: Buffer): ResumeRequest {
  const r = new FieldReader(p, 'RESUME_REQUEST');
  const m: ResumeRequest = {
    type: T.RESUME_REQUEST,
    transferId: r.uuid('transfer_id'),
    direction: r.u8('direction'),
    filename: r.filename('filename'),
    sha256: r.sha256('sha256'),
    totalChunks: r.u64('total_chunks'),
    held: r.bitmap('held'),
  };
  r.end();
  return m;
}

export function encodeResumeResponse(m: ResumeResponse): Buffer {
  return new FrameWriter(T.RESUME_RESPONSE, 16 + 1 + 16 + 4 + m.missing.length)
    .uuid(m.transferId)
    .u8(m.status)
    .u64(m.totalChunks)
    .u64(m.receivedCount)
    .bitmap(m.missing)
    .finish();
}

export function decodeResumeResponse(p: Buffer): ResumeResponse {
  const r = new FieldReader(p, 'RESUME_RESPONSE');
  const m: ResumeResponse = {
    type: T.RESUME_RESPONSE,
    transferId: r.uuid('transfer_id'),
    status: r.u8('status'),
    totalChunks: r.u64('total_chunks'),
    receivedCount: r.u64('received_count'),
    missing: r.bitmap('missing'),
  };
  r.end();
  return m;
}

export function encodeTransferCancel(m: TransferCancel): Buffer {
  return new FrameWriter(T.TRANSFER_CANCEL, 20).uuid(m.transferId).i32(m.reason).finish();
}

export function decodeTransferCancel(p: Buffer): TransferCancel {
  const r = new FieldReader(p, 'TRANSFER_CANCEL');
  const m: TransferCancel = { type: T.TRANSFER_CANCEL, transferId: r.uuid('transfer_id'), reason: r.i32('reason') };
  r.end();
  return m;
}

export function encodeTransferPauseResume(m: TransferPauseResume): Buffer {
  return new FrameWriter(m.type, 16).uuid(m.transferId).finish();
}

export function decodeTransferPauseResume<K extends TransferPauseResume['type']>(type: K, p: Buffer): Extract<TransferPauseResume, { type: K }> {
  const r = new FieldReader(p, type === T.TRANSFER_PAUSE ? 'TRANSFER_PAUSE' : 'TRANSFER_RESUME');
  const m = { type, transferId: r.uuid('transfer_id') } as Extract<TransferPauseResume, { type: K }>;
  r.end();
  return m;
}
