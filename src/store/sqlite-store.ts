/**
 * `SqliteBrokerStore`: the embedded `BrokerStore`, one SQLite file opened with better-sqlite3.
 *
 * How the file is opened, and why:
 * - `journal_mode = WAL`: readers never block the writer and the writer never blocks readers, so
 *   the broker and the CLI can share the file; a commit is one append to the WAL.
 * - `synchronous = FULL` (the default; `NORMAL` on request): every commit is fsynced before it
 *   returns, so a crash of the process or of the machine never loses a commit the broker has
 *   already acknowledged (a revoked key stays revoked, an approved sign-up stays approved).
 *   `NORMAL` keeps the file consistent too but may lose the last commits on power loss.
 * - `foreign_keys = ON` (credentials, tokens and keyrings go with their identity) and
 *   `busy_timeout = 5000` (a second process waits for the write lock instead of failing).
 * - The schema comes from `migrations.ts`: `PRAGMA user_version` says how far the file is, each
 *   migration commits on its own, and a file newer than this code is refused.
 *
 * Invariants this file keeps (beyond those of `BrokerStore`):
 * - Every method that writes runs in one IMMEDIATE transaction: it takes the write lock before
 *   reading, so a read-check-write (a name still free, an OTP not yet used, a request still
 *   pending) cannot interleave with another process's. The optional `audit` row commits in the
 *   same transaction as the change it records.
 * - An epoch bump (`changeVerifier`, `setSuspended`, `setKeyring`, `bumpEpoch`, `revokePublicKey`,
 *   `revokeApiKey`) adds exactly 1 and deletes the identity's OTPs and resume tokens, which the new
 *   epoch has made useless. `decidePending` registering a device key does not bump.
 * - An OTP or resume token counts only while unexpired at the caller's `now`, of the identity's
 *   current epoch, and while the identity is not suspended. `consumeOtp` deletes the OTP it finds
 *   (used or stale alike), so it succeeds at most once across all processes.
 * - A name is taken while an identity has it or an unexpired sign-up for it is pending.
 * - An API key's keyring is a subset of its owner's keyring when it is created (BAD_ARGUMENT
 *   otherwise); later changes to the owner's keyring do not rewrite it, so whoever logs in with the
 *   key intersects it with the owner's current keyring. Its secret hash is computed by the caller's
 *   `secretHashFor(id)` inside the insert's transaction (errors thrown there pass through unwrapped).
 * - Keyrings come back sorted by service, then perspective; byte strings come back as plain
 *   `Uint8Array` copies.
 * - Wallets (`WalletStore`) live in the same file, so `changePasswordWithWallet` commits the new
 *   verifier, the re-encrypted wallet, the epoch bump and its audit row together. A wallet write
 *   re-reads the identity's epoch and suspension inside its IMMEDIATE transaction, so an update
 *   from a login older than a password change (or a suspension) can never land after it.
 * - Errors are `ParallaxError`s naming the operation: NOT_FOUND, ALREADY_EXISTS, BAD_ARGUMENT, or
 *   STORAGE with the SQLite result code; no SQL text reaches the message.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { ErrorCode, ParallaxError } from "../errors.js";
import type {
  ApiKeyRecord,
  AuditEntry,
  AuditKind,
  AuditRecord,
  BrokerStore,
  Decision,
  IdentityRecord,
  KeyringPair,
  PasswordChangeResult,
  PendingKind,
  PendingRecord,
  PublicKeyRecord,
  ResumeTokenRecord,
  StoredVerifier,
  WalletInput,
  WalletRecord,
  WalletStore,
  WalletUpdateResult,
} from "./broker-store.js";
import { migrate } from "./migrations.js";

/** How long a connection waits for another process's write lock before failing with STORAGE. */
export const BUSY_TIMEOUT_MS = 5000;
/** Ed25519 public keys are this long. */
const PUBLIC_KEY_BYTES = 32;
/** Backstops on a stored wallet's size; the wallet service enforces its own, smaller limits. */
export const MAX_WALLET_BYTES = 16 * 1024 * 1024;
export const MAX_WALLET_HMAC_BYTES = 1024;

export interface SqliteStoreOptions {
  /** `FULL` (default): an acknowledged commit survives power loss. `NORMAL`: it may not. */
  readonly synchronous?: "FULL" | "NORMAL";
  /**
   * The clock (ms since the epoch) for times the interface does not pass in: creation times,
   * audit rows without `at`, and the expiry checks of `createIdentity`, `createPending` and
   * `decidePending`. Defaults to `Date.now`.
   */
  readonly now?: () => number;
}

/** What `inspect()` reports about the open file. */
export interface StoreSettings {
  readonly schemaVersion: number;
  readonly journalMode: string;
  readonly synchronous: "OFF" | "NORMAL" | "FULL" | "EXTRA";
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
}

interface VerifierRow {
  salt: Buffer | null;
  stored_key: Buffer | null;
  server_key: Buffer | null;
  kdf_algorithm: string | null;
  kdf_memory_kib: number | null;
  kdf_iterations: number | null;
  kdf_parallelism: number | null;
}

interface IdentityRow extends VerifierRow {
  id: number;
  name: string;
  epoch: number;
  suspended: number;
  created_at: number;
}

interface PairRow {
  owner: number;
  service: string;
  perspective: string;
}

interface PublicKeyRow {
  public_key: Buffer;
  identity_id: number;
  device: string;
  added_at: number;
}

