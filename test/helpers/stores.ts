/** Store helpers for tests. */
import { type BrokerStore, WALLET_STORE, type WalletStore } from "../../src/store/index.js";

/** The store's wallet repository (the test fails if the store has none). */
export function walletsOf(store: BrokerStore): WalletStore {
  const wallets = store.repository(WALLET_STORE);
  if (wallets === undefined) throw new Error("this store has no wallet repository");
  return wallets;
}
