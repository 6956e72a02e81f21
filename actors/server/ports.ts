/** What the engine gives the server's actors: configuration, storage, hooks, events. */
import type { ChunkWorkers, Clock } from '../ports.js';
import type { ReceiveBudget } from '../receive-budget.js';

export interface ServerLimits {
  serverName: string;
  maxChunkSize: number;
  defaultChunkSize: number;
  maxFileSize: number;
  window: number;
  maxTransfersPerConnection: number;
  authToken: string | undefined;
  capabilities: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** Upload bytes between two syncs of the temporary file. */
  syncEveryBytes: number;
  /** Upload bytes between two checkpoints (each after a sync). */
  checkpointEveryBytes: number;
  /** Uploads are written with O_DIRECT where possible. */
  directIo: boolean;
}

export interface StoredFile {
  name: string;
  size: number;
  /** Hex SHA-256. */
  sha256: string;
  createdMs: number;
  modifiedMs: number;
}

export interface ReadableFile extends StoredFile {
  fd: number;
  /** The same file opened for direct I/O (page-cache bypass), where the file system allows it. */
  directFd?: number;
  close(): Promise<void>;
}

/** A reserved upload: a temporary file under the state folder, never under the final name. */
export interface UploadSlot {
  fd: number;
  tempPath: string;
  /** fsync, atomic rename into place, metadata; after the hash was verified. */
  commit(sha256: string, modifiedMs: number | undefined): Promise<StoredFile>;
  /** Closes and deletes the temporary file. */
  discard(): Promise<void>;
  /**
   * The upload lost its connection and waits for a resume: its name no
   * longer blocks another upload (§8.11); its temporary file and its bytes
   * of quota stay.
   */
  detachName(): void;
  /**
   * Records, atomically, which chunks are durable in the temporary file, so
   * the upload survives a server restart. The caller has synced them first.
   */
  checkpoint(state: UploadCheckpoint): Promise<void>;
  /** Closes the temporary file and keeps it with its checkpoint (server stop: resumed after a restart). */
  close(): Promise<void>;
}

/** What a durable checkpoint holds: enough to rebuild the upload's request and its received chunks. */
export interface UploadCheckpoint {
  version: 1;
  transferId: string;
  filename: string;
  fileSize: number;
  /** Hex; all zeros when the client sends the hash at UPLOAD_COMPLETE. */
  sha256: string;
  chunkSize: number;
  compression: number;
  options: number;
  modifiedMs: number;
  /** Base64 bitmap of the chunks durable in the temporary file. */
  received: string;
  createdMs: number;
  savedMs: number;
}

/** An upload whose connection was lost, kept so a RESUME_REQUEST can continue it (§4 Resume). */
export interface ParkedUpload {
  request: import('../../protocol/messages/types.js').UploadRequest;
  slot: UploadSlot;
  chunkSize: number;
  compression: number;
  /** Chunk bitmap bytes: chunks durable in the temporary file. */
  received: Buffer;
  parkedAtMs: number;
  /** Past the resume TTL: answered EXPIRED until purged. */
  expired: boolean;
}

export interface ParkedUploads {
  /** `parkedAtMs` defaults to now; a recovered upload passes its checkpoint's time so its TTL runs on. */
  park(transferId: string, upload: Omit<ParkedUpload, 'parkedAtMs' | 'expired'>, parkedAtMs?: number): void;
  /** Removes and returns it, to resume it. */
  take(transferId: string): ParkedUpload | undefined;
  peek(transferId: string): ParkedUpload | undefined;
  /** A transfer whose checkpoint was found corrupted at start-up: answered STATE_CORRUPTED. */
  isCorrupted(transferId: string): boolean;
  /** An upload is being parked (syncing, checkpointing); call the result when done. */
  parking(transferId: string): () => void;
  /** Resolves once a parking of this transfer in progress, if any, is done. */
  settled(transferId: string): Promise<void>;
}

export interface UploadReservation {
  name: string;
  size: number;
  transferId: string;
  overwrite: boolean;
}

export interface ServerStorage {
  exists(name: string): Promise<boolean>;
  /** Throws FtsError -717 (name busy) or -745 (quota / free disk, with available and requested). */
  reserveUpload(r: UploadReservation): Promise<UploadSlot>;
  /** Undefined when there is no such verified file. */
  openForRead(name: string): Promise<ReadableFile | undefined>;
  list(q: { pattern: string; offset: number; limit: number; sortBy: number; sortOrder: number }): Promise<{ total: number; entries: StoredFile[] }>;
}

/** What the application decides: true accepts; false or a string (the reason) refuses. */
export type Decision = boolean | string;

export interface UploadRequestInfo {
  clientId: string;
  transferId: string;
  filename: string;
  fileSize: number;
  chunkSize: number;
}

export interface DownloadRequestInfo {
  clientId: string;
  transferId: string;
  filename: string;
  fileSize: number;
}

export interface ServerEvents {
  clientConnected(info: { clientId: string; sessionId: string; remoteAddress: string }): void;
  clientDisconnected(info: { clientId: string; sessionId: string; reason: string }): void;
  uploadComplete(info: { clientId: string; transferId: string; file: StoredFile; durationMs: number }): void;
  downloadComplete(info: { clientId: string; transferId: string; filename: string; bytes: number; verified: boolean; durationMs: number }): void;
  progress(info: { clientId: string; transferId: string; direction: 'upload' | 'download'; bytes: number; total: number }): void;
  transferFailed(info: { clientId: string; transferId: string; error: Error }): void;
}

export interface ServerContext {
  limits: ServerLimits;
  parked: ParkedUploads;
  /**
   * Uploads running on some connection, by transfer id. A RESUME_REQUEST for
   * one of them comes from a client that lost that connection before the
   * server noticed: the old one is parked first (the id, a random UUID, is
   * the authority).
   */
  activeUploads: Map<string, { stop(reason?: unknown): Promise<void>; readonly answering: Promise<void> | undefined }>;
  storage: ServerStorage;
  workers: ChunkWorkers;
  /** Received chunk data all uploads hold at once (see ReceiveBudget). */
  receiveBudget: ReceiveBudget;
  clock: Clock;
  onUploadRequest(info: UploadRequestInfo): Promise<Decision>;
  onDownloadRequest(info: DownloadRequestInfo): Promise<Decision>;
  events: ServerEvents;
}
