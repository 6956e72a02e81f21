/**
 * The receiving half of a transfer's pipeline (server upload, client download).
 *
 *   CHUNK_DATA ──check header──► file sink in the pool (decompress, CRC32, write, SHA-256) ──► deliver
 *                  │ bad: NACK                                                                 │
 *                  ▼                                                                           ▼
 *              (nothing written)                                                  ACK (bad CRC: NACK)
 *
 * A chunk is acknowledged once its data is in the temporary file (§4). One
 * sink per file holds the file and the running hash in one worker, so each
 * chunk crosses threads once each way and is hashed from memory. Written data
 * is synced every `syncEveryBytes` (8 MiB), so the disk's write-back is paid
 * as it goes in short flushes rather than in long ones that stall the writes
 * behind them, and the final fsync before the rename is short. The first
 * sync, and then every `durableEveryBytes` (64 MiB) of synced data, is
 * reported durable, for the owner's checkpoint; a file shorter than one
 * sync is never reported (its owner writes no checkpoint for it).
 */
import { ChunkBitmap } from '../protocol/bitmap.js';
import { ChunkFlag, MessageType } from '../protocol/constants.js';
import { ErrorCode, FtsError } from '../protocol/errors.js';
import { encodeControl } from '../protocol/codec.js';
import type { ChunkData } from '../protocol/messages/types.js';
import { failureError } from '../workers/failure.js';
import type { WriteChunkResult } from '../workers/types.js';
import type { ChunkWorkers, FileSink, FrameSink } from './ports.js';
import type { ReceiveBudget } from './receive-budget.js';

export interface ChunkReceiverOptions {
  transferId: string;
  fd: number;
  /** The temporary file's path, so the sink can write it with direct I/O. */
  path?: string;
  fileSize: number;
  chunkSize: number;
  /** Chunks already durable (a resumed transfer). */
  received?: ChunkBitmap;
  sink: FrameSink;
  workers: ChunkWorkers;
  /**
   * Bytes written between two syncs of the file. Default 8 MiB. On the VM
   * measured, a sync took about 50 ms per 64 MiB written since the last one
   * and held up the writes behind it, so the sender stalled on a full window;
   * syncs every 4-8 MiB took a few ms each (a 1 GiB upload: 2.80-3.09 s with
   * 64 MiB, 2.52-2.92 s with 4 MiB and 2.55-3.03 s with 8 MiB). RocksDB's
   * `bytes_per_sync` smooths its write-back the same way.
   */
  syncEveryBytes?: number;
  /** Synced bytes between two `onDurable` reports after the first (at the first sync). Default 64 MiB. */
  durableEveryBytes?: number;
  /** Shared with the other receivers and the transport: a chunk, counted as it arrived, is claimed here and given back once written. */
  budget?: ReceiveBudget;
  deliver: (event: ChunkWritten | ChunkSynced) => void;
  /** After the first sync, and after each `durableEveryBytes` synced since the last report: the chunks now durable (to checkpoint). */
  onDurable?: (durable: ChunkBitmap) => void;
  onProgress?: (bytes: number, chunks: number) => void;
  onFailed: (error: FtsError) => void;
}

/** The results of one write request: a batch of chunks, in order. */
export interface ChunkWritten {
  kind: 'chunkWritten';
  indices: number[];
  results: WriteChunkResult[];
  /**
   * The sink ended without answering: the batch's buffers were moved to its
   * worker and never came back, so there is nothing to give back to the pool.
   */
  buffersLost?: boolean;
}

/** Chunks one write request takes at most. */
const WRITE_BATCH = 16;
const SYNC_EVERY_BYTES = 8 * 1024 * 1024;
const DURABLE_EVERY_BYTES = 64 * 1024 * 1024;

export interface ChunkSynced {
  kind: 'chunkSynced';
  error?: FtsError;
  /** The chunks written before the sync began: durable once it succeeded. */
  durable?: ChunkBitmap;
  /** Bytes that sync covered beyond the one before it. */
  bytes?: number;
}

export class ChunkReceiver {
  readonly totalChunks: number;
  readonly received: ChunkBitmap;
  private readonly o: ChunkReceiverOptions;
  private readonly writing = new Set<number>();
  private readonly fileSink: FileSink;
  /** Chunks waiting for the write request in flight to be answered. */
  private readonly queued: ChunkData[] = [];
  /** Chunks whose bytes were taken from the budget (not those that came while the sink waited for a slot). */
  private readonly counted = new WeakSet<ChunkData>();
  private writeInFlight = false;
  private receivedCount: number;
  private receivedBytes = 0;
  private unsyncedBytes = 0;
  /** Bytes synced since the last `onDurable` report. */
  private unreportedBytes = 0;
  private reportedDurable = false;
  private syncing = false;
  private stopped = false;
  private tasks = 0;
  private idleWaiters: (() => void)[] = [];
  bytesOnWire = 0;
  nacked = 0;

