/**
 * The two views a call has from the connection's side (C++ keeps the same in `RpcCallContext`
 * and the question's pipeline):
 * - `QuestionResult`: the caller's handle on one of our questions, pending until its Return;
 * - `AnswerContext`: what a local method sees for a call that came over the connection. Its
 *   results are built inside the Return message itself, so returning copies nothing.
 *
 * Tests: test/rpc/rpc-connection.test.ts (calls, pipelining, cancellation, forwarding).
 */
import { type Message, ObjectSize, type Pointer, Struct, type StructCtor } from "capnp-ts";
import {
  type CallContext,
  type CallScope,
  type CapHook,
  type MethodDescriptor,
  releaseCapTable,
  releaseResults,
  type ResultHook,
} from "../caps/index.js";
import { ParallaxError } from "../errors.js";
import { buildReturn } from "../wire/envelope.js";
import { initStruct, getStruct as readStruct } from "../wire/fast-struct.js";
import type * as rpc from "../wire/gen/capnp/rpc.js";
import type { Answer } from "./answer-table.js";
import type { ExportEntry } from "./export-table.js";
import type { Question } from "./question-table.js";
import type { RpcConnection } from "./rpc-connection.js";

/** The pending results of one of our questions. */
export class QuestionResult<R extends Struct> implements ResultHook<R> {
  readonly promise: Promise<R>;

  constructor(
    private readonly connection: RpcConnection,
    private readonly question: Question,
    Results: StructCtor<R>,
  ) {
    this.promise = question.settled.then((r) => readStruct(r.payload, 0, Results));
    this.promise.catch(() => {});
  }

  pipelinedCap(ops: readonly number[]): CapHook {
    return this.connection.pipelineOn(this.question, ops);
  }

  dispose(): void {
    const outcome = this.question.outcome;
    if (outcome === undefined) this.connection.cancelQuestion(this.question);
    else if (!(outcome instanceof ParallaxError)) releaseResults(outcome.message);
  }
}

/** The context a local method sees for a call that came over this connection. */
export class AnswerContext implements CallContext {
  #return: { message: Message; payload: rpc.Payload; results: Struct } | undefined;
  readonly origin: {
    connection: RpcConnection;
    exportEntry: ExportEntry | undefined;
    scope: CallScope | undefined;
  };

  constructor(
    connection: RpcConnection,
    readonly answer: Answer,
    readonly method: MethodDescriptor,
  ) {
    this.origin = { connection, exportEntry: answer.exportEntry, scope: answer.scope };
  }

  get signal(): AbortSignal {
    return this.answer.signal;
  }

  get aborted(): boolean {
    return this.answer.aborted;
  }

  get results(): Struct {
    return this.returnMessage().results;
  }

  /** The Return message, with the results struct allocated inside it (no copy on return). */
  returnMessage(): { message: Message; payload: rpc.Payload; results: Struct } {
    if (this.#return === undefined) {
      const { message, payload } = buildReturn(this.answer.id);
      const results = initStruct(payload, 0, this.method.Results);
      this.#return = { message, payload, results };
    }
    return this.#return;
  }

  /** The results content pointer, for copying forwarded results in. */
  resultsPointer(): { struct: Pointer; message: Message } {
    const r = this.returnMessage();
    return { struct: Struct.getPointer(0, r.payload), message: r.message };
  }

  /** Drops a results message that will not be sent. */
  discard(): void {
    if (this.#return !== undefined) releaseCapTable(this.#return.message);
    this.#return = undefined;
  }
}

/** Params and results of calls we only forward, knowing nothing of their types. */
export class AnyPointerStruct extends Struct {
  static override readonly _capnp = { displayName: "AnyStruct", id: "0", size: new ObjectSize(0, 0) };
}
