/**
 * Hostile input to chat: every refused call gets a precise error and changes nothing — no message
 * stored or heard, no room made, no membership, no listener kept — and the others carry on.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { Invitation, RoomKind, RoomListener, Status } from "../../../src/wire/gen/chat.js";
import { rejection } from "../../helpers/errors.js";
import { type ChatWorld, createRoom, ear, inboxEar, join, makeChat, texts } from "./chat-harness.js";

let w: ChatWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

async function expectError(call: PromiseLike<unknown>, code: string, message: string): Promise<void> {
  const err = await rejection(call);
  expect([err.code, err.message]).toEqual([code, message]);
}

describe("messages", () => {
  it("refuses empty, over-long and control-laden texts, storing and telling nothing; 4000 characters (emoji too) pass", async () => {
    w = await makeChat({ messagesPerSecond: 1000 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const bobEar = ear();
    await join(bob, "general", bobEar.cap);
    await expectError(
      a.post({ text: "" }),
      ErrorCode.BAD_ARGUMENT,
      "a message has 1 to 4000 characters; got 0",
    );
    await expectError(
      a.post({ text: "x".repeat(4001) }),
      ErrorCode.BAD_ARGUMENT,
      "a message has 1 to 4000 characters; got more than 4000",
    );
    await expectError(
      a.post({ text: "x".repeat(1_000_000) }),
      ErrorCode.BAD_ARGUMENT,
      "a message has 1 to 4000 characters; got more than 4000",
    );
    for (const bad of ["bell\u0007", "esc\u001b[31m", "gnp.exe\u202eLIAME"]) {
      await expectError(
        a.post({ text: bad }),
        ErrorCode.BAD_ARGUMENT,
        "a message cannot contain control characters (but line breaks and tabs) or bidirectional overrides",
      );
    }
    const full = "x".repeat(4000);
    const emoji = "😀".repeat(4000); // 8000 UTF-16 units, 4000 characters
    await a.post({ text: full });
    await a.post({ text: emoji });
    await a.post({ text: "two\nlines\tand a tab" });
    await bobEar.untilText(3);
    expect(bobEar.texts()).toEqual([`alice: ${full}`, `alice: ${emoji}`, "alice: two\nlines\tand a tab"]);
    expect(texts((await a.history({ query: { latest: null } })).messages).length).toBe(3);
  });

  it("holds each member to 10 posts a second on the clock: the 11th is QUOTA, others post on, the next token comes after 100 ms", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const b = await join(bob, "general");
    const flood = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => a.post({ text: `f${i}` })));
    expect(flood.filter((r) => r.status === "fulfilled").length).toBe(10);
    const refused = flood.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(refused.reason.code).toBe(ErrorCode.QUOTA);
    expect(refused.reason.message).toBe(
      "posting in general: at most 10 a second (a burst of 10); wait 100 ms",
    );
    expect((await b.post({ text: "unaffected" })).message.author).toBe("bob");
    w.h.clock.advance(99);
    expect((await rejection(a.post({ text: "too soon" }))).code).toBe(ErrorCode.QUOTA);
    w.h.clock.advance(1);
    await a.post({ text: "allowed" });
    const stored = texts((await b.history({ query: { latest: null, limit: 100 } })).messages);
    expect(stored.filter((t) => t.startsWith("alice")).length).toBe(11);
    expect(stored).not.toContain("alice: too soon");
  });

  it("holds each sender to 10 direct messages a second", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    await w.user("bob");
    const mailbox = alice.chat.mailbox({ user: "bob" }).mailbox;
    for (let i = 0; i < 10; i++) await mailbox.send({ text: `d${i}` });
    await expectError(
      mailbox.send({ text: "one more" }),
      ErrorCode.QUOTA,
      "sending direct messages: at most 10 a second (a burst of 10); wait 100 ms",
    );
  });
});

describe("names and arguments", () => {
  it("refuses malformed room names and topics before anything is made; names are unique ignoring case", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bad: Array<[string, string]> = [
      ["", "a room name has 1 to 64 characters; got 0"],
      ["x".repeat(65), "a room name has 1 to 64 characters; got 65"],
      ["x".repeat(10_000), "a room name has 1 to 64 characters; got 10000"],
      ["two words", "a room name has only ASCII letters, digits, '-', '_' and '.'"],
      ["café", "a room name has only ASCII letters, digits, '-', '_' and '.'"],
      ["general\n", "a room name has only ASCII letters, digits, '-', '_' and '.'"],
    ];
    for (const [name, message] of bad) {
      await expectError(
        alice.chat.createRoom({ name, kind: RoomKind.PUBLIC, topic: "", options: {} }),
        ErrorCode.BAD_ARGUMENT,
        message,
      );
      await expectError(alice.chat.join({ room: name, options: {} }), ErrorCode.BAD_ARGUMENT, message);
    }
    await expectError(
      alice.chat.createRoom({ name: "ok", kind: RoomKind.PUBLIC, topic: "t".repeat(201), options: {} }),
      ErrorCode.BAD_ARGUMENT,
      "a topic has at most 200 characters",
    );
    await expectError(
      alice.chat.createRoom({ name: "ok", kind: 7 as RoomKind, topic: "", options: {} }),
      ErrorCode.BAD_ARGUMENT,
      "no room kind 7",
    );
    expect((await alice.chat.rooms()).rooms.getLength()).toBe(0);
    await createRoom(alice, "General", RoomKind.PUBLIC);
    await expectError(
      alice.chat.createRoom({ name: "gENERAL", kind: RoomKind.PUBLIC, topic: "", options: {} }),
      ErrorCode.ALREADY_EXISTS,
      "a room named gENERAL exists already",
    );
    expect((await alice.chat.rooms()).rooms.toArray().map((r) => r.name)).toEqual(["General"]);
  });

  it("refuses 10 000-character user names and 101 users in presence with BAD_ARGUMENT", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const long = "u".repeat(10_000);
    const a = await createRoom(alice, "general", RoomKind.MODERATED);
    const mod = (await a.moderation()).moderator;
    for (const call of [
      alice.chat.mailbox({ user: long }).mailbox.send({ text: "x" }),
      alice.chat.presence({ users: [long] }),
      a.invite({ user: long }),
      mod.mute({ user: long, untilMs: 0n }),
      mod.remove({ user: long, reason: "" }),
    ]) {
      await expectError(call, ErrorCode.BAD_ARGUMENT, "a user name has 1 to 64 characters");
    }
    const many = Array.from({ length: 101 }, (_, i) => `user${i}`);
    await expectError(
      alice.chat.presence({ users: many }),
      ErrorCode.BAD_ARGUMENT,
      "presence answers for at most 100 users at once; asked for 101",
    );
    expect((await alice.chat.presence({ users: many.slice(0, 100) })).presence.getLength()).toBe(100);
  });

  it("refuses statuses one cannot set, lifetimes over a day and mutes in the past", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    await expectError(
      alice.chat.setStatus({ status: Status.OFFLINE, text: "", ttlMs: 0 }),
      ErrorCode.BAD_ARGUMENT,
      "a status set is online, away or busy",
    );
    await expectError(
      alice.chat.setStatus({ status: Status.AWAY, text: "", ttlMs: 86_400_001 }),
      ErrorCode.BAD_ARGUMENT,
      "a status lasts at most 86400000 ms (a day)",
    );
    await expectError(
      alice.chat.setStatus({ status: Status.AWAY, text: "s".repeat(101), ttlMs: 0 }),
      ErrorCode.BAD_ARGUMENT,
      "a status text has at most 100 characters",
    );
    expect((await bob.chat.presence({ users: ["alice"] })).presence.get(0).status).toBe(Status.ONLINE);
    const a = await createRoom(alice, "mod", RoomKind.MODERATED);
    await join(bob, "mod");
    const mod = (await a.moderation()).moderator;
    await expectError(
      mod.mute({ user: "bob", untilMs: BigInt(w.h.clock.now()) }),
      ErrorCode.BAD_ARGUMENT,
      "a mute lasts until a time in the future (ms since the epoch), or 0",
    );
    await expectError(
      mod.mute({ user: "alice", untilMs: 0n }),
      ErrorCode.BAD_ARGUMENT,
      "a moderator cannot mute themselves",
    );
    await expectError(
      mod.remove({ user: "bob", reason: "r".repeat(201) }),
      ErrorCode.BAD_ARGUMENT,
      "a reason has at most 200 characters",
    );
    expect((await a.members()).members.getLength()).toBe(2);
  });

  it("refuses a resume point beyond the room's or the inbox's last message, keeping no listener and joining nothing", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    await createRoom(alice, "general", RoomKind.PUBLIC);
    const e = ear();
    await expectError(
      bob.chat.join({ room: "general", options: { listener: e.cap, resumeAfter: 2n } }),
      ErrorCode.BAD_ARGUMENT,
      "resumeAfter 2 is beyond the room's last message (1)",
    );
    await expectError(
      bob.chat.join({ room: "general", options: { resumeAfter: 2n ** 63n } }),
      ErrorCode.BAD_ARGUMENT,
      `resumeAfter ${2n ** 63n} is beyond any sequence`,
    );
    expect((await bob.chat.rooms()).rooms.get(0).member).toBe(false);
    const i = inboxEar();
    await expectError(
      bob.chat.inbox({ options: { listener: i.cap, resumeAfter: 1n } }),
      ErrorCode.BAD_ARGUMENT,
      "resumeAfter 1 is beyond the inbox's last message (0)",
    );
  });
});

describe("capabilities", () => {
  it("refuses as an invitation a null capability and a capability of another kind", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    for (const invitation of [null, a.castAs(Invitation)]) {
      await expectError(
        alice.chat.acceptInvitation({ invitation, options: {} }),
        ErrorCode.BAD_ARGUMENT,
        "this capability is no invitation of this server",
      );
    }
  });

  it("drops a listener whose deliveries fail, and the room and the other listeners carry on", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    let calls = 0;
    const broken = RoomListener.server({
      message() {
        calls++;
        throw new Error("listener broke");
      },
      typing() {},
      presence() {},
      unrecoverable() {},
      closed() {},
    });
    const a = await createRoom(alice, "general", RoomKind.PUBLIC, broken);
    const bobEar = ear();
    await join(bob, "general", bobEar.cap);
    await a.post({ text: "one" });
    await a.post({ text: "two" });
    await bobEar.untilText(2);
    // The first delivery failed (Bob's join); nothing more was sent to it.
    expect(calls).toBe(1);
    const aliceId = (await w.h.store.findIdentityByName("alice"))?.id as number;
    expect([...w.service().attachedOf(aliceId)].map((p) => p.listenerCount)).toEqual([0]);
  });
});

describe("quotas", () => {
  it("caps rooms owned, members per room, open invitations and listeners per device with QUOTA, changing nothing", async () => {
    w = await makeChat({
      maxRoomsOwned: 2,
      maxMembersPerRoom: 2,
      maxOpenInvitations: 2,
      maxListenersPerAttachment: 2,
    });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const carol = await w.user("carol");
    const one = await createRoom(alice, "one", RoomKind.INVITE_ONLY);
    await createRoom(alice, "two", RoomKind.PUBLIC);
    await expectError(
      alice.chat.createRoom({ name: "three", kind: RoomKind.PUBLIC, topic: "", options: {} }),
      ErrorCode.QUOTA,
      "a user owns at most 2 rooms",
    );
    await join(bob, "two");
    await expectError(
      carol.chat.join({ room: "two", options: {} }),
      ErrorCode.QUOTA,
      "room two is full (at most 2 members)",
    );
    for (let i = 0; i < 2; i++) (await one.invite({ user: "" })).invitation.dispose();
    await expectError(
      one.invite({ user: "" }),
      ErrorCode.QUOTA,
      "at most 2 open invitations per inviter and room",
    );
    const e1 = ear();
    const e3 = ear();
    await alice.chat.inbox({ options: { listener: inboxEar().cap } });
    await join(alice, "two", e1.cap);
    await expectError(
      alice.chat.join({ room: "one", options: { listener: e3.cap } }),
      ErrorCode.QUOTA,
      "this attachment has 2 chat listeners (at most 2)",
    );
    expect((await alice.chat.rooms()).rooms.toArray().map((r) => r.name)).toEqual(["one", "two"]);
  });
});
