/**
 * What a server method receives beside its params.
 */
import type { Struct } from "capnp-ts";
import type { MethodDescriptor } from "./interface-descriptor.js";

/**
 * Where a call came from. The RPC layer fills it with the connection and the export entry the
 * call arrived through; the login layer hangs the caller's Perspective on that entry. Local calls
 * have no origin.
 */
export interface CallOrigin {
  readonly connection: object;
  readonly exportEntry?: object;
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
