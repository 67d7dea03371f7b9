import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { BrokerStore, PendingRecord } from "../../src/store/index.js";
import {
  bytes32,
  dumpFile,
  entry,
  KEYRING,
  KEYRING_SORTED,
  TempStores,
  verifier,
  withRaw,
} from "./fixtures.js";

let t: TempStores;
let store: BrokerStore;
beforeEach(() => {
  t = new TempStores();
  store = t.open();
});
afterEach(() => t.cleanup());

const rejects = (code: string) => expect.objectContaining({ code });
const HOUR = 3_600_000;

function signUp(username: string, expiresIn = HOUR): Omit<PendingRecord, "id" | "state" | "reason"> {
  return {
    kind: "signUp",
    username,
    identityId: null,
    verifier: verifier(3),
    publicKey: null,
    device: "",
    remoteAddress: "192.0.2.7",
    createdAt: t.time,
    expiresAt: t.time + expiresIn,
  };
}

/** A device-key request for `username`, filed while the name belonged to `identityId` (null: to nobody). */
function deviceKey(
  username: string,
  key: number,
  identityId: number | null,
): Omit<PendingRecord, "id" | "state" | "reason"> {
  return {
    kind: "deviceKey",
    username,
    identityId,
    verifier: null,
    publicKey: bytes32(key),
    device: "new laptop",
    remoteAddress: "192.0.2.8",
    createdAt: t.time,
    expiresAt: t.time + HOUR,
  };
}

describe("pending sign-ups", () => {
  it("records a sign-up as pending with its verifier", async () => {
    const req = await store.createPending(signUp("alice"), entry("pending", "sign-up"));
    expect(req).toEqual({ ...signUp("alice"), id: req.id, state: "pending", reason: "" });
    expect(await store.findPending(req.id)).toEqual(req);
    expect(await store.findPending(req.id + 1)).toBeUndefined();
    expect((await store.listAudit(5)).map((a) => a.kind)).toEqual(["pending"]);
  });

  it("blocks the name while pending: createIdentity and a second sign-up fail with ALREADY_EXISTS", async () => {
    await store.createPending(signUp("alice"));
    await expect(store.createIdentity({ name: "alice", verifier: null, keyring: [] })).rejects.toEqual(
      rejects(ErrorCode.ALREADY_EXISTS),
    );
    await expect(store.createPending(signUp("alice"))).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
    expect(await store.listPending(t.time)).toHaveLength(1);
  });

  it("stops blocking the name once the sign-up has expired", async () => {
    await store.createPending(signUp("alice", 1000));
    t.time += 1000;
    expect((await store.createPending(signUp("alice"))).username).toBe("alice");
  });

  it("refuses a sign-up for the name of an existing identity with ALREADY_EXISTS", async () => {
    await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    await expect(store.createPending(signUp("alice"))).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
  });

  it("approving creates the identity with the request's verifier and the given keyring", async () => {
    const req = await store.createPending(signUp("alice"));
    const { request, identity } = await store.decidePending(req.id, true, "approved by root", KEYRING, {
      audit: entry("approved", "by root"),
    });
    expect(request).toEqual({ ...req, state: "approved", reason: "approved by root" });
    expect(identity).toMatchObject({
      name: "alice",
      verifier: verifier(3),
      keyring: KEYRING_SORTED,
      epoch: 0,
    });
    expect(await store.findIdentityByName("alice")).toEqual(identity);
    expect(await store.listPending(t.time)).toEqual([]);
    expect((await store.listAudit(5)).map((a) => a.kind)).toEqual(["approved"]);
  });

  it("approving a sign-up that carries a key registers the key to the new identity", async () => {
    const req = await store.createPending({ ...signUp("alice"), publicKey: bytes32(4), device: "laptop" });
    const { identity } = await store.decidePending(req.id, true, "ok", []);
    expect(await store.findPublicKey(bytes32(4))).toMatchObject({
      identityId: identity?.id,
      device: "laptop",
    });
  });

  it("rejecting records the reason and creates nothing, freeing the name", async () => {
    const req = await store.createPending(signUp("alice"));
    const decision = await store.decidePending(req.id, false, "unknown person", KEYRING);
    expect(decision).toEqual({
      request: { ...req, state: "rejected", reason: "unknown person" },
      identity: null,
    });
    expect(await store.findPending(req.id)).toEqual(decision.request);
    expect(await store.findIdentityByName("alice")).toBeUndefined();
    await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
  });

  it("deciding twice fails with NOT_FOUND and changes nothing", async () => {
    const req = await store.createPending(signUp("alice"));
    await store.decidePending(req.id, true, "ok", KEYRING);
    await expect(store.decidePending(req.id, false, "changed my mind", [])).rejects.toEqual(
      rejects(ErrorCode.NOT_FOUND),
    );
    expect(await store.findPending(req.id)).toMatchObject({ state: "approved", reason: "ok" });
    expect(await store.findIdentityByName("alice")).toBeDefined();
  });

  it("deciding an expired or unknown request fails with NOT_FOUND", async () => {
    const req = await store.createPending(signUp("alice", 1000));
    t.time += 1000;
    await expect(store.decidePending(req.id, true, "late", KEYRING)).rejects.toEqual(
      rejects(ErrorCode.NOT_FOUND),
    );
    await expect(store.decidePending(req.id + 1, true, "?", KEYRING)).rejects.toEqual(
      rejects(ErrorCode.NOT_FOUND),
    );
    expect(await store.findIdentityByName("alice")).toBeUndefined();
    expect(await store.findPending(req.id)).toMatchObject({ state: "pending" });
  });
});

