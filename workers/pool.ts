/**
 * The typed facade over the piscina pool: one pool per process, sized to the
 * cores. Callers hand over ArrayBuffers (moved, never copied) and get them
 * back in the result.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { FtsError } from '../protocol/errors.js';
import { failureError } from './failure.js';
import { compiledTasksUrl } from './compile.js';
import { BufferPool, moved, type BufferPoolOptions } from './buffer-pool.js';
import { FileSourceHandle } from './source.js';
import { PortClient } from './port-client.js';
import {
  HashControl,
  type HashResult,
  type HashTask,
  type SyncTask,
  type TaskFailure,
  type WriteChunkResult,
  type WriteChunkTask,
  type SinkReply,
  type SinkRequest,
  type SinkTask,
  type WorkerSetup,
} from './types.js';

export interface WorkerPoolOptions {
  /**
   * Worker threads. Default: one less than the cores (at least one): the
   * main thread keeps a core busy with sockets and frames. On the 2-core
   * machine where both ends share the cores, one worker gave a 1 GiB upload
   * 15% less server CPU and 10% more speed than two.
   */
  threads?: number;
  /**
   * Tasks a worker holds at once. Default 4096. Hash, sink and source tasks
   * wait for data without blocking their thread, one or two per transfer, so
   * a worker must accept many: one that waits for a slot stalls its transfer. 64 a
   * thread are kept for short tasks; the rest bound the transfers a pool
   * serves at once (the protocol's defaults allow 100 connections x 16).
   */
  tasksPerThread?: number;
  /** Slab slots and fallback buffers (see BufferPool). */
  buffers?: BufferPoolOptions;
}


/** Task slots a thread keeps for short tasks (chunk reads, syncs) whatever the long-lived ones take. */
const SHORT_TASK_SLOTS = 64;


export class WorkerPool {
  readonly buffers: BufferPool;
  readonly threads: number;
  private readonly piscina: Piscina;
  /** Task slots that long-lived tasks (hashes, sinks, sources) may hold at once. */
  private readonly longLivedSlots: number;
  private longLivedRunning = 0;
  private readonly longLivedQueue: (() => void)[] = [];
  private readonly liveHashes = new Set<HashHandle>();
  private readonly liveSinks = new Set<FileSinkHandle>();
  private readonly liveSources = new Set<FileSourceHandle>();
  private closed = false;
  private warming: Promise<{ threadId: number }> | undefined;

