import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import type { UriMatchName } from "../../../src/login/uri-permissions.js";
import {
  type InvocationPolicyName,
  Procedures,
  type ProceduresOptions,
} from "../../../src/services/router/procedures.js";
import type { RouterSessionRef } from "../../../src/services/router/session.js";
import { UriMatch } from "../../../src/wire/gen/broker.js";
import { Callee, InvocationPolicy } from "../../../src/wire/gen/router.js";
import { rejection } from "../../helpers/errors.js";
import { type RuleSpec, sessionRef, settle } from "./pubsub-fixtures.js";

const P = { args: "[]", kwargs: "" };

interface Seen {
  readonly procedure: string;
  readonly caller: { authid: string; role: string; session: number };
  readonly args: string;
  readonly kwargs: string;
  readonly signal: AbortSignal;
}

type Answer = { args: string; kwargs: string } | Promise<{ args: string; kwargs: string }>;

/** A callee served locally: records invocations; answers by `answer` (default: its name as args). */
function callee(name: string, answer?: (inv: Seen) => Answer) {
  const seen: Seen[] = [];
  const state = { disposed: false };
  const impl = {
    invoke: async (
      { invocation: i }: Parameters<Parameters<typeof Callee.server>[0]["invoke"]>[0],
      ctx: { signal: AbortSignal },
    ) => {
      const inv: Seen = {
        procedure: i.procedure,
        caller: { authid: i.caller.authid, role: i.caller.role, session: Number(i.caller.session) },
        args: i.payload.args,
        kwargs: i.payload.kwargs,
        signal: ctx.signal,
      };
      seen.push(inv);
      const result = await (answer ?? (() => ({ args: JSON.stringify([name]), kwargs: "" })))(inv);
      return { result };
    },
    [Symbol.dispose]: () => {
      state.disposed = true;
    },
  };
  return { cap: Callee.server(impl), seen, state, name };
}

function setup(options: Partial<ProceduresOptions> = {}) {
  const clock = new ManualClock();
  return { clock, procs: new Procedures({ clock, ...options }) };
}

function reg(
  procs: Procedures,
  s: RouterSessionRef,
  uri: string,
  c: ReturnType<typeof callee>,
  match: UriMatchName = "exact",
  invoke: InvocationPolicyName = "single",
  forceReregister = false,
) {
  return procs.register(s, uri, match, c.cap, { invoke, forceReregister });
}

/** The error a synchronous call throws. */
function thrown(f: () => unknown): ParallaxError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ParallaxError);
    return err as ParallaxError;
  }
  throw new Error("expected the call to throw");
}

/** Which callee's name a call's result carries. */
async function who(procs: Procedures, s: RouterSessionRef, uri: string): Promise<string> {
  const r = await procs.call(s, uri, P, 0);
  return (JSON.parse(r.args) as string[])[0] as string;
}

const backend: readonly RuleSpec[] = [["", "prefix", "crps"]];
const frontend: readonly RuleSpec[] = [["", "prefix", "cs"]];

