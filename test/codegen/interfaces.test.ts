/**
 * Generated interface stubs and servers: what the compiler emits for interfaces (typed params and
 * results, schema defaults, inheritance, descriptors), over local capabilities only. How a local
 * capability runs calls (pipelining, failures, disposal, cancellation) is tested in
 * test/caps/local-capability.test.ts.
 */
import { describe, expect, it } from "vitest";
import * as E from "../gen/everything.js";

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

describe("generated params and results", () => {
  it("answers with results whose 64-bit value is a bigint", async () => {
    using counter = E.Counter.server(counterImpl());
    const first = await counter.inc({ by: 5 });
    expect(first.value).toBe(5n);
    expect(first).toBeInstanceOf(E.Counter_inc_Results);
    expect((await counter.inc({ by: -7 })).value).toBe(-2n);
    expect((await counter.get()).value).toBe(-2n);
  });

  it("accepts params as a function that fills the params builder", async () => {
    using counter = E.Counter.server(counterImpl(10n));
    const r = await counter.inc((p) => {
      expect(p).toBeInstanceOf(E.Counter_inc_Params);
      p.setBy(32);
    });
    expect(r.value).toBe(42n);
  });

  it("uses the schema default for params left unset: inc() adds 1", async () => {
    using counter = E.Counter.server(counterImpl());
    expect((await counter.inc()).value).toBe(1n);
    expect((await counter.inc({})).value).toBe(2n);
    expect((await counter.inc({ by: 0 })).value).toBe(2n);
  });
});

describe("inheritance", () => {
  function namedImpl(): E.Named$Server & { value: bigint; label: string } {
    return {
      ...counterImpl(),
      label: "first",
      name() {
        return { name: this.label };
      },
      rename(p) {
        this.label = p.newName;
        return { x: this.label.length, y: -1 };
      },
      watch() {},
    };
  }

  it("a Named stub calls Counter's methods and its own on one Named.server implementation", async () => {
    const impl = namedImpl();
    using named = E.Named.server(impl);
    expect(named).toBeInstanceOf(E.Counter);
    expect((await named.inc({ by: 3 })).value).toBe(3n);
    expect((await named.name()).name).toBe("first");
    const point = await named.rename({ newName: "second" });
    expect(point).toBeInstanceOf(E.Point);
    expect(point.$toObject()).toEqual({ x: 6, y: -1 });
    expect((await named.name()).name).toBe("second");
    expect(impl.value).toBe(3n);
  });

  it("a Named capability viewed as a Counter still reaches the same implementation", async () => {
    using named = E.Named.server(namedImpl());
    using counter = named.castAs(E.Counter);
    await counter.inc({ by: 4 });
    expect((await named.get()).value).toBe(4n);
  });

  it("a stub for an interface with two superclasses calls the methods of both on one implementation", async () => {
    const events: string[] = [];
    using recorder = E.Recorder.server({
      ...counterImpl(),
      event: (p) => void events.push(p.what),
      log: () => ({ events }),
    });
    await recorder.event({ what: "a" });
    expect((await recorder.inc({ by: 2 })).value).toBe(2n);
    using asListener = recorder.castAs(E.Listener);
    await asListener.event({ what: "b" });
    expect((await recorder.log()).events.toArray()).toEqual(["a", "b"]);
    expect(E.Recorder.$interface.superclasses).toEqual([E.Counter.$interface, E.Listener.$interface]);
  });

  it("the interface descriptors name the superclass and every method", () => {
    expect(E.Named.$interface.superclasses).toEqual([E.Counter.$interface]);
    expect(E.Counter.$interface.methods.map((m) => m.name)).toEqual(["inc", "get", "child"]);
    expect(E.Named.$interface.methods.map((m) => [m.name, m.methodId])).toEqual([
      ["name", 0],
      ["rename", 1],
      ["watch", 2],
    ]);
    expect(E.Counter$methods.inc.interfaceId).toBe(0xd6334cd8c3c55efbn);
  });
});
