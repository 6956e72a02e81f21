/**
 * actors/receive-budget.ts: the bytes receivers hold, the limit past which
 * readers stop, the lower mark at which they are woken, and chunk payloads
 * counted as they arrive off a socket until a receiver claims them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ReceiveBudget } from '../../actors/receive-budget.js';

const test = suite('actors: receive budget');
const bytes = (n: number) => new Uint8Array(n);

test('exhausted only past the limit; waiters woken once, when the held bytes fall to three quarters of it', () => {
  const budget = new ReceiveBudget(1000);
  budget.take(bytes(1000));
  assert.not.ok(budget.exhausted, 'at the limit: not yet past it');
  budget.take(bytes(1));
  assert.ok(budget.exhausted);
  let woken = 0;
  budget.whenAvailable(() => woken++);
  budget.whenAvailable(() => woken++);
  assert.is(budget.waiting, 2);
  budget.give(200); // 801 held: below the limit, above 750
  assert.is(woken, 0, 'not woken between the limit and the resume mark');
  budget.give(51); // 750
  assert.is(woken, 2, 'both woken at the resume mark');
  assert.is(budget.waiting, 0);
  budget.give(100);
  assert.is(woken, 2, 'each wait wakes once');
  assert.is(budget.heldBytes, 650);
  assert.is(budget.peakBytes, 1001);
});

test('a forgotten waiter is not woken; giving back more than held floors at zero; a limit must be positive', () => {
  const budget = new ReceiveBudget(100);
  budget.take(bytes(500));
  let woken = false;
  const forget = budget.whenAvailable(() => (woken = true));
  forget();
  budget.give(1000);
  assert.not.ok(woken);
  assert.is(budget.heldBytes, 0);
  assert.throws(() => new ReceiveBudget(0), /positive/);
  assert.throws(() => new ReceiveBudget(Number.NaN), /positive/);
});

test('a payload is counted once: on arrival, not again when a receiver claims it; let go unclaimed, or its connection closed, it is given back', () => {
  const budget = new ReceiveBudget(10_000);
  const a = Buffer.alloc(300);
  const b = Buffer.alloc(200);
  const c = Buffer.alloc(100);
  const connection = {};
  const other = {};
  budget.arrive(a, connection);
  budget.arrive(b, connection);
  budget.arrive(c, other);
  assert.is(budget.heldBytes, 600, 'counted as they arrive');
  budget.take(a.subarray(48)); // a receiver claims a's data (a view of the same buffer, past the header)
  assert.is(budget.heldBytes, 552, 'not counted twice; held from now on: the data the receiver will give back');
  budget.released(a); // claimed: a receiver gives it back when written, not its release
  assert.is(budget.heldBytes, 552);
  budget.released(b.subarray(10)); // dropped without a receiver
  assert.is(budget.heldBytes, 352);
  budget.released(b);
  assert.is(budget.heldBytes, 352, 'given back once');
  budget.arrive(b, connection);
  budget.forget(connection); // b unclaimed when its connection closed; c is another connection's
  assert.is(budget.heldBytes, 352);
  budget.give(252); // a's data, written
  assert.is(budget.heldBytes, 100);
  budget.forget(other);
  assert.is(budget.heldBytes, 0);
});

test.run();
