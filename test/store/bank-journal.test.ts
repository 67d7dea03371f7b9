/**
 * The bank journal's hash chain: the documented encoding (recomputed here by hand, as an offline
 * tool would), and `verifyJournal` naming exactly the row that raw SQL altered, inserted or
 * removed.
 */
import { createHash } from "node:crypto";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SqliteBrokerStore } from "../../src/store/index.js";
import { GENESIS_HASH, type JournalRow, verifyChain } from "../../src/store/sqlite/bank-journal.js";
import { actor, type Ledger, seedLedger, T0, tid } from "./bank-fixtures.js";
import { TempStores, withRaw } from "./fixtures.js";

let t: TempStores;
let store: SqliteBrokerStore;
let l: Ledger;
beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  l = await seedLedger(store);
  // Rows 3..12: ten transfers of different kinds and actors.
  for (let i = 0; i < 6; i++) {
    await l.bank.transfer(
      l.pay({ id: tid(i), amount: BigInt(10 + i), memo: `m${i}` }),
      l.alicePolicy,
      l.asAlice,
      T0 + i,
    );
  }
  await l.bank.openHold(l.pay({ id: tid(100), amount: 50n }), 1000, l.alicePolicy, l.asAlice, T0);
  await l.bank.postHold(tid(100), tid(101), 20n, l.asAlice, T0 + 1);
  await l.bank.transfer(
    { id: tid(200), from: l.b.number, to: l.a.number, amount: 5n, currency: "EUR", memo: "" },
    { payer: { ownerId: l.bob.id } },
    actor(l.bob),
    T0 + 9,
  );
  await l.bank.transfer(
    l.pay({ id: tid(300), to: l.cashEur.number, amount: 1n }),
    { payer: { counter: true } },
    l.bankerActor,
    T0,
  );
});
afterEach(() => t.cleanup());

/** The documented encoding, written out independently of the store's code. */
function byHand(prev: Uint8Array, r: JournalRow): Buffer {
  const parts: Buffer[] = [Buffer.from(prev)];
  const int = (v: bigint) => {
    const b = Buffer.alloc(12);
    b.writeUInt32BE(8);
    b.writeBigInt64BE(v, 4);
    parts.push(b);
  };
  const raw = (v: Uint8Array) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(v.length);
    parts.push(len, Buffer.from(v));
  };
  const text = (v: string) => raw(Buffer.from(v, "utf8"));
  int(r.seq);
  raw(r.transfer_id);
  text(r.kind);
  int(r.debit_account);
  int(r.credit_account);
  int(r.amount);
  text(r.currency);
  int(r.at);
  int(r.identity_id);
  text(r.perspective);
  text(r.facet);
  if (r.maker_id === null) parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  else int(r.maker_id);
  text(r.memo);
  return createHash("sha256").update(Buffer.concat(parts)).digest();
}

function rawRows(): JournalRow[] {
  const db = new Database(t.file, { readonly: true });
  try {
    db.defaultSafeIntegers(true);
    return db.prepare<[], JournalRow>("SELECT * FROM bank_journal ORDER BY seq").all();
  } finally {
    db.close();
  }
}