describe("Procedures: calls", () => {
  it("tells the callee the caller's authid, role and session and the full URI called under a prefix registration", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend", backend);
    const alice = sessionRef("alice", "frontend", frontend);
    const c = callee("hello");
    reg(procs, bob, "com.example", c, "prefix");
    await procs.call(alice, "com.example.hello.world", { args: '["x"]', kwargs: "" }, 0);
    expect(c.seen.map(({ signal: _, ...i }) => i)).toEqual([
      {
        procedure: "com.example.hello.world",
        caller: { authid: "alice", role: "frontend", session: alice.session },
        args: '["x"]',
        kwargs: "",
      },
    ]);
  });

  it("carries positional and named arguments there and the result back unchanged", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend", backend);
    const alice = sessionRef("alice", "frontend", frontend);
    const c = callee("echo", (i) => ({ args: i.args, kwargs: i.kwargs }));
    reg(procs, bob, "echo", c);
    const payload = { args: '[1,"two",{"three":[3]}]', kwargs: '{"name":"Ünïcode ✓","n":null}' };
    expect(await procs.call(alice, "echo", payload, 0)).toEqual(payload);
    expect(await procs.call(alice, "echo", { args: "", kwargs: "" }, 0)).toEqual({ args: "", kwargs: "" });
  });

  it("answers NOT_FOUND when nothing is registered for the URI", async () => {
    const { procs } = setup();
    const err = await rejection(procs.call(sessionRef("a", "frontend"), "nobody.home", P, 0));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    expect(err.message).toBe('no procedure registered for "nobody.home"');
  });

  it("passes what the callee threw to the caller as PARALLAX_ERR_FAILED with its message", async () => {
    const { procs } = setup();
    const c = callee("x", () => {
      throw new Error("no such account: 42");
    });
    reg(procs, sessionRef("bob", "backend"), "acct.get", c);
    const err = await rejection(procs.call(sessionRef("a", "frontend"), "acct.get", P, 0));
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toBe("no such account: 42");
    expect(procs.registrationCount()).toBe(1);
  });

  it("times out on the injected clock, cancels the invocation, and ignores a late answer", async () => {
    const { procs, clock } = setup({ defaultTimeoutMs: 5000, maxTimeoutMs: 20_000 });
    let answer: ((v: { args: string; kwargs: string }) => void) | undefined;
    const c = callee("slow", () => new Promise((resolve) => (answer = resolve)));
    reg(procs, sessionRef("bob", "backend"), "slow", c);
    const alice = sessionRef("a", "frontend");
    const call = procs.call(alice, "slow", P, 500);
    await settle();
    clock.advance(499);
    expect(procs.callsInFlight(alice)).toBe(1);
    clock.advance(1);
    const err = await rejection(call);
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toBe('call to "slow" timed out after 500 ms');
    expect(c.seen[0]?.signal.aborted).toBe(true);
    expect(procs.callsInFlight(alice)).toBe(0);
    answer?.({ args: "[]", kwargs: "" });
    await settle();
    // 0 means the default; more than the maximum is cut to it.
    const byDefault = procs.call(alice, "slow", P, 0);
    const capped = procs.call(alice, "slow", P, 3_600_000);
    await settle();
    clock.advance(5000);
    expect((await rejection(byDefault)).message).toContain("after 5000 ms");
    clock.advance(15_000);
    expect((await rejection(capped)).message).toContain("after 20000 ms");
    expect(clock.pendingTimers).toBe(0);
  });

  it("cancels the invocation when the caller's signal aborts", async () => {
    const { procs } = setup();
    const c = callee("slow", () => new Promise(() => {}));
    reg(procs, sessionRef("bob", "backend"), "slow", c);
    const controller = new AbortController();
    const call = procs.call(sessionRef("a", "frontend"), "slow", P, 0, { signal: controller.signal });
    await settle();
    controller.abort();
    expect((await rejection(call)).code).toBe(ErrorCode.CANCELED);
    expect(c.seen[0]?.signal.aborted).toBe(true);
  });

  it("refuses a callee's malformed result: the caller hears FAILED saying so", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    reg(
      procs,
      bob,
      "bad.kwargs",
      callee("x", () => ({ args: "[]", kwargs: "[1]" })),
    );
    reg(
      procs,
      bob,
      "bad.json",
      callee("x", () => ({ args: "[1,", kwargs: "" })),
    );
    reg(
      procs,
      bob,
      "bad.deep",
      callee("x", () => ({ args: "[".repeat(10_000), kwargs: "" })),
    );
    const alice = sessionRef("a", "frontend");
    for (const uri of ["bad.kwargs", "bad.json", "bad.deep"]) {
      const err = await rejection(procs.call(alice, uri, P, 0));
      expect(err.code).toBe(ErrorCode.FAILED);
      expect(err.message).toContain(`the callee's result for "${uri}" was malformed`);
    }
  });

  it.each([
    ["2 MB of args", { args: JSON.stringify(["x".repeat(2 * 1024 * 1024)]), kwargs: "" }],
    ["depth 10 000", { args: "[".repeat(10_000), kwargs: "" }],
    ["kwargs that is an array", { args: "", kwargs: "[]" }],
    ["invalid JSON", { args: "nope", kwargs: "" }],
  ])("refuses a call with %s (BAD_ARGUMENT) without invoking the callee", async (_name, payload) => {
    const { procs } = setup();
    const c = callee("x");
    reg(procs, sessionRef("bob", "backend"), "p", c);
    const err = await rejection(procs.call(sessionRef("mallory", "frontend"), "p", payload, 0));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    await settle();
    expect(c.seen).toEqual([]);
  });

  it("refuses calls beyond maxCallsInFlightPerSession with QUOTA, for that session only", async () => {
    const { procs } = setup({ maxCallsInFlightPerSession: 3 });
    let release = (): void => {};
    const gate = new Promise<void>((r) => (release = r));
    reg(
      procs,
      sessionRef("bob", "backend"),
      "slow",
      callee("slow", async () => {
        await gate;
        return P;
      }),
    );
    const mallory = sessionRef("mallory", "frontend");
    const calls = [0, 1, 2].map(() => procs.call(mallory, "slow", P, 0));
    const err = await rejection(procs.call(mallory, "slow", P, 0));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("at most 3");
    const other = procs.call(sessionRef("alice", "frontend"), "slow", P, 0);
    release();
    await Promise.all([...calls, other]);
    expect(procs.callsInFlight()).toBe(0);
    await procs.call(mallory, "slow", P, 0);
  });
});

