/**
 * The file sink (workers/sink-task.ts, opened with WorkerPool.openSink): every
 * chunk of a received file checked (LZ4, length, CRC32), written (O_DIRECT from
 * the page-aligned staging area when it can, buffered otherwise) and hashed, in
 * one worker. Real pool, real files in a temp folder; every file is compared
 * byte for byte with its source and every SHA-256 with node:crypto's.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from '@node-rs/crc32';
import { compressSync } from 'lz4-napi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { WorkerPool, type FileSinkHandle } from '../../workers/pool.js';
import type { WriteChunkResult, WriteChunkTask } from '../../workers/types.js';
import { rejection, within } from '../helpers/fixtures.js';
import { prng } from '../protocol/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 256 * KiB;
/** open(2)'s O_DIRECT (0 where the platform has none). */
const O_DIRECT = fsc.O_DIRECT ?? 0;

const test = suite('workers: the file sink (check, write, hash)');
let pool: WorkerPool;
let dir: string;
/** Folders and descriptors the tests made, removed and closed in `after`. */
const folders: string[] = [];
const descriptors = new Set<number>();

test.before(() => {
  pool = new WorkerPool({ threads: 1 });
  dir = mkdtempSync(join(tmpdir(), 'fts-sink-'));
  folders.push(dir);
});
test.after(async () => {
  await pool.close();
  for (const fd of descriptors) closeSync(fd);
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

// ---------------------------------------------------------------- data

/** `size` reproducible random (incompressible) bytes. */
function randomData(size: number, seed: number): Buffer {
  const next = prng(seed);
  const buf = Buffer.allocUnsafe(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE(Math.floor(next() * 2 ** 32), i);
  for (; i < size; i++) buf[i] = Math.floor(next() * 256);
  return buf;
}

/** `size` bytes of numbered text lines: LZ4 shrinks them a lot, and no two chunks are alike. */
function compressibleData(size: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let n = 0; length < size; n++) {
    const line = `line ${n}: the quick brown fox jumps over the lazy dog\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------- files

/** A received file: its source bytes and the (empty, or partly written) temporary file the sink fills. */
interface Target {
  path: string;
  fd: number;
  src: Buffer;
  chunkSize: number;
  chunks: number;
}

let files = 0;

function target(src: Buffer, chunkSize: number, opts: { folder?: string; flags?: string } = {}): Target {
  const path = join(opts.folder ?? dir, `file-${++files}.part`);
  closeSync(openSync(path, 'w'));
  const fd = openSync(path, opts.flags ?? 'r+');
  descriptors.add(fd);
  return { path, fd, src, chunkSize, chunks: Math.ceil(src.length / chunkSize) };
}

function closeTarget(t: Target): void {
  if (!descriptors.delete(t.fd)) return;
  closeSync(t.fd);
}

function openSink(t: Target, opts: { path?: boolean | string; present?: Uint8Array } = {}): FileSinkHandle {
  const path = opts.path === true || opts.path === undefined ? t.path : opts.path === false ? undefined : opts.path;
  return pool.openSink({
    fd: t.fd,
    ...(path ? { path } : {}),
    fileSize: t.src.length,
    chunkSize: t.chunkSize,
    ...(opts.present ? { present: opts.present } : {}),
  });
}

function chunkData(t: Target, index: number): Buffer {
  const start = index * t.chunkSize;
  return t.src.subarray(start, Math.min(start + t.chunkSize, t.src.length));
}

/** How a chunk is sent: in an owned buffer or a slab slot, compressed, or spoiled. */
interface Send {
  /** A slab slot instead of an owned (moved) buffer. */
  slab?: boolean;
  compressed?: boolean;
  /** Overwrites the compressed section's 4-byte size prefix. */
  prefix?: number;
  /** Flips one bit of the CRC32. */
  badCrc?: boolean;
  /** Replaces the data section. */
  section?: Buffer;
}

function chunkTask(t: Target, index: number, how: Send = {}): WriteChunkTask {
  const data = chunkData(t, index);
  let section = how.section ?? (how.compressed ? compressSync(data) : data);
  if (how.prefix !== undefined) {
    section = Buffer.from(section);
    section.writeUInt32LE(how.prefix, 0);
  }
  const view = pool.buffers.acquire(section.length, !how.slab);
  section.copy(view);
  return {
    ref: pool.buffers.refOf(view),
    originalSize: data.length,
    crc32: ((crc32(data) >>> 0) ^ (how.badCrc ? 1 : 0)) >>> 0,
    compressed: !!how.compressed,
    position: index * t.chunkSize,
  };
}

/** One write request; checks every buffer comes back unchanged and releases it. */
async function write(sink: FileSinkHandle, tasks: WriteChunkTask[]): Promise<WriteChunkResult[]> {
  const sent = tasks.map((task) => Buffer.from(pool.buffers.viewOf(task.ref)));
  const results = await within(sink.write(tasks), 20_000, 'write');
  assert.is(results.length, tasks.length, 'one result a chunk');
  results.forEach((r, k) => {
    const back = pool.buffers.viewOf(r.ref);
    assert.ok(back.equals(sent[k]!), `result ${k}: the chunk's buffer comes back, unchanged`);
    pool.buffers.release(back);
  });
  return results;
}

/** Writes chunks `indices` in one request; all must be ok. */
async function writeOk(t: Target, sink: FileSinkHandle, indices: number[], how: Send = {}): Promise<void> {
  const results = await write(
    sink,
    indices.map((i) => chunkTask(t, i, how)),
  );
  results.forEach((r, k) => assert.ok(r.ok, `chunk ${indices[k]}: ${r.ok ? '' : `${r.code} ${r.message}`}`));
}

/** Fails with the first differing byte unless `got` is `want`. */
function assertSameBytes(got: Buffer, want: Buffer, chunkSize: number, what: string): void {
  if (got.equals(want)) return;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  assert.unreachable(`${what}: ${got.length} bytes (expected ${want.length}), first difference at byte ${i} (chunk ${Math.floor(i / chunkSize)})`);
}

/** finish(): the digest must be the source's, the file must be the source, and the sink must have let go of the file. */
async function finishAndCheck(t: Target, sink: FileSinkHandle): Promise<void> {
  const digest = await within(sink.finish(), 20_000, 'finish');
  await within(sink.settled(), 5_000, 'settled after finish');
  assertSameBytes(readFileSync(t.path), t.src, t.chunkSize, t.path);
  assert.is(digest, sha256(t.src), 'SHA-256 of the whole file');
  assertNoDirect(t.path);
  closeTarget(t);
}

// ---------------------------------------------------------------- direct I/O, observed

/** A page-aligned buffer (WebAssembly memory is mapped on page boundaries). */
function alignedBuffer(size: number): Buffer {
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
  return Buffer.from(new wasm.Memory({ initial: Math.ceil(size / 65536) }).buffer, 0, size);
}

/** Whether files in `folder` can be opened and written with O_DIRECT (and this process's descriptors are visible in /proc). */
function acceptsDirect(folder: string): boolean {
  if (!O_DIRECT || !existsSync('/proc/self/fdinfo')) return false;
  const probe = join(folder, '.direct-probe');
  closeSync(openSync(probe, 'w'));
  try {
    const fd = openSync(probe, fsc.O_WRONLY | O_DIRECT);
    try {
      writeSync(fd, alignedBuffer(4096), 0, 4096, 0);
      return true;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  } finally {
    rmSync(probe, { force: true });
  }
}

/**
 * Descriptors of this process (worker threads share them) open on `path`
 * with O_DIRECT: the sink's own, while it writes directly. -1 where /proc
 * cannot tell.
 */
function directDescriptors(path: string): number {
  if (!O_DIRECT || !existsSync('/proc/self/fdinfo')) return -1;
  const real = realpathSync(path);
  let n = 0;
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) !== real) continue;
      const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_DIRECT) !== 0) n++;
    } catch {
      // Closed meanwhile.
    }
  }
  return n;
}

