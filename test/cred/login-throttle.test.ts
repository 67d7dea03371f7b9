import { describe, expect, it } from "vitest";
import { LoginThrottle, type LoginThrottleOptions, RateLimitedError } from "../../src/cred/login-throttle.js";
import { ErrorCode } from "../../src/errors.js";

function setup(options: LoginThrottleOptions = {}) {
  const clock = { t: 1_000_000 };
  const throttle = new LoginThrottle({ now: () => clock.t, ...options });
  return { clock, throttle };
}

function lock(throttle: LoginThrottle, username: string, address: string): RateLimitedError | undefined {
  try {
    throttle.check(username, address);
    return undefined;
  } catch (err) {
    if (err instanceof RateLimitedError) return err;
    throw err;
  }
}

describe("LoginThrottle", () => {
  it("allows freeFailures - 1 failures without any wait, and locks at the freeFailures-th", () => {
    const { throttle } = setup({ freeFailures: 5 });
    for (let i = 0; i < 4; i++) {
      expect(lock(throttle, "alice", "10.0.0.1")).toBeUndefined();
      throttle.failure("alice", "10.0.0.1");
    }
    expect(lock(throttle, "alice", "10.0.0.1")).toBeUndefined();
    throttle.failure("alice", "10.0.0.1");
    const err = lock(throttle, "alice", "10.0.0.1");
    expect(err?.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err?.kind).toBe("overloaded");
    expect(err?.retryAfterMs).toBe(1000);
  });

  it("doubles the lock with each further failure, up to maxDelayMs", () => {
    const { clock, throttle } = setup({ freeFailures: 2, baseDelayMs: 1000, maxDelayMs: 10_000 });
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      throttle.failure("alice", "");
      const err = lock(throttle, "alice", "");
      waits.push(err?.retryAfterMs ?? 0);
      clock.t += err?.retryAfterMs ?? 0;
      expect(lock(throttle, "alice", "")).toBeUndefined();
    }
    expect(waits).toEqual([0, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it("states which key is locked and how many seconds to wait, rounded up", () => {
    const { clock, throttle } = setup({ freeFailures: 1, baseDelayMs: 8000 });
    throttle.failure("alice", "");
    expect(lock(throttle, "alice", "")?.message).toBe("too many failed logins for this name; retry in 8 s");
    clock.t += 500;
    expect(lock(throttle, "alice", "")?.message).toBe("too many failed logins for this name; retry in 8 s");
    expect(lock(throttle, "alice", "")?.retryAfterMs).toBe(7500);
  });

  it("locks another name tried from the same address", () => {
    const { throttle } = setup({ freeFailures: 3 });
    throttle.failure("alice", "10.0.0.1");
    throttle.failure("bob", "10.0.0.1");
    throttle.failure("carol", "10.0.0.1");
    const err = lock(throttle, "dave", "10.0.0.1");
    expect(err?.message).toBe("too many failed logins from this address; retry in 1 s");
    expect(lock(throttle, "dave", "10.0.0.2")).toBeUndefined();
  });

  it("names whichever of name and address is locked longer", () => {
    const { throttle } = setup({ freeFailures: 1, baseDelayMs: 1000 });
    throttle.failure("alice", "10.0.0.1");
    throttle.failure("bob", "10.0.0.1");
    // alice: 1 failure (1 s); the address: 2 failures (2 s).
    expect(lock(throttle, "alice", "10.0.0.1")?.message).toMatch(/from this address; retry in 2 s$/);
    throttle.failure("alice", "10.0.0.2");
    throttle.failure("alice", "10.0.0.3");
    // alice: 3 failures (4 s).
    expect(lock(throttle, "alice", "10.0.0.1")?.message).toMatch(/for this name; retry in 4 s$/);
  });

  it("does not track the unknown address", () => {
    const { throttle } = setup({ freeFailures: 1 });
    throttle.failure("alice", "");
    expect(lock(throttle, "bob", "")).toBeUndefined();
    expect(throttle.size).toBe(1);
  });

  it("clears the name's count on success but not the address's", () => {
    const { clock, throttle } = setup({ freeFailures: 2 });
    throttle.failure("alice", "10.0.0.1");
    throttle.success("alice", "10.0.0.1");
    throttle.failure("alice", "10.0.0.9");
    expect(lock(throttle, "alice", "10.0.0.9")).toBeUndefined();
    throttle.failure("mallory", "10.0.0.1");
    expect(lock(throttle, "zed", "10.0.0.1")?.message).toMatch(/from this address/);
    clock.t += 1000;
    expect(lock(throttle, "zed", "10.0.0.1")).toBeUndefined();
  });

  it("forgets a count after maxDelayMs without failures or lock", () => {
    const { clock, throttle } = setup({ freeFailures: 3, maxDelayMs: 60_000 });
    throttle.failure("alice", "");
    throttle.failure("alice", "");
    clock.t += 59_999;
    throttle.failure("alice", "");
    expect(lock(throttle, "alice", "")?.retryAfterMs).toBe(1000);
    clock.t += 1000 + 59_999;
    throttle.check("alice", "");
    expect(throttle.size).toBe(1);
    clock.t += 1;
    throttle.check("alice", "");
    expect(throttle.size).toBe(0);
    throttle.failure("alice", "");
    expect(lock(throttle, "alice", "")).toBeUndefined();
  });

  it("keeps the count of a key that waited out a capped lock but not the quiet time after it", () => {
    const { clock, throttle } = setup({ freeFailures: 1, baseDelayMs: 40_000, maxDelayMs: 60_000 });
    throttle.failure("alice", "");
    throttle.failure("alice", "");
    expect(lock(throttle, "alice", "")?.retryAfterMs).toBe(60_000);
    clock.t += 60_000 + 59_999;
    throttle.failure("alice", "");
    expect(lock(throttle, "alice", "")?.retryAfterMs).toBe(60_000);
    clock.t += 60_000 + 60_000;
    throttle.failure("alice", "");
    expect(lock(throttle, "alice", "")?.retryAfterMs).toBe(40_000);
  });

  it("holds at most maxTracked keys, evicting the oldest unlocked one, never a lock", () => {
    const { throttle } = setup({ freeFailures: 2, maxTracked: 3 });
    throttle.failure("a", "");
    throttle.failure("b", "");
    throttle.failure("c", "");
    throttle.failure("a", ""); // a is locked now
    throttle.failure("d", ""); // evicts b, the oldest unlocked
    expect(throttle.size).toBe(3);
    expect(lock(throttle, "a", "")).toBeDefined();
    for (let i = 0; i < 1000; i++) throttle.failure(`n${i}`, "");
    expect(throttle.size).toBeLessThanOrEqual(4);
    expect(lock(throttle, "a", "")).toBeDefined();
  });

  it("bounds attempts in flight by what is left, so a concurrent burst cannot all pass the check", () => {
    const { throttle } = setup({ freeFailures: 3 });
    throttle.attempt("alice", "10.0.0.1");
    throttle.attempt("alice", "10.0.0.2");
    throttle.attempt("alice", "10.0.0.3");
    expect(() => throttle.attempt("alice", "10.0.0.4")).toThrow(/in progress for this name/);
    throttle.settle("alice", "10.0.0.1", false);
    throttle.settle("alice", "10.0.0.2", false);
    throttle.settle("alice", "10.0.0.3", false);
    expect(() => throttle.attempt("alice", "10.0.0.5")).toThrow(/too many failed logins/);
    const { throttle: t2 } = setup({ freeFailures: 3 });
    for (let i = 0; i < 10; i++) {
      t2.attempt("bob", "10.0.0.9");
      t2.settle("bob", "10.0.0.9", true);
    }
    expect(() => t2.attempt("bob", "10.0.0.9")).not.toThrow();
  });

  it("refuses new keys when every tracked key is locked, so a flood cannot push a lock out", () => {
    const { throttle } = setup({ freeFailures: 1, maxTracked: 2 });
    throttle.failure("a", "");
    throttle.failure("b", "");
    expect(() => throttle.attempt("c", "")).toThrow(/throttled right now/);
    expect(throttle.size).toBe(2);
    expect(lock(throttle, "a", "")).toBeDefined();
  });

  it("refuses options that are not positive integers", () => {
    expect(() => new LoginThrottle({ freeFailures: 0 })).toThrow(/freeFailures/);
    expect(() => new LoginThrottle({ maxTracked: 1.5 })).toThrow(/maxTracked/);
  });
});
