/**
 * The wallet-sync service's store contract (seed 000) and its records. A service asks for it with
 * `store.repository(WALLET_STORE)`; `SqliteBrokerStore` answers with its wallet repository
 * (`sqlite/wallet.ts`), which shares the identities' database so that a password change and its
 * re-encrypted wallet commit in one transaction.
 *
 * Tests: test/store/wallet.test.ts, test/store/repository.test.ts
 */
import type { AuditEntry, StoredVerifier } from "./broker-store.js";
import { type StoreContract, storeContract } from "./store-contract.js";

/** One account's wallet as the server holds it: opaque bytes the client encrypted. */
export interface WalletRecord {
  readonly sequence: number;
  readonly encryptedWallet: Uint8Array;
  readonly hmac: Uint8Array;
  readonly updatedAt: number;
}

export interface WalletInput {
  readonly sequence: number;
  readonly encryptedWallet: Uint8Array;
  readonly hmac: Uint8Array;
}

export type WalletUpdateResult =
  | { readonly kind: "accepted"; readonly wallet: WalletRecord }
  /** The sequence was not stored + 1; `latest` is what is stored (null: none yet). */
  | { readonly kind: "conflict"; readonly latest: WalletRecord | null }
  /** The identity's epoch is no longer the caller's (or it is suspended or gone): nothing stored. */
  | { readonly kind: "revoked" };

export type PasswordChangeResult =
  | { readonly kind: "changed"; readonly epoch: number; readonly wallet: WalletRecord | null }
  | { readonly kind: "conflict"; readonly latest: WalletRecord | null }
  /** A wallet was sent but none is stored, or none was sent but one is stored. */
  | { readonly kind: "wallet-mismatch"; readonly latest: WalletRecord | null }
  | { readonly kind: "revoked" };

/**
 * The wallet-sync service's storage (seed 000). Kept in the same database as the identities so
 * that a password change and its re-encrypted wallet commit in one transaction.
 *
 * Invariants: a stored wallet's sequence only ever grows by exactly 1; no write lands unless the
 * identity's epoch is still the caller's inside the same transaction (so an update racing a
 * password change from an old login can never land after it).
 */
export interface WalletStore {
  getWallet(identityId: number): Promise<WalletRecord | undefined>;
  /** Stores `wallet` iff the caller's `epoch` is current and `wallet.sequence` = stored + 1 (1 if none). */
  updateWallet(identityId: number, epoch: number, wallet: WalletInput): Promise<WalletUpdateResult>;
  /**
   * In one transaction: checks the epoch, checks the wallet rule (`wallet` null exactly when none
   * is stored, else sequence = stored + 1), stores the verifier and the wallet, bumps the epoch,
   * deletes the identity's resume tokens and OTPs, and writes `audit`.
   */
  changePasswordWithWallet(
    identityId: number,
    epoch: number,
    verifier: StoredVerifier,
    wallet: WalletInput | null,
    audit?: AuditEntry,
  ): Promise<PasswordChangeResult>;
}

/** The token a service passes to `BrokerStore.repository` to get the store's `WalletStore`. */
export const WALLET_STORE: StoreContract<WalletStore> = storeContract<WalletStore>("wallet");
