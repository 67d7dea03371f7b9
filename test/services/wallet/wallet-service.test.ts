/**
 * The wallet service's server-side guarantees, driven through the raw WalletPerspective (the
 * bytes here are not encrypted: the server cannot tell, which is the point).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import {
  MaybeWallet_Which,
  PasswordChangeOutcome_Which,
  UpdateOutcome_Which,
  WalletPerspective,
  WalletWatcher,
  type WalletWatcher$Server,
} from "../../../src/wire/gen/wallet.js";
import { waitFor } from "../../helpers/wait.js";
import { type Harness, kdf, makeHarness, rejection } from "../../login/harness.js";

let h: Harness;
afterEach(() => h?.close());

const OWNER = { service: "wallet", perspective: "owner" };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const read = (b: Uint8Array): string => new TextDecoder().decode(b);

function state(sequence: number, body: string) {
  return { sequence: BigInt(sequence), encryptedWallet: text(body), hmac: text(`h${sequence}`) };
}

async function walletOf(name: string, password: string, watcher: WalletWatcher | null = null) {
  const { identity, client } = await h.login(name, password);
  const wallet = (await identity.attach({ ...OWNER, client: watcher })).perspective.castAs(WalletPerspective);
  return { identity, wallet, client };
}

/** A watcher that records what it hears; `hold` keeps its answers back until released. */
function recorder(hold = false) {
  const events: string[] = [];
  const held: Array<() => void> = [];
  let wake: () => void = () => {};
  const impl: WalletWatcher$Server = {
    walletUpdated(p) {
      events.push(`updated ${p.sequence}`);
      wake();
      return hold ? new Promise<void>((r) => held.push(r)) : undefined;
    },
    notificationsDropped(p) {
      events.push(`dropped up to ${p.latestSequence}: ${p.reason.slice(0, 12)}`);
      wake();
    },
    revoked(p) {
      events.push(`revoked: ${p.reason}`);
      wake();
    },
  };
  const until = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (events.length >= n) resolve();
        else wake = check;
      };
      check();
    });
  return { events, held, until, cap: WalletWatcher.server(impl) };
}

