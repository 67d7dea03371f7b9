import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { AuditEntry, IdentityRecord, SqliteBrokerStore, WalletInput } from "../../src/store/index.js";
import { MAX_WALLET_BYTES, MAX_WALLET_HMAC_BYTES } from "../../src/store/index.js";
import { LATEST_VERSION, MIGRATIONS, migrate } from "../../src/store/migrations.js";
import { bytes32, dumpFile, entry, resumeToken, TempStores, verifier, walletFor } from "./fixtures.js";
import { walletsOf } from "../helpers/stores.js";

let t: TempStores;
let store: SqliteBrokerStore;
let alice: IdentityRecord;
let bob: IdentityRecord;
beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: [] });
  bob = await store.createIdentity({ name: "bob", verifier: verifier(2), keyring: [] });
});
afterEach(() => t.cleanup());

const rejects = (code: string) => expect.objectContaining({ code });
/** What `wallet` reads back as once stored at the clock's current time. */
const stored = (wallet: WalletInput) => ({ ...wallet, updatedAt: t.time });
const epochOf = async (id: number) => (await store.findIdentityById(id))?.epoch;

/** Stores alice's wallets 1..n at epoch 0. */
async function seed(n: number): Promise<void> {
  for (let s = 1; s <= n; s++) {
    expect((await walletsOf(store).updateWallet(alice.id, 0, walletFor(s))).kind).toBe("accepted");
  }
}

/** Issues alice an OTP (hash 1) and a resume token (hash 2) at `epoch`. */
async function issueAlice(epoch: number): Promise<void> {
  const expiresAt = t.time + 60_000;
  await store.createOtp({ identityId: alice.id, otpHash: bytes32(1), epoch, expiresAt });
  await store.createResumeToken(resumeToken(alice.id, 2, { epoch, expiresAt }));
}

describe("updateWallet", () => {
  it("stores a first wallet only as sequence 1, stamped with the store's clock", async () => {
    expect(await walletsOf(store).getWallet(alice.id)).toBeUndefined();
    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(2))).toEqual({
      kind: "conflict",
      latest: null,
    });
    expect(await walletsOf(store).getWallet(alice.id)).toBeUndefined();

    t.time += 1234;
    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(1))).toEqual({
      kind: "accepted",
      wallet: stored(walletFor(1)),
    });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(1)));
    expect(await walletsOf(store).getWallet(bob.id)).toBeUndefined();
  });

  it("accepts exactly the stored sequence + 1 and otherwise returns a conflict with what is stored", async () => {
    await seed(1);
    const first = stored(walletFor(1));
    t.time += 10;
    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(1, 7))).toEqual({
      kind: "conflict",
      latest: first,
    });
    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(3))).toEqual({
      kind: "conflict",
      latest: first,
    });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(first);

    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(2))).toEqual({
      kind: "accepted",
      wallet: stored(walletFor(2)),
    });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(2)));
    // Each identity has its own sequence.
    expect((await walletsOf(store).updateWallet(bob.id, 0, walletFor(1))).kind).toBe("accepted");
    expect((await walletsOf(store).getWallet(alice.id))?.sequence).toBe(2);
  });

  it("refuses a sequence that is not a positive safe integer, or oversize bytes, with BAD_ARGUMENT", async () => {
    const w = walletFor(1);
    for (const sequence of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      await expect(walletsOf(store).updateWallet(alice.id, 0, { ...w, sequence })).rejects.toEqual(
        rejects(ErrorCode.BAD_ARGUMENT),
      );
    }
    // Compared by code only: a failure message printing 16 MiB of bytes would take minutes.
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => "resolved",
        (err: unknown) => (err as { code?: string }).code,
      );
    const huge = new Uint8Array(MAX_WALLET_BYTES + 1);
    expect(await codeOf(walletsOf(store).updateWallet(alice.id, 0, { ...w, encryptedWallet: huge }))).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    const longHmac = new Uint8Array(MAX_WALLET_HMAC_BYTES + 1);
    expect(await codeOf(walletsOf(store).updateWallet(alice.id, 0, { ...w, hmac: longHmac }))).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect(await walletsOf(store).getWallet(alice.id)).toBeUndefined();

    const largest = { ...w, hmac: new Uint8Array(MAX_WALLET_HMAC_BYTES).fill(9) };
    expect(await walletsOf(store).updateWallet(alice.id, 0, largest)).toEqual({
      kind: "accepted",
      wallet: stored(largest),
    });
  });

  it("is revoked, writing nothing, when the caller's epoch is stale (or ahead)", async () => {
    await seed(1);
    await store.bumpEpoch(alice.id);
    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(2))).toEqual({ kind: "revoked" });
    expect(await walletsOf(store).updateWallet(alice.id, 2, walletFor(2))).toEqual({ kind: "revoked" });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(1)));
    expect((await walletsOf(store).updateWallet(alice.id, 1, walletFor(2))).kind).toBe("accepted");
  });

  it("is revoked for a suspended identity and for an unknown one", async () => {
    const epoch = await store.setSuspended(alice.id, true);
    expect(await walletsOf(store).updateWallet(alice.id, epoch, walletFor(1))).toEqual({ kind: "revoked" });
    expect(await walletsOf(store).updateWallet(99, 0, walletFor(1))).toEqual({ kind: "revoked" });
    expect(await walletsOf(store).getWallet(alice.id)).toBeUndefined();
    const lifted = await store.setSuspended(alice.id, false);
    expect((await walletsOf(store).updateWallet(alice.id, lifted, walletFor(1))).kind).toBe("accepted");
  });

  it("two store instances on one file racing the same sequence: exactly one is accepted", async () => {
    const other = t.open();
    const results = await Promise.all([
      walletsOf(store).updateWallet(alice.id, 0, walletFor(1, 1)),
      walletsOf(other).updateWallet(alice.id, 0, walletFor(1, 2)),
    ]);
    const accepted = results.filter((r) => r.kind === "accepted");
    const conflicts = results.filter((r) => r.kind === "conflict");
    expect(accepted).toHaveLength(1);
    expect(conflicts).toHaveLength(1);
    const winner = accepted[0]?.kind === "accepted" ? accepted[0].wallet : undefined;
    expect(winner).toBeDefined();
    expect(conflicts[0]).toEqual({ kind: "conflict", latest: winner });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(winner);
    expect(await walletsOf(other).getWallet(alice.id)).toEqual(winner);
  });
});

