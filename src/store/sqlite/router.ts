/**
 * `SqliteRouterRepository`: the `router_roles` and `user_metadata` tables (migration 6); the
 * store's `RouterStore` (`ROUTER_STORE`).
 *
 * Invariants (those of `RouterStore`, kept here):
 * - `setRole` / `clearRole` write the role and bump the epoch (`SqliteEpochs.bump`, which also
 *   drops the identity's OTPs and resume tokens and writes the audit row) in one IMMEDIATE
 *   transaction, or change nothing. API keys survive a role change, as they survive a keyring
 *   change: a key's URI limits are intersected with the role's rules at each login.
 * - `metadataSet` / `metadataDelete` read the stored version, compare it with the precondition,
 *   count the user's keys and write, all under the write lock of one IMMEDIATE transaction, so
 *   another connection (another process) cannot slip a write between the compare and the set.
 * - A version starts at 1 and grows by exactly 1 per write (SQL `version + 1` of the row read in
 *   the same transaction); a deleted key's row is gone, so writing it again starts at 1.
 * - Arguments are checked first (BAD_ARGUMENT whatever is stored): keys are well-formed Unicode
 *   of 1..255 code points (what the table's `length()` check counts), values well-formed JSON
 *   text within a backstop size larger than the router's own limit.
 * - Metadata writes answer only once durable, the WAL's fsync run off the event loop
 *   (`SqliteDatabase.committedThenSynced`); role changes are ordinary FULL commits.
 *
 * Tests: test/store/router.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { WriteContext } from "../broker-store.js";
import {
  absentMetadata,
  MAX_METADATA_KEY_CHARS,
  type MetadataDeleteResult,
  type MetadataLimits,
  type MetadataPrecondition,
  type MetadataRecord,
  type MetadataSetResult,
  ROLE_NAME,
  type RouterStore,
} from "../router-store.js";
import type { SqliteDatabase } from "./database.js";
import type { SqliteEpochs } from "./epochs.js";
import type { SqliteIdentityRepository } from "./identities.js";

/** Backstop on a stored metadata value; the router enforces its own, smaller limit (16 KiB). */
export const MAX_METADATA_VALUE_BYTES = 1024 * 1024;

interface MetadataRow {
  key: string;
  value: string;
  version: number;
  updated_at: number;
}

function prepare(db: SqliteDatabase) {
  return {
    roleOf: db.prepare<[number], { role: string }>("SELECT role FROM router_roles WHERE identity_id = ?"),
    upsertRole: db.prepare<[number, string]>(
      `INSERT INTO router_roles (identity_id, role) VALUES (?, ?)
       ON CONFLICT (identity_id) DO UPDATE SET role = excluded.role`,
    ),
    deleteRole: db.prepare<[number]>("DELETE FROM router_roles WHERE identity_id = ?"),

    entry: db.prepare<[number, string], MetadataRow>(
      "SELECT key, value, version, updated_at FROM user_metadata WHERE identity_id = ? AND key = ?",
    ),
    entries: db.prepare<[number], MetadataRow>(
      "SELECT key, value, version, updated_at FROM user_metadata WHERE identity_id = ? ORDER BY key",
    ),
    count: db.prepare<[number], { n: number }>(
      "SELECT count(*) AS n FROM user_metadata WHERE identity_id = ?",
    ),
    upsert: db.prepare<[number, string, string, number], MetadataRow>(
      `INSERT INTO user_metadata (identity_id, key, value, version, updated_at) VALUES (?, ?, ?, 1, ?)
       ON CONFLICT (identity_id, key) DO UPDATE SET value = excluded.value, version = version + 1,
         updated_at = excluded.updated_at
       RETURNING key, value, version, updated_at`,
    ),
    delete: db.prepare<[number, string]>("DELETE FROM user_metadata WHERE identity_id = ? AND key = ?"),
  };
}

export class SqliteRouterRepository implements RouterStore {
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

  // roles

  async roleOf(identityId: number): Promise<string | undefined> {
    return this.#db.read("roleOf", () => this.#s.roleOf.get(identityId)?.role);
  }

