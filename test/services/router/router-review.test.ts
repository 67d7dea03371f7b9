/**
 * Findings of the adversarial review of the router (issue 12), each over real connections on the
 * login harness and each failing before its fix: callers flooding one callee with invocations
 * until the broker cuts the callee's connection; a URI-limited API key reading and rewriting all of
 * the user's metadata; one publisher's fresh topics forgetting every other user's retained events;
 * the publish rate and roster quotas multiplied by opening more sessions; invisible and control
 * characters making look-alike URIs that slip past an exact deny rule.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { attach, keyringPair } from "../../../src/login/index.js";
import { ruleFromLetters } from "../../../src/login/uri-permissions.js";
import { readRoleConfig } from "../../../src/services/router/roles.js";
import { ROUTER_SESSION } from "../../../src/services/router/router-keys.js";
import {
  type RouterOptions,
  type RouterService,
  router,
} from "../../../src/services/router/router-service.js";
import { ROUTER_STORE } from "../../../src/store/index.js";
import { UriMatch } from "../../../src/wire/gen/broker.js";
import {
  Callee,
  EventHandler,
  type Invocation,
  MetadataWatcher,
  type RouterSession,
} from "../../../src/wire/gen/router.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { type Harness, makeHarness } from "../../login/harness.js";

const KEYRING = [keyringPair(ROUTER_SESSION)];

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function world(options: RouterOptions = {}) {
  h = await makeHarness({ services: [router(options)] });
  const harness = h;
  const service = harness.broker.service("router") as RouterService;
  const roles = harness.store.repository(ROUTER_STORE);
  if (roles === undefined) throw new Error("the store has no router repository");
  async function user(name: string, role?: string) {
    const id = await harness.addUser(name, `${name} password`, KEYRING);
    if (role !== undefined) await roles?.setRole(id, role);
    const { identity } = await harness.login(name, `${name} password`);
    return { id, identity, session: attach(identity, ROUTER_SESSION) };
  }
  return { harness, service, user };
}

function events() {
  const seen: Array<{ topic: string; authid: string; retained: boolean; args: string }> = [];
  const handler = EventHandler.server({
    event: ({ event }) => {
      seen.push({
        topic: event.topic,
        authid: event.publisher.authid,
        retained: event.retained,
        args: event.payload.args,
      });
    },
    unrecoverable: () => {},
  });
  return { seen, handler };
}

function callee(seen: Invocation[] = []) {
  return Callee.server({
    invoke: ({ invocation }) => {
      seen.push(invocation);
      return { result: { args: JSON.stringify([invocation.procedure]), kwargs: "" } };
    },
  });
}

describe("a callee under a flood of calls", () => {
  it("keeps its connection and registrations: invocations in flight to one user are bounded, the rest QUOTA", async () => {
    const w = await world();
    const bob = await w.user("bob", "backend");
    const { registration } = await bob.session.register({
      procedure: "svc.slow",
      // A callee that takes its time (here: forever) — a database behind it, a lock, a bug.
      callee: Callee.server({ invoke: () => new Promise(() => {}) }),
      options: {},
    });
    // Six frontends, each within its own 256 calls in flight, 60 KB of arguments a call: before
    // the fix the broker queued ~1500 invocations for Bob, his client stopped reading at 1024 and
    // the broker cut his connection at 16 MiB queued (maxOutboundBytes): every registration gone.
    const big = JSON.stringify(["x".repeat(60_000)]);
    const outcomes: Array<Promise<unknown>> = [];
    const callers: Array<{ session: RouterSession }> = []; // (held: a released login would cancel its calls)
    for (let u = 0; u < 6; u++) {
      const m = await w.user(`mallory${u}`);
      callers.push(m);
      for (let i = 0; i < 250; i++) {
        outcomes.push(
          Promise.resolve(m.session.call({ procedure: "svc.slow", payload: { args: big } })).then(
            () => "answered",
            (e: { code?: string }) => e.code ?? "?",
          ),
        );
      }
    }
    const limit = w.service.procedures.maxInvocationsInFlightPerCallee;
    expect(limit).toBe(128);
    await waitFor(() => expect(outcomes.length).toBe(1500));
    const settled = await Promise.all(outcomes.slice(limit));
    expect(settled.every((c) => c === ErrorCode.QUOTA)).toBe(true);
    expect(w.service.procedures.callsInFlight()).toBe(limit);
    // Bob is still there, and so is his registration.
    expect((await bob.session.whoami()).info.authid).toBe("bob");
    expect(w.service.procedures.registrationCount()).toBe(1);
    expect((await registration.info()).procedure).toBe("svc.slow");
    const err = await rejection((await w.user("carol")).session.call({ procedure: "svc.slow", payload: {} }));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("bob");
    // The ones in flight end at their timeout, on the clock; the callee then serves again.
    w.harness.clock.advance(60_000);
    expect(new Set(await Promise.all(outcomes.slice(0, limit)))).toEqual(new Set([ErrorCode.FAILED]));
    expect(w.service.procedures.callsInFlight()).toBe(0);
    expect(callers.length).toBe(6);
  }, 30_000);
});

describe("an API key limited to URIs", () => {
  it("reaches none of the user's metadata: get, list, set, delete and watch are PERMISSION_DENIED", async () => {
    const w = await world();
    const carol = await w.user("carol");
    await carol.session.metadataSet({
      key: "ssh.public",
      value: '"ssh-ed25519 AAAA carol"',
      precondition: {},
    });
    const { secret } = await carol.identity.createApiKey({
      description: "weather calls only",
      keyring: KEYRING,
      permissions: [{ uri: "app.weather", match: UriMatch.PREFIX, call: true }],
    });
    const { root } = w.harness.connect();
    const { identity } = await root.loginWithApiKey({ key: secret });
    const keyed = attach(identity, ROUTER_SESSION);
    const watcher = MetadataWatcher.server({ changed: () => {}, missed: () => {} });
    const attempts: Array<[string, PromiseLike<unknown>]> = [
      ["get", keyed.metadataGet({ key: "ssh.public" })],
      ["list", keyed.metadataList()],
      [
        "set",
        keyed.metadataSet({ key: "ssh.public", value: '"ssh-ed25519 AAAA mallory"', precondition: {} }),
      ],
      ["delete", keyed.metadataDelete({ key: "ssh.public", precondition: {} })],
      ["watch", keyed.metadataWatch({ watcher })],
    ];
    for (const [what, p] of attempts) {
      const err = await rejection(p);
      expect(err.code, what).toBe(ErrorCode.PERMISSION_DENIED);
      expect(err.message, what).toContain("metadata");
    }
    expect((await carol.session.metadataGet({ key: "ssh.public" })).entry.value).toBe(
      '"ssh-ed25519 AAAA carol"',
    );
    // A key without URI limits (the keyring alone narrows it) still has the metadata.
    const plain = await carol.identity.createApiKey({ description: "all of the router", keyring: KEYRING });
    const viaPlain = attach(
      (await w.harness.connect().root.loginWithApiKey({ key: plain.secret })).identity,
      ROUTER_SESSION,
    );
    expect((await viaPlain.metadataList()).entries.getLength()).toBe(1);
  });
});

describe("the shared event log", () => {
  it("forgets the flooder's own topics first: another user's retained event survives 40 fresh topics", async () => {
    const w = await world({ pubsub: { maxTopics: 20 } });
    const bob = await w.user("bob", "backend");
    await bob.session.publish({
      topic: "status.bob",
      payload: { args: '["up"]' },
      options: { retain: true },
    });
    const mallory = await w.user("mallory");
    const { seen: hers, handler: herHandler } = events();
    await mallory.session.subscribe({
      topic: "spam",
      handler: herHandler,
      options: { match: UriMatch.PREFIX },
    });
    for (let i = 0; i < 40; i++) {
      await mallory.session.publish({ topic: `spam.t${i}`, payload: { args: "[1]" } });
    }
    expect(w.service.pubsub.topicCount).toBeLessThanOrEqual(20);
    const carol = await w.user("carol");
    const { seen, handler } = events();
    await carol.session.subscribe({ topic: "status.bob", handler, options: { getRetained: true } });
    await waitFor(() =>
      expect(seen).toEqual([{ topic: "status.bob", authid: "bob", retained: true, args: '["up"]' }]),
    );
    expect(hers.length).toBe(0); // excludeMe: her own events are not hers to hear
  });

  it("forgets by bytes the same way: 64 KiB payloads to fresh topics cost the flooder, not the others", async () => {
    const w = await world({ pubsub: { maxLogBytes: 1024 * 1024 } });
    const bob = await w.user("bob", "backend");
    await bob.session.publish({
      topic: "status.bob",
      payload: { args: '["up"]' },
      options: { retain: true },
    });
    const mallory = await w.user("mallory");
    const big = JSON.stringify(["y".repeat(60_000)]);
    for (let i = 0; i < 40; i++) {
      await mallory.session.publish({
        topic: `spam.t${i}`,
        payload: { args: big },
        options: { retain: true },
      });
    }
    const carol = await w.user("carol");
    const { seen, handler } = events();
    await carol.session.subscribe({ topic: "status.bob", handler, options: { getRetained: true } });
    await waitFor(() => expect(seen.map((e) => e.authid)).toEqual(["bob"]));
  });

  it("holds a user to the publish rate however many sessions they open", async () => {
    const w = await world({ pubsub: { maxPublishesPerSecond: 10 } });
    const alice = await w.user("alice");
    const sessions: RouterSession[] = [alice.session, attach(alice.identity, ROUTER_SESSION)];
    const other = await w.harness.login("alice", "alice password");
    sessions.push(attach(other.identity, ROUTER_SESSION));
    let accepted = 0;
    let refused = 0;
    for (const s of sessions) {
      for (let i = 0; i < 10; i++) {
        await Promise.resolve(s.publish({ topic: "news", payload: {} })).then(
          () => accepted++,
          (e: { code?: string }) => {
            expect(e.code).toBe(ErrorCode.QUOTA);
            refused++;
          },
        );
      }
    }
    expect([accepted, refused]).toEqual([10, 20]);
    // Another user has a bucket of their own.
    const bob = await w.user("bob");
    await bob.session.publish({ topic: "news", payload: {} });
    w.harness.clock.advance(1000);
    await sessions[2]?.publish({ topic: "news", payload: {} });
  });
});

describe("roster entries", () => {
  it("are bounded per user across sessions, not only per session", async () => {
    const w = await world({ rosters: { maxEntriesPerSession: 4, maxEntriesPerIdentity: 6 } });
    const bob = await w.user("bob", "backend");
    const second = attach(bob.identity, ROUTER_SESSION);
    for (let i = 0; i < 4; i++) await bob.session.rosterRegister({ name: `r.a${i}`, data: "1" });
    for (let i = 0; i < 2; i++) await second.rosterRegister({ name: `r.b${i}`, data: "1" });
    const err = await rejection(second.rosterRegister({ name: "r.b2", data: "1" }));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("this user");
    // Updating an entry one holds is no new entry; another user is unaffected.
    await second.rosterRegister({ name: "r.b0", data: "2" });
    const carol = await w.user("carol", "backend");
    await carol.session.rosterRegister({ name: "r.c", data: "1" });
    expect(w.service.rosters.entryCount).toBe(7);
    // Leaving frees the room.
    await second.rosterUnregister({ name: "r.b1" });
    await second.rosterRegister({ name: "r.b2", data: "1" });
    expect(w.service.rosters.maxEntriesPerIdentity).toBe(6);
    expect(
      new (w.service.rosters.constructor as new (o: object) => { maxEntriesPerIdentity: number })({
        clock: w.harness.clock,
      }).maxEntriesPerIdentity,
    ).toBe(1024);
  });
});

describe("look-alike URIs", () => {
  it("refuses control, zero-width and bidirectional characters, so an exact deny rule has no invisible twin", async () => {
    const roles = readRoleConfig({
      defaultRole: "frontend",
      roles: {
        frontend: [
          { uri: "", match: "prefix", perms: "cps" },
          { uri: "admin.reset", match: "exact", perms: "" },
        ],
        backend: [{ uri: "", match: "prefix", perms: "crps" }],
      },
    });
    const w = await world({ roles });
    const bob = await w.user("bob", "backend");
    const seen: Invocation[] = [];
    await bob.session.register({
      procedure: "admin",
      callee: callee(seen),
      options: { match: UriMatch.PREFIX },
    });
    const alice = await w.user("alice");
    expect((await rejection(alice.session.call({ procedure: "admin.reset", payload: {} }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
    for (const twin of [
      "admin.reset\u200b",
      "admin.re\u00adset",
      "admin.\u202eteser",
      "admin.reset\u0000",
      "admin.reset\u0007",
    ]) {
      const err = await rejection(alice.session.call({ procedure: twin, payload: {} }));
      expect(err.code, JSON.stringify(twin)).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message).toContain("control or invisible");
    }
    expect(seen).toEqual([]);
    // Patterns, topics and API-key rules are held to the same characters.
    expect((await rejection(alice.session.publish({ topic: "news\u2066", payload: {} }))).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect(() => ruleFromLetters("app\u200d", "prefix", "c")).toThrow(/control or invisible/);
    // Letters of any script remain (URIs are not ASCII-only), as do ':' and '-'.
    await alice.session.publish({ topic: "café.zerp:testing.ünïcode-ok", payload: {} });
  });
});
