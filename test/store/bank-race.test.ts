/**
 * Exactly once across processes: two child processes (bank-racer.ts) send the same transfer ids on
 * the same store file, each resending every one at once; each id applies exactly once.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { balance, seedLedger, tid } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const root = path.resolve(import.meta.dirname, "../..");
const racerScript = path.join(import.meta.dirname, "bank-racer.ts");
/** Enough that the two runs overlap however the scheduler starts them (not asserted: it cannot be). */
const IDS = 600;

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

interface Racer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly printed: (line: string) => Promise<void>;
  readonly lines: string[];
}

function startRacer(args: readonly string[]): Racer {
  const child = spawn(process.execPath, ["--import", "tsx", racerScript, ...args], { cwd: root });
  const lines: string[] = [];
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    const split = buffered.split("\n");
    buffered = split.pop() ?? "";
    for (const line of split) {
      lines.push(line);
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
  return { child, printed, lines };
}

describe("transfers across processes", () => {
  it("two processes sending and resending the same ids apply each exactly once, and the sums stay zero", async () => {
    const setup = t.open();
    const l = await seedLedger(setup, BigInt(IDS));
    const args = ["race", t.file, String(IDS), String(l.alice.id), String(l.a.number), String(l.b.number)];
    const racers = [startRacer(args), startRacer(args)];
    await Promise.all(racers.map((r) => r.printed("ready")));
    for (const r of racers) r.child.stdin.write("go\n");
    await Promise.all(racers.map((r) => r.printed("done")));

    const answers = racers.map(
      (r) => new Map(r.lines.map((line) => line.split(" ")).map(([kind, i]) => [i, kind])),
    );
    for (const r of racers) expect(r.lines.filter((line) => line.startsWith("bad"))).toEqual([]);
    for (let i = 0; i < IDS; i++) {
      const pair = answers.map((a) => a.get(String(i))).sort();
      expect(pair, `id ${i}`).toEqual(["applied", "exists"]);
    }
    expect(balance(await l.bank.getAccount(l.a.number))).toBe(0n);
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(BigInt(IDS));
    expect((await l.bank.totals()).map((x) => [x.sum, x.pendingSum])).toEqual([
      [0n, 0n],
      [0n, 0n],
    ]);
    expect(await l.bank.verifyJournal()).toEqual({ rows: IDS + 2, firstBad: undefined });
    const ids = new Set(
      (await l.bank.journal(0, 100_000)).map((j) => Buffer.from(j.transferId).toString("hex")),
    );
    expect(ids.size).toBe(IDS + 2);
    for (let i = 0; i < IDS; i += 37) expect(ids.has(Buffer.from(tid(i)).toString("hex"))).toBe(true);
  });
});
