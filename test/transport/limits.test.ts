import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { DEFAULT_LIMITS, type Limits, resolveLimits } from "../../src/limits.js";

describe("limits", () => {
  it("default to the documented values", () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxMessageBytes: 8 * 1024 * 1024,
      maxSegments: 512,
      maxOutboundBytes: 16 * 1024 * 1024,
      maxConnections: 10_000,
      idleTimeoutMs: 60_000,
      maxTraversalWords: 8 * 1024 * 1024,
      maxNestingDepth: 64,
      maxExports: 10_000,
      maxImports: 10_000,
      maxQuestionsInFlight: 1024,
      maxUnfinishedAnswers: 100_000,
      maxIdentityCallsInFlight: 256,
      maxIdentityExports: 20_000,
      maxLoginsPerConnection: 32,
      maxAttachmentsPerLogin: 64,
      loginFreeFailures: 5,
      loginDelayBaseMs: 1000,
      loginDelayMaxMs: 900_000,
      challengeTimeoutMs: 60_000,
      maxChallengersPerConnection: 4,
      maxPreLoginConnectionsPerAddress: 64,
      maxPendingDevicesPerName: 5,
      maxApiKeysPerIdentity: 32,
      maxOtpsPerIdentity: 8,
      maxResumeTokensPerIdentity: 32,
      resumeTokenTtlMs: 14 * 24 * 3600 * 1000,
      otpTtlMs: 10 * 60 * 1000,
      pendingTtlMs: 7 * 24 * 3600 * 1000,
      sweepIntervalMs: 60_000,
      loginFloodRatePerSecond: 20,
    });
    expect(Object.isFrozen(DEFAULT_LIMITS)).toBe(true);
  });

  it("resolve to a fresh copy of the defaults, with overrides applied", () => {
    const resolved = resolveLimits({ maxSegments: 8, idleTimeoutMs: undefined });
    expect(resolved).toEqual({ ...DEFAULT_LIMITS, maxSegments: 8 });
    expect(resolveLimits()).not.toBe(DEFAULT_LIMITS);
  });

  it("allow idleTimeoutMs 0 to turn the idle timeout off", () => {
    expect(resolveLimits({ idleTimeoutMs: 0 }).idleTimeoutMs).toBe(0);
  });

  it.each([
    [{ maxMessageBytes: 0 }, "limit maxMessageBytes must be a positive integer, got 0"],
    [{ maxSegments: -1 }, "limit maxSegments must be a positive integer, got -1"],
    [{ maxConnections: 1.5 }, "limit maxConnections must be a positive integer, got 1.5"],
    [{ idleTimeoutMs: -5 }, "limit idleTimeoutMs must be a non-negative integer, got -5"],
    [{ maxOutboundBytes: Number.NaN }, "limit maxOutboundBytes must be a positive integer, got NaN"],
    [{ maxImports: "10" as unknown as number }, "limit maxImports must be a positive integer, got 10"],
    [{ maxMesageBytes: 5 } as Partial<Limits>, 'unknown limit "maxMesageBytes"'],
  ])("reject %o with PARALLAX_ERR_BAD_ARGUMENT", (partial, message) => {
    expect(() => resolveLimits(partial)).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT, message }),
    );
  });

  it("each carry a doc comment stating the default, the reason and the effect when exceeded", () => {
    const source = readFileSync(new URL("../../src/limits.ts", import.meta.url), "utf8");
    for (const name of Object.keys(DEFAULT_LIMITS)) {
      const doc = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*${name}: number;`).exec(source)?.[1];
      expect(doc, name).toBeDefined();
      expect(doc, name).toMatch(/Default /);
      expect(doc, name).toMatch(/Why: /);
      expect(doc, name).toMatch(/Exceeded: /);
    }
  });
});
