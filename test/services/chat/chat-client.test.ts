/**
 * ChatClient over a real broker (issue 12 §3 for chat): a member whose connection a loopback
 * proxy (test/services/router/client-proxy.ts) cuts in the middle of a frame, again and again,
 * while another member posts numbered messages, ends with exactly 1..N in order; beyond the
 * server's window it hears `onUnrecoverable` once and, with fillGaps, still gets every message
 * once, in order (without, the notice and then the retained ones); the inbox resumes the same way
 * (also when it had heard nothing yet); a member removed while away is not re-joined and hears
 * `onClosed`; a handle's calls go on across reconnects on the new facet; bad input is refused.
 *
 * No sleeps: the member's reconnects are gated on the poster's progress (so messages are posted
 * while it is away), and every wait is on an event (a delivery, a client event, a count).
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { ErrorCode } from "../../../src/errors.js";
import type { ChatMessage, ChatRoom } from "../../../src/services/chat/chat-client.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor, within } from "../../helpers/wait.js";
import { ResettingProxy } from "../router/client-proxy.js";
import {
  type ChatClientHarness,
  chatClientHarness,
  disconnected,
  type RecordedChat,
  recorder,
  restored,
  signals,
} from "./chat-client-harness.js";

let h: ChatClientHarness | undefined;
let proxy: ResettingProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  await h?.close();
  h = undefined;
  proxy = undefined;
});

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const texts = (prefix: string, from: number, to: number): string[] =>
  range(from, to).map((i) => `${prefix}${i}`);
const ignore = (): void => {};

/**
 * A client for `name` through the proxy whose reconnects wait until `ready()` holds (checked at
 * each `progress` signal): what is posted meanwhile is posted while it is away.
 */
async function gatedClient(
  world: ChatClientHarness,
  p: ResettingProxy,
  name: string,
  progress: ReturnType<typeof signals>,
  ready: () => boolean,
): Promise<RecordedChat> {
  let connects = 0;
  return world.client(name, {
    connect: async () => {
      if (connects++ > 0) await progress.until(ready);
      return connect(p.url);
    },
    onEvent: () => progress.signal(),
  });
}

