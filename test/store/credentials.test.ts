import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { Actor, AuditEntry, BrokerStore, IdentityRecord, KeyringPair } from "../../src/store/index.js";
import {
  bytes32,
  dumpFile,
  entry,
  KEYRING,
  KEYRING_SORTED,
  resumeToken,
  TempStores,
  withRaw,
} from "./fixtures.js";

let t: TempStores;
let store: BrokerStore;
let alice: IdentityRecord;
let bob: IdentityRecord;
beforeEach(async () => {
  t = new TempStores();
  expect(t.time).toBe(NOW);
  store = t.open();
  alice = await store.createIdentity({ name: "alice", verifier: null, keyring: KEYRING });
  bob = await store.createIdentity({ name: "bob", verifier: null, keyring: KEYRING });
});
afterEach(() => t.cleanup());

const rejects = (code: string) => expect.objectContaining({ code });
/** The clock every store opened by `TempStores` starts at. */
const NOW = 1_700_000_000_000;
const epochOf = async (id: number) => (await store.findIdentityById(id))?.epoch;
/** Rows of `table` (otps, resume_tokens, api_keys) belonging to the identity, as stored. */
const countRows = (table: "otps" | "resume_tokens" | "api_keys", identityId: number): number =>
  withRaw(
    t.file,
    (db) =>
      db
        .prepare<[number], { n: number }>(`SELECT count(*) AS n FROM ${table} WHERE identity_id = ?`)
        .get(identityId)?.n ?? -1,
  );

describe("public keys", () => {
  it("registers a key to one identity and finds and lists it", async () => {
    await store.addPublicKey(alice.id, bytes32(1), "laptop", {
      audit: entry("admin", "key added", alice.id),
    });
    await store.addPublicKey(alice.id, bytes32(2), "phone");
    expect(await store.findPublicKey(bytes32(1))).toEqual({
      identityId: alice.id,
      publicKey: bytes32(1),
      device: "laptop",
      addedAt: t.time,
    });
    expect((await store.listPublicKeys(alice.id)).map((k) => k.device)).toEqual(["laptop", "phone"]);
    expect(await store.listPublicKeys(bob.id)).toEqual([]);
    expect(await store.findPublicKey(bytes32(3))).toBeUndefined();
    expect((await store.listAudit(5)).map((a) => a.detail)).toEqual(["key added"]);
    expect(await epochOf(alice.id)).toBe(0);
  });

  it("refuses a key registered to anyone with ALREADY_EXISTS", async () => {
    await store.addPublicKey(alice.id, bytes32(1), "laptop");
    await expect(store.addPublicKey(alice.id, bytes32(1), "again")).rejects.toEqual(
      rejects(ErrorCode.ALREADY_EXISTS),
    );
    await expect(store.addPublicKey(bob.id, bytes32(1), "stolen")).rejects.toEqual(
      rejects(ErrorCode.ALREADY_EXISTS),
    );
    expect(await store.findPublicKey(bytes32(1))).toMatchObject({ identityId: alice.id, device: "laptop" });
  });

  it("refuses a key that is not 32 bytes with BAD_ARGUMENT", async () => {
    await expect(store.addPublicKey(alice.id, new Uint8Array(31), "short")).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT),
    );
  });

  it("refuses a key for an unknown identity with NOT_FOUND", async () => {
    await expect(store.addPublicKey(99, bytes32(1), "laptop")).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
  });

  it("revokes only the identity's own key: another's key gives undefined and no bump", async () => {
    await store.addPublicKey(alice.id, bytes32(1), "laptop");
    expect(
      await store.revokePublicKey(bob.id, bytes32(1), { audit: entry("revoked", "bob tries") }),
    ).toBeUndefined();
    expect(await store.findPublicKey(bytes32(1))).toBeDefined();
    expect(await epochOf(bob.id)).toBe(0);
    expect(await store.listAudit(5)).toEqual([]);

    expect(await store.revokePublicKey(alice.id, bytes32(1))).toBe(1);
    expect(await store.findPublicKey(bytes32(1))).toBeUndefined();
    expect(await store.revokePublicKey(alice.id, bytes32(1))).toBeUndefined();
    expect(await epochOf(alice.id)).toBe(1);
  });
});

