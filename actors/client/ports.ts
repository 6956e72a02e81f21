/** What the engine gives the client's actors. */
import type { ChunkWorkers, Clock, FrameSink } from '../ports.js';
import type { ReceiveBudget } from '../receive-budget.js';

export interface ClientTransferContext {
  sink: FrameSink;
  workers: ChunkWorkers;
  /** Received chunk data all downloads hold at once (see ReceiveBudget). */
  receiveBudget: ReceiveBudget;
  clock: Clock;
  /** Capabilities both sides agreed on. */
  capabilities: number;
  requestTimeoutMs: number;
  progress(info: TransferProgress): void;
  /** The server's answer to a RESUME_REQUEST after a reconnection. */
  resumed(info: TransferResumed): void;
  /**
   * The connection looks dead from this transfer (no CHUNK_ACK in time): drop
   * it, so the client reconnects and the transfer resumes.
   */
  stalled(error: Error): void;
  /** The server's stored file of this name (a LIST of it), or undefined. */
  storedFile(name: string): Promise<{ name: string; size: number; sha256: string } | undefined>;
}

export interface TransferResumed {
  transferId: string;
  direction: 'upload' | 'download';
  status: import('./resume.js').ResumeStatusName;
  /** Chunks the receiver already holds durably: not sent again. */
  chunksKept: number;
  totalChunks: number;
}

export interface TransferProgress {
  transferId: string;
  direction: 'upload' | 'download';
  /** File bytes acknowledged (upload) or written (download). */
  bytes: number;
  total: number;
  chunks: number;
  totalChunks: number;
  /** Bytes a second since the transfer began. */
  rate: number;
}

export interface TransferResult {
  transferId: string;
  direction: 'upload' | 'download';
  /** Remote name (upload: as stored). */
  remoteName: string;
  localPath: string;
  bytes: number;
  /** Data-section bytes on the wire, retransmissions included. */
  bytesOnWire: number;
  sha256: string;
  verified: boolean;
  durationMs: number;
  retransmittedChunks: number;
}
