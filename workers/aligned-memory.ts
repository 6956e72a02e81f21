/**
 * Memory that starts on a page boundary, for direct I/O (O_DIRECT needs
 * page-aligned buffers to run at full speed: at the 512-byte alignment that
 * malloc happens to give large buffers, direct writes here ran 4-15x slower,
 * and smaller alignments are refused). JavaScript cannot ask malloc for
 * alignment, but a WebAssembly.Memory is mapped by V8 itself, on a page
 * boundary; a shared one is a SharedArrayBuffer.
 */

type MemoryDescriptor = { initial: number; maximum?: number; shared?: boolean };
// @types/node declares WebAssembly's types but not the global itself (that is in lib.dom).
const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: MemoryDescriptor) => { buffer: ArrayBuffer | SharedArrayBuffer } } }).WebAssembly;

const WASM_PAGE = 65536;

/** Direct I/O's unit of alignment: the page, which every block size divides. */
export const PAGE_BYTES = 4096;

/** Largest WebAssembly memory: 65536 pages of 64 KiB. */
const MAX_ALIGNED_BYTES = 65536 * WASM_PAGE;

/**
 * A buffer of at least `bytes` bytes (rounded up to 64 KiB), page-aligned
 * when WebAssembly memory can be had; ordinary memory otherwise (an
 * address-space limit: V8 reserves gigabytes per Memory), which `aligned`
 * says, so the caller does its I/O through the page cache.
 */
export function pageAlignedBuffer(bytes: number): { buffer: Buffer; aligned: boolean } {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  try {
    return { buffer: Buffer.from(new wasm.Memory({ initial: pages }).buffer as ArrayBuffer), aligned: true };
  } catch {
    return { buffer: Buffer.allocUnsafeSlow(pages * WASM_PAGE), aligned: false };
  }
}

/** The same for shared memory (a SharedArrayBuffer); too large for WebAssembly is ordinary too. */
export function pageAlignedShared(bytes: number): { buffer: SharedArrayBuffer; aligned: boolean } {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  try {
    if (bytes <= MAX_ALIGNED_BYTES) return { buffer: new wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer as SharedArrayBuffer, aligned: true };
  } catch {
    // ordinary shared memory below
  }
  return { buffer: new SharedArrayBuffer(bytes), aligned: false };
}
