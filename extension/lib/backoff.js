/**
 * Retry timing for the outbox: exponential back-off with full jitter, capped.
 *
 * Why no chrome.alarms: it needs the "alarms" permission, and a retry only matters while
 * there is something to send. Events are queued only while the user is on a provider's page,
 * which keeps waking the worker; every wake (a message, browser start-up, the popup) checks
 * `nextAttemptAt` and flushes when due, and while the worker lives a setTimeout covers the
 * wait. Events carry their own `at`, so a delivery that waits for the next wake loses nothing.
 */

export const BASE_DELAY_MS = 2_000;
export const MAX_DELAY_MS = 5 * 60_000;

/** Delay before attempt number `failures + 1`, given `failures` failures in a row. */
export function retryDelay(failures, { base = BASE_DELAY_MS, max = MAX_DELAY_MS,
  random = Math.random } = {}) {
  if (!Number.isFinite(failures) || failures <= 0) return 0;
  const ceiling = Math.min(max, base * 2 ** Math.min(failures - 1, 30));
  // Half fixed, half jitter: never zero, and two browsers never retry in lockstep.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
