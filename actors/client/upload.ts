/**
 * One upload on the client side: UPLOAD_REQUEST with an all-zero hash (the
 * file is hashed while it is being sent, from the very chunks read for
 * sending, so a file sent in order is read once), the sending pipeline,
 * UPLOAD_COMPLETE with the hash, and the server's UPLOAD_VERIFY.
 */
import { fstat } from 'node:fs';
import { promisify } from 'node:util';
import { Actor } from '../actor.js';
import { ChunkSender, type ChunkRead } from '../chunk-sender.js';
import type { TimerHandle } from '../ports.js';
import { Compression, MessageType as T, ResumeStatus, TransferDirection, UploadOption } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/codec.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import type { ChunkAck, ChunkNack, ErrorMessage, ResumeResponse, UploadAccept, UploadReject, UploadVerify } from '../../protocol/messages/types.js';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import { resumeFailure, resumeStatusName, type ResumeFailurePolicy } from './resume.js';
import { modeOf } from '../server/download.js';
import type { ClientTransferContext, TransferResult } from './ports.js';

const fstatAsync = promisify(fstat);

export interface UploadSpec {
  transferId: string;
  localPath: string;
  remoteName: string;
  fd: number;
  size: number;
  modifiedMs: number;
  chunkSize: number;
  compression: number;
  overwrite: boolean;
  preserveTimestamp: boolean;
  /** After a reconnection the server cannot resume: start again, or fail. */
  onResumeFailure: ResumeFailurePolicy;
  /** Continue an upload an earlier client process began (its record in the state folder). */
  resumeFrom?: { chunkSize: number; window: number; compression: number };
  /** Durable client state: the accepted upload, and its end. */
  persist?: {
    accepted(a: { chunkSize: number; window: number; compression: number }): void;
    settled(error: FtsError | undefined): void;
  };
  /** Whether a lost connection will be re-established (then a stalled one is dropped, not failed). */
  canReconnect: () => boolean;
  /** Closes `fd`; called once nothing uses it any more. */
  close: () => Promise<void>;
}

export type ClientUploadMessage =
  | { kind: 'frame'; m: UploadAccept | UploadReject | UploadVerify | ChunkAck | ChunkNack | ErrorMessage }
  | ChunkRead
  | { kind: 'allAcked' }
  | { kind: 'hashed'; sha256?: string; error?: FtsError; from: ChunkSender }
  | { kind: 'requestTimeout' }
  | { kind: 'cancel'; reason: FtsError }
  | { kind: 'connectionLost'; error: FtsError; willReconnect?: boolean }
  | { kind: 'reconnected' }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'frame'; m: ResumeResponse };

export class ClientUploadActor extends Actor<ClientUploadMessage> {
  readonly transferId: string;
  readonly result: Promise<TransferResult>;
  private readonly ctx: ClientTransferContext;
  private readonly spec: UploadSpec;
  private resolve!: (r: TransferResult) => void;
  private reject!: (e: FtsError) => void;
  private sender: ChunkSender | undefined;
  private sha256: string | undefined;
  private allAcked = false;
  private completeSent = false;
  /** UPLOAD_COMPLETE went out on some connection: the server may have stored the file before it was lost. */
  private completeEverSent = false;
  private timer: TimerHandle | undefined;
  private readonly startedMs: number;
  /** UPLOAD_ACCEPT's chunk size and window, kept for a resume. */
  private accepted: { chunkSize: number; window: number; compression: number } | undefined;
  /** Chunks the server acknowledged: durable there, never sent again after a resume. */
  private acked: ChunkBitmap | undefined;
  private suspended = false;
  private paused = false;
  private retransmitted = 0;
  private bytesOnWire = 0;
  /** The digest was asked of the current sender (see askDigest). */
  private digestAsked = false;

