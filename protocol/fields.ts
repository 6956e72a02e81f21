/**
 * Bounds-checked readers and writers for the field types of PROTOCOL.md §1.
 * Every read checks the remaining length first, so a short or lying payload
 * becomes a -709 error, never an over-read.
 */
import { FRAME_HEADER_SIZE, FRAME_POSTFIX_SIZE, MAGIC, MESSAGE_TYPE_NAMES } from './constants.js';
import { protocolError } from './errors.js';
import { readUuid, writeUuid } from './uuid.js';

const TWO_32 = 2 ** 32;
// ignoreBOM: a leading U+FEFF is part of the name, not a byte-order mark to strip.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sum of `buf[start, end)` mod 65536: the frame checksum of §2. */
export function byteSum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i++) sum += buf[i]!;
  return sum & 0xffff;
}

export function typeName(type: number): string {
  return MESSAGE_TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

/** Reads one message payload front to back. */
export class FieldReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): number {
    if (this.buf.length - this.pos < n) {
      throw protocolError(`${this.what}: payload too short for ${field} (${this.remaining} of ${n} bytes left)`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(field: string): number {
    return this.buf[this.need(1, field)]!;
  }

  u32(field: string): number {
    return this.buf.readUInt32BE(this.need(4, field));
  }

  i32(field: string): number {
    return this.buf.readInt32BE(this.need(4, field));
  }

  /** A u64 as a number: exact below 2^53, rejected above (never rounded). */
  u64(field: string): number {
    const at = this.need(8, field);
    const hi = this.buf.readUInt32BE(at);
    const lo = this.buf.readUInt32BE(at + 4);
    if (hi > 0x1fffff) throw protocolError(`${this.what}: ${field} exceeds 2^53-1, which fts does not represent`);
    return hi * TWO_32 + lo;
  }

  uuid(field: string): string {
    return readUuid(this.buf, this.need(16, field));
  }

  /** 32 raw bytes, copied so the message does not pin the frame buffer. */
  sha256(field: string): Buffer {
    const at = this.need(32, field);
    return Buffer.from(this.buf.subarray(at, at + 32));
  }

  private str16Bytes(field: string): Buffer {
    const len = this.buf.readUInt16BE(this.need(2, field));
    const at = this.need(len, field);
    return this.buf.subarray(at, at + len);
  }

  /** A str16 decoded leniently (invalid UTF-8 becomes U+FFFD): messages, names of servers. */
  str16(field: string): string {
    const len = this.buf.readUInt16BE(this.need(2, field));
    const at = this.need(len, field);
    return len === 0 ? '' : this.buf.toString('utf8', at, at + len);
  }

  /**
   * A str16 holding a filename. Invalid UTF-8 must reach filename validation
   * as -748, not vanish into U+FFFD, so it is returned with a lone surrogate
   * appended: a string that can never be well-formed, which
   * `validateFilename` rejects as "not valid UTF-8".
   */
  filename(field: string): string {
    const bytes = this.str16Bytes(field);
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return `${bytes.toString('utf8')}\udc80`;
    }
  }

  /** A u32-length-prefixed bitmap, copied out of the frame. */
  bitmap(field: string): Buffer {
    const len = this.u32(field);
    const at = this.need(len, field);
    return Buffer.from(this.buf.subarray(at, at + len));
  }

  /** The rest of the payload, as a view. */
  rest(): Buffer {
    const out = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return out;
  }

  /** Trailing bytes beyond what the message defines are an error (§1). */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw protocolError(`${this.what}: ${this.buf.length - this.pos} trailing bytes`);
    }
  }
}

/**
 * Writes one whole frame of a control message: header, payload, postfix, in
 * a single buffer sized up front. Payload fields are appended in order.
 */
export class FrameWriter {
  private readonly buf: Buffer;
  private pos = FRAME_HEADER_SIZE;

  constructor(
    private readonly type: number,
    payloadSize: number,
  ) {
    this.buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payloadSize + FRAME_POSTFIX_SIZE);
  }

  u8(value: number): this {
    checkUint(value, 0xff, 'u8');
    this.buf[this.pos++] = value;
    return this;
  }

  u32(value: number): this {
    checkUint(value, 0xffffffff, 'u32');
    this.pos = this.buf.writeUInt32BE(value, this.pos);
    return this;
  }

  i32(value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new RangeError(`i32 out of range: ${value}`);
    this.pos = this.buf.writeInt32BE(value, this.pos);
    return this;
  }

  u64(value: number): this {
    checkUint(value, Number.MAX_SAFE_INTEGER, 'u64');
    this.buf.writeUInt32BE(Math.floor(value / TWO_32), this.pos);
    this.buf.writeUInt32BE(value >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  uuid(id: string): this {
    writeUuid(id, this.buf, this.pos);
    this.pos += 16;
    return this;
  }

  sha256(hash: Uint8Array): this {
    if (hash.length !== 32) throw new RangeError(`sha256 must be 32 bytes, got ${hash.length}`);
    this.buf.set(hash, this.pos);
    this.pos += 32;
    return this;
  }

  /** `bytes` is the UTF-8 encoding, measured beforehand by `str16Size`. */
  str16(bytes: Buffer): this {
    if (bytes.length > 0xffff) throw new RangeError(`str16 longer than 65535 bytes: ${bytes.length}`);
    this.pos = this.buf.writeUInt16BE(bytes.length, this.pos);
    this.pos += bytes.copy(this.buf, this.pos);
    return this;
  }

  /** An optional trailing str16: nothing at all when absent. */
  str16Optional(bytes: Buffer | undefined): this {
    return bytes === undefined ? this : this.str16(bytes);
  }

  bitmap(bytes: Uint8Array): this {
    this.u32(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** Fills in header and postfix; the buffer is the whole frame. */
  finish(): Buffer {
    const payloadLength = this.pos - FRAME_HEADER_SIZE;
    if (this.pos + FRAME_POSTFIX_SIZE !== this.buf.length) {
      throw new Error(`FrameWriter(${typeName(this.type)}): wrote ${payloadLength} payload bytes, sized for ${this.buf.length - FRAME_HEADER_SIZE - FRAME_POSTFIX_SIZE}`);
    }
    this.buf.writeUInt32BE(MAGIC, 0);
    this.buf[4] = this.type;
    this.buf.writeUInt32BE(payloadLength, 5);
    this.buf.writeUInt16BE(byteSum(this.buf, 0, this.pos), this.pos);
    this.buf.writeUInt16BE(payloadLength & 0xffff, this.pos + 2);
    return this.buf;
  }
}

function checkUint(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${what} out of range: ${value}`);
}

/** UTF-8 bytes of a str16 field. */
export function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}
