/**
 * Revocation reaches an employee's account watchers too: once their grant is gone, a watcher
 * registered through a view facet of the old grant hears no more of the organization's
 * balance, however the grant ended: removed or re-roled by the admin, the role redefined, or the
 * grant changed outside this broker (the CLI, another process).
 */
import { afterEach, describe, expect, it } from "vitest";
import { BANK_STORE, type BankStore } from "../../../src/store/index.js";
import {
  AccountListener,
  type AccountListener_changed_Params,
  type Employment,
} from "../../../src/wire/gen/bank.js";
import { waitFor } from "../../helpers/wait.js";
import { type BankWorld, makeBank, tid } from "./bank-harness.js";

let w: BankWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

/** Acme with carol (admin) and dave (clerk, with view), each watching the organization's account. */
async function watchedAcme() {
  w = await makeBank();
  const world = w;
  const carol = await world.user("carol");
  const dave = await world.user("dave");
  const org = (await world.banker.openOrganization({ name: "Acme", currency: "EUR", admin: "carol" })).info;
  const orgAccount = org.accounts.get(0).number;
  const [adminJob] = (await carol.employee.employments()).employments.toArray();
  const manager = (adminJob as Employment).manage;
  await manager.defineRole({ role: { name: "clerk", permissions: { view: true, pay: true } } });
  await manager.setRole({ username: "dave", role: "clerk" });
  const heard = { carol: [] as bigint[], dave: [] as bigint[] };
  const listener = (who: "carol" | "dave") =>
    AccountListener.server({
      changed: (p: AccountListener_changed_Params) => void heard[who].push(p.account.balance),
      dropped: () => {},
    });
  await (adminJob as Employment).facets.get(0).view.watch({ listener: listener("carol") });
  const [daveJob] = (await dave.employee.employments()).employments.toArray();
  await (daveJob as Employment).facets.get(0).view.watch({ listener: listener("dave") });
  // Both hear a deposit while dave is a clerk with view.
  await world.banker.deposit({ account: orgAccount, id: tid(), amount: 10n, memo: "" });
  await waitFor(() => expect(heard).toEqual({ carol: [10n], dave: [10n] }));
  return { world, carol, dave, manager, orgAccount, heard };
}

/** A deposit carol hears; then a round trip on dave's connection, so whatever was sent him has arrived. */
async function depositAndSettle(
  t: Awaited<ReturnType<typeof watchedAcme>>,
  amount: bigint,
  carolHears: bigint,
) {
  await t.world.banker.deposit({ account: t.orgAccount, id: tid(), amount, memo: "" });
  await waitFor(() => expect(t.heard.carol.at(-1)).toBe(carolHears));
  await t.dave.identity.whoami();
}

describe("a revoked employee's account watchers", () => {
  it("go when the admin removes the employee", async () => {
    const t = await watchedAcme();
    await t.manager.removeEmployee({ username: "dave" });
    await depositAndSettle(t, 5n, 15n);
    expect(t.heard.dave).toEqual([10n]);
  });

  it("go when the admin redefines the employee's role (here: without view)", async () => {
    const t = await watchedAcme();
    await t.manager.defineRole({ role: { name: "clerk", permissions: { pay: true } } });
    await depositAndSettle(t, 5n, 15n);
    expect(t.heard.dave).toEqual([10n]);
  });

  // The grant ended outside this broker (`parallax bank dismiss`, another process on the same
  // store): no event reaches the service; the delivery itself checks the grant.
  it("go when the employee is dismissed outside the broker (the CLI, on the store)", async () => {
    const t = await watchedAcme();
    const ledger = t.world.h.store.repository(BANK_STORE) as BankStore;
    const daveId = (await t.world.h.store.findIdentityByName("dave"))?.id ?? 0;
    await ledger.removeEmployee(1, daveId);
    await depositAndSettle(t, 5n, 15n);
    expect(t.heard.dave).toEqual([10n]);
  });
});
