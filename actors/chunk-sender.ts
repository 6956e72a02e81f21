/**
 * The sending half of a transfer's pipeline (client upload, server download).
 *
 *   window credits ──► indices$ ──mergeMap(read+CRC32+LZ4 in pool, n)──► deliver ──► socket
 *        ▲                ▲                                                            │
 *        └──── CHUNK_ACK ─┴──── CHUNK_NACK (same index again: retransmission) ◄────────┘
 *
 * RxJS transforms; the owning actor holds flow control. A chunk is sent only
 * while fewer than `window` sent chunks are unacknowledged (§4); reads run up
 * to `readConcurrency` chunks ahead of that, so a chunk an ACK lets out is
 * usually read already. At most `window + readConcurrency` chunk buffers exist
 * whatever the file size. Read results come back through `deliver` (the
 * owner's mailbox) and are sent from there.
 */
import { mergeMap, Subject, type Subscription } from 'rxjs';
import { ChunkFlag, Defaults } from '../protocol/constants.js';
import { ErrorCode, FtsError } from '../protocol/errors.js';
import { encodeChunkData } from '../protocol/messages/chunk.js';
import { failureError } from '../workers/failure.js';
import type { ReadChunkResult, ReadChunkTask } from '../workers/types.js';
import type { ChunkSource, ChunkWorkers, Clock, FrameSink, TimerHandle } from './ports.js';

export type CompressionMode = 'none' | 'always' | 'adaptive';

export interface ChunkSenderOptions {
  transferId: string;
  fd: number;
  /** The same file opened with O_DIRECT: chunks are read around the page cache. */
  directFd?: number;
  fileSize: number;
  chunkSize: number;
  window: number;
  compression: CompressionMode;
  /** Indices to send, ascending; default all. */
  toSend?: Iterable<number>;
  sink: FrameSink;
  workers: ChunkWorkers;
  clock: Clock;
  /**
   * Reads in flight at once, default 8. Reads go to the worker four to a
   * message (one vectored read), so while the main thread sends one message's
   * chunks the worker reads (and hashes) the next: with 4, each upload's
   * source thread waited out every round trip (a 1 GiB upload: 2.91-3.33 s ->
   * 2.78-3.12 s, 4 interleaved pairs). Also how many chunks are read ahead
   * of the window: they wait for an ACK already read (a 1 GiB download,
   * median of 4 interleaved pairs: 3.72 -> 3.45 s; uploads unchanged).
   */
  readConcurrency?: number;
  /** Hash the file while reading it (an upload): `digest()` then gives its SHA-256. */
  hashed?: boolean;
  maxRetries?: number;
  ackTimeoutMs?: number;
  /** Routes a read result back into the owner's mailbox. */
  deliver: (read: ChunkRead) => void;
  onProgress?: (ackedBytes: number, ackedChunks: number) => void;
  onAllAcked: () => void;
  onFailed: (error: FtsError) => void;
}

export interface ChunkRead {
  kind: 'chunkRead';
  index: number;
  result: ReadChunkResult;
  /** The buffer as acquired: the key under which the sender tracks it. */
  token: Buffer;
}

/** Socket backlog above which the link, not the CPU, is the bottleneck. */
const CONGESTED_BYTES = 4 * 1024 * 1024;
/** After a chunk that did not shrink, chunks sent raw before trying LZ4 again. */
const INCOMPRESSIBLE_SKIP = 16;

export class ChunkSender {
  readonly totalChunks: number;
  private readonly o: ChunkSenderOptions;
  private readonly indices$ = new Subject<number>();
  private readonly subscription: Subscription;
  private readonly pending: Iterator<number>;
  /** Chunks taken from `pending` and not acknowledged: being read, read and waiting for the window, or sent. */
  private readonly unacked = new Set<number>();
  /** Chunks sent and not acknowledged: the window (§4) bounds these. */
  private readonly sent = new Set<number>();
  /** Chunks read while the window was full, in the order they were read: the first sent when an ACK makes room. */
  private readonly waiting: ReadyChunk[] = [];
  /** Chunks read ahead of the window, at most. */
  private readonly lookahead: number;
  private readonly retries = new Map<number, number>();
  private toSendCount: number;
  private ackedChunks = 0;
  private ackedBytes = 0;
  private paused = false;
  private stopped = false;
  private exhausted = false;
  private ackTimer: TimerHandle | undefined;
  private skipCompression = 0;
  private reading = 0;
  /** Every buffer acquired and not yet given back, with where it is. */
  private readonly held = new Map<Buffer, 'reading' | 'ready' | 'sending'>();
  private idleWaiters: (() => void)[] = [];
  /** This sender's reads (and, for an upload, the file's hash). */
  private readonly source: ChunkSource;
  /** Data-section bytes put on the wire, retransmissions included. */
  bytesOnWire = 0;
  /** File bytes sent, retransmissions included. */
  bytesSent = 0;
  retransmitted = 0;

