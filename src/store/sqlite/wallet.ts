/**
 * `SqliteWalletRepository`: the `wallets` table; the store's `WalletStore` (`WALLET_STORE`).
 *
 * Invariants:
 * - A stored wallet's sequence only ever grows, by exactly 1 per write (the first is 1).
 * - No wallet write lands unless, inside its IMMEDIATE transaction, the identity still exists, is
 *   not suspended and is at the caller's epoch (`SqliteDatabase.isCurrent`): an update from a
 *   login older than a password change (or a suspension) can never land after it.
 * - Wallets live in the identities' database, so `changePasswordWithWallet` commits the new
 *   verifier, the re-encrypted wallet, the epoch bump (API keys, OTPs and tokens deleted) and its
 *   audit row together, or nothing; and a plain `changeVerifier` is refused inside its own
 *   transaction while a wallet is stored (`assertNoWallet`, installed as a verifier guard).
 * - Arguments are checked first (BAD_ARGUMENT whatever the identity's state), against backstop
 *   sizes larger than the wallet service's own limits. Wallets come back stamped with the store's
 *   clock at their write, as plain `Uint8Array` copies.
 *
 * The synchronous methods (`get`, `update`, `changePassword`) each run in one `write` or `read`,
 * so they can also run inside another repository's transaction; the `WalletStore` methods are
 * their async form. `updateWallet` answers only once its commit is on disk, the WAL's fsync run
 * off the event loop (`SqliteDatabase.committedThenSynced`).
 *
 * Tests: test/store/wallet.test.ts, crash.test.ts (SIGKILL), repository.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { AuditEntry, StoredVerifier } from "../broker-store.js";
import type {
  PasswordChangeResult,
  WalletInput,
  WalletRecord,
  WalletStore,
  WalletUpdateResult,
} from "../wallet-store.js";
import type { SqliteDatabase } from "./database.js";
import type { SqliteEpochs } from "./epochs.js";
import type { SqliteIdentityRepository } from "./identities.js";
import { assertVerifierShape, bytes } from "./rows.js";

/** Backstops on a stored wallet's size; the wallet service enforces its own, smaller limits. */
export const MAX_WALLET_BYTES = 16 * 1024 * 1024;
export const MAX_WALLET_HMAC_BYTES = 1024;

interface WalletRow {
  sequence: number;
  encrypted_wallet: Buffer;
  hmac: Buffer;
  updated_at: number;
}

function prepare(db: SqliteDatabase) {
  return {
    wallet: db.prepare<[number], WalletRow>(
      "SELECT sequence, encrypted_wallet, hmac, updated_at FROM wallets WHERE identity_id = ?",
    ),
    upsert: db.prepare<[number, number, Uint8Array, Uint8Array, number]>(
      `INSERT INTO wallets (identity_id, sequence, encrypted_wallet, hmac, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (identity_id) DO UPDATE SET sequence = excluded.sequence,
         encrypted_wallet = excluded.encrypted_wallet, hmac = excluded.hmac, updated_at = excluded.updated_at`,
    ),
  };
}

export class SqliteWalletRepository implements WalletStore {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #identities: SqliteIdentityRepository;
  readonly #epochs: SqliteEpochs;

  constructor(db: SqliteDatabase, identities: SqliteIdentityRepository, epochs: SqliteEpochs) {
    this.#db = db;
    this.#s = prepare(db);
    this.#identities = identities;
    this.#epochs = epochs;
  }

  // WalletStore

  async getWallet(identityId: number): Promise<WalletRecord | undefined> {
    return this.get(identityId);
  }

  async updateWallet(identityId: number, epoch: number, wallet: WalletInput): Promise<WalletUpdateResult> {
    // Answered once durable, the WAL's fsync run off the event loop (see SqliteDatabase).
    const { value, durable } = this.#db.committedThenSynced(() => this.update(identityId, epoch, wallet));
    await durable;
    return value;
  }

  async changePasswordWithWallet(
    identityId: number,
    epoch: number,
    verifier: StoredVerifier,
    wallet: WalletInput | null,
    audit?: AuditEntry,
  ): Promise<PasswordChangeResult> {
    return this.changePassword(identityId, epoch, verifier, wallet, audit);
  }

  // the same, synchronous

  get(identityId: number): WalletRecord | undefined {
    return this.#db.read("getWallet", () => this.#stored(identityId));
  }

