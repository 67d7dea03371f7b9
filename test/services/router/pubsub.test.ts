import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import type { UriMatchName } from "../../../src/login/uri-permissions.js";
import { PubSub, type PubSubOptions } from "../../../src/services/router/pubsub.js";
import type { RouterSessionRef } from "../../../src/services/router/session.js";
import { UriMatch } from "../../../src/wire/gen/broker.js";
import { drain, recorder, sessionRef, settle } from "./pubsub-fixtures.js";

const T0 = 1_700_000_000_000;
const P = { args: "[1]", kwargs: "" };

function setup(options: Partial<PubSubOptions> = {}) {
  const clock = new ManualClock(T0);
  const ps = new PubSub({ clock, ...options });
  return { clock, ps };
}

function sub(
  ps: PubSub,
  s: RouterSessionRef,
  topic: string,
  match: UriMatchName = "exact",
  options: { getRetained?: boolean; resumeAfter?: number; manual?: boolean } = {},
) {
  const r = recorder({ manual: options.manual });
  const { subscription, lastSeq } = ps.subscribe(s, topic, match, r.handler, {
    getRetained: options.getRetained ?? false,
    resumeAfter: options.resumeAfter ?? 0,
  });
  return Object.assign(r, { subscription, lastSeq });
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

describe("PubSub matching", () => {
  it("delivers to exact, prefix and wildcard subscriptions component-wise: a.b is not a prefix of a.bc", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("alice", "frontend");
    const exact = sub(ps, s, "a.b");
    const prefix = sub(ps, s, "a.b", "prefix");
    const wild = sub(ps, s, "a..c", "wildcard");
    const everything = sub(ps, s, "", "prefix");
    for (const t of ["a.b", "a.bc", "a.b.c", "a.x.c", "a.b.c.d", "b"]) ps.publish(pub, t, P);
    await settle();
    const topics = (r: { events: { topic: string }[] }) => r.events.map((e) => e.topic);
    expect(topics(exact)).toEqual(["a.b"]);
    expect(topics(prefix)).toEqual(["a.b", "a.b.c", "a.b.c.d"]);
    expect(topics(wild)).toEqual(["a.b.c", "a.x.c"]);
    expect(topics(everything)).toEqual(["a.b", "a.bc", "a.b.c", "a.x.c", "a.b.c.d", "b"]);
    expect(everything.seqs).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("discloses the publisher from its session ref, whatever the call's objects carry", async () => {
    const { ps, clock } = setup();
    const alice = sessionRef("alice", "frontend");
    const bob = sessionRef("bob", "backend");
    const r = sub(ps, bob, "chat");
    clock.advance(5);
    const forged = { args: '["hi"]', kwargs: '{"authid":"bob"}', publisher: { authid: "bob" } };
    const options = { publisher: { authid: "bob", role: "trust", session: 99n }, authid: "bob" };
    const seq = ps.publish(alice, "chat", forged as never, options as never);
    await settle();
    expect(r.events).toEqual([
      {
        topic: "chat",
        seq,
        publisher: { authid: "alice", role: "frontend", session: alice.session },
        args: '["hi"]',
        kwargs: '{"authid":"bob"}',
        at: T0 + 5,
        retained: false,
      },
    ]);
  });

  it("leaves the publisher's own session out by default, and includes it with excludeMe false", async () => {
    const { ps } = setup();
    const alice = sessionRef("alice", "frontend");
    const aliceOtherDevice = sessionRef("alice", "frontend");
    const mine = sub(ps, alice, "t");
    const other = sub(ps, aliceOtherDevice, "t");
    ps.publish(alice, "t", P);
    ps.publish(alice, "t", P, { excludeMe: false });
    await settle();
    expect(mine.seqs).toEqual([2]);
    expect(other.seqs).toEqual([1, 2]);
  });

  it("drops excluded sessions, authids and roles", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const a = sessionRef("alice", "frontend");
    const b = sessionRef("bob", "frontend");
    const c = sessionRef("carol", "trust");
    const [ra, rb, rc] = [a, b, c].map((s) => sub(ps, s, "t"));
    ps.publish(pub, "t", P, { exclude: [BigInt(a.session)] });
    ps.publish(pub, "t", P, { excludeAuthid: ["bob"] });
    ps.publish(pub, "t", P, { excludeAuthrole: ["frontend"] });
    ps.publish(pub, "t", P, { exclude: [b.session], excludeAuthrole: ["trust"] });
    await settle();
    expect(ra?.seqs).toEqual([2, 4]);
    expect(rb?.seqs).toEqual([1]);
    expect(rc?.seqs).toEqual([1, 2, 3]);
  });

  it("delivers only to sessions in every non-empty eligible list; exclusion wins over eligibility", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const a = sessionRef("alice", "frontend");
    const a2 = sessionRef("alice", "trust");
    const b = sessionRef("bob", "frontend");
    const [ra, ra2, rb] = [a, a2, b].map((s) => sub(ps, s, "t"));
    ps.publish(pub, "t", P, { eligible: [BigInt(b.session)] }); // 1: bob
    ps.publish(pub, "t", P, { eligibleAuthid: ["alice"] }); // 2: both alices
    ps.publish(pub, "t", P, { eligibleAuthrole: ["frontend"] }); // 3: alice, bob
    ps.publish(pub, "t", P, { eligibleAuthid: ["alice"], eligibleAuthrole: ["frontend"] }); // 4: alice only
    ps.publish(pub, "t", P, {
      eligibleAuthid: ["alice", "bob"],
      excludeAuthrole: ["trust"],
      exclude: [b.session],
    }); // 5: alice
    ps.publish(pub, "t", P, { eligible: [], eligibleAuthid: [] }); // 6: empty lists set nothing: all
    await settle();
    expect(ra?.seqs).toEqual([2, 3, 4, 5, 6]);
    expect(ra2?.seqs).toEqual([2, 6]);
    expect(rb?.seqs).toEqual([1, 3, 6]);
  });

  it("answers increasing sequences over all topics and reports the last", () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    expect([ps.publish(pub, "x", P), ps.publish(pub, "y", P), ps.publish(pub, "x", P)]).toEqual([1, 2, 3]);
    expect(ps.lastSeq).toBe(3);
  });
});

