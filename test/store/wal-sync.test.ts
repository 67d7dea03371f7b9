/**
 * Group commits and wallet updates sync the WAL off the event loop
 * (`SqliteDatabase.committedThenSynced`): a transfer is committed first, answered only once the
 * WAL's fsync returned, and fails with
 * STORAGE if the sync fails; other writes stay `synchronous = FULL`; a NORMAL store syncs
 * nothing. The fsync is injected so the test holds it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { SqliteBrokerStore, WALLET_STORE, type WalletStore } from "../../src/store/index.js";
import { seedLedger, T0, tid } from "./bank-fixtures.js";
import { walletFor } from "./fixtures.js";

let dir: string | undefined;
let store: SqliteBrokerStore | undefined;
afterEach(() => {
  store?.close();
  store = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A store whose WAL syncs return at once, or — once `hold.on` — wait until released (or failed). */
function heldStore(synchronous: "FULL" | "NORMAL" = "FULL") {
  dir = mkdtempSync(path.join(os.tmpdir(), "parallax-walsync-"));
  const file = path.join(dir, "broker.db");
  const held: { fd: number; release: () => void; fail: (e: Error) => void }[] = [];
  const hold = { on: false, syncs: 0 };
  store = SqliteBrokerStore.open(file, {
    synchronous,
    fsyncWal: (fd) => {
      hold.syncs++;
      if (!hold.on) return Promise.resolve();
      return new Promise<void>((release, fail) => {
        held.push({ fd, release, fail });
      });
    },
  });
  return { file, held, hold, store };
}

/** Lets every pending callback and timer of this turn run. */
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const releaseAll = (held: { release: () => void }[]) => {
  for (const h of held.splice(0)) h.release();
};

describe("group commits under synchronous = FULL", () => {
  it("commit first, then answer only once the WAL's fsync returned", async () => {
    const { file, held, hold, store: s } = heldStore();
    const l = await seedLedger(s);
    expect(hold.syncs).toBeGreaterThan(0);
    hold.on = true;
    let answered = false;
    const pending = l.bank
      .transfer(l.pay({ id: tid(77), amount: 5n }), l.alicePolicy, l.asAlice, T0 + 1)
      .then((r) => {
        answered = true;
        return r;
      });
    await turns();
    expect(held).toHaveLength(1);
    expect(answered).toBe(false);
    // Committed already: another connection sees the transfer while its answer waits on the sync.
    const other = new Database(file, { readonly: true });
    const row = other
      .prepare("SELECT count(*) AS n FROM bank_transfers WHERE id = ?")
      .get(Buffer.from(tid(77))) as {
      n: number;
    };
    other.close();
    expect(row.n).toBe(1);
    expect(s.inspect().synchronous).toBe("FULL");
    releaseAll(held);
    expect((await pending).kind).toBe("applied");
    expect(answered).toBe(true);
  });

  it("fail every request of the group with STORAGE when the sync fails", async () => {
    const { held, hold, store: s } = heldStore();
    const l = await seedLedger(s);
    hold.on = true;
    const both = Promise.allSettled([
      l.bank.transfer(l.pay({ id: tid(80), amount: 1n }), l.alicePolicy, l.asAlice, T0 + 1),
      l.bank.transfer(l.pay({ id: tid(81), amount: 1n }), l.alicePolicy, l.asAlice, T0 + 1),
    ]);
    await turns();
    expect(held).toHaveLength(1);
    held.splice(0)[0]?.fail(new Error("EIO"));
    const results = await both;
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toMatchObject({
        code: ErrorCode.STORAGE,
        message: expect.stringContaining("could not sync its WAL"),
      });
    }
  });
});

describe("WAL syncs", () => {
  it("run one at a time: commits made during a sync wait for the next one, which covers them all", async () => {
    const { held, hold, store: s } = heldStore();
    const l = await seedLedger(s);
    hold.on = true;
    const done: string[] = [];
    const pay = (n: number) =>
      l.bank.transfer(l.pay({ id: tid(n), amount: 1n }), l.alicePolicy, l.asAlice, T0 + 1).then((r) => {
        done.push(`${n} ${r.kind}`);
      });
    const first = pay(100);
    await turns();
    expect(held).toHaveLength(1);
    // Two more groups commit while the first sync runs: no second sync starts yet.
    const second = pay(101);
    await turns();
    const third = pay(102);
    await turns();
    expect([held.length, done]).toEqual([1, []]);
    releaseAll(held);
    await first;
    await turns();
    // One sync, started after the first returned, covers both later groups.
    expect([held.length, done]).toEqual([1, ["100 applied"]]);
    releaseAll(held);
    await Promise.all([second, third]);
    expect(done).toEqual(["100 applied", "101 applied", "102 applied"]);
    expect(hold.syncs).toBeGreaterThanOrEqual(2);
  });
});

describe("wallet updates under synchronous = FULL", () => {
  it("are committed first and answered only once the WAL's fsync returned", async () => {
    const { held, hold, store: s } = heldStore();
    const alice = await s.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const wallets = s.repository(WALLET_STORE) as WalletStore;
    hold.on = true;
    let answered = false;
    const pending = wallets.updateWallet(alice.id, alice.epoch, walletFor(1)).then((r) => {
      answered = true;
      return r;
    });
    await turns();
    expect([held.length, answered]).toEqual([1, false]);
    expect((await wallets.getWallet(alice.id))?.sequence).toBe(1);
    expect(s.inspect().synchronous).toBe("FULL");
    releaseAll(held);
    expect((await pending).kind).toBe("accepted");
  });
});

describe("a NORMAL store", () => {
  it("syncs nothing and answers at commit", async () => {
    const { hold, store: s } = heldStore("NORMAL");
    const l = await seedLedger(s);
    expect(
      (await l.bank.transfer(l.pay({ id: tid(90), amount: 1n }), l.alicePolicy, l.asAlice, T0)).kind,
    ).toBe("applied");
    expect(hold.syncs).toBe(0);
  });
});
