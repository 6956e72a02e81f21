/**
 * Every message of PROTOCOL.md §3 as a plain object, discriminated by `type`.
 * Field names are the spec's in camelCase. u64 fields are numbers (exact up
 * to 2^53-1; larger values are rejected by the decoder). UUIDs are canonical
 * dashed strings; sha256 and bitmaps are Buffers.
 */
import type { MessageType as T } from '../constants.js';

export interface Connect {
  type: typeof T.CONNECT;
  protocolVersion: number;
  capabilities: number;
  clientId: string;
  /** Absent when the frame ends before it (§1 exception). */
  authToken?: string;
}

export interface ConnectAck {
  type: typeof T.CONNECT_ACK;
  protocolVersion: number;
  capabilities: number;
  sessionId: string;
  maxChunkSize: number;
  maxFileSize: number;
  serverName: string;
}

export interface Disconnect {
  type: typeof T.DISCONNECT;
  reason: number;
  message: string;
}

interface HeartbeatFields {
  timestampUs: number;
  sequence: number;
}

export interface Heartbeat extends HeartbeatFields {
  type: typeof T.HEARTBEAT;
}

/** The same two fields as the HEARTBEAT it answers, echoed. */
export interface HeartbeatAck extends HeartbeatFields {
  type: typeof T.HEARTBEAT_ACK;
}

export interface UploadRequest {
  type: typeof T.UPLOAD_REQUEST;
  transferId: string;
  filename: string;
  fileSize: number;
  /** All-zero: sent in UPLOAD_COMPLETE instead (§4). */
  sha256: Buffer;
  chunkSize: number;
  chunkCount: number;
  compression: number;
  options: number;
  modifiedMs: number;
}

export interface UploadAccept {
  type: typeof T.UPLOAD_ACCEPT;
  transferId: string;
  compression: number;
  chunkSize: number;
  window: number;
}

export interface UploadReject {
  type: typeof T.UPLOAD_REJECT;
  transferId: string;
  errorCode: number;
  message: string;
  available: number;
  requested: number;
}

export interface UploadComplete {
  type: typeof T.UPLOAD_COMPLETE;
  transferId: string;
  totalChunks: number;
  bytesSent: number;
  bytesOnWire: number;
  sha256: Buffer;
}

export interface UploadVerify {
  type: typeof T.UPLOAD_VERIFY;
  transferId: string;
  verified: boolean;
  errorCode: number;
  sha256: Buffer;
  storedName: string;
}

/** The 48-byte CHUNK_DATA header (§3). */
export interface ChunkHeader {
  transferId: string;
  chunkIndex: number;
  chunkOffset: number;
  originalSize: number;
  compressedSize: number;
  crc32: number;
  flags: number;
}

export interface ChunkData extends ChunkHeader {
  type: typeof T.CHUNK_DATA;
  /** The data section: a view of the frame payload, never a copy. */
  data: Buffer;
}

export interface ChunkAck {
  type: typeof T.CHUNK_ACK;
  transferId: string;
  chunkIndex: number;
  count: number;
}

export interface ChunkNack {
  type: typeof T.CHUNK_NACK;
  transferId: string;
  errorCode: number;
  chunkIndices: number[];
}

export interface ResumeRequest {
  type: typeof T.RESUME_REQUEST;
  transferId: string;
  direction: number;
  filename: string;
  sha256: Buffer;
  totalChunks: number;
  held: Buffer;
}

export interface ResumeResponse {
  type: typeof T.RESUME_RESPONSE;
  transferId: string;
  status: number;
  totalChunks: number;
  receivedCount: number;
  missing: Buffer;
}

export interface TransferCancel {
  type: typeof T.TRANSFER_CANCEL;
  transferId: string;
  reason: number;
}

export interface TransferPause {
  type: typeof T.TRANSFER_PAUSE;
  transferId: string;
}

export interface TransferResume {
  type: typeof T.TRANSFER_RESUME;
  transferId: string;
}

export type TransferPauseResume = TransferPause | TransferResume;

export interface DownloadRequest {
  type: typeof T.DOWNLOAD_REQUEST;
  transferId: string;
  filename: string;
  compression: number;
  chunkSize: number;
  window: number;
}

export interface DownloadAccept {
  type: typeof T.DOWNLOAD_ACCEPT;
  transferId: string;
  fileSize: number;
  sha256: Buffer;
  compression: number;
  chunkSize: number;
  totalChunks: number;
  modifiedMs: number;
}

export interface DownloadReject {
  type: typeof T.DOWNLOAD_REJECT;
  transferId: string;
  errorCode: number;
  message: string;
}

export interface DownloadComplete {
  type: typeof T.DOWNLOAD_COMPLETE;
  transferId: string;
  totalChunks: number;
  bytesSent: number;
  bytesOnWire: number;
}

export interface DownloadVerify {
  type: typeof T.DOWNLOAD_VERIFY;
  transferId: string;
  verified: boolean;
  errorCode: number;
  bytesReceived: number;
}

export interface ListRequest {
  type: typeof T.LIST_REQUEST;
  requestId: string;
  pattern: string;
  offset: number;
  limit: number;
  sortBy: number;
  sortOrder: number;
}

export interface ListEntry {
  name: string;
  size: number;
  sha256: Buffer;
  createdMs: number;
  modifiedMs: number;
}

export interface ListResponse {
  type: typeof T.LIST_RESPONSE;
  requestId: string;
  totalCount: number;
  hasMore: boolean;
  entries: ListEntry[];
}

export interface ErrorMessage {
  type: typeof T.ERROR;
  transferId: string;
  errorCode: number;
  message: string;
}

export type Message =
  | Connect
  | ConnectAck
  | Disconnect
  | Heartbeat
  | HeartbeatAck
  | UploadRequest
  | UploadAccept
  | UploadReject
  | UploadComplete
  | UploadVerify
  | ChunkData
  | ChunkAck
  | ChunkNack
  | ResumeRequest
  | ResumeResponse
  | TransferCancel
  | TransferPause
  | TransferResume
  | DownloadRequest
  | DownloadAccept
  | DownloadReject
  | DownloadComplete
  | DownloadVerify
  | ListRequest
  | ListResponse
  | ErrorMessage;

/** The message whose `type` is K. */
export type MessageOf<K extends Message['type']> = Extract<Message, { type: K }>;