describe("a room across dropped connections", () => {
  it("a member cut off mid-frame again and again hears exactly 1..N in order while another posts", async () => {
    const N = 200;
    const CUT_EVERY = 23;
    /** How far the poster may run ahead of a connected member. */
    const LEAD = 8;
    /** Messages posted while the member is away, before it may reconnect. */
    const AWAY = 12;
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const progress = signals();
    let posted = 0;
    let postedAway = 0;
    let target = 0;
    const alice = await h.client("alice");
    const aliceRoom = await alice.client.createRoom("general", "public", "numbers", ignore);
    let connects = 0;
    const bob = await h.client("bob", {
      connect: async () => {
        if (connects++ > 0) {
          target = Math.min(N, posted + AWAY);
          await progress.until(() => posted >= target);
        }
        return connect(p.url);
      },
      onEvent: () => progress.signal(),
    });
    const got: number[] = [];
    const seqs: number[] = [];
    const lost: string[] = [];
    const done = new Promise<void>((resolve) => {
      void bob.client.join(
        "general",
        (m: ChatMessage) => {
          const n = Number(m.text.slice(1));
          got.push(n);
          seqs.push(m.seq);
          if (n % CUT_EVERY === 0 && bob.client.connected) void p.cutMidStream();
          progress.signal();
          if (got.length === N) resolve();
        },
        { onUnrecoverable: (a, r) => lost.push(`${a} ${r}`) },
      );
    });
    await waitFor(() => expect(h?.chat.attachmentCount).toBe(2));
    await waitFor(async () => expect((await aliceRoom.current.info()).info.members).toBe(2));
    for (let i = 1; i <= N; i++) {
      await progress.until(() => !bob.client.connected || i <= got.length + LEAD);
      await aliceRoom.post(`m${i}`);
      posted = i;
      if (!bob.client.connected) postedAway++;
      progress.signal();
    }
    await within(done, 20_000, "bob hearing every message");
    expect(got).toEqual(range(1, N));
    // Nothing but alice's posts after bob joined: the room's sequences follow one another.
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1] as number) + 1);
    expect(lost).toEqual([]);
    // The cuts happened (each a frame split in two), each was followed by a rejoin, and messages
    // were posted while bob was away.
    expect(p.cuts).toBeGreaterThanOrEqual(5);
    await bob.nth(restored, p.cuts);
    expect(postedAway).toBeGreaterThanOrEqual(AWAY);
    expect(bob.events.filter((e) => e.type === "failed" || e.type === "restoreFailed")).toEqual([]);
  }, 30_000);

  it("with a window smaller than each absence, every rejoin fills in from history, cuts during fills included: 1..N once", async () => {
    const N = 150;
    const CUT_EVERY = 11;
    const LEAD = 4;
    /** More than the window of 5: every absence loses some from the window. */
    const AWAY = 9;
    h = await chatClientHarness({ windowMessages: 5 });
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const progress = signals();
    let posted = 0;
    let target = 0;
    const alice = await h.client("alice");
    const aliceRoom = await alice.client.createRoom("general", "public", "", ignore);
    let connects = 0;
    const bob = await h.client("bob", {
      connect: async () => {
        if (connects++ > 0) {
          target = Math.min(N, posted + AWAY);
          await progress.until(() => posted >= target);
        }
        return connect(p.url);
      },
      onEvent: () => progress.signal(),
      // Two a page: a fill takes several reads, and a cut can fall between them.
      fillPageSize: 2,
    });
    const got: number[] = [];
    let notices = 0;
    await bob.client.join(
      "general",
      (m) => {
        got.push(Number(m.text.slice(1)));
        // Armed while a fill may be reading: the next chunk may be a history answer.
        if (got.length % CUT_EVERY === 0 && bob.client.connected) void p.cutMidStream();
        progress.signal();
      },
      { onUnrecoverable: () => notices++ },
    );
    for (let i = 1; i <= N; i++) {
      await progress.until(() => !bob.client.connected || i <= got.length + LEAD);
      await aliceRoom.post(`m${i}`);
      posted = i;
      progress.signal();
    }
    await within(
      progress.until(() => got.length >= N),
      20_000,
      "bob hearing every message",
    );
    expect(got).toEqual(range(1, N));
    expect(p.cuts).toBeGreaterThanOrEqual(5);
    expect(notices).toBeGreaterThanOrEqual(3);
  }, 30_000);

  async function awayBeyondWindow(fillGaps: boolean) {
    h = await chatClientHarness({ windowMessages: 5 });
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const progress = signals();
    let posted = 0;
    const alice = await h.client("alice");
    const aliceRoom = await alice.client.createRoom("general", "public", "", ignore); // seq 1
    const bob = await gatedClient(h, proxy, "bob", progress, () => posted >= 23);
    const r = recorder();
    let notices = 0;
    const room = await bob.client.join("general", r.onMessage, {
      fillGaps,
      onUnrecoverable: (a, f) => {
        notices++;
        r.onUnrecoverable(a, f);
      },
    }); // seq 2
    for (let i = 1; i <= 3; i++) await aliceRoom.post(`m${i}`); // seqs 3..5
    await r.until(3);
    proxy.resetAll();
    await bob.nth(disconnected, 1);
    // 20 posted while bob is away (seqs 6..25): the window keeps 21..25 alone.
    for (let i = 4; i <= 23; i++) {
      await aliceRoom.post(`m${i}`);
      posted = i;
      progress.signal();
    }
    await bob.nth(restored, 1);
    return { r, room, notices: () => notices, aliceRoom };
  }

  it("beyond the window: onUnrecoverable once, and with fillGaps every message still once, in order", async () => {
    const { r, room, notices } = await awayBeyondWindow(true);
    await r.until(24);
    expect(r.heard).toEqual(["m1", "m2", "m3", "lost (5, 21)", ...texts("m", 4, 23)]);
    expect(r.seqs).toEqual(range(3, 25));
    expect(notices()).toBe(1);
    expect(room.lastSeq).toBe(25);
  });

  it("beyond the window without fillGaps: the notice, then the retained messages alone", async () => {
    const { r, room, aliceRoom } = await awayBeyondWindow(false);
    await r.until(9);
    expect(r.heard).toEqual(["m1", "m2", "m3", "lost (5, 21)", ...texts("m", 19, 23)]);
    expect(room.lastSeq).toBe(25);
    // And live from there.
    await aliceRoom.post("m24");
    await r.until(10);
    expect(r.heard.at(-1)).toBe("m24");
  });
});

