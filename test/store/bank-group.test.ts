/**
 * The bank store's group commit: the writes of one event-loop turn run in one transaction, in
 * call order, each as its own savepoint; a request that throws (even from a malformed row or a
 * failing statement) fails alone; a lost transaction fails the whole group with STORAGE; nothing
 * resolves before its commit.
 */
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { SqliteBrokerStore, TransferInput } from "../../src/store/index.js";
import { MAX_GROUP_REQUESTS } from "../../src/store/sqlite/bank-group.js";
import { actor, balance, bankOf, dumpBank, type Ledger, seedLedger, T0, tid } from "./bank-fixtures.js";
import { TempStores, withRaw } from "./fixtures.js";

let t: TempStores;
let store: SqliteBrokerStore;
let l: Ledger;
beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  l = await seedLedger(store, 100_000n);
});
afterEach(() => t.cleanup());

const rejects = (code: string, message?: RegExp) =>
  expect.objectContaining(message ? { code, message: expect.stringMatching(message) } : { code });

const pay = (n: number, fields: Partial<TransferInput> = {}) =>
  l.bank.transfer(l.pay({ id: tid(n), amount: 1n, ...fields }), l.alicePolicy, l.asAlice, T0);

/** Whether a connection of its own sees the transfer `id` committed. */
function committed(id: Uint8Array): boolean {
  const db = new Database(t.file, { readonly: true });
  try {
    return db.prepare("SELECT 1 FROM bank_transfers WHERE id = ?").get(id) !== undefined;
  } finally {
    db.close();
  }
}

