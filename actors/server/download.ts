/**
 * One download on the server side (PROTOCOL.md §4 Download): the request
 * checks, DOWNLOAD_ACCEPT with the stored hash (never rehashed per request),
 * the sending pipeline, DOWNLOAD_COMPLETE after the last ACK, and the
 * client's DOWNLOAD_VERIFY.
 */
import { Actor, type Supervisor } from '../actor.js';
import { ChunkSender, type ChunkRead, type CompressionMode } from '../chunk-sender.js';
import { Capability, Compression, Defaults, MessageType as T, ResumeStatus } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/codec.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { filenameProblem } from '../../protocol/filename.js';
import type { ChunkAck, ChunkNack, DownloadRequest, DownloadVerify, ResumeRequest, TransferCancel, TransferPauseResume } from '../../protocol/messages/types.js';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import type { ReadableFile, ServerContext } from './ports.js';
import { decide } from './decide.js';
import type { ConnectionInfo } from './upload.js';

export type ServerDownloadMessage =
  | { kind: 'request'; m: DownloadRequest }
  | { kind: 'resume'; m: ResumeRequest }
  | { kind: 'frame'; m: ChunkAck | ChunkNack | DownloadVerify | TransferCancel | TransferPauseResume }
  | ChunkRead
  | { kind: 'allAcked' }
  | { kind: 'connectionLost' };

export class ServerDownloadActor extends Actor<ServerDownloadMessage> {
  readonly transferId: string;
  private readonly ctx: ServerContext;
  private readonly conn: ConnectionInfo;
  private file: ReadableFile | undefined;
  private sender: ChunkSender | undefined;
  private startedMs = 0;

  constructor(ctx: ServerContext, conn: ConnectionInfo, transferId: string, supervisor: Supervisor) {
    super(`download ${transferId}`, supervisor);
    this.ctx = ctx;
    this.conn = conn;
    this.transferId = transferId;
  }

  protected async receive(msg: ServerDownloadMessage): Promise<void> {
    switch (msg.kind) {
      case 'request':
        return this.onRequest(msg.m);
      case 'resume':
        return this.onResume(msg.m);
      case 'chunkRead':
        return this.sender?.sendRead(msg);
      case 'allAcked':
        return this.onAllAcked();
      case 'connectionLost':
        return void this.stop('connection lost');
      case 'frame': {
        const m = msg.m;
        switch (m.type) {
          case T.CHUNK_ACK:
            return this.sender?.ack(m.chunkIndex, m.count);
          case T.CHUNK_NACK:
            return this.sender?.nack(m.chunkIndices, m.errorCode);
          case T.TRANSFER_PAUSE:
            return this.sender?.pause();
          case T.TRANSFER_RESUME:
            return this.sender?.resume();
          case T.TRANSFER_CANCEL:
            return void this.stop('cancelled by client');
          case T.DOWNLOAD_VERIFY:
            return this.onVerify(m);
          default:
            return unreachable(m);
        }
      }
      default:
        return unreachable(msg);
    }
  }

  private async onRequest(m: DownloadRequest): Promise<void> {
    const reject = (code: number, message: string) => {
      this.conn.sink.send([encodeControl({ type: T.DOWNLOAD_REJECT, transferId: m.transferId, errorCode: code, message })]);
      void this.stop(new FtsError(code, message));
    };
    const nameProblem = filenameProblem(m.filename);
    if (nameProblem) return reject(ErrorCode.INVALID_FILENAME, `invalid filename: ${nameProblem}`);
    const file = await this.ctx.storage.openForRead(m.filename);
    if (!file) return reject(ErrorCode.FILE_NOT_FOUND_ON_SERVER, `"${m.filename}" does not exist`);
    const decision = await this.askApplication(m.transferId, m.filename, file.size);
    if (decision !== true) {
      await file.close();
      return reject(ErrorCode.ACCESS_DENIED, decision);
    }
    const { limits } = this.ctx;
    let chunkSize = m.chunkSize === 0 ? limits.defaultChunkSize : m.chunkSize;
    if (chunkSize < Defaults.MIN_CHUNK_SIZE) {
      await file.close();
      return reject(ErrorCode.CONFIG_CHUNK_SIZE_ERROR, `chunk size ${chunkSize} below ${Defaults.MIN_CHUNK_SIZE}`);
    }
    chunkSize = Math.min(chunkSize, limits.maxChunkSize);
    if (this.isStopped) return void (await file.close());
    const lz4 = (this.conn.capabilities & Capability.LZ4) !== 0;
    const compression = lz4 ? m.compression : Compression.NONE;
    const window = m.window === 0 ? Defaults.WINDOW : m.window;
    this.startSending(file, chunkSize, window, compression, undefined);
    this.conn.sink.send([
      encodeControl({
        type: T.DOWNLOAD_ACCEPT,
        transferId: m.transferId,
        fileSize: file.size,
        sha256: Buffer.from(file.sha256, 'hex'),
        compression,
        chunkSize,
        totalChunks: this.sender!.totalChunks,
        modifiedMs: Math.floor(file.modifiedMs),
      }),
    ]);
    this.sender!.start();
  }

