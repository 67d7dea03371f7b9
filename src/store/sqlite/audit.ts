/**
 * `SqliteAuditRepository`: the `audit` table and the group-committed queue in front of it.
 *
 * Invariants:
 * - A row that records a change (`insert`, called by the other repositories) commits in the same
 *   transaction as that change, or not at all.
 * - A row written on its own (`audit`: logins, failures) is queued; every row queued in one
 *   event-loop turn is written in one transaction, so a burst of logins costs one fsync, not one
 *   each. Its promise settles once the row is durable. If the batch fails, the rows are retried
 *   one by one, so one bad row does not lose the others.
 * - Reading (`listAudit`) and closing flush the queue first: a read sees every row queued before
 *   it, and `close` loses none. Never inside another transaction, whose rollback would undo rows
 *   already reported durable: there the queue waits for its own flush.
 * - Rows without `at` are stamped with the store's clock.
 *
 * Tests: test/store/audit.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { AuditEntry, AuditKind, AuditRecord } from "../broker-store.js";
import type { SqliteDatabase } from "./database.js";

interface AuditRow {
  id: number;
  at: number;
  kind: AuditKind;
  identity_id: number | null;
  username: string;
  remote_address: string;
  detail: string;
}

interface Queued {
  readonly entry: AuditEntry;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

function prepare(db: SqliteDatabase) {
  return {
    insert: db.prepare<[number, string, number | null, string, string, string]>(
      "INSERT INTO audit (at, kind, identity_id, username, remote_address, detail) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    newest: db.prepare<[number], AuditRow>("SELECT * FROM audit ORDER BY id DESC LIMIT ?"),
  };
}

export class SqliteAuditRepository {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #queue: Queued[] = [];

  constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#s = prepare(db);
  }

  /** Writes `entry` inside the caller's transaction. */
  insert(entry: AuditEntry): void {
    this.#s.insert.run(
      entry.at ?? this.#db.now(),
      entry.kind,
      entry.identityId,
      entry.username,
      entry.remoteAddress,
      entry.detail,
    );
  }

  /** Queues `entry` for the group commit; settles once it is durable (or failed). */
  audit(entry: AuditEntry): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ entry, resolve, reject });
      if (this.#queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Writes every queued row now, unless a transaction is open: its rollback would undo rows
   * already reported durable, so they wait for the flush scheduled when they were queued.
   */
  flush(): void {
    if (this.#db.inTransaction) return;
    const batch = this.#queue.splice(0);
    if (batch.length === 0) return;
    try {
      if (!this.#db.open) throw new ParallaxError(ErrorCode.STORAGE, "audit: the store is closed");
      this.#db.write("audit", () => {
        for (const b of batch) this.insert(b.entry);
      });
    } catch {
      // One bad row must not lose the others: write them one by one.
      for (const b of batch) {
        try {
          this.#db.write("audit", () => this.insert(b.entry));
          b.resolve();
        } catch (e) {
          b.reject(e);
        }
      }
      return;
    }
    for (const b of batch) b.resolve();
  }

  /** The newest `limit` rows, newest first, after flushing the queue. */
  listAudit(limit: number): AuditRecord[] {
    this.flush();
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `listAudit: limit must be a whole number >= 0, not ${limit}`,
      );
    }
    return this.#db.read("listAudit", () =>
      this.#s.newest.all(limit).map((r) => ({
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
}
