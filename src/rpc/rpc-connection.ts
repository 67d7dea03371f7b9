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
 */
import { type Message, ObjectSize, type Pointer, Struct, type StructCtor } from "capnp-ts";
import {
  BrokenCapHook,
  brokenResult,
  type CallContext,
  type CallOptions,
  type CapHook,
  type CapabilityCtor,
  type Capability,
  type CallScope,
  capAtPath,
  capTableOf,
  findMethod,
  holdResults,
  hookAt,
  LocalCapHook,
  type MethodDescriptor,
  type ParamsFiller,
  PromiseCapHook,
  releaseCapTable,
  releaseResults,
  ScopedCapHook,
  unwrapScope,
  withGuards,
  type ResultHook,
} from "../caps/index.js";
import { ErrorCode, ParallaxError, toParallaxError } from "../errors.js";
import { type Limits, resolveLimits } from "../limits.js";
import type { Transport } from "../transport/transport.js";
import * as rpc from "../wire/gen/capnp/rpc.js";
import {
  buildCall,
  buildReturn,
  type EnvelopeTarget,
  echoAsUnimplemented,
  encodeFinish,
  encodeRelease,
  readEnvelope,
} from "../wire/envelope.js";
import { deepCopy } from "../wire/deep-copy.js";
import { initStruct, messageWords, getStruct as readStruct } from "../wire/fast-struct.js";
import { decodeRpcMessage, encodeRpcMessage, newRpcMessage, readableMessage } from "../wire/message-codec.js";
import {
  type AnswerId,
  answerIdFromPeer,
  type ExportId,
  exportIdFromPeer,
  type ImportId,
  importIdFromPeer,
  questionIdFromPeer,
} from "../wire/rpc-ids.js";
import { Answer, AnswerTable } from "./answer-table.js";
import { type ExportEntry, ExportTable } from "./export-table.js";
import { IdAllocator } from "./id-allocator.js";
import { ImportTable } from "./import-table.js";
import { type Question, QuestionTable, type Received } from "./question-table.js";
import { ImportClient, PipelineClient, type RemoteSender, type Target } from "./remote-hooks.js";

export interface RpcConnectionOptions {
  /** The capability the peer receives when it sends Bootstrap; absent: Bootstrap fails. */
  readonly bootstrap?: CapHook | Capability;
  readonly limits?: Partial<Limits>;
  /** Send exception stack traces to the peer (debugging only). */
  readonly exposeStacks?: boolean;
}

export interface ConnectionStats {
  readonly questions: number;
  readonly answers: number;
  readonly imports: number;
  readonly exports: number;
  readonly embargoes: number;
}

const EXCEPTION_TYPE: Record<ParallaxError["kind"], number> = {
  failed: rpc.Exception_Type.FAILED,
  overloaded: rpc.Exception_Type.OVERLOADED,
  disconnected: rpc.Exception_Type.DISCONNECTED,
  unimplemented: rpc.Exception_Type.UNIMPLEMENTED,
};
const KIND_OF_TYPE = ["failed", "overloaded", "disconnected", "unimplemented"] as const;