  constructor(ctx: ClientTransferContext, spec: UploadSpec) {
    super(`client upload ${spec.transferId}`);
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
    const earlier = s.resumeFrom;
    if (earlier) {
      // Once: if the server cannot resume it, the upload starts anew.
      s.resumeFrom = undefined;
      this.accepted = earlier;
      this.acked = new ChunkBitmap(Math.ceil(s.size / earlier.chunkSize));
      this.suspended = true;
      void this.onReconnected();
      return;
    }
    let options = UploadOption.VERIFY_CHECKSUM;
    if (s.overwrite) options |= UploadOption.OVERWRITE;
    if (s.preserveTimestamp) options |= UploadOption.PRESERVE_TIMESTAMP;
    this.ctx.sink.send([
      encodeControl({
        type: T.UPLOAD_REQUEST,
        transferId: s.transferId,
        filename: s.remoteName,
        fileSize: s.size,
        sha256: Buffer.alloc(32),
        chunkSize: s.chunkSize,
        chunkCount: Math.ceil(s.size / s.chunkSize),
        compression: s.compression,
        options,
        modifiedMs: Math.floor(s.modifiedMs),
      }),
    ]);
    this.timer = this.ctx.clock.setTimeout(() => this.tell({ kind: 'requestTimeout' }), this.ctx.requestTimeoutMs);
  }

  protected receive(msg: ClientUploadMessage): void | Promise<void> {
    switch (msg.kind) {
      case 'chunkRead':
        return this.sender?.sendRead(msg);
      case 'allAcked':
        this.allAcked = true;
        this.askDigest();
        return this.maybeComplete();
      case 'hashed':
        if (msg.sha256 !== undefined) {
          this.sha256 = msg.sha256;
          return this.maybeComplete();
        }
        // A sender stopped by a lost connection fails its digest: its successor is asked instead.
        if (msg.from !== this.sender) return;
        return this.finish(msg.error ?? new FtsError(ErrorCode.FILE_READ_ERROR, 'no SHA-256 from the source', { transferId: this.transferId }));
      case 'requestTimeout':
        if (!this.sender) return this.finish(new FtsError(ErrorCode.TRANSFER_TIMEOUT, `no answer to UPLOAD_REQUEST within ${this.ctx.requestTimeoutMs} ms`, { transferId: this.transferId }));
        return;
      case 'cancel':
        this.ctx.sink.send([encodeControl({ type: T.TRANSFER_CANCEL, transferId: this.transferId, reason: msg.reason.code })]);
        return this.finish(msg.reason);
      case 'connectionLost':
        if (!msg.willReconnect) return this.finish(msg.error);
        return this.suspend();
      case 'reconnected':
        return this.onReconnected();
      case 'pause':
        // §4: an upload's client simply stops sending.
        this.paused = true;
        return this.sender?.pause();
      case 'resume':
        this.paused = false;
        return this.sender?.resume();
      case 'frame':
        if (msg.m.type === T.RESUME_RESPONSE) return this.onResumeResponse(msg.m);
        return this.onFrame(msg.m);
      default:
        return unreachable(msg);
    }
  }

  private onFrame(m: UploadAccept | UploadReject | UploadVerify | ChunkAck | ChunkNack | ErrorMessage): void | Promise<void> {
    switch (m.type) {
      case T.UPLOAD_ACCEPT: {
        this.timer?.cancel();
        if (this.sender) return;
        this.accepted = { chunkSize: m.chunkSize, window: Math.max(1, m.window), compression: m.compression };
        this.acked = new ChunkBitmap(Math.ceil(this.spec.size / m.chunkSize));
        this.spec.persist?.accepted(this.accepted);
        this.startSending(undefined);
        return;
      }
      case T.UPLOAD_REJECT:
        this.timer?.cancel();
        return this.finish(new FtsError(m.errorCode, m.message, { transferId: this.transferId, available: m.available, requested: m.requested }));
      case T.CHUNK_ACK:
        if (this.acked) for (let i = m.chunkIndex; i < m.chunkIndex + m.count && i < this.acked.size; i++) this.acked.set(i);
        return this.sender?.ack(m.chunkIndex, m.count);
      case T.CHUNK_NACK:
        return this.sender?.nack(m.chunkIndices, m.errorCode);
      case T.UPLOAD_VERIFY: {
        this.timer?.cancel();
        if (!m.verified) return this.finish(new FtsError(m.errorCode || ErrorCode.FILE_HASH_MISMATCH, 'the server could not verify the upload', { transferId: this.transferId }));
        const s = this.sender;
        return this.finish(undefined, {
          transferId: this.transferId,
          direction: 'upload',
          remoteName: m.storedName,
          localPath: this.spec.localPath,
          bytes: this.spec.size,
          bytesOnWire: this.bytesOnWire + (s?.bytesOnWire ?? 0),
          sha256: this.sha256 ?? m.sha256.toString('hex'),
          verified: true,
          durationMs: this.ctx.clock.now() - this.startedMs,
          retransmittedChunks: this.retransmitted + (s?.retransmitted ?? 0),
        });
      }
      case T.ERROR:
        return this.finish(new FtsError(m.errorCode, m.message, { transferId: this.transferId }));
      default:
        return unreachable(m);
    }
  }