describe("PubSub retained events", () => {
  it("gives a later subscriber asking getRetained the topic's retained event first, flagged, then live ones", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("alice", "frontend");
    ps.publish(pub, "t", { args: '["old"]', kwargs: "" }, { retain: true });
    ps.publish(pub, "t", { args: '["not kept"]', kwargs: "" });
    ps.publish(pub, "t", { args: '["state"]', kwargs: "" }, { retain: true });
    const asks = sub(ps, s, "t", "exact", { getRetained: true });
    const doesNot = sub(ps, s, "t", "exact");
    ps.publish(pub, "t", { args: '["live"]', kwargs: "" });
    await settle();
    expect(asks.events.map((e) => [e.args, e.retained])).toEqual([
      ['["state"]', true],
      ['["live"]', false],
    ]);
    expect(doesNot.events.map((e) => e.args)).toEqual(['["live"]']);
    expect(asks.lastSeq).toBe(3);
  });

  it("sends retained events of every matching topic in sequence order, filtered like live ones, before events published meanwhile", async () => {
    const { ps } = setup({ maxInFlight: 2 });
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("alice", "frontend");
    ps.publish(pub, "a.x", P, { retain: true }); // 1
    ps.publish(pub, "a.y", P, { retain: true, excludeAuthid: ["alice"] }); // 2: not for alice
    ps.publish(pub, "a.z", P, { retain: true }); // 3
    ps.publish(pub, "a.w", P, { retain: true }); // 4
    ps.publish(pub, "b.x", P, { retain: true }); // 5: does not match
    const r = sub(ps, s, "a", "prefix", { getRetained: true, manual: true });
    await settle();
    expect(r.seqs).toEqual([1, 3]);
    ps.publish(pub, "a.x", P); // 6, while the retained ones are unanswered
    await drain(r);
    expect(r.events.map((e) => [e.seq, e.retained])).toEqual([
      [1, true],
      [3, true],
      [4, true],
      [6, false],
    ]);
    expect(r.state.maxUnanswered).toBeLessThanOrEqual(2);
  });

  it("does not send a retained event twice when resuming before it: it comes once, through the replay", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("alice", "frontend");
    ps.publish(pub, "t", P, { retain: true }); // 1
    ps.publish(pub, "t", P); // 2
    ps.publish(pub, "t", P, { retain: true }); // 3
    const resumed = sub(ps, s, "t", "exact", { getRetained: true, resumeAfter: 1 });
    await settle();
    expect(resumed.events.map((e) => [e.seq, e.retained])).toEqual([
      [2, false],
      [3, false],
    ]);
  });
});

