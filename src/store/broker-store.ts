/**
 * What the broker keeps: identities and their credentials, keyrings, pending approvals, tokens
 * and the audit log. This interface is the broker's whole contract; `SqliteBrokerStore` is the
 * embedded default and another backend (PostgreSQL) can replace it. Each service's storage is a
 * contract of its own (`wallet-store.ts`, …), reached through `repository(token)`.
 *
 * Invariants every implementation keeps:
 * - Every credential change (verifier, suspension, keyring, public key or API key revocation,
 *   logging out everywhere) bumps the identity's `epoch` in the same transaction, and the method
 *   returns the new epoch. Nothing else changes an epoch. A bump deletes the identity's OTPs and
 *   resume tokens; a password change, a suspension and logging out everywhere delete its API keys
 *   too, in the same transaction.
 * - A write given an `actor` (the login making it) commits only if that identity is still at the
 *   actor's epoch and not suspended, checked inside the write's own transaction; otherwise it
 *   fails with PARALLAX_ERR_REVOKED and changes nothing. No check-then-commit across two
 *   transactions.
 * - Per-identity caps (`max`) are checked inside the same transaction as the insert, after
 *   expired rows of that identity are deleted.
 * - Secrets (API keys, OTPs, resume tokens) are stored only as hashes, computed by the caller.
 * - A method either commits everything it describes or nothing (a crash leaves the last
 *   committed state).
 * - User names are compared by their key (`nameKey`: NFKC and case folding): `Alice` and `alice`
 *   are one name; the name is kept as first given.
 * Methods are async so that a networked backend can implement them.
 *
 * Tests: test/store/identities.test.ts, credentials.test.ts, api-key-permissions.test.ts,
 * pending.test.ts, audit.test.ts
 */

import type { StoreContract } from "./store-contract.js";