  constructor(opts: ChunkReceiverOptions) {
    this.o = opts;
    this.totalChunks = Math.ceil(opts.fileSize / opts.chunkSize);
    this.received = opts.received ?? new ChunkBitmap(this.totalChunks);
    this.receivedCount = this.received.count();
    for (const i of this.received.indices()) this.receivedBytes += this.sizeOf(i);
    this.fileSink = opts.workers.openSink({
      fd: opts.fd,
      ...(opts.path ? { path: opts.path } : {}),
      fileSize: opts.fileSize,
      chunkSize: opts.chunkSize,
      // A resumed transfer's kept chunks are hashed again, read back from the file.
      ...(opts.received ? { present: Uint8Array.from(opts.received.bytes) } : {}),
    });
  }

  get isComplete(): boolean {
    return this.receivedCount === this.totalChunks && this.writing.size === 0;
  }

  get bytesReceived(): number {
    return this.receivedBytes;
  }

  get chunksReceived(): number {
    return this.receivedCount;
  }

  /** A CHUNK_DATA for this transfer. Its data must lie in a pool buffer the receiver may move. */
  chunk(m: ChunkData): void {
    if (this.stopped) return this.release(m);
    const i = m.chunkIndex;
    const problem = this.checkHeader(m);
    if (problem) {
      this.release(m);
      this.nack(i, problem.code);
      return;
    }
    this.bytesOnWire += m.data.length;
    if (this.received.has(i)) {
      // §8.12: a chunk received again after its ACK is acknowledged again.
      this.release(m);
      this.ack(i);
      return;
    }
    if (this.writing.has(i)) {
      // A resend that crossed our ACK: the write in progress will answer it.
      this.release(m);
      return;
    }
    this.writing.add(i);
    this.queued.push(m);
    if (this.o.budget && !this.fileSink.waitingForSlot) {
      this.o.budget.take(m.data);
      this.counted.add(m);
    } else this.o.budget?.released(m.data); // counted on arrival: not while its sink waits
    this.dispatchWrites();
  }

  private dispatchWrites(): void {
    if (this.writeInFlight || this.queued.length === 0 || this.stopped) return;
    const batch = this.queued.splice(0, WRITE_BATCH);
    const indices = batch.map((m) => m.chunkIndex);
    // Given back when the request settles, not when its answer is handled:
    // a stopped owner may never handle it.
    const held = batch.reduce((sum, m) => sum + (this.counted.has(m) ? m.data.length : 0), 0);
    const giveBack = () => this.o.budget?.give(held);
    this.writeInFlight = true;
    this.track(
      this.fileSink
        .write(
          batch.map((m) => ({
            ref: this.o.workers.refOf(m.data),
            originalSize: m.originalSize,
            crc32: m.crc32,
            compressed: (m.flags & ChunkFlag.COMPRESSED) !== 0,
            position: m.chunkOffset,
          })),
        )
        .then(
          (results) => {
            giveBack();
            this.o.deliver({ kind: 'chunkWritten', indices, results });
          },
          (error: unknown) => {
            giveBack();
            const failure = error instanceof FtsError ? { code: error.code, message: error.message } : { code: ErrorCode.FILE_WRITE_ERROR, message: String(error) };
            this.o.deliver({
              kind: 'chunkWritten',
              indices,
              buffersLost: true,
              results: batch.map(() => ({ ok: false, ...failure, errno: '', ref: { offset: 0, length: 0 } })),
            });
          },
        ),
    );
  }

  /** The results of a write request, routed back through the owner's mailbox. */
  written(event: ChunkWritten): void {
    this.writeInFlight = false;
    const acked: number[] = [];
    event.results.forEach((result, k) => {
      const index = event.indices[k]!;
      this.writing.delete(index);
      if (!event.buffersLost) this.o.workers.releaseBuffer(this.o.workers.viewOf(result.ref));
      if (this.stopped) return;
      if (!result.ok) {
        if (result.code === ErrorCode.CHUNK_CHECKSUM_ERROR) this.nack(index, result.code);
        else this.fail(failureError(result, this.o.transferId));
        return;
      }
      if (!this.received.has(index)) {
        this.received.set(index);
        this.receivedCount++;
        const size = this.sizeOf(index);
        this.receivedBytes += size;
        this.unsyncedBytes += size;
      }
      acked.push(index);
    });
    if (this.stopped) return;
    this.dispatchWrites();
    if (acked.length === 0) return;
    // One CHUNK_ACK per run of consecutive indices ([index, index + count)).
    let runStart = acked[0]!;
    let runLength = 1;
    for (let k = 1; k <= acked.length; k++) {
      if (k < acked.length && acked[k] === runStart + runLength) {
        runLength++;
        continue;
      }
      this.ack(runStart, runLength);
      if (k < acked.length) {
        runStart = acked[k]!;
        runLength = 1;
      }
    }
    this.o.onProgress?.(this.receivedBytes, this.receivedCount);
    this.maybeSync();
  }

