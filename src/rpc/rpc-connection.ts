/**
 * One Cap'n Proto RPC session (level 1, two-party) over one transport.
 *
 * Owns the four tables. Every id the peer sends is looked up in *this* connection's tables; an id
 * that is not there is a protocol violation and aborts the connection (the peer is buggy or
 * hostile), never a lookup anywhere else. Calls that fail for application reasons fail alone,
 * with an exception in their Return; the connection lives on.
 *
 * Calls the peer makes are started in the order they arrive and run concurrently: a slow method
 * never holds up another. While the peer has `maxQuestionsInFlight` calls running, the transport
 * is paused (back-pressure) instead of buffering more.
 *
 * Answered calls wait for the peer's Finish, which an honest peer sends only once it has read our
 * Return: behind a burst of its own calls that can be thousands of answers later. So "slow to
 * Finish" and "never Finishes" are told apart by what an unfinished answer costs, not by how many
 * there are at a moment:
 * - an answer whose results hold capabilities stays whole (calls may still be pipelined on them);
 *   at most `FINISH_SLACK` × `maxQuestionsInFlight` of those, counting running calls;
 * - an answer whose results hold none (or that failed) is cut down to a tombstone at its Return
 *   (`AnswerTombstone`, tens of bytes): calls pipelined on it fail as they would have on the
 *   results;
 * - at most `maxUnfinishedAnswers` unfinished answers of both kinds in all.
 * A peer over either bound when its next call arrives is aborted with `PARALLAX_ERR_LIMIT`.
 *
 * The file follows the protocol's halves: receiving (one handler per message kind), questions
 * (calls we make), answers (calls the peer makes), capabilities in messages, resolution and
 * embargoes, closing. Pure helpers live in rpc-wire.ts, the call contexts in answer-context.ts.
 *
 * Tests: test/rpc/rpc-connection.test.ts, resolve-embargo.test.ts, hostile.test.ts, fuzz.test.ts;
 * test/interop/ against the C++ implementation.
 */
import { type Message, type Pointer, Struct, type StructCtor } from "capnp-ts";
import {
  BrokenCapHook,
  brokenResult,
  type CallOptions,
  type CallScope,
  type CapHook,
  type Capability,
  type CapabilityCtor,
  capTableOf,
  findMethod,
  holdResults,
  LocalCapHook,
  type MethodDescriptor,
  type ParamsFiller,
  PromiseCapHook,
  putCapHook,
  type ResultHook,
  releaseCapTable,
  ScopedCapHook,
  unwrapScope,
  withGuards,
} from "../caps/index.js";
import {
  badArgumentError,
  canceledError,
  ErrorCode,
  nullCapError,
  ParallaxError,
  protocolError,
  toParallaxError,
} from "../errors.js";
import { FINISH_SLACK, type Limits, resolveLimits } from "../limits.js";
import { CloseCode, type Transport } from "../transport/transport.js";
import { deepCopy } from "../wire/deep-copy.js";
import {
  buildCall,
  type EnvelopeTarget,
  echoAsUnimplemented,
  encodeFinish,
  encodeRelease,
  readEnvelope,
} from "../wire/envelope.js";
import { readException, writeException } from "../wire/exception.js";
import { initStruct, messageWords, getStruct as readStruct } from "../wire/fast-struct.js";
import * as rpc from "../wire/gen/capnp/rpc.js";
import {
  decodeRpcMessage,
  encodeRpcMessage,
  newRpcMessage,
  readableSingleSegment,
} from "../wire/message-codec.js";
import {
  type AnswerId,
  answerIdFromPeer,
  type ExportId,
  exportIdFromPeer,
  type ImportId,
  importIdFromPeer,
  questionIdFromPeer,
} from "../wire/rpc-ids.js";
import { AnswerContext, AnyPointerStruct, QuestionResult } from "./answer-context.js";
import { Answer, AnswerTable, type AnswerTombstone } from "./answer-table.js";
import { type ExportEntry, ExportTable } from "./export-table.js";
import { IdAllocator } from "./id-allocator.js";
import { ImportTable } from "./import-table.js";
import { type Question, QuestionTable, type Received } from "./question-table.js";
import { ImportClient, PipelineClient, type RemoteSender, type Target } from "./remote-hooks.js";
import {
  capInResults,
  envelopeTarget,
  hostedAcross,
  isLocal,
  isUnresolvedPromise,
  readTransform,
  receiveError,
  writeTransform,
} from "./rpc-wire.js";

export interface RpcConnectionOptions {
  /** The capability the peer receives when it sends Bootstrap; absent: Bootstrap fails. */
  readonly bootstrap?: CapHook | Capability;
  readonly limits?: Partial<Limits>;
  /** Send exception stack traces to the peer (debugging only). */
  readonly exposeStacks?: boolean;
}

export interface ConnectionStats {
  readonly questions: number;
  /** Every call of the peer's not yet finished: running, answered whole, or tombstoned. */
  readonly answers: number;
  readonly imports: number;
  readonly exports: number;
  readonly embargoes: number;
}

export class RpcConnection implements RemoteSender {
  readonly limits: Limits;
  readonly #transport: Transport;
  readonly #questions = new QuestionTable();
  readonly #answers = new AnswerTable();
  readonly #imports: ImportTable<ImportClient>;
  readonly #exports: ExportTable;
  /** Made on first use, like the other rarely used collections: idle connections stay small. */
  #embargoes: Map<number, { resolve(): void; reject(e: ParallaxError): void }> | undefined;
  #embargoIds: IdAllocator | undefined;
  /** What the peer's Bootstrap receives; the connection holds one reference on it. */
  #bootstrap: CapHook | undefined;
  readonly #exposeStacks: boolean;
  #closeListeners: Set<(error: ParallaxError) => void> | undefined;
  #closedError: ParallaxError | undefined;
  #paused = false;
  /** The peer's calls whose Return has not gone out yet. */
  #callsInFlight = 0;

