/**
 * A TCP socket as actors see it: frames in (through the incremental decoder,
 * into the actor's mailbox, with the socket paused while the mailbox is
 * full) and frames out (one corked, gathered write per frame).
 */
import { Socket, type OnReadOpts } from 'node:net';
import type { FrameSink } from '../actors/ports.js';
import type { ReceiveBudget } from '../actors/receive-budget.js';
import { MessageType } from '../protocol/constants.js';
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

/** Bytes one socket read may fill: what Node itself uses. */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Bytes of the read after a payload was read in place: the postfix, the next
 * frame's header and the start of its payload, which is copied; the rest of
 * that payload is then read in place too.
 */
const HEADER_READ_BYTES = 4 * 1024;
/** Idle read buffers a connection keeps: the decoder holds about one frame's worth (a 256 KiB chunk: 5) at a time. */
const KEEP_READ_BUFFERS = 8;

/** Where a read may land in place, and what to tell once it did (FrameDecoder's directTarget/filledDirect). */
export interface DirectReads {
  target(): Buffer | undefined;
  filled(bytes: number): void;
}

/**
 * Socket reads into recycled buffers, or straight into a chunk's payload.
 * Left to itself, Node gives every read a fresh 64 KiB buffer: at a few
 * hundred MB/s, thousands of allocations a second whose memory V8 learns is
 * free only at its next collection (it collects for external memory every
 * ~64 MB), so the heap swelled with dead read buffers (about 40 MB of a 130 MB
 * server) and the collector's threads worked to free them. With `onread`, a
 * read lands in one of these buffers, and the decoder hands it back once it
 * no longer refers to it. While the decoder fills a large CHUNK_DATA payload,
 * the read lands in the payload itself, which saves the main thread a copy
 * of nearly every byte of a transfer and nearly half its reads (an upload's
 * server: 17,586 reads a GiB before, 9,631 after).
 */
export class ReadBuffers {
  private readonly free: Buffer[] = [];
  private readonly freeSmall: Buffer[] = [];
  /** Reads that came before the receiver was attached. */
  private early: Buffer[] | undefined = [];
  private receiver: (data: Buffer) => void = (data) => this.early?.push(data);
  private direct: DirectReads | undefined;
  /** The payload view the pending read was given, if it was one. */
  private inPlace: Uint8Array | undefined;
  /** The last read was in place: the next one starts with a frame's header. */
  private afterInPlace = false;
  /** Bytes read straight into payloads (for tests and diagnostics). */
  bytesInPlace = 0;
  /** The `onread` option of net.connect(), or of a socket re-made by adoptSocket(). */
  readonly onread: OnReadOpts = {
    buffer: () => {
      const target = this.direct?.target();
      this.inPlace = target;
      if (target) return target;
      if (this.afterInPlace) return this.freeSmall.pop() ?? Buffer.allocUnsafeSlow(HEADER_READ_BYTES);
      return this.free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    },
    // Node installs a buffer from `buffer()` for the next read after this returns: this one is ours.
    // Until a receiver is attached, returning false pauses the socket: one early read is held, not a flood.
    callback: (bytes: number, buf: Uint8Array): boolean => {
      if (buf === this.inPlace) {
        this.inPlace = undefined;
        this.afterInPlace = true;
        this.bytesInPlace += bytes;
        this.direct!.filled(bytes);
        return true;
      }
      this.afterInPlace = false;
      this.receiver(Buffer.from(buf.buffer, buf.byteOffset, bytes));
      return this.early === undefined;
    },
  };

  /** Where each read's bytes go from now on (reads that came earlier first); `direct`: reads may land in place. */
  attach(receiver: (data: Buffer) => void, direct?: DirectReads): void {
    this.receiver = receiver;
    this.direct = direct;
    const early = this.early ?? [];
    this.early = undefined;
    for (const data of early) receiver(data);
  }

  /** A buffer given to the receiver (as it was given) that nothing refers to any more. */
  release(data: Buffer): void {
    if (data.byteOffset !== 0) return;
    const size = data.buffer.byteLength;
    const list = size === READ_BUFFER_BYTES ? this.free : size === HEADER_READ_BYTES ? this.freeSmall : undefined;
    if (list && list.length < KEEP_READ_BUFFERS) list.push(Buffer.from(data.buffer as ArrayBuffer));
  }
}