describe("the inbox across dropped connections", () => {
  it("resumes after each mid-frame cut: exactly the direct messages sent after it opened, once, in order", async () => {
    const N = 120;
    const CUT_EVERY = 17;
    const LEAD = 6;
    const AWAY = 8;
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const progress = signals();
    let sent = 0;
    let target = 0;
    const alice = await h.client("alice");
    const toBob = await alice.client.mailbox("bob");
    // Sent before bob's inbox opens: "from now" leaves them out.
    expect([await toBob.send("old 1"), await toBob.send("old 2")]).toEqual([1, 2]);
    let connects = 0;
    const bob = await h.client("bob", {
      connect: async () => {
        if (connects++ > 0) {
          target = Math.min(N, sent + AWAY);
          await progress.until(() => sent >= target);
        }
        return connect(p.url);
      },
      onEvent: () => progress.signal(),
    });
    const got: ChatMessage[] = [];
    const inbox = await bob.client.inbox((m) => {
      got.push(m);
      if (got.length % CUT_EVERY === 0 && bob.client.connected) void p.cutMidStream();
      progress.signal();
    });
    expect(inbox.lastSeq).toBe(2);
    for (let i = 1; i <= N; i++) {
      await progress.until(() => !bob.client.connected || i <= got.length + LEAD);
      expect(await toBob.send(`d${i}`)).toBe(i + 2);
      sent = i;
      progress.signal();
    }
    await within(
      progress.until(() => got.length >= N),
      20_000,
      "bob hearing every direct message",
    );
    expect(got.map((m) => m.text)).toEqual(texts("d", 1, N));
    expect(got.map((m) => m.seq)).toEqual(range(3, N + 2));
    expect(new Set(got.map((m) => `${m.room}|${m.author}|${m.kind}`))).toEqual(new Set(["|alice|text"]));
    expect(p.cuts).toBeGreaterThanOrEqual(4);
    await bob.nth(restored, p.cuts);
    expect(inbox.lastSeq).toBe(N + 2);
  }, 30_000);

  async function inboxAway(fillGaps: boolean) {
    h = await chatClientHarness({ windowMessages: 5 });
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const progress = signals();
    let sent = 0;
    const alice = await h.client("alice");
    const toBob = await alice.client.mailbox("bob");
    const bob = await gatedClient(h, proxy, "bob", progress, () => sent >= 23);
    const r = recorder();
    await bob.client.inbox(r.onMessage, { fillGaps, onUnrecoverable: r.onUnrecoverable });
    for (let i = 1; i <= 3; i++) await toBob.send(`d${i}`);
    await r.until(3);
    proxy.resetAll();
    await bob.nth(disconnected, 1);
    for (let i = 4; i <= 23; i++) {
      await toBob.send(`d${i}`);
      sent = i;
      progress.signal();
    }
    await bob.nth(restored, 1);
    return r;
  }

  it("beyond the window: the notice once, then with fillGaps every direct message once, in order", async () => {
    const r = await inboxAway(true);
    await r.until(24);
    expect(r.heard).toEqual(["d1", "d2", "d3", "lost (3, 19)", ...texts("d", 4, 23)]);
    expect(r.seqs).toEqual(range(1, 23));
  });

  it("beyond the window without fillGaps: the notice, then the retained ones", async () => {
    const r = await inboxAway(false);
    await r.until(9);
    expect(r.heard).toEqual(["d1", "d2", "d3", "lost (3, 19)", ...texts("d", 19, 23)]);
  });

  it("an inbox that had heard nothing yet still gets what came while it was away (0 is no resume point)", async () => {
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const progress = signals();
    let sent = 0;
    const alice = await h.client("alice");
    const toBob = await alice.client.mailbox("bob");
    const bob = await gatedClient(h, proxy, "bob", progress, () => sent >= 3);
    const r = recorder();
    const inbox = await bob.client.inbox(r.onMessage, { onUnrecoverable: r.onUnrecoverable });
    expect(inbox.lastSeq).toBe(0);
    proxy.resetAll();
    await bob.nth(disconnected, 1);
    for (let i = 1; i <= 3; i++) {
      await toBob.send(`e${i}`);
      sent = i;
      progress.signal();
    }
    await bob.nth(restored, 1);
    await toBob.send("e4");
    await r.until(4);
    expect(r.heard).toEqual(texts("e", 1, 4));
    expect(r.seqs).toEqual([1, 2, 3, 4]);
    expect((await inbox.history({ latest: true })).map((m) => m.text)).toEqual(texts("e", 1, 4));
  });
});