describe("API keys", () => {
  const init = (identityId: number) => ({
    identityId,
    description: "deploy bot",
    keyring: [KEYRING[0], KEYRING[2]].filter((p) => p !== undefined),
    createdAt: 1000,
    expiresAt: 0,
  });
  /** A stand-in for hashing a secret that names the key's id. */
  const hashOfId = (id: number) => bytes32(id);

  it("creates a key with an attenuated keyring and finds and lists it", async () => {
    const key = await store.createApiKey(init(alice.id), hashOfId, {
      audit: entry("admin", "api key", alice.id),
    });
    expect(key).toEqual({
      id: key.id,
      identityId: alice.id,
      description: "deploy bot",
      keyring: [KEYRING_SORTED[0], KEYRING_SORTED[2]],
      secretHash: bytes32(key.id),
      createdAt: 1000,
      expiresAt: 0,
      permissions: [],
    });
    const second = await store.createApiKey({ ...init(alice.id), keyring: [], expiresAt: 5000 }, hashOfId);
    expect(second.id).toBeGreaterThan(key.id);
    expect(await store.findApiKey(key.id)).toEqual(key);
    expect(await store.listApiKeys(alice.id)).toEqual([key, second]);
    expect(await store.listApiKeys(bob.id)).toEqual([]);
    expect(await store.findApiKey(second.id + 1)).toBeUndefined();
    expect(await epochOf(alice.id)).toBe(0);
    expect(await store.listAudit(5)).toHaveLength(1);
  });

  it("refuses a keyring wider than the owner's with BAD_ARGUMENT and writes nothing", async () => {
    const wide = { ...init(alice.id), keyring: [{ service: "bank", perspective: "teller" }] };
    await expect(store.createApiKey(wide, hashOfId, { audit: entry("admin", "x") })).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT),
    );
    expect(await store.listApiKeys(alice.id)).toEqual([]);
    expect(await store.listAudit(5)).toEqual([]);
  });

  it("hashes the secret from the new key's id inside the transaction: if hashing throws, nothing is written", async () => {
    const seen: number[] = [];
    const key = await store.createApiKey(init(alice.id), (id) => {
      seen.push(id);
      return bytes32(id);
    });
    expect(seen).toEqual([key.id]);
    const failing = () => {
      throw new Error("no entropy");
    };
    await expect(store.createApiKey(init(alice.id), failing, { audit: entry("admin", "x") })).rejects.toThrow(
      "no entropy",
    );
    await expect(store.createApiKey(init(alice.id), () => new Uint8Array(0))).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT),
    );
    expect(await store.listApiKeys(alice.id)).toEqual([key]);
    expect(await store.listAudit(5)).toEqual([]);
  });

  it("refuses a key for an unknown identity with NOT_FOUND", async () => {
    await expect(store.createApiKey(init(99), hashOfId)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
  });

  it("revokes only the identity's own key: another's key id gives undefined and no bump", async () => {
    const key = await store.createApiKey(init(alice.id), hashOfId);
    expect(
      await store.revokeApiKey(bob.id, key.id, { audit: entry("revoked", "bob tries") }),
    ).toBeUndefined();
    expect(await store.findApiKey(key.id)).toEqual(key);
    expect(await epochOf(bob.id)).toBe(0);
    expect(await epochOf(alice.id)).toBe(0);
    expect(await store.listAudit(5)).toEqual([]);

    expect(await store.revokeApiKey(alice.id, key.id)).toBe(1);
    expect(await store.findApiKey(key.id)).toBeUndefined();
    expect(await store.revokeApiKey(alice.id, key.id)).toBeUndefined();
  });
});