interface ApiKeyRow {
  id: number;
  identity_id: number;
  description: string;
  secret_hash: Buffer;
  created_at: number;
  expires_at: number;
}

interface ResumeTokenRow {
  token_hash: Buffer;
  identity_id: number;
  epoch: number;
  device: string;
  keyring: string | null;
  expires_at: number;
  current_epoch: number;
  suspended: number;
}

interface PendingRow extends VerifierRow {
  id: number;
  kind: PendingKind;
  username: string;
  public_key: Buffer | null;
  device: string;
  remote_address: string;
  created_at: number;
  expires_at: number;
  state: PendingRecord["state"];
  reason: string;
}

interface WalletRow {
  sequence: number;
  encrypted_wallet: Buffer;
  hmac: Buffer;
  updated_at: number;
}

interface AuditRow {
  id: number;
  at: number;
  kind: AuditKind;
  identity_id: number | null;
  username: string;
  remote_address: string;
  detail: string;
}

/** The verifier as named parameters for the shared verifier columns. */
interface VerifierParams {
  salt: Uint8Array | null;
  stored_key: Uint8Array | null;
  server_key: Uint8Array | null;
  kdf_algorithm: string | null;
  kdf_memory_kib: number | null;
  kdf_iterations: number | null;
  kdf_parallelism: number | null;
}

const VERIFIER_INSERT_COLUMNS =
  "salt, stored_key, server_key, kdf_algorithm, kdf_memory_kib, kdf_iterations, kdf_parallelism";
const VERIFIER_INSERT_VALUES =
  "@salt, @stored_key, @server_key, @kdf_algorithm, @kdf_memory_kib, @kdf_iterations, @kdf_parallelism";

