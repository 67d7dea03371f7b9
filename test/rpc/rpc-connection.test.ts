import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { CounterServer, DemoServer } from "../../src/services/demo/demo-service.js";
import { Counter, Demo, type Demo$Server, type Demo_echo_Params, Listener } from "../../src/wire/gen/demo.js";
import { type CallContext, type CapHook, PromiseCapHook } from "../../src/caps/index.js";
import { connectionOf, onDisconnect, RpcConnection } from "../../src/rpc/index.js";
import { memoryPair } from "../../src/transport/index.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";
import { decodeRpcMessage } from "../../src/wire/message-codec.js";
import { rejection } from "../helpers/errors.js";
import { expectNoLeaks } from "../helpers/rpc-stats.js";
import { connectPair, type Pair } from "./harness.js";

let pair: Pair | undefined;
afterEach(() => {
  pair?.client.close();
  pair?.server.close();
  pair = undefined;
});

function bytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
}

describe("RpcConnection", () => {
  it("bootstraps and answers a call, leaving no table entries behind", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    {
      using reply = demo.echo({ payload: bytes(100) });
      const r = await reply;
      expect([...r.payload]).toEqual([...bytes(100)]);
    }
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("pipelines a chain of three dependent calls before any result arrives", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    const first = demo.newCounter({ start: 10n });
    const second = first.counter.inc({ by: 5n });
    const third = second.self.inc({ by: 1n });
    using last = third.self.get();
    expect((await last).value).toBe(16n);
    expect((await second).value).toBe(15n);
    for (const p of [first, second, third]) p.dispose();
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("reuses one export id when the same object is exported twice", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    using made = demo.newCounter({ start: 0n });
    const counter = (await made).counter;
    using a = counter.inc();
    using b = counter.inc();
    const [ra, rb] = await Promise.all([a, b]);
    const selfA = ra.self;
    const selfB = rb.self;
    expect(client.stats().imports).toBe(2); // the demo root and the one counter
    expect(server.stats().exports).toBe(2); // the demo root and the one counter
    for (const c of [selfA, selfB, counter, demo]) c.dispose();
    for (const p of [made, a, b]) p.dispose();
    await expectNoLeaks(client, server);
  });

  it("runs a slow call and a fast one concurrently: the fast one returns first", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    const order: string[] = [];
    const slow = demo.sleep({ ms: 300 }).then(() => order.push("slow"));
    const fast = demo.echo({ payload: bytes(1) }).then(() => order.push("fast"));
    await Promise.all([slow, fast]);
    expect(order).toEqual(["fast", "slow"]);
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("fails a call whose method throws, with the message and no stack, and keeps the connection", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    const err = await rejection(demo.fail({ reason: "no such thing" }));
    expect(err).toMatchObject({ code: ErrorCode.FAILED, kind: "failed", message: "no such thing" });
    expect(err.stack).not.toContain("demo-service");
    expect((await demo.echo({ payload: bytes(3) })).payload.length).toBe(3);
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("answers unimplemented for a method the target lacks, and the connection lives on", async () => {
    pair = connectPair({ bootstrap: Counter.server(new CounterServer(0n)) });
    const { client, server, demo } = pair; // `demo` is really a Counter here
    await expect(demo.echo({ payload: bytes(1) })).rejects.toMatchObject({
      code: ErrorCode.UNIMPLEMENTED,
      kind: "unimplemented",
    });
    const counter = demo.castAs(Counter);
    expect((await counter.get()).value).toBe(0n);
    counter.dispose();
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("calls back a capability the client passed, in order", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    const seen: number[] = [];
    const listener = Listener.server({ event: (p) => void seen.push(p.n) });
    await demo.subscribe({ listener, count: 5 });
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    listener.dispose();
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("on disconnect rejects pending calls at once, fails new calls and releases exports", async () => {
    let released = 0;
    class Tracked extends CounterServer {
      [Symbol.dispose](): void {
        released++;
      }
    }
    const root = new DemoServer();
    root.newCounter = () => ({ counter: new Tracked(0n) });
    pair = connectPair({ bootstrap: Demo.server(root) });
    const { client, server, demo } = pair;
    const counter = (await demo.newCounter()).counter;
    const pending = demo.sleep({ ms: 10_000 });
    await demo.echo({ payload: bytes(1) });
    const closed = new Promise<ParallaxError>((r) => server.onClose(r));
    client.close();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.DISCONNECTED, kind: "disconnected" });
    await expect(counter.get()).rejects.toMatchObject({ code: ErrorCode.DISCONNECTED });
    expect((await closed).kind).toBe("disconnected");
    expect(released).toBe(1);
    expect(server.stats()).toMatchObject({ exports: 0, answers: 0 });
    counter.dispose();
    demo.dispose();
  });

  it("passes a capability back to its host, which sees its own object", async () => {
    let stash: Listener | undefined;
    class Returning extends DemoServer {
      override async subscribe(p: { listener: Listener }): Promise<void> {
        stash = p.listener; // the client's own Counter, passed as a Listener
      }
      override newCounter(_p: unknown, ctx?: CallContext) {
        using counter = (stash as Listener).castAs(Counter);
        (ctx?.results as unknown as { counter: Counter }).counter = counter;
        return undefined as never;
      }
    }
    pair = connectPair({ bootstrap: Demo.server(new Returning()) });
    const { client, server, demo } = pair;
    const mine = Counter.server(new CounterServer(41n));
    {
      using asListener = mine.castAs(Listener);
      await demo.subscribe({ listener: asListener, count: 0 });
    }
    expect(server.stats().imports).toBe(1);
    using made = demo.newCounter({ start: 0n }); // awaited, not pipelined: nothing is forwarded
    const back = (await made).counter;
    expect(back.$hook.resolved()).toBe(mine.$hook.resolved());
    expect((await back.inc({ by: 1n })).value).toBe(42n);
    back.dispose();
    stash?.dispose();
    mine.dispose();
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("tells a method which connection and export entry its call came through", async () => {
    const seen: Array<{ connection: unknown; exportId: unknown }> = [];
    class Watching extends DemoServer {
      override echo(p: Demo_echo_Params, ctx?: CallContext) {
        const origin = ctx?.origin as { connection: RpcConnection; exportEntry?: { id: number } };
        seen.push({ connection: origin.connection, exportId: origin.exportEntry?.id });
        return { payload: p.payload };
      }
    }
    pair = connectPair({ bootstrap: Demo.server(new Watching()) });
    const { client, server, demo } = pair;
    await demo.echo({ payload: bytes(1) }); // pipelined on the Bootstrap
    await demo.echo({ payload: bytes(1) }); // sent to the import
    expect(seen).toEqual([
      { connection: server, exportId: 0 },
      { connection: server, exportId: 0 },
    ]);
    expect(connectionOf(demo)).toBe(client);
    expect(connectionOf(Demo.server(new DemoServer()))).toBeUndefined();
    demo.dispose();
    await expectNoLeaks(client, server);
  });

  it("notifies a server holding a client's capability when that client disconnects (notifyOnDisconnect)", async () => {
    let notified: ParallaxError | undefined;
    const gotListener = new Promise<void>((resolve) => {
      const root = new DemoServer();
      root.subscribe = async (p) => {
        const listener = p.listener; // kept past the call, as a chat room keeps its members
        onDisconnect(listener, (err) => {
          notified = err;
          listener.dispose();
        });
        resolve();
      };
      pair = connectPair({ bootstrap: Demo.server(root) });
    });
    const { client, server, demo } = pair as Pair;
    const listener = Listener.server({ event: () => {} });
    await demo.subscribe({ listener, count: 0 });
    await gotListener;
    expect(notified).toBeUndefined();
    const closed = new Promise<void>((r) => server.onClose(() => r()));
    client.close();
    await closed;
    expect(notified?.kind).toBe("disconnected");
    expect(server.stats()).toMatchObject({ imports: 0, exports: 0 });
    listener.dispose();
    demo.dispose();
  });
});

describe("exception details", () => {
  async function traceOfFailure(exposeStacks: boolean): Promise<string> {
    const [a, b] = memoryPair();
    let trace = "unset";
    const send = b.send.bind(b);
    b.send = (bytes: Uint8Array) => {
      const { root } = decodeRpcMessage(bytes, {
        maxSegments: 8,
        maxTraversalWords: 1 << 20,
        maxNestingDepth: 64,
      });
      if (root.which() === rpc.Message_Which.RETURN && root.return.which() === rpc.Return_Which.EXCEPTION) {
        trace = root.return.exception.trace;
      }
      send(bytes);
    };
    const boot = Demo.server(new DemoServer());
    const server = new RpcConnection(b, { bootstrap: boot, exposeStacks });
    boot.dispose();
    const client = new RpcConnection(a);
    const demo = client.bootstrap(Demo);
    await expect(demo.fail({ reason: "boom" })).rejects.toMatchObject({ message: "boom" });
    demo.dispose();
    client.close();
    server.close();
    return trace;
  }

  it("sends no stack trace to the peer unless the server opts in", async () => {
    expect(await traceOfFailure(false)).toBe("");
    expect(await traceOfFailure(true)).toContain("boom");
  });
});

describe("cancellation", () => {
  it("cancels a call when its signal aborts: the caller rejects and the method sees its signal", async () => {
    let sawAbort!: () => void;
    const aborted = new Promise<void>((r) => {
      sawAbort = r;
    });
    const server = new DemoServer();
    server.sleep = (_p, ctx: CallContext) =>
      new Promise<void>((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => {
          sawAbort();
          reject(new ParallaxError(ErrorCode.CANCELED, "stopped"));
        });
      });
    pair = connectPair({ bootstrap: Demo.server(server) });
    const { client, demo } = pair;
    const ac = new AbortController();
    const call = demo.sleep({ ms: 10_000 }, { signal: ac.signal });
    await demo.echo({ payload: bytes(1) }); // the sleep call has reached the server
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: ErrorCode.CANCELED });
    await aborted;
    demo.dispose();
    await expectNoLeaks(client, pair.server);
  });

  it("breaks capabilities pipelined on a call its caller canceled, and the connection lives on", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    for (const cancel of ["dispose", "signal"] as const) {
      const ac = new AbortController();
      const made = demo.newCounter({ start: 0n }, { signal: ac.signal });
      const kept = made.counter.dup();
      if (cancel === "dispose") made.dispose();
      else ac.abort();
      await expect(kept.get()).rejects.toMatchObject({ code: ErrorCode.CANCELED });
      kept.dispose();
      made.dispose();
    }
    expect(client.closed || server.closed).toBe(false);
    expect((await demo.echo({ payload: bytes(2) })).payload.length).toBe(2);
    demo.dispose();
    await expectNoLeaks(client, server);
  });
});

describe("E-order: calls to one target arrive in the order they were made", () => {
  it("delivers calls to the same target in the order they were made", async () => {
    pair = connectPair();
    const { client, server, demo } = pair;
    using made = demo.newCounter({ start: 0n });
    const counter = made.counter;
    const calls = Array.from({ length: 50 }, () => counter.inc());
    const results = await Promise.all(calls);
    expect(results.map((r) => r.value)).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
    for (const c of calls) c.dispose();
    counter.dispose();
    demo.dispose();
    made.dispose();
    await expectNoLeaks(client, server);
  });

  it("keeps call order through a promise the caller exported, for calls made before and after the results", async () => {
    const order: bigint[] = [];
    class Recording extends CounterServer {
      override inc(p: { by: bigint }) {
        order.push(p.by);
        return { value: 7n } as never;
      }
    }
    let stash: Listener | undefined;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const delayed = Object.assign(new DemoServer(), {
      async subscribe(p: { listener: Listener }): Promise<void> {
        stash = p.listener;
      },
      async newCounter(_p: unknown, ctx: CallContext): Promise<void> {
        await gate;
        using counter = (stash as Listener).castAs(Counter);
        (ctx.results as unknown as { counter: Counter }).counter = counter;
      },
    });
    pair = connectPair({ bootstrap: Demo.server(delayed as unknown as Demo$Server) });
    const { client, server, demo } = pair;
    let resolveLater!: (hook: CapHook) => void;
    const later = new Listener(new PromiseCapHook(new Promise<CapHook>((r) => (resolveLater = r))));
    await demo.subscribe({ listener: later, count: 0 });
    const made = demo.newCounter({ start: 0n });
    const counter = made.counter.dup();
    const first = counter.inc({ by: 1n }); // pipelined before the Return
    release();
    await made; // the results have arrived
    const second = counter.inc({ by: 2n });
    const target = Counter.server(new Recording(0n));
    resolveLater(target.$hook.addRef());
    await Promise.all([first, second]);
    expect(order).toEqual([1n, 2n]);
    for (const c of [counter, target, later, stash as Listener, demo]) c.dispose();
    made.dispose();
    await expectNoLeaks(client, server);
  });
});

describe("forwarding between connections", () => {
  it("forwards a call whose results carry a capability, re-pointing the capability for the caller", async () => {
    let stash: Listener | undefined;
    class Forwarding extends DemoServer {
      override async subscribe(p: { listener: Listener }): Promise<void> {
        stash = p.listener; // really the client's own Counter, passed as a Listener
      }
      override newCounter(_p: unknown, ctx?: CallContext) {
        using counter = (stash as Listener).castAs(Counter);
        (ctx?.results as unknown as { counter: Counter }).counter = counter;
        return undefined as never;
      }
    }
    pair = connectPair({ bootstrap: Demo.server(new Forwarding()) });
    const { client, server, demo } = pair;
    const mine = Counter.server(new CounterServer(0n));
    await demo.subscribe({ listener: mine.castAs(Listener), count: 0 });
    using made = demo.newCounter({ start: 0n });
    // Pipelined, so the server forwards it back to us; our answer holds `self`, a capability,
    // which the server copies into its own Return and which arrives as our own object again.
    using incremented = made.counter.inc({ by: 1n });
    const results = await incremented;
    expect(results.value).toBe(1n);
    const self = results.self;
    expect(self.$hook.resolved()).toBe(mine.$hook.resolved());
    self.dispose();
    incremented.dispose();
    expect(client.closed || server.closed).toBe(false);
    expect((await demo.echo({ payload: bytes(1) })).payload.length).toBe(1);
    stash?.dispose();
    mine.dispose();
    made.dispose();
    demo.dispose();
    await expectNoLeaks(client, server);
  });
});
