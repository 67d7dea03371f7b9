/**
 * `GroupCommit`: the write queue of the bank and the Go server. Every write submitted in one
 * event-loop turn runs in ONE IMMEDIATE transaction, so a burst of transfers (or moves) from many
 * connections costs one fsync.
 *
 * Invariants:
 * - Requests run in the order they were submitted, each seeing the ones before it: the serial
 *   semantics of one transaction per request.
 * - A request that throws has only its own changes undone and only its own promise rejects, with
 *   its error. A request that answers with `Rollback(value)` has its changes undone and resolves
 *   with `value` (a batch whose leg failed).
 * - How: the group first runs with no savepoints (one per request costs as much as a small
 *   statement). If a request throws, that whole attempt is rolled back and the group runs again
 *   from the start with each request as its own savepoint (`db.write` nested in the group's);
 *   only the second run's outcomes count. So requests must keep all their effects in the database
 *   (or undo them in `hooks.undone`), and a hostile caller can at most make its group run twice.
 * - No promise settles before the group's COMMIT has returned and the WAL holding it has been
 *   fsynced (`SqliteDatabase.committedThenSynced`: the sync runs off the event loop, so the next
 *   group's requests are received and run meanwhile): a resolved request is durable. If the sync
 *   fails, every request of the group rejects with STORAGE (committed, durability unknown). If the transaction cannot commit, or SQLite rolled it back under a
 *   request (the whole transaction is gone, not just the savepoint), every request of the group
 *   rejects with STORAGE and none of them changed anything.
 * - At most `maxGroup` requests per transaction; the rest run in the next one, right after.
 *
 * Tests: test/store/bank-group.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { SqliteDatabase } from "./database.js";

/** The most requests one group transaction takes (bounds its latency and its savepoint depth). */
export const MAX_GROUP_REQUESTS = 512;

/**
 * Thrown by a request to undo its own changes and answer `value` instead of failing. A
 * `ParallaxError`, so that `db.write` passes it through unwrapped; it never leaves this module.
 */
export class Rollback<T> extends ParallaxError {
  constructor(readonly value: T) {
    super(ErrorCode.FAILED, "rolled back by the request itself");
  }
}

/** Thrown inside the first, savepoint-less attempt when a request failed: roll it all back. */
class Retry extends ParallaxError {
  constructor() {
    super(ErrorCode.FAILED, "a request of the group failed; the group runs again with savepoints");
  }
}

/** What the repository hears of the group's transactions (to keep caches in step with them). */
export interface GroupHooks {
  /** Inside each attempt's transaction, before its first request. */
  readonly began?: () => void;
  /** After changes made in a transaction were undone: a request's savepoint, or a whole attempt. */
  readonly undone?: () => void;
  /** After each attempt, committed or not. */
  readonly ended?: () => void;
}

interface Job {
  readonly op: string;
  readonly fn: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** What the queue has done, for tests and the bench. */
export interface GroupStats {
  /** Group transactions run (committed or not). */
  readonly transactions: number;
  /** Requests run in them. */
  readonly requests: number;
  /** The most requests one transaction held. */
  readonly largest: number;
  /** Groups that ran a second time with savepoints, because a request failed in the first run. */
  readonly retried: number;
}

type Outcome = { readonly ok: boolean; readonly value: unknown };

export class GroupCommit {
  readonly #db: SqliteDatabase;
  readonly #maxGroup: number;
  readonly #hooks: GroupHooks;
  #queue: Job[] = [];
  #scheduled = false;
  #transactions = 0;
  #requests = 0;
  #largest = 0;
  #retried = 0;

  constructor(db: SqliteDatabase, maxGroup = MAX_GROUP_REQUESTS, hooks: GroupHooks = {}) {
    if (!Number.isSafeInteger(maxGroup) || maxGroup < 1) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a group takes at least 1 request, not ${maxGroup}`);
    }
    this.#db = db;
    this.#maxGroup = maxGroup;
    this.#hooks = hooks;
  }

  get stats(): GroupStats {
    return {
      transactions: this.#transactions,
      requests: this.#requests,
      largest: this.#largest,
      retried: this.#retried,
    };
  }

  /** Queues `fn` (synchronous, run inside the group's transaction); settles once durable. */
  submit<T>(op: string, fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Runs everything queued now (the store is closing): queued requests still commit. */
  drain(): void {
    while (this.#queue.length > 0) this.#flush();
  }

  #flush(): void {
    this.#scheduled = false;
    const group = this.#queue.splice(0, this.#maxGroup);
    if (this.#queue.length > 0) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    if (group.length === 0) return;
    this.#transactions++;
    this.#requests += group.length;
    this.#largest = Math.max(this.#largest, group.length);
    let outcomes: Outcome[] | undefined;
    let durable: Promise<void>;
    try {
      if (this.#db.inTransaction) {
        // Not reachable from the event loop; refuse rather than join someone else's transaction.
        throw new ParallaxError(ErrorCode.STORAGE, "bank: a transaction is already open");
      }
      const run = this.#db.committedThenSynced(() => {
        // A lone request runs with its savepoint straight away: a retry would only repeat it.
        let o = this.#attempt(group, group.length === 1);
        if (o === undefined) {
          this.#retried++;
          o = this.#attempt(group, true);
        }
        return o;
      });
      outcomes = run.value;
      durable = run.durable;
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      const lost = new ParallaxError(
        ErrorCode.STORAGE,
        `bank: the transaction of ${group.length} request(s) did not commit, nothing of it was changed (${detail})`,
        { cause: err },
      );
      for (const job of group) job.reject(lost);
      return;
    }
    const settled = outcomes as Outcome[];
    // Answered once the commit is on disk (the WAL's fsync runs off the event loop meanwhile).
    durable.then(
      () =>
        group.forEach((job, i) => {
          const o = settled[i] as Outcome;
          if (o.ok) job.resolve(o.value);
          else job.reject(o.value);
        }),
      (err: unknown) => {
        for (const job of group) job.reject(err);
      },
    );
  }

  /**
   * Runs `group` in one transaction and commits it; the requests' outcomes. Without savepoints
   * (`savepoints` false), undefined if a request threw: the attempt was rolled back. Throws if the
   * transaction is lost (it is rolled back).
   */
  #attempt(group: readonly Job[], savepoints: boolean): Outcome[] | undefined {
    const outcomes: Outcome[] = [];
    try {
      this.#db.write("bank", () => {
        this.#hooks.began?.();
        for (const job of group) {
          if (!savepoints) {
            try {
              outcomes.push({ ok: true, value: job.fn() });
            } catch {
              throw new Retry();
            }
            continue;
          }
          try {
            outcomes.push({ ok: true, value: this.#db.write(job.op, job.fn) });
          } catch (err) {
            this.#hooks.undone?.();
            outcomes.push(
              err instanceof Rollback ? { ok: true, value: err.value } : { ok: false, value: err },
            );
          }
          if (!this.#db.inTransaction) {
            throw new ParallaxError(
              ErrorCode.STORAGE,
              `${job.op}: SQLite rolled the whole transaction back; nothing of it was changed`,
            );
          }
        }
      });
    } catch (err) {
      this.#hooks.undone?.();
      if (err instanceof Retry) return undefined;
      throw err;
    } finally {
      this.#hooks.ended?.();
    }
    return outcomes;
  }
}