let directHere: boolean | undefined;
/** Whether the temp folder's file system takes O_DIRECT (then a sink given a path must use it). */
function directInTmp(): boolean {
  return (directHere ??= acceptsDirect(dir));
}

/** After a sink's first write: it writes directly exactly when it should (-1: cannot be observed here). */
function assertDirect(t: Target, expected: boolean, what: string): void {
  const n = directDescriptors(t.path);
  if (n < 0) return;
  assert.is(n, expected ? 1 : 0, `${what}: ${expected ? 'one O_DIRECT descriptor' : 'no O_DIRECT descriptor'} on the file`);
}

/** The sink has closed its direct descriptor (ended, or fell back to buffered). */
function assertNoDirect(path: string): void {
  const n = directDescriptors(path);
  if (n >= 0) assert.is(n, 0, 'no O_DIRECT descriptor left on the file');
}

/** Whether `folder` takes O_DIRECT but refuses a write at a file offset that is not a multiple of 512 (EINVAL). */
function refusesMisaligned(folder: string): boolean {
  if (!acceptsDirect(folder)) return false;
  const probe = join(folder, '.misaligned-probe');
  closeSync(openSync(probe, 'w'));
  const fd = openSync(probe, fsc.O_WRONLY | O_DIRECT);
  try {
    writeSync(fd, alignedBuffer(8192), 0, 8192, 100);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EINVAL';
  } finally {
    closeSync(fd);
    rmSync(probe, { force: true });
  }
}

// ---------------------------------------------------------------- 1–3: in order

test('in order, 256 KiB chunks, a tail of 1234 bytes, with a path: direct where possible; file and SHA-256 right', async () => {
  const t = target(randomData(5 * CHUNK + 1234, 1), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1]);
  assertDirect(t, directInTmp(), 'aligned chunk size and a path');
  await writeOk(t, sink, [2]);
  await writeOk(t, sink, [3, 4, 5]);
  await finishAndCheck(t, sink);
});

test('in order, one chunk a request, in slab slots, tail shorter than a page', async () => {
  const t = target(randomData(4 * CHUNK + 100, 2), CHUNK);
  const sink = openSink(t);
  for (let i = 0; i < t.chunks; i++) await writeOk(t, sink, [i], { slab: true });
  await finishAndCheck(t, sink);
});

