/**
 * One download on the client side: DOWNLOAD_REQUEST, a temporary file beside
 * the target, the receiving pipeline (its SHA-256 follows the written prefix
 * in the pool), and at DOWNLOAD_COMPLETE: hash check, fsync, rename into
 * place, DOWNLOAD_VERIFY. A partial file never sits under the target name.
 */
import { closeSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { closeQuietly, datasyncFd } from '../../engine/metadata-io.js';
import { dirname } from 'node:path';
import { Actor } from '../actor.js';
import { ChunkReceiver, type ChunkSynced, type ChunkWritten } from '../chunk-receiver.js';
import type { TimerHandle } from '../ports.js';
import { MessageType as T, ResumeStatus, TransferDirection } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/codec.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import type { ChunkData, DownloadAccept, DownloadComplete, DownloadReject, ErrorMessage, ResumeResponse } from '../../protocol/messages/types.js';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import { resumeFailure, resumeStatusName, type ResumeFailurePolicy } from './resume.js';
import { syncDirectory } from '../durable.js';
import type { ClientTransferContext, TransferResult } from './ports.js';

export interface DownloadSpec {
  transferId: string;
  remoteName: string;
  localPath: string;
  chunkSize: number;
  window: number;
  compression: number;
  /** After a reconnection the server cannot resume: start again, or fail. */
  onResumeFailure: ResumeFailurePolicy;
  /** Opens the temporary file beside the target (an existing one, keeping its data, for `resumeFrom`). */
  openTemp: (existing?: string) => Promise<{ fd: number; path: string }>;
  /** Continue a download an earlier client process began (its record in the state folder). */
  resumeFrom?: { accept: DownloadAccept; tempPath: string; written: Buffer };
  /** Bytes between two syncs of the temporary file. */
  syncEveryBytes?: number;
  /** Synced bytes between two `persist.durable` calls. */
  durableEveryBytes?: number;
  /** Write with O_DIRECT where the file system allows it. */
  directIo?: boolean;
  /** Durable client state. */
  persist?: {
    accepted(accept: DownloadAccept, tempPath: string): void;
    durable(written: ChunkBitmap): void;
    /** Whether the temporary file is kept for a later run. */
    settled(error: FtsError | undefined): boolean;
  };
}

export type ClientDownloadMessage =
  | { kind: 'frame'; m: DownloadAccept | DownloadReject | DownloadComplete | ChunkData | ErrorMessage }
  | ChunkWritten
  | ChunkSynced
  | { kind: 'requestTimeout' }
  | { kind: 'cancel'; reason: FtsError }
  | { kind: 'connectionLost'; error: FtsError; willReconnect?: boolean }
  | { kind: 'reconnected' }
  | { kind: 'resumeFromRecord' }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'frame'; m: ResumeResponse };