  async setRole(identityId: number, role: string, ctx: WriteContext = {}): Promise<number> {
    return this.#db.write("setRole", () => {
      checkRole(role);
      this.#db.assertActor(ctx.actor);
      this.#identities.requireRow(identityId);
      this.#s.upsertRole.run(identityId, role);
      // Last, so that a failing audit insert (or anything before it) rolls all of it back.
      return this.#epochs.bump(identityId, ctx.audit);
    });
  }

  async clearRole(identityId: number, ctx: WriteContext = {}): Promise<number> {
    return this.#db.write("clearRole", () => {
      this.#db.assertActor(ctx.actor);
      this.#identities.requireRow(identityId);
      this.#s.deleteRole.run(identityId);
      return this.#epochs.bump(identityId, ctx.audit);
    });
  }

  // metadata

  async metadataGet(identityId: number, key: string): Promise<MetadataRecord | undefined> {
    return this.#db.read("metadataGet", () => {
      checkKey("metadataGet", key);
      const row = this.#s.entry.get(identityId, key);
      return row && toRecord(row);
    });
  }

  async metadataList(identityId: number): Promise<MetadataRecord[]> {
    return this.#db.read("metadataList", () => this.#s.entries.all(identityId).map(toRecord));
  }

  async metadataSet(
    identityId: number,
    key: string,
    value: string,
    precondition: MetadataPrecondition,
    limits: MetadataLimits,
  ): Promise<MetadataSetResult> {
    const { value: result, durable } = this.#db.committedThenSynced(() =>
      this.#db.write("metadataSet", (): MetadataSetResult => {
        checkKey("metadataSet", key);
        checkValue(value);
        checkPrecondition("metadataSet", precondition);
        checkLimits(limits);
        this.#identities.requireRow(identityId);
        const row = this.#s.entry.get(identityId, key);
        const current = row === undefined ? absentMetadata(key) : toRecord(row);
        if (!holds(precondition, current)) return { kind: "conflict", current };
        if (row === undefined && (this.#s.count.get(identityId)?.n ?? 0) >= limits.maxKeys) {
          return { kind: "tooMany", max: limits.maxKeys };
        }
        const written = this.#s.upsert.get(identityId, key, value, limits.now) as MetadataRow;
        return { kind: "ok", entry: toRecord(written) };
      }),
    );
    await settled(result.kind === "ok", durable);
    return result;
  }

  async metadataDelete(
    identityId: number,
    key: string,
    precondition: MetadataPrecondition,
  ): Promise<MetadataDeleteResult> {
    const { value: result, durable } = this.#db.committedThenSynced(() =>
      this.#db.write("metadataDelete", (): MetadataDeleteResult => {
        checkKey("metadataDelete", key);
        checkPrecondition("metadataDelete", precondition);
        const row = this.#s.entry.get(identityId, key);
        if (row === undefined) return { kind: "conflict", current: absentMetadata(key) };
        const current = toRecord(row);
        if (!holds(precondition, current)) return { kind: "conflict", current };
        this.#s.delete.run(identityId, key);
        return { kind: "ok", entry: current };
      }),
    );
    await settled(result.kind === "ok", durable);
    return result;
  }
}

/**
 * Waits for the sync of a write that wrote; a refusal wrote nothing, so it answers at once (its
 * sync still runs, and its failure concerns nobody).
 */
async function settled(wrote: boolean, durable: Promise<void>): Promise<void> {
  if (wrote) await durable;
  else durable.catch(() => {});
}

function toRecord(row: MetadataRow): MetadataRecord {
  return { key: row.key, value: row.value, version: row.version, updatedAt: row.updated_at };
}

function holds(p: MetadataPrecondition, current: MetadataRecord): boolean {
  return p.kind === "none" || p.version === current.version;
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}

const LONE_SURROGATE = /\p{Cs}/u;

function checkRole(role: string): void {
  if (typeof role !== "string" || !ROLE_NAME.test(role)) {
    throw bad(
      `setRole: a role name is 1..64 characters of a-z, 0-9, '_' and '-'; got ${JSON.stringify(role)}`,
    );
  }
}

function checkKey(op: string, key: string): void {
  if (typeof key !== "string") throw bad(`${op}: a metadata key must be text`);
  if (LONE_SURROGATE.test(key)) throw bad(`${op}: a metadata key must be well-formed Unicode`);
  const chars = [...key].length;
  if (chars < 1 || chars > MAX_METADATA_KEY_CHARS) {
    throw bad(`${op}: a metadata key is 1..${MAX_METADATA_KEY_CHARS} characters; got ${chars}`);
  }
}

function checkValue(value: string): void {
  if (typeof value !== "string") throw bad("metadataSet: a metadata value must be JSON text");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_METADATA_VALUE_BYTES) {
    throw bad(`metadataSet: a metadata value is ${bytes} bytes; at most ${MAX_METADATA_VALUE_BYTES}`);
  }
  if (LONE_SURROGATE.test(value)) throw bad("metadataSet: a metadata value must be well-formed Unicode");
  try {
    JSON.parse(value);
  } catch {
    throw bad("metadataSet: a metadata value must be JSON text");
  }
}

function checkPrecondition(op: string, p: MetadataPrecondition): void {
  if (typeof p !== "object" || p === null) throw bad(`${op}: a precondition is missing`);
  if (p.kind === "none") return;
  if (p.kind !== "version" || !Number.isSafeInteger(p.version) || p.version < 0) {
    throw bad(`${op}: a precondition is none or a version (a whole number >= 0)`);
  }
}

function checkLimits(l: MetadataLimits): void {
  if (typeof l !== "object" || l === null || !Number.isSafeInteger(l.maxKeys) || l.maxKeys < 1) {
    throw bad("metadataSet: maxKeys must be a positive whole number");
  }
  if (!Number.isSafeInteger(l.now)) throw bad("metadataSet: now must be a whole number of ms");
}
