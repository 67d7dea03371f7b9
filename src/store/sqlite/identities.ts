/**
 * `SqliteIdentityRepository`: the `identities` and `keyrings` tables.
 *
 * Invariants:
 * - A name is taken while an identity has it or an unexpired sign-up for it is pending
 *   (`requireFreeName` reads `pending` for the second half; pending.ts calls it before recording
 *   a sign-up, and `createIdentity` before creating one). Names are compared by their key
 *   (`nameKey`, stored in `name_key` with a unique index); the name itself is kept as given.
 * - A write with an actor commits only if the actor's login is still current (`assertActor`).
 * - A verifier change runs every registered verifier guard inside its transaction first (the
 *   wallet's: no wallet encrypted under the old password may be left behind).
 * - Every change to a verifier, a suspension or a keyring bumps the epoch in the same
 *   transaction (`SqliteEpochs.bump`) and returns the new epoch; `createIdentity` starts at 0.
 * - A keyring is stored without duplicates and comes back sorted by service, then perspective.
 * - A verifier is stored whole or not at all (the table's CHECK), after `assertVerifierShape`.
 *
 * Tests: test/store/identities.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  AuditEntry,
  IdentityRecord,
  KeyringPair,
  StoredVerifier,
  WriteContext,
} from "../broker-store.js";
import { nameKey } from "../name-key.js";
import type { SqliteAuditRepository } from "./audit.js";
import type { SqliteDatabase } from "./database.js";
import type { SqliteEpochs } from "./epochs.js";
import {
  assertVerifierShape,
  checkKeyring,
  groupPairs,
  noIdentity,
  type PairRow,
  toPairs,
  toVerifier,
  VERIFIER_INSERT_COLUMNS,
  VERIFIER_INSERT_VALUES,
  type VerifierParams,
  type VerifierRow,
  verifierParams,
} from "./rows.js";

export interface IdentityRow extends VerifierRow {
  id: number;
  name: string;
  epoch: number;
  suspended: number;
  created_at: number;
}

function prepare(db: SqliteDatabase) {
  return {
    byId: db.prepare<[number], IdentityRow>("SELECT * FROM identities WHERE id = ?"),
    byNameKey: db.prepare<[string], IdentityRow>("SELECT * FROM identities WHERE name_key = ?"),
    all: db.prepare<[], IdentityRow>("SELECT * FROM identities ORDER BY id"),
    insert: db.prepare<VerifierParams & { name: string; name_key: string; created_at: number }>(
      `INSERT INTO identities (name, name_key, ${VERIFIER_INSERT_COLUMNS}, created_at)
       VALUES (@name, @name_key, ${VERIFIER_INSERT_VALUES}, @created_at)`,
    ),
    setVerifier: db.prepare<VerifierParams & { id: number }>(
      `UPDATE identities SET salt = @salt, stored_key = @stored_key, server_key = @server_key,
         kdf_algorithm = @kdf_algorithm, kdf_memory_kib = @kdf_memory_kib,
         kdf_iterations = @kdf_iterations, kdf_parallelism = @kdf_parallelism
       WHERE id = @id`,
    ),
    setSuspended: db.prepare<[number, number]>("UPDATE identities SET suspended = ? WHERE id = ?"),

    keyringOf: db.prepare<[number], PairRow>(
      "SELECT identity_id AS owner, service, perspective FROM keyrings WHERE identity_id = ? ORDER BY service, perspective",
    ),
    allKeyrings: db.prepare<[], PairRow>(
      "SELECT identity_id AS owner, service, perspective FROM keyrings ORDER BY identity_id, service, perspective",
    ),
    insertPair: db.prepare<[number, string, string]>(
      "INSERT OR IGNORE INTO keyrings (identity_id, service, perspective) VALUES (?, ?, ?)",
    ),
    deleteKeyringOf: db.prepare<[number]>("DELETE FROM keyrings WHERE identity_id = ?"),

    openSignUp: db.prepare<[string, number], { id: number }>(
      "SELECT id FROM pending WHERE kind = 'signUp' AND name_key = ? AND state = 'pending' AND expires_at > ? LIMIT 1",
    ),
  };
}

export class SqliteIdentityRepository {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #epochs: SqliteEpochs;
  readonly #audit: SqliteAuditRepository;
  readonly #verifierGuards: Array<(identityId: number) => void> = [];

  constructor(db: SqliteDatabase, epochs: SqliteEpochs, audit: SqliteAuditRepository) {
    this.#db = db;
    this.#s = prepare(db);
    this.#epochs = epochs;
    this.#audit = audit;
  }

  // BrokerStore's identity methods, each in one `read` or `write`

  findIdentityByName(name: string): IdentityRecord | undefined {
    return this.#db.read("findIdentityByName", () => {
      const row = this.rowByName(name);
      return row && this.record(row);
    });
  }

  findIdentityById(id: number): IdentityRecord | undefined {
    return this.#db.read("findIdentityById", () => {
      const row = this.#s.byId.get(id);
      return row && this.record(row);
    });
  }

  createIdentity(init: {
    name: string;
    verifier: StoredVerifier | null;
    keyring: readonly KeyringPair[];
    audit?: AuditEntry;
  }): IdentityRecord {
    return this.#db.write("createIdentity", () => {
      this.requireFreeName(init.name);
      const identity = this.insert(init.name, init.verifier, init.keyring);
      if (init.audit) this.#audit.insert(init.audit);
      return identity;
    });
  }

  listIdentities(): IdentityRecord[] {
    return this.#db.read("listIdentities", () => {
      const keyrings = groupPairs(this.#s.allKeyrings.all());
      return this.#s.all.all().map((row) => toIdentity(row, keyrings.get(row.id) ?? []));
    });
  }

  changeVerifier(identityId: number, verifier: StoredVerifier, ctx: WriteContext = {}): number {
    return this.#db.write("changeVerifier", () => {
      assertVerifierShape(verifier);
      this.#db.assertActor(ctx.actor);
      this.requireRow(identityId);
      for (const guard of this.#verifierGuards) guard(identityId);
      this.setVerifier(identityId, verifier);
      return this.#epochs.bump(identityId, ctx.audit, { apiKeys: true });
    });
  }

  setSuspended(identityId: number, suspended: boolean, ctx: WriteContext = {}): number {
    return this.#db.write("setSuspended", () => {
      this.#db.assertActor(ctx.actor);
      if (this.#s.setSuspended.run(suspended ? 1 : 0, identityId).changes === 0) throw noIdentity(identityId);
      return this.#epochs.bump(identityId, ctx.audit, { apiKeys: suspended });
    });
  }

  setKeyring(identityId: number, keyring: readonly KeyringPair[], ctx: WriteContext = {}): number {
    return this.#db.write("setKeyring", () => {
      this.#db.assertActor(ctx.actor);
      this.requireRow(identityId);
      this.#s.deleteKeyringOf.run(identityId);
      for (const p of checkKeyring(keyring)) this.#s.insertPair.run(identityId, p.service, p.perspective);
      return this.#epochs.bump(identityId, ctx.audit);
    });
  }

  bumpEpoch(identityId: number, ctx: WriteContext = {}): number {
    return this.#db.write("bumpEpoch", () => {
      this.#db.assertActor(ctx.actor);
      return this.#epochs.bump(identityId, ctx.audit, { apiKeys: true });
    });
  }

  /**
   * Adds a check every verifier change runs inside its transaction, before anything is written;
   * it throws to refuse the change (the wallet repository's: no wallet may be left encrypted
   * under the old password).
   */
  addVerifierGuard(guard: (identityId: number) => void): void {
    this.#verifierGuards.push(guard);
  }

  // for the other repositories: each runs inside the caller's transaction

  /** The row of the identity whose name has the same key as `name`. */
  rowByName(name: string): IdentityRow | undefined {
    return this.#s.byNameKey.get(nameKey(name));
  }

  /** The identity's row; NOT_FOUND if there is none. */
  requireRow(id: number): IdentityRow {
    const row = this.#s.byId.get(id);
    if (!row) throw noIdentity(id);
    return row;
  }

  /** The identity's keyring, sorted. */
  keyringOf(id: number): KeyringPair[] {
    return toPairs(this.#s.keyringOf.all(id));
  }

  record(row: IdentityRow): IdentityRecord {
    return toIdentity(row, this.#s.keyringOf.all(row.id));
  }

  /** BAD_ARGUMENT for an empty name, ALREADY_EXISTS if an identity or an open sign-up has it. */
  requireFreeName(name: string): void {
    if (typeof name !== "string" || name === "") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a name must be a non-empty string");
    }
    const key = nameKey(name);
    if (this.#s.byNameKey.get(key) || this.#s.openSignUp.get(key, this.#db.now())) throw nameTaken(name);
  }

  /** Inserts an identity at epoch 0 with `keyring`; the caller has checked the name. */
  insert(name: string, verifier: StoredVerifier | null, keyring: readonly KeyringPair[]): IdentityRecord {
    const pairs = checkKeyring(keyring);
    const params = verifierParams(verifier && assertVerifierShape(verifier));
    const id = Number(
      this.#s.insert.run({ ...params, name, name_key: nameKey(name), created_at: this.#db.now() })
        .lastInsertRowid,
    );
    for (const p of pairs) this.#s.insertPair.run(id, p.service, p.perspective);
    return this.record(this.requireRow(id));
  }

  /** Replaces the verifier (no bump: the caller bumps); NOT_FOUND if there is no such identity. */
  setVerifier(identityId: number, verifier: StoredVerifier): void {
    const params = verifierParams(assertVerifierShape(verifier));
    if (this.#s.setVerifier.run({ ...params, id: identityId }).changes === 0) throw noIdentity(identityId);
  }
}

export function nameTaken(name: string): ParallaxError {
  return new ParallaxError(ErrorCode.ALREADY_EXISTS, `the name "${name}" is taken or awaiting approval`);
}

function toIdentity(row: IdentityRow, keyring: readonly (KeyringPair | PairRow)[]): IdentityRecord {
  return {
    id: row.id,
    name: row.name,
    verifier: toVerifier(row),
    keyring: toPairs(keyring),
    epoch: row.epoch,
    suspended: row.suspended !== 0,
    createdAt: row.created_at,
  };
}
