import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type {
  ApiKeyRecord,
  AuditEntry,
  BrokerStore,
  KeyringPair,
  WriteContext,
} from "../../src/store/index.js";
import {
  bytes32,
  dumpFile,
  entry,
  KEYRING,
  KEYRING_SORTED,
  resumeToken,
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

describe("names compare by their key (NFKC and case folding)", () => {
  it("finds an identity by any spelling of its name, which stays as first given", async () => {
    const alice = await store.createIdentity({ name: "Alice", verifier: null, keyring: [] });
    const strasse = await store.createIdentity({ name: "Straße", verifier: null, keyring: [] });
    expect(alice.name).toBe("Alice");
    for (const spelling of ["Alice", "alice", "ALICE", "aLiCe", "ＡＬＩＣＥ", "ａｌｉｃｅ"]) {
      expect(await store.findIdentityByName(spelling)).toEqual(alice);
    }
    for (const spelling of ["Straße", "STRASSE", "strasse", "STRAßE", "ＳＴＲＡＳＳＥ"]) {
      expect(await store.findIdentityByName(spelling)).toEqual(strasse);
    }
    expect((await store.listIdentities()).map((i) => i.name)).toEqual(["Alice", "Straße"]);
  });

  it("refuses another spelling of a taken name with ALREADY_EXISTS, writing nothing", async () => {
    await store.createIdentity({ name: "Alice", verifier: null, keyring: [] });
    await store.createIdentity({ name: "Straße", verifier: null, keyring: [] });
    const before = dumpFile(t.file);
    for (const name of ["alice", "ALICE", "ＡＬＩＣＥ", "STRASSE", "strasse"]) {
      await expect(
        store.createIdentity({ name, verifier: verifier(1), keyring: KEYRING, audit: entry("admin", name) }),
      ).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
    }
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.listAudit(10)).toEqual([]);
  });

  it("keeps names that only look alike apart: the Turkish dotted İ, the dotless ı, a trailing space", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    for (const name of ["ALİCE", "alıce", "alice "]) {
      const other = await store.createIdentity({ name, verifier: null, keyring: [] });
      expect(other.id).not.toBe(alice.id);
      expect(await store.findIdentityByName(name)).toEqual(other);
    }
    expect(await store.findIdentityByName("ALICE")).toEqual(alice);
    expect(await store.listIdentities()).toHaveLength(4);
  });
});

describe("writes made by an actor (the login making them)", () => {
  type Write = (id: number, ctx: WriteContext) => Promise<number>;
  const writes: [string, Write][] = [
    ["changeVerifier", (id, ctx) => store.changeVerifier(id, verifier(9), ctx)],
    ["setSuspended", (id, ctx) => store.setSuspended(id, true, ctx)],
    ["setKeyring", (id, ctx) => store.setKeyring(id, [{ service: "go", perspective: "player" }], ctx)],
    ["bumpEpoch", (id, ctx) => store.bumpEpoch(id, ctx)],
  ];

  /** Gives the identity one of everything a credential change could delete or rewrite. */
  async function issueAll(id: number, epoch: number): Promise<void> {
    await store.addPublicKey(id, bytes32(id), "laptop");
    await store.createApiKey(
      { identityId: id, description: "ci", keyring: [], createdAt: t.time, expiresAt: 0 },
      (keyId) => bytes32(100 + keyId),
    );
    await store.createOtp({ identityId: id, otpHash: bytes32(200 + id), epoch, expiresAt: t.time + 60_000 });
    await store.createResumeToken(resumeToken(id, 50 + id, { epoch, expiresAt: t.time + 60_000 }));
  }

  for (const [name, write] of writes) {
    it(`${name} by a login from before the last epoch bump is refused with REVOKED and writes nothing`, async () => {
      const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
      const stale = { identityId: alice.id, epoch: 0 };
      expect(await store.bumpEpoch(alice.id)).toBe(1);
      await issueAll(alice.id, 1);
      const before = dumpFile(t.file);
      const audit = { ...entry("credential", name, alice.id), at: 42 };

      await expect(write(alice.id, { actor: stale, audit })).rejects.toEqual(rejects(ErrorCode.REVOKED));
      expect(dumpFile(t.file)).toEqual(before);
      expect(await store.listAudit(10)).toEqual([]);
      // An actor from the future is no better than a stale one.
      await expect(write(alice.id, { actor: { identityId: alice.id, epoch: 2 }, audit })).rejects.toEqual(
        rejects(ErrorCode.REVOKED),
      );
      expect(dumpFile(t.file)).toEqual(before);

      // The same write by the current login commits, with its audit row.
      expect(await write(alice.id, { actor: { identityId: alice.id, epoch: 1 }, audit })).toBe(2);
      expect(await store.listAudit(10)).toEqual([{ id: 1, ...audit }]);
      expect((await store.findIdentityById(alice.id))?.epoch).toBe(2);
    });

    it(`${name} by a suspended login, or a login of no identity, is refused; the actor is checked, not the target`, async () => {
      const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
      const root = await store.createIdentity({ name: "root", verifier: verifier(2), keyring: [] });
      await issueAll(alice.id, 0);
      const suspended = await store.setSuspended(root.id, true);
      const before = dumpFile(t.file);
      const audit = entry("admin", name, alice.id);
      for (const actor of [
        { identityId: root.id, epoch: suspended },
        { identityId: root.id, epoch: suspended - 1 },
        { identityId: root.id + alice.id + 10, epoch: 0 },
      ]) {
        await expect(write(alice.id, { actor, audit })).rejects.toEqual(rejects(ErrorCode.REVOKED));
      }
      expect(dumpFile(t.file)).toEqual(before);
      expect(await store.listAudit(10)).toEqual([]);
      // Alice herself is current: her own login may make the write while root is suspended.
      const lifted = await store.setSuspended(root.id, false);
      expect(await write(alice.id, { actor: { identityId: root.id, epoch: lifted } })).toBe(1);
    });
  }

  it("a suspended identity's own login cannot lift its suspension", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
    const epoch = await store.setSuspended(alice.id, true);
    await expect(
      store.setSuspended(alice.id, false, { actor: { identityId: alice.id, epoch } }),
    ).rejects.toEqual(rejects(ErrorCode.REVOKED));
    expect(await store.findIdentityById(alice.id)).toMatchObject({ suspended: true, epoch });
    // An operator's write (no actor) lifts it.
    expect(await store.setSuspended(alice.id, false)).toBe(epoch + 1);
  });
});

