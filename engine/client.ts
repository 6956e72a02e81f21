/**
 * FileTransferClient: connects to an FTS1 server and moves files.
 *
 *   const client = new FileTransferClient();
 *   await client.connect('127.0.0.1:19000');
 *   const r = await client.uploadFile('./report.pdf', 'report.pdf');
 *   await client.disconnect();
 */
import { EventEmitter } from 'node:events';
import { constants as fsc, fstatSync, openSync } from 'node:fs';
import { closeQuietly, createFd } from './metadata-io.js';
import { literalPattern } from '../protocol/glob.js';
import { connect as netConnect, type Socket } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { ClientConnectionActor } from '../actors/client/connection.js';
import { ClientDownloadActor } from '../actors/client/download.js';
import type { ClientTransferContext, TransferProgress, TransferResult, TransferResumed } from '../actors/client/ports.js';
import { ClientUploadActor } from '../actors/client/upload.js';
import { systemClock, type Clock } from '../actors/ports.js';
import { ReceiveBudget } from '../actors/receive-budget.js';
import { Compression, Defaults, DisconnectReason, MessageType as T, OUR_CAPABILITIES, PROTOCOL_VERSION, SortBy, SortOrder } from '../protocol/constants.js';
import { encodeControl } from '../protocol/codec.js';
import { ErrorCode, FtsError, isFtsError } from '../protocol/errors.js';
import { validateFilename } from '../protocol/filename.js';
import type { ConnectAck, Disconnect, DownloadAccept, ListEntry } from '../protocol/messages/types.js';
import { newUuid } from '../protocol/uuid.js';
import type { ResumeFailurePolicy } from '../actors/client/resume.js';
import { DEFAULT_RECONNECT_POLICY, reconnectDelay, type ReconnectPolicy } from './reconnect.js';
import { ClientStateStore, defaultStateDir, type DownloadRecord, type TransferRecord, type UploadRecord } from './client-state.js';
import type { ChunkBitmap } from '../protocol/bitmap.js';
import { WorkerPool } from '../workers/pool.js';
import { pipeSocket, ReadBuffers, SocketSink } from './transport.js';
import { poolWorkers } from './workers.js';

const MiB = 1024 * 1024;

export type { TransferProgress, TransferResult, TransferResumed };
export type CompressionOption = 'none' | 'always' | 'adaptive';

export interface ClientOptions {
  /** Sent in CONNECT when the server requires one. */
  token?: string;
  /** Chunk size asked for; the server may lower it. Default 256 KiB. */
  chunkSize?: number;
  /** Chunks a download lets the server keep unacknowledged. Default 64. */
  window?: number;
  compression?: CompressionOption;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  heartbeatIdleMs?: number;
  heartbeatTimeoutMs?: number;
  clientId?: string;
  /** Reconnect after a lost connection, and retry connect(), by `reconnect`. Default true. */
  autoReconnect?: boolean;
  /** Backoff: initial 1 s, ×2, at most 30 s, at most 10 consecutive attempts, ±20% jitter. */
  reconnect?: Partial<ReconnectPolicy>;
  /** After a reconnection the server cannot resume a transfer: 'restart' it (default) or 'fail' it with the -76x code. */
  onResumeFailure?: ResumeFailurePolicy;
  pool?: WorkerPool;
  clock?: Clock;
  /** Random numbers for the backoff jitter (tests). */
  random?: () => number;
  /**
   * Folder of the records that let an interrupted transfer resume when run
   * again after this process died; `false` keeps no state. Default
   * `$XDG_CACHE_HOME/fts/transfers` or `~/.cache/fts/transfers`.
   */
  stateDir?: string | false;
  /**
   * Download bytes between two syncs of the temporary file. Default 64 MiB:
   * unlike an upload's server (see FileTransferServer's option), a download
   * measured no faster with syncs every 8 MiB, and its client spent about
   * 0.15 s more CPU a GiB on them (6 interleaved pairs).
   */
  syncEveryBytes?: number;
  /** Download bytes between two updates of its record in the state folder (each after a sync). Default 64 MiB. */
  checkpointEveryBytes?: number;
  /** Write downloads with O_DIRECT, around the page cache, where the file system allows it. Default true. */
  directIo?: boolean;
  /**
   * Received chunk data held in memory at once, across all downloads, before
   * the client stops reading the socket until writes catch up. Default
   * 64 MiB (see FileTransferServer's option of the same name).
   */
  maxBufferedBytes?: number;
}