function prepareAll(db: Database.Database) {
  const q = <P extends unknown[] | object, R = never>(sql: string) => db.prepare<P, R>(sql);
  return {
    identityById: q<[number], IdentityRow>("SELECT * FROM identities WHERE id = ?"),
    identityByName: q<[string], IdentityRow>("SELECT * FROM identities WHERE name = ?"),
    allIdentities: q<[], IdentityRow>("SELECT * FROM identities ORDER BY id"),
    insertIdentity: q<VerifierParams & { name: string; created_at: number }>(
      `INSERT INTO identities (name, ${VERIFIER_INSERT_COLUMNS}, created_at)
       VALUES (@name, ${VERIFIER_INSERT_VALUES}, @created_at)`,
    ),
    setVerifier: q<VerifierParams & { id: number }>(
      `UPDATE identities SET salt = @salt, stored_key = @stored_key, server_key = @server_key,
         kdf_algorithm = @kdf_algorithm, kdf_memory_kib = @kdf_memory_kib,
         kdf_iterations = @kdf_iterations, kdf_parallelism = @kdf_parallelism
       WHERE id = @id`,
    ),
    setSuspended: q<[number, number]>("UPDATE identities SET suspended = ? WHERE id = ?"),
    bumpEpoch: q<[number], { epoch: number }>(
      "UPDATE identities SET epoch = epoch + 1 WHERE id = ? RETURNING epoch",
    ),
    deleteOtpsOf: q<[number]>("DELETE FROM otps WHERE identity_id = ?"),
    deleteResumeTokensOf: q<[number]>("DELETE FROM resume_tokens WHERE identity_id = ?"),

    keyringOf: q<[number], PairRow>(
      "SELECT identity_id AS owner, service, perspective FROM keyrings WHERE identity_id = ? ORDER BY service, perspective",
    ),
    allKeyrings: q<[], PairRow>(
      "SELECT identity_id AS owner, service, perspective FROM keyrings ORDER BY identity_id, service, perspective",
    ),
    insertKeyringPair: q<[number, string, string]>(
      "INSERT OR IGNORE INTO keyrings (identity_id, service, perspective) VALUES (?, ?, ?)",
    ),
    deleteKeyringOf: q<[number]>("DELETE FROM keyrings WHERE identity_id = ?"),

    openSignUp: q<[string, number], { id: number }>(
      "SELECT id FROM pending WHERE kind = 'signUp' AND username = ? AND state = 'pending' AND expires_at > ? LIMIT 1",
    ),

    insertPublicKey: q<[Uint8Array, number, string, number]>(
      "INSERT INTO public_keys (public_key, identity_id, device, added_at) VALUES (?, ?, ?, ?)",
    ),
    publicKey: q<[Uint8Array], PublicKeyRow>("SELECT * FROM public_keys WHERE public_key = ?"),
    publicKeysOf: q<[number], PublicKeyRow>("SELECT * FROM public_keys WHERE identity_id = ? ORDER BY rowid"),
    deletePublicKey: q<[Uint8Array, number]>(
      "DELETE FROM public_keys WHERE public_key = ? AND identity_id = ?",
    ),

    // The hash names the new id, so it is set by a second statement in the same transaction.
    insertApiKey: q<[number, string, number, number]>(
      "INSERT INTO api_keys (identity_id, description, secret_hash, created_at, expires_at) VALUES (?, ?, X'', ?, ?)",
    ),
    setApiKeySecret: q<[Uint8Array, number]>("UPDATE api_keys SET secret_hash = ? WHERE id = ?"),
    insertApiKeyPair: q<[number, string, string]>(
      "INSERT OR IGNORE INTO api_key_keyrings (api_key_id, service, perspective) VALUES (?, ?, ?)",
    ),
    apiKey: q<[number], ApiKeyRow>("SELECT * FROM api_keys WHERE id = ?"),
    apiKeysOf: q<[number], ApiKeyRow>("SELECT * FROM api_keys WHERE identity_id = ? ORDER BY id"),
    apiKeyPairs: q<[number], PairRow>(
      "SELECT api_key_id AS owner, service, perspective FROM api_key_keyrings WHERE api_key_id = ? ORDER BY service, perspective",
    ),
    apiKeyPairsOfOwner: q<[number], PairRow>(
      `SELECT k.api_key_id AS owner, k.service, k.perspective
       FROM api_key_keyrings k JOIN api_keys a ON a.id = k.api_key_id
       WHERE a.identity_id = ? ORDER BY k.api_key_id, k.service, k.perspective`,
    ),
    deleteApiKey: q<[number, number]>("DELETE FROM api_keys WHERE id = ? AND identity_id = ?"),

    insertOtp: q<[Uint8Array, number, number, number]>(
      "INSERT INTO otps (otp_hash, identity_id, epoch, expires_at) VALUES (?, ?, ?, ?)",
    ),
    takeOtp: q<[Uint8Array, number], { epoch: number; expires_at: number }>(
      "DELETE FROM otps WHERE otp_hash = ? AND identity_id = ? RETURNING epoch, expires_at",
    ),

    insertResumeToken: q<[Uint8Array, number, number, string, string | null, number]>(
      `INSERT INTO resume_tokens (token_hash, identity_id, epoch, device, keyring, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    resumeToken: q<[Uint8Array], ResumeTokenRow>(
      `SELECT t.*, i.epoch AS current_epoch, i.suspended AS suspended
       FROM resume_tokens t JOIN identities i ON i.id = t.identity_id
       WHERE t.token_hash = ?`,
    ),

    insertPending: q<
      VerifierParams & {
        kind: string;
        username: string;
        public_key: Uint8Array | null;
        device: string;
        remote_address: string;
        created_at: number;
        expires_at: number;
      }
    >(
      `INSERT INTO pending (kind, username, ${VERIFIER_INSERT_COLUMNS}, public_key, device, remote_address,
         created_at, expires_at)
       VALUES (@kind, @username, ${VERIFIER_INSERT_VALUES}, @public_key, @device, @remote_address,
         @created_at, @expires_at)`,
    ),
    pending: q<[number], PendingRow>("SELECT * FROM pending WHERE id = ?"),
    openPending: q<[number], PendingRow>(
      "SELECT * FROM pending WHERE state = 'pending' AND expires_at > ? ORDER BY id",
    ),
    openPendingOf: q<[number, string], PendingRow>(
      "SELECT * FROM pending WHERE state = 'pending' AND expires_at > ? AND username = ? ORDER BY id",
    ),
    decidePending: q<[string, string, number]>(
      "UPDATE pending SET state = ?, reason = ? WHERE id = ? AND state = 'pending'",
    ),

    wallet: q<[number], WalletRow>(
      "SELECT sequence, encrypted_wallet, hmac, updated_at FROM wallets WHERE identity_id = ?",
    ),
    upsertWallet: q<[number, number, Uint8Array, Uint8Array, number]>(
      `INSERT INTO wallets (identity_id, sequence, encrypted_wallet, hmac, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (identity_id) DO UPDATE SET sequence = excluded.sequence,
         encrypted_wallet = excluded.encrypted_wallet, hmac = excluded.hmac, updated_at = excluded.updated_at`,
    ),

    insertAudit: q<[number, string, number | null, string, string, string]>(
      "INSERT INTO audit (at, kind, identity_id, username, remote_address, detail) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    newestAudit: q<[number], AuditRow>("SELECT * FROM audit ORDER BY id DESC LIMIT ?"),

    serverSecret: q<[], { secret: Buffer }>("SELECT secret FROM server_secret WHERE id = 1"),
    insertServerSecret: q<[Uint8Array]>("INSERT INTO server_secret (id, secret) VALUES (1, ?)"),
  };
}

type Statements = ReturnType<typeof prepareAll>;

export class SqliteBrokerStore implements BrokerStore, WalletStore {
  readonly #db: Database.Database;
  readonly #s: Statements;
  readonly #now: () => number;
  /** Runs its argument as the body of one transaction; call with `.immediate(fn)`. */
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;
  #secret: Uint8Array | undefined;

  private constructor(db: Database.Database, now: () => number) {
    this.#db = db;
    this.#s = prepareAll(db);
    this.#now = now;
    this.#tx = db.transaction((fn: () => unknown) => fn());
  }

  /**
   * Opens (creating it and its directory if needed) and migrates the store at `file`;
   * `":memory:"` gives a private in-memory store. Fails with STORAGE if the file cannot be opened,
   * is not a store, or has a newer schema than this code.
   */
  static open(file: string, options: SqliteStoreOptions = {}): SqliteBrokerStore {
    const synchronous = options.synchronous ?? "FULL";
    if (synchronous !== "FULL" && synchronous !== "NORMAL") {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `store synchronous must be FULL or NORMAL, not ${synchronous}`,
      );
    }
    const memory = file === ":memory:" || file === "";
    let db: Database.Database | undefined;
    try {
      if (!memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (!memory && mode !== "wal") {
        throw new ParallaxError(
          ErrorCode.STORAGE,
          `cannot open the store at ${file}: WAL mode refused (${mode})`,
        );
      }
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma("foreign_keys = ON");
      migrate(db);
      return new SqliteBrokerStore(db, options.now ?? Date.now);
    } catch (err) {
      db?.close();
      if (err instanceof ParallaxError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new ParallaxError(ErrorCode.STORAGE, `cannot open the store at ${file}: ${detail}`, {
        cause: err,
      });
    }
  }

  /** The pragmas the file is open with, for health checks and tests. */
  inspect(): StoreSettings {
    return this.#read("inspect", () => {
      const levels = ["OFF", "NORMAL", "FULL", "EXTRA"] as const;
      return {
        schemaVersion: this.#db.pragma("user_version", { simple: true }) as number,
        journalMode: this.#db.pragma("journal_mode", { simple: true }) as string,
        synchronous: levels[this.#db.pragma("synchronous", { simple: true }) as number] ?? "FULL",
        foreignKeys: this.#db.pragma("foreign_keys", { simple: true }) === 1,
        busyTimeoutMs: this.#db.pragma("busy_timeout", { simple: true }) as number,
      };
    });
  }

  /** Runs SQLite's `integrity_check`; the problems it finds, or an empty array. */
  integrityCheck(): string[] {
    return this.#read("integrityCheck", () => {
      const rows = this.#db.pragma("integrity_check") as { integrity_check: string }[];
      return rows.map((r) => r.integrity_check).filter((r) => r !== "ok");
    });
  }

  // identities

  async findIdentityByName(name: string): Promise<IdentityRecord | undefined> {
    return this.#read("findIdentityByName", () => {
      const row = this.#s.identityByName.get(name);
      return row && this.#identity(row);
    });
  }

  async findIdentityById(id: number): Promise<IdentityRecord | undefined> {
    return this.#read("findIdentityById", () => {
      const row = this.#s.identityById.get(id);
      return row && this.#identity(row);
    });
  }

  async createIdentity(init: {
    name: string;
    verifier: StoredVerifier | null;
    keyring: readonly KeyringPair[];
    audit?: AuditEntry;
  }): Promise<IdentityRecord> {
    return this.#write("createIdentity", () => {
      this.#requireFreeName(init.name);
      const identity = this.#insertIdentity(init.name, init.verifier, init.keyring);
      if (init.audit) this.#audit(init.audit);
      return identity;
    });
  }

  async listIdentities(): Promise<IdentityRecord[]> {
    return this.#read("listIdentities", () => {
      const keyrings = groupPairs(this.#s.allKeyrings.all());
      return this.#s.allIdentities.all().map((row) => toIdentity(row, keyrings.get(row.id) ?? []));
    });
  }

  async changeVerifier(identityId: number, verifier: StoredVerifier, audit?: AuditEntry): Promise<number> {
    return this.#write("changeVerifier", () => {
      this.#setVerifier(identityId, verifier);
      return this.#bump(identityId, audit);
    });
  }

  async setSuspended(identityId: number, suspended: boolean, audit?: AuditEntry): Promise<number> {
    return this.#write("setSuspended", () => {
      if (this.#s.setSuspended.run(suspended ? 1 : 0, identityId).changes === 0) throw noIdentity(identityId);
      return this.#bump(identityId, audit);
    });
  }

  async setKeyring(identityId: number, keyring: readonly KeyringPair[], audit?: AuditEntry): Promise<number> {
    return this.#write("setKeyring", () => {
      this.#requireIdentity(identityId);
      this.#s.deleteKeyringOf.run(identityId);
      for (const p of checkKeyring(keyring))
        this.#s.insertKeyringPair.run(identityId, p.service, p.perspective);
      return this.#bump(identityId, audit);
    });
  }

  async bumpEpoch(identityId: number, audit?: AuditEntry): Promise<number> {
    return this.#write("bumpEpoch", () => this.#bump(identityId, audit));
  }

  // public keys

  async addPublicKey(
    identityId: number,
    publicKey: Uint8Array,
    device: string,
    audit?: AuditEntry,
  ): Promise<void> {
    this.#write("addPublicKey", () => {
      this.#requireIdentity(identityId);
      this.#insertPublicKey(identityId, publicKey, device);
      if (audit) this.#audit(audit);
    });
  }

  async findPublicKey(publicKey: Uint8Array): Promise<PublicKeyRecord | undefined> {
    return this.#read("findPublicKey", () => {
      const row = this.#s.publicKey.get(publicKey);
      return row && toPublicKey(row);
    });
  }

  async listPublicKeys(identityId: number): Promise<PublicKeyRecord[]> {
    return this.#read("listPublicKeys", () => this.#s.publicKeysOf.all(identityId).map(toPublicKey));
  }

  async revokePublicKey(
    identityId: number,
    publicKey: Uint8Array,
    audit?: AuditEntry,
  ): Promise<number | undefined> {
    return this.#write("revokePublicKey", () => {
      if (this.#s.deletePublicKey.run(publicKey, identityId).changes === 0) return undefined;
      return this.#bump(identityId, audit);
    });
  }

  // API keys

  /**
   * Inserts the key, then asks `secretHashFor` (synchronously, inside the transaction) for the
   * hash of the secret that names the new id; if it throws, nothing is written.
   */
  async createApiKey(
    init: Omit<ApiKeyRecord, "id" | "secretHash">,
    secretHashFor: (id: number) => Uint8Array,
    audit?: AuditEntry,
  ): Promise<ApiKeyRecord> {
    return this.#write("createApiKey", () => {
      this.#requireIdentity(init.identityId);
      const keyring = checkKeyring(init.keyring);
      const owned = new Set(this.#s.keyringOf.all(init.identityId).map(pairKey));
      const extra = keyring.find((p) => !owned.has(pairKey(p)));
      if (extra) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          `createApiKey: ${extra.service}/${extra.perspective} is not on identity ${init.identityId}'s keyring`,
        );
      }
      const id = Number(
        this.#s.insertApiKey.run(init.identityId, init.description, init.createdAt, init.expiresAt)
          .lastInsertRowid,
      );
      let secretHash: Uint8Array;
      try {
        secretHash = secretHashFor(id);
      } catch (err) {
        throw new CallerError(err);
      }
      if (!(secretHash instanceof Uint8Array) || secretHash.length === 0) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          "createApiKey: secretHashFor must return a non-empty hash",
        );
      }
      this.#s.setApiKeySecret.run(secretHash, id);
      for (const p of keyring) this.#s.insertApiKeyPair.run(id, p.service, p.perspective);
      if (audit) this.#audit(audit);
      return this.#apiKey(id) as ApiKeyRecord;
    });
  }

  async findApiKey(id: number): Promise<ApiKeyRecord | undefined> {
    return this.#read("findApiKey", () => this.#apiKey(id));
  }

  async listApiKeys(identityId: number): Promise<ApiKeyRecord[]> {
    return this.#read("listApiKeys", () => {
      const keyrings = groupPairs(this.#s.apiKeyPairsOfOwner.all(identityId));
      return this.#s.apiKeysOf.all(identityId).map((row) => toApiKey(row, keyrings.get(row.id) ?? []));
    });
  }

  async revokeApiKey(identityId: number, id: number, audit?: AuditEntry): Promise<number | undefined> {
    return this.#write("revokeApiKey", () => {
      if (this.#s.deleteApiKey.run(id, identityId).changes === 0) return undefined;
      return this.#bump(identityId, audit);
    });
  }

  // one-time passwords

  async createOtp(init: {
    identityId: number;
    otpHash: Uint8Array;
    epoch: number;
    expiresAt: number;
  }): Promise<void> {
    this.#write("createOtp", () => {
      this.#requireIdentity(init.identityId);
      this.#s.insertOtp.run(init.otpHash, init.identityId, init.epoch, init.expiresAt);
    });
  }

  async consumeOtp(identityId: number, otpHash: Uint8Array, now: number): Promise<boolean> {
    return this.#write("consumeOtp", () => {
      const otp = this.#s.takeOtp.get(otpHash, identityId);
      if (!otp) return false;
      const identity = this.#s.identityById.get(identityId);
      return (
        identity !== undefined &&
        identity.suspended === 0 &&
        otp.epoch === identity.epoch &&
        now < otp.expires_at
      );
    });
  }

  // resume tokens

  async createResumeToken(init: ResumeTokenRecord): Promise<void> {
    this.#write("createResumeToken", () => {
      this.#requireIdentity(init.identityId);
      const keyring = init.keyring === null ? null : JSON.stringify(checkKeyring(init.keyring));
      this.#s.insertResumeToken.run(
        init.tokenHash,
        init.identityId,
        init.epoch,
        init.device,
        keyring,
        init.expiresAt,
      );
    });
  }

  async findResumeToken(tokenHash: Uint8Array, now: number): Promise<ResumeTokenRecord | undefined> {
    return this.#read("findResumeToken", () => {
      const row = this.#s.resumeToken.get(tokenHash);
      if (row === undefined) return undefined;
      if (row.suspended !== 0 || row.epoch !== row.current_epoch || !(now < row.expires_at)) return undefined;
      return {
        identityId: row.identity_id,
        tokenHash: bytes(row.token_hash),
        epoch: row.epoch,
        device: row.device,
        keyring: row.keyring === null ? null : parseKeyring(row.keyring),
        expiresAt: row.expires_at,
      };
    });
  }

  // pending approvals

  async createPending(
    init: Omit<PendingRecord, "id" | "state" | "reason">,
    audit?: AuditEntry,
  ): Promise<PendingRecord> {
    return this.#write("createPending", () => {
      if (init.kind !== "signUp" && init.kind !== "deviceKey") {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `createPending: unknown kind ${String(init.kind)}`);
      }
      if (init.kind === "deviceKey" && init.publicKey === null) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          "createPending: a device-key request needs a public key",
        );
      }
      if (init.publicKey !== null) checkPublicKey(init.publicKey);
      if (init.kind === "signUp") this.#requireFreeName(init.username);
      const id = Number(
        this.#s.insertPending.run({
          ...verifierParams(init.verifier && checkVerifier(init.verifier)),
          kind: init.kind,
          username: init.username,
          public_key: init.publicKey,
          device: init.device,
          remote_address: init.remoteAddress,
          created_at: init.createdAt,
          expires_at: init.expiresAt,
        }).lastInsertRowid,
      );
      if (audit) this.#audit(audit);
      return this.#pending(id) as PendingRecord;
    });
  }

  async findPending(id: number): Promise<PendingRecord | undefined> {
    return this.#read("findPending", () => this.#pending(id));
  }

  async listPending(now: number, username?: string): Promise<PendingRecord[]> {
    return this.#read("listPending", () => {
      const rows =
        username === undefined ? this.#s.openPending.all(now) : this.#s.openPendingOf.all(now, username);
      return rows.map(toPending);
    });
  }

  /**
   * Approving a sign-up creates the identity with the request's verifier and `keyring` (and
   * registers the request's public key, if it carries one); approving a device key registers the
   * key to the identity named `username`. Either way the key must be unregistered (ALREADY_EXISTS)
   * and a device key's identity must exist (NOT_FOUND); on any failure nothing changes.
   */
  async decidePending(
    id: number,
    approve: boolean,
    reason: string,
    keyring: readonly KeyringPair[],
    audit?: AuditEntry,
  ): Promise<Decision> {
    return this.#write("decidePending", () => {
      const row = this.#s.pending.get(id);
      const open = row !== undefined && row.state === "pending" && this.#now() < row.expires_at;
      if (!open) throw new ParallaxError(ErrorCode.NOT_FOUND, `decidePending: no pending request ${id}`);
      this.#s.decidePending.run(approve ? "approved" : "rejected", reason, id);
      let identity: IdentityRecord | null = null;
      if (approve && row.kind === "signUp") {
        if (this.#s.identityByName.get(row.username)) throw nameTaken(row.username);
        identity = this.#insertIdentity(row.username, toVerifier(row), keyring);
        if (row.public_key) {
          this.#insertPublicKey(identity.id, row.public_key, row.device);
        }
      } else if (approve) {
        const owner = this.#s.identityByName.get(row.username);
        if (!owner) {
          throw new ParallaxError(ErrorCode.NOT_FOUND, `decidePending: no identity named "${row.username}"`);
        }
        this.#insertPublicKey(owner.id, row.public_key as Buffer, row.device);
        identity = this.#identity(owner);
      }
      if (audit) this.#audit(audit);
      return { request: this.#pending(id) as PendingRecord, identity };
    });
  }

  // wallets

  async getWallet(identityId: number): Promise<WalletRecord | undefined> {
    return this.#read("getWallet", () => this.#wallet(identityId));
  }

  /**
   * In one IMMEDIATE transaction: `revoked` (nothing written) unless the identity exists, is not
   * suspended and is still at `epoch`; else stores `wallet` iff its sequence is the stored one + 1
   * (1 if none), else `conflict` with what is stored. BAD_ARGUMENT for a sequence that is not a
   * positive safe integer or bytes over the backstop sizes.
   */
  async updateWallet(identityId: number, epoch: number, wallet: WalletInput): Promise<WalletUpdateResult> {
    return this.#write("updateWallet", () => {
      checkWallet("updateWallet", wallet);
      if (!this.#current(identityId, epoch)) return { kind: "revoked" };
      const stored = this.#wallet(identityId);
      if (wallet.sequence !== (stored?.sequence ?? 0) + 1)
        return { kind: "conflict", latest: stored ?? null };
      return { kind: "accepted", wallet: this.#putWallet(identityId, wallet) };
    });
  }

  /**
   * `changeVerifier` and `updateWallet` in one IMMEDIATE transaction: `revoked` unless the
   * identity is current at `epoch` (as in `updateWallet`); `wallet-mismatch` unless `wallet` is
   * null exactly when none is stored; `conflict` unless its sequence is the stored one + 1. Else
   * replaces the verifier, stores the wallet, bumps the epoch (deleting OTPs and resume tokens) and
   * writes `audit`, all or nothing.
   */
  async changePasswordWithWallet(
    identityId: number,
    epoch: number,
    verifier: StoredVerifier,
    wallet: WalletInput | null,
    audit?: AuditEntry,
  ): Promise<PasswordChangeResult> {
    return this.#write("changePasswordWithWallet", () => {
      // Arguments first, so a bad one is BAD_ARGUMENT whatever the identity's state.
      checkVerifier(verifier);
      if (wallet !== null) checkWallet("changePasswordWithWallet", wallet);
      if (!this.#current(identityId, epoch)) return { kind: "revoked" };
      const stored = this.#wallet(identityId);
      if (wallet === null || stored === undefined) {
        if ((wallet === null) !== (stored === undefined)) {
          return { kind: "wallet-mismatch", latest: stored ?? null };
        }
      } else if (wallet.sequence !== stored.sequence + 1) {
        return { kind: "conflict", latest: stored };
      }
      this.#setVerifier(identityId, verifier);
      const record = wallet === null ? null : this.#putWallet(identityId, wallet);
      // Last, so that a failing audit insert (or anything before it) rolls all of it back.
      const newEpoch = this.#bump(identityId, audit);
      return { kind: "changed", epoch: newEpoch, wallet: record };
    });
  }

  // audit log

  /**
   * Audit rows written on their own (logins, failures) are group-committed: every row queued in
   * one event-loop turn goes into one transaction, so a burst of logins costs one fsync, not one
   * each. The promise settles once the row is durable.
   */
  async audit(entry: AuditEntry): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#auditQueue.push({ entry, resolve, reject });
      if (this.#auditQueue.length === 1) setImmediate(() => this.#flushAudit());
    });
  }

  readonly #auditQueue: Array<{ entry: AuditEntry; resolve: () => void; reject: (e: unknown) => void }> = [];

  #flushAudit(): void {
    const batch = this.#auditQueue.splice(0);
    if (batch.length === 0) return;
    try {
      if (!this.#db.open) throw new ParallaxError(ErrorCode.STORAGE, "audit: the store is closed");
      this.#write("audit", () => {
        for (const b of batch) this.#audit(b.entry);
      });
    } catch {
      // One bad row must not lose the others: write them one by one.
      for (const b of batch) {
        try {
          this.#write("audit", () => this.#audit(b.entry));
          b.resolve();
        } catch (e) {
          b.reject(e);
        }
      }
      return;
    }
    for (const b of batch) b.resolve();
  }

  async listAudit(limit: number): Promise<AuditRecord[]> {
    this.#flushAudit();
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `listAudit: limit must be a whole number >= 0, not ${limit}`,
      );
    }
    return this.#read("listAudit", () =>
      this.#s.newestAudit.all(limit).map((r) => ({
        id: r.id,
        at: r.at,
        kind: r.kind,
        identityId: r.identity_id,
        username: r.username,
        remoteAddress: r.remote_address,
        detail: r.detail,
      })),
    );
  }

  async serverSecret(): Promise<Uint8Array> {
    if (this.#secret === undefined) {
      this.#secret = this.#write("serverSecret", () => {
        const row = this.#s.serverSecret.get();
        if (row) return bytes(row.secret);
        const secret = new Uint8Array(randomBytes(32));
        this.#s.insertServerSecret.run(secret);
        return secret;
      });
    }
    return new Uint8Array(this.#secret);
  }

  externalChanges(): number {
    return this.#read("externalChanges", () => this.#db.pragma("data_version", { simple: true }) as number);
  }

  /** Closes the file; later calls fail with STORAGE. Closing twice is harmless. */
  close(): void {
    if (this.#db.open) this.#flushAudit();
    if (this.#db.open) this.#db.close();
  }

  // helpers: each runs inside the caller's transaction

  #read<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof CallerError) throw err.error;
      throw this.#wrap(op, err);
    }
  }

  #write<T>(op: string, fn: () => T): T {
    return this.#read(op, () => this.#tx.immediate(fn) as T);
  }

  #wrap(op: string, err: unknown): ParallaxError {
    if (err instanceof ParallaxError) return err;
    if (!this.#db.open)
      return new ParallaxError(ErrorCode.STORAGE, `${op}: the store is closed`, { cause: err });
    if (err instanceof Database.SqliteError) {
      if (err.code === "SQLITE_CONSTRAINT_UNIQUE" || err.code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        return new ParallaxError(ErrorCode.ALREADY_EXISTS, `${op}: it exists already`, { cause: err });
      }
      return new ParallaxError(ErrorCode.STORAGE, `${op} failed (${err.code}); nothing was changed`, {
        cause: err,
      });
    }
    return new ParallaxError(ErrorCode.STORAGE, `${op} failed; nothing was changed`, { cause: err });
  }

  #identity(row: IdentityRow): IdentityRecord {
    return toIdentity(row, this.#s.keyringOf.all(row.id));
  }

  #apiKey(id: number): ApiKeyRecord | undefined {
    const row = this.#s.apiKey.get(id);
    return row && toApiKey(row, this.#s.apiKeyPairs.all(id));
  }

  #pending(id: number): PendingRecord | undefined {
    const row = this.#s.pending.get(id);
    return row && toPending(row);
  }

  #requireIdentity(id: number): IdentityRow {
    const row = this.#s.identityById.get(id);
    if (!row) throw noIdentity(id);
    return row;
  }

  #requireFreeName(name: string): void {
    if (typeof name !== "string" || name === "") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a name must be a non-empty string");
    }
    if (this.#s.identityByName.get(name) || this.#s.openSignUp.get(name, this.#now())) throw nameTaken(name);
  }

  #insertIdentity(
    name: string,
    verifier: StoredVerifier | null,
    keyring: readonly KeyringPair[],
  ): IdentityRecord {
    const pairs = checkKeyring(keyring);
    const params = verifierParams(verifier && checkVerifier(verifier));
    const id = Number(
      this.#s.insertIdentity.run({ ...params, name, created_at: this.#now() }).lastInsertRowid,
    );
    for (const p of pairs) this.#s.insertKeyringPair.run(id, p.service, p.perspective);
    return this.#identity(this.#requireIdentity(id));
  }

  #insertPublicKey(identityId: number, publicKey: Uint8Array, device: string): void {
    checkPublicKey(publicKey);
    if (this.#s.publicKey.get(publicKey)) {
      throw new ParallaxError(ErrorCode.ALREADY_EXISTS, "this public key is registered already");
    }
    this.#s.insertPublicKey.run(publicKey, identityId, device, this.#now());
  }

  #setVerifier(identityId: number, verifier: StoredVerifier): void {
    const params = verifierParams(checkVerifier(verifier));
    if (this.#s.setVerifier.run({ ...params, id: identityId }).changes === 0) throw noIdentity(identityId);
  }

  /** True if the identity exists, is not suspended and is at `epoch`. */
  #current(identityId: number, epoch: number): boolean {
    const row = this.#s.identityById.get(identityId);
    return row !== undefined && row.suspended === 0 && row.epoch === epoch;
  }

  #wallet(identityId: number): WalletRecord | undefined {
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
  #putWallet(identityId: number, wallet: WalletInput): WalletRecord {
    this.#s.upsertWallet.run(identityId, wallet.sequence, wallet.encryptedWallet, wallet.hmac, this.#now());
    return this.#wallet(identityId) as WalletRecord;
  }

  /** Adds 1 to the epoch, drops the OTPs and resume tokens it made stale, writes `audit`. */
  #bump(identityId: number, audit: AuditEntry | undefined): number {
    const row = this.#s.bumpEpoch.get(identityId);
    if (!row) throw noIdentity(identityId);
    this.#s.deleteOtpsOf.run(identityId);
    this.#s.deleteResumeTokensOf.run(identityId);
    if (audit) this.#audit(audit);
    return row.epoch;
  }

  #audit(entry: AuditEntry): void {
    this.#s.insertAudit.run(
      entry.at ?? this.#now(),
      entry.kind,
      entry.identityId,
      entry.username,
      entry.remoteAddress,
      entry.detail,
    );
  }
}

