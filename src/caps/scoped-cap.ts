/**
 * A capability marked with the CallScope it is to be handed out under.
 *
 * The mark matters only when the capability crosses a connection: the RPC layer exports the
 * inner capability under the mark's scope instead of the scope of the call that returned it, and
 * calls pipelined on it run under that scope too. Called locally, a scoped capability is its
 * inner capability. The wrapper holds one reference on the inner hook, dropped with its last.
 *
 * A *guard* mark does not choose the scope; it only has to keep admitting calls. The RPC layer
 * puts one on a capability a peer sends back to us (receiverHosted), so that whoever it is handed
 * to next still loses it when the login it was first handed out under is revoked, while the
 * caller seen by a Viewable stays the one whose call handed it out.
 *
 * Tests: test/caps/scoped-cap.test.ts; test/login/ for scopes and guards across connections.
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
    readonly guard = false,
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

const NO_GUARDS: readonly CallScope[] = Object.freeze([]);

/** The scope a hook is marked with (its outermost grant mark), its guards, and the hook under the marks. */
export function unwrapScope(hook: CapHook): {
  hook: CapHook;
  scope: CallScope | undefined;
  guards: readonly CallScope[];
} {
  let h = hook.resolved();
  let scope: CallScope | undefined;
  // Every call passes through here: no array unless there is a guard.
  let guards: CallScope[] | undefined;
  while (h instanceof ScopedCapHook) {
    if (h.guard) {
      guards ??= [];
      if (!guards.includes(h.scope)) guards.push(h.scope);
    } else scope ??= h.scope;
    h = h.inner.resolved();
  }
  return { hook: h, scope, guards: guards ?? NO_GUARDS };
}

/**
 * A scope that also needs its guards to keep admitting calls: calls and exports are counted by
 * `primary`; each guard only checks (revocation).
 */
export class GuardedScope implements CallScope {
  constructor(
    readonly primary: CallScope | undefined,
    readonly guards: readonly CallScope[],
  ) {}

  check(): void {
    for (const g of this.guards) g.check?.();
    this.primary?.check?.();
  }

  enterCall(): void {
    for (const g of this.guards) g.check?.();
    this.primary?.enterCall();
  }

  leaveCall(): void {
    this.primary?.leaveCall();
  }

  enterExport(): void {
    for (const g of this.guards) g.check?.();
    this.primary?.enterExport();
  }

  leaveExport(): void {
    this.primary?.leaveExport();
  }
}

/** `scope` with `guards` added (itself when there are none). */
export function withGuards(
  scope: CallScope | undefined,
  guards: readonly CallScope[],
): CallScope | undefined {
  if (guards.length === 0) return scope;
  const extra = guards.filter((g) => g !== scope);
  return extra.length === 0 ? scope : new GuardedScope(scope, extra);
}

/** The scope that counts calls and names the caller: `scope` itself, or a GuardedScope's primary. */
export function primaryScope(scope: CallScope | undefined): CallScope | undefined {
  return scope instanceof GuardedScope ? scope.primary : scope;
}