test('in order, no path: buffered (no O_DIRECT descriptor), file and SHA-256 right', async () => {
  const t = target(randomData(5 * CHUNK + 1234, 3), CHUNK);
  const sink = openSink(t, { path: false });
  await writeOk(t, sink, [0, 1]);
  assertDirect(t, false, 'no path');
  await writeOk(t, sink, [2, 3, 4, 5]);
  await finishAndCheck(t, sink);
});

test('a path that names another file than fd (renamed over since): the sink writes only into fd\'s file', async () => {
  const t = target(randomData(3 * CHUNK + 10, 41), CHUNK);
  const other = target(randomData(1, 42), CHUNK);
  const sink = openSink(t, { path: other.path });
  await writeOk(t, sink, [0, 1, 2, 3]);
  assertNoDirect(other.path);
  assert.is(statSync(other.path).size, 0, 'nothing written to the file the path now names');
  await finishAndCheck(t, sink);
  closeTarget(other);
});

test('chunk size 64 KiB + 512 (not a multiple of 4096) with a path: buffered, right', async () => {
  const size = 64 * KiB + 512;
  const t = target(randomData(6 * size + 777, 4), size);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1]);
  assertDirect(t, false, 'unaligned chunk size');
  // A gap too, so chunks are read back at unaligned offsets.
  await writeOk(t, sink, [3, 4]);
  await writeOk(t, sink, [2]);
  await writeOk(t, sink, [5, 6]);
  await finishAndCheck(t, sink);
});

test('1 MiB chunks, 7 and a 3-byte tail in one request: more than the 5 MiB staging area', async () => {
  const t = target(randomData(7 * MiB + 3, 5), MiB);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1, 2, 3, 4, 5, 6, 7]);
  await finishAndCheck(t, sink);
});

test('the smallest chunk size, 64 KiB, a file of exactly whole chunks, in one request', async () => {
  const t = target(randomData(9 * 64 * KiB, 6), 64 * KiB);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1, 2, 3, 4, 5, 6, 7, 8], { slab: true });
  await finishAndCheck(t, sink);
});

test('an empty file: finish at once, SHA-256 of nothing', async () => {
  const t = target(Buffer.alloc(0), CHUNK);
  const sink = openSink(t);
  await finishAndCheck(t, sink);
  assert.is(statSync(t.path).size, 0);
});

// ---------------------------------------------------------------- 4: out of order

test('out of order in separate requests: 0, then 2, 3, then the gap 1, then the rest', async () => {
  const t = target(randomData(7 * CHUNK + 1234, 7), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0]);
  await writeOk(t, sink, [2]);
  await writeOk(t, sink, [3]);
  await writeOk(t, sink, [1]);
  await writeOk(t, sink, [4, 5, 6, 7]);
  await finishAndCheck(t, sink);
});

test('out of order within one request: 0, 2, 3, 1, then the rest', async () => {
  const t = target(randomData(7 * CHUNK + 1234, 8), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 2, 3, 1, 4, 5, 6, 7]);
  await finishAndCheck(t, sink);
});

test('out of order, no path: the tail first, 0 last; and a gap filled while the read-back may be running', async () => {
  const t = target(randomData(7 * CHUNK + 5000, 9), CHUNK);
  const sink = openSink(t, { path: false });
  await writeOk(t, sink, [7, 5, 6]);
  await writeOk(t, sink, [2, 3]);
  // 0 and 1 close the gap before 2..3; 4 follows without waiting, while 2..3 may be being read back.
  const a = writeOk(t, sink, [0, 1]);
  const b = writeOk(t, sink, [4]);
  await Promise.all([a, b]);
  await finishAndCheck(t, sink);
});

test('a chunk written twice (a resend crossing its ACK) is neither written wrong nor hashed twice', async () => {
  const t = target(randomData(4 * CHUNK + 10, 10), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1]);
  await writeOk(t, sink, [1, 0]);
  await writeOk(t, sink, [3]);
  await writeOk(t, sink, [2, 3, 2]);
  await writeOk(t, sink, [4, 4]);
  await finishAndCheck(t, sink);
});

// ---------------------------------------------------------------- 5: resume

/** Writes chunks `indices` of `t` straight into its file (a previous session's), and returns their bitmap. */
function preWrite(t: Target, indices: number[]): Uint8Array {
  const map = new ChunkBitmap(t.chunks);
  for (const i of indices) {
    const data = chunkData(t, i);
    writeSync(t.fd, data, 0, data.length, i * t.chunkSize);
    map.set(i);
  }
  return Uint8Array.from(map.bytes);
}

test('resume: the first 3 of 7 chunks already in the file (present), the rest sent', async () => {
  const t = target(randomData(6 * CHUNK + 1234, 11), CHUNK);
  const present = preWrite(t, [0, 1, 2]);
  const sink = openSink(t, { present });
  await writeOk(t, sink, [3, 4]);
  await writeOk(t, sink, [5, 6]);
  await finishAndCheck(t, sink);
});

