/**
 * The client's side of one connection: the handshake, routing of frames to
 * transfer actors and to pending list requests, and the heartbeat (§4: after
 * 15 s without receiving anything, HEARTBEAT; nothing back within 30 s more
 * and the connection is treated as lost).
 */
import { Actor } from '../actor.js';
import type { Clock, FrameSink, TimerHandle } from '../ports.js';
import { Defaults, MESSAGE_SENDER, MessageType as T, type MessageType } from '../../protocol/constants.js';
import { decodeMessage, encodeControl } from '../../protocol/codec.js';
import type { Frame } from '../../protocol/decoder.js';
import { ErrorCode, FtsError, isFtsError } from '../../protocol/errors.js';
import type { ConnectAck, Disconnect, ListResponse, Message } from '../../protocol/messages/types.js';
import { NIL_UUID } from '../../protocol/uuid.js';
import { ClientDownloadActor } from './download.js';
import { ClientUploadActor } from './upload.js';

export type ClientConnectionMessage =
  | { kind: 'frame'; frame: Frame }
  | { kind: 'decodeError'; error: FtsError }
  | { kind: 'socketClosed'; error?: Error }
  | { kind: 'heartbeatDue' };

export interface ClientConnectionHooks {
  connected(ack: ConnectAck): void;
  /** The connection ended; `error` says why (undefined after our own DISCONNECT). */
  closed(error: FtsError | undefined, disconnect: Disconnect | undefined): void;
  releaseBuffer(view: Uint8Array): void;
}

export class ClientConnectionActor extends Actor<ClientConnectionMessage> {
  /** The client's transfers: they outlive a connection, so the client owns the map. */
  readonly transfers: Map<string, ClientUploadActor | ClientDownloadActor>;
  readonly lists = new Map<string, { resolve: (r: ListResponse) => void; reject: (e: FtsError) => void }>();
  private readonly sink: FrameSink;
  private readonly clock: Clock;
  private readonly hooks: ClientConnectionHooks;
  private readonly heartbeatIdleMs: number;
  private readonly heartbeatTimeoutMs: number;
  private heartbeatTimer: TimerHandle | undefined;
  private awaitingHeartbeat = false;
  private sequence = 0;
  private open = false;
  private serverDisconnect: Disconnect | undefined;
  private failure: FtsError | undefined;
  private localClose = false;

  constructor(
    sink: FrameSink,
    clock: Clock,
    hooks: ClientConnectionHooks,
    transfers: Map<string, ClientUploadActor | ClientDownloadActor>,
    opts: { heartbeatIdleMs?: number; heartbeatTimeoutMs?: number } = {},
  ) {
    super('client connection', undefined, { highWaterMark: 128 });
    this.transfers = transfers;
    this.sink = sink;
    this.clock = clock;
    this.hooks = hooks;
    this.heartbeatIdleMs = opts.heartbeatIdleMs ?? Defaults.HEARTBEAT_IDLE_MS;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? Defaults.HEARTBEAT_TIMEOUT_MS;
  }

  /** Our own DISCONNECT is on its way: the close that follows is not a failure. */
  markLocalClose(): void {
    this.localClose = true;
  }

  protected receive(msg: ClientConnectionMessage): void {
    switch (msg.kind) {
      case 'frame':
        return this.onFrame(msg.frame);
      case 'decodeError':
        return this.abort(msg.error);
      case 'socketClosed':
        return this.onClosed(msg.error);
      case 'heartbeatDue':
        return this.onHeartbeatDue();
      default:
        return unreachable(msg);
    }
  }