describe("pending device keys", () => {
  it("approving registers the key to the user without bumping the epoch", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
    const req = await store.createPending(deviceKey("alice", 9, alice.id));
    const { request, identity } = await store.decidePending(req.id, true, "approved by alice", []);
    expect(request.state).toBe("approved");
    expect(identity).toEqual(alice);
    expect(await store.findPublicKey(bytes32(9))).toMatchObject({
      identityId: alice.id,
      device: "new laptop",
    });
    expect((await store.findIdentityById(alice.id))?.epoch).toBe(0);
  });

  it("approving a key registered meanwhile fails with ALREADY_EXISTS and leaves the request pending", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const req = await store.createPending(deviceKey("alice", 9, alice.id));
    await store.addPublicKey(alice.id, bytes32(9), "other");
    await expect(
      store.decidePending(req.id, true, "ok", [], { audit: entry("approved", "x") }),
    ).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
    expect(await store.findPending(req.id)).toMatchObject({ state: "pending", reason: "" });
    expect(await store.listAudit(5)).toEqual([]);
  });

  it("approving a key for a user that does not exist fails with NOT_FOUND", async () => {
    const req = await store.createPending(deviceKey("ghost", 9, null));
    await expect(store.decidePending(req.id, true, "ok", [])).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    expect(await store.findPublicKey(bytes32(9))).toBeUndefined();
  });

  it("refuses a device-key request without a 32-byte key with BAD_ARGUMENT", async () => {
    await expect(store.createPending({ ...deviceKey("alice", 1, null), publicKey: null })).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT),
    );
    await expect(
      store.createPending({ ...deviceKey("alice", 1, null), publicKey: new Uint8Array(8) }),
    ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
  });
});

describe("listPending", () => {
  it("lists unexpired pending requests oldest first, optionally for one user", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const a1 = await store.createPending(deviceKey("alice", 1, alice.id));
    const b = await store.createPending(signUp("bob"));
    const a2 = await store.createPending({ ...deviceKey("alice", 2, alice.id), expiresAt: t.time + 10 });
    const decided = await store.createPending(deviceKey("alice", 3, alice.id));
    await store.decidePending(decided.id, false, "no", []);

    expect((await store.listPending(t.time)).map((r) => r.id)).toEqual([a1.id, b.id, a2.id]);
    expect((await store.listPending(t.time, "alice")).map((r) => r.id)).toEqual([a1.id, a2.id]);
    expect((await store.listPending(t.time + 10, "alice")).map((r) => r.id)).toEqual([a1.id]);
    expect(await store.listPending(t.time, "carol")).toEqual([]);
  });
});

