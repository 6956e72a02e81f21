/**
 * One entry point for every message: `encodeMessage` gives the pieces of one
 * frame for a gathered write, `decodeMessage` turns a checked frame payload
 * into a message or throws FtsError(-709).
 */
import { MessageType as T } from './constants.js';
import { protocolError } from './errors.js';
import { typeName } from './fields.js';
import { decodeChunkAck, decodeChunkData, decodeChunkNack, encodeChunkAck, encodeChunkData, encodeChunkNack } from './messages/chunk.js';
import {
  decodeDownloadAccept,
  decodeDownloadComplete,
  decodeDownloadReject,
  decodeDownloadRequest,
  decodeDownloadVerify,
  encodeDownloadAccept,
  encodeDownloadComplete,
  encodeDownloadReject,
  encodeDownloadRequest,
  encodeDownloadVerify,
} from './messages/download.js';
import { decodeListRequest, decodeListResponse, encodeListRequest, encodeListResponse } from './messages/list.js';
import {
  decodeResumeRequest,
  decodeResumeResponse,
  decodeTransferCancel,
  decodeTransferPauseResume,
  encodeResumeRequest,
  encodeResumeResponse,
  encodeTransferCancel,
  encodeTransferPauseResume,
} from './messages/resume.js';
import {
  decodeConnect,
  decodeConnectAck,
  decodeDisconnect,
  decodeError,
  decodeHeartbeat,
  encodeConnect,
  encodeConnectAck,
  encodeDisconnect,
  encodeError,
  encodeHeartbeat,
} from './messages/session.js';
import type { Message } from './messages/types.js';
import {
  decodeUploadAccept,
  decodeUploadComplete,
  decodeUploadReject,
  decodeUploadRequest,
  decodeUploadVerify,
  encodeUploadAccept,
  encodeUploadComplete,
  encodeUploadReject,
  encodeUploadRequest,
  encodeUploadVerify,
} from './messages/upload.js';

/**
 * The frame of `m`, as pieces to write in order. Control messages are one
 * buffer; CHUNK_DATA is three, its data section passed through uncopied.
 */
export function encodeMessage(m: Message): Uint8Array[] {
  switch (m.type) {
    case T.CHUNK_DATA:
      return encodeChunkData(m, m.data);
    default:
      return [encodeControl(m)];
  }
}

/** The single-buffer frame of any message other than CHUNK_DATA. */
export function encodeControl(m: Exclude<Message, { type: typeof T.CHUNK_DATA }>): Buffer {
  switch (m.type) {
    case T.CONNECT:
      return encodeConnect(m);
    case T.CONNECT_ACK:
      return encodeConnectAck(m);
    case T.DISCONNECT:
      return encodeDisconnect(m);
    case T.HEARTBEAT:
    case T.HEARTBEAT_ACK:
      return encodeHeartbeat(m);
    case T.UPLOAD_REQUEST:
      return encodeUploadRequest(m);
    case T.UPLOAD_ACCEPT:
      return encodeUploadAccept(m);
    case T.UPLOAD_REJECT:
      return encodeUploadReject(m);
    case T.UPLOAD_COMPLETE:
      return encodeUploadComplete(m);
    case T.UPLOAD_VERIFY:
      return encodeUploadVerify(m);
    case T.CHUNK_ACK:
      return encodeChunkAck(m);
    case T.CHUNK_NACK:
      return encodeChunkNack(m);
    case T.RESUME_REQUEST:
      return encodeResumeRequest(m);
    case T.RESUME_RESPONSE:
      return encodeResumeResponse(m);
    case T.TRANSFER_CANCEL:
      return encodeTransferCancel(m);
    case T.TRANSFER_PAUSE:
    case T.TRANSFER_RESUME:
      return encodeTransferPauseResume(m);
    case T.DOWNLOAD_REQUEST:
      return encodeDownloadRequest(m);
    case T.DOWNLOAD_ACCEPT:
      return encodeDownloadAccept(m);
    case T.DOWNLOAD_REJECT:
      return encodeDownloadReject(m);
    case T.DOWNLOAD_COMPLETE:
      return encodeDownloadComplete(m);
    case T.DOWNLOAD_VERIFY:
      return encodeDownloadVerify(m);
    case T.LIST_REQUEST:
      return encodeListRequest(m);
    case T.LIST_RESPONSE:
      return encodeListResponse(m);
    case T.ERROR:
      return encodeError(m);
    default:
      return unreachable(m);
  }
}

/** Decodes the payload of a frame of `type`; unknown types are -709 (§8.2). */
export function decodeMessage(type: number, payload: Buffer): Message {
  switch (type) {
    case T.CONNECT:
      return decodeConnect(payload);
    case T.CONNECT_ACK:
      return decodeConnectAck(payload);
    case T.DISCONNECT:
      return decodeDisconnect(payload);
    case T.HEARTBEAT:
    case T.HEARTBEAT_ACK:
      return decodeHeartbeat(type, payload);
    case T.UPLOAD_REQUEST:
      return decodeUploadRequest(payload);
    case T.UPLOAD_ACCEPT:
      return decodeUploadAccept(payload);
    case T.UPLOAD_REJECT:
      return decodeUploadReject(payload);
    case T.UPLOAD_COMPLETE:
      return decodeUploadComplete(payload);
    case T.UPLOAD_VERIFY:
      return decodeUploadVerify(payload);
    case T.CHUNK_DATA:
      return decodeChunkData(payload);
    case T.CHUNK_ACK:
      return decodeChunkAck(payload);
    case T.CHUNK_NACK:
      return decodeChunkNack(payload);
    case T.RESUME_REQUEST:
      return decodeResumeRequest(payload);
    case T.RESUME_RESPONSE:
      return decodeResumeResponse(payload);
    case T.TRANSFER_CANCEL:
      return decodeTransferCancel(payload);
    case T.TRANSFER_PAUSE:
    case T.TRANSFER_RESUME:
      return decodeTransferPauseResume(type, payload);
    case T.DOWNLOAD_REQUEST:
      return decodeDownloadRequest(payload);
    case T.DOWNLOAD_ACCEPT:
      return decodeDownloadAccept(payload);
    case T.DOWNLOAD_REJECT:
      return decodeDownloadReject(payload);
    case T.DOWNLOAD_COMPLETE:
      return decodeDownloadComplete(payload);
    case T.DOWNLOAD_VERIFY:
      return decodeDownloadVerify(payload);
    case T.LIST_REQUEST:
      return decodeListRequest(payload);
    case T.LIST_RESPONSE:
      return decodeListResponse(payload);
    case T.ERROR:
      return decodeError(payload);
    default:
      throw protocolError(`unknown message type ${typeName(type)}`);
  }
}

function unreachable(m: never): never {
  throw new Error(`unhandled message ${JSON.stringify(m)}`);
}