  private startSending(toSend: number[] | undefined): void {
    const a = this.accepted!;
    this.digestAsked = false;
    this.sender = new ChunkSender({
      transferId: this.transferId,
      fd: this.spec.fd,
      fileSize: this.spec.size,
      chunkSize: a.chunkSize,
      window: a.window,
      compression: modeOf(a.compression === Compression.NONE ? Compression.NONE : this.spec.compression),
      ...(toSend ? { toSend } : {}),
      sink: this.ctx.sink,
      workers: this.ctx.workers,
      clock: this.ctx.clock,
      hashed: true,
      deliver: (read) => this.tell(read),
      onProgress: () => this.progress(),
      onAllAcked: () => this.tell({ kind: 'allAcked' }),
      onFailed: (error) => {
        // No ACK for the whole timeout: the connection, not the transfer, is at fault.
        if (error.code === ErrorCode.CHUNK_TIMEOUT && this.spec.canReconnect()) this.ctx.stalled(error);
        else this.cancelWith(error);
      },
    });
    if (this.paused) this.sender.pause();
    this.sender.start();
  }

  /** The connection is gone but will be re-established: stop sending, keep what is acknowledged. */
  private async suspend(): Promise<void> {
    this.timer?.cancel();
    this.suspended = true;
    const sender = this.sender;
    if (sender) {
      this.bytesOnWire += sender.bytesOnWire;
      this.retransmitted += sender.retransmitted;
      sender.stop();
      this.sender = undefined;
      this.digestAsked = false;
      await sender.idle();
    }
  }

  /** A new connection: resume from the acknowledged chunks (§4 Resume), or ask again. */
  private async onReconnected(): Promise<void> {
    if (!this.suspended) return;
    // §8.9: the client detects a changed source itself, by size and modification time.
    try {
      const st = await fstatAsync(this.spec.fd);
      if (st.size !== this.spec.size || st.mtimeMs !== this.spec.modifiedMs) {
        return this.finish(new FtsError(ErrorCode.RESUME_FILE_CHANGED, `${this.spec.localPath} changed while the upload was interrupted`, { transferId: this.transferId }));
      }
    } catch (err) {
      return this.finish(new FtsError(ErrorCode.FILE_READ_ERROR, `${this.spec.localPath}: ${(err as Error).message}`, { transferId: this.transferId, cause: err }));
    }
    this.suspended = false;
    this.allAcked = false;
    this.completeEverSent ||= this.completeSent;
    this.completeSent = false;
    if (!this.accepted || !this.acked) return this.start();
    this.ctx.sink.send([
      encodeControl({
        type: T.RESUME_REQUEST,
        transferId: this.transferId,
        direction: TransferDirection.UPLOAD,
        filename: this.spec.remoteName,
        sha256: this.sha256 ? Buffer.from(this.sha256, 'hex') : Buffer.alloc(32),
        totalChunks: this.acked.size,
        held: this.acked.bytes,
      }),
    ]);
    this.timer = this.ctx.clock.setTimeout(() => this.tell({ kind: 'requestTimeout' }), this.ctx.requestTimeoutMs);
  }

