/**
 * History on join (issue 12 §1: "History on join and on demand"): `JoinOptions.history` returns
 * the newest messages with the join itself, ending exactly where the device's listener starts,
 * so a page shows the room at once and the live messages continue it with no overlap or gap.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { MessageKind, RoomKind } from "../../../src/wire/gen/chat.js";
import { rejection } from "../../helpers/errors.js";
import { type ChatWorld, createRoom, ear, makeChat, texts } from "./chat-harness.js";

let w: ChatWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

describe("history on join", () => {
  it("returns the newest N messages, oldest first, ending where the listener starts", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const room = await createRoom(alice, "general", RoomKind.PUBLIC);
    for (let i = 1; i <= 8; i++) await room.post({ text: `m${i}` });
    const bobEar = ear();
    const joined = await bob.chat.join({ room: "general", options: { listener: bobEar.cap, history: 5 } });
    // The newest five up to the join, bob's own "joined" line the last of them: m5..m8 and it.
    expect(joined.history.getLength()).toBe(5);
    expect(texts(joined.history)).toEqual(["alice: m5", "alice: m6", "alice: m7", "alice: m8"]);
    const last = joined.history.get(4);
    expect([last.author, last.kind]).toEqual(["bob", MessageKind.JOINED]);
    await room.post({ text: "m9" });
    await bobEar.untilText(1);
    expect(bobEar.texts()).toEqual(["alice: m9"]);
    expect(Math.min(...bobEar.seqs())).toBe(Number(last.seq) + 1);
    joined.member.dispose();
    room.dispose();
  });

  it("with resumeAfter, ends at the resume point so the replay continues it; 0 means none; over 100 is refused", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const room = await createRoom(alice, "general", RoomKind.PUBLIC);
    const seqs: bigint[] = [];
    for (let i = 1; i <= 6; i++) seqs.push((await room.post({ text: `m${i}` })).message.seq);
    const second = await w.device("alice");
    const e = ear();
    const again = await second.chat.join({
      room: "general",
      options: { listener: e.cap, resumeAfter: seqs[2], history: 2 },
    });
    expect(texts(again.history)).toEqual(["alice: m2", "alice: m3"]);
    await e.untilText(3);
    expect(e.texts()).toEqual(["alice: m4", "alice: m5", "alice: m6"]);
    const none = await second.chat.join({ room: "general", options: {} });
    expect(none.history.getLength()).toBe(0);
    const err = await rejection(second.chat.join({ room: "general", options: { history: 101 } }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("at most 100 messages of history");
    again.member.dispose();
    none.member.dispose();
    room.dispose();
  });
});
