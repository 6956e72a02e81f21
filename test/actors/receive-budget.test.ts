/**
 * actors/receive-budget.ts: the bytes receivers hold, the limit past which
 * readers stop, and the lower mark at which they are woken.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ReceiveBudget } from '../../actors/receive-budget.js';

const test = suite('actors: receive budget');

test('exhausted only past the limit; waiters woken once, when the held bytes fall to three quarters of it', () => {
  const budget = new ReceiveBudget(1000);
  budget.take(1000);
  assert.not.ok(budget.exhausted, 'at the limit: not yet past it');
  budget.take(1);
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
  budget.take(500);
  let woken = false;
  const forget = budget.whenAvailable(() => (woken = true));
  forget();
  budget.give(1000);
  assert.not.ok(woken);
  assert.is(budget.heldBytes, 0);
  assert.throws(() => new ReceiveBudget(0), /positive/);
  assert.throws(() => new ReceiveBudget(Number.NaN), /positive/);
});

test.run();