describe("PubSub resume and back-pressure", () => {
  it("resumes a prefix subscription across topics with exactly the missed events, then goes live", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const s1 = sessionRef("alice", "frontend");
    const first = sub(ps, s1, "game", "prefix");
    ps.publish(pub, "game.1", P); // 1
    ps.publish(pub, "game.2", P); // 2
    await settle();
    expect(first.seqs).toEqual([1, 2]);
    const info = await first.subscription.info();
    expect(info.lastSeq).toBe(2n);
    ps.closeSession(s1); // the connection dropped
    ps.publish(pub, "game.1", P); // 3
    ps.publish(pub, "lobby", P); // 4: not matching
    ps.publish(pub, "game.3", P, { exclude: [0n] }); // 5
    ps.publish(pub, "game.2", P, { excludeAuthid: ["alice"] }); // 6: not for alice
    ps.publish(pub, "game.2", P); // 7
    const s2 = sessionRef("alice", "frontend");
    const again = sub(ps, s2, "game", "prefix", { resumeAfter: Number(info.lastSeq) });
    expect(again.lastSeq).toBe(7);
    ps.publish(pub, "game.3", P); // 8: live, maybe while the replay is still going
    await settle();
    ps.publish(pub, "game.9", P); // 9: live, on a topic new to the router
    await settle();
    expect(again.heard).toEqual(again.events);
    expect(again.seqs).toEqual([3, 5, 7, 8, 9]);
    expect((await again.subscription.info()).lastSeq).toBe(9n);
  });

  it("beyond the window tells the handler unrecoverable(after, resumedFrom) and then delivers the rest", async () => {
    const { ps } = setup({ topicWindow: 3 });
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("alice", "frontend");
    ps.publish(pub, "a.quiet", P); // 1
    for (let i = 0; i < 6; i++) ps.publish(pub, "a.busy", P); // 2..7: 2,3,4 evicted
    const r = sub(ps, s, "a", "prefix", { resumeAfter: 1 });
    ps.publish(pub, "a.quiet", P); // 8
    await settle();
    expect(r.heard[0]).toEqual({ lost: [1, 5] });
    expect(r.seqs).toEqual([5, 6, 7, 8]);
  });

  it("resuming inside the window hears no notice", async () => {
    const { ps } = setup({ topicWindow: 3 });
    const pub = sessionRef("pub", "backend");
    for (let i = 0; i < 6; i++) ps.publish(pub, "t", P);
    const r = sub(ps, sessionRef("alice", "frontend"), "t", "exact", { resumeAfter: 4 });
    await settle();
    expect(r.heard.map((h) => ("lost" in h ? "lost" : h.seq))).toEqual([5, 6]);
  });

  it("feeds a handler that holds maxInFlight unanswered from the log: every event once, in order", async () => {
    const { ps } = setup({ maxInFlight: 4 });
    const pub = sessionRef("pub", "backend");
    const r = sub(ps, sessionRef("alice", "frontend"), "t", "prefix", { manual: true });
    for (let i = 0; i < 10; i++) ps.publish(pub, i % 2 === 0 ? "t.a" : "t.b", P);
    await settle();
    expect(r.seqs).toEqual([1, 2, 3, 4]);
    for (let i = 0; i < 5; i++) ps.publish(pub, "t.c", P);
    await settle();
    expect(r.seqs).toEqual([1, 2, 3, 4]);
    r.release();
    await settle();
    ps.publish(pub, "t.a", P); // 16, while it catches up
    await drain(r);
    expect(r.seqs).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(r.heard).toHaveLength(16);
    expect(r.state.maxUnanswered).toBe(4);
    ps.publish(pub, "t.b", P);
    await drain(r);
    expect(r.seqs.at(-1)).toBe(17);
  });

  it("refuses resumeAfter beyond the router's last sequence (another router life) and disposes the handler", () => {
    const { ps } = setup();
    ps.publish(sessionRef("pub", "backend"), "t", P);
    const r = recorder();
    const err = thrown(() =>
      ps.subscribe(sessionRef("a", "frontend"), "t", "exact", r.handler, {
        getRetained: false,
        resumeAfter: 5,
      }),
    );
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("beyond this router's last sequence 1");
    expect(r.state.disposed).toBe(true);
  });

  it("counts a restart's earlier sequences as lost: startSeq", async () => {
    const { ps } = setup({ startSeq: 100 });
    const pub = sessionRef("pub", "backend");
    expect(ps.publish(pub, "t", P)).toBe(101);
    const r = sub(ps, sessionRef("a", "frontend"), "t", "prefix", { resumeAfter: 90 });
    await settle();
    expect(r.heard).toEqual([{ lost: [90, 101] }, ...r.events]);
    expect(r.seqs).toEqual([101]);
  });

  it("reports a forgotten topic's events as lost (maxTopics): precisely to live subscriptions, conservatively to patterns resuming", async () => {
    const { ps } = setup({ maxTopics: 3 });
    const pub = sessionRef("pub", "backend");
    const live = sub(ps, sessionRef("alice", "frontend"), "a", "prefix", { manual: true });
    ps.publish(pub, "a.one", P); // 1
    ps.publish(pub, "a.two", P); // 2
    ps.publish(pub, "a.one", P); // 3
    ps.publish(pub, "c", P); // 4
    ps.publish(pub, "a.two", P); // 5
    ps.publish(pub, "z", P); // 6: a.one, published least recently, is forgotten (its last: 3)
    expect(ps.topicCount).toBe(3);
    const resume = (name: string, topic: string, match: UriMatchName) =>
      sub(ps, sessionRef(name, "frontend"), topic, match, { resumeAfter: 2 });
    const exactForgotten = resume("bob", "a.one", "exact");
    const prefix = resume("carol", "a", "prefix");
    const unrelated = resume("dave", "b", "prefix");
    const exactNew = resume("erin", "z", "exact");
    ps.publish(pub, "a.one", P); // 7: a new log for a.one
    await drain(live);
    // The live subscription saw all of a.one before it was forgotten: no notice.
    expect(live.heard).toEqual(live.events);
    expect(live.seqs).toEqual([1, 2, 3, 5, 7]);
    // Resuming before a.one's last event: lost, really (event 3) ...
    expect(exactForgotten.heard).toEqual([{ lost: [2, 4] }, ...exactForgotten.events]);
    expect(exactForgotten.seqs).toEqual([7]);
    expect(prefix.heard[0]).toEqual({ lost: [2, 4] });
    expect(prefix.seqs).toEqual([5, 7]);
    // ... and conservatively for a pattern that never matched it: forgotten names are not kept.
    expect(unrelated.heard).toEqual([{ lost: [2, 4] }]);
    // An exact topic made after the forgetting knows it was not the one forgotten.
    expect(exactNew.heard).toEqual(exactNew.events);
    expect(exactNew.seqs).toEqual([6]);
  });

  it("tells a subscription that is behind when a topic it still needed is forgotten", async () => {
    const { ps } = setup({ maxTopics: 2, maxInFlight: 1 });
    const pub = sessionRef("pub", "backend");
    const r = sub(ps, sessionRef("alice", "frontend"), "a", "prefix", { manual: true });
    ps.publish(pub, "a.one", P); // 1: delivered, unanswered
    ps.publish(pub, "a.one", P); // 2: the reader is behind
    ps.publish(pub, "a.two", P); // 3
    ps.publish(pub, "b", P); // 4: a.one is forgotten with 2 undelivered
    await drain(r);
    expect(r.heard.map((h) => ("lost" in h ? h.lost : h.seq))).toEqual([1, [1, 3], 3]);
  });

  it("forgets the least recently published topics beyond maxLogBytes, never the one just published to", () => {
    const { ps } = setup({ maxLogBytes: 4000 });
    const pub = sessionRef("pub", "backend");
    const big = { args: JSON.stringify(["x".repeat(900)]), kwargs: "" };
    for (const t of ["t1", "t2", "t3"]) ps.publish(pub, t, big);
    expect(ps.topicCount).toBe(3);
    ps.publish(pub, "t4", big);
    ps.publish(pub, "t4", big);
    expect(ps.topicCount).toBeLessThan(4);
    for (let i = 0; i < 10; i++)
      ps.publish(pub, "t4", { args: JSON.stringify(["x".repeat(3000)]), kwargs: "" });
    expect(ps.topicCount).toBe(1);
  });
});

