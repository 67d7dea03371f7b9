/**
 * The bank store's ledger rules at their boundaries: arguments, double entry, currencies,
 * overdraft, overflow, payer and payee rules, actor epochs, exactly-once ids and batches. Every
 * refusal is checked to change nothing (an exact dump of the bank tables).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { SqliteBrokerStore, TransferInput } from "../../src/store/index.js";
import { MAX_BATCH_LEGS, MAX_MEMO_CHARS } from "../../src/store/sqlite/bank.js";
import { actor, balance, dumpBank, type Ledger, seedLedger, T0, tid } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const MAX = 2n ** 63n - 1n;

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

/** Runs `fn` and checks that the bank tables are exactly as before. */
async function unchanged(fn: () => Promise<unknown>): Promise<void> {
  const before = dumpBank(t.file);
  await fn();
  expect(dumpBank(t.file)).toEqual(before);
}

const pay = (fields: Partial<TransferInput> = {}) =>
  l.bank.transfer(l.pay(fields), l.alicePolicy, l.asAlice, T0 + 1);

async function balances(): Promise<bigint[]> {
  const all = await Promise.all(
    [l.a, l.b, l.c, l.cashEur, l.cashUsd].map((x) => l.bank.getAccount(x.number)),
  );
  return all.map(balance);
}

describe("transfer arguments", () => {
  const hostile: [string, Partial<TransferInput> | Record<string, unknown>, RegExp][] = [
    ["a zero amount", { amount: 0n }, /amount must be a whole number of minor units > 0 and < 2\^63, not 0/],
    ["a negative amount", { amount: -5n }, /not -5/],
    ["an amount of 2^63", { amount: 2n ** 63n }, /not 9223372036854775808/],
    ["an amount as a JS number", { amount: 100 }, /not 100/],
    ["an id of 15 bytes", { id: new Uint8Array(15) }, /id must be 16 bytes, not 15 bytes/],
    ["an id of 17 bytes", { id: new Uint8Array(17) }, /id must be 16 bytes, not 17 bytes/],
    ["an id that is not bytes", { id: "0123456789abcdef" }, /id must be 16 bytes, not string/],
    ["a memo of 141 characters", { memo: "x".repeat(MAX_MEMO_CHARS + 1) }, /at most 140 characters, not 141/],
    ["a memo with a lone surrogate", { memo: "a\ud800b" }, /memo must be well-formed text/],
    ["a lower-case currency", { currency: "eur" }, /3 upper-case letters/],
    ["a four-letter currency", { currency: "EURO" }, /3 upper-case letters/],
    ["account number 0", { to: 0 }, /credit account \(to\) must be a whole number >= 1, not 0/],
    ["a fractional account number", { from: 1.5 }, /debit account \(from\) must be a whole number >= 1/],
  ];
  for (const [what, fields, message] of hostile) {
    it(`refuses ${what} with BAD_ARGUMENT and changes nothing`, async () => {
      await unchanged(async () => {
        await expect(pay(fields as Partial<TransferInput>)).rejects.toEqual(
          rejects(ErrorCode.BAD_ARGUMENT, message),
        );
      });
    });
  }

  it("accepts the boundaries: an amount of 1, a memo of exactly 140 characters (astral ones count once)", async () => {
    expect((await pay({ amount: 1n, memo: "€".repeat(MAX_MEMO_CHARS) })).kind).toBe("applied");
    expect((await pay({ id: tid(2), amount: 1n, memo: "😀".repeat(MAX_MEMO_CHARS) })).kind).toBe("applied");
  });

  it("refuses a malformed policy, a bad clock and a malformed actor with BAD_ARGUMENT", async () => {
    await unchanged(async () => {
      await expect(l.bank.transfer(l.pay(), { payer: {} } as never, l.asAlice, T0)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /one payer/),
      );
      await expect(
        l.bank.transfer(l.pay(), { payer: { ownerId: 1, cash: true } } as never, l.asAlice, T0),
      ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /one payer/));
      await expect(l.bank.transfer(l.pay(), l.alicePolicy, l.asAlice, 1.5)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /now must be a whole number/),
      );
      await expect(
        l.bank.transfer(l.pay(), l.alicePolicy, { ...l.asAlice, facet: "f".repeat(65) }, T0),
      ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /facet/));
    });
  });
});