describe("membership ending", () => {
  async function member(name = "general", kind: "public" | "moderated" = "public") {
    const world = await chatClientHarness();
    h = world;
    await world.addUser("alice");
    await world.addUser("bob");
    proxy = await ResettingProxy.start(world.server.tcpPort as number);
    const progress = signals();
    let allowed = false;
    const alice = await world.client("alice");
    const aliceRoom = await alice.client.createRoom(name, kind, "", ignore);
    const bob = await gatedClient(world, proxy, "bob", progress, () => allowed);
    const closed: string[] = [];
    const r = recorder();
    const room = await bob.client.join(name, r.onMessage, { onClosed: (reason) => closed.push(reason) });
    const remove = async (): Promise<void> => {
      const mod = aliceRoom.current.moderation();
      try {
        await mod.moderator.remove({ user: "bob", reason: "spam" });
      } finally {
        mod.dispose();
      }
    };
    const members = async (): Promise<string[]> => {
      const res = await aliceRoom.current.members();
      return res.members.toArray().map((m) => m.user);
    };
    const release = (): void => {
      allowed = true;
      progress.signal();
    };
    return { alice, aliceRoom, bob, room, closed, r, remove, members, release, progress };
  }

  it("a member removed while disconnected is not re-joined (a public room would take them back); onClosed says why", async () => {
    const m = await member();
    expect(await m.members()).toEqual(["alice", "bob"]);
    proxy?.resetAll();
    await m.bob.nth(disconnected, 1);
    await m.remove();
    m.release();
    await m.bob.nth(restored, 1);
    expect(m.closed).toHaveLength(1);
    expect(m.closed[0]).toMatch(/no longer a member of general/);
    expect(m.room.active).toBe(false);
    expect(await m.members()).toEqual(["alice"]);
    const rooms = await m.bob.client.rooms();
    expect(rooms.map((r) => [r.name, r.member])).toEqual([["general", false]]);
    const err = await rejection(m.room.post("still here?"));
    expect(err.code).toBe(ErrorCode.REVOKED);
    expect(err.message).toMatch(/no longer a member of general/);
    expect(m.bob.events.filter((e) => e.type === "restoreFailed")).toEqual([]);
  });

  it("a removal heard live ends the handle once, with the moderator's reason; later reconnects leave it ended", async () => {
    const m = await member("lounge", "moderated");
    await m.remove();
    await waitFor(() => expect(m.closed).toHaveLength(1));
    expect(m.closed[0]).toBe("removed from lounge by alice: spam");
    expect(m.room.active).toBe(false);
    proxy?.resetAll();
    m.release();
    await m.bob.nth(restored, 1);
    expect(m.closed).toHaveLength(1);
    expect(await m.members()).toEqual(["alice"]);
  });

  it("leave() ends the handle without onClosed, and no reconnect joins again", async () => {
    const m = await member();
    await m.room.leave();
    expect(m.room.active).toBe(false);
    await m.room.leave(); // again: nothing to do
    expect(await m.members()).toEqual(["alice"]);
    proxy?.resetAll();
    m.release();
    await m.bob.nth(restored, 1);
    expect(m.closed).toEqual([]);
    expect(await m.members()).toEqual(["alice"]);
    expect((await rejection(m.room.markRead(1))).code).toBe(ErrorCode.REVOKED);
  });
});

describe("a session that cannot be resumed", () => {
  it("ends every handle with onClosed, and calls waiting for the rejoin fail", async () => {
    h = await chatClientHarness();
    await h.addUser("alice");
    const bobId = await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const progress = signals();
    let allowed = false;
    const alice = await h.client("alice");
    await alice.client.createRoom("general", "public", "", ignore);
    const bob = await gatedClient(h, proxy, "bob", progress, () => allowed);
    const closed: string[] = [];
    const room = await bob.client.join("general", ignore, { onClosed: (r) => closed.push(r) });
    const inbox = await bob.client.inbox(ignore);
    proxy.resetAll();
    await bob.nth(disconnected, 1);
    const waiting = room.post("never sent");
    // Logged out everywhere meanwhile: the resume token is gone.
    await h.store.bumpEpoch(bobId);
    allowed = true;
    progress.signal();
    await bob.nth((e) => e.type === "failed", 1);
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatch(/cannot resume the session/);
    const err = await rejection(waiting);
    expect(err.code).toBe(ErrorCode.REVOKED);
    expect(err.message).toMatch(/cannot resume the session/);
    expect([room.active, inbox.active]).toEqual([false, false]);
    expect((await rejection(bob.client.join("general", ignore))).message).toMatch(
      /cannot resume the session/,
    );
    expect((await alice.client.rooms())[0]?.members).toBe(2);
  });
});

