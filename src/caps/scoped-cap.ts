/**
 * A capability marked with the CallScope it is to be handed out under.
 *
 * The mark matters only when the capability crosses a connection: the RPC layer exports the
 * inner capability under the mark's scope instead of the scope of the call that returned it, and
 * calls pipelined on it run under that scope too. Called locally, a scoped capability is its
 * inner capability. The wrapper holds one reference on the inner hook, dropped with its last.
 */
import type { Struct } from "capnp-ts";
import type { CallOptions, CapHook, ParamsFiller, ResultHook } from "./cap-hook.js";
import type { CallScope } from "./call-context.js";
import type { Capability } from "./capability.js";
import type { MethodDescriptor } from "./interface-descriptor.js";

export class ScopedCapHook implements CapHook {
  #refs = 1;

  /** Takes over the caller's reference on `inner`. */
  constructor(
    readonly inner: CapHook,
    readonly scope: CallScope,
  ) {}

  call<P extends Struct, R extends Struct>(
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options?: CallOptions,
  ): ResultHook<R> {
    return this.inner.call(method, fill, options);
  }

  addRef(): CapHook {
    this.#refs++;
    return this;
  }

  release(): void {
    if (this.#refs <= 0) return;
    if (--this.#refs === 0) this.inner.release();
  }

  whenResolved(): Promise<void> {
    return this.inner.whenResolved();
  }

  /** Itself: the mark must survive until the capability is exported. */
  resolved(): CapHook {
    return this;
  }
}

/**
 * A stub of the same type as `cap` that the RPC layer hands out under `scope`. Takes over `cap`'s
 * reference: `cap` must not be used afterwards.
 */
export function scoped<C extends Capability>(cap: C, scope: CallScope): C {
  const Ctor = cap.constructor as new (hook: CapHook) => C;
  const hook = cap.$hook.addRef();
  cap.dispose();
  return new Ctor(new ScopedCapHook(hook, scope));
}

/** The scope a hook is marked with and the hook under the marks. */
export function unwrapScope(hook: CapHook): { hook: CapHook; scope: CallScope | undefined } {
  let h = hook.resolved();
  let scope: CallScope | undefined;
  while (h instanceof ScopedCapHook) {
    scope ??= h.scope;
    h = h.inner.resolved();
  }
  return { hook: h, scope };
}
