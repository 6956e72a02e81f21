/**
 * FrameDecoder + decodeMessage throughput.
 *
 *   npx tsx bench/decoder.ts            (or: npm run bench:decoder)
 *   npx tsx bench/decoder.ts --runs 9 --mib 128
 *
 * For each frame size it builds one stream of frames (about `--mib` MiB), cuts
 * it into 64 KiB pieces as a socket delivers them, and times pushing every
 * piece through a fresh FrameDecoder whose onFrame runs decodeMessage on each
 * frame (CHUNK_DATA streams are pushed several times a run, ~256 MiB, as they
 * decode in milliseconds). Reported: MB/s of wire bytes (1 MB = 10^6 bytes),
 * median of `--runs` timed runs after one warm-up run, plus frames/s.
 *
 * Modes:
 *   views  no allocateChunkPayload: a payload inside one piece is a view, one
 *          that spans pieces is copied into a buffer the decoder allocates.
 *   pool   allocateChunkPayload hands out buffers from a small reused pool, as
 *          a receiver that recycles chunk buffers does (CHUNK_DATA only; a
 *          control frame never goes through the allocator).
 *
 * Prints a table, then one line `JSON {...}` with every number.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { decodeMessage, encodeMessage, FrameDecoder, MessageType, type Message } from '../protocol/index.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    mib: { type: 'string', default: '64' },
    piece: { type: 'string', default: String(64 * 1024) },
  },
});
const RUNS = Math.max(1, Number(values.runs));
const STREAM_BYTES = Math.max(1, Number(values.mib)) * 1024 * 1024;
const PIECE = Math.max(1, Number(values.piece));

const KiB = 1024;
const MiB = 1024 * KiB;
const TRANSFER_ID = '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0';

type Mode = 'views' | 'pool';

interface Case {
  label: string;
  /** Payload bytes of one frame. */
  payload: number;
  frame: () => Buffer;
  modes: Mode[];
}

/** An ERROR frame whose payload is exactly `payload` bytes (20 fixed + str16). */
function controlFrame(payload: number): Buffer {
  const message = 'x'.repeat(payload - 22);
  const m: Message = { type: MessageType.ERROR, transferId: TRANSFER_ID, errorCode: -709, message };
  return Buffer.concat(encodeMessage(m));
}

function chunkFrame(dataSize: number, index: number): Buffer {
  const data = Buffer.alloc(dataSize, index & 0xff);
  const m: Message = {
    type: MessageType.CHUNK_DATA,
    transferId: TRANSFER_ID,
    chunkIndex: index,
    chunkOffset: index * dataSize,
    originalSize: dataSize,
    compressedSize: dataSize,
    crc32: 0x12345678,
    flags: 0,
    data,
  };
  return Buffer.concat(encodeMessage(m));
}

const cases: Case[] = [
  { label: '100 B control (ERROR)', payload: 100, frame: () => controlFrame(100), modes: ['views'] },
  { label: '64 KiB CHUNK_DATA', payload: 48 + 64 * KiB, frame: () => chunkFrame(64 * KiB, 7), modes: ['views', 'pool'] },
  { label: '256 KiB CHUNK_DATA', payload: 48 + 256 * KiB, frame: () => chunkFrame(256 * KiB, 7), modes: ['views', 'pool'] },
  { label: '1 MiB CHUNK_DATA', payload: 48 + MiB, frame: () => chunkFrame(MiB, 7), modes: ['views', 'pool'] },
];

/** One contiguous stream of copies of `frame`, about STREAM_BYTES long, cut into PIECE-byte pieces. */
function buildPieces(frame: Buffer): { pieces: Buffer[]; bytes: number; frames: number } {
  const frames = Math.max(1, Math.floor(STREAM_BYTES / frame.length));
  const stream = Buffer.allocUnsafe(frames * frame.length);
  for (let i = 0; i < frames; i++) frame.copy(stream, i * frame.length);
  const pieces: Buffer[] = [];
  // Each piece is its own Buffer (a copy), as each socket read is.
  for (let at = 0; at < stream.length; at += PIECE) pieces.push(Buffer.from(stream.subarray(at, Math.min(at + PIECE, stream.length))));
  return { pieces, bytes: stream.length, frames };
}