/** Carries an error thrown by a caller's callback through the transaction, unwrapped. */
class CallerError extends Error {
  constructor(readonly error: unknown) {
    super("caller callback failed");
  }
}

function noIdentity(id: number): ParallaxError {
  return new ParallaxError(ErrorCode.NOT_FOUND, `no identity with id ${id}`);
}

function nameTaken(name: string): ParallaxError {
  return new ParallaxError(ErrorCode.ALREADY_EXISTS, `the name "${name}" is taken or awaiting approval`);
}

/** A plain `Uint8Array` copy of a driver `Buffer`. */
function bytes(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf);
}

function checkPublicKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== PUBLIC_KEY_BYTES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a public key must be ${PUBLIC_KEY_BYTES} bytes`);
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

function checkVerifier(v: StoredVerifier): StoredVerifier {
  const { kdf } = v;
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (
    kdf.algorithm !== "argon2id" ||
    !positive(kdf.memoryKiB) ||
    !positive(kdf.iterations) ||
    !positive(kdf.parallelism) ||
    !(v.salt instanceof Uint8Array && v.storedKey instanceof Uint8Array && v.serverKey instanceof Uint8Array)
  ) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      "a verifier needs argon2id parameters and three byte strings",
    );
  }
  return v;
}

/** Validates a keyring and returns it without duplicates, sorted by service then perspective. */
function checkKeyring(keyring: readonly KeyringPair[]): KeyringPair[] {
  const seen = new Map<string, KeyringPair>();
  for (const p of keyring) {
    if (typeof p?.service !== "string" || typeof p.perspective !== "string") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a keyring pair needs a service and a perspective");
    }
    seen.set(pairKey(p), { service: p.service, perspective: p.perspective });
  }
  return [...seen.values()].sort(comparePairs);
}

function comparePairs(a: KeyringPair, b: KeyringPair): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  if (a.perspective !== b.perspective) return a.perspective < b.perspective ? -1 : 1;
  return 0;
}

function pairKey(p: KeyringPair): string {
  return JSON.stringify([p.service, p.perspective]);
}

function parseKeyring(json: string): KeyringPair[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new ParallaxError(ErrorCode.STORAGE, "a stored resume-token keyring is corrupt", { cause: err });
  }
  if (!Array.isArray(parsed))
    throw new ParallaxError(ErrorCode.STORAGE, "a stored resume-token keyring is corrupt");
  return checkKeyring(parsed as KeyringPair[]);
}

function groupPairs(rows: readonly PairRow[]): Map<number, KeyringPair[]> {
  const out = new Map<number, KeyringPair[]>();
  for (const r of rows) {
    const pair = { service: r.service, perspective: r.perspective };
    const list = out.get(r.owner);
    if (list) list.push(pair);
    else out.set(r.owner, [pair]);
  }
  return out;
}

function verifierParams(v: StoredVerifier | null): VerifierParams {
  return {
    salt: v?.salt ?? null,
    stored_key: v?.storedKey ?? null,
    server_key: v?.serverKey ?? null,
    kdf_algorithm: v?.kdf.algorithm ?? null,
    kdf_memory_kib: v?.kdf.memoryKiB ?? null,
    kdf_iterations: v?.kdf.iterations ?? null,
    kdf_parallelism: v?.kdf.parallelism ?? null,
  };
}

function toVerifier(row: VerifierRow): StoredVerifier | null {
  if (row.salt === null || row.stored_key === null || row.server_key === null) return null;
  if (row.kdf_algorithm !== "argon2id") {
    throw new ParallaxError(
      ErrorCode.STORAGE,
      `a stored verifier uses an unknown kdf (${row.kdf_algorithm})`,
    );
  }
  return {
    salt: bytes(row.salt),
    storedKey: bytes(row.stored_key),
    serverKey: bytes(row.server_key),
    kdf: {
      algorithm: "argon2id",
      memoryKiB: row.kdf_memory_kib as number,
      iterations: row.kdf_iterations as number,
      parallelism: row.kdf_parallelism as number,
    },
  };
}

function toIdentity(row: IdentityRow, keyring: readonly (KeyringPair | PairRow)[]): IdentityRecord {
  return {
    id: row.id,
    name: row.name,
    verifier: toVerifier(row),
    keyring: keyring.map((p) => ({ service: p.service, perspective: p.perspective })),
    epoch: row.epoch,
    suspended: row.suspended !== 0,
    createdAt: row.created_at,
  };
}

function toPublicKey(row: PublicKeyRow): PublicKeyRecord {
  return {
    identityId: row.identity_id,
    publicKey: bytes(row.public_key),
    device: row.device,
    addedAt: row.added_at,
  };
}

function toApiKey(row: ApiKeyRow, keyring: readonly (KeyringPair | PairRow)[]): ApiKeyRecord {
  return {
    id: row.id,
    identityId: row.identity_id,
    description: row.description,
    keyring: keyring.map((p) => ({ service: p.service, perspective: p.perspective })),
    secretHash: bytes(row.secret_hash),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

function toPending(row: PendingRow): PendingRecord {
  return {
    id: row.id,
    kind: row.kind,
    username: row.username,
    verifier: toVerifier(row),
    publicKey: row.public_key && bytes(row.public_key),
    device: row.device,
    remoteAddress: row.remote_address,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    state: row.state,
    reason: row.reason,
  };
}
