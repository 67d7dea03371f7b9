/**
 * The bank service through its capabilities (issue 10): customers pay from their own accounts
 * only, exactly once; employees act through the facets their role grants, within limits, with
 * maker-checker; removing an employee revokes their facets at once; watchers hear changes; every
 * hostile input gets a precise refusal and changes nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { BANK_BANKER } from "../../../src/services/bank/bank-keys.js";
import {
  AccountListener,
  type AccountListener_changed_Params,
  type Employment,
  Payer,
  TransferField,
} from "../../../src/wire/gen/bank.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";
import { type BankWorld, makeBank, tid, which } from "./bank-harness.js";

let w: BankWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

async function balanceOf(world: BankWorld, number: bigint): Promise<bigint> {
  const totals = await world.banker.totals();
  expect(totals.totals.toArray().every((t) => t.sum === 0n && t.pendingSum === 0n)).toBe(true);
  const store = (await import("../../../src/store/index.js")).BANK_STORE;
  const ledger = world.h.store.repository(store);
  const a = await ledger?.getAccount(Number(number));
  return (a?.creditsPosted ?? 0n) - (a?.debitsPosted ?? 0n);
}

describe("customers", () => {
  it("pay from their own account, once per id, and the money stays conserved", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 1000n);
    const b = await w.account(bob, "bob main", "bob");
    const id = tid();
    const first = (
      await a.account.pay({ transfer: { id, to: b.number, amount: 300n, currency: "EUR", memo: "rent" } })
    ).outcome;
    expect(which(first)).toBe("applied");
    expect(first.applied.amount).toBe(300n);
    // The same transfer again (a resend after a dropped connection): nothing more moves.
    const again = (
      await a.account.pay({ transfer: { id, to: b.number, amount: 300n, currency: "EUR", memo: "rent" } })
    ).outcome;
    expect(which(again)).toBe("exists");
    expect(again.exists.journalSeq).toBe(first.applied.journalSeq);
    // The same id for something else: refused, naming the field.
    const other = (
      await a.account.pay({ transfer: { id, to: b.number, amount: 301n, currency: "EUR", memo: "rent" } })
    ).outcome;
    expect(which(other)).toBe("existsWithDifferent");
    expect(other.existsWithDifferent).toBe(TransferField.AMOUNT);
    expect(await balanceOf(w, a.number)).toBe(700n);
    expect(await balanceOf(w, b.number)).toBe(300n);
  });

  it("cannot overdraw; the refused id stays free for a later attempt", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 100n);
    const b = await w.account(bob, "bob main", "bob");
    const id = tid();
    const t = { id, to: b.number, amount: 101n, currency: "EUR", memo: "" };
    const refused = (await a.account.pay({ transfer: t })).outcome;
    expect(which(refused)).toBe("insufficientFunds");
    expect(refused.insufficientFunds).toBe(100n);
    await w.banker.deposit({ account: a.number, id: tid(), amount: 1n, memo: "" });
    expect(which((await a.account.pay({ transfer: t })).outcome)).toBe("applied");
    expect(await balanceOf(w, a.number)).toBe(0n);
  });

  it("Alice cannot move Bob's money by any reference she can obtain", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 10n);
    const b = await w.account(bob, "bob main", "bob", 500n);
    // Bob's account capability reaching Alice (say, relayed through a careless service) refuses her:
    // here Alice's connection receives it as a deposit source she hands to the server.
    const carol = await w.user("carol");
    await w.banker.openOrganization({ name: "Acme", currency: "EUR", admin: "carol" });
    const [job] = (await carol.employee.employments()).employments.toArray();
    const deposit = job?.facets.get(0).deposit;
    const err = await rejection(
      deposit?.deposit({ from: b.account, id: tid(), amount: 50n, memo: "" }) ?? Promise.reject(),
    );
    // carol is not bob: the server refuses to debit an account that is not the caller's own
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    // Naming Bob's account as a payee only pays him.
    expect(
      which(
        (
          await a.account.pay({
            transfer: { id: tid(), to: b.number, amount: 10n, currency: "EUR", memo: "" },
          })
        ).outcome,
      ),
    ).toBe("applied");
    expect(await balanceOf(w, b.number)).toBe(510n);
    // Alice's keyring has no banker pair: she cannot reach the cash desk.
    expect((await rejection(alice.identity.attach({ ...BANK_BANKER, client: null }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
  });

  it("refuse hostile inputs precisely and change nothing", async () => {
    w = await makeBank({ maxBatchLegs: 4 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 100n);
    const b = await w.account(bob, "bob main", "bob");
    const usd = await w.account(bob, "bob usd", "bob", 0n, "USD");
    const t = (over: object) => ({
      transfer: { id: tid(), to: b.number, amount: 1n, currency: "EUR", memo: "", ...over },
    });
    for (const bad of [
      t({ amount: 0n }),
      t({ id: new Uint8Array(15) }),
      t({ id: new Uint8Array(17) }),
      t({ currency: "eur" }),
      t({ memo: "x".repeat(141) }),
    ]) {
      expect((await rejection(a.account.pay(bad))).code).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect(which((await a.account.pay(t({ to: 999_999n }))).outcome)).toBe("accountNotFound");
    expect(which((await a.account.pay(t({ to: usd.number }))).outcome)).toBe("currencyMismatch");
    expect(which((await a.account.pay(t({ currency: "USD" }))).outcome)).toBe("currencyMismatch");
    expect(which((await a.account.pay(t({ to: a.number }))).outcome)).toBe("sameAccount");
    const legs = Array.from({ length: 5 }, () => t({}).transfer);
    expect((await rejection(a.account.payBatch({ transfers: legs }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(await balanceOf(w, a.number)).toBe(100n);
    expect(await balanceOf(w, b.number)).toBe(0n);
  });

  it("commit a batch all or nothing: a failing leg fails it whole", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 100n);
    const b = await w.account(bob, "bob main", "bob");
    const leg = (amount: bigint) => ({ id: tid(), to: b.number, amount, currency: "EUR", memo: "" });
    const failed = (
      await a.account.payBatch({ transfers: [leg(30n), leg(80n), leg(10n)] })
    ).outcomes.toArray();
    expect(failed.map(which)).toEqual(["linkedEventFailed", "insufficientFunds", "linkedEventFailed"]);
    expect(await balanceOf(w, a.number)).toBe(100n);
    const ok = (await a.account.payBatch({ transfers: [leg(30n), leg(60n)] })).outcomes.toArray();
    expect(ok.map(which)).toEqual(["applied", "applied"]);
    expect(await balanceOf(w, b.number)).toBe(90n);
  });

  it("hold funds in two phases: post part of a hold, and an unposted one expires by itself", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 100n);
    const b = await w.account(bob, "bob main", "bob");
    const held = await a.account.hold({
      transfer: { id: tid(), to: b.number, amount: 60n, currency: "EUR", memo: "deposit" },
      timeoutMs: 60_000,
    });
    expect(which(held.outcome)).toBe("applied");
    // the reserved amount cannot be paid twice
    expect(
      which(
        (
          await a.account.pay({
            transfer: { id: tid(), to: b.number, amount: 50n, currency: "EUR", memo: "" },
          })
        ).outcome,
      ),
    ).toBe("insufficientFunds");
    const posted = (await held.hold.post({ id: tid(), amount: 40n })).outcome;
    expect(which(posted)).toBe("applied");
    expect(which((await held.hold.void({ id: tid() })).outcome)).toBe("holdNotOpen");
    expect(await balanceOf(w, a.number)).toBe(60n);
    expect(await balanceOf(w, b.number)).toBe(40n);
    // A second hold nobody posts: voided when its time is up, on the clock.
    const second = await a.account.hold({
      transfer: { id: tid(), to: b.number, amount: 60n, currency: "EUR", memo: "" },
      timeoutMs: 1000,
    });
    expect((await second.hold.info()).open).toBe(true);
    w.h.clock.advance(1000);
    await waitFor(async () => expect((await second.hold.info()).open).toBe(false));
    expect(which((await second.hold.post({ id: tid(), amount: 0n })).outcome)).toBe("holdNotOpen");
    expect(await balanceOf(w, a.number)).toBe(60n);
  });

  it("tell watchers of every change, with the balance after it", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 100n);
    const b = await w.account(bob, "bob main", "bob");
    const heard: bigint[] = [];
    await b.account.watch({
      listener: AccountListener.server({
        changed: (p: AccountListener_changed_Params) => void heard.push(p.account.balance),
        dropped: () => {},
      }),
    });
    await a.account.pay({ transfer: { id: tid(), to: b.number, amount: 30n, currency: "EUR", memo: "" } });
    await a.account.pay({ transfer: { id: tid(), to: b.number, amount: 20n, currency: "EUR", memo: "" } });
    await waitFor(() => expect(heard).toEqual([30n, 50n]));
  });

  it("give a statement whose opening plus entries is the closing balance", async () => {
    w = await makeBank();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await w.account(alice, "alice main", "alice", 100n);
    const b = await w.account(bob, "bob main", "bob");
    w.h.clock.advance(1000);
    const mid = w.h.clock.now();
    await a.account.pay({ transfer: { id: tid(), to: b.number, amount: 30n, currency: "EUR", memo: "one" } });
    await a.account.pay({ transfer: { id: tid(), to: b.number, amount: 20n, currency: "EUR", memo: "two" } });
    const s = (await a.account.statement({ from: BigInt(mid), to: BigInt(w.h.clock.now() + 1000) }))
      .statement;
    expect(s.opening).toBe(100n);
    expect(s.entries.toArray().map((e) => [e.amount, e.balance, e.memo])).toEqual([
      [-30n, 70n, "one"],
      [-20n, 50n, "two"],
    ]);
    expect(s.closing).toBe(50n);
  });
});

describe("organizations", () => {
  async function acme() {
    w = await makeBank();
    const world = w;
    const carol = await world.user("carol");
    const dave = await world.user("dave");
    const erin = await world.user("erin");
    const org = (await world.banker.openOrganization({ name: "Acme", currency: "EUR", admin: "carol" })).info;
    const orgAccount = org.accounts.get(0).number;
    await world.banker.deposit({ account: orgAccount, id: tid(), amount: 1000n, memo: "capital" });
    const payee = await world.user("pat");
    const p = await world.account(payee, "pat", "pat");
    const [adminJob] = (await carol.employee.employments()).employments.toArray();
    const manager = (adminJob as Employment).manage;
    await manager.defineRole({
      role: {
        name: "clerk",
        permissions: { view: true, pay: true, perPaymentLimit: 100n, perDayLimit: 150n },
      },
    });
    await manager.defineRole({ role: { name: "checker", permissions: { view: true, approve: true } } });
    await manager.setRole({ username: "dave", role: "clerk" });
    await manager.setRole({ username: "erin", role: "checker" });
    await manager.setApprovalThreshold({ amount: 80n });
    const facets = async (who: { employee: typeof dave.employee }) =>
      (await who.employee.employments()).employments.toArray()[0]?.facets.get(0);
    return { world, carol, dave, erin, manager, orgAccount, pat: p, facets };
  }

  it("pay within a clerk's limits; above the threshold a payment waits for another employee's approval", async () => {
    const { world, dave, erin, pat, orgAccount, facets } = await acme();
    const clerk = await facets(dave);
    const pay = (amount: bigint) =>
      clerk?.pay.pay({ transfer: { id: tid(), to: pat.number, amount, currency: "EUR", memo: "" } }) ??
      Promise.reject(new Error("no pay facet"));
    expect(which((await pay(50n)).outcome)).toBe("applied");
    const big = (await pay(90n)).outcome;
    expect(which(big)).toBe("pendingApproval");
    const waiting = big.pendingApproval.wait();
    const checker = await facets(erin);
    const pending = (await checker?.approve.pending())?.payments.toArray() ?? [];
    expect(pending.map((p) => [p.amount, p.maker])).toEqual([[90n, "dave"]]);
    const approved = await checker?.approve.approve({ id: pending[0]?.id ?? new Uint8Array(16) });
    expect(which(approved?.outcome ?? (await pay(1n)).outcome)).toBe("applied");
    expect(which((await waiting).outcome)).toBe("applied");
    // 50 + 90 spent today: 70 more passes the per-payment limit but not the per-day one.
    const day = (await pay(70n)).outcome;
    expect(which(day)).toBe("limitExceeded");
    expect(day.limitExceeded.used).toBe(140n);
    expect(which((await pay(101n)).outcome)).toBe("limitExceeded");
    expect(await balanceOf(world, orgAccount)).toBe(860n);
  });

  it("hand out only the facets a role grants: a checker has no pay method at all", async () => {
    const { erin, pat, facets } = await acme();
    const checker = await facets(erin);
    expect(checker?.hasPay()).toBe(false);
    // Even cast to Payer, the view facet has no pay method: the call answers unimplemented.
    const forged = checker?.view.castAs(Payer);
    const err = await rejection(
      forged?.pay({ transfer: { id: tid(), to: pat.number, amount: 1n, currency: "EUR", memo: "" } }) ??
        Promise.reject(),
    );
    expect(err.code).toBe(ErrorCode.UNIMPLEMENTED);
  });

  it("refuse approving one's own payment", async () => {
    const { carol, pat, facets } = await acme();
    const admin = await facets(carol);
    const mine = (
      await admin?.pay.pay({
        transfer: { id: tid(), to: pat.number, amount: 500n, currency: "EUR", memo: "" },
      })
    )?.outcome;
    expect(mine === undefined ? "none" : which(mine)).toBe("pendingApproval");
    const [request] = (await admin?.approve.pending())?.payments.toArray() ?? [];
    const err = await rejection(
      admin?.approve.approve({ id: request?.id ?? new Uint8Array(16) }) ?? Promise.reject(),
    );
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
  });

  it("revoke a removed employee's facets at once, pipelined calls included, leaving their other logins", async () => {
    const { world, dave, manager, pat, facets } = await acme();
    const clerk = await facets(dave);
    const own = await world.account(dave, "dave's own", "dave", 20n);
    const heldBefore = (await clerk?.view.info())?.info.balance;
    expect(heldBefore).toBe(1000n);
    await manager.removeEmployee({ username: "dave" });
    const payErr = await rejection(
      clerk?.pay.pay({ transfer: { id: tid(), to: pat.number, amount: 1n, currency: "EUR", memo: "" } }) ??
        Promise.reject(),
    );
    expect(payErr.code).toBe(ErrorCode.REVOKED);
    expect((await rejection(clerk?.view.info() ?? Promise.reject())).code).toBe(ErrorCode.REVOKED);
    // A pipelined call through facets obtained before the removal fails the same way.
    const pipelined = dave.employee.employments();
    expect((await pipelined).employments.toArray()).toHaveLength(0);
    // Dave's own account and login are untouched.
    expect(
      which(
        (
          await own.account.pay({
            transfer: { id: tid(), to: pat.number, amount: 5n, currency: "EUR", memo: "" },
          })
        ).outcome,
      ),
    ).toBe("applied");
    expect((await dave.identity.whoami()).info.name).toBe("dave");
    // Re-hired, he gets new facets that work, while the old ones stay dead.
    await manager.setRole({ username: "dave", role: "clerk" });
    const fresh = await facets(dave);
    expect((await fresh?.view.info())?.info.balance).toBe(1000n);
    expect((await rejection(clerk?.view.info() ?? Promise.reject())).code).toBe(ErrorCode.REVOKED);
  });

  it("lose every facet when the employee's whole login is revoked (password change)", async () => {
    const { dave, pat, facets } = await acme();
    const clerk = await facets(dave);
    const { verifier } = await makeVerifier("dave new pass", { kdf });
    await dave.identity.changePassword({ newVerifier: verifier });
    const err = await rejection(
      clerk?.pay.pay({ transfer: { id: tid(), to: pat.number, amount: 1n, currency: "EUR", memo: "" } }) ??
        Promise.reject(),
    );
    expect(err.code).toBe(ErrorCode.REVOKED);
  });

  it("deposit-only: money comes in from the employee's own account, never goes out", async () => {
    const { world, carol, manager, orgAccount, facets } = await acme();
    await manager.defineRole({ role: { name: "cashier", permissions: { deposit: true } } });
    const frank = await world.user("frank");
    await manager.setRole({ username: "frank", role: "cashier" });
    const own = await world.account(frank, "frank's own", "frank", 40n);
    const cashier = await facets(frank);
    expect(cashier?.hasPay()).toBe(false);
    // A role without `view` is not told the balances, only which accounts there are.
    const [job] = (await frank.employee.employments()).employments.toArray();
    const listed = job?.organization.accounts.get(0);
    expect([listed?.number, listed?.balance, listed?.pendingDebits]).toEqual([BigInt(orgAccount), 0n, 0n]);
    expect(cashier?.hasView()).toBe(false);
    const r = await cashier?.deposit.deposit({ from: own.account, id: tid(), amount: 25n, memo: "float" });
    expect(r === undefined ? "none" : which(r.outcome)).toBe("applied");
    expect(await balanceOf(world, orgAccount)).toBe(1025n);
    expect(await balanceOf(world, own.number)).toBe(15n);
    void carol;
  });
});
