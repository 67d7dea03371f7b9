/**
 * Rosters (src/services/router/rosters.ts) at unit level: sessions are `RouterSessionRef`s with
 * the default roles, watchers local `RosterWatcher` servers, time a ManualClock.
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import { ruleFromLetters } from "../../../src/login/uri-permissions.js";
import { DEFAULT_ROLES, rulesOf } from "../../../src/services/router/roles.js";
import { type RostersOptions, Rosters } from "../../../src/services/router/rosters.js";
import { RouterSessionRef } from "../../../src/services/router/session.js";
import { type RosterChange$Shape, RosterWatcher } from "../../../src/wire/gen/router.js";

const T0 = 1_700_000_000_000;
const ROSTER = "roster.example.services";

let nextSession = 100;
function session(
  authid: string,
  role: string,
  keyRules?: ReturnType<typeof ruleFromLetters>[],
): RouterSessionRef {
  const id = nextSession++;
  return new RouterSessionRef(id, id * 10, authid, role, rulesOf(DEFAULT_ROLES, role), keyRules);
}

function setup(options: Omit<RostersOptions, "clock"> = {}) {
  const clock = new ManualClock(T0);
  return { clock, rosters: new Rosters({ clock, ...options }) };
}

type Change = { kind: "joined" | "updated" | "left"; authid: string; data: string };

/** A watcher recording what it hears; `fail` makes its calls throw, `hold` leaves them unanswered. */
function watcher(options: { fail?: boolean; hold?: boolean } = {}) {
  const heard: Change[] = [];
  const pending: Array<() => void> = [];
  const state = { released: false, calls: 0, missed: [] as number[] };
  const impl = {
    missed: ({ count }: { count: number }) => {
      state.missed.push(count);
    },
    changed: ({ change }: { change: { $toObject(): RosterChange$Shape } }) => {
      state.calls++;
      const o = change.$toObject();
      const [kind, entry] = Object.entries(o)[0] as [
        Change["kind"],
        { owner: { authid: string }; data: string },
      ];
      heard.push({ kind, authid: entry.owner.authid, data: entry.data });
      if (options.fail) throw new Error("watcher broke");
      if (options.hold) return new Promise<void>((resolve) => pending.push(resolve));
      return undefined;
    },
    [Symbol.dispose]: () => {
      state.released = true;
    },
  };
  return {
    cap: RosterWatcher.server(impl),
    heard,
    state,
    answerAll: () => {
      for (const r of pending.splice(0)) r();
    },
  };
}

