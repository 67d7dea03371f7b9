/**
 * `SqliteCredentialRepository`: the `public_keys`, `api_keys`, `api_key_keyrings`, `otps`,
 * `resume_tokens` and `server_secret` tables.
 *
 * Invariants:
 * - A public key (Ed25519, 32 bytes) belongs to at most one identity. Revoking a public key or
 *   an API key bumps the epoch (`SqliteEpochs.bump`); revoking one the identity does not have
 *   changes nothing and returns undefined.
 * - An API key's keyring is a subset of its owner's keyring when it is created (BAD_ARGUMENT
 *   otherwise); later changes to the owner's keyring do not rewrite it, so whoever logs in with the
 *   key intersects it with the owner's current keyring. Its secret hash is computed by the caller's
 *   `secretHashFor(id)` inside the insert's transaction (errors thrown there pass through unwrapped).
 * - An OTP or resume token counts only while unexpired at the caller's `now`, of the identity's
 *   current epoch, and while the identity is not suspended. `consumeOtp` deletes the OTP it finds
 *   (used or stale alike), inside an IMMEDIATE transaction, so it succeeds at most once across
 *   all processes. An epoch bump deletes the identity's OTPs and resume tokens (epochs.ts).
 * - Secrets are stored only as the hashes the caller computed; the server secret (which keys the
 *   fake salts) is made once, on first use, and never changes.
 *
 * Tests: test/store/credentials.test.ts, otp-race.test.ts, audit.test.ts (server secret)
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  ApiKeyRecord,
  AuditEntry,
  KeyringPair,
  PublicKeyRecord,
  ResumeTokenRecord,
} from "../broker-store.js";
import type { SqliteAuditRepository } from "./audit.js";
import { callerCallback, type SqliteDatabase } from "./database.js";
import type { SqliteEpochs } from "./epochs.js";
import type { SqliteIdentityRepository } from "./identities.js";
import {
  assertPublicKeyShape,
  bytes,
  checkKeyring,
  groupPairs,
  type PairRow,
  pairKey,
  toPairs,
} from "./rows.js";

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

function prepare(db: SqliteDatabase) {
  return {
    insertPublicKey: db.prepare<[Uint8Array, number, string, number]>(
      "INSERT INTO public_keys (public_key, identity_id, device, added_at) VALUES (?, ?, ?, ?)",
    ),
    publicKey: db.prepare<[Uint8Array], PublicKeyRow>("SELECT * FROM public_keys WHERE public_key = ?"),
    publicKeysOf: db.prepare<[number], PublicKeyRow>(
      "SELECT * FROM public_keys WHERE identity_id = ? ORDER BY rowid",
    ),
    deletePublicKey: db.prepare<[Uint8Array, number]>(
      "DELETE FROM public_keys WHERE public_key = ? AND identity_id = ?",
    ),

    // The hash names the new id, so it is set by a second statement in the same transaction.
    insertApiKey: db.prepare<[number, string, number, number]>(
      "INSERT INTO api_keys (identity_id, description, secret_hash, created_at, expires_at) VALUES (?, ?, X'', ?, ?)",
    ),
    setApiKeySecret: db.prepare<[Uint8Array, number]>("UPDATE api_keys SET secret_hash = ? WHERE id = ?"),
    insertApiKeyPair: db.prepare<[number, string, string]>(
      "INSERT OR IGNORE INTO api_key_keyrings (api_key_id, service, perspective) VALUES (?, ?, ?)",
    ),
    apiKey: db.prepare<[number], ApiKeyRow>("SELECT * FROM api_keys WHERE id = ?"),
    apiKeysOf: db.prepare<[number], ApiKeyRow>("SELECT * FROM api_keys WHERE identity_id = ? ORDER BY id"),
    apiKeyPairs: db.prepare<[number], PairRow>(
      "SELECT api_key_id AS owner, service, perspective FROM api_key_keyrings WHERE api_key_id = ? ORDER BY service, perspective",
    ),
    apiKeyPairsOfOwner: db.prepare<[number], PairRow>(
      `SELECT k.api_key_id AS owner, k.service, k.perspective
       FROM api_key_keyrings k JOIN api_keys a ON a.id = k.api_key_id
       WHERE a.identity_id = ? ORDER BY k.api_key_id, k.service, k.perspective`,
    ),
    deleteApiKey: db.prepare<[number, number]>("DELETE FROM api_keys WHERE id = ? AND identity_id = ?"),

    insertOtp: db.prepare<[Uint8Array, number, number, number]>(
      "INSERT INTO otps (otp_hash, identity_id, epoch, expires_at) VALUES (?, ?, ?, ?)",
    ),
    takeOtp: db.prepare<[Uint8Array, number], { epoch: number; expires_at: number }>(
      "DELETE FROM otps WHERE otp_hash = ? AND identity_id = ? RETURNING epoch, expires_at",
    ),

    insertResumeToken: db.prepare<[Uint8Array, number, number, string, string | null, number]>(
      `INSERT INTO resume_tokens (token_hash, identity_id, epoch, device, keyring, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    resumeToken: db.prepare<[Uint8Array], ResumeTokenRow>(
      `SELECT t.*, i.epoch AS current_epoch, i.suspended AS suspended
       FROM resume_tokens t JOIN identities i ON i.id = t.identity_id
       WHERE t.token_hash = ?`,
    ),

    serverSecret: db.prepare<[], { secret: Buffer }>("SELECT secret FROM server_secret WHERE id = 1"),
    insertServerSecret: db.prepare<[Uint8Array]>("INSERT INTO server_secret (id, secret) VALUES (1, ?)"),
  };
}

export class SqliteCredentialRepository {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #identities: SqliteIdentityRepository;
  readonly #epochs: SqliteEpochs;
  readonly #audit: SqliteAuditRepository;
  #secret: Uint8Array | undefined;

  constructor(
    db: SqliteDatabase,
    identities: SqliteIdentityRepository,
    epochs: SqliteEpochs,
    audit: SqliteAuditRepository,
  ) {
    this.#db = db;
    this.#s = prepare(db);
    this.#identities = identities;
    this.#epochs = epochs;
    this.#audit = audit;
  }

  // public keys

  addPublicKey(identityId: number, publicKey: Uint8Array, device: string, audit?: AuditEntry): void {
    this.#db.write("addPublicKey", () => {
      this.#identities.requireRow(identityId);
      this.insertPublicKey(identityId, publicKey, device);
      if (audit) this.#audit.insert(audit);
    });
  }

  findPublicKey(publicKey: Uint8Array): PublicKeyRecord | undefined {
    return this.#db.read("findPublicKey", () => {
      const row = this.#s.publicKey.get(publicKey);
      return row && toPublicKey(row);
    });
  }

  listPublicKeys(identityId: number): PublicKeyRecord[] {
    return this.#db.read("listPublicKeys", () => this.#s.publicKeysOf.all(identityId).map(toPublicKey));
  }

  revokePublicKey(identityId: number, publicKey: Uint8Array, audit?: AuditEntry): number | undefined {
    return this.#db.write("revokePublicKey", () => {
      if (this.#s.deletePublicKey.run(publicKey, identityId).changes === 0) return undefined;
      return this.#epochs.bump(identityId, audit);
    });
  }

  // API keys

  /**
   * Inserts the key, then asks `secretHashFor` (synchronously, inside the transaction) for the
   * hash of the secret that names the new id; if it throws, nothing is written.
   */
  createApiKey(
    init: Omit<ApiKeyRecord, "id" | "secretHash">,
    secretHashFor: (id: number) => Uint8Array,
    audit?: AuditEntry,
  ): ApiKeyRecord {
    return this.#db.write("createApiKey", () => {
      this.#identities.requireRow(init.identityId);
      const keyring = checkKeyring(init.keyring);
      const owned = new Set(this.#identities.keyringOf(init.identityId).map(pairKey));
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
      const secretHash = callerCallback(() => secretHashFor(id));
      if (!(secretHash instanceof Uint8Array) || secretHash.length === 0) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          "createApiKey: secretHashFor must return a non-empty hash",
        );
      }
      this.#s.setApiKeySecret.run(secretHash, id);
      for (const p of keyring) this.#s.insertApiKeyPair.run(id, p.service, p.perspective);
      if (audit) this.#audit.insert(audit);
      return this.#apiKey(id) as ApiKeyRecord;
    });
  }

  findApiKey(id: number): ApiKeyRecord | undefined {
    return this.#db.read("findApiKey", () => this.#apiKey(id));
  }

  listApiKeys(identityId: number): ApiKeyRecord[] {
    return this.#db.read("listApiKeys", () => {
      const keyrings = groupPairs(this.#s.apiKeyPairsOfOwner.all(identityId));
      return this.#s.apiKeysOf.all(identityId).map((row) => toApiKey(row, keyrings.get(row.id) ?? []));
    });
  }

  revokeApiKey(identityId: number, id: number, audit?: AuditEntry): number | undefined {
    return this.#db.write("revokeApiKey", () => {
      if (this.#s.deleteApiKey.run(id, identityId).changes === 0) return undefined;
      return this.#epochs.bump(identityId, audit);
    });
  }

  // one-time passwords

  createOtp(init: { identityId: number; otpHash: Uint8Array; epoch: number; expiresAt: number }): void {
    this.#db.write("createOtp", () => {
      this.#identities.requireRow(init.identityId);
      this.#s.insertOtp.run(init.otpHash, init.identityId, init.epoch, init.expiresAt);
    });
  }

  consumeOtp(identityId: number, otpHash: Uint8Array, now: number): boolean {
    return this.#db.write("consumeOtp", () => {
      const otp = this.#s.takeOtp.get(otpHash, identityId);
      return otp !== undefined && this.#db.isCurrent(identityId, otp.epoch) && now < otp.expires_at;
    });
  }

  // resume tokens

  createResumeToken(init: ResumeTokenRecord): void {
    this.#db.write("createResumeToken", () => {
      this.#identities.requireRow(init.identityId);
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

  findResumeToken(tokenHash: Uint8Array, now: number): ResumeTokenRecord | undefined {
    return this.#db.read("findResumeToken", () => {
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

  // the server secret

  serverSecret(): Uint8Array {
    if (this.#secret === undefined) {
      this.#secret = this.#db.write("serverSecret", () => {
        const row = this.#s.serverSecret.get();
        if (row) return bytes(row.secret);
        const secret = new Uint8Array(randomBytes(32));
        this.#s.insertServerSecret.run(secret);
        return secret;
      });
    }
    return new Uint8Array(this.#secret);
  }

  // for the other repositories: runs inside the caller's transaction

  /** Registers `publicKey` to the identity; BAD_ARGUMENT if malformed, ALREADY_EXISTS if taken. */
  insertPublicKey(identityId: number, publicKey: Uint8Array, device: string): void {
    assertPublicKeyShape(publicKey);
    if (this.#s.publicKey.get(publicKey)) {
      throw new ParallaxError(ErrorCode.ALREADY_EXISTS, "this public key is registered already");
    }
    this.#s.insertPublicKey.run(publicKey, identityId, device, this.#db.now());
  }

  #apiKey(id: number): ApiKeyRecord | undefined {
    const row = this.#s.apiKey.get(id);
    return row && toApiKey(row, this.#s.apiKeyPairs.all(id));
  }
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
    keyring: toPairs(keyring),
    secretHash: bytes(row.secret_hash),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