export interface ServerInfo {
  protocolVersion: number;
  capabilities: number;
  sessionId: string;
  maxChunkSize: number;
  maxFileSize: number;
  serverName: string;
}

export interface TransferOptions {
  signal?: AbortSignal;
  /** Called with the transfer's id as it starts (for pause, resume, cancel). */
  onStart?: (transferId: string) => void;
  onProgress?: (p: TransferProgress) => void;
  chunkSize?: number;
  compression?: CompressionOption;
}

export interface UploadOptions extends TransferOptions {
  overwrite?: boolean;
  preserveTimestamp?: boolean;
}

export interface ListOptions {
  pattern?: string;
  offset?: number;
  limit?: number;
  sortBy?: 'name' | 'size' | 'time';
  order?: 'asc' | 'desc';
}

export interface RemoteFile {
  name: string;
  size: number;
  sha256: string;
  createdMs: number;
  modifiedMs: number;
}

export interface ListResult {
  total: number;
  files: RemoteFile[];
  hasMore: boolean;
}

/** Failures after which a transfer's client-side record is kept: running it again resumes it. */
const KEEP_STATE = new Set<number>([
  ErrorCode.CONNECTION_FAILED,
  ErrorCode.CONNECTION_TIMEOUT,
  ErrorCode.CONNECTION_REFUSED,
  ErrorCode.CONNECTION_LOST,
  ErrorCode.RECONNECT_FAILED,
  ErrorCode.TRANSFER_TIMEOUT,
]);

/** Refusals a retry cannot mend. */
const PERMANENT = new Set<number>([ErrorCode.PROTOCOL_MISMATCH, ErrorCode.AUTHENTICATION_FAILED, ErrorCode.PROTOCOL_ERROR]);

const COMPRESSION: Record<CompressionOption, number> = { none: Compression.NONE, always: Compression.ALWAYS, adaptive: Compression.ADAPTIVE };

/**
 * Events: `connected` (ServerInfo), `disconnected` ({ reason, error }),
 * `reconnecting` ({ attempt, delayMs }), `reconnected` (ServerInfo),
 * `reconnectFailed` ({ attempts, error }), `transferResumed` (TransferResumed:
 * the server's answer to a transfer's RESUME_REQUEST), `progress` (TransferProgress).
 */
export class FileTransferClient extends EventEmitter {
  private readonly opts: ClientOptions;
  private readonly clock: Clock;
  private pool: WorkerPool | undefined;
  private readonly receiveBudget: ReceiveBudget;

  private sink: SocketSink | undefined;
  private conn: ClientConnectionActor | undefined;
  private info: ServerInfo | undefined;
  private closedPromise: Promise<void> | undefined;
  private readonly starting = new Set<Promise<TransferResult>>();
  /** Transfers outlive a connection: a reconnection resumes them. */
  private readonly transfers = new Map<string, ClientUploadActor | ClientDownloadActor>();
  private endpoint: { host: string; port: number } | undefined;
  private readonly policy: ReconnectPolicy;
  private closing = false;
  private reconnecting: Promise<void> | undefined;
  /** The first connect() while it retries (disconnect() stops and awaits it). */
  private connecting: Promise<unknown> | undefined;
  private cancelWait: (() => void) | undefined;
  /** One client id for every connection of this client, so a server can tell a reconnection. */
  private readonly clientId: string;
  private readonly state: ClientStateStore | undefined;

  constructor(opts: ClientOptions = {}) {
    super();
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.policy = { ...DEFAULT_RECONNECT_POLICY, ...opts.reconnect };
    this.clientId = opts.clientId ?? newUuid();
    this.receiveBudget = new ReceiveBudget(opts.maxBufferedBytes ?? 64 * 1024 * 1024);
    this.state = opts.stateDir === false ? undefined : new ClientStateStore(opts.stateDir ?? defaultStateDir());
  }

