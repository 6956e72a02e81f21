/**
 * Worker side of a file sink: the one place a received file's chunks are
 * checked, written and hashed. It is a long-lived task with its own message
 * port, so every chunk of a file reaches the same thread, in order, and the
 * SHA-256 is computed from the chunk in memory instead of being read back.
 *
 *   port ──write──► decompress, CRC32 ──► staging area (page-aligned) ──O_DIRECT, on libuv's pool──► file
 *                                                  └─ meanwhile SHA-256 of the run, when it is next in file order
 *
 * Consecutive chunks of a request are staged as one run and written in one
 * go. A run of 1 MiB or more is written on libuv's thread pool while this
 * thread hashes the same bytes: the disk's time and the hash's overlap
 * instead of adding up (a 1 GiB upload here: 3.3 s -> 2.9 s). A chunk is reported written (and so acknowledged)
 * only once its run is in the file; a run that fails to write leaves the sink
 * unable to give a digest, so the digest never covers unwritten bytes. Chunks that were
 * in the file before (a resumed transfer) or that came before a gap (a NACKed
 * chunk) are hashed by reading them back, a slice at a time between requests.
 *
 * Direct I/O is the point: on this kind of machine the kernel's copy into the
 * page cache cost as much CPU as the rest of the receive path together (a
 * 1 GiB buffered write: 0.6–2.8 s of system time; direct: 0.35 s), and the
 * receiver has no use for the cached copy. Direct I/O needs page-aligned
 * memory, so staging areas are (aligned-memory.ts). Where O_DIRECT
 * is unknown or refused (tmpfs, macOS), the same path writes buffered.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants as fsc, fdatasync, fdatasyncSync, fstatSync, openSync, readSync, write, writeSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { crc32 } from '@node-rs/crc32';
import { uncompressSync } from 'lz4-napi';
import { PAGE_BYTES, pageAlignedBuffer } from './aligned-memory.js';
import { taskFailure as failure } from './task-failure.js';
import type { BufferRef, SinkReply, SinkRequest, SinkTask, TaskFailure, WriteChunkResult, WriteChunkTask } from './types.js';

const ALIGN = PAGE_BYTES;
/** A staging area: one write takes a run of up to 5 MiB of consecutive chunks (at least five of the largest, 1 MiB). */
const STAGING_BYTES = 5 * 1024 * 1024;
/** Staging areas of a worker thread, at most: its sinks take turns when more write at once. */
const STAGING_AREAS = 4;
const READ_SLICE = 1024 * 1024;
/**
 * Runs from this size on are written on libuv's thread pool while this thread
 * hashes them; smaller ones here, at once: there is little to overlap, and
 * the hand-off to the pool and back would cost more (a download, whose chunks
 * come in small requests, took 0.4 s more client CPU a GiB).
 */
const POOLED_WRITE_BYTES = 1024 * 1024;

type StagingArea = { buffer: Buffer; aligned: boolean };

/**
 * This worker's staging areas. A sink holds one from the start of a write
 * request to the end of its last write (which may run on libuv's thread pool
 * while other sinks of this thread go on), so each writing sink needs its
 * own; they are made as needed, up to STAGING_AREAS, and reused.
 */
const staging = {
  free: [] as StagingArea[],
  made: 0,
  /** No more areas are made: the limit, or one came out unaligned after an aligned first. */
  full: false,
  /** Whether the first area made is page-aligned: then direct I/O is worth opening. */
  aligned: true,
  waiting: [] as ((area: StagingArea) => void)[],
  make(): StagingArea | undefined {
    const { buffer, aligned } = pageAlignedBuffer(STAGING_BYTES);
    if (this.made === 0) this.aligned = aligned;
    // Each WebAssembly memory reserves gigabytes of address space: under a
    // limit, later ones may come out as ordinary memory. Their sinks would
    // fail direct writes (EINVAL) and fall back for good, so wait for an
    // aligned area instead (one exists, held by another sink).
    else if (this.aligned && !aligned) {
      this.full = true;
      return undefined;
    }
    if (++this.made >= STAGING_AREAS) this.full = true;
    return { buffer, aligned };
  },
  async take(): Promise<StagingArea> {
    const area = this.free.pop() ?? (this.full ? undefined : this.make());
    return area ?? new Promise((resolve) => this.waiting.push(resolve));
  },
  give(area: StagingArea): void {
    const next = this.waiting.shift();
    if (next) next(area);
    else this.free.push(area);
  },
  /** Whether staging areas are page-aligned; makes the first one to find out. */
  pageAligned(): boolean {
    if (this.made === 0) this.free.push(this.make()!);
    return this.aligned;
  },
};

