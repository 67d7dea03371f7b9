/**
 * Calls the peer asked us (and its Bootstrap requests).
 *
 * Invariant: an answer lives from the peer's Call until both our Return has gone out and the
 * peer's Finish has arrived. Until then its results stay available to calls the peer pipelines
 * on them. The table's size is the number of the peer's questions in flight, which the
 * connection bounds by pausing its transport.
 */
import { type CallScope, type CapHook, withGuards } from "../caps/index.js";
import { ParallaxError } from "../errors.js";
import type { AnswerId, ExportId } from "../wire/rpc-ids.js";
import type { ExportEntry } from "./export-table.js";
import type { Received } from "./question-table.js";

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
    /** The export entry the call came through, or the answer it was pipelined on. */
    public via: ExportEntry | Answer | undefined,
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

  get size(): number {
    return this.#entries.size;
  }

  has(id: AnswerId): boolean {
    return this.#entries.has(id);
  }

  get(id: AnswerId): Answer | undefined {
    return this.#entries.get(id);
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

  values(): IterableIterator<Answer> {
    return this.#entries.values();
  }

  clear(): void {
    this.#entries.clear();
  }
}
