/**
 * The security claims of the login layer, each a test: Viewables learn the caller from the
 * broker; revocation is total across connections; what a client releases ends at once; a
 * capability relayed through the server stays bound to the login that first held it; quotas
 * hold across connections, and per connection.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CallContext, Capability } from "../../src/caps/index.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { makeVerifier } from "../../src/login/client-login.js";
import { ManualClock } from "../../src/clock.js";
import {
  type IdentityView,
  InProcessBus,
  Perspective,
  type Service,
  serviceModule,
} from "../../src/login/index.js";
import { LobbyService, lobby, type MemberPerspective } from "../../src/services/lobby/lobby-service.js";
import { SqliteBrokerStore } from "../../src/store/index.js";
import {
  LobbyMember,
  type LobbyMember$Server,
  type Room,
  RoomListener,
  type RoomListener_said_Params,
} from "../../src/wire/gen/lobby.js";
import { waitFor } from "../helpers/wait.js";
import { type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

const MEMBER = { service: "lobby", perspective: "member" };

describe("Viewable", () => {
  it("calls back with each caller's own Perspective: the same room, two speakers", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const alice = await h.login("alice", "alice pass");
    const bob = await h.login("bob", "bob pass");
    // pipelined: attach → room → say, in one round trip each way
    const aliceRoom: Room = alice.identity
      .attach({ ...MEMBER, client: null })
      .perspective.castAs(LobbyMember)
      .room().room;
    const bobRoom: Room = bob.identity
      .attach({ ...MEMBER, client: null })
      .perspective.castAs(LobbyMember)
      .room().room;
    expect((await aliceRoom.say({ text: "hi from a" })).line.speaker).toBe("alice");
    expect((await bobRoom.say({ text: "hi from b" })).line.speaker).toBe("bob");
    const lines = (await aliceRoom.history({ count: 10 })).lines
      .toArray()
      .map((l) => `${l.speaker}: ${l.text}`);
    expect(lines).toEqual(["alice: hi from a", "bob: hi from b"]);
  });

  it("tells listeners every line, signed by the broker-supplied speaker", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const alice = await h.login("alice", "alice pass");
    const bob = await h.login("bob", "bob pass");
    const heard: string[] = [];
    let got: () => void = () => {};
    const two = new Promise<void>((r) => {
      got = r;
    });
    const listener = RoomListener.server({
      said(p: RoomListener_said_Params) {
        heard.push(`${p.line.speaker}: ${p.line.text}`);
        if (heard.length === 2) got();
      },
    });
    const aRoom = alice.identity
      .attach({ ...MEMBER, client: null })
      .perspective.castAs(LobbyMember)
      .room().room;
    await aRoom.listen({ listener });
    const bRoom = bob.identity
      .attach({ ...MEMBER, client: null })
      .perspective.castAs(LobbyMember)
      .room().room;
    await bRoom.say({ text: "one" });
    await aRoom.say({ text: "two" });
    await two;
    expect(heard).toEqual(["bob: one", "alice: two"]);
  });

  it("refuses a call that reached the Viewable without a perspective (a local caller)", async () => {
    const lobby = new LobbyService({ clock: new ManualClock(), bus: new InProcessBus() });
    const err = await rejection(lobby.room.say({ text: "who am I" }));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
  });
});

describe("revocation by credential epoch", () => {
  it("reaches every connection: perspectives, viewables and what they returned fail; detached runs once each", async () => {
    const detached: string[] = [];
    class CountingLobby extends LobbyService {
      override getPerspectiveForIdentity(name: string, identity: IdentityView): MemberPerspective {
        const p = super.getPerspectiveForIdentity(name, identity);
        const detach = p.detached.bind(p);
        p.detached = (client, who, reason) => {
          detached.push(identity.name);
          detach(client, who, reason);
        };
        return p;
      }
    }
    h = await makeHarness({
      services: [{ name: "lobby", defaultKeyring: [], create: (ctx) => new CountingLobby(ctx) }],
    });
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const one = await h.login("alice", "alice pass");
    const { secret } = await one.identity.createApiKey({
      description: "ci",
      keyring: [MEMBER],
      expiresAt: 0n,
    });
    const { token } = await one.identity.issueResumeToken({ device: "phone" });
    const two = h.connect();
    const viaKey = (await two.root.loginWithApiKey({ key: secret })).identity;
    const three = h.connect();
    const viaToken = (await three.root.resume({ token })).identity;
    const bob = await h.login("bob", "bob pass");

    const held = [one.identity, viaKey, viaToken].map((identity) => {
      const member = identity.attach({ ...MEMBER, client: null }).perspective.castAs(LobbyMember);
      return { identity, member, room: member.room().room };
    });
    const bobMember = bob.identity.attach({ ...MEMBER, client: null }).perspective.castAs(LobbyMember);
    for (const x of held) {
      await x.member.hello();
      await x.room.history({ count: 1 });
    }
    await bobMember.hello();

    const { verifier } = await makeVerifier("alice new pass", { kdf });
    await one.identity.changePassword({ newVerifier: verifier });

    for (const x of held) {
      for (const p of [x.member.hello(), x.room.say({ text: "still here?" }), x.identity.whoami()]) {
        const err = await rejection(p);
        expect(err.code).toBe(ErrorCode.REVOKED);
        expect(err.message).toBe("the password was changed");
      }
    }
    expect(detached.sort()).toEqual(["alice", "alice", "alice"]);
    // Bob is untouched, and nothing Alice said after the change landed.
    expect((await bobMember.hello()).greeting).toBe("hello, bob");
    const lines = (await bobMember.room().room.history({ count: 10 })).lines.toArray();
    expect(lines.map((l) => l.text)).not.toContain("still here?");
    // the old resume token is dead; the new password works
    expect((await rejection(h.connect().root.resume({ token }))).code).toBe(ErrorCode.AUTH_FAILED);
    const again = await h.login("alice", "alice new pass");
    expect((await again.identity.whoami()).info.epoch).toBe(1n);
    expect(h.broker.usageOf((await h.store.findIdentityByName("alice"))?.id ?? 0)?.logins).toBe(1);
  });

  it("revokes on API-key revocation and suspension, each bumping the epoch; logout ends one login", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const a = await h.login("alice", "alice pass");
    const { key } = await a.identity.createApiKey({ description: "k", keyring: [MEMBER], expiresAt: 0n });
    const b = await h.login("alice", "alice pass");
    await a.identity.revokeApiKey({ id: key.id });
    expect((await rejection(b.identity.whoami())).message).toBe(`API key ${key.id} was revoked`);
    expect((await rejection(a.identity.whoami())).code).toBe(ErrorCode.REVOKED);

    const c = await h.login("alice", "alice pass");
    const d = await h.login("alice", "alice pass");
    await c.identity.logout();
    expect((await rejection(c.identity.whoami())).message).toBe("logged out");
    // Logging out ends that login alone: no epoch bump, the other login stays.
    expect((await d.identity.whoami()).info.epoch).toBe(1n);

    const id = (await h.store.findIdentityByName("alice"))?.id ?? -1;
    const epoch = await h.store.setSuspended(id, true);
    h.broker.revokeIdentity(id, Number.MAX_SAFE_INTEGER, "the account was suspended");
    expect(epoch).toBe(2);
    expect((await rejection(d.identity.whoami())).message).toBe("the account was suspended");
    const err = await rejection(h.login("alice", "alice pass"));
    expect(err.message).toContain("suspended");
    const kinds = (await h.store.listAudit(50)).map((x) => x.kind);
    expect(kinds).toContain("revoked");
  });

  it("notices a suspension committed by another process (the CLI) on its own", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "parallax-login-"));
    const file = path.join(dir, "parallax.db");
    const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    const cli = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    try {
      h = await makeHarness({ store, watchIntervalMs: 10 });
      await h.addUser("alice", "alice pass");
      const { identity } = await h.login("alice", "alice pass");
      const member = (await identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
      await member.hello();
      const id = (await cli.findIdentityByName("alice"))?.id ?? -1;
      await cli.setSuspended(id, true);
      // the broker's watcher sees the other process's commit and revokes; wait for that event
      await waitFor(async () => expect((await rejection(member.hello())).code).toBe(ErrorCode.REVOKED), {
        timeout: 5000,
        interval: 10,
      });
      expect((await rejection(member.hello())).message).toBe("the account was suspended");
    } finally {
      await h.close();
      cli.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ends a connection's logins when it closes: detached runs, other connections keep theirs", async () => {
    const detached: number[] = [];
    class Probe extends Perspective {
      constructor(readonly n: number) {
        super();
      }
      capability() {
        return LobbyMember.server(this as unknown as LobbyMember$Server);
      }
      override detached(): void {
        detached.push(this.n);
      }
    }
    let n = 0;
    const probe: Service = { name: "lobby", getPerspectiveForIdentity: () => new Probe(++n) };
    h = await makeHarness({ services: [serviceModule(probe)] });
    await h.addUser("alice", "alice pass");
    const one = await h.login("alice", "alice pass");
    const two = await h.login("alice", "alice pass");
    await one.identity.attach({ ...MEMBER, client: null });
    await two.identity.attach({ ...MEMBER, client: null });
    one.client.close();
    await waitFor(() => expect(detached.length).toBeGreaterThan(0));
    expect(detached).toEqual([1]);
    expect((await two.identity.whoami()).info.name).toBe("alice");
    const id = (await h.store.findIdentityByName("alice"))?.id ?? -1;
    expect(h.broker.usageOf(id)?.logins).toBe(1);
    // once every connection is gone the broker forgets the identity (nothing grows per user)
    two.client.close();
    await waitFor(() => expect(h.broker.usageOf(id)).toBeUndefined());
  });
});

describe("release", () => {
  it("ends a login the client let go of, and detaches a perspective it released", async () => {
    const detached: string[] = [];
    class Probe extends LobbyService {
      override getPerspectiveForIdentity(name: string, identity: IdentityView) {
        const p = super.getPerspectiveForIdentity(name, identity);
        const detach = p.detached.bind(p);
        p.detached = (c, i, reason) => {
          detached.push(reason.kind);
          detach(c, i, reason);
        };
        return p;
      }
    }
    h = await makeHarness({
      services: [{ name: "lobby", defaultKeyring: [], create: (ctx) => new Probe(ctx) }],
      anonymousKeyring: [MEMBER],
    });
    const { root } = h.connect();
    const login = root.loginAnonymous();
    const identity = (await login).identity;
    login.dispose();
    const attach = identity.attach({ ...MEMBER, client: null });
    const member = (await attach).perspective;
    attach.dispose();
    member.dispose();
    await waitFor(() => expect(detached.length).toBeGreaterThan(0));
    expect(detached).toEqual(["released"]);
    identity.dispose();
    await waitFor(() => expect(h.broker.liveIdentities).toBe(0));
  });
});

describe("relay", () => {
  it("keeps a capability relayed through the server bound to the login that first held it", async () => {
    // A careless service: whoever attaches gets the `client` capability the previous attacher sent.
    let kept: LobbyMember | null = null;
    class Relay extends Perspective {
      capability() {
        return kept === null ? LobbyMember.server(this as unknown as LobbyMember$Server) : kept.dup();
      }
      override attached(client: Capability | null): Perspective {
        if (client !== null) kept = client.castAs(LobbyMember);
        return this;
      }
    }
    const relay: Service = { name: "relay", getPerspectiveForIdentity: () => new Relay() };
    h = await makeHarness({ services: [lobby(), serviceModule(relay)] });
    const both = [MEMBER, { service: "relay", perspective: "x" }];
    await h.addUser("alice", "alice pass", both);
    await h.addUser("bob", "bob pass", both);
    const alice = await h.login("alice", "alice pass");
    const aliceMember = (await alice.identity.attach({ ...MEMBER, client: null })).perspective.castAs(
      LobbyMember,
    );
    // Alice sends her perspective to the server as her callback; the relay keeps it.
    await alice.identity.attach({ service: "relay", perspective: "x", client: aliceMember });
    const bob = await h.login("bob", "bob pass");
    const viaRelay = (
      await bob.identity.attach({ service: "relay", perspective: "x", client: null })
    ).perspective.castAs(LobbyMember);
    // A perspective acts for its user only: Bob holding Alice's cannot use it.
    const denied = await rejection(viaRelay.hello());
    expect(denied.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(denied.message).toContain("belongs to another user");
    expect((await aliceMember.hello()).greeting).toBe("hello, alice");
    await alice.identity.logout();
    // Alice's authority ends with her login, also in the copy the server handed Bob.
    expect((await rejection(aliceMember.hello())).code).toBe(ErrorCode.REVOKED);
    expect((await rejection(viaRelay.hello())).code).toBe(ErrorCode.REVOKED);
    expect((await bob.identity.whoami()).info.name).toBe("bob");
  });
});

describe("Perspective.attached", () => {
  it("may hand out a different Perspective, which is the one detached once", async () => {
    const log: string[] = [];
    class Named extends Perspective {
      constructor(readonly label: string) {
        super();
      }
      capability() {
        return LobbyMember.server(this as unknown as LobbyMember$Server);
      }
      hello() {
        return { greeting: `from ${this.label}` };
      }
      override attached(_client: unknown, identity: IdentityView): Perspective {
        log.push(`attached ${this.label}`);
        return this.label === "shared" ? new Named(`own:${identity.name}`) : this;
      }
      override detached(): void {
        log.push(`detached ${this.label}`);
      }
    }
    const shared = new Named("shared");
    const service: Service = { name: "lobby", getPerspectiveForIdentity: () => shared };
    h = await makeHarness({ services: [serviceModule(service)] });
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const p = (await identity.attach({ ...MEMBER, client: null })).perspective;
    expect((await p.castAs(LobbyMember).hello()).greeting).toBe("from own:alice");
    await identity.logout();
    expect(log).toEqual(["attached shared", "detached own:alice"]);
  });
});

describe("per-identity quotas across connections", () => {
  it("fails calls beyond maxIdentityCallsInFlight with QUOTA and keeps the connection", async () => {
    const gates: Array<() => void> = [];
    class Slow extends Perspective {
      capability() {
        return LobbyMember.server(this as unknown as LobbyMember$Server);
      }
      hello(_p: unknown, _ctx: CallContext) {
        return new Promise<{ greeting: string }>((resolve) =>
          gates.push(() => resolve({ greeting: "late" })),
        );
      }
      room(): never {
        throw new ParallaxError(ErrorCode.FAILED, "no room");
      }
    }
    const slow: Service = { name: "lobby", getPerspectiveForIdentity: () => new Slow() };
    h = await makeHarness({ services: [serviceModule(slow)], limits: { maxIdentityCallsInFlight: 2 } });
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const one = await h.login("alice", "alice pass");
    const two = await h.login("alice", "alice pass");
    const m1 = (await one.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    const m2 = (await two.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    const first = m1.hello();
    const second = m2.hello();
    await waitFor(() => expect(gates).toHaveLength(2));
    const err = await rejection(m1.hello());
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.kind).toBe("overloaded");
    expect(err.message).toContain("maxIdentityCallsInFlight");
    // bob has his own quota
    const bob = await h.login("bob", "bob pass");
    const mb = (await bob.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    const bobCall = mb.hello();
    for (const g of gates.splice(0)) g();
    expect((await first).greeting).toBe("late");
    expect((await second).greeting).toBe("late");
    await waitFor(() => expect(gates).toHaveLength(1));
    for (const g of gates.splice(0)) g();
    expect((await bobCall).greeting).toBe("late");
    // the quota freed up: alice's connection still works
    const again = m1.hello();
    await waitFor(() => expect(gates).toHaveLength(1));
    for (const g of gates.splice(0)) g();
    expect((await again).greeting).toBe("late");
  });

  it("fails handing out capabilities beyond maxIdentityExports with QUOTA", async () => {
    h = await makeHarness({ limits: { maxIdentityExports: 3 } });
    await h.addUser("alice", "alice pass");
    const one = await h.login("alice", "alice pass"); // export 1: the Identity
    const member = (await one.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember); // 2
    await member.room(); // 3: the room
    const err = await rejection(one.identity.attach({ ...MEMBER, client: null }));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("maxIdentityExports");
    expect((await member.hello()).greeting).toBe("hello, alice");
  });
});

describe("per-connection quotas", () => {
  it("refuses a login beyond maxLoginsPerConnection on one connection with QUOTA", async () => {
    h = await makeHarness({ anonymousKeyring: [MEMBER], limits: { maxLoginsPerConnection: 3 } });
    const c = h.connect();
    const held = [];
    for (let i = 0; i < 3; i++) held.push((await c.root.loginAnonymous()).identity);
    expect((await rejection(c.root.loginAnonymous())).code).toBe(ErrorCode.QUOTA);
  });
});
