/**
 * One download on the client side: DOWNLOAD_REQUEST, a temporary file beside
 * the target, the receiving pipeline (its SHA-256 follows the written prefix
 * in the pool), and at DOWNLOAD_COMPLETE: hash check, fsync, rename into
 * place, DOWNLOAD_VERIFY. A partial file never sits under the target name.
 */
import { rename, rm, type FileHandle } from 'node:fs/promises';
import { Actor } from '../actor.js';
import { ChunkReceiver, type ChunkSynced, type ChunkWritten } from '../chunk-receiver.js';
import type { TimerHandle } from '../ports.js';
import { MessageType as T } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/codec.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import type { ChunkData, DownloadAccept, DownloadComplete, DownloadReject, ErrorMessage } from '../../protocol/messages/types.js';
import type { ClientTransferContext, TransferResult } from './ports.js';

export interface DownloadSpec {
  transferId: string;
  remoteName: string;
  localPath: string;
  chunkSize: number;
  window: number;
  compression: number;
  /** Opens the temporary file beside the target. */
  openTemp: () => Promise<{ handle: FileHandle; path: string }>;
}

export type ClientDownloadMessage =
  | { kind: 'frame'; m: DownloadAccept | DownloadReject | DownloadComplete | ChunkData | ErrorMessage }
  | ChunkWritten
  | ChunkSynced
  | { kind: 'requestTimeout' }
  | { kind: 'cancel'; reason: FtsError }
  | { kind: 'connectionLost'; error: FtsError };

export class ClientDownloadActor extends Actor<ClientDownloadMessage> {
  readonly transferId: string;
  readonly result: Promise<TransferResult>;
  private readonly ctx: ClientTransferContext;
  private readonly spec: DownloadSpec;
  private resolve!: (r: TransferResult) => void;
  private reject!: (e: FtsError) => void;
  private accept: DownloadAccept | undefined;
  private temp: { handle: FileHandle; path: string } | undefined;
  private receiver: ChunkReceiver | undefined;
  private timer: TimerHandle | undefined;
  private renamed = false;
  private readonly startedMs: number;

  constructor(ctx: ClientTransferContext, spec: DownloadSpec) {
    super(`client download ${spec.transferId}`);
    this.ctx = ctx;
    this.spec = spec;
    this.transferId = spec.transferId;
    this.startedMs = ctx.clock.now();
    this.result = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.result.catch(() => undefined);
  }

  start(): void {
    const s = this.spec;
    this.ctx.sink.send([
      encodeControl({ type: T.DOWNLOAD_REQUEST, transferId: s.transferId, filename: s.remoteName, compression: s.compression, chunkSize: s.chunkSize, window: s.window }),
    ]);
    this.timer = this.ctx.clock.setTimeout(() => this.tell({ kind: 'requestTimeout' }), this.ctx.requestTimeoutMs);
  }

  protected receive(msg: ClientDownloadMessage): void | Promise<void> {
    switch (msg.kind) {
      case 'chunkWritten':
        return this.receiver?.written(msg);
      case 'chunkSynced':
        return this.receiver?.synced(msg);
      case 'requestTimeout':
        if (!this.accept) return this.finish(new FtsError(ErrorCode.TRANSFER_TIMEOUT, `no answer to DOWNLOAD_REQUEST within ${this.ctx.requestTimeoutMs} ms`, { transferId: this.transferId }));
        return;
      case 'cancel':
        this.ctx.sink.send([encodeControl({ type: T.TRANSFER_CANCEL, transferId: this.transferId, reason: msg.reason.code })]);
        return this.finish(msg.reason);
      case 'connectionLost':
        return this.finish(msg.error);
      case 'frame':
        return this.onFrame(msg.m);
      default:
        return unreachable(msg);
    }
  }

  private async onFrame(m: DownloadAccept | DownloadReject | DownloadComplete | ChunkData | ErrorMessage): Promise<void> {
    switch (m.type) {
      case T.DOWNLOAD_ACCEPT:
        return this.onAccept(m);
      case T.DOWNLOAD_REJECT:
        this.timer?.cancel();
        return this.finish(new FtsError(m.errorCode, m.message, { transferId: this.transferId }));
      case T.CHUNK_DATA:
        if (this.receiver) this.receiver.chunk(m);
        else this.ctx.workers.releaseBuffer(m.data);
        return;
      case T.DOWNLOAD_COMPLETE:
        return this.onComplete(m);
      case T.ERROR:
        return this.finish(new FtsError(m.errorCode, m.message, { transferId: this.transferId }));
      default:
        return unreachable(m);
    }
  }

