import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { BrokerStore, IdentityRecord } from "../../src/store/index.js";
import { bytes32, entry, KEYRING, KEYRING_SORTED, TempStores } from "./fixtures.js";

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
