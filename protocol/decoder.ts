/**
 * Incremental FTS1 frame decoder (PROTOCOL.md §2, §8.1).
 *
 * Fed whatever a socket delivers: one byte at a time, many frames at once, a
 * frame split anywhere. It keeps the received buffers in a list and copies a
 * payload at most once: a payload that lies inside one received buffer is
 * handed out as a view, one that spans buffers is copied into a fresh one
 * (CHUNK_DATA payloads go to `allocateChunkPayload` when given, so they own
 * their memory and can be transferred to a worker).
 *
 *   received: [ buf0 ........ ][ buf1 .... ][ buf2 ...... ]
 *               ^ front                         buffered bytes
 *   frame:    | magic | type | len | payload (len) | sum | echo |
 *                4       1      4        N             2     2
 *
 * With `streamChunkPayloadsFrom`, a CHUNK_DATA payload at least that large is
 * instead copied into its buffer as it arrives, and `directTarget()` names
 * the part still missing so a socket can read it there itself: the kernel's
 * copy is then the only one. Its checksum can only be checked once the
 * postfix after the payload arrives; a frame that then fails is put back as
 * input (a copy) and scanned exactly as it would have been.
 *
 * The length bound is checked as soon as the length field is read, before
 * anything is allocated. A frame that fails a check is discarded and the
 * scan resumes at the byte after its magic; a peer that sends `maxGarbage`
 * bytes without a valid frame is reported once through `onError` (-709) and
 * the decoder stops. So is a peer whose frames keep failing their checksum
 * after making the decoder sum more than 16 × `maxGarbage` bytes since the
 * last valid frame: without that budget, fake headers nested inside one
 * another (each claiming a large payload) would cost time quadratic in the
 * 4 MiB bound while discarding only 4 bytes each.
 */
import {
  CHUNK_HEADER_SIZE,
  Defaults,
  FRAME_HEADER_SIZE,
  FRAME_POSTFIX_SIZE,
  MAGIC,
  MAX_CONTROL_PAYLOAD,
  MAX_GARBAGE_BYTES,
  MessageType,
} from './constants.js';
import { type FtsError, protocolError } from './errors.js';

const MAGIC_FIRST_BYTE = MAGIC >>> 24;

export interface Frame {
  type: number;
  payload: Buffer;
}

export interface FrameDecoderOptions {
  /** The receiver's own max chunk size; CHUNK_DATA's bound is 48 + this (§8.3). Default 1 MiB. */
  maxChunkSize?: number;
  /** Bound of every other payload. Default 4 MiB (§2). */
  maxControlPayload?: number;
  /** Bytes without a valid frame before -709. Default 2 MiB (§2). */
  maxGarbage?: number;
  /** Where CHUNK_DATA payloads are copied; must return a Buffer of exactly `size` bytes. */
  allocateChunkPayload?: (size: number) => Buffer;
  /**
   * Given: each pushed buffer is handed back here once the decoder holds no
   * reference to it, so the caller may reuse it (socket reads into recycled
   * buffers); every payload is then copied, never a view of the input.
   */
  releaseInput?: (data: Buffer) => void;
  /** Takes back a payload from `allocateChunkPayload` that a failed streamed frame no longer needs. */
  releaseChunkPayload?: (payload: Buffer) => void;
  /**
   * Fill CHUNK_DATA payloads of at least this many bytes as they arrive
   * (needs `allocateChunkPayload`), so `directTarget()` can offer the rest of
   * one to the socket. Unset: every frame is held whole before it is copied.
   */
  streamChunkPayloadsFrom?: number;
  /** Each valid frame, in order. */
  onFrame: (frame: Frame) => void;
  /** A frame that failed a check and was skipped (for counters and tests). */
  onDiscard?: (bytes: number, reason: string) => void;
  /** Fatal: too much garbage. Called once; the decoder then ignores all input. */
  onError: (error: FtsError) => void;
}

const enum State {
  Header,
  Payload,
  /** A CHUNK_DATA payload filling in place, then its postfix. */
  Streaming,
}

interface StreamedFrame {
  /** The frame header's 9 bytes (they are summed with the chunk header). */
  header: Buffer;
  payload: Buffer;
  filled: number;
}

/** Failed candidate frames may make the decoder sum this many times `maxGarbage` bytes before it gives up. */
const CHECKSUM_WORK_FACTOR = 16;
const EMPTY = Buffer.alloc(0);

export class FrameDecoder {
  /** Settable: a client learns its bound from CONNECT_ACK. */
  maxChunkSize: number;
  private readonly maxControlPayload: number;
  private readonly maxGarbage: number;
  private readonly opts: FrameDecoderOptions;

