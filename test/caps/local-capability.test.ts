/**
 * Local capabilities (src/caps/local-capability.ts): how a server object in this process answers
 * calls through its stubs: results and ctx.results, promise pipelining, failures, disposal,
 * capabilities passed as params, cancellation, and how a value becomes a hook (`capHookOf`).
 * No connection is involved; the same behaviours over RPC are in test/rpc/.
 */
import { describe, expect, it } from "vitest";
import { capHookOf, LocalCapHook, localServerOf } from "../../src/caps/index.js";
import { ErrorCode, nullCapError, ParallaxError } from "../../src/errors.js";
import * as E from "../gen/everything.js";
import { rejection } from "../helpers/errors.js";

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function counterImpl(start = 0n): E.Counter$Server & { value: bigint } {
  return {
    value: start,
    inc(p) {
      this.value += BigInt(p.by);
      return { value: this.value };
    },
    get() {
      return { value: this.value };
    },
    child() {
      return { counter: counterImpl(), info: { value: 1 } };
    },
  };
}

describe("calls on a local capability", () => {
  it("lets a method fill ctx.results instead of returning a shape, and await before answering", async () => {
    using counter = E.Counter.server({
      inc: async (p, ctx) => {
        await Promise.resolve();
        ctx.results.value = BigInt(p.by) * 2n;
      },
      get: (_p, ctx) => {
        expect(ctx.method.name).toBe("get");
        expect(ctx.origin).toBeUndefined();
        return { value: 2n ** 64n - 1n };
      },
      child: () => ({}),
    });
    expect((await counter.inc({ by: 21 })).value).toBe(42n);
    expect((await counter.get()).value).toBe(-1n);
  });

  it("pipelines a call on a capability in the results before the results exist", async () => {
    const gate = deferred();
    const started = deferred();
    const events: string[] = [];
    using counter = E.Counter.server({
      ...counterImpl(),
      child: async () => {
        events.push("child started");
        started.resolve();
        await gate.promise;
        events.push("child answered");
        const grandchild = counterImpl(100n);
        const inc = grandchild.inc.bind(grandchild);
        grandchild.inc = (p, ctx) => {
          events.push("pipelined inc ran");
          return inc(p, ctx);
        };
        return { counter: grandchild, info: { value: 7, mode: E.Nested_Inner_Mode.OFF } };
      },
    });
    const pending = counter.child();
    await started.promise;
    using child = pending.counter;
    const inc = child.inc({ by: 2 });
    const info = pending.info;
    events.push("pipelined inc sent");
    gate.resolve();
    expect((await inc).value).toBe(102n);
    expect((await info).$toObject()).toEqual({ value: 7, mode: E.Nested_Inner_Mode.OFF });
    expect(events).toEqual(["child started", "pipelined inc sent", "child answered", "pipelined inc ran"]);
    using direct = (await pending).counter;
    expect((await direct.get()).value).toBe(102n);
  });

  it("rejects a pipelined call when the pipelined field holds no capability", async () => {
    using counter = E.Counter.server({ ...counterImpl(), child: () => ({ info: { value: 1 } }) });
    using child = counter.child().counter;
    const err = await rejection(child.get());
    expect(err).toMatchObject({ code: ErrorCode.FAILED, message: nullCapError().message });
  });
});

