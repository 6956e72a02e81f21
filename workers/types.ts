/** Shapes of the tasks the pool runs and of their results (plain, postMessage-safe data). */

export interface TaskFailure {
  ok: false;
  /** The protocol error code (-7xx) the failure maps to. */
  code: number;
  /** The system error code (ENOSPC, EIO, …) when there was one. */
  errno: string;
  message: string;
}

export interface ReadChunkTask {
  fd: number;
  /** Moved to the worker and back; at least `length` bytes. */
  buffer: ArrayBuffer;
  position: number;
  length: number;
  compress: boolean;
}

export type ReadChunkResult =
  | { ok: true; buffer: ArrayBuffer; crc32: number; sent: number; compressed: boolean }
  | (TaskFailure & { buffer: ArrayBuffer });

export interface WriteChunkTask {
  fd: number;
  /** Moved to the worker and back; the data section lies at [byteOffset, byteOffset + byteLength). */
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  originalSize: number;
  crc32: number;
  compressed: boolean;
  position: number;
}

export type WriteChunkResult = { ok: true; buffer: ArrayBuffer } | (TaskFailure & { buffer: ArrayBuffer });

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
