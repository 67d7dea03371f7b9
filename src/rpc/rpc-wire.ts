/**
 * Pure helpers of the RPC engine: the pieces of rpc.capnp messages (targets, promised-answer
 * paths) it writes and reads, capabilities found in received results, and what a failure while
 * receiving becomes. None of them holds state; the connection owns every table.
 *
 * Tests: test/rpc/ (rpc-connection, hostile, fuzz).
 */
import { Struct } from "capnp-ts";
import { BrokenCapHook, type CapHook, capAtPath, hookAt, PromiseCapHook } from "../caps/index.js";
import { ErrorCode, malformedError, nullCapError, ParallaxError, toParallaxError } from "../errors.js";
import type { Limits } from "../limits.js";
import { isReadLimitFailure } from "../wire/capnp-internals.js";
import type { EnvelopeTarget } from "../wire/envelope.js";
import type * as rpc from "../wire/gen/capnp/rpc.js";
import type { Received } from "./question-table.js";
import { ImportClient, PipelineClient, type RemoteSender, type Target } from "./remote-hooks.js";

export function envelopeTarget(target: Target): EnvelopeTarget {
  return target.kind === "import"
    ? { kind: "import", id: target.id }
    : { kind: "answer", questionId: target.question.id, ops: target.ops };
}

export function writeTransform(pa: rpc.PromisedAnswer, ops: readonly number[]): void {
  if (ops.length === 0) return;
  const list = pa.initTransform(ops.length);
  for (let i = 0; i < ops.length; i++) list.get(i).getPointerField = ops[i] as number;
}

/** A PromisedAnswer's pointer path; a path longer than the nesting limit cannot lead anywhere. */
export function readTransform(pa: rpc.PromisedAnswer, limits: Pick<Limits, "maxNestingDepth">): number[] {
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
export function capInResults(r: Received, ops: readonly number[]): CapHook {
  let hook: CapHook | null;
  try {
    hook =
      ops.length === 0
        ? hookAt(Struct.getPointer(0, r.payload))
        : capAtPath(Struct.getPointerAs(0, Struct, r.payload), ops);
  } catch {
    hook = null;
  }
  return hook === null ? new BrokenCapHook(nullCapError()) : hook.addRef();
}

/** True for a promise capability that has not resolved yet (exported as senderPromise). */
export function isUnresolvedPromise(h: CapHook): boolean {
  return h instanceof PromiseCapHook && h.resolved() === h;
}

/** What `hook` resolves to when that is a capability the peer across `conn` hosts. */
export function hostedAcross(hook: CapHook, conn: RemoteSender): ImportClient | PipelineClient | undefined {
  const r = hook.resolved();
  return (r instanceof ImportClient || r instanceof PipelineClient) && r.sender === conn ? r : undefined;
}

/**
 * True when calls to `hook` would not travel over `conn`, so that they could overtake calls sent
 * over it earlier (a broken capability fails every call at once: order cannot matter).
 */
export function isLocal(hook: CapHook, conn: RemoteSender): boolean {
  return !(hook.resolved() instanceof BrokenCapHook) && hostedAcross(hook, conn) === undefined;
}

/**
 * How much of capnp-ts's own error text an Abort reason quotes. Its messages name the pointer
 * they failed on and may append a hex dump of it: the start says what went wrong, the rest would
 * only lengthen what we send and log. A limit needs less (the code and the limit say it).
 */
const LIMIT_DETAIL_CHARS = 60;
const MALFORMED_DETAIL_CHARS = 200;

/** What a failure while handling a received message becomes: the reason the connection is aborted. */
export function receiveError(err: unknown): ParallaxError {
  const e = toParallaxError(err);
  if (e.code === ErrorCode.PROTOCOL || e.code === ErrorCode.MALFORMED_MESSAGE || e.code === ErrorCode.LIMIT)
    return e;
  // capnp-ts's own read limits (nesting depth, traversal words) are our limits.
  if (isReadLimitFailure(e.message)) {
    return new ParallaxError(
      ErrorCode.LIMIT,
      `message exceeds maxNestingDepth or maxTraversalWords (${e.message.slice(0, LIMIT_DETAIL_CHARS)})`,
    );
  }
  return malformedError(e.message.slice(0, MALFORMED_DETAIL_CHARS));
}
