/**
 * Calls we asked the peer (and our Bootstrap requests).
 *
 * Invariant: a question id is in use from the Call until both its Return has arrived and our
 * Finish has gone out; only then may the id be reused. Finish waits for embargoes still
 * targeting the question, because a Disembargo names it.
 *
 * Tests: test/rpc/rpc-connection.test.ts, test/rpc/resolve-embargo.test.ts (Finish after embargoes).
 */
import type { Message, Struct } from "capnp-ts";
import type { ParallaxError } from "../errors.js";
import { newQuestionId, type ExportId, type QuestionId } from "../wire/rpc-ids.js";
import { IdAllocator } from "./id-allocator.js";
import type { PipelineClient } from "./remote-hooks.js";

/** Results as they arrived: the Payload whose content pointer holds them, and its message (whose cap table holds the capabilities). */
export interface Received {
  readonly message: Message;
  readonly payload: Struct;
}

export interface Question {
  readonly id: QuestionId;
  /** Exports we sent in the params: released for us if the Return says `releaseParamCaps`. */
  readonly paramExports: ExportId[];
  /** Settles once: with the results or the error. */
  readonly settled: Promise<Received>;
  outcome: Received | ParallaxError | undefined;
  returned: boolean;
  finishSent: boolean;
  /** Disembargoes in flight that target this question. */
  embargoes: number;
  /** The caller stopped caring before the Return (Finish already sent). */
  canceled: boolean;
  /** A Bootstrap: its results hold only the capability, which the pipeline takes. */
  bootstrap: boolean;
  /** Pipelined capabilities waiting for the Return (each resolved when it arrives). */
  pipelines: PipelineClient[] | undefined;
  resolve(r: Received): void;
  reject(e: ParallaxError): void;
}

export class QuestionTable {
  readonly #entries = new Map<QuestionId, Question>();
  readonly #ids = new IdAllocator();

  get size(): number {
    return this.#entries.size;
  }

  get(id: QuestionId): Question | undefined {
    return this.#entries.get(id);
  }

  create(): Question {
    let resolve!: (r: Received) => void;
    let reject!: (e: ParallaxError) => void;
    const settled = new Promise<Received>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    settled.catch(() => {});
    const q: Question = {
      id: newQuestionId(this.#ids.take()),
      paramExports: [],
      settled,
      outcome: undefined,
      returned: false,
      finishSent: false,
      embargoes: 0,
      canceled: false,
      bootstrap: false,
      pipelines: undefined,
      resolve(r) {
        if (q.outcome !== undefined) return;
        q.outcome = r;
        resolve(r);
      },
      reject(e) {
        if (q.outcome !== undefined) return;
        q.outcome = e;
        reject(e);
      },
    };
    this.#entries.set(q.id, q);
    return q;
  }

  /** Frees the id once the question is both returned and finished. */
  retireIfDone(q: Question): void {
    if (q.returned && q.finishSent && this.#entries.get(q.id) === q) {
      this.#entries.delete(q.id);
      this.#ids.give(q.id);
    }
  }

  values(): IterableIterator<Question> {
    return this.#entries.values();
  }

  clear(): void {
    this.#entries.clear();
  }
}
