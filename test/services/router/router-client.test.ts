/**
 * RouterClient against a real broker (WebSocket, SQLite on a temporary folder): seed 003's
 * examples end to end — whoami, the URI prefix, call with positional and named arguments,
 * register with prefix match (the callee learns the caller and the full URI from the broker),
 * publish/subscribe, rosters with watchers, metadata, OTPs and URI-scoped API keys, changeUser,
 * delayed login and join hooks — plus the refusals next to each (a frontend cannot register,
 * JSON that cannot be sent is refused before it is, a wrong password leaves the user in place).
 * Every test ends with the harness' leak check: no connection, login, registration,
 * subscription, roster entry or watch left on the broker.
 */
import path from "node:path";
import { build } from "esbuild";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import type { RpcConnection } from "../../../src/rpc/index.js";
import {
  type Invocation,
  type MetadataValue,
  type RosterChangeValue,
  RouterClient,
  type RouterEvent,
  RouterResult,
} from "../../../src/services/router/router-client.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { type RouterHarness, resumed, routerHarness } from "./client-harness.js";

const PREFIX = "com.izaber.wamp.";

let h: RouterHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A harness with alice (frontend), bob and carol (backend). */
async function setup() {
  h = await routerHarness();
  await h.addUser("alice", "alice pw");
  await h.addUser("bob", "bob pw", "backend");
  await h.addUser("carol", "carol pw", "backend");
  return h;
}

/** Collects what a handler receives; `until(n)` resolves once it has `n`. */
function inbox<T>() {
  const got: T[] = [];
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  return {
    got,
    push(v: T): void {
      got.push(v);
      for (const w of waiting.filter((x) => got.length >= x.n)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    },
    until(n: number): Promise<void> {
      return got.length >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve }));
    },
  };
}

/** Connects through `connect(url)`, keeping every connection made (to drop one from the client's side). */
function keptConnections(url: string) {
  const made: RpcConnection[] = [];
  return {
    made,
    connect: async () => {
      const c = await connect(url);
      made.push(c);
      return c;
    },
    /** Closes the newest connection, as a network failure would from the client's point of view. */
    drop: () => made.at(-1)?.close("network blip"),
  };
}

