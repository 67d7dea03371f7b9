import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519 } from "../../src/cred/ed25519.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithKey, loginWithPassword } from "../../src/login/client-login.js";
import { AuthMethod, Perspective } from "../../src/wire/gen/broker.js";
import { LobbyMember } from "../../src/wire/gen/lobby.js";
import { ADMIN_KEYRING, type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

const MEMBER = { service: "lobby", perspective: "member" };
const GUEST = { service: "lobby", perspective: "guest" };

describe("Identity", () => {
  it("attaches a perspective on its keyring that acts as its user, with no name argument", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const alice = await h.login("alice", "alice pass");
    const bob = await h.login("bob", "bob pass");
    const a = (await alice.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    const b = (await bob.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    expect((await a.hello()).greeting).toBe("hello, alice");
    expect((await b.hello()).greeting).toBe("hello, bob");
    const who = (await alice.identity.whoami()).info;
    expect(who.attached.toArray().map((x) => `${x.service}/${x.perspective} via ${x.grant}`)).toEqual([
      "lobby/member via password",
    ]);
  });

  it("refuses a pair missing from the keyring, and a service that does not run", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const err = await rejection(identity.attach({ service: "broker", perspective: "admin", client: null }));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toContain('("broker", "admin") is not on this login\'s keyring');
    await h.store.setKeyring((await h.store.findIdentityByName("alice"))?.id ?? -1, [
      MEMBER,
      { service: "ghost", perspective: "x" },
    ]);
    const again = await h.login("alice", "alice pass");
    expect(
      (await rejection(again.identity.attach({ service: "ghost", perspective: "x", client: null }))).code,
    ).toBe(ErrorCode.NOT_FOUND);
  });

  it("mints an API key whose login sees only the key's keyring and cannot mint keys or OTPs", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass", [MEMBER, GUEST, ...ADMIN_KEYRING.slice(1)]);
    const { identity, root } = await h.login("alice", "alice pass");
    const created = await identity.createApiKey({ description: "ci", keyring: [MEMBER], expiresAt: 0n });
    const secret = created.secret;
    expect(secret).toMatch(/^pxk_\d+_/);
    expect(created.key.keyring.toArray().map((k) => k.perspective)).toEqual(["member"]);
    const listed = (await identity.listApiKeys()).keys.toArray();
    expect(listed.map((k) => k.description)).toEqual(["ci"]);
    expect(
      JSON.stringify(
        listed.map((k) => k.$toObject()),
        (_k, v) => (typeof v === "bigint" ? 0 : v),
      ),
    ).not.toContain(secret);

    const viaKey = (await root.loginWithApiKey({ key: secret })).identity;
    const who = (await viaKey.whoami()).info;
    expect(who.authMethod).toBe(AuthMethod.API_KEY);
    expect(who.grant).toBe(`api key ${created.key.id} (ci)`);
    expect(who.keyring.toArray().map((k) => k.perspective)).toEqual(["member"]);
    const keyMember = (await viaKey.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    expect((await keyMember.hello()).greeting).toBe("hello, alice");
    expect((await rejection(viaKey.attach({ ...GUEST, client: null }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
    for (const p of [
      viaKey.createApiKey({ description: "x", keyring: [], expiresAt: 0n }),
      viaKey.createOtp(),
      viaKey.addPublicKey({ publicKey: generateEd25519().publicKey, device: "d" }),
    ]) {
      const err = await rejection(p);
      expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
      expect(err.message).toContain("an API key");
    }
    // a keyring wider than the login's is refused
    const wide = await rejection(
      identity.createApiKey({
        description: "x",
        keyring: [{ service: "bank", perspective: "x" }],
        expiresAt: 0n,
      }),
    );
    expect(wide.code).toBe(ErrorCode.PERMISSION_DENIED);
    // a wrong or tampered key fails
    expect((await rejection(root.loginWithApiKey({ key: `${secret.slice(0, -2)}AA` }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
    expect((await rejection(root.loginWithApiKey({ key: "not a key" }))).code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("refuses an expired API key", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity, root } = await h.login("alice", "alice pass");
    const { secret } = await identity.createApiKey({
      description: "short",
      keyring: [MEMBER],
      expiresAt: BigInt(h.clock.now() + 1000),
    });
    expect((await (await root.loginWithApiKey({ key: secret })).identity.whoami()).info.name).toBe("alice");
    h.clock.advance(1001);
    expect((await rejection(root.loginWithApiKey({ key: secret }))).code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("accepts a one-time password once, within ten minutes", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity, root } = await h.login("alice", "alice pass");
    const { otp } = await identity.createOtp();
    const first = (await root.loginWithOtp({ username: "alice", otp })).identity;
    expect((await first.whoami()).info.authMethod).toBe(AuthMethod.OTP);
    expect((await rejection(root.loginWithOtp({ username: "alice", otp }))).code).toBe(ErrorCode.AUTH_FAILED);
    const { otp: late } = await identity.createOtp();
    h.clock.advance(10 * 60 * 1000 + 1);
    expect((await rejection(root.loginWithOtp({ username: "alice", otp: late }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
    // an OTP is not bob's
    await h.addUser("bob", "bob pass");
    const { otp: third } = await identity.createOtp();
    expect((await rejection(root.loginWithOtp({ username: "bob", otp: third }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
    // and an OTP login cannot mint another
    const viaOtp = (await root.loginWithOtp({ username: "alice", otp: third })).identity;
    expect((await rejection(viaOtp.createOtp())).code).toBe(ErrorCode.PERMISSION_DENIED);
  });

  it("resumes with a token until the epoch moves on", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity, root } = await h.login("alice", "alice pass");
    const { token } = await identity.issueResumeToken({ device: "laptop" });
    const other = h.connect();
    const resumed = (await other.root.resume({ token })).identity;
    const who = (await resumed.whoami()).info;
    expect(who.authMethod).toBe(AuthMethod.RESUME);
    expect(who.grant).toBe("resume token (laptop)");
    await identity.logout();
    const err = await rejection(root.resume({ token }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err.message).toContain("credential change");
  });

  it("logs in with a registered Ed25519 key; an unregistered key waits for the owner's approval", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const laptop = generateEd25519();
    await identity.addPublicKey({ publicKey: laptop.publicKey, device: "laptop" });
    const ok = await loginWithKey(h.connect().root, "alice", laptop);
    expect((await ok.identity?.whoami())?.info.authMethod).toBe(AuthMethod.PUBLIC_KEY);

    // a signature by another key for the registered key fails
    const thief = generateEd25519();
    const forged = await rejection(
      loginWithKey(h.connect().root, "alice", { publicKey: laptop.publicKey, privateKey: thief.privateKey }),
    );
    expect(forged.code).toBe(ErrorCode.AUTH_FAILED);

    const phone = generateEd25519();
    const attempt = await loginWithKey(h.connect().root, "alice", phone);
    expect((await attempt.pending?.request())?.request.username).toBe("alice");
    const waiting = attempt.pending?.wait();
    const requests = (await identity.pendingDevices()).requests.toArray();
    expect(requests).toHaveLength(1);
    await identity.decideDevice({ id: requests[0]?.id ?? 0n, approve: true, reason: "" });
    const approved = (await waiting)?.identity;
    expect((await approved?.whoami())?.info.name).toBe("alice");
    // from now on the phone logs in directly
    const again = await loginWithKey(h.connect().root, "alice", phone);
    expect((await again.identity?.whoami())?.info.authMethod).toBe(AuthMethod.PUBLIC_KEY);
  });

  it("answers a key login for an unknown user in the same shape as for a real one", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const unknown = await loginWithKey(h.connect().root, "nobody", generateEd25519());
    const known = await loginWithKey(h.connect().root, "alice", generateEd25519());
    const a = (await unknown.pending?.request())?.request;
    const b = (await known.pending?.request())?.request;
    expect(a?.username).toBe("nobody");
    expect(b?.username).toBe("alice");
    expect(a?.kind).toBe(b?.kind);
    expect(a?.device).toBe(b?.device);
    expect(a?.id).toBeGreaterThan(0n);
    // the unknown one waits like any other, until an operator rejects it
    const waiting = unknown.pending?.wait();
    await h.broker.decide(Number(a?.id), false, "no such user", { name: "test", actor: null, address: "" });
    const err = await rejection(waiting ?? Promise.resolve());
    expect(err.code).toBe(ErrorCode.REJECTED);
    expect(err.message).toBe("rejected: no such user");
  });

  it("caps the device keys waiting per name, refusing the next instead of sharing a request", async () => {
    h = await makeHarness({ limits: { maxPendingDevicesPerName: 3 } });
    await h.addUser("alice", "alice pass");
    const ids = new Set<bigint>();
    for (let i = 0; i < 3; i++) {
      const r = await loginWithKey(h.connect().root, "alice", generateEd25519());
      ids.add((await r.pending?.request())?.request.id ?? 0n);
      // past the throttle's own count of device requests
      h.clock.advance(h.broker.limits.loginDelayMaxMs);
    }
    expect(ids.size).toBe(3);
    const err = await rejection(loginWithKey(h.connect().root, "alice", generateEd25519()));
    expect(err.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err.message).toContain("wait for approval");
    expect((await h.store.listPending(h.clock.now(), "alice")).length).toBe(3);
  });

  it("fails a login when the connection cannot prove the password, whatever it tries", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const err = await rejection(loginWithPassword(h.connect().root, "alice", "Alice pass", { kdf }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("refuses anonymous logins unless configured, and gives anonymous ones no account", async () => {
    h = await makeHarness();
    expect((await rejection(h.connect().root.loginAnonymous())).code).toBe(ErrorCode.PERMISSION_DENIED);
    await h.close();
    h = await makeHarness({ anonymousKeyring: [MEMBER] });
    const anon = (await h.connect().root.loginAnonymous()).identity;
    const member = (await anon.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    expect((await member.hello()).greeting).toBe("hello, anonymous");
    expect((await rejection(anon.issueResumeToken({ device: "x" }))).code).toBe(ErrorCode.PERMISSION_DENIED);
  });

  it("detaches a perspective on request: detached runs and the capability fails afterwards", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const p = (await identity.attach({ ...MEMBER, client: null })).perspective;
    const member = p.castAs(LobbyMember);
    await member.hello();
    await p.castAs(Perspective).detach();
    const err = await rejection(member.hello());
    expect(err.code).toBe(ErrorCode.REVOKED);
    expect(err.message).toContain("detached");
    expect((await identity.whoami()).info.attached.toArray()).toHaveLength(0);
  });
});