  /**
   * Received buffers: the live ones are `chunks[first..]`, of which the first
   * `offset` bytes of `chunks[first]` are already consumed. A head index
   * instead of `shift()` keeps a frame delivered one byte at a time linear.
   */
  private chunks: Buffer[] = [];
  private first = 0;
  private offset = 0;
  private buffered = 0;
  /** Bytes discarded since the last valid frame. */
  private garbage = 0;
  /** Bytes summed for frames that then failed their checksum, since the last valid frame. */
  private checksumWork = 0;
  private state = State.Header;
  private type = 0;
  private payloadLength = 0;
  private stopped = false;
  private streamed: StreamedFrame | undefined;
  /** Input the decoder made itself (a failed streamed frame put back): never given to `releaseInput`. */
  private readonly own = new Set<Buffer>();

  constructor(opts: FrameDecoderOptions) {
    this.opts = opts;
    this.maxChunkSize = opts.maxChunkSize ?? Defaults.MAX_CHUNK_SIZE;
    this.maxControlPayload = opts.maxControlPayload ?? MAX_CONTROL_PAYLOAD;
    this.maxGarbage = opts.maxGarbage ?? MAX_GARBAGE_BYTES;
  }

  /** Bytes held that do not yet make a whole frame. */
  get bufferedBytes(): number {
    return this.buffered + (this.streamed ? FRAME_HEADER_SIZE + this.streamed.filled : 0);
  }

  /**
   * Where the next input may be written in place: the rest of the payload
   * being streamed, when no other input is pending. Report what was written
   * there with `filledDirect()` (and push nothing else before it).
   */
  directTarget(): Buffer | undefined {
    const f = this.streamed;
    if (f === undefined || this.stopped || this.buffered !== 0 || f.filled >= f.payload.length) return undefined;
    return f.payload.subarray(f.filled);
  }

  /** `n` bytes were written at the start of the last `directTarget()`. */
  filledDirect(n: number): void {
    const f = this.streamed;
    if (f === undefined || this.stopped || n <= 0) return;
    if (n > f.payload.length - f.filled) throw new RangeError(`filledDirect(${n}) past the payload`);
    f.filled += n;
    if (f.filled === f.payload.length) this.drain();
  }

  /** True once the decoder has given up (garbage limit) or `stop()` was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Drops everything held; further input is ignored. */
  stop(): void {
    this.stopped = true;
    const release = this.opts.releaseInput;
    if (release) for (let i = this.first; i < this.chunks.length; i++) if (this.chunks[i] !== EMPTY && !this.own.has(this.chunks[i]!)) release(this.chunks[i]!);
    this.own.clear();
    // A streamed payload is dropped, not given back: a socket read may still be aimed at it.
    this.streamed = undefined;
    this.chunks = [];
    this.first = 0;
    this.offset = 0;
    this.buffered = 0;
  }

  push(data: Buffer): void {
    if (this.stopped || data.length === 0) {
      this.opts.releaseInput?.(data);
      return;
    }
    this.chunks.push(data);
    this.buffered += data.length;
    this.drain();
  }

  private drain(): void {
    while (!this.stopped) {
      if (this.state === State.Header) {
        if (this.buffered < 4) return;
        if (this.uint32At(0) !== MAGIC) {
          this.skipToMagic();
          continue;
        }
        if (this.buffered < FRAME_HEADER_SIZE) return;
        const type = this.byteAt(4);
        const length = this.uint32At(5);
        const bound = type === MessageType.CHUNK_DATA ? CHUNK_HEADER_SIZE + this.maxChunkSize : this.maxControlPayload;
        if (length > bound) {
          // §8.1: a bad length cannot be trusted; resume after the magic.
          this.discard(4, `payload_length ${length} over the bound ${bound}`);
          continue;
        }
        this.type = type;
        this.payloadLength = length;
        this.state = State.Payload;
        const streamFrom = this.opts.streamChunkPayloadsFrom;
        // Not while resynchronising (garbage since the last valid frame): each
        // failed streamed frame costs a copy of its payload, so fake headers
        // nested in one another would cost time quadratic in the bound, where
        // a frame held whole costs a sum of its first 57 bytes.
        if (type === MessageType.CHUNK_DATA && streamFrom !== undefined && length >= Math.max(1, streamFrom) && this.garbage === 0 && this.opts.allocateChunkPayload) {
          this.startStreaming(length);
        }
      }

      if (this.state === State.Streaming) {
        if (!this.stream()) return;
        continue;
      }

      const length = this.payloadLength;
      if (this.buffered < FRAME_HEADER_SIZE + length + FRAME_POSTFIX_SIZE) return;
      this.state = State.Header;
      const isChunkData = this.type === MessageType.CHUNK_DATA;
      // §2 [change]: a CHUNK_DATA checksum leaves the data section out.
      const summed = FRAME_HEADER_SIZE + (isChunkData ? Math.min(CHUNK_HEADER_SIZE, length) : length);
      const postfix = this.uint32At(FRAME_HEADER_SIZE + length);
      if (postfix >>> 16 !== this.sumFront(summed)) {
        this.checksumWork += summed;
        this.discard(4, 'checksum mismatch');
        // Each failed frame is summed whole and its bytes then scanned again
        // (§8.1), so nested fake headers could cost time quadratic in the
        // bound; past this much work the peer is treated as sending garbage.
        if (!this.stopped && this.checksumWork > this.maxGarbage * CHECKSUM_WORK_FACTOR) {
          this.fail(`frames failing their checksum made the receiver sum ${this.checksumWork} bytes without a valid frame`);
        }
        continue;
      }
      if ((postfix & 0xffff) !== (length & 0xffff)) {
        this.discard(4, 'length echo mismatch');
        continue;
      }
      this.consume(FRAME_HEADER_SIZE);
      const payload = this.takePayload(length, isChunkData);
      this.consume(FRAME_POSTFIX_SIZE);
      this.garbage = 0;
      this.checksumWork = 0;
      this.opts.onFrame({ type: this.type, payload });
    }
  }