/**
 * Writes on libuv's thread pool in flight from this worker, at most: that pool
 * (4 threads by default) is the whole process's, and the main thread's file
 * system calls (storage, checkpoints) wait behind whatever fills it.
 */
const POOLED_WRITES = 2;
let pooledWrites = 0;
/** Syncs on libuv's thread pool in flight from this worker, at most. */
const POOLED_SYNCS = 1;
let pooledSyncs = 0;

/**
 * Writes all of `data` at `position`: on libuv's thread pool when `pooled`, so
 * this thread can hash the same bytes meanwhile, else here and now.
 */
async function writeFully(fd: number, data: Uint8Array, position: number, pooled: boolean): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = pooled ? await pooledWrite(fd, data, done, position + done) : writeSync(fd, data, done, data.length - done, position + done);
    if (n === 0) throw Object.assign(new Error(`wrote nothing at ${position + done}`), { code: 'EIO' });
    done += n;
  }
}

async function pooledWrite(fd: number, data: Uint8Array, from: number, position: number): Promise<number> {
  pooledWrites++;
  try {
    return await new Promise<number>((resolve, reject) => write(fd, data, from, data.length - from, position, (err, written) => (err ? reject(err) : resolve(written))));
  } finally {
    pooledWrites--;
  }
}

/** `path` opened again for writing with O_DIRECT, if it is still `fd`'s file; -1 otherwise. */
function openDirect(fd: number, path: string | undefined, chunkSize: number): number {
  const flag = fsc.O_DIRECT;
  if (!path || !flag || chunkSize % ALIGN !== 0 || !staging.pageAligned()) return -1;
  let direct: number;
  try {
    direct = openSync(path, fsc.O_WRONLY | flag);
  } catch {
    return -1;
  }
  const a = fstatSync(fd);
  const b = fstatSync(direct);
  if (a.dev === b.dev && a.ino === b.ino) return direct;
  closeSync(direct);
  return -1;
}

class FileSink {
  private readonly hash: Hash = createHash('sha256');
  /** Leading bytes of the file already hashed. */
  private hashed = 0;
  /** Chunks in the file: written here, or there before (a resumed transfer). */
  private readonly present: Uint8Array;
  private direct: number;
  /** Set by an abort request as it arrives: a long read-back in `finish` stops at its next slice. */
  aborted = false;
  private sliceBuffer: Buffer | undefined;
  /** The staging area this sink holds while it serves a write request. */
  private area: StagingArea | undefined;
  /** A run was hashed while its write failed: this sink can no longer give a digest. */
  private hashedUnwritten: Error | undefined;
  // The run of verified chunks gathered in the staging area.
  private runStart = -1;
  private runLength = 0;

  constructor(
    private readonly t: SinkTask,
    private readonly viewOf: (ref: BufferRef) => Buffer,
  ) {
    this.present = t.present ? new Uint8Array(t.present) : new Uint8Array(Math.ceil(Math.ceil(t.fileSize / t.chunkSize) / 8));
    this.direct = openDirect(t.fd, t.path, t.chunkSize);
  }

  close(): void {
    if (this.direct >= 0) closeSync(this.direct);
    this.direct = -1;
  }

  /**
   * Hashes, reading it back, up to 1 MiB of what is in the file at the hash's
   * position: the kept chunks of a resumed file, or chunks that came before a
   * gap (a NACKed chunk) now filled. False when there is nothing to do.
   */
  catchUpSlice(): boolean {
    const size = this.t.chunkSize;
    if (this.hashed >= this.t.fileSize || !this.has(Math.floor(this.hashed / size))) return false;
    this.hashFromFile(Math.min(size - (this.hashed % size), READ_SLICE, this.t.fileSize - this.hashed));
    return true;
  }

  /**
   * Checks and writes `chunks`. A chunk is reported ok only once the run it
   * was staged in is in the file; when a run fails to write, every chunk of
   * it fails, and so does the rest of the request.
   */
  async write(chunks: WriteChunkTask[]): Promise<WriteChunkResult[]> {
    this.area = await staging.take();
    try {
      return await this.writeStaged(chunks);
    } finally {
      staging.give(this.area);
      this.area = undefined;
    }
  }

