/** Runs `demos/wallet-demo.ts` as a user would and checks that it replays seed 000 as the seed says. */
import { describe, expect, it } from "vitest";
import { expectInOrder, runDemo } from "../helpers/demo.js";

describe("the wallet demo", () => {
  it("replays the seed's whole story, every step as the seed says, and exits 0", {
    timeout: 60_000,
  }, async () => {
    const { code, stdout, stderr } = await runDemo("wallet-demo.ts");
    expect(stdout, stderr).not.toContain("✘");
    expectInOrder(stdout, [
      ">>> c1.register()",
      "Registered",
      "✔ 2. c2 got the same salt seed from the server",
      "## Syncing",
      "WalletState(sequence=1, encrypted_wallet='",
      "✔ 5. c1 pushed sequence 1",
      "✔ 8. c1 got sequence 2 and took it as it is",
      "{'animal': 'cow', 'car': ''}",
      "✔ 12. c1 pushed sequence 3",
      "## Merging Changes",
      "Merging local changes with remote changes to create latest walletState.",
      "✔ 18. c2 got sequence 4 and merged its local changes onto it",
      "✔ 19. c2's preferences are {'animal': 'horse', 'car': 'Audi'}",
      "✔ 20. c2 pushed sequence 5",
      "## Conflicts",
      "Submitted wallet is out of date.",
      "Could not update. Need to get new wallet and merge",
      "'Failure'",
      "✔ 29. c1's preferences are {'animal': 'beaver', 'car': 'Toyota'}",
      "✔ 30. c1 pushed sequence 7",
      "# Changing Password",
      "✔ 31. the password changed together with the wallet, re-encrypted as sequence 8",
      "✔ 33. c1.getRemoteWallet() failed: PARALLAX_ERR_REVOKED",
      "✔ 34. c2.getRemoteWallet() failed: PARALLAX_ERR_REVOKED",
      "✔ 36. c2.login() failed: PARALLAX_ERR_AUTH_FAILED",
      "✔ 37. c2 derived its keys from the new salt seed",
      "Local changes found. Update remote wallet before changing password.",
      "✔ 40. c1 pushed sequence 9",
      "✔ 41. the password changed together with the wallet, re-encrypted as sequence 10",
      "# Websockets",
      "c2 got notified of a wallet update, sequence=11.",
      "✔ 45. c1 and c2 were notified of [11] and [11]",
      "✔ 47. c1 and c2 were notified of [11, 12] and [11, 12]",
      "✔ 48. the password changed together with the wallet, re-encrypted as sequence 13",
      'ending "the password was changed" / "the password was changed"',
      "all 49 steps behaved as the seed says",
    ]);
    expect(code, stdout + stderr).toBe(0);
  });
});