describe("Procedures: routing and policies", () => {
  it("routes to the most specific registration: exact, then the longer prefix, then the shorter, then wildcard", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    const alice = sessionRef("alice", "frontend");
    reg(procs, bob, "a.b.c", callee("exact"));
    reg(procs, bob, "a.b", callee("long prefix"), "prefix");
    reg(procs, bob, "a", callee("short prefix"), "prefix");
    reg(procs, bob, "a..c", callee("wildcard"), "wildcard");
    reg(procs, bob, "x..c", callee("wild, first run of one"), "wildcard");
    reg(procs, bob, "x.y.", callee("wild, first run of two"), "wildcard");
    reg(procs, bob, "..c", callee("wild less fixed"), "wildcard");
    expect(await who(procs, alice, "a.b.c")).toBe("exact");
    expect(await who(procs, alice, "a.b.d")).toBe("long prefix");
    expect(await who(procs, alice, "a.bc")).toBe("short prefix");
    expect(await who(procs, alice, "a")).toBe("short prefix");
    // WAMP's rule: the longer first run of fixed components wins, whatever the listing order.
    expect(await who(procs, alice, "x.y.c")).toBe("wild, first run of two");
    expect(await who(procs, alice, "x.z.c")).toBe("wild, first run of one");
    expect(await who(procs, alice, "q.z.c")).toBe("wild less fixed");
  });

  it("skips a registration whose session may no longer register the concrete URI: a more specific rule denies it", async () => {
    const { procs } = setup();
    const rules: readonly RuleSpec[] = [
      ["svc", "prefix", "r"],
      ["svc.admin", "prefix", ""],
    ];
    const narrow = sessionRef("bob", "backend", rules);
    const wide = sessionRef("carol", "backend");
    reg(procs, narrow, "svc", callee("narrow"), "prefix");
    reg(procs, wide, "", callee("catch-all"), "prefix");
    const alice = sessionRef("alice", "frontend");
    expect(await who(procs, alice, "svc.users")).toBe("narrow");
    expect(await who(procs, alice, "svc.admin.reset")).toBe("catch-all");
  });

  it("roundrobin takes turns, first takes the oldest, last the newest", async () => {
    const { procs } = setup();
    const alice = sessionRef("alice", "frontend");
    for (const name of ["r1", "r2", "r3"])
      reg(procs, sessionRef(name, "backend"), "rr", callee(name), "exact", "roundrobin");
    for (const name of ["f1", "f2"])
      reg(procs, sessionRef(name, "backend"), "first", callee(name), "exact", "first");
    for (const name of ["l1", "l2"])
      reg(procs, sessionRef(name, "backend"), "last", callee(name), "exact", "last");
    const turns: string[] = [];
    for (let i = 0; i < 5; i++) turns.push(await who(procs, alice, "rr"));
    expect(turns).toEqual(["r1", "r2", "r3", "r1", "r2"]);
    expect([await who(procs, alice, "first"), await who(procs, alice, "first")]).toEqual(["f1", "f1"]);
    expect([await who(procs, alice, "last"), await who(procs, alice, "last")]).toEqual(["l2", "l2"]);
  });

  it("random picks by the injected random()", async () => {
    const draws = [0.9, 0.1, 0.5, 0.99999];
    const { procs } = setup({ random: () => draws.shift() ?? 0 });
    for (const name of ["x0", "x1", "x2"])
      reg(procs, sessionRef(name, "backend"), "rnd", callee(name), "exact", "random");
    const alice = sessionRef("alice", "frontend");
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(await who(procs, alice, "rnd"));
    expect(got).toEqual(["x2", "x0", "x1", "x2"]);
  });

  it("refuses a second registration under single, and a different policy, with ALREADY_EXISTS naming the URI; the refused callee is disposed", () => {
    const { procs } = setup();
    const first = callee("one");
    reg(procs, sessionRef("bob", "backend"), "only", first);
    const second = callee("two");
    const err = thrown(() => reg(procs, sessionRef("carol", "backend"), "only", second));
    expect(err.code).toBe(ErrorCode.ALREADY_EXISTS);
    expect(err.message).toBe(
      'procedure "only" is registered already (policy "single" allows one registration)',
    );
    expect(second.state.disposed).toBe(true);
    reg(procs, sessionRef("bob", "backend"), "shared", callee("a"), "prefix", "roundrobin");
    const other = thrown(() =>
      reg(procs, sessionRef("dan", "backend"), "shared", callee("b"), "prefix", "random"),
    );
    expect(other.code).toBe(ErrorCode.ALREADY_EXISTS);
    expect(other.message).toBe(
      'procedure prefix "shared" is registered with policy "roundrobin"; this registration asks for "random"',
    );
    // The same URI under another match is another registration.
    expect(() => reg(procs, sessionRef("erin", "backend"), "only", callee("p"), "prefix")).not.toThrow();
    expect(procs.registrationCount()).toBe(3);
    expect(first.state.disposed).toBe(false);
  });

  it("forceReregister replaces the same user's and role's zombie registration, never someone else's", async () => {
    const { procs } = setup();
    const alice = sessionRef("alice", "frontend");
    const zombie = callee("zombie");
    const zombieSession = sessionRef("bot", "backend");
    reg(procs, zombieSession, "job.run", zombie);
    const fresh = callee("fresh");
    reg(procs, sessionRef("bot", "backend"), "job.run", fresh, "exact", "single", true);
    expect(zombie.state.disposed).toBe(true);
    expect(procs.registrationCount(zombieSession)).toBe(0);
    expect(await who(procs, alice, "job.run")).toBe("fresh");

    const intruder = callee("intruder");
    const err = thrown(() =>
      reg(procs, sessionRef("mallory", "backend"), "job.run", intruder, "exact", "single", true),
    );
    expect(err.code).toBe(ErrorCode.ALREADY_EXISTS);
    expect(intruder.state.disposed).toBe(true);
    // Same name, another role: not the same script either.
    const otherRole = callee("other role");
    expect(
      thrown(() => reg(procs, sessionRef("bot", "trust"), "job.run", otherRole, "exact", "single", true))
        .code,
    ).toBe(ErrorCode.ALREADY_EXISTS);
    expect(fresh.state.disposed).toBe(false);
    expect(await who(procs, alice, "job.run")).toBe("fresh");
  });

  it("forceReregister removes nothing when the registration is refused anyway", () => {
    const { procs } = setup();
    const mine = callee("mine");
    reg(procs, sessionRef("bot", "backend"), "pool", mine, "exact", "roundrobin");
    reg(procs, sessionRef("carol", "backend"), "pool", callee("carol's"), "exact", "roundrobin");
    const err = thrown(() =>
      reg(procs, sessionRef("bot", "backend"), "pool", callee("x"), "exact", "single", true),
    );
    expect(err.code).toBe(ErrorCode.ALREADY_EXISTS);
    expect(mine.state.disposed).toBe(false);
    expect(procs.registrationCount()).toBe(2);
  });
});

