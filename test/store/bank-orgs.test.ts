/**
 * Organizations in the bank store: roles, employees and their grant epochs, management rights,
 * employees' payments within their role's limits, and maker-checker approval.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type {
  BankAccountRecord,
  BankActor,
  IdentityRecord,
  OrganizationRecord,
  Permissions,
  SqliteBrokerStore,
  TransferInput,
} from "../../src/store/index.js";
import { actor, balance, dumpBank, type Ledger, seedLedger, T0, tid } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const DAY = 86_400_000;
/** Noon of a UTC day. */
const NOON = Math.floor(T0 / DAY) * DAY + DAY / 2;

let t: TempStores;
let store: SqliteBrokerStore;
let l: Ledger;
let org: OrganizationRecord;
let acct: BankAccountRecord;
let dave: IdentityRecord;
let erin: IdentityRecord;
let frank: IdentityRecord;

const none: Permissions = {
  view: false,
  deposit: false,
  pay: false,
  perPaymentLimit: 0n,
  perDayLimit: 0n,
  approve: false,
  manage: false,
};
const clerk = { ...none, view: true, pay: true, perPaymentLimit: 500n, perDayLimit: 1000n };
const checker = { ...none, view: true, approve: true };

/** The employee's actor at their current grant epoch. */
async function employee(who: IdentityRecord, facet = "pay"): Promise<BankActor> {
  const e = await l.bank.employment(org.id, who.id);
  if (e === undefined) throw new Error(`${who.name} is not employed`);
  return { ...actor(who, "employee", facet), grant: { orgId: org.id, grantEpoch: e.grantEpoch } };
}

beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  l = await seedLedger(store);
  dave = await store.createIdentity({ name: "dave", verifier: null, keyring: [] });
  erin = await store.createIdentity({ name: "erin", verifier: null, keyring: [] });
  frank = await store.createIdentity({ name: "frank", verifier: null, keyring: [] });
  ({ org, account: acct } = await l.bank.createOrganization(
    { name: "Acme", currency: "EUR", adminId: l.bob.id },
    l.bankerActor,
  ));
  await l.bank.defineRole(org.id, { name: "clerk", permissions: clerk }, l.bankerActor);
  await l.bank.defineRole(org.id, { name: "checker", permissions: checker }, l.bankerActor);
  await l.bank.defineRole(org.id, { name: "viewer", permissions: { ...none, view: true } }, l.bankerActor);
  await l.bank.setEmployeeRole(org.id, dave.id, "clerk", l.bankerActor);
  await l.bank.setEmployeeRole(org.id, erin.id, "checker", l.bankerActor);
  await l.bank.setEmployeeRole(org.id, frank.id, "viewer", l.bankerActor);
  await l.deposit(acct, 100_000n, 77);
  acct = (await l.bank.getAccount(acct.number)) as BankAccountRecord;
});
afterEach(() => t.cleanup());

const rejects = (code: string, message?: RegExp) =>
  expect.objectContaining(message ? { code, message: expect.stringMatching(message) } : { code });

async function unchanged(fn: () => Promise<unknown>): Promise<void> {
  const before = dumpBank(t.file);
  await fn();
  expect(dumpBank(t.file)).toEqual(before);
}

const orgPolicy = () => ({ payer: { orgId: org.id } });
const orgPay = (fields: Partial<TransferInput> = {}): TransferInput => ({
  id: tid(1),
  from: acct.number,
  to: l.a.number,
  amount: 100n,
  currency: "EUR",
  memo: "invoice",
  ...fields,
});
async function payAs(who: IdentityRecord, fields: Partial<TransferInput> = {}, now = NOON) {
  return l.bank.transfer(orgPay(fields), orgPolicy(), await employee(who), now);
}

