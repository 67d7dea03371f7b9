/**
 * Password logins (SCRAM over argon2id): signing up and logging in, what the store keeps, how
 * failures look; challengers (replayed, burned, expired, or made before a credential change);
 * what sign-up refuses.
 */
import { afterEach, describe, expect, it } from "vitest";
import { clientProof } from "../../src/cred/scram.js";
import { randomBytes } from "../../src/cred/secrets.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithPassword, makeVerifier, signUp } from "../../src/login/client-login.js";
import {
  AuthChallenger,
  AuthMethod,
  Root,
  type Root$Server,
  type Root_login_Params,
} from "../../src/wire/gen/broker.js";
import { type Harness, kdf, makeHarness, rejection } from "./harness.js";
import { preparedLogin, startLogin } from "./scram-steps.js";

let h: Harness;
afterEach(() => h?.close());

describe("password login (SCRAM with argon2id)", () => {
  it("signs up with a verifier, logs in with the password and verifies the server's signature", async () => {
    h = await makeHarness({ signUp: "open" });
    const { root } = h.connect();
    const res = await signUp(root, "alice", "correct horse", { kdf });
    const first = await res.identity?.whoami();
    expect(first?.info.name).toBe("alice");
    expect(first?.info.authMethod).toBe(AuthMethod.SIGN_UP);

    const { identity, saltedPassword } = await loginWithPassword(h.connect().root, "alice", "correct horse", {
      kdf,
    });
    expect(saltedPassword).toHaveLength(32);
    const who = (await identity.whoami()).info;
    expect(who.name).toBe("alice");
    expect(who.authMethod).toBe(AuthMethod.PASSWORD);
    expect(who.grant).toBe("password");
    expect(who.keyring.toArray().map((k) => `${k.service}/${k.perspective}`)).toEqual([
      "bank/customer",
      "bank/employee",
      "chat/member",
      "go/player",
      "lobby/member",
      "router/session",
      "wallet/owner",
    ]);
    const audit = await h.store.listAudit(10);
    expect(audit.some((a) => a.kind === "login" && a.username === "alice")).toBe(true);
  });

  it("stores only salt, parameters, StoredKey and ServerKey, never the password", async () => {
    h = await makeHarness({ signUp: "open" });
    const { root } = h.connect();
    await signUp(root, "alice", "a very secret pass", { kdf });
    const record = await h.store.findIdentityByName("alice");
    expect(record?.verifier?.storedKey).toHaveLength(32);
    expect(record?.verifier?.serverKey).toHaveLength(32);
    const dump = JSON.stringify(record, (_k, v) =>
      v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v,
    );
    expect(dump).not.toContain("a very secret pass");
  });

  it("fails a wrong password with AUTH_FAILED and audits the failure", async () => {
    h = await makeHarness();
    await h.addUser("alice", "correct horse");
    const err = await rejection(h.login("alice", "wrong horse"));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err.message).toContain("authentication failed");
    const audit = await h.store.listAudit(10);
    expect(audit.some((a) => a.kind === "login-failed" && a.username === "alice")).toBe(true);
  });

  it("answers an unknown name in the same shape as a wrong password, with a stable fake salt", async () => {
    h = await makeHarness();
    await h.addUser("alice", "correct horse");
    const { root } = h.connect();
    const known = await startLogin(root, "alice");
    const unknownA = await startLogin(root, "mallory");
    const unknownB = await startLogin(root, "mallory");
    expect(unknownA.salt).toHaveLength(known.salt.length);
    expect(unknownA.kdfParams).toEqual(known.kdfParams);
    expect(Buffer.from(unknownA.salt).equals(Buffer.from(unknownB.salt))).toBe(true);
    const wrong = await rejection(h.login("alice", "nope"));
    const missing = await rejection(h.login("mallory", "nope"));
    expect(missing.code).toBe(wrong.code);
    expect(missing.message).toBe(wrong.message);
    for (const c of [known, unknownA, unknownB]) c.challenger.dispose();
  });

  it("rate-limits failures per name with growing delays, and says when to retry", async () => {
    h = await makeHarness({ limits: { loginFreeFailures: 2, loginDelayBaseMs: 1000 } });
    await h.addUser("alice", "correct horse");
    await rejection(h.login("alice", "x1", "10.0.0.1"));
    await rejection(h.login("alice", "x2", "10.0.0.2"));
    // locked for the name, whatever the address, even with the right password
    let err = await rejection(h.login("alice", "correct horse", "10.0.0.3"));
    expect(err.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err.kind).toBe("overloaded");
    expect(err.message).toMatch(/retry in 1 s/);
    h.clock.advance(1001);
    await rejection(h.login("alice", "x3", "10.0.0.4"));
    err = await rejection(h.login("alice", "correct horse", "10.0.0.5"));
    expect(err.message).toMatch(/retry in 2 s/);
    h.clock.advance(2001);
    const { identity } = await h.login("alice", "correct horse", "10.0.0.6");
    expect((await identity.whoami()).info.name).toBe("alice");
  });

  it("rate-limits failures per address across names", async () => {
    h = await makeHarness({ limits: { loginFreeFailures: 2 } });
    await h.addUser("alice", "correct horse");
    await h.addUser("bob", "battery staple");
    await rejection(h.login("alice", "x", "10.9.9.9"));
    await rejection(h.login("bob", "x", "10.9.9.9"));
    const err = await rejection(h.login("bob", "battery staple", "10.9.9.9"));
    expect(err.code).toBe(ErrorCode.RATE_LIMITED);
    expect(err.message).toContain("from this address");
    const { identity } = await h.login("bob", "battery staple", "10.1.1.1");
    expect((await identity.whoami()).info.name).toBe("bob");
  });

  it("rejects a server that cannot prove it holds the verifier (wrong server signature)", async () => {
    h = await makeHarness();
    await h.addUser("alice", "correct horse");
    const real = h.connect().root;
    // An impostor that relays the challenge but cannot sign: it accepts any proof and answers a
    // made-up signature with a capability that is not an Identity.
    const impostor = Root.server({
      async login(p: Root_login_Params) {
        const r = await real.login({ username: p.username, clientNonce: p.clientNonce.slice() });
        const challenger = AuthChallenger.server({
          respond: () => ({ outcome: { serverSignature: randomBytes(32), identity: null } }),
        });
        return {
          salt: r.salt.slice(),
          kdf: r.kdf.$toObject(),
          serverNonce: r.serverNonce.slice(),
          challenger,
        };
      },
    } as unknown as Root$Server);
    const err = await rejection(loginWithPassword(impostor, "alice", "correct horse", { kdf }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err.message).toContain("server's signature is wrong");
  });
});

