/**
 * `SqliteDatabase`: the one SQLite file every repository shares, opened with better-sqlite3, and
 * the one transaction helper they all use.
 *
 * How the file is opened, and why:
 * - `journal_mode = WAL`: readers never block the writer and the writer never blocks readers, so
 *   the broker and the CLI can share the file; a commit is one append to the WAL.
 * - `synchronous = FULL` (the default; `NORMAL` on request): every commit is fsynced before it
 *   returns, so a crash of the process or of the machine never loses a commit the broker has
 *   already acknowledged (a revoked key stays revoked, an approved sign-up stays approved).
 *   `NORMAL` keeps the file consistent too but may lose the last commits on power loss.
 * - Group commits (`committedThenSynced`, used by the bank's and the Go server's write queues)
 *   keep that promise without blocking the event loop on the fsync: their COMMIT runs with
 *   `synchronous = NORMAL` (the WAL is written, not synced), then the WAL file is fsynced on
 *   libuv's thread pool, and only when that returns may the group's requests be answered. That is
 *   what FULL does in WAL mode (fsync the WAL at each commit), moved off the main thread, so the
 *   broker decodes the next requests while the disk syncs. Other writes stay FULL.
 * - `foreign_keys = ON` (credentials, tokens and keyrings go with their identity) and
 *   `busy_timeout = 5000` (a second process waits for the write lock instead of failing).
 * - The schema comes from `migrations.ts`: `PRAGMA user_version` says how far the file is, each
 *   migration commits on its own, and a file newer than this code is refused.
 *
 * Invariants this file keeps for every repository:
 * - `write(op, fn)` runs `fn` in one IMMEDIATE transaction: it takes the write lock before
 *   reading, so a read-check-write (a name still free, an OTP not yet used, a request still
 *   pending) cannot interleave with another process's. Called inside another `write`, it runs as
 *   a savepoint of that transaction: its changes commit or roll back with the outer one, and if
 *   it throws, only its own changes are undone before the error reaches the outer `fn`.
 * - Errors leave `write` and `read` as `ParallaxError`s naming the operation: those already
 *   `ParallaxError` (NOT_FOUND, ALREADY_EXISTS, BAD_ARGUMENT, …) pass unchanged; a UNIQUE or
 *   PRIMARY KEY violation becomes ALREADY_EXISTS; anything else STORAGE with the SQLite result
 *   code. No SQL text reaches the message. The exception: whatever a callback of the store's
 *   caller throws inside `callerCallback` leaves the outermost `write` unwrapped.
 * - `isCurrent` / `assertCurrent` answer "is identity X still at epoch E and not suspended?"
 *   only inside a `write`, so the answer still holds when that transaction commits: an update
 *   from a login older than a credential change (or a suspension) can never land after it.
 *
 * Tests: test/store/database.test.ts (and migrations.test.ts for opening)
 */
