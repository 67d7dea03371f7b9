/**
 * The base class of every generated client stub.
 *
 * A stub owns exactly one reference on its hook. `dispose()` (or `using`) drops it; a disposed
 * stub rejects every call with PARALLAX_ERR_DISPOSED. `dup()` makes a second, independently
 * disposable stub on the same capability. A stub that is garbage-collected without being
 * disposed drops its reference then: disposal makes release prompt, the collector makes it sure.
 *
 * Tests: test/caps/local-capability.test.ts ("disposal", "capability values").
 */
import type { Struct } from "capnp-ts";
import { ErrorCode, ParallaxError, toParallaxError } from "../errors.js";
import { BrokenCapHook, brokenResult } from "./broken-cap.js";
import type { CallOptions, CapHook, ResultHook } from "./cap-hook.js";
import type { InterfaceDescriptor, MethodDescriptor } from "./interface-descriptor.js";

/** A generated struct class's way of being filled from a plain object. */
export interface ShapeSettable<S> {
  $set(shape: S): void;
}

/** Params given to a stub method: a plain object, or a function that fills the builder. */
export type ParamsInit<P extends Struct, S> = S | ((params: P) => void) | undefined;

export interface CapabilityCtor<C extends Capability> {
  new (hook: CapHook): C;
  readonly $interface: InterfaceDescriptor | undefined;
}

/** Releases the reference of stubs that were collected without `dispose()`. */
const undisposed = new FinalizationRegistry<CapHook>((hook) => hook.release());

export class Capability implements Disposable {
  /** The interface this stub speaks; `undefined` for an untyped `Capability`. */
  static readonly $interface: InterfaceDescriptor | undefined = undefined;

  #hook: CapHook | undefined;

  constructor(hook: CapHook) {
    this.#hook = hook;
    undisposed.register(this, hook, this);
  }

  /** The hook this stub holds a reference on. Throws once disposed. */
  get $hook(): CapHook {
    if (this.#hook === undefined) throw disposedError();
    return this.#hook;
  }

  get disposed(): boolean {
    return this.#hook === undefined;
  }

  /** Drops this stub's reference. Idempotent. */
  dispose(): void {
    const hook = this.#hook;
    if (hook === undefined) return;
    this.#hook = undefined;
    undisposed.unregister(this);
    hook.release();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A second stub on the same capability, with its own reference. */
  dup(): this {
    const Ctor = this.constructor as new (hook: CapHook) => this;
    return new Ctor(this.$hook.addRef());
  }

  /** Views this capability through another interface (no check: wrong methods answer unimplemented). */
  castAs<C extends Capability>(Ctor: CapabilityCtor<C>): C {
    return new Ctor(this.$hook.addRef());
  }

  /** Settles when the capability is no longer an unresolved promise. */
  whenResolved(): Promise<void> {
    return this.#hook === undefined ? Promise.reject(disposedError()) : this.#hook.whenResolved();
  }

  /** Used by generated methods: starts a call on this capability. */
  protected $call<P extends Struct, R extends Struct, S>(
    method: MethodDescriptor<P, R>,
    init: ParamsInit<P, S>,
    options: CallOptions | undefined,
  ): ResultHook<R> {
    const hook = this.#hook;
    if (hook === undefined) return brokenResult(disposedError());
    const fill = (params: P): void => {
      if (typeof init === "function") (init as (p: P) => void)(params);
      else if (init !== undefined) (params as unknown as ShapeSettable<S>).$set(init);
    };
    try {
      return hook.call(method, fill, options);
    } catch (err) {
      return brokenResult(toParallaxError(err));
    }
  }
}

function disposedError(): ParallaxError {
  return new ParallaxError(ErrorCode.DISPOSED, "this capability stub was disposed");
}

/** A stub whose every call fails with `error`. */
export function brokenCapability<C extends Capability>(Ctor: CapabilityCtor<C>, error: ParallaxError): C {
  return new Ctor(new BrokenCapHook(error));
}