export class ClientDownloadActor extends Actor<ClientDownloadMessage> {
  readonly transferId: string;
  readonly result: Promise<TransferResult>;
  private readonly ctx: ClientTransferContext;
  private readonly spec: DownloadSpec;
  private resolve!: (r: TransferResult) => void;
  private reject!: (e: FtsError) => void;
  private accept: DownloadAccept | undefined;
  /** The temporary file; `fd` is -1 once closed (a closed number may already name another file). */
  private temp: { fd: number; path: string } | undefined;
  private receiver: ChunkReceiver | undefined;
  private timer: TimerHandle | undefined;
  private renamed = false;
  private suspended = false;
  private keepTemp = false;
  /** Chunks written before the connection was lost: kept and never fetched again. */
  private written: ChunkBitmap | undefined;
  private nackedBefore = 0;
  private wireBefore = 0;
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
    if (s.resumeFrom) {
      this.tell({ kind: 'resumeFromRecord' });
      return;
    }
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
        if (!msg.willReconnect) return this.finish(msg.error);
        return this.suspend();
      case 'reconnected':
        return this.onReconnected();
      case 'resumeFromRecord':
        return this.onResumeFromRecord();
      case 'pause':
      case 'resume':
        // §4: TRANSFER_PAUSE stops the server's sending without timing the transfer out.
        if (this.accept && !this.suspended) this.ctx.sink.send([encodeControl({ type: msg.kind === 'pause' ? T.TRANSFER_PAUSE : T.TRANSFER_RESUME, transferId: this.transferId })]);
        return;
      case 'frame':
        if (msg.m.type === T.RESUME_RESPONSE) return this.onResumeResponse(msg.m);
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
    this.spec.persist?.accepted(m, this.temp.path);
    this.startReceiving(undefined);
    if (this.receiver!.totalChunks !== m.totalChunks) {
      return this.cancelWith(new FtsError(ErrorCode.PROTOCOL_ERROR, `DOWNLOAD_ACCEPT: ${m.totalChunks} chunks do not match size ${m.fileSize} / chunk ${m.chunkSize}`, { transferId: this.transferId }));
    }
  }

  private startReceiving(received: ChunkBitmap | undefined): void {
    const m = this.accept!;
    const fd = this.temp!.fd;
    this.receiver = new ChunkReceiver({
      transferId: this.transferId,
      fd,
      fileSize: m.fileSize,
      chunkSize: m.chunkSize,
      ...(received ? { received } : {}),
      sink: this.ctx.sink,
      workers: this.ctx.workers,
      budget: this.ctx.receiveBudget,
      ...(this.spec.directIo !== false ? { path: this.temp!.path } : {}),
      deliver: (event) => this.tell(event),
      ...(this.spec.syncEveryBytes !== undefined ? { syncEveryBytes: this.spec.syncEveryBytes } : {}),
      ...(this.spec.durableEveryBytes !== undefined ? { durableEveryBytes: this.spec.durableEveryBytes } : {}),
      onDurable: (durable) => this.spec.persist?.durable(durable),
      onProgress: (bytes, chunks) => {
        const elapsed = Math.max(1, this.ctx.clock.now() - this.startedMs);
        this.ctx.progress({ transferId: this.transferId, direction: 'download', bytes, total: m.fileSize, chunks, totalChunks: m.totalChunks, rate: (bytes * 1000) / elapsed });
      },
      onFailed: (error) => this.cancelWith(error),
    });
  }

  /** The connection is gone but will be re-established: keep the temporary file and what it holds. */
  private async suspend(): Promise<void> {
    this.timer?.cancel();
    this.suspended = true;
    const receiver = this.receiver;
    if (!receiver) return;
    receiver.stop();
    await receiver.idle();
    this.written = receiver.received;
    this.nackedBefore += receiver.nacked;
    this.wireBefore += receiver.bytesOnWire;
    this.receiver = undefined;
  }

  /** The temporary file and chunks an earlier process left: resume them as after a reconnection. */
  private async onResumeFromRecord(): Promise<void> {
    const earlier = this.spec.resumeFrom!;
    // Once: if the server cannot resume it, the download starts anew.
    this.spec.resumeFrom = undefined;
    try {
      this.temp = await this.spec.openTemp(earlier.tempPath);
    } catch {
      return this.start();
    }
    this.accept = earlier.accept;
    this.written = new ChunkBitmap(earlier.accept.totalChunks, earlier.written);
    this.suspended = true;
    this.onReconnected();
  }

  /** A new connection: ask for the chunks not yet written (§4 Resume), or ask again. */
  private onReconnected(): void {
    if (!this.suspended) return;
    this.suspended = false;
    const accept = this.accept;
    if (!accept || !this.written) {
      this.accept = undefined;
      return this.start();
    }
    this.ctx.sink.send([
      encodeControl({
        type: T.RESUME_REQUEST,
        transferId: this.transferId,
        direction: TransferDirection.DOWNLOAD,
        filename: this.spec.remoteName,
        sha256: accept.sha256,
        totalChunks: accept.totalChunks,
        held: this.written.bytes,
      }),
    ]);
    this.timer = this.ctx.clock.setTimeout(() => this.tell({ kind: 'requestTimeout' }), this.ctx.requestTimeoutMs);
  }

  private async onResumeResponse(m: ResumeResponse): Promise<void> {
    this.timer?.cancel();
    if (this.receiver || !this.accept || !this.written) return;
    this.ctx.resumed({ transferId: this.transferId, direction: 'download', status: resumeStatusName(m.status), chunksKept: this.written.count(), totalChunks: m.totalChunks });
    if (m.status === ResumeStatus.RESUMABLE) {
      // The sink hashes the kept prefix again from the file; nothing is fetched twice.
      this.startReceiving(this.written);
      return;
    }
    const failure = resumeFailure(m.status, this.transferId);
    if (this.spec.onResumeFailure === 'fail') return this.finish(failure);
    // Start again from scratch: drop the temporary file, ask for the file anew.
    if (this.temp) {
      this.closeTemp();
      await rm(this.temp.path, { force: true });
      this.temp = undefined;
    }
    this.accept = undefined;
    this.written = undefined;
    this.start();
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
      // The close in line, the sync and the rename through libuv's pool (see engine/metadata-io.ts).
      await datasyncFd(temp.fd);
      const fd = temp.fd;
      temp.fd = -1;
      closeSync(fd);
      await rename(temp.path, this.spec.localPath);
      this.renamed = true;
      await syncDirectory(dirname(this.spec.localPath));
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
      bytesOnWire: this.wireBefore + receiver.bytesOnWire || c.bytesOnWire,
      sha256: actual,
      verified: true,
      durationMs: this.ctx.clock.now() - this.startedMs,
      retransmittedChunks: this.nackedBefore + receiver.nacked,
    });
  }

  private cancelWith(error: FtsError): void {
    this.tell({ kind: 'cancel', reason: error });
  }

  private async finish(error: FtsError | undefined, result?: TransferResult): Promise<void> {
    this.timer?.cancel();
    this.receiver?.stop();
    if (this.spec.persist?.settled(error)) this.keepTemp = true;
    await this.cleanup();
    if (error) this.reject(error);
    else this.resolve(result!);
    await this.stop(error ?? 'done');
  }

  private async cleanup(): Promise<void> {
    await this.receiver?.idle();
    if (this.temp && !this.renamed) {
      this.closeTemp();
      // Kept when the client state folder records it for a later run.
      if (!this.keepTemp) await rm(this.temp.path, { force: true });
    }
  }

  private closeTemp(): void {
    if (!this.temp || this.temp.fd < 0) return;
    closeQuietly(this.temp.fd);
    this.temp.fd = -1;
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
