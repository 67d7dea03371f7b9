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

  it("admits a new key past a table full of locks through the global bucket, never pushing a lock out", () => {
    const { throttle } = setup({ freeFailures: 1, maxTracked: 2, globalBurst: 2 });
    throttle.failure("a", "");
    throttle.failure("b", "");
    expect(() => throttle.attempt("c", "")).not.toThrow();
    expect(throttle.size).toBe(2);
    expect(lock(throttle, "a", "")).toBeDefined();
    expect(lock(throttle, "b", "")).toBeDefined();
  });

  it("refuses options that are not positive integers", () => {
    expect(() => new LoginThrottle({ freeFailures: 0 })).toThrow(/freeFailures/);
    expect(() => new LoginThrottle({ maxTracked: 1.5 })).toThrow(/maxTracked/);
    expect(() => new LoginThrottle({ freeDeviceRequests: 0 })).toThrow(/freeDeviceRequests/);
    expect(() => new LoginThrottle({ spillSlots: -1 })).toThrow(/spillSlots/);
    expect(() => new LoginThrottle({ globalRatePerSecond: 0 })).toThrow(/globalRatePerSecond/);
    expect(() => new LoginThrottle({ globalRatePerSecond: Number.NaN })).toThrow(/globalRatePerSecond/);
    expect(() => new LoginThrottle({ globalBurst: 1 })).toThrow(/globalBurst must be at least 2/);
    expect(() => new LoginThrottle({ globalRatePerSecond: 0.5 })).not.toThrow();
  });
});

/** The RateLimitedError `fn` throws, or undefined if it returns. */
function refusal(fn: () => void): RateLimitedError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof RateLimitedError) return err;
    throw err;
  }
}

/** Fails `username` from `address` through attempt/settle, as a wrong password does. */
function guess(throttle: LoginThrottle, username: string, address: string): void {
  throttle.attempt(username, address);
  throttle.settle(username, address, false);
}

describe("LoginThrottle: secrets (registered keys, API keys, OTPs, resume tokens)", () => {
  it("lets a valid secret in for a name whose password logins someone else has locked", () => {
    const { throttle } = setup({ freeFailures: 5 });
    for (let i = 0; i < 5; i++) guess(throttle, "victim", `10.6.6.${i}`);
    expect(lock(throttle, "victim", "10.0.0.1")?.message).toMatch(/for this name/);
    throttle.attemptSecret("10.0.0.1");
    expect(throttle.settleSecret("10.0.0.1", true)).toBeUndefined();
    // The attacker's address too: a valid secret is not a guess.
    throttle.attemptSecret("10.6.6.4");
    expect(throttle.settleSecret("10.6.6.4", true)).toBeUndefined();
    // Password logins for the name stay locked, as before.
    expect(refusal(() => throttle.attempt("victim", "10.0.0.1"))?.message).toMatch(/for this name/);
  });

  it("admits a valid secret from a locked address but answers an invalid one RATE_LIMITED without counting it", () => {
    const { clock, throttle } = setup({ freeFailures: 2, baseDelayMs: 10_000 });
    throttle.failure("a", "10.0.0.1");
    throttle.failure("b", "10.0.0.1");
    expect(lock(throttle, "x", "10.0.0.1")?.retryAfterMs).toBe(10_000);
    clock.t += 1000;
    throttle.attemptSecret("10.0.0.1");
    const err = throttle.settleSecret("10.0.0.1", false);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err?.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err?.message).toBe("too many failed logins from this address; retry in 9 s");
    expect(err?.retryAfterMs).toBe(9000);
    expect(lock(throttle, "x", "10.0.0.1")?.retryAfterMs).toBe(9000);
    throttle.attemptSecret("10.0.0.1");
    expect(throttle.settleSecret("10.0.0.1", true)).toBeUndefined();
  });

  it("counts an invalid secret against the address only, never a name", () => {
    const { throttle } = setup({ freeFailures: 3 });
    for (let i = 0; i < 3; i++) {
      throttle.attemptSecret("10.0.0.1");
      expect(throttle.settleSecret("10.0.0.1", false)).toBeUndefined();
    }
    expect(lock(throttle, "anyone", "10.0.0.1")?.message).toMatch(/from this address/);
    expect(lock(throttle, "anyone", "10.0.0.2")).toBeUndefined();
    expect(throttle.size).toBe(1);
  });

  it("bounds secrets in flight per address, together with password attempts", () => {
    const { throttle } = setup({ maxInFlightPerAddress: 2 });
    throttle.attemptSecret("10.0.0.1");
    throttle.attemptSecret("10.0.0.1");
    expect(refusal(() => throttle.attemptSecret("10.0.0.1"))?.message).toBe(
      "too many logins in progress from this address; retry in 1 s",
    );
    expect(refusal(() => throttle.attempt("bob", "10.0.0.1"))?.message).toMatch(
      /in progress from this address/,
    );
    throttle.attemptSecret("10.0.0.2");
    throttle.settleSecret("10.0.0.1", true);
    expect(() => throttle.attemptSecret("10.0.0.1")).not.toThrow();
  });

  it("does not track a secret from the unknown address", () => {
    const { throttle } = setup({ freeFailures: 1 });
    throttle.attemptSecret("");
    expect(throttle.settleSecret("", false)).toBeUndefined();
    throttle.attemptSecret("not an address");
    expect(throttle.settleSecret("not an address", false)).toBeUndefined();
    expect(throttle.size).toBe(0);
  });
});

