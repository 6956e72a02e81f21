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
 * The length bound is checked as soon as the length field is read, before
 * anything is allocated. A frame that fails a check is discarded and the
 * scan resumes at the byte after its magic; a peer that sends `maxGarbage`
 * bytes without a valid frame is reported once through `onError` (-709) and
 * the decoder stops.
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
}

export class FrameDecoder {
  /** Settable: a client learns its bound from CONNECT_ACK. */
  maxChunkSize: number;
  private readonly maxControlPayload: number;
  private readonly maxGarbage: number;
  private readonly opts: FrameDecoderOptions;

  private chunks: Buffer[] = [];
  private buffered = 0;
  private garbage = 0;
  private state = State.Header;
  private type = 0;
  private payloadLength = 0;
  private stopped = false;

  constructor(opts: FrameDecoderOptions) {
    this.opts = opts;
    this.maxChunkSize = opts.maxChunkSize ?? Defaults.MAX_CHUNK_SIZE;
    this.maxControlPayload = opts.maxControlPayload ?? MAX_CONTROL_PAYLOAD;
    this.maxGarbage = opts.maxGarbage ?? MAX_GARBAGE_BYTES;
  }

  /** Bytes held that do not yet make a whole frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True once the decoder has given up (garbage limit) or `stop()` was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Drops everything held; further input is ignored. */
  stop(): void {
    this.stopped = true;
    this.chunks = [];
    this.buffered = 0;
  }

  push(data: Buffer): void {
    if (this.stopped || data.length === 0) return;
    this.chunks.push(data);
    this.buffered += data.length;
    this.drain();
  }

  private drain(): void {
    while (!this.stopped) {
      if (this.state === State.Header) {
        if (this.buffered < 4) return;
        if (this.peekUInt32(0) !== MAGIC) {
          this.skipToMagic();
          continue;
        }
        if (this.buffered < FRAME_HEADER_SIZE) return;
        const type = this.peekByte(4);
        const length = this.peekUInt32(5);
        const bound = type === MessageType.CHUNK_DATA ? CHUNK_HEADER_SIZE + this.maxChunkSize : this.maxControlPayload;
        if (length > bound) {
          // §8.1: a bad length cannot be trusted; resume after the magic.
          this.discard(4, `payload_length ${length} over the bound ${bound}`);
          continue;
        }
        this.type = type;
        this.payloadLength = length;
        this.state = State.Payload;
      }

      const frameSize = FRAME_HEADER_SIZE + this.payloadLength + FRAME_POSTFIX_SIZE;
      if (this.buffered < frameSize) return;
      const end = FRAME_HEADER_SIZE + this.payloadLength;
      // §2 [change]: a CHUNK_DATA checksum leaves the data section out.
      const summed = this.type === MessageType.CHUNK_DATA ? FRAME_HEADER_SIZE + Math.min(CHUNK_HEADER_SIZE, this.payloadLength) : end;
      const checksum = (this.peekByte(end) << 8) | this.peekByte(end + 1);
      const echo = (this.peekByte(end + 2) << 8) | this.peekByte(end + 3);
      this.state = State.Header;
      if (checksum !== this.sumFront(summed)) {
        this.discard(4, 'checksum mismatch');
        continue;
      }
      if (echo !== (this.payloadLength & 0xffff)) {
        this.discard(4, 'length echo mismatch');
        continue;
      }
      this.consume(FRAME_HEADER_SIZE);
      const payload = this.takePayload(this.payloadLength, this.type === MessageType.CHUNK_DATA);
      this.consume(FRAME_POSTFIX_SIZE);
      this.garbage = 0;
      this.opts.onFrame({ type: this.type, payload });
    }
  }

  /** Drops bytes until the front could start a frame; the front is known not to. */
  private skipToMagic(): void {
    while (this.buffered >= 4) {
      const head = this.chunks[0]!;
      let at = head.indexOf(MAGIC_FIRST_BYTE, 1);
      while (at !== -1 && this.buffered - at >= 4 && this.peekUInt32(at) !== MAGIC) {
        at = head.indexOf(MAGIC_FIRST_BYTE, at + 1);
      }
      if (at === -1) {
        this.discard(head.length, 'no magic');
        continue;
      }
      // A magic here, or a prefix of one at the end of what we hold.
      this.discard(at, 'bytes before magic');
      return;
    }
  }

  private discard(n: number, reason: string): void {
    this.consume(n);
    this.garbage += n;
    this.opts.onDiscard?.(n, reason);
    if (this.garbage >= this.maxGarbage && !this.stopped) {
      this.stop();
      this.opts.onError(protocolError(`${this.garbage} bytes without a valid frame`));
    }
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const head = this.chunks[0]!;
      if (head.length <= n) {
        n -= head.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = head.subarray(n);
        n = 0;
      }
    }
  }

  /** Removes `n` bytes from the front as one Buffer: a view if contiguous, else one copy. */
  private takePayload(n: number, isChunkData: boolean): Buffer {
    const head = this.chunks[0];
    const allocate = isChunkData ? this.opts.allocateChunkPayload : undefined;
    if (n === 0) return Buffer.alloc(0);
    if (allocate === undefined && head !== undefined && head.length >= n) {
      const view = head.subarray(0, n);
      this.consume(n);
      return view;
    }
    const out = allocate ? allocate(n) : isChunkData ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length, n - written);
      chunk.copy(out, written, 0, take);
      written += take;
      this.consume(take);
    }
    return out;
  }

  private peekByte(offset: number): number {
    for (const chunk of this.chunks) {
      if (offset < chunk.length) return chunk[offset]!;
      offset -= chunk.length;
    }
    throw new RangeError('peek past buffered data');
  }

  private peekUInt32(offset: number): number {
    const head = this.chunks[0]!;
    if (offset + 4 <= head.length) return head.readUInt32BE(offset);
    return ((this.peekByte(offset) << 24) | (this.peekByte(offset + 1) << 16) | (this.peekByte(offset + 2) << 8) | this.peekByte(offset + 3)) >>> 0;
  }

  /** Sum of the first `n` buffered bytes, mod 65536. */
  private sumFront(n: number): number {
    let sum = 0;
    for (const chunk of this.chunks) {
      const take = Math.min(n, chunk.length);
      for (let i = 0; i < take; i++) sum += chunk[i]!;
      n -= take;
      if (n === 0) break;
    }
    return sum & 0xffff;
  }
}
