/**
 * One client connection on the server: the handshake (version, token,
 * capabilities), routing of frames to transfer actors by transfer id,
 * listing, heartbeats, idle close, and supervision of its transfers.
 *
 *   socket ─► decoder ─► mailbox ─► ServerConnectionActor ─┬─► ServerUploadActor   (per upload)
 *                                                          └─► ServerDownloadActor (per download)
 */
import { Actor, type Supervisor } from '../actor.js';
import type { FrameSink, TimerHandle } from '../ports.js';
import {
  Defaults,
  DisconnectReason,
  MESSAGE_SENDER,
  MessageType as T,
  PROTOCOL_VERSION,
  ResumeStatus,
  SortBy,
  TransferDirection,
  type MessageType,
} from '../../protocol/constants.js';
import { decodeMessage, encodeControl } from '../../protocol/codec.js';
import type { Frame } from '../../protocol/decoder.js';
import { ErrorCode, FtsError, isFtsError } from '../../protocol/errors.js';
import { filenameProblem } from '../../protocol/filename.js';
import type { Connect, ListRequest, Message, ResumeRequest } from '../../protocol/messages/types.js';
import { NIL_UUID, newUuid } from '../../protocol/uuid.js';
import { ServerDownloadActor } from './download.js';
import type { ServerContext } from './ports.js';
import { CONNECTION_CLOSED, ServerUploadActor, type ConnectionInfo } from './upload.js';

const ZERO_HASH = Buffer.alloc(32);
/** How long a RESUME_REQUEST waits for the upload it names to finish storing its file (normally milliseconds). */
const RESUME_WAIT_MS = 3_000;
/** How long a server's stop waits for uploads answering their UPLOAD_COMPLETE (two fsyncs and a rename, normally milliseconds). */
const SHUTDOWN_GRACE_MS = 5_000;

/** Waits for `p` (which never rejects), at most `ms` of real time: a stuck disk must not hold a stop or a resume for ever. */
async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export type ServerConnectionMessage =
  | { kind: 'frame'; frame: Frame }
  | { kind: 'decodeError'; error: FtsError }
  | { kind: 'socketClosed' }
  | { kind: 'shutdown' };

type TransferActor = ServerUploadActor | ServerDownloadActor;

export class ServerConnectionActor extends Actor<ServerConnectionMessage> implements Supervisor {
  private readonly ctx: ServerContext;
  private readonly sink: FrameSink;
  private readonly remoteAddress: string;
  private readonly transfers = new Map<string, TransferActor>();
  private state: 'handshake' | 'open' | 'closed' = 'handshake';
  private clientId = NIL_UUID;
  private sessionId = NIL_UUID;
  private capabilities = 0;
  private idleTimer: TimerHandle | undefined;
  private closeReason = 'connection lost';

  constructor(ctx: ServerContext, sink: FrameSink, remoteAddress: string, supervisor: Supervisor) {
    super(`connection ${remoteAddress}`, supervisor, { highWaterMark: 128 });
    this.ctx = ctx;
    this.sink = sink;
    this.remoteAddress = remoteAddress;
    // §8.17: a connection that sends no CONNECT within 10 s is closed.
    this.armIdle(ctx.limits.handshakeTimeoutMs);
  }

