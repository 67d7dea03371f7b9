import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import type { SqliteBrokerStore } from "../../src/store/index.js";
import { entry, TempStores } from "./fixtures.js";

let t: TempStores;
let store: SqliteBrokerStore;
beforeEach(() => {
  t = new TempStores();
  store = t.open();
});
afterEach(() => t.cleanup());

const rejects = (code: string) => expect.objectContaining({ code });

describe("audit log", () => {
  it("group-commits rows written in one turn, and one bad row does not lose the others", async () => {
    const bad = { ...entry("login", "bad"), username: null as unknown as string };
    const results = await Promise.allSettled([
      store.audit(entry("login", "one")),
      store.audit(bad),
      store.audit(entry("login", "two")),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await store.listAudit(10)).map((r) => r.detail).sort()).toEqual(["one", "two"]);
  });

  it("shows queued rows to a read in the same turn, and keeps them across close", async () => {
    void store.audit(entry("login", "queued"));
    expect((await store.listAudit(1))[0]?.detail).toBe("queued");
    void store.audit(entry("login", "at close"));
    store.close();
    const again = t.open();
    expect((await again.listAudit(1))[0]?.detail).toBe("at close");
  });

  it("returns rows newest first, stamped with the clock unless the entry has a time", async () => {
    await store.audit(entry("login", "first", 1));
    t.time += 5;
    await store.audit(entry("login-failed", "second"));
    await store.audit({ ...entry("admin", "third"), at: 12 });
    expect(await store.listAudit(10)).toEqual([
      { id: 3, ...entry("admin", "third"), at: 12 },
      { id: 2, ...entry("login-failed", "second"), at: t.time },
      { id: 1, ...entry("login", "first", 1), at: t.time - 5 },
    ]);
  });

  it("returns at most `limit` rows, the newest", async () => {
    for (const d of ["a", "b", "c", "d"]) await store.audit(entry("login", d));
    expect((await store.listAudit(2)).map((r) => r.detail)).toEqual(["d", "c"]);
    expect(await store.listAudit(0)).toEqual([]);
    await expect(store.listAudit(-1)).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
    await expect(store.listAudit(1.5)).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT));
  });
});

describe("server secret", () => {
  it("is 32 random bytes made once and kept across reopening and other instances", async () => {
    const secret = await store.serverSecret();
    expect(secret).toBeInstanceOf(Uint8Array);
    expect(secret).toHaveLength(32);
    expect(secret.some((b) => b !== 0)).toBe(true);
    expect(await store.serverSecret()).toEqual(secret);
    expect(await t.open().serverSecret()).toEqual(secret);
    store.close();
    expect(await t.open().serverSecret()).toEqual(secret);
  });

  it("differs between stores", async () => {
    const other = t.open(`${t.dir}/other.db`);
    expect(await other.serverSecret()).not.toEqual(await store.serverSecret());
  });
});

describe("externalChanges", () => {
  it("changes after another instance commits to the file, not after our own commits", async () => {
    const other = t.open();
    const start = store.externalChanges();
    await store.audit(entry("admin", "ours"));
    expect(store.externalChanges()).toBe(start);

    await other.audit(entry("admin", "theirs"));
    const afterTheirs = store.externalChanges();
    expect(afterTheirs).not.toBe(start);
    expect(store.externalChanges()).toBe(afterTheirs);
  });
});

describe("a closed store", () => {
  it("fails every call with STORAGE, and closing again is harmless", async () => {
    store.close();
    store.close();
    await expect(store.findIdentityByName("alice")).rejects.toEqual(rejects(ErrorCode.STORAGE));
    await expect(store.audit(entry("admin", "x"))).rejects.toEqual(rejects(ErrorCode.STORAGE));
    expect(() => store.externalChanges()).toThrow(expect.objectContaining({ code: ErrorCode.STORAGE }));
  });
});
