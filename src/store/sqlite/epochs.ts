/**
 * `SqliteEpochs`: the epoch bump, shared by every repository that changes a credential.
 *
 * Invariants:
 * - A bump adds exactly 1 to the identity's epoch and deletes its OTPs and resume tokens, which
 *   the new epoch has made useless; asked to (a password change, a suspension, logging out
 *   everywhere), it deletes the identity's API keys too. It runs inside the caller's `write`, so
 *   the bump and its audit row commit with the change they record, or none of them does.
 * - Callers: `changeVerifier`, `setSuspended`, `setKeyring`, `bumpEpoch` (identities.ts),
 *   `revokePublicKey`, `revokeApiKey` (credentials.ts) and `changePasswordWithWallet`
 *   (wallet.ts). Nothing else changes an epoch; `decidePending` registering a device key does not
 *   bump. Checking an epoch is `SqliteDatabase.isCurrent`.
 *
 * Tests: test/store/identities.test.ts, credentials.test.ts, wallet.test.ts
 */
import type { AuditEntry } from "../broker-store.js";
import type { SqliteAuditRepository } from "./audit.js";
import type { SqliteDatabase } from "./database.js";
import { noIdentity } from "./rows.js";

function prepare(db: SqliteDatabase) {
  return {
    bump: db.prepare<[number], { epoch: number }>(
      "UPDATE identities SET epoch = epoch + 1 WHERE id = ? RETURNING epoch",
    ),
    deleteOtpsOf: db.prepare<[number]>("DELETE FROM otps WHERE identity_id = ?"),
    deleteResumeTokensOf: db.prepare<[number]>("DELETE FROM resume_tokens WHERE identity_id = ?"),
    // Their keyrings go with them (ON DELETE CASCADE).
    deleteApiKeysOf: db.prepare<[number]>("DELETE FROM api_keys WHERE identity_id = ?"),
  };
}

export class SqliteEpochs {
  readonly #s: ReturnType<typeof prepare>;
  readonly #audit: SqliteAuditRepository;

  constructor(db: SqliteDatabase, audit: SqliteAuditRepository) {
    this.#s = prepare(db);
    this.#audit = audit;
  }

  /**
   * Inside the caller's transaction: adds 1 to the epoch, drops the OTPs and resume tokens it
   * made stale, writes `audit`; returns the new epoch. NOT_FOUND if there is no such identity.
   */
  bump(identityId: number, audit: AuditEntry | undefined, options: { apiKeys?: boolean } = {}): number {
    const row = this.#s.bump.get(identityId);
    if (!row) throw noIdentity(identityId);
    this.#s.deleteOtpsOf.run(identityId);
    this.#s.deleteResumeTokensOf.run(identityId);
    if (options.apiKeys) this.#s.deleteApiKeysOf.run(identityId);
    if (audit) this.#audit.insert(audit);
    return row.epoch;
  }
}
