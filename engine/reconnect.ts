/**
 * The client's reconnection policy (seed: Auto-Reconnection; PROTOCOL.md §6):
 * delays of 1 s, ×2 each attempt, at most 30 s, at most 10 consecutive
 * failed attempts, with jitter so many clients cut at once do not redial in
 * lockstep. A successful reconnection resets the count and the delay (§8.20).
 */
import { Defaults } from '../protocol/constants.js';

export interface ReconnectPolicy {
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  maxAttempts: number;
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter], then capped. */
  jitter: number;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = {
  initialDelayMs: Defaults.RECONNECT_INITIAL_DELAY_MS,
  multiplier: Defaults.RECONNECT_MULTIPLIER,
  maxDelayMs: Defaults.RECONNECT_MAX_DELAY_MS,
  maxAttempts: Defaults.RECONNECT_MAX_ATTEMPTS,
  jitter: 0.2,
};

/** The delay before attempt `attempt` (1-based). */
export function reconnectDelay(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
  const factor = 1 - policy.jitter + 2 * policy.jitter * random();
  return Math.round(Math.min(policy.maxDelayMs, base * factor));
}
