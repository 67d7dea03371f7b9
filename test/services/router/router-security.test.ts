/**
 * The router's security claims over real connections (issue 12): who publishes, calls and owns a
 * roster entry is the session the broker attached, never a name in the call; a frontend cannot
 * register; an API key's URI limits narrow its role; a role change and a revoked login end every
 * session, registration, subscription, roster entry and watch the user had; metadata is the
 * user's own. Unit behaviour of each part is in pubsub/procedures/rosters/metadata tests.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import { attach, keyringPair } from "../../../src/login/index.js";
import { ROUTER_SESSION } from "../../../src/services/router/router-keys.js";
import { router, type RouterService } from "../../../src/services/router/router-service.js";
import { ROUTER_STORE } from "../../../src/store/index.js";
import type { Identity } from "../../../src/wire/gen/broker.js";
import { UriMatch } from "../../../src/wire/gen/broker.js";
import {
  Callee,
  EventHandler,
  type Invocation,
  RosterWatcher,
  type RouterSession,
} from "../../../src/wire/gen/router.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { type Harness, kdf, makeHarness } from "../../login/harness.js";

const KEYRING = [keyringPair(ROUTER_SESSION)];

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface User {
  readonly id: number;
  readonly identity: Identity;
  readonly session: RouterSession;
}

async function world() {
  h = await makeHarness({ services: [router()] });
  const harness = h;
  const service = harness.broker.service("router") as RouterService;
  const found = harness.store.repository(ROUTER_STORE);
  if (found === undefined) throw new Error("the store has no router repository");
  const roles = found;
  async function user(name: string, role?: string): Promise<User> {
    const id = await harness.addUser(name, `${name} password`, KEYRING);
    if (role !== undefined) await roles.setRole(id, role);
    const { identity } = await harness.login(name, `${name} password`);
    return { id, identity, session: attach(identity, ROUTER_SESSION) };
  }
  return { harness, service, roles, user };
}

function events() {
  const seen: Array<{ topic: string; authid: string; role: string; session: bigint; kwargs: string }> = [];
  const handler = EventHandler.server({
    event: ({ event }) => {
      seen.push({
        topic: event.topic,
        authid: event.publisher.authid,
        role: event.publisher.role,
        session: event.publisher.session,
        kwargs: event.payload.kwargs,
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
      return {
        result: {
          args: JSON.stringify([
            `hello ${invocation.caller.authid} (${invocation.caller.role}) via ${invocation.procedure}`,
          ]),
          kwargs: "",
        },
      };
    },
  });
}

describe("who acts is the session, never an argument", () => {
  it("discloses the publisher and the caller from the broker, whatever the payload claims", async () => {
    const w = await world();
    const alice = await w.user("alice");
    const bob = await w.user("bob", "backend");
    const { seen, handler } = events();
    const sub = await bob.session.subscribe({
      topic: "chat.news",
      handler,
      options: { match: UriMatch.PREFIX },
    });
    const aliceWho = (await alice.session.whoami()).info;
    expect([aliceWho.authid, aliceWho.role]).toEqual(["alice", "frontend"]);
    await alice.session.publish({
      topic: "chat.news.today",
      payload: {
        args: "[]",
        kwargs: JSON.stringify({ publisher: "bob", caller_authid: "bob", role: "trust" }),
      },
    });
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toMatchObject({
      topic: "chat.news.today",
      authid: "alice",
      role: "frontend",
      session: aliceWho.session,
    });

    const invocations: Invocation[] = [];
    await bob.session.register({
      procedure: "example.hello",
      callee: callee(invocations),
      options: { match: UriMatch.PREFIX },
    });
    const answer = await alice.session.call({
      procedure: "example.hello.toot",
      payload: { args: '["pos1","pos2"]', kwargs: '{"keyword1":"value1","caller_authid":"bob"}' },
    });
    expect(JSON.parse(answer.result.args)).toEqual(["hello alice (frontend) via example.hello.toot"]);
    expect(invocations[0]?.caller.session).toBe(aliceWho.session);
    expect(invocations[0]?.payload.kwargs).toBe('{"keyword1":"value1","caller_authid":"bob"}');
    sub.subscription.dispose();
  });

  it("refuses a frontend's register and roster entry; a backend's pass", async () => {
    const w = await world();
    const alice = await w.user("alice");
    const err = await rejection(
      alice.session.register({ procedure: "example.hello", callee: callee(), options: {} }),
    );
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toContain('role "frontend" may not register "example.hello"');
    expect((await rejection(alice.session.rosterRegister({ name: "roster.dash", data: "{}" }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
    expect((await alice.session.rosterQuery({ name: "roster.dash" })).entries.getLength()).toBe(0);
    expect((await rejection(alice.session.call({ procedure: "example.hello", payload: {} }))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
  });

  it("keeps metadata per user: Bob reads and changes none of Alice's", async () => {
    const w = await world();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    await alice.session.metadataSet({ key: "ui.theme", value: '"dark"', precondition: { none: null } });
    expect((await bob.session.metadataGet({ key: "ui.theme" })).entry.version).toBe(0n);
    expect((await bob.session.metadataList()).entries.getLength()).toBe(0);
    const del = await bob.session.metadataDelete({ key: "ui.theme", precondition: { none: null } });
    expect(del.outcome.which()).not.toBe(0);
    expect((await alice.session.metadataGet({ key: "ui.theme" })).entry.value).toBe('"dark"');
  });
});

describe("API keys limited by URI", () => {
  it("narrow what the role allows: the key calls only what it lists", async () => {
    const w = await world();
    const bob = await w.user("bob", "backend");
    await bob.session.register({ procedure: "app", callee: callee(), options: { match: UriMatch.PREFIX } });
    const carol = await w.user("carol");
    const { secret } = await carol.identity.createApiKey({
      description: "public calls only",
      keyring: KEYRING,
      permissions: [{ uri: "app.public", match: UriMatch.PREFIX, call: true }],
    });
    const { root } = w.harness.connect();
    const { identity } = await root.loginWithApiKey({ key: secret });
    const keyed = attach(identity, ROUTER_SESSION);
    const who = (await keyed.whoami()).info;
    expect(who.apiKeyPermissions.getLength()).toBe(1);
    expect(JSON.parse((await keyed.call({ procedure: "app.public.x", payload: {} })).result.args)).toEqual([
      "hello carol (frontend) via app.public.x",
    ]);
    const denied = await rejection(keyed.call({ procedure: "app.admin.reset", payload: {} }));
    expect(denied.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(denied.message).toContain("this API key may not call");
    // The key cannot mint more keys or OTPs (only a password login can).
    expect((await rejection(identity.createOtp())).code).toBe(ErrorCode.PERMISSION_DENIED);
  });
});

describe("sessions end with their login", () => {
  it("a revoked login loses its registrations, subscriptions, roster entries and watches at once", async () => {
    const w = await world();
    const alice = await w.user("alice");
    const bob = await w.user("bob", "backend");
    await bob.session.register({ procedure: "svc.ping", callee: callee(), options: {} });
    await bob.session.rosterRegister({ name: "roster.svc", data: '{"up":true}' });
    const { seen, handler } = events();
    await bob.session.subscribe({ topic: "svc.news", handler, options: {} });
    const changes: string[] = [];
    const watcher = RosterWatcher.server({
      changed: ({ change }) => {
        changes.push(Object.keys(change.$toObject())[0] ?? "?");
      },
      missed: () => {},
    });
    const watched = await alice.session.rosterWatch({ name: "roster.svc", watcher });
    expect(watched.entries.getLength()).toBe(1);
    expect(w.service.procedures.registrationCount()).toBe(1);

    const { verifier } = await makeVerifier("bob new password", { kdf });
    await bob.identity.changePassword({ newVerifier: verifier });

    await waitFor(() => changes.includes("left"));
    expect(w.service.procedures.registrationCount()).toBe(0);
    expect(w.service.pubsub.subscriptionCount()).toBe(0);
    expect((await rejection(alice.session.call({ procedure: "svc.ping", payload: {} }))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect((await alice.session.rosterQuery({ name: "roster.svc" })).entries.getLength()).toBe(0);
    await alice.session.publish({ topic: "svc.news", payload: {}, options: {} });
    expect((await rejection(bob.session.whoami())).code).toBe(ErrorCode.REVOKED);
    expect((await rejection(bob.session.publish({ topic: "svc.news", payload: {} }))).code).toBe(
      ErrorCode.REVOKED,
    );
    expect(seen).toEqual([]);
    watched.watch.dispose();
  });

  it("a role change bumps the epoch: live sessions end, the next login has the new role", async () => {
    const w = await world();
    const alice = await w.user("alice");
    expect((await alice.session.whoami()).info.role).toBe("frontend");
    await w.service.setRole(alice.id, "backend");
    expect((await rejection(alice.session.whoami())).code).toBe(ErrorCode.REVOKED);
    const { identity } = await w.harness.login("alice", "alice password");
    const again = attach(identity, ROUTER_SESSION);
    expect((await again.whoami()).info.role).toBe("backend");
    await again.register({ procedure: "alice.tool", callee: callee(), options: {} });
  });

  it("a session's registrations and entries go when it detaches, while the user's other session keeps its own", async () => {
    const w = await world();
    const bob = await w.user("bob", "backend");
    const second = attach(bob.identity, ROUTER_SESSION);
    await bob.session.register({ procedure: "svc.one", callee: callee(), options: {} });
    await second.register({ procedure: "svc.two", callee: callee(), options: {} });
    await bob.session.detach();
    await waitFor(() => w.service.procedures.registrationCount() === 1);
    const alice = await w.user("alice");
    expect((await rejection(alice.session.call({ procedure: "svc.one", payload: {} }))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect(JSON.parse((await alice.session.call({ procedure: "svc.two", payload: {} })).result.args)).toEqual(
      ["hello alice (frontend) via svc.two"],
    );
  });
});

describe("hostile input", () => {
  it("refuses malformed URIs, payloads and floods precisely; the session and others go on", async () => {
    const w = await world();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const cases: Array<[PromiseLike<unknown>, string]> = [
      [alice.session.publish({ topic: "a..b", payload: {} }), "empty component"],
      [alice.session.publish({ topic: "a b", payload: {} }), "whitespace"],
      [alice.session.publish({ topic: "x".repeat(256), payload: {} }), "longer than 255"],
      [alice.session.publish({ topic: "t", payload: { args: "[".repeat(10_000) } }), "deep"],
      [alice.session.publish({ topic: "t", payload: { args: "{}" } }), "array"],
      [alice.session.publish({ topic: "t", payload: { kwargs: "[1]" } }), "object"],
      [alice.session.publish({ topic: "t", payload: { args: `["${"x".repeat(70_000)}"]` } }), "bytes"],
      [alice.session.publish({ topic: "t", payload: { args: "[1," } }), "JSON"],
      [alice.session.metadataSet({ key: "", value: "1", precondition: {} }), "key"],
      [alice.session.metadataSet({ key: "k", value: "not json", precondition: {} }), "JSON"],
    ];
    for (const [p, text] of cases) {
      const err = await rejection(p);
      expect(err.code, text).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message.toLowerCase()).toContain(text.toLowerCase());
    }
    const big = await alice.session.metadataSet({
      key: "big",
      value: `"${"x".repeat(20_000)}"`,
      precondition: {},
    });
    expect(big.outcome.which()).toBe(2); // tooLarge
    expect((await alice.session.metadataList()).entries.getLength()).toBe(0);
    // 64 subscriptions per session, then QUOTA; Bob is unaffected.
    for (let i = 0; i < 64; i++) {
      await alice.session.subscribe({ topic: `t${i}`, handler: events().handler, options: {} });
    }
    expect(
      (await rejection(alice.session.subscribe({ topic: "t64", handler: events().handler, options: {} })))
        .code,
    ).toBe(ErrorCode.QUOTA);
    const { seen, handler } = events();
    await bob.session.subscribe({ topic: "t1", handler, options: {} });
    await alice.session.publish({ topic: "t1", payload: { args: "[1]" } });
    await waitFor(() => seen.length === 1);
    expect((await alice.session.whoami()).info.authid).toBe("alice");
  });
});