describe("PubSub permissions", () => {
  const frontend = [
    ["app", "prefix", "cs"],
    ["app.news", "prefix", "ps"],
  ] as const;

  it("refuses publish and subscribe the role does not allow, naming the URI and the action", () => {
    const { ps } = setup();
    const s = sessionRef("alice", "frontend", frontend);
    const pubErr = thrown(() => ps.publish(s, "app.orders", P));
    expect(pubErr.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(pubErr.message).toBe('role "frontend" may not publish "app.orders"');
    const r = recorder();
    const subErr = thrown(() =>
      ps.subscribe(s, "other", "prefix", r.handler, { getRetained: false, resumeAfter: 0 }),
    );
    expect(subErr.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(subErr.message).toBe('role "frontend" may not subscribe prefix "other"');
    expect(r.state.disposed).toBe(true);
    expect(ps.subscriptionCount()).toBe(0);
    expect(ps.lastSeq).toBe(0);
    expect(ps.publish(s, "app.news.today", P)).toBe(1);
  });

  it("narrows a session by its API key's rules on top of the role's", () => {
    const { ps } = setup();
    const s = sessionRef("alice", "trust", undefined, [["feeds", "prefix", "s"]]);
    const err = thrown(() => ps.publish(s, "feeds.x", P));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toBe('this API key may not publish "feeds.x"');
    expect(thrown(() => sub(ps, s, "other.x")).message).toBe('this API key may not subscribe "other.x"');
    expect(() => sub(ps, s, "feeds", "prefix")).not.toThrow();
  });

  it("checks each event of a prefix subscription against the concrete topic: a more specific rule denying one URI holds, live and replayed", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const rules = [
      ["app", "prefix", "s"],
      ["app.secret", "prefix", ""],
    ] as const;
    const s = sessionRef("alice", "frontend", rules);
    const live = sub(ps, s, "app", "prefix");
    ps.publish(pub, "app.public", P); // 1
    ps.publish(pub, "app.secret", P); // 2
    ps.publish(pub, "app.secret.deep", P); // 3
    ps.publish(pub, "app.publicity", P); // 4
    const replay = sub(ps, sessionRef("alice", "frontend", rules), "app", "prefix", { resumeAfter: 1 });
    await settle();
    expect(live.seqs).toEqual([1, 4]);
    expect(replay.seqs).toEqual([4]);
    expect(thrown(() => sub(ps, s, "app.secret", "prefix")).code).toBe(ErrorCode.PERMISSION_DENIED);
  });
});

describe("PubSub quotas and hostile input", () => {
  it("refuses the 65th subscription of a session (handler disposed), not another session's", () => {
    const { ps } = setup();
    const s = sessionRef("alice", "frontend");
    for (let i = 0; i < 64; i++) sub(ps, s, `t.${i}`);
    const r = recorder();
    const err = thrown(() =>
      ps.subscribe(s, "t.64", "exact", r.handler, { getRetained: false, resumeAfter: 0 }),
    );
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("at most 64");
    expect(r.state.disposed).toBe(true);
    expect(ps.subscriptionCount(s)).toBe(64);
    expect(() => sub(ps, sessionRef("bob", "frontend"), "t.64")).not.toThrow();
  });

  it("refuses a publish flood beyond maxPublishesPerSecond with QUOTA; others publish on; the bucket refills on the clock", async () => {
    const { ps, clock } = setup({ topicWindow: 3000 });
    const flooder = sessionRef("mallory", "frontend");
    const bob = sessionRef("bob", "frontend");
    const r = sub(ps, sessionRef("watcher", "frontend"), "t");
    for (let i = 0; i < 1000; i++) ps.publish(flooder, "t", P);
    const err = thrown(() => ps.publish(flooder, "t", P));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("more than 1000 events per second");
    expect(ps.lastSeq).toBe(1000);
    expect(ps.publish(bob, "t", P)).toBe(1001);
    clock.advance(10);
    expect(ps.publish(flooder, "t", P)).toBe(1002); // 10 ms bought 10 tokens
    clock.advance(1000);
    for (let i = 0; i < 1000; i++) ps.publish(flooder, "t", P);
    await drain(r);
    expect(r.seqs).toHaveLength(2002);
  });

  it.each([
    ["2 MB of args", { args: JSON.stringify(["x".repeat(2 * 1024 * 1024)]), kwargs: "" }, "bytes"],
    [
      "args and kwargs together over 64 KiB",
      { args: JSON.stringify(["x".repeat(40_000)]), kwargs: JSON.stringify({ k: "y".repeat(40_000) }) },
      "together",
    ],
    ["depth 10 000", { args: "[".repeat(10_000), kwargs: "" }, "nests 10000 deep"],
    ["kwargs that is an array", { args: "", kwargs: "[]" }, "must be a JSON object"],
    ["args that is an object", { args: "{}", kwargs: "" }, "must be a JSON array"],
    ["invalid JSON", { args: "[1,", kwargs: "" }, "is not JSON"],
  ])("refuses %s with BAD_ARGUMENT and delivers nothing", async (_name, payload, says) => {
    const { ps } = setup();
    const r = sub(ps, sessionRef("bob", "frontend"), "t");
    const err = thrown(() => ps.publish(sessionRef("mallory", "frontend"), "t", payload));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain(says);
    await settle();
    expect(r.heard).toEqual([]);
    expect(ps.lastSeq).toBe(0);
    expect(ps.topicCount).toBe(0);
  });

  it("refuses malformed topics and patterns, and publication lists over 1024 entries", () => {
    const { ps } = setup();
    const s = sessionRef("alice", "frontend");
    for (const t of ["", "a..b", "a b", "a#", "x".repeat(256)]) {
      expect(thrown(() => ps.publish(s, t, P)).code).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect(thrown(() => sub(ps, s, "a..b")).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(thrown(() => sub(ps, s, "", "wildcard")).code).toBe(ErrorCode.BAD_ARGUMENT);
    const many = Array.from({ length: 1025 }, (_, i) => BigInt(i));
    const err = thrown(() => ps.publish(s, "t", P, { exclude: many }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toBe("exclude has 1025 entries; at most 1024");
    expect(thrown(() => ps.publish(s, "t", P, { eligibleAuthid: ["x".repeat(256)] })).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect(ps.lastSeq).toBe(0);
    expect(ps.publish(s, "t", P, { exclude: many.slice(0, 1024) })).toBe(1);
  });
});

describe("PubSub subscription lifetime", () => {
  it("answers info: id, topic, match and the last sequence delivered", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const r = sub(ps, sessionRef("a", "frontend"), "a..c", "wildcard");
    ps.publish(pub, "a.b.c", P);
    ps.publish(pub, "a.b.d", P);
    await settle();
    const info = await r.subscription.info();
    expect(info.topic).toBe("a..c");
    expect(info.match).toBe(UriMatch.WILDCARD);
    expect(info.lastSeq).toBe(1n);
    expect(info.id).toBeGreaterThan(0n);
  });

  it("stops delivery on unsubscribe and on release of the capability, disposing the handler", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("a", "frontend");
    const unsub = sub(ps, s, "t");
    const released = sub(ps, s, "t");
    ps.publish(pub, "t", P);
    await settle();
    await unsub.subscription.unsubscribe();
    released.subscription.dispose();
    await settle();
    expect(ps.subscriptionCount(s)).toBe(0);
    expect(unsub.state.disposed).toBe(true);
    expect(released.state.disposed).toBe(true);
    ps.publish(pub, "t", P);
    await settle();
    expect(unsub.seqs).toEqual([1]);
    expect(released.seqs).toEqual([1]);
    await unsub.subscription.unsubscribe(); // already done: fine
    expect((await unsub.subscription.info()).lastSeq).toBe(1n);
  });

  it("ends a subscription whose handler fails, and only that one", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const s = sessionRef("a", "frontend");
    const broken = sub(ps, s, "t");
    const fine = sub(ps, s, "t");
    broken.state.fail = true;
    ps.publish(pub, "t", P);
    await settle();
    expect(ps.subscriptionCount(s)).toBe(1);
    expect(broken.state.disposed).toBe(true);
    ps.publish(pub, "t", P);
    await settle();
    expect(fine.seqs).toEqual([1, 2]);
  });

  it("closeSession ends every subscription of that session and nobody else's", async () => {
    const { ps } = setup();
    const pub = sessionRef("pub", "backend");
    const a = sessionRef("a", "frontend");
    const b = sessionRef("b", "frontend");
    const ra = [sub(ps, a, "t"), sub(ps, a, "u", "prefix")];
    const rb = sub(ps, b, "t");
    ps.closeSession(a);
    expect(ps.subscriptionCount(a)).toBe(0);
    expect(ps.subscriptionCount()).toBe(1);
    expect(ra.every((r) => r.state.disposed)).toBe(true);
    ps.publish(pub, "t", P);
    ps.publish(pub, "u.x", P);
    await settle();
    expect(ra.flatMap((r) => r.seqs)).toEqual([]);
    expect(rb.seqs).toEqual([1]);
  });

  it("close ends everything and refuses later calls", () => {
    const { ps } = setup();
    const s = sessionRef("a", "frontend");
    const r = sub(ps, s, "t");
    ps.close();
    expect(r.state.disposed).toBe(true);
    expect(thrown(() => ps.publish(s, "t", P)).code).toBe(ErrorCode.FAILED);
    const h = recorder();
    expect(
      thrown(() => ps.subscribe(s, "t", "exact", h.handler, { getRetained: false, resumeAfter: 0 })).code,
    ).toBe(ErrorCode.FAILED);
    expect(h.state.disposed).toBe(true);
  });
});
