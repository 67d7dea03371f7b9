/**
 * Two-phase transfers in the bank store: a hold reserves (pending totals), a post moves all or part
 * of it to posted and releases the rest, a void or the expiry releases it all; each closing event
 * has its own id, transfer row and journal row, and a hold closes once.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { SqliteBrokerStore, TransferResult } from "../../src/store/index.js";
import { actor, balance, dumpBank, type Ledger, seedLedger, T0, tid } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const TIMEOUT = 60_000;

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

async function unchanged(fn: () => Promise<unknown>): Promise<void> {
  const before = dumpBank(t.file);
  await fn();
  expect(dumpBank(t.file)).toEqual(before);
}

const HOLD = tid(500);
const open = (amount = 100n, id = HOLD) =>
  l.bank.openHold(l.pay({ id, amount }), TIMEOUT, l.alicePolicy, l.asAlice, T0);
const post = (id: Uint8Array, amount = 0n, now = T0 + 1, holdId = HOLD) =>
  l.bank.postHold(holdId, id, amount, l.asAlice, now);
const voidIt = (id: Uint8Array, now = T0 + 1, holdId = HOLD) => l.bank.voidHold(holdId, id, l.asAlice, now);

function receiptOf(r: TransferResult) {
  if (r.kind !== "applied" && r.kind !== "exists") throw new Error(`not applied: ${r.kind}`);
  return r.receipt;
}

describe("opening a hold", () => {
  it("reserves the amount as pending debit and credit, posting nothing, and records it open until its expiry", async () => {
    const r = await open(300n);
    expect(receiptOf(r)).toMatchObject({
      kind: "holdOpened",
      amount: 300n,
      from: l.a.number,
      to: l.b.number,
    });
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({
      creditsPosted: 1000n,
      debitsPosted: 0n,
      debitsPending: 300n,
    });
    expect(await l.bank.getAccount(l.b.number)).toMatchObject({ creditsPosted: 0n, creditsPending: 300n });
    expect(await l.bank.getHold(HOLD)).toEqual({
      receipt: receiptOf(r),
      state: "open",
      expiresAt: T0 + TIMEOUT,
    });
    expect(await l.bank.totals()).toContainEqual({ currency: "EUR", sum: 0n, pendingSum: 0n, accounts: 3 });
    // A statement shows no entry for it.
    const s = await l.bank.statement(l.a.number, T0, T0 + 10, 10, T0 + 10);
    expect(s.entries.map((e) => e.kind)).toEqual(["single"]);
  });

  it("refuses a hold above what the account can pay and a bad timeout, changing nothing", async () => {
    await unchanged(async () => {
      expect(await open(1001n)).toEqual({ kind: "insufficientFunds", available: 1000n });
      await expect(l.bank.openHold(l.pay(), 0, l.alicePolicy, l.asAlice, T0)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /timeout/),
      );
      await expect(l.bank.openHold(l.pay(), 1.5, l.alicePolicy, l.asAlice, T0)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /timeout/),
      );
    });
  });

  it("answers a resent hold `exists` with its receipt", async () => {
    const first = await open(300n);
    await unchanged(async () => {
      expect(await open(300n)).toEqual({ kind: "exists", receipt: receiptOf(first) });
      expect(await open(301n)).toEqual({ kind: "existsWithDifferent", field: "amount" });
      expect(await l.bank.transfer(l.pay({ id: HOLD, amount: 300n }), l.alicePolicy, l.asAlice, T0)).toEqual({
        kind: "existsWithDifferent",
        field: "kind",
      });
    });
  });
});

describe("posting and voiding", () => {
  it("posts all of it with amount 0, under its own id, and closes the hold", async () => {
    await open(300n);
    const r = await post(tid(501));
    expect(r).toEqual({
      kind: "applied",
      receipt: {
        id: tid(501),
        from: l.a.number,
        to: l.b.number,
        amount: 300n,
        currency: "EUR",
        at: T0 + 1,
        journalSeq: 4,
        kind: "holdPosted",
      },
    });
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({ debitsPosted: 300n, debitsPending: 0n });
    expect(await l.bank.getAccount(l.b.number)).toMatchObject({ creditsPosted: 300n, creditsPending: 0n });
    expect((await l.bank.getHold(HOLD))?.state).toBe("posted");
    expect((await l.bank.journal(3, 10)).map((j) => [j.kind, j.amount])).toEqual([
      ["holdOpened", 300n],
      ["holdPosted", 300n],
    ]);
  });

  it("posts part of it and releases the rest", async () => {
    await open(300n);
    expect(receiptOf(await post(tid(501), 120n)).amount).toBe(120n);
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({ debitsPosted: 120n, debitsPending: 0n });
    expect(balance(await l.bank.getAccount(l.a.number))).toBe(880n);
    expect(await l.bank.getAccount(l.b.number)).toMatchObject({ creditsPosted: 120n, creditsPending: 0n });
    const s = await l.bank.statement(l.b.number, T0, T0 + 10, 10, T0 + 10);
    expect(s.entries.map((e) => [e.kind, e.amount, e.balance])).toEqual([["holdPosted", 120n, 120n]]);
  });

  it("refuses to post more than was held (BAD_ARGUMENT), changing nothing", async () => {
    await open(300n);
    await unchanged(async () => {
      await expect(post(tid(501), 301n)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /more than the hold's 300/),
      );
    });
    expect(receiptOf(await post(tid(501), 300n)).amount).toBe(300n);
  });

  it("voids it, releasing everything", async () => {
    await open(300n);
    expect(receiptOf(await voidIt(tid(502)))).toMatchObject({ kind: "holdVoided", amount: 300n });
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({ debitsPosted: 0n, debitsPending: 0n });
    expect(await l.bank.getAccount(l.b.number)).toMatchObject({ creditsPosted: 0n, creditsPending: 0n });
    expect((await l.bank.getHold(HOLD))?.state).toBe("voided");
  });

  it("answers holdNotOpen with the state for a second post or void, under a new id, changing nothing", async () => {
    await open(300n);
    await post(tid(501));
    await open(10n, tid(600));
    await voidIt(tid(601), T0 + 1, tid(600));
    await unchanged(async () => {
      expect(await post(tid(502))).toEqual({ kind: "holdNotOpen", state: "posted" });
      expect(await voidIt(tid(503))).toEqual({ kind: "holdNotOpen", state: "posted" });
      expect(await post(tid(504), 0n, T0 + 1, tid(600))).toEqual({ kind: "holdNotOpen", state: "voided" });
    });
  });

  it("answers a resent post `exists`, the same id with another amount or another hold existsWithDifferent", async () => {
    await open(300n);
    const first = await post(tid(501));
    await open(300n, tid(600));
    await unchanged(async () => {
      expect(await post(tid(501))).toEqual({ kind: "exists", receipt: receiptOf(first) });
      // 300 is what 0 meant.
      expect(await post(tid(501), 300n)).toEqual({ kind: "exists", receipt: receiptOf(first) });
      expect(await post(tid(501), 5n)).toEqual({ kind: "existsWithDifferent", field: "amount" });
      expect(await voidIt(tid(501))).toEqual({ kind: "existsWithDifferent", field: "kind" });
      expect(await post(tid(501), 0n, T0 + 1, tid(600))).toEqual({
        kind: "existsWithDifferent",
        field: "kind",
      });
    });
  });

  it("refuses an unknown hold, or a transfer that is not a hold, with NOT_FOUND", async () => {
    await l.bank.transfer(l.pay({ id: tid(1) }), l.alicePolicy, l.asAlice, T0);
    await unchanged(async () => {
      await expect(post(tid(501), 0n, T0, tid(777))).rejects.toEqual(rejects(ErrorCode.NOT_FOUND, /no hold/));
      await expect(voidIt(tid(501), T0, tid(1))).rejects.toEqual(rejects(ErrorCode.NOT_FOUND, /no hold/));
    });
  });

  it("refuses a post or void by a stale login with REVOKED", async () => {
    await open(300n);
    await store.bumpEpoch(l.alice.id);
    await unchanged(async () => {
      await expect(post(tid(501))).rejects.toEqual(rejects(ErrorCode.REVOKED));
      await expect(voidIt(tid(501))).rejects.toEqual(rejects(ErrorCode.REVOKED));
    });
  });
});

describe("expiry", () => {
  it("answers holdNotOpen expired for a post or void at or after the expiry, before the sweep, changing nothing", async () => {
    await open(300n);
    await unchanged(async () => {
      expect(await post(tid(501), 0n, T0 + TIMEOUT)).toEqual({ kind: "holdNotOpen", state: "expired" });
      expect(await voidIt(tid(501), T0 + TIMEOUT + 1)).toEqual({ kind: "holdNotOpen", state: "expired" });
    });
    expect(receiptOf(await post(tid(501), 0n, T0 + TIMEOUT - 1)).kind).toBe("holdPosted");
  });

  it("expireHolds voids exactly the holds expired at `now`, each under a fresh id, journaled as the opener's", async () => {
    await open(100n, tid(1));
    await l.bank.openHold(l.pay({ id: tid(2), amount: 200n }), TIMEOUT + 1, l.alicePolicy, l.asAlice, T0);
    expect(await l.bank.expireHolds(T0 + TIMEOUT - 1)).toEqual([]);
    const receipts = await l.bank.expireHolds(T0 + TIMEOUT);
    expect(receipts).toHaveLength(1);
    expect(receipts[0]).toMatchObject({
      kind: "holdExpired",
      amount: 100n,
      from: l.a.number,
      to: l.b.number,
    });
    expect(receipts[0]?.id).not.toEqual(tid(1));
    expect((await l.bank.getHold(tid(1)))?.state).toBe("expired");
    expect((await l.bank.getHold(tid(2)))?.state).toBe("open");
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({ debitsPending: 200n, debitsPosted: 0n });
    const [row] = await l.bank.journal(receipts[0]?.journalSeq as number, 1);
    expect(row).toMatchObject({
      kind: "holdExpired",
      identityId: l.alice.id,
      perspective: "customer",
      facet: "expiry",
      transferId: receipts[0]?.id,
    });
    expect(await l.bank.receiptOf(receipts[0]?.id as Uint8Array)).toEqual(receipts[0]);
    // The other one later; then nothing is left open.
    expect(await l.bank.expireHolds(T0 + TIMEOUT + 1)).toHaveLength(1);
    expect(await l.bank.expireHolds(T0 + 10 * TIMEOUT)).toEqual([]);
    expect(await post(tid(501), 0n, T0 + 1, tid(1))).toEqual({ kind: "holdNotOpen", state: "expired" });
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({ debitsPending: 0n, creditsPosted: 1000n });
    expect(await l.bank.verifyJournal()).toEqual({ rows: 6, firstBad: undefined });
  });

  it("expires a hold whose opener has since lost their login", async () => {
    await open(100n);
    await store.bumpEpoch(l.alice.id);
    expect(await l.bank.expireHolds(T0 + TIMEOUT)).toHaveLength(1);
    expect(actor(l.alice).epoch).toBe(0);
  });
});
