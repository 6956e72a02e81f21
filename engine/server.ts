/**
 * FileTransferServer: a TCP server speaking FTS1 over a storage folder.
 *
 *   const server = new FileTransferServer({ root: './storage', port: 0 });
 *   const { port } = await server.start();
 *   ...
 *   await server.stop();
 */
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Actor, Supervisor } from '../actors/actor.js';
import { ReceiveBudget } from '../actors/receive-budget.js';
import { systemClock, type ChunkWorkers, type Clock } from '../actors/ports.js';
import type { Decision, DownloadRequestInfo, ServerContext, ServerEvents, ServerLimits, UploadRequestInfo } from '../actors/server/ports.js';
import { ServerConnectionActor } from '../actors/server/connection.js';
import { Defaults, OUR_CAPABILITIES, MessageType } from '../protocol/constants.js';
import { encodeControl } from '../protocol/codec.js';
import { ErrorCode, FtsError } from '../protocol/errors.js';
import { NIL_UUID } from '../protocol/uuid.js';
import type { UploadRequest } from '../protocol/messages/types.js';
import { WorkerPool } from '../workers/pool.js';
import { Storage } from './storage.js';
import { adoptSocket, pipeSocket, ReadBuffers, SocketSink } from './transport.js';
import { poolWorkers } from './workers.js';
import { ParkedUploadRegistry } from './parked.js';

export interface ServerOptions {
  /** Storage folder, created if missing. Default `./storage`. */
  root?: string;
  host?: string;
  /** 0 = any free port. Default 19000. */
  port?: number;
  maxConnections?: number;
  maxFileSize?: number;
  /** Total bytes stored files may take. Default unlimited (free disk still applies). */
  quotaBytes?: number;
  defaultChunkSize?: number;
  maxChunkSize?: number;
  window?: number;
  maxTransfersPerConnection?: number;
  /** When set, clients must send this token in CONNECT (-708 otherwise). */
  authToken?: string;
  serverName?: string;
  idleTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** How long an upload whose connection was lost waits for a resume. Default 24 h. */
  resumeTtlMs?: number;
  /**
   * Upload bytes between two syncs of the temporary file. Default 8 MiB: the
   * disk's write-back is paid in short flushes as the upload goes, instead of
   * long ones that stall the writes behind them (see ChunkReceiver).
   */
  syncEveryBytes?: number;
  /** Upload bytes between two checkpoints (what a restarted server resumes from). Default 64 MiB; a sync comes at least this often. */
  checkpointEveryBytes?: number;
  /**
   * Received chunk data held in memory at once, across all connections and
   * uploads, before the server stops reading its sockets until writes catch
   * up. Default 64 MiB (four uploads' full windows of 256 KiB chunks). A
   * transfer's window bounds what it alone holds; this bounds them together.
   */
  maxBufferedBytes?: number;
  /**
   * Write uploads and read downloads with O_DIRECT, around the page cache,
   * where the file system allows it (Linux; not tmpfs). Default true: on the
   * machine measured, the page cache's copies were most of the server's CPU.
   */
  directIo?: boolean;
  /** Accept or refuse uploads: true accepts, false or a reason refuses (-713). */
  onUploadRequest?: (info: UploadRequestInfo) => Decision | Promise<Decision>;
  /** Accept or refuse downloads: true accepts, false or a reason refuses (-747). */
  onDownloadRequest?: (info: DownloadRequestInfo) => Decision | Promise<Decision>;
  /** Worker pool to use; by default the server makes its own, sized to the cores. */
  pool?: WorkerPool;
  clock?: Clock;
}

const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * Events: `clientConnected`, `clientDisconnected`, `uploadComplete`,
 * `downloadComplete`, `progress`, `transferFailed`, `error`.
 */
export class FileTransferServer extends EventEmitter implements Supervisor {
  readonly storage: Storage;
  private readonly opts: ServerOptions;
  private readonly pool: WorkerPool;
  private readonly ownsPool: boolean;
  private readonly ctx: ServerContext;
  private readonly parked: ParkedUploadRegistry;
  private readonly connections = new Set<ServerConnectionActor>();
  private readonly sockets = new Set<Socket>();
  private readonly refused = new Set<Socket>();
  private readonly closing = new Set<Promise<void>>();
  private server: Server | undefined;
  private stopping: Promise<void> | undefined;

