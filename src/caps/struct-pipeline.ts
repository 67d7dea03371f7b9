/**
 * The promise of a struct inside a call's results, with promise pipelining.
 *
 * A generated `Foo$Pipeline` extends this class with one getter per capability field (a stub
 * whose calls go out before the results arrive) and per struct or group field (a nested
 * pipeline). Awaiting it yields the struct itself.
 *
 * `dispose()` releases the results and every stub this pipeline (and its nested pipelines)
 * handed out; `dup()` a stub to keep it longer. Undisposed, both are released when collected.
 *
 * Tests: test/caps/local-capability.test.ts ("calls on a local capability", "disposal"),
 * test/rpc/rpc-connection.test.ts.
 */
import type { Struct } from "capnp-ts";
import type { ResultHook } from "./cap-hook.js";
import type { Capability, CapabilityCtor } from "./capability.js";

export type PipelineCtor<T, P> = new (
  result: ResultHook,
  ops: readonly number[],
  read?: (root: Struct) => T,
  handedOut?: Capability[],
) => P;

export class StructPipeline<T> implements PromiseLike<T>, Disposable {
  readonly #result: ResultHook;
  readonly #ops: readonly number[];
  /** Reads this pipeline's struct out of the results root; undefined: it is the root. */
  readonly #read: ((root: Struct) => T) | undefined;
  /** Stubs handed out by getters, shared with nested pipelines; disposed with this pipeline. */
  readonly #handedOut: Capability[];

  constructor(
    result: ResultHook,
    ops: readonly number[],
    read?: (root: Struct) => T,
    handedOut: Capability[] = [],
  ) {
    this.#result = result;
    this.#ops = ops;
    this.#read = read;
    this.#handedOut = handedOut;
  }

  // biome-ignore lint/suspicious/noThenProperty: a pipeline is deliberately awaitable
  then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    const read = this.#read;
    const value = read === undefined ? (this.#result.promise as Promise<T>) : this.#result.promise.then(read);
    return value.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.then(undefined, onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onFinally);
  }

  /**
   * Done with these results: releases the capabilities in them that nobody took (stubs already
   * read out keep their own references). Before the results arrive, this cancels the call.
   */
  dispose(): void {
    for (const stub of this.#handedOut.splice(0)) stub.dispose();
    this.#result.dispose?.();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #self(root: Struct): T {
    return this.#read === undefined ? (root as T) : this.#read(root);
  }

  /** Used by generated getters: the capability at pointer `index` of this struct. */
  protected $cap<C extends Capability>(index: number, Ctor: CapabilityCtor<C>): C {
    const stub = new Ctor(this.#result.pipelinedCap([...this.#ops, index]));
    this.#handedOut.push(stub);
    return stub;
  }

  /** Used by generated getters: the struct at pointer `index` of this struct. */
  protected $struct<U, P>(index: number, Ctor: PipelineCtor<U, P>, read: (self: T) => U): P {
    return new Ctor(this.#result, [...this.#ops, index], (root) => read(this.#self(root)), this.#handedOut);
  }

  /** Used by generated getters: a group, which lives in this struct's own sections. */
  protected $group<U, P>(Ctor: PipelineCtor<U, P>, read: (self: T) => U): P {
    return new Ctor(this.#result, this.#ops, (root) => read(this.#self(root)), this.#handedOut);
  }
}
