/**
 * Chunk buffers shared with the worker threads.
 *
 *   slab (SharedArrayBuffer, mapped once in every worker)
 *   ┌────────┬────────┬────────┬─────┬────────┐
 *   │ slot 0 │ slot 1 │ slot 2 │ ... │ slot n │   each slot: one chunk (≤ 1 MiB + header)
 *   └────────┴────────┴────────┴─────┴────────┘
 *
 * The slab starts on a page boundary and slots are whole pages, so a sender
 * can read a chunk into its slot with O_DIRECT.
 *
 * A chunk that lives in a slot crosses threads as an offset: nothing is
 * moved or copied, and no ArrayBuffer is created per chunk. (Moving
 * ArrayBuffers back and forth made V8 count each arrival as new external
 * memory: `--trace-gc` showed a mark-compact every ~20 MB moved, "external
 * memory pressure".) Free slots are a stack, so the same few slots are reused
 * and only they become resident.
 *
 * When every slot is taken, or when the caller asks for an owned buffer,
 * buffers are ordinary ArrayBuffers moved to the worker and back, recycled up
 * to `maxRetainedBytes`. Receivers ask for owned buffers: a payload is
 * assembled by copying socket data, and V8 copies into shared memory with a
 * relaxed word-at-a-time memmove that costs more than the moves.
 */
import { PAGE_BYTES, pageAlignedShared } from './aligned-memory.js';
import type { BufferRef } from './types.js';

export interface BufferPoolOptions {
  /** Slots in the shared slab. Default 160 (address space only: slots become resident as they are used). */
  slots?: number;
  /** Bytes a slot holds: the largest chunk payload. Default 1 MiB + 4 KiB. */
  slotSize?: number;
  /** Idle owned buffers kept for reuse. Default 32 MiB. */
  maxRetainedBytes?: number;
}

export class BufferPool {
  readonly slab: SharedArrayBuffer;
  /** Whether the slab starts on a page boundary (so slots can be read into with O_DIRECT). */
  readonly slabAligned: boolean;
  readonly slotSize: number;
  private readonly slots: Buffer[];
  private readonly free: number[];
  private readonly fallback = new Map<number, ArrayBuffer[]>();
  private retained = 0;
  private readonly maxRetainedBytes: number;

  constructor(opts: BufferPoolOptions = {}) {
    const count = opts.slots ?? 160;
    // Whole pages, so every slot starts on a page boundary.
    this.slotSize = Math.ceil((opts.slotSize ?? 1024 * 1024 + 4096) / PAGE_BYTES) * PAGE_BYTES;
    this.maxRetainedBytes = opts.maxRetainedBytes ?? 32 * 1024 * 1024;
    const bytes = count * this.slotSize;
    const slab = pageAlignedShared(bytes);
    this.slab = slab.buffer;
    this.slabAligned = slab.aligned;
    this.slots = Array.from({ length: count }, (_, i) => Buffer.from(this.slab, i * this.slotSize, this.slotSize));
    this.free = Array.from({ length: count }, (_, i) => count - 1 - i);
  }

  /** A buffer of exactly `size` bytes: a slot of the slab when one is free (unless `owned`). */
  acquire(size: number, owned = false): Buffer {
    if (!owned && size <= this.slotSize) {
      const slot = this.free.pop();
      if (slot !== undefined) return this.slots[slot]!.subarray(0, size);
    }
    const cls = sizeClass(size);
    const reused = this.fallback.get(cls)?.pop();
    if (reused) this.retained -= cls;
    return Buffer.from(reused ?? (Buffer.allocUnsafeSlow(cls).buffer as ArrayBuffer), 0, size);
  }

  /** Gives back a buffer from `acquire` (or any view inside it). */
  release(view: Uint8Array): void {
    if (view.buffer === this.slab) {
      this.free.push(Math.floor(view.byteOffset / this.slotSize));
      return;
    }
    const buffer = view.buffer as ArrayBuffer;
    const cls = buffer.byteLength;
    if (cls === 0 || cls !== sizeClass(cls) || this.retained + cls > this.maxRetainedBytes) return;
    let list = this.fallback.get(cls);
    if (!list) this.fallback.set(cls, (list = []));
    list.push(buffer);
    this.retained += cls;
  }

  /** How a task names `view`'s bytes. */
  refOf(view: Uint8Array): BufferRef {
    return view.buffer === this.slab
      ? { offset: view.byteOffset, length: view.length }
      : { offset: view.byteOffset, length: view.length, buffer: view.buffer as ArrayBuffer };
  }

  /** The bytes a task result names, as a Buffer on this thread. */
  viewOf(ref: BufferRef): Buffer {
    return Buffer.from(ref.buffer ?? this.slab, ref.offset, ref.length);
  }

  get freeSlots(): number {
    return this.free.length;
  }
}

/**
 * Powers of two from 64 KiB, plus 4 KiB so a chunk payload (48-byte header +
 * a power-of-two chunk) fits the class of its chunk size instead of the next.
 */
function sizeClass(size: number): number {
  let cls = 64 * 1024;
  while (cls + HEADROOM < size) cls *= 2;
  return cls + HEADROOM;
}

const HEADROOM = 4096;

/** Buffers of `refs` that must be moved to another thread (the shared slab never is). */
export function moved(refs: BufferRef[]): ArrayBuffer[] {
  return refs.flatMap((r) => (r.buffer ? [r.buffer] : []));
}