describe("Procedures: permissions and quotas", () => {
  it("refuses register and call the role does not allow, naming the URI and the action", async () => {
    const { procs } = setup();
    const alice = sessionRef("alice", "frontend", frontend);
    const c = callee("x");
    const err = thrown(() => reg(procs, alice, "com.example", c, "prefix"));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toBe('role "frontend" may not register prefix "com.example"');
    expect(c.state.disposed).toBe(true);
    const noCall = sessionRef("guest", "anonymous", [["public", "prefix", "c"]]);
    const callErr = await rejection(procs.call(noCall, "private.x", P, 0));
    expect(callErr.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(callErr.message).toBe('role "anonymous" may not call "private.x"');
  });

  it("narrows by the API key's rules", async () => {
    const { procs } = setup();
    const keyed = sessionRef("bob", "backend", backend, [["reports", "prefix", "c"]]);
    const err = thrown(() => reg(procs, keyed, "reports.daily", callee("x")));
    expect(err.message).toBe('this API key may not register "reports.daily"');
    reg(procs, sessionRef("carol", "backend"), "billing.charge", callee("c"));
    const callErr = await rejection(procs.call(keyed, "billing.charge", P, 0));
    expect(callErr.message).toBe('this API key may not call "billing.charge"');
  });

  it("refuses the 65th registration of a session with QUOTA", () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    for (let i = 0; i < 64; i++) reg(procs, bob, `p.${i}`, callee(`p${i}`));
    const c = callee("one too many");
    const err = thrown(() => reg(procs, bob, "p.64", c));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("at most 64");
    expect(c.state.disposed).toBe(true);
    expect(() => reg(procs, sessionRef("carol", "backend"), "p.64", callee("ok"))).not.toThrow();
  });

  it("refuses malformed URIs and patterns", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    for (const [uri, match] of [
      ["a..b", "exact"],
      ["", "exact"],
      ["a b", "prefix"],
      ["", "wildcard"],
    ] as const) {
      expect(thrown(() => reg(procs, bob, uri, callee("x"), match)).code).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect((await rejection(procs.call(bob, "a..b", P, 0))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(procs.registrationCount()).toBe(0);
  });
});

describe("Procedures: registration lifetime", () => {
  it("answers info and ends on unregister and on release of the capability", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    const c1 = callee("one");
    const c2 = callee("two");
    const r1 = reg(procs, bob, "svc", c1, "prefix", "roundrobin");
    const r2 = reg(procs, bob, "other", c2);
    const info = await r1.info();
    expect([info.procedure, info.match, info.invoke]).toEqual([
      "svc",
      UriMatch.PREFIX,
      InvocationPolicy.ROUNDROBIN,
    ]);
    expect(info.id).toBeGreaterThan(0n);
    await r1.unregister();
    r2.dispose();
    await settle();
    expect(procs.registrationCount()).toBe(0);
    expect(c1.state.disposed && c2.state.disposed).toBe(true);
    const alice = sessionRef("alice", "frontend");
    expect((await rejection(procs.call(alice, "svc.x", P, 0))).code).toBe(ErrorCode.NOT_FOUND);
    await r1.unregister(); // already done: fine
  });

  it("dies with its session: closeSession removes it and fails the calls in flight to it", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    const carol = sessionRef("carol", "backend");
    const c = callee("slow", () => new Promise(() => {}));
    reg(procs, bob, "slow", c);
    reg(procs, carol, "fine", callee("fine"));
    const alice = sessionRef("alice", "frontend");
    const inFlight = procs.call(alice, "slow", P, 0);
    await settle();
    procs.closeSession(bob);
    const err = await rejection(inFlight);
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toContain("session ended");
    expect(c.state.disposed).toBe(true);
    expect(c.seen[0]?.signal.aborted).toBe(true);
    expect(procs.registrationCount()).toBe(1);
    expect((await rejection(procs.call(alice, "slow", P, 0))).code).toBe(ErrorCode.NOT_FOUND);
    expect(await who(procs, alice, "fine")).toBe("fine");
  });

  it("skips and removes a registration whose session has closed even before closeSession runs", async () => {
    const { procs } = setup();
    const bob = sessionRef("bob", "backend");
    const c = callee("gone");
    reg(procs, bob, "x", c);
    bob.markClosed();
    expect((await rejection(procs.call(sessionRef("a", "frontend"), "x", P, 0))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect(c.state.disposed).toBe(true);
    expect(procs.registrationCount()).toBe(0);
  });

  it("removes a registration whose callee fails as disconnected, and routes the next call elsewhere", async () => {
    const { procs } = setup();
    const alice = sessionRef("alice", "frontend");
    const dead = callee("dead", () => {
      throw new ParallaxError(ErrorCode.DISCONNECTED, "the connection was lost");
    });
    reg(procs, sessionRef("bob", "backend"), "pool", dead, "exact", "first");
    reg(procs, sessionRef("carol", "backend"), "pool", callee("alive"), "exact", "first");
    const err = await rejection(procs.call(alice, "pool", P, 0));
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toBe('the callee for "pool" is gone: the connection was lost');
    expect(dead.state.disposed).toBe(true);
    expect(await who(procs, alice, "pool")).toBe("alive");
  });

  it("close ends every registration and refuses later calls", async () => {
    const { procs } = setup();
    const c = callee("x");
    reg(procs, sessionRef("bob", "backend"), "x", c);
    procs.close();
    expect(c.state.disposed).toBe(true);
    expect((await rejection(procs.call(sessionRef("a", "frontend"), "x", P, 0))).code).toBe(ErrorCode.FAILED);
  });
});