describe("double entry", () => {
  it("debits one account and credits the other by the amount, with a receipt and one journal row", async () => {
    const before = await balances();
    const r = await pay({ amount: 250n });
    expect(r).toEqual({
      kind: "applied",
      receipt: {
        id: tid(1),
        from: l.a.number,
        to: l.b.number,
        amount: 250n,
        currency: "EUR",
        at: T0 + 1,
        journalSeq: 3,
        kind: "single",
      },
    });
    const after = await balances();
    expect(after[0]).toBe((before[0] as bigint) - 250n);
    expect(after[1]).toBe((before[1] as bigint) + 250n);
    expect(after.slice(2)).toEqual(before.slice(2));
    const [row] = await l.bank.journal(3, 10);
    expect(row).toMatchObject({
      seq: 3,
      transferId: tid(1),
      kind: "single",
      from: l.a.number,
      to: l.b.number,
      amount: 250n,
      currency: "EUR",
      at: T0 + 1,
      identityId: l.alice.id,
      perspective: "customer",
      facet: "pay",
      makerId: null,
      memo: "rent",
    });
    expect(await l.bank.receiptOf(tid(1))).toEqual(r.kind === "applied" ? r.receipt : undefined);
    expect(await l.bank.totals()).toEqual([
      { currency: "EUR", sum: 0n, pendingSum: 0n, accounts: 3 },
      { currency: "USD", sum: 0n, pendingSum: 0n, accounts: 2 },
    ]);
  });

  it("answers accountNotFound for an unknown debit or credit account, and sameAccount, changing nothing", async () => {
    await unchanged(async () => {
      expect(await pay({ from: 999 })).toEqual({ kind: "accountNotFound", number: 999 });
      expect(await pay({ to: 999 })).toEqual({ kind: "accountNotFound", number: 999 });
      expect(await pay({ to: l.a.number })).toEqual({ kind: "sameAccount" });
    });
  });

  it("refuses a currency other than the debit account's, then other than the credit account's", async () => {
    await unchanged(async () => {
      // The request says USD, the debit account is EUR.
      expect(await pay({ currency: "USD" })).toEqual({ kind: "currencyMismatch", currency: "EUR" });
      // Both say EUR but the credit account is carol's USD one.
      expect(await pay({ to: l.c.number })).toEqual({ kind: "currencyMismatch", currency: "USD" });
    });
  });

  it("refuses an overdraft by one minor unit (posted + pending debits against credits posted) and allows the exact balance", async () => {
    await unchanged(async () => {
      expect(await pay({ amount: 1001n })).toEqual({ kind: "insufficientFunds", available: 1000n });
    });
    const hold = await l.bank.openHold(
      l.pay({ id: tid(50), amount: 600n }),
      60_000,
      l.alicePolicy,
      l.asAlice,
      T0,
    );
    expect(hold.kind).toBe("applied");
    await unchanged(async () => {
      expect(await pay({ amount: 401n })).toEqual({ kind: "insufficientFunds", available: 400n });
    });
    expect((await pay({ amount: 400n })).kind).toBe("applied");
    expect(await l.bank.getAccount(l.a.number)).toMatchObject({
      debitsPosted: 400n,
      creditsPosted: 1000n,
      debitsPending: 600n,
    });
  });

  it("lets an account without the no-overdraft flag go negative", async () => {
    const loose = await l.bank.openAccount(
      { currency: "EUR", name: "credit line", kind: "private", ownerId: l.alice.id, noOverdraft: false },
      l.bankerActor,
    );
    const r = await pay({ from: loose.number, amount: 5000n });
    expect(r.kind).toBe("applied");
    expect(balance(await l.bank.getAccount(loose.number))).toBe(-5000n);
  });

  it("answers overflow when a total would pass 2^63 - 1, on the credit side and the debit side, and allows exactly 2^63 - 1", async () => {
    // The EUR cash account has paid alice 1000: its debits reach 2^63 - 1 exactly.
    await l.deposit(l.b, MAX - 1000n, 1);
    expect(await l.bank.getAccount(l.cashEur.number)).toMatchObject({ debitsPosted: MAX });
    expect(await l.bank.getAccount(l.b.number)).toMatchObject({ creditsPosted: MAX - 1000n });
    expect((await pay({ amount: 999n })).kind).toBe("applied");
    await unchanged(async () => {
      // bob's credits would be 2^63: overflow comes before alice's funds (she has 1 left).
      expect(await pay({ id: tid(2), amount: 2n })).toEqual({ kind: "overflow" });
      // the cash account's debits would be 2^63.
      await expect(l.deposit(l.a, 1n, 2)).rejects.toThrow(/overflow/);
    });
    expect((await pay({ id: tid(3), amount: 1n })).kind).toBe("applied");
    expect(await l.bank.getAccount(l.b.number)).toMatchObject({ creditsPosted: MAX });
    // Pending totals count too: a hold into bob's account overflows his credits.
    await l.deposit(l.c, 1n, 3);
    expect(await l.bank.totals()).toEqual([
      { currency: "EUR", sum: 0n, pendingSum: 0n, accounts: 3 },
      { currency: "USD", sum: 0n, pendingSum: 0n, accounts: 2 },
    ]);
  });

  it("counts pending credits in the overflow check", async () => {
    await l.deposit(l.b, MAX - 1000n, 1);
    const hold = await l.bank.openHold(
      l.pay({ id: tid(60), amount: 600n }),
      60_000,
      l.alicePolicy,
      l.asAlice,
      T0,
    );
    expect(hold.kind).toBe("applied");
    // bob: 2^63 - 1001 posted + 600 pending + 401 passes 2^63 - 1 (without the pending it would not).
    await unchanged(async () => {
      expect(await pay({ amount: 401n })).toEqual({ kind: "overflow" });
    });
    expect(await pay({ amount: 400n })).toMatchObject({ kind: "applied" });
  });
});