  private startStreaming(length: number): void {
    const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
    this.copyFront(header, 0, FRAME_HEADER_SIZE);
    const payload = this.allocated(this.opts.allocateChunkPayload!, length);
    this.consume(FRAME_HEADER_SIZE);
    this.streamed = { header, payload, filled: 0 };
    this.state = State.Streaming;
  }

  /** Fills the streamed payload from the input, then checks and delivers it; false while bytes are missing. */
  private stream(): boolean {
    const f = this.streamed!;
    const length = f.payload.length;
    if (f.filled < length) {
      const take = Math.min(this.buffered, length - f.filled);
      this.copyFront(f.payload, f.filled, take);
      this.consume(take);
      f.filled += take;
      if (f.filled < length) return false;
    }
    if (this.buffered < FRAME_POSTFIX_SIZE) return false;
    const postfix = this.uint32At(0);
    const chunkHeader = Math.min(CHUNK_HEADER_SIZE, length);
    let sum = 0;
    for (let k = 0; k < FRAME_HEADER_SIZE; k++) sum += f.header[k]!;
    for (let k = 0; k < chunkHeader; k++) sum += f.payload[k]!;
    if (postfix >>> 16 !== (sum & 0xffff)) {
      this.checksumWork += FRAME_HEADER_SIZE + chunkHeader;
      this.putBack('checksum mismatch');
      if (!this.stopped && this.checksumWork > this.maxGarbage * CHECKSUM_WORK_FACTOR) {
        this.fail(`frames failing their checksum made the receiver sum ${this.checksumWork} bytes without a valid frame`);
      }
      return true;
    }
    if ((postfix & 0xffff) !== (length & 0xffff)) {
      this.putBack('length echo mismatch');
      return true;
    }
    this.consume(FRAME_POSTFIX_SIZE);
    this.streamed = undefined;
    this.state = State.Header;
    this.garbage = 0;
    this.checksumWork = 0;
    this.opts.onFrame({ type: this.type, payload: f.payload });
    return true;
  }

  /**
   * A streamed frame failed: its bytes after the magic become input again,
   * ahead of what is held (copied into one buffer of the decoder's own), and
   * the magic's 4 bytes are discarded, as for a frame held whole.
   */
  private putBack(reason: string): void {
    const f = this.streamed!;
    this.streamed = undefined;
    this.state = State.Header;
    const rest = Buffer.allocUnsafe(FRAME_HEADER_SIZE - 4 + f.payload.length + this.buffered);
    f.header.copy(rest, 0, 4);
    f.payload.copy(rest, FRAME_HEADER_SIZE - 4);
    // Whole, so no read is aimed at it any more.
    this.opts.releaseChunkPayload?.(f.payload);
    this.copyFront(rest, FRAME_HEADER_SIZE - 4 + f.payload.length, this.buffered);
    this.consume(this.buffered);
    this.chunks = [rest];
    this.first = 0;
    this.offset = 0;
    this.buffered = rest.length;
    this.own.add(rest);
    this.garbage += 4;
    this.opts.onDiscard?.(4, reason);
    if (this.garbage >= this.maxGarbage && !this.stopped) this.fail(`${this.garbage} bytes without a valid frame`);
  }

  /** A CHUNK_DATA payload buffer from the caller's allocator, checked to be exactly `n` bytes. */
  private allocated(allocate: (size: number) => Buffer, n: number): Buffer {
    const out = allocate(n);
    if (out.length !== n) throw new RangeError(`allocateChunkPayload(${n}) returned ${out.length} bytes`);
    return out;
  }

