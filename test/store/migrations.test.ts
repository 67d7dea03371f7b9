import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { checkMigrations, LATEST_VERSION, MIGRATIONS } from "../../src/store/migrations.js";
import { SqliteBrokerStore } from "../../src/store/sqlite-store.js";
import { KEYRING, TempStores } from "./fixtures.js";

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
