/**
 * A capability that is not there yet: calls made before it settles are queued and forwarded in
 * order once it resolves (E-order), or fail with the rejection.
 */
import type { Struct } from "capnp-ts";
import { type ParallaxError, toParallaxError } from "../errors.js";
import { BrokenCapHook } from "./broken-cap.js";
import type { CallOptions, CapHook, ParamsFiller, ResultHook } from "./cap-hook.js";
import type { MethodDescriptor } from "./interface-descriptor.js";

export class PromiseCapHook implements CapHook {
  #target: CapHook | undefined;
  #refs = 1;
  readonly #settled: Promise<void>;

  /** `source` yields the capability; the promise hook takes ownership of that reference. */
  constructor(source: Promise<CapHook>) {
    this.#settled = source.then(
      (hook) => {
        this.#target = this.#refs > 0 ? hook : (hook.release(), hook);
      },
      (err: unknown) => {
        this.#target = new BrokenCapHook(toParallaxError(err));
      },
    );
  }

  call<P extends Struct, R extends Struct>(
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options?: CallOptions,
  ): ResultHook<R> {
    if (this.#target !== undefined) return this.#target.call(method, fill, options);
    const forwarded = this.#settled.then(() => {
      const target = this.#target as CapHook;
      return target.call(method, fill, options);
    });
    const promise = forwarded.then((r) => r.promise);
    promise.catch(() => {});
    return {
      promise,
      pipelinedCap: (ops) => new PromiseCapHook(forwarded.then((r) => r.pipelinedCap(ops))),
    };
  }

  addRef(): CapHook {
    this.#refs++;
    return this;
  }

  release(): void {
    if (this.#refs <= 0) return;
    if (--this.#refs === 0) this.#target?.release();
  }

  whenResolved(): Promise<void> {
    return this.#settled.then(() => (this.#target as CapHook).whenResolved());
  }

  resolved(): CapHook {
    return this.#target === undefined ? this : this.#target.resolved();
  }
}

/** A promise capability that is already broken. */
export function rejectedCap(error: ParallaxError): CapHook {
  return new BrokenCapHook(error);
}
