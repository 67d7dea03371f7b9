/**
 * Single use across processes: two child processes (otp-racer.ts, resume-racer.ts) race over the
 * same store file, consuming the same OTPs or rotating the same resume tokens.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { otpHash, resumeToken, TempStores } from "./fixtures.js";

const root = path.resolve(import.meta.dirname, "../..");
const otpRacer = path.join(import.meta.dirname, "otp-racer.ts");
const resumeRacer = path.join(import.meta.dirname, "resume-racer.ts");
/** Enough that the two runs overlap however the scheduler starts them (not asserted: it cannot be). */
const OTPS = 1000;
const TOKENS = 1000;

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

interface Racer {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves when the racer printed `line`. */
  readonly printed: (line: string) => Promise<void>;
  /** The numbers of its `won i` lines (OTP racer). */
  readonly won: number[];
  /** Every line it printed, in order. */
  readonly lines: string[];
}

function startRacer(script: string, args: readonly string[]): Racer {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: root });
  const won: number[] = [];
  const all: string[] = [];
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      const m = /^won (\d+)$/.exec(line);
      if (m) won.push(Number(m[1]));
      all.push(line);
      seen.add(line);
      waiters.get(line)?.();
    }
  });
  const exited = once(child, "exit");
  const printed = (line: string) =>
    seen.has(line)
      ? Promise.resolve()
      : Promise.race([
          new Promise<void>((resolve) => waiters.set(line, resolve)),
          exited.then(([code]) => {
            if (!seen.has(line)) throw new Error(`racer exited (${code}) before "${line}": ${stderr}`);
          }),
        ]);
  return { child, printed, won, lines: all };
}

describe("OTP consumption across processes", () => {
  it("two processes racing over the same OTPs consume each exactly once", async () => {
    const setup = t.open();
    const racer = await setup.createIdentity({ name: "racer", verifier: null, keyring: [] });
    for (let i = 0; i < OTPS; i++) {
      // The racers consume at time 0; the store deletes OTPs expired at its own clock on insert.
      await setup.createOtp({
        identityId: racer.id,
        otpHash: otpHash(i),
        epoch: 0,
        expiresAt: t.time + 60_000,
      });
    }
    const racers = [
      startRacer(otpRacer, [t.file, String(OTPS)]),
      startRacer(otpRacer, [t.file, String(OTPS)]),
    ];
    await Promise.all(racers.map((r) => r.printed("ready")));
    for (const r of racers) r.child.stdin.write("go\n");
    await Promise.all(racers.map((r) => r.printed("done")));

    const all = racers.flatMap((r) => r.won).sort((a, b) => a - b);
    expect(all).toEqual([...Array(OTPS).keys()]);
    expect(await setup.consumeOtp(racer.id, otpHash(0), 0)).toBe(false);
  });
});

describe("resume-token rotation across processes", () => {
  it("two processes rotating the same tokens: each token rotates once, the other presentation is a reuse", async () => {
    const setup = t.open();
    const racer = await setup.createIdentity({ name: "racer", verifier: null, keyring: [] });
    for (let i = 0; i < TOKENS; i++) {
      await setup.createResumeToken({
        ...resumeToken(racer.id, 0, { family: otpHash(i), expiresAt: t.time + 60_000 }),
        tokenHash: otpHash(i),
      });
    }
    const args = (offset: number) => [t.file, String(TOKENS), String(t.time), String(offset)];
    const racers = [startRacer(resumeRacer, args(1_000_000)), startRacer(resumeRacer, args(2_000_000))];
    await Promise.all(racers.map((r) => r.printed("ready")));
    for (const r of racers) r.child.stdin.write("go\n");
    await Promise.all(racers.map((r) => r.printed("done")));

    const outcomes = racers.map(
      (r) => new Map(r.lines.map((l) => l.split(" ")).map(([kind, i]) => [i, kind])),
    );
    for (let i = 0; i < TOKENS; i++) {
      const pair = outcomes.map((o) => o.get(String(i))).sort();
      // Never two successors: the second presentation finds the token spent and revokes the family.
      expect(pair, `token ${i}`).toEqual(["reused", "rotated"]);
    }
    // Every family was revoked by its reuse: no token (live, spent or successor) is left.
    for (let i = 0; i < TOKENS; i += 97) {
      expect(await setup.findResumeToken(otpHash(1_000_000 + i), t.time)).toBeUndefined();
      expect(await setup.findResumeToken(otpHash(2_000_000 + i), t.time)).toBeUndefined();
    }
    expect(await setup.rotateResumeToken(otpHash(0), otpHash(3_000_000), t.time)).toBeUndefined();
  });
});
