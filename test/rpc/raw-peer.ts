/**
 * A hostile (or merely hand-driven) peer for protocol tests.
 *
 * `RawPeer` owns one end of a `memoryPair`; the other end is a real `RpcConnection` serving the
 * demo bootstrap (or whatever capability the test gives it). The peer writes RPC messages by hand
 * with the generated rpc.capnp classes (or raw bytes, for frames no encoder would produce), and
 * decodes every message the server sends back into a queue that `next(kind)` consumes.
 *
 * Nothing here sleeps: `next` resolves on the message's arrival and rejects if the connection
 * closes first; `closed` resolves when the server ends the connection.
 */
import { type Message, type Pointer, Struct, type StructCtor } from "capnp-ts";
import type { Capability, MethodDescriptor } from "../../src/caps/index.js";
import type { ParallaxError } from "../../src/errors.js";
import type { Limits } from "../../src/limits.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { demoBootstrap } from "../../src/services/demo/demo-service.js";
import { memoryPair } from "../../src/transport/index.js";
import type { CloseInfo, Transport } from "../../src/transport/transport.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";
import { decodeRpcMessage, encodeRpcMessage, newRpcMessage } from "../../src/wire/message-codec.js";

/** Message kinds by name, as `rpc.Message.which()` numbers them. */
export const Kind = {
  unimplemented: rpc.Message_Which.UNIMPLEMENTED,
  abort: rpc.Message_Which.ABORT,
  bootstrap: rpc.Message_Which.BOOTSTRAP,
  call: rpc.Message_Which.CALL,
  return: rpc.Message_Which.RETURN,
  finish: rpc.Message_Which.FINISH,
  resolve: rpc.Message_Which.RESOLVE,
  release: rpc.Message_Which.RELEASE,
  disembargo: rpc.Message_Which.DISEMBARGO,
  obsoleteSave: rpc.Message_Which.OBSOLETE_SAVE,
  obsoleteDelete: rpc.Message_Which.OBSOLETE_DELETE,
  provide: rpc.Message_Which.PROVIDE,
  accept: rpc.Message_Which.ACCEPT,
  join: rpc.Message_Which.JOIN,
} as const;
export type KindName = keyof typeof Kind;

const KIND_NAMES = new Map<number, KindName>(
  Object.entries(Kind).map(([name, n]) => [n as number, name as KindName]),
);

export function kindName(which: number): KindName | `unknown(${number})` {
  return KIND_NAMES.get(which) ?? `unknown(${which})`;
}

/** One message the server sent, decoded. */
export interface Incoming {
  readonly kind: KindName | `unknown(${number})`;
  readonly root: rpc.Message;
  readonly message: Message;
  readonly bytes: Uint8Array;
}

export type Target = { importedCap: number } | { promisedAnswer: { qid: number; ops?: readonly number[] } };

export type CapDesc =
  | { none: true }
  | { senderHosted: number }
  | { senderPromise: number }
  | { receiverHosted: number }
  | { receiverAnswer: { qid: number; ops?: readonly number[] } }
  | { thirdPartyHosted: { vineId: number } };

export interface CallSpec<P extends Struct = Struct> {
  qid: number;
  target: Target;
  /** Supplies interfaceId, methodId and the params struct type (for `params`). */
  method?: MethodDescriptor<P, Struct>;
  interfaceId?: bigint;
  methodId?: number;
  /** Fills the params struct (a `method.Params` at the payload's content pointer). */
  params?: (params: P, message: Message) => void;
  /** Writes the payload's content pointer by hand; used instead of `params`. */
  content?: (content: Pointer, message: Message) => void;
  caps?: readonly CapDesc[];
}

/** What the server's side reported when the connection ended. */
export interface ServerClose {
  /** The close code and reason this end of the transport saw. */
  readonly code: number;
  readonly reason: string;
  /** The error the server connection closed with (`RpcConnection.onClose`). */
  readonly error: ParallaxError;
}

export interface RawPeerOptions {
  /** Limits of the memory transport pair and of the server connection. */
  limits?: Partial<Limits>;
  /** Limits of the server connection only (on top of `limits`). */
  serverLimits?: Partial<Limits>;
  /** What the server hands out for Bootstrap; default a fresh `demoBootstrap()`. */
  bootstrap?: Capability;
}

