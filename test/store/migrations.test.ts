import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { checkMigrations, LATEST_VERSION, MIGRATIONS, migrate } from "../../src/store/migrations.js";
import { SqliteBrokerStore } from "../../src/store/sqlite-store.js";
import { bytes32, dumpFile, KEYRING, TempStores, withRaw } from "./fixtures.js";
import { walletsOf } from "../helpers/stores.js";

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

/** Writes `version` into the closed file's header, where SQLite keeps `user_version` (offset 60). */
function pokeUserVersion(file: string, version: number): void {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(version);
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, header, 0, 4, 60);
  } finally {
    closeSync(fd);
  }
}

describe("store migrations", () => {
  it("numbers the migrations 1, 2, 3, ... so the list can be extended at the end", () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(LATEST_VERSION).toBe(MIGRATIONS.length);
    const broken = [
      { version: 1, description: "a", up: "" },
      { version: 3, description: "gap", up: "" },
    ];
    expect(() => checkMigrations(broken)).toThrow(/entry 1 has version 3/);
  });

  it("brings a fresh file, in a directory it creates, to the latest version", () => {
    const file = path.join(t.dir, "nested", "deeper", "broker.db");
    const store = t.open(file);
    expect(store.inspect().schemaVersion).toBe(LATEST_VERSION);
    expect(existsSync(file)).toBe(true);
  });

  it("reopens a migrated file without changing its version or its data", async () => {
    const first = t.open();
    await first.createIdentity({ name: "alice", verifier: null, keyring: KEYRING });
    first.close();
    const again = t.open();
    expect(again.inspect().schemaVersion).toBe(LATEST_VERSION);
    expect((await again.findIdentityByName("alice"))?.keyring).toHaveLength(3);
    expect(await again.listIdentities()).toHaveLength(1);
  });

  it("refuses with STORAGE a file whose schema is newer than the code", () => {
    t.open().close();
    expect(existsSync(`${t.file}-wal`)).toBe(false);
    pokeUserVersion(t.file, LATEST_VERSION + 1);
    let caught: unknown;
    try {
      t.open();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParallaxError);
    expect((caught as ParallaxError).code).toBe(ErrorCode.STORAGE);
    expect((caught as ParallaxError).message).toContain(`version ${LATEST_VERSION + 1} is newer`);
  });

  it("refuses with STORAGE a file that is not a database", () => {
    const file = path.join(t.dir, "junk.db");
    const fd = openSync(file, "w");
    writeSync(fd, Buffer.alloc(4096, 0x5a));
    closeSync(fd);
    expect(() => t.open(file)).toThrow(expect.objectContaining({ code: ErrorCode.STORAGE }));
  });

  it("opens files in WAL mode with foreign keys on, synchronous FULL and a 5 s busy timeout", () => {
    expect(t.open(t.file, { synchronous: "FULL" }).inspect()).toEqual({
      schemaVersion: LATEST_VERSION,
      journalMode: "wal",
      synchronous: "FULL",
      foreignKeys: true,
      busyTimeoutMs: 5000,
    });
  });

  it("uses synchronous FULL unless NORMAL is asked for", () => {
    const byDefault = SqliteBrokerStore.open(t.file);
    expect(byDefault.inspect().synchronous).toBe("FULL");
    byDefault.close();
    expect(t.open(t.file, { synchronous: "NORMAL" }).inspect().synchronous).toBe("NORMAL");
    expect(() => SqliteBrokerStore.open(t.file, { synchronous: "OFF" as "FULL" })).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }),
    );
  });

  it("keeps an in-memory store private to its instance", async () => {
    const a = t.open(":memory:");
    const b = t.open(":memory:");
    await a.createIdentity({ name: "alice", verifier: null, keyring: [] });
    expect(a.inspect().foreignKeys).toBe(true);
    expect(await a.findIdentityByName("alice")).toBeDefined();
    expect(await b.findIdentityByName("alice")).toBeUndefined();
  });
});

