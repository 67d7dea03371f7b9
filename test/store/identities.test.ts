import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { AuditEntry, BrokerStore } from "../../src/store/index.js";
import { bytes32, entry, KEYRING, KEYRING_SORTED, resumeToken, TempStores, verifier } from "./fixtures.js";

let t: TempStores;
let store: BrokerStore;
beforeEach(() => {
  t = new TempStores();
  store = t.open();
});
afterEach(() => t.cleanup());

const rejects = (code: string) => expect.objectContaining({ code });

describe("identities", () => {
  it("creates an identity at epoch 0 and finds it by name and by id", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
    expect(alice).toMatchObject({ name: "alice", epoch: 0, suspended: false, createdAt: t.time });
    expect(await store.findIdentityByName("alice")).toEqual(alice);
    expect(await store.findIdentityById(alice.id)).toEqual(alice);
    expect(await store.findIdentityByName("alicia")).toBeUndefined();
    expect(await store.findIdentityByName("alice ")).toBeUndefined();
    expect(await store.findIdentityById(alice.id + 1)).toBeUndefined();
  });

  it("returns the verifier as plain Uint8Array copies with its kdf parameters", async () => {
    const { id } = await store.createIdentity({ name: "alice", verifier: verifier(7), keyring: [] });
    const found = await store.findIdentityById(id);
    expect(found?.verifier).toEqual(verifier(7));
    expect(Object.getPrototypeOf(found?.verifier?.storedKey)).toBe(Uint8Array.prototype);
  });

  it("keeps an identity without a password with a null verifier", async () => {
    const { id } = await store.createIdentity({ name: "bot", verifier: null, keyring: [] });
    expect((await store.findIdentityById(id))?.verifier).toBeNull();
  });

  it("refuses a taken name with ALREADY_EXISTS and writes nothing", async () => {
    await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    await expect(
      store.createIdentity({
        name: "alice",
        verifier: verifier(1),
        keyring: KEYRING,
        audit: entry("admin", "x"),
      }),
    ).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
    expect(await store.listIdentities()).toHaveLength(1);
    expect(await store.listAudit(10)).toEqual([]);
  });

  it("returns keyrings sorted by service then perspective, without duplicates", async () => {
    const { id } = await store.createIdentity({
      name: "alice",
      verifier: null,
      keyring: [...KEYRING, { service: "chat", perspective: "member" }],
    });
    expect((await store.findIdentityById(id))?.keyring).toEqual(KEYRING_SORTED);
    await store.setKeyring(id, [{ service: "go", perspective: "player" }]);
    expect((await store.findIdentityById(id))?.keyring).toEqual([{ service: "go", perspective: "player" }]);
    await store.setKeyring(id, []);
    expect((await store.findIdentityById(id))?.keyring).toEqual([]);
  });

  it("lists every identity with its own keyring", async () => {
    await store.createIdentity({ name: "alice", verifier: null, keyring: KEYRING });
    await store.createIdentity({
      name: "bob",
      verifier: null,
      keyring: [{ service: "go", perspective: "player" }],
    });
    await store.createIdentity({ name: "carol", verifier: null, keyring: [] });
    const all = await store.listIdentities();
    expect(all.map((i) => [i.name, i.keyring.length])).toEqual([
      ["alice", 3],
      ["bob", 1],
      ["carol", 0],
    ]);
  });
});

describe("epoch bumps", () => {
  type Bump = (id: number, audit: AuditEntry) => Promise<number | undefined>;
  const bumps: [string, Bump][] = [
    ["changeVerifier", (id, audit) => store.changeVerifier(id, verifier(9), { audit })],
    ["setSuspended", (id, audit) => store.setSuspended(id, true, { audit })],
    [
      "setKeyring",
      (id, audit) => store.setKeyring(id, [{ service: "go", perspective: "player" }], { audit }),
    ],
    ["bumpEpoch", (id, audit) => store.bumpEpoch(id, { audit })],
    [
      "revokePublicKey",
      async (id, audit) => {
        await store.addPublicKey(id, bytes32(5), "laptop");
        return store.revokePublicKey(id, bytes32(5), { audit });
      },
    ],
    [
      "revokeApiKey",
      async (id, audit) => {
        const key = await store.createApiKey(
          { identityId: id, description: "ci", keyring: [], createdAt: 1, expiresAt: 0 },
          bytes32,
        );
        return store.revokeApiKey(id, key.id, { audit });
      },
    ],
  ];

  for (const [name, bump] of bumps) {
    it(`${name} adds exactly 1 to the epoch and writes its audit row`, async () => {
      const { id } = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
      await store.bumpEpoch(id);
      const before = (await store.findIdentityById(id))?.epoch as number;
      expect(before).toBe(1);
      const audit = { ...entry("credential", name, id), at: 42 };
      expect(await bump(id, audit)).toBe(before + 1);
      expect((await store.findIdentityById(id))?.epoch).toBe(before + 1);
      expect(await store.listAudit(10)).toEqual([{ id: 1, ...audit }]);
    });
  }

  it("each bump leaves the other identities' epochs alone", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
    await store.bumpEpoch(alice.id);
    await store.setSuspended(alice.id, false);
    expect((await store.findIdentityById(bob.id))?.epoch).toBe(0);
  });

  it("changeVerifier replaces the verifier", async () => {
    const { id } = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: [] });
    await store.changeVerifier(id, verifier(30));
    expect((await store.findIdentityById(id))?.verifier).toEqual(verifier(30));
  });

  it("setSuspended records suspension and lifting it", async () => {
    const { id } = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    expect(await store.setSuspended(id, true)).toBe(1);
    expect((await store.findIdentityById(id))?.suspended).toBe(true);
    expect(await store.setSuspended(id, false)).toBe(2);
    expect((await store.findIdentityById(id))?.suspended).toBe(false);
  });

  for (const method of ["changeVerifier", "bumpEpoch"] as const) {
    it(`${method} deletes the identity's resume tokens and OTPs, so their hashes can be issued again`, async () => {
      const { id } = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: [] });
      const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
      const later = t.time + 60_000;
      await store.createOtp({ identityId: id, otpHash: bytes32(1), epoch: 0, expiresAt: later });
      await store.createResumeToken(resumeToken(id, 2, { expiresAt: later }));
      await store.createOtp({ identityId: bob.id, otpHash: bytes32(3), epoch: 0, expiresAt: later });

      const epoch =
        method === "bumpEpoch" ? await store.bumpEpoch(id) : await store.changeVerifier(id, verifier(2));
      expect(await store.findResumeToken(bytes32(2), t.time)).toBeUndefined();
      // Re-issuing the same hashes would collide if the old rows were still there.
      await store.createOtp({ identityId: id, otpHash: bytes32(1), epoch, expiresAt: later });
      await store.createResumeToken(resumeToken(id, 2, { epoch, expiresAt: later }));
      expect(await store.findResumeToken(bytes32(2), t.time)).toMatchObject({ epoch });
      // Bob's OTP is untouched.
      expect(await store.consumeOtp(bob.id, bytes32(3), t.time)).toBe(true);
    });
  }

  it("fails with NOT_FOUND for an unknown identity and rolls back its audit row", async () => {
    const ctx = { audit: entry("credential", "nobody") };
    await expect(store.changeVerifier(99, verifier(1), ctx)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(store.setSuspended(99, true, ctx)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(store.setKeyring(99, [], ctx)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(store.bumpEpoch(99, ctx)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    expect(await store.listAudit(10)).toEqual([]);
  });
});