describe("who pays", () => {
  it("refuses a payer that is not the account's owner, and an owner policy for another login", async () => {
    await unchanged(async () => {
      await expect(
        l.bank.transfer(l.pay(), { payer: { ownerId: l.bob.id } }, actor(l.bob), T0),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /account \d+ is not the payer's own/));
      await expect(l.bank.transfer(l.pay(), l.alicePolicy, actor(l.bob), T0)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /pays only for its owner/),
      );
    });
  });

  it("lets cash in come only from the cash account, and cash out go only to it", async () => {
    const cashIn = { payer: { cash: true } } as const;
    const counter = { payer: { counter: true } } as const;
    await unchanged(async () => {
      await expect(l.bank.transfer(l.pay(), cashIn, l.bankerActor, T0)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /not the bank's cash account/),
      );
      await expect(l.bank.transfer(l.pay(), counter, l.bankerActor, T0)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /pays into the bank's cash account/),
      );
      await expect(
        l.bank.transfer(l.pay({ from: l.cashEur.number }), counter, l.bankerActor, T0),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /from a customer's account/));
    });
    const out = await l.bank.transfer(
      l.pay({ to: l.cashEur.number, amount: 300n }),
      counter,
      l.bankerActor,
      T0,
    );
    expect(out.kind).toBe("applied");
    expect(balance(await l.bank.getAccount(l.a.number))).toBe(700n);
  });

  it("refuses a payee outside payeeOrgId", async () => {
    const { org, account } = await l.bank.createOrganization(
      { name: "Acme", currency: "EUR", adminId: l.bob.id },
      l.bankerActor,
    );
    const policy = { payer: { ownerId: l.alice.id }, payeeOrgId: org.id };
    await unchanged(async () => {
      await expect(l.bank.transfer(l.pay(), policy, l.asAlice, T0)).rejects.toEqual(
        rejects(
          ErrorCode.PERMISSION_DENIED,
          new RegExp(`account ${l.b.number} is not an account of organization`),
        ),
      );
    });
    expect((await l.bank.transfer(l.pay({ to: account.number }), policy, l.asAlice, T0)).kind).toBe(
      "applied",
    );
  });

  it("refuses a stale login epoch and a suspended identity with REVOKED, changing nothing", async () => {
    await store.bumpEpoch(l.alice.id);
    await unchanged(async () => {
      await expect(pay()).rejects.toEqual(rejects(ErrorCode.REVOKED));
    });
    const fresh = { ...l.asAlice, epoch: 1 };
    await store.setSuspended(l.alice.id, true);
    await unchanged(async () => {
      await expect(l.bank.transfer(l.pay(), l.alicePolicy, fresh, T0)).rejects.toEqual(
        rejects(ErrorCode.REVOKED),
      );
    });
    const epoch = (await store.findIdentityById(l.alice.id))?.epoch as number;
    await store.setSuspended(l.alice.id, false);
    const now = (await store.findIdentityById(l.alice.id))?.epoch as number;
    expect((await l.bank.transfer(l.pay(), l.alicePolicy, { ...l.asAlice, epoch: now }, T0)).kind).toBe(
      "applied",
    );
    expect(now).toBeGreaterThanOrEqual(epoch);
  });
});

describe("exactly once", () => {
  it("answers a resend with the same fields `exists` and the original receipt, changing nothing", async () => {
    const first = await pay();
    expect(first.kind).toBe("applied");
    t.time += 5000;
    await unchanged(async () => {
      const again = await l.bank.transfer(l.pay(), l.alicePolicy, l.asAlice, T0 + 99_999);
      expect(again).toEqual({
        kind: "exists",
        receipt: first.kind === "applied" ? first.receipt : undefined,
      });
    });
  });

  it("names the field a resend changed, in the order to, amount, currency, memo, from, kind", async () => {
    const second = await l.bank.openAccount(
      { currency: "EUR", name: "savings", kind: "private", ownerId: l.alice.id, noOverdraft: true },
      l.bankerActor,
    );
    expect((await pay()).kind).toBe("applied");
    await unchanged(async () => {
      expect(await pay({ to: l.cashEur.number })).toEqual({ kind: "existsWithDifferent", field: "to" });
      expect(await pay({ amount: 101n })).toEqual({ kind: "existsWithDifferent", field: "amount" });
      expect(await pay({ currency: "USD" })).toEqual({ kind: "existsWithDifferent", field: "currency" });
      expect(await pay({ memo: "rent!" })).toEqual({ kind: "existsWithDifferent", field: "memo" });
      expect(await pay({ from: second.number })).toEqual({ kind: "existsWithDifferent", field: "from" });
      expect(await l.bank.openHold(l.pay(), 60_000, l.alicePolicy, l.asAlice, T0)).toEqual({
        kind: "existsWithDifferent",
        field: "kind",
      });
      // Several differ: the first in that order is named.
      expect(await pay({ memo: "x", amount: 5n, from: second.number })).toEqual({
        kind: "existsWithDifferent",
        field: "amount",
      });
      // Even a resend that would now be refused answers by its id.
      expect(await pay({ to: 999 })).toEqual({ kind: "existsWithDifferent", field: "to" });
      expect(await pay({ to: l.a.number })).toEqual({ kind: "existsWithDifferent", field: "to" });
    });
  });

  it("keeps the id free after a refusal: the same id applies once it can", async () => {
    await unchanged(async () => {
      expect(await pay({ amount: 5000n })).toEqual({ kind: "insufficientFunds", available: 1000n });
      expect(await pay({ to: 999 })).toEqual({ kind: "accountNotFound", number: 999 });
      await expect(pay({ amount: 0n })).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
    });
    await l.deposit(l.a, 4000n, 1);
    expect((await pay({ amount: 5000n })).kind).toBe("applied");
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(5000n);
  });

  it("answers an id's receipt only to a payer of its debit account; others learn only that the id is taken", async () => {
    expect((await pay()).kind).toBe("applied");
    const bobs = { payer: { ownerId: l.bob.id } };
    // The same request made by bob, on alice's account: refused before the id is looked at.
    await expect(l.bank.transfer(l.pay(), bobs, actor(l.bob), T0)).rejects.toEqual(
      rejects(ErrorCode.PERMISSION_DENIED),
    );
    expect(
      await l.bank.transfer(l.pay({ from: l.b.number, to: l.a.number }), bobs, actor(l.bob), T0),
    ).toEqual({
      kind: "existsWithDifferent",
      field: "to",
    });
  });
});

describe("batches", () => {
  const legs = (...amounts: bigint[]) => amounts.map((amount, i) => l.pay({ id: tid(100 + i), amount }));

  it("applies every leg in order in one transaction, each seeing the ones before", async () => {
    const r = await l.bank.transferBatch(legs(300n, 300n, 400n), l.alicePolicy, l.asAlice, T0);
    expect(r.map((x) => x.kind)).toEqual(["applied", "applied", "applied"]);
    expect(r.map((x) => (x.kind === "applied" ? x.receipt.journalSeq : 0))).toEqual([3, 4, 5]);
    expect(balance(await l.bank.getAccount(l.a.number))).toBe(0n);
  });

  it("rolls every leg back when one fails: the failing leg says why, the others linkedEventFailed", async () => {
    await unchanged(async () => {
      // The third leg needs the money the first two already spent.
      expect(await l.bank.transferBatch(legs(300n, 300n, 401n), l.alicePolicy, l.asAlice, T0)).toEqual([
        { kind: "linkedEventFailed" },
        { kind: "linkedEventFailed" },
        { kind: "insufficientFunds", available: 400n },
      ]);
      const middle = [l.pay({ id: tid(1) }), l.pay({ id: tid(2), to: 999 }), l.pay({ id: tid(3) })];
      expect(await l.bank.transferBatch(middle, l.alicePolicy, l.asAlice, T0)).toEqual([
        { kind: "linkedEventFailed" },
        { kind: "accountNotFound", number: 999 },
        { kind: "linkedEventFailed" },
      ]);
    });
    // The ids are still free.
    expect((await pay({ id: tid(2) })).kind).toBe("applied");
  });

  it("answers a resent batch `exists` leg by leg; a leg whose id means another transfer fails the batch", async () => {
    const first = await l.bank.transferBatch(legs(100n, 200n), l.alicePolicy, l.asAlice, T0);
    await unchanged(async () => {
      const again = await l.bank.transferBatch(legs(100n, 200n), l.alicePolicy, l.asAlice, T0 + 5);
      expect(again).toEqual(first.map((r) => ({ ...r, kind: "exists" })));
      expect(await l.bank.transferBatch(legs(100n, 201n), l.alicePolicy, l.asAlice, T0)).toEqual([
        { kind: "linkedEventFailed" },
        { kind: "existsWithDifferent", field: "amount" },
      ]);
    });
  });

  it(`takes 1 to ${MAX_BATCH_LEGS} legs and refuses duplicate ids (BAD_ARGUMENT), changing nothing`, async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => l.pay({ id: tid(1000 + i), amount: 1n }));
    await unchanged(async () => {
      await expect(
        l.bank.transferBatch(many(MAX_BATCH_LEGS + 1), l.alicePolicy, l.asAlice, T0),
      ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /1 to 64 legs, not 65/));
      await expect(l.bank.transferBatch([], l.alicePolicy, l.asAlice, T0)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /not 0/),
      );
      const dup = [l.pay({ id: tid(7) }), l.pay({ id: tid(8) }), l.pay({ id: tid(7), amount: 2n })];
      await expect(l.bank.transferBatch(dup, l.alicePolicy, l.asAlice, T0)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT, /legs 0 and 2 have the same id/),
      );
      await expect(
        l.bank.transferBatch([l.pay(), l.pay({ id: tid(2), amount: 0n })], l.alicePolicy, l.asAlice, T0),
      ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /leg 1: the amount/));
    });
    const r = await l.bank.transferBatch(many(MAX_BATCH_LEGS), l.alicePolicy, l.asAlice, T0);
    expect(r.every((x) => x.kind === "applied")).toBe(true);
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(64n);
  });

  it("rejects the whole batch when one leg is not the payer's, changing nothing", async () => {
    await unchanged(async () => {
      const mixed = [l.pay({ id: tid(1) }), l.pay({ id: tid(2), from: l.b.number, to: l.a.number })];
      await expect(l.bank.transferBatch(mixed, l.alicePolicy, l.asAlice, T0)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED),
      );
    });
  });
});

