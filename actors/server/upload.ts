/**
 * One upload on the server side (PROTOCOL.md §4 Upload): the request checks
 * in the spec's order, the temporary file, the receiving pipeline, and the
 * verify-then-rename at UPLOAD_COMPLETE. A file that is not verified is never
 * visible under its name.
 */
import { Actor, type Supervisor } from '../actor.js';
import { ChunkReceiver, type ChunkSynced, type ChunkWritten } from '../chunk-receiver.js';
import type { FrameSink } from '../ports.js';
import { Capability, Compression, Defaults, MessageType as T, ResumeStatus, UploadOption } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/codec.js';
import { ErrorCode, FtsError, isFtsError } from '../../protocol/errors.js';
import { filenameProblem } from '../../protocol/filename.js';
import type { ChunkData, ResumeRequest, TransferCancel, UploadComplete, UploadRequest } from '../../protocol/messages/types.js';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import type { ParkedUpload, ServerContext, UploadSlot } from './ports.js';
import { decide } from './decide.js';

/** The reason a connection gives its transfers when it closes: uploads park for a resume. */
export const CONNECTION_CLOSED = 'connection closed';

export type ServerUploadMessage =
  | { kind: 'request'; m: UploadRequest }
  | { kind: 'resume'; m: ResumeRequest; parked: ParkedUpload }
  | { kind: 'frame'; m: ChunkData | UploadComplete | TransferCancel }
  | ChunkWritten
  | ChunkSynced
  | { kind: 'connectionLost' };

export interface ConnectionInfo {
  clientId: string;
  capabilities: number;
  sink: FrameSink;
}

const ZERO_HASH = Buffer.alloc(32);

export class ServerUploadActor extends Actor<ServerUploadMessage> {
  readonly transferId: string;
  private readonly ctx: ServerContext;
  private readonly conn: ConnectionInfo;
  private request: UploadRequest | undefined;
  private slot: UploadSlot | undefined;
  private receiver: ChunkReceiver | undefined;
  private startedMs = 0;
  private finished = false;
  private chunkSize = 0;
  private compression: number = Compression.NONE;
  /** Set once UPLOAD_COMPLETE is being handled: the check, the commit and the UPLOAD_VERIFY. */
  private completing: Promise<void> | undefined;

  constructor(ctx: ServerContext, conn: ConnectionInfo, transferId: string, supervisor: Supervisor) {
    super(`upload ${transferId}`, supervisor);
    this.ctx = ctx;
    this.conn = conn;
    this.transferId = transferId;
  }

  protected async receive(msg: ServerUploadMessage): Promise<void> {
    switch (msg.kind) {
      case 'request':
        return this.onRequest(msg.m);
      case 'resume':
        return this.onResume(msg.m, msg.parked);
      case 'chunkWritten':
        return this.receiver?.written(msg);
      case 'chunkSynced':
        return this.receiver?.synced(msg);
      case 'connectionLost':
        return void this.stop(CONNECTION_CLOSED);
      case 'frame':
        switch (msg.m.type) {
          case T.CHUNK_DATA:
            if (this.receiver) this.receiver.chunk(msg.m);
            else this.ctx.workers.releaseBuffer(msg.m.data);
            return;
          case T.UPLOAD_COMPLETE:
            return (this.completing = this.onComplete(msg.m));
          case T.TRANSFER_CANCEL:
            return void this.stop('cancelled by client');
          default:
            return unreachable(msg.m);
        }
      default:
        return unreachable(msg);
    }
  }

  private async onRequest(m: UploadRequest): Promise<void> {
    this.request = m;
    const { limits, storage } = this.ctx;
    const requested = m.fileSize;
    const reject = (code: number, message: string, available = 0) => {
      this.conn.sink.send([encodeControl({ type: T.UPLOAD_REJECT, transferId: m.transferId, errorCode: code, message, available, requested })]);
      void this.stop(new FtsError(code, message));
    };
    // The order of §4: name, size, existing, busy, quota, application.
    const nameProblem = filenameProblem(m.filename);
    if (nameProblem) return reject(ErrorCode.INVALID_FILENAME, `invalid filename: ${nameProblem}`);
    if (m.fileSize > limits.maxFileSize) return reject(ErrorCode.MAX_FILE_SIZE_EXCEEDED, `file size ${m.fileSize} exceeds the limit of ${limits.maxFileSize} bytes`);
    let chunkSize = m.chunkSize === 0 ? limits.defaultChunkSize : m.chunkSize;
    if (chunkSize < Defaults.MIN_CHUNK_SIZE) return reject(ErrorCode.CONFIG_CHUNK_SIZE_ERROR, `chunk size ${chunkSize} below ${Defaults.MIN_CHUNK_SIZE}`);
    chunkSize = Math.min(chunkSize, limits.maxChunkSize);
    const overwrite = (m.options & UploadOption.OVERWRITE) !== 0;
    if (!overwrite && (await storage.exists(m.filename))) return reject(ErrorCode.FILE_ALREADY_EXISTS, `"${m.filename}" already exists`);
    let slot: UploadSlot;
    try {
      slot = await storage.reserveUpload({ name: m.filename, size: m.fileSize, transferId: m.transferId, overwrite });
    } catch (err) {
      if (isFtsError(err)) return reject(err.code, err.message, err.available ?? 0);
      throw err;
    }
    const decision = await decide(
      () => this.ctx.onUploadRequest({ clientId: this.conn.clientId, transferId: m.transferId, filename: m.filename, fileSize: m.fileSize, chunkSize }),
      'upload rejected by the server',
      'upload',
    );
    if (decision !== true) {
      await slot.discard();
      return reject(ErrorCode.UPLOAD_REJECTED, decision);
    }
    if (this.isStopped) return void (await slot.discard());
    const lz4 = (this.conn.capabilities & Capability.LZ4) !== 0;
    this.startReceiving(m, slot, chunkSize, lz4 ? m.compression : Compression.NONE, undefined);
    // No checkpoint yet: one written now could name no chunk (none is synced),
    // and most small uploads end before their first. A server killed before
    // then answers NOT_FOUND, and the client sends the file anew: the same
    // bytes a resume from nothing would cost. A lost connection checkpoints
    // when the upload is parked (onStop).
    this.conn.sink.send([
      encodeControl({ type: T.UPLOAD_ACCEPT, transferId: m.transferId, compression: this.compression, chunkSize, window: limits.window }),
    ]);
  }