test('resume, no path: kept chunks 0, 2, 5 (bitmap across a byte boundary too), the others sent; a kept one resent', async () => {
  const t = target(randomData(10 * CHUNK + 99, 12), CHUNK);
  const present = preWrite(t, [0, 2, 5, 8]);
  const sink = openSink(t, { path: false, present });
  await writeOk(t, sink, [1]);
  await writeOk(t, sink, [3, 4]);
  await writeOk(t, sink, [0]);
  await writeOk(t, sink, [6, 7, 9, 10]);
  await finishAndCheck(t, sink);
});

test('resume keeping only chunks 3 and 7 (bit 7 of byte 0): chunk 0, sent last after a pause, is never read back before it is written', async () => {
  const t = target(randomData(9 * CHUNK + 321, 32), CHUNK);
  const present = preWrite(t, [3, 7]);
  assert.equal([...present], [0x88, 0x00], 'the bitmap: LSB first');
  const sink = openSink(t, { present });
  await writeOk(t, sink, [1, 2, 4]);
  await writeOk(t, sink, [5, 6, 8, 9]);
  // Time for any (wrong) read-back of what the bitmap does not hold.
  await new Promise((resolve) => setTimeout(resolve, 50));
  await writeOk(t, sink, [0]);
  await finishAndCheck(t, sink);
});

test('resume with every chunk present: finish alone hashes the file by reading it back', async () => {
  const t = target(randomData(3 * CHUNK + 4096, 13), CHUNK);
  const present = preWrite(t, [0, 1, 2, 3]);
  const sink = openSink(t, { present });
  await finishAndCheck(t, sink);
});

// ---------------------------------------------------------------- 6–7: bad chunks

test('a wrong CRC32: -720 and not written, the other chunks of the request written; resent, the SHA-256 matches', async () => {
  const t = target(randomData(5 * CHUNK + 1234, 14), CHUNK);
  const sink = openSink(t);
  const results = await write(sink, [chunkTask(t, 0), chunkTask(t, 1, { badCrc: true }), chunkTask(t, 2), chunkTask(t, 3)]);
  assert.equal(
    results.map((r) => r.ok),
    [true, false, true, true],
  );
  const bad = results[1]!;
  assert.is(bad.ok ? 0 : bad.code, ErrorCode.CHUNK_CHECKSUM_ERROR);
  assert.is(bad.ok ? 0 : bad.code, -720);
  const file = readFileSync(t.path);
  assertSameBytes(file.subarray(0, CHUNK), chunkData(t, 0), CHUNK, 'chunk 0');
  assert.ok(file.subarray(CHUNK, 2 * CHUNK).every((b) => b === 0), 'the bad chunk left its region zero');
  assertSameBytes(file.subarray(2 * CHUNK, 4 * CHUNK), t.src.subarray(2 * CHUNK, 4 * CHUNK), CHUNK, 'chunks 2..3');
  // The first chunk bad (the one the hash waits for), then good again.
  const first = await write(sink, [chunkTask(t, 4, { badCrc: true, slab: true }), chunkTask(t, 5, { badCrc: true })]);
  assert.equal(
    first.map((r) => (r.ok ? 0 : r.code)),
    [-720, -720],
  );
  assert.is(statSync(t.path).size, 4 * CHUNK, 'nothing written past chunk 3');
  await writeOk(t, sink, [1]);
  await writeOk(t, sink, [4, 5]);
  await finishAndCheck(t, sink);
});

test('chunk 0 bad: not hashed from memory either; the resend is', async () => {
  const t = target(randomData(3 * CHUNK, 15), CHUNK);
  const sink = openSink(t, { path: false });
  const r = await write(sink, [chunkTask(t, 0, { badCrc: true }), chunkTask(t, 1), chunkTask(t, 2)]);
  assert.equal(
    r.map((x) => (x.ok ? 0 : x.code)),
    [-720, 0, 0],
  );
  await writeOk(t, sink, [0]);
  await finishAndCheck(t, sink);
});

test('a data section of the wrong length (uncompressed): -720, nothing written', async () => {
  const t = target(randomData(2 * CHUNK, 16), CHUNK);
  const sink = openSink(t);
  const short = chunkData(t, 0).subarray(0, CHUNK - 1);
  const long = Buffer.concat([chunkData(t, 1), Buffer.from([1])]);
  const r = await write(sink, [chunkTask(t, 0, { section: short }), chunkTask(t, 1, { section: long })]);
  assert.equal(
    r.map((x) => (x.ok ? 0 : x.code)),
    [-720, -720],
  );
  assert.is(statSync(t.path).size, 0);
  await writeOk(t, sink, [0, 1]);
  await finishAndCheck(t, sink);
});

test('original_size not the section\'s length, though the CRC32 is the section\'s: -720, nothing written', async () => {
  const t = target(randomData(2 * CHUNK, 31), CHUNK);
  const sink = openSink(t, { path: false });
  const lying = [0, 1].map((i) => {
    const task = chunkTask(t, i);
    return { ...task, originalSize: task.originalSize + (i === 0 ? -1 : 1) };
  });
  const r = await write(sink, lying);
  r.forEach((x, k) => assert.is(x.ok ? 0 : x.code, -720, `chunk ${k}`));
  assert.is(statSync(t.path).size, 0);
  await writeOk(t, sink, [0, 1]);
  await finishAndCheck(t, sink);
});

