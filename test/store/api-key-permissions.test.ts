/**
 * API keys' URI permissions in the SQLite store (`api_key_permissions`, migration 6): written
 * with the key in one transaction, read back in the order given by `findApiKey` and
 * `listApiKeys` after the file is reopened, refused whole when one is malformed, deleted with
 * the key by every path that deletes keys, and a corrupt row reads as STORAGE, never as a rule.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { ApiKeyUriRule } from "../../src/store/broker-store.js";
import type { BrokerStore, IdentityRecord } from "../../src/store/index.js";
import { bytes32, dumpFile, KEYRING, TempStores, verifier, withRaw } from "./fixtures.js";

let t: TempStores;
let store: BrokerStore;
let alice: IdentityRecord;
let bob: IdentityRecord;
beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  alice = await store.createIdentity({ name: "alice", verifier: verifier(1), keyring: KEYRING });
  bob = await store.createIdentity({ name: "bob", verifier: verifier(2), keyring: KEYRING });
});
afterEach(() => t.cleanup());

const rule = (uri: string, match: ApiKeyUriRule["match"], letters: string): ApiKeyUriRule => ({
  uri,
  match,
  call: letters.includes("c"),
  register: letters.includes("r"),
  publish: letters.includes("p"),
  subscribe: letters.includes("s"),
});

/** Deliberately not sorted by URI or match: the store keeps the order given. */
const RULES: readonly ApiKeyUriRule[] = [
  rule("com.zeta", "exact", "c"),
  rule("com.alpha", "prefix", "rs"),
  rule("com..events", "wildcard", "p"),
  rule("", "prefix", "s"),
  rule("com.alpha.admin", "exact", "crps"),
];

const init = (identityId: number, permissions: readonly ApiKeyUriRule[] = RULES, expiresAt = 0) => ({
  identityId,
  description: "scoped",
  keyring: [KEYRING[0]].filter((p) => p !== undefined),
  permissions,
  createdAt: t.time,
  expiresAt,
});

/** The permission rows of `apiKeyId` as stored, by a connection of its own. */
const rowsOf = (apiKeyId: number) =>
  withRaw(t.file, (db) =>
    db
      .prepare<[number], { position: number; uri: string; match: string; perms: string }>(
        "SELECT position, uri, match, perms FROM api_key_permissions WHERE api_key_id = ? ORDER BY position",
      )
      .all(apiKeyId),
  );
const allRows = () =>
  withRaw(
    t.file,
    (db) => db.prepare<[], { n: number }>("SELECT count(*) AS n FROM api_key_permissions").get()?.n ?? -1,
  );

