/**
 * Chunk sets as the wire's bitmaps (§1): bit i is bit (i % 8), LSB first, of
 * byte floor(i / 8).
 */
export class ChunkBitmap {
  readonly bytes: Buffer;
  readonly size: number;
  /** Set bits, kept by set/clear so count() is O(1) (it is asked on every ACK). */
  private setCount: number;

  constructor(size: number, bytes?: Buffer) {
    this.size = size;
    const needed = Math.ceil(size / 8);
    this.bytes = Buffer.alloc(needed);
    // Bits past `size` in a received bitmap are ignored; missing bytes read as 0.
    if (bytes) bytes.copy(this.bytes, 0, 0, Math.min(needed, bytes.length));
    const spare = needed * 8 - size;
    if (spare > 0) this.bytes[needed - 1]! &= 0xff >>> spare;
    this.setCount = bytes ? popcount(this.bytes) : 0;
  }

  /** A bitmap with every index of [0, size) set. */
  static full(size: number): ChunkBitmap {
    const map = new ChunkBitmap(size);
    map.bytes.fill(0xff);
    const spare = map.bytes.length * 8 - size;
    if (spare > 0) map.bytes[map.bytes.length - 1] = 0xff >>> spare;
    map.setCount = size;
    return map;
  }

  has(index: number): boolean {
    return index >= 0 && index < this.size && (this.bytes[index >>> 3]! & (1 << (index & 7))) !== 0;
  }

  set(index: number): void {
    if (index < 0 || index >= this.size) throw new RangeError(`chunk ${index} outside [0, ${this.size})`);
    if (this.has(index)) return;
    this.bytes[index >>> 3]! |= 1 << (index & 7);
    this.setCount++;
  }

  clear(index: number): void {
    if (!this.has(index)) return;
    this.bytes[index >>> 3]! &= ~(1 << (index & 7));
    this.setCount--;
  }

  count(): number {
    return this.setCount;
  }

  /** The set of indices in [0, size) not in this one. */
  complement(): ChunkBitmap {
    const out = ChunkBitmap.full(this.size);
    for (let i = 0; i < out.bytes.length; i++) out.bytes[i]! &= ~this.bytes[i]!;
    out.setCount = this.size - this.setCount;
    return out;
  }

  /** Set indices in ascending order. */
  *indices(): IterableIterator<number> {
    for (let byte = 0; byte < this.bytes.length; byte++) {
      const b = this.bytes[byte]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) yield byte * 8 + bit;
    }
  }
}

function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (const byte of bytes) {
    let b = byte;
    while (b) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}
