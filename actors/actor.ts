/**
 * The actor runtime: a bounded mailbox processed one message at a time, in
 * order, with a re-entry guard, a yield to the event loop every few messages
 * so one busy actor cannot starve the others, and failures reported to a
 * supervisor instead of thrown into the void.
 *
 * Backpressure follows the stream contract: `tell` returns false once the
 * mailbox holds `highWaterMark` messages, and `onDrain` fires when it has
 * emptied; the producer (a socket) pauses in between. A producer that ignores
 * it and passes `capacity` gets the overflow answer: the actor fails.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export interface Supervisor {
  /** A child failed; the supervisor decides what that ends. */
  childFailed(child: Actor<never>, error: unknown): void;
}

export interface ActorOptions {
  highWaterMark?: number;
  capacity?: number;
  /** Messages handled between two yields to the event loop. */
  batch?: number;
}

export abstract class Actor<M> {
  readonly name: string;
  protected supervisor: Supervisor | undefined;
  private queue: (M | undefined)[] = [];
  private head = 0;
  private processing = false;
  private stopped = false;
  private full = false;
  private stopping: Promise<void> | undefined;
  private readonly highWaterMark: number;
  private readonly capacity: number;
  private readonly batch: number;
  /** Called once the mailbox drains after `tell` returned false. */
  onDrain: (() => void) | undefined;

  constructor(name: string, supervisor?: Supervisor, opts: ActorOptions = {}) {
    this.name = name;
    this.supervisor = supervisor;
    this.highWaterMark = opts.highWaterMark ?? 256;
    this.capacity = opts.capacity ?? 16 * this.highWaterMark;
    this.batch = opts.batch ?? 64;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  get mailboxSize(): number {
    return this.queue.length - this.head;
  }

  /** Enqueues a message; false means "stop sending until onDrain". */
  tell(message: M): boolean {
    if (this.stopped) return true;
    if (this.mailboxSize >= this.capacity) {
      this.fail(new Error(`${this.name}: mailbox overflow (${this.capacity} messages)`));
      return false;
    }
    this.queue.push(message);
    if (!this.processing) void this.process();
    if (this.mailboxSize >= this.highWaterMark) this.full = true;
    return !this.full;
  }

  /** Handles one message. Throwing (or rejecting) fails the actor. */
  protected abstract receive(message: M): void | Promise<void>;

  /** Called once when the actor stops, whatever the reason; release resources here. */
  protected onStop(_reason: unknown): void | Promise<void> {}

  /**
   * Called for each message still queued when the actor stops, so an owner
   * of resources a message carries (a chunk buffer) can give them back.
   */
  protected dropped(_message: M): void {}

  /** Stops taking messages; pending ones are handed to `dropped`. */
  stop(reason?: unknown): Promise<void> {
    // A second caller waits for the cleanup already under way.
    if (this.stopping) return this.stopping;
    this.stopped = true;
    const pending = this.queue.slice(this.head) as M[];
    this.queue = [];
    this.head = 0;
    for (const message of pending) this.dropped(message);
    this.stopping = Promise.resolve().then(() => this.onStop(reason));
    return this.stopping;
  }

  /** Reports a failure to the supervisor (or rethrows asynchronously without one) and stops. */
  protected fail(error: unknown): void {
    if (this.stopped) return;
    if (this.supervisor) this.supervisor.childFailed(this as unknown as Actor<never>, error);
    else queueMicrotask(() => {
      throw error;
    });
    void this.stop(error);
  }

  private async process(): Promise<void> {
    this.processing = true;
    let handled = 0;
    try {
      while (!this.stopped && this.head < this.queue.length) {
        const message = this.queue[this.head] as M;
        this.queue[this.head++] = undefined;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        try {
          const pending = this.receive(message);
          if (pending) await pending;
        } catch (error) {
          this.fail(error);
          return;
        }
        if (++handled % this.batch === 0) await yieldToLoop();
      }
      this.queue = [];
      this.head = 0;
    } finally {
      this.processing = false;
      if (this.full && !this.stopped && this.mailboxSize === 0) {
        this.full = false;
        this.onDrain?.();
      }
    }
  }
}