import { closeSync, fsync, mkdirSync, openSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { Actor } from "../broker-store.js";
import { migrate } from "../migrations.js";

/** How long a connection waits for another process's write lock before failing with STORAGE. */
export const BUSY_TIMEOUT_MS = 5000;

export interface SqliteStoreOptions {
  /** `FULL` (default): an acknowledged commit survives power loss. `NORMAL`: it may not. */
  readonly synchronous?: "FULL" | "NORMAL";
  /**
   * Flushes the WAL file to disk (`fs.fsync` on libuv's pool by default). Tests pass their own to
   * hold a group's answers back, or to fail the sync.
   */
  readonly fsyncWal?: (fd: number) => Promise<void>;
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

export class SqliteDatabase {
  /** The store's clock (see `SqliteStoreOptions.now`). */
  readonly now: () => number;
  readonly #db: Database.Database;
  /** Runs its argument as the body of one transaction; call with `.immediate(fn)`. */
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;
  readonly #epochOf: Database.Statement<[number], { epoch: number; suspended: number }>;

  readonly #synchronous: "FULL" | "NORMAL";
  readonly #walFile: string | undefined;
  readonly #fsync: (fd: number) => Promise<void>;
  #walFd: number | undefined;
  /** WAL syncs not yet returned: the descriptor is closed only once none is left. */
  #syncing = 0;
  #closeWhenSynced = false;
  /** The WAL sync running now; at most one runs at a time. */
  #inFlight: Promise<void> | undefined;
  /** Commits made while a sync ran (it may have started before them): the next sync covers them all. */
  #waiting: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;

  private constructor(
    db: Database.Database,
    now: () => number,
    synchronous: "FULL" | "NORMAL",
    walFile: string | undefined,
    fsyncWal: ((fd: number) => Promise<void>) | undefined,
  ) {
    this.#db = db;
    this.now = now;
    this.#synchronous = synchronous;
    this.#walFile = walFile;
    this.#fsync =
      fsyncWal ??
      ((fd) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve()))));
    this.#tx = db.transaction((fn: () => unknown) => fn());
    this.#epochOf = db.prepare("SELECT epoch, suspended FROM identities WHERE id = ?");
  }

  /**
   * Opens (creating it and its directory if needed) and migrates the database at `file`;
   * `":memory:"` gives a private in-memory one. Fails with STORAGE if the file cannot be opened,
   * is not a store, or has a newer schema than this code.
   */
  static open(file: string, options: SqliteStoreOptions = {}): SqliteDatabase {
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
      const walFile = memory ? undefined : `${path.resolve(file)}-wal`;
      return new SqliteDatabase(db, options.now ?? Date.now, synchronous, walFile, options.fsyncWal);
    } catch (err) {
      db?.close();
      if (err instanceof ParallaxError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new ParallaxError(ErrorCode.STORAGE, `cannot open the store at ${file}: ${detail}`, {
        cause: err,
      });
    }
  }

  /** Prepares a statement on this file; each repository prepares its own once, when built. */
  prepare<P extends unknown[] | object, R = never>(sql: string): Database.Statement<P, R> {
    return this.#db.prepare<P, R>(sql);
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction, or as a savepoint of the transaction already open
   * (see the header); `op` names the operation in errors. `fn` must be synchronous.
   */
  write<T>(op: string, fn: () => T): T {
    return this.#guard(op, () => this.#tx.immediate(fn) as T);
  }

  /**
   * Runs `fn` (which commits: a `write`) and answers its value with a promise that resolves once
   * what it committed is on disk as `synchronous = FULL` would have it: at once under NORMAL or in
   * memory; else after an fsync of the WAL, run off the event loop, started after the commit (so
   * it covers it). The promise rejects with STORAGE if the sync fails: then whether the commit
   * survives a power loss is unknown.
   */
  committedThenSynced<T>(fn: () => T): { readonly value: T; readonly durable: Promise<void> } {
    if (this.#synchronous !== "FULL" || this.#walFile === undefined || this.#db.inTransaction) {
      return { value: fn(), durable: Promise.resolve() };
    }
    const fd = this.#walDescriptor();
    if (fd === undefined) return { value: fn(), durable: Promise.resolve() };
    this.#db.pragma("synchronous = NORMAL");
    let value: T;
    try {
      value = fn();
    } finally {
      if (this.#db.open) this.#db.pragma("synchronous = FULL");
    }
    const durable = this.#syncAfter(fd).catch((err: unknown) => {
      throw new ParallaxError(
        ErrorCode.STORAGE,
        `the store committed but could not sync its WAL to disk (${err instanceof Error ? err.message : String(err)}); whether the change survives a power loss is unknown`,
        { cause: err },
      );
    });
    return { value, durable };
  }

  /**
   * A sync of the WAL that starts after now. One sync runs at a time: commits made while it runs
   * wait for the next one, which starts when it returns and covers them all — so a slow disk
   * makes syncs cover more commits instead of queueing more syncs.
   */
  #syncAfter(fd: number): Promise<void> {
    if (this.#inFlight === undefined) {
      this.#inFlight = this.#startSync(fd);
      return this.#inFlight;
    }
    if (this.#waiting === undefined) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#waiting = { promise, resolve, reject };
    }
    return this.#waiting.promise;
  }

  #startSync(fd: number): Promise<void> {
    this.#syncing++;
    return this.#fsync(fd).finally(() => {
      this.#syncing--;
      this.#inFlight = undefined;
      const next = this.#waiting;
      this.#waiting = undefined;
      if (next !== undefined) {
        this.#inFlight = this.#startSync(fd);
        this.#inFlight.then(next.resolve, next.reject);
      } else if (this.#closeWhenSynced && this.#syncing === 0) {
        this.#closeWal();
      }
    });
  }

  /** The WAL file, opened once for fsync; undefined while it does not exist (no write yet). */
  #walDescriptor(): number | undefined {
    if (this.#walFd === undefined && this.#walFile !== undefined) {
      try {
        this.#walFd = openSync(this.#walFile, "r");
      } catch {
        return undefined;
      }
    }
    return this.#walFd;
  }

  /** Runs `fn` (reads, no transaction of its own) with the same error wrapping as `write`. */
  read<T>(op: string, fn: () => T): T {
    return this.#guard(op, fn);
  }

  /**
   * True if identity `identityId` exists, is not suspended and is at `epoch`. Only inside a
   * `write` (FAILED otherwise), where the write lock keeps the answer true until the commit.
   */
  isCurrent(identityId: number, epoch: number): boolean {
    if (!this.#db.inTransaction) {
      throw new ParallaxError(
        ErrorCode.FAILED,
        "isCurrent: call it inside a write transaction, or the answer is stale before it is used",
      );
    }
    const row = this.#epochOf.get(identityId);
    return row !== undefined && row.suspended === 0 && row.epoch === epoch;
  }

  /** `assertCurrent` for a write's actor, when it names one (an operator's write does not). */
  assertActor(actor: Actor | undefined): void {
    if (actor !== undefined) this.assertCurrent(actor.identityId, actor.epoch);
  }

  /** `isCurrent`, or throws REVOKED (which `write` passes through, rolling the transaction back). */
  assertCurrent(identityId: number, epoch: number): void {
    if (!this.isCurrent(identityId, epoch)) {
      throw new ParallaxError(ErrorCode.REVOKED, "the credentials changed since this login was made");
    }
  }

  get open(): boolean {
    return this.#db.open;
  }

  /** True inside a `write` (of this connection). */
  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }

  /** The pragmas the file is open with, for health checks and tests. */
  inspect(): StoreSettings {
    return this.read("inspect", () => {
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
    return this.read("integrityCheck", () => {
      const rows = this.#db.pragma("integrity_check") as { integrity_check: string }[];
      return rows.map((r) => r.integrity_check).filter((r) => r !== "ok");
    });
  }

  /** SQLite's `data_version`: changes when another connection commits to the file. */
  externalChanges(): number {
    return this.read("externalChanges", () => this.#db.pragma("data_version", { simple: true }) as number);
  }

  /** Closes the file; later calls fail with STORAGE. Closing twice is harmless. */
  close(): void {
    if (this.#db.open) this.#db.close();
    // A descriptor must not be closed (and its number reused) under a sync still queued.
    if (this.#syncing === 0) this.#closeWal();
    else this.#closeWhenSynced = true;
  }

  #closeWal(): void {
    if (this.#walFd === undefined) return;
    closeSync(this.#walFd);
    this.#walFd = undefined;
  }

  #guard<T>(op: string, fn: () => T): T {
    const outermost = !this.#db.inTransaction;
    try {
      return fn();
    } catch (err) {
      if (err instanceof CallerError) {
        if (outermost) throw err.error;
        throw err;
      }
      throw this.#wrap(op, err);
    }
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
}

/**
 * Runs a callback the store's caller passed in (such as `createApiKey`'s `secretHashFor`) inside
 * a `write`: whatever it throws rolls the transaction back and reaches the caller unwrapped.
 */
export function callerCallback<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CallerError(err);
  }
}

/** Carries an error thrown by a caller's callback through the transaction, unwrapped. */
class CallerError extends Error {
  constructor(readonly error: unknown) {
    super("caller callback failed");
  }
}
