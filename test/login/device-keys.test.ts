/**
 * New device keys waiting for approval (security review, finding 1, critical): a request is
 * bound to the key whose signature was checked, never shared, refused at the per-name cap, and a
 * request filed while a name had no owner is never approvable by its later owner.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateEd25519 } from "../../src/cred/ed25519.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithKey, signUp } from "../../src/login/client-login.js";
import { AuthMethod, type PendingApproval } from "../../src/wire/gen/broker.js";
import { type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

/** Files a device request for `name` with a fresh key, from its own connection and address. */
async function request(name: string, address: string, device = "") {
  const key = generateEd25519();
  const res = await loginWithKey(h.connect(address).root, name, key, { device });
  if (res.pending === undefined) throw new Error("expected a pending request");
  const info = (await res.pending.request()).request;
  return { key, pending: res.pending as PendingApproval, id: info.id, info };
}

/** Moves past the throttle's count of device requests per name and address. */
function quiet(): void {
  h.clock.advance(h.broker.limits.loginDelayMaxMs);
}

describe("device-key requests", () => {
  it("are never shared: at the per-name cap the next key is refused, never handed another's request", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const mallory = [];
    for (let i = 0; i < 4; i++) {
      mallory.push(await request("alice", `10.66.0.${i + 1}`, `mallory ${i}`));
      quiet();
    }
    const laptop = await request("alice", "10.1.1.1", "Alice's laptop");
    quiet();
    // The review's attack: a fifth key of Mallory's used to be handed the laptop's request.
    const err = await rejection(loginWithKey(h.connect("10.66.0.9").root, "alice", generateEd25519()));
    expect(err.code).toBe(ErrorCode.RATE_LIMITED);
    // Every request shows its own key and device, and no two are the same.
    const ids = new Set([...mallory, laptop].map((r) => r.id));
    expect(ids.size).toBe(5);
    expect(Buffer.from(laptop.info.publicKey).equals(Buffer.from(laptop.key.publicKey))).toBe(true);
    expect(laptop.info.device).toBe("Alice's laptop");
    // Alice approves her laptop: only the laptop's waiter gets a login.
    const { identity } = await h.login("alice", "alice pass");
    const listed = (await identity.pendingDevices()).requests.toArray();
    expect(listed.map((r) => r.device).sort()).toEqual(
      ["Alice's laptop", "mallory 0", "mallory 1", "mallory 2", "mallory 3"].sort(),
    );
    const laptopLogin = laptop.pending.wait();
    const malloryWaits = mallory.map((m) => m.pending.wait());
    await identity.decideDevice({ id: laptop.id, approve: true, reason: "" });
    expect((await (await laptopLogin).identity.whoami()).info.authMethod).toBe(AuthMethod.PUBLIC_KEY);
    // Mallory's waiters are still waiting for their own requests: reject them and they hear it.
    for (const m of mallory) await identity.decideDevice({ id: m.id, approve: false, reason: "not mine" });
    for (const w of malloryWaits) expect((await rejection(w)).message).toBe("rejected: not mine");
  });

  it("let the same key ask again and get its own request back, not a new one", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    const key = generateEd25519();
    const first = await loginWithKey(h.connect().root, "alice", key, { device: "phone" });
    const again = await loginWithKey(h.connect().root, "alice", key, { device: "phone" });
    const a = (await first.pending?.request())?.request.id;
    const b = (await again.pending?.request())?.request.id;
    expect(a).toBe(b);
    expect(await h.store.listPending(h.clock.now(), "alice")).toHaveLength(1);
  });

  it("filed while a name was free can never be approved by whoever takes the name later", async () => {
    h = await makeHarness({ signUp: "open" });
    const early = await request("carol", "10.66.0.1", "planted");
    const earlyWait = early.pending.wait();
    quiet();
    // Carol signs up afterwards.
    const carol = await signUp(h.connect("10.2.2.2").root, "carol", "carol pass", { kdf });
    const identity = carol.identity;
    if (identity === undefined) throw new Error("sign-up did not open a login");
    // Her list of devices does not show the planted request, and she cannot decide it.
    expect((await identity.pendingDevices()).requests.toArray()).toHaveLength(0);
    const err = await rejection(identity.decideDevice({ id: early.id, approve: true, reason: "" }));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    // Not even an admin can approve it: it can only be rejected.
    const refused = await rejection(
      h.broker.decide(Number(early.id), true, "", { name: "op", actor: null, address: "" }),
    );
    expect(refused.code).toBe(ErrorCode.NOT_FOUND);
    expect(refused.message).toContain("can only be rejected");
    await h.broker.decide(Number(early.id), false, "planted", { name: "op", actor: null, address: "" });
    expect((await rejection(earlyWait)).code).toBe(ErrorCode.REJECTED);
    // Carol's own new device works as usual.
    const mine = await request("carol", "10.2.2.2", "carol's phone");
    expect((await identity.pendingDevices()).requests.toArray().map((r) => r.device)).toEqual([
      "carol's phone",
    ]);
    const login = mine.pending.wait();
    await identity.decideDevice({ id: mine.id, approve: true, reason: "" });
    expect((await (await login).identity.whoami()).info.name).toBe("carol");
  });

  it("refuse a device name that is too long or holds control characters", async () => {
    h = await makeHarness();
    await h.addUser("alice", "alice pass");
    for (const device of ["x".repeat(101), "evil\u0007bell"]) {
      const err = await rejection(loginWithKey(h.connect().root, "alice", generateEd25519(), { device }));
      expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect(await h.store.listPending(h.clock.now(), "alice")).toHaveLength(0);
  });

  it("expire on the broker's clock: the waiting client is told at that moment", async () => {
    h = await makeHarness({ limits: { pendingTtlMs: 60_000, sweepIntervalMs: 3_600_000 } });
    await h.addUser("alice", "alice pass");
    const r = await request("alice", "10.3.3.3", "tablet");
    let outcome: string | undefined;
    const waiting = r.pending.wait().then(
      () => "approved",
      (e: unknown) => (e as Error).message,
    );
    void waiting.then((o) => {
      outcome = o;
    });
    h.clock.advance(59_999);
    await Promise.resolve();
    expect(outcome).toBeUndefined();
    h.clock.advance(1);
    expect(await waiting).toBe("the request expired");
    // The row stays until the sweep, which runs on the clock every sweepIntervalMs.
    expect((await h.store.findPending(Number(r.id)))?.state).toBe("pending");
    h.clock.advance(3_600_000 - 60_000);
    await vi.waitFor(async () => expect(await h.store.findPending(Number(r.id))).toBeUndefined());
  });
});