  constructor(opts: WorkerPoolOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? availableParallelism() - 1);
    const perThread = Math.max(SHORT_TASK_SLOTS + 1, opts.tasksPerThread ?? 4096);
    this.buffers = new BufferPool(opts.buffers);
    this.piscina = new Piscina({
      filename: compiledTasksUrl(),
      // Workers inherit the parent's flags, `--import tsx` included, which
      // would start tsx's loader (and its hooks thread) in every worker for a
      // module that is already plain JavaScript. None are needed; and an
      // explicit list holding a per-process flag (--perf-basic-prof, V8
      // options) would make the Worker constructor throw, so none are passed.
      execArgv: [],
      minThreads: this.threads,
      maxThreads: this.threads,
      concurrentTasksPerWorker: perThread,
      idleTimeout: 30_000,
      workerData: { slab: this.buffers.slab, slotSize: this.buffers.slotSize, slabAligned: this.buffers.slabAligned } satisfies WorkerSetup,
      // 'sync' parks an idle worker in Atomics.wait, which would stall the
      // hash tasks that wait asynchronously for more of a file.
      atomics: 'disabled',
    });
    // Hash, sink and source tasks hold their slot for a whole transfer: leave
    // slots for chunk reads and syncs, so long-lived tasks can never starve
    // the short ones they wait on. Past the limit, a long-lived task waits
    // for a slot (its requests queue on its port meanwhile); an upload's hash
    // ends by itself, so a source waiting behind hashes gets a slot.
    this.longLivedSlots = Math.max(1, this.threads * (perThread - SHORT_TASK_SLOTS));
  }

  /** Opens a source: one sender's chunk reads, served by one worker over a port; with `hash`, it also hashes that file. */
  openSource(hash?: { fd: number; size: number }): FileSourceHandle {
    const handle = new FileSourceHandle(
      (task) =>
        this.longLived(() => {
          if (this.closed) return Promise.reject(new FtsError(-740, 'worker pool is closed'));
          return this.piscina.run(task, { name: 'fileSource', transferList: [task.port] }) as Promise<{ ok: true }>;
        }),
      hash,
    );
    this.liveSources.add(handle);
    void handle.settled().then(() => this.liveSources.delete(handle));
    return handle;
  }

  /** Opens the sink that checks, writes and hashes the chunks of one received file. */
  openSink(opts: Omit<SinkTask, 'port'>): FileSinkHandle {
    const handle = new FileSinkHandle(opts, (task, granted) =>
      this.longLived(() => {
        granted();
        if (this.closed) return Promise.reject(new FtsError(-740, 'worker pool is closed'));
        return this.piscina.run(task, { name: 'fileSink', transferList: [task.port] }) as Promise<{ ok: true } | TaskFailure>;
      }),
    );
    this.liveSinks.add(handle);
    void handle.settled().then(() => this.liveSinks.delete(handle));
    return handle;
  }

  /**
   * Resolves once a worker thread has started and loaded the task module.
   * A thread takes about 90 ms to get there here: a client that began a
   * transfer sooner had its first chunks wait for it (a download's first
   * ACK came 100 ms after its first chunk arrived), so `connect()` waits
   * for this alongside the handshake.
   */
  ready(): Promise<{ threadId: number }> {
    this.warming ??= this.run<{ threadId: number }>('warm', {}, []);
    return this.warming;
  }

  async syncFile(fd: number): Promise<void> {
    const result = await this.run<{ ok: true } | TaskFailure>('syncFile', { fd } satisfies SyncTask, []);
    if (!result.ok) throw failureError(result);
  }

  /** Starts hashing `fd` from byte 0; feed it with `advance`, end it with `finish`. */
  hashFile(fd: number): HashHandle {
    const handle = new HashHandle(fd, (task) => this.startHash(task));
    this.liveHashes.add(handle);
    handle.done.finally(() => this.liveHashes.delete(handle)).catch(() => undefined);
    return handle;
  }

  /** Hashes a complete file of `size` bytes. */
  async hashWholeFile(fd: number, size: number): Promise<string> {
    const handle = this.hashFile(fd);
    return handle.finish(size);
  }

  private startHash(task: HashTask): Promise<HashResult> {
    return this.longLived(() => this.run<HashResult>('hashFile', task, []));
  }

  /** Runs a long-lived task once one of their slots is free. */
  private async longLived<R>(start: () => Promise<R>): Promise<R> {
    // A slot is handed straight from the task that ends to the first waiter,
    // so a caller arriving in between cannot take it too.
    if (this.longLivedRunning >= this.longLivedSlots) await new Promise<void>((resolve) => this.longLivedQueue.push(resolve));
    else this.longLivedRunning++;
    try {
      return await start();
    } finally {
      const next = this.longLivedQueue.shift();
      if (next) next();
      else this.longLivedRunning--;
    }
  }

  private run<R>(name: string, task: object, transferList: ArrayBuffer[]): Promise<R> {
    if (this.closed) return Promise.reject(new FtsError(-740, 'worker pool is closed'));
    return this.piscina.run(task, { name, transferList }) as Promise<R>;
  }

  /** Aborts running hashes and stops the threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.liveHashes) h.abort();
    for (const s of this.liveSinks) s.abort();
    for (const s of this.liveSources) s.close();
    for (const wake of this.longLivedQueue.splice(0)) wake();
    await this.piscina.destroy();
  }
}

/**
 * One SHA-256 in progress over a growing file. `advance(n)` says the first n
 * bytes are final; `finish(size)` says the file ends there and resolves with
 * the hex digest.
 */
