/**
 * Recovery (issue 12 §3): a device that reconnects resumes each room and its inbox from the last
 * sequence it saw with no message lost and none twice, even while new ones keep coming; a
 * listener that stops answering catches up from the window; beyond the window it hears
 * `unrecoverable` and fills in from history; and everything stored survives closing the broker
 * and reopening the same SQLite file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import { MessageKind, RoomKind, type RoomMember } from "../../../src/wire/gen/chat.js";
import {
  type ChatWorld,
  createRoom,
  type Device,
  ear,
  inboxEar,
  join,
  makeChat,
  texts,
} from "./chat-harness.js";

let w: ChatWorld | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await w?.h.close();
  w = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function postMany(m: RoomMember, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await m.post({ text: `m${i}` });
}

describe("resuming a room", () => {
  it("after a dropped connection, a new one resumes from the last sequence seen: none lost, none twice, while posts go on", async () => {
    w = await makeChat({ messagesPerSecond: 1000 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const first = ear();
    await join(bob, "general", first.cap); // seq 2
    await postMany(a, 1, 5); // seqs 3..7
    await first.until(5);
    const lastSeen = first.seqs().at(-1) as number;
    expect(lastSeen).toBe(7);
    bob.drop();
    await postMany(a, 6, 12); // seqs 8..14, while Bob is away
    const again = await w.device("bob");
    const resumed = ear();
    const call = again.chat.join({
      room: "general",
      options: { listener: resumed.cap, resumeAfter: BigInt(lastSeen) },
    });
    // Posts racing the resume: each must arrive once, in order, after the replay.
    const racing = postMany(a, 13, 20); // seqs 15..22
    await call;
    call.dispose();
    await racing;
    await resumed.until(15);
    expect(resumed.seqs()).toEqual(range(8, 22));
    expect(resumed.texts()).toEqual(range(6, 20).map((i) => `alice: m${i}`));
    expect(resumed.unrecoverable).toEqual([]);
  });

  it("lets a listener that stops answering fall behind and catch up from the window, in order, without duplicates", async () => {
    w = await makeChat({ messagesPerSecond: 1000, maxNotificationsInFlight: 4 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const slow = ear({ hold: true });
    await join(bob, "general", slow.cap); // seq 2
    await postMany(a, 1, 30); // seqs 3..32
    // Four in flight, the rest waiting in the room's window rather than in a queue.
    await slow.until(4);
    expect(slow.seqs()).toEqual([3, 4, 5, 6]);
    slow.release();
    await slow.until(30);
    expect(slow.seqs()).toEqual(range(3, 32));
  });

  it("beyond the window says unrecoverable(after, resumedFrom) first; history fills the gap in", async () => {
    w = await makeChat({ messagesPerSecond: 1000, windowMessages: 10 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const first = ear();
    await join(bob, "general", first.cap); // seq 2
    await postMany(a, 1, 3); // seqs 3..5
    await first.until(3);
    bob.drop();
    await postMany(a, 4, 23); // seqs 6..25: the window keeps 16..25
    const again = await w.device("bob");
    const resumed = ear();
    const member = await join(again, "general", resumed.cap, 5n);
    await resumed.until(10);
    expect(resumed.unrecoverable).toEqual([[5, 16]]);
    expect(resumed.seqs()).toEqual(range(16, 25));
    const gap = (await member.history({ query: { after: 5n, limit: 10 } })).messages;
    expect(gap.toArray().map((m) => Number(m.seq))).toEqual(range(6, 15));
    expect(texts(gap)).toEqual(range(4, 13).map((i) => `alice: m${i}`));
  });
});

describe("resuming an inbox", () => {
  it("replays the direct messages after resumeAfter, then live ones; beyond the window says unrecoverable", async () => {
    w = await makeChat({ messagesPerSecond: 1000, windowMessages: 5 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const mailbox = alice.chat.mailbox({ user: "bob" }).mailbox;
    const first = inboxEar();
    await bob.chat.inbox({ options: { listener: first.cap } });
    for (let i = 1; i <= 3; i++) await mailbox.send({ text: `d${i}` });
    await first.until(3);
    bob.drop();
    for (let i = 4; i <= 6; i++) await mailbox.send({ text: `d${i}` });
    const phone = await w.device("bob");
    const resumed = inboxEar();
    await phone.chat.inbox({ options: { listener: resumed.cap, resumeAfter: 3n } });
    await mailbox.send({ text: "d7" });
    await resumed.until(4);
    expect(resumed.messages.map((m) => `${m.seq} ${m.text}`)).toEqual(["4 d4", "5 d5", "6 d6", "7 d7"]);
    // Gone beyond the 5 kept: unrecoverable from 1, then 3..7.
    const laptop = await w.device("bob");
    const late = inboxEar();
    await laptop.chat.inbox({ options: { listener: late.cap, resumeAfter: 1n } });
    await late.until(5);
    expect(late.unrecoverable).toEqual([[1, 3]]);
    expect(late.messages.map((m) => m.seq)).toEqual([3, 4, 5, 6, 7]);
  });
});

describe("durability", () => {
  it("keeps rooms, members, history, read markers and inboxes across closing the broker and reopening the file", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "parallax-chat-"));
    dirs.push(dir);
    const file = path.join(dir, "chat.db");
    let store = SqliteBrokerStore.open(file);
    w = await makeChat({ windowMessages: 10, messagesPerSecond: 1000 }, { store });
    let alice: Device = await w.user("alice");
    let bob: Device = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.MODERATED);
    await createRoom(alice, "secret", RoomKind.INVITE_ONLY);
    const b = await join(bob, "general");
    await (await a.moderation()).moderator.mute({ user: "bob", untilMs: 0n });
    await postMany(a, 1, 3); // seqs 4..6
    await b.markRead({ seq: 5n });
    await alice.chat.mailbox({ user: "bob" }).mailbox.send({ text: "kept" });
    await w.h.close();
    store.close();

    store = SqliteBrokerStore.open(file);
    w = await makeChat({ windowMessages: 10, messagesPerSecond: 1000 }, { store });
    alice = await w.device("alice");
    bob = await w.device("bob");
    const bobEar = ear();
    // Resuming across the restart: the window was rebuilt from the store.
    const b2 = await join(bob, "general", bobEar.cap, 4n);
    await bobEar.until(2);
    expect(bobEar.seqs()).toEqual([5, 6]);
    const info = (await b2.info()).info;
    expect([info.lastSeq, info.lastRead, info.members, info.owner, info.kind]).toEqual([
      6n,
      5n,
      2,
      "alice",
      RoomKind.MODERATED,
    ]);
    // Still muted: the mute was stored with the membership.
    expect(
      await b2.post({ text: "?" }).then(
        () => "posted",
        (e: unknown) => (e as Error).message,
      ),
    ).toBe("you are muted in general until a moderator unmutes you");
    const history = (await b2.history({ query: { latest: null } })).messages.toArray();
    expect(history.map((m) => m.kind)).toEqual([
      MessageKind.JOINED,
      MessageKind.JOINED,
      MessageKind.MUTED,
      MessageKind.TEXT,
      MessageKind.TEXT,
      MessageKind.TEXT,
    ]);
    const a2 = await join(alice, "general");
    expect(Number((await a2.post({ text: "after restart" })).message.seq)).toBe(7);
    expect((await alice.chat.rooms()).rooms.toArray().map((r) => r.name)).toEqual(["general", "secret"]);
    const { inbox } = await bob.chat.inbox({ options: {} });
    const dms = (await inbox.history({ query: { latest: null } })).messages.toArray();
    expect(dms.map((m) => `${m.author}: ${m.text}`)).toEqual(["alice: kept"]);
    await w.h.close();
    w = undefined;
    store.close();
  });
});