describe("capability values (capHookOf)", () => {
  it("a stub gives its own hook with one more reference: the stub keeps working once that is dropped", async () => {
    using counter = E.Counter.server(counterImpl());
    const hook = capHookOf(counter);
    expect(hook).toBe(counter.$hook);
    hook.release();
    expect((await counter.inc({ by: 2 })).value).toBe(2n);
  });

  it("a server object becomes a local capability on it, the same hook each time while it lives", async () => {
    const impl = counterImpl(5n);
    const first = capHookOf(impl, E.Counter.$interface);
    const second = capHookOf(impl, E.Counter.$interface);
    expect(first).toBeInstanceOf(LocalCapHook);
    expect(second).toBe(first);
    expect(localServerOf(first)).toBe(impl);
    using counter = new E.Counter(second);
    expect((await counter.get()).value).toBe(5n);
    first.release();
  });

  it("a plain object is refused with PARALLAX_ERR_BAD_ARGUMENT where the field names no interface", () => {
    expect(() => capHookOf(counterImpl())).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT, message: expect.stringMatching(/untyped/) }),
    );
  });

  it("a server object set into a capability field is called through the field", async () => {
    using parent = E.Counter.server({
      ...counterImpl(),
      child: (_p, ctx) => {
        (ctx.results as E.Counter_child_Results).counter = counterImpl(40n);
      },
    });
    using child = (await parent.child()).counter;
    expect((await child.inc({ by: 2 })).value).toBe(42n);
  });
});

describe("failures", () => {
  it("a method the implementation lacks answers PARALLAX_ERR_UNIMPLEMENTED", async () => {
    const partial = { ...counterImpl(), name: () => ({ name: "n" }) };
    using named = E.Named.server(partial as unknown as E.Named$Server);
    const err = await rejection(named.watch());
    expect(err.code).toBe(ErrorCode.UNIMPLEMENTED);
    expect(err.kind).toBe("unimplemented");
    expect(err.message).toMatch(/Named\.watch/);
    expect((await named.name()).name).toBe("n");
  });

  it("a method inherited from Object.prototype is not an implementation", async () => {
    using counter = E.Counter.server({} as unknown as E.Counter$Server);
    const err = await rejection(counter.get());
    expect(err.code).toBe(ErrorCode.UNIMPLEMENTED);
  });

  it("a throwing method rejects only that call, with its message", async () => {
    let calls = 0;
    using counter = E.Counter.server({
      ...counterImpl(),
      inc: () => {
        calls++;
        throw new Error("boom");
      },
      get: async () => {
        throw new ParallaxError(ErrorCode.LIMIT, "slow down");
      },
    });
    const a = counter.inc({ by: 1 });
    const b = counter.child().counter.inc();
    const err = await rejection(a);
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toBe("boom");
    const limit = await rejection(counter.get());
    expect(limit).toMatchObject({ code: ErrorCode.LIMIT, kind: "overloaded", message: "slow down" });
    expect((await b).value).toBe(1n);
    expect(calls).toBe(1);
  });

  it("results that do not fit the schema fail the call", async () => {
    using counter = E.Counter.server({
      ...counterImpl(),
      get: () => ({ value: "not a bigint" }) as unknown as E.Counter_get_Results$Shape,
    });
    const err = await rejection(counter.get());
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toMatch(/Counter\.get returned results that do not fit/);
  });
});

describe("disposal", () => {
  it("calls after dispose() reject with PARALLAX_ERR_DISPOSED and dispose() is idempotent", async () => {
    const counter = E.Counter.server(counterImpl());
    const copy = counter.dup();
    counter.dispose();
    counter.dispose();
    expect(counter.disposed).toBe(true);
    const err = await rejection(counter.inc({ by: 1 }));
    expect(err.code).toBe(ErrorCode.DISPOSED);
    await expect(counter.whenResolved()).rejects.toMatchObject({ code: ErrorCode.DISPOSED });
    expect(() => counter.dup()).toThrow(expect.objectContaining({ code: ErrorCode.DISPOSED }));
    expect((await copy.inc({ by: 1 })).value).toBe(1n);
    copy.dispose();
  });

  it("the server's Symbol.dispose runs once, when the last stub is dropped", async () => {
    let disposed = 0;
    const impl = { ...counterImpl(), [Symbol.dispose]: () => void disposed++ };
    const a = E.Counter.server(impl);
    const b = a.dup();
    {
      using c = b.castAs(E.Counter);
      await c.get();
    }
    a.dispose();
    expect(disposed).toBe(0);
    b.dispose();
    expect(disposed).toBe(1);
    b.dispose();
    expect(disposed).toBe(1);
  });

  it("disposing a pipeline releases the capabilities in its results and the stubs it handed out", async () => {
    let childDisposed = 0;
    const child = { ...counterImpl(), [Symbol.dispose]: () => void childDisposed++ };
    const parent = E.Counter.server({
      ...counterImpl(),
      child: () => ({ counter: child, info: { value: 1 } }),
    });
    const pending = parent.child();
    const viaPipeline = pending.counter;
    expect((await viaPipeline.inc({ by: 2 })).value).toBe(2n);
    const results = await pending;
    const kept = results.counter; // read from the results: owns its own reference
    pending.dispose();
    expect(viaPipeline.disposed).toBe(true);
    expect(childDisposed).toBe(0);
    expect((await kept.get()).value).toBe(2n);
    kept.dispose();
    expect(childDisposed).toBe(1);
    parent.dispose();
  });
});