test('compressed chunks are written decompressed (owned buffers and slab slots, mixed with raw ones)', async () => {
  const t = target(compressibleData(5 * CHUNK + 3000), CHUNK);
  assert.ok(compressSync(chunkData(t, 0)).length < CHUNK / 2, 'the data compresses');
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1], { compressed: true });
  await writeOk(t, sink, [2]);
  await writeOk(t, sink, [3, 5], { compressed: true, slab: true });
  await writeOk(t, sink, [4], { compressed: true });
  await finishAndCheck(t, sink);
});

test('compressed sections that lie: the size prefix, a corrupt body, too short; all -720, nothing written', async () => {
  const t = target(compressibleData(4 * CHUNK + 3000), CHUNK);
  const sink = openSink(t);
  const packed = compressSync(chunkData(t, 1));
  const corrupt = Buffer.from(packed);
  for (let i = 8; i < corrupt.length; i += 97) corrupt[i] ^= 0x5a;
  const r = await write(sink, [
    chunkTask(t, 0, { compressed: true, prefix: 1 << 30 }),
    chunkTask(t, 1, { compressed: true, prefix: CHUNK - 1 }),
    chunkTask(t, 2, { compressed: true, section: corrupt }),
    chunkTask(t, 3, { compressed: true, section: Buffer.from([1, 2, 3]) }),
    // The right prefix, another chunk's data: the CRC32 says no.
    chunkTask(t, 4, { compressed: true, section: compressSync(Buffer.alloc(3000, 7)) }),
  ]);
  r.forEach((x, k) => assert.is(x.ok ? 0 : x.code, -720, `section ${k}`));
  assert.match(r[0]!.ok ? '' : r[0]!.message, /prefix/);
  assert.is(statSync(t.path).size, 0, 'nothing written');
  await writeOk(t, sink, [0, 1, 2, 3, 4], { compressed: true });
  await finishAndCheck(t, sink);
});

// ---------------------------------------------------------------- 8: sync, abort, finish

test('sync() resolves, also with writes queued behind it', async () => {
  const t = target(randomData(3 * CHUNK + 5, 17), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0]);
  await within(sink.sync(), 5_000, 'sync');
  const w = writeOk(t, sink, [1]);
  const s = sink.sync();
  await Promise.all([w, within(s, 5_000, 'sync after write')]);
  await writeOk(t, sink, [2, 3]);
  await within(sink.sync(), 5_000, 'sync');
  await finishAndCheck(t, sink);
});

test('a sync still under way when the sink is aborted is answered (it runs beside the writes) before the sink settles', async () => {
  const t = target(randomData(2 * CHUNK, 19), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0]);
  const s = sink.sync();
  sink.abort();
  await within(s, 5_000, 'the sync is answered, not dropped with the port');
  await within(sink.settled(), 5_000, 'settled');
  closeTarget(t);
});

test('syncs of several sinks of one worker at once: one goes to libuv\'s pool, the others run in line; all are answered and the files are right', async () => {
  const targets = [0, 1, 2].map((k) => target(randomData(2 * CHUNK + 7, 40 + k), CHUNK));
  const sinks = targets.map((t) => openSink(t));
  await Promise.all(targets.map((t, k) => writeOk(t, sinks[k]!, [0])));
  await within(Promise.all(sinks.map((sink) => sink.sync())), 5_000, 'three syncs at once');
  await Promise.all(targets.map((t, k) => writeOk(t, sinks[k]!, [1, 2])));
  for (let k = 0; k < 3; k++) await finishAndCheck(targets[k]!, sinks[k]!);
});

test('a sync the file system refuses (a FIFO: EINVAL) answers -751, and the sink still settles', async () => {
  const fifo = join(dir, `fifo-${++files}`);
  execFileSync('mkfifo', [fifo]);
  // O_RDWR opens a FIFO at once on Linux; fdatasync(2) refuses it.
  const fd = openSync(fifo, 'r+');
  descriptors.add(fd);
  const sink = pool.openSink({ fd, fileSize: 2 * CHUNK, chunkSize: CHUNK });
  const error = await rejection(() => within(sink.sync(), 5_000, 'sync'));
  assert.is(error.code, ErrorCode.FILE_WRITE_ERROR);
  sink.abort();
  await within(sink.settled(), 5_000, 'settled');
});

test('abort(): a write sent before it is still answered; then settled() resolves, write and finish reject', async () => {
  const t = target(randomData(3 * CHUNK, 18), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0]);
  const before = writeOk(t, sink, [1]);
  sink.abort();
  await before;
  await within(sink.settled(), 5_000, 'settled after abort');
  assertNoDirect(t.path);
  const task = chunkTask(t, 2);
  const e = await rejection(() => sink.write([task]));
  assert.is(e.code, -750);
  // Rejected before anything was sent: the buffer is still ours.
  pool.buffers.release(pool.buffers.viewOf(task.ref));
  assert.is((await rejection(() => sink.finish())).code, -750);
  assert.is((await rejection(() => sink.sync())).code, -750);
  sink.abort();
  closeTarget(t);
});