describe("group commit", () => {
  it("runs the transfers of one turn in one transaction, and awaited ones in one each", async () => {
    const before = l.bank.groupStats;
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => pay(i)));
    expect(results.every((r) => r.kind === "applied")).toBe(true);
    const after = l.bank.groupStats;
    expect(after.transactions - before.transactions).toBe(1);
    expect(after.requests - before.requests).toBe(100);
    expect(after.largest).toBe(100);
    for (let i = 100; i < 110; i++) await pay(i);
    expect(l.bank.groupStats.transactions - after.transactions).toBe(10);
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(110n);
  });

  it(`takes at most ${MAX_GROUP_REQUESTS} requests per transaction and runs the rest right after`, async () => {
    const before = l.bank.groupStats.transactions;
    const results = await Promise.all(Array.from({ length: MAX_GROUP_REQUESTS + 10 }, (_, i) => pay(i)));
    expect(results.filter((r) => r.kind === "applied")).toHaveLength(MAX_GROUP_REQUESTS + 10);
    expect(l.bank.groupStats.transactions - before).toBe(2);
  });

  it("applies a turn's requests in call order, each seeing the ones before", async () => {
    const bob = actor(l.bob);
    const back = { id: tid(2), from: l.b.number, to: l.a.number, amount: 500n, currency: "EUR", memo: "" };
    const [first, second, third] = await Promise.all([
      // bob has nothing until the first one lands in the same transaction.
      l.bank.transfer(back, { payer: { ownerId: l.bob.id } }, bob, T0),
      pay(1, { amount: 500n }),
      l.bank.transfer({ ...back, id: tid(3) }, { payer: { ownerId: l.bob.id } }, bob, T0),
    ]);
    expect(first).toEqual({ kind: "insufficientFunds", available: 0n });
    expect(second?.kind).toBe("applied");
    expect(third?.kind).toBe("applied");
    const seqs = [second, third].map((r) => (r?.kind === "applied" ? r.receipt.journalSeq : 0));
    expect(seqs[1]).toBe((seqs[0] as number) + 1);
  });

  it("resolves a request only once its transaction is committed and visible to other connections", async () => {
    const seen: boolean[] = [];
    await Promise.all(
      [1, 2, 3].map((n) =>
        pay(n).then(() => {
          seen.push(committed(tid(1)), committed(tid(2)), committed(tid(3)));
        }),
      ),
    );
    expect(seen).toEqual(Array(9).fill(true));
  });

  it("fails only the request whose statement throws (a trigger refusing one account's update); its neighbours commit", async () => {
    const victim = await l.bank.openAccount(
      { currency: "EUR", name: "victim", kind: "private", ownerId: l.carol.id, noOverdraft: true },
      l.bankerActor,
    );
    withRaw(t.file, (db) =>
      db.exec(`CREATE TRIGGER boom BEFORE UPDATE ON bank_accounts WHEN NEW.number = ${victim.number}
               BEGIN SELECT RAISE(ABORT, 'boom'); END`),
    );
    const before = l.bank.groupStats.transactions;
    const outcomes = await Promise.allSettled([pay(1), pay(2, { to: victim.number }), pay(3)]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(
      rejects(ErrorCode.STORAGE, /^transfer failed/),
    );
    expect(l.bank.groupStats.transactions - before).toBe(1);
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(2n);
    expect(await l.bank.receiptOf(tid(2))).toBeUndefined();
    expect(await l.bank.verifyJournal()).toEqual({ rows: 4, firstBad: undefined });
  });

  it("fails only the request that meets a malformed row; its neighbours commit", async () => {
    const victim = await l.bank.openAccount(
      { currency: "EUR", name: "victim", kind: "private", ownerId: l.carol.id, noOverdraft: true },
      l.bankerActor,
    );
    withRaw(t.file, (db) => {
      db.pragma("ignore_check_constraints = ON");
      db.exec(`UPDATE bank_accounts SET kind = 'weird' WHERE number = ${victim.number}`);
    });
    const outcomes = await Promise.allSettled([pay(1), pay(2, { to: victim.number }), pay(3)]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(
      rejects(ErrorCode.STORAGE, new RegExp(`bank account ${victim.number} is malformed`)),
    );
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(2n);
  });

  it("fails every request of the group with STORAGE when SQLite rolls the whole transaction back, and recovers", async () => {
    const victim = await l.bank.openAccount(
      { currency: "EUR", name: "victim", kind: "private", ownerId: l.carol.id, noOverdraft: true },
      l.bankerActor,
    );
    withRaw(t.file, (db) =>
      db.exec(`CREATE TRIGGER lost BEFORE UPDATE ON bank_accounts WHEN NEW.number = ${victim.number}
               BEGIN SELECT RAISE(ROLLBACK, 'lost'); END`),
    );
    const before = dumpBank(t.file);
    const outcomes = await Promise.allSettled([pay(1), pay(2, { to: victim.number }), pay(3)]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected"]);
    for (const o of outcomes) {
      expect((o as PromiseRejectedResult).reason).toEqual(
        rejects(ErrorCode.STORAGE, /transaction of 3 request\(s\) did not commit, nothing of it was changed/),
      );
    }
    expect(dumpBank(t.file)).toEqual(before);
    withRaw(t.file, (db) => db.exec("DROP TRIGGER lost"));
    expect((await pay(1)).kind).toBe("applied");
    expect(await l.bank.verifyJournal()).toEqual({ rows: 3, firstBad: undefined });
  });

  it("keeps a batch's rollback inside its own savepoint: the neighbours of a failed batch commit", async () => {
    const [single, batch, after] = await Promise.all([
      pay(1),
      l.bank.transferBatch(
        [l.pay({ id: tid(10) }), l.pay({ id: tid(11), to: 999 })],
        l.alicePolicy,
        l.asAlice,
        T0,
      ),
      pay(2),
    ]);
    expect(single?.kind).toBe("applied");
    expect(batch).toEqual([{ kind: "linkedEventFailed" }, { kind: "accountNotFound", number: 999 }]);
    expect(after?.kind).toBe("applied");
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(2n);
  });

  it("commits requests still queued when the store closes, and refuses any after", async () => {
    const pending = pay(1);
    store.close();
    expect((await pending).kind).toBe("applied");
    await expect(pay(2)).rejects.toEqual(rejects(ErrorCode.STORAGE));
  });

  it("runs a group without savepoints, and again with them when one request fails: each neighbour applied once", async () => {
    const before = l.bank.groupStats;
    await Promise.all([pay(1), pay(2), pay(3)]);
    expect(l.bank.groupStats.retried).toBe(before.retried);
    // The middle request fails (unknown payee account as a thrown policy error: a foreign payer).
    const outcomes = await Promise.allSettled([
      pay(4),
      l.bank.transfer(l.pay({ id: tid(5) }), { payer: { ownerId: l.bob.id } }, actor(l.bob), T0),
      pay(6),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(rejects(ErrorCode.PERMISSION_DENIED));
    expect(l.bank.groupStats.retried).toBe(before.retried + 1);
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(5n);
    const journal = await l.bank.journal(0, 100);
    expect(journal.filter((j) => j.amount === 1n)).toHaveLength(5);
    expect(await l.bank.verifyJournal()).toEqual({ rows: journal.length, firstBad: undefined });
    // A lone request that fails runs once, with its savepoint.
    await expect(
      l.bank.transfer(l.pay({ id: tid(7) }), { payer: { ownerId: l.bob.id } }, actor(l.bob), T0),
    ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED));
    expect(l.bank.groupStats.retried).toBe(before.retried + 1);
  });

  it("sees what another connection committed between groups: balances and the journal head stay right", async () => {
    const other = t.open();
    const bank2 = bankOf(other);
    // Alternate writers on the same accounts; each store caches accounts and the journal head.
    for (let i = 0; i < 6; i++) {
      const bank = i % 2 === 0 ? l.bank : bank2;
      const r = await Promise.all([
        bank.transfer(l.pay({ id: tid(100 + 2 * i), amount: 10n }), l.alicePolicy, l.asAlice, T0),
        bank.transfer(l.pay({ id: tid(101 + 2 * i), amount: 10n }), l.alicePolicy, l.asAlice, T0),
      ]);
      expect(r.map((x) => x.kind)).toEqual(["applied", "applied"]);
    }
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(120n);
    expect(balance(await bank2.getAccount(l.a.number))).toBe(100_000n - 120n);
    // No-overdraft is judged on the balance the other store left, not a remembered one.
    const drain = await bank2.transfer(
      l.pay({ id: tid(200), amount: 100_000n - 120n }),
      l.alicePolicy,
      l.asAlice,
      T0,
    );
    expect(drain.kind).toBe("applied");
    expect(await pay(201)).toEqual({ kind: "insufficientFunds", available: 0n });
    const journal = await l.bank.journal(0, 100);
    expect(journal.map((j) => j.seq)).toEqual(journal.map((_, i) => i + 1));
    expect(await l.bank.verifyJournal()).toEqual({ rows: journal.length, firstBad: undefined });
  });

  it("forgets what a rolled-back request wrote: a failed batch's applied legs do not linger for later groups", async () => {
    await l.bank.transferBatch(
      [l.pay({ id: tid(10), amount: 7n }), l.pay({ id: tid(11), to: 999 })],
      l.alicePolicy,
      l.asAlice,
      T0,
    );
    // Later groups (and lone requests) see b without the undone leg.
    expect(await pay(12)).toMatchObject({ kind: "applied" });
    const [x, y] = await Promise.all([pay(13), pay(14)]);
    expect([x?.kind, y?.kind]).toEqual(["applied", "applied"]);
    expect(balance(await l.bank.getAccount(l.b.number))).toBe(3n);
    expect(balance(await l.bank.getAccount(l.a.number))).toBe(100_000n - 3n);
    expect(await l.bank.receiptOf(tid(10))).toBeUndefined();
  });
});