  /**
   * In one IMMEDIATE transaction: `revoked` (nothing written) unless the identity exists, is not
   * suspended and is still at `epoch`; else stores `wallet` iff its sequence is the stored one + 1
   * (1 if none), else `conflict` with what is stored. BAD_ARGUMENT for a sequence that is not a
   * positive safe integer or bytes over the backstop sizes.
   */
  update(identityId: number, epoch: number, wallet: WalletInput): WalletUpdateResult {
    return this.#db.write("updateWallet", () => {
      checkWallet("updateWallet", wallet);
      if (!this.#db.isCurrent(identityId, epoch)) return { kind: "revoked" };
      const stored = this.#stored(identityId);
      if (wallet.sequence !== (stored?.sequence ?? 0) + 1)
        return { kind: "conflict", latest: stored ?? null };
      return { kind: "accepted", wallet: this.#put(identityId, wallet) };
    });
  }

  /**
   * `changeVerifier` and `update` in one IMMEDIATE transaction: `revoked` unless the identity is
   * current at `epoch` (as in `update`); `wallet-mismatch` unless `wallet` is null exactly when
   * none is stored; `conflict` unless its sequence is the stored one + 1. Else replaces the
   * verifier, stores the wallet, bumps the epoch (deleting OTPs and resume tokens) and writes
   * `audit`, all or nothing.
   */
  changePassword(
    identityId: number,
    epoch: number,
    verifier: StoredVerifier,
    wallet: WalletInput | null,
    audit?: AuditEntry,
  ): PasswordChangeResult {
    return this.#db.write("changePasswordWithWallet", () => {
      // Arguments first, so a bad one is BAD_ARGUMENT whatever the identity's state.
      assertVerifierShape(verifier);
      if (wallet !== null) checkWallet("changePasswordWithWallet", wallet);
      if (!this.#db.isCurrent(identityId, epoch)) return { kind: "revoked" };
      const stored = this.#stored(identityId);
      if (wallet === null || stored === undefined) {
        if ((wallet === null) !== (stored === undefined)) {
          return { kind: "wallet-mismatch", latest: stored ?? null };
        }
      } else if (wallet.sequence !== stored.sequence + 1) {
        return { kind: "conflict", latest: stored };
      }
      this.#identities.setVerifier(identityId, verifier);
      const record = wallet === null ? null : this.#put(identityId, wallet);
      // Last, so that a failing audit insert (or anything before it) rolls all of it back.
      const newEpoch = this.#epochs.bump(identityId, audit, { apiKeys: true });
      return { kind: "changed", epoch: newEpoch, wallet: record };
    });
  }

  /**
   * Inside a verifier change's transaction: PERMISSION_DENIED if the identity holds a wallet,
   * which a plain password change would leave encrypted under the old password.
   */
  assertNoWallet(identityId: number): void {
    if (this.#stored(identityId) !== undefined) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "this account holds a wallet encrypted under the current password: change the password with " +
          "WalletPerspective.changePassword, which re-encrypts the wallet in the same transaction",
      );
    }
  }

  #stored(identityId: number): WalletRecord | undefined {
    const row = this.#s.wallet.get(identityId);
    return (
      row && {
        sequence: row.sequence,
        encryptedWallet: bytes(row.encrypted_wallet),
        hmac: bytes(row.hmac),
        updatedAt: row.updated_at,
      }
    );
  }

  /** Stores `wallet` (already checked) stamped with the clock and returns it as read back. */
  #put(identityId: number, wallet: WalletInput): WalletRecord {
    this.#s.upsert.run(identityId, wallet.sequence, wallet.encryptedWallet, wallet.hmac, this.#db.now());
    return this.#stored(identityId) as WalletRecord;
  }
}

function checkWallet(op: string, w: WalletInput): void {
  if (typeof w !== "object" || w === null) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${op}: a wallet is missing`);
  }
  if (!Number.isSafeInteger(w.sequence) || w.sequence < 1) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${op}: a wallet sequence must be a whole number >= 1, not ${w.sequence}`,
    );
  }
  if (!(w.encryptedWallet instanceof Uint8Array) || !(w.hmac instanceof Uint8Array)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${op}: a wallet and its hmac must be byte strings`);
  }
  if (w.encryptedWallet.length > MAX_WALLET_BYTES || w.hmac.length > MAX_WALLET_HMAC_BYTES) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${op}: a wallet may have at most ${MAX_WALLET_BYTES} bytes and its hmac ${MAX_WALLET_HMAC_BYTES}`,
    );
  }
}
