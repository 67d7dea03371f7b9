/**
 * Attacks found in review, each held to a test: stale challengers, concurrent guessing,
 * credentials minting longer-lived ones, logins piling up, capabilities relayed through the
 * server escaping revocation, look-alike names.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Capability } from "../../src/caps/index.js";
import { authMessage, clientProof } from "../../src/cred/scram.js";
import { randomBytes } from "../../src/cred/secrets.js";
import { ErrorCode } from "../../src/errors.js";
import { makeVerifier, signUp } from "../../src/login/client-login.js";
import { type IdentityView, Perspective, type Service, serviceModule } from "../../src/login/index.js";
import { LobbyService, lobby } from "../../src/services/lobby/lobby-service.js";
import type { Root } from "../../src/wire/gen/broker.js";
import { LobbyMember, type LobbyMember$Server } from "../../src/wire/gen/lobby.js";
import { WalletPerspective, WalletWatcher } from "../../src/wire/gen/wallet.js";
import { type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

const MEMBER = { service: "lobby", perspective: "member" };

/** The first half of a SCRAM login, kept for later: the challenger and a proof for `password`. */
async function preparedLogin(root: Root, username: string, password: string) {
  const clientNonce = randomBytes(32);
  const start = await root.login({ username, clientNonce });
  const salt = start.salt.slice();
  const kdfParams = {
    algorithm: "argon2id" as const,
    memoryKiB: start.kdf.memoryKiB,
    iterations: start.kdf.iterations,
    parallelism: start.kdf.parallelism,
  };
  const message = authMessage({
    username,
    clientNonce,
    serverNonce: start.serverNonce.slice(),
    salt,
    kdf: kdfParams,
  });
  const proof = clientProof(await kdf.derive(password, salt, kdfParams), message);
  return { challenger: start.challenger, proof };
}

describe("hardening", () => {
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

  it("throttles a burst of concurrent guesses instead of checking them all", async () => {
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

  it("issues no resume token to an API-key or OTP login", async () => {
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
    await new Promise<void>((resolve) => {
      const check = (): void => (detached.length > 0 ? resolve() : void setImmediate(check));
      check();
    });
    expect(detached).toEqual(["released"]);
    identity.dispose();
    await vi.waitFor(() => expect(h.broker.liveIdentities).toBe(0), { timeout: 2000, interval: 5 });
    // many logins on one connection are bounded
    await h.close();
    h = await makeHarness({ anonymousKeyring: [MEMBER], limits: { maxLoginsPerConnection: 3 } });
    const c = h.connect();
    const held = [];
    for (let i = 0; i < 3; i++) held.push((await c.root.loginAnonymous()).identity);
    expect((await rejection(c.root.loginAnonymous())).code).toBe(ErrorCode.QUOTA);
  });

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

  it("refuses look-alike names with invisible characters", async () => {
    h = await makeHarness({ signUp: "open" });
    const { root } = h.connect();
    for (const name of ["alice\u200b", "al\u202eice", "a\u2028b"]) {
      expect((await rejection(signUp(root, name, "some password", { kdf }))).code).toBe(
        ErrorCode.BAD_ARGUMENT,
      );
    }
  });

  it("refuses a plain password change while a wallet needs re-encrypting, and keeps every watcher notified", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const a = await h.login("alice", "alice pass");
    const wallet = (
      await a.identity.attach({ service: "wallet", perspective: "owner", client: null })
    ).perspective.castAs(WalletPerspective);
    const heard: bigint[] = [];
    const watcherFor = () =>
      WalletWatcher.server({
        walletUpdated: (p) => void heard.push(p.sequence),
        notificationsDropped: () => {},
        revoked: () => {},
      });
    const b = await h.login("alice", "alice pass");
    const first = (await b.identity.attach({ service: "wallet", perspective: "owner", client: watcherFor() }))
      .perspective;
    await first.castAs(WalletPerspective).detach();
    await b.identity.attach({ service: "wallet", perspective: "owner", client: watcherFor() });
    await wallet.update({
      state: { sequence: 1n, encryptedWallet: new Uint8Array(4), hmac: new Uint8Array(4) },
    });
    await new Promise<void>((resolve) => {
      const check = (): void => (heard.length > 0 ? resolve() : void setImmediate(check));
      check();
    });
    expect(heard).toEqual([1n]);
    const { verifier } = await makeVerifier("new pass", { kdf });
    const err = await rejection(a.identity.changePassword({ newVerifier: verifier }));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toContain("WalletPerspective.changePassword");
  });
});
