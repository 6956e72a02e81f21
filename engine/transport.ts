/**
 * A TCP socket as actors see it: frames in (through the incremental decoder,
 * into the actor's mailbox, with the socket paused while the mailbox is
 * full) and frames out (one corked, gathered write per frame).
 */
import type { Socket } from 'node:net';
import type { FrameSink } from '../actors/ports.js';
import { FrameDecoder, type Frame } from '../protocol/decoder.js';
import type { FtsError } from '../protocol/errors.js';
import type { WorkerPool } from '../workers/pool.js';

export interface FrameTarget {
  frame(frame: Frame): boolean;
  decodeError(error: FtsError): void;
  closed(error: Error | undefined): void;
}

export class SocketSink implements FrameSink {
  private ended = false;
  private corked = false;

  constructor(private readonly socket: Socket) {}

  get closed(): boolean {
    return this.ended || this.socket.destroyed || !this.socket.writable;
  }

  get backlog(): number {
    return this.socket.writableLength;
  }

  send(pieces: Uint8Array[], written?: (error?: Error | null) => void): void {
    if (this.closed) {
      written?.(new Error('connection closed'));
      return;
    }
    // Everything sent in one turn of the event loop leaves in one writev:
    // on loopback each write also runs the peer's TCP receive path, so many
    // small frames (ACKs above all) cost far more as separate writes.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    const last = pieces.length - 1;
    for (let i = 0; i <= last; i++) this.socket.write(pieces[i]!, i === last ? written : undefined);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.end();
    // A peer that never reads must not hold the socket open forever.
    setTimeout(() => this.socket.destroy(), 5_000).unref();
  }

  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }
}

/**
 * Feeds a socket's bytes to `target` as frames. CHUNK_DATA payloads land in
 * pool buffers so they can move to a worker without a copy.
 */
export function pipeSocket(socket: Socket, pool: WorkerPool, target: FrameTarget, maxChunkSize: number): { decoder: FrameDecoder; resume: () => void } {
  const decoder = new FrameDecoder({
    maxChunkSize,
    // Received payloads are assembled in owned buffers (moved to the worker)
    // rather than in the shared slab: V8 copies into shared memory with a
    // relaxed, word-at-a-time memmove, which cost more main-thread CPU (about
    // 0.4 s a GiB, measured with perf) than the moves' GC pressure.
    allocateChunkPayload: (size) => pool.buffers.acquire(size, true),
    onFrame: (frame) => {
      if (!target.frame(frame)) socket.pause();
    },
    onError: (error) => target.decodeError(error),
  });
  socket.on('data', (data: Buffer) => decoder.push(data));
  let closedOnce = false;
  const closed = (error?: Error) => {
    if (closedOnce) return;
    closedOnce = true;
    decoder.stop();
    target.closed(error);
  };
  socket.on('error', (error) => closed(error));
  socket.on('close', () => closed(undefined));
  return { decoder, resume: () => socket.resume() };
}
