/**
 * The router's store (`ROUTER_STORE`, sqlite/router.ts) on an SQLite file in a temp directory:
 * roles and their epoch bump, metadata compare-and-set, versions, quotas, deletes, reopening,
 * and two connections (two processes) racing on one version.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import {
  type BrokerStore,
  type MetadataPrecondition,
  ROUTER_STORE,
  type RouterStore,
} from "../../src/store/index.js";
import { dumpFile, entry, TempStores } from "./fixtures.js";

const root = path.resolve(import.meta.dirname, "../..");
const racerScript = path.join(import.meta.dirname, "router-racer.ts");

const NONE: MetadataPrecondition = { kind: "none" };
const v = (version: number): MetadataPrecondition => ({ kind: "version", version });
const rejects = (code: string, message?: RegExp) =>
  expect.objectContaining({ code, ...(message ? { message: expect.stringMatching(message) } : {}) });

let t: TempStores;
let store: BrokerStore;
let router: RouterStore;
let alice: number;
let bob: number;

function routerOf(s: BrokerStore): RouterStore {
  const r = s.repository(ROUTER_STORE);
  if (r === undefined) throw new Error("this store has no router repository");
  return r;
}

beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  router = routerOf(store);
  alice = (await store.createIdentity({ name: "alice", verifier: null, keyring: [] })).id;
  bob = (await store.createIdentity({ name: "bob", verifier: null, keyring: [] })).id;
});
afterEach(() => t.cleanup());

const limits = (maxKeys = 256, now = 1000) => ({ maxKeys, now });

describe("roles", () => {
  it("has no role for a new identity, stores one and bumps the epoch in the same commit", async () => {
    expect(await router.roleOf(alice)).toBeUndefined();
    const audit = { ...entry("admin", "role backend", alice), at: 7 };
    expect(await router.setRole(alice, "backend", { audit })).toBe(1);
    expect(await router.roleOf(alice)).toBe("backend");
    expect((await store.findIdentityById(alice))?.epoch).toBe(1);
    expect(await store.listAudit(10)).toEqual([expect.objectContaining({ ...audit })]);
    // Another connection on the file sees both.
    const other = t.open();
    expect(await routerOf(other).roleOf(alice)).toBe("backend");
    expect((await other.findIdentityById(alice))?.epoch).toBe(1);
    // Bob is untouched.
    expect(await router.roleOf(bob)).toBeUndefined();
    expect((await store.findIdentityById(bob))?.epoch).toBe(0);
  });

  it("changes and clears a role, each time with one more epoch", async () => {
    await router.setRole(alice, "backend");
    expect(await router.setRole(alice, "trust")).toBe(2);
    expect(await router.roleOf(alice)).toBe("trust");
    expect(await router.clearRole(alice)).toBe(3);
    expect(await router.roleOf(alice)).toBeUndefined();
    expect((await store.findIdentityById(alice))?.epoch).toBe(3);
  });

  it("rolls the role back with the epoch when the audit row fails", async () => {
    const before = dumpFile(t.file);
    const badAudit = { ...entry("admin", "x", alice), username: null as unknown as string };
    await expect(router.setRole(alice, "backend", { audit: badAudit })).rejects.toEqual(
      rejects(ErrorCode.STORAGE),
    );
    expect(await router.roleOf(alice)).toBeUndefined();
    expect((await store.findIdentityById(alice))?.epoch).toBe(0);
    expect(dumpFile(t.file)).toEqual(before);
  });

  it("refuses malformed role names, unknown identities and stale actors, changing nothing", async () => {
    const before = dumpFile(t.file);
    for (const bad of ["", "Backend", "a b", "x".repeat(65), "ro.le", 7 as unknown as string]) {
      await expect(router.setRole(alice, bad)).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, /role name/));
    }
    await expect(router.setRole(9999, "backend")).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(router.clearRole(9999)).rejects.toEqual(rejects(ErrorCode.NOT_FOUND));
    await expect(router.setRole(alice, "backend", { actor: { identityId: bob, epoch: 5 } })).rejects.toEqual(
      rejects(ErrorCode.REVOKED),
    );
    expect(dumpFile(t.file)).toEqual(before);
    expect(await router.setRole(alice, "x".repeat(64))).toBe(1);
  });
});

describe("metadata compare-and-set", () => {
  it("starts a key at version 1 and adds 1 per write, stamped with the write's time", async () => {
    const r1 = await router.metadataSet(alice, "theme", '"dark"', NONE, limits(256, 1000));
    expect(r1).toEqual({ kind: "ok", entry: { key: "theme", value: '"dark"', version: 1, updatedAt: 1000 } });
    const r2 = await router.metadataSet(alice, "theme", '"light"', v(1), limits(256, 2000));
    expect(r2).toEqual({
      kind: "ok",
      entry: { key: "theme", value: '"light"', version: 2, updatedAt: 2000 },
    });
    const r3 = await router.metadataSet(alice, "theme", "{}", NONE, limits(256, 3000));
    expect(r3.kind === "ok" && r3.entry.version).toBe(3);
    expect(await router.metadataGet(alice, "theme")).toEqual({
      key: "theme",
      value: "{}",
      version: 3,
      updatedAt: 3000,
    });
  });

  it("answers conflict with the current entry for a stale version, and writes nothing", async () => {
    await router.metadataSet(alice, "k", "1", NONE, limits());
    await router.metadataSet(alice, "k", "2", NONE, limits());
    const before = dumpFile(t.file);
    expect(await router.metadataSet(alice, "k", "3", v(1), limits())).toEqual({
      kind: "conflict",
      current: { key: "k", value: "2", version: 2, updatedAt: 1000 },
    });
    expect(await router.metadataSet(alice, "k", "3", v(0), limits())).toMatchObject({
      kind: "conflict",
      current: { version: 2 },
    });
    expect(dumpFile(t.file)).toEqual(before);
  });

  it("writes an absent key only with version 0 or none; another version is a conflict at version 0", async () => {
    expect(await router.metadataSet(alice, "a", "1", v(3), limits())).toEqual({
      kind: "conflict",
      current: { key: "a", value: "", version: 0, updatedAt: 0 },
    });
    expect(await router.metadataGet(alice, "a")).toBeUndefined();
    expect(await router.metadataSet(alice, "a", "1", v(0), limits())).toMatchObject({
      kind: "ok",
      entry: { version: 1 },
    });
  });

  it("refuses a new key beyond maxKeys (tooMany) but rewrites an existing one", async () => {
    await router.metadataSet(alice, "a", "1", NONE, limits(2));
    await router.metadataSet(alice, "b", "1", NONE, limits(2));
    expect(await router.metadataSet(alice, "c", "1", NONE, limits(2))).toEqual({ kind: "tooMany", max: 2 });
    expect(await router.metadataGet(alice, "c")).toBeUndefined();
    expect(await router.metadataSet(alice, "a", "2", v(1), limits(2))).toMatchObject({
      kind: "ok",
      entry: { version: 2 },
    });
    // A stale precondition on a new key is a conflict, checked before the count.
    expect(await router.metadataSet(alice, "c", "1", v(4), limits(2))).toMatchObject({ kind: "conflict" });
    // The count is per user.
    expect(await router.metadataSet(bob, "c", "1", NONE, limits(2))).toMatchObject({ kind: "ok" });
    await router.metadataDelete(alice, "b", NONE);
    expect(await router.metadataSet(alice, "c", "1", NONE, limits(2))).toMatchObject({ kind: "ok" });
  });

  it("deletes with a precondition, answering the entry as it was; a key written again starts at 1", async () => {
    await router.metadataSet(alice, "k", "1", NONE, limits());
    await router.metadataSet(alice, "k", "2", NONE, limits());
    expect(await router.metadataDelete(alice, "k", v(1))).toMatchObject({
      kind: "conflict",
      current: { version: 2 },
    });
    expect(await router.metadataGet(alice, "k")).toMatchObject({ version: 2 });
    expect(await router.metadataDelete(alice, "k", v(2))).toEqual({
      kind: "ok",
      entry: { key: "k", value: "2", version: 2, updatedAt: 1000 },
    });
    expect(await router.metadataGet(alice, "k")).toBeUndefined();
    expect(await router.metadataDelete(alice, "k", NONE)).toEqual({
      kind: "conflict",
      current: { key: "k", value: "", version: 0, updatedAt: 0 },
    });
    expect(await router.metadataDelete(alice, "k", v(0))).toMatchObject({
      kind: "conflict",
      current: { version: 0 },
    });
    expect(await router.metadataSet(alice, "k", "3", NONE, limits())).toMatchObject({
      kind: "ok",
      entry: { version: 1 },
    });
  });

  it("lists a user's entries sorted by key, never another user's", async () => {
    for (const k of ["b", "a", "c"]) await router.metadataSet(alice, k, `"${k}"`, NONE, limits());
    await router.metadataSet(bob, "secret", '"bob"', NONE, limits());
    expect((await router.metadataList(alice)).map((e) => e.key)).toEqual(["a", "b", "c"]);
    expect((await router.metadataList(bob)).map((e) => e.key)).toEqual(["secret"]);
    expect(await router.metadataGet(alice, "secret")).toBeUndefined();
    expect(await router.metadataDelete(alice, "secret", NONE)).toMatchObject({
      kind: "conflict",
      current: { version: 0 },
    });
    expect(await router.metadataGet(bob, "secret")).toMatchObject({ version: 1 });
  });

  it("counts a key's length in characters as the table does: 255 astral characters are fine, 256 are not", async () => {
    const long = "😀".repeat(255);
    expect(await router.metadataSet(alice, long, "1", NONE, limits())).toMatchObject({ kind: "ok" });
    await expect(router.metadataSet(alice, `${long}x`, "1", NONE, limits())).rejects.toEqual(
      rejects(ErrorCode.BAD_ARGUMENT, /1\.\.255 characters; got 256/),
    );
  });

  it("refuses malformed arguments with BAD_ARGUMENT and an unknown identity with NOT_FOUND, changing nothing", async () => {
    await router.metadataSet(alice, "k", "1", NONE, limits());
    const before = dumpFile(t.file);
    const cases: Array<[string, Promise<unknown>, RegExp]> = [
      ["empty key", router.metadataSet(alice, "", "1", NONE, limits()), /key is 1\.\.255/],
      ["long key", router.metadataSet(alice, "k".repeat(256), "1", NONE, limits()), /key is 1\.\.255/],
      ["lone surrogate key", router.metadataSet(alice, "a\ud800", "1", NONE, limits()), /well-formed/],
      ["not JSON", router.metadataSet(alice, "k", "{", NONE, limits()), /JSON/],
      ["empty value", router.metadataSet(alice, "k", "", NONE, limits()), /JSON/],
      ["lone surrogate value", router.metadataSet(alice, "k", '"\ud800"', NONE, limits()), /well-formed/],
      ["huge value", router.metadataSet(alice, "k", `"${"x".repeat(1024 * 1024)}"`, NONE, limits()), /bytes/],
      ["negative version", router.metadataSet(alice, "k", "1", v(-1), limits()), /precondition/],
      ["fractional version", router.metadataSet(alice, "k", "1", v(1.5), limits()), /precondition/],
      [
        "unknown precondition",
        router.metadataSet(alice, "k", "1", { kind: "maybe" } as unknown as MetadataPrecondition, limits()),
        /precondition/,
      ],
      ["maxKeys 0", router.metadataSet(alice, "k", "1", NONE, limits(0)), /maxKeys/],
      ["delete empty key", router.metadataDelete(alice, "", NONE), /key/],
      ["get empty key", router.metadataGet(alice, ""), /key/],
    ];
    for (const [what, p, message] of cases) {
      await expect(p, what).rejects.toEqual(rejects(ErrorCode.BAD_ARGUMENT, message));
    }
    await expect(router.metadataSet(9999, "k", "1", NONE, limits())).rejects.toEqual(
      rejects(ErrorCode.NOT_FOUND),
    );
    expect(dumpFile(t.file)).toEqual(before);
  });

  it("keeps entries, versions and roles across a close and reopen", async () => {
    await router.metadataSet(alice, "k", '{"a":[1,2]}', NONE, limits(256, 5));
    await router.metadataSet(alice, "k", '{"a":[1,2,3]}', NONE, limits(256, 6));
    await router.setRole(alice, "backend");
    store.close();
    const reopened = routerOf(t.open());
    expect(await reopened.metadataGet(alice, "k")).toEqual({
      key: "k",
      value: '{"a":[1,2,3]}',
      version: 2,
      updatedAt: 6,
    });
    expect(await reopened.roleOf(alice)).toBe("backend");
    expect(await reopened.metadataSet(alice, "k", "0", v(2), limits())).toMatchObject({
      kind: "ok",
      entry: { version: 3 },
    });
  });
});

describe("two connections on one file", () => {
  it("two store instances writing against the same version: the second sees the first's write and conflicts", async () => {
    const a = router;
    const b = routerOf(t.open());
    await a.metadataSet(alice, "k", '"base"', NONE, limits());
    const [ra, rb] = await Promise.all([
      a.metadataSet(alice, "k", '"a"', v(1), limits()),
      b.metadataSet(alice, "k", '"b"', v(1), limits()),
    ]);
    const outcomes = [ra.kind, rb.kind].sort();
    expect(outcomes).toEqual(["conflict", "ok"]);
    const winner = ra.kind === "ok" ? '"a"' : '"b"';
    expect(await b.metadataGet(alice, "k")).toMatchObject({ value: winner, version: 2 });
    expect(await a.metadataGet(alice, "k")).toMatchObject({ value: winner, version: 2 });
  });

  it("two processes racing over the same versions: exactly one write lands per key", async () => {
    const KEYS = 300;
    const racer = (await store.createIdentity({ name: "racer", verifier: null, keyring: [] })).id;
    for (let i = 0; i < KEYS; i++) await router.metadataSet(racer, `k${i}`, '"base"', NONE, limits(100_000));
    const racers = ["a", "b"].map((tag) => startRacer([t.file, String(KEYS), tag]));
    await Promise.all(racers.map((r) => r.printed("ready")));
    for (const r of racers) r.child.stdin.write("go\n");
    await Promise.all(racers.map((r) => r.printed("done")));

    const [wonA, wonB] = racers.map((r) => r.won);
    expect([...(wonA ?? []), ...(wonB ?? [])].sort((x, y) => x - y)).toEqual([...Array(KEYS).keys()]);
    const listed = await router.metadataList(racer);
    expect(listed).toHaveLength(KEYS);
    for (const e of listed) {
      expect(e.version, e.key).toBe(2);
      const i = Number(e.key.slice(1));
      expect(e.value, e.key).toBe(wonA?.includes(i) ? '"a"' : '"b"');
    }
  }, 60_000);
});

function startRacer(args: readonly string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", racerScript, ...args], { cwd: root });
  const won: number[] = [];
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      const m = /^won (\d+)$/.exec(line);
      if (m) won.push(Number(m[1]));
      seen.add(line);
      waiters.get(line)?.();
    }
  });
  const exited = once(child, "exit");
  const printed = (line: string): Promise<void> =>
    seen.has(line)
      ? Promise.resolve()
      : Promise.race([
          new Promise<void>((resolve) => waiters.set(line, resolve)),
          exited.then(([code]) => {
            if (!seen.has(line)) throw new Error(`racer exited (${code}) before "${line}": ${stderr}`);
          }),
        ]);
  return { child, won, printed };
}