/** The key-derivation parameters of a stored verifier. */
export interface KdfParams {
  readonly algorithm: "argon2id";
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** What is stored for a password: never the password. */
export interface StoredVerifier {
  readonly salt: Uint8Array;
  readonly kdf: KdfParams;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
}

/** One (service, perspective) pair an identity may attach. */
export interface KeyringPair {
  readonly service: string;
  readonly perspective: string;
}

export interface IdentityRecord {
  readonly id: number;
  readonly name: string;
  /** Null for identities that log in only by key (or were made without a password). */
  readonly verifier: StoredVerifier | null;
  readonly keyring: readonly KeyringPair[];
  readonly epoch: number;
  readonly suspended: boolean;
  readonly createdAt: number;
}

export interface PublicKeyRecord {
  readonly identityId: number;
  readonly publicKey: Uint8Array;
  readonly device: string;
  readonly addedAt: number;
}

/**
 * One URI limit of an API key: what its logins may do on the URIs a pattern matches. The same
 * shape as the login layer's `UriRule` (src/login/uri-permissions.ts), which checks the pattern's
 * syntax before it reaches the store; the store checks the shape and keeps the order.
 */
export interface ApiKeyUriRule {
  /** At most 255 characters. */
  readonly uri: string;
  readonly match: "exact" | "prefix" | "wildcard";
  readonly call: boolean;
  readonly register: boolean;
  readonly publish: boolean;
  readonly subscribe: boolean;
}

export interface ApiKeyRecord {
  readonly id: number;
  readonly identityId: number;
  readonly description: string;
  /** The attenuated keyring: a subset of the owner's at creation time. */
  readonly keyring: readonly KeyringPair[];
  /**
   * The key's URI limits, in the order given; empty = not limited by URI. Each grants at least
   * one action. Deleted with the key.
   */
  readonly permissions: readonly ApiKeyUriRule[];
  readonly secretHash: Uint8Array;
  readonly createdAt: number;
  /** ms since the epoch; 0 = never. */
  readonly expiresAt: number;
}

/** What `createApiKey` is given: the record less what the store makes; no permissions = none. */
export type ApiKeyInit = Omit<ApiKeyRecord, "id" | "secretHash" | "permissions"> & {
  readonly permissions?: readonly ApiKeyUriRule[];
};

export interface ResumeTokenRecord {
  readonly identityId: number;
  readonly tokenHash: Uint8Array;
  /**
   * The tokens descending from one login by rotation share a family: presenting a rotated token
   * again revokes the family, and that login's `logout` deletes it.
   */
  readonly family: Uint8Array;
  /** Valid only while the identity's epoch is still this one. */
  readonly epoch: number;
  readonly device: string;
  /** The keyring of the login that issued it; null = the identity's whole keyring. */
  readonly keyring: readonly KeyringPair[] | null;
  readonly expiresAt: number;
}

export type PendingKind = "signUp" | "deviceKey";

export interface PendingRecord {
  readonly id: number;
  readonly kind: PendingKind;
  readonly username: string;
  /**
   * Device keys: the identity the name belonged to when the request was filed; null if none did
   * (such a request can never be approved). Null for sign-ups.
   */
  readonly identityId: number | null;
  /** Sign-ups: the verifier the new identity will get. */
  readonly verifier: StoredVerifier | null;
  /** Device keys: the key and the device name. */
  readonly publicKey: Uint8Array | null;
  readonly device: string;
  readonly remoteAddress: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly state: "pending" | "approved" | "rejected";
  /** Why it was rejected (or "approved by ..."). */
  readonly reason: string;
}

export type AuditKind =
  | "login"
  | "login-failed"
  | "sign-up"
  | "pending"
  | "approved"
  | "rejected"
  | "revoked"
  | "credential"
  | "admin";

export interface AuditRecord {
  readonly id: number;
  readonly at: number;
  readonly kind: AuditKind;
  readonly identityId: number | null;
  readonly username: string;
  readonly remoteAddress: string;
  readonly detail: string;
}

export type AuditEntry = Omit<AuditRecord, "id" | "at"> & { readonly at?: number };

/** The login a write is made by: the write commits only if its epoch is still current. */
export interface Actor {
  readonly identityId: number;
  readonly epoch: number;
}

/** Who makes a write, and the audit row that commits with it. */
export interface WriteContext {
  readonly actor?: Actor;
  readonly audit?: AuditEntry;
}

/** The outcome of `rotateResumeToken`. */
export type ResumeRotation =
  /** The token was live: it is spent, and `token` (the successor's record) replaces it. */
  | { readonly kind: "rotated"; readonly token: ResumeTokenRecord }
  /** The token had been rotated already: its whole family was deleted just now. */
  | { readonly kind: "reused"; readonly token: ResumeTokenRecord };

/** Rows deleted by `purgeExpired`. */
export interface PurgeCounts {
  readonly otps: number;
  readonly resumeTokens: number;
  readonly apiKeys: number;
  readonly pending: number;
}

/** The outcome of deciding a pending request. */
export interface Decision {
  readonly request: PendingRecord;
  /** Approved requests: the identity that was created (sign-up) or that gained the key. */
  readonly identity: IdentityRecord | null;
}

export interface BrokerStore {
  // identities
  findIdentityByName(name: string): Promise<IdentityRecord | undefined>;
  findIdentityById(id: number): Promise<IdentityRecord | undefined>;
  /** Fails with ALREADY_EXISTS if the name is taken (also by a pending sign-up). */
  createIdentity(init: {
    name: string;
    verifier: StoredVerifier | null;
    keyring: readonly KeyringPair[];
    audit?: AuditEntry;
  }): Promise<IdentityRecord>;
  listIdentities(): Promise<IdentityRecord[]>;
  /**
   * Replaces the verifier, bumps the epoch, deletes the identity's resume tokens, OTPs and API
   * keys. Refused (PERMISSION_DENIED, nothing changed) while a service's data is keyed to the old
   * password (a stored wallet): that check runs inside the same transaction.
   */
  changeVerifier(identityId: number, verifier: StoredVerifier, ctx?: WriteContext): Promise<number>;
  /** Bumps the epoch; suspending also deletes the identity's API keys. */
  setSuspended(identityId: number, suspended: boolean, ctx?: WriteContext): Promise<number>;
  setKeyring(identityId: number, keyring: readonly KeyringPair[], ctx?: WriteContext): Promise<number>;
  /** Logs out everywhere: bumps the epoch, deleting resume tokens, OTPs and API keys. */
  bumpEpoch(identityId: number, ctx?: WriteContext): Promise<number>;

  // public keys (Ed25519, 32 bytes; a key belongs to one identity)
  /** Fails with ALREADY_EXISTS if the key is registered (to anyone). */
  addPublicKey(identityId: number, publicKey: Uint8Array, device: string, ctx?: WriteContext): Promise<void>;
  findPublicKey(publicKey: Uint8Array): Promise<PublicKeyRecord | undefined>;
  listPublicKeys(identityId: number): Promise<PublicKeyRecord[]>;
  /** Removes the key and bumps the epoch; undefined (and no bump) if the identity had no such key. */
  revokePublicKey(identityId: number, publicKey: Uint8Array, ctx?: WriteContext): Promise<number | undefined>;