describe("migration 3: folded names, bound device requests, resume-token families", () => {
  const FAR = 1_800_000_000_000;
  const b = (n: number, length = 32) => Buffer.alloc(length, n);

  /** A file at version 2 (as the previous release left it), filled by `fill` on a raw connection. */
  function v2File(fill: (db: Database.Database) => void): string {
    const file = path.join(t.dir, "v2.db");
    const raw = new Database(file);
    try {
      expect(migrate(raw, MIGRATIONS.slice(0, 2))).toBe(2);
      raw.transaction(() => fill(raw))();
    } finally {
      raw.close();
    }
    return file;
  }

  const columnsOf = (file: string, table: string) =>
    withRaw(file, (db) => (db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));

  /** A v2 file with one of everything: identities, credentials, tokens, pending rows, a wallet, audit. */
  function populated(): string {
    return v2File((db) => {
      const ins = (sql: string, ...params: unknown[]) => db.prepare(sql).run(...params);
      ins("INSERT INTO identities (id, name, epoch, created_at) VALUES (1, 'Alice', 3, 5)");
      ins("INSERT INTO identities (id, name, created_at) VALUES (2, 'Straße', 6)");
      ins("INSERT INTO keyrings VALUES (1, 'wallet', 'owner')");
      ins("INSERT INTO public_keys VALUES (?, 1, 'laptop', 7)", b(7));
      ins(
        "INSERT INTO api_keys (id, identity_id, description, secret_hash, created_at, expires_at) VALUES (4, 1, 'ci', ?, 8, 0)",
        b(4),
      );
      ins("INSERT INTO api_key_keyrings VALUES (4, 'wallet', 'owner')");
      ins("INSERT INTO otps VALUES (?, 1, 3, ?)", b(1), FAR);
      ins("INSERT INTO resume_tokens VALUES (?, 1, 3, 'phone', NULL, ?)", b(2), FAR);
      const pending = `INSERT INTO pending (id, kind, username, public_key, device, remote_address, created_at,
        expires_at, state, reason) VALUES (?, ?, ?, ?, 'dev', '192.0.2.1', 9, ?, ?, ?)`;
      ins(pending, 10, "signUp", "Bob", null, FAR, "pending", "");
      ins(pending, 11, "deviceKey", "alice", b(9), FAR, "pending", "");
      ins(pending, 12, "deviceKey", "ALICE", b(8), FAR, "approved", "approved by alice");
      ins(pending, 13, "signUp", "Dave", null, FAR, "rejected", "no");
      ins("INSERT INTO wallets VALUES (1, 2, ?, ?, 11)", b(0x77, 100), b(0x55));
      ins(
        "INSERT INTO audit (at, kind, identity_id, username, remote_address, detail) VALUES (12, 'admin', 1, 'Alice', 'local', 'v2 row')",
      );
    });
  }

  it("keeps every row of a version 2 file and fills the name keys", async () => {
    const file = populated();
    const store = t.open(file);
    expect(store.inspect().schemaVersion).toBe(LATEST_VERSION);

    const alice = await store.findIdentityByName("ALICE");
    expect(alice).toMatchObject({ id: 1, name: "Alice", epoch: 3, createdAt: 5, keyring: [KEYRING[0]] });
    expect(await store.findIdentityByName("strasse")).toMatchObject({ id: 2, name: "Straße" });
    expect(await store.findPublicKey(bytes32(7))).toMatchObject({
      identityId: 1,
      device: "laptop",
      addedAt: 7,
    });
    expect(await store.findApiKey(4)).toMatchObject({
      identityId: 1,
      description: "ci",
      keyring: [KEYRING[0]],
    });
    expect(await walletsOf(store).getWallet(1)).toMatchObject({
      sequence: 2,
      encryptedWallet: new Uint8Array(b(0x77, 100)),
    });
    expect((await store.listAudit(10)).map((a) => a.detail)).toEqual(["v2 row"]);
    expect(await store.consumeOtp(1, bytes32(1), t.time)).toBe(true);
    expect(
      withRaw(file, (db) => db.prepare("SELECT name, name_key FROM identities ORDER BY id").raw().all()),
    ).toEqual([
      ["Alice", "alice"],
      ["Straße", "strasse"],
    ]);
    expect(
      withRaw(file, (db) => db.prepare("SELECT username, name_key FROM pending ORDER BY id").raw().all()),
    ).toEqual([
      ["Bob", "bob"],
      ["alice", "alice"],
      ["ALICE", "alice"],
      ["Dave", "dave"],
    ]);
    // The folded key is unique now: another spelling of a migrated name is taken.
    await expect(store.createIdentity({ name: "alice", verifier: null, keyring: [] })).rejects.toEqual(
      expect.objectContaining({ code: ErrorCode.ALREADY_EXISTS }),
    );
  });

  it("makes each old resume token the first of its own family, which rotates and catches a replay", async () => {
    const store = t.open(populated());
    const token = await store.findResumeToken(bytes32(2), t.time);
    expect(token).toEqual({
      identityId: 1,
      tokenHash: bytes32(2),
      family: bytes32(2),
      epoch: 3,
      device: "phone",
      keyring: null,
      expiresAt: FAR,
    });
    expect(await store.rotateResumeToken(bytes32(2), bytes32(3), t.time)).toMatchObject({
      kind: "rotated",
      token: { tokenHash: bytes32(3), family: bytes32(2) },
    });
    expect((await store.rotateResumeToken(bytes32(2), bytes32(4), t.time))?.kind).toBe("reused");
    expect(await store.findResumeToken(bytes32(3), t.time)).toBeUndefined();
  });

  it("rejects the device requests still pending (bound to no owner), and keeps decided rows and sign-ups", async () => {
    const store = t.open(populated());
    expect(await store.findPending(11)).toMatchObject({
      kind: "deviceKey",
      state: "rejected",
      identityId: null,
      reason: "expired when Parallax began binding device requests to their owner",
    });
    await expect(store.decidePending(11, true, "ok", [])).rejects.toEqual(
      expect.objectContaining({ code: ErrorCode.NOT_FOUND }),
    );
    expect(await store.findPublicKey(bytes32(9))).toBeUndefined();
    expect(await store.listDeviceRequests(1, t.time)).toEqual([]);
    expect(await store.findPending(12)).toMatchObject({
      state: "approved",
      reason: "approved by alice",
      identityId: null,
    });
    expect(await store.findPending(13)).toMatchObject({ state: "rejected", reason: "no" });

    // The pending sign-up still holds its name under every spelling, and can be approved.
    expect((await store.listPending(t.time, "BOB")).map((r) => r.id)).toEqual([10]);
    await expect(store.createIdentity({ name: "bob", verifier: null, keyring: [] })).rejects.toEqual(
      expect.objectContaining({ code: ErrorCode.ALREADY_EXISTS }),
    );
    expect((await store.decidePending(10, true, "ok", [])).identity).toMatchObject({ name: "Bob" });
  });

  it("fails with STORAGE on a version 2 file holding two spellings of one name, leaving it at version 2 untouched", async () => {
    const file = v2File((db) => {
      db.prepare(
        "INSERT INTO identities (name, created_at) VALUES ('Alice', 1), ('alice', 2), ('bob', 3)",
      ).run();
      db.prepare(
        "INSERT INTO pending (kind, username, public_key, device, remote_address, created_at, expires_at) VALUES ('deviceKey', 'bob', ?, '', '', 1, ?)",
      ).run(b(9), FAR);
      db.prepare("INSERT INTO resume_tokens VALUES (?, 3, 0, 'phone', NULL, ?)").run(b(2), FAR);
    });
    const before = dumpFile(file);
    for (let attempt = 0; attempt < 2; attempt++) {
      let caught: unknown;
      try {
        t.open(file);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ParallaxError);
      expect((caught as ParallaxError).code).toBe(ErrorCode.STORAGE);
      expect(dumpFile(file)).toEqual(before);
    }
    expect(before.user_version).toEqual(["2"]);
    expect(columnsOf(file, "identities")).not.toContain("name_key");
    expect(columnsOf(file, "pending")).not.toContain("identity_id");
    expect(columnsOf(file, "resume_tokens")).not.toContain("family");

    // Renamed with an older Parallax (here: by hand), the file migrates.
    withRaw(file, (db) => db.prepare("UPDATE identities SET name = 'alice2' WHERE name = 'alice'").run());
    const store = t.open(file);
    expect(store.inspect().schemaVersion).toBe(LATEST_VERSION);
    expect((await store.findIdentityByName("ALICE"))?.name).toBe("Alice");
    expect(await store.findPending(1)).toMatchObject({ state: "rejected" });
  });
});