  private async onResumeResponse(m: ResumeResponse): Promise<void> {
    this.timer?.cancel();
    if (this.sender || !this.acked) return;
    this.ctx.resumed({ transferId: this.transferId, direction: 'upload', status: resumeStatusName(m.status), chunksKept: m.receivedCount, totalChunks: m.totalChunks });
    if (m.status === ResumeStatus.RESUMABLE) {
      const missing = new ChunkBitmap(this.acked.size, m.missing);
      // What the server holds counts as acknowledged, seen or not before the cut.
      for (let i = 0; i < this.acked.size; i++) if (!missing.has(i)) this.acked.set(i);
      this.startSending([...missing.indices()]);
      return;
    }
    if (m.status === ResumeStatus.NOT_FOUND && this.completeEverSent && this.sha256 !== undefined) {
      // The connection was lost after UPLOAD_COMPLETE: the server may have
      // stored the file and forgotten the transfer, its UPLOAD_VERIFY lost on
      // the way. The same name, size and SHA-256 there is this upload, done:
      // sent again, it would be refused as existing (or stored twice).
      const stored = await this.ctx.storedFile(this.spec.remoteName).catch(() => undefined);
      if (stored && stored.size === this.spec.size && stored.sha256 === this.sha256) {
        return this.finish(undefined, {
          transferId: this.transferId,
          direction: 'upload',
          remoteName: stored.name,
          localPath: this.spec.localPath,
          bytes: this.spec.size,
          bytesOnWire: this.bytesOnWire,
          sha256: this.sha256,
          verified: true,
          durationMs: this.ctx.clock.now() - this.startedMs,
          retransmittedChunks: this.retransmitted,
        });
      }
    }
    const failure = resumeFailure(m.status, this.transferId);
    if (this.spec.onResumeFailure === 'fail') return this.finish(failure);
    // Start again from scratch under the same transfer id.
    this.accepted = undefined;
    this.acked = undefined;
    this.start();
  }

  /** Every chunk is acknowledged: the SHA-256 for UPLOAD_COMPLETE, from the sender's source. */
  private askDigest(): void {
    const sender = this.sender;
    if (this.sha256 !== undefined || this.digestAsked || !sender) return;
    this.digestAsked = true;
    sender.digest().then(
      (sha256) => this.tell({ kind: 'hashed', sha256, from: sender }),
      (error: unknown) => this.tell({ kind: 'hashed', error: error instanceof FtsError ? error : new FtsError(ErrorCode.FILE_READ_ERROR, String(error)), from: sender }),
    );
  }

  private maybeComplete(): void {
    if (!this.allAcked || this.sha256 === undefined || this.completeSent) return;
    this.completeSent = true;
    const s = this.sender!;
    this.ctx.sink.send([
      encodeControl({
        type: T.UPLOAD_COMPLETE,
        transferId: this.transferId,
        totalChunks: s.totalChunks,
        bytesSent: this.spec.size,
        bytesOnWire: this.bytesOnWire + s.bytesOnWire,
        sha256: Buffer.from(this.sha256, 'hex'),
      }),
    ]);
    this.timer = this.ctx.clock.setTimeout(
      () => this.tell({ kind: 'connectionLost', error: new FtsError(ErrorCode.TRANSFER_TIMEOUT, 'no UPLOAD_VERIFY in time', { transferId: this.transferId }) }),
      Math.max(this.ctx.requestTimeoutMs, 60_000),
    );
  }

  private progress(): void {
    const acked = this.acked;
    if (!acked) return;
    const chunks = acked.count();
    const chunkSize = this.accepted!.chunkSize;
    // Every acknowledged chunk is full but the last one of the file.
    const shortBy = acked.has(acked.size - 1) ? acked.size * chunkSize - this.spec.size : 0;
    const bytes = chunks * chunkSize - shortBy;
    const elapsed = Math.max(1, this.ctx.clock.now() - this.startedMs);
    this.ctx.progress({ transferId: this.transferId, direction: 'upload', bytes, total: this.spec.size, chunks, totalChunks: acked.size, rate: (bytes * 1000) / elapsed });
  }

  /** A local failure of the pipeline: tell the server, then fail. */
  private cancelWith(error: FtsError): void {
    this.tell({ kind: 'cancel', reason: error });
  }

  private async finish(error: FtsError | undefined, result?: TransferResult): Promise<void> {
    this.timer?.cancel();
    this.sender?.stop();
    this.spec.persist?.settled(error);
    if (error) this.reject(error);
    else this.resolve(result!);
    await this.stop(error ?? 'done');
  }

  /** Chunk buffers in messages that will never be handled go back to the pool. */
  protected override dropped(msg: ClientUploadMessage): void {
    this.sender?.stop();
    if (msg.kind === 'chunkRead') this.sender?.sendRead(msg);
  }

  protected override async onStop(): Promise<void> {
    this.timer?.cancel();
    this.sender?.stop();
    await this.sender?.idle();
    await this.spec.close();
    this.reject(new FtsError(ErrorCode.TRANSFER_CANCELLED, 'transfer stopped', { transferId: this.transferId }));
  }
}

function unreachable(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
