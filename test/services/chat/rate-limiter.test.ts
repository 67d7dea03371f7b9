/** The token buckets chat's floods meet: a burst, then a steady rate, on the injected clock. */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import { RateLimiter } from "../../../src/services/chat/rate-limiter.js";

const refused = (fn: () => void): string => {
  try {
    fn();
    return "taken";
  } catch (err) {
    expect(err).toBeInstanceOf(ParallaxError);
    expect((err as ParallaxError).code).toBe(ErrorCode.QUOTA);
    return (err as ParallaxError).message;
  }
};

describe("RateLimiter", () => {
  it("allows a burst, then one token per 1/rate, per key, and a refused take costs nothing", () => {
    const clock = new ManualClock(0);
    const r = new RateLimiter(clock, { burst: 3, perSecond: 2 });
    for (let i = 0; i < 3; i++) r.take("a", "posting");
    expect(refused(() => r.take("a", "posting"))).toBe(
      "posting: at most 2 a second (a burst of 3); wait 500 ms",
    );
    r.take("b", "posting");
    clock.advance(499);
    expect(refused(() => r.take("a", "posting"))).toBe(
      "posting: at most 2 a second (a burst of 3); wait 1 ms",
    );
    clock.advance(1);
    expect(refused(() => r.take("a", "posting"))).toBe("taken");
    expect(refused(() => r.take("a", "posting"))).toContain("wait 500 ms");
    // Never more than the burst, however long the wait.
    clock.advance(3_600_000);
    for (let i = 0; i < 3; i++) r.take("a", "posting");
    expect(refused(() => r.take("a", "posting"))).toContain("wait");
  });

  it("forgets buckets that have filled up again once it holds many", () => {
    const clock = new ManualClock(0);
    const r = new RateLimiter(clock, { burst: 1, perSecond: 1, sweepAbove: 2 });
    for (const k of ["a", "b", "c"]) r.take(k, "x");
    expect(r.size).toBe(3);
    clock.advance(1000);
    r.take("d", "x");
    expect(r.size).toBe(1);
  });
});
