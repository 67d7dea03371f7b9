/**
 * Promise capabilities across the connection: senderPromise exports, Resolve, and the embargo
 * that keeps E-order when a promise turns out to be the caller's own object.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type CallContext, type CapHook, PromiseCapHook } from "../../src/caps/index.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { memoryPair } from "../../src/transport/index.js";
import {
  Reflector,
  type Reflector$Server,
  type Reflector_broken_Results,
  type Reflector_reflect_Params,
  type Reflector_reflect_Results,
  Sink,
} from "../gen/rpc-test.js";
import { expectNoLeaks } from "../helpers/rpc-stats.js";

/** Stubs a method creates or reads are its own to dispose; it fills `ctx.results`, which takes its own reference. */
class ReflectorServer implements Reflector$Server {
  readonly #gates: Array<() => void> = [];

  reflect(params: Reflector_reflect_Params, ctx: CallContext<Reflector_reflect_Results>): void {
    using cap = params.cap;
    if (!params.delayed) {
      ctx.results.cap = cap;
      return;
    }
    const kept = cap.dup();
    const later = new Promise<CapHook>((resolve) =>
      this.#gates.push(() => {
        resolve(kept.$hook.addRef());
        kept.dispose();
      }),
    );
    using promised = new Sink(new PromiseCapHook(later));
    ctx.results.cap = promised;
  }

  open() {
    for (const g of this.#gates.splice(0)) g();
  }

  broken(_params: unknown, ctx: CallContext<Reflector_broken_Results>): void {
    const failing = new Promise<CapHook>((_resolve, reject) =>
      this.#gates.push(() => reject(new ParallaxError(ErrorCode.FAILED, "the promise broke"))),
    );
    using promised = new Sink(new PromiseCapHook(failing));
    ctx.results.cap = promised;
  }
}

let conns: RpcConnection[] = [];
afterEach(() => {
  for (const c of conns) c.close();
  conns = [];
});

function pair(): { client: RpcConnection; server: RpcConnection; reflector: Reflector } {
  const [a, b] = memoryPair();
  const root = Reflector.server(new ReflectorServer());
  const server = new RpcConnection(b, { bootstrap: root });
  root.dispose();
  const client = new RpcConnection(a);
  conns = [client, server];
  return { client, server, reflector: client.bootstrap(Reflector) };
}

function recordingSink(seen: number[]): Sink {
  return Sink.server({ push: (p) => void seen.push(p.n) });
}

describe("promise capabilities over the wire", () => {
  it("exports an unresolved promise as senderPromise and forwards calls once it resolves", async () => {
    const { client, server, reflector } = pair();
    const seen: number[] = [];
    const mine = recordingSink(seen);
    using reflected = reflector.reflect({ cap: mine, delayed: true });
    const promised = (await reflected).cap;
    const early = promised.push({ n: 1 }); // queued on the server until the promise resolves
    await reflector.open();
    await early;
    await promised.push({ n: 2 });
    expect(seen).toEqual([1, 2]);
    await promised.whenResolved();
    promised.dispose();
    mine.dispose();
    reflected.dispose();
    reflector.dispose();
    await expectNoLeaks(client, server);
  });

  it("keeps call order with an embargo when a promise resolves to the caller's own object", async () => {
    const { client, server, reflector } = pair();
    const seen: number[] = [];
    const mine = recordingSink(seen);
    using reflected = reflector.reflect({ cap: mine, delayed: true });
    const promised = reflected.cap; // pipelined: calls go out before the Return
    const calls = [promised.push({ n: 1 }), promised.push({ n: 2 })];
    await reflector.open();
    await promised.whenResolved();
    // Resolved to our own Sink: these may not overtake 1 and 2, still looping through the server.
    calls.push(promised.push({ n: 3 }), promised.push({ n: 4 }));
    await Promise.all(calls);
    expect(seen).toEqual([1, 2, 3, 4]);
    for (let n = 5; n <= 20; n++) calls.push(promised.push({ n }));
    await Promise.all(calls);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    promised.dispose();
    mine.dispose();
    reflected.dispose();
    reflector.dispose();
    await expectNoLeaks(client, server);
  });

  it("passes a capability back to its host, which then calls its own object directly", async () => {
    const { client, server, reflector } = pair();
    const seen: number[] = [];
    const mine = recordingSink(seen);
    using reflected = reflector.reflect({ cap: mine, delayed: false });
    const back = (await reflected).cap;
    await back.push({ n: 7 });
    expect(seen).toEqual([7]);
    expect(back.$hook.resolved()).toBe(mine.$hook.resolved()); // receiverHosted: our own hook, no proxy
    back.dispose();
    mine.dispose();
    reflected.dispose();
    reflector.dispose();
    await expectNoLeaks(client, server);
  });

  it("breaks calls on a promise that rejects, with the reason, and frees its tables", async () => {
    const { client, server, reflector } = pair();
    using made = reflector.broken();
    const cap = (await made).cap;
    const pending = cap.push({ n: 1 });
    await reflector.open();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.FAILED, message: "the promise broke" });
    await expect(cap.push({ n: 2 })).rejects.toMatchObject({ message: "the promise broke" });
    cap.dispose();
    made.dispose();
    reflector.dispose();
    await expectNoLeaks(client, server);
  });
});