interface Waiter {
  readonly match: (m: Incoming) => boolean;
  readonly resolve: (m: Incoming) => void;
  readonly reject: (e: Error) => void;
}

/** Generous limits for decoding what the server sends (the server is not under test there). */
const READ_LIMITS = { maxSegments: 1 << 20, maxTraversalWords: 1 << 30, maxNestingDepth: 1 << 10 };

export class RawPeer {
  readonly server: RpcConnection;
  readonly transport: Transport;
  /** Every message received, in order (consumed or not). */
  readonly log: Incoming[] = [];
  /** Resolves once the server connection closed and this end saw the transport close. */
  readonly closed: Promise<ServerClose>;
  #pending: Incoming[] = [];
  #waiters: Waiter[] = [];
  #closeInfo: CloseInfo | undefined;
  /** Export ids (and how many references) we hold from Returns, by question id. */
  readonly #capsByQuestion = new Map<number, number[]>();
  /** References we hold on the server's exports. */
  readonly held = new Map<number, number>();

  static open(options: RawPeerOptions = {}): RawPeer {
    return new RawPeer(options);
  }

  private constructor(options: RawPeerOptions) {
    const [mine, theirs] = memoryPair(options.limits);
    const bootstrap = options.bootstrap ?? demoBootstrap();
    this.server = new RpcConnection(theirs, {
      bootstrap,
      limits: { ...options.limits, ...options.serverLimits },
    });
    bootstrap.dispose();
    this.transport = mine;
    const serverError = new Promise<ParallaxError>((resolve) => this.server.onClose(resolve));
    const transportClosed = new Promise<CloseInfo>((resolve) => {
      mine.onClose = (info) => {
        this.#closeInfo = info;
        for (const w of this.#waiters.splice(0)) w.reject(this.#closedBeforeError());
        resolve(info);
      };
    });
    this.closed = Promise.all([serverError, transportClosed]).then(([error, info]) => ({
      code: info.code,
      reason: info.reason,
      error,
    }));
    this.closed.catch(() => {});
    mine.onMessage = (bytes) => this.#receive(bytes);
  }

  // ---- receiving ---------------------------------------------------------------------------------

  #receive(bytes: Uint8Array): void {
    const { message, root } = decodeRpcMessage(bytes, READ_LIMITS);
    const m: Incoming = { kind: kindName(root.which()), root, message, bytes };
    this.log.push(m);
    if (m.kind === "return") this.#noteReturn(root.return);
    const i = this.#waiters.findIndex((w) => w.match(m));
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      w?.resolve(m);
    } else {
      this.#pending.push(m);
    }
  }

  #noteReturn(ret: rpc.Return): void {
    if (!ret.isResults() || !ret.results.hasCapTable()) return;
    const ids: number[] = [];
    for (const d of ret.results.capTable.toArray()) {
      const id = d.isSenderHosted() ? d.senderHosted : d.isSenderPromise() ? d.senderPromise : undefined;
      if (id === undefined) continue;
      ids.push(id);
      this.held.set(id, (this.held.get(id) ?? 0) + 1);
    }
    this.#capsByQuestion.set(ret.answerId, ids);
  }

  #closedBeforeError(): Error {
    const info = this.#closeInfo;
    const got = this.log.map((m) => m.kind).join(", ") || "nothing";
    return new Error(
      `the connection closed (${info?.code} ${info?.reason}) before the awaited message; received: ${got}`,
    );
  }

  /** The next unconsumed message of `kind` (and matching `where`), now or when it arrives. */
  next(kind: KindName, where: (root: rpc.Message) => boolean = () => true): Promise<Incoming> {
    const match = (m: Incoming): boolean => m.kind === kind && where(m.root);
    const i = this.#pending.findIndex(match);
    if (i >= 0) {
      const [m] = this.#pending.splice(i, 1);
      return Promise.resolve(m as Incoming);
    }
    if (this.#closeInfo !== undefined) return Promise.reject(this.#closedBeforeError());
    return new Promise((resolve, reject) => this.#waiters.push({ match, resolve, reject }));
  }

  /** The Return answering question `qid`. */
  returnOf(qid: number): Promise<rpc.Return> {
    return this.next("return", (r) => r.return.answerId === qid).then((m) => m.root.return);
  }

  /** Messages received and not yet consumed by `next`. */
  get unconsumed(): readonly Incoming[] {
    return this.#pending;
  }

  // ---- sending -----------------------------------------------------------------------------------

  /** Sends raw bytes as one frame. */
  send(bytes: Uint8Array): void {
    this.transport.send(bytes);
  }

  /** Builds one message with the generated classes; returns its encoding (already sent unless `send` is false). */
  build(fill: (root: rpc.Message, message: Message) => void, send = true): Uint8Array {
    const { message, root } = newRpcMessage();
    fill(root, message);
    const bytes = encodeRpcMessage(message);
    if (send) this.send(bytes);
    return bytes;
  }

  bootstrap(qid: number): Uint8Array {
    return this.build((root) => {
      root.initBootstrap().questionId = qid;
    });
  }

  /** Sends Bootstrap and waits for its Return; resolves to the bootstrap's export id. */
  async bootstrapped(qid = 0): Promise<number> {
    this.bootstrap(qid);
    const ret = await this.returnOf(qid);
    if (!ret.isResults()) throw new Error(`Bootstrap failed: ${ret.exception.reason}`);
    const d = ret.results.capTable.get(0);
    return d.senderHosted;
  }

  call<P extends Struct>(spec: CallSpec<P>): Uint8Array {
    return this.build((root, message) => writeCall(root.initCall(), message, spec));
  }

  finish(qid: number, releaseResultCaps = false): Uint8Array {
    if (releaseResultCaps) {
      for (const id of this.#capsByQuestion.get(qid) ?? []) this.#drop(id, 1);
    }
    this.#capsByQuestion.delete(qid);
    return this.build((root) => {
      const f = root.initFinish();
      f.questionId = qid;
      f.releaseResultCaps = releaseResultCaps;
    });
  }

  release(id: number, referenceCount: number): Uint8Array {
    this.#drop(id, referenceCount);
    return this.build((root) => {
      const r = root.initRelease();
      r.id = id;
      r.referenceCount = referenceCount;
    });
  }

  /** Releases every reference this peer holds on the server's exports. */
  releaseAll(): void {
    for (const [id, n] of [...this.held]) this.release(id, n);
  }

  #drop(id: number, n: number): void {
    const left = (this.held.get(id) ?? 0) - n;
    if (left > 0) this.held.set(id, left);
    else this.held.delete(id);
  }

  resolve(promiseId: number, to: { cap: CapDesc } | { exception: string }): Uint8Array {
    return this.build((root) => {
      const r = root.initResolve();
      r.promiseId = promiseId;
      if ("cap" in to) writeCapDesc(r.initCap(), to.cap);
      else r.initException().reason = to.exception;
    });
  }

  disembargo(
    target: Target,
    context: { senderLoopback: number } | { receiverLoopback: number } | { accept: true },
  ): Uint8Array {
    return this.build((root) => {
      const d = root.initDisembargo();
      writeTarget(d.initTarget(), target);
      if ("senderLoopback" in context) d.context.senderLoopback = context.senderLoopback;
      else if ("receiverLoopback" in context) d.context.receiverLoopback = context.receiverLoopback;
      else d.context.setAccept();
    });
  }

  /** Echoes `original` back as Unimplemented. */
  unimplemented(original: rpc.Message): Uint8Array {
    return this.build((root) => root.setUnimplemented(original));
  }

  abort(reason: string): Uint8Array {
    return this.build((root) => {
      root.initAbort().reason = reason;
    });
  }

  /** Closes this end politely (the server sees the peer go away). */
  close(): void {
    this.transport.close(1000, "raw peer done");
  }
}

// ---- writing rpc structs ---------------------------------------------------------------------------

export function writeTarget(t: rpc.MessageTarget, target: Target): void {
  if ("importedCap" in target) {
    t.importedCap = target.importedCap;
    return;
  }
  const pa = t.initPromisedAnswer();
  writePromisedAnswer(pa, target.promisedAnswer.qid, target.promisedAnswer.ops ?? []);
}

function writePromisedAnswer(pa: rpc.PromisedAnswer, qid: number, ops: readonly number[]): void {
  pa.questionId = qid;
  if (ops.length === 0) return;
  const list = pa.initTransform(ops.length);
  for (let i = 0; i < ops.length; i++) list.get(i).getPointerField = ops[i] as number;
}

export function writeCapDesc(d: rpc.CapDescriptor, c: CapDesc): void {
  if ("none" in c) d.setNone();
  else if ("senderHosted" in c) d.senderHosted = c.senderHosted;
  else if ("senderPromise" in c) d.senderPromise = c.senderPromise;
  else if ("receiverHosted" in c) d.receiverHosted = c.receiverHosted;
  else if ("receiverAnswer" in c)
    writePromisedAnswer(d.initReceiverAnswer(), c.receiverAnswer.qid, c.receiverAnswer.ops ?? []);
  else d.initThirdPartyHosted().vineId = c.thirdPartyHosted.vineId;
}

export function writeCall<P extends Struct>(call: rpc.Call, message: Message, spec: CallSpec<P>): void {
  call.questionId = spec.qid;
  writeTarget(call.initTarget(), spec.target);
  call.interfaceId = spec.interfaceId ?? spec.method?.interfaceId ?? 0n;
  call.methodId = spec.methodId ?? spec.method?.methodId ?? 0;
  const payload = call.initParams();
  if (spec.content !== undefined) {
    spec.content(Struct.getPointer(0, payload), message);
  } else if (spec.method !== undefined) {
    const params = Struct.initStructAt(0, spec.method.Params as StructCtor<P>, payload);
    spec.params?.(params, message);
  }
  const caps = spec.caps ?? [];
  if (caps.length > 0) {
    const list = payload.initCapTable(caps.length);
    for (let i = 0; i < caps.length; i++) writeCapDesc(list.get(i), caps[i] as CapDesc);
  }
}

// ---- hand-built content --------------------------------------------------------------------------

/**
 * Writes pointers and objects word by word inside one single-segment message, for content no
 * schema would produce (shared targets, chains, wrong pointer kinds). Offsets are byte offsets in
 * that segment.
 */
export class RawWords {
  constructor(readonly message: Message) {}

  get segment() {
    return this.message.getSegment(0);
  }

  /** Allocates `words` zeroed words; returns their byte offset. */
  alloc(words: number): number {
    const p = this.segment.allocate(words * 8);
    if (p.segment !== this.segment) throw new Error("RawWords needs a single-segment message");
    return p.byteOffset;
  }

  /** A struct pointer at `at` to `dataWords` + `ptrWords` words at `target`. */
  structPtr(at: number, target: number, dataWords: number, ptrWords: number): void {
    const offset = (target - at - 8) / 8;
    this.segment.setUint32(at, ((offset << 2) | 0) >>> 0);
    this.segment.setUint32(at + 4, (dataWords & 0xffff) | ((ptrWords & 0xffff) << 16));
  }

  /** A list pointer at `at` to `count` elements of `elementSize` (capnp's 0..7) at `target`. */
  listPtr(at: number, target: number, elementSize: number, count: number): void {
    const offset = (target - at - 8) / 8;
    this.segment.setUint32(at, ((offset << 2) | 1) >>> 0);
    this.segment.setUint32(at + 4, ((count << 3) | elementSize) >>> 0);
  }

  /** A capability pointer at `at` naming cap-table index `index`. */
  capPtr(at: number, index: number): void {
    this.segment.setUint32(at, 3);
    this.segment.setUint32(at + 4, index);
  }

  /** A byte list (Data or Text) holding `bytes`; returns its byte offset. */
  bytes(bytes: Uint8Array): number {
    const at = this.alloc(Math.ceil(bytes.length / 8));
    for (let i = 0; i < bytes.length; i++) this.segment.setUint8(at + i, bytes[i] as number);
    return at;
  }
}

export const ElementSize = {
  VOID: 0,
  BIT: 1,
  BYTE: 2,
  TWO_BYTES: 3,
  FOUR_BYTES: 4,
  EIGHT_BYTES: 5,
  POINTER: 6,
  COMPOSITE: 7,
} as const;

// ---- process-wide failures -----------------------------------------------------------------------

/** Records uncaught exceptions and unhandled rejections until `stop()`; the test asserts none. */
export function trapProcessErrors(): { readonly errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onError = (err: unknown): void => {
    errors.push(err);
  };
  process.on("uncaughtException", onError);
  process.on("unhandledRejection", onError);
  return {
    errors,
    stop() {
      process.off("uncaughtException", onError);
      process.off("unhandledRejection", onError);
    },
  };
}
