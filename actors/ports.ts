/**
 * What actors are given by the engine that creates them, as small
 * interfaces: actors never import `engine/`.
 */
import type { BufferRef, ReadChunkResult, ReadChunkTask, SinkTask, WriteChunkResult, WriteChunkTask } from '../workers/types.js';

/** Where a connection's frames go: one gathered write per frame. */
export interface FrameSink {
  /** Writes the pieces of one frame; `written` runs once the socket has taken them. */
  send(pieces: Uint8Array[], written?: (error?: Error | null) => void): void;
  /** Ends the connection after what was sent is flushed. */
  close(): void;
  /** Tears the connection down now. */
  destroy(): void;
  readonly closed: boolean;
  /** Bytes queued in the socket, not yet taken by the kernel. */
  readonly backlog: number;
}

export interface TimerHandle {
  cancel(): void;
}

/** Injected time, so heartbeats and timeouts are tested without sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * A received file's chunks, checked (LZ4, CRC32), written and hashed off the
 * main thread, one request at a time in the order sent.
 */
export interface FileSink {
  /** Results in the order of `chunks`; buffers come back in them. */
  write(chunks: WriteChunkTask[]): Promise<WriteChunkResult[]>;
  /** Makes everything written so far durable. */
  sync(): Promise<void>;
  /** Every chunk is written: the file's SHA-256 (hex). The sink ends. */
  finish(): Promise<string>;
  abort(): void;
  /** Resolves once the sink has ended and let go of the file, however it ended. */
  settled(): Promise<void>;
  /**
   * True while the sink waits for a worker slot that other transfers hold:
   * chunks queued for it are then not counted in the receive budget (they
   * could only be written once those transfers end, which a spent budget
   * would stop them doing). Absent: running.
   */
  readonly waitingForSlot?: boolean;
}

/** What a sink is opened with (the worker's task, less its port). */
export type SinkOptions = Omit<SinkTask, 'port'>;

/** The worker pool as actors see it. */
/** One sender's chunk reads, served in order by one worker; closed once the sender is done. */
export interface ChunkSource {
  read(task: ReadChunkTask): Promise<ReadChunkResult>;
  /** The SHA-256 of the file a hashing source was opened on (see ChunkWorkers.openSource). */
  digest(): Promise<string>;
  close(): void;
  /** Resolves once the source has ended, however it ended. */
  settled(): Promise<void>;
}

export interface ChunkWorkers {
  /** A source for one sender's reads; with `hash`, it also hashes that file from the chunks it reads. */
  openSource(hash?: { fd: number; size: number }): ChunkSource;
  /** The sink of one received file. */
  openSink(opts: SinkOptions): FileSink;
  syncFile(fd: number): Promise<void>;
  /** A chunk buffer of exactly `size` bytes, from the shared pool. */
  acquireBuffer(size: number): Buffer;
  /** Gives back a buffer (or any view inside one) from `acquireBuffer`. */
  releaseBuffer(view: Uint8Array): void;
  /** How a task names a buffer's bytes. */
  refOf(view: Uint8Array): BufferRef;
  /** The bytes a task result names. */
  viewOf(ref: BufferRef): Buffer;
}
