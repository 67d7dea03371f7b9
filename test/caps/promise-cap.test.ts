/** Promise capabilities (src/caps/promise-cap.ts): calls wait for the target and keep their order. */
import { describe, expect, it } from "vitest";
import type { Struct } from "capnp-ts";
import { BrokenCapHook, type CapHook, PromiseCapHook, type ResultHook } from "../../src/caps/index.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import * as E from "../gen/everything.js";
import { rejection } from "../helpers/errors.js";

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A counter that records the order its calls arrive in. */
function recorder(seen: number[]): E.Counter$Server {
  let value = 0n;
  return {
    inc: (p) => {
      seen.push(p.by);
      value += BigInt(p.by);
      return { value };
    },
    get: () => ({ value }),
    child: () => ({}),
  };
}

describe("a promise capability", () => {
  it("queues calls made before it resolves and delivers them in the order they were made", async () => {
    const seen: number[] = [];
    const target = deferred<CapHook>();
    using promised = new E.Counter(new PromiseCapHook(target.promise));
    const early = [1, 2, 3].map((by) => promised.inc({ by }));
    expect(seen).toEqual([]);
    target.resolve(E.Counter.server(recorder(seen)).$hook);
    const late = promised.inc({ by: 4 });
    expect((await Promise.all([...early, late])).map((r) => r.value)).toEqual([1n, 3n, 6n, 10n]);
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it("runs whenSettled in order with the calls queued before it", async () => {
    const events: string[] = [];
    /** A target that notes the moment a call is handed to it. */
    class Recording extends BrokenCapHook {
      override call<P extends Struct, R extends Struct>(): ResultHook<R> {
        events.push("call handed over");
        return super.call<P, R>();
      }
    }
    const target = deferred<CapHook>();
    const hook = new PromiseCapHook(target.promise);
    using promised = new E.Counter(hook.addRef());
    const call = promised.get();
    hook.whenSettled(() => events.push("settled"));
    target.resolve(new Recording(new ParallaxError(ErrorCode.FAILED, "recorded")));
    expect(await rejection(call)).toMatchObject({ message: "recorded" });
    expect(events).toEqual(["call handed over", "settled"]);
    expect(hook.resolved()).toBeInstanceOf(Recording);
    hook.release();
  });

  it("fails queued and later calls with the rejection when its source rejects", async () => {
    const target = deferred<CapHook>();
    using promised = new E.Counter(new PromiseCapHook(target.promise));
    const early = promised.get();
    target.reject(new ParallaxError(ErrorCode.REVOKED, "gone"));
    expect(await rejection(early)).toMatchObject({ code: ErrorCode.REVOKED, message: "gone" });
    expect(await rejection(promised.get())).toMatchObject({ code: ErrorCode.REVOKED });
  });

  it("releases what it resolves to when it was released first", async () => {
    let disposed = 0;
    const target = deferred<CapHook>();
    const hook = new PromiseCapHook(target.promise);
    hook.release();
    const impl = Object.assign(recorder([]), { [Symbol.dispose]: () => void disposed++ });
    target.resolve(E.Counter.server(impl).$hook);
    await hook.settled;
    expect(disposed).toBe(1);
  });
});