test('abort() before anything was written: the sink still settles', async () => {
  const t = target(randomData(CHUNK, 19), CHUNK);
  const sink = openSink(t);
  sink.abort();
  await within(sink.settled(), 5_000, 'settled');
  assert.ok((await rejection(() => sink.finish())) instanceof FtsError);
  closeTarget(t);
});

test('a write sent after finish() or abort(), before the sink ended, is never answered: it rejects with -750', async () => {
  const t = target(randomData(CHUNK, 29), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0]);
  const done = sink.finish();
  const late = sink.write([chunkTask(t, 0)]);
  assert.is(await within(done, 5_000, 'finish'), sha256(t.src));
  assert.is((await rejection(() => within(late, 5_000, 'late write'))).code, -750);
  await within(sink.settled(), 5_000, 'settled');
  const u = target(randomData(CHUNK, 30), CHUNK);
  const other = openSink(u);
  other.abort();
  const afterAbort = other.write([chunkTask(u, 0)]);
  assert.is((await rejection(() => within(afterAbort, 5_000, 'write after abort'))).code, -750);
  await within(other.settled(), 5_000, 'settled');
  closeTarget(t);
  closeTarget(u);
});

test('finish() ends the sink: a second finish and a later write reject', async () => {
  const t = target(randomData(2 * CHUNK, 20), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1]);
  await finishAndCheck(t, sink);
  assert.is((await rejection(() => sink.finish())).code, -750);
  const task = chunkTask(t, 0);
  assert.is((await rejection(() => sink.write([task]))).code, -750);
  pool.buffers.release(pool.buffers.viewOf(task.ref));
});

// ---------------------------------------------------------------- 9: tmpfs, and a path that cannot be opened

const shm = '/dev/shm';
const shmExists = (() => {
  try {
    return statSync(shm).isDirectory();
  } catch {
    return false;
  }
})();

test('a file on tmpfs (/dev/shm) with a path: direct if tmpfs takes it, else buffered; right either way', async () => {
  if (!shmExists) {
    console.log('  (skipped: no /dev/shm)');
    return;
  }
  let folder: string;
  try {
    folder = mkdtempSync(join(shm, 'fts-sink-'));
  } catch {
    console.log('  (skipped: /dev/shm not writable)');
    return;
  }
  folders.push(folder);
  const direct = acceptsDirect(folder);
  const t = target(randomData(6 * CHUNK + 1234, 21), CHUNK, { folder });
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1]);
  assertDirect(t, direct, `tmpfs (${direct ? 'takes' : 'refuses'} O_DIRECT)`);
  await writeOk(t, sink, [3, 4]);
  await writeOk(t, sink, [2, 5, 6]);
  await finishAndCheck(t, sink);
});

test('a path that cannot be opened (O_DIRECT refused at open): buffered through fd, right', async () => {
  const t = target(randomData(4 * CHUNK + 1234, 22), CHUNK);
  const sink = openSink(t, { path: join(dir, 'no-such-folder', 'no-such-file') });
  await writeOk(t, sink, [0, 2]);
  assertDirect(t, false, 'unopenable path');
  await writeOk(t, sink, [1, 3, 4]);
  await finishAndCheck(t, sink);
});

test('O_DIRECT refused at write (EINVAL): the sink goes buffered for good and stays right', async () => {
  // Only a write at an offset the device cannot take directly is refused on a
  // file system that opens with O_DIRECT: here a piece of chunk 1 sent again
  // at an odd offset, with its right bytes (a sink trusts positions; the
  // receiver checks them). Where that is not refused, this is only a rewrite.
  const einval = refusesMisaligned(dir);
  const t = target(randomData(4 * CHUNK + 1234, 28), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1]);
  assertDirect(t, directInTmp(), 'before');
  const at = CHUNK + 100;
  const piece = t.src.subarray(at, at + 8192);
  const view = pool.buffers.acquire(piece.length, true);
  piece.copy(view);
  const r = await write(sink, [{ ref: pool.buffers.refOf(view), originalSize: piece.length, crc32: crc32(piece) >>> 0, compressed: false, position: at }]);
  assert.ok(r[0]!.ok, r[0]!.ok ? '' : r[0]!.message);
  if (einval) assertDirect(t, false, 'after EINVAL');
  await writeOk(t, sink, [3]);
  await writeOk(t, sink, [2, 4]);
  await finishAndCheck(t, sink);
});

// ---------------------------------------------------------------- 10: many at once