  /** A parked upload continues on this connection: only the missing chunks are asked for. */
  private onResume(r: ResumeRequest, parked: ParkedUpload): void {
    const m = parked.request;
    const received = new ChunkBitmap(Math.ceil(m.fileSize / parked.chunkSize), parked.received);
    this.startReceiving(m, parked.slot, parked.chunkSize, parked.compression, received);
    const missing = received.complement();
    this.conn.sink.send([
      encodeControl({ type: T.RESUME_RESPONSE, transferId: r.transferId, status: ResumeStatus.RESUMABLE, totalChunks: received.size, receivedCount: received.count(), missing: missing.bytes }),
    ]);
  }

  /**
   * Settles once the upload's UPLOAD_COMPLETE has been answered (verified and
   * stored, or refused); undefined before it arrived. A server's stop and a
   * RESUME_REQUEST for this transfer wait for it (ServerConnectionActor's
   * shutdown and onResume).
   */
  get answering(): Promise<void> | undefined {
    return this.completing?.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Records the durable chunks in the slot's checkpoint; a failed write only costs resumability. */
  private async checkpoint(durable: ChunkBitmap): Promise<void> {
    const m = this.request;
    if (!m || !this.slot) return;
    const now = this.ctx.clock.now();
    try {
      await this.slot.checkpoint({
        version: 1,
        transferId: m.transferId,
        filename: m.filename,
        fileSize: m.fileSize,
        sha256: m.sha256.toString('hex'),
        chunkSize: this.chunkSize,
        compression: this.compression,
        options: m.options,
        modifiedMs: m.modifiedMs,
        received: durable.bytes.toString('base64'),
        createdMs: this.startedMs || now,
        savedMs: now,
      });
    } catch (err) {
      this.ctx.events.transferFailed({ clientId: this.conn.clientId, transferId: this.transferId, error: new FtsError(ErrorCode.STORAGE_ERROR, `checkpoint not written: ${(err as Error).message}`, { cause: err }) });
    }
  }

  private startReceiving(m: UploadRequest, slot: UploadSlot, chunkSize: number, compression: number, received: ChunkBitmap | undefined): void {
    this.ctx.activeUploads.set(this.transferId, this);
    this.request = m;
    this.slot = slot;
    this.chunkSize = chunkSize;
    this.compression = compression;
    this.startedMs = this.ctx.clock.now();
    this.receiver = new ChunkReceiver({
      transferId: m.transferId,
      fd: slot.fd,
      fileSize: m.fileSize,
      chunkSize,
      ...(received ? { received } : {}),
      sink: this.conn.sink,
      workers: this.ctx.workers,
      budget: this.ctx.receiveBudget,
      ...(this.ctx.limits.directIo ? { path: slot.tempPath } : {}),
      deliver: (event) => this.tell(event),
      onDurable: (durable) => void this.checkpoint(durable),
      syncEveryBytes: Math.min(this.ctx.limits.syncEveryBytes, this.ctx.limits.checkpointEveryBytes),
      durableEveryBytes: this.ctx.limits.checkpointEveryBytes,
      onProgress: (bytes) => this.ctx.events.progress({ clientId: this.conn.clientId, transferId: m.transferId, direction: 'upload', bytes, total: m.fileSize }),
      onFailed: (error) => this.fail(error),
    });
  }

  private async onComplete(c: UploadComplete): Promise<void> {
    const m = this.request;
    const receiver = this.receiver;
    const slot = this.slot;
    if (!m || !receiver || !slot) throw new FtsError(ErrorCode.TRANSFER_NOT_FOUND, 'UPLOAD_COMPLETE before UPLOAD_ACCEPT', { transferId: this.transferId });
    const verify = (verified: boolean, code: number, sha: Buffer, storedName: string) =>
      this.conn.sink.send([encodeControl({ type: T.UPLOAD_VERIFY, transferId: m.transferId, verified, errorCode: code, sha256: sha, storedName })]);
    if (!receiver.isComplete) {
      verify(false, ErrorCode.CHUNK_SEQUENCE_ERROR, ZERO_HASH, '');
      throw new FtsError(ErrorCode.CHUNK_SEQUENCE_ERROR, `UPLOAD_COMPLETE with ${receiver.chunksReceived} of ${receiver.totalChunks} chunks`, { transferId: this.transferId });
    }
    // §8.8: the request's hash, or the completion's; two different ones, or none, is -723.
    const fromRequest = !m.sha256.equals(ZERO_HASH);
    const fromComplete = !c.sha256.equals(ZERO_HASH);
    const actual = await receiver.finishHash();
    await receiver.idle();
    let expected: string | undefined;
    if (fromRequest && fromComplete && !m.sha256.equals(c.sha256)) expected = undefined;
    else if (fromRequest) expected = m.sha256.toString('hex');
    else if (fromComplete) expected = c.sha256.toString('hex');
    const actualBytes = Buffer.from(actual, 'hex');
    if (expected !== actual) {
      this.finished = true;
      await slot.discard();
      verify(false, ErrorCode.FILE_HASH_MISMATCH, actualBytes, '');
      this.ctx.events.transferFailed({ clientId: this.conn.clientId, transferId: this.transferId, error: new FtsError(ErrorCode.FILE_HASH_MISMATCH, 'SHA-256 mismatch', { transferId: this.transferId }) });
      return void this.stop('hash mismatch');
    }
    const preserve = (m.options & UploadOption.PRESERVE_TIMESTAMP) !== 0 && m.modifiedMs > 0;
    const file = await slot.commit(actual, preserve ? m.modifiedMs : undefined);
    this.finished = true;
    verify(true, 0, actualBytes, file.name);
    this.ctx.events.uploadComplete({ clientId: this.conn.clientId, transferId: this.transferId, file, durationMs: this.ctx.clock.now() - this.startedMs });
    await this.stop('complete');
  }

  /** Chunk buffers in messages that will never be handled go back to the pool. */
  protected override dropped(msg: ServerUploadMessage): void {
    // A completion under way keeps its sink (see onStop).
    if (!this.completing) this.receiver?.stop();
    if (msg.kind === 'frame' && msg.m.type === T.CHUNK_DATA) this.ctx.workers.releaseBuffer(msg.m.data);
    else if (msg.kind === 'chunkWritten') this.receiver?.written(msg);
  }

  protected override async onStop(reason: unknown): Promise<void> {
    if (this.completing && !this.finished) {
      // Its file may be renamed into place at this moment, so it is never
      // parked for a resume, and its sink is not aborted (a hash still
      // running would fail, losing a file the server could store). Once the
      // completion has ended, a failed one is stopped, and what the commit
      // did not settle is discarded when nothing writes to the file any more
      // (a closed descriptor's number is soon reused). Until then it stays
      // among the active uploads, so a RESUME_REQUEST for it waits for the
      // outcome. Not awaited: the completion itself ends by stopping this actor.
      const receiver = this.receiver;
      void this.completing
        .catch(() => undefined)
        .then(() => {
          if (!this.finished) receiver?.stop();
          return receiver?.idle();
        })
        .then(() => (this.finished ? undefined : this.slot?.discard()))
        .finally(() => {
          if (this.ctx.activeUploads.get(this.transferId) === this) this.ctx.activeUploads.delete(this.transferId);
        });
      return;
    }
    const willPark = reason === CONNECTION_CLOSED && !this.finished && !!this.slot && !!this.receiver && !!this.request;
    // Marked before anything is awaited, so a RESUME_REQUEST that arrives
    // meanwhile waits for the parking instead of finding nothing (and the
    // name no longer blocks a new upload of it, §8.11).
    const parked = willPark ? this.ctx.parked.parking(this.transferId) : undefined;
    if (willPark) this.slot!.detachName();
    if (this.ctx.activeUploads.get(this.transferId) === this) this.ctx.activeUploads.delete(this.transferId);
    this.receiver?.stop();
    await this.receiver?.idle();
    if (this.finished || !this.slot) return;
    if (parked && this.receiver && this.request) {
      // The client may come back: make what was written durable, checkpoint
      // it (so even a server restart can resume it), and keep it for a RESUME_REQUEST.
      try {
        await this.ctx.workers.syncFile(this.slot.fd);
        await this.checkpoint(this.receiver.received);
      } catch {
        // Unsynced: the checkpoint already on disk names less, which is still true.
      }
      this.ctx.parked.park(this.transferId, {
        request: this.request,
        slot: this.slot,
        chunkSize: this.chunkSize,
        compression: this.compression,
        received: Buffer.from(this.receiver.received.bytes),
      });
      parked();
      return;
    }
    await this.slot.discard();
  }
}

function unreachable(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