  synced(event: ChunkSynced): void {
    this.syncing = false;
    if (event.error) return this.fail(event.error);
    if (event.durable && !this.stopped) {
      this.unreportedBytes += event.bytes ?? 0;
      if (!this.reportedDurable || this.unreportedBytes >= (this.o.durableEveryBytes ?? DURABLE_EVERY_BYTES)) {
        this.reportedDurable = true;
        this.unreportedBytes = 0;
        this.o.onDurable?.(event.durable);
      }
    }
    this.maybeSync();
  }

  /** Every chunk is in; resolves with the file's SHA-256 (hex). */
  finishHash(): Promise<string> {
    return this.fileSink.finish();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const m of this.queued.splice(0)) {
      if (this.counted.has(m)) this.o.budget?.give(m.data.length);
      this.release(m);
    }
    this.fileSink.abort();
  }

  private checkHeader(m: ChunkData): FtsError | undefined {
    const i = m.chunkIndex;
    const id = this.o.transferId;
    if (i >= this.totalChunks) return new FtsError(ErrorCode.CHUNK_SEQUENCE_ERROR, `chunk ${i} beyond ${this.totalChunks}`, { transferId: id });
    if (m.chunkOffset !== i * this.o.chunkSize) return new FtsError(ErrorCode.CHUNK_SEQUENCE_ERROR, `chunk ${i} at offset ${m.chunkOffset}`, { transferId: id });
    if (m.originalSize !== this.sizeOf(i)) return new FtsError(ErrorCode.CHUNK_SIZE_ERROR, `chunk ${i} is ${m.originalSize} bytes, expected ${this.sizeOf(i)}`, { transferId: id });
    const compressed = (m.flags & ChunkFlag.COMPRESSED) !== 0;
    // §8.4: a compressed section larger than the original is a bad chunk (-722).
    if (compressed ? m.compressedSize > m.originalSize : m.compressedSize !== m.originalSize) {
      return new FtsError(ErrorCode.CHUNK_SIZE_ERROR, `chunk ${i}: compressed_size ${m.compressedSize}, original_size ${m.originalSize}`, { transferId: id });
    }
    return undefined;
  }

  private ack(index: number, count = 1): void {
    this.o.sink.send([encodeControl({ type: MessageType.CHUNK_ACK, transferId: this.o.transferId, chunkIndex: index, count })]);
  }

  private nack(index: number, code: number): void {
    this.nacked++;
    this.o.sink.send([encodeControl({ type: MessageType.CHUNK_NACK, transferId: this.o.transferId, errorCode: code, chunkIndices: [index] })]);
  }

  private maybeSync(): void {
    const every = this.o.syncEveryBytes ?? SYNC_EVERY_BYTES;
    if (this.syncing || this.stopped || this.unsyncedBytes < every) return;
    this.syncing = true;
    const bytes = this.unsyncedBytes;
    this.unsyncedBytes = 0;
    const durable = new ChunkBitmap(this.totalChunks, this.received.bytes);
    this.track(this.fileSink.sync().then(
      () => this.o.deliver({ kind: 'chunkSynced', durable, bytes }),
      (error: unknown) => this.o.deliver({ kind: 'chunkSynced', error: error instanceof FtsError ? error : new FtsError(ErrorCode.FILE_WRITE_ERROR, String(error)) }),
    ));
  }

  private track(task: Promise<void>): void {
    this.tasks++;
    void task.finally(() => {
      if (--this.tasks === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
  }

  /** Resolves once nothing (write, sync, the sink) uses the file descriptor: only then may it be closed. */
  async idle(): Promise<void> {
    if (this.tasks > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.fileSink.settled();
  }

  private release(m: ChunkData): void {
    this.o.budget?.released(m.data);
    this.o.workers.releaseBuffer(m.data);
  }

  private sizeOf(index: number): number {
    return Math.min(this.o.chunkSize, this.o.fileSize - index * this.o.chunkSize);
  }

  private fail(error: FtsError): void {
    if (this.stopped) return;
    this.stop();
    this.o.onFailed(error);
  }
}