  /** Received chunk data held now, the most held at once, and the limit (`maxBufferedBytes`). */
  get buffered(): { bytes: number; peakBytes: number; limitBytes: number } {
    const b = this.receiveBudget;
    return { bytes: b.heldBytes, peakBytes: b.peakBytes, limitBytes: b.limitBytes };
  }

  get serverInfo(): ServerInfo | undefined {
    return this.info;
  }

  get connected(): boolean {
    return !!this.info && !!this.sink && !this.sink.closed;
  }

  /**
   * Connects and negotiates; resolves with the server's info. `endpoint`:
   * "host:port" or { host, port }. With autoReconnect (the default) a server
   * that is not up yet is retried by the reconnection policy; without, a
   * refused connection fails at once with -702 (-700 for other failures).
   */
  async connect(endpoint: string | { host?: string; port: number }): Promise<ServerInfo> {
    if (this.conn || this.reconnecting) throw new FtsError(ErrorCode.CONFIG_INVALID, 'already connected');
    this.endpoint = parseEndpoint(endpoint);
    this.closing = false;
    this.pool ??= this.opts.pool ?? new WorkerPool();
    // The worker threads start while the handshake goes on (see WorkerPool.ready).
    const warming = this.pool.ready().catch(() => undefined);
    const connecting = this.withRetries(() => this.establish());
    this.connecting = connecting;
    try {
      const info = await connecting;
      await warming;
      // disconnect() was called meanwhile: it closes the connection just made.
      if (this.closing) throw new FtsError(ErrorCode.TRANSFER_CANCELLED, 'disconnect() called while connecting');
      this.emit('connected', info);
      return info;
    } catch (err) {
      if (!this.conn) await this.releasePool();
      throw err;
    } finally {
      this.connecting = undefined;
    }
  }