describe("LoginThrottle: new-device requests", () => {
  it("locks a name's device requests after freeDeviceRequests, never its password logins", () => {
    const { clock, throttle } = setup({ freeFailures: 2, freeDeviceRequests: 3 });
    for (let i = 0; i < 3; i++) throttle.deviceRequest("alice", `10.0.0.${i}`);
    const err = refusal(() => throttle.deviceRequest("alice", "10.0.0.9"));
    expect(err?.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err?.message).toBe("too many new-device requests for this name; retry in 1 s");
    expect(lock(throttle, "alice", "10.0.0.0")).toBeUndefined();
    expect(() => throttle.attempt("alice", "10.0.0.0")).not.toThrow();
    throttle.settle("alice", "10.0.0.0", true);
    clock.t += 1000;
    expect(() => throttle.deviceRequest("alice", "10.0.0.9")).not.toThrow();
    expect(refusal(() => throttle.deviceRequest("alice", "10.0.0.8"))?.retryAfterMs).toBe(2000);
  });

  it("counts device requests per address too, apart from the address's failed logins", () => {
    const { throttle } = setup({ freeFailures: 2, freeDeviceRequests: 2 });
    throttle.deviceRequest("a", "10.0.0.1");
    throttle.deviceRequest("b", "10.0.0.1");
    expect(refusal(() => throttle.deviceRequest("c", "10.0.0.1"))?.message).toMatch(
      /new-device requests from this address/,
    );
    expect(() => throttle.deviceRequest("c", "10.0.0.2")).not.toThrow();
    expect(lock(throttle, "c", "10.0.0.1")).toBeUndefined();
  });

  it("is not locked by the name's password failures", () => {
    const { throttle } = setup({ freeFailures: 2 });
    guess(throttle, "alice", "10.0.0.1");
    guess(throttle, "alice", "10.0.0.2");
    expect(lock(throttle, "alice", "10.0.0.3")).toBeDefined();
    expect(() => throttle.deviceRequest("alice", "10.0.0.3")).not.toThrow();
  });
});

describe("LoginThrottle: keys", () => {
  it("shares one lock among the IPv6 addresses of a /64, not with another /64", () => {
    const { throttle } = setup({ freeFailures: 2 });
    throttle.failure("a", "2001:db8::1");
    throttle.failure("b", "2001:db8::ffff:2");
    for (const same of ["[2001:db8::3]", "2001:DB8:0:0:1::9", "2001:db8::4%eth0"]) {
      expect(lock(throttle, "c", same)?.message, same).toMatch(/from this address/);
    }
    expect(lock(throttle, "c", "2001:db8:0:1::1")).toBeUndefined();
    expect(lock(throttle, "c", "2001:db9::1")).toBeUndefined();
  });

  it("shares the lock of an IPv4 address with its IPv4-mapped IPv6 forms", () => {
    const { throttle } = setup({ freeFailures: 2 });
    throttle.failure("a", "::ffff:10.0.0.1");
    throttle.failure("b", "10.0.0.1");
    expect(lock(throttle, "c", "10.0.0.1")?.message).toMatch(/from this address/);
    expect(lock(throttle, "c", "::ffff:a00:1")?.message).toMatch(/from this address/);
    expect(lock(throttle, "c", "10.0.0.2")).toBeUndefined();
    expect(lock(throttle, "c", "::ffff:10.0.0.2")).toBeUndefined();
  });

  it("counts a name under its folded key, so case and width variants share its lock", () => {
    const { throttle } = setup({ freeFailures: 3 });
    throttle.failure("Alice", "");
    throttle.failure("ALICE", "");
    throttle.failure("ａｌｉｃｅ", "");
    expect(lock(throttle, "alice", "")?.message).toMatch(/for this name/);
    expect(lock(throttle, "alicf", "")).toBeUndefined();
    expect(throttle.size).toBe(1);
  });
});