describe("challengers (the second half of a password login)", () => {
  it("refuses a proof replayed on a new challenge, and a challenger used twice", async () => {
    h = await makeHarness();
    await h.addUser("alice", "correct horse");
    const { root } = h.connect();
    const first = await startLogin(root, "alice");
    const salted = await kdf.derive("correct horse", first.salt, first.kdfParams);
    const proof = clientProof(salted, first.message);
    const ok = await first.challenger.respond({ proof });
    expect((await ok.outcome.identity.whoami()).info.name).toBe("alice");
    // the same challenger again
    expect((await rejection(first.challenger.respond({ proof }))).message).toContain("used already");
    // the same proof on a fresh challenge (new server nonce)
    const second = await startLogin(root, "alice");
    expect((await rejection(second.challenger.respond({ proof }))).code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("burns a challenger on any failure: the right proof after a wrong one fails", async () => {
    h = await makeHarness();
    await h.addUser("alice", "correct horse");
    const { root } = h.connect();
    const c = await startLogin(root, "alice");
    const salted = await kdf.derive("correct horse", c.salt, c.kdfParams);
    await rejection(c.challenger.respond({ proof: new Uint8Array(32) }));
    const err = await rejection(c.challenger.respond({ proof: clientProof(salted, c.message) }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("refuses a challenger answered after challengeTimeoutMs", async () => {
    h = await makeHarness();
    await h.addUser("alice", "correct horse");
    const { root } = h.connect();
    const c = await startLogin(root, "alice");
    const salted = await kdf.derive("correct horse", c.salt, c.kdfParams);
    h.clock.advance(60_001);
    const err = await rejection(c.challenger.respond({ proof: clientProof(salted, c.message) }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err.message).toContain("expired");
  });

  it("refuses a challenger made before a password change, even with the old password's proof", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const attacker = await preparedLogin(h.connect().root, "alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const { verifier } = await makeVerifier("new pass", { kdf });
    await identity.changePassword({ newVerifier: verifier });
    const err = await rejection(attacker.challenger.respond({ proof: attacker.proof }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err.message).toContain("credentials changed during the login");
  });

  it("refuses a challenger made before a suspension", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const stale = await preparedLogin(h.connect().root, "alice", "alice pass");
    const id = (await h.store.findIdentityByName("alice"))?.id ?? -1;
    const epoch = await h.store.setSuspended(id, true);
    h.broker.revokeIdentity(id, epoch, "suspended");
    const err = await rejection(stale.challenger.respond({ proof: stale.proof }));
    expect(err.message).toContain("suspended");
  });
});

describe("sign-up", () => {
  it("refuses a verifier below the KDF floor, and malformed sign-up input, with BAD_ARGUMENT", async () => {
    h = await makeHarness({ signUp: "open" });
    const { root } = h.connect();
    const { verifier } = await makeVerifier("correct horse", { kdf });
    const weak = { ...verifier, kdf: { ...verifier.kdf, memoryKiB: 1024 } };
    let err = await rejection(root.signUp({ username: "alice", verifier: weak }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("memoryKiB");
    err = await rejection(
      root.signUp({ username: "alice", verifier: { ...verifier, storedKey: new Uint8Array(3) } }),
    );
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    err = await rejection(root.signUp({ username: "x".repeat(65), verifier }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    err = await rejection(root.login({ username: "alice", clientNonce: new Uint8Array(4) }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(await h.store.findIdentityByName("alice")).toBeUndefined();
    // the connection is still good
    const ok = await signUp(root, "alice", "correct horse", { kdf });
    expect((await ok.identity?.whoami())?.info.name).toBe("alice");
  });

  it("refuses sign-up when closed, and a taken name", async () => {
    h = await makeHarness({ signUp: "closed" });
    const { root } = h.connect();
    expect((await rejection(signUp(root, "alice", "pw12345678", { kdf }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
    const open = await makeHarness({ signUp: "open" });
    try {
      const c = open.connect();
      await signUp(c.root, "alice", "pw12345678", { kdf });
      expect((await rejection(signUp(c.root, "alice", "other pass", { kdf }))).code).toBe(
        ErrorCode.ALREADY_EXISTS,
      );
    } finally {
      await open.close();
    }
  });

  it("refuses look-alike names with invisible characters", async () => {
    h = await makeHarness({ signUp: "open" });
    const { root } = h.connect();
    for (const name of ["alice\u200b", "al\u202eice", "a\u2028b"]) {
      expect((await rejection(signUp(root, name, "some password", { kdf }))).code).toBe(
        ErrorCode.BAD_ARGUMENT,
      );
    }
  });
});
