/**
 * Token buckets on the injected clock, one per key: how chat holds each member to 10 messages a
 * second (a burst of 10, then one every 100 ms) in each room, and to an overall rate over all
 * rooms (`check` one bucket, then `take` from both: a refusal by either takes from neither).
 *
 * Invariants: a key takes at most `burst` tokens at once and regains `perSecond` a second, never
 * more than `burst`; time read from the clock never runs a bucket backwards (a clock stepped back
 * refills nothing); a refused take changes nothing. Buckets that are full again are forgotten
 * (they are what a new bucket would be), so memory holds only keys active in the last second or so.
 *
 * Tests: test/services/chat/chat-hostile.test.ts (floods), test/services/chat/rate-limiter.test.ts
 */
import type { Clock } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #clock: Clock;
  readonly burst: number;
  readonly perSecond: number;
  /** Above this many buckets, full ones are swept on the next take. */
  readonly #sweepAbove: number;

  constructor(
    clock: Clock,
    options: { readonly burst: number; readonly perSecond: number; readonly sweepAbove?: number },
  ) {
    if (!(options.burst >= 1) || !(options.perSecond > 0)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a rate limit needs burst >= 1 and perSecond > 0");
    }
    this.#clock = clock;
    this.burst = options.burst;
    this.perSecond = options.perSecond;
    this.#sweepAbove = options.sweepAbove ?? 10_000;
  }

  /** Buckets held (tests). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `key`, or throws QUOTA naming `what` and how long to wait. */
  take(key: string, what: string): void {
    const now = this.#clock.now();
    if (this.#buckets.size > this.#sweepAbove) this.#sweep(now);
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    const tokens = this.#available(key, what, now);
    this.#buckets.set(key, { tokens: tokens - 1, at: Math.max(now, b.at) });
  }

  /** Throws as `take` would, taking nothing (to check several buckets before taking from any). */
  check(key: string, what: string): void {
    this.#available(key, what, this.#clock.now());
  }

  /** The tokens `key` has now (at least 1), or QUOTA. */
  #available(key: string, what: string, now: number): number {
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    const tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) * this.perSecond) / 1000);
    if (tokens < 1) {
      // (less a hair: 0.998 tokens at 2 a second is 1 ms to wait, not 1.0000000000000009)
      const waitMs = Math.max(1, Math.ceil(((1 - tokens) * 1000) / this.perSecond - 1e-9));
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `${what}: at most ${this.perSecond} a second (a burst of ${this.burst}); wait ${waitMs} ms`,
      );
    }
    return tokens;
  }

  #sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (Math.max(0, now - b.at) * this.perSecond) / 1000 >= this.burst)
        this.#buckets.delete(key);
    }
  }
}
