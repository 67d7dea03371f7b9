/**
 * Calls the peer asked us (and its Bootstrap requests).
 *
 * Invariant: an answer's id is in use from the peer's Call until both our Return has gone out and
 * the peer's Finish has arrived. It is held as one of two things:
 * - an `Answer` while the call runs, and after its Return while its results may still be needed:
 *   they hold capabilities, or calls were pipelined on it before the Return. Calls the peer
 *   pipelines on it then reach those capabilities.
 * - an `AnswerTombstone` from the Return to the Finish otherwise (results without capabilities,
 *   or an exception): the results are dropped at the Return, since nothing can be reached
 *   through them; a call pipelined on a tombstone fails as it would have on the results.
 * `size` counts both (every question the peer has not finished); `held` counts Answers only.
 * The connection bounds running calls by pausing its transport, Answers kept after their Return
 * by `FINISH_SLACK` × maxQuestionsInFlight, and everything by `maxUnfinishedAnswers`.
 *
 * Tests: test/rpc/hostile.test.ts ("a peer slow to finish, and one that never does"),
 * test/rpc/rpc-connection.test.ts.
 */
import { type CallScope, type CapHook, withGuards } from "../caps/index.js";
import { type ErrorCode, type ErrorKind, nullCapError, ParallaxError } from "../errors.js";
import type { AnswerId, ExportId } from "../wire/rpc-ids.js";
import type { ExportEntry } from "./export-table.js";
import type { Received } from "./question-table.js";

/**
 * What is kept of a returned answer whose results can reach no capability, until the peer's
 * Finish: a few fields instead of the results message. A failure keeps its code, kind and text
 * (not the error object, whose stack and cause can be large).
 */
export class AnswerTombstone {
  constructor(
    /** The scope the call ran under: what is pipelined on the answer inherits it. */
    readonly scope: CallScope | undefined,
    /** Set when the call failed (an exception or a cancellation); unset: results, no capability. */
    readonly code: ErrorCode | undefined,
    readonly kind: ErrorKind,
    readonly message: string,
  ) {}

  /** The tombstone of `answer`, which has returned. */
  static of(answer: Answer): AnswerTombstone {
    const outcome = answer.outcome;
    if (outcome instanceof ParallaxError) {
      return new AnswerTombstone(answer.scope, outcome.code, outcome.kind, outcome.message);
    }
    return answer.scope === undefined
      ? RETURNED_WITHOUT_CAPS
      : new AnswerTombstone(answer.scope, undefined, "failed", "");
  }

  /** What a call pipelined on the answer fails with: the call's own failure, or no capability there. */
  error(): ParallaxError {
    return this.code === undefined
      ? nullCapError()
      : new ParallaxError(this.code, this.message, { kind: this.kind });
  }
}

/** The tombstone of every unscoped answer that returned results without capabilities. */
const RETURNED_WITHOUT_CAPS = new AnswerTombstone(undefined, undefined, "failed", "");

export class Answer {
  /** Settles with the results (or the failure) once the method is done. */
  readonly done: Promise<Received>;
  outcome: Received | ParallaxError | undefined;
  returnSent = false;
  finishReceived = false;
  /** The Finish came before the Return, asking that the result capabilities count as released. */
  releaseResultCapsOnReturn = false;
  /** Exports we sent in the results: released for us if the Finish says `releaseResultCaps`. */
  readonly resultExports: ExportId[] = [];
  /**
   * One promise hook per pipelined path, for calls that arrive before the results: every call on
   * a path queues in the same hook, so they keep their order, and a Disembargo on that path can
   * wait behind them. The answer holds one reference on each until it is retired.
   */
  readonly pipelines = new Map<string, CapHook>();
  #resolve!: (r: Received) => void;
  #reject!: (e: ParallaxError) => void;
  /** Made on first use: most calls never look at their signal. */
  #controller: AbortController | undefined;
  #abortReason: unknown;
  #aborted = false;

  /**
   * The scope the call runs under and its results are handed out under: that of the export
   * entry it came through, or (pipelined calls) that of the answer it was pipelined on, unless
   * the target is a scoped capability. Final once the call is delivered.
   */
  scope: CallScope | undefined;

  constructor(
    readonly id: AnswerId,
    /**
     * The export entry the call came through, or the answer (or tombstone: the call fails at once)
     * it was pipelined on.
     */
    public via: ExportEntry | Answer | AnswerTombstone | undefined,
  ) {
    this.scope = via?.scope;
    this.done = new Promise<Received>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => {});
  }

  /** The export entry the call (or the call it was pipelined on) came through. */
  get exportEntry(): ExportEntry | undefined {
    const via = this.via;
    if (via instanceof AnswerTombstone) return undefined;
    return via instanceof Answer ? via.exportEntry : via;
  }

  /**
   * Fixes the scope at delivery: a scoped target's `mark`, else the scope it came through, with
   * the target's guards added.
   */
  settleScope(mark: CallScope | undefined, guards: readonly CallScope[] = []): CallScope | undefined {
    this.scope = withGuards(mark ?? this.via?.scope, guards);
    return this.scope;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** The caller canceled (or the connection died): the method's signal aborts. */
  cancel(reason: ParallaxError): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  settle(outcome: Received | ParallaxError): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    if (outcome instanceof ParallaxError) this.#reject(outcome);
    else this.#resolve(outcome);
  }
}

export class AnswerTable {
  readonly #entries = new Map<AnswerId, Answer>();
  /** Made on first use: a peer that finishes promptly never needs it. */
  #tombstones: Map<AnswerId, AnswerTombstone> | undefined;

  /** Every answer the peer has not finished: Answers and tombstones. */
  get size(): number {
    return this.#entries.size + (this.#tombstones?.size ?? 0);
  }

  /** Answers kept whole: running, or returned with results still reachable. */
  get held(): number {
    return this.#entries.size;
  }

  has(id: AnswerId): boolean {
    return this.#entries.has(id) || this.#tombstones?.has(id) === true;
  }

  get(id: AnswerId): Answer | undefined {
    return this.#entries.get(id);
  }

  tombstone(id: AnswerId): AnswerTombstone | undefined {
    return this.#tombstones?.get(id);
  }

  add(answer: Answer): void {
    this.#entries.set(answer.id, answer);
  }

  /** Removes the answer once returned and finished; true when it was removed. */
  retireIfDone(a: Answer): boolean {
    if (a.returnSent && a.finishReceived && this.#entries.get(a.id) === a) {
      this.#entries.delete(a.id);
      return true;
    }
    return false;
  }

  /** Keeps only the tombstone of `a`, which has returned and waits for its Finish. */
  bury(a: Answer): void {
    if (this.#entries.get(a.id) !== a) return;
    this.#entries.delete(a.id);
    this.#tombstones ??= new Map();
    this.#tombstones.set(a.id, AnswerTombstone.of(a));
  }

  /** The peer finished the tombstoned answer `id`; false when there is no such tombstone. */
  finishTombstone(id: AnswerId): boolean {
    return this.#tombstones?.delete(id) === true;
  }

  values(): IterableIterator<Answer> {
    return this.#entries.values();
  }

  clear(): void {
    this.#entries.clear();
    this.#tombstones = undefined;
  }
}