  constructor(opts: ChunkSenderOptions) {
    this.o = opts;
    this.source = opts.workers.openSource(opts.hashed ? { fd: opts.fd, size: opts.fileSize } : undefined);
    this.totalChunks = Math.ceil(opts.fileSize / opts.chunkSize);
    const all = opts.toSend ? [...opts.toSend] : undefined;
    this.toSendCount = all ? all.length : this.totalChunks;
    this.pending = all ? all[Symbol.iterator]() : range(this.totalChunks);
    const concurrency = Math.max(1, opts.readConcurrency ?? 8);
    this.lookahead = concurrency;
    this.subscription = this.indices$
      .pipe(mergeMap((index) => this.read(index), concurrency))
      .subscribe({ next: (read) => opts.deliver(read) });
  }

  get isDone(): boolean {
    return this.ackedChunks >= this.toSendCount;
  }

  get acked(): { chunks: number; bytes: number } {
    return { chunks: this.ackedChunks, bytes: this.ackedBytes };
  }

  start(): void {
    if (this.toSendCount === 0) {
      this.o.onAllAcked();
      return;
    }
    this.pump();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.release();
    this.pump();
  }

  /** CHUNK_ACK: `[index, index + count)` are durable at the receiver. */
  ack(index: number, count: number): void {
    if (this.stopped) return;
    let progressed = false;
    for (let i = index; i < index + count && this.sent.size > 0; i++) {
      // §8.12: a repeated ACK is harmless; so is one for a chunk not sent yet.
      if (!this.sent.delete(i)) continue;
      this.unacked.delete(i);
      this.ackedChunks++;
      this.ackedBytes += this.sizeOf(i);
      progressed = true;
    }
    if (!progressed) return;
    this.armAckTimer();
    this.o.onProgress?.(this.ackedBytes, this.ackedChunks);
    if (this.isDone) {
      this.ackTimer?.cancel();
      this.o.onAllAcked();
      return;
    }
    this.release();
    this.pump();
  }

  /** Sends chunks read ahead while the window has room (and the transfer is not paused). */
  private release(): void {
    while (!this.paused && !this.stopped && this.waiting.length > 0 && this.sent.size < this.o.window) this.transmit(this.waiting.shift()!);
  }

  /** CHUNK_NACK: re-read and resend each index, at most `maxRetries` times (§4, §8.13). */
  nack(indices: number[], code: number): void {
    if (this.stopped) return;
    const max = this.o.maxRetries ?? Defaults.MAX_CHUNK_RETRIES;
    for (const i of indices) {
      if (!this.sent.has(i)) continue;
      const tries = (this.retries.get(i) ?? 0) + 1;
      if (tries > max) {
        this.fail(new FtsError(ErrorCode.CHUNK_CHECKSUM_ERROR, `chunk ${i} rejected ${tries} times (last code ${code})`, { transferId: this.o.transferId }));
        return;
      }
      this.retries.set(i, tries);
      this.retransmitted++;
      this.indices$.next(i);
    }
  }

  /** Called by the owner with a result `deliver` routed to it. */
  sendRead(read: ChunkRead): void {
    const { result, index, token } = read;
    const buffer = this.o.workers.viewOf(result.ref);
    // Acknowledged while it was being read again (a NACK crossed by an ACK): sent, and counted, already.
    if (this.stopped || this.o.sink.closed || !this.unacked.has(index)) {
      this.giveBack(token, buffer);
      return;
    }
    if (!result.ok) {
      this.giveBack(token, buffer);
      this.fail(failureError(result, this.o.transferId));
      return;
    }
    if (this.o.compression === 'adaptive') {
      if (!result.compressed && this.wantedCompression(index)) this.skipCompression = INCOMPRESSIBLE_SKIP;
    }
    const ready = { index, token, result, buffer };
    // A resend goes at once: its chunk is in the window already. A paused
    // transfer (TRANSFER_PAUSE) sends nothing new until it is resumed.
    if (!this.sent.has(index) && (this.paused || this.sent.size >= this.o.window)) this.waiting.push(ready);
    else this.transmit(ready);
  }