  private onFrame(frame: Frame): void {
    this.armHeartbeat();
    let m: Message;
    try {
      m = decodeMessage(frame.type, frame.payload);
    } catch (err) {
      if (frame.type === T.CHUNK_DATA) this.hooks.releaseBuffer(frame.payload);
      return this.abort(isFtsError(err) ? err : new FtsError(ErrorCode.PROTOCOL_ERROR, String(err)));
    }
    if (MESSAGE_SENDER[m.type as MessageType] === 'client') return this.abort(new FtsError(ErrorCode.PROTOCOL_ERROR, `a server may not send message type 0x${m.type.toString(16)}`));
    switch (m.type) {
      case T.CONNECT_ACK:
        this.open = true;
        return this.hooks.connected(m);
      case T.HEARTBEAT_ACK:
        this.awaitingHeartbeat = false;
        return;
      case T.DISCONNECT:
        this.serverDisconnect = m;
        return;
      case T.LIST_RESPONSE: {
        const pending = this.lists.get(m.requestId);
        this.lists.delete(m.requestId);
        return pending?.resolve(m);
      }
      case T.ERROR: {
        if (m.transferId === NIL_UUID) {
          this.failure = new FtsError(m.errorCode, m.message);
          return;
        }
        const t = this.transfers.get(m.transferId);
        if (t) t.tell({ kind: 'frame', m } as never);
        else this.lists.get(m.transferId)?.reject(new FtsError(m.errorCode, m.message));
        return;
      }
      case T.UPLOAD_ACCEPT:
      case T.UPLOAD_REJECT:
      case T.UPLOAD_VERIFY:
      case T.DOWNLOAD_ACCEPT:
      case T.DOWNLOAD_REJECT:
      case T.DOWNLOAD_COMPLETE:
      case T.CHUNK_ACK:
      case T.CHUNK_NACK:
      case T.CHUNK_DATA: {
        const t = this.transfers.get(m.transferId);
        if (t instanceof ClientUploadActor && isUploadFrame(m)) return void t.tell({ kind: 'frame', m });
        if (t instanceof ClientDownloadActor && isDownloadFrame(m)) return void t.tell({ kind: 'frame', m });
        if (m.type === T.CHUNK_DATA) this.hooks.releaseBuffer(m.data);
        return; // a late frame of a finished or cancelled transfer
      }
      case T.TRANSFER_CANCEL: {
        const t = this.transfers.get(m.transferId);
        t?.tell({ kind: 'cancel', reason: new FtsError(ErrorCode.TRANSFER_CANCELLED, `cancelled by the server (${m.reason})`, { transferId: m.transferId }) });
        return;
      }
      case T.RESUME_RESPONSE: {
        const t = this.transfers.get(m.transferId);
        t?.tell({ kind: 'frame', m });
        return;
      }
      default:
        return this.abort(new FtsError(ErrorCode.PROTOCOL_ERROR, `unexpected message type 0x${m.type.toString(16)}`));
    }
  }

  private onHeartbeatDue(): void {
    if (this.sink.closed) return;
    if (this.awaitingHeartbeat) {
      return this.abort(new FtsError(ErrorCode.CONNECTION_TIMEOUT, `no answer to HEARTBEAT within ${this.heartbeatTimeoutMs / 1000} s`));
    }
    this.awaitingHeartbeat = true;
    this.sink.send([encodeControl({ type: T.HEARTBEAT, timestampUs: this.clock.now() * 1000, sequence: ++this.sequence >>> 0 })]);
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.clock.setTimeout(() => this.tell({ kind: 'heartbeatDue' }), this.heartbeatTimeoutMs);
  }

  /** Any complete frame proves the peer alive: restart the idle count. */
  armHeartbeat(): void {
    this.awaitingHeartbeat = false;
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.clock.setTimeout(() => this.tell({ kind: 'heartbeatDue' }), this.heartbeatIdleMs);
  }

  private abort(error: FtsError): void {
    this.failure ??= error;
    this.sink.destroy();
  }

  private onClosed(socketError: Error | undefined): void {
    this.heartbeatTimer?.cancel();
    let error: FtsError | undefined = this.failure;
    if (!error && this.serverDisconnect) {
      error = new FtsError(ErrorCode.CONNECTION_LOST, `server closed the connection: ${this.serverDisconnect.message || `reason ${this.serverDisconnect.reason}`}`);
    }
    if (!error && !this.localClose) {
      error = this.open
        ? new FtsError(ErrorCode.CONNECTION_LOST, `connection lost${socketError ? `: ${socketError.message}` : ''}`, { cause: socketError })
        : new FtsError(ErrorCode.CONNECTION_FAILED, `connection closed before CONNECT_ACK${socketError ? `: ${socketError.message}` : ''}`, { cause: socketError });
    }
    // The client tells the transfers: it knows whether it will reconnect.
    const lost = error ?? new FtsError(ErrorCode.CONNECTION_LOST, 'disconnected');
    for (const l of this.lists.values()) l.reject(lost);
    this.lists.clear();
    this.hooks.closed(error, this.serverDisconnect);
    void this.stop('closed');
  }

  protected override dropped(msg: ClientConnectionMessage): void {
    if (msg.kind === 'frame' && msg.frame.type === T.CHUNK_DATA) this.hooks.releaseBuffer(msg.frame.payload);
  }

  protected override onStop(): void {
    this.heartbeatTimer?.cancel();
  }
}

function isUploadFrame(m: Message): m is Extract<Message, { type: typeof T.UPLOAD_ACCEPT | typeof T.UPLOAD_REJECT | typeof T.UPLOAD_VERIFY | typeof T.CHUNK_ACK | typeof T.CHUNK_NACK }> {
  return m.type === T.UPLOAD_ACCEPT || m.type === T.UPLOAD_REJECT || m.type === T.UPLOAD_VERIFY || m.type === T.CHUNK_ACK || m.type === T.CHUNK_NACK;
}

function isDownloadFrame(m: Message): m is Extract<Message, { type: typeof T.DOWNLOAD_ACCEPT | typeof T.DOWNLOAD_REJECT | typeof T.DOWNLOAD_COMPLETE | typeof T.CHUNK_DATA }> {
  return m.type === T.DOWNLOAD_ACCEPT || m.type === T.DOWNLOAD_REJECT || m.type === T.DOWNLOAD_COMPLETE || m.type === T.CHUNK_DATA;
}

function unreachable(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