describe("names of pending sign-ups compare by their key", () => {
  it("a pending sign-up holds every spelling of its name: createIdentity and sign-ups refused", async () => {
    await store.createPending(signUp("Alice"));
    const before = dumpFile(t.file);
    for (const name of ["alice", "ALICE", "ＡＬＩＣＥ"]) {
      await expect(store.createIdentity({ name, verifier: null, keyring: [] })).rejects.toEqual(
        rejects(ErrorCode.ALREADY_EXISTS),
      );
      await expect(store.createPending(signUp(name), entry("pending", name))).rejects.toEqual(
        rejects(ErrorCode.ALREADY_EXISTS),
      );
    }
    expect(dumpFile(t.file)).toEqual(before);
    // A name that only looks alike is free.
    expect((await store.createPending(signUp("ALİCE"))).username).toBe("ALİCE");
  });

  it("an identity's name refuses a sign-up in another spelling (Straße / STRASSE)", async () => {
    await store.createIdentity({ name: "Straße", verifier: null, keyring: [] });
    for (const name of ["STRASSE", "strasse", "ＳＴＲＡＳＳＥ"]) {
      await expect(store.createPending(signUp(name))).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
    }
    expect(await store.listPending(t.time)).toEqual([]);
  });

  it("listPending(now, name) finds a name's requests under any spelling, each with its name as filed", async () => {
    const alice = await store.createIdentity({ name: "Alice", verifier: null, keyring: [] });
    const d1 = await store.createPending(deviceKey("alice", 1, alice.id));
    const d2 = await store.createPending(deviceKey("ＡＬＩＣＥ", 2, alice.id));
    const s = await store.createPending(signUp("STRASSE"));
    await store.createPending(signUp("bob"));
    for (const spelling of ["Alice", "alice", "ALICE", "ａｌｉｃｅ"]) {
      expect(await store.listPending(t.time, spelling)).toEqual([d1, d2]);
    }
    expect(d2.username).toBe("ＡＬＩＣＥ");
    expect(await store.listPending(t.time, "Straße")).toEqual([s]);
  });

  it("approving a sign-up creates the identity under the name as filed, found by any spelling", async () => {
    const req = await store.createPending(signUp("Straße"));
    const { identity } = await store.decidePending(req.id, true, "ok", []);
    expect(identity?.name).toBe("Straße");
    expect(await store.findIdentityByName("STRASSE")).toEqual(identity);
  });
});