  // API keys
  /**
   * Creates an API key with its keyring and URI permissions, in one transaction. Its secret
   * names its id, so the hash is computed inside the transaction, from the new id, by
   * `secretHashFor`. BAD_ARGUMENT (writing nothing) for a keyring wider than the owner's or a
   * malformed permission (unknown match, URI over 255 characters, no action, a repeated pattern).
   */
  createApiKey(
    init: ApiKeyInit,
    secretHashFor: (id: number) => Uint8Array,
    /** `max`: API keys the identity may hold (QUOTA beyond it), after deleting expired ones. */
    ctx?: WriteContext & { readonly max?: number },
  ): Promise<ApiKeyRecord>;
  findApiKey(id: number): Promise<ApiKeyRecord | undefined>;
  listApiKeys(identityId: number): Promise<ApiKeyRecord[]>;
  /** Deletes the key and bumps the epoch; undefined (and no bump) if the identity had no such key. */
  revokeApiKey(identityId: number, id: number, ctx?: WriteContext): Promise<number | undefined>;

  // one-time passwords
  createOtp(
    init: { identityId: number; otpHash: Uint8Array; epoch: number; expiresAt: number },
    /** `max`: unexpired OTPs (at `now`) the identity may hold; QUOTA beyond it. */
    ctx?: { readonly actor?: Actor; readonly max?: number; readonly now?: number },
  ): Promise<void>;
  /**
   * Deletes and returns the OTP with this hash if it belongs to the identity, is unexpired at
   * `now` and of the identity's current epoch. Single use: two concurrent consumers cannot both
   * get it.
   */
  consumeOtp(identityId: number, otpHash: Uint8Array, now: number): Promise<boolean>;

  // resume tokens
  /**
   * Stores a token. `max`: live tokens the identity may hold; at the cap the one expiring soonest
   * is deleted with its family to make room (that device logs in again).
   */
  createResumeToken(
    init: ResumeTokenRecord,
    ctx?: { readonly actor?: Actor; readonly max?: number; readonly now?: number },
  ): Promise<void>;
  /** The live (not yet rotated) token with this hash if unexpired at `now` and of the current epoch. */
  findResumeToken(tokenHash: Uint8Array, now: number): Promise<ResumeTokenRecord | undefined>;
  /**
   * In one transaction: a live token (unexpired at `now`, current epoch, identity not suspended)
   * is marked spent and a successor hashed `nextHash` is stored in its family with the same
   * epoch, keyring, device and expiry (`rotated`); a token spent already deletes its whole family
   * (`reused`); anything else answers undefined and changes nothing.
   */
  rotateResumeToken(
    tokenHash: Uint8Array,
    nextHash: Uint8Array,
    now: number,
  ): Promise<ResumeRotation | undefined>;
  /** Deletes the identity's tokens of these families (a login's own logout); how many went. */
  deleteResumeFamilies(identityId: number, families: readonly Uint8Array[]): Promise<number>;

  // pending approvals
  /** Sign-ups fail with ALREADY_EXISTS if the name is taken or already pending. */
  createPending(
    init: Omit<PendingRecord, "id" | "state" | "reason">,
    audit?: AuditEntry,
  ): Promise<PendingRecord>;
  findPending(id: number): Promise<PendingRecord | undefined>;
  /** Requests still pending (unexpired at `now`), oldest first; `username` narrows to one name's. */
  listPending(now: number, username?: string): Promise<PendingRecord[]>;
  /** Device-key requests still pending (unexpired at `now`) that were filed for this identity. */
  listDeviceRequests(identityId: number, now: number): Promise<PendingRecord[]>;
  /**
   * Decides a pending request in one transaction: approving a sign-up creates the identity with
   * `keyring`; approving a device key registers it to the identity it was filed for (no epoch
   * bump). Fails with NOT_FOUND if there is no such request still pending, and when approving a
   * device request filed for no identity (the name was free then) or for one that is gone.
   */
  decidePending(
    id: number,
    approve: boolean,
    reason: string,
    keyring: readonly KeyringPair[],
    ctx?: WriteContext,
  ): Promise<Decision>;

  /**
   * Deletes what expired by `now`: OTPs, resume tokens, API keys with an expiry, pending requests
   * past their expiry, and decided requests older than their expiry. Safe to run at any time.
   */
  purgeExpired(now: number): Promise<PurgeCounts>;

  // audit log
  audit(entry: AuditEntry): Promise<void>;
  /** The newest `limit` records, newest first. */
  listAudit(limit: number): Promise<AuditRecord[]>;

  /** A random 32-byte secret made on first use and kept (it keys the fake salts). */
  serverSecret(): Promise<Uint8Array>;
  /**
   * A number that changes whenever another process (the CLI) committed to the store, so the
   * broker can notice approvals and revocations made behind its back.
   */
  externalChanges(): number;
  /**
   * The repository implementing a service's store contract (`WALLET_STORE`, …), sharing this
   * store's database and transactions; undefined if this store does not implement that contract.
   */
  repository<T>(contract: StoreContract<T>): T | undefined;
  close(): void;
}