/** Lets local calls and their answers run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

function refusal(fn: () => unknown, code: string, message?: RegExp): ParallaxError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ParallaxError);
  const err = caught as ParallaxError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

describe("register and query", () => {
  it("adds one entry per session and roster, owned by the session's caller and stamped by the clock", () => {
    const { clock, rosters } = setup();
    const db1 = session("zerp", "backend");
    const entry = rosters.register(db1, ROSTER, '{"host":"db1"}', []);
    expect(entry).toEqual({
      name: ROSTER,
      owner: { authid: "zerp", role: "backend", session: BigInt(db1.session) },
      data: '{"host":"db1"}',
      updatedAt: BigInt(T0),
    });
    clock.advance(5000);
    const again = rosters.register(db1, ROSTER, '{"host":"db1b"}', []);
    expect(again.updatedAt).toBe(BigInt(T0 + 5000));
    const reader = session("alice", "frontend");
    expect(rosters.query(reader, ROSTER)).toEqual([again]);
    expect(rosters.entryCount).toBe(1);
  });

  it("takes the owner from the session only, whatever the data claims", () => {
    const { rosters } = setup();
    const mallory = session("mallory", "backend");
    const forged = '{"owner":{"authid":"alice","role":"trust","session":1}}';
    const entry = rosters.register(mallory, ROSTER, forged, []);
    expect(entry.owner).toEqual({ authid: "mallory", role: "backend", session: BigInt(mallory.session) });
    expect(rosters.query(session("bob", "frontend"), ROSTER).map((e) => e.owner.authid)).toEqual(["mallory"]);
  });

  it("keeps the entries of several sessions of one user apart, in the order they joined", () => {
    const { rosters } = setup();
    const a = session("zerp", "backend");
    const b = session("zerp", "backend");
    rosters.register(b, ROSTER, '"b"', []);
    rosters.register(a, ROSTER, '"a"', []);
    rosters.register(b, ROSTER, '"b2"', []);
    expect(rosters.query(a, ROSTER).map((e) => e.data)).toEqual(['"b2"', '"a"']);
  });

  it("shows an entry only to the roles in its visibleTo (empty: every role)", () => {
    const { rosters } = setup();
    const svc = session("svc", "backend");
    rosters.register(svc, "roster.internal", '"secret"', ["backend", "trust"]);
    rosters.register(svc, "roster.public", '"hello"', []);
    const front = session("alice", "frontend");
    const back = session("ops", "backend");
    const trusted = session("root", "trust");
    expect(rosters.query(front, "roster.internal")).toEqual([]);
    expect(rosters.query(back, "roster.internal")).toHaveLength(1);
    expect(rosters.query(trusted, "roster.internal")).toHaveLength(1);
    expect(rosters.query(front, "roster.public")).toHaveLength(1);
  });

  it("needs register to add an entry and subscribe to query: frontends query, they do not register", () => {
    const { rosters } = setup();
    const front = session("alice", "frontend");
    refusal(
      () => rosters.register(front, ROSTER, "1", []),
      ErrorCode.PERMISSION_DENIED,
      /role "frontend" may not register/,
    );
    expect(rosters.entryCount).toBe(0);
    const keyOnly = session("svc", "backend", [ruleFromLetters("roster.example", "prefix", "r")]);
    rosters.register(keyOnly, ROSTER, "1", []);
    refusal(
      () => rosters.query(keyOnly, ROSTER),
      ErrorCode.PERMISSION_DENIED,
      /this API key may not subscribe/,
    );
    const nobody = session("eve", "unconfigured");
    refusal(() => rosters.query(nobody, ROSTER), ErrorCode.PERMISSION_DENIED);
  });

  it("removes only the caller's own entry on unregister", () => {
    const { rosters } = setup();
    const a = session("zerp", "backend");
    const b = session("mallory", "backend");
    rosters.register(a, ROSTER, '"a"', []);
    expect(rosters.unregister(b, ROSTER)).toBe(false);
    expect(rosters.query(a, ROSTER)).toHaveLength(1);
    expect(rosters.unregister(a, ROSTER)).toBe(true);
    expect(rosters.unregister(a, ROSTER)).toBe(false);
    expect(rosters.query(a, ROSTER)).toEqual([]);
    expect(rosters.rosterCount).toBe(0);
  });
});

describe("watchers", () => {
  it("hear joined, then updated for a second registration, then left, with the snapshot first", async () => {
    const { rosters } = setup();
    const early = session("zerp", "backend");
    rosters.register(early, ROSTER, '"early"', []);
    const w = watcher();
    const { entries, watch } = rosters.watch(session("alice", "frontend"), ROSTER, w.cap);
    expect(entries.map((e) => e.data)).toEqual(['"early"']);
    const svc = session("svc", "backend");
    rosters.register(svc, ROSTER, '"v1"', []);
    rosters.register(svc, ROSTER, '"v2"', []);
    rosters.unregister(svc, ROSTER);
    await settle();
    expect(w.heard).toEqual([
      { kind: "joined", authid: "svc", data: '"v1"' },
      { kind: "updated", authid: "svc", data: '"v2"' },
      { kind: "left", authid: "svc", data: '"v2"' },
    ]);
    watch.dispose();
  });

  it("hear only what their role may see, and joined/left when an update changes visibility", async () => {
    const { rosters } = setup();
    const front = watcher();
    const back = watcher();
    rosters.watch(session("alice", "frontend"), ROSTER, front.cap);
    rosters.watch(session("ops", "backend"), ROSTER, back.cap);
    const svc = session("svc", "backend");
    rosters.register(svc, ROSTER, '"hidden"', ["backend"]);
    rosters.register(svc, ROSTER, '"shown"', ["backend", "frontend"]);
    rosters.register(svc, ROSTER, '"hidden again"', ["backend"]);
    rosters.unregister(svc, ROSTER);
    await settle();
    expect(back.heard.map((c) => c.kind)).toEqual(["joined", "updated", "updated", "left"]);
    expect(front.heard).toEqual([
      { kind: "joined", authid: "svc", data: '"shown"' },
      { kind: "left", authid: "svc", data: '"hidden again"' },
    ]);
  });

  it("hear every entry of a closing session leave, and the session's own watches end", async () => {
    const { rosters } = setup();
    const w = watcher();
    rosters.watch(session("alice", "frontend"), "roster.a", w.cap);
    const w2 = watcher();
    rosters.watch(session("alice", "frontend"), "roster.b", w2.cap);
    const svc = session("svc", "backend");
    rosters.register(svc, "roster.a", '"a"', []);
    rosters.register(svc, "roster.b", '"b"', []);
    const own = watcher();
    rosters.watch(svc, "roster.a", own.cap);
    svc.markClosed();
    rosters.closeSession(svc);
    await settle();
    expect(w.heard.map((c) => c.kind)).toEqual(["joined", "left"]);
    expect(w2.heard.map((c) => c.kind)).toEqual(["joined", "left"]);
    expect(own.heard).toEqual([]);
    expect(own.state.released).toBe(true);
    expect(rosters.entryCount).toBe(0);
    expect(rosters.watchCount).toBe(2);
    refusal(() => rosters.register(svc, "roster.a", "1", []), ErrorCode.FAILED, /has ended/);
    // Closed without markClosed too: the session can add nothing afterwards.
    const other = session("svc2", "backend");
    rosters.closeSession(other);
    refusal(() => rosters.register(other, "roster.a", "1", []), ErrorCode.FAILED);
    expect(rosters.entryCount).toBe(0);
  });

  it("end on cancel and on release of the Watch, releasing the watcher; cancel twice is harmless", async () => {
    const { rosters } = setup();
    const svc = session("svc", "backend");
    const a = watcher();
    const b = watcher();
    const wa = rosters.watch(session("alice", "frontend"), ROSTER, a.cap).watch;
    const wb = rosters.watch(session("bob", "frontend"), ROSTER, b.cap).watch;
    await wa.cancel();
    await wa.cancel();
    wb.dispose();
    await settle();
    expect(a.state.released).toBe(true);
    expect(b.state.released).toBe(true);
    rosters.register(svc, ROSTER, "1", []);
    await settle();
    expect(a.heard).toEqual([]);
    expect(b.heard).toEqual([]);
    expect(rosters.watchCount).toBe(0);
  });

  it("drop a watcher whose call fails, and free its session's watch quota", async () => {
    const { rosters } = setup({ maxWatchesPerSession: 1 });
    const alice = session("alice", "frontend");
    const broken = watcher({ fail: true });
    rosters.watch(alice, ROSTER, broken.cap);
    const svc = session("svc", "backend");
    rosters.register(svc, ROSTER, "1", []);
    await settle();
    expect(broken.state.calls).toBe(1);
    expect(broken.state.released).toBe(true);
    expect(rosters.watchCount).toBe(0);
    rosters.register(svc, ROSTER, "2", []);
    await settle();
    expect(broken.state.calls).toBe(1);
    const good = watcher();
    rosters.watch(alice, ROSTER, good.cap);
    rosters.register(svc, ROSTER, "3", []);
    await settle();
    expect(good.heard.map((c) => c.data)).toEqual(["3"]);
  });

  it("tell a watch that fell maxInFlight behind how many changes it missed once it caught up, then go on", async () => {
    const { rosters } = setup({ maxInFlight: 2 });
    const slow = watcher({ hold: true });
    rosters.watch(session("alice", "frontend"), ROSTER, slow.cap);
    const svc = session("svc", "backend");
    for (let i = 1; i <= 5; i++) rosters.register(svc, ROSTER, String(i), []);
    await settle();
    expect(slow.heard.map((c) => c.data)).toEqual(["1", "2"]);
    expect(slow.state.missed).toEqual([]);
    slow.answerAll();
    await settle();
    expect(slow.state.missed).toEqual([3]);
    expect(slow.state.released).toBe(false);
    expect(rosters.watchCount).toBe(1);
    rosters.register(svc, ROSTER, "6", []);
    await settle();
    expect(slow.heard.map((c) => c.data)).toEqual(["1", "2", "6"]);
  });

  it("refuse the same watcher capability twice on one roster (ALREADY_EXISTS), not on another", async () => {
    const { rosters } = setup();
    const alice = session("alice", "frontend");
    const w = watcher();
    rosters.watch(alice, ROSTER, w.cap.dup());
    refusal(() => rosters.watch(alice, ROSTER, w.cap.dup()), ErrorCode.ALREADY_EXISTS, /watches roster/);
    rosters.watch(alice, "roster.other", w.cap);
    expect(rosters.watchCount).toBe(2);
    rosters.register(session("svc", "backend"), ROSTER, "1", []);
    await settle();
    expect(w.heard).toHaveLength(1);
  });

  it("cannot be made on another user's behalf: the snapshot and changes follow the watching session's role", async () => {
    const { rosters } = setup();
    const svc = session("svc", "backend");
    rosters.register(svc, ROSTER, '"ops only"', ["backend"]);
    const w = watcher();
    const { entries } = rosters.watch(session("alice", "frontend"), ROSTER, w.cap);
    expect(entries).toEqual([]);
    rosters.register(session("svc2", "backend"), ROSTER, '"ops only too"', ["backend"]);
    await settle();
    expect(w.heard).toEqual([]);
  });
});

describe("quotas", () => {
  it("limits entries per session over all rosters (QUOTA), updates still allowed", () => {
    const { rosters } = setup({ maxEntriesPerSession: 2 });
    const svc = session("svc", "backend");
    rosters.register(svc, "roster.a", "1", []);
    rosters.register(svc, "roster.b", "1", []);
    refusal(
      () => rosters.register(svc, "roster.c", "1", []),
      ErrorCode.QUOTA,
      /holds 2 roster entries already/,
    );
    expect(rosters.rosterCount).toBe(2);
    expect(rosters.register(svc, "roster.a", "2", []).data).toBe("2");
    rosters.unregister(svc, "roster.b");
    rosters.register(svc, "roster.c", "1", []);
    expect(rosters.entryCount).toBe(2);
  });

  it("limits entries per roster (QUOTA) and watches per session, disposing a refused watcher", () => {
    const { rosters } = setup({ maxEntriesPerRoster: 2, maxWatchesPerSession: 2 });
    rosters.register(session("a", "backend"), ROSTER, "1", []);
    rosters.register(session("b", "backend"), ROSTER, "1", []);
    refusal(
      () => rosters.register(session("c", "backend"), ROSTER, "1", []),
      ErrorCode.QUOTA,
      /holds 2 entries already/,
    );
    expect(rosters.entryCount).toBe(2);
    const alice = session("alice", "frontend");
    rosters.watch(alice, "roster.a", watcher().cap);
    rosters.watch(alice, "roster.b", watcher().cap);
    const third = watcher();
    refusal(() => rosters.watch(alice, "roster.c", third.cap), ErrorCode.QUOTA, /2 roster watches already/);
    expect(third.state.released).toBe(true);
    expect(rosters.watchCount).toBe(2);
    // The quota is per session.
    rosters.watch(session("alice", "frontend"), "roster.c", watcher().cap);
  });
});

describe("hostile input", () => {
  it("refuses bad names, data and visibility with BAD_ARGUMENT, changing nothing and telling nobody", async () => {
    const { rosters } = setup();
    const svc = session("svc", "backend");
    rosters.register(svc, ROSTER, '"kept"', []);
    const w = watcher();
    rosters.watch(session("ops", "backend"), ROSTER, w.cap);
    const cases: Array<[string, () => unknown, RegExp]> = [
      ["empty name", () => rosters.register(svc, "", "1", []), /roster name is empty/],
      ["empty component", () => rosters.register(svc, "roster..x", "1", []), /empty component/],
      ["whitespace", () => rosters.register(svc, "roster x", "1", []), /whitespace/],
      ["hash", () => rosters.register(svc, "roster.#", "1", []), /'#'/],
      ["long name", () => rosters.register(svc, `r.${"x".repeat(254)}`, "1", []), /longer than 255/],
      [
        "huge data",
        () => rosters.register(svc, ROSTER, `"${"x".repeat(16 * 1024)}"`, []),
        /16386 bytes; at most 16384/,
      ],
      [
        "deep data",
        () => rosters.register(svc, ROSTER, `${"[".repeat(33)}${"]".repeat(33)}`, []),
        /nests 33 deep/,
      ],
      ["not JSON", () => rosters.register(svc, ROSTER, "{oops", []), /not JSON/],
      ["empty data", () => rosters.register(svc, ROSTER, "", []), /not JSON/],
      [
        "33 roles",
        () =>
          rosters.register(
            svc,
            ROSTER,
            "1",
            Array.from({ length: 33 }, (_, i) => `r${i}`),
          ),
        /visibleTo lists 33 roles; at most 32/,
      ],
      ["bad role", () => rosters.register(svc, ROSTER, "1", ["Backend"]), /role name "Backend"/],
      ["long role", () => rosters.register(svc, ROSTER, "1", ["x".repeat(65)]), /role name/],
      ["role not text", () => rosters.register(svc, ROSTER, "1", [7 as unknown as string]), /role name 7/],
      [
        "visibleTo not a list",
        () => rosters.register(svc, ROSTER, "1", "backend" as unknown as string[]),
        /list/,
      ],
      ["query bad name", () => rosters.query(svc, "a..b"), /empty component/],
      ["unregister bad name", () => rosters.unregister(svc, "a b"), /whitespace/],
    ];
    for (const [what, fn, message] of cases) {
      expect(refusal(fn, ErrorCode.BAD_ARGUMENT, message).message, what).toBeTruthy();
    }
    const bad = watcher();
    refusal(() => rosters.watch(svc, "a..b", bad.cap), ErrorCode.BAD_ARGUMENT);
    expect(bad.state.released).toBe(true);
    await settle();
    expect(w.heard).toEqual([]);
    expect(rosters.query(svc, ROSTER).map((e) => e.data)).toEqual(['"kept"']);
    expect(rosters.entryCount).toBe(1);
    expect(rosters.rosterCount).toBe(1);
    // The limits themselves are fine: exactly 16 KiB, 32 deep and 32 roles.
    rosters.register(
      svc,
      ROSTER,
      `"${"x".repeat(16 * 1024 - 2)}"`,
      Array.from({ length: 32 }, (_, i) => `r${i}`),
    );
    rosters.register(svc, ROSTER, `${"[".repeat(32)}${"]".repeat(32)}`, []);
  });

  it("refuses bad options", () => {
    const clock = new ManualClock(T0);
    expect(() => new Rosters({ clock, maxEntriesPerSession: 0 })).toThrow(
      /maxEntriesPerSession must be a positive integer/,
    );
    expect(() => new Rosters({ clock, maxInFlight: 1.5 })).toThrow(/maxInFlight/);
  });

  it("forgets a roster once it has neither entries nor watches; close ends every watch", async () => {
    const { rosters } = setup();
    const svc = session("svc", "backend");
    for (let i = 0; i < 50; i++) {
      rosters.register(svc, `roster.n${i}`, "1", []);
      rosters.unregister(svc, `roster.n${i}`);
    }
    expect(rosters.rosterCount).toBe(0);
    const w = watcher();
    rosters.watch(session("alice", "frontend"), ROSTER, w.cap);
    rosters.register(svc, ROSTER, "1", []);
    rosters.close();
    await settle();
    expect(w.state.released).toBe(true);
    expect(rosters.rosterCount).toBe(0);
    expect(rosters.watchCount).toBe(0);
    refusal(() => rosters.register(svc, ROSTER, "1", []), ErrorCode.FAILED);
  });
});
