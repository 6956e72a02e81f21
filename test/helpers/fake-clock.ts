/**
 * A hand-driven Clock (actors/ports.ts) for tests of heartbeats and timeouts:
 * time only moves when the test calls `advance(ms)`, which fires the timers
 * that fall due, in time order (ties in scheduling order), including timers
 * scheduled by those callbacks while they still fall inside the window.
 *
 * Timer callbacks usually `tell` a message to an actor, and actors answer on
 * their own schedule: after `advance`, wait for the effect on the socket
 * (`waitFor`, `nextEvent`) rather than assume it already happened.
 */
import type { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../../actors/ports.js';

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  /** `start`: the epoch milliseconds `now()` begins at. */
  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: FakeTimer = { at: this.time + delay, seq: this.seq++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }

  /** Timers scheduled and neither fired nor cancelled. */
  get pending(): number {
    return this.timers.length;
  }

  /** Calls to setTimeout so far (a timer re-armed shows up here even when `pending` stays the same). */
  get scheduled(): number {
    return this.seq;
  }

  /** Delays from now of the pending timers, soonest first (for assertions and diagnostics). */
  pendingDelays(): number[] {
    return this.timers.map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /**
   * Moves time forward by `ms`, firing every timer due by then in time order;
   * `now()` reads each timer's own due time while it runs. Returns how many
   * fired. A callback that throws does not stop the others: the first error is
   * rethrown once the window is done.
   */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): ms must be >= 0`);
    const end = this.time + ms;
    let fired = 0;
    let firstError: { error: unknown } | undefined;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.timers) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.time = next.at;
      fired++;
      try {
        next.fn();
      } catch (error) {
        firstError ??= { error };
      }
    }
    this.time = end;
    if (firstError) throw firstError.error;
    return fired;
  }
}

/**
 * Polls `predicate` (every few ms, on real time) until it holds; rejects with
 * `what` after `timeoutMs`. For conditions reached asynchronously (actor
 * mailboxes, sockets), not for measuring time.
 */
export async function waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise<void>((r) => setTimeout(r, 5));
  }
}

/** The first argument of the next `name` event of `emitter`; rejects after `timeoutMs`. */
export function nextEvent<T = unknown>(emitter: EventEmitter, name: string, timeoutMs = 5_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(name, listener);
  });
}
