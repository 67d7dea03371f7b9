/**
 * What failed logins and unauthenticated clients can cost others (security review, findings 5,
 * 6, 7): guesses at a password never lock out credentials that cannot be guessed, and a
 * concurrent burst of them is checked no further than the free failures; addresses aggregate
 * per IPv6 /64; a connection holds a few challengers at most, freed at expiry or
 * release; an address holds a bounded number of connections that have not logged in.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519 } from "../../src/cred/ed25519.js";
import { randomBytes } from "../../src/cred/secrets.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithKey, loginWithPassword } from "../../src/login/client-login.js";
import type { Root } from "../../src/wire/gen/broker.js";
import { waitFor } from "../helpers/wait.js";
import { type Harness, kdf, makeHarness, rejection } from "./harness.js";
import { preparedLogin } from "./scram-steps.js";

let h: Harness;
afterEach(() => h?.close());

const MEMBER = { service: "lobby", perspective: "member" };

/** One wrong password proof for `name` from `root`. */
async function guess(root: Root, name: string): Promise<string> {
  const { challenger, proof } = await preparedLogin(root, name, "a wrong guess");
  return (await rejection(challenger.respond({ proof }))).code;
}

describe("password guesses", () => {
  it("lock the name's password logins, but never its registered key, OTP, resume token or API key", async () => {
    h = await makeHarness();
    await h.addUser("victim", "victim pass");
    const { identity } = await h.login("victim", "victim pass", "10.1.0.1");
    const device = generateEd25519();
    await identity.addPublicKey({ publicKey: device.publicKey, device: "laptop" });
    const { token } = await identity.issueResumeToken({ device: "phone" });
    const { otp } = await identity.createOtp();
    const { secret } = await identity.createApiKey({ description: "ci", keyring: [MEMBER], expiresAt: 0n });
    // The attacker, from another address, spends the name's free failures.
    const attacker = h.connect("10.66.0.1").root;
    for (let i = 0; i < h.broker.limits.loginFreeFailures; i++) await guess(attacker, "victim");
    // Password logins for the name are now locked, from every address (that is the point)...
    const locked = await rejection(
      loginWithPassword(h.connect("10.1.0.2").root, "victim", "victim pass", { kdf }),
    );
    expect(locked.code).toBe(ErrorCode.RATE_LIMITED);
    // ...but nothing that cannot be guessed is refused because of it.
    const viaKey = await loginWithKey(h.connect("10.1.0.3").root, "victim", device);
    expect((await viaKey.identity?.whoami())?.info.name).toBe("victim");
    const { root } = h.connect("10.1.0.4");
    expect((await (await root.resume({ token })).identity.whoami()).info.name).toBe("victim");
    expect((await (await root.loginWithOtp({ username: "VICTIM", otp })).identity.whoami()).info.name).toBe(
      "victim",
    );
    expect((await (await root.loginWithApiKey({ key: secret })).identity.whoami()).info.name).toBe("victim");
  });

  it("count names after case folding: guesses at ALICE lock alice", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const attacker = h.connect("10.66.0.2").root;
    for (let i = 0; i < h.broker.limits.loginFreeFailures; i++)
      await guess(attacker, i % 2 ? "ALICE" : "Alice");
    const err = await rejection(
      loginWithPassword(h.connect("10.1.0.9").root, "alice", "alice pass", { kdf }),
    );
    expect(err.code).toBe(ErrorCode.RATE_LIMITED);
  });

  it("from one IPv6 /64 count as one address; another /64 is untouched", async () => {
    h = await makeHarness({ limits: { loginFreeFailures: 3 } });
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    await h.addUser("carol", "carol pass");
    // Three failures against three names, each from a different address in one /64.
    await guess(h.connect("2001:db8::1").root, "alice");
    await guess(h.connect("2001:db8::2").root, "bob");
    await guess(h.connect("2001:db8::ffff:3").root, "carol");
    const sameNet = await rejection(
      loginWithPassword(h.connect("2001:db8::77").root, "alice", "alice pass", { kdf }),
    );
    expect(sameNet.code).toBe(ErrorCode.RATE_LIMITED);
    expect(sameNet.message).toContain("from this address");
    const other = await loginWithPassword(h.connect("2001:db8:0:1::1").root, "bob", "bob pass", { kdf });
    expect((await other.identity.whoami()).info.name).toBe("bob");
  });

  it("with a registered key's bad signatures lock only the address, never the name's password", async () => {
    h = await makeHarness({ limits: { loginFreeFailures: 3 } });
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass", "10.1.0.1");
    const device = generateEd25519();
    await identity.addPublicKey({ publicKey: device.publicKey, device: "laptop" });
    const thief = generateEd25519();
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const err = await rejection(
        loginWithKey(h.connect("10.66.0.3").root, "alice", {
          publicKey: device.publicKey,
          privateKey: thief.privateKey,
        }),
      );
      codes.push(err.code);
    }
    expect(codes.slice(0, 3)).toEqual([ErrorCode.AUTH_FAILED, ErrorCode.AUTH_FAILED, ErrorCode.AUTH_FAILED]);
    expect(codes.slice(3)).toEqual([ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]);
    const ok = await loginWithPassword(h.connect("10.1.0.2").root, "alice", "alice pass", { kdf });
    expect((await ok.identity.whoami()).info.name).toBe("alice");
    // Even from the locked address, the real key's valid signature gets in.
    const real = await loginWithKey(h.connect("10.66.0.3").root, "alice", device);
    expect((await real.identity?.whoami())?.info.name).toBe("alice");
  });
  it("in a concurrent burst are throttled instead of all checked", async () => {
    h = await makeHarness({ limits: { loginFreeFailures: 3 } });
    await h.addUser("alice", "alice pass");
    // Twenty connections from twenty addresses: only the name's own bound can stop the burst.
    const guesses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        preparedLogin(h.connect(`10.7.7.${i + 1}`).root, "alice", `guess ${i}`),
      ),
    );
    const results = await Promise.allSettled(
      guesses.map((g) => Promise.resolve(g.challenger.respond({ proof: g.proof }))),
    );
    const codes = results.map((r) => (r.status === "rejected" ? (r.reason as { code: string }).code : "ok"));
    expect(codes.filter((c) => c === ErrorCode.AUTH_FAILED).length).toBeLessThanOrEqual(3);
    expect(codes.filter((c) => c === ErrorCode.RATE_LIMITED).length).toBeGreaterThanOrEqual(17);
  });
});