test('20 sinks at once on a 1-thread pool: all open together (none waits for a slot), interleaved, all right', async () => {
  const size = 64 * KiB;
  const targets = Array.from({ length: 20 }, (_, k) => target(randomData(4 * size + 100 + k, 100 + k), size));
  const sinks = targets.map((t, k) => openSink(t, { path: k % 2 === 0 }));
  // Every sink answers its first write before any finishes: a sink waiting for a slot would hang here.
  await within(
    Promise.all(targets.map((t, k) => writeOk(t, sinks[k]!, [0], { slab: k % 3 === 0 }))),
    20_000,
    'first writes of 20 sinks',
  );
  targets.forEach((t, k) => assertDirect(t, k % 2 === 0 && directInTmp(), `sink ${k}`));
  const rest: Promise<void>[] = [];
  for (const i of [2, 1, 3, 4]) targets.forEach((t, k) => rest.push(writeOk(t, sinks[k]!, [i], { slab: k % 3 === 0, compressed: k % 4 === 1 })));
  await within(Promise.all(rest), 20_000, 'the other writes');
  await within(
    Promise.all(targets.map((t, k) => finishAndCheck(t, sinks[k]!))),
    30_000,
    'finish 20 sinks',
  );
});

test('6 sinks on a 1-thread pool sending 2 MiB runs at once: more than its 4 staging areas and 2 pooled writes; they wait their turn, all right', async () => {
  const targets = Array.from({ length: 6 }, (_, k) => target(randomData(12 * CHUNK + 500 + k, 200 + k), CHUNK));
  // Mostly buffered: a pooled write through the page cache copies from the area for longer, so a sink
  // that wrote into another's area meanwhile would show here.
  const sinks = targets.map((t, k) => openSink(t, { path: k % 3 === 0 }));
  const first = Array.from({ length: 8 }, (_, i) => i);
  await within(
    Promise.all(targets.map((t, k) => writeOk(t, sinks[k]!, first, { slab: k % 2 === 0 }))),
    20_000,
    'first 2 MiB of 6 sinks',
  );
  await within(
    Promise.all(targets.map((t, k) => writeOk(t, sinks[k]!, [8, 9, 10, 11, 12]))),
    20_000,
    'the rest',
  );
  await within(
    Promise.all(targets.map((t, k) => finishAndCheck(t, sinks[k]!))),
    20_000,
    'finish 6 sinks',
  );
});

test('abort() right behind a 2 MiB write: the write is still answered whole and the file holds it; then the sink settles', async () => {
  const t = target(randomData(10 * CHUNK, 29), CHUNK);
  const sink = openSink(t);
  const tasks = Array.from({ length: 8 }, (_, i) => chunkTask(t, i));
  const writing = sink.write(tasks);
  sink.abort();
  const results = await within(writing, 10_000, 'write');
  results.forEach((r, k) => assert.ok(r.ok, `chunk ${k}`));
  await within(sink.settled(), 5_000, 'settled');
  assertSameBytes(readFileSync(t.path).subarray(0, 8 * CHUNK), t.src.subarray(0, 8 * CHUNK), CHUNK, 'the 2 MiB written');
  assertNoDirect(t.path);
  closeTarget(t);
});

test('O_DIRECT refused on a 1 MiB write (one that goes to libuv\'s pool): buffered for good, right', async () => {
  const einval = refusesMisaligned(dir);
  const t = target(randomData(8 * CHUNK + 999, 30), CHUNK);
  const sink = openSink(t);
  await writeOk(t, sink, [0, 1, 2, 3, 4, 5]);
  // 1 MiB of the right bytes again, at an offset no device takes directly.
  const at = CHUNK + 100;
  const piece = t.src.subarray(at, at + 4 * CHUNK);
  const view = pool.buffers.acquire(piece.length, true);
  piece.copy(view);
  const r = await write(sink, [{ ref: pool.buffers.refOf(view), originalSize: piece.length, crc32: crc32(piece) >>> 0, compressed: false, position: at }]);
  assert.ok(r[0]!.ok, r[0]!.ok ? '' : r[0]!.message);
  if (einval) assertDirect(t, false, 'after EINVAL');
  await writeOk(t, sink, [6, 7, 8]);
  await finishAndCheck(t, sink);
});

// ---------------------------------------------------------------- 11: write errors

test('a read-only fd and no path: every chunk of the request fails with -751 (EBADF), nothing written', async () => {
  const t = target(randomData(3 * CHUNK + 1234, 23), CHUNK, { flags: 'r' });
  const sink = openSink(t, { path: false });
  const r = await write(sink, [chunkTask(t, 0), chunkTask(t, 1), chunkTask(t, 2)]);
  r.forEach((x, k) => {
    assert.is(x.ok ? 0 : x.code, ErrorCode.FILE_WRITE_ERROR, `chunk ${k}`);
    assert.is(x.ok ? '' : x.errno, 'EBADF');
  });
  assert.is(statSync(t.path).size, 0);
  // The failure is the request's: the sink lives on, and finish reads a file that is too short.
  const e = await rejection(() => sink.finish());
  assert.is(e.code, -750);
  await within(sink.settled(), 5_000, 'settled');
  closeTarget(t);
});