describe("the journal's hash chain", () => {
  it("follows the documented encoding: every row's hash recomputed by hand, the first chained to zeros", async () => {
    const rows = rawRows();
    expect(rows).toHaveLength(12);
    expect(Buffer.from(rows[0]?.prev_hash as Uint8Array)).toEqual(Buffer.from(GENESIS_HASH));
    let prev: Uint8Array = GENESIS_HASH;
    for (const r of rows) {
      expect(Buffer.from(r.prev_hash)).toEqual(Buffer.from(prev));
      expect(byHand(prev, r)).toEqual(Buffer.from(r.hash));
      prev = r.hash;
    }
    expect(await l.bank.verifyJournal()).toEqual({ rows: 12, firstBad: undefined });
    expect(verifyChain(rows)).toEqual({ rows: 12, firstBad: undefined });
    expect((await l.bank.journal(0, 100)).map((j) => j.kind)).toEqual([
      "single",
      "single",
      "single",
      "single",
      "single",
      "single",
      "single",
      "single",
      "holdOpened",
      "holdPosted",
      "single",
      "single",
    ]);
  });

  const alterations: [string, string][] = [
    ["its amount", "UPDATE bank_journal SET amount = amount + 1 WHERE seq = 7"],
    ["its memo", "UPDATE bank_journal SET memo = 'm4!' WHERE seq = 7"],
    ["its identity", "UPDATE bank_journal SET identity_id = identity_id + 1 WHERE seq = 7"],
    ["its facet", "UPDATE bank_journal SET facet = 'approve' WHERE seq = 7"],
    ["its maker", "UPDATE bank_journal SET maker_id = 1 WHERE seq = 7"],
    ["its transfer id", "UPDATE bank_journal SET transfer_id = randomblob(16) WHERE seq = 7"],
    ["its time", "UPDATE bank_journal SET at = at - 1 WHERE seq = 7"],
    ["its stored hash", "UPDATE bank_journal SET hash = zeroblob(32) WHERE seq = 7"],
    ["its link to the row before", "UPDATE bank_journal SET prev_hash = zeroblob(32) WHERE seq = 7"],
  ];
  for (const [what, sql] of alterations) {
    it(`names exactly the row whose ${what.replace(/^its /, "")} was changed with raw SQL`, async () => {
      withRaw(t.file, (db) => db.exec(sql));
      expect(await l.bank.verifyJournal()).toEqual({ rows: 12, firstBad: 7 });
    });
  }

  it("names the row after one deleted, and the first row if it is the one removed", async () => {
    withRaw(t.file, (db) => db.exec("DELETE FROM bank_journal WHERE seq = 5"));
    expect(await l.bank.verifyJournal()).toEqual({ rows: 11, firstBad: 6 });
    withRaw(t.file, (db) => db.exec("DELETE FROM bank_journal WHERE seq = 1"));
    expect(await l.bank.verifyJournal()).toEqual({ rows: 10, firstBad: 2 });
  });

  it("names a row rewritten with a recomputed hash by its successor, whose link no longer matches", async () => {
    const rows = rawRows();
    const target = rows[6] as JournalRow;
    const forged = { ...target, amount: target.amount + 1n };
    const hash = byHand(target.prev_hash, forged);
    withRaw(t.file, (db) =>
      db.prepare("UPDATE bank_journal SET amount = ?, hash = ? WHERE seq = 7").run(forged.amount, hash),
    );
    expect(await l.bank.verifyJournal()).toEqual({ rows: 12, firstBad: 8 });
  });

  it("extends a verified chain with each new row", async () => {
    await l.bank.transfer(l.pay({ id: tid(900), amount: 1n }), l.alicePolicy, l.asAlice, T0);
    expect(await l.bank.verifyJournal()).toEqual({ rows: 13, firstBad: undefined });
  });

  it("hashes text of any script as its UTF-8 bytes (accents, CJK, emoji), as the documented encoding says", async () => {
    const memo = "Zürich → 東京 🚀 naïve";
    await l.bank.transfer(l.pay({ id: tid(901), amount: 1n, memo }), l.alicePolicy, l.asAlice, T0);
    const rows = rawRows();
    const last = rows.at(-1) as JournalRow;
    expect(last.memo).toBe(memo);
    expect(byHand(last.prev_hash, last)).toEqual(Buffer.from(last.hash));
    expect(await l.bank.verifyJournal()).toEqual({ rows: 13, firstBad: undefined });
  });

  it("verifies rows with text longer than the bank ever writes (a file edited offline), naming a bad one", () => {
    // Rehash the chain by hand after giving row 5 a 20 000-character memo: still a valid chain.
    const rows = rawRows().map((r) => ({ ...r }));
    let prev: Uint8Array = GENESIS_HASH;
    for (const r of rows) {
      if (r.seq === 5n) (r as { memo: string }).memo = "é".repeat(20_000);
      (r as { prev_hash: Uint8Array }).prev_hash = prev;
      (r as { hash: Uint8Array }).hash = byHand(prev, r);
      prev = r.hash;
    }
    expect(verifyChain(rows)).toEqual({ rows: 12, firstBad: undefined });
    // One character more, same hashes: row 5 no longer matches.
    const tampered = rows.map((r) => (r.seq === 5n ? { ...r, memo: `${r.memo}!` } : r));
    expect(verifyChain(tampered)).toEqual({ rows: 12, firstBad: 5 });
  });
});
