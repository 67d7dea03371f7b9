/**
 * `SqliteCredentialRepository`: the `public_keys`, `api_keys`, `api_key_keyrings`,
 * `api_key_permissions`, `otps`, `resume_tokens` and `server_secret` tables.
 *
 * Invariants:
 * - A public key (Ed25519, 32 bytes) belongs to at most one identity. Revoking a public key or
 *   an API key bumps the epoch (`SqliteEpochs.bump`); revoking one the identity does not have
 *   changes nothing and returns undefined.
 * - An API key's keyring is a subset of its owner's keyring when it is created (BAD_ARGUMENT
 *   otherwise); later changes to the owner's keyring do not rewrite it, so whoever logs in with the
 *   key intersects it with the owner's current keyring. Its secret hash is computed by the caller's
 *   `secretHashFor(id)` inside the insert's transaction (errors thrown there pass through unwrapped).
 * - An API key's URI permissions are written in the same transaction as the key, one row per
 *   rule at positions 0..n-1 in the order given, and read back in that order; each grants at
 *   least one action and no two share a pattern (BAD_ARGUMENT otherwise, writing nothing). They
 *   go with the key (ON DELETE CASCADE): revocation, expiry, a password change, a suspension,
 *   logging out everywhere. A stored row that no longer reads as a rule is STORAGE, never a
 *   rule that grants more.
 * - An OTP or resume token counts only while unexpired at the caller's `now`, of the identity's
 *   current epoch, and while the identity is not suspended. `consumeOtp` deletes the OTP it finds
 *   (used or stale alike), inside an IMMEDIATE transaction, so it succeeds at most once across
 *   all processes. An epoch bump deletes the identity's OTPs and resume tokens (epochs.ts).
 * - A resume token is live until rotated once: `rotateResumeToken` marks it spent and stores its
 *   successor in the same family, atomically, so two concurrent resumes with one token cannot
 *   both succeed. A family keeps at most one spent token (the live one's predecessor); presenting
 *   a spent token deletes the whole family.
 * - Per-identity caps are checked in the inserting transaction, after that identity's expired
 *   rows are deleted: API keys and OTPs beyond the cap are refused (QUOTA); a resume token beyond
 *   it replaces the identity's live token that expires soonest, whose family goes with it (so no
 *   spent row outlives its live successor, and an identity holds at most 2 × max token rows).
 * - Writes that name an actor commit only while the actor's login is current (`assertActor`).
 * - Secrets are stored only as the hashes the caller computed; the server secret (which keys the
 *   fake salts) is made once, on first use, and never changes.
 *
 * Tests: test/store/credentials.test.ts, api-key-permissions.test.ts, otp-race.test.ts,
 * audit.test.ts (server secret)
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  Actor,
  ApiKeyInit,
  ApiKeyRecord,
  ApiKeyUriRule,
  KeyringPair,
  PublicKeyRecord,
  ResumeRotation,
  ResumeTokenRecord,
  WriteContext,
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

interface PermissionRow {
  api_key_id: number;
  position: number;
  uri: string;
  match: string;
  perms: string;
}

interface ResumeTokenRow {
  token_hash: Buffer;
  identity_id: number;
  epoch: number;
  device: string;
  keyring: string | null;
  expires_at: number;
  family: Buffer;
  spent: number;
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
    insertApiKeyPermission: db.prepare<[number, number, string, string, string]>(
      "INSERT INTO api_key_permissions (api_key_id, position, uri, match, perms) VALUES (?, ?, ?, ?, ?)",
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
    apiKeyPermissions: db.prepare<[number], PermissionRow>(
      "SELECT * FROM api_key_permissions WHERE api_key_id = ? ORDER BY position",
    ),
    apiKeyPermissionsOfOwner: db.prepare<[number], PermissionRow>(
      `SELECT p.* FROM api_key_permissions p JOIN api_keys a ON a.id = p.api_key_id
       WHERE a.identity_id = ? ORDER BY p.api_key_id, p.position`,
    ),
    deleteApiKey: db.prepare<[number, number]>("DELETE FROM api_keys WHERE id = ? AND identity_id = ?"),
    deleteExpiredApiKeysOf: db.prepare<[number, number]>(
      "DELETE FROM api_keys WHERE identity_id = ? AND expires_at != 0 AND expires_at <= ?",
    ),
    countApiKeysOf: db.prepare<[number], { n: number }>(
      "SELECT count(*) AS n FROM api_keys WHERE identity_id = ?",
    ),
    purgeApiKeys: db.prepare<[number]>("DELETE FROM api_keys WHERE expires_at != 0 AND expires_at <= ?"),

    insertOtp: db.prepare<[Uint8Array, number, number, number]>(
      "INSERT INTO otps (otp_hash, identity_id, epoch, expires_at) VALUES (?, ?, ?, ?)",
    ),
    takeOtp: db.prepare<[Uint8Array, number], { epoch: number; expires_at: number }>(
      "DELETE FROM otps WHERE otp_hash = ? AND identity_id = ? RETURNING epoch, expires_at",
    ),
    deleteExpiredOtpsOf: db.prepare<[number, number]>(
      "DELETE FROM otps WHERE identity_id = ? AND expires_at <= ?",
    ),
    countOtpsOf: db.prepare<[number], { n: number }>("SELECT count(*) AS n FROM otps WHERE identity_id = ?"),
    purgeOtps: db.prepare<[number]>("DELETE FROM otps WHERE expires_at <= ?"),

    insertResumeToken: db.prepare<[Uint8Array, number, number, string, string | null, number, Uint8Array]>(
      `INSERT INTO resume_tokens (token_hash, identity_id, epoch, device, keyring, expires_at, family)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteExpiredTokensOf: db.prepare<[number, number]>(
      "DELETE FROM resume_tokens WHERE identity_id = ? AND expires_at <= ?",
    ),
    liveTokensOf: db.prepare<[number], { family: Buffer }>(
      "SELECT family FROM resume_tokens WHERE identity_id = ? AND spent = 0 ORDER BY expires_at, rowid",
    ),
    spendToken: db.prepare<[Uint8Array]>("UPDATE resume_tokens SET spent = 1 WHERE token_hash = ?"),
    deleteSpentOfFamily: db.prepare<[number, Uint8Array]>(
      "DELETE FROM resume_tokens WHERE identity_id = ? AND family = ? AND spent = 1",
    ),
    deleteFamily: db.prepare<[number, Uint8Array]>(
      "DELETE FROM resume_tokens WHERE identity_id = ? AND family = ?",
    ),
    purgeTokens: db.prepare<[number]>("DELETE FROM resume_tokens WHERE expires_at <= ?"),
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

  addPublicKey(identityId: number, publicKey: Uint8Array, device: string, ctx: WriteContext = {}): void {
    this.#db.write("addPublicKey", () => {
      this.#db.assertActor(ctx.actor);
      this.#identities.requireRow(identityId);
      this.insertPublicKey(identityId, publicKey, device);
      if (ctx.audit) this.#audit.insert(ctx.audit);
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

  revokePublicKey(identityId: number, publicKey: Uint8Array, ctx: WriteContext = {}): number | undefined {
    return this.#db.write("revokePublicKey", () => {
      this.#db.assertActor(ctx.actor);
      if (this.#s.deletePublicKey.run(publicKey, identityId).changes === 0) return undefined;
      return this.#epochs.bump(identityId, ctx.audit);
    });
  }

  // API keys

  /**
   * Inserts the key, then asks `secretHashFor` (synchronously, inside the transaction) for the
   * hash of the secret that names the new id; if it throws, nothing is written.
   */
  createApiKey(
    init: ApiKeyInit,
    secretHashFor: (id: number) => Uint8Array,
    ctx: WriteContext & { readonly max?: number } = {},
  ): ApiKeyRecord {
    return this.#db.write("createApiKey", () => {
      this.#db.assertActor(ctx.actor);
      this.#identities.requireRow(init.identityId);
      this.#s.deleteExpiredApiKeysOf.run(init.identityId, init.createdAt);
      const held = this.#s.countApiKeysOf.get(init.identityId)?.n ?? 0;
      if (ctx.max !== undefined && held >= ctx.max) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this account holds ${held} API keys (at most ${ctx.max}); revoke one first`,
        );
      }
      const keyring = checkKeyring(init.keyring);
      const permissions = checkPermissions(init.permissions ?? []);
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
      for (const [position, r] of permissions.entries()) {
        this.#s.insertApiKeyPermission.run(id, position, r.uri, r.match, lettersOf(r));
      }
      if (ctx.audit) this.#audit.insert(ctx.audit);
      return this.#apiKey(id) as ApiKeyRecord;
    });
  }

  findApiKey(id: number): ApiKeyRecord | undefined {
    return this.#db.read("findApiKey", () => this.#apiKey(id));
  }

  listApiKeys(identityId: number): ApiKeyRecord[] {
    return this.#db.read("listApiKeys", () => {
      const keyrings = groupPairs(this.#s.apiKeyPairsOfOwner.all(identityId));
      const rules = new Map<number, PermissionRow[]>();
      for (const p of this.#s.apiKeyPermissionsOfOwner.all(identityId)) {
        const list = rules.get(p.api_key_id);
        if (list === undefined) rules.set(p.api_key_id, [p]);
        else list.push(p);
      }
      return this.#s.apiKeysOf
        .all(identityId)
        .map((row) => toApiKey(row, keyrings.get(row.id) ?? [], rules.get(row.id) ?? []));
    });
  }

  revokeApiKey(identityId: number, id: number, ctx: WriteContext = {}): number | undefined {
    return this.#db.write("revokeApiKey", () => {
      this.#db.assertActor(ctx.actor);
      if (this.#s.deleteApiKey.run(id, identityId).changes === 0) return undefined;
      return this.#epochs.bump(identityId, ctx.audit);
    });
  }

  // one-time passwords

  createOtp(
    init: { identityId: number; otpHash: Uint8Array; epoch: number; expiresAt: number },
    ctx: { readonly actor?: Actor; readonly max?: number; readonly now?: number } = {},
  ): void {
    this.#db.write("createOtp", () => {
      this.#db.assertActor(ctx.actor);
      this.#identities.requireRow(init.identityId);
      this.#s.deleteExpiredOtpsOf.run(init.identityId, ctx.now ?? this.#db.now());
      const held = this.#s.countOtpsOf.get(init.identityId)?.n ?? 0;
      if (ctx.max !== undefined && held >= ctx.max) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this account holds ${held} unused one-time passwords (at most ${ctx.max}); use one or let one expire`,
        );
      }
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

  createResumeToken(
    init: ResumeTokenRecord,
    ctx: { readonly actor?: Actor; readonly max?: number; readonly now?: number } = {},
  ): void {
    this.#db.write("createResumeToken", () => {
      this.#db.assertActor(ctx.actor);
      this.#identities.requireRow(init.identityId);
      if (!(init.family instanceof Uint8Array) || init.family.length === 0) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "createResumeToken: a token needs a family");
      }
      this.#s.deleteExpiredTokensOf.run(init.identityId, ctx.now ?? this.#db.now());
      if (ctx.max !== undefined) {
        const live = this.#s.liveTokensOf.all(init.identityId);
        // Make room by dropping the tokens that expire soonest (those devices log in again), each
        // with its family: a spent predecessor left behind would keep a row the cap never counts.
        for (const row of live.slice(0, Math.max(0, live.length - ctx.max + 1)))
          this.#s.deleteFamily.run(init.identityId, row.family);
      }
      this.#insertToken(init);
    });
  }

  findResumeToken(tokenHash: Uint8Array, now: number): ResumeTokenRecord | undefined {
    return this.#db.read("findResumeToken", () => {
      const row = this.#s.resumeToken.get(tokenHash);
      return row !== undefined && row.spent === 0 && this.#usable(row, now) ? toToken(row) : undefined;
    });
  }

  rotateResumeToken(tokenHash: Uint8Array, nextHash: Uint8Array, now: number): ResumeRotation | undefined {
    return this.#db.write("rotateResumeToken", () => {
      const row = this.#s.resumeToken.get(tokenHash);
      if (row === undefined) return undefined;
      const token = toToken(row);
      if (row.spent !== 0) {
        // Spent already: another holder has (or had) a copy. Nothing of this family stays usable.
        this.#s.deleteFamily.run(row.identity_id, row.family);
        return { kind: "reused", token };
      }
      if (!this.#usable(row, now)) return undefined;
      this.#s.deleteSpentOfFamily.run(row.identity_id, row.family);
      this.#s.spendToken.run(tokenHash);
      const next: ResumeTokenRecord = { ...token, tokenHash: new Uint8Array(nextHash) };
      this.#insertToken(next);
      return { kind: "rotated", token: next };
    });
  }

  deleteResumeFamilies(identityId: number, families: readonly Uint8Array[]): number {
    return this.#db.write("deleteResumeFamilies", () => {
      let n = 0;
      for (const f of families) n += this.#s.deleteFamily.run(identityId, f).changes;
      return n;
    });
  }

  /** Inside the caller's transaction: deletes expired OTPs, resume tokens and API keys. */
  purgeExpired(now: number): { otps: number; resumeTokens: number; apiKeys: number } {
    return {
      otps: this.#s.purgeOtps.run(now).changes,
      resumeTokens: this.#s.purgeTokens.run(now).changes,
      apiKeys: this.#s.purgeApiKeys.run(now).changes,
    };
  }

  #usable(row: ResumeTokenRow, now: number): boolean {
    return row.suspended === 0 && row.epoch === row.current_epoch && now < row.expires_at;
  }

  #insertToken(t: ResumeTokenRecord): void {
    const keyring = t.keyring === null ? null : JSON.stringify(checkKeyring(t.keyring));
    this.#s.insertResumeToken.run(
      t.tokenHash,
      t.identityId,
      t.epoch,
      t.device,
      keyring,
      t.expiresAt,
      t.family,
    );
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
    return row && toApiKey(row, this.#s.apiKeyPairs.all(id), this.#s.apiKeyPermissions.all(id));
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

function toToken(row: ResumeTokenRow): ResumeTokenRecord {
  return {
    identityId: row.identity_id,
    tokenHash: bytes(row.token_hash),
    family: bytes(row.family),
    epoch: row.epoch,
    device: row.device,
    keyring: row.keyring === null ? null : parseKeyring(row.keyring),
    expiresAt: row.expires_at,
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

function toApiKey(
  row: ApiKeyRow,
  keyring: readonly (KeyringPair | PairRow)[],
  permissions: readonly PermissionRow[],
): ApiKeyRecord {
  return {
    id: row.id,
    identityId: row.identity_id,
    description: row.description,
    keyring: toPairs(keyring),
    permissions: permissions.map(toRule),
    secretHash: bytes(row.secret_hash),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

/** Longest URI a permission names (the column's CHECK). */
const MAX_PERMISSION_URI_CHARS = 255;
const MATCHES: ReadonlySet<string> = new Set(["exact", "prefix", "wildcard"]);
const ACTIONS = ["call", "register", "publish", "subscribe"] as const;

/**
 * Structural backstop for an API key's URI permissions (the login layer checks URI syntax):
 * known match, bounded text URI, boolean actions, at least one granted, no pattern twice.
 */
function checkPermissions(rules: readonly ApiKeyUriRule[]): ApiKeyUriRule[] {
  if (!Array.isArray(rules)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "createApiKey: permissions must be a list");
  }
  const seen = new Set<string>();
  return rules.map((r, i) => {
    const what = `createApiKey: permission ${i}`;
    if (typeof r?.uri !== "string" || r.uri.length > MAX_PERMISSION_URI_CHARS) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `${what}: the URI must be text of at most ${MAX_PERMISSION_URI_CHARS} characters`,
      );
    }
    if (!MATCHES.has(r.match)) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `${what}: match must be exact, prefix or wildcard, not ${JSON.stringify(String(r.match))}`,
      );
    }
    for (const a of ACTIONS) {
      if (typeof r[a] !== "boolean") {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what}: ${a} must be true or false`);
      }
    }
    if (!ACTIONS.some((a) => r[a])) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} on "${r.uri}" grants no action`);
    }
    const pattern = `${r.match} ${r.uri}`;
    if (seen.has(pattern)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} repeats the ${r.match} pattern "${r.uri}"`);
    }
    seen.add(pattern);
    return {
      uri: r.uri,
      match: r.match,
      call: r.call,
      register: r.register,
      publish: r.publish,
      subscribe: r.subscribe,
    };
  });
}

/** Nexus' letters for a rule's actions: c(all), r(egister), p(ublish), s(ubscribe). */
function lettersOf(r: ApiKeyUriRule): string {
  return `${r.call ? "c" : ""}${r.register ? "r" : ""}${r.publish ? "p" : ""}${r.subscribe ? "s" : ""}`;
}

function toRule(row: PermissionRow): ApiKeyUriRule {
  if (!MATCHES.has(row.match) || row.perms === "" || /[^crps]/.test(row.perms)) {
    throw new ParallaxError(
      ErrorCode.STORAGE,
      `API key ${row.api_key_id}'s stored permission ${row.position} is corrupt`,
    );
  }
  return {
    uri: row.uri,
    match: row.match as ApiKeyUriRule["match"],
    call: row.perms.includes("c"),
    register: row.perms.includes("r"),
    publish: row.perms.includes("p"),
    subscribe: row.perms.includes("s"),
  };
}
