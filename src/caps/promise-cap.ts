/**
 * A capability that is not there yet: calls made before it settles wait in a queue and are
 * forwarded, in the order they were made, the moment it resolves (E-order), or fail with the
 * rejection.
 *
 * Invariant: the queue is flushed synchronously, in the same step that installs the target, so a
 * call made after resolution can never overtake one made before it.
 *
 * Tests: test/caps/promise-cap.test.ts; test/rpc/resolve-embargo.test.ts over a connection.
 */
import type { Struct } from "capnp-ts";
import { toParallaxError } from "../errors.js";
import { BrokenCapHook } from "./broken-cap.js";
import type { CallOptions, CapHook, ParamsFiller, ResultHook } from "./cap-hook.js";
import type { MethodDescriptor } from "./interface-descriptor.js";

export class PromiseCapHook implements CapHook {
  #target: CapHook | undefined;
  #queue: Array<(target: CapHook) => void> = [];
  #refs = 1;
  /** Settles when this hook has its target (its own resolution, not its target's). */
  readonly settled: Promise<void>;

  /** `source` yields the capability; the promise hook takes ownership of that reference. */
  constructor(source: Promise<CapHook>) {
    this.settled = source.then(
      (hook) => this.#settle(hook),
      (err: unknown) => this.#settle(new BrokenCapHook(toParallaxError(err))),
    );
  }

  #settle(target: CapHook): void {
    if (this.#refs === 0) {
      target.release();
      this.#target = new BrokenCapHook(toParallaxError(new Error("released before it resolved")));
    } else this.#target = target;
    const queue = this.#queue;
    this.#queue = [];
    for (const forward of queue) forward(this.#target);
  }

  call<P extends Struct, R extends Struct>(
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options?: CallOptions,
  ): ResultHook<R> {
    if (this.#target !== undefined) return this.#target.call(method, fill, options);
    let deliver!: (r: ResultHook<R>) => void;
    const forwarded = new Promise<ResultHook<R>>((resolve) => {
      deliver = resolve;
    });
    this.#queue.push((target) => deliver(target.call(method, fill, options)));
    const promise = forwarded.then((r) => r.promise);
    promise.catch(() => {});
    return {
      promise,
      pipelinedCap: (ops) => new PromiseCapHook(forwarded.then((r) => r.pipelinedCap(ops))),
      dispose: () => {
        forwarded.then((r) => r.dispose?.());
      },
    };
  }

  /**
   * Runs `fn` when this hook gets its target, in order with the calls queued before it (at once
   * if it already has one). How the RPC layer delivers a peer's call to a promise in E-order.
   */
  whenSettled(fn: () => void): void {
    if (this.#target !== undefined) fn();
    else this.#queue.push(() => fn());
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
    return this.settled.then(() => (this.#target as CapHook).whenResolved());
  }

  resolved(): CapHook {
    return this.#target === undefined ? this : this.#target.resolved();
  }
}