describe("organizations, roles and employees", () => {
  it("creates an organization with its account, the admin role and its admin as the first employee", async () => {
    expect(org).toEqual({ id: org.id, name: "Acme", approvalThreshold: 0n });
    expect(acct).toMatchObject({ kind: "organization", orgId: org.id, ownerId: null, noOverdraft: true });
    expect(await l.bank.employment(org.id, l.bob.id)).toEqual({
      org,
      identityId: l.bob.id,
      username: "bob",
      role: {
        name: "admin",
        permissions: { ...none, view: true, deposit: true, pay: true, approve: true, manage: true },
      },
      grantEpoch: 1,
    });
    expect((await l.bank.employeesOf(org.id)).map((e) => [e.username, e.role.name])).toEqual([
      ["bob", "admin"],
      ["dave", "clerk"],
      ["erin", "checker"],
      ["frank", "viewer"],
    ]);
    expect((await l.bank.accountsOf({ orgId: org.id })).map((a) => a.number)).toEqual([acct.number]);
    await expect(
      l.bank.createOrganization({ name: "ACME", currency: "EUR", adminId: dave.id }, l.bankerActor),
    ).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS, /named ACME exists/));
  });

  it("bumps the grant epoch on every role change, removal and re-hire; a removed employee has no employment", async () => {
    const epochs = [(await l.bank.employment(org.id, dave.id))?.grantEpoch];
    expect(await l.bank.setEmployeeRole(org.id, dave.id, "clerk")).toBe(1); // unchanged: same role
    epochs.push(await l.bank.setEmployeeRole(org.id, dave.id, "viewer"));
    epochs.push(await l.bank.removeEmployee(org.id, dave.id));
    expect(await l.bank.employment(org.id, dave.id)).toBeUndefined();
    expect(await l.bank.employmentsOf(dave.id)).toEqual([]);
    epochs.push(await l.bank.setEmployeeRole(org.id, dave.id, "clerk"));
    expect(epochs).toEqual([1, 2, 3, 4]);
    expect((await l.bank.employmentsOf(dave.id)).map((e) => [e.org.name, e.role.name, e.grantEpoch])).toEqual(
      [["Acme", "clerk", 4]],
    );
    await expect(l.bank.removeEmployee(org.id, l.alice.id)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(l.bank.setEmployeeRole(org.id, dave.id, "janitor")).rejects.toEqual(
      rejects(ErrorCode.NOT_FOUND, /no role named janitor/),
    );
    await expect(l.bank.setEmployeeRole(org.id, 999, "clerk")).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
  });

  it("redefining a role bumps its holders' grant epochs; defining it the same does not", async () => {
    await l.bank.defineRole(org.id, { name: "clerk", permissions: clerk });
    expect((await l.bank.employment(org.id, dave.id))?.grantEpoch).toBe(1);
    await l.bank.defineRole(org.id, { name: "clerk", permissions: { ...clerk, perDayLimit: 2000n } });
    expect((await l.bank.employment(org.id, dave.id))?.grantEpoch).toBe(2);
    expect((await l.bank.employment(org.id, erin.id))?.grantEpoch).toBe(1);
  });

  it("lets a manager of the organization and bank staff manage it, and nobody else", async () => {
    const admin = await employee(l.bob, "manage");
    await l.bank.setApprovalThreshold(org.id, 700n, admin);
    expect((await l.bank.getOrganization(org.id))?.approvalThreshold).toBe(700n);
    await l.bank.setApprovalThreshold(org.id, 800n, l.bankerActor);
    await l.bank.setApprovalThreshold(org.id, 900n);
    const viewer = await employee(frank, "manage");
    const other = await l.bank.createOrganization({ name: "Other", currency: "EUR", adminId: frank.id });
    const otherAdmin: BankActor = {
      ...actor(frank, "employee", "manage"),
      grant: { orgId: other.org.id, grantEpoch: 1 },
    };
    await unchanged(async () => {
      for (const call of [
        () => l.bank.setApprovalThreshold(org.id, 1n, viewer),
        () => l.bank.defineRole(org.id, { name: "boss", permissions: { ...none, manage: true } }, viewer),
        () => l.bank.setEmployeeRole(org.id, frank.id, "clerk", viewer),
        () => l.bank.removeEmployee(org.id, dave.id, viewer),
      ]) {
        await expect(call()).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /does not manage/));
      }
      await expect(l.bank.setApprovalThreshold(org.id, 1n, otherAdmin)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /another organization/),
      );
      await expect(l.bank.setApprovalThreshold(999, 1n, l.bankerActor)).rejects.toEqual(
        rejects(ErrorCode.NOT_FOUND),
      );
      await expect(l.bank.setApprovalThreshold(org.id, -1n, l.bankerActor)).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT),
      );
    });
    await l.bank.setApprovalThreshold(other.org.id, 1n, otherAdmin);
    expect((await l.bank.getOrganization(other.org.id))?.approvalThreshold).toBe(1n);
    // A manager whose grant moved on is REVOKED.
    await l.bank.setEmployeeRole(org.id, l.bob.id, "checker", l.bankerActor);
    await expect(l.bank.setApprovalThreshold(org.id, 1n, admin)).rejects.toEqual(rejects(ErrorCode.REVOKED));
    // An employee may not open accounts or organizations: bank staff do.
    const current = await employee(l.bob, "manage");
    await expect(
      l.bank.openAccount(
        { currency: "EUR", name: "x", kind: "organization", orgId: org.id, noOverdraft: true },
        current,
      ),
    ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /bank staff/));
    await expect(
      l.bank.createOrganization({ name: "Mine", currency: "EUR", adminId: l.bob.id }, current),
    ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /bank staff/));
  });

  it("refuses malformed roles with BAD_ARGUMENT", async () => {
    for (const role of [
      { name: "", permissions: none },
      { name: "x", permissions: { ...none, perDayLimit: -1n } },
      { name: "x", permissions: { ...none, perPaymentLimit: 2n ** 63n } },
      { name: "x", permissions: { ...none, pay: 1 } },
    ]) {
      await expect(l.bank.defineRole(org.id, role as never)).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
    }
  });
});