  private startSending(file: ReadableFile, chunkSize: number, window: number, compression: number, toSend: number[] | undefined): void {
    this.file = file;
    this.startedMs = this.ctx.clock.now();
    this.sender = new ChunkSender({
      transferId: this.transferId,
      fd: file.fd,
      ...(file.directFd !== undefined ? { directFd: file.directFd } : {}),
      fileSize: file.size,
      chunkSize,
      window,
      compression: modeOf(compression),
      ...(toSend ? { toSend } : {}),
      sink: this.conn.sink,
      workers: this.ctx.workers,
      clock: this.ctx.clock,
      deliver: (read) => this.tell(read),
      onProgress: (bytes) => this.ctx.events.progress({ clientId: this.conn.clientId, transferId: this.transferId, direction: 'download', bytes, total: file.size }),
      onAllAcked: () => this.tell({ kind: 'allAcked' }),
      onFailed: (error) => this.fail(error),
    });
  }

  /**
   * A download the server no longer knows, restarted from its file (§8.10):
   * default chunk size, window 64, adaptive compression; NOT_FOUND when the
   * client's chunk count does not match that chunking, FILE_CHANGED when the
   * file's hash is not the one the download began with (§8.9).
   */
  private async onResume(m: ResumeRequest): Promise<void> {
    const answer = (status: number, missing: Buffer = Buffer.alloc(0), received = 0) =>
      this.conn.sink.send([encodeControl({ type: T.RESUME_RESPONSE, transferId: m.transferId, status, totalChunks: m.totalChunks, receivedCount: received, missing })]);
    const file = await this.ctx.storage.openForRead(m.filename);
    if (!file) {
      answer(ResumeStatus.NOT_FOUND);
      return void this.stop('resume: not found');
    }
    const refuse = async (status: number) => {
      await file.close();
      answer(status);
      await this.stop('resume refused');
    };
    if (!m.sha256.equals(Buffer.from(file.sha256, 'hex'))) return refuse(ResumeStatus.FILE_CHANGED);
    const chunkSize = this.ctx.limits.defaultChunkSize;
    const total = Math.ceil(file.size / chunkSize);
    if (total !== m.totalChunks) return refuse(ResumeStatus.NOT_FOUND);
    const decision = await this.askApplication(m.transferId, m.filename, file.size);
    if (decision !== true) {
      await file.close();
      this.conn.sink.send([encodeControl({ type: T.ERROR, transferId: m.transferId, errorCode: ErrorCode.ACCESS_DENIED, message: decision })]);
      return void this.stop('resume denied');
    }
    // Stopped meanwhile (the connection closed): onStop found no file to close.
    if (this.isStopped) return void (await file.close());
    const held = new ChunkBitmap(total, m.held);
    const missing = held.complement();
    const lz4 = (this.conn.capabilities & Capability.LZ4) !== 0;
    this.startSending(file, chunkSize, Defaults.WINDOW, lz4 ? Compression.ADAPTIVE : Compression.NONE, [...missing.indices()]);
    answer(ResumeStatus.RESUMABLE, missing.bytes, held.count());
    this.sender!.start();
  }

  /** The application's onDownloadRequest: true, or the reason it refuses (-747). */
  private askApplication(transferId: string, filename: string, fileSize: number): Promise<true | string> {
    return decide(() => this.ctx.onDownloadRequest({ clientId: this.conn.clientId, transferId, filename, fileSize }), 'access denied', 'download');
  }

  private onAllAcked(): void {
    const s = this.sender!;
    this.conn.sink.send([
      encodeControl({ type: T.DOWNLOAD_COMPLETE, transferId: this.transferId, totalChunks: s.totalChunks, bytesSent: this.file!.size, bytesOnWire: s.bytesOnWire }),
    ]);
  }

  private async onVerify(v: DownloadVerify): Promise<void> {
    const file = this.file;
    if (!file) throw new FtsError(ErrorCode.TRANSFER_NOT_FOUND, 'DOWNLOAD_VERIFY before DOWNLOAD_ACCEPT', { transferId: this.transferId });
    this.ctx.events.downloadComplete({
      clientId: this.conn.clientId,
      transferId: this.transferId,
      filename: file.name,
      bytes: v.bytesReceived,
      verified: v.verified,
      durationMs: this.ctx.clock.now() - this.startedMs,
    });
    await this.stop('verified');
  }

  /** Chunk buffers in messages that will never be handled go back to the pool. */
  protected override dropped(msg: ServerDownloadMessage): void {
    this.sender?.stop();
    if (msg.kind === 'chunkRead') this.sender?.sendRead(msg);
  }

  protected override async onStop(): Promise<void> {
    this.sender?.stop();
    await this.sender?.idle();
    await this.file?.close();
  }
}

export function modeOf(compression: number): CompressionMode {
  return compression === Compression.ALWAYS ? 'always' : compression === Compression.ADAPTIVE ? 'adaptive' : 'none';
}

function unreachable(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
