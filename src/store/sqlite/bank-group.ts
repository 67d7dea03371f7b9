/**
 * `GroupCommit`: the bank's write queue. Every write submitted in one event-loop turn runs in ONE
 * IMMEDIATE transaction, so a burst of transfers from many connections costs one fsync.
 *
 * Invariants:
 * - Requests run in the order they were submitted, each seeing the ones before it: the serial
 *   semantics of one transaction per request.
 * - Each request runs as its own savepoint (`db.write` nested in the group's `write`): if it
 *   throws, only its own changes are undone and only its own promise rejects, with its error.
 *   A request that answers with `Rollback(value)` has its changes undone and resolves with `value`
 *   (a batch whose leg failed).
 * - No promise settles before the group's COMMIT has returned: a resolved request is durable
 *   (`synchronous = FULL`). If the transaction cannot commit, or SQLite rolled it back under a
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
}

export class GroupCommit {
  readonly #db: SqliteDatabase;
  readonly #maxGroup: number;
  #queue: Job[] = [];
  #scheduled = false;
  #transactions = 0;
  #requests = 0;
  #largest = 0;

  constructor(db: SqliteDatabase, maxGroup = MAX_GROUP_REQUESTS) {
    if (!Number.isSafeInteger(maxGroup) || maxGroup < 1) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a group takes at least 1 request, not ${maxGroup}`);
    }
    this.#db = db;
    this.#maxGroup = maxGroup;
  }

  get stats(): GroupStats {
    return { transactions: this.#transactions, requests: this.#requests, largest: this.#largest };
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
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      if (this.#db.inTransaction) {
        // Not reachable from the event loop; refuse rather than join someone else's transaction.
        throw new ParallaxError(ErrorCode.STORAGE, "bank: a transaction is already open");
      }
      this.#db.write("bank", () => {
        for (const job of group) {
          try {
            outcomes.push({ ok: true, value: this.#db.write(job.op, job.fn) });
          } catch (err) {
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
      const detail = err instanceof Error ? err.message : String(err);
      const lost = new ParallaxError(
        ErrorCode.STORAGE,
        `bank: the transaction of ${group.length} request(s) did not commit, nothing of it was changed (${detail})`,
        { cause: err },
      );
      for (const job of group) job.reject(lost);
      return;
    }
    group.forEach((job, i) => {
      const o = outcomes[i] as { ok: boolean; value: unknown };
      if (o.ok) job.resolve(o.value);
      else job.reject(o.value);
    });
  }
}
