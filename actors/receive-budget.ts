/**
 * The received chunk data one server (or client) holds in memory at once,
 * across all its connections and transfers.
 *
 * A transfer's window bounds what it alone holds (64 chunks of 256 KiB:
 * 16 MiB), but not what all of them hold together: measured, each upload
 * running at once added about 22 MB to a server (8 uploads: 263 MB). The
 * transport counts each chunk payload as it comes off a socket (`arrive`), a
 * receiver claims it (`take`) and gives its bytes back once the chunk is
 * written; a payload let go without a receiver is given back as it is
 * released (`released`), or when its connection closes (`forget`). While
 * more than `limitBytes` are held, the
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
  /**
   * Chunk payloads counted as they came off a socket, not yet claimed by a
   * receiver (by their buffer; `owner` is the connection). Counting them on
   * arrival keeps the transport's check current: counted only when a
   * receiver accepted them, chunks waiting in a busy actor's mailbox were
   * missed, and a socket kept being read past the limit.
   */
  private readonly arrived = new Map<ArrayBufferLike, { bytes: number; owner: object }>();
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

  /** A chunk payload read off `owner`'s socket: counted now, until a receiver claims it (`take`) or it is let go (`released`). */
  arrive(payload: Uint8Array, owner: object): void {
    this.arrived.set(payload.buffer, { bytes: payload.length, owner });
    this.add(payload.length);
  }

  /** A receiver holds `payload` until its write settles (then `give`s its length back); counted once, on arrival or now. */
  take(payload: Uint8Array): void {
    const arrival = this.arrived.get(payload.buffer);
    if (!arrival) return this.add(payload.length);
    this.arrived.delete(payload.buffer);
    // Counted whole on arrival (the frame's payload, its 48-byte header too); held from now on: what the receiver gives back.
    if (arrival.bytes > payload.length) this.give(arrival.bytes - payload.length);
  }

  /** `payload` is let go without a receiver holding it (dropped, refused, or a receiver's duplicate). */
  released(payload: Uint8Array): void {
    const arrival = this.arrived.get(payload.buffer);
    if (!arrival) return;
    this.arrived.delete(payload.buffer);
    this.give(arrival.bytes);
  }

  /** `owner`'s connection closed: what it brought and nothing claimed is given back. */
  forget(owner: object): void {
    for (const [buffer, arrival] of this.arrived) {
      if (arrival.owner !== owner) continue;
      this.arrived.delete(buffer);
      this.give(arrival.bytes);
    }
  }

  private add(bytes: number): void {
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