  constructor(transport: Transport, options: RpcConnectionOptions = {}) {
    this.limits = resolveLimits(options.limits);
    this.#transport = transport;
    this.#imports = new ImportTable(this.limits.maxImports);
    this.#exports = new ExportTable(this.limits.maxExports);
    if (options.bootstrap !== undefined) this.setBootstrap(options.bootstrap);
    this.#exposeStacks = options.exposeStacks ?? false;
    transport.onMessage = (bytes) => this.#receive(bytes);
    transport.onClose = (info) =>
      this.#shutdown(
        info.error ??
          new ParallaxError(
            ErrorCode.DISCONNECTED,
            `connection closed (${info.code}${info.reason ? `: ${info.reason}` : ""})`,
          ),
      );
  }

  /** Sets what the peer receives for Bootstrap; the connection keeps its own reference. */
  setBootstrap(cap: CapHook | Capability): void {
    const previous = this.#bootstrap;
    this.#bootstrap = "$hook" in cap ? cap.$hook.addRef() : cap.addRef();
    previous?.release();
  }

  get closedError(): ParallaxError | undefined {
    return this.#closedError;
  }

  /** The peer's IP address when the transport knows it (the socket's, not a proxy header). */
  get remoteAddress(): string | undefined {
    return this.#transport.remoteAddress;
  }

  get closed(): boolean {
    return this.#closedError !== undefined;
  }

  /** Table sizes: all zero on both sides once every reference is released (the leak check). */
  stats(): ConnectionStats {
    return {
      questions: this.#questions.size,
      answers: this.#answers.size,
      imports: this.#imports.size,
      exports: this.#exports.size,
      embargoes: this.#embargoes?.size ?? 0,
    };
  }

  /** The peer's bootstrap capability, as a typed stub. Calls on it pipeline on the Bootstrap. */
  bootstrap<C extends Capability>(Ctor: CapabilityCtor<C>): C {
    return new Ctor(this.bootstrapHook());
  }

  bootstrapHook(): CapHook {
    if (this.#closedError !== undefined) return new BrokenCapHook(this.#closedError);
    const q = this.#questions.create();
    q.bootstrap = true;
    const { message, root } = newRpcMessage();
    root.initBootstrap().questionId = q.id;
    this.#send(message);
    return this.pipelineOn(q, []);
  }

  /** Runs `listener` once when the connection closes (PB's notifyOnDisconnect). */
  onClose(listener: (error: ParallaxError) => void): () => void {
    if (this.#closedError !== undefined) {
      queueMicrotask(() => listener(this.#closedError as ParallaxError));
      return () => {};
    }
    if (this.#closeListeners === undefined) this.#closeListeners = new Set();
    const listeners = this.#closeListeners;
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Closes the connection: pending calls fail with `disconnected`, exports are released. */
  close(reason = "connection closed by this side"): void {
    if (this.#closedError !== undefined) return;
    this.#transport.close(CloseCode.NORMAL, reason);
    this.#shutdown(new ParallaxError(ErrorCode.DISCONNECTED, reason));
  }

  // ---- receiving: one handler per message kind --------------------------------------------------

  #receive(bytes: Uint8Array): void {
    if (this.#closedError !== undefined) return;
    try {
      const env = readEnvelope(bytes);
      switch (env?.kind) {
        case "finish":
          this.#onFinish(env.questionId, env.releaseResultCaps);
          break;
        case "release":
          this.#onRelease(env.id, env.referenceCount);
          break;
        case "call": {
          const message = readableSingleSegment(bytes, this.limits);
          this.#onCall(message, { ...env, payload: this.#payloadAt(message, env.payloadAt) });
          break;
        }
        case "results": {
          const message = readableSingleSegment(bytes, this.limits);
          const payload = this.#payloadAt(message, env.payloadAt);
          this.#onResults(message, env.answerId, env.releaseParamCaps, payload);
          break;
        }
        default: {
          const { message, root } = decodeRpcMessage(bytes, this.limits);
          this.#handle(message, root, bytes);
        }
      }
    } catch (err) {
      this.abort(receiveError(err));
    }
  }

  /** The Payload whose pointer the envelope reader found at byte `at` of segment 0. */
  #payloadAt(message: Message, at: number): rpc.Payload {
    return new rpc.Payload(message.getSegment(0), at, this.limits.maxNestingDepth);
  }

  #handle(message: Message, root: rpc.Message, bytes: Uint8Array): void {
    switch (root.which()) {
      case rpc.Message_Which.CALL:
        this.#onGenericCall(message, root.call);
        return;
      case rpc.Message_Which.RETURN:
        this.#onReturn(message, bytes, root.return);
        return;
      case rpc.Message_Which.FINISH:
        this.#onFinish(root.finish.questionId, root.finish.releaseResultCaps);
        return;
      case rpc.Message_Which.RELEASE:
        this.#onRelease(root.release.id, root.release.referenceCount);
        return;
      case rpc.Message_Which.BOOTSTRAP:
        this.#onBootstrap(root.bootstrap);
        return;
      case rpc.Message_Which.RESOLVE:
        this.#onResolve(root.resolve);
        return;
      case rpc.Message_Which.DISEMBARGO:
        this.#onDisembargo(root.disembargo, bytes);
        return;
      case rpc.Message_Which.ABORT: {
        const ex = root.abort;
        const err = new ParallaxError(ErrorCode.DISCONNECTED, `peer aborted the connection: ${ex.reason}`);
        this.#transport.close(CloseCode.NORMAL, "peer aborted");
        this.#shutdown(err);
        return;
      }
      case rpc.Message_Which.UNIMPLEMENTED:
        this.#onUnimplemented(root.unimplemented);
        return;
      default:
        // Level 2+ (provide, accept, join) and obsolete messages: echo them back, as the spec asks.
        this.#sendUnimplemented(bytes);
        return;
    }
  }

  /**
   * Echoes a message back inside Unimplemented, byte for byte (copying it through capnp-ts could
   * be made to cost far more than its size). One we cannot echo verbatim aborts the connection.
   */
  #sendUnimplemented(original: Uint8Array): void {
    const echo = echoAsUnimplemented(original);
    if (echo === undefined)
      throw protocolError("sent a message this peer does not implement and cannot echo");
    if (this.#closedError === undefined) this.#transport.send(echo);
  }

  #onUnimplemented(m: rpc.Message): void {
    switch (m.which()) {
      case rpc.Message_Which.CALL:
        this.#unimplementedQuestion(m.call.questionId, "Call");
        return;
      case rpc.Message_Which.BOOTSTRAP:
        this.#unimplementedQuestion(m.bootstrap.questionId, "Bootstrap");
        return;
      case rpc.Message_Which.RESOLVE: {
        const r = m.resolve;
        if (r.which() === rpc.Resolve_Which.CAP) {
          const d = r.cap;
          const id = d.isSenderHosted() ? d.senderHosted : d.isSenderPromise() ? d.senderPromise : undefined;
          if (id !== undefined) this.#exports.release(exportIdFromPeer(id), 1);
        }
        return;
      }
      default:
        return;
    }
  }

  // ---- questions: calls we make, and their Returns ----------------------------------------------

  sendCall<P extends Struct, R extends Struct>(
    target: Target,
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options: CallOptions | undefined,
  ): ResultHook<R> {
    if (this.#closedError !== undefined) return brokenResult(this.#closedError);
    if (options?.signal?.aborted) return brokenResult(canceledError());
    const q = this.#questions.create();
    const { message, payload } = buildCall(q.id, envelopeTarget(target), method.interfaceId, method.methodId);
    try {
      fill(initStruct(payload, 0, method.Params));
      this.#writeCapTable(payload, message, q.paramExports, undefined, false);
    } catch (err) {
      releaseCapTable(message);
      this.#forget(q);
      return brokenResult(badArgumentError(err));
    }
    this.#send(message);
    if (options?.signal !== undefined) {
      const signal = options.signal;
      const onAbort = (): void => this.cancelQuestion(q);
      signal.addEventListener("abort", onAbort, { once: true });
      q.settled.then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
    return this.#resultOf(q, method.Results);
  }

  importReleased(id: ImportId): void {
    const entry = this.#imports.get(id);
    if (entry === undefined) return;
    this.#imports.delete(id);
    if (this.#closedError !== undefined) return;
    this.#transport.send(encodeRelease(id, entry.remoteRefs));
  }

  #resultOf<R extends Struct>(q: Question, Results: StructCtor<R>): ResultHook<R> {
    return new QuestionResult(this, q, Results);
  }

  /** @internal A capability at `ops` in `q`'s results: pipelined now, resolved when the Return arrives. */
  pipelineOn(q: Question, ops: readonly number[]): CapHook {
    const outcome = q.outcome;
    if (outcome instanceof ParallaxError) return new BrokenCapHook(outcome);
    if (outcome !== undefined) return capInResults(outcome, ops);
    const client = new PipelineClient(this, q, ops);
    if (q.pipelines === undefined) q.pipelines = [client];
    else q.pipelines.push(client);
    return client;
  }

  /** @internal The caller gave up on `q` before its Return. */
  cancelQuestion(q: Question): void {
    if (q.returned || q.canceled) return;
    q.canceled = true;
    q.reject(canceledError());
    // Capabilities pipelined on it break now: the question may not be named after its Finish.
    this.#resolvePipelines(q);
    this.#sendFinish(q);
  }

  #writeTarget(t: rpc.MessageTarget, target: Target): void {
    if (target.kind === "import") {
      t.importedCap = target.id;
      return;
    }
    const pa = t.initPromisedAnswer();
    pa.questionId = target.question.id;
    writeTransform(pa, target.ops);
  }

  #onReturn(message: Message, bytes: Uint8Array, ret: rpc.Return): void {
    if (ret.which() === rpc.Return_Which.RESULTS) {
      this.#onResults(message, ret.answerId, ret.releaseParamCaps, ret.results);
      return;
    }
    const q = this.#returned(ret.answerId, ret.releaseParamCaps);
    switch (ret.which()) {
      case rpc.Return_Which.EXCEPTION:
        q.reject(readException(ret.exception));
        break;
      case rpc.Return_Which.CANCELED:
        q.reject(canceledError());
        break;
      default:
        q.reject(
          new ParallaxError(ErrorCode.UNIMPLEMENTED, "the peer answered with a level 3 Return variant"),
        );
        this.#sendUnimplemented(bytes);
        break;
    }
    this.#afterReturn(q);
  }

  /** Marks the question `answerId` returned; throws for a Return nobody asked for. */
  #returned(answerId: number, releaseParamCaps: boolean): Question {
    const q = this.#questions.get(questionIdFromPeer(answerId));
    if (q === undefined || q.returned) throw protocolError(`Return for unknown question ${answerId}`);
    q.returned = true;
    if (releaseParamCaps) for (const id of q.paramExports) this.#exports.release(id, 1);
    return q;
  }

  #onResults(message: Message, answerId: number, releaseParamCaps: boolean, payload: rpc.Payload): void {
    const q = this.#returned(answerId, releaseParamCaps);
    this.#readCapTable(payload, message);
    q.resolve({ message, payload });
    if (q.canceled) releaseCapTable(message);
    else if (q.bootstrap) {
      this.#resolvePipelines(q);
      releaseCapTable(message);
    } else holdResults(message);
    this.#afterReturn(q);
  }

  #afterReturn(q: Question): void {
    this.#resolvePipelines(q);
    if (!q.finishSent && q.embargoes === 0) this.#sendFinish(q);
    this.#questions.retireIfDone(q);
  }

  #resolvePipelines(q: Question): void {
    const clients = q.pipelines;
    if (clients === undefined) return;
    q.pipelines = undefined;
    const outcome = q.outcome;
    for (const c of clients) {
      const hook =
        outcome === undefined || outcome instanceof ParallaxError
          ? new BrokenCapHook(outcome ?? canceledError())
          : capInResults(outcome, c.ops);
      if (c.callsSent && isLocal(hook, this)) {
        q.embargoes++;
        c.resolveTo(
          this.#embargo({ kind: "answer", question: q, ops: c.ops }, hook, () => {
            if (--q.embargoes === 0 && !q.finishSent) {
              this.#sendFinish(q);
              this.#questions.retireIfDone(q);
            }
          }),
        );
      } else {
        c.resolveTo(hook);
      }
    }
  }

  #sendFinish(q: Question): void {
    if (q.finishSent || this.#closedError !== undefined) return;
    q.finishSent = true;
    this.#transport.send(encodeFinish(q.id, false));
  }

  /** The peer echoed our Call or Bootstrap as Unimplemented: that question fails. */
  #unimplementedQuestion(questionId: number, what: "Call" | "Bootstrap"): void {
    const q = this.#questions.get(questionIdFromPeer(questionId));
    if (q === undefined || q.returned) return;
    q.returned = true;
    q.finishSent = true;
    for (const id of q.paramExports) this.#exports.release(id, 1);
    q.reject(new ParallaxError(ErrorCode.UNIMPLEMENTED, `the peer does not implement ${what}`));
    this.#resolvePipelines(q);
    this.#questions.retireIfDone(q);
  }

  /** Drops a question that was never sent. */
  #forget(q: Question): void {
    q.returned = true;
    q.finishSent = true;
    this.#questions.retireIfDone(q);
  }

  // ---- answers: calls the peer makes ------------------------------------------------------------

  /** A Call read through the generated classes (a layout the envelope reader left to us). */
  #onGenericCall(message: Message, call: rpc.Call): void {
    const t = call.target;
    let target: EnvelopeTarget;
    if (t.which() === rpc.MessageTarget_Which.IMPORTED_CAP) target = { kind: "import", id: t.importedCap };
    else if (t.which() === rpc.MessageTarget_Which.PROMISED_ANSWER) {
      const pa = t.promisedAnswer;
      target = { kind: "answer", questionId: pa.questionId, ops: readTransform(pa, this.limits) };
    } else throw protocolError(`unknown call target kind ${t.which()}`);
    this.#onCall(message, {
      questionId: call.questionId,
      interfaceId: call.interfaceId,
      methodId: call.methodId,
      target,
      toCaller: call.sendResultsTo.isCaller(),
      payload: call.params,
    });
  }

  #onCall(
    message: Message,
    call: {
      questionId: number;
      interfaceId: bigint;
      methodId: number;
      target: EnvelopeTarget;
      toCaller: boolean;
      payload: rpc.Payload;
    },
  ): void {
    const id = answerIdFromPeer(call.questionId);
    if (this.#answers.has(id)) throw protocolError(`question ${id} is already in use`);
    const { payload, target } = call;
    // Decode everything that can be a protocol violation before creating the answer.
    let hook: CapHook;
    let via: ExportEntry | Answer | AnswerTombstone;
    if (target.kind === "import") {
      const entry = this.#exports.get(exportIdFromPeer(target.id));
      if (entry === undefined) throw protocolError(`call to unknown export ${target.id}`);
      hook = entry.hook.addRef();
      via = entry;
    } else {
      const aid = answerIdFromPeer(target.questionId);
      const answer = this.#answers.get(aid);
      if (answer !== undefined) {
        hook = this.#answerCap(answer, target.ops);
        via = answer;
      } else {
        const tombstone = this.#answers.tombstone(aid);
        if (tombstone === undefined)
          throw protocolError(`call pipelined on unknown question ${target.questionId}`);
        hook = new BrokenCapHook(tombstone.error());
        via = tombstone;
      }
    }
    try {
      this.#readCapTable(payload, message);
    } catch (err) {
      hook.release();
      releaseCapTable(message);
      throw err;
    }
    const answer = this.#newAnswer(id, via);
    if (!call.toCaller) {
      hook.release();
      releaseCapTable(message);
      this.#returnError(
        answer,
        new ParallaxError(ErrorCode.UNIMPLEMENTED, "sendResultsTo other than the caller is not supported"),
      );
      return;
    }
    this.#deliver(answer, hook, call.interfaceId, call.methodId, payload, message);
  }

  /** A new answer for the peer's question `id`, once the peer is within the Finish bounds. */
  #newAnswer(id: AnswerId, via: ExportEntry | Answer | AnswerTombstone | undefined): Answer {
    if (this.#answers.held >= FINISH_SLACK * this.limits.maxQuestionsInFlight) {
      throw new ParallaxError(
        ErrorCode.LIMIT,
        `the peer holds more than ${FINISH_SLACK} × maxQuestionsInFlight answered calls whose results hold capabilities without finishing them`,
      );
    }
    if (this.#answers.size >= this.limits.maxUnfinishedAnswers) {
      throw new ParallaxError(
        ErrorCode.LIMIT,
        `the peer leaves more than maxUnfinishedAnswers (${this.limits.maxUnfinishedAnswers}) calls without finishing them`,
      );
    }
    const answer = new Answer(id, via);
    this.#answers.add(answer);
    if (++this.#callsInFlight >= this.limits.maxQuestionsInFlight && !this.#paused) {
      this.#paused = true;
      this.#transport.pause();
    }
    return answer;
  }

  /** Runs a call on `hook` (whose reference this takes) and sends its Return. */
  #deliver(
    answer: Answer,
    hook: CapHook,
    interfaceId: bigint,
    methodId: number,
    payload: rpc.Payload,
    message: Message,
  ): void {
    const { hook: target, scope: mark, guards } = unwrapScope(hook);
    if (target instanceof PromiseCapHook) {
      // Deliver again to what the promise becomes, one step at a time, queued with the calls made
      // on it earlier: calls keep their arrival order (E-order).
      target.whenSettled(() => this.#deliver(answer, hook, interfaceId, methodId, payload, message));
      return;
    }
    const scope = answer.settleScope(mark, guards);
    let admitted = false;
    const done = (): void => {
      hook.release();
      releaseCapTable(message);
      if (admitted) scope?.leaveCall();
    };
    if (scope !== undefined && !(target instanceof BrokenCapHook)) {
      try {
        scope.enterCall();
        admitted = true;
      } catch (err) {
        done();
        this.#returnError(answer, toParallaxError(err));
        return;
      }
    }
    if (target instanceof LocalCapHook) {
      const method = findMethod(target.iface, interfaceId, methodId);
      if (method === undefined) {
        done();
        this.#returnError(
          answer,
          new ParallaxError(
            ErrorCode.UNIMPLEMENTED,
            `${target.iface.name} does not implement method ${methodId} of interface 0x${interfaceId.toString(16)}`,
          ),
        );
        return;
      }
      let params: Struct;
      try {
        params = readStruct(payload, 0, method.Params);
      } catch (err) {
        done();
        this.#returnError(answer, badArgumentError(err));
        return;
      }
      const ctx = new AnswerContext(this, answer, method);
      const fail = (err: unknown): void => {
        done();
        ctx.discard();
        this.#returnError(answer, toParallaxError(err));
      };
      let out: Struct | Promise<Struct>;
      try {
        out = target.invoke(method, params, ctx);
      } catch (err) {
        fail(err);
        return;
      }
      if (out instanceof Promise) {
        out.then(() => {
          done();
          this.#returnResults(answer, ctx);
        }, fail);
      } else {
        // The method answered synchronously: the Return goes out now, in the same turn.
        done();
        this.#returnResults(answer, ctx);
      }
      return;
    }
    if (target instanceof BrokenCapHook) {
      done();
      this.#returnError(answer, target.error);
      return;
    }
    this.#forward(answer, target, interfaceId, methodId, payload, done);
  }

  #copyLimits(): { maxDepth: number; maxWords: number } {
    return { maxDepth: this.limits.maxNestingDepth, maxWords: this.limits.maxTraversalWords };
  }

  /** Forwards a call to a capability hosted elsewhere (another connection), copying params and results. */
  #forward(
    answer: Answer,
    target: CapHook,
    interfaceId: bigint,
    methodId: number,
    payload: rpc.Payload,
    done: () => void,
  ): void {
    const method: MethodDescriptor = {
      interfaceId,
      interfaceName: `0x${interfaceId.toString(16)}`,
      methodId,
      name: `method ${methodId}`,
      Params: AnyPointerStruct,
      Results: AnyPointerStruct,
    };
    const result = target.call(
      method,
      (params) => deepCopy(Struct.getPointer(0, payload), params, this.#copyLimits()),
      { signal: answer.signal },
    );
    result.promise.then(
      (results) => {
        done();
        const ctx = new AnswerContext(this, answer, method);
        try {
          deepCopy(results as unknown as Pointer, ctx.resultsPointer().struct, this.#copyLimits());
        } catch (err) {
          ctx.discard();
          this.#returnError(answer, toParallaxError(err));
          return;
        } finally {
          result.dispose?.();
        }
        this.#returnResults(answer, ctx);
      },
      (err: unknown) => {
        done();
        this.#returnError(answer, toParallaxError(err));
      },
    );
  }

  /** The capability at `ops` in an answer's results, now or once the method is done. */
  #answerCap(answer: Answer, ops: readonly number[]): CapHook {
    const key = ops.join(".");
    const pipelined = answer.pipelines.get(key);
    if (pipelined !== undefined) return pipelined.addRef();
    const outcome = answer.outcome;
    if (outcome instanceof ParallaxError) return new BrokenCapHook(outcome);
    if (outcome !== undefined) return capInResults(outcome, ops);
    const hook = new PromiseCapHook(answer.done.then((r) => capInResults(r, ops)));
    answer.pipelines.set(key, hook);
    return hook.addRef();
  }

  #returnResults(answer: Answer, ctx: AnswerContext): void {
    if (this.#closedError !== undefined) {
      ctx.discard();
      return;
    }
    if (answer.aborted && answer.finishReceived) {
      ctx.discard();
      this.#returnCanceled(answer);
      return;
    }
    const { message, payload } = ctx.returnMessage();
    try {
      this.#writeCapTable(payload, message, answer.resultExports, answer.scope, true);
    } catch (err) {
      ctx.discard();
      this.#returnError(answer, toParallaxError(err));
      return;
    }
    const received: Received = { message, payload };
    answer.settle(received);
    this.#sendReturn(answer, message);
  }

  #returnError(answer: Answer, error: ParallaxError): void {
    if (this.#closedError !== undefined) return;
    if (answer.aborted && answer.finishReceived) {
      this.#returnCanceled(answer);
      return;
    }
    answer.settle(error);
    const { message, root } = newRpcMessage();
    const ret = root.initReturn();
    ret.answerId = answer.id;
    ret.releaseParamCaps = false;
    writeException(ret.initException(), error, this.#exposeStacks);
    this.#sendReturn(answer, message);
  }

  #returnCanceled(answer: Answer): void {
    const error = canceledError();
    answer.settle(error);
    const { message, root } = newRpcMessage();
    const ret = root.initReturn();
    ret.answerId = answer.id;
    ret.releaseParamCaps = false;
    ret.setCanceled();
    this.#sendReturn(answer, message);
  }

  #sendReturn(answer: Answer, message: Message): void {
    answer.returnSent = true;
    this.#send(message);
    // Back-pressure counts calls still running, not table entries: an answered call waits only
    // for its Finish, which may sit behind the very messages a paused connection is not reading.
    if (--this.#callsInFlight < this.limits.maxQuestionsInFlight && this.#paused) {
      this.#paused = false;
      this.#transport.resume();
    }
    if (answer.finishReceived) this.#retireAnswer(answer, answer.releaseResultCapsOnReturn);
    else if (reachesNoCapability(answer)) this.#buryAnswer(answer);
  }

  /** Keeps only a tombstone of `answer` until its Finish: nothing can be reached through its results. */
  #buryAnswer(answer: Answer): void {
    const outcome = answer.outcome;
    if (outcome !== undefined && !(outcome instanceof ParallaxError)) releaseCapTable(outcome.message);
    this.#answers.bury(answer);
  }

  #retireAnswer(answer: Answer, releaseResultCaps: boolean): void {
    if (!this.#answers.retireIfDone(answer)) return;
    if (releaseResultCaps) for (const id of answer.resultExports) this.#exports.release(id, 1);
    const outcome = answer.outcome;
    if (outcome !== undefined && !(outcome instanceof ParallaxError)) releaseCapTable(outcome.message);
    for (const hook of answer.pipelines.values()) hook.release();
    answer.pipelines.clear();
  }

  #onBootstrap(b: rpc.Bootstrap): void {
    const id = answerIdFromPeer(b.questionId);
    if (this.#answers.has(id)) throw protocolError(`question ${id} is already in use`);
    const answer = this.#newAnswer(id, undefined);
    if (this.#bootstrap === undefined) {
      this.#returnError(
        answer,
        new ParallaxError(ErrorCode.FAILED, "this peer offers no bootstrap capability"),
      );
      return;
    }
    const { message, root } = newRpcMessage();
    const ret = root.initReturn();
    ret.answerId = id;
    ret.releaseParamCaps = false;
    const payload = ret.initResults();
    putCapHook(Struct.getPointer(0, payload), this.#bootstrap.addRef());
    this.#writeCapTable(payload, message, answer.resultExports, undefined, true);
    // Calls pipelined on the Bootstrap arrive through the bootstrap's export entry.
    answer.via = this.#exports.get(answer.resultExports[0] as ExportId);
    const received: Received = { message, payload };
    answer.settle(received);
    this.#sendReturn(answer, message);
  }

  #onFinish(questionId: number, releaseResultCaps: boolean): void {
    const id = answerIdFromPeer(questionId);
    const answer = this.#answers.get(id);
    if (answer === undefined || answer.finishReceived) {
      // A tombstone holds no capability: its Finish has nothing to release.
      if (answer === undefined && this.#answers.finishTombstone(id)) return;
      throw protocolError(`Finish for unknown question ${questionId}`);
    }
    answer.finishReceived = true;
    if (!answer.returnSent) {
      answer.releaseResultCapsOnReturn = releaseResultCaps;
      answer.cancel(canceledError());
      return;
    }
    this.#retireAnswer(answer, releaseResultCaps);
  }

  // ---- capabilities in messages: cap tables, exports, imports -----------------------------------

  /**
   * Turns the hooks in `message`'s cap table into the payload's CapDescriptors, exporting local
   * capabilities (each export recorded in `exported`). The message's own references are released
   * unless `keep` (an answer keeps them for calls pipelined on its results).
   */
  #writeCapTable(
    payload: rpc.Payload,
    message: Message,
    exported: ExportId[],
    scope: CallScope | undefined,
    keep: boolean,
  ): void {
    const hooks = capTableOf(message);
    if (hooks.length === 0) return;
    const list = payload.initCapTable(hooks.length);
    const before = exported.length;
    try {
      for (let i = 0; i < hooks.length; i++) {
        const d = list.get(i);
        const h = hooks[i];
        if (h === null || h === undefined) d.setNone();
        else this.#describe(h, d, exported, scope);
      }
    } catch (err) {
      // The message will not be sent: the peer never learns of the exports made for it.
      for (const id of exported.splice(before)) this.#exports.release(id, 1);
      throw err;
    }
    if (!keep) releaseCapTable(message);
  }

  #describe(
    hook: CapHook,
    d: rpc.CapDescriptor,
    exported: ExportId[],
    inherited: CallScope | undefined,
  ): void {
    const { hook: r, scope: mark, guards } = unwrapScope(hook);
    const scope = withGuards(mark ?? inherited, guards);
    if (r instanceof ImportClient && r.sender === this) {
      d.receiverHosted = r.importId;
      return;
    }
    if (r instanceof PipelineClient && r.sender === this) {
      const pa = d.initReceiverAnswer();
      pa.questionId = r.question.id;
      writeTransform(pa, r.ops);
      return;
    }
    const promise = isUnresolvedPromise(r);
    const { entry, created } = this.#exports.export(r, promise, scope);
    exported.push(entry.id);
    if (promise) d.senderPromise = entry.id;
    else d.senderHosted = entry.id;
    if (promise && created) {
      r.whenResolved().then(
        () => this.#sendResolve(entry),
        () => this.#sendResolve(entry),
      );
    }
  }

  /** Reads a payload's CapDescriptors into hooks, installed as the message's cap table. */
  #readCapTable(payload: rpc.Payload, message: Message): void {
    if (!payload.hasCapTable()) return;
    const list = payload.getCapTable();
    const table = capTableOf(message);
    const n = list.getLength();
    // Each descriptor is at least a word on the wire; a list claiming more is amplification.
    if (n > messageWords(message) || n > this.limits.maxImports + this.limits.maxExports) {
      throw new ParallaxError(
        ErrorCode.LIMIT,
        `a cap table of ${n} entries is larger than the message can hold`,
      );
    }
    for (let i = 0; i < n; i++) table.push(this.#readCap(list.get(i)));
  }

  #readCap(d: rpc.CapDescriptor): CapHook | null {
    switch (d.which()) {
      case rpc.CapDescriptor_Which.NONE:
        return null;
      case rpc.CapDescriptor_Which.SENDER_HOSTED:
        return this.#importCap(importIdFromPeer(d.senderHosted), false);
      case rpc.CapDescriptor_Which.SENDER_PROMISE:
        return this.#importCap(importIdFromPeer(d.senderPromise), true);
      case rpc.CapDescriptor_Which.RECEIVER_HOSTED: {
        const entry = this.#exports.get(exportIdFromPeer(d.receiverHosted));
        if (entry === undefined)
          throw protocolError(`receiverHosted names unknown export ${d.receiverHosted}`);
        // Handed back to us, it keeps answering to the scope it was handed out under.
        return entry.scope === undefined
          ? entry.hook.addRef()
          : new ScopedCapHook(entry.hook.addRef(), entry.scope, true);
      }
      case rpc.CapDescriptor_Which.RECEIVER_ANSWER: {
        const pa = d.receiverAnswer;
        const aid = answerIdFromPeer(pa.questionId);
        const answer = this.#answers.get(aid);
        const tombstone = answer === undefined ? this.#answers.tombstone(aid) : undefined;
        if (answer === undefined && tombstone === undefined)
          throw protocolError(`receiverAnswer names unknown question ${pa.questionId}`);
        const ops = readTransform(pa, this.limits);
        const cap =
          answer !== undefined
            ? this.#answerCap(answer, ops)
            : new BrokenCapHook((tombstone as AnswerTombstone).error());
        const scope = (answer ?? tombstone)?.scope;
        return scope === undefined ? cap : new ScopedCapHook(cap, scope, true);
      }
      case rpc.CapDescriptor_Which.THIRD_PARTY_HOSTED:
        // Level 3 is not spoken here; the spec lets a receiver use the vine instead.
        return this.#importCap(importIdFromPeer(d.thirdPartyHosted.vineId), false);
      default:
        throw protocolError(`unknown CapDescriptor kind ${d.which()}`);
    }
  }

  #importCap(id: ImportId, promise: boolean): CapHook {
    const existing = this.#imports.get(id);
    if (existing !== undefined) {
      existing.remoteRefs++;
      return existing.hook.addRef();
    }
    const hook = new ImportClient(this, id, promise);
    this.#imports.add(id, hook).remoteRefs = 1;
    return hook;
  }

  #onRelease(id: number, referenceCount: number): void {
    if (!this.#exports.release(exportIdFromPeer(id), referenceCount)) {
      throw protocolError(
        `Release of ${referenceCount} reference(s) to export ${id}, which the peer does not hold`,
      );
    }
  }

  // ---- resolution and embargoes -----------------------------------------------------------------

  /** Tells the peer what the promise it imported as `entry` resolved to. */
  #sendResolve(entry: ExportEntry): void {
    if (this.#closedError !== undefined || this.#exports.get(entry.id) !== entry) return;
    entry.promise = false;
    const { message, root } = newRpcMessage();
    const res = root.initResolve();
    res.promiseId = entry.id;
    const target = entry.hook.resolved();
    if (target instanceof BrokenCapHook) {
      writeException(res.initException(), target.error, this.#exposeStacks);
    } else {
      try {
        this.#describe(target, res.initCap(), [], entry.scope);
      } catch (err) {
        writeException(res.initException(), toParallaxError(err), this.#exposeStacks);
      }
    }
    this.#send(message);
  }

  #onResolve(r: rpc.Resolve): void {
    const entry = this.#imports.get(importIdFromPeer(r.promiseId));
    let hook: CapHook;
    if (r.which() === rpc.Resolve_Which.CAP) hook = this.#readCap(r.cap) ?? new BrokenCapHook(nullCapError());
    else if (r.which() === rpc.Resolve_Which.EXCEPTION) hook = new BrokenCapHook(readException(r.exception));
    else throw protocolError(`unknown Resolve kind ${r.which()}`);
    if (entry === undefined) {
      // We released the promise already; drop what it resolved to.
      hook.release();
      return;
    }
    const client = entry.hook;
    if (!client.isPromise) {
      hook.release();
      throw protocolError(`Resolve for import ${r.promiseId}, which is not a promise`);
    }
    if (client.callsSent && isLocal(hook, this)) {
      client.resolveTo(this.#embargo({ kind: "import", id: client.importId }, hook, () => {}));
    } else {
      client.resolveTo(hook);
    }
  }

  /** A hook that holds calls until the peer reflects a Disembargo, then forwards to `hook`. */
  #embargo(target: Target, hook: CapHook, lifted: () => void): CapHook {
    if (this.#embargoIds === undefined) this.#embargoIds = new IdAllocator();
    if (this.#embargoes === undefined) this.#embargoes = new Map();
    const ids = this.#embargoIds;
    const embargoes = this.#embargoes;
    const id = ids.take();
    const gate = new Promise<CapHook>((resolve, reject) => {
      embargoes.set(id, {
        resolve: () => {
          embargoes.delete(id);
          ids.give(id);
          lifted();
          resolve(hook);
        },
        reject: (e) => {
          embargoes.delete(id);
          hook.release();
          reject(e);
        },
      });
    });
    const { message, root } = newRpcMessage();
    const d = root.initDisembargo();
    this.#writeTarget(d.initTarget(), target);
    d.context.senderLoopback = id;
    this.#send(message);
    return new PromiseCapHook(gate);
  }

  #onDisembargo(d: rpc.Disembargo, bytes: Uint8Array): void {
    const ctx = d.context;
    switch (ctx.which()) {
      case rpc.Disembargo_Context_Which.SENDER_LOOPBACK: {
        // The peer learned that this target resolves back to it, so the target must have
        // resolved here already; only a path hook may still be a moment from settling.
        const target = d.target;
        const embargoId = ctx.senderLoopback;
        if (target.which() === rpc.MessageTarget_Which.IMPORTED_CAP) {
          const entry = this.#exports.get(exportIdFromPeer(target.importedCap));
          if (entry === undefined) throw protocolError(`Disembargo for unknown export ${target.importedCap}`);
          this.#reflectDisembargo(entry.hook.resolved(), embargoId);
          return;
        }
        const pa = target.promisedAnswer;
        const aid = answerIdFromPeer(pa.questionId);
        const answer = this.#answers.get(aid);
        const tombstone = answer === undefined ? this.#answers.tombstone(aid) : undefined;
        if (tombstone !== undefined && tombstone.code === undefined) {
          // Results without capabilities: whatever the path, it names no capability of the peer.
          readTransform(pa, this.limits);
          this.#reflectDisembargo(new BrokenCapHook(nullCapError()), embargoId);
          return;
        }
        const outcome = answer?.outcome;
        if (answer === undefined || outcome === undefined || outcome instanceof ParallaxError) {
          throw protocolError(`Disembargo for question ${pa.questionId}, which has no results`);
        }
        const ops = readTransform(pa, this.limits);
        const pipelined = answer.pipelines.get(ops.join("."));
        if (pipelined instanceof PromiseCapHook) {
          // Reflected once the calls queued on this path have been passed on.
          pipelined.whenSettled(() => this.#reflectDisembargo(pipelined.resolved(), embargoId));
          return;
        }
        const hook = capInResults(outcome, ops);
        this.#reflectDisembargo(hook.resolved(), embargoId);
        hook.release();
        return;
      }
      case rpc.Disembargo_Context_Which.RECEIVER_LOOPBACK: {
        const e = this.#embargoes?.get(ctx.receiverLoopback);
        if (e === undefined) throw protocolError(`Disembargo for unknown embargo ${ctx.receiverLoopback}`);
        e.resolve();
        return;
      }
      default:
        this.#sendUnimplemented(bytes);
    }
  }

  /** Sends a receiverLoopback Disembargo back along `r`, which must be the peer's capability. */
  #reflectDisembargo(r: CapHook, embargoId: number): void {
    if (this.#closedError !== undefined) return;
    const remote = hostedAcross(r, this);
    if (remote === undefined) {
      this.abort(protocolError("Disembargo target does not resolve to a capability the peer hosts"));
      return;
    }
    const { message, root } = newRpcMessage();
    const out = root.initDisembargo();
    this.#writeTarget(out.initTarget(), remote.target);
    out.context.receiverLoopback = embargoId;
    this.#send(message);
  }

  // ---- closing ----------------------------------------------------------------------------------

  #send(message: Message): void {
    if (this.#closedError !== undefined) return;
    this.#transport.send(encodeRpcMessage(message));
  }

  /** Aborts the connection for a protocol violation: tells the peer why, then closes. */
  abort(error: ParallaxError): void {
    if (this.#closedError !== undefined) return;
    const { message, root } = newRpcMessage();
    writeException(root.initAbort(), error, this.#exposeStacks);
    this.#send(message);
    // The transport trims the reason to what its close frame can carry.
    this.#transport.close(CloseCode.PROTOCOL_ERROR, error.message);
    this.#shutdown(error);
  }

  #shutdown(error: ParallaxError): void {
    if (this.#closedError !== undefined) return;
    this.#closedError = error;
    for (const q of this.#questions.values()) q.reject(error);
    for (const q of [...this.#questions.values()]) this.#resolvePipelines(q);
    this.#questions.clear();
    for (const a of this.#answers.values()) {
      a.cancel(error);
      for (const hook of a.pipelines.values()) hook.release();
      a.pipelines.clear();
      const outcome = a.outcome;
      if (outcome !== undefined && !(outcome instanceof ParallaxError)) releaseCapTable(outcome.message);
    }
    this.#answers.clear();
    for (const e of [...(this.#embargoes?.values() ?? [])]) e.reject(error);
    this.#imports.clear();
    this.#exports.clear();
    this.#bootstrap?.release();
    this.#bootstrap = undefined;
    for (const l of this.#closeListeners ?? []) {
      try {
        l(error);
      } catch {
        // a listener's failure must not stop the others
      }
    }
    this.#closeListeners = undefined;
  }
}

/**
 * True for a returned answer through whose results nothing can be reached: they hold no
 * capability (or the call failed), no call was pipelined on it before the Return, and it
 * exported nothing.
 */
function reachesNoCapability(answer: Answer): boolean {
  if (answer.pipelines.size > 0 || answer.resultExports.length > 0) return false;
  const outcome = answer.outcome;
  if (outcome === undefined) return false;
  if (outcome instanceof ParallaxError) return true;
  for (const hook of capTableOf(outcome.message)) if (hook !== null) return false;
  return true;
}

/** The connection a capability lives across, or undefined for a local (or broken) one. */
export function connectionOf(cap: Capability | CapHook): RpcConnection | undefined {
  const r = ("$hook" in cap ? cap.$hook : cap).resolved();
  return (r instanceof ImportClient || r instanceof PipelineClient) && r.sender instanceof RpcConnection
    ? r.sender
    : undefined;
}

/**
 * PB's notifyOnDisconnect: runs `listener` once when the connection carrying `cap` closes (a
 * server watching a client's callback capability). A local capability never disconnects: the
 * listener is never called. Returns a function that cancels the subscription.
 */
export function onDisconnect(
  cap: Capability | CapHook,
  listener: (error: ParallaxError) => void,
): () => void {
  const connection = connectionOf(cap);
  return connection === undefined ? () => {} : connection.onClose(listener);
}