  /** Server shutdown: DISCONNECT(server_shutdown), close, stop; not queued behind the mailbox. */
  async shutdown(): Promise<void> {
    if (this.isStopped) return;
    // Uploads already answering their UPLOAD_COMPLETE (checking, storing)
    // finish first: told "shutting down" instead, a client would send again,
    // or fail, a file that was in fact stored.
    const answering = [...this.transfers.values()].flatMap((t) => (t instanceof ServerUploadActor && t.answering ? [t.answering] : []));
    if (answering.length > 0) {
      await waitAtMost(Promise.all(answering), SHUTDOWN_GRACE_MS);
      if (this.isStopped) return;
    }
    this.closeReason = 'server shutdown';
    if (this.state === 'open') this.sendControl({ type: T.DISCONNECT, reason: DisconnectReason.SERVER_SHUTDOWN, message: 'server shutting down' });
    this.sink.close();
    await this.stop('server shutdown');
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  protected receive(msg: ServerConnectionMessage): void | Promise<void> {
    switch (msg.kind) {
      case 'frame':
        return this.onFrame(msg.frame);
      case 'decodeError':
        return this.protocolFailure(msg.error.message);
      case 'socketClosed':
        return void this.stop(this.closeReason);
      case 'shutdown':
        return this.shutdown();
      default:
        return unreachable(msg);
    }
  }

  private onFrame(frame: Frame): void | Promise<void> {
    // §8.17: idleness is counted in complete frames.
    if (this.state === 'open') this.armIdle(this.ctx.limits.idleTimeoutMs);
    let m: Message;
    try {
      m = decodeMessage(frame.type, frame.payload);
    } catch (err) {
      if (frame.type === T.CHUNK_DATA) this.ctx.workers.releaseBuffer(frame.payload);
      return this.protocolFailure(isFtsError(err) ? err.message : String(err));
    }
    // §8.2: a type only the other side may send is a protocol error.
    if (MESSAGE_SENDER[m.type as MessageType] === 'server') return this.protocolFailure(`a client may not send message type 0x${m.type.toString(16)}`);
    if (this.state === 'handshake') {
      if (m.type !== T.CONNECT) return this.protocolFailure('expected CONNECT');
      return this.onConnect(m);
    }
    switch (m.type) {
      case T.CONNECT:
        return this.protocolFailure('CONNECT on an open connection');
      case T.HEARTBEAT:
        return this.sendControl({ type: T.HEARTBEAT_ACK, timestampUs: m.timestampUs, sequence: m.sequence });
      case T.DISCONNECT:
        // §8.18: after receiving DISCONNECT, the server closes the connection.
        this.closeReason = 'client initiated';
        this.sink.close();
        return void this.stop('client initiated');
      case T.UPLOAD_REQUEST:
      case T.DOWNLOAD_REQUEST:
        return this.startTransfer(m);
      case T.CHUNK_DATA: {
        const t = this.transfers.get(m.transferId);
        if (t instanceof ServerUploadActor) return void t.tell({ kind: 'frame', m });
        this.ctx.workers.releaseBuffer(m.data);
        return this.unknownTransfer(m.transferId);
      }
      case T.UPLOAD_COMPLETE: {
        const t = this.transfers.get(m.transferId);
        if (t instanceof ServerUploadActor) return void t.tell({ kind: 'frame', m });
        return this.unknownTransfer(m.transferId);
      }
      case T.CHUNK_ACK:
      case T.CHUNK_NACK:
      case T.DOWNLOAD_VERIFY:
      case T.TRANSFER_PAUSE:
      case T.TRANSFER_RESUME: {
        const t = this.transfers.get(m.transferId);
        if (t instanceof ServerDownloadActor) return void t.tell({ kind: 'frame', m });
        return this.unknownTransfer(m.transferId);
      }
      case T.TRANSFER_CANCEL: {
        // §8.15: TRANSFER_CANCEL has no reply, even for an unknown transfer.
        const t = this.transfers.get(m.transferId);
        if (t) t.tell({ kind: 'frame', m });
        return;
      }
      case T.LIST_REQUEST:
        return this.onList(m);
      case T.RESUME_REQUEST:
        return this.onResume(m);
      case T.ERROR: {
        const t = this.transfers.get(m.transferId);
        if (t) void t.stop(new FtsError(m.errorCode, m.message));
        return;
      }
      default:
        return this.protocolFailure(`unexpected message type 0x${m.type.toString(16)}`);
    }
  }

  private onConnect(m: Connect): void {
    const { limits } = this.ctx;
    const major = m.protocolVersion >>> 24;
    const minor = (m.protocolVersion >>> 16) & 0xff;
    const ourMajor = PROTOCOL_VERSION >>> 24;
    const ourMinor = (PROTOCOL_VERSION >>> 16) & 0xff;
    if (major !== ourMajor || (major === 0 && minor !== ourMinor)) {
      return this.refuse(ErrorCode.PROTOCOL_MISMATCH, `protocol ${versionString(m.protocolVersion)} not supported; this server speaks ${versionString(PROTOCOL_VERSION)}`);
    }
    // §8.19: a token sent to a server that requires none is ignored.
    if (limits.authToken !== undefined && m.authToken !== limits.authToken) {
      return this.refuse(ErrorCode.AUTHENTICATION_FAILED, m.authToken === undefined ? 'this server requires a token' : 'wrong token');
    }
    this.clientId = m.clientId;
    this.sessionId = newUuid();
    this.capabilities = m.capabilities & limits.capabilities;
    this.state = 'open';
    this.armIdle(limits.idleTimeoutMs);
    this.sendControl({
      type: T.CONNECT_ACK,
      protocolVersion: PROTOCOL_VERSION,
      capabilities: this.capabilities,
      sessionId: this.sessionId,
      maxChunkSize: limits.maxChunkSize,
      maxFileSize: limits.maxFileSize,
      serverName: limits.serverName,
    });
    this.ctx.events.clientConnected({ clientId: this.clientId, sessionId: this.sessionId, remoteAddress: this.remoteAddress });
  }

  private startTransfer(m: Extract<Message, { type: typeof T.UPLOAD_REQUEST | typeof T.DOWNLOAD_REQUEST }>): void {
    const upload = m.type === T.UPLOAD_REQUEST;
    const refuse = (code: number, message: string) =>
      this.sendControl(
        upload
          ? { type: T.UPLOAD_REJECT, transferId: m.transferId, errorCode: code, message, available: 0, requested: m.fileSize }
          : { type: T.DOWNLOAD_REJECT, transferId: m.transferId, errorCode: code, message },
      );
    if (this.transfers.has(m.transferId)) return refuse(ErrorCode.TRANSFER_ALREADY_EXISTS, `transfer ${m.transferId} already exists`);
    // §8.14: more than the per-connection transfer limit is -749.
    if (this.transfers.size >= this.ctx.limits.maxTransfersPerConnection) {
      return refuse(ErrorCode.CLIENT_QUOTA_EXCEEDED, `at most ${this.ctx.limits.maxTransfersPerConnection} active transfers per connection`);
    }
    if (upload) this.adopt(new ServerUploadActor(this.ctx, this.connInfo(), m.transferId, this)).tell({ kind: 'request', m });
    else this.adopt(new ServerDownloadActor(this.ctx, this.connInfo(), m.transferId, this)).tell({ kind: 'request', m });
  }

  private async onList(m: ListRequest): Promise<void> {
    const limit = m.limit === 0 ? Defaults.LIST_DEFAULT_LIMIT : Math.min(m.limit, Defaults.LIST_MAX_LIMIT);
    const sortBy = m.sortBy <= SortBy.MODIFIED ? m.sortBy : SortBy.NAME;
    const { total, entries } = await this.ctx.storage.list({ pattern: m.pattern || '*', offset: m.offset, limit, sortBy, sortOrder: m.sortOrder });
    this.sendControl({
      type: T.LIST_RESPONSE,
      requestId: m.requestId,
      totalCount: total,
      hasMore: m.offset + entries.length < total,
      entries: entries.map((e) => ({ name: e.name, size: e.size, sha256: Buffer.from(e.sha256 || '0'.repeat(64), 'hex'), createdMs: Math.floor(e.createdMs), modifiedMs: Math.floor(e.modifiedMs) })),
    });
  }

  private async onResume(m: ResumeRequest): Promise<void> {
    // §8.16: a bad filename gets ERROR(-748) carrying the transfer id.
    const problem = filenameProblem(m.filename);
    if (problem) return this.sendControl({ type: T.ERROR, transferId: m.transferId, errorCode: ErrorCode.INVALID_FILENAME, message: `invalid filename: ${problem}` });
    const answer = (status: number) =>
      this.sendControl({ type: T.RESUME_RESPONSE, transferId: m.transferId, status, totalChunks: m.totalChunks, receivedCount: 0, missing: Buffer.alloc(0) });
    if (this.transfers.has(m.transferId)) {
      return this.sendControl({ type: T.ERROR, transferId: m.transferId, errorCode: ErrorCode.TRANSFER_ALREADY_EXISTS, message: `transfer ${m.transferId} is active on this connection` });
    }
    if (m.direction === TransferDirection.DOWNLOAD) {
      // §8.10: the server restarts a download it no longer knows from its file.
      const actor = this.adopt(new ServerDownloadActor(this.ctx, this.connInfo(), m.transferId, this));
      actor.tell({ kind: 'resume', m });
      return;
    }
    if (m.direction !== TransferDirection.UPLOAD) return this.protocolFailure(`RESUME_REQUEST direction ${m.direction}`);
    // The client may be back before the server noticed its old connection
    // die, or before that upload finished parking: park it now, then wait.
    const running = this.ctx.activeUploads.get(m.transferId);
    if (running?.answering) {
      // Answering its UPLOAD_COMPLETE: it is never parked, and stopping it
      // could abort a hash still running. Its file is stored (or not) first,
      // so that a client told NOT_FOUND finds it by LIST. Bounded: this
      // connection's other frames wait meanwhile, and a client times a
      // RESUME_REQUEST out after 10 s.
      await waitAtMost(running.answering, RESUME_WAIT_MS);
      if (this.isStopped) return;
    } else if (running) await running.stop(CONNECTION_CLOSED);
    await this.ctx.parked.settled(m.transferId);
    // A checkpoint found unreadable at start-up: never resumed into a wrong file.
    if (this.ctx.parked.isCorrupted(m.transferId)) return answer(ResumeStatus.STATE_CORRUPTED);
    const parked = this.ctx.parked.peek(m.transferId);
    if (!parked || parked.request.filename !== m.filename) return answer(ResumeStatus.NOT_FOUND);
    // §8.15: past the TTL, EXPIRED while the server still knows the transfer.
    if (parked.expired) return answer(ResumeStatus.EXPIRED);
    // §8.9: FILE_CHANGED compares the hashes only when both are known.
    const known = (h: Buffer) => !h.equals(ZERO_HASH);
    if (known(m.sha256) && known(parked.request.sha256) && !m.sha256.equals(parked.request.sha256)) return answer(ResumeStatus.FILE_CHANGED);
    if (m.totalChunks !== Math.ceil(parked.request.fileSize / parked.chunkSize)) return answer(ResumeStatus.STATE_CORRUPTED);
    const taken = this.ctx.parked.take(m.transferId)!;
    const actor = this.adopt(new ServerUploadActor(this.ctx, this.connInfo(), m.transferId, this));
    actor.tell({ kind: 'resume', m, parked: taken });
  }

  private connInfo(): ConnectionInfo {
    return { clientId: this.clientId, capabilities: this.capabilities, sink: this.sink };
  }

  /** Registers a transfer actor; it leaves the registry when it stops. */
  private adopt<A extends TransferActor>(actor: A): A {
    this.transfers.set(actor.transferId, actor);
    const stop = actor.stop.bind(actor);
    actor.stop = async (reason?: unknown) => {
      if (this.transfers.get(actor.transferId) === actor) this.transfers.delete(actor.transferId);
      await stop(reason);
    };
    return actor;
  }

  private unknownTransfer(transferId: string): void {
    this.sendControl({ type: T.ERROR, transferId, errorCode: ErrorCode.TRANSFER_NOT_FOUND, message: `no active transfer ${transferId}` });
  }

  /** A transfer failed: tell the peer, end that transfer only, go on. */
  childFailed(child: Actor<never>, error: unknown): void {
    const transferId = (child as unknown as TransferActor).transferId;
    const code = wireCode(isFtsError(error) ? error.code : ErrorCode.STORAGE_ERROR);
    const message = error instanceof Error ? error.message : String(error);
    this.sendControl({ type: T.ERROR, transferId, errorCode: code, message });
    this.ctx.events.transferFailed({ clientId: this.clientId, transferId, error: error instanceof Error ? error : new Error(message) });
  }

  private refuse(code: number, message: string): void {
    this.sendControl({ type: T.ERROR, transferId: NIL_UUID, errorCode: code, message });
    this.closeReason = message;
    this.sink.close();
    void this.stop(message);
  }

  private protocolFailure(message: string): void {
    this.refuse(ErrorCode.PROTOCOL_ERROR, message);
  }

  private armIdle(ms: number): void {
    this.idleTimer?.cancel();
    this.idleTimer = this.ctx.clock.setTimeout(() => {
      if (this.state === 'handshake') {
        this.closeReason = 'no CONNECT in time';
        this.sink.destroy();
      } else {
        this.closeReason = 'idle timeout';
        this.sendControl({ type: T.DISCONNECT, reason: DisconnectReason.IDLE_TIMEOUT, message: `idle for ${ms / 1000} s` });
        this.sink.close();
      }
      void this.stop(this.closeReason);
    }, ms);
  }

  private sendControl(m: Exclude<Message, { type: typeof T.CHUNK_DATA }>): void {
    if (!this.sink.closed) this.sink.send([encodeControl(m)]);
  }

  protected override dropped(msg: ServerConnectionMessage): void {
    if (msg.kind === 'frame' && msg.frame.type === T.CHUNK_DATA) this.ctx.workers.releaseBuffer(msg.frame.payload);
  }

  protected override async onStop(): Promise<void> {
    this.idleTimer?.cancel();
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    const transfers = [...this.transfers.values()];
    this.transfers.clear();
    for (const t of transfers) t.tell({ kind: 'connectionLost' });
    if (!this.sink.closed) this.sink.close();
    if (wasOpen) this.ctx.events.clientDisconnected({ clientId: this.clientId, sessionId: this.sessionId, reason: this.closeReason });
    await Promise.all(transfers.map((t) => t.stop(CONNECTION_CLOSED)));
  }
}

function versionString(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

function unreachable(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}

/**
 * §5 marks -753 and -754 "(local)": they name what happened on the side that
 * reports them. The server's own full disk or vanished file is, to its peer,
 * storage_full and file_not_found_on_server (the message keeps the reason).
 */
function wireCode(code: number): number {
  if (code === ErrorCode.DISK_FULL) return ErrorCode.STORAGE_FULL;
  if (code === ErrorCode.FILE_NOT_FOUND) return ErrorCode.FILE_NOT_FOUND_ON_SERVER;
  return code;
}