describe("a room handle's calls", () => {
  it("post and markRead work across a reconnect on the new facet; calls made while away wait and go once", async () => {
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const progress = signals();
    let allowed = false;
    const alice = await h.client("alice");
    const aliceHeard = recorder();
    await alice.client.createRoom("general", "public", "", aliceHeard.onMessage); // seq 1
    const bob = await gatedClient(h, proxy, "bob", progress, () => allowed);
    const bobHeard = recorder();
    const room: ChatRoom = await bob.client.join("general", bobHeard.onMessage); // seq 2
    expect(room.lastSeq).toBe(2);
    expect(room.info).toMatchObject({ name: "general", owner: "alice", member: true, lastSeq: 2 });
    const before = room.current;
    proxy.resetAll();
    await bob.nth(disconnected, 1);
    expect(() => room.current).toThrow(/not joined right now/);
    const away = room.post("while away");
    const marked = room.markRead(2);
    allowed = true;
    progress.signal();
    const posted = await away;
    await marked;
    expect(posted).toMatchObject({
      room: "general",
      seq: 3,
      author: "bob",
      text: "while away",
      kind: "text",
    });
    await bob.nth(restored, 1);
    expect(room.current).not.toBe(before);
    const after = await room.post("after");
    expect(after.seq).toBe(4);
    await room.markRead(after.seq);
    const general = (await bob.client.rooms()).find((r) => r.name === "general");
    expect(general?.lastRead).toBe(4);
    await aliceHeard.until(3);
    // alice: bob's join, then each post once.
    expect(aliceHeard.heard).toEqual(["", "while away", "after"]);
    await bobHeard.until(2);
    expect(bobHeard.seqs).toEqual([3, 4]);
    expect((await room.history({ after: 2 })).map((m) => m.text)).toEqual(["while away", "after"]);
  });

  it("resumes from a position kept from an earlier run (resumeAfter), then live", async () => {
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    const alice = await h.client("alice");
    const aliceRoom = await alice.client.createRoom("general", "public", "", ignore);
    const first = await h.client("bob");
    const r1 = recorder();
    const room1 = await first.client.join("general", r1.onMessage);
    for (let i = 1; i <= 3; i++) await aliceRoom.post(`m${i}`);
    await r1.until(3);
    const kept = room1.lastSeq;
    first.client.close();
    for (let i = 4; i <= 6; i++) await aliceRoom.post(`m${i}`);
    const second = await h.client("bob");
    const r2 = recorder();
    await second.client.join("general", r2.onMessage, { resumeAfter: kept });
    await aliceRoom.post("m7");
    await r2.until(4);
    expect(r2.heard).toEqual(texts("m", 4, 7));
  });

  it("a handler that throws is reported, and the next message still arrives", async () => {
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    const alice = await h.client("alice");
    const aliceRoom = await alice.client.createRoom("general", "public", "", ignore);
    const bob = await h.client("bob");
    const heard: string[] = [];
    const s = signals();
    await bob.client.join("general", (m) => {
      heard.push(m.text);
      s.signal();
      if (m.text === "boom") throw new Error("the handler broke");
    });
    await aliceRoom.post("boom");
    await aliceRoom.post("fine");
    await s.until(() => heard.length >= 2);
    expect(heard).toEqual(["boom", "fine"]);
    const failed = bob.events.filter((e) => e.type === "handlerFailed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ where: "general", error: { message: "the handler broke" } });
  });
});

describe("bad input", () => {
  it("is refused with a precise error, and nothing refused is followed or rejoined", async () => {
    h = await chatClientHarness();
    await h.addUser("alice");
    await h.addUser("bob");
    proxy = await ResettingProxy.start(h.server.tcpPort as number);
    const p = proxy;
    const alice = await h.client("alice");
    await alice.client.createRoom("general", "public", "", ignore);
    const bob = await h.client("bob", { connect: () => connect(p.url) });
    const c = bob.client;
    const bad = async (call: Promise<unknown>, code: string, message: RegExp): Promise<void> => {
      const err = await rejection(call);
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    };
    await bad(c.join("no spaces!", ignore), ErrorCode.BAD_ARGUMENT, /room name/);
    await bad(c.join("nosuch", ignore), ErrorCode.NOT_FOUND, /no room nosuch/);
    await bad(c.join("general", "nope" as never), ErrorCode.BAD_ARGUMENT, /message handler function/);
    await bad(c.join("general", ignore, { onClosed: 5 as never }), ErrorCode.BAD_ARGUMENT, /onClosed/);
    await bad(c.join("general", ignore, { resumeAfter: -1 }), ErrorCode.BAD_ARGUMENT, /resumeAfter/);
    await bad(c.join("general", ignore, { resumeAfter: 99 }), ErrorCode.BAD_ARGUMENT, /beyond the room/);
    await bad(c.join(42 as never, ignore), ErrorCode.BAD_ARGUMENT, /room name must be text/);
    await bad(c.createRoom("x", "secret" as never, "", ignore), ErrorCode.BAD_ARGUMENT, /room kind/);
    await bad(c.inbox(ignore, { resumeAfter: 1.5 }), ErrorCode.BAD_ARGUMENT, /resumeAfter/);
    await bad(c.mailbox("nobody"), ErrorCode.NOT_FOUND, /no user nobody/);
    const connections = h.server.connections.size;
    await bad(h.client("bob", { fillPageSize: 101 }), ErrorCode.BAD_ARGUMENT, /fillPageSize is 1 to 100/);
    await bad(h.client("bob", { fillPageSize: 0 }), ErrorCode.BAD_ARGUMENT, /fillPageSize is 1 to 100/);
    expect(h.server.connections.size).toBe(connections);
    const room = await c.join("general", ignore);
    await bad(room.markRead(-1), ErrorCode.BAD_ARGUMENT, /seq must be an integer/);
    await bad(room.markRead(1.5), ErrorCode.BAD_ARGUMENT, /seq must be an integer/);
    await bad(room.markRead(99), ErrorCode.BAD_ARGUMENT, /has messages up to 2/);
    await bad(room.history({ after: -1 }), ErrorCode.BAD_ARGUMENT, /after must be an integer/);
    await bad(room.history({} as never), ErrorCode.BAD_ARGUMENT, /exactly one of latest, before and after/);
    await bad(
      room.history({ latest: true, before: 3 } as never),
      ErrorCode.BAD_ARGUMENT,
      /exactly one of latest, before and after/,
    );
    await bad(room.history({ latest: true, limit: 101 }), ErrorCode.BAD_ARGUMENT, /at most 100/);
    await bad(room.post(""), ErrorCode.BAD_ARGUMENT, /.+/);
    await bad(room.post(7 as never), ErrorCode.BAD_ARGUMENT, /message must be text/);
    // Nothing moved: the read marker, the room.
    const general = (await c.rooms()).find((r) => r.name === "general");
    expect([general?.lastRead, general?.lastSeq, general?.members]).toEqual([0, 2, 2]);
    // Only the good join is followed: a reconnect rejoins it alone, and fails nothing.
    p.resetAll();
    await bob.nth(restored, 1);
    expect(bob.events.filter((e) => e.type === "restoreFailed" || e.type === "handlerFailed")).toEqual([]);
    expect(room.active).toBe(true);
    expect((await room.post("ok")).seq).toBe(3);
  });

  it("after close every call fails as disconnected, and the broker keeps nothing of the client", async () => {
    h = await chatClientHarness();
    await h.addUser("bob");
    const bob = await h.client("bob");
    const room = await bob.client.createRoom("mine", "inviteOnly", "", ignore);
    bob.client.close();
    expect((await rejection(bob.client.join("mine", ignore))).code).toBe(ErrorCode.DISCONNECTED);
    expect((await rejection(room.post("x"))).code).toBe(ErrorCode.REVOKED);
    await waitFor(() => expect(h?.chat.attachmentCount).toBe(0));
  });
});
