/**
 * `SqlitePendingRepository`: the `pending` table (sign-ups and device keys awaiting approval).
 *
 * Invariants:
 * - A sign-up is recorded only for a free name (`requireFreeName`), and while it is pending and
 *   unexpired it holds the name: nobody else can take it or sign up for it.
 * - A request is decided at most once, and only while pending and unexpired at the store's clock
 *   (NOT_FOUND otherwise). Deciding commits in one transaction with what approval implies:
 *   approving a sign-up creates the identity (and registers its public key, if any); approving a
 *   device key registers the key to the identity the request was filed for (`identity_id`),
 *   without an epoch bump. A device request filed while its name had no owner has no identity
 *   and can only be rejected: whoever takes the name later cannot approve it. If any part fails
 *   (the name was taken meanwhile, the key is registered already, the actor's login is stale),
 *   nothing changes and the request stays pending.
 * - Names are compared by their key (`name_key`), like identities'.
 * - Rows go when their expiry passes (`purgeExpired`), decided or not: the audit log keeps the
 *   history.
 *
 * Tests: test/store/pending.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  AuditEntry,
  Decision,
  WriteContext,
  IdentityRecord,
  KeyringPair,
  PendingKind,
  PendingRecord,
} from "../broker-store.js";
import { nameKey } from "../name-key.js";
import type { SqliteAuditRepository } from "./audit.js";
import type { SqliteCredentialRepository } from "./credentials.js";
import type { SqliteDatabase } from "./database.js";
import { nameTaken, type SqliteIdentityRepository } from "./identities.js";
import {
  assertPublicKeyShape,
  assertVerifierShape,
  bytes,
  toVerifier,
  VERIFIER_INSERT_COLUMNS,
  VERIFIER_INSERT_VALUES,
  type VerifierParams,
  type VerifierRow,
  verifierParams,
} from "./rows.js";

interface PendingRow extends VerifierRow {
  id: number;
  kind: PendingKind;
  username: string;
  identity_id: number | null;
  public_key: Buffer | null;
  device: string;
  remote_address: string;
  created_at: number;
  expires_at: number;
  state: PendingRecord["state"];
  reason: string;
}

function prepare(db: SqliteDatabase) {
  return {
    insert: db.prepare<
      VerifierParams & {
        kind: string;
        username: string;
        name_key: string;
        identity_id: number | null;
        public_key: Uint8Array | null;
        device: string;
        remote_address: string;
        created_at: number;
        expires_at: number;
      }
    >(
      `INSERT INTO pending (kind, username, name_key, identity_id, ${VERIFIER_INSERT_COLUMNS}, public_key,
         device, remote_address, created_at, expires_at)
       VALUES (@kind, @username, @name_key, @identity_id, ${VERIFIER_INSERT_VALUES}, @public_key,
         @device, @remote_address, @created_at, @expires_at)`,
    ),
    byId: db.prepare<[number], PendingRow>("SELECT * FROM pending WHERE id = ?"),
    open: db.prepare<[number], PendingRow>(
      "SELECT * FROM pending WHERE state = 'pending' AND expires_at > ? ORDER BY id",
    ),
    openOf: db.prepare<[number, string], PendingRow>(
      "SELECT * FROM pending WHERE state = 'pending' AND expires_at > ? AND name_key = ? ORDER BY id",
    ),
    devicesOf: db.prepare<[number, number], PendingRow>(
      "SELECT * FROM pending WHERE kind = 'deviceKey' AND state = 'pending' AND expires_at > ? AND identity_id = ? ORDER BY id",
    ),
    purge: db.prepare<[number]>("DELETE FROM pending WHERE expires_at <= ?"),
    decide: db.prepare<[string, string, number]>(
      "UPDATE pending SET state = ?, reason = ? WHERE id = ? AND state = 'pending'",
    ),
  };
}

export class SqlitePendingRepository {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #identities: SqliteIdentityRepository;
  readonly #credentials: SqliteCredentialRepository;
  readonly #audit: SqliteAuditRepository;

  constructor(
    db: SqliteDatabase,
    identities: SqliteIdentityRepository,
    credentials: SqliteCredentialRepository,
    audit: SqliteAuditRepository,
  ) {
    this.#db = db;
    this.#s = prepare(db);
    this.#identities = identities;
    this.#credentials = credentials;
    this.#audit = audit;
  }

  createPending(init: Omit<PendingRecord, "id" | "state" | "reason">, audit?: AuditEntry): PendingRecord {
    return this.#db.write("createPending", () => {
      if (init.kind !== "signUp" && init.kind !== "deviceKey") {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `createPending: unknown kind ${String(init.kind)}`);
      }
      if (init.kind === "deviceKey" && init.publicKey === null) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          "createPending: a device-key request needs a public key",
        );
      }
      if (init.publicKey !== null) assertPublicKeyShape(init.publicKey);
      if (init.kind === "signUp") this.#identities.requireFreeName(init.username);
      if (init.kind === "signUp" && init.identityId !== null) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "createPending: a sign-up has no identity yet");
      }
      if (init.identityId !== null) this.#identities.requireRow(init.identityId);
      const id = Number(
        this.#s.insert.run({
          ...verifierParams(init.verifier && assertVerifierShape(init.verifier)),
          kind: init.kind,
          username: init.username,
          name_key: nameKey(init.username),
          identity_id: init.identityId,
          public_key: init.publicKey,
          device: init.device,
          remote_address: init.remoteAddress,
          created_at: init.createdAt,
          expires_at: init.expiresAt,
        }).lastInsertRowid,
      );
      if (audit) this.#audit.insert(audit);
      return this.#pending(id) as PendingRecord;
    });
  }

  findPending(id: number): PendingRecord | undefined {
    return this.#db.read("findPending", () => this.#pending(id));
  }

  listPending(now: number, username?: string): PendingRecord[] {
    return this.#db.read("listPending", () => {
      const rows =
        username === undefined ? this.#s.open.all(now) : this.#s.openOf.all(now, nameKey(username));
      return rows.map(toPending);
    });
  }

  listDeviceRequests(identityId: number, now: number): PendingRecord[] {
    return this.#db.read("listDeviceRequests", () => this.#s.devicesOf.all(now, identityId).map(toPending));
  }

  /** Inside the caller's transaction: deletes every request whose expiry has passed. */
  purgeExpired(now: number): number {
    return this.#s.purge.run(now).changes;
  }

  /**
   * Approving a sign-up creates the identity with the request's verifier and `keyring` (and
   * registers the request's public key, if it carries one); approving a device key registers the
   * key to the identity named `username`. Either way the key must be unregistered (ALREADY_EXISTS)
   * and a device key's identity must exist (NOT_FOUND); on any failure nothing changes.
   */
  decidePending(
    id: number,
    approve: boolean,
    reason: string,
    keyring: readonly KeyringPair[],
    ctx: WriteContext = {},
  ): Decision {
    return this.#db.write("decidePending", () => {
      this.#db.assertActor(ctx.actor);
      const row = this.#s.byId.get(id);
      const open = row !== undefined && row.state === "pending" && this.#db.now() < row.expires_at;
      if (!open) throw new ParallaxError(ErrorCode.NOT_FOUND, `decidePending: no pending request ${id}`);
      this.#s.decide.run(approve ? "approved" : "rejected", reason, id);
      let identity: IdentityRecord | null = null;
      if (approve && row.kind === "signUp") {
        if (this.#identities.rowByName(row.username)) throw nameTaken(row.username);
        identity = this.#identities.insert(row.username, toVerifier(row), keyring);
        if (row.public_key) {
          this.#credentials.insertPublicKey(identity.id, row.public_key, row.device);
        }
      } else if (approve) {
        if (row.identity_id === null) {
          throw new ParallaxError(
            ErrorCode.NOT_FOUND,
            `decidePending: request ${id} was filed when "${row.username}" had no owner; it can only be rejected`,
          );
        }
        const owner = this.#identities.requireRow(row.identity_id);
        this.#credentials.insertPublicKey(owner.id, row.public_key as Buffer, row.device);
        identity = this.#identities.record(owner);
      }
      if (ctx.audit) this.#audit.insert(ctx.audit);
      return { request: this.#pending(id) as PendingRecord, identity };
    });
  }

  #pending(id: number): PendingRecord | undefined {
    const row = this.#s.byId.get(id);
    return row && toPending(row);
  }
}

function toPending(row: PendingRow): PendingRecord {
  return {
    id: row.id,
    kind: row.kind,
    username: row.username,
    identityId: row.identity_id,
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