  /** Dials and negotiates one connection. */
  private async establish(): Promise<ServerInfo> {
    const { host, port } = this.endpoint!;
    const pool = this.pool!;
    const reads = new ReadBuffers();
    const socket = await dial(host, port, this.opts.connectTimeoutMs ?? Defaults.CONNECT_TIMEOUT_MS, reads);
    const sink = new SocketSink(socket);
    let settle!: { resolve: (ack: ConnectAck) => void; reject: (e: FtsError) => void };
    const handshake = new Promise<ConnectAck>((resolve, reject) => (settle = { resolve, reject }));
    let open = false;
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    const conn = new ClientConnectionActor(
      sink,
      this.clock,
      {
        connected: (ack) => settle.resolve(ack),
        closed: (error, disconnect) => {
          settle.reject(error ?? new FtsError(ErrorCode.CONNECTION_FAILED, 'connection closed during the handshake'));
          closedResolve();
          if (open) this.connectionClosed(conn, error, disconnect);
        },
        releaseBuffer: (b) => {
          this.receiveBudget.released(b);
          pool.buffers.release(b);
        },
      },
      this.transfers,
      { ...(this.opts.heartbeatIdleMs !== undefined ? { heartbeatIdleMs: this.opts.heartbeatIdleMs } : {}), ...(this.opts.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: this.opts.heartbeatTimeoutMs } : {}) },
    );
    const { decoder, resume } = pipeSocket(
      socket,
      pool,
      {
        frame: (frame) => conn.tell({ kind: 'frame', frame }),
        decodeError: (error) => conn.tell({ kind: 'decodeError', error }),
        closed: (error) => conn.tell({ kind: 'socketClosed', ...(error ? { error } : {}) }),
      },
      Defaults.MAX_CHUNK_SIZE,
      reads,
      this.receiveBudget,
    );
    conn.onDrain = resume;
    sink.send([
      encodeControl({
        type: T.CONNECT,
        protocolVersion: PROTOCOL_VERSION,
        capabilities: OUR_CAPABILITIES,
        clientId: this.clientId,
        ...(this.opts.token !== undefined ? { authToken: this.opts.token } : {}),
      }),
    ]);
    const timer = this.clock.setTimeout(() => settle.reject(new FtsError(ErrorCode.CONNECTION_TIMEOUT, 'no CONNECT_ACK in time')), this.opts.connectTimeoutMs ?? Defaults.CONNECT_TIMEOUT_MS);
    let ack: ConnectAck;
    try {
      ack = await handshake;
    } catch (err) {
      sink.destroy();
      await closed;
      throw err;
    } finally {
      timer.cancel();
    }
    open = true;
    this.conn = conn;
    this.sink = sink;
    this.closedPromise = closed;
    // §8.3: a client's CHUNK_DATA bound is the max chunk size of CONNECT_ACK.
    decoder.maxChunkSize = ack.maxChunkSize;
    conn.armHeartbeat();
    this.info = {
      protocolVersion: ack.protocolVersion,
      capabilities: ack.capabilities,
      sessionId: ack.sessionId,
      maxChunkSize: ack.maxChunkSize,
      maxFileSize: ack.maxFileSize,
      serverName: ack.serverName,
    };
    return this.info;
  }

  /**
   * Runs `attempt` once, or with autoReconnect until it succeeds, failing
   * after `maxAttempts` consecutive failures. Refusals that a retry cannot
   * mend (version, token) fail at once.
   */
  private async withRetries<R>(attempt: () => Promise<R>, emitFirst = false): Promise<R> {
    if (this.opts.autoReconnect === false) return attempt();
    let last: unknown;
    for (let n = 1; n <= this.policy.maxAttempts; n++) {
      if (this.closing) throw new FtsError(ErrorCode.TRANSFER_CANCELLED, 'disconnect() called while connecting');
      if (n > 1 || emitFirst) {
        const delayMs = reconnectDelay(n, this.policy, this.opts.random);
        this.emit('reconnecting', { attempt: n, delayMs });
        await this.wait(delayMs);
        if (this.closing) throw new FtsError(ErrorCode.TRANSFER_CANCELLED, 'disconnect() called while reconnecting');
      }
      try {
        return await attempt();
      } catch (err) {
        last = err;
        if (isFtsError(err) && PERMANENT.has(err.code)) throw err;
      }
    }
    throw last instanceof FtsError
      ? new FtsError(last.code, `${last.message} (after ${this.policy.maxAttempts} attempts)`, { cause: last })
      : new FtsError(ErrorCode.CONNECTION_FAILED, String(last));
  }

  /**
   * The wait between two attempts. The clock's timers do not keep the
   * process alive (heartbeats must not), but a caller awaiting connect() or a
   * transfer through a reconnection is still working: a process with nothing
   * else to do (the CLI) would otherwise end during the wait, its await unsettled.
   */
  private wait(ms: number): Promise<void> {
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.cancelWait = undefined;
        resolve();
      }, ms);
      this.cancelWait = () => {
        timer.cancel();
        this.cancelWait = undefined;
        resolve();
      };
    }).finally(() => clearInterval(keepAlive));
  }

  /** An established connection ended: reconnect and resume, or fail what was running. */
  private connectionClosed(conn: ClientConnectionActor, error: FtsError | undefined, disconnect: Disconnect | undefined): void {
    if (this.conn === conn) {
      this.conn = undefined;
      this.info = undefined;
    }
    const reason = disconnect ? disconnectReason(disconnect.reason) : error ? 'connection_lost' : 'client_initiated';
    this.emit('disconnected', { reason, error });
    const lost = error ?? new FtsError(ErrorCode.CONNECTION_LOST, 'disconnected');
    const retry = !this.closing && error !== undefined && this.opts.autoReconnect !== false && !PERMANENT.has(error.code);
    for (const t of this.transfers.values()) t.tell({ kind: 'connectionLost', error: lost, willReconnect: retry });
    if (!retry) return;
    this.reconnecting = this.withRetries(() => this.establish(), true).then(
      (info) => {
        this.reconnecting = undefined;
        this.emit('reconnected', info);
        for (const t of this.transfers.values()) t.tell({ kind: 'reconnected' });
      },
      (err: unknown) => {
        this.reconnecting = undefined;
        const failed = new FtsError(ErrorCode.RECONNECT_FAILED, `could not reconnect: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        if (!this.closing) this.emit('reconnectFailed', { attempts: this.policy.maxAttempts, error: failed });
        for (const t of this.transfers.values()) t.tell({ kind: 'connectionLost', error: failed, willReconnect: false });
      },
    );
  }

  /** Waits for active transfers (at most `timeoutMs`), sends DISCONNECT(client_initiated), closes. */
  async disconnect(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.conn && (this.reconnecting || this.connecting)) {
      // Not connected: stop trying; transfers waiting for the connection fail.
      this.closing = true;
      this.cancelWait?.();
      await this.reconnecting?.catch(() => undefined);
      await this.connecting?.catch(() => undefined);
    }
    // Read after the wait: an attempt in flight may have connected meanwhile.
    const conn = this.conn;
    if (conn && this.sink && !this.sink.closed) {
      const active = [...this.transfers.values()].map((t) => t.result.catch(() => undefined));
      for (const s of this.starting) active.push(s.catch(() => undefined));
      const all = Promise.all(active);
      if (opts.timeoutMs === undefined) await all;
      else await Promise.race([all, new Promise((r) => setTimeout(r, opts.timeoutMs).unref())]);
      this.closing = true;
      conn.markLocalClose();
      this.sink.send([encodeControl({ type: T.DISCONNECT, reason: DisconnectReason.CLIENT_INITIATED, message: 'client disconnect' })]);
      this.sink.close();
      await this.closedPromise;
    }
    await this.releasePool();
  }

  uploadFile(localPath: string, remoteName?: string, options: UploadOptions = {}): Promise<TransferResult> {
    // Counted from the call, so a disconnect() in the same tick waits for it.
    const started = this.startUpload(localPath, remoteName, options).catch((err: unknown) => {
      // The source changed while the upload was interrupted (§8.9): with
      // 'restart' it is uploaded again as it is now, under a new transfer id.
      if (isFtsError(err, ErrorCode.RESUME_FILE_CHANGED) && (this.opts.onResumeFailure ?? 'restart') === 'restart') {
        return this.startUpload(localPath, remoteName, options);
      }
      throw err;
    });
    this.starting.add(started);
    void started.catch(() => undefined).finally(() => this.starting.delete(started));
    return started;
  }

  private async startUpload(localPath: string, remoteName: string | undefined, options: UploadOptions): Promise<TransferResult> {
    this.requireConnection();
    const name = validateFilename(remoteName ?? basename(localPath));
    const path = resolve(localPath);
    // Opened and statted in line (see metadata-io.ts).
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO would otherwise wait for a writer, and the event loop with it (it is refused below).
      fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch (err) {
      throw localError(err, path);
    }
    let st;
    try {
      st = fstatSync(fd);
    } catch (err) {
      closeQuietly(fd);
      throw localError(err, path);
    }
    if (!st.isFile()) {
      closeQuietly(fd);
      throw new FtsError(ErrorCode.FILE_READ_ERROR, `${path} is not a regular file`);
    }
    let fdOpen = true;
    // The actor may close it more than once; a closed number may already name another file.
    const closeOnce = () => {
      if (fdOpen) closeQuietly(fd);
      fdOpen = false;
    };
    const endpoint = this.endpointKey();
    const store = this.state;
    let resumeFrom: UploadRecord | undefined;
    try {
      const record = store ? await store.find('upload', endpoint, path, name) : undefined;
      if (record) {
        if (record.size === st.size && record.mtimeMs === st.mtimeMs) resumeFrom = record;
        else {
          // The source changed since the earlier run (§8.9: the client detects it by size and time).
          await store!.remove(record.transferId);
          if (this.opts.onResumeFailure === 'fail') {
            throw new FtsError(ErrorCode.RESUME_FILE_CHANGED, `${path} changed since its upload was interrupted`, { transferId: record.transferId });
          }
        }
      }
    } catch (err) {
      // Nothing else will close it: a plain descriptor is never closed by the garbage collector.
      closeOnce();
      throw err;
    }
    const transferId = resumeFrom?.transferId ?? newUuid();
    const persist = store ? this.persistence(store) : undefined;
    const actor = new ClientUploadActor(this.transferContext(options), {
      transferId,
      ...(resumeFrom ? { resumeFrom: { chunkSize: resumeFrom.chunkSize, window: resumeFrom.window, compression: resumeFrom.compression } } : {}),
      ...(persist
        ? {
            persist: {
              accepted: (a: { chunkSize: number; window: number; compression: number }) =>
                persist.save({ kind: 'upload', transferId, endpoint, remoteName: name, localPath: path, size: st.size, mtimeMs: st.mtimeMs, ...a, savedMs: Date.now() }),
              settled: (error: FtsError | undefined) => void persist.settle(transferId, error),
            },
          }
        : {}),
      localPath: path,
      remoteName: name,
      fd,
      size: st.size,
      modifiedMs: st.mtimeMs,
      chunkSize: this.chunkSize(options),
      compression: COMPRESSION[options.compression ?? this.opts.compression ?? 'adaptive'],
      overwrite: options.overwrite ?? false,
      preserveTimestamp: options.preserveTimestamp ?? false,
      onResumeFailure: this.opts.onResumeFailure ?? 'restart',
      canReconnect: () => this.opts.autoReconnect !== false && !this.closing,
      close: async () => closeOnce(),
    });
    // run() refuses an aborted signal before the actor starts, and only a started actor closes its source.
    if (options.signal?.aborted) closeOnce();
    return this.run(actor, options);
  }

  async downloadFile(remoteName: string, localPath?: string, options: TransferOptions = {}): Promise<TransferResult> {
    this.requireConnection();
    const name = validateFilename(remoteName);
    const target = resolve(localPath ?? name);
    const endpoint = this.endpointKey();
    const store = this.state;
    const record = store ? await store.find('download', endpoint, target, name) : undefined;
    const transferId = record?.transferId ?? newUuid();
    const persist = store ? this.persistence(store) : undefined;
    let saved: DownloadRecord | undefined;
    const actor = new ClientDownloadActor(this.transferContext(options), {
      transferId,
      ...(record
        ? {
            resumeFrom: {
              accept: {
                type: T.DOWNLOAD_ACCEPT,
                transferId,
                fileSize: record.fileSize,
                sha256: Buffer.from(record.sha256, 'hex'),
                compression: record.compression,
                chunkSize: record.chunkSize,
                totalChunks: record.totalChunks,
                modifiedMs: record.modifiedMs,
              },
              tempPath: record.tempPath,
              written: Buffer.from(record.written, 'base64'),
            },
          }
        : {}),
      syncEveryBytes: Math.min(this.opts.syncEveryBytes ?? 64 * MiB, this.opts.checkpointEveryBytes ?? 64 * MiB),
      durableEveryBytes: this.opts.checkpointEveryBytes ?? 64 * MiB,
      directIo: this.opts.directIo ?? true,
      ...(persist
        ? {
            persist: {
              accepted: (a: DownloadAccept, tempPath: string) => {
                saved = {
                  kind: 'download',
                  transferId,
                  endpoint,
                  remoteName: name,
                  localPath: target,
                  tempPath,
                  fileSize: a.fileSize,
                  sha256: a.sha256.toString('hex'),
                  chunkSize: a.chunkSize,
                  totalChunks: a.totalChunks,
                  compression: a.compression,
                  modifiedMs: a.modifiedMs,
                  written: '',
                  savedMs: Date.now(),
                };
                persist.save(saved);
              },
              durable: (written: ChunkBitmap) => {
                if (saved) persist.save((saved = { ...saved, written: written.bytes.toString('base64'), savedMs: Date.now() }));
              },
              settled: (error: FtsError | undefined) => persist.settle(transferId, error),
            },
          }
        : {}),
      remoteName: name,
      localPath: target,
      chunkSize: this.chunkSize(options),
      window: this.opts.window ?? Defaults.WINDOW,
      compression: COMPRESSION[options.compression ?? this.opts.compression ?? 'adaptive'],
      onResumeFailure: this.opts.onResumeFailure ?? 'restart',
      openTemp: async (existing?: string) => {
        if (existing) return { fd: openSync(existing, 'r+'), path: existing };
        const path = join(dirname(target), `.${basename(target).slice(0, 200)}.${transferId.slice(0, 8)}.fts-part`);
        return { fd: await createFd(path, 'w+', 0o644), path };
      },
    });
    return this.run(actor, options);
  }

  /** Ids of the transfers running (or waiting for a reconnection) on this client. */
  get activeTransfers(): string[] {
    return [...this.transfers.keys()];
  }

  /** Pauses a transfer: an upload stops sending; a download asks the server to stop (TRANSFER_PAUSE). */
  pause(transferId: string): void {
    this.transfer(transferId).tell({ kind: 'pause' });
  }

  /** Resumes a paused transfer (TRANSFER_RESUME for a download). */
  resume(transferId: string): void {
    this.transfer(transferId).tell({ kind: 'resume' });
  }

  /** Cancels a transfer: TRANSFER_CANCEL to the server; its promise rejects with -711 and temporary files go. */
  cancel(transferId: string): void {
    this.transfer(transferId).tell({ kind: 'cancel', reason: new FtsError(ErrorCode.TRANSFER_CANCELLED, 'cancelled', { transferId }) });
  }

  private transfer(transferId: string): ClientUploadActor | ClientDownloadActor {
    const t = this.transfers.get(transferId);
    if (!t) throw new FtsError(ErrorCode.TRANSFER_NOT_FOUND, `no active transfer ${transferId}`, { transferId });
    return t;
  }

  async listFiles(q: ListOptions = {}): Promise<ListResult> {
    const conn = this.requireConnection();
    const requestId = newUuid();
    const response = new Promise<import('../protocol/messages/types.js').ListResponse>((resolve, reject) => conn.lists.set(requestId, { resolve, reject }));
    const timer = this.clock.setTimeout(() => {
      conn.lists.get(requestId)?.reject(new FtsError(ErrorCode.TRANSFER_TIMEOUT, 'no LIST_RESPONSE in time'));
      conn.lists.delete(requestId);
    }, this.opts.requestTimeoutMs ?? Defaults.REQUEST_TIMEOUT_MS);
    this.sink!.send([
      encodeControl({
        type: T.LIST_REQUEST,
        requestId,
        pattern: q.pattern ?? '',
        offset: q.offset ?? 0,
        limit: q.limit ?? 0,
        sortBy: q.sortBy === 'size' ? SortBy.SIZE : q.sortBy === 'time' ? SortBy.MODIFIED : SortBy.NAME,
        sortOrder: q.order === 'desc' ? SortOrder.DESC : SortOrder.ASC,
      }),
    ]);
    try {
      const r = await response;
      return { total: r.totalCount, hasMore: r.hasMore, files: r.entries.map(toRemoteFile) };
    } finally {
      timer.cancel();
    }
  }

  private async run(actor: ClientUploadActor | ClientDownloadActor, options: TransferOptions): Promise<TransferResult> {
    const signal = options.signal;
    if (signal?.aborted) throw new FtsError(ErrorCode.TRANSFER_CANCELLED, 'aborted before start');
    this.transfers.set(actor.transferId, actor);
    options.onStart?.(actor.transferId);
    const onAbort = () => actor.tell({ kind: 'cancel', reason: new FtsError(ErrorCode.TRANSFER_CANCELLED, 'cancelled', { transferId: actor.transferId }) });
    signal?.addEventListener('abort', onAbort, { once: true });
    actor.start();
    try {
      return await actor.result;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.transfers.delete(actor.transferId);
    }
  }

  private endpointKey(): string {
    return `${this.endpoint!.host}:${this.endpoint!.port}`;
  }

  /**
   * Saves a transfer's record, in order, never blocking the transfer; at its
   * end removes it, except after a lost connection, so that running the same
   * transfer again resumes it. `settle` says whether the record (and a
   * download's temporary file) was kept.
   */
  private persistence(store: ClientStateStore): { save(r: TransferRecord): void; settle(id: string, error: FtsError | undefined): boolean } {
    let chain: Promise<void> = Promise.resolve();
    const queue = (job: () => Promise<void>) => {
      chain = chain.then(job).catch((err: unknown) => void this.emit('stateError', err));
    };
    return {
      save: (r) => queue(() => store.save(r)),
      settle: (id, error) => {
        const keep = error !== undefined && KEEP_STATE.has(error.code);
        if (!keep) queue(() => store.remove(id));
        return keep;
      },
    };
  }

  private transferContext(options: TransferOptions): ClientTransferContext {
    const pool = this.pool!;
    const client = this;
    return {
      // The connection of the moment: a transfer resumed after a reconnection sends on the new one.
      get sink() {
        return client.sink!;
      },
      workers: poolWorkers(pool, this.receiveBudget),
      receiveBudget: this.receiveBudget,
      clock: this.clock,
      capabilities: this.info?.capabilities ?? 0,
      requestTimeoutMs: this.opts.requestTimeoutMs ?? Defaults.REQUEST_TIMEOUT_MS,
      progress: (p) => {
        options.onProgress?.(p);
        this.emit('progress', p);
      },
      resumed: (r) => this.emit('transferResumed', r),
      stalled: () => this.sink?.destroy(),
      storedFile: async (name) => (await this.listFiles({ pattern: literalPattern(name), limit: 1 })).files.find((f) => f.name === name),
    };
  }

  private chunkSize(options: TransferOptions): number {
    const size = options.chunkSize ?? this.opts.chunkSize ?? Defaults.CHUNK_SIZE;
    if (size < Defaults.MIN_CHUNK_SIZE || size > Defaults.MAX_CHUNK_SIZE) {
      throw new FtsError(ErrorCode.CONFIG_CHUNK_SIZE_ERROR, `chunk size must be within ${Defaults.MIN_CHUNK_SIZE}..${Defaults.MAX_CHUNK_SIZE}, got ${size}`);
    }
    return size;
  }

  private requireConnection(): ClientConnectionActor {
    if (!this.conn || !this.info) throw new FtsError(ErrorCode.CONNECTION_LOST, 'not connected');
    return this.conn;
  }

  private async releasePool(): Promise<void> {
    if (this.pool && !this.opts.pool) await this.pool.close();
    this.pool = undefined;
  }
}

function parseEndpoint(endpoint: string | { host?: string; port: number }): { host: string; port: number } {
  if (typeof endpoint !== 'string') return { host: endpoint.host ?? '127.0.0.1', port: endpoint.port };
  const at = endpoint.lastIndexOf(':');
  const host = at > 0 ? endpoint.slice(0, at).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const port = Number(at >= 0 ? endpoint.slice(at + 1) : endpoint);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new FtsError(ErrorCode.CONFIG_INVALID, `bad endpoint "${endpoint}": expected host:port`);
  return { host, port };
}

function dial(host: string, port: number, timeoutMs: number, reads: ReadBuffers): Promise<Socket> {
  return new Promise((resolveDial, reject) => {
    const socket = netConnect({ host, port, noDelay: true, onread: reads.onread });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FtsError(ErrorCode.CONNECTION_TIMEOUT, `connecting to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolveDial(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code === 'ECONNREFUSED' ? ErrorCode.CONNECTION_REFUSED : ErrorCode.CONNECTION_FAILED;
      reject(new FtsError(code, `cannot connect to ${host}:${port}: ${err.message}`, { cause: err }));
    });
  });
}

function localError(err: unknown, path: string): FtsError {
  if (isFtsError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new FtsError(code === 'ENOENT' ? ErrorCode.FILE_NOT_FOUND : ErrorCode.FILE_READ_ERROR, `${path}: ${(err as Error).message}`, { cause: err });
}

function toRemoteFile(e: ListEntry): RemoteFile {
  return { name: e.name, size: e.size, sha256: e.sha256.toString('hex'), createdMs: e.createdMs, modifiedMs: e.modifiedMs };
}

function disconnectReason(reason: number): string {
  return ['client_initiated', 'server_shutdown', 'idle_timeout', 'protocol_error'][reason] ?? `reason_${reason}`;
}
