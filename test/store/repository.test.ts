/** `BrokerStore.repository(token)`: how a service gets the store contract it needs. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import {
  type BrokerStore,
  type SqliteBrokerStore,
  storeContract,
  WALLET_STORE,
  type WalletStore,
} from "../../src/store/index.js";
import { TempStores, verifier, walletFor } from "./fixtures.js";
import { walletsOf } from "../helpers/stores.js";

let t: TempStores;
let store: SqliteBrokerStore;
beforeEach(() => {
  t = new TempStores();
  store = t.open();
});
afterEach(() => t.cleanup());

describe("repository(contract)", () => {
  it("returns a working WalletStore for WALLET_STORE, sharing the store's database", async () => {
    const broker: BrokerStore = store;
    const wallets: WalletStore | undefined = broker.repository(WALLET_STORE);
    expect(wallets).toBeDefined();
    if (wallets === undefined) return;
    expect(broker.repository(WALLET_STORE)).toBe(wallets);

    const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: [] });
    expect(await wallets.getWallet(alice.id)).toBeUndefined();
    expect(await wallets.updateWallet(alice.id, 0, walletFor(1))).toMatchObject({ kind: "accepted" });
    // The store's own (older) WalletStore methods see the same rows.
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(await wallets.getWallet(alice.id));
    expect((await walletsOf(store).updateWallet(alice.id, 0, walletFor(2))).kind).toBe("accepted");
    expect((await wallets.getWallet(alice.id))?.sequence).toBe(2);

    // One transaction with the identities: the password change bumps the epoch the store reports.
    expect(await wallets.changePasswordWithWallet(alice.id, 0, verifier(9), walletFor(3))).toMatchObject({
      kind: "changed",
      epoch: 1,
    });
    expect(await store.findIdentityById(alice.id)).toMatchObject({ epoch: 1, verifier: verifier(9) });
    expect(await wallets.updateWallet(alice.id, 0, walletFor(4))).toEqual({ kind: "revoked" });
  });

  it("returns undefined for a contract this store does not implement, even one named like a known one", () => {
    const BANK_STORE = storeContract<{ transfer(): Promise<void> }>("bank");
    expect(store.repository(BANK_STORE)).toBeUndefined();
    // Tokens are compared by identity: a second token named "wallet" is not WALLET_STORE.
    expect(store.repository(storeContract<WalletStore>("wallet"))).toBeUndefined();
    expect(WALLET_STORE.name).toBe("wallet");
    expect(Object.isFrozen(WALLET_STORE)).toBe(true);
  });

  it("hands out a repository that fails with STORAGE once the store is closed", async () => {
    const wallets = store.repository(WALLET_STORE);
    store.close();
    await expect(wallets?.getWallet(1)).rejects.toEqual(expect.objectContaining({ code: ErrorCode.STORAGE }));
  });
});