/**
 * Re-makes an accepted socket (`pauseOnConnect`, nothing read yet) around
 * the same handle with `onread` (which net.createServer() cannot pass on),
 * and retires the original. Where the handle is not reachable, the socket is
 * used as it is (`adopted` false: read it with 'data' events, not `reads`).
 * An adopted socket is no longer counted by its net.Server.
 */
export function adoptSocket(raw: Socket, reads: ReadBuffers): { socket: Socket; adopted: boolean } {
  const holder = raw as unknown as { _handle?: object | null };
  const handle = holder._handle;
  if (!handle) {
    raw.resume();
    return { socket: raw, adopted: false };
  }
  const socket = new Socket({ handle, onread: reads.onread } as unknown as ConstructorParameters<typeof Socket>[0]);
  // The original must let go of the handle before it is destroyed (which
  // also settles the server's connection count), or it would close it.
  holder._handle = null;
  raw.destroy();
  return { socket, adopted: true };
}

/**
 * Feeds a socket's bytes to `target` as frames. CHUNK_DATA payloads land in
 * pool buffers so they can move to a worker without a copy. With `reads`
 * (the socket was made with its `onread`), read buffers are recycled.
 */
export function pipeSocket(socket: Socket, pool: WorkerPool, target: FrameTarget, maxChunkSize: number, reads?: ReadBuffers, budget?: ReceiveBudget): { decoder: FrameDecoder; resume: () => void } {
  /** The target's mailbox is full: reading stays paused until it asks for more. */
  let held = false;
  let closedOnce = false;
  /** The receive budget is spent: reading stays paused until it has room again (forget: drops that wait). */
  let starved: (() => void) | undefined;
  const resumeIfFree = () => {
    if (!held && !starved) socket.resume();
  };
  const decoder = new FrameDecoder({
    ...(reads ? { releaseInput: (data: Buffer) => reads.release(data) } : {}),
    maxChunkSize,
    // Below 64 KiB a socket read holds several frames anyway.
    ...(reads ? { streamChunkPayloadsFrom: 64 * 1024 } : {}),
    // Received payloads are assembled in owned buffers (moved to the worker)
    // rather than in the shared slab: V8 copies into shared memory with a
    // relaxed, word-at-a-time memmove, which cost more main-thread CPU (about
    // 0.4 s a GiB, measured with perf) than the moves' GC pressure.
    allocateChunkPayload: (size) => pool.buffers.acquire(size, true),
    releaseChunkPayload: (payload) => pool.buffers.release(payload),
    onFrame: (frame) => {
      const chunk = frame.type === MessageType.CHUNK_DATA;
      // A chunk is counted as it arrives (see ReceiveBudget.arrive), before a receiver claims it.
      if (chunk && budget) budget.arrive(frame.payload, socket);
      if (!target.frame(frame)) held = true;
      // Only connections that bring chunk data wait for the budget: one that
      // lists, downloads or only heartbeats holds none of it.
      if (chunk && budget?.exhausted && !starved && !closedOnce) {
        starved = budget.whenAvailable(() => {
          starved = undefined;
          resumeIfFree();
        });
      }
      if (held || starved) socket.pause();
    },
    onError: (error) => target.decodeError(error),
  });
  if (reads) {
    reads.attach(
      (data) => decoder.push(data),
      { target: () => decoder.directTarget(), filled: (bytes) => decoder.filledDirect(bytes) },
    );
    // Paused if a read came before the receiver (see ReadBuffers.onread), unless the early reads filled the mailbox.
    resumeIfFree();
  } else socket.on('data', (data: Buffer) => decoder.push(data));
  const closed = (error?: Error) => {
    if (closedOnce) return;
    closedOnce = true;
    starved?.();
    starved = undefined;
    budget?.forget(socket);
    decoder.stop();
    target.closed(error);
  };
  socket.on('error', (error) => closed(error));
  socket.on('close', () => closed(undefined));
  return {
    decoder,
    resume: () => {
      held = false;
      resumeIfFree();
    },
  };
}