describe("API key permissions", () => {
  it("are stored as Nexus letters in the order given and survive closing and reopening the file", async () => {
    const key = await store.createApiKey(init(alice.id), bytes32);
    const plain = await store.createApiKey(init(alice.id, []), bytes32);
    expect(key.permissions).toEqual(RULES);
    expect(plain.permissions).toEqual([]);
    expect(rowsOf(key.id)).toEqual([
      { position: 0, uri: "com.zeta", match: "exact", perms: "c" },
      { position: 1, uri: "com.alpha", match: "prefix", perms: "rs" },
      { position: 2, uri: "com..events", match: "wildcard", perms: "p" },
      { position: 3, uri: "", match: "prefix", perms: "s" },
      { position: 4, uri: "com.alpha.admin", match: "exact", perms: "crps" },
    ]);

    (store as { close(): void }).close();
    const reopened = t.open();
    expect((await reopened.findApiKey(key.id))?.permissions).toEqual(RULES);
    expect((await reopened.listApiKeys(alice.id)).map((k) => [k.id, k.permissions])).toEqual([
      [key.id, RULES],
      [plain.id, []],
    ]);
    expect(await reopened.findApiKey(key.id)).toEqual(key);
  });

  it("listApiKeys gives each key its own permissions, and another identity's stay apart", async () => {
    const first = await store.createApiKey(init(alice.id, [rule("a", "exact", "c")]), bytes32);
    const second = await store.createApiKey(
      init(alice.id, [rule("b", "prefix", "s"), rule("c", "exact", "p")]),
      bytes32,
    );
    const bobs = await store.createApiKey(init(bob.id, [rule("bob", "prefix", "crps")]), bytes32);
    expect((await store.listApiKeys(alice.id)).map((k) => k.permissions)).toEqual([
      [rule("a", "exact", "c")],
      [rule("b", "prefix", "s"), rule("c", "exact", "p")],
    ]);
    expect(await store.listApiKeys(bob.id)).toEqual([bobs]);
    expect((await store.listApiKeys(alice.id)).map((k) => k.id)).toEqual([first.id, second.id]);
  });

  it("a malformed permission after good ones refuses the whole key and changes nothing in the file", async () => {
    await store.createApiKey(init(alice.id), bytes32);
    const before = dumpFile(t.file);
    const bad: [unknown, string][] = [
      [{ ...rule("x", "exact", "c"), match: "glob" }, `match must be exact, prefix or wildcard, not "glob"`],
      [rule("x", "exact", ""), `permission 1 on "x" grants no action`],
      [{ ...rule("x", "exact", "c"), subscribe: 1 }, "subscribe must be true or false"],
      [rule("x".repeat(256), "prefix", "c"), "at most 255 characters"],
      [rule("com.zeta", "exact", "s"), `permission 1 repeats the exact pattern "com.zeta"`],
    ];
    for (const [second, message] of bad) {
      const permissions = [rule("com.zeta", "exact", "c"), second as ApiKeyUriRule];
      let asked = false;
      await expect(
        store.createApiKey(init(alice.id, permissions), (id) => {
          asked = true;
          return bytes32(id);
        }),
      ).rejects.toEqual(
        expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT, message: expect.stringContaining(message) }),
      );
      expect(asked).toBe(false);
    }
    expect(dumpFile(t.file)).toEqual(before);
  });

  it("the file refuses letters other than c, r, p and s, and matches other than the three", () => {
    withRaw(t.file, (db) => {
      const id = Number(
        db
          .prepare(
            "INSERT INTO api_keys (identity_id, description, secret_hash, created_at, expires_at) VALUES (?, 'raw', X'01', 0, 0)",
          )
          .run(alice.id).lastInsertRowid,
      );
      const insert = db.prepare(
        "INSERT INTO api_key_permissions (api_key_id, position, uri, match, perms) VALUES (?, ?, ?, ?, ?)",
      );
      expect(() => insert.run(id, 0, "a", "exact", "cx")).toThrow(/CHECK constraint failed/);
      expect(() => insert.run(id, 0, "a", "regex", "c")).toThrow(/CHECK constraint failed/);
      expect(() => insert.run(id, -1, "a", "exact", "c")).toThrow(/CHECK constraint failed/);
    });
    expect(allRows()).toBe(0);
  });

  it("a stored row that grants nothing reads as STORAGE, not as a rule", async () => {
    const key = await store.createApiKey(init(alice.id, [rule("a", "exact", "c")]), bytes32);
    withRaw(t.file, (db) =>
      db.prepare("UPDATE api_key_permissions SET perms = '' WHERE api_key_id = ?").run(key.id),
    );
    const corrupt = expect.objectContaining({
      code: ErrorCode.STORAGE,
      message: `API key ${key.id}'s stored permission 0 is corrupt`,
    });
    await expect(store.findApiKey(key.id)).rejects.toEqual(corrupt);
    await expect(store.listApiKeys(alice.id)).rejects.toEqual(corrupt);
  });

  describe("go with the key", () => {
    it("when it is revoked (another key's stay)", async () => {
      const key = await store.createApiKey(init(alice.id), bytes32);
      const other = await store.createApiKey(init(alice.id, [rule("b", "exact", "c")]), bytes32);
      expect(await store.revokeApiKey(alice.id, key.id)).toBe(1);
      expect(rowsOf(key.id)).toEqual([]);
      expect(rowsOf(other.id)).toHaveLength(1);
      expect(allRows()).toBe(1);
    });

    it("when the password changes (bob's stay)", async () => {
      const key = await store.createApiKey(init(alice.id), bytes32);
      const bobs = await store.createApiKey(init(bob.id), bytes32);
      await store.changeVerifier(alice.id, verifier(9));
      expect(rowsOf(key.id)).toEqual([]);
      expect(await store.findApiKey(key.id)).toBeUndefined();
      expect(rowsOf(bobs.id)).toHaveLength(RULES.length);
    });

    it("when the account logs out everywhere or is suspended", async () => {
      const one = await store.createApiKey(init(alice.id), bytes32);
      await store.bumpEpoch(alice.id);
      expect(rowsOf(one.id)).toEqual([]);
      const two = await store.createApiKey(init(alice.id), bytes32);
      await store.setSuspended(alice.id, true);
      expect(rowsOf(two.id)).toEqual([]);
      expect(allRows()).toBe(0);
    });

    it("when it expires and is purged", async () => {
      const key = await store.createApiKey(init(alice.id, RULES, t.time + 1000), bytes32);
      const forever = await store.createApiKey(init(alice.id, [rule("b", "exact", "c")]), bytes32);
      t.time += 1000;
      expect((await store.purgeExpired(t.time)).apiKeys).toBe(1);
      expect(rowsOf(key.id)).toEqual([]);
      expect(rowsOf(forever.id)).toHaveLength(1);
    });
  });
});
