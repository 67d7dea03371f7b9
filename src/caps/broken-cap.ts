/**
 * A capability that fails every call with one error: what a null capability pointer, a disposed
 * stub or a rejected promise capability turns into.
 *
 * Tests: test/caps/cap-table.test.ts (null pointers), test/caps/local-capability.test.ts (disposed stubs).
 */
import type { Struct } from "capnp-ts";
import type { ParallaxError } from "../errors.js";
import type { CapHook, ResultHook } from "./cap-hook.js";

export class BrokenCapHook implements CapHook {
  constructor(readonly error: ParallaxError) {}

  call<_P extends Struct, R extends Struct>(): ResultHook<R> {
    return brokenResult(this.error);
  }
  addRef(): CapHook {
    return this;
  }
  release(): void {}
  whenResolved(): Promise<void> {
    return Promise.resolve();
  }
  resolved(): CapHook {
    return this;
  }
}

export function brokenResult<R extends Struct>(error: ParallaxError): ResultHook<R> {
  const promise = Promise.reject(error);
  promise.catch(() => {}); // a caller that never awaits must not crash the process
  return { promise, pipelinedCap: () => new BrokenCapHook(error) };
}