describe("capabilities as parameters", () => {
  it("a server calls back on a Listener it received as a param, after the call returned", async () => {
    const heard: Array<{ what: string; color: E.Color }> = [];
    let kept: E.Listener | undefined;
    using named = E.Named.server({
      ...counterImpl(),
      name: () => ({ name: "n" }),
      rename: async (p) => {
        await kept?.event({ what: `renamed to ${p.newName}`, color: E.Color.GREEN });
        return {};
      },
      watch: async (p) => {
        kept = p.listener;
        await kept.event({ what: "watching", color: E.Color.RED });
      },
    });
    await named.watch({
      listener: {
        event: (p: E.Listener_event_Params) => {
          heard.push({ what: p.what, color: p.color });
        },
      },
    });
    await named.rename({ newName: "ann" });
    expect(heard).toEqual([
      { what: "watching", color: E.Color.RED },
      { what: "renamed to ann", color: E.Color.GREEN },
    ]);
    kept?.dispose();
  });

  it("a Listener stub passed as a param keeps working for the caller afterwards", async () => {
    const heard: string[] = [];
    using listener = E.Listener.server({ event: (p) => void heard.push(p.what) });
    using named = E.Named.server({
      ...counterImpl(),
      name: () => ({ name: "n" }),
      rename: () => ({}),
      watch: async (p) => {
        using l = p.listener;
        await l.event({ what: "from server" });
      },
    });
    await named.watch({ listener });
    await listener.event({ what: "from caller" });
    expect(heard).toEqual(["from server", "from caller"]);
  });
});

describe("cancellation", () => {
  it("aborting the signal rejects a pending call with PARALLAX_ERR_CANCELED and the callee sees it", async () => {
    const started = deferred();
    const calleeSaw = deferred<boolean>();
    using counter = E.Counter.server({
      ...counterImpl(),
      get: (_p, ctx) => {
        started.resolve();
        ctx.signal.addEventListener("abort", () => calleeSaw.resolve(ctx.signal.aborted));
        return new Promise<never>(() => {});
      },
    });
    const controller = new AbortController();
    const call = counter.get({}, { signal: controller.signal });
    await started.promise;
    controller.abort();
    const err = await rejection(call);
    expect(err.code).toBe(ErrorCode.CANCELED);
    expect(await calleeSaw.promise).toBe(true);
    expect((await counter.inc()).value).toBe(1n);
  });

  it("a call made with an already aborted signal is canceled without running the method", async () => {
    let ran = false;
    using counter = E.Counter.server({
      ...counterImpl(),
      get: () => {
        ran = true;
        return { value: 1n };
      },
    });
    const err = await rejection(counter.get({}, { signal: AbortSignal.abort() }));
    expect(err.code).toBe(ErrorCode.CANCELED);
    expect(ran).toBe(false);
  });

  it("aborting after the answer arrived changes nothing", async () => {
    using counter = E.Counter.server(counterImpl());
    const controller = new AbortController();
    const r = await counter.inc({ by: 3 }, { signal: controller.signal });
    controller.abort();
    expect(r.value).toBe(3n);
  });
});
