/**
 * Worker-thread side of the pool: the CPU work of a transfer (CRC32, LZ4,
 * SHA-256) together with the file I/O it sits next to, so a chunk crosses
 * threads once each way and its bytes are never copied between threads.
 *
 * Errors do not survive postMessage, so expected failures come back as
 * `{ ok: false, code, message }` results; only bugs throw.
 */
import { createHash } from 'node:crypto';
import { fdatasyncSync, fstatSync, readSync, readv, readvSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { crc32 } from '@node-rs/crc32';
import { compressSync } from 'lz4-napi';
import { runFileSink } from './sink-task.js';
import { taskFailure as failure } from './task-failure.js';
import { PAGE_BYTES as PAGE } from './aligned-memory.js';
import { RefusedDirect } from './refused-direct.js';
// Piscina hands its \`workerData\` option to each Worker as is, so node's own
// export holds it: importing piscina's index here only to read it took 22 ms
// of each worker's start-up (and delayed a client's first chunk).
import { threadId, workerData } from 'node:worker_threads';
import { HashControl, type HashTask, type HashResult, type ReadChunkResult, type ReadChunkTask, type SyncTask, type TaskFailure, type SinkTask, type SourceReply, type SourceRequest, type SourceTask, type BufferRef, type WorkerSetup } from './types.js';

const setup = workerData as WorkerSetup | undefined;
const slab = setup?.slab;
/** Direct descriptors the file system refused a read on (EINVAL): read through the page cache from then on. */
const refusedDirect = new RefusedDirect();

/** The bytes a ref names: a view of the shared slab, or of a moved buffer. */
function viewOf(ref: BufferRef): Buffer {
  const backing = ref.buffer ?? slab;
  if (!backing) throw new Error('no shared slab in this worker');
  return Buffer.from(backing, ref.offset, ref.length);
}

function readFully(fd: number, into: Buffer, position: number): number {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** The task's slot, whole pages of it, when the chunk may be read into it with O_DIRECT. */
function directInto(task: ReadChunkTask): Buffer | undefined {
  const direct = task.directFd;
  // Only into a whole slot (its start is page-aligned; the pages read past the chunk stay inside it).
  if (direct === undefined || refusedDirect.has(direct) || task.ref.buffer || !slab || !setup?.slabAligned) return undefined;
  if (task.position % PAGE !== 0 || task.ref.offset % setup.slotSize !== 0) return undefined;
  const pages = Math.ceil(task.length / PAGE) * PAGE;
  return pages <= setup.slotSize ? Buffer.from(slab, task.ref.offset, pages) : undefined;
}

/**
 * Reads the chunk into `view`: with O_DIRECT when the task allows it (whole
 * pages into the slot, which has room for them; the file's end stops a read
 * short), else through the page cache.
 */
function readChunkBytes(task: ReadChunkTask, view: Buffer): number {
  const into = directInto(task);
  if (into) {
    try {
      let got = 0;
      // A read that stops short of a page boundary has met the end of the file.
      while (got < into.length) {
        const n = readSync(task.directFd!, into, got, into.length - got, task.position + got);
        got += n;
        if (n === 0 || got % PAGE !== 0) break;
      }
      return Math.min(got, task.length);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      refusedDirect.add(task.directFd!);
    }
  }
  return readFully(task.fd, view, task.position);
}

/** Reads one vectored read may take (1 MiB of 256 KiB chunks). */
const VECTORED_READS = 4;

/** Where a read of a run lands, and how it may be read: direct (whole pages into its slot) or through the page cache. */
function runTarget(task: ReadChunkTask): { fd: number; into: Buffer; direct: boolean } {
  const into = directInto(task);
  return into ? { fd: task.directFd!, into, direct: true } : { fd: task.fd, into: viewOf(task.ref).subarray(0, task.length), direct: false };
}

/** Adjacent reads read as one preadv: one file, each starting where the previous ends, all direct or all through the page cache. */
interface Run {
  fd: number;
  direct: boolean;
  tasks: ReadChunkTask[];
  targets: Buffer[];
  position: number;
  /** Bytes the run asks for. */
  length: number;
}

/**
 * The run that starts at `reads[k]`: up to VECTORED_READS reads. A direct run
 * continues only past whole pages (the file's end may cut its last chunk
 * short: its whole pages are read, and the end of the file stops the read).
 */
function runAt(reads: ReadChunkTask[], k: number): Run {
  const first = reads[k]!;
  const head = runTarget(first);
  const run: Run = { fd: head.fd, direct: head.direct, tasks: [first], targets: [head.into], position: first.position, length: first.length };
  while (run.tasks.length < VECTORED_READS && k + run.tasks.length < reads.length && (!head.direct || run.tasks.at(-1)!.length % PAGE === 0)) {
    const next = reads[k + run.tasks.length]!;
    if (next.position !== run.position + run.length) break;
    const target = runTarget(next);
    if (target.fd !== head.fd || target.direct !== head.direct) break;
    run.tasks.push(next);
    run.targets.push(target.into);
    run.length += next.length;
  }
  return run;
}

/**
 * Reads runs of adjacent reads with one preadv each. For direct reads the
 * disk then gets one request of up to 1 MiB instead of four of 256 KiB,
 * which it serves here at 1.4-1.8 GB/s instead of about 0.9; for cached ones
 * it is a quarter of the system calls. Returns the reads it completed; the
 * others (and any run that fails or comes back short) are read one by one
 * as before.
 */
function readRuns(reads: ReadChunkTask[]): Set<ReadChunkTask> {
  const done = new Set<ReadChunkTask>();
  for (let k = 0; k < reads.length; ) {
    const run = runAt(reads, k);
    k += run.tasks.length;
    if (run.tasks.length < 2) continue;
    try {
      const got = readvSync(run.fd, run.targets, run.position);
      if (got >= run.length) for (const task of run.tasks) done.add(task);
    } catch (err) {
      if (run.direct && (err as NodeJS.ErrnoException).code === 'EINVAL') refusedDirect.add(run.fd);
    }
  }
  return done;
}

/**
 * Vectored direct reads on libuv's thread pool in flight from this worker, at
 * most: that pool (4 threads) is the whole process's (see POOLED_WRITES in
 * sink-task.ts).
 */
const POOLED_READS = 2;
let pooledReads = 0;

/** A message's reads when they are all one run of direct reads (as `readRuns` would read them). */
function directRun(reads: ReadChunkTask[]): Run | undefined {
  if (reads.length < 2) return undefined;
  const run = runAt(reads, 0);
  return run.direct && run.tasks.length === reads.length ? run : undefined;
}

/**
 * Reads, checks and maybe compresses one chunk; `raw` sees its bytes as read,
 * before any compression. `alreadyRead`: its bytes are in its buffer already.
 */
function readOne(task: ReadChunkTask, raw?: (data: Buffer, position: number) => void, alreadyRead = false): ReadChunkResult {
  const view = viewOf(task.ref).subarray(0, task.length);
  try {
    const got = alreadyRead ? task.length : readChunkBytes(task, view);
    if (got !== task.length) {
      return { ok: false, code: -750, errno: 'ESHORT', message: `file shrank: read ${got} of ${task.length} bytes at ${task.position}`, ref: task.ref };
    }
    raw?.(view, task.position);
    const crc = crc32(view) >>> 0;
    let sent = task.length;
    let compressed = false;
    if (task.compress && task.length > 0) {
      const packed = compressSync(view);
      if (packed.length < task.length) {
        packed.copy(view, 0);
        sent = packed.length;
        compressed = true;
      }
    }
    return { ok: true, ref: task.ref, crc32: crc, sent, compressed };
  } catch (err) {
    return { ...failure(err, -750), ref: task.ref };
  }
}

/**
 * A sender's reads over its own port: a port message costs a quarter of a
 * piscina task (about 11 against 46 microseconds of CPU, both sides), and
 * adjacent direct reads of one message are one vectored read. An upload's source also hashes the
 * file: each chunk read at the hash's position is hashed from memory, so a
 * file sent in order is read once; what was not (the chunks a resumed upload
 * skips) is read back when the digest is asked for.
 */
export function fileSource(task: SourceTask): Promise<{ ok: true }> {
  const port = task.port;
  const hashing = task.hash;
  const hash = hashing ? createHash('sha256') : undefined;
  let hashed = 0;
  const inOrder = (data: Buffer, position: number): void => {
    if (position !== hashed) return;
    hash!.update(data);
    hashed += data.length;
  };
  let digested: string | undefined;
  const digest = async (): Promise<string> => {
    if (digested !== undefined) return digested;
    // Only what in-order reads did not cover is read back (most uploads: nothing).
    const slice = hashed < hashing!.size ? Buffer.allocUnsafeSlow(HASH_SLICE) : Buffer.alloc(0);
    let slices = 0;
    while (hashed < hashing!.size) {
      const want = Math.min(HASH_SLICE, hashing!.size - hashed);
      const got = readFully(hashing!.fd, want === HASH_SLICE ? slice : slice.subarray(0, want), hashed);
      if (got !== want) throw Object.assign(new Error(`file is shorter than ${hashing!.size} bytes`), { code: 'ESHORT' });
      hash!.update(slice.subarray(0, got));
      hashed += got;
      // Let the other tasks of this thread run between slices.
      if (++slices % 4 === 0) await yieldToLoop();
    }
    digested = hash!.digest('hex');
    return digested;
  };
  return new Promise((resolve) => {
    // Requests are handled in arrival order; a digest may take a while (reading back).
    let queue = Promise.resolve();
    port.on('message', (m: SourceRequest) => {
      // A message that is one run of direct reads (a download's) is read on
      // libuv's pool, so the next message's read starts meanwhile: the disk
      // has two requests at a time instead of one (1 GiB downloads, medians
      // 3.60 -> 3.34 s in 6 pairs, 3.27 -> 3.07 s in 5). Replies still go
      // in order: a sink given chunks out of order reads them back.
      const run = m.op === 'read' && !hash && pooledReads < POOLED_READS ? directRun(m.reads) : undefined;
      if (run && m.op === 'read') {
        const reads = m.reads;
        pooledReads++;
        const read = new Promise<boolean>((resolve) =>
          readv(run.fd, run.targets, run.position, (err, got) => {
            pooledReads--;
            if (err?.code === 'EINVAL') refusedDirect.add(run.fd);
            // A failed or short run is read again chunk by chunk, as readRuns' would be.
            resolve(!err && got >= run.length);
          }),
        );
        queue = queue
          .then(() => read)
          .then((done) => {
            const results = reads.map((r) => readOne(r, undefined, done));
            port.postMessage({ op: 'read', id: m.id, results } satisfies SourceReply, reads.flatMap((r) => (r.ref.buffer ? [r.ref.buffer] : [])));
          });
        return;
      }
      queue = queue.then(async () => {
        if (m.op === 'read') {
          const read = readRuns(m.reads);
          const results = m.reads.map((r) => readOne(r, hash ? inOrder : undefined, read.has(r)));
          port.postMessage({ op: 'read', id: m.id, results } satisfies SourceReply, m.reads.flatMap((r) => (r.ref.buffer ? [r.ref.buffer] : [])));
        } else if (m.op === 'digest') {
          const reply: SourceReply = hashing
            ? await digest().then(
                (sha256) => ({ op: 'digest' as const, id: m.id, ok: true as const, sha256 }),
                (err: unknown) => ({ op: 'digest' as const, id: m.id, ok: false as const, failure: failure(err, -750) }),
              )
            : { op: 'digest', id: m.id, ok: false, failure: { ok: false, code: -750, errno: '', message: 'this source does not hash' } };
          port.postMessage(reply);
        } else {
          port.postMessage({ op: 'closed', id: 0 } satisfies SourceReply);
          port.close();
          resolve({ ok: true });
        }
      });
    });
  });
}

/** A received file's sink: its chunks checked, written and hashed in this thread (see sink-task.ts). */
export function fileSink(task: SinkTask): Promise<{ ok: true } | TaskFailure> {
  return runFileSink(task, viewOf);
}

/** Nothing: a first task, so the thread that runs it has loaded this module (WorkerPool.ready). */
export function warm(): { threadId: number } {
  return { threadId };
}

/** Makes written data durable before anything (a checkpoint, a rename) names it. */
export function syncFile(task: SyncTask): { ok: true } | TaskFailure {
  try {
    fdatasyncSync(task.fd);
    return { ok: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return failure(err, code === 'ENOSPC' || code === 'EDQUOT' ? -754 : -751);
  }
}

const HASH_SLICE = 1024 * 1024;

/**
 * SHA-256 of a file that may still be growing. The main thread publishes, in
 * a SharedArrayBuffer, how many leading bytes are final (`HashControl`); this
 * task hashes up to there, reading the file itself so no chunk crosses
 * threads twice, and waits (without blocking the thread, so other tasks run
 * meanwhile) until more is final, the end is declared, or it is aborted.
 */
export async function hashFile(task: HashTask): Promise<HashResult> {
  const words = new Int32Array(task.control);
  const limits = new Float64Array(task.control, HashControl.LIMIT_BYTE_OFFSET, 2);
  const hash = createHash('sha256');
  const slice = Buffer.allocUnsafeSlow(HASH_SLICE);
  let position = 0;
  let slices = 0;
  try {
    for (;;) {
      const seq = Atomics.load(words, HashControl.SEQ);
      const state = Atomics.load(words, HashControl.STATE);
      if (state === HashControl.ABORTED) return { ok: false, code: -711, errno: '', message: 'hash aborted' };
      const limit = limits[0]!;
      while (position < limit) {
        const want = Math.min(HASH_SLICE, limit - position);
        const got = readFully(task.fd, want === HASH_SLICE ? slice : slice.subarray(0, want), position);
        if (got !== want) {
          const size = fstatSync(task.fd).size;
          return { ok: false, code: -750, errno: 'ESHORT', message: `file is ${size} bytes, expected at least ${limit}` };
        }
        hash.update(got === HASH_SLICE ? slice : slice.subarray(0, got));
        position += got;
        limits[1] = position;
        // Let the other tasks this worker holds (CRC, writes) run between slices.
        if (++slices % 4 === 0) await yieldToLoop();
        if (Atomics.load(words, HashControl.STATE) === HashControl.ABORTED) return { ok: false, code: -711, errno: '', message: 'hash aborted' };
      }
      if (state === HashControl.FINAL && position >= limit) {
        return { ok: true, sha256: hash.digest().toString('hex'), bytes: position };
      }
      const waited = Atomics.waitAsync(words, HashControl.SEQ, seq);
      if (waited.async) await waited.value;
    }
  } catch (err) {
    return failure(err, -750);
  }
}
