/**
 * `SqliteBrokerStore`: the embedded `BrokerStore`, one SQLite file opened with better-sqlite3.
 *
 * It opens the file (`sqlite/database.ts`: pragmas, migrations, the one transaction helper),
 * builds one repository per group of tables on that shared database and implements the contracts
 * by delegating to them:
 * - `sqlite/identities.ts`  identities and keyrings (names, verifiers, suspension)
 * - `sqlite/credentials.ts` public keys, API keys, OTPs, resume tokens, the server secret
 * - `sqlite/pending.ts`     pending sign-ups and device keys
 * - `sqlite/audit.ts`       the audit log and its group commit
 * - `sqlite/epochs.ts`      the epoch bump every credential change shares
 * - `sqlite/wallet.ts`      `WalletStore`, returned by `repository(WALLET_STORE)`
 * - `sqlite/bank.ts`        `BankStore`, returned by `repository(BANK_STORE)` (group-committed)
 * - `sqlite/go.ts`          `GoStore`, returned by `repository(GO_STORE)`
 * - `sqlite/chat.ts`        `ChatStore`, returned by `repository(CHAT_STORE)` (group-committed)
 * - `sqlite/router.ts`      `RouterStore`, returned by `repository(ROUTER_STORE)` (roles, metadata)
 * Each repository's header states the invariants it keeps; together they keep those of
 * `BrokerStore` and `WalletStore`. A repository method is synchronous and runs in one
 * transaction of the shared database (or as a savepoint of the caller's), so a change that spans
 * repositories (a password change with its wallet) commits as one; the async contract methods
 * here and in the wallet repository are thin wrappers.
 *
 * Service contracts are reached only through `repository(token)`; this class implements the
 * broker's contract alone.
 *
 * Adding a service's storage: its contract and token next to `wallet-store.ts`, its migration at
 * the end of `migrations.ts`, its repository in `sqlite/` (preparing its own statements, using
 * `write`/`read` and `isCurrent`/`assertCurrent` from the database), and one entry in
 * `#repositories` below.
 *
 * Tests: test/store/*.test.ts; the composition itself in test/store/repository.test.ts
 */
import type {
  Actor,
  ApiKeyInit,
  ApiKeyRecord,
  AuditEntry,
  AuditRecord,
  BrokerStore,
  Decision,
  IdentityRecord,
  KeyringPair,
  PendingRecord,
  PublicKeyRecord,
  PurgeCounts,
  ResumeRotation,
  ResumeTokenRecord,
  StoredVerifier,
  WriteContext,
} from "./broker-store.js";
import { BANK_STORE } from "./bank-store.js";
import { CHAT_STORE } from "./chat-store.js";
import { GO_STORE } from "./go-store.js";
import { ROUTER_STORE } from "./router-store.js";
import { SqliteAuditRepository } from "./sqlite/audit.js";
import { SqliteBankRepository } from "./sqlite/bank.js";
import { SqliteChatRepository } from "./sqlite/chat.js";
import { SqliteCredentialRepository } from "./sqlite/credentials.js";
import { SqliteDatabase, type SqliteStoreOptions, type StoreSettings } from "./sqlite/database.js";
import { SqliteEpochs } from "./sqlite/epochs.js";
import { SqliteGoRepository } from "./sqlite/go.js";
import { SqliteIdentityRepository } from "./sqlite/identities.js";
import { SqlitePendingRepository } from "./sqlite/pending.js";
import { SqliteRouterRepository } from "./sqlite/router.js";
import { SqliteWalletRepository } from "./sqlite/wallet.js";
import type { StoreContract } from "./store-contract.js";
import { WALLET_STORE } from "./wallet-store.js";

export { BUSY_TIMEOUT_MS, type SqliteStoreOptions, type StoreSettings } from "./sqlite/database.js";
export { MAX_WALLET_BYTES, MAX_WALLET_HMAC_BYTES } from "./sqlite/wallet.js";

export class SqliteBrokerStore implements BrokerStore {
  readonly #db: SqliteDatabase;
  readonly #audit: SqliteAuditRepository;
  readonly #identities: SqliteIdentityRepository;
  readonly #credentials: SqliteCredentialRepository;
  readonly #pending: SqlitePendingRepository;
  readonly #wallet: SqliteWalletRepository;
  readonly #bank: SqliteBankRepository;
  readonly #go: SqliteGoRepository;
  readonly #chat: SqliteChatRepository;
  readonly #router: SqliteRouterRepository;
  /** The service contracts this store implements, by token. */
  readonly #repositories: ReadonlyMap<StoreContract<unknown>, unknown>;

