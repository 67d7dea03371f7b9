/**
 * Statements from the bank store: opening balance before the range, entries with running
 * balances, closing = opening + entries = the balance when the range reaches now, truncation, and
 * one consistent snapshot while another process writes.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { SqliteBrokerStore, TransferInput } from "../../src/store/index.js";
import { actor, balance, type Ledger, seedLedger, T0, tid } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const root = path.resolve(import.meta.dirname, "../..");
const racer = path.join(import.meta.dirname, "bank-racer.ts");

let t: TempStores;
let store: SqliteBrokerStore;
let l: Ledger;
beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  l = await seedLedger(store);
});
afterEach(() => t.cleanup());

const rejects = (code: string, message?: RegExp) =>
  expect.objectContaining(message ? { code, message: expect.stringMatching(message) } : { code });

/** alice: +1000 at T0 (the seed), −100 at T0+10, −200 at T0+20, +50 from bob at T0+30. */
async function history(): Promise<void> {
  const pay = (fields: Partial<TransferInput>, at: number) =>
    l.bank.transfer(l.pay(fields), l.alicePolicy, l.asAlice, at);
  expect((await pay({ id: tid(1), amount: 100n, memo: "one" }, T0 + 10)).kind).toBe("applied");
  expect((await pay({ id: tid(2), amount: 200n, memo: "two" }, T0 + 20)).kind).toBe("applied");
  const back = { id: tid(3), from: l.b.number, to: l.a.number, amount: 50n, currency: "EUR", memo: "back" };
  expect((await l.bank.transfer(back, { payer: { ownerId: l.bob.id } }, actor(l.bob), T0 + 30)).kind).toBe(
    "applied",
  );
}

describe("statements", () => {
  it("gives the opening balance before `from`, each entry with its running balance, and the closing one", async () => {
    await history();
    const s = await l.bank.statement(l.a.number, T0 + 15, T0 + 25, 100, T0 + 1000);
    expect(s).toEqual({
      account: l.a.number,
      from: T0 + 15,
      to: T0 + 25,
      opening: 900n,
      entries: [
        {
          journalSeq: 4,
          transferId: tid(2),
          at: T0 + 20,
          counterparty: l.b.number,
          amount: -200n,
          balance: 700n,
          memo: "two",
          kind: "single",
        },
      ],
      closing: 700n,
      asOf: T0 + 1000,
      truncated: false,
    });
    // Both ends are inclusive.
    const edges = await l.bank.statement(l.a.number, T0 + 10, T0 + 20, 100, T0 + 1000);
    expect(edges.entries.map((e) => e.amount)).toEqual([-100n, -200n]);
  });

  it("over the whole history opens at 0 and closes at the account's balance", async () => {
    await history();
    const s = await l.bank.statement(l.a.number, 0, T0 + 1000, 100, T0 + 1000);
    expect(s.opening).toBe(0n);
    expect(s.entries.map((e) => [e.amount, e.balance, e.counterparty])).toEqual([
      [1000n, 1000n, l.cashEur.number],
      [-100n, 900n, l.b.number],
      [-200n, 700n, l.b.number],
      [50n, 750n, l.b.number],
    ]);
    expect(s.closing).toBe(balance(await l.bank.getAccount(l.a.number)));
    const bob = await l.bank.statement(l.b.number, 0, T0 + 1000, 100, T0 + 1000);
    expect(bob.entries.map((e) => e.amount)).toEqual([100n, 200n, -50n]);
    expect(bob.closing).toBe(250n);
  });

  it("opens and closes at 0 for a range before any entry", async () => {
    await history();
    const s = await l.bank.statement(l.a.number, 0, T0 - 1, 100, T0 + 1000);
    expect(s).toMatchObject({ opening: 0n, entries: [], closing: 0n, truncated: false });
    const fresh = await l.bank.openAccount(
      { currency: "EUR", name: "new", kind: "private", ownerId: l.bob.id, noOverdraft: true },
      l.bankerActor,
    );
    expect(await l.bank.statement(fresh.number, 0, T0, 1, T0)).toMatchObject({ opening: 0n, closing: 0n });
  });

  it("covers everything recorded when the range reaches now, so the closing is the balance", async () => {
    await history();
    // The entry at T0 + 30 was stamped after this `now` (another node's clock): still covered.
    const s = await l.bank.statement(l.a.number, T0 + 15, T0 + 25, 100, T0 + 25);
    expect(s.entries.map((e) => e.amount)).toEqual([-200n, 50n]);
    expect(s.closing).toBe(750n);
  });

  it("truncates at maxEntries: the first entries, closing after the last one given", async () => {
    await history();
    const s = await l.bank.statement(l.a.number, 0, T0 + 1000, 2, T0 + 1000);
    expect(s.truncated).toBe(true);
    expect(s.entries.map((e) => e.amount)).toEqual([1000n, -100n]);
    expect(s.closing).toBe(900n);
    expect((await l.bank.statement(l.a.number, 0, T0 + 1000, 4, T0 + 1000)).truncated).toBe(false);
  });

  it("refuses an unknown account (NOT_FOUND), a range ending before it starts and a bad maxEntries (BAD_ARGUMENT)", async () => {
    await expect(l.bank.statement(999, 0, 1, 1, 1)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(l.bank.statement(l.a.number, 2, 1, 1, 1)).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT, /end \(1\) before it starts \(2\)/),
    );
    await expect(l.bank.statement(l.a.number, 0, 1, 0, 1)).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
  });

  it("comes from one snapshot while another process transfers: opening 0, entries sum to the closing", async () => {
    await l.deposit(l.b, 1_000_000n, 1);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", racer, "stream", t.file, String(l.b.number), String(l.a.number)],
      {
        cwd: root,
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = once(child, "exit");
    let out = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("streaming")) resolve();
      });
      exited.then(() => reject(new Error(`racer exited: ${stderr}`)));
    });
    let statements = 0;
    let changes = 0;
    let last = -1n;
    // Until the writer has committed while we read, many times over (without the snapshot this
    // fails within a few statements: the balance and the entries are read at different commits).
    while (changes < 50 && statements < 20_000) {
      for (const account of [l.a.number, l.b.number]) {
        const s = await l.bank.statement(account, 0, Number.MAX_SAFE_INTEGER, 100_000, T0);
        statements++;
        expect(s.opening).toBe(0n);
        expect(s.entries.reduce((sum, e) => sum + e.amount, 0n)).toBe(s.closing);
        expect(s.entries.at(-1)?.balance ?? 0n).toBe(s.closing);
        if (account === l.b.number && s.closing !== last) {
          changes++;
          last = s.closing;
        }
      }
    }
    child.stdin.end();
    await exited;
    expect(changes).toBeGreaterThanOrEqual(50);
    const totals = await l.bank.totals();
    expect(totals.every((x) => x.sum === 0n && x.pendingSum === 0n)).toBe(true);
  }, 60_000);
});