describe("accounts", () => {
  it("opens private and organization accounts for what exists, refusing unknown owners and bad shapes", async () => {
    await unchanged(async () => {
      await expect(
        l.bank.openAccount({ currency: "EUR", name: "x", kind: "private", ownerId: 999, noOverdraft: true }),
      ).rejects.toEqual(rejects(ErrorCode.NOT_FOUND, /no identity with id 999/));
      await expect(
        l.bank.openAccount({ currency: "EUR", name: "x", kind: "organization", orgId: 5, noOverdraft: true }),
      ).rejects.toEqual(rejects(ErrorCode.NOT_FOUND, /no organization with id 5/));
      await expect(
        l.bank.openAccount({
          currency: "EUR",
          name: "x",
          kind: "private",
          ownerId: l.alice.id,
          orgId: 1,
          noOverdraft: true,
        }),
      ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /not both/));
      await expect(
        l.bank.openAccount({
          currency: "EUR",
          name: "",
          kind: "private",
          ownerId: l.alice.id,
          noOverdraft: true,
        }),
      ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /account name/));
    });
    expect((await l.bank.accountsOf({ ownerId: l.alice.id })).map((x) => x.number)).toEqual([l.a.number]);
    expect(await l.bank.getAccount(999)).toBeUndefined();
  });

  it("makes one cash account per currency, on first need, that may go negative", async () => {
    const gbp = await l.bank.cashAccount("GBP");
    expect(gbp).toMatchObject({
      kind: "cash",
      currency: "GBP",
      ownerId: null,
      orgId: null,
      noOverdraft: false,
    });
    const [x, y] = await Promise.all([l.bank.cashAccount("CHF"), l.bank.cashAccount("CHF")]);
    expect(x?.number).toBe(y?.number);
    expect(await l.bank.cashAccount("GBP")).toEqual(gbp);
    expect(balance(await l.bank.getAccount(l.cashEur.number))).toBe(-1000n);
  });
});
