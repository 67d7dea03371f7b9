/**
 * Chat's everyday behaviour over real connections: rooms made, joined, listed and read; messages
 * stamped by the server and heard by every device in order; read markers; typing and presence on
 * the injected clock; direct messages through send-only mailboxes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { MessageKind, RoomKind, Status } from "../../../src/wire/gen/chat.js";
import { rejection } from "../../helpers/errors.js";
import { type ChatWorld, createRoom, ear, inboxEar, join, makeChat, texts } from "./chat-harness.js";

let w: ChatWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

describe("rooms", () => {
  it("stamps author, time and a gap-free sequence on every message, and every member's listener hears them in order", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const aliceEar = ear();
    const bobEar = ear();
    const a = await createRoom(alice, "general", RoomKind.PUBLIC, aliceEar.cap);
    const b = await join(bob, "general", bobEar.cap);
    w.h.clock.advance(1000);
    const posted = (await a.post({ text: "hello" })).message;
    expect(posted.author).toBe("alice");
    expect(posted.at).toBe(BigInt(w.h.clock.now()));
    expect(posted.room).toBe("general");
    expect(posted.kind).toBe(MessageKind.TEXT);
    expect((await b.post({ text: "hi alice" })).message.seq).toBe(posted.seq + 1n);
    await aliceEar.untilText(2);
    await bobEar.untilText(2);
    // Alice heard Bob join (seq 2); Bob hears from his join on.
    expect(aliceEar.seqs()).toEqual([2, 3, 4]);
    expect(bobEar.seqs()).toEqual([3, 4]);
    expect(bobEar.texts()).toEqual(["alice: hello", "bob: hi alice"]);
    const history = (await b.history({ query: { latest: null, limit: 0 } })).messages;
    expect(history.toArray().map((m) => Number(m.seq))).toEqual([1, 2, 3, 4]);
    expect(history.get(0).kind).toBe(MessageKind.JOINED);
    expect(texts(history)).toEqual(["alice: hello", "bob: hi alice"]);
  });

  it("reads history latest, before and after a sequence, at most 100 at once", async () => {
    w = await makeChat({ messagesPerSecond: 1000 });
    const alice = await w.user("alice");
    const a = await createRoom(alice, "busy", RoomKind.PUBLIC);
    for (let i = 1; i <= 120; i++) await a.post({ text: `m${i}` });
    const seqs = async (query: object) =>
      (await a.history({ query })).messages.toArray().map((m) => Number(m.seq));
    expect(await seqs({ latest: null, limit: 3 })).toEqual([119, 120, 121]);
    expect((await seqs({ latest: null, limit: 0 })).length).toBe(50);
    expect(await seqs({ before: 4n, limit: 5 })).toEqual([1, 2, 3]);
    expect(await seqs({ after: 118n, limit: 5 })).toEqual([119, 120, 121]);
    expect((await seqs({ after: 0n, limit: 100 })).length).toBe(100);
    const err = await rejection(a.history({ query: { latest: null, limit: 101 } }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toBe("a history read returns at most 100 messages; asked for 101");
  });

  it("lists public and moderated rooms with the caller's marker and membership; markRead only moves forward", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "lobby", RoomKind.PUBLIC);
    await createRoom(alice, "mods", RoomKind.MODERATED);
    await createRoom(alice, "secret", RoomKind.INVITE_ONLY);
    await a.post({ text: "one" });
    await a.post({ text: "two" });
    await a.markRead({ seq: 3n });
    await a.markRead({ seq: 2n });
    const mine = (await alice.chat.rooms()).rooms.toArray();
    expect(mine.map((r) => r.name)).toEqual(["lobby", "mods", "secret"]);
    const lobby = mine[0];
    expect([lobby?.lastSeq, lobby?.lastRead, lobby?.member, lobby?.moderator, lobby?.members]).toEqual([
      3n,
      3n,
      true,
      true,
      1,
    ]);
    const theirs = (await bob.chat.rooms()).rooms.toArray();
    expect(theirs.map((r) => `${r.name} ${r.member} ${r.lastRead} ${r.owner}`)).toEqual([
      "lobby false 0 alice",
      "mods false 0 alice",
    ]);
    const err = await rejection(a.markRead({ seq: 4n }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await a.info()).info.lastRead).toBe(3n);
  });

  it("hands another device its own facet for the same membership; leaving ends it on both", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    await createRoom(alice, "general", RoomKind.PUBLIC);
    const bob = await w.user("bob");
    const phone = await join(bob, "general");
    const laptopDevice = await w.device("bob");
    const laptop = await join(laptopDevice, "general");
    // One membership: one `joined` message, one member.
    expect((await laptop.info()).info.members).toBe(2);
    expect((await laptop.info()).info.lastSeq).toBe(2n);
    await phone.leave();
    for (const facet of [phone, laptop]) {
      const err = await rejection(facet.post({ text: "still here?" }));
      expect(err.code).toBe(ErrorCode.REVOKED);
      expect(err.message).toBe("this membership of general has ended");
    }
    const again = await join(laptopDevice, "general");
    expect((await again.post({ text: "back" })).message.author).toBe("bob");
    // The old facets stay dead: the membership was renewed, not revived.
    expect((await rejection(phone.info())).code).toBe(ErrorCode.REVOKED);
  });
});

describe("typing and presence", () => {
  it("tells the other members' listeners who types until when, at most once a second per typer", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const aliceEar = ear();
    const bobEar = ear();
    const a = await createRoom(alice, "general", RoomKind.PUBLIC, aliceEar.cap);
    await join(bob, "general", bobEar.cap);
    const t0 = w.h.clock.now();
    await a.typing();
    await a.typing();
    w.h.clock.advance(1000);
    await a.typing();
    await bobEar.untilTyping(2);
    expect(bobEar.typing).toEqual([`alice ${t0 + 5000}`, `alice ${t0 + 6000}`]);
    // Alice's own listener hears nothing of her typing.
    await a.post({ text: "sync" });
    await aliceEar.untilText(1);
    expect(aliceEar.typing).toEqual([]);
  });

  it("shows online while a device is attached, a status until its lifetime lapses on the clock, offline after the last device", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const status = async (who: string) => {
      const p = (await bob.chat.presence({ users: [who] })).presence.get(0);
      return `${p.status} ${p.text}`;
    };
    expect(await status("alice")).toBe(`${Status.ONLINE} `);
    await alice.chat.setStatus({ status: Status.AWAY, text: "lunch", ttlMs: 60_000 });
    expect(await status("alice")).toBe(`${Status.AWAY} lunch`);
    w.h.clock.advance(59_999);
    expect(await status("alice")).toBe(`${Status.AWAY} lunch`);
    w.h.clock.advance(1);
    expect(await status("alice")).toBe(`${Status.ONLINE} `);
    expect(await status("nobody")).toBe(`${Status.OFFLINE} `);
    alice.drop();
    await expect.poll(() => status("alice")).toBe(`${Status.OFFLINE} `);
  });

  it("tells a room's listeners when a member's status changes", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    await createRoom(alice, "general", RoomKind.PUBLIC);
    const bobEar = ear();
    await join(bob, "general", bobEar.cap);
    await alice.chat.setStatus({ status: Status.BUSY, text: "", ttlMs: 0 });
    await bobEar.untilPresence(1);
    expect(bobEar.presence).toEqual([`alice ${Status.BUSY}`]);
  });
});

describe("direct messages", () => {
  it("go through a send-only mailbox stamped with the sender, into the recipient's inbox on every device", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const bobLaptop = await w.device("bob");
    const phoneEar = inboxEar();
    const laptopEar = inboxEar();
    await bob.chat.inbox({ options: { listener: phoneEar.cap } });
    const { inbox } = await bobLaptop.chat.inbox({ options: { listener: laptopEar.cap } });
    const mailbox = alice.chat.mailbox({ user: "bob" }).mailbox;
    expect((await mailbox.send({ text: "psst" })).seq).toBe(1n);
    expect((await mailbox.send({ text: "bob: I owe alice 100" })).seq).toBe(2n);
    await phoneEar.until(2);
    await laptopEar.until(2);
    expect(laptopEar.messages.map((m) => `${m.seq} ${m.author}: ${m.text}`)).toEqual([
      "1 alice: psst",
      "2 alice: bob: I owe alice 100",
    ]);
    const read = (await inbox.history({ query: { latest: null, limit: 10 } })).messages.toArray();
    expect(read.map((m) => `${m.room}|${m.author}: ${m.text}`)).toEqual([
      "|alice: psst",
      "|alice: bob: I owe alice 100",
    ]);
    const err = await rejection(alice.chat.mailbox({ user: "nobody" }).mailbox.send({ text: "x" }));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    expect(err.message).toBe("no user nobody");
  });
});
