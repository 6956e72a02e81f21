/**
 * The received chunk data one server (or client) holds in memory at once,
 * across all its connections and transfers.
 *
 * A transfer's window bounds what it alone holds (64 chunks of 256 KiB:
 * 16 MiB), but not what all of them hold together: measured, each upload
 * running at once added about 22 MB to a server (8 uploads: 263 MB). Receivers
 * `take` the bytes of each chunk they accept and `give` them back once the
 * chunk is written (or dropped); while more than `limitBytes` are held, the
 * transport stops reading its sockets, so the rest waits in the kernel's
 * socket buffers and, beyond them, in the senders, as TCP's flow control
 * makes it. Reading resumes once the held bytes fall to `resumeBytes`
 * (three quarters of the limit), so a budget at its edge does not pause and
 * resume the sockets for every chunk.
 *
 * Held chunks never wait for more reads (a chunk is written as soon as the
 * sink is free, whatever arrives after it), so pausing cannot deadlock. The
 * one wait that could close the loop, a sink waiting for a worker slot that
 * other transfers hold until they have read the rest of their data, is kept
 * out of it: chunks queued for such a sink are not counted (its transfer's
 * window still bounds them). Only connections that bring chunk data are
 * paused; the others (listings, downloads, heartbeats) hold none of it.
 */
export class ReceiveBudget {
  private held = 0;
  /** The most bytes held at once (for tests and diagnostics). */
  peakBytes = 0;
  readonly resumeBytes: number;
  private readonly waiters = new Set<() => void>();

  constructor(readonly limitBytes: number) {
    if (!(limitBytes > 0)) throw new RangeError(`limitBytes must be positive, got ${limitBytes}`);
    this.resumeBytes = Math.floor(limitBytes * 0.75);
  }

  get heldBytes(): number {
    return this.held;
  }

  /** More than the limit is held: readers should stop until `whenAvailable` calls back. */
  get exhausted(): boolean {
    return this.held > this.limitBytes;
  }

  take(bytes: number): void {
    this.held += bytes;
    if (this.held > this.peakBytes) this.peakBytes = this.held;
  }

  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
    if (this.held > this.resumeBytes || this.waiters.size === 0) return;
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiting) wake();
  }

  /** Calls `wake` once the held bytes fall to `resumeBytes`; the returned function forgets it. */
  whenAvailable(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }

  /** Readers waiting for the budget (for tests and diagnostics). */
  get waiting(): number {
    return this.waiters.size;
  }
}