test('a 2 MiB run (written on libuv\'s pool while it is hashed) that fails to write: every chunk -751, and finish gives no digest, even though the file holds the right bytes to read back', async () => {
  const t = target(randomData(9 * CHUNK + 77, 26), CHUNK, { flags: 'r' });
  // The right bytes are already there (written around the read-only fd), so a
  // read-back could complete the hash: only the failed write must stop it.
  writeFileSync(t.path, t.src);
  const sink = openSink(t, { path: false });
  const r = await write(sink, Array.from({ length: 8 }, (_, i) => chunkTask(t, i)));
  r.forEach((x, k) => {
    assert.is(x.ok ? 0 : x.code, ErrorCode.FILE_WRITE_ERROR, `chunk ${k}`);
    assert.is(x.ok ? '' : x.errno, 'EBADF');
  });
  const e = await rejection(() => within(sink.finish(), 5_000, 'finish'));
  assert.is(e.code, -750);
  await within(sink.settled(), 5_000, 'settled');
  closeTarget(t);
});

test('a read-only fd, no path, chunks 0 and 2 in one request: both fail with -751 (a chunk is ok only once its run is written)', async () => {
  const t = target(randomData(3 * CHUNK + 1234, 24), CHUNK, { flags: 'r' });
  const sink = openSink(t, { path: false });
  const r = await write(sink, [chunkTask(t, 0), chunkTask(t, 2)]);
  assert.is(r[0]!.ok ? 0 : r[0]!.code, -751, 'chunk 0: its run failed to write');
  assert.is(r[1]!.ok ? 0 : r[1]!.code, -751, 'chunk 2');
  assert.is(statSync(t.path).size, 0, 'nothing reached the file');
  sink.abort();
  await within(sink.settled(), 5_000, 'settled');
  closeTarget(t);
});

test('a read-only fd with a path: the sink writes through its own O_DIRECT descriptor; only what goes through fd fails (-751)', async () => {
  const t = target(randomData(3 * CHUNK + 1234, 25), CHUNK, { flags: 'r' });
  const sink = openSink(t);
  const direct = directInTmp();
  const whole = await write(sink, [chunkTask(t, 0), chunkTask(t, 1)]);
  if (direct) {
    // Whole chunks go through the descriptor the sink opened itself (O_WRONLY | O_DIRECT): fd's mode does not matter.
    assert.equal(
      whole.map((x) => x.ok),
      [true, true],
    );
    assertSameBytes(readFileSync(t.path), t.src.subarray(0, 2 * CHUNK), CHUNK, 'chunks 0..1');
  } else {
    whole.forEach((x, k) => assert.is(x.ok ? 0 : x.code, -751, `chunk ${k}`));
  }
  // The tail cannot go direct (not a whole page): written through fd, refused,
  // and the whole staged run is reported failed (chunk 2 included, though with
  // direct I/O it did reach the file: failing it is the safe side).
  const tail = await write(sink, [chunkTask(t, 2), chunkTask(t, 3)]);
  tail.forEach((x, k) => {
    assert.is(x.ok ? 0 : x.code, -751, `chunk ${2 + k}`);
    assert.is(x.ok ? '' : x.errno, 'EBADF');
  });
  assert.is(statSync(t.path).size, direct ? 3 * CHUNK : 0, direct ? 'chunk 2 went direct, the tail did not' : 'nothing written');
  // The hash covers only what was written: finishing a file whose tail never reached it fails, never returns the source's digest.
  const e = await rejection(() => within(sink.finish(), 5_000, 'finish'));
  assert.is(e.code, -750);
  await within(sink.settled(), 5_000, 'settled');
  assertNoDirect(t.path);
  closeTarget(t);
});

// ---------------------------------------------------------------- the pool around the sinks

test('a sink of a closed pool: settled() resolves and its requests reject with -740', async () => {
  const closed = new WorkerPool({ threads: 1 });
  await closed.close();
  const t = target(randomData(CHUNK, 26), CHUNK);
  const sink = closed.openSink({ fd: t.fd, path: t.path, fileSize: t.src.length, chunkSize: CHUNK });
  const e = await rejection(() => within(sink.finish(), 5_000, 'finish on a closed pool'));
  assert.is(e.code, -740);
  await within(sink.settled(), 5_000, 'settled');
  closeTarget(t);
});

test('closing the pool aborts its live sinks: they settle, later requests reject', async () => {
  const own = new WorkerPool({ threads: 1 });
  try {
    const t = target(randomData(3 * CHUNK, 27), CHUNK);
    const sink = own.openSink({ fd: t.fd, path: t.path, fileSize: t.src.length, chunkSize: CHUNK });
    // Owned buffers: they belong to no pool's slab.
    const r = await within(sink.write([chunkTask(t, 0)]), 5_000, 'write');
    assert.ok(r[0]!.ok);
    pool.buffers.release(pool.buffers.viewOf(r[0]!.ref));
    await within(own.close(), 10_000, 'close');
    await within(sink.settled(), 5_000, 'settled');
    assertNoDirect(t.path);
    const task = chunkTask(t, 1);
    assert.is((await rejection(() => sink.write([task]))).code, -750);
    pool.buffers.release(pool.buffers.viewOf(task.ref));
    closeTarget(t);
  } finally {
    await own.close();
  }
});

test.run();
