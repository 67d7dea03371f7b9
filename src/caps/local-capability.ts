/**
 * Capabilities implemented by a server object in this process.
 *
 * Only methods listed in the interface descriptor are ever invoked, looked up by the schema's
 * method name; nothing a peer sends can name any other property. A method answers by returning a
 * plain results object (or a promise of one), or by filling `ctx.results`. What it throws fails
 * that call only.
 *
 * The same server object wrapped twice for the same interface yields the same hook, so a
 * connection that exports it twice reuses one export id. When the last reference is released the
 * object's `[Symbol.dispose]` runs, if it has one.
 *
 * This is also where a capability *value* becomes a hook (`capHookOf`): a stub gives its own hook,
 * a server object written into an interface-typed field becomes a local capability.
 *
 * Tests: test/caps/local-capability.test.ts.
 */
import { Message, type Pointer, type Struct } from "capnp-ts";
import { canceledError, ErrorCode, nullCapError, ParallaxError, toParallaxError } from "../errors.js";
import type { CallOptions, CapHook, ParamsFiller, ResultHook } from "./cap-hook.js";
import type { CallContext, CallOrigin } from "./call-context.js";
import {
  capAtPath,
  holdResults,
  putCapHook,
  putNullCap,
  releaseCapTable,
  releaseResults,
} from "./cap-table.js";
import { Capability, type ShapeSettable } from "./capability.js";
import { findMethod, type InterfaceDescriptor, type MethodDescriptor } from "./interface-descriptor.js";
import { PromiseCapHook } from "./promise-cap.js";
import { BrokenCapHook } from "./broken-cap.js";
import { ScopedCapHook } from "./scoped-cap.js";

const hooks = new WeakMap<object, LocalCapHook>();

/** A hook on `impl` as an implementation of `iface`, holding one new reference. */
export function localCapHook(iface: InterfaceDescriptor, impl: object): CapHook {
  const existing = hooks.get(impl);
  if (existing !== undefined && existing.iface === iface && existing.refs > 0) return existing.addRef();
  const hook = new LocalCapHook(iface, impl);
  if (existing === undefined || existing.refs === 0) hooks.set(impl, hook);
  return hook;
}

/**
 * The hook for a capability value, holding one new reference: a stub's own hook, or (for a server
 * object implementing `iface`) a local capability on it. An untyped field (no `iface`) takes stubs
 * only.
 */
export function capHookOf(value: Capability | object, iface?: InterfaceDescriptor): CapHook {
  if (value instanceof Capability) return value.$hook.addRef();
  if (iface !== undefined) return localCapHook(iface, value);
  throw new ParallaxError(
    ErrorCode.BAD_ARGUMENT,
    "an untyped capability field needs a Capability stub, not a plain object",
  );
}

/**
 * Writes a capability value into a pointer slot (what a generated setter does): null, a stub (its
 * hook gains a reference held by the message) or a server object implementing `iface`.
 */
export function writeCap(p: Pointer, value: Capability | object | null, iface?: InterfaceDescriptor): void {
  if (value === null) putNullCap(p);
  else putCapHook(p, capHookOf(value, iface));
}

/** The server object behind a hook, if the hook is local. */
export function localServerOf(hook: CapHook): object | undefined {
  let h = hook.resolved();
  while (h instanceof ScopedCapHook) h = h.inner.resolved();
  return h instanceof LocalCapHook ? h.impl : undefined;
}

export class LocalCapHook implements CapHook {
  refs = 1;

  constructor(
    readonly iface: InterfaceDescriptor,
    readonly impl: object,
  ) {}

  call<P extends Struct, R extends Struct>(
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options?: CallOptions,
  ): ResultHook<R> {
    const message = new Message();
    const params = message.initRoot(method.Params);
    fill(params);
    const ctx = new LocalCallContext<R>(method, options?.signal, undefined);
    const run = Promise.resolve()
      .then(() => this.dispatch(method, params, ctx))
      .finally(() => releaseCapTable(message));
    let disposed = false;
    const promise = rejectOnAbort(run, options?.signal).then((results) => {
      if (disposed) releaseCapTable(results.segment.message);
      else holdResults(results.segment.message);
      return results;
    });
    promise.catch(() => {});
    return {
      promise,
      pipelinedCap: (ops) => new PromiseCapHook(promise.then((r) => pipelinedFrom(r, ops))),
      dispose: () => {
        disposed = true;
        promise.then(
          (r) => releaseResults(r.segment.message),
          () => {},
        );
      },
    };
  }

