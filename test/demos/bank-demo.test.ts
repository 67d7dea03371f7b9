/** Runs `demos/bank-demo.ts` as a user would and checks that it tells seed 001's story step by step. */
import { describe, expect, it } from "vitest";
import { expectInOrder, runDemo } from "../helpers/demo.js";

describe("the bank demo", () => {
  it("runs every step as described and exits 0", { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runDemo("bank-demo.ts");
    expect(stdout, stderr).not.toContain("✘");
    expectInOrder(stdout, [
      "## The bank",
      "✔ 1. the teller logged in with a banker pair on the keyring and attached bank/banker: the ledger is empty",
      "## Two people, logging in with key pairs (client-chosen ids cannot be trusted)",
      '✔ 2. alice signed up, registered an Ed25519 key from that password login, and logged in with the key pair on a new connection (grant "public key")',
      '✔ 3. bob signed up, registered an Ed25519 key from that password login, and logged in with the key pair on a new connection (grant "public key")',
      '✔ 4. someone saying "I am alice" with another key pair gets no Identity: only a device request that alice must approve',
      "✔ 5. the teller opened account 1 for alice and 2 for bob and deposited cash (applied, applied); each sees only their own: alice 1000, bob 500",
      "## An organization whose employees hold different permissions",
      "$ parallax bank import bank_permissions.json",
      "organization Acme (id 1): created, account 4 (EUR), admin carol",
      "role clerk: view, pay ≤ 100 per payment, ≤ 150 per day",
      "✔ 6. the operator imported the permissions file: Acme, its roles clerk, checker and cashier, and three employees besides carol, its admin",
      "✔ 7. each employee's perspective hands out only their role's facets — carol (admin): view, deposit, pay, approve, manage; dave (clerk): view, pay; erin (checker): view, approve; frank (cashier): deposit",
      "✔ 8. the teller deposited 5000 of capital into Acme's account 4 (applied)",
      "## Concurrent transfers from several connections",
      "✔ 9. 43 transfers at once from 5 connections (alice ⇄ bob on two connections each, dave paying alice from Acme): 43 applied; alice 1050, bob 540, Acme 4910",
      "## A retry after a dropped connection, applied once",
      "the client saw: connected → disconnected → resumed; retried after try 1: PARALLAX_ERR_DISCONNECTED",
      '✔ 10. alice paid bob 75; the server dropped her connection after committing it, her BankClient reconnected and resent the same id: "exists" after 2 tries, 1 entry in her statement, balance 975',
      "## Employees refused beyond their permissions",
      "✔ 11. dave (clerk) paying 101 from Acme: limitExceeded (per payment, limit 100)",
      "✔ 12. dave paying 70 more today: limitExceeded (per day, limit 150, 90 used)",
      "✔ 13. erin (checker) holds no pay facet at all; her view facet cast to Payer answers PARALLAX_ERR_UNIMPLEMENTED",
      "## A payment waiting for a second employee's approval",
      '✔ 14. carol (admin) paid 400 from Acme, above the threshold of 200: pendingApproval; she waits on it (made by "carol")',
      "✔ 15. carol approving her own payment is refused: PARALLAX_ERR_PERMISSION_DENIED",
      "✔ 16. erin (checker) saw 1 pending payment (400 by carol) and approved it: applied; carol's wait() answered applied (journal row 48); Acme 4510",
      "## A revoked employee",
      '✔ 17. carol removed dave: his pay facet answers PARALLAX_ERR_REVOKED, his view facet PARALLAX_ERR_REVOKED; he has 0 employments now, and his login still answers whoami ("dave")',
      "## Conservation",
      "✔ 18. totals: EUR sum 0 over 4 accounts, pending 0 — deposits came from the bank's cash account, so no money was made or destroyed",
      "$ parallax bank verify",
      "journal: 48 rows, chain intact",
      "✔ 19. the operator verified the journal's hash chain with the CLI: journal: 48 rows, chain intact",
      "all 19 steps behaved as described",
    ]);
    expect(code, stdout + stderr).toBe(0);
  });
});