/** How many times `maxQuestionsInFlight` answered-but-unfinished calls a peer may hold. */
const FINISH_SLACK = 4;

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
  /** Pipelined clients waiting for their question's Return. */
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
    this.#bootstrap?.release();
    this.#bootstrap = undefined;
    this.#bootstrap = "$hook" in cap ? cap.$hook.addRef() : cap.addRef();
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
    this.#transport.close(1000, reason);
    this.#shutdown(new ParallaxError(ErrorCode.DISCONNECTED, reason));
  }

  // ---- outgoing calls ---------------------------------------------------------------------------

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
      return brokenResult(badArgument(err));
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

  // ---- cap tables ---------------------------------------------------------------------------------

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
    const before = this.#exports.size;
    const entry = this.#exports.export(r, promise, scope);
    exported.push(entry.id);
    if (promise) d.senderPromise = entry.id;
    else d.senderHosted = entry.id;
    if (promise && this.#exports.size > before) {
      r.whenResolved().then(
        () => this.#sendResolve(entry),
        () => this.#sendResolve(entry),
      );
    }
  }

  #sendResolve(entry: ExportEntry): void {
    if (this.#closedError !== undefined || this.#exports.get(entry.id) !== entry) return;
    entry.promise = false;
    const { message, root } = newRpcMessage();
    const res = root.initResolve();
    res.promiseId = entry.id;
    const target = entry.hook.resolved();
    if (target instanceof BrokenCapHook) {
      this.#writeException(res.initException(), target.error);
    } else {
      try {
        this.#describe(target, res.initCap(), [], entry.scope);
      } catch (err) {
        this.#writeException(res.initException(), toParallaxError(err));
      }
    }
    this.#send(message);
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
        const answer = this.#answers.get(answerIdFromPeer(pa.questionId));
        if (answer === undefined)
          throw protocolError(`receiverAnswer names unknown question ${pa.questionId}`);
        const cap = this.#answerCap(answer, readTransform(pa, this.limits));
        return answer.scope === undefined ? cap : new ScopedCapHook(cap, answer.scope, true);
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

  // ---- receiving ----------------------------------------------------------------------------------

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
          const message = readableMessage(bytes, 1, 8, this.limits);
          const payload = new rpc.Payload(message.getSegment(0), env.payloadAt, this.limits.maxNestingDepth);
          this.#onCall(message, { ...env, payload });
          break;
        }
        case "results": {
          const message = readableMessage(bytes, 1, 8, this.limits);
          const payload = new rpc.Payload(message.getSegment(0), env.payloadAt, this.limits.maxNestingDepth);
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
        this.#transport.close(1000, "peer aborted");
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
    let via: ExportEntry | Answer;
    if (target.kind === "import") {
      const entry = this.#exports.get(exportIdFromPeer(target.id));
      if (entry === undefined) throw protocolError(`call to unknown export ${target.id}`);
      hook = entry.hook.addRef();
      via = entry;
    } else {
      const answer = this.#answers.get(answerIdFromPeer(target.questionId));
      if (answer === undefined)
        throw protocolError(`call pipelined on unknown question ${target.questionId}`);
      hook = this.#answerCap(answer, target.ops);
      via = answer;
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

  #newAnswer(id: AnswerId, via: ExportEntry | Answer | undefined): Answer {
    const answer = new Answer(id, via);
    // Answered calls wait only for the peer's Finish; a peer that never sends it would keep them all.
    if (this.#answers.size >= FINISH_SLACK * this.limits.maxQuestionsInFlight) {
      throw new ParallaxError(
        ErrorCode.LIMIT,
        `the peer holds more than ${FINISH_SLACK} × maxQuestionsInFlight answered calls without finishing them`,
      );
    }
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
        this.#returnError(answer, badArgument(err));
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
    this.#writeException(ret.initException(), error);
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
    putCap(Struct.getPointer(0, payload), this.#bootstrap.addRef());
    this.#writeCapTable(payload, message, answer.resultExports, undefined, true);
    // Calls pipelined on the Bootstrap arrive through the bootstrap's export entry.
    answer.via = this.#exports.get(answer.resultExports[0] as ExportId);
    const received: Received = { message, payload };
    answer.settle(received);
    this.#sendReturn(answer, message);
  }

  #onReturn(message: Message, bytes: Uint8Array, ret: rpc.Return): void {
    if (ret.which() === rpc.Return_Which.RESULTS) {
      this.#onResults(message, ret.answerId, ret.releaseParamCaps, ret.results);
      return;
    }
    const q = this.#returned(ret.answerId, ret.releaseParamCaps);
    switch (ret.which()) {
      case rpc.Return_Which.EXCEPTION:
        q.reject(this.#readException(ret.exception));
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

  #sendFinish(q: Question): void {
    if (q.finishSent || this.#closedError !== undefined) return;
    q.finishSent = true;
    this.#transport.send(encodeFinish(q.id, false));
  }

  #onFinish(questionId: number, releaseResultCaps: boolean): void {
    const answer = this.#answers.get(answerIdFromPeer(questionId));
    if (answer === undefined || answer.finishReceived) {
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

  #onRelease(id: number, referenceCount: number): void {
    if (!this.#exports.release(exportIdFromPeer(id), referenceCount)) {
      throw protocolError(
        `Release of ${referenceCount} reference(s) to export ${id}, which the peer does not hold`,
      );
    }
  }

  #onResolve(r: rpc.Resolve): void {
    const entry = this.#imports.get(importIdFromPeer(r.promiseId));
    let hook: CapHook;
    if (r.which() === rpc.Resolve_Which.CAP) hook = this.#readCap(r.cap) ?? new BrokenCapHook(nullCap());
    else if (r.which() === rpc.Resolve_Which.EXCEPTION)
      hook = new BrokenCapHook(this.#readException(r.exception));
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
        const answer = this.#answers.get(answerIdFromPeer(pa.questionId));
        if (answer?.outcome === undefined || answer.outcome instanceof ParallaxError) {
          throw protocolError(`Disembargo for question ${pa.questionId}, which has no results`);
        }
        const ops = readTransform(pa, this.limits);
        const pipelined = answer.pipelines.get(ops.join("."));
        if (pipelined instanceof PromiseCapHook) {
          // Reflected once the calls queued on this path have been passed on.
          pipelined.whenSettled(() => this.#reflectDisembargo(pipelined.resolved(), embargoId));
          return;
        }
        const hook = capInResults(answer.outcome, ops);
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
    if (!((r instanceof ImportClient || r instanceof PipelineClient) && r.sender === this)) {
      this.abort(protocolError("Disembargo target does not resolve to a capability the peer hosts"));
      return;
    }
    const { message, root } = newRpcMessage();
    const out = root.initDisembargo();
    this.#writeTarget(out.initTarget(), r.target);
    out.context.receiverLoopback = embargoId;
    this.#send(message);
  }

  #onUnimplemented(m: rpc.Message): void {
    switch (m.which()) {
      case rpc.Message_Which.CALL: {
        const q = this.#questions.get(questionIdFromPeer(m.call.questionId));
        if (q === undefined || q.returned) return;
        q.returned = true;
        q.finishSent = true;
        for (const id of q.paramExports) this.#exports.release(id, 1);
        q.reject(new ParallaxError(ErrorCode.UNIMPLEMENTED, "the peer does not implement Call"));
        this.#resolvePipelines(q);
        this.#questions.retireIfDone(q);
        return;
      }
      case rpc.Message_Which.BOOTSTRAP: {
        const q = this.#questions.get(questionIdFromPeer(m.bootstrap.questionId));
        if (q === undefined || q.returned) return;
        q.returned = true;
        q.finishSent = true;
        q.reject(new ParallaxError(ErrorCode.UNIMPLEMENTED, "the peer does not implement Bootstrap"));
        this.#resolvePipelines(q);
        this.#questions.retireIfDone(q);
        return;
      }
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

  // ---- errors, sending, closing -------------------------------------------------------------------

  #writeException(ex: rpc.Exception, error: ParallaxError): void {
    ex.reason = `[${error.code}] ${error.message}`;
    ex.type = EXCEPTION_TYPE[error.kind] as rpc.Exception_Type;
    if (this.#exposeStacks && error.stack !== undefined) ex.trace = error.stack;
  }

  #readException(ex: rpc.Exception): ParallaxError {
    return ParallaxError.fromRemote(KIND_OF_TYPE[ex.type] ?? "failed", ex.reason);
  }

  #send(message: Message): void {
    if (this.#closedError !== undefined) return;
    this.#transport.send(encodeRpcMessage(message));
  }

  /** Aborts the connection for a protocol violation: tells the peer why, then closes. */
  abort(error: ParallaxError): void {
    if (this.#closedError !== undefined) return;
    const { message, root } = newRpcMessage();
    this.#writeException(root.initAbort(), error);
    this.#send(message);
    this.#transport.close(1002, error.message.slice(0, 120));
    this.#shutdown(error);
  }

  #forget(q: Question): void {
    q.returned = true;
    q.finishSent = true;
    this.#questions.retireIfDone(q);
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

/** The pending results of one of our questions. */
class QuestionResult<R extends Struct> implements ResultHook<R> {
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
class AnswerContext implements CallContext {
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
class AnyPointerStruct extends Struct {
  static override readonly _capnp = { displayName: "AnyStruct", id: "0", size: new ObjectSize(0, 0) };
}

function envelopeTarget(target: Target): EnvelopeTarget {
  return target.kind === "import"
    ? { kind: "import", id: target.id }
    : { kind: "answer", questionId: target.question.id, ops: target.ops };
}

function writeTransform(pa: rpc.PromisedAnswer, ops: readonly number[]): void {
  if (ops.length === 0) return;
  const list = pa.initTransform(ops.length);
  for (let i = 0; i < ops.length; i++) list.get(i).getPointerField = ops[i] as number;
}

/** A PromisedAnswer's pointer path; a path longer than the nesting limit cannot lead anywhere. */
function readTransform(pa: rpc.PromisedAnswer, limits: Pick<Limits, "maxNestingDepth">): number[] {
  if (!pa.hasTransform()) return [];
  const list = pa.transform;
  const n = list.getLength();
  if (n > limits.maxNestingDepth) {
    throw new ParallaxError(ErrorCode.LIMIT, `a promised-answer path of ${n} steps exceeds maxNestingDepth`);
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const op = list.get(i);
    if (op.isGetPointerField()) out.push(op.getPointerField);
    // noop ops are skipped, as the spec says
  }
  return out;
}

/** The capability at `ops` in received results (empty ops: the content itself), with a new reference. */
function capInResults(r: Received, ops: readonly number[]): CapHook {
  let hook: CapHook | null;
  try {
    hook =
      ops.length === 0
        ? hookAt(Struct.getPointer(0, r.payload))
        : capAtPath(Struct.getPointerAs(0, Struct, r.payload), ops);
  } catch {
    hook = null;
  }
  return hook === null ? new BrokenCapHook(nullCap()) : hook.addRef();
}

/** Writes `hook` (whose reference the message takes) into a pointer slot. */
function putCap(p: Pointer, hook: CapHook): void {
  const table = capTableOf(p.segment.message);
  const capId = table.push(hook) - 1;
  p.segment.setUint32(p.byteOffset, 3);
  p.segment.setUint32(p.byteOffset + 4, capId);
}

function isUnresolvedPromise(h: CapHook): boolean {
  return h instanceof PromiseCapHook && h.resolved() === h;
}

/**
 * True when calls to `hook` would not travel over `conn`, so that they could overtake calls sent
 * over it earlier (a broken capability fails every call at once: order cannot matter).
 */
function isLocal(hook: CapHook, conn: RpcConnection): boolean {
  const r = hook.resolved();
  if (r instanceof BrokenCapHook) return false;
  return !((r instanceof ImportClient || r instanceof PipelineClient) && r.sender === conn);
}

/** What a failure while handling a received message becomes: the reason the connection is aborted. */
function receiveError(err: unknown): ParallaxError {
  const e = toParallaxError(err);
  if (e.code === ErrorCode.PROTOCOL || e.code === ErrorCode.MALFORMED_MESSAGE || e.code === ErrorCode.LIMIT)
    return e;
  // capnp-ts's own read limits (nesting depth CAPNP-TS011, traversal CAPNP-TS022) are our limits.
  if (/CAPNP-TS0(11|22)\b/.test(e.message)) {
    return new ParallaxError(
      ErrorCode.LIMIT,
      `message exceeds maxNestingDepth or maxTraversalWords (${e.message.slice(0, 60)})`,
    );
  }
  return new ParallaxError(ErrorCode.MALFORMED_MESSAGE, `malformed message: ${e.message.slice(0, 200)}`);
}

function protocolError(why: string): ParallaxError {
  return new ParallaxError(ErrorCode.PROTOCOL, `protocol violation: ${why}`);
}

function canceledError(): ParallaxError {
  return new ParallaxError(ErrorCode.CANCELED, "the call was canceled");
}

function nullCap(): ParallaxError {
  return new ParallaxError(ErrorCode.FAILED, "no capability at that place in the results");
}

function badArgument(err: unknown): ParallaxError {
  const e = toParallaxError(err);
  return e.code === ErrorCode.FAILED
    ? new ParallaxError(ErrorCode.BAD_ARGUMENT, e.message, { cause: err })
    : e;
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