  private constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#audit = new SqliteAuditRepository(db);
    const epochs = new SqliteEpochs(db, this.#audit);
    this.#identities = new SqliteIdentityRepository(db, epochs, this.#audit);
    this.#credentials = new SqliteCredentialRepository(db, this.#identities, epochs, this.#audit);
    this.#pending = new SqlitePendingRepository(db, this.#identities, this.#credentials, this.#audit);
    this.#wallet = new SqliteWalletRepository(db, this.#identities, epochs);
    this.#bank = new SqliteBankRepository(db);
    this.#go = new SqliteGoRepository(db);
    this.#chat = new SqliteChatRepository(db);
    this.#router = new SqliteRouterRepository(db, this.#identities, epochs);
    // A plain password change must not leave a wallet encrypted under the old password.
    this.#identities.addVerifierGuard((id) => this.#wallet.assertNoWallet(id));
    this.#repositories = new Map<StoreContract<unknown>, unknown>([
      [WALLET_STORE, this.#wallet],
      [BANK_STORE, this.#bank],
      [GO_STORE, this.#go],
      [CHAT_STORE, this.#chat],
      [ROUTER_STORE, this.#router],
    ]);
  }

  /**
   * Opens (creating it and its directory if needed) and migrates the store at `file`;
   * `":memory:"` gives a private in-memory store. Fails with STORAGE if the file cannot be opened,
   * is not a store, or has a newer schema than this code.
   */
  static open(file: string, options: SqliteStoreOptions = {}): SqliteBrokerStore {
    return new SqliteBrokerStore(SqliteDatabase.open(file, options));
  }

  repository<T>(contract: StoreContract<T>): T | undefined {
    return this.#repositories.get(contract) as T | undefined;
  }

  /** The pragmas the file is open with, for health checks and tests. */
  inspect(): StoreSettings {
    return this.#db.inspect();
  }

  /** Runs SQLite's `integrity_check`; the problems it finds, or an empty array. */
  integrityCheck(): string[] {
    return this.#db.integrityCheck();
  }

  // identities

  async findIdentityByName(name: string): Promise<IdentityRecord | undefined> {
    return this.#identities.findIdentityByName(name);
  }

  async findIdentityById(id: number): Promise<IdentityRecord | undefined> {
    return this.#identities.findIdentityById(id);
  }

  async createIdentity(init: {
    name: string;
    verifier: StoredVerifier | null;
    keyring: readonly KeyringPair[];
    audit?: AuditEntry;
  }): Promise<IdentityRecord> {
    return this.#identities.createIdentity(init);
  }

  async listIdentities(): Promise<IdentityRecord[]> {
    return this.#identities.listIdentities();
  }

  async changeVerifier(identityId: number, verifier: StoredVerifier, ctx?: WriteContext): Promise<number> {
    return this.#identities.changeVerifier(identityId, verifier, ctx);
  }

  async setSuspended(identityId: number, suspended: boolean, ctx?: WriteContext): Promise<number> {
    return this.#identities.setSuspended(identityId, suspended, ctx);
  }

  async setKeyring(identityId: number, keyring: readonly KeyringPair[], ctx?: WriteContext): Promise<number> {
    return this.#identities.setKeyring(identityId, keyring, ctx);
  }

  async bumpEpoch(identityId: number, ctx?: WriteContext): Promise<number> {
    return this.#identities.bumpEpoch(identityId, ctx);
  }

  // public keys, API keys, OTPs, resume tokens

  async addPublicKey(
    identityId: number,
    publicKey: Uint8Array,
    device: string,
    ctx?: WriteContext,
  ): Promise<void> {
    this.#credentials.addPublicKey(identityId, publicKey, device, ctx);
  }

  async findPublicKey(publicKey: Uint8Array): Promise<PublicKeyRecord | undefined> {
    return this.#credentials.findPublicKey(publicKey);
  }

  async listPublicKeys(identityId: number): Promise<PublicKeyRecord[]> {
    return this.#credentials.listPublicKeys(identityId);
  }

  async revokePublicKey(
    identityId: number,
    publicKey: Uint8Array,
    ctx?: WriteContext,
  ): Promise<number | undefined> {
    return this.#credentials.revokePublicKey(identityId, publicKey, ctx);
  }

  /**
   * Inserts the key, then asks `secretHashFor` (synchronously, inside the transaction) for the
   * hash of the secret that names the new id; if it throws, nothing is written.
   */
  async createApiKey(
    init: ApiKeyInit,
    secretHashFor: (id: number) => Uint8Array,
    ctx?: WriteContext & { readonly max?: number },
  ): Promise<ApiKeyRecord> {
    return this.#credentials.createApiKey(init, secretHashFor, ctx);
  }

  async findApiKey(id: number): Promise<ApiKeyRecord | undefined> {
    return this.#credentials.findApiKey(id);
  }

  async listApiKeys(identityId: number): Promise<ApiKeyRecord[]> {
    return this.#credentials.listApiKeys(identityId);
  }

  async revokeApiKey(identityId: number, id: number, ctx?: WriteContext): Promise<number | undefined> {
    return this.#credentials.revokeApiKey(identityId, id, ctx);
  }

  async createOtp(
    init: { identityId: number; otpHash: Uint8Array; epoch: number; expiresAt: number },
    ctx?: { readonly actor?: Actor; readonly max?: number; readonly now?: number },
  ): Promise<void> {
    this.#credentials.createOtp(init, ctx);
  }

  async consumeOtp(identityId: number, otpHash: Uint8Array, now: number): Promise<boolean> {
    return this.#credentials.consumeOtp(identityId, otpHash, now);
  }

  async createResumeToken(
    init: ResumeTokenRecord,
    ctx?: { readonly actor?: Actor; readonly max?: number; readonly now?: number },
  ): Promise<void> {
    this.#credentials.createResumeToken(init, ctx);
  }

  async findResumeToken(tokenHash: Uint8Array, now: number): Promise<ResumeTokenRecord | undefined> {
    return this.#credentials.findResumeToken(tokenHash, now);
  }

  async rotateResumeToken(
    tokenHash: Uint8Array,
    nextHash: Uint8Array,
    now: number,
  ): Promise<ResumeRotation | undefined> {
    return this.#credentials.rotateResumeToken(tokenHash, nextHash, now);
  }

  async deleteResumeFamilies(identityId: number, families: readonly Uint8Array[]): Promise<number> {
    return this.#credentials.deleteResumeFamilies(identityId, families);
  }

  async serverSecret(): Promise<Uint8Array> {
    return this.#credentials.serverSecret();
  }

  // pending approvals

  async createPending(
    init: Omit<PendingRecord, "id" | "state" | "reason">,
    audit?: AuditEntry,
  ): Promise<PendingRecord> {
    return this.#pending.createPending(init, audit);
  }

  async findPending(id: number): Promise<PendingRecord | undefined> {
    return this.#pending.findPending(id);
  }

  async listPending(now: number, username?: string): Promise<PendingRecord[]> {
    return this.#pending.listPending(now, username);
  }

  async listDeviceRequests(identityId: number, now: number): Promise<PendingRecord[]> {
    return this.#pending.listDeviceRequests(identityId, now);
  }

  /** See `SqlitePendingRepository.decidePending`. */
  async decidePending(
    id: number,
    approve: boolean,
    reason: string,
    keyring: readonly KeyringPair[],
    ctx?: WriteContext,
  ): Promise<Decision> {
    return this.#pending.decidePending(id, approve, reason, keyring, ctx);
  }

  async purgeExpired(now: number): Promise<PurgeCounts> {
    return this.#db.write("purgeExpired", () => ({
      ...this.#credentials.purgeExpired(now),
      pending: this.#pending.purgeExpired(now),
    }));
  }

  // audit log

  /**
   * Audit rows written on their own (logins, failures) are group-committed: every row queued in
   * one event-loop turn goes into one transaction, so a burst of logins costs one fsync, not one
   * each. The promise settles once the row is durable.
   */
  async audit(entry: AuditEntry): Promise<void> {
    return this.#audit.audit(entry);
  }

  async listAudit(limit: number): Promise<AuditRecord[]> {
    return this.#audit.listAudit(limit);
  }

  externalChanges(): number {
    return this.#db.externalChanges();
  }

  /** Closes the file, after writing any queued audit rows; later calls fail with STORAGE. Closing twice is harmless. */
  close(): void {
    if (this.#db.open) {
      this.#bank.drain();
      this.#go.drain();
      this.#chat.drain();
    }
    if (this.#db.open) this.#audit.flush();
    this.#db.close();
  }
}