  /**
   * Runs `method` on the server object with `params` and `ctx`, resolving with `ctx.results`:
   * the local call path (`call`). The RPC layer calls `invoke` directly.
   */
  async dispatch<R extends Struct>(
    method: MethodDescriptor,
    params: Struct,
    ctx: CallContext<R>,
  ): Promise<R> {
    return this.invoke(method, params, ctx);
  }

  /**
   * Like `dispatch`, but a method that answers synchronously gets its results back synchronously
   * (no promise, no extra turn): what the RPC layer calls for a call that arrived from a peer.
   * Failures throw or reject with a ParallaxError.
   */
  invoke<R extends Struct>(method: MethodDescriptor, params: Struct, ctx: CallContext<R>): R | Promise<R> {
    const known = findMethod(this.iface, method.interfaceId, method.methodId);
    const fn = known === undefined ? undefined : (this.impl as Record<string, unknown>)[known.name];
    if (known === undefined || typeof fn !== "function" || fn === (Object.prototype as never)[known.name]) {
      throw new ParallaxError(
        ErrorCode.UNIMPLEMENTED,
        `${method.interfaceName}.${method.name} is not implemented by this ${this.iface.name}`,
      );
    }
    if (ctx.aborted) throw canceledError();
    let returned: unknown;
    try {
      returned = (fn as (p: Struct, c: CallContext<R>) => unknown).call(this.impl, params, ctx);
    } catch (err) {
      throw toParallaxError(err);
    }
    if (isThenable(returned)) {
      return Promise.resolve(returned).then(
        (value) => finishCall(method, ctx, value),
        (err: unknown) => {
          throw toParallaxError(err);
        },
      );
    }
    return finishCall(method, ctx, returned);
  }

  addRef(): CapHook {
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs > 0) return;
    if (hooks.get(this.impl) === this) hooks.delete(this.impl);
    const dispose = (this.impl as Partial<Disposable>)[Symbol.dispose];
    if (typeof dispose === "function") {
      try {
        dispose.call(this.impl);
      } catch {
        // a failing destructor must not break whoever dropped the last reference
      }
    }
  }

  whenResolved(): Promise<void> {
    return Promise.resolve();
  }

  resolved(): CapHook {
    return this;
  }
}

/** A call context whose results live in a fresh message. */
export class LocalCallContext<R extends Struct> implements CallContext<R> {
  #results: R | undefined;
  readonly signal: AbortSignal;

  constructor(
    readonly method: MethodDescriptor,
    signal: AbortSignal | undefined,
    readonly origin: CallOrigin | undefined,
  ) {
    this.signal = signal ?? new AbortController().signal;
  }

  get aborted(): boolean {
    return this.signal.aborted;
  }

  get results(): R {
    if (this.#results === undefined) this.#results = new Message().initRoot(this.method.Results) as R;
    return this.#results;
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** Puts what a method returned into its results (unless it filled `ctx.results` itself). */
function finishCall<R extends Struct>(method: MethodDescriptor, ctx: CallContext<R>, returned: unknown): R {
  if (ctx.aborted) throw canceledError();
  const results = ctx.results;
  if (returned !== undefined && returned !== null && returned !== results) {
    try {
      (results as unknown as ShapeSettable<unknown>).$set(returned);
    } catch (err) {
      throw new ParallaxError(
        ErrorCode.FAILED,
        `${method.interfaceName}.${method.name} returned results that do not fit its schema: ${toParallaxError(err).message}`,
      );
    }
  }
  return results;
}

function pipelinedFrom(results: Struct, ops: readonly number[]): CapHook {
  const hook = capAtPath(results, ops);
  return hook === null ? new BrokenCapHook(nullCapError()) : hook.addRef();
}

/** The caller's view of a call: it rejects as soon as `signal` aborts, whatever the method still does. */
function rejectOnAbort<T>(run: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return run;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(canceledError());
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    run.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