describe("unauthenticated clients", () => {
  it("hold at most maxChallengersPerConnection challengers; answering, releasing or expiry frees a slot", async () => {
    h = await makeHarness({ limits: { maxChallengersPerConnection: 2 } });
    await h.addUser("alice", "alice pass");
    const { root } = h.connect();
    const start = () => root.login({ username: "alice", clientNonce: randomBytes(32) });
    const a = start();
    const b = start();
    await Promise.all([a, b]);
    const refused = await rejection(start());
    expect(refused.code).toBe(ErrorCode.QUOTA);
    expect(refused.message).toContain("maxChallengersPerConnection");
    // Releasing one (the client drops it unanswered) frees its slot at once.
    a.dispose();
    await waitFor(async () => {
      const c = start();
      await c;
      c.dispose();
    });
    // Expiry frees the other: a challenger answered after its time is refused, and the slot is free.
    h.clock.advance(h.broker.limits.challengeTimeoutMs + 1);
    const late = await rejection((await b).challenger.respond({ proof: new Uint8Array(32) }));
    expect(late.message).toContain("expired");
    const fresh = [start(), start()];
    await Promise.all(fresh);
    expect((await rejection(start())).code).toBe(ErrorCode.QUOTA);
    for (const f of fresh) f.dispose();
  });

  it("from one address hold at most maxPreLoginConnectionsPerAddress connections; logging in frees one", async () => {
    h = await makeHarness({ limits: { maxPreLoginConnectionsPerAddress: 3 } });
    await h.addUser("alice", "alice pass");
    const idle = [h.connect("10.5.5.5"), h.connect("10.5.5.5"), h.connect("10.5.5.5")];
    expect(h.broker.preLoginConnections("10.5.5.5")).toBe(3);
    // The fourth is aborted with a clear reason (the Abort, or its Root's refusal if a call
    // gets there first).
    const fourth = h.connect("10.5.5.5");
    const err = await rejection(fourth.root.info());
    expect(err.message).toContain("maxPreLoginConnectionsPerAddress");
    expect(fourth.client.closed).toBe(true);
    // Another address is not affected.
    expect((await h.connect("10.5.5.6").root.info()).info.name).toBe("parallax");
    // One of the idle three logs in: it no longer counts, and a new connection is accepted.
    await loginWithPassword(idle[0]?.root as Root, "alice", "alice pass", { kdf });
    expect(h.broker.preLoginConnections("10.5.5.5")).toBe(2);
    expect((await h.connect("10.5.5.5").root.info()).info.name).toBe("parallax");
    // The same bound holds for an IPv6 /64 as a whole.
    for (const a of ["2001:db8::1", "2001:db8::2", "2001:db8::3"]) h.connect(a);
    expect((await rejection(h.connect("2001:db8::4").root.info())).message).toContain(
      "maxPreLoginConnectionsPerAddress",
    );
  });
});