  private async onAccept(m: DownloadAccept): Promise<void> {
    this.timer?.cancel();
    if (this.accept) return;
    this.accept = m;
    try {
      this.temp = await this.spec.openTemp();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code === 'ENOSPC' ? ErrorCode.DISK_FULL : ErrorCode.FILE_WRITE_ERROR;
      return this.cancelWith(new FtsError(code, `cannot create a temporary file beside ${this.spec.localPath}: ${(err as Error).message}`, { transferId: this.transferId, cause: err }));
    }
    const fd = this.temp.handle.fd;
    this.receiver = new ChunkReceiver({
      transferId: this.transferId,
      fd,
      fileSize: m.fileSize,
      chunkSize: m.chunkSize,
      sink: this.ctx.sink,
      workers: this.ctx.workers,
      hash: this.ctx.workers.hashFile(fd),
      deliver: (event) => this.tell(event),
      onProgress: (bytes, chunks) => {
        const elapsed = Math.max(1, this.ctx.clock.now() - this.startedMs);
        this.ctx.progress({ transferId: this.transferId, direction: 'download', bytes, total: m.fileSize, chunks, totalChunks: m.totalChunks, rate: (bytes * 1000) / elapsed });
      },
      onFailed: (error) => this.cancelWith(error),
    });
    if (this.receiver.totalChunks !== m.totalChunks) {
      return this.cancelWith(new FtsError(ErrorCode.PROTOCOL_ERROR, `DOWNLOAD_ACCEPT: ${m.totalChunks} chunks do not match size ${m.fileSize} / chunk ${m.chunkSize}`, { transferId: this.transferId }));
    }
  }

  private async onComplete(c: DownloadComplete): Promise<void> {
    const accept = this.accept;
    const receiver = this.receiver;
    const temp = this.temp;
    if (!accept || !receiver || !temp) return this.cancelWith(new FtsError(ErrorCode.PROTOCOL_ERROR, 'DOWNLOAD_COMPLETE before DOWNLOAD_ACCEPT', { transferId: this.transferId }));
    const verify = (verified: boolean, code: number) =>
      this.ctx.sink.send([encodeControl({ type: T.DOWNLOAD_VERIFY, transferId: this.transferId, verified, errorCode: code, bytesReceived: receiver.bytesReceived })]);
    if (!receiver.isComplete) {
      verify(false, ErrorCode.CHUNK_SEQUENCE_ERROR);
      return this.finish(new FtsError(ErrorCode.CHUNK_SEQUENCE_ERROR, `DOWNLOAD_COMPLETE with ${receiver.chunksReceived} of ${receiver.totalChunks} chunks`, { transferId: this.transferId }));
    }
    const actual = await receiver.finishHash();
    await receiver.idle();
    const expected = accept.sha256.toString('hex');
    if (actual !== expected) {
      verify(false, ErrorCode.FILE_HASH_MISMATCH);
      return this.finish(new FtsError(ErrorCode.FILE_HASH_MISMATCH, `SHA-256 mismatch: expected ${expected}, got ${actual}`, { transferId: this.transferId }));
    }
    try {
      await temp.handle.datasync();
      await temp.handle.close();
      await rename(temp.path, this.spec.localPath);
      this.renamed = true;
    } catch (err) {
      verify(false, ErrorCode.FILE_WRITE_ERROR);
      return this.finish(new FtsError(ErrorCode.FILE_WRITE_ERROR, `cannot move the download into place: ${(err as Error).message}`, { transferId: this.transferId, cause: err }));
    }
    verify(true, 0);
    return this.finish(undefined, {
      transferId: this.transferId,
      direction: 'download',
      remoteName: this.spec.remoteName,
      localPath: this.spec.localPath,
      bytes: accept.fileSize,
      bytesOnWire: receiver.bytesOnWire || c.bytesOnWire,
      sha256: actual,
      verified: true,
      durationMs: this.ctx.clock.now() - this.startedMs,
      retransmittedChunks: receiver.nacked,
    });
  }

  private cancelWith(error: FtsError): void {
    this.tell({ kind: 'cancel', reason: error });
  }

  private async finish(error: FtsError | undefined, result?: TransferResult): Promise<void> {
    this.timer?.cancel();
    this.receiver?.stop();
    await this.cleanup();
    if (error) this.reject(error);
    else this.resolve(result!);
    await this.stop(error ?? 'done');
  }

  private async cleanup(): Promise<void> {
    await this.receiver?.idle();
    if (this.temp && !this.renamed) {
      await this.temp.handle.close().catch(() => undefined);
      await rm(this.temp.path, { force: true });
    }
  }

  /** Chunk buffers in messages that will never be handled go back to the pool. */
  protected override dropped(msg: ClientDownloadMessage): void {
    this.receiver?.stop();
    if (msg.kind === 'frame' && msg.m.type === T.CHUNK_DATA) this.ctx.workers.releaseBuffer(msg.m.data);
    else if (msg.kind === 'chunkWritten') this.receiver?.written(msg);
  }

  protected override async onStop(): Promise<void> {
    this.timer?.cancel();
    this.receiver?.stop();
    await this.cleanup();
    this.reject(new FtsError(ErrorCode.TRANSFER_CANCELLED, 'transfer stopped', { transferId: this.transferId }));
  }
}

function unreachable(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