  /** Copies the first `n` held bytes into `out` at `at` (without consuming them). */
  private copyFront(out: Buffer, at: number, n: number): void {
    let start = this.offset;
    for (let i = this.first; n > 0; i++) {
      const chunk = this.chunks[i]!;
      const take = Math.min(chunk.length - start, n);
      chunk.copy(out, at, start, start + take);
      at += take;
      n -= take;
      start = 0;
    }
  }

  /**
   * Drops the bytes of the first buffer up to the next possible magic; the
   * front (at least 4 bytes held) is known not to start a frame. When the
   * first buffer holds no candidate it is dropped whole and drain() checks
   * the next one from its first byte.
   */
  private skipToMagic(): void {
    const head = this.chunks[this.first]!;
    const start = this.offset;
    let at = head.indexOf(MAGIC_FIRST_BYTE, start + 1);
    while (at !== -1 && this.buffered - (at - start) >= 4 && this.uint32At(at - start) !== MAGIC) {
      at = head.indexOf(MAGIC_FIRST_BYTE, at + 1);
    }
    // A magic at `at`, or a prefix of one at the end of what we hold.
    if (at === -1) this.discard(head.length - start, 'no magic');
    else this.discard(at - start, 'bytes before magic');
  }

  private discard(n: number, reason: string): void {
    this.consume(n);
    this.garbage += n;
    this.opts.onDiscard?.(n, reason);
    if (this.garbage >= this.maxGarbage && !this.stopped) {
      this.fail(`${this.garbage} bytes without a valid frame`);
    }
  }

  private fail(message: string): void {
    this.stop();
    this.opts.onError(protocolError(message));
  }

  private consume(n: number): void {
    this.buffered -= n;
    const chunks = this.chunks;
    while (n > 0) {
      const left = chunks[this.first]!.length - this.offset;
      if (left > n) {
        this.offset += n;
        return;
      }
      n -= left;
      const done = chunks[this.first]!;
      if (!this.own.delete(done)) this.opts.releaseInput?.(done);
      chunks[this.first++] = EMPTY;
      this.offset = 0;
    }
    if (this.first === chunks.length) {
      chunks.length = 0;
      this.first = 0;
    } else if (this.first >= 1024 && this.first * 2 >= chunks.length) {
      chunks.splice(0, this.first);
      this.first = 0;
    }
  }

  /** Removes `n` bytes from the front as one Buffer: a view if contiguous, else one copy. */
  private takePayload(n: number, isChunkData: boolean): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const allocate = isChunkData ? this.opts.allocateChunkPayload : undefined;
    const head = this.chunks[this.first]!;
    if (allocate === undefined && !this.opts.releaseInput && head.length - this.offset >= n) {
      const view = head.subarray(this.offset, this.offset + n);
      this.consume(n);
      return view;
    }
    const out = allocate ? this.allocated(allocate, n) : isChunkData ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
    this.copyFront(out, 0, n);
    this.consume(n);
    return out;
  }

  /** The buffered byte at `pos` from the front; `pos < buffered`. */
  private byteAt(pos: number): number {
    let i = this.first;
    let at = this.offset + pos;
    let chunk = this.chunks[i]!;
    while (at >= chunk.length) {
      at -= chunk.length;
      chunk = this.chunks[++i]!;
    }
    return chunk[at]!;
  }

  /** The big-endian u32 at `pos` from the front; `pos + 4 <= buffered`. */
  private uint32At(pos: number): number {
    const head = this.chunks[this.first]!;
    const at = this.offset + pos;
    if (at + 4 <= head.length) return head.readUInt32BE(at);
    // Spans buffers: find the first byte once, then walk on.
    let i = this.first;
    let j = at;
    let chunk = head;
    while (j >= chunk.length) {
      j -= chunk.length;
      chunk = this.chunks[++i]!;
    }
    let value = 0;
    for (let k = 0; k < 4; k++) {
      while (j >= chunk.length) {
        j -= chunk.length;
        chunk = this.chunks[++i]!;
      }
      value = value * 256 + chunk[j++]!;
    }
    return value;
  }

  /** Sum of the first `n` buffered bytes, mod 65536. */
  private sumFront(n: number): number {
    let sum = 0;
    let start = this.offset;
    for (let i = this.first; n > 0; i++) {
      const chunk = this.chunks[i]!;
      const end = Math.min(chunk.length, start + n);
      for (let k = start; k < end; k++) sum += chunk[k]!;
      n -= end - start;
      start = 0;
    }
    return sum & 0xffff;
  }
}
