/**
 * Per-user metadata (src/services/router/metadata.ts) at unit level, over the SQLite router store
 * in a temp directory: outcomes, one user's data never reachable through another's session, and
 * notifications to the same user's other sessions only.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import { Metadata, type MetadataOptions } from "../../../src/services/router/metadata.js";
import { DEFAULT_ROLES, rulesOf } from "../../../src/services/router/roles.js";
import { RouterSessionRef } from "../../../src/services/router/session.js";
import { type BrokerStore, type MetadataPrecondition, ROUTER_STORE } from "../../../src/store/index.js";
import { MetadataWatcher } from "../../../src/wire/gen/router.js";
import { rejection } from "../../helpers/errors.js";
import { TempStores } from "../../store/fixtures.js";

const T0 = 1_700_000_000_000;
const NONE: MetadataPrecondition = { kind: "none" };
const v = (version: number): MetadataPrecondition => ({ kind: "version", version });

let t: TempStores;
let store: BrokerStore;
let aliceId: number;
let bobId: number;
let nextSession = 1;

beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  aliceId = (await store.createIdentity({ name: "alice", verifier: null, keyring: [] })).id;
  bobId = (await store.createIdentity({ name: "bob", verifier: null, keyring: [] })).id;
});
afterEach(() => t.cleanup());

function setup(options: Omit<MetadataOptions, "clock"> = {}) {
  const clock = new ManualClock(T0);
  const routerStore = store.repository(ROUTER_STORE);
  if (routerStore === undefined) throw new Error("no router repository");
  return { clock, metadata: new Metadata(routerStore, { clock, ...options }) };
}

function sessionOf(identityId: number, authid: string): RouterSessionRef {
  const id = nextSession++;
  return new RouterSessionRef(
    id,
    identityId,
    authid,
    "frontend",
    rulesOf(DEFAULT_ROLES, "frontend"),
    undefined,
  );
}

interface Heard {
  key: string;
  value: string;
  version: bigint;
  deleted: boolean;
}

function watcher(options: { fail?: boolean } = {}) {
  const heard: Heard[] = [];
  const state = { released: false, calls: 0, missed: [] as number[] };
  const impl = {
    changed: ({
      entry,
      deleted,
    }: {
      entry: { key: string; value: string; version: bigint };
      deleted: boolean;
    }) => {
      state.calls++;
      heard.push({ key: entry.key, value: entry.value, version: entry.version, deleted });
      if (options.fail) throw new Error("watcher broke");
    },
    missed: ({ count }: { count: number }) => {
      state.missed.push(count);
    },
    [Symbol.dispose]: () => {
      state.released = true;
    },
  };
  return { cap: MetadataWatcher.server(impl), heard, state };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

describe("outcomes", () => {
  it("writes with versions, reads, lists sorted and deletes, as the schema's outcomes", async () => {
    const { clock, metadata } = setup();
    const a = sessionOf(aliceId, "alice");
    expect(await metadata.set(a, "theme", '"dark"', NONE)).toEqual({
      ok: { key: "theme", value: '"dark"', version: 1n, updatedAt: BigInt(T0) },
    });
    clock.advance(10);
    expect(await metadata.set(a, "theme", '"light"', v(1))).toEqual({
      ok: { key: "theme", value: '"light"', version: 2n, updatedAt: BigInt(T0 + 10) },
    });
    expect(await metadata.set(a, "theme", '"blue"', v(1))).toEqual({
      conflict: { key: "theme", value: '"light"', version: 2n, updatedAt: BigInt(T0 + 10) },
    });
    await metadata.set(a, "alpha", "[1]", v(0));
    expect((await metadata.list(a)).map((e) => [e.key, e.version])).toEqual([
      ["alpha", 1n],
      ["theme", 2n],
    ]);
    expect(await metadata.get(a, "nope")).toEqual({ key: "nope", value: "", version: 0n, updatedAt: 0n });
    expect(await metadata.delete(a, "theme", v(2))).toEqual({
      ok: { key: "theme", value: '"light"', version: 2n, updatedAt: BigInt(T0 + 10) },
    });
    expect(await metadata.delete(a, "theme", NONE)).toEqual({
      conflict: { key: "theme", value: "", version: 0n, updatedAt: 0n },
    });
  });

  it("answers tooLarge over maxValueBytes and tooMany beyond maxKeys, writing nothing", async () => {
    const { metadata } = setup({ maxValueBytes: 100, maxKeys: 2 });
    const a = sessionOf(aliceId, "alice");
    expect(await metadata.set(a, "big", `"${"x".repeat(99)}"`, NONE)).toEqual({ tooLarge: 100 });
    expect(await metadata.set(a, "big", `"${"é".repeat(50)}"`, NONE)).toEqual({ tooLarge: 100 });
    expect(await metadata.set(a, "fits", `"${"x".repeat(98)}"`, NONE)).toMatchObject({ ok: { version: 1n } });
    await metadata.set(a, "two", "2", NONE);
    expect(await metadata.set(a, "three", "3", NONE)).toEqual({ tooMany: 2 });
    expect((await metadata.list(a)).map((e) => e.key)).toEqual(["fits", "two"]);
  });

  it("keeps to the default limits: 16 KiB values, 256 keys", async () => {
    const { metadata } = setup();
    expect(metadata.maxValueBytes).toBe(16 * 1024);
    expect(metadata.maxKeys).toBe(256);
    const a = sessionOf(aliceId, "alice");
    expect(await metadata.set(a, "k", `"${"x".repeat(16 * 1024 - 1)}"`, NONE)).toEqual({ tooLarge: 16384 });
  });
});

describe("one user's metadata, never another's", () => {
  it("Bob's session can neither read, list, change nor delete Alice's entries", async () => {
    const { metadata } = setup();
    const alice = sessionOf(aliceId, "alice");
    const bob = sessionOf(bobId, "bob");
    await metadata.set(alice, "secret", '"alice"', NONE);
    await metadata.set(alice, "secret", '"alice2"', NONE);
    expect(await metadata.get(bob, "secret")).toMatchObject({ version: 0n, value: "" });
    expect(await metadata.list(bob)).toEqual([]);
    expect(await metadata.delete(bob, "secret", NONE)).toMatchObject({ conflict: { version: 0n } });
    expect(await metadata.delete(bob, "secret", v(2))).toMatchObject({ conflict: { version: 0n } });
    expect(await metadata.set(bob, "secret", '"bob"', v(2))).toMatchObject({ conflict: { version: 0n } });
    expect(await metadata.set(bob, "secret", '"bob"', NONE)).toMatchObject({
      ok: { value: '"bob"', version: 1n },
    });
    expect(await metadata.get(alice, "secret")).toMatchObject({ value: '"alice2"', version: 2n });
    expect((await metadata.list(alice)).map((e) => e.value)).toEqual(['"alice2"']);
  });

  it("shares one user's entries between that user's sessions", async () => {
    const { metadata } = setup();
    const phone = sessionOf(aliceId, "alice");
    const laptop = sessionOf(aliceId, "alice");
    await metadata.set(phone, "k", "1", NONE);
    expect(await metadata.set(laptop, "k", "2", v(1))).toMatchObject({ ok: { version: 2n } });
    expect(await metadata.get(phone, "k")).toMatchObject({ value: "2" });
  });
});

describe("watchers", () => {
  it("tell the user's other sessions of each write and delete, never the writer's own or another user's", async () => {
    const { metadata } = setup();
    const phone = sessionOf(aliceId, "alice");
    const laptop = sessionOf(aliceId, "alice");
    const tablet = sessionOf(aliceId, "alice");
    const bob = sessionOf(bobId, "bob");
    const [wPhone, wLaptop, wTablet, wBob] = [watcher(), watcher(), watcher(), watcher()];
    metadata.watch(phone, wPhone.cap);
    metadata.watch(laptop, wLaptop.cap);
    metadata.watch(tablet, wTablet.cap);
    metadata.watch(bob, wBob.cap);
    await metadata.set(phone, "k", '"v1"', NONE);
    await metadata.delete(phone, "k", v(1));
    await metadata.set(laptop, "j", "1", NONE);
    await settle();
    const expected = [
      { key: "k", value: '"v1"', version: 1n, deleted: false },
      { key: "k", value: '"v1"', version: 1n, deleted: true },
    ];
    expect(wLaptop.heard).toEqual(expected);
    expect(wTablet.heard).toEqual([...expected, { key: "j", value: "1", version: 1n, deleted: false }]);
    expect(wPhone.heard).toEqual([{ key: "j", value: "1", version: 1n, deleted: false }]);
    expect(wBob.heard).toEqual([]);
    await metadata.set(bob, "k", "1", NONE);
    await settle();
    expect(wTablet.heard).toHaveLength(3);
    expect(wBob.heard).toEqual([]);
  });

  it("tell nobody of a refused write: conflict, tooLarge, tooMany, bad input", async () => {
    const { metadata } = setup({ maxKeys: 1, maxValueBytes: 50 });
    const phone = sessionOf(aliceId, "alice");
    const w = watcher();
    metadata.watch(sessionOf(aliceId, "alice"), w.cap);
    await metadata.set(phone, "k", "1", NONE);
    await settle();
    expect(w.heard).toHaveLength(1);
    await metadata.set(phone, "k", "2", v(7));
    await metadata.set(phone, "k", `"${"x".repeat(60)}"`, NONE);
    await metadata.set(phone, "j", "1", NONE);
    await metadata.delete(phone, "absent", NONE);
    await rejection(metadata.set(phone, "k", "{", NONE));
    await settle();
    expect(w.heard).toHaveLength(1);
  });

  it("end on cancel, on release of the Watch and with the session, releasing the watcher", async () => {
    const { metadata } = setup();
    const writer = sessionOf(aliceId, "alice");
    const s1 = sessionOf(aliceId, "alice");
    const s2 = sessionOf(aliceId, "alice");
    const s3 = sessionOf(aliceId, "alice");
    const [w1, w2, w3] = [watcher(), watcher(), watcher()];
    const watch1 = metadata.watch(s1, w1.cap);
    const watch2 = metadata.watch(s2, w2.cap);
    metadata.watch(s3, w3.cap);
    await watch1.cancel();
    watch2.dispose();
    s3.markClosed();
    metadata.closeSession(s3);
    await settle();
    expect([w1, w2, w3].map((w) => w.state.released)).toEqual([true, true, true]);
    expect(metadata.watchCount).toBe(0);
    await metadata.set(writer, "k", "1", NONE);
    await settle();
    expect([...w1.heard, ...w2.heard, ...w3.heard]).toEqual([]);
    expect((await rejection(metadata.get(s3, "k"))).code).toBe(ErrorCode.FAILED);
    const late = watcher();
    expect(() => metadata.watch(s3, late.cap)).toThrow(/has ended/);
    expect(late.state.released).toBe(true);
  });

  it("drop a watcher whose call fails and free its place", async () => {
    const { metadata } = setup({ maxWatchesPerSession: 1 });
    const writer = sessionOf(aliceId, "alice");
    const other = sessionOf(aliceId, "alice");
    const broken = watcher({ fail: true });
    metadata.watch(other, broken.cap);
    await metadata.set(writer, "k", "1", NONE);
    await settle();
    expect(broken.state.released).toBe(true);
    await metadata.set(writer, "k", "2", NONE);
    await settle();
    expect(broken.state.calls).toBe(1);
    const good = watcher();
    metadata.watch(other, good.cap);
    await metadata.set(writer, "k", "3", NONE);
    await settle();
    expect(good.heard.map((h) => h.value)).toEqual(["3"]);
  });

  it("limit watches per session (QUOTA, the refused watcher released) and refuse the same watcher twice", () => {
    const { metadata } = setup();
    const s = sessionOf(aliceId, "alice");
    for (let i = 0; i < 4; i++) metadata.watch(s, watcher().cap);
    const fifth = watcher();
    expect(() => metadata.watch(s, fifth.cap)).toThrow(
      expect.objectContaining({
        code: ErrorCode.QUOTA,
        message: expect.stringMatching(/4 metadata watches/),
      }),
    );
    expect(fifth.state.released).toBe(true);
    const w = watcher();
    const s2 = sessionOf(aliceId, "alice");
    metadata.watch(s2, w.cap.dup());
    expect(() => metadata.watch(s2, w.cap)).toThrow(
      expect.objectContaining({ code: ErrorCode.ALREADY_EXISTS }),
    );
    expect(metadata.watchCount).toBe(5);
    metadata.close();
    expect(metadata.watchCount).toBe(0);
  });
});

describe("hostile input", () => {
  it("refuses bad keys, values and preconditions with BAD_ARGUMENT, changing nothing", async () => {
    const { metadata } = setup();
    const a = sessionOf(aliceId, "alice");
    await metadata.set(a, "kept", "1", NONE);
    const cases: Array<[string, Promise<unknown>, RegExp]> = [
      ["empty key", metadata.set(a, "", "1", NONE), /key is 1\.\.255 characters; got 0/],
      ["long key", metadata.set(a, "k".repeat(256), "1", NONE), /got 256/],
      ["lone surrogate key", metadata.set(a, "\udc00", "1", NONE), /well-formed/],
      ["key not text", metadata.set(a, 7 as unknown as string, "1", NONE), /key must be text/],
      ["not JSON", metadata.set(a, "kept", "{", NONE), /metadata value is not JSON/],
      ["empty value", metadata.set(a, "kept", "", NONE), /not JSON/],
      ["deep JSON", metadata.set(a, "kept", `${"[".repeat(33)}${"]".repeat(33)}`, NONE), /nests 33 deep/],
      ["lone surrogate value", metadata.set(a, "kept", '"\ud800"', NONE), /well-formed/],
      ["value not text", metadata.set(a, "kept", null as unknown as string, NONE), /JSON text/],
      ["bad version", metadata.set(a, "kept", "2", v(-1)), /precondition/],
      [
        "bad precondition",
        metadata.set(a, "kept", "2", null as unknown as MetadataPrecondition),
        /precondition/,
      ],
      ["get empty key", metadata.get(a, ""), /key/],
      ["delete long key", metadata.delete(a, "k".repeat(256), NONE), /key/],
      ["delete bad version", metadata.delete(a, "kept", v(Number.NaN)), /precondition/],
    ];
    for (const [what, p, message] of cases) {
      const err = await rejection(p);
      expect(err.code, what).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message, what).toMatch(message);
    }
    expect(await metadata.list(a)).toEqual([{ key: "kept", value: "1", version: 1n, updatedAt: BigInt(T0) }]);
    // 255 characters, 32 deep: fine.
    expect(await metadata.set(a, "k".repeat(255), `${"[".repeat(32)}${"]".repeat(32)}`, NONE)).toMatchObject({
      ok: { version: 1n },
    });
  });

  it("refuses bad options", () => {
    const routerStore = store.repository(ROUTER_STORE);
    if (routerStore === undefined) throw new Error("no router repository");
    const clock = new ManualClock(T0);
    expect(() => new Metadata(routerStore, { clock, maxKeys: 0 })).toThrow(ParallaxError);
    expect(() => new Metadata(routerStore, { clock, maxValueBytes: -1 })).toThrow(/maxValueBytes/);
  });
});