describe("LoginThrottle: a flood that fills the table", () => {
  /** A throttle whose `maxTracked` (4) keys are all locked for a minute. */
  function flooded(options: LoginThrottleOptions = {}) {
    const t = setup({ freeFailures: 1, baseDelayMs: 60_000, maxTracked: 4, ...options });
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < (options.freeFailures ?? 1); j++) t.throttle.failure(`mallory${i}`, "");
    }
    expect(t.throttle.size).toBe(4);
    for (let i = 0; i < 4; i++) expect(lock(t.throttle, `mallory${i}`, "")?.retryAfterMs).toBe(60_000);
    return t;
  }

  it("admits new users at the global rate, refuses them beyond it, and admits them again as the bucket refills", () => {
    const { clock, throttle } = flooded({ globalRatePerSecond: 2, globalBurst: 4 });
    // A new name and a new address: a token each.
    throttle.attempt("u1", "10.1.0.1");
    throttle.attempt("u2", "10.1.0.2");
    const err = refusal(() => throttle.attempt("u3", "10.1.0.3"));
    expect(err?.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err?.message).toBe("the server is under a login flood; retry in 1 s");
    expect(err?.retryAfterMs).toBe(1000);
    clock.t += 500;
    expect(refusal(() => throttle.attempt("u3", "10.1.0.3"))?.retryAfterMs).toBe(500);
    clock.t += 500;
    expect(() => throttle.attempt("u3", "10.1.0.3")).not.toThrow();
    throttle.settle("u1", "10.1.0.1", true);
    throttle.settle("u2", "10.1.0.2", true);
    throttle.settle("u3", "10.1.0.3", true);
    // A login with only one key to pay for needs one token.
    clock.t += 500;
    expect(() => throttle.attempt("u4", "")).not.toThrow();
    expect(refusal(() => throttle.attempt("u5", ""))?.message).toMatch(/login flood/);
    expect(throttle.size).toBe(4);
    for (let i = 0; i < 4; i++) expect(lock(throttle, `mallory${i}`, "")).toBeDefined();
  });

  it("lets secrets in without tokens while the bucket is empty", () => {
    const { throttle } = flooded({ globalBurst: 2, globalRatePerSecond: 0.001 });
    throttle.attempt("u1", "10.1.0.1");
    expect(refusal(() => throttle.attempt("u2", "10.1.0.2"))?.message).toMatch(/login flood/);
    for (let i = 0; i < 100; i++) {
      throttle.attemptSecret(`10.2.0.${i}`);
      expect(throttle.settleSecret(`10.2.0.${i}`, true)).toBeUndefined();
    }
    throttle.attemptSecret("10.2.0.1");
    expect(throttle.settleSecret("10.2.0.1", false)).toBeUndefined();
  });

  it("still locks a name guessed through the bucket, counting it in the spill", () => {
    const { throttle } = flooded({ freeFailures: 3, globalBurst: 1000, globalRatePerSecond: 1000 });
    guess(throttle, "victim", "10.3.0.1");
    guess(throttle, "victim", "10.3.0.2");
    expect(lock(throttle, "victim", "10.3.0.9")).toBeUndefined();
    guess(throttle, "victim", "10.3.0.3");
    expect(lock(throttle, "victim", "10.3.0.9")?.message).toBe(
      "too many failed logins for this name; retry in 60 s",
    );
    expect(refusal(() => throttle.attempt("victim", "10.3.0.9"))?.message).toMatch(/for this name/);
    expect(lock(throttle, "bystander", "10.3.0.9")).toBeUndefined();
    expect(lock(throttle, "bystander", "10.3.0.1")).toBeUndefined();
    expect(throttle.size).toBe(4);
  });

  it("carries what the spill counted into the table once the flood's locks expire", () => {
    const { clock, throttle } = flooded({ freeFailures: 3, globalBurst: 1000, globalRatePerSecond: 1000 });
    for (let i = 1; i <= 3; i++) guess(throttle, "victim", `10.3.0.${i}`);
    clock.t += 60_000;
    expect(lock(throttle, "victim", "10.3.0.9")).toBeUndefined();
    // Room now (the flood's locks are over): the victim's fourth failure is tracked, and counted
    // as the fourth, not the first.
    guess(throttle, "victim", "10.3.0.4");
    expect(lock(throttle, "victim", "10.3.0.9")?.retryAfterMs).toBe(120_000);
    expect(throttle.size).toBe(4);
  });

  it("finds an expired lock deep in a full table within a few searches, each looking at 32 keys", () => {
    const { clock, throttle } = setup({
      freeFailures: 1,
      maxTracked: 100,
      globalBurst: 2,
      globalRatePerSecond: 0.001,
    });
    for (let i = 0; i < 99; i++) {
      throttle.failure(`m${i}`, "");
      throttle.failure(`m${i}`, ""); // locked for 2 s
    }
    throttle.failure("last", ""); // locked for 1 s, at the back of the table
    clock.t += 1000;
    throttle.attempt("x1", ""); // passes m0..m31, all locked: pays a token
    throttle.attempt("x2", ""); // m32..m63: pays the last token
    expect(refusal(() => throttle.attempt("x3", ""))?.message).toMatch(/login flood/); // m64..m95
    expect(() => throttle.attempt("x4", "")).not.toThrow(); // m96..m98, then "last": room
    expect(throttle.size).toBe(100);
    for (let i = 0; i < 99; i++) expect(lock(throttle, `m${i}`, "")).toBeDefined();
  });
});
