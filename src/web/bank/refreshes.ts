/**
 * How the bank page lives through a dropped connection. Every capability the page holds (the
 * accounts, the facets, the watchers) belongs to one connection; after the ReconnectingClient
 * resumed and re-attached, the page reads its accounts and facets again (a "refresh") and counts
 * it here. A call that failed because the connection dropped waits for the next refresh and is
 * tried again on the new capabilities: for a transfer with the same id, so it applies at most
 * once (the bank answers `exists` to a resend of a transfer that went through).
 *
 * Invariants: `count` only grows; `after(n)` settles once `count > n`; a try is repeated only for
 * errors of kind `disconnected` or `overloaded`, at most `MAX_TRIES` times in all.
 *
 * Tests: test/web/bank.test.ts (a transfer across a dropped WebSocket)
 */
import { systemClock } from "../../clock.js";
import { type ParallaxError, toParallaxError } from "../../errors.js";

export const MAX_TRIES = 5;
const OVERLOADED_WAIT_MS = 250;

export class Refreshes {
  #count = 0;
  readonly #waiters: Array<{ readonly after: number; readonly resolve: () => void }> = [];

  get count(): number {
    return this.#count;
  }

  /** A refresh finished. */
  bump(): void {
    this.#count++;
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i];
      if (w !== undefined && w.after < this.#count) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Settles once a refresh finished after the `n`th. */
  after(n: number): Promise<void> {
    if (this.#count > n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ after: n, resolve }));
  }
}

/** Whether trying again may help (the call may not have reached the bank, or was shed). */
export function transient(error: ParallaxError): boolean {
  return error.kind === "disconnected" || error.kind === "overloaded";
}

/**
 * Runs `once` (which reads the page's current capabilities each time) until it answers or fails
 * for good; `onRetry` is told before each new try.
 */
export async function withRetries<T>(
  refreshes: Refreshes,
  once: () => Promise<T>,
  onRetry: (attempt: number, error: ParallaxError) => void = () => {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const seen = refreshes.count;
    try {
      return await once();
    } catch (err) {
      const error = toParallaxError(err);
      if (!transient(error) || attempt >= MAX_TRIES) throw error;
      onRetry(attempt, error);
      if (error.kind === "disconnected") await refreshes.after(seen);
      else await new Promise<void>((r) => systemClock.setTimer(OVERLOADED_WAIT_MS * 2 ** (attempt - 1), r));
    }
  }
}