export class HashHandle {
  readonly done: Promise<string>;
  private readonly control = new SharedArrayBuffer(HashControl.BYTES);
  private readonly words = new Int32Array(this.control);
  private readonly limits = new Float64Array(this.control, HashControl.LIMIT_BYTE_OFFSET, 2);

  constructor(fd: number, start: (task: HashTask) => Promise<HashResult>) {
    this.done = start({ fd, control: this.control }).then((result) => {
      if (!result.ok) throw failureError(result);
      return result.sha256;
    });
    // A caller that never awaits (a cancelled transfer) must not crash the process.
    this.done.catch(() => undefined);
  }

  /** Bytes hashed so far. */
  get hashedBytes(): number {
    return this.limits[1]!;
  }

  advance(limit: number): void {
    if (limit <= this.limits[0]!) return;
    this.limits[0] = limit;
    this.wake();
  }

  finish(size: number): Promise<string> {
    this.limits[0] = size;
    Atomics.store(this.words, HashControl.STATE, HashControl.FINAL);
    this.wake();
    return this.done;
  }

  settled(): Promise<void> {
    return this.done.then(
      () => undefined,
      () => undefined,
    );
  }

  abort(): void {
    Atomics.store(this.words, HashControl.STATE, HashControl.ABORTED);
    this.wake();
  }

  private wake(): void {
    Atomics.add(this.words, HashControl.SEQ, 1);
    Atomics.notify(this.words, HashControl.SEQ);
  }
}

/**
 * The main thread's end of a file sink (workers/sink-task.ts): requests go
 * over a message port to the one worker that holds the file, and are answered
 * in order.
 */
export class FileSinkHandle {
  private readonly port: PortClient<SinkRequest, SinkReply>;
  /**
   * The sink's task waits for a long-lived task slot (all are held by other
   * transfers): its requests wait on its port, and nothing it is sent is
   * written until another transfer ends.
   */
  waitingForSlot = true;

  constructor(opts: Omit<SinkTask, 'port'>, start: (task: SinkTask, granted: () => void) => Promise<{ ok: true } | TaskFailure>) {
    // At the port's close the sink's descriptors are closed.
    this.port = new PortClient('file sink', (port) => start({ ...opts, port }, () => (this.waitingForSlot = false)), (closed) =>
      closed.op === 'closed' && closed.failure ? failureError(closed.failure) : undefined,
    );
  }

  /** Checks and writes chunks; buffers come back in the results. */
  async write(chunks: WriteChunkTask[]): Promise<WriteChunkResult[]> {
    const reply = await this.port.request({ op: 'write', id: 0, chunks }, moved(chunks.map((c) => c.ref)));
    if (reply.op !== 'write') throw new Error(`sink answered ${reply.op} to write`);
    return reply.results;
  }

  /** Makes everything written so far durable. */
  async sync(): Promise<void> {
    const reply = await this.port.request({ op: 'sync', id: 0 }, []);
    if (reply.op !== 'sync') throw new Error(`sink answered ${reply.op} to sync`);
    if (!reply.ok) throw failureError(reply.failure);
  }

  /** The file is complete: its SHA-256 (hex). The sink ends. */
  async finish(): Promise<string> {
    const reply = await this.port.request({ op: 'finish', id: 0 }, []);
    if (reply.op !== 'finish') throw new Error(`sink answered ${reply.op} to finish`);
    if (!reply.ok) throw failureError(reply.failure);
    return reply.sha256;
  }

  abort(): void {
    this.port.post({ op: 'abort', id: 0 });
  }

  /** Resolves once the sink's task has ended (and closed its descriptors), however it ended. */
  settled(): Promise<void> {
    return this.port.done;
  }
}