describe("employees paying from the organization's accounts", () => {
  it("pays within the role and journals the employee", async () => {
    const r = await payAs(dave);
    expect(r.kind).toBe("applied");
    const [row] = await l.bank.journal(r.kind === "applied" ? r.receipt.journalSeq : 0, 1);
    expect(row).toMatchObject({ identityId: dave.id, perspective: "employee", facet: "pay", makerId: null });
  });

  it("refuses a role without pay, a grant of another organization and another organization's account", async () => {
    await unchanged(async () => {
      await expect(payAs(frank)).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /does not pay/));
      await expect(
        l.bank.transfer(orgPay(), { payer: { orgId: org.id + 1 } }, await employee(dave), NOON),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /through a grant of that organization/));
      await expect(
        l.bank.transfer(orgPay(), orgPolicy(), { ...actor(dave, "employee") }, NOON),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /through a grant of that organization/));
      await expect(payAs(dave, { from: l.a.number, to: l.b.number })).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /not an account of organization/),
      );
    });
  });

  it("refuses a facet whose grant epoch moved on (role changed, role redefined, removed; re-hired) with REVOKED", async () => {
    const old = await employee(dave);
    const go = (a: BankActor, n: number) => l.bank.transfer(orgPay({ id: tid(n) }), orgPolicy(), a, NOON);
    await l.bank.setEmployeeRole(org.id, dave.id, "checker");
    await l.bank.setEmployeeRole(org.id, dave.id, "clerk");
    await unchanged(async () => {
      await expect(go(old, 1)).rejects.toEqual(rejects(ErrorCode.REVOKED, /grant changed/));
    });
    const second = await employee(dave);
    expect((await go(second, 2)).kind).toBe("applied");
    await l.bank.defineRole(org.id, { name: "clerk", permissions: { ...clerk, perPaymentLimit: 400n } });
    await expect(go(second, 3)).rejects.toEqual(rejects(ErrorCode.REVOKED));
    const third = await employee(dave);
    await l.bank.removeEmployee(org.id, dave.id);
    await expect(go(third, 4)).rejects.toEqual(rejects(ErrorCode.REVOKED));
    await l.bank.setEmployeeRole(org.id, dave.id, "clerk");
    for (const stale of [old, second, third])
      await expect(go(stale, 5)).rejects.toEqual(rejects(ErrorCode.REVOKED));
    expect((await go(await employee(dave), 5)).kind).toBe("applied");
    // A stale login epoch fails first, whatever the grant.
    await store.bumpEpoch(dave.id);
    await expect(go(await employee(dave), 6)).rejects.toEqual(
      rejects(ErrorCode.REVOKED, /credentials changed/),
    );
  });

  it("applies the per-payment limit at its boundary", async () => {
    expect((await payAs(dave, { amount: 500n })).kind).toBe("applied");
    await unchanged(async () => {
      expect(await payAs(dave, { id: tid(2), amount: 501n })).toEqual({
        kind: "limitExceeded",
        limit: { kind: "perPayment", limit: 500n, used: 0n },
      });
    });
  });

  it("applies the per-day limit over the UTC day of `now`, holds included, per employee", async () => {
    const day = Math.floor(NOON / DAY) * DAY;
    // Yesterday's payment does not count.
    expect((await payAs(dave, { id: tid(1), amount: 500n }, day - 1)).kind).toBe("applied");
    expect((await payAs(dave, { id: tid(2), amount: 400n }, day)).kind).toBe("applied");
    const hold = await l.bank.openHold(
      orgPay({ id: tid(3), amount: 300n }),
      60_000,
      orgPolicy(),
      await employee(dave),
      day + 5,
    );
    expect(hold.kind).toBe("applied");
    // 400 + 300 used; 300 more reaches the limit exactly, 301 passes it.
    await unchanged(async () => {
      expect(await payAs(dave, { id: tid(4), amount: 301n })).toEqual({
        kind: "limitExceeded",
        limit: { kind: "perDay", limit: 1000n, used: 700n },
      });
    });
    expect((await payAs(dave, { id: tid(4), amount: 300n })).kind).toBe("applied");
    expect(await payAs(dave, { id: tid(5), amount: 1n }, day + DAY - 1)).toMatchObject({
      kind: "limitExceeded",
    });
    // Another clerk has their own day; the next day starts afresh.
    await l.bank.setEmployeeRole(org.id, frank.id, "clerk");
    expect((await payAs(frank, { id: tid(6), amount: 500n })).kind).toBe("applied");
    expect((await payAs(dave, { id: tid(7), amount: 500n }, day + DAY)).kind).toBe("applied");
  });

  it("checks the organization's funds like any account's", async () => {
    await l.bank.defineRole(org.id, { name: "treasurer", permissions: { ...none, pay: true } });
    await l.bank.setEmployeeRole(org.id, frank.id, "treasurer");
    await unchanged(async () => {
      expect(await payAs(frank, { amount: 100_001n })).toEqual({
        kind: "insufficientFunds",
        available: 100_000n,
      });
    });
  });

  it("lets an employee deposit only into the organization's account, from their own", async () => {
    await l.deposit(l.b, 50n, 1);
    const bobDeposits: BankActor = await employee(l.bob, "deposit");
    const policy = { payer: { ownerId: l.bob.id }, payeeOrgId: org.id };
    const into = (to: number) =>
      l.bank.transfer(
        { id: tid(9), from: l.b.number, to, amount: 50n, currency: "EUR", memo: "" },
        policy,
        bobDeposits,
        NOON,
      );
    await unchanged(async () => {
      await expect(into(l.a.number)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /not an account of organization/),
      );
    });
    expect((await into(acct.number)).kind).toBe("applied");
    expect(balance(await l.bank.getAccount(acct.number))).toBe(100_050n);
  });
});