  /** Puts a chunk read on the wire; it counts against the window until acknowledged. */
  private transmit({ index, token, result, buffer }: ReadyChunk): void {
    const originalSize = this.sizeOf(index);
    let flags = 0;
    if (index === 0) flags |= ChunkFlag.FIRST;
    if (index === this.totalChunks - 1) flags |= ChunkFlag.LAST;
    if (result.compressed) flags |= ChunkFlag.COMPRESSED;
    const data = buffer.subarray(0, result.sent);
    const pieces = encodeChunkData(
      {
        transferId: this.o.transferId,
        chunkIndex: index,
        chunkOffset: index * this.o.chunkSize,
        originalSize,
        compressedSize: result.sent,
        crc32: result.crc32,
        flags,
      },
      data,
    );
    this.bytesOnWire += result.sent;
    this.bytesSent += originalSize;
    this.held.set(token, 'sending');
    this.sent.add(index);
    if (!this.ackTimer) this.armAckTimer();
    this.o.sink.send(pieces, () => this.giveBack(token, buffer));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.source.close();
    this.ackTimer?.cancel();
    this.subscription.unsubscribe();
    this.indices$.complete();
    this.waiting.length = 0;
    // Read but never sent: nobody will come for these. Buffers still being
    // read come back when their task ends; those being sent, when the socket
    // is done with them.
    for (const [token, state] of this.held) if (state === 'ready') this.giveBack(token, token);
  }

  private giveBack(token: Buffer, view: Uint8Array): void {
    if (this.held.delete(token)) this.o.workers.releaseBuffer(view);
  }

  private pump(): void {
    while (!this.paused && !this.stopped && !this.exhausted && this.unacked.size < this.o.window + this.lookahead) {
      const next = this.pending.next();
      if (next.done) {
        this.exhausted = true;
        break;
      }
      this.unacked.add(next.value);
      this.indices$.next(next.value);
    }
  }

  private async read(index: number): Promise<ChunkRead> {
    const length = this.sizeOf(index);
    const buffer = this.o.workers.acquireBuffer(Math.max(length, 1));
    this.held.set(buffer, 'reading');
    const compress = this.o.compression === 'always' || (this.o.compression === 'adaptive' && this.wantedCompression(index));
    if (this.skipCompression > 0) this.skipCompression--;
    this.reading++;
    try {
      const task: ReadChunkTask = {
        fd: this.o.fd,
        ...(this.o.directFd !== undefined ? { directFd: this.o.directFd } : {}),
        ref: this.o.workers.refOf(buffer),
        position: index * this.o.chunkSize,
        length,
        compress,
      };
      // A read that never ran (the pool or the source closed) fails this
      // transfer like one that failed; thrown, it would end the stream unseen.
      const result = await this.source.read(task).catch((error: unknown): ReadChunkResult => {
        const e = error as { code?: unknown; message?: unknown };
        // A buffer moved to a worker that never gave it back is lost (detached): name none.
        const ref = buffer.buffer.byteLength > 0 ? task.ref : { offset: 0, length: 0, buffer: new ArrayBuffer(0) };
        return { ok: false, code: typeof e.code === 'number' ? e.code : ErrorCode.FILE_READ_ERROR, errno: '', message: String(e.message ?? error), ref };
      });
      if (this.stopped) this.giveBack(buffer, this.o.workers.viewOf(result.ref));
      else this.held.set(buffer, 'ready');
      return { kind: 'chunkRead', index, result, token: buffer };
    } finally {
      if (--this.reading === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** Resolves once no read task uses the file descriptor: only then may it be closed. */
  async idle(): Promise<void> {
    if (this.reading > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.stopped) await this.source.settled();
  }

  /**
   * The SHA-256 of the file (a sender made with `hashed`), once the reads
   * started so far are done: hashed from the chunks read in order, and from
   * the file for what they did not cover.
   */
  digest(): Promise<string> {
    return this.source.digest();
  }

  /** Adaptive LZ4 (DESIGN.md): only while the link is the bottleneck, and not right after a chunk that did not shrink. */
  private wantedCompression(_index: number): boolean {
    return this.skipCompression === 0 && this.o.sink.backlog > CONGESTED_BYTES;
  }

  private sizeOf(index: number): number {
    return Math.min(this.o.chunkSize, this.o.fileSize - index * this.o.chunkSize);
  }

  private armAckTimer(): void {
    this.ackTimer?.cancel();
    this.ackTimer = undefined;
    if (this.stopped || this.sent.size === 0) return;
    const ms = this.o.ackTimeoutMs ?? Defaults.CHUNK_ACK_TIMEOUT_MS;
    this.ackTimer = this.o.clock.setTimeout(() => {
      this.fail(new FtsError(ErrorCode.CHUNK_TIMEOUT, `no CHUNK_ACK for ${ms} ms (${this.sent.size} chunks unacknowledged)`, { transferId: this.o.transferId }));
    }, ms);
  }

  private fail(error: FtsError): void {
    if (this.stopped) return;
    this.stop();
    this.o.onFailed(error);
  }
}

/** A chunk read and checked, waiting to be sent. */
interface ReadyChunk {
  index: number;
  token: Buffer;
  result: Extract<ReadChunkResult, { ok: true }>;
  buffer: Buffer;
}

function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}