describe("API keys die with the password, a suspension and logging out everywhere", () => {
  /** Two keys of alice (one expiring, one not, with keyrings) and one of bob. */
  async function keys(aliceId: number, bobId: number): Promise<ApiKeyRecord[]> {
    const make = (identityId: number, description: string, expiresAt: number) =>
      store.createApiKey(
        { identityId, description, keyring: [KEYRING[0] as KeyringPair], createdAt: t.time, expiresAt },
        (id) => bytes32(id),
      );
    return [
      await make(aliceId, "ci", 0),
      await make(aliceId, "backup", t.time + 60_000),
      await make(bobId, "bob's", 0),
    ];
  }
  const keyringRowsOf = (ids: number[]) =>
    withRaw(
      t.file,
      (db) =>
        db
          .prepare(`SELECT count(*) AS n FROM api_key_keyrings WHERE api_key_id IN (${ids.join(",")})`)
          .get() as { n: number },
    ).n;

  const deleting: [string, (id: number) => Promise<number>][] = [
    ["changeVerifier", (id) => store.changeVerifier(id, verifier(9))],
    ["setSuspended(true)", (id) => store.setSuspended(id, true)],
    ["bumpEpoch", (id) => store.bumpEpoch(id)],
  ];
  for (const [name, op] of deleting) {
    it(`${name} deletes every API key of the identity, keyrings included, in its transaction`, async () => {
      const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
      const bob = await store.createIdentity({ name: "bob", verifier: verifier(2), keyring: KEYRING });
      const [ci, backup, bobs] = (await keys(alice.id, bob.id)) as [ApiKeyRecord, ApiKeyRecord, ApiKeyRecord];
      expect(keyringRowsOf([ci.id, backup.id])).toBe(2);

      expect(await op(alice.id)).toBe(1);
      expect(await store.listApiKeys(alice.id)).toEqual([]);
      expect(await store.findApiKey(ci.id)).toBeUndefined();
      expect(await store.findApiKey(backup.id)).toBeUndefined();
      expect(keyringRowsOf([ci.id, backup.id])).toBe(0);
      expect(await store.listApiKeys(bob.id)).toEqual([bobs]);
    });
  }

  const keeping: [string, (id: number) => Promise<number>][] = [
    ["setKeyring", (id) => store.setKeyring(id, [KEYRING[1] as KeyringPair])],
    ["setSuspended(false)", (id) => store.setSuspended(id, false)],
  ];
  for (const [name, op] of keeping) {
    it(`${name} bumps the epoch but leaves the API keys`, async () => {
      const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
      const bob = await store.createIdentity({ name: "bob", verifier: verifier(2), keyring: KEYRING });
      const [ci, backup, bobs] = await keys(alice.id, bob.id);
      expect(await op(alice.id)).toBe(1);
      expect(await store.listApiKeys(alice.id)).toEqual([ci, backup]);
      expect(await store.listApiKeys(bob.id)).toEqual([bobs]);
    });
  }

  it("a refused write deletes no key: a stale login's bumpEpoch leaves them all", async () => {
    const alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
    const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: KEYRING });
    await store.setKeyring(alice.id, KEYRING);
    const all = await keys(alice.id, bob.id);
    await expect(store.bumpEpoch(alice.id, { actor: { identityId: alice.id, epoch: 0 } })).rejects.toEqual(
      rejects(ErrorCode.REVOKED),
    );
    expect(await store.listApiKeys(alice.id)).toEqual(all.slice(0, 2));
  });
});
