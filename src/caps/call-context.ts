/**
 * What a server method receives beside its params.
 *
 * Tests: test/caps/local-capability.test.ts (ctx.results, signal),
 * test/rpc/rpc-connection.test.ts (ctx.origin).
 */
import type { Struct } from "capnp-ts";
import type { MethodDescriptor } from "./interface-descriptor.js";

/**
 * What a layer above the engine (the login layer) hangs on the capabilities it hands out over a
 * connection. Every call that arrives through such a capability, and every capability handed
 * out in its results, is under the same scope unless a result is scoped itself (`scoped()`).
 *
 * The engine calls `enterCall` before running a call and `leaveCall` exactly once after each
 * admitted call is answered; `enterExport` when the peer comes to hold a capability under the
 * scope and `leaveExport` when it lets go. `enterCall` and `enterExport` refuse by throwing a
 * ParallaxError (revoked, quota), which fails that call only.
 */
export interface CallScope {
  enterCall(): void;
  leaveCall(): void;
  enterExport(): void;
  leaveExport(): void;
  /** Throws if calls under this scope are no longer allowed, without counting anything. */
  check?(): void;
}

/**
 * Where a call came from. The RPC layer fills it with the connection, the export entry the call
 * arrived through and the scope it runs under. Local calls have no origin.
 */
export interface CallOrigin {
  readonly connection: object;
  readonly exportEntry?: object;
  readonly scope?: CallScope;
}

export interface CallContext<R extends Struct = Struct> {
  readonly method: MethodDescriptor;
  /** Aborts when the caller cancels the call or the connection closes. */
  readonly signal: AbortSignal;
  /** Same as `signal.aborted`, without making a signal for calls that never look at one. */
  readonly aborted: boolean;
  /** The results builder, allocated on first use. A method may fill it instead of returning a shape. */
  readonly results: R;
  readonly origin: CallOrigin | undefined;
}
