/**
 * One download on the server side (PROTOCOL.md §4 Download): the request
 * checks, DOWNLOAD_ACCEPT with the stored hash (never rehashed per request),
 * the sending pipeline, DOWNLOAD_COMPLETE after the last ACK, and the
 * client's DOWNLOAD_VERIFY.
 */
import { Actor, type Supervisor } from '../actor.js';
import { ChunkSender, type ChunkRead, type CompressionMode } from '../chunk-sender.js';
import { Capability, Compression, Defaults, MessageType as T } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/codec.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { filenameProblem } from '../../protocol/filename.js';
import type { ChunkAck, ChunkNack, DownloadRequest, DownloadVerify, TransferCancel, TransferPauseResume } from '../../protocol/messages/types.js';
import type { ReadableFile, ServerContext } from './ports.js';
import type { ConnectionInfo } from './upload.js';

export type ServerDownloadMessage =
  | { kind: 'request'; m: DownloadRequest }
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
    let decision: boolean | string;
    try {
      decision = await this.ctx.onDownloadRequest({ clientId: this.conn.clientId, transferId: m.transferId, filename: m.filename, fileSize: file.size });
    } catch (err) {
      decision = `download hook failed: ${(err as Error).message}`;
    }
    if (decision !== true) {
      await file.close();
      return reject(ErrorCode.ACCESS_DENIED, typeof decision === 'string' ? decision : 'access denied');
    }
    const { limits } = this.ctx;
    let chunkSize = m.chunkSize === 0 ? limits.defaultChunkSize : m.chunkSize;
    if (chunkSize < Defaults.MIN_CHUNK_SIZE) {
      await file.close();
      return reject(ErrorCode.CONFIG_CHUNK_SIZE_ERROR, `chunk size ${chunkSize} below ${Defaults.MIN_CHUNK_SIZE}`);
    }
    chunkSize = Math.min(chunkSize, limits.maxChunkSize);
    if (this.isStopped) return void (await file.close());
    this.file = file;
    const lz4 = (this.conn.capabilities & Capability.LZ4) !== 0;
    const compression = lz4 ? m.compression : Compression.NONE;
    const window = m.window === 0 ? Defaults.WINDOW : m.window;
    this.startedMs = this.ctx.clock.now();
    this.sender = new ChunkSender({
      transferId: m.transferId,
      fd: file.fd,
      fileSize: file.size,
      chunkSize,
      window,
      compression: modeOf(compression),
      sink: this.conn.sink,
      workers: this.ctx.workers,
      clock: this.ctx.clock,
      deliver: (read) => this.tell(read),
      onProgress: (bytes) => this.ctx.events.progress({ clientId: this.conn.clientId, transferId: m.transferId, direction: 'download', bytes, total: file.size }),
      onAllAcked: () => this.tell({ kind: 'allAcked' }),
      onFailed: (error) => this.fail(error),
    });
    this.conn.sink.send([
      encodeControl({
        type: T.DOWNLOAD_ACCEPT,
        transferId: m.transferId,
        fileSize: file.size,
        sha256: Buffer.from(file.sha256, 'hex'),
        compression,
        chunkSize,
        totalChunks: this.sender.totalChunks,
        modifiedMs: Math.floor(file.modifiedMs),
      }),
    ]);
    this.sender.start();
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
