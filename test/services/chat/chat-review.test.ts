/**
 * Findings of the adversarial review of chat (issue 12), each over real connections on the login
 * harness and each failing before its fix: an invitation older than a ban lifting it (and one of
 * a member who left coming back to life with them); the post rate held per room only, so one user
 * in many rooms writes (and pins in memory) without bound; room and inbox windows bounded by
 * count only, so 4000-character messages pin ~16 MB per room; status changes unthrottled though
 * each one reaches every listener of every room the user is in; a mute time beyond what a Date
 * holds failing with an internal error instead of a precise one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { Invitation, MessageKind, RoomKind, Status } from "../../../src/wire/gen/chat.js";
import { rejection } from "../../helpers/errors.js";
import {
  CHAT_KEYRING,
  type ChatWorld,
  createRoom,
  ear,
  handOver,
  inboxEar,
  join,
  makeChat,
  RELAY_PAIR,
  relay,
} from "./chat-harness.js";

const WITH_RELAY = [...CHAT_KEYRING, RELAY_PAIR];

let w: ChatWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

describe("bans and invitations", () => {
  it("an invitation from before a removal does not lift the ban: it died when its invitee joined", async () => {
    w = await makeChat();
    const mod = await w.user("mod");
    const alice = await w.user("alice");
    const m = await createRoom(mod, "town", RoomKind.MODERATED);
    // The moderator invites Alice by name; she joins directly instead (a moderated room is public).
    (await m.invite({ user: "alice" })).invitation.dispose();
    await join(alice, "town");
    await (await m.moderation()).moderator.remove({ user: "alice", reason: "spam" });
    expect((await alice.chat.invitations()).invitations.getLength()).toBe(0);
    // A moderator's invitation made after the removal is what lifts a ban.
    (await m.invite({ user: "alice" })).invitation.dispose();
    expect((await alice.chat.invitations()).invitations.getLength()).toBe(1);
  });

  it("an invitation she held from before does not let a removed member back in", async () => {
    w = await makeChat();
    const mod = await w.user("mod");
    const alice = await w.user("alice");
    const m = await createRoom(mod, "town", RoomKind.MODERATED);
    const inbox = inboxEar();
    await alice.chat.inbox({ options: { listener: inbox.cap } });
    (await m.invite({ user: "alice" })).invitation.dispose();
    await inbox.untilInvited(1);
    const kept = inbox.invitations[0];
    if (kept === undefined) throw new Error("no invitation heard");
    await join(alice, "town");
    await (await m.moderation()).moderator.remove({ user: "alice", reason: "spam" });
    const err = await rejection(alice.chat.acceptInvitation({ invitation: kept.dup(), options: {} }));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    expect((await m.members()).members.toArray().map((p) => p.user)).toEqual(["mod"]);
    inbox.dispose();
  });

  it("an invitation dies with its inviter's membership and stays dead when they come back", async () => {
    w = await makeChat({}, { extra: [relay()] });
    const owner = await w.user("owner", WITH_RELAY);
    const bob = await w.user("bob", WITH_RELAY);
    const carol = await w.user("carol", WITH_RELAY);
    const o = await createRoom(owner, "club", RoomKind.INVITE_ONLY);
    const inbox = inboxEar();
    await bob.chat.inbox({ options: { listener: inbox.cap } });
    const enter = async (n: number) => {
      (await o.invite({ user: "bob" })).invitation.dispose();
      await inbox.untilInvited(n);
      const call = (inbox.invitations[n - 1] as Invitation).accept({ options: {} });
      const member = call.member.dup();
      await call;
      call.dispose();
      return member;
    };
    const b = await enter(1);
    const bearer = (await b.invite({ user: "" })).invitation;
    await b.leave();
    b.dispose();
    (await enter(2)).dispose();
    // Bob is back; the bearer invitation he made in his first membership stays spent.
    const carried = await handOver(bob, carol, bearer, Invitation);
    const err = await rejection(carol.chat.acceptInvitation({ invitation: carried, options: {} }));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    expect((await o.members()).members.toArray().map((p) => p.user)).toEqual(["bob", "owner"]);
    inbox.dispose();
  });
});

describe("one user in many rooms", () => {
  it("is held to a post rate over all rooms, not 10 a second in each", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const rooms = [];
    for (let i = 0; i < 5; i++) rooms.push(await createRoom(alice, `r${i}`, RoomKind.PUBLIC));
    w.h.clock.advance(10_000);
    let posted = 0;
    let refused = 0;
    for (const r of rooms) {
      for (let i = 0; i < 10; i++) {
        await Promise.resolve(r.post({ text: "x" })).then(
          () => posted++,
          (e: { code?: string; message?: string }) => {
            expect(e.code).toBe(ErrorCode.QUOTA);
            expect(e.message).toContain("over all rooms");
            refused++;
          },
        );
      }
    }
    expect([posted, refused]).toEqual([20, 30]);
    // A refused post took nothing from its room's own bucket: after a second the room's 10 are there.
    w.h.clock.advance(1000);
    for (let i = 0; i < 10; i++) await rooms[4]?.post({ text: "later" });
    for (const r of rooms) r.dispose();
  });

  it("pins at most windowBytes of messages per room in memory; older ones are read from history", async () => {
    w = await makeChat({ messagesPerSecond: 1000, userMessagesPerSecond: 1000 });
    const alice = await w.user("alice");
    const a = await createRoom(alice, "big", RoomKind.PUBLIC);
    const text = "😀".repeat(4000); // 4000 characters, 8000 UTF-16 units
    for (let i = 0; i < 200; i++) await a.post({ text });
    const held = w.service().heldBytes;
    expect(held).toBeLessThanOrEqual(1024 * 1024);
    expect(held).toBeGreaterThan(1024 * 1024 - 20_000);
    // A listener resuming from the start hears what was lost, then the retained tail, in order.
    const bob = await w.user("bob");
    const e = ear();
    const b = await join(bob, "big", e.cap, 1n);
    await e.untilUnrecoverable();
    await e.until(60);
    const [after, from] = e.unrecoverable[0] ?? [0, 0];
    expect(after).toBe(1);
    expect(from).toBeGreaterThan(2);
    expect(e.seqs().slice(0, 3)).toEqual([from, from + 1, from + 2]);
    // History still has every message.
    const old = (await b.history({ query: { after: 1n, limit: 100 } })).messages.toArray();
    expect(old.map((m) => Number(m.seq))).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
    b.dispose();
    a.dispose();
  });

  it("bounds an inbox's window the same way", async () => {
    w = await makeChat({ messagesPerSecond: 1000 });
    const bob = await w.user("bob");
    const alice = await w.user("alice");
    await bob.chat.inbox({ options: {} });
    const box = (await alice.chat.mailbox({ user: "bob" })).mailbox;
    for (let i = 0; i < 200; i++) await box.send({ text: "😀".repeat(4000) });
    expect(w.service().heldBytes).toBeLessThanOrEqual(1024 * 1024);
    box.dispose();
  });
});

describe("status changes", () => {
  it("are rate-limited: each one reaches every listener of every room the user is in", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const e = ear();
    const a = await createRoom(alice, "r", RoomKind.PUBLIC);
    const b = await join(bob, "r", e.cap);
    let set = 0;
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      await Promise.resolve(alice.chat.setStatus({ status: Status.AWAY, text: `${i}`, ttlMs: 0 })).then(
        () => set++,
        (err: { code?: string }) => {
          expect(err.code).toBe(ErrorCode.QUOTA);
          refused++;
        },
      );
    }
    expect([set, refused]).toEqual([3, 17]);
    w.h.clock.advance(1000);
    await alice.chat.setStatus({ status: Status.BUSY, text: "", ttlMs: 0 });
    a.dispose();
    b.dispose();
  });
});

describe("mutes", () => {
  it("refuses a time beyond what a date can hold with BAD_ARGUMENT, muting nobody", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "m", RoomKind.MODERATED);
    const b = await join(bob, "m");
    const mod = (await a.moderation()).moderator;
    const err = await rejection(mod.mute({ user: "bob", untilMs: 9_000_000_000_000_000n }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await b.post({ text: "still here" })).message.kind).toBe(MessageKind.TEXT);
    mod.dispose();
    a.dispose();
    b.dispose();
  });
});