  constructor(opts: ServerOptions = {}) {
    super();
    this.opts = opts;
    this.ownsPool = !opts.pool;
    this.pool = opts.pool ?? new WorkerPool();
    const root = resolve(opts.root ?? './storage');
    this.storage = new Storage({ root, directIo: opts.directIo ?? true, ...(opts.quotaBytes !== undefined ? { quotaBytes: opts.quotaBytes } : {}) }, this.pool);
    const maxChunkSize = opts.maxChunkSize ?? Defaults.MAX_CHUNK_SIZE;
    const limits: ServerLimits = {
      serverName: opts.serverName ?? `fts@${hostname()}`,
      maxChunkSize,
      defaultChunkSize: Math.min(opts.defaultChunkSize ?? Defaults.CHUNK_SIZE, maxChunkSize),
      maxFileSize: opts.maxFileSize ?? Defaults.MAX_FILE_SIZE,
      window: opts.window ?? Defaults.WINDOW,
      maxTransfersPerConnection: opts.maxTransfersPerConnection ?? Defaults.MAX_TRANSFERS_PER_CONNECTION,
      authToken: opts.authToken,
      capabilities: OUR_CAPABILITIES,
      idleTimeoutMs: opts.idleTimeoutMs ?? Defaults.SERVER_IDLE_MS,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? Defaults.CONNECT_TIMEOUT_MS,
      syncEveryBytes: opts.syncEveryBytes ?? 8 * 1024 * 1024,
      checkpointEveryBytes: opts.checkpointEveryBytes ?? 64 * 1024 * 1024,
      directIo: opts.directIo ?? true,
    };
    if (maxChunkSize < Defaults.MIN_CHUNK_SIZE || maxChunkSize > Defaults.MAX_CHUNK_SIZE) {
      throw new FtsError(ErrorCode.CONFIG_CHUNK_SIZE_ERROR, `maxChunkSize must be within ${Defaults.MIN_CHUNK_SIZE}..${Defaults.MAX_CHUNK_SIZE}`);
    }
    const emit = <K extends keyof ServerEvents>(name: K) => ((info: Parameters<ServerEvents[K]>[0]) => void this.emit(name, info)) as ServerEvents[K];
    const clock = opts.clock ?? systemClock;
    this.parked = new ParkedUploadRegistry(clock, opts.resumeTtlMs ?? Defaults.RESUME_TTL_MS);
    const receiveBudget = new ReceiveBudget(opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.ctx = {
      limits,
      parked: this.parked,
      activeUploads: new Map(),
      storage: this.storage,
      workers: poolWorkers(this.pool, receiveBudget),
      receiveBudget,
      clock,
      onUploadRequest: async (info) => (opts.onUploadRequest ? opts.onUploadRequest(info) : true),
      onDownloadRequest: async (info) => (opts.onDownloadRequest ? opts.onDownloadRequest(info) : true),
      events: {
        clientConnected: emit('clientConnected'),
        clientDisconnected: emit('clientDisconnected'),
        uploadComplete: emit('uploadComplete'),
        downloadComplete: emit('downloadComplete'),
        progress: emit('progress'),
        transferFailed: emit('transferFailed'),
      },
    };
  }

  /** Received chunk data held now, the most held at once, and the limit (`maxBufferedBytes`). */
  get buffered(): { bytes: number; peakBytes: number; limitBytes: number } {
    const b = this.ctx.receiveBudget;
    return { bytes: b.heldBytes, peakBytes: b.peakBytes, limitBytes: b.limitBytes };
  }

  get workers(): ChunkWorkers {
    return this.ctx.workers;
  }

  /** True once stop() was called. */
  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Creates the storage folder and listens; resolves with the bound address. */
  async start(): Promise<ServerAddress> {
    // The worker threads start meanwhile: the first transfer does not wait for them.
    const warming = this.pool.ready().catch(() => undefined);
    await this.storage.init();
    await this.recoverUploads();
    await warming;
    // stop() called while starting: do not listen after it.
    if (this.stopping) throw new Error('the server was stopped while starting');
    // Paused on accept: adoptSocket() re-makes each socket before anything is read.
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 19000, this.opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolveListen();
      });
    });
    if (this.stopping) {
      server.close();
      throw new Error('the server was stopped while starting');
    }
    server.on('error', (err) => this.emit('error', err));
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** Uploads checkpointed by an earlier run wait for their clients' RESUME_REQUEST. */
  private async recoverUploads(): Promise<void> {
    const { recovered, corrupted } = await this.storage.recoverUploads();
    for (const id of corrupted) this.parked.markCorrupted(id);
    for (const c of recovered) {
      const slot = await this.storage.adoptUpload(c);
      const request: UploadRequest = {
        type: MessageType.UPLOAD_REQUEST,
        transferId: c.transferId,
        filename: c.filename,
        fileSize: c.fileSize,
        sha256: Buffer.from(c.sha256, 'hex'),
        chunkSize: c.chunkSize,
        chunkCount: Math.ceil(c.fileSize / c.chunkSize),
        compression: c.compression,
        options: c.options,
        modifiedMs: c.modifiedMs,
      };
      const upload = { request, slot, chunkSize: c.chunkSize, compression: c.compression, received: Buffer.from(c.received, 'base64') };
      if (this.parked.isPastTtl(c.savedMs)) {
        // Expired while the server was down: its data goes before start() returns.
        await slot.discard();
        this.parked.parkExpired(c.transferId, upload, c.savedMs);
      } else {
        this.parked.park(c.transferId, upload, c.savedMs);
      }
    }
  }

  get address(): ServerAddress | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Uploads whose connection was lost and that wait for a RESUME_REQUEST (expired ones included until purged). */
  get parkedUploadCount(): number {
    return this.parked.size;
  }

  private accept(raw: Socket): void {
    if (this.stopping || this.connections.size >= (this.opts.maxConnections ?? Defaults.MAX_CONNECTIONS)) {
      // Refused before anything is read: the socket stays paused (pauseOnConnect),
      // so whatever the peer sends stays in the kernel's bounded buffers.
      this.track(raw);
      raw.on('error', () => undefined);
      this.refused.add(raw);
      raw.once('close', () => this.refused.delete(raw));
      const refusal = new SocketSink(raw);
      // Gone once the kernel has the ERROR: unread, the peer's own close would never be seen.
      refusal.send([encodeControl({ type: MessageType.ERROR, transferId: NIL_UUID, errorCode: ErrorCode.SERVER_BUSY, message: 'server busy' })], () => raw.destroy());
      refusal.close();
      return;
    }
    const reads = new ReadBuffers();
    const { socket, adopted } = adoptSocket(raw, reads);
    const sink = new SocketSink(socket);
    this.track(socket);
    socket.setNoDelay(true);
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const actor = new ServerConnectionActor(this.ctx, sink, remote, this);
    this.connections.add(actor);
    const stop = actor.stop.bind(actor);
    actor.stop = (reason?: unknown) => {
      this.connections.delete(actor);
      const stopped = stop(reason);
      // stop() must wait for connections already closing: their uploads park as they stop.
      this.closing.add(stopped);
      void stopped.finally(() => this.closing.delete(stopped));
      return stopped;
    };
    const { resume } = pipeSocket(
      socket,
      this.pool,
      {
        frame: (frame) => actor.tell({ kind: 'frame', frame }),
        decodeError: (error) => actor.tell({ kind: 'decodeError', error }),
        closed: () => actor.tell({ kind: 'socketClosed' }),
      },
      this.ctx.limits.maxChunkSize,
      adopted ? reads : undefined,
      this.ctx.receiveBudget,
    );
    actor.onDrain = resume;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** A connection actor failed: close it, keep serving the others. */
  childFailed(child: Actor<never>, error: unknown): void {
    this.emit('connectionError', error);
    void child.stop(error);
  }

  /**
   * Stops accepting, sends DISCONNECT(server_shutdown) to every client,
   * closes their sockets and the worker pool. Nothing is left running.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const server = this.server;
      const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
      await Promise.all([...this.connections].map((c) => c.shutdown()));
      // Sockets refused as busy must not hold up the stop.
      for (const s of this.refused) s.destroy();
      // Adopted sockets (see adoptSocket) are not counted by server.close():
      // wait for every tracked socket itself, and destroy those a peer keeps open.
      const socketsClosed = Promise.all([...this.sockets].map((s) => new Promise<void>((r) => s.once('close', () => r()))));
      const deadline = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 2_000);
      await Promise.all([closed, socketsClosed]);
      clearTimeout(deadline);
      await Promise.all([...this.closing]);
      await this.parked.clear();
      await this.storage.flushIndex();
      if (this.ownsPool) await this.pool.close();
    })();
    return this.stopping;
  }
}