describe("one-time passwords", () => {
  /** The store's clock too: inserts delete the rows expired at that clock. */
  const now = NOW;
  const otp = (identityId: number, hash: number, epoch = 0, expiresAt = now + 60_000) =>
    store.createOtp({ identityId, otpHash: bytes32(hash), epoch, expiresAt });

  it("can be consumed once: the second consume is false", async () => {
    await otp(alice.id, 1);
    expect(await store.consumeOtp(alice.id, bytes32(1), now)).toBe(true);
    expect(await store.consumeOtp(alice.id, bytes32(1), now)).toBe(false);
  });

  it("is false from its expiry time on", async () => {
    await otp(alice.id, 1, 0, now);
    await otp(alice.id, 2, 0, now + 1);
    expect(await store.consumeOtp(alice.id, bytes32(1), now)).toBe(false);
    expect(await store.consumeOtp(alice.id, bytes32(2), now)).toBe(true);
  });

  it("is false once the identity's epoch has moved on", async () => {
    await otp(alice.id, 1);
    await store.bumpEpoch(alice.id);
    expect(await store.consumeOtp(alice.id, bytes32(1), now)).toBe(false);
    await otp(alice.id, 2, 0);
    expect(await store.consumeOtp(alice.id, bytes32(2), now)).toBe(false);
    await otp(alice.id, 3, 1);
    expect(await store.consumeOtp(alice.id, bytes32(3), now)).toBe(true);
  });

  it("is false while the identity is suspended", async () => {
    const epoch = await store.setSuspended(alice.id, true);
    await otp(alice.id, 1, epoch);
    expect(await store.consumeOtp(alice.id, bytes32(1), now)).toBe(false);
  });

  it("belongs to its identity: another identity neither gets it nor burns it", async () => {
    await otp(alice.id, 1);
    expect(await store.consumeOtp(bob.id, bytes32(1), now)).toBe(false);
    expect(await store.consumeOtp(alice.id, bytes32(1), now)).toBe(true);
  });

  it("refuses an OTP for an unknown identity with NOT_FOUND and a reused hash with ALREADY_EXISTS", async () => {
    await expect(otp(99, 1)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await otp(alice.id, 1);
    await expect(otp(bob.id, 1)).rejects.toEqual(rejects(ErrorCode.ALREADY_EXISTS));
  });

  it("is consumed by exactly one of two stores open on the same file", async () => {
    const other = t.open();
    await otp(alice.id, 1);
    const results = await Promise.all([
      store.consumeOtp(alice.id, bytes32(1), now),
      other.consumeOtp(alice.id, bytes32(1), now),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});

describe("resume tokens", () => {
  const now = NOW;
  const token = (identityId: number, hash: number, epoch = 0, expiresAt = now + 60_000) => ({
    identityId,
    tokenHash: bytes32(hash),
    family: bytes32(100 + hash),
    epoch,
    device: "phone",
    keyring: [KEYRING[0]].filter((p) => p !== undefined),
    expiresAt,
  });

  it("is found by hash with its device and keyring until it expires", async () => {
    await store.createResumeToken(token(alice.id, 1));
    await store.createResumeToken({ ...token(alice.id, 2), keyring: null });
    expect(await store.findResumeToken(bytes32(1), now)).toEqual(token(alice.id, 1));
    expect((await store.findResumeToken(bytes32(2), now))?.keyring).toBeNull();
    expect(await store.findResumeToken(bytes32(1), now + 59_999)).toBeDefined();
    expect(await store.findResumeToken(bytes32(1), now + 60_000)).toBeUndefined();
    expect(await store.findResumeToken(bytes32(3), now)).toBeUndefined();
  });

  it("is not found once the identity's epoch has moved on", async () => {
    await store.setKeyring(alice.id, KEYRING);
    await store.createResumeToken(token(alice.id, 1, 0));
    expect(await store.findResumeToken(bytes32(1), now)).toBeUndefined();
    await store.createResumeToken(token(alice.id, 2, 1));
    expect(await store.findResumeToken(bytes32(2), now)).toBeDefined();
  });

  it("is not found while the identity is suspended", async () => {
    const epoch = await store.setSuspended(alice.id, true);
    await store.createResumeToken(token(alice.id, 1, epoch));
    expect(await store.findResumeToken(bytes32(1), now)).toBeUndefined();
  });

  it("refuses a token for an unknown identity with NOT_FOUND", async () => {
    await expect(store.createResumeToken(token(99, 1))).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
  });
});

describe("writes made by an actor (the login making them)", () => {
  const LATER = NOW + 60_000;
  type Run = (ctx: { actor: Actor; audit: AuditEntry }) => Promise<unknown>;
  /** Each write, prepared on alice at `epoch` (making the rows it needs), ready to run. */
  const writes: [string, (epoch: number) => Promise<Run>][] = [
    ["addPublicKey", async () => (ctx) => store.addPublicKey(alice.id, bytes32(7), "laptop", ctx)],
    [
      "revokePublicKey",
      async () => {
        await store.addPublicKey(alice.id, bytes32(7), "laptop");
        return (ctx) => store.revokePublicKey(alice.id, bytes32(7), ctx);
      },
    ],
    [
      "createApiKey",
      async () => (ctx) =>
        store.createApiKey(
          { identityId: alice.id, description: "ci", keyring: [], createdAt: NOW, expiresAt: 0 },
          bytes32,
          ctx,
        ),
    ],
    [
      "revokeApiKey",
      async () => {
        const key = await store.createApiKey(
          { identityId: alice.id, description: "ci", keyring: [], createdAt: NOW, expiresAt: 0 },
          bytes32,
        );
        return (ctx) => store.revokeApiKey(alice.id, key.id, ctx);
      },
    ],
    [
      "createOtp",
      async (epoch) =>
        ({ actor }) =>
          store.createOtp({ identityId: alice.id, otpHash: bytes32(7), epoch, expiresAt: LATER }, { actor }),
    ],
    [
      "createResumeToken",
      async (epoch) =>
        ({ actor }) =>
          store.createResumeToken(resumeToken(alice.id, 7, { epoch, expiresAt: LATER }), { actor }),
    ],
  ];

  for (const [name, prepare] of writes) {
    it(`${name} by a login from before the last epoch bump is refused with REVOKED and writes nothing`, async () => {
      expect(await store.bumpEpoch(alice.id)).toBe(1);
      const run = await prepare(1);
      const before = dumpFile(t.file);
      const audit = { ...entry("credential", name, alice.id), at: 42 };

      await expect(run({ actor: { identityId: alice.id, epoch: 0 }, audit })).rejects.toEqual(
        rejects(ErrorCode.REVOKED),
      );
      expect(dumpFile(t.file)).toEqual(before);
      expect(await store.listAudit(10)).toEqual([]);

      // The same write by the current login commits.
      await run({ actor: { identityId: alice.id, epoch: 1 }, audit });
      expect(dumpFile(t.file)).not.toEqual(before);
    });

    it(`${name} by a suspended login is refused with REVOKED and writes nothing`, async () => {
      const suspended = await store.setSuspended(bob.id, true);
      const run = await prepare(0);
      const before = dumpFile(t.file);
      for (const actor of [
        { identityId: bob.id, epoch: suspended },
        { identityId: alice.id, epoch: 1 },
        { identityId: 99, epoch: 0 },
      ]) {
        await expect(run({ actor, audit: entry("admin", name, alice.id) })).rejects.toEqual(
          rejects(ErrorCode.REVOKED),
        );
      }
      expect(dumpFile(t.file)).toEqual(before);
      expect(await store.listAudit(10)).toEqual([]);
    });
  }

  it("createApiKey by a stale login never asks for the secret's hash", async () => {
    await store.bumpEpoch(alice.id);
    const asked: number[] = [];
    const hashFor = (id: number) => {
      asked.push(id);
      return bytes32(id);
    };
    const init = { identityId: alice.id, description: "ci", keyring: [], createdAt: NOW, expiresAt: 0 };
    await expect(
      store.createApiKey(init, hashFor, { actor: { identityId: alice.id, epoch: 0 } }),
    ).rejects.toEqual(rejects(ErrorCode.REVOKED));
    expect(asked).toEqual([]);
  });
});

describe("API keys and other credential changes", () => {
  const make = (identityId: number, description: string) =>
    store.createApiKey({ identityId, description, keyring: [], createdAt: NOW, expiresAt: 0 }, bytes32);

  it("revoking a public key bumps the epoch but leaves the API keys", async () => {
    const keys = [await make(alice.id, "ci"), await make(alice.id, "backup")];
    await store.addPublicKey(alice.id, bytes32(7), "laptop");
    expect(await store.revokePublicKey(alice.id, bytes32(7))).toBe(1);
    expect(await store.listApiKeys(alice.id)).toEqual(keys);
  });

  it("revoking one API key leaves the identity's others (and another identity's) alone", async () => {
    const [ci, backup] = [await make(alice.id, "ci"), await make(alice.id, "backup")];
    const bobs = await make(bob.id, "bob's");
    expect(await store.revokeApiKey(alice.id, ci.id)).toBe(1);
    expect(await store.listApiKeys(alice.id)).toEqual([backup]);
    expect(await store.listApiKeys(bob.id)).toEqual([bobs]);
  });
});

describe("per-identity caps", () => {
  const apiKey = (identityId: number, createdAt: number, expiresAt: number) => ({
    identityId,
    description: `made at ${createdAt}`,
    keyring: [],
    createdAt,
    expiresAt,
  });

  it("createApiKey: max - 1 held is fine, max held is QUOTA, writing nothing and asking no hash", async () => {
    await store.createApiKey(apiKey(alice.id, 1000, 0), bytes32, { max: 3 });
    await store.createApiKey(apiKey(alice.id, 1000, 0), bytes32, { max: 3 });
    // Bob's keys do not count against alice's.
    for (let i = 0; i < 3; i++) await store.createApiKey(apiKey(bob.id, 1000, 0), bytes32);
    const third = await store.createApiKey(apiKey(alice.id, 1000, 0), bytes32, { max: 3 });
    expect(await store.listApiKeys(alice.id)).toHaveLength(3);

    const before = dumpFile(t.file);
    const asked: number[] = [];
    const hashFor = (id: number) => {
      asked.push(id);
      return bytes32(id);
    };
    await expect(
      store.createApiKey(apiKey(alice.id, 1000, 0), hashFor, { max: 3, audit: entry("admin", "4th") }),
    ).rejects.toEqual(rejects(ErrorCode.QUOTA));
    expect(asked).toEqual([]);
    expect(dumpFile(t.file)).toEqual(before);
    // Without a cap the store does not limit.
    expect((await store.createApiKey(apiKey(alice.id, 1000, 0), bytes32)).id).toBeGreaterThan(third.id);
  });

  it("createApiKey: keys expired at the new key's creation time are deleted and not counted", async () => {
    const expiring = await store.createApiKey(apiKey(alice.id, 1000, 5000), bytes32);
    const forever = await store.createApiKey(apiKey(alice.id, 1000, 0), bytes32);
    // Still live at 4999: the cap holds, and the refusal deletes nothing.
    await expect(store.createApiKey(apiKey(alice.id, 4999, 0), bytes32, { max: 2 })).rejects.toEqual(
      rejects(ErrorCode.QUOTA),
    );
    expect(await store.findApiKey(expiring.id)).toEqual(expiring);
    // Expired at 5000: deleted, and the new key fits.
    const fresh = await store.createApiKey(apiKey(alice.id, 5000, 0), bytes32, { max: 2 });
    expect(await store.findApiKey(expiring.id)).toBeUndefined();
    expect(await store.listApiKeys(alice.id)).toEqual([forever, fresh]);
  });

  it("createOtp: max - 1 unexpired is fine, max is QUOTA, writing nothing", async () => {
    const otp = (hash: number, expiresAt: number, ctx?: { max?: number; now?: number }) =>
      store.createOtp({ identityId: alice.id, otpHash: bytes32(hash), epoch: 0, expiresAt }, ctx);
    await otp(1, NOW + 100, { max: 2, now: NOW });
    for (let i = 0; i < 2; i++) {
      await store.createOtp({ identityId: bob.id, otpHash: bytes32(50 + i), epoch: 0, expiresAt: NOW + 100 });
    }
    await otp(2, NOW + 200, { max: 2, now: NOW });
    const before = dumpFile(t.file);
    await expect(otp(3, NOW + 300, { max: 2, now: NOW + 99 })).rejects.toEqual(rejects(ErrorCode.QUOTA));
    expect(dumpFile(t.file)).toEqual(before);

    // At NOW + 100 the first has expired: it is deleted, and the third fits.
    await otp(3, NOW + 300, { max: 2, now: NOW + 100 });
    expect(await store.consumeOtp(alice.id, bytes32(2), NOW + 100)).toBe(true);
    expect(await store.consumeOtp(alice.id, bytes32(3), NOW + 100)).toBe(true);
    expect(countRows("otps", alice.id)).toBe(0);
    expect(countRows("otps", bob.id)).toBe(2);
  });

  it("createOtp: without `now`, expiry is judged by the store's clock", async () => {
    await store.createOtp({ identityId: alice.id, otpHash: bytes32(1), epoch: 0, expiresAt: NOW + 10 });
    await expect(
      store.createOtp(
        { identityId: alice.id, otpHash: bytes32(2), epoch: 0, expiresAt: NOW + 60 },
        { max: 1 },
      ),
    ).rejects.toEqual(rejects(ErrorCode.QUOTA));
    t.time = NOW + 10;
    await store.createOtp(
      { identityId: alice.id, otpHash: bytes32(2), epoch: 0, expiresAt: NOW + 60 },
      { max: 1 },
    );
    expect(countRows("otps", alice.id)).toBe(1);
  });

  it("createResumeToken: below the cap nothing is dropped; at it, the live token expiring soonest goes", async () => {
    const max = 3;
    await store.createResumeToken(resumeToken(alice.id, 1, { expiresAt: NOW + 3000 }), { max });
    await store.createResumeToken(resumeToken(alice.id, 2, { expiresAt: NOW + 1000 }), { max });
    await store.createResumeToken(resumeToken(bob.id, 9, { expiresAt: NOW + 500 }), { max });
    await store.createResumeToken(resumeToken(alice.id, 3, { expiresAt: NOW + 2000 }), { max });
    for (const h of [1, 2, 3]) expect(await store.findResumeToken(bytes32(h), NOW)).toBeDefined();

    await store.createResumeToken(resumeToken(alice.id, 4, { expiresAt: NOW + 4000 }), { max });
    expect(await store.findResumeToken(bytes32(2), NOW)).toBeUndefined();
    for (const h of [1, 3, 4]) expect(await store.findResumeToken(bytes32(h), NOW)).toBeDefined();
    expect(countRows("resume_tokens", alice.id)).toBe(3);
    // Bob's token (expiring sooner than any of alice's) is not hers to drop.
    expect(await store.findResumeToken(bytes32(9), NOW)).toBeDefined();
  });

  it("createResumeToken: expired tokens are deleted first and not counted; a spent one is not live", async () => {
    await store.createResumeToken(resumeToken(alice.id, 1, { expiresAt: NOW + 10 }));
    await store.createResumeToken(resumeToken(alice.id, 2, { expiresAt: NOW + 5000 }));
    // At NOW + 10 token 1 has expired: it goes, and token 2 stays under a cap of 2.
    await store.createResumeToken(resumeToken(alice.id, 3, { expiresAt: NOW + 6000 }), {
      max: 2,
      now: NOW + 10,
    });
    expect(await store.findResumeToken(bytes32(2), NOW + 10)).toBeDefined();
    expect(await store.findResumeToken(bytes32(3), NOW + 10)).toBeDefined();
    expect(countRows("resume_tokens", alice.id)).toBe(2);

    // Rotating token 2 leaves one spent row and one live one: still 2 live, nothing to drop at 3.
    expect((await store.rotateResumeToken(bytes32(2), bytes32(12), NOW + 10))?.kind).toBe("rotated");
    await store.createResumeToken(resumeToken(alice.id, 4, { expiresAt: NOW + 7000 }), {
      max: 3,
      now: NOW + 10,
    });
    for (const h of [12, 3, 4]) expect(await store.findResumeToken(bytes32(h), NOW + 10)).toBeDefined();

    // Expired rows go even when the cap has room: token 8 has expired by NOW + 20.
    await store.createResumeToken(resumeToken(alice.id, 8, { expiresAt: NOW + 20 }), { now: NOW + 10 });
    expect(countRows("resume_tokens", alice.id)).toBe(5);
    await store.createResumeToken(resumeToken(alice.id, 9, { expiresAt: NOW + 8000 }), {
      max: 10,
      now: NOW + 20,
    });
    expect(countRows("resume_tokens", alice.id)).toBe(5);
    expect(await store.findResumeToken(bytes32(9), NOW + 20)).toBeDefined();
  });

  it("createResumeToken: tokens made and rotated over and over at the cap stay bounded in rows", async () => {
    const max = 2;
    for (let i = 0; i < 20; i++) {
      await store.createResumeToken(resumeToken(alice.id, i, { expiresAt: NOW + 1000 + i }), { max });
      expect((await store.rotateResumeToken(bytes32(i), bytes32(100 + i), NOW))?.kind).toBe("rotated");
    }
    // Each live token keeps at most its one spent predecessor.
    expect(countRows("resume_tokens", alice.id)).toBeLessThanOrEqual(2 * max);
    expect(await store.findResumeToken(bytes32(119), NOW)).toBeDefined();
    expect(await store.findResumeToken(bytes32(118), NOW)).toBeDefined();
    expect(await store.findResumeToken(bytes32(117), NOW)).toBeUndefined();
  });
});

describe("resume-token rotation", () => {
  const KEYRING_ONE = [KEYRING[0] as KeyringPair];
  /** Alice's token 1 in family 101, with a keyring, at `epoch`. */
  const first = (epoch = 0) =>
    resumeToken(alice.id, 1, { epoch, device: "tablet", keyring: KEYRING_ONE, expiresAt: NOW + 60_000 });

  it("rotating a live token spends it and stores a successor with the same family, epoch, device, keyring, expiry", async () => {
    await store.createResumeToken(first());
    const rotation = await store.rotateResumeToken(bytes32(1), bytes32(2), NOW);
    const successor = { ...first(), tokenHash: bytes32(2) };
    expect(rotation).toEqual({ kind: "rotated", token: successor });
    expect(await store.findResumeToken(bytes32(2), NOW)).toEqual(successor);
    // The predecessor is spent: not found, though its row remains to catch a replay.
    expect(await store.findResumeToken(bytes32(1), NOW)).toBeUndefined();
    expect(countRows("resume_tokens", alice.id)).toBe(2);
    // The successor rotates in turn.
    expect(await store.rotateResumeToken(bytes32(2), bytes32(3), NOW)).toEqual({
      kind: "rotated",
      token: { ...first(), tokenHash: bytes32(3) },
    });
  });

  it("replaying a rotated token deletes its whole family (the successor too), and no other family", async () => {
    await store.createResumeToken(first());
    await store.createResumeToken(resumeToken(alice.id, 5, { expiresAt: NOW + 60_000 }));
    await store.createResumeToken(resumeToken(bob.id, 6, { family: bytes32(101), expiresAt: NOW + 60_000 }));
    await store.rotateResumeToken(bytes32(1), bytes32(2), NOW);

    expect(await store.rotateResumeToken(bytes32(1), bytes32(3), NOW)).toEqual({
      kind: "reused",
      token: first(),
    });
    expect(await store.findResumeToken(bytes32(2), NOW)).toBeUndefined();
    expect(await store.rotateResumeToken(bytes32(2), bytes32(4), NOW)).toBeUndefined();
    expect(await store.findResumeToken(bytes32(3), NOW)).toBeUndefined();
    // Alice's other family, and bob's token that happens to carry the same family bytes, stay.
    expect(await store.findResumeToken(bytes32(5), NOW)).toBeDefined();
    expect(await store.findResumeToken(bytes32(6), NOW)).toBeDefined();
    expect(countRows("resume_tokens", alice.id)).toBe(1);
    // A replay after that finds nothing more to revoke.
    expect(await store.rotateResumeToken(bytes32(1), bytes32(3), NOW)).toBeUndefined();
  });

  it("the thief's successor dies too: whoever rotated first, the other's replay revokes both", async () => {
    await store.createResumeToken(first());
    // The thief rotates the stolen token first; the owner then presents the (now spent) original.
    expect((await store.rotateResumeToken(bytes32(1), bytes32(66), NOW))?.kind).toBe("rotated");
    expect((await store.rotateResumeToken(bytes32(1), bytes32(2), NOW))?.kind).toBe("reused");
    expect(await store.findResumeToken(bytes32(66), NOW)).toBeUndefined();
    expect(await store.rotateResumeToken(bytes32(66), bytes32(67), NOW)).toBeUndefined();
  });

  it("two rotations in a row keep one spent row: the older predecessor is deleted", async () => {
    await store.createResumeToken(first());
    await store.rotateResumeToken(bytes32(1), bytes32(2), NOW);
    await store.rotateResumeToken(bytes32(2), bytes32(3), NOW);
    const rows = withRaw(t.file, (db) =>
      db
        .prepare<[number], { token_hash: Buffer; spent: number }>(
          "SELECT token_hash, spent FROM resume_tokens WHERE identity_id = ? ORDER BY spent",
        )
        .all(alice.id)
        .map((r) => [r.token_hash[0], r.spent]),
    );
    expect(rows).toEqual([
      [3, 0],
      [2, 1],
    ]);
    // The oldest is gone for good: presenting it is unknown, not a replay, and the family lives.
    expect(await store.rotateResumeToken(bytes32(1), bytes32(9), NOW)).toBeUndefined();
    expect(await store.findResumeToken(bytes32(3), NOW)).toBeDefined();
    // The one spent row still catches a replay.
    expect((await store.rotateResumeToken(bytes32(2), bytes32(9), NOW))?.kind).toBe("reused");
    expect(await store.findResumeToken(bytes32(3), NOW)).toBeUndefined();
  });

  it("an unknown, expired, stale-epoch or suspended identity's token answers undefined and changes nothing", async () => {
    await store.createResumeToken(first());
    const before = dumpFile(t.file);
    expect(await store.rotateResumeToken(bytes32(9), bytes32(2), NOW)).toBeUndefined();
    expect(await store.rotateResumeToken(bytes32(1), bytes32(2), NOW + 60_000)).toBeUndefined();
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.rotateResumeToken(bytes32(1), bytes32(2), NOW + 59_999)).toMatchObject({
      kind: "rotated",
    });

    // A token of an older epoch (the bump deletes tokens; this one was issued afterwards, stale).
    await store.setKeyring(bob.id, KEYRING);
    await store.createResumeToken(resumeToken(bob.id, 20, { epoch: 0, expiresAt: NOW + 60_000 }));
    // A token of a suspended identity, at the suspension's epoch.
    const carol = await store.createIdentity({ name: "carol", verifier: null, keyring: [] });
    const suspended = await store.setSuspended(carol.id, true);
    await store.createResumeToken(resumeToken(carol.id, 30, { epoch: suspended, expiresAt: NOW + 60_000 }));
    const later = dumpFile(t.file);
    expect(await store.rotateResumeToken(bytes32(20), bytes32(21), NOW)).toBeUndefined();
    expect(await store.rotateResumeToken(bytes32(30), bytes32(31), NOW)).toBeUndefined();
    expect(dumpFile(t.file)).toEqual(later);
  });

  it("a successor hash already in use is ALREADY_EXISTS and leaves the token live", async () => {
    await store.createResumeToken(first());
    await store.createResumeToken(resumeToken(bob.id, 2, { expiresAt: NOW + 60_000 }));
    const before = dumpFile(t.file);
    await expect(store.rotateResumeToken(bytes32(1), bytes32(2), NOW)).rejects.toEqual(
      rejects(ErrorCode.ALREADY_EXISTS),
    );
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.findResumeToken(bytes32(1), NOW)).toEqual(first());
  });

  it("refuses a token without a family with BAD_ARGUMENT", async () => {
    await expect(
      store.createResumeToken(resumeToken(alice.id, 1, { family: new Uint8Array(0) })),
    ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
    expect(countRows("resume_tokens", alice.id)).toBe(0);
  });

  it("deleteResumeFamilies deletes the identity's tokens of those families, spent ones included, and counts them", async () => {
    await store.createResumeToken(first());
    await store.rotateResumeToken(bytes32(1), bytes32(2), NOW);
    await store.createResumeToken(resumeToken(alice.id, 5, { expiresAt: NOW + 60_000 }));
    await store.createResumeToken(resumeToken(alice.id, 7, { expiresAt: NOW + 60_000 }));
    await store.createResumeToken(resumeToken(bob.id, 6, { family: bytes32(101), expiresAt: NOW + 60_000 }));

    // Bob's login cannot delete alice's families, even naming them.
    expect(await store.deleteResumeFamilies(bob.id, [bytes32(105)])).toBe(0);
    expect(await store.deleteResumeFamilies(alice.id, [bytes32(101), bytes32(105), bytes32(199)])).toBe(3);
    expect(await store.findResumeToken(bytes32(2), NOW)).toBeUndefined();
    expect(await store.findResumeToken(bytes32(5), NOW)).toBeUndefined();
    expect(await store.findResumeToken(bytes32(7), NOW)).toBeDefined();
    expect(await store.findResumeToken(bytes32(6), NOW)).toBeDefined();
    expect(await store.deleteResumeFamilies(alice.id, [])).toBe(0);
  });
});

describe("purgeExpired", () => {
  it("deletes expired OTPs, resume tokens (spent ones too), API keys with an expiry and pending rows, and counts them", async () => {
    const otp = (identityId: number, hash: number, expiresAt: number) =>
      store.createOtp({ identityId, otpHash: bytes32(hash), epoch: 0, expiresAt }, { now: 0 });
    const key = (identityId: number, expiresAt: number) =>
      store.createApiKey(
        { identityId, description: `${expiresAt}`, keyring: [], createdAt: 0, expiresAt },
        bytes32,
      );
    const pending = (username: string, expiresAt: number) =>
      store.createPending({
        kind: "signUp",
        username,
        identityId: null,
        verifier: null,
        publicKey: null,
        device: "",
        remoteAddress: "192.0.2.7",
        createdAt: 0,
        expiresAt,
      });
    const T = NOW + 1000;
    // Expired by T (expiry <= T) ...
    await otp(alice.id, 1, T);
    await otp(bob.id, 2, T - 500);
    await store.createResumeToken(resumeToken(alice.id, 3, { expiresAt: T }), { now: 0 });
    await store.createResumeToken(resumeToken(bob.id, 4, { expiresAt: T - 1 }), { now: 0 });
    await store.rotateResumeToken(bytes32(4), bytes32(5), 0);
    const old = [await key(alice.id, T), await key(bob.id, T - 1)];
    const expiredSignUp = await pending("carol", T);
    const decided = await pending("dave", T);
    await store.decidePending(decided.id, false, "no", []);
    // ... and live at T.
    await otp(alice.id, 11, T + 1);
    await store.createResumeToken(resumeToken(alice.id, 13, { expiresAt: T + 1 }), { now: 0 });
    const live = [await key(alice.id, T + 1), await key(alice.id, 0)];
    const open = await pending("erin", T + 1);
    const decidedLive = await pending("frank", T + 1);
    await store.decidePending(decidedLive.id, false, "no", []);

    expect(await store.purgeExpired(T)).toEqual({ otps: 2, resumeTokens: 3, apiKeys: 2, pending: 2 });
    expect(countRows("otps", alice.id) + countRows("otps", bob.id)).toBe(1);
    expect(countRows("resume_tokens", bob.id)).toBe(0);
    expect(await store.findResumeToken(bytes32(13), T)).toBeDefined();
    for (const k of old) expect(await store.findApiKey(k.id)).toBeUndefined();
    expect(await store.listApiKeys(alice.id)).toEqual(live);
    expect(await store.findPending(expiredSignUp.id)).toBeUndefined();
    expect(await store.findPending(decided.id)).toBeUndefined();
    expect(await store.findPending(open.id)).toMatchObject({ state: "pending" });
    expect(await store.findPending(decidedLive.id)).toMatchObject({ state: "rejected" });
    expect(await store.consumeOtp(alice.id, bytes32(11), T)).toBe(true);

    // Running it again finds nothing more.
    expect(await store.purgeExpired(T)).toEqual({ otps: 0, resumeTokens: 0, apiKeys: 0, pending: 0 });
  });
});