describe("changePasswordWithWallet", () => {
  it("refuses a wallet when none is stored, and requires one when one is (wallet-mismatch)", async () => {
    expect(await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(1))).toEqual({
      kind: "wallet-mismatch",
      latest: null,
    });
    await seed(1);
    expect(await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), null)).toEqual({
      kind: "wallet-mismatch",
      latest: stored(walletFor(1)),
    });
    const identity = await store.findIdentityById(alice.id);
    expect(identity?.verifier).toEqual(verifier(1));
    expect(identity?.epoch).toBe(0);
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(1)));
  });

  it("returns a conflict, changing nothing, unless the wallet's sequence is the stored one + 1", async () => {
    await seed(2);
    const latest = stored(walletFor(2));
    for (const sequence of [1, 2, 4]) {
      expect(
        await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(sequence, 3)),
      ).toEqual({
        kind: "conflict",
        latest,
      });
    }
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(1), epoch: 0 });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(latest);
  });

  it("is revoked, changing nothing, for a stale epoch, a suspended identity or an unknown one", async () => {
    await seed(1);
    await store.bumpEpoch(alice.id);
    expect(await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(2))).toEqual({
      kind: "revoked",
    });
    const suspended = await store.setSuspended(alice.id, true);
    expect(
      await walletsOf(store).changePasswordWithWallet(alice.id, suspended, verifier(50), walletFor(2)),
    ).toEqual({
      kind: "revoked",
    });
    expect(await walletsOf(store).changePasswordWithWallet(99, 0, verifier(50), null)).toEqual({
      kind: "revoked",
    });
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(1), epoch: suspended });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(1)));
  });

  it("changed: replaces the verifier, stores the wallet, bumps the epoch by 1, deletes tokens, audits", async () => {
    await seed(1);
    const before = await store.bumpEpoch(alice.id);
    await issueAlice(before);
    await store.createOtp({ identityId: bob.id, otpHash: bytes32(3), epoch: 0, expiresAt: t.time + 60_000 });
    t.time += 500;
    const audit: AuditEntry = { ...entry("credential", "password changed", alice.id), at: 42 };

    expect(
      await walletsOf(store).changePasswordWithWallet(alice.id, before, verifier(50), walletFor(2), audit),
    ).toEqual({
      kind: "changed",
      epoch: before + 1,
      wallet: stored(walletFor(2)),
    });
    expect(await store.findIdentityById(alice.id)).toMatchObject({
      verifier: verifier(50),
      epoch: before + 1,
    });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(2)));
    expect(await store.listAudit(10)).toEqual([{ id: 1, ...audit }]);

    // The old OTP and resume token rows are gone: re-issuing their hashes would collide otherwise.
    expect(await store.findResumeToken(bytes32(2), t.time)).toBeUndefined();
    await issueAlice(before + 1);
    expect(await store.findResumeToken(bytes32(2), t.time)).toMatchObject({ epoch: before + 1 });
    // Bob's OTP and epoch are untouched.
    expect(await store.consumeOtp(bob.id, bytes32(3), t.time)).toBe(true);
    expect(await epochOf(bob.id)).toBe(0);
  });

  it("changed with no wallet when none is stored and none is given", async () => {
    expect(await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), null)).toEqual({
      kind: "changed",
      epoch: 1,
      wallet: null,
    });
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(50), epoch: 1 });
    expect(await walletsOf(store).getWallet(alice.id)).toBeUndefined();
    expect(await store.listAudit(10)).toEqual([]);
  });

  it("writes all or nothing: a failing audit insert leaves verifier, epoch, wallet and tokens as they were", async () => {
    await seed(1);
    await issueAlice(0);
    // The audit table's username is NOT NULL: this row fails to insert, after everything else ran.
    const broken = { ...entry("credential", "broken", alice.id), username: null as unknown as string };
    await expect(
      walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(2), broken),
    ).rejects.toEqual(rejects(ErrorCode.STORAGE));

    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(1), epoch: 0 });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(1)));
    expect(await store.listAudit(10)).toEqual([]);
    expect(await store.findResumeToken(bytes32(2), t.time)).toMatchObject({ epoch: 0 });
    expect(await store.consumeOtp(alice.id, bytes32(1), t.time)).toBe(true);

    // The same change with a valid audit row goes through.
    const ok = entry("credential", "ok", alice.id);
    expect(
      await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(2), ok),
    ).toMatchObject({
      kind: "changed",
      epoch: 1,
    });
  });

  it("refuses an invalid verifier or wallet with BAD_ARGUMENT, changing nothing", async () => {
    await seed(1);
    const bad = { ...verifier(50), kdf: { ...verifier(50).kdf, iterations: 0 } };
    await expect(walletsOf(store).changePasswordWithWallet(alice.id, 0, bad, walletFor(2))).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT),
    );
    await expect(
      walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), { ...walletFor(2), sequence: 0 }),
    ).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(1), epoch: 0 });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(1)));
  });

  it("after a password change, an update from the old epoch is revoked even with the right sequence", async () => {
    await seed(1);
    const changed = await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(2));
    expect(changed).toMatchObject({ kind: "changed", epoch: 1 });
    // A session still at epoch 0 uploads what would be the next wallet, encrypted with the old password.
    expect(await walletsOf(store).updateWallet(alice.id, 0, walletFor(3, 9))).toEqual({ kind: "revoked" });
    expect(await walletsOf(store).getWallet(alice.id)).toEqual(stored(walletFor(2)));
    expect((await walletsOf(store).updateWallet(alice.id, 1, walletFor(3))).kind).toBe("accepted");
  });
});