describe("maker-checker", () => {
  beforeEach(async () => {
    await l.bank.setApprovalThreshold(org.id, 200n);
    await l.bank.defineRole(org.id, { name: "clerk", permissions: { ...clerk, perPaymentLimit: 0n } });
  });

  it("records a payment above the threshold as a pending request, moving nothing; at the threshold it applies", async () => {
    expect((await payAs(dave, { id: tid(1), amount: 200n })).kind).toBe("applied");
    const before = await l.bank.getAccount(acct.number);
    const r = await payAs(dave, { id: tid(2), amount: 201n, memo: "big" });
    expect(r).toEqual({
      kind: "pendingApproval",
      request: {
        id: tid(2),
        orgId: org.id,
        transfer: {
          id: tid(2),
          from: acct.number,
          to: l.a.number,
          amount: 201n,
          currency: "EUR",
          memo: "big",
        },
        makerId: dave.id,
        makerName: "dave",
        at: NOON,
        state: "pending",
        reason: "",
      },
    });
    expect(await l.bank.getAccount(acct.number)).toEqual(before);
    expect(await l.bank.receiptOf(tid(2))).toBeUndefined();
    expect(await l.bank.paymentRequestsOf(org.id)).toEqual([r.kind === "pendingApproval" ? r.request : null]);
    // A resend answers the same request; another field is existsWithDifferent.
    await unchanged(async () => {
      expect(await payAs(dave, { id: tid(2), amount: 201n, memo: "big" }, NOON + 5)).toEqual(r);
      expect(await payAs(dave, { id: tid(2), amount: 202n, memo: "big" })).toEqual({
        kind: "existsWithDifferent",
        field: "amount",
      });
    });
  });

  it("counts pending requests in the maker's day, so approvals cannot lift it over the limit", async () => {
    expect((await payAs(dave, { id: tid(1), amount: 600n })).kind).toBe("pendingApproval");
    expect(await payAs(dave, { id: tid(2), amount: 401n })).toEqual({
      kind: "limitExceeded",
      limit: { kind: "perDay", limit: 1000n, used: 600n },
    });
  });

  it("refuses a payment above the threshold in a batch or a hold (it must wait alone)", async () => {
    await unchanged(async () => {
      await expect(
        l.bank.transferBatch(
          [orgPay({ amount: 10n }), orgPay({ id: tid(2), amount: 300n })],
          orgPolicy(),
          await employee(dave),
          NOON,
        ),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /approval threshold \(200\)/));
      await expect(
        l.bank.openHold(orgPay({ amount: 300n }), 60_000, orgPolicy(), await employee(dave), NOON),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /approval threshold/));
    });
  });

  it("approving executes the maker's payment now, journaled as the approver's with the maker", async () => {
    await payAs(dave, { id: tid(2), amount: 600n });
    const approver = await employee(erin, "approve");
    const r = await l.bank.decidePayment(tid(2), true, "ok", approver, NOON + 10);
    expect(r).toMatchObject({
      kind: "applied",
      receipt: { id: tid(2), amount: 600n, at: NOON + 10, kind: "single" },
    });
    const receipt = r.kind === "applied" ? r.receipt : undefined;
    const [row] = await l.bank.journal(receipt?.journalSeq as number, 1);
    expect(row).toMatchObject({
      identityId: erin.id,
      facet: "approve",
      makerId: dave.id,
      transferId: tid(2),
    });
    expect(await l.bank.paymentRequest(tid(2))).toMatchObject({ state: "approved", reason: "ok" });
    expect(balance(await l.bank.getAccount(acct.number))).toBe(99_400n);
    // The id now answers like an applied transfer, and deciding again like before.
    expect(await payAs(dave, { id: tid(2), amount: 600n })).toEqual({ kind: "exists", receipt });
    expect(await l.bank.decidePayment(tid(2), true, "", approver, NOON + 20)).toEqual({
      kind: "exists",
      receipt,
    });
    await expect(l.bank.decidePayment(tid(2), false, "", approver, NOON)).rejects.toEqual(
      rejects(ErrorCode.ALREADY_EXISTS, /approved/),
    );
    // The approved payment counts in the maker's day.
    expect(await payAs(dave, { id: tid(3), amount: 401n })).toMatchObject({
      kind: "limitExceeded",
      limit: { used: 600n },
    });
  });

  it("refuses self-approval, a role without approve, a stale approver and another organization's approver", async () => {
    await payAs(dave, { id: tid(2), amount: 600n });
    await l.bank.defineRole(org.id, { name: "checker-clerk", permissions: { ...clerk, approve: true } });
    await l.bank.setEmployeeRole(org.id, dave.id, "checker-clerk");
    const other = await l.bank.createOrganization({ name: "Other", currency: "EUR", adminId: frank.id });
    const outsider: BankActor = {
      ...actor(frank, "employee", "approve"),
      grant: { orgId: other.org.id, grantEpoch: 1 },
    };
    const stale = await employee(erin, "approve");
    await l.bank.setEmployeeRole(org.id, erin.id, "viewer");
    await l.bank.setEmployeeRole(org.id, erin.id, "checker");
    await unchanged(async () => {
      await expect(
        l.bank.decidePayment(tid(2), true, "", await employee(dave, "approve"), NOON),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /their own payment/));
      await expect(
        l.bank.decidePayment(tid(2), true, "", await employee(frank, "approve"), NOON),
      ).rejects.toEqual(rejects(ErrorCode.PERMISSION_DENIED, /does not approve/));
      await expect(l.bank.decidePayment(tid(2), true, "", outsider, NOON)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED, /approver of organization/),
      );
      await expect(l.bank.decidePayment(tid(2), true, "", l.bankerActor, NOON)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED),
      );
      await expect(l.bank.decidePayment(tid(2), true, "", stale, NOON)).rejects.toEqual(
        rejects(ErrorCode.REVOKED),
      );
      await expect(
        l.bank.decidePayment(tid(9), true, "", await employee(erin, "approve"), NOON),
      ).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    });
    expect((await l.bank.paymentRequest(tid(2)))?.state).toBe("pending");
  });

  it("leaves the request pending when the funds are not there at approval time", async () => {
    await payAs(dave, { id: tid(2), amount: 600n });
    await l.bank.defineRole(org.id, { name: "treasurer", permissions: { ...none, pay: true } });
    await l.bank.setEmployeeRole(org.id, frank.id, "treasurer");
    expect((await payAs(frank, { id: tid(3), amount: 99_500n })).kind).toBe("pendingApproval");
    await l.bank.setApprovalThreshold(org.id, 0n);
    expect((await payAs(frank, { id: tid(4), amount: 99_500n })).kind).toBe("applied");
    const approver = await employee(erin, "approve");
    await unchanged(async () => {
      expect(await l.bank.decidePayment(tid(2), true, "", approver, NOON)).toEqual({
        kind: "insufficientFunds",
        available: 500n,
      });
    });
    await l.deposit(acct, 100n, 5);
    expect((await l.bank.decidePayment(tid(2), true, "", approver, NOON)).kind).toBe("applied");
  });

  it("rejecting marks it rejected; a resend of its id answers the rejected request", async () => {
    await payAs(dave, { id: tid(2), amount: 600n });
    const approver = await employee(erin, "approve");
    expect(await l.bank.decidePayment(tid(2), false, "no budget", approver, NOON)).toEqual({
      kind: "rejected",
    });
    expect(await l.bank.decidePayment(tid(2), false, "", approver, NOON)).toEqual({ kind: "rejected" });
    await expect(l.bank.decidePayment(tid(2), true, "", approver, NOON)).rejects.toEqual(
      rejects(ErrorCode.ALREADY_EXISTS, /rejected/),
    );
    const again = await payAs(dave, { id: tid(2), amount: 600n });
    expect(again).toMatchObject({
      kind: "pendingApproval",
      request: { state: "rejected", reason: "no budget" },
    });
    expect(balance(await l.bank.getAccount(acct.number))).toBe(100_000n);
    // A rejected request no longer counts in the day.
    expect((await payAs(dave, { id: tid(3), amount: 150n })).kind).toBe("applied");
    expect(await payAs(dave, { id: tid(4), amount: 851n })).toMatchObject({ kind: "limitExceeded" });
  });
});