describe("RouterClient: seed 003's examples", () => {
  it("whoami answers the login's authid and role, from the broker", async () => {
    const t = await setup();
    const alice = await t.client("alice", "alice pw");
    const bob = await t.client("bob", "bob pw");
    const a = await alice.client.whoami();
    const b = await bob.client.whoami();
    expect({ authid: a.authid, role: a.role, method: a.authMethod }).toEqual({
      authid: "alice",
      role: "frontend",
      method: "password",
    });
    expect({ authid: b.authid, role: b.role }).toEqual({ authid: "bob", role: "backend" });
    expect(a.session).toBeGreaterThan(0);
    expect(a.session).not.toBe(b.session);
    expect(a.apiKeyPermissions).toEqual([]);
    expect(alice.events).toEqual([{ type: "connected", resumed: false }]);
  });

  it("prepends the prefix to every URI that does not start with it", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw", { prefix: PREFIX });
    expect(bob.client.uri("auth.whoami")).toBe("com.izaber.wamp.auth.whoami");
    expect(bob.client.uri("com.izaber.wamp.auth.whoami")).toBe("com.izaber.wamp.auth.whoami");
    expect(bob.client.uri("")).toBe("com.izaber.wamp");
    // Registered short, called long and short: the same procedure.
    const seen: string[] = [];
    await bob.client.register("example.echo", (inv) => {
      seen.push(inv.procedure);
      return inv.args[0];
    });
    const alice = await t.client("alice", "alice pw", { prefix: PREFIX });
    expect((await alice.client.call("example.echo", ["short"])).args).toEqual(["short"]);
    expect((await alice.client.call("com.izaber.wamp.example.echo", ["long"])).args).toEqual(["long"]);
    // Without the prefix the short URI is another procedure: nobody registered it.
    const plain = await t.client("alice", "alice pw");
    expect((await rejection(plain.client.call("example.echo"))).code).toBe(ErrorCode.NOT_FOUND);
    expect(seen).toEqual(["com.izaber.wamp.example.echo", "com.izaber.wamp.example.echo"]);
  });

  it("refuses a prefix that does not end with '.' or is not a URI", () => {
    const connectNever = () => Promise.reject(new Error("never connects"));
    for (const prefix of ["com.izaber.wamp", "com..izaber.", "com izaber.", "."]) {
      let error: unknown;
      try {
        new RouterClient({ connect: connectNever, prefix });
      } catch (err) {
        error = err;
      }
      expect(error, prefix).toBeInstanceOf(ParallaxError);
      expect((error as ParallaxError).code, prefix).toBe(ErrorCode.BAD_ARGUMENT);
    }
  });

  it("calls with positional and named arguments and gets both back", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw", { prefix: PREFIX });
    await bob.client.register(
      "example.call",
      (inv) => new RouterResult([...inv.args].reverse(), { got: inv.kwargs }),
    );
    await bob.client.register("example.plain", () => ({ just: "a value" }));
    await bob.client.register("example.nothing", () => undefined);
    const alice = await t.client("alice", "alice pw", { prefix: PREFIX });
    const res = await alice.client.call("example.call", ["pos1", "pos2"], {
      keyword1: "value1",
      keyword2: "value2",
    });
    expect(res).toEqual({
      args: ["pos2", "pos1"],
      kwargs: { got: { keyword1: "value1", keyword2: "value2" } },
    });
    expect(await alice.client.call("example.plain")).toEqual({ args: [{ just: "a value" }], kwargs: {} });
    expect(await alice.client.call("example.nothing")).toEqual({ args: [], kwargs: {} });
  });

  it("registers with prefix match: the callee gets the caller's authid, role and session and the full URI", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw", { prefix: PREFIX });
    const calls: Invocation[] = [];
    const reg = await bob.client.register(
      "example.hello",
      (inv) => {
        calls.push(inv);
        return `Hello ${inv.caller.authid} (role: ${inv.caller.role})! Called from: <${inv.procedure}>`;
      },
      { match: "prefix", forceReregister: true },
    );
    expect(reg.procedure).toBe("com.izaber.wamp.example.hello");
    const alice = await t.client("alice", "alice pw", { prefix: PREFIX });
    const me = await alice.client.whoami();
    for (const tail of ["toot", "yep", "this.will.also.work"]) {
      const res = await alice.client.call(`example.hello.${tail}`);
      expect(res.args).toEqual([
        `Hello alice (role: frontend)! Called from: <com.izaber.wamp.example.hello.${tail}>`,
      ]);
    }
    expect(calls.map((c) => c.caller)).toEqual(
      Array(3).fill({ authid: "alice", role: "frontend", session: me.session }),
    );
    // "example.hellothere" is not below "example.hello": no registration matches it.
    expect((await rejection(alice.client.call("example.hellothere"))).code).toBe(ErrorCode.NOT_FOUND);
    await reg.unregister();
    expect(reg.active).toBe(false);
    expect((await rejection(alice.client.call("example.hello.toot"))).code).toBe(ErrorCode.NOT_FOUND);
    expect(t.router.procedures.registrationCount()).toBe(0);
  });

  it("a frontend user cannot register, and nothing gets registered", async () => {
    const t = await setup();
    const alice = await t.client("alice", "alice pw");
    const err = await rejection(alice.client.register("example.mine", () => "mine"));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toContain("frontend");
    expect(t.router.procedures.registrationCount()).toBe(0);
    expect((await rejection(alice.client.call("example.mine"))).code).toBe(ErrorCode.NOT_FOUND);
  });

  it("what a callee throws reaches the caller as the call's error", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw");
    await bob.client.register("example.fails", () => {
      throw new Error("the database is down");
    });
    const alice = await t.client("alice", "alice pw");
    const err = await rejection(alice.client.call("example.fails"));
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toContain("the database is down");
  });

  it("refuses what JSON cannot carry before sending it, and a bad URI with a precise error", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw");
    const before = t.router.pubsub.lastSeq;
    const big = await rejection(bob.client.publish("test.sub", [1n]));
    expect(big.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(big.message).toContain("JSON");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect((await rejection(bob.client.call("example.x", [], cyclic))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await rejection(bob.client.rosterRegister("roster.x", undefined))).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    const bad = await rejection(bob.client.subscribe("test has spaces", () => {}));
    expect(bad.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(bad.message).toContain("whitespace");
    expect(t.router.pubsub.lastSeq).toBe(before);
    expect(t.router.pubsub.subscriptionCount()).toBe(0);
    expect(t.router.rosters.entryCount).toBe(0);
  });

  it("publishes and subscribes: the subscriber learns the publisher from the broker", async () => {
    const t = await setup();
    const alice = await t.client("alice", "alice pw", { prefix: PREFIX });
    const bob = await t.client("bob", "bob pw", { prefix: PREFIX });
    const heard = inbox<RouterEvent>();
    const mine = inbox<RouterEvent>();
    const sub = await alice.client.subscribe("test.sub", (e) => heard.push(e));
    await bob.client.subscribe("test.sub", (e) => mine.push(e));
    const seq = await bob.client.publish("test.sub", [{ Hello: "World!" }]);
    await heard.until(1);
    const e = heard.got[0] as RouterEvent;
    const bobWho = await bob.client.whoami();
    expect(e).toMatchObject({
      topic: "com.izaber.wamp.test.sub",
      seq,
      args: [{ Hello: "World!" }],
      kwargs: {},
      retained: false,
      publisher: { authid: "bob", role: "backend", session: bobWho.session },
    });
    expect(sub.lastSeq).toBe(seq);
    // Bob's own subscription heard nothing (excludeMe by default); with excludeMe false it does.
    const seq2 = await bob.client.publish("test.sub", [], { n: 2 }, { excludeMe: false });
    await mine.until(1);
    await heard.until(2);
    expect(mine.got.map((x) => x.seq)).toEqual([seq2]);
    expect(heard.got.map((x) => x.kwargs)).toEqual([{}, { n: 2 }]);
    await sub.unsubscribe();
    expect(sub.active).toBe(false);
    await waitFor(() => expect(t.router.pubsub.subscriptionCount()).toBe(1));
  });

  it("hands a new subscriber the retained event when it asks for it", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw");
    const kept = await bob.client.publish("status.door", ["open"], {}, { retain: true });
    await bob.client.publish("status.light", ["on"], {}, { retain: false });
    const alice = await t.client("alice", "alice pw");
    const heard = inbox<RouterEvent>();
    await alice.client.subscribe("status", (e) => heard.push(e), { match: "prefix", getRetained: true });
    await heard.until(1);
    const after = await bob.client.publish("status.door", ["closed"]);
    await heard.until(2);
    expect(heard.got.map((e) => [e.seq, e.args[0], e.retained])).toEqual([
      [kept, "open", true],
      [after, "closed", false],
    ]);
  });

  it("registers, queries and watches roster entries; they leave with their session", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw");
    const carol = await t.client("carol", "carol pw");
    const alice = await t.client("alice", "alice pw");
    const ROSTER = "roster.example.bob.test";
    const entry = await bob.client.rosterRegister(ROSTER, { random: "data" });
    const bobWho = await bob.client.whoami();
    expect(entry).toMatchObject({
      name: ROSTER,
      owner: { authid: "bob", role: "backend" },
      data: { random: "data" },
    });
    const changes = inbox<RosterChangeValue>();
    const watch = await alice.client.rosterWatch(ROSTER, (c) => changes.push(c));
    expect(watch.entries.map((e) => e.owner.session)).toEqual([bobWho.session]);
    await carol.client.rosterRegister(ROSTER, ["carol's"]);
    await changes.until(1);
    await bob.client.rosterRegister(ROSTER, { random: "updated" });
    await changes.until(2);
    expect(await bob.client.rosterUnregister(ROSTER)).toBe(true);
    expect(await bob.client.rosterUnregister(ROSTER)).toBe(false);
    await changes.until(3);
    expect(changes.got.map((c) => [c.kind, c.entry.owner.authid, c.entry.data])).toEqual([
      ["joined", "carol", ["carol's"]],
      ["updated", "bob", { random: "updated" }],
      ["left", "bob", { random: "updated" }],
    ]);
    const query = await alice.client.rosterQuery(ROSTER);
    expect(query.map((e) => e.owner.authid)).toEqual(["carol"]);
    expect(watch.entries.map((e) => e.owner.authid)).toEqual(["carol"]);
    // A frontend may query, not register.
    expect((await rejection(alice.client.rosterRegister(ROSTER, 1))).code).toBe(ErrorCode.PERMISSION_DENIED);
    // Carol's session ends: her entry goes, and the watcher hears it.
    carol.client.close();
    await changes.until(4);
    expect(changes.got[3]).toMatchObject({ kind: "left", entry: { owner: { authid: "carol" } } });
    expect(await alice.client.rosterQuery(ROSTER)).toEqual([]);
    await watch.cancel();
  });

  it("sets, gets, lists and deletes metadata with versions; the user's other device hears it", async () => {
    const t = await setup();
    const laptop = await t.client("alice", "alice pw");
    const phone = await t.client("alice", "alice pw");
    const heard = inbox<[MetadataValue, boolean]>();
    await phone.client.metadataWatch((entry, deleted) => heard.push([entry, deleted]));
    const KEY = "some.preference.key";
    const set = await laptop.client.metadataSet(KEY, { random: "data" });
    expect(set).toMatchObject({ kind: "ok", entry: { key: KEY, value: { random: "data" }, version: 1 } });
    expect(await laptop.client.metadataGet(KEY)).toMatchObject({ value: { random: "data" }, version: 1 });
    expect((await laptop.client.metadataList()).map((e) => e.key)).toEqual([KEY]);
    // Compare-and-set: a stale version is a conflict that answers what is there, and writes nothing.
    const stale = await laptop.client.metadataSet(KEY, "other", { version: 0 });
    expect(stale).toMatchObject({ kind: "conflict", current: { version: 1, value: { random: "data" } } });
    const second = await laptop.client.metadataSet(KEY, "dark mode", { version: 1 });
    expect(second).toMatchObject({ kind: "ok", entry: { version: 2, value: "dark mode" } });
    const del = await laptop.client.metadataDelete(KEY);
    expect(del).toMatchObject({ kind: "ok", entry: { version: 2 } });
    expect(await laptop.client.metadataGet(KEY)).toBeUndefined();
    expect(await laptop.client.metadataDelete(KEY)).toEqual({ kind: "conflict", current: undefined });
    await heard.until(3);
    expect(heard.got.map(([e, deleted]) => [e.version, e.value, deleted])).toEqual([
      [1, { random: "data" }, false],
      [2, "dark mode", false],
      [2, "dark mode", true],
    ]);
    // Another user's metadata is another user's.
    const bob = await t.client("bob", "bob pw");
    expect(await bob.client.metadataList()).toEqual([]);
  });

  it("a roster or metadata watcher that falls behind is brought back to what the router answers", async () => {
    h = await routerHarness({ router: { rosters: { maxInFlight: 2 }, metadata: { maxInFlight: 2 } } });
    const t = h;
    await t.addUser("alice", "alice pw");
    await t.addUser("bob", "bob pw", "backend");
    const alice = await t.client("alice", "alice pw");
    const laptop = await t.client("bob", "bob pw");
    const phone = await t.client("bob", "bob pw");
    // Both watchers hold every answer until released: the router's queue to them fills up.
    const held: Array<() => void> = [];
    const hold = () => new Promise<void>((resolve) => held.push(resolve));
    const roster = inbox<RosterChangeValue>();
    const watch = await alice.client.rosterWatch("roster.busy", (c) => {
      roster.push(c);
      return hold();
    });
    const meta = inbox<[MetadataValue, boolean]>();
    await phone.client.metadataWatch((e, deleted) => {
      meta.push([e, deleted]);
      return hold();
    });
    for (let i = 1; i <= 6; i++) {
      await laptop.client.rosterRegister("roster.busy", i);
      await laptop.client.metadataSet("k", i);
    }
    await roster.until(1);
    await meta.until(1);
    // Released one by one until the watchers have caught up with the last write.
    const caughtUp = () =>
      roster.got.at(-1)?.entry.data === 6 && meta.got.at(-1)?.[0].value === 6 && held.length === 0;
    while (!caughtUp()) {
      if (held.length > 0) for (const r of held.splice(0)) r();
      else await waitFor(() => expect(held.length > 0 || caughtUp()).toBe(true));
    }
    // Fewer changes were heard than made (some were dropped), and the views end where the router is.
    expect(roster.got.length).toBeLessThan(6);
    expect(meta.got.length).toBeLessThan(6);
    expect(watch.entries.map((e) => e.data)).toEqual([6]);
    expect(roster.got.map((c) => c.kind)).toEqual([
      "joined",
      ...Array(roster.got.length - 1).fill("updated"),
    ]);
    expect(meta.got.at(-1)?.[0].version).toBe(6);
    const versions = meta.got.map(([e]) => e.version);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
  });

  it("creates an OTP and a URI-scoped API key; the key's logins are limited to its URIs", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw", { prefix: PREFIX });
    await bob.client.register("zerp.read", () => "read");
    await bob.client.register("zerp.write", () => "written");
    const otp = await bob.client.otpCreate();
    expect(otp.login).toBe("bob");
    expect(otp.expiresAt).toBeGreaterThan(Date.now());
    const key = await bob.client.apikeysCreate({
      description: "Purpose of key",
      permissions: [{ uri: "zerp.read", perms: "c" }],
    });
    expect(key).toMatchObject({
      description: "Purpose of key",
      keyring: [{ service: "router", perspective: "session" }],
      permissions: [
        {
          uri: "com.izaber.wamp.zerp.read",
          match: "exact",
          call: true,
          register: false,
          publish: false,
          subscribe: false,
        },
      ],
      expiresAt: 0,
    });
    expect((await bob.client.apikeysList()).map((k) => k.id)).toEqual([key.id]);
    const byKey = await t.client(undefined, undefined, {
      prefix: PREFIX,
      login: async (root) => (await root.loginWithApiKey({ key: key.secret })).identity,
    });
    const who = await byKey.client.whoami();
    expect({ authid: who.authid, method: who.authMethod, perms: who.apiKeyPermissions.length }).toEqual({
      authid: "bob",
      method: "apiKey",
      perms: 1,
    });
    expect((await byKey.client.call("zerp.read")).args).toEqual(["read"]);
    const denied = await rejection(byKey.client.call("zerp.write"));
    expect(denied.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(denied.message).toContain("API key");
    // A key login cannot mint keys or OTPs.
    expect((await rejection(byKey.client.otpCreate())).code).toBe(ErrorCode.PERMISSION_DENIED);
    const byOtp = await t.client(undefined, undefined, {
      login: async (root) => (await root.loginWithOtp({ username: "bob", otp: otp.otp })).identity,
    });
    expect((await byOtp.client.whoami()).authMethod).toBe("otp");
    // Unknown permission letters are refused here.
    const bad = await rejection(bob.client.apikeysCreate({ permissions: [{ uri: "x", perms: "z" }] }));
    expect(bad.code).toBe(ErrorCode.BAD_ARGUMENT);
  });

  it("changeUser logs in anew on the live connection; a wrong password leaves the old user in place", async () => {
    const t = await setup();
    const kept = keptConnections(t.server.url);
    const c = await t.client("alice", "alice pw", { connect: kept.connect });
    const wrong = await rejection(c.client.changeUser("bob", "not bob's"));
    expect(wrong.code).toBe(ErrorCode.AUTH_FAILED);
    expect((await c.client.whoami()).authid).toBe("alice");
    await c.client.changeUser("bob", "bob pw");
    expect(kept.made).toHaveLength(1);
    const who = await c.client.whoami();
    expect({ authid: who.authid, role: who.role }).toEqual({ authid: "bob", role: "backend" });
    expect(c.events.filter((e) => e.type === "userChanged")).toEqual([
      { type: "userChanged", authid: "bob" },
    ]);
    // The old login ended: one login, one router session left on the broker.
    await waitFor(() => {
      expect(t.server.broker.liveIdentities).toBe(1);
      expect(t.router.attachmentCount).toBe(1);
    });
    // Reconnects resume the new user.
    kept.drop();
    await c.nth(resumed, 1);
    expect((await c.client.whoami()).authid).toBe("bob");
    expect(kept.made).toHaveLength(2);
  });

  it("with delayed login connects without a user until changeUser", async () => {
    const t = await setup();
    const c = await t.client(undefined, undefined, { passwordLogin: undefined });
    const err = await rejection(c.client.whoami());
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toContain("not logged in");
    expect(t.router.attachmentCount).toBe(0);
    await c.client.changeUser("alice", "alice pw");
    expect((await c.client.whoami()).authid).toBe("alice");
  });

  it("keeps registrations, subscriptions and roster entries across a reconnect", async () => {
    const t = await setup();
    const kept = keptConnections(t.server.url);
    const bob = await t.client("bob", "bob pw", { connect: kept.connect });
    const alice = await t.client("alice", "alice pw");
    await bob.client.register("svc.echo", (inv) => inv.args[0]);
    const heard = inbox<RouterEvent>();
    const sub = await bob.client.subscribe("feed", (e) => heard.push(e));
    await bob.client.rosterRegister("roster.svc", { up: true });
    const first = await alice.client.publish("feed", [1]);
    await heard.until(1);
    kept.drop();
    await bob.nth((e) => e.type === "disconnected", 1);
    // Published while bob is away: delivered after the resume.
    const second = await alice.client.publish("feed", [2]);
    await bob.nth(resumed, 1);
    await heard.until(2);
    expect(heard.got.map((e) => [e.seq, e.args[0]])).toEqual([
      [first, 1],
      [second, 2],
    ]);
    expect(sub.lastSeq).toBe(second);
    expect((await alice.client.call("svc.echo", ["back"])).args).toEqual(["back"]);
    await waitFor(async () => {
      const roster = await alice.client.rosterQuery("roster.svc");
      expect(roster.map((e) => e.owner.session)).toEqual([(await bob.client.whoami()).session]);
    });
    expect(bob.events.filter((e) => e.type === "restoreFailed")).toEqual([]);
  });

  it("changeUser carries what it can to the new user and says what it cannot", async () => {
    const t = await setup();
    const bob = await t.client("bob", "bob pw");
    const reg = await bob.client.register("svc.bob", () => "bob's");
    const heard: RouterEvent[] = [];
    const arrived: Array<() => void> = [];
    const sub = await bob.client.subscribe("news", (e) => {
      heard.push(e);
      for (const r of arrived.splice(0)) r();
    });
    // Alice is a frontend: she may subscribe, not register.
    await bob.client.changeUser("alice", "alice pw");
    expect(reg.active).toBe(false);
    expect(reg.error?.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(bob.events.filter((e) => e.type === "restoreFailed")).toMatchObject([
      { what: "registration", uri: "svc.bob", error: { code: ErrorCode.PERMISSION_DENIED } },
    ]);
    expect(t.router.procedures.registrationCount()).toBe(0);
    expect(sub.active).toBe(true);
    const carol = await t.client("carol", "carol pw");
    const seq = await carol.client.publish("news", ["for alice"]);
    if (heard.length === 0) await new Promise<void>((resolve) => arrived.push(resolve));
    expect(heard.map((e) => [e.seq, e.args[0]])).toEqual([[seq, "for alice"]]);
    expect(t.router.pubsub.subscriptionCount()).toBe(1);
  });

  it("calls made while it reconnects wait for the new session instead of failing", async () => {
    const t = await setup();
    const kept = keptConnections(t.server.url);
    const alice = await t.client("alice", "alice pw", { connect: kept.connect });
    kept.drop();
    await alice.nth((e) => e.type === "disconnected", 1);
    expect(alice.client.connected).toBe(false);
    const who = await alice.client.whoami();
    expect(who.authid).toBe("alice");
    expect(alice.events.map((e) => e.type)).toEqual(["connected", "disconnected", "connected"]);
  });

  it("runs join hooks after every join; what a hook makes is made again by it, not doubled", async () => {
    const t = await setup();
    const kept = keptConnections(t.server.url);
    const joins: Array<{ resumed: boolean; authid: string }> = [];
    const client = new RouterClient({
      connect: kept.connect,
      login: t.loginAs("bob", "bob pw"),
      baseDelayMs: 5,
    });
    client.hook("join", async (join) => {
      joins.push({ resumed: join.resumed, authid: join.who.authid });
      await join.register("test.call", () => "from the hook");
    });
    let wrongHook: unknown;
    try {
      client.hook("leave" as "join", () => {});
    } catch (err) {
      wrongHook = err;
    }
    expect((wrongHook as ParallaxError).code).toBe(ErrorCode.BAD_ARGUMENT);
    await client.start();
    const alice = await t.client("alice", "alice pw");
    expect((await alice.client.call("test.call")).args).toEqual(["from the hook"]);
    kept.drop();
    await waitFor(() => expect(joins).toHaveLength(2));
    await client.settled();
    expect(joins).toEqual([
      { resumed: false, authid: "bob" },
      { resumed: true, authid: "bob" },
    ]);
    await waitFor(() => expect(t.router.procedures.registrationCount()).toBe(1));
    expect((await alice.client.call("test.call")).args).toEqual(["from the hook"]);
    expect(client.connected).toBe(true);
    await t.close(client);
  });
});

describe("RouterClient in browsers", () => {
  it("bundles for the browser platform with nothing from Node (the password login is loaded on use)", async () => {
    const result = await build({
      entryPoints: [path.resolve(import.meta.dirname, "../../../src/services/router/router-client.ts")],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
      metafile: true,
      // The one dynamic import: argon2's password login, fetched when changeUser first runs.
      external: ["../../login/client-login.js"],
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.endsWith("src/services/router/router-client.ts"))).toBe(true);
    expect(
      inputs.filter((i) =>
        /^node:|node_modules\/(ws|argon2|better-sqlite3)\/|^src\/(rpc|cred|store)\//.test(i),
      ),
    ).toEqual([]);
    expect(result.outputFiles[0]?.text).not.toMatch(/from ["']node:|require\(["']node:/);
  });
});
