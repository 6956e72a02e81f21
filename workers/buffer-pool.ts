/**
 * Reusable chunk buffers. A buffer that goes to a worker must own its memory
 * (a view of a larger buffer would be copied whole), and allocating a fresh
 * 256 KiB–1 MiB buffer per chunk costs page faults, so chunk buffers are
 * ArrayBuffers of a few size classes, recycled up to a retained-bytes bound.
 * The bound caps what is kept idle; what is in use is bounded by the
 * transfer windows that ask for buffers.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private retained = 0;

  constructor(private readonly maxRetainedBytes = 64 * 1024 * 1024) {}

  /** An uninitialised buffer of at least `size` bytes. */
  acquire(size: number): ArrayBuffer {
    const cls = sizeClass(size);
    const list = this.free.get(cls);
    const reused = list?.pop();
    if (reused) {
      this.retained -= reused.byteLength;
      return reused;
    }
    return Buffer.allocUnsafeSlow(cls).buffer as ArrayBuffer;
  }

  /** Gives a buffer back; a detached or odd-sized one is dropped. */
  release(buffer: ArrayBuffer): void {
    const cls = buffer.byteLength;
    if (cls === 0 || cls !== sizeClass(cls) || this.retained + cls > this.maxRetainedBytes) return;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buffer);
    this.retained += cls;
  }

  get retainedBytes(): number {
    return this.retained;
  }
}

/** Powers of two from 64 KiB, plus room for a 48-byte chunk header where that tips over. */
function sizeClass(size: number): number {
  let cls = 64 * 1024;
  while (cls < size) cls *= 2;
  return cls;
}