describe("a plain password change while a wallet is stored", () => {
  /** Alice at epoch 1 with a wallet, a public key, an API key, an OTP and a resume token. */
  async function aliceWithEverything(): Promise<void> {
    await store.bumpEpoch(alice.id);
    expect((await walletsOf(store).updateWallet(alice.id, 1, walletFor(1))).kind).toBe("accepted");
    await store.addPublicKey(alice.id, bytes32(7), "laptop");
    await store.createApiKey(
      { identityId: alice.id, description: "ci", keyring: [], createdAt: t.time, expiresAt: 0 },
      bytes32,
    );
    await issueAlice(1);
  }

  it("changeVerifier is refused with PERMISSION_DENIED, changing nothing: verifier, epoch, keys, tokens, audit", async () => {
    await aliceWithEverything();
    const before = dumpFile(t.file);
    for (const ctx of [
      {},
      { actor: { identityId: alice.id, epoch: 1 }, audit: entry("credential", "x", alice.id) },
    ]) {
      await expect(store.changeVerifier(alice.id, verifier(50), ctx)).rejects.toEqual(
        rejects(ErrorCode.PERMISSION_DENIED),
      );
    }
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(1), epoch: 1 });
    expect(await store.listApiKeys(alice.id)).toHaveLength(1);
    expect(await store.findResumeToken(bytes32(2), t.time)).toBeDefined();
    expect(await store.listAudit(10)).toEqual([]);
    // Bob holds no wallet: his plain change goes through.
    expect(await store.changeVerifier(bob.id, verifier(60))).toBe(1);
  });

  it("sees a wallet another process stored a moment ago (the check is inside the write, not cached)", async () => {
    const other = t.open();
    expect(await store.changeVerifier(alice.id, verifier(50))).toBe(1);
    expect((await walletsOf(other).updateWallet(alice.id, 1, walletFor(1))).kind).toBe("accepted");
    await expect(store.changeVerifier(alice.id, verifier(51))).rejects.toEqual(
      rejects(ErrorCode.PERMISSION_DENIED),
    );
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(50), epoch: 1 });
  });

  it("a stale login is told REVOKED before anything about the wallet", async () => {
    await aliceWithEverything();
    await expect(
      store.changeVerifier(alice.id, verifier(50), { actor: { identityId: alice.id, epoch: 0 } }),
    ).rejects.toEqual(rejects(ErrorCode.REVOKED));
  });

  it("changePasswordWithWallet still changes it, re-encrypting the wallet and deleting the API keys", async () => {
    await aliceWithEverything();
    const bobsKey = await store.createApiKey(
      { identityId: bob.id, description: "bob's", keyring: [], createdAt: t.time, expiresAt: 0 },
      bytes32,
    );
    expect(await walletsOf(store).changePasswordWithWallet(alice.id, 1, verifier(50), walletFor(2))).toEqual({
      kind: "changed",
      epoch: 2,
      wallet: stored(walletFor(2)),
    });
    expect(await store.findIdentityById(alice.id)).toMatchObject({ verifier: verifier(50), epoch: 2 });
    expect(await store.listApiKeys(alice.id)).toEqual([]);
    expect(await store.findResumeToken(bytes32(2), t.time)).toBeUndefined();
    // Registered device keys are not secrets of the password: they stay.
    expect(await store.findPublicKey(bytes32(7))).toMatchObject({ identityId: alice.id });
    expect(await store.listApiKeys(bob.id)).toEqual([bobsKey]);
  });

  it("changePasswordWithWallet without a wallet deletes the API keys too", async () => {
    await store.createApiKey(
      { identityId: alice.id, description: "ci", keyring: [], createdAt: t.time, expiresAt: 0 },
      bytes32,
    );
    expect(await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), null)).toMatchObject({
      kind: "changed",
      epoch: 1,
    });
    expect(await store.listApiKeys(alice.id)).toEqual([]);
  });

  it("a refused changePasswordWithWallet (revoked, mismatch, conflict) keeps the API keys", async () => {
    await aliceWithEverything();
    const keys = await store.listApiKeys(alice.id);
    const before = dumpFile(t.file);
    expect(
      (await walletsOf(store).changePasswordWithWallet(alice.id, 0, verifier(50), walletFor(2))).kind,
    ).toBe("revoked");
    expect((await walletsOf(store).changePasswordWithWallet(alice.id, 1, verifier(50), null)).kind).toBe(
      "wallet-mismatch",
    );
    expect(
      (await walletsOf(store).changePasswordWithWallet(alice.id, 1, verifier(50), walletFor(3))).kind,
    ).toBe("conflict");
    expect(dumpFile(t.file)).toEqual(before);
    expect(await store.listApiKeys(alice.id)).toEqual(keys);
  });
});

describe("wallet migration", () => {
  it("a version 1 file opened by this code gains the wallets table and keeps its identities", async () => {
    const file = `${t.dir}/v1.db`;
    const raw = new Database(file);
    expect(migrate(raw, MIGRATIONS.slice(0, 1))).toBe(1);
    raw.prepare("INSERT INTO identities (name, created_at) VALUES ('carol', 5)").run();
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'wallets'").get()).toBeUndefined();
    raw.close();

    const upgraded = t.open(file);
    expect(upgraded.inspect().schemaVersion).toBe(LATEST_VERSION);
    expect(LATEST_VERSION).toBe(7);
    const carol = await upgraded.findIdentityByName("carol");
    expect(carol).toMatchObject({ epoch: 0, createdAt: 5, verifier: null });
    expect(await walletsOf(upgraded).getWallet(carol?.id as number)).toBeUndefined();
    expect((await walletsOf(upgraded).updateWallet(carol?.id as number, 0, walletFor(1))).kind).toBe(
      "accepted",
    );
    upgraded.close();
    expect(t.open(file).inspect().schemaVersion).toBe(LATEST_VERSION);
  });
});