describe("device requests are bound to the identity they were filed for", () => {
  it("listDeviceRequests lists the identity's own pending, unexpired device requests, oldest first", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
    const a1 = await store.createPending(deviceKey("alice", 1, alice.id));
    await store.createPending(deviceKey("bob", 2, bob.id));
    await store.createPending(deviceKey("alice", 3, null));
    await store.createPending(signUp("carol"));
    const a2 = await store.createPending({ ...deviceKey("ALICE", 4, alice.id), expiresAt: t.time + 10 });
    const decided = await store.createPending(deviceKey("alice", 5, alice.id));
    await store.decidePending(decided.id, false, "no", []);

    expect(await store.listDeviceRequests(alice.id, t.time)).toEqual([a1, a2]);
    expect(a1.identityId).toBe(alice.id);
    expect((await store.listDeviceRequests(alice.id, t.time + 10)).map((r) => r.id)).toEqual([a1.id]);
    expect((await store.listDeviceRequests(bob.id, t.time)).map((r) => r.publicKey?.[0])).toEqual([2]);
    expect(await store.listDeviceRequests(999, t.time)).toEqual([]);
  });

  it("a request filed while the name had no owner is never approvable, even once someone takes the name", async () => {
    const req = await store.createPending(deviceKey("carol", 9, null));
    expect(req.identityId).toBeNull();
    const carol = await store.createIdentity({ name: "Carol", verifier: verifier(1), keyring: KEYRING });
    expect(await store.listDeviceRequests(carol.id, t.time)).toEqual([]);
    // It still shows among the name's pending requests, for an operator to reject.
    expect((await store.listPending(t.time, "carol")).map((r) => r.id)).toEqual([req.id]);

    const before = dumpFile(t.file);
    for (const ctx of [{}, { actor: { identityId: carol.id, epoch: 0 }, audit: entry("approved", "x") }]) {
      await expect(store.decidePending(req.id, true, "approved by carol", [], ctx)).rejects.toEqual(
        rejects(ErrorCode.NOT_FOUND),
      );
    }
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.findPublicKey(bytes32(9))).toBeUndefined();
    expect(await store.findPending(req.id)).toMatchObject({ state: "pending", reason: "" });

    const { request, identity } = await store.decidePending(req.id, false, "not carol's", []);
    expect(request).toMatchObject({ state: "rejected", reason: "not carol's" });
    expect(identity).toBeNull();
  });

  it("approval registers the key to the identity filed for, not whoever the username names now", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
    // Filed for bob under the name "alice": the binding, not the name, decides.
    const req = await store.createPending(deviceKey("alice", 9, bob.id));
    const { identity } = await store.decidePending(req.id, true, "ok", []);
    expect(identity).toEqual(bob);
    expect(await store.findPublicKey(bytes32(9))).toMatchObject({ identityId: bob.id });
    expect(await store.listPublicKeys(alice.id)).toEqual([]);
  });

  it("approval fails with NOT_FOUND, registering nothing, once the identity filed for is gone", async () => {
    const old = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
    const req = await store.createPending(deviceKey("alice", 9, old.id));
    // No API deletes an identity; the row goes behind the store's back and the name is taken anew.
    withRaw(t.file, (db) => db.prepare("DELETE FROM identities WHERE id = ?").run(old.id));
    const now = await store.createIdentity({ name: "Alice", verifier: null, keyring: [] });
    expect(now.id).not.toBe(old.id);
    await expect(store.decidePending(req.id, true, "ok", [])).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    expect(await store.findPublicKey(bytes32(9))).toBeUndefined();
    expect(await store.listDeviceRequests(now.id, t.time)).toEqual([]);
    expect(await store.findPending(req.id)).toMatchObject({ state: "pending" });
  });

  it("refuses a sign-up bound to an identity (BAD_ARGUMENT) and a device request for none that exists (NOT_FOUND)", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    await expect(store.createPending({ ...signUp("carol"), identityId: alice.id })).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT),
    );
    await expect(store.createPending(deviceKey("ghost", 9, alice.id + 99))).rejects.toEqual(
      rejects(ErrorCode.NOT_FOUND),
    );
    expect(await store.listPending(t.time)).toEqual([]);
  });
});

describe("decidePending by an actor", () => {
  it("a stale or suspended login's decision is refused with REVOKED: no identity, no key, no audit row", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const root = await store.createIdentity({ name: "root", verifier: null, keyring: [] });
    const signUpReq = await store.createPending(signUp("carol"));
    const deviceReq = await store.createPending(deviceKey("alice", 9, alice.id));
    await store.bumpEpoch(root.id);
    const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
    const suspended = await store.setSuspended(bob.id, true);
    const before = dumpFile(t.file);

    for (const actor of [
      { identityId: root.id, epoch: 0 },
      { identityId: bob.id, epoch: suspended },
    ]) {
      for (const id of [signUpReq.id, deviceReq.id]) {
        for (const approve of [true, false]) {
          await expect(
            store.decidePending(id, approve, "by a stale login", KEYRING, {
              actor,
              audit: entry("approved", "x"),
            }),
          ).rejects.toEqual(rejects(ErrorCode.REVOKED));
        }
      }
    }
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.listAudit(10)).toEqual([]);

    // The current login decides.
    const actor = { identityId: root.id, epoch: 1 };
    const audit = { ...entry("approved", "by root"), at: 7 };
    expect(
      (await store.decidePending(signUpReq.id, true, "ok", KEYRING, { actor, audit })).identity,
    ).toMatchObject({ name: "carol" });
    expect((await store.decidePending(deviceReq.id, true, "ok", [], { actor })).identity?.id).toBe(alice.id);
    expect(await store.listAudit(10)).toEqual([{ id: 1, ...audit }]);
  });
});