  private async writeStaged(chunks: WriteChunkTask[]): Promise<WriteChunkResult[]> {
    const results: WriteChunkResult[] = [];
    /** Indices in `results` of the chunks in the staged run. */
    const staged: number[] = [];
    let failed: TaskFailure | undefined;
    const flush = async (): Promise<void> => {
      try {
        await this.flush();
      } catch (err) {
        failed = writeFailure(err);
        for (const k of staged) results[k] = { ...failed, ref: results[k]!.ref };
      }
      staged.length = 0;
    };
    for (const chunk of chunks) {
      const checked = failed ? undefined : verify(chunk, this.viewOf(chunk.ref));
      if (checked && !checked.ok) {
        results.push(checked);
        continue;
      }
      if (checked && !this.extends(checked.data, chunk.position)) await flush();
      if (!checked || failed) {
        results.push({ ...failed!, ref: chunk.ref });
        continue;
      }
      this.stage(checked.data, chunk.position);
      staged.push(results.length);
      results.push({ ok: true, ref: chunk.ref });
    }
    if (!failed) await flush();
    return results;
  }

  /**
   * Syncs the file on libuv's thread pool, so writes go on meanwhile. It
   * covers every write of an earlier request: requests are served in order
   * and each one's writes are done before the next is taken. One sync a
   * worker at a time goes to the pool (it is the whole process's, see
   * POOLED_WRITES); while one is under way, others run here, in line.
   */
  async sync(): Promise<void> {
    if (pooledSyncs >= POOLED_SYNCS) return fdatasyncSync(this.t.fd);
    pooledSyncs++;
    try {
      await new Promise<void>((resolve, reject) => fdatasync(this.t.fd, (err) => (err ? reject(err) : resolve())));
    } finally {
      pooledSyncs--;
    }
  }

  /** The file ends at `fileSize`: hashes what is left (from the file) and returns the digest. */
  async finish(): Promise<string> {
    if (this.hashedUnwritten) throw this.hashedUnwritten;
    let slices = 0;
    while (this.hashed < this.t.fileSize) {
      this.hashFromFile(Math.min(READ_SLICE, this.t.fileSize - this.hashed));
      if (++slices % 4 === 0) await yieldToLoop();
      if (this.aborted) throw new Error('aborted');
    }
    return this.hash.digest('hex');
  }

  /** Whether `data` at `position` can join the staged run (or there is none). */
  private extends(data: Buffer, position: number): boolean {
    return this.runLength === 0 || (position === this.runStart + this.runLength && this.runLength + data.length <= this.area!.buffer.length);
  }

  /** Adds a verified chunk to the staged run; `extends()` said it may. */
  private stage(data: Buffer, position: number): void {
    const area = this.area!.buffer;
    // The decoder bounds a chunk to the largest chunk size, a fifth of the area: a bug otherwise.
    if (data.length > area.length) throw new Error(`a ${data.length}-byte chunk does not fit the ${area.length}-byte staging area`);
    if (this.runLength === 0) this.runStart = position;
    data.copy(area, this.runLength);
    this.runLength += data.length;
  }

  /**
   * Writes the staged run; once it is in the file, marks its chunks present.
   * When the run is next in the file's order it is hashed from the staging
   * area, while the write is on its way if it went to libuv's pool (a run
   * that fails to write leaves the sink unable to finish, so the digest never
   * covers unwritten bytes).
   */
  private async flush(): Promise<void> {
    if (this.runLength === 0) return;
    const area = this.area!.buffer;
    const start = this.runStart;
    const length = this.runLength;
    this.runLength = 0;
    const writing = this.writeRun(area.subarray(0, length), start);
    const hashing = start === this.hashed;
    try {
      if (hashing) {
        this.hash.update(area.subarray(0, length));
        this.hashed += length;
      }
    } finally {
      // Even if hashing threw: the area goes back to other sinks only once nothing writes from it.
      await writing.catch((err: unknown) => {
        if (hashing) this.hashedUnwritten = err instanceof Error ? err : new Error(String(err));
        throw err;
      });
    }
    const size = this.t.chunkSize;
    for (let p = start; p < start + length; p += size) this.mark(Math.floor(p / size));
  }

  /** `run` into the file at `start`: its whole pages direct when the descriptor allows, the rest buffered. */
  private async writeRun(run: Buffer, start: number): Promise<void> {
    const pooled = run.length >= POOLED_WRITE_BYTES && pooledWrites < POOLED_WRITES;
    let done = 0;
    if (this.direct >= 0 && this.area!.aligned) {
      const aligned = run.length - (run.length % ALIGN);
      try {
        if (aligned > 0) await writeFully(this.direct, run.subarray(0, aligned), start, pooled);
        done = aligned;
      } catch (err) {
        // A file system that takes O_DIRECT at open but not at write: go buffered for good.
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        this.close();
      }
    }
    if (done < run.length) await writeFully(this.t.fd, run.subarray(done), start + done, pooled);
  }

