/**
 * The router client's gap-free recovery over real connections: the subscriber connects to the
 * broker's TCP port through a loopback proxy (client-proxy.ts) that cuts its connection in the
 * middle of a frame, again and again, while a publisher on its own connection publishes numbered
 * events. The subscriber must end with exactly 1..N in order — none lost, none twice — and its
 * registration must answer again after the resets. Also: the broker not yet knowing the old
 * session is dead (a zombie holding the registration), loss beyond the router's window reported
 * as `unrecoverable` before the rest, a roster watch's view carried across a drop, and a resume
 * the broker refuses.
 *
 * No sleeps: the subscriber's reconnects are gated on the publisher's progress (so events are
 * published while it is away), and every wait is on an event (a delivery, a client event, the
 * broker's counts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { ErrorCode } from "../../../src/errors.js";
import { loginWithPassword, makeVerifier } from "../../../src/login/client-login.js";
import { attach } from "../../../src/login/perspective-key.js";
import { startBroker } from "../../../src/server.js";
import {
  type RosterChangeValue,
  RouterClient,
  type RouterEvent,
} from "../../../src/services/router/router-client.js";
import { ROUTER_SESSION } from "../../../src/services/router/router-keys.js";
import { router } from "../../../src/services/router/router-service.js";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import { Root } from "../../../src/wire/gen/broker.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor, within } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";
import { ROUTER_KEYRING, type RouterHarness, resumed, routerHarness } from "./client-harness.js";
import { ResettingProxy } from "./client-proxy.js";

let h: RouterHarness | undefined;
let proxy: ResettingProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  await h?.close();
  h = undefined;
  proxy = undefined;
});

/** Something to wait on: `next()` resolves at the next `signal()`. */
function signals() {
  let waiters: Array<() => void> = [];
  return {
    signal(): void {
      const w = waiters;
      waiters = [];
      for (const r of w) r();
    },
    next(): Promise<void> {
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

describe("gap-free recovery through a resetting proxy", () => {
  it("a subscriber cut off mid-frame again and again hears exactly 1..N in order; its registration comes back", async () => {
    const N = 300;
    const CUT_EVERY = 37;
    /** How far the publisher may run ahead of a connected subscriber. */
    const LEAD = 10;
    /** Events published while the subscriber is away, before it may reconnect. */
    const AWAY = 15;
    h = await routerHarness();
    await h.addUser("sub", "sub pw", "backend");
    await h.addUser("pub", "pub pw");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const progress = signals();
    let published = 0;
    let publishedAway = 0;
    const got: number[] = [];
    const seqs: number[] = [];
    let connects = 0;
    const sub = await h.client("sub", "sub pw", {
      connect: async () => {
        if (connects++ > 0) {
          const target = Math.min(N, published + AWAY);
          while (published < target) await progress.next();
        }
        return connect(p.url);
      },
      onEvent: () => progress.signal(),
    });
    await sub.client.register("svc.ping", (inv) => `pong ${inv.args[0]}`);
    const done = new Promise<void>((resolve) => {
      void sub.client.subscribe("count", (e: RouterEvent) => {
        const n = e.args[0] as number;
        got.push(n);
        seqs.push(e.seq);
        if (n % CUT_EVERY === 0 && sub.client.connected) void p.cutMidStream();
        progress.signal();
        if (got.length === N) resolve();
      });
    });
    await waitFor(() => expect(h?.router.pubsub.subscriptionCount()).toBe(1));
    const pub = await h.client("pub", "pub pw");
    for (let i = 1; i <= N; i++) {
      while (sub.client.connected && i > got.length + LEAD) await progress.next();
      await pub.client.publish("count", [i]);
      published = i;
      if (!sub.client.connected) publishedAway++;
      progress.signal();
    }
    await within(done, 20_000, "the subscriber hearing all events");
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
    // The cuts happened (each one a frame split in two), each was followed by a resume, and
    // events were published while the subscriber was away.
    expect(p.cuts).toBeGreaterThanOrEqual(5);
    await sub.nth(resumed, p.cuts);
    expect(sub.events.filter((e) => e.type === "failed" || e.type === "restoreFailed")).toEqual([]);
    expect(publishedAway).toBeGreaterThanOrEqual(AWAY);
    // The registration came back, once: the old sessions' copies went with them.
    await sub.client.settled();
    expect((await pub.client.call("svc.ping", [1])).args).toEqual(["pong 1"]);
    await waitFor(() => expect(h?.router.procedures.registrationCount()).toBe(1));
  }, 30_000);

  it("replaces the registration of its own zombie session the broker still believes alive", async () => {
    h = await routerHarness();
    await h.addUser("svc", "svc pw", "backend");
    await h.addUser("caller", "caller pw");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const svc = await h.client("svc", "svc pw", { connect: () => connect(p.url) });
    const callee = await svc.client.register("svc.work", (inv) => `done by ${inv.caller.authid}`);
    const caller = await h.client("caller", "caller pw");
    expect((await caller.client.call("svc.work")).args).toEqual(["done by caller"]);
    const sessionsBefore = h.router.attachmentCount;
    p.orphanAll();
    await svc.nth(resumed, 1);
    // The broker still holds the old session (its socket is open), yet the call reaches the new one.
    expect(p.orphans).toBe(1);
    expect(h.router.attachmentCount).toBe(sessionsBefore + 1);
    expect(h.router.procedures.registrationCount()).toBe(1);
    expect((await caller.client.call("svc.work")).args).toEqual(["done by caller"]);
    expect(callee.active).toBe(true);
    p.releaseOrphans();
    await waitFor(() => expect(h?.router.attachmentCount).toBe(sessionsBefore));
    expect(h.router.procedures.registrationCount()).toBe(1);
  });

  it("beyond the router's window it reports unrecoverable(after, resumedFrom) first, then the rest in order", async () => {
    h = await routerHarness({ router: { pubsub: { topicWindow: 5 } } });
    await h.addUser("sub", "sub pw");
    await h.addUser("pub", "pub pw");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const progress = signals();
    let published = 0;
    let connects = 0;
    const sub = await h.client("sub", "sub pw", {
      connect: async () => {
        // Away until 12 more events were published: more than the window of 5 keeps.
        if (connects++ > 0) while (published < 15) await progress.next();
        return connect(p.url);
      },
    });
    const heard: Array<string | number> = [];
    const seqOf = new Map<number, number>();
    const arrived = signals();
    const handle = await sub.client.subscribe("log", (e) => {
      heard.push(e.args[0] as number);
      arrived.signal();
    });
    handle.onUnrecoverable = (after, resumedFrom) => {
      heard.push(`lost (${after}, ${resumedFrom})`);
      arrived.signal();
    };
    const pub = await h.client("pub", "pub pw");
    for (let i = 1; i <= 3; i++) seqOf.set(i, await pub.client.publish("log", [i]));
    while (heard.length < 3) await arrived.next();
    p.resetAll();
    await sub.nth((e) => e.type === "disconnected", 1);
    for (let i = 4; i <= 15; i++) {
      seqOf.set(i, await pub.client.publish("log", [i]));
      published = i;
      progress.signal();
    }
    while (heard.length < 9) await arrived.next();
    expect(heard).toEqual([1, 2, 3, `lost (${seqOf.get(3)}, ${seqOf.get(11)})`, 11, 12, 13, 14, 15]);
    expect(handle.lastSeq).toBe(seqOf.get(15));
  });

  it("a subscriber that heard nothing yet resumes from the router's sequence at subscription: nothing lost", async () => {
    // The router's sequences start from its clock, never at 0 ("from now on"): a subscription
    // made before anything was published still has a sequence to resume after.
    h = await routerHarness();
    await h.addUser("sub", "sub pw");
    await h.addUser("pub", "pub pw");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const progress = signals();
    let published = 0;
    let connects = 0;
    const sub = await h.client("sub", "sub pw", {
      connect: async () => {
        if (connects++ > 0) while (published < 3) await progress.next();
        return connect(p.url);
      },
    });
    const heard: Array<string | number> = [];
    const arrived = signals();
    const handle = await sub.client.subscribe("log", (e) => {
      heard.push(e.args[0] as number);
      arrived.signal();
    });
    handle.onUnrecoverable = (after, resumedFrom) => {
      heard.push(`lost (${after}, ${resumedFrom})`);
      arrived.signal();
    };
    const startedAt = handle.lastSeq;
    expect(startedAt).toBeGreaterThan(0);
    p.resetAll();
    await sub.nth((e) => e.type === "disconnected", 1);
    const pub = await h.client("pub", "pub pw");
    for (let i = 1; i <= 3; i++) {
      await pub.client.publish("log", [i]);
      published = i;
      progress.signal();
    }
    await sub.nth(resumed, 1);
    await pub.client.publish("log", [4]);
    while (heard.length < 4) await arrived.next();
    expect(heard).toEqual([1, 2, 3, 4]);
  });

  it("after the broker restarts (a new router, sequences above the old run's) it hears the loss, then the new events", async () => {
    const folder = mkdtempSync(path.join(tmpdir(), "parallax-router-restart-"));
    const store = SqliteBrokerStore.open(path.join(folder, "parallax.db"));
    const start = () => startBroker({ port: 0, tcpPort: 0, store, signUp: "closed", services: [router()] });
    let server = await start();
    let client: RouterClient | undefined;
    try {
      const { verifier } = await makeVerifier("pw", { kdf });
      await store.createIdentity({ name: "sub", verifier, keyring: ROUTER_KEYRING });
      proxy = await ResettingProxy.start(server.tcpPort as number);
      const p = proxy;
      const gate = signals();
      let open = true;
      const events = signals();
      const seen: string[] = [];
      client = new RouterClient({
        connect: async () => {
          while (!open) await gate.next();
          return connect(p.url);
        },
        login: async (root) => (await loginWithPassword(root, "sub", "pw", { kdf })).identity,
        baseDelayMs: 5,
        onEvent: (e) => {
          seen.push(e.type);
          events.signal();
        },
      });
      await client.start();
      const heard: Array<string | number> = [];
      const arrived = signals();
      const handle = await client.subscribe("log", (e) => {
        heard.push(`${e.args[0]}@${e.seq}`);
        arrived.signal();
      });
      handle.onUnrecoverable = (after, resumedFrom) => {
        heard.push(`lost (${after}, ${resumedFrom})`);
        arrived.signal();
      };
      const publisher = async (url: string, n: number) => {
        const c = await connect(url);
        const root = c.bootstrap(Root);
        const { identity } = await loginWithPassword(root, "sub", "pw", { kdf });
        const session = attach(identity, ROUTER_SESSION);
        for (let i = 1; i <= n; i++)
          await session.publish({ topic: "log", payload: { args: `[${i}]`, kwargs: "" } });
        session.dispose();
        identity.dispose();
        root.dispose();
        c.close();
      };
      await publisher(server.url, 3);
      while (heard.length < 3) await arrived.next();
      open = false;
      await server.close();
      while (!seen.includes("disconnected")) await events.next();
      server = await start();
      p.retarget(server.tcpPort as number);
      open = true;
      gate.signal();
      while (!seen.includes("connected") || seen.lastIndexOf("connected") === 0) await events.next();
      await publisher(server.url, 2);
      while (heard.length < 6) await arrived.next();
      const seqOf = (x: string | number) => Number(String(x).split("@")[1]);
      expect(heard.slice(0, 3).map((x) => String(x).split("@")[0])).toEqual(["1", "2", "3"]);
      const lastOld = seqOf(heard[2] as string);
      expect(heard[3]).toMatch(new RegExp(`^lost \\(${lastOld}, \\d+\\)$`));
      expect(heard.slice(4).map((x) => String(x).split("@")[0])).toEqual(["1", "2"]);
      // The new run's sequences continue above the old run's: no event of it is taken for one of these.
      expect(seqOf(heard[4] as string)).toBeGreaterThan(lastOld);
      expect(handle.lastSeq).toBe(seqOf(heard[5] as string));
    } finally {
      client?.close();
      await proxy?.close();
      proxy = undefined;
      await server.close();
      store.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it("tells a roster watcher what changed while it was away: who joined, who left", async () => {
    h = await routerHarness();
    await h.addUser("watcher", "watcher pw");
    await h.addUser("a", "a pw", "backend");
    await h.addUser("b", "b pw", "backend");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const gate = signals();
    let open = true;
    const watcher = await h.client("watcher", "watcher pw", {
      connect: async () => {
        while (!open) await gate.next();
        return connect(p.url);
      },
    });
    const a = await h.client("a", "a pw");
    await a.client.rosterRegister("roster.dash", { name: "a" });
    const changes: RosterChangeValue[] = [];
    const changed = signals();
    const watch = await watcher.client.rosterWatch("roster.dash", (c) => {
      changes.push(c);
      changed.signal();
    });
    expect(watch.entries.map((e) => e.owner.authid)).toEqual(["a"]);
    open = false;
    p.resetAll();
    await watcher.nth((e) => e.type === "disconnected", 1);
    const b = await h.client("b", "b pw");
    await b.client.rosterRegister("roster.dash", { name: "b" });
    a.client.close();
    await waitFor(() => expect(h?.router.rosters.entryCount).toBe(1));
    open = true;
    gate.signal();
    await watcher.nth(resumed, 1);
    while (changes.length < 2) await changed.next();
    expect(changes.map((c) => [c.kind, c.entry.owner.authid]).sort()).toEqual([
      ["joined", "b"],
      ["left", "a"],
    ]);
    expect(watch.entries.map((e) => e.owner.authid)).toEqual(["b"]);
  });

  it("stops with a clear failure when the broker refuses the resume, and changeUser recovers", async () => {
    h = await routerHarness();
    await h.addUser("alice", "alice pw");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const c = await h.client("alice", "alice pw", { connect: () => connect(p.url) });
    // Alice logs out everywhere from another device: every resume token of hers is gone.
    const other = await connect(h.server.url);
    const root = other.bootstrap(Root);
    const { identity } = await loginWithPassword(root, "alice", "alice pw", { kdf });
    await identity.logoutEverywhere();
    identity.dispose();
    root.dispose();
    other.close();
    p.resetAll();
    const failed = await c.nth((e) => e.type === "failed", 1);
    expect(failed).toMatchObject({ type: "failed", error: { code: ErrorCode.AUTH_FAILED } });
    const err = await rejection(c.client.whoami());
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err.message).toContain("log in again");
    await c.client.changeUser("alice", "alice pw");
    expect((await c.client.whoami()).authid).toBe("alice");
  });
});
