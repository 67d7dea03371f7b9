/**
 * How long credentials live and what ends them (security review, findings 2, 4, 8, 11, 12, 13,
 * 14): API keys die with a password change, a suspension and logging out everywhere; an empty
 * keyring grants nothing; an attenuated login cannot end the owner's other logins; rows are
 * capped per identity and expired ones swept; every credential write checks the caller's epoch
 * inside its own transaction; resume tokens are never issued to API-key, OTP or resumed logins,
 * rotate, and a replayed one revokes its family.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519 } from "../../src/cred/ed25519.js";
import { ErrorCode } from "../../src/errors.js";
import { makeVerifier } from "../../src/login/client-login.js";
import { AuthMethod } from "../../src/wire/gen/broker.js";
import { LobbyMember } from "../../src/wire/gen/lobby.js";
import { ADMIN_KEYRING, type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

const MEMBER = { service: "lobby", perspective: "member" };
const WALLET = { service: "wallet", perspective: "owner" };

async function aliceWithKey() {
  h = await makeHarness({ wallet: {} });
  const id = await h.addUser("alice", "alice pass");
  const main = await h.login("alice", "alice pass");
  const { secret } = await main.identity.createApiKey({
    description: "ci",
    keyring: [MEMBER],
    expiresAt: 0n,
  });
  return { id, main, secret };
}

describe("API keys", () => {
  it("die with a password change: the key no longer logs in", async () => {
    const { main, secret } = await aliceWithKey();
    const { verifier } = await makeVerifier("new pass", { kdf });
    await main.identity.changePassword({ newVerifier: verifier });
    expect((await rejection(h.connect().root.loginWithApiKey({ key: secret }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
    const again = await h.login("alice", "new pass");
    expect((await again.identity.listApiKeys()).keys.toArray()).toHaveLength(0);
  });

  it("die with a suspension and stay dead after the account is restored", async () => {
    const { id, secret } = await aliceWithKey();
    h.broker.revokeIdentity(id, await h.store.setSuspended(id, true), "suspended");
    h.broker.revokeIdentity(id, await h.store.setSuspended(id, false), "restored");
    expect((await rejection(h.connect().root.loginWithApiKey({ key: secret }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
  });

  it("die with logoutEverywhere, which ends every login of the user", async () => {
    const { main, secret } = await aliceWithKey();
    const viaKey = (await h.connect().root.loginWithApiKey({ key: secret })).identity;
    const other = await h.login("alice", "alice pass");
    await other.identity.logoutEverywhere();
    for (const i of [main.identity, viaKey, other.identity]) {
      expect((await rejection(i.whoami())).message).toBe("logged out everywhere");
    }
    expect((await rejection(h.connect().root.loginWithApiKey({ key: secret }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
  });

  it("survive a change that is not about the password (a keyring change), attenuated to the new keyring", async () => {
    const { id, secret } = await aliceWithKey();
    h.broker.revokeIdentity(id, await h.store.setKeyring(id, [WALLET]), "keyring changed");
    const viaKey = (await h.connect().root.loginWithApiKey({ key: secret })).identity;
    // The key granted lobby/member only; the owner no longer has it: the key grants nothing now.
    expect((await viaKey.whoami()).info.keyring.toArray()).toHaveLength(0);
    expect((await rejection(viaKey.attach({ ...MEMBER, client: null }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
  });

  it("need at least one pair: an empty keyring is refused, not read as everything", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const err = await rejection(identity.createApiKey({ description: "all?", keyring: [], expiresAt: 0n }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("grants nothing");
    expect((await identity.listApiKeys()).keys.toArray()).toHaveLength(0);
  });

  it("are capped per identity; expired keys do not count and are swept", async () => {
    h = await makeHarness({ limits: { maxApiKeysPerIdentity: 3 } });
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const soon = BigInt(h.clock.now() + 1000);
    await identity.createApiKey({ description: "short", keyring: [MEMBER], expiresAt: soon });
    await identity.createApiKey({ description: "a", keyring: [MEMBER], expiresAt: 0n });
    await identity.createApiKey({ description: "b", keyring: [MEMBER], expiresAt: 0n });
    const full = await rejection(
      identity.createApiKey({ description: "c", keyring: [MEMBER], expiresAt: 0n }),
    );
    expect(full.code).toBe(ErrorCode.QUOTA);
    h.clock.advance(1000);
    await identity.createApiKey({ description: "c", keyring: [MEMBER], expiresAt: 0n });
    expect((await identity.listApiKeys()).keys.toArray().map((k) => k.description)).toEqual(["a", "b", "c"]);
  });
});

describe("logging out", () => {
  it("from an API-key login ends that login alone, never the owner's others", async () => {
    const { main, secret } = await aliceWithKey();
    const member = (await main.identity.attach({ ...MEMBER, client: null })).perspective.castAs(LobbyMember);
    const { token } = await main.identity.issueResumeToken({ device: "laptop" });
    const viaKey = (await h.connect().root.loginWithApiKey({ key: secret })).identity;
    await viaKey.logout();
    expect((await rejection(viaKey.whoami())).message).toBe("logged out");
    expect((await member.hello()).greeting).toBe("hello, alice");
    expect((await main.identity.whoami()).info.epoch).toBe(0n);
    // the owner's token still works; the key still works for a new login
    expect((await (await h.connect().root.resume({ token })).identity.whoami()).info.name).toBe("alice");
    expect(
      (await (await h.connect().root.loginWithApiKey({ key: secret })).identity.whoami()).info.name,
    ).toBe("alice");
  });

  it("everywhere needs a password login: keys, OTPs, resumed and key logins are refused", async () => {
    const { main, secret } = await aliceWithKey();
    const device = generateEd25519();
    await main.identity.addPublicKey({ publicKey: device.publicKey, device: "d" });
    const { token } = await main.identity.issueResumeToken({ device: "t" });
    const { otp } = await main.identity.createOtp();
    const { root } = h.connect();
    const attenuated = [
      (await root.loginWithApiKey({ key: secret })).identity,
      (await root.resume({ token })).identity,
      (await root.loginWithOtp({ username: "alice", otp })).identity,
    ];
    for (const i of attenuated) {
      const err = await rejection(i.logoutEverywhere());
      expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    }
    expect((await main.identity.whoami()).info.epoch).toBe(0n);
  });

  it("ends the resume tokens the login came from or issued, so that device cannot come back", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const laptop = await h.login("alice", "alice pass");
    const phone = await h.login("alice", "alice pass");
    const laptopToken = (await laptop.identity.issueResumeToken({ device: "laptop" })).token;
    const phoneToken = (await phone.identity.issueResumeToken({ device: "phone" })).token;
    // The phone resumes (rotating its token), then logs out: its new token dies too.
    const resumed = await h.connect().root.resume({ token: phoneToken });
    await resumed.identity.logout();
    expect((await rejection(h.connect().root.resume({ token: resumed.token }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
    // The laptop's token is untouched.
    expect((await (await h.connect().root.resume({ token: laptopToken })).identity.whoami()).info.name).toBe(
      "alice",
    );
  });
});

describe("resume tokens", () => {
  it("rotate on every resume, keeping the first login's absolute expiry", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const issued = await identity.issueResumeToken({ device: "laptop" });
    let token = issued.token;
    for (let i = 0; i < 3; i++) {
      h.clock.advance(24 * 3600 * 1000);
      const r = await h.connect().root.resume({ token });
      expect(r.token).not.toBe(token);
      expect(r.expiresAt).toBe(issued.expiresAt);
      expect((await r.identity.whoami()).info.authMethod).toBe(AuthMethod.RESUME);
      // a resumed login cannot stretch the lifetime by issuing a fresh token
      expect((await rejection(r.identity.issueResumeToken({ device: "again" }))).code).toBe(
        ErrorCode.PERMISSION_DENIED,
      );
      token = r.token;
    }
    h.clock.set(Number(issued.expiresAt));
    expect((await rejection(h.connect().root.resume({ token }))).code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("revoke their whole family when a rotated one is replayed: a stolen copy ends the thief's and the owner's", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const stolen = (await identity.issueResumeToken({ device: "laptop" })).token;
    const other = (await identity.issueResumeToken({ device: "phone" })).token;
    // The thief resumes first; the owner then presents the same (now spent) token.
    const thief = await h.connect("10.66.6.6").root.resume({ token: stolen });
    expect((await thief.identity.whoami()).info.name).toBe("alice");
    const replay = await rejection(h.connect().root.resume({ token: stolen }));
    expect(replay.code).toBe(ErrorCode.AUTH_FAILED);
    // The thief's live login, resumed from the family, ends at once; the login that issued the
    // token (the owner's password login) goes on.
    const ended = await rejection(thief.identity.whoami());
    expect(ended.code).toBe(ErrorCode.REVOKED);
    expect(ended.message).toContain("used twice");
    expect((await identity.whoami()).info.name).toBe("alice");
    // The thief's rotated token is dead too; the phone's family is untouched.
    expect((await rejection(h.connect().root.resume({ token: thief.token }))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
    expect((await (await h.connect().root.resume({ token: other })).identity.whoami()).info.name).toBe(
      "alice",
    );
    const audit = await h.store.listAudit(20);
    expect(audit.some((a) => a.kind === "revoked" && a.detail.includes("reused after rotation"))).toBe(true);
  });

  it("are not issued to an API-key or OTP login", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const { identity, root } = await h.login("alice", "alice pass");
    const { secret } = await identity.createApiKey({ description: "k", keyring: [MEMBER], expiresAt: 0n });
    const viaKey = (await root.loginWithApiKey({ key: secret })).identity;
    expect((await rejection(viaKey.issueResumeToken({ device: "x" }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
    const { otp } = await identity.createOtp();
    const viaOtp = (await root.loginWithOtp({ username: "alice", otp })).identity;
    expect((await rejection(viaOtp.issueResumeToken({ device: "x" }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
  });

  it("are capped per identity: the one expiring soonest makes room", async () => {
    h = await makeHarness({ limits: { maxResumeTokensPerIdentity: 2 } });
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const first = (await identity.issueResumeToken({ device: "1" })).token;
    h.clock.advance(1);
    const second = (await identity.issueResumeToken({ device: "2" })).token;
    h.clock.advance(1);
    const third = (await identity.issueResumeToken({ device: "3" })).token;
    expect((await rejection(h.connect().root.resume({ token: first }))).code).toBe(ErrorCode.AUTH_FAILED);
    for (const token of [second, third]) {
      expect((await (await h.connect().root.resume({ token })).identity.whoami()).info.name).toBe("alice");
    }
  });
});

describe("one-time passwords", () => {
  it("are capped per identity while unexpired, and swept once expired", async () => {
    h = await makeHarness({ limits: { maxOtpsPerIdentity: 2, sweepIntervalMs: 3_600_000 } });
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    await identity.createOtp();
    await identity.createOtp();
    expect((await rejection(identity.createOtp())).code).toBe(ErrorCode.QUOTA);
    h.clock.advance(h.broker.limits.otpTtlMs);
    await identity.createOtp();
    h.clock.advance(h.broker.limits.otpTtlMs);
    await h.broker.sweepExpired();
    const { otp } = await identity.createOtp();
    expect(
      (await (await h.connect().root.loginWithOtp({ username: "alice", otp })).identity.whoami()).info.name,
    ).toBe("alice");
  });
});

describe("credential writes", () => {
  it("fail with REVOKED when the login's epoch moved on, even if the login object is still live", async () => {
    h = await makeHarness();
    const id = await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    // Another process (the CLI) changes the keyring; this broker has not noticed yet.
    await h.store.setKeyring(id, [MEMBER]);
    const attempts = [
      identity.createApiKey({ description: "x", keyring: [MEMBER], expiresAt: 0n }),
      identity.createOtp(),
      identity.issueResumeToken({ device: "x" }),
      identity.addPublicKey({ publicKey: generateEd25519().publicKey, device: "x" }),
      identity.changePassword({ newVerifier: (await makeVerifier("p2", { kdf })).verifier }),
      identity.logoutEverywhere(),
    ];
    for (const a of attempts) expect((await rejection(a)).code).toBe(ErrorCode.REVOKED);
    const record = await h.store.findIdentityById(id);
    expect(record?.epoch).toBe(1);
    expect(await h.store.listApiKeys(id)).toHaveLength(0);
    expect(await h.store.listPublicKeys(id)).toHaveLength(0);
  });

  it("by an admin are checked against the admin's own epoch", async () => {
    h = await makeHarness();
    const rootId = await h.addUser("root", "root pass", ADMIN_KEYRING);
    const bobId = await h.addUser("bob", "bob pass");
    const { identity } = await h.login("root", "root pass");
    const admin = (
      await identity.attach({ service: "broker", perspective: "admin", client: null })
    ).perspective.castAs((await import("../../src/wire/gen/broker.js")).Admin);
    // The admin's own credentials change behind the broker's back (another process).
    await h.store.bumpEpoch(rootId);
    const err = await rejection(admin.suspend({ username: "bob", suspended: true }));
    expect(err.code).toBe(ErrorCode.REVOKED);
    expect((await h.store.findIdentityById(bobId))?.suspended).toBe(false);
  });
});

describe("whoami", () => {
  it("shows only this user's attachments, even when one connection carries several users", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const { root } = h.connect();
    const { loginWithPassword } = await import("../../src/login/client-login.js");
    const alice = (await loginWithPassword(root, "alice", "alice pass", { kdf })).identity;
    const bob = (await loginWithPassword(root, "bob", "bob pass", { kdf })).identity;
    await alice.attach({ ...MEMBER, client: null });
    await bob.attach({ ...MEMBER, client: null });
    const seen = (await alice.whoami()).info.attached.toArray().map((a) => a.grant);
    expect(seen).toEqual(["password"]);
    expect((await bob.whoami()).info.attached.toArray()).toHaveLength(1);
  });
});