  private hashFromFile(length: number): void {
    // Only a resumed or out-of-order file reads back: most sinks never allocate this.
    const slice = (this.sliceBuffer ??= Buffer.allocUnsafeSlow(READ_SLICE));
    let left = length;
    while (left > 0) {
      const want = Math.min(left, slice.length);
      const got = readSync(this.t.fd, slice, 0, want, this.hashed);
      if (got === 0) throw Object.assign(new Error(`file ends at ${this.hashed}, before ${this.t.fileSize}`), { code: 'ESHORT' });
      this.hash.update(slice.subarray(0, got));
      this.hashed += got;
      left -= got;
    }
  }

  private has(index: number): boolean {
    return (this.present[index >> 3]! & (1 << (index & 7))) !== 0;
  }

  private mark(index: number): void {
    this.present[index >> 3]! |= 1 << (index & 7);
  }
}

/** A failed write or sync: -754 disk_full when the disk (or the user's quota) is full, else -751. */
function writeFailure(err: unknown): TaskFailure {
  const code = (err as NodeJS.ErrnoException).code;
  return failure(err, code === 'ENOSPC' || code === 'EDQUOT' ? -754 : -751);
}

/** A received chunk's data, decompressed and checked; or why it is bad (-720, to be NACKed). */
function verify(task: WriteChunkTask, section: Buffer): { ok: true; data: Buffer } | (TaskFailure & { ref: BufferRef }) {
  const bad = (message: string) => ({ ok: false as const, code: -720, errno: '', message, ref: task.ref });
  let data: Buffer = section;
  if (task.compressed) {
    // The 4-byte little-endian size prefix is checked before LZ4 allocates
    // anything, so a lying prefix cannot make this thread allocate gigabytes.
    if (section.length < 4 || section.readUInt32LE(0) !== task.originalSize) return bad('compressed size prefix does not match original_size');
    try {
      data = uncompressSync(section);
    } catch (err) {
      return { ...failure(err, -720), ref: task.ref };
    }
  }
  if (data.length !== task.originalSize) return bad(`chunk is ${data.length} bytes, header says ${task.originalSize}`);
  if ((crc32(data) >>> 0) !== task.crc32) return bad('CRC32 mismatch');
  return { ok: true, data };
}

/**
 * The task: serves the sink's port until `finish` or `abort`. Requests are
 * handled one at a time, in arrival order, so a sync covers every write sent
 * before it. A sync does not hold up the writes after it: here a checkpoint's
 * fdatasync took up to 50 ms, and with the writes waiting behind it every
 * sender stalled on a full window.
 */
export async function runFileSink(task: SinkTask, viewOf: (ref: BufferRef) => Buffer): Promise<{ ok: true } | TaskFailure> {
  const sink = new FileSink(task, viewOf);
  const port = task.port;
  const reply = (message: SinkReply, moved: ArrayBuffer[]) => port.postMessage(message, moved);
  const inbox: SinkRequest[] = [];
  let wake: (() => void) | undefined;
  port.on('message', (m: SinkRequest) => {
    if (m.op === 'abort') sink.aborted = true;
    inbox.push(m);
    wake?.();
  });
  let failed: TaskFailure | undefined;
  /** Syncs under way: their replies go before the sink's last. */
  const syncs = new Set<Promise<void>>();
  try {
    for (;;) {
      const m = inbox.shift();
      if (!m) {
        // Reading back is done a slice at a time, between requests, so writes
        // (and their acknowledgements) never wait for a long catch-up.
        if (sink.catchUpSlice()) await yieldToLoop();
        else await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      if (m.op === 'write') {
        const results = await sink.write(m.chunks);
        reply({ id: m.id, op: 'write', results }, m.chunks.flatMap((c) => (c.ref.buffer ? [c.ref.buffer] : [])));
      } else if (m.op === 'sync') {
        const syncing = sink.sync().then(
          () => reply({ id: m.id, op: 'sync', ok: true }, []),
          (err: unknown) => reply({ id: m.id, op: 'sync', ok: false, failure: writeFailure(err) }, []),
        );
        syncs.add(syncing);
        void syncing.finally(() => syncs.delete(syncing));
      } else if (m.op === 'finish') {
        try {
          const sha256 = await sink.finish();
          reply({ id: m.id, op: 'finish', ok: true, sha256 }, []);
        } catch (err) {
          reply({ id: m.id, op: 'finish', ok: false, failure: failure(err, -750) }, []);
        }
        return { ok: true };
      } else {
        return { ok: true };
      }
    }
  } catch (err) {
    failed = failure(err, -750);
    return failed;
  } finally {
    await Promise.all(syncs);
    sink.close();
    reply({ op: 'closed', id: 0, ...(failed ? { failure: failed } : {}) }, []);
    port.close();
  }
}
