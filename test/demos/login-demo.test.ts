/** Runs `demos/login-demo.ts` as a user would and checks that every step behaved as described. */
import { describe, expect, it } from "vitest";
import { runDemo } from "../helpers/demo.js";

describe("the login demo", () => {
  it("runs every step as described and exits 0", { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await runDemo("login-demo.ts");
    expect(stdout, stderr).not.toContain("✘");
    for (const fragment of [
      "✔ 1. signed up as alice",
      "✔ 2. logged in as alice with her password on a fresh connection (password login)",
      "✔ 3. a wrong password is refused: PARALLAX_ERR_AUTH_FAILED",
      '✔ 4. attached lobby/member; hello() says "hello, alice"',
      '✔ 5. said "hi" in the room: the line is signed "alice"',
      '✔ 6. whoami: alice, password login, grant "password", keyring [bank/customer, bank/employee, chat/member, go/player, lobby/member, router/session, wallet/owner], epoch 0, attached [lobby/member via password]',
      "✔ 7. the operator changed alice's keyring to [lobby/guest, lobby/member]: epoch 0 → 1",
      "✔ 8. her old login and its lobby perspective are revoked: PARALLAX_ERR_REVOKED",
      "✔ 9. logged in again: keyring [lobby/guest, lobby/member], epoch 1",
      '✔ 10. minted API key 1 "ci" for [lobby/member]',
      '✔ 11. logged in with the API key (api key login): grant "api key 1 (ci)", keyring [lobby/member] only',
      "✔ 12. the API-key login may not attach lobby/guest: PARALLAX_ERR_PERMISSION_DENIED",
      "✔ 13. the API-key login may not mint API keys: PARALLAX_ERR_PERMISSION_DENIED",
      "✔ 14. made a one-time password from the password login",
      "✔ 15. logged in as alice with the one-time password on a new connection (otp login)",
      "✔ 16. the same one-time password a second time is refused: PARALLAX_ERR_AUTH_FAILED",
      '✔ 17. bob signed up: pending approval (request 1 for "bob"); he calls wait()',
      "✔ 18. root-admin attached broker/admin: listPending shows [1 bob]; bob still waits",
      '✔ 19. the admin approved bob: his wait() answered an Identity; whoami says "bob"',
      '✔ 20. the admin rejected carol: her wait() failed with PARALLAX_ERR_REJECTED "rejected: unknown person"',
      "all 20 steps behaved as described",
    ]) {
      expect(stdout).toContain(fragment);
    }
    expect(code, stdout + stderr).toBe(0);
  });
});
