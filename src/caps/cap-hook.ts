/**
 * The contract between typed stubs and whatever carries their calls.
 *
 * A `CapHook` is one reference-counted handle on a capability: a local server object, a promise
 * that will resolve to a capability, a broken capability, or (in the RPC layer) an import from a
 * peer. Stubs never know which. Each `addRef()` must be paired with one `release()`; the object
 * behind the hook is released when the count reaches zero.
 *
 * Tests: every hook's tests: test/caps/, test/rpc/.
 */
import type { Struct } from "capnp-ts";
import type { MethodDescriptor } from "./interface-descriptor.js";

/** Writes a call's parameters into the params struct the hook allocated. */
export type ParamsFiller<P extends Struct = Struct> = (params: P) => void;

export interface CallOptions {
  /** Aborting cancels the call: the caller's promise rejects and the callee sees its signal abort. */
  readonly signal?: AbortSignal;
}

export interface CapHook {
  /**
   * Starts a call. `fill` runs once, before the call is delivered: synchronously for local and
   * remote targets, later for a promise that has not resolved yet.
   */
  call<P extends Struct, R extends Struct>(
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options?: CallOptions,
  ): ResultHook<R>;
  /** Adds a reference and returns the hook to hold it by (usually `this`). */
  addRef(): CapHook;
  /** Drops one reference. */
  release(): void;
  /** Settles once the hook no longer is an unresolved promise. */
  whenResolved(): Promise<void>;
  /** What the hook stands for right now: the resolution of a settled promise, else itself. */
  resolved(): CapHook;
}

/** The pending results of one call. */
export interface ResultHook<R extends Struct = Struct> {
  /** Fulfils with the results, or rejects with a ParallaxError. */
  readonly promise: Promise<R>;
  /**
   * A capability found by following pointer indexes `ops` from the results' root, usable before
   * the results arrive (promise pipelining). The caller owns the returned reference.
   */
  pipelinedCap(ops: readonly number[]): CapHook;
  /**
   * The caller is done with these results: capabilities in them that nobody took a reference on
   * are released now rather than when the results are garbage-collected. Before the results
   * arrive, this cancels the call.
   */
  dispose?(): void;
}
