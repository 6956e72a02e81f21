/** Shapes of the tasks the pool runs and of their results (plain, postMessage-safe data). */

export interface TaskFailure {
  ok: false;
  /** The protocol error code (-7xx) the failure maps to. */
  code: number;
  /** The system error code (ENOSPC, EIO, …) when there was one. */
  errno: string;
  message: string;
}

/**
 * Where a chunk's bytes are: `[offset, offset + length)` of the pool's shared
 * slab (no `buffer`: nothing is moved, the worker already maps the slab), or
 * of an ArrayBuffer moved to the worker and back (the fallback when the slab
 * is full).
 */
export interface BufferRef {
  offset: number;
  length: number;
  buffer?: ArrayBuffer;
}

export interface ReadChunkTask {
  fd: number;
  /**
   * The file opened with O_DIRECT: used when the chunk lies in a slab slot
   * (page-aligned) at a page-aligned position; `fd` otherwise, and if the
   * file system refuses.
   */
  directFd?: number;
  /** At least `length` bytes. */
  ref: BufferRef;
  position: number;
  length: number;
  compress: boolean;
}

export type ReadChunkResult =
  | { ok: true; ref: BufferRef; crc32: number; sent: number; compressed: boolean }
  | (TaskFailure & { ref: BufferRef });

/** One received chunk to check and write. */
export interface WriteChunkTask {
  /** The data section. */
  ref: BufferRef;
  originalSize: number;
  crc32: number;
  compressed: boolean;
  position: number;
}

export type WriteChunkResult = { ok: true; ref: BufferRef } | (TaskFailure & { ref: BufferRef });

/** What every worker is given once, at start-up. */
export interface WorkerSetup {
  slab: SharedArrayBuffer;
  /** Bytes of each slab slot (whole pages). */
  slotSize: number;
  /** Whether the slab starts on a page boundary: only then are chunks read into it with O_DIRECT. */
  slabAligned: boolean;
}

export interface SyncTask {
  fd: number;
}

export interface HashTask {
  fd: number;
  /** A SharedArrayBuffer laid out as `HashControl` says. */
  control: SharedArrayBuffer;
}

export type HashResult = { ok: true; sha256: string; bytes: number } | TaskFailure;

/**
 * Layout of a hash task's control block: Int32 words [SEQ, STATE], then at
 * byte 8 two Float64s: [limit (bytes final and hashable), position (hashed so far)].
 */
export const HashControl = {
  SEQ: 0,
  STATE: 1,
  LIMIT_BYTE_OFFSET: 8,
  BYTES: 24,
  RUNNING: 0,
  FINAL: 1,
  ABORTED: 2,
} as const;

/**
 * A file sink (see sink-task.ts): every chunk of one received file is checked,
 * written and hashed by one long-lived task, spoken to over `port`.
 */
export interface SinkTask {
  port: import('node:worker_threads').MessagePort;
  /** The temporary file, open for reading and writing. */
  fd: number;
  /** Its path, to open it again for direct I/O; without it every write is buffered. */
  path?: string;
  fileSize: number;
  chunkSize: number;
  /** Bitmap (ChunkBitmap bytes) of the chunks already in the file: a resumed transfer. */
  present?: Uint8Array;
}

export type SinkRequest =
  | { op: 'write'; id: number; chunks: WriteChunkTask[] }
  | { op: 'sync'; id: number }
  | { op: 'finish'; id: number }
  | { op: 'abort'; id: number };

export type SinkReply =
  | { op: 'write'; id: number; results: WriteChunkResult[] }
  | { op: 'sync'; id: number; ok: true }
  | { op: 'finish'; id: number; ok: true; sha256: string }
  | { op: 'sync' | 'finish'; id: number; ok: false; failure: TaskFailure }
  /** The sink's last message: its descriptors are closed. */
  | { op: 'closed'; id: 0; failure?: TaskFailure };

/** A file source: a sender's chunk reads, served over its own port by one worker (see tasks.ts). */
export interface SourceTask {
  port: import('node:worker_threads').MessagePort;
  /** Also hash the file (an upload): from the chunks read in order, the rest read back at `digest`. */
  hash?: { fd: number; size: number };
}

export type SourceRequest = { op: 'read'; id: number; reads: ReadChunkTask[] } | { op: 'digest'; id: number } | { op: 'close'; id: number };

export type SourceReply =
  | { op: 'read'; id: number; results: ReadChunkResult[] }
  | { op: 'digest'; id: number; ok: true; sha256: string }
  | { op: 'digest'; id: number; ok: false; failure: TaskFailure }
  | { op: 'closed'; id: 0 };
