import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { otpHash, TempStores } from "./fixtures.js";

const root = path.resolve(import.meta.dirname, "../..");
const racerScript = path.join(import.meta.dirname, "otp-racer.ts");
/** Enough that the two runs overlap however the scheduler starts them (not asserted: it cannot be). */
const OTPS = 1000;

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

interface Racer {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves when the racer printed `line`. */
  readonly printed: (line: string) => Promise<void>;
  readonly won: number[];
}

function startRacer(file: string): Racer {
  const child = spawn(process.execPath, ["--import", "tsx", racerScript, file, String(OTPS)], { cwd: root });
  const won: number[] = [];
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
  return { child, printed, won };
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
    const racers = [startRacer(t.file), startRacer(t.file)];
    await Promise.all(racers.map((r) => r.printed("ready")));
    for (const r of racers) r.child.stdin.write("go\n");
    await Promise.all(racers.map((r) => r.printed("done")));

    const all = racers.flatMap((r) => r.won).sort((a, b) => a - b);
    expect(all).toEqual([...Array(OTPS).keys()]);
    expect(await setup.consumeOtp(racer.id, otpHash(0), 0)).toBe(false);
  });
});