describe("wallet service", () => {
  it("answers none, then accepts sequence 1, then only stored + 1; a conflict carries the latest state", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const { wallet } = await walletOf("alice", "alice pass");
    expect((await wallet.get()).wallet.which()).toBe(MaybeWallet_Which.NONE);
    const early = (await wallet.update({ state: state(2, "w2") })).outcome;
    expect(early.which()).toBe(UpdateOutcome_Which.CONFLICT);
    expect(early.conflict.sequence).toBe(0n);
    const first = (await wallet.update({ state: state(1, "w1") })).outcome;
    expect(first.which()).toBe(UpdateOutcome_Which.ACCEPTED);
    const again = (await wallet.update({ state: state(1, "other") })).outcome;
    expect(again.which()).toBe(UpdateOutcome_Which.CONFLICT);
    expect(read(again.conflict.encryptedWallet)).toBe("w1");
    const got = (await wallet.get()).wallet;
    expect(got.state.sequence).toBe(1n);
    expect(read(got.state.hmac)).toBe("h1");
  });

  it("refuses an oversized wallet or hmac with BAD_ARGUMENT and keeps the stored state", async () => {
    h = await makeHarness({ wallet: { maxWalletBytes: 1000 } });
    await h.addUser("alice", "alice pass");
    const { wallet } = await walletOf("alice", "alice pass");
    await wallet.update({ state: state(1, "w1") });
    let err = await rejection(
      wallet.update({ state: { ...state(2, ""), encryptedWallet: new Uint8Array(1001) } }),
    );
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("at most 1000");
    err = await rejection(wallet.update({ state: { ...state(2, "w2"), hmac: new Uint8Array(65) } }));
    expect(err.message).toContain("hmac");
    err = await rejection(wallet.update({ state: state(0, "w0") }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await wallet.get()).wallet.state.sequence).toBe(1n);
  });

  it("keeps Alice out of Bob's wallet: her perspective reaches only hers, and no keyring pair no wallet", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    await h.addUser("bob", "bob pass");
    const alice = await walletOf("alice", "alice pass");
    const bob = await walletOf("bob", "bob pass");
    await bob.wallet.update({ state: state(1, "bob's secret") });
    expect((await alice.wallet.get()).wallet.which()).toBe(MaybeWallet_Which.NONE);
    await alice.wallet.update({ state: state(1, "alice's") });
    expect(read((await bob.wallet.get()).wallet.state.encryptedWallet)).toBe("bob's secret");
    await h.addUser("carol", "carol pass", [{ service: "lobby", perspective: "member" }]);
    const { identity } = await h.login("carol", "carol pass");
    expect((await rejection(identity.attach({ ...OWNER, client: null }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
    // an API key without the wallet pair cannot reach it either
    const { secret } = await alice.identity.createApiKey({
      description: "lobby only",
      keyring: [{ service: "lobby", perspective: "member" }],
      expiresAt: 0n,
    });
    const viaKey = (await h.connect().root.loginWithApiKey({ key: secret })).identity;
    expect((await rejection(viaKey.attach({ ...OWNER, client: null }))).code).toBe(
      ErrorCode.PERMISSION_DENIED,
    );
  });

  it("lets exactly one of N racing clients win each sequence; losers get the latest and, merging, lose nothing", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const N = 8;
    // Logins one after another (the throttle bounds concurrent logins per name); updates all at once.
    const clients: Array<Awaited<ReturnType<typeof walletOf>>> = [];
    for (let i = 0; i < N; i++) clients.push(await walletOf("alice", "alice pass"));
    // round 1: everyone sends sequence 1 at once
    const outcomes = await Promise.all(
      clients.map((c, i) => c.wallet.update({ state: state(1, `{"c${i}":1}`) })),
    );
    const winners = outcomes.filter((o) => o.outcome.which() === UpdateOutcome_Which.ACCEPTED);
    expect(winners).toHaveLength(1);
    const winnerBody = read(winners[0]?.outcome.accepted.encryptedWallet ?? new Uint8Array());
    for (const o of outcomes) {
      if (o.outcome.which() === UpdateOutcome_Which.CONFLICT) {
        expect(read(o.outcome.conflict.encryptedWallet)).toBe(winnerBody);
      }
    }
    // then every client merges its own preference into the latest and retries until it lands
    await Promise.all(
      clients.map(async (c, i) => {
        let latest = (await c.wallet.get()).wallet.state;
        for (;;) {
          const prefs = JSON.parse(read(latest.encryptedWallet)) as Record<string, number>;
          if (prefs[`c${i}`] === 1) return;
          prefs[`c${i}`] = 1;
          const next = Number(latest.sequence) + 1;
          const out = (await c.wallet.update({ state: state(next, JSON.stringify(prefs)) })).outcome;
          if (out.which() === UpdateOutcome_Which.ACCEPTED) return;
          latest = out.conflict;
        }
      }),
    );
    const final = (await clients[0]?.wallet.get())?.wallet.state;
    const prefs = JSON.parse(read(final?.encryptedWallet ?? new Uint8Array())) as Record<string, number>;
    expect(Object.keys(prefs).sort()).toEqual(Array.from({ length: N }, (_, i) => `c${i}`).sort());
    expect(Number(final?.sequence)).toBeGreaterThanOrEqual(N);
  });

  it("changes the password and the wallet in one step; no old-epoch update lands after it", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const changer = await walletOf("alice", "alice pass");
    const racer = await walletOf("alice", "alice pass");
    await changer.wallet.update({ state: state(1, "w1") });
    const { verifier } = await makeVerifier("new pass", { kdf });
    const burst = (from: number) =>
      Array.from({ length: 10 }, (_, i) =>
        Promise.resolve(racer.wallet.update({ state: state(from + i, `race ${from + i}`) })).then(
          (r) => (r.outcome.which() === UpdateOutcome_Which.ACCEPTED ? `accepted ${from + i}` : "conflict"),
          (e: { code: string }) => e.code,
        ),
      );
    const change = (seq: number) =>
      Promise.resolve(
        changer.wallet.changePassword({
          newVerifier: verifier,
          wallet: { state: state(seq, "re-encrypted") },
        }),
      ).then(
        (r) => (r.outcome.which() === PasswordChangeOutcome_Which.CHANGED ? "changed" : "conflict"),
        (e: { message: string }) => e.message,
      );

    // Round 1: the racer's burst is sent first and takes sequence 2; the change conflicts, loses nothing.
    const r1 = burst(2);
    const c1 = change(2);
    const [round1, change1] = await Promise.all([Promise.all(r1), c1]);
    expect(round1[0]).toBe("accepted 2");
    expect(change1).toBe("conflict");
    const stored = Number((await changer.wallet.get()).wallet.state.sequence);
    expect(stored).toBe(11);

    // Round 2: the change is sent first; every racer update sent after it, from the old login, fails.
    const c2 = change(stored + 1);
    const r2 = burst(stored + 1);
    const [change2, round2] = await Promise.all([c2, Promise.all(r2)]);
    expect(change2).toBe("changed");
    expect(round2.filter((x) => x.startsWith("accepted"))).toEqual([]);
    expect(round2.slice(1).every((x) => x === ErrorCode.REVOKED)).toBe(true);
    const after = (await (await walletOf("alice", "new pass")).wallet.get()).wallet.state;
    expect(Number(after.sequence)).toBe(stored + 1);
    expect(read(after.encryptedWallet)).toBe("re-encrypted");
    expect((await rejection(racer.wallet.get())).code).toBe(ErrorCode.REVOKED);
  });

  it("requires the wallet in a password change exactly when one is stored", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const { wallet } = await walletOf("alice", "alice pass");
    const { verifier } = await makeVerifier("second pass", { kdf });
    let err = await rejection(
      wallet.changePassword({ newVerifier: verifier, wallet: { state: state(1, "x") } }),
    );
    expect(err.message).toContain("holds no wallet");
    await wallet.update({ state: state(1, "w1") });
    err = await rejection(wallet.changePassword({ newVerifier: verifier, wallet: { none: null } }));
    expect(err.message).toContain("send it re-encrypted with sequence 2");
    const done = (await wallet.changePassword({ newVerifier: verifier, wallet: { state: state(2, "w2") } }))
      .outcome;
    expect(done.changed.state.sequence).toBe(2n);
    expect((await rejection(wallet.get())).code).toBe(ErrorCode.REVOKED);
    expect((await rejection(h.login("alice", "alice pass"))).code).toBe(ErrorCode.AUTH_FAILED);
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
    await waitFor(() => expect(heard.length).toBeGreaterThan(0));
    expect(heard).toEqual([1n]);
    const { verifier } = await makeVerifier("new pass", { kdf });
    const err = await rejection(a.identity.changePassword({ newVerifier: verifier }));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toContain("WalletPerspective.changePassword");
  });

  it("notifies every watcher of every commit in order, and tells them why when revoked", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const r1 = recorder();
    const r2 = recorder();
    const a = await walletOf("alice", "alice pass", r1.cap);
    await walletOf("alice", "alice pass", r2.cap);
    for (let s = 1; s <= 20; s++) await a.wallet.update({ state: state(s, `w${s}`) });
    await r1.until(20);
    await r2.until(20);
    const expected = Array.from({ length: 20 }, (_, i) => `updated ${i + 1}`);
    expect(r1.events).toEqual(expected);
    expect(r2.events).toEqual(expected);
    const { verifier } = await makeVerifier("new pass", { kdf });
    await a.wallet.changePassword({ newVerifier: verifier, wallet: { state: state(21, "w21") } });
    await r1.until(22);
    await r2.until(22);
    expect(r1.events.slice(20)).toEqual(["updated 21", "revoked: the password was changed"]);
    expect(h.broker.usageOf((await h.store.findIdentityByName("alice"))?.id ?? 0)?.logins ?? 0).toBe(0);
  });

  it("drops notifications for a watcher that cannot keep up, says so once, and grows nothing", async () => {
    h = await makeHarness({ wallet: { maxNotificationsInFlight: 2 } });
    await h.addUser("alice", "alice pass");
    const slow = recorder(true);
    const a = await walletOf("alice", "alice pass", slow.cap);
    for (let s = 1; s <= 6; s++) await a.wallet.update({ state: state(s, `w${s}`) });
    await slow.until(2);
    expect(slow.events).toEqual(["updated 1", "updated 2"]);
    for (const r of slow.held.splice(0)) r();
    await slow.until(3);
    expect(slow.events[2]).toMatch(/^dropped up to 6/);
    // caught up again: the next commit arrives normally
    await a.wallet.update({ state: state(7, "w7") });
    await slow.until(4);
    expect(slow.events[3]).toBe("updated 7");
    for (const r of slow.held.splice(0)) r();
  });

  it("stops notifying a watcher whose connection closed", async () => {
    h = await makeHarness({ wallet: {} });
    await h.addUser("alice", "alice pass");
    const r = recorder();
    const watcher = await walletOf("alice", "alice pass", r.cap);
    const writer = await walletOf("alice", "alice pass");
    const id = (await h.store.findIdentityByName("alice"))?.id ?? -1;
    const service = h.broker.service(
      "wallet",
    ) as import("../../../src/services/wallet/wallet-service.js").WalletService;
    expect(service.watchersOf(id)).toBe(1);
    watcher.client.close();
    await waitFor(() => expect(service.watchersOf(id)).toBe(0));
    await writer.wallet.update({ state: state(1, "w1") });
    expect(r.events).toEqual([]);
  });
});