/** A ring of reusable payload buffers, as a receiver that recycles chunk memory keeps. */
function makePool(maxPayload: number, slots = 8): (size: number) => Buffer {
  const ring = Array.from({ length: slots }, () => Buffer.allocUnsafeSlow(maxPayload));
  let next = 0;
  return (size: number) => {
    const buf = ring[next]!;
    next = (next + 1) % slots;
    return buf.subarray(0, size);
  };
}

function runOnce(pieces: Buffer[], mode: Mode, maxPayload: number, expectFrames: number, passes: number): number {
  let frames = 0;
  let checksum = 0;
  const decoder = new FrameDecoder({
    ...(mode === 'pool' ? { allocateChunkPayload: makePool(maxPayload) } : {}),
    onFrame: (f) => {
      const m = decodeMessage(f.type, f.payload);
      frames++;
      checksum += m.type === MessageType.CHUNK_DATA ? m.data.length : m.type;
    },
    onError: (e) => {
      throw e;
    },
  });
  const t0 = performance.now();
  for (let pass = 0; pass < passes; pass++) for (const piece of pieces) decoder.push(piece);
  const ms = performance.now() - t0;
  if (frames !== expectFrames * passes || decoder.bufferedBytes !== 0 || checksum === 0) {
    throw new Error(`decoded ${frames} of ${expectFrames} frames, ${decoder.bufferedBytes} bytes left`);
  }
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Row {
  size: string;
  mode: Mode;
  frameBytes: number;
  frames: number;
  streamBytes: number;
  medianMs: number;
  mbPerSec: number;
  framesPerSec: number;
  runsMbPerSec: number[];
}

const rows: Row[] = [];
for (const c of cases) {
  const frame = c.frame();
  const { pieces, bytes, frames } = buildPieces(frame);
  // A chunk stream decodes in milliseconds: each timed run pushes it several
  // times through one decoder, about 256 MiB of wire bytes, to steady the figure.
  const passes = c.payload < 4096 ? 1 : Math.max(1, Math.round((256 * MiB) / bytes));
  for (const mode of c.modes) {
    runOnce(pieces, mode, c.payload, frames, 1); // warm-up
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(runOnce(pieces, mode, c.payload, frames, passes));
    const ms = median(times);
    rows.push({
      size: c.label,
      mode,
      frameBytes: frame.length,
      frames: frames * passes,
      streamBytes: bytes * passes,
      medianMs: Number(ms.toFixed(2)),
      mbPerSec: Math.round((bytes * passes) / 1e6 / (ms / 1000)),
      framesPerSec: Math.round((frames * passes) / (ms / 1000)),
      runsMbPerSec: times.map((t) => Math.round((bytes * passes) / 1e6 / (t / 1000))),
    });
  }
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
console.log(`FrameDecoder + decodeMessage, ${PIECE} B pieces, ~${STREAM_BYTES / MiB} MiB a stream, median of ${RUNS} runs (node ${process.version})`);
console.log(`${'size'.padEnd(24)} ${'mode'.padEnd(6)} ${pad('MB/s', 8)} ${pad('frames/s', 11)} ${pad('ms', 8)}`);
for (const r of rows) {
  console.log(`${r.size.padEnd(24)} ${r.mode.padEnd(6)} ${pad(r.mbPerSec, 8)} ${pad(r.framesPerSec, 11)} ${pad(r.medianMs, 8)}`);
}
/** The acceptance target: a stream of 256 KiB CHUNK_DATA frames decodes at 2 GB/s or more, in either mode. */
const TARGET_MB_S = 2000;
const target = rows.filter((r) => r.size.startsWith('256 KiB'));
const targetMet = target.every((r) => r.mbPerSec >= TARGET_MB_S);
console.log(`target: 256 KiB CHUNK_DATA >= ${TARGET_MB_S} MB/s: ${targetMet ? 'met' : 'NOT met'} (${target.map((r) => `${r.mode} ${r.mbPerSec}`).join(', ')})`);
console.log(`JSON ${JSON.stringify({ bench: 'decoder', piece: PIECE, runs: RUNS, node: process.version, targetMbPerSec: TARGET_MB_S, targetMet, rows })}`);
