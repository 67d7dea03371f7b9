/**
 * The chat repository (migration 7): messages numbered without gaps whatever races and fails,
 * every write checking the login and the membership epoch in its transaction, bans that keep
 * removed members out, invitations used once, inboxes numbered per user, the tables' CHECKs, and
 * everything surviving closing and reopening the file.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import {
  CHAT_STORE,
  type ChatActor,
  type ChatMembershipActor,
  type ChatStore,
  type IdentityRecord,
  type SqliteBrokerStore,
} from "../../src/store/index.js";
import { TempStores, withRaw } from "./fixtures.js";

let t: TempStores;
let store: SqliteBrokerStore;
let chat: ChatStore;
let alice: IdentityRecord;
let bob: IdentityRecord;
let carol: IdentityRecord;
const as = (i: IdentityRecord): ChatActor => ({ identityId: i.id, epoch: i.epoch });
const code = (c: string) => expect.objectContaining({ code: c });
const through = (i: IdentityRecord, roomId: number, membershipEpoch: number): ChatMembershipActor => ({
  ...as(i),
  roomId,
  membershipEpoch,
});

beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  chat = store.repository(CHAT_STORE) as ChatStore;
  alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
  bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
  carol = await store.createIdentity({ name: "carol", verifier: null, keyring: [] });
});
afterEach(() => t.cleanup());

async function room(kind: "public" | "inviteOnly" | "moderated" = "public", name = "general") {
  const made = await chat.createRoom(as(alice), { name, kind, topic: "", at: 1, maxOwned: 32 });
  return { id: made.room.id, owner: through(alice, made.room.id, made.member.epoch) };
}

describe("messages", () => {
  it("are numbered without gaps when posts race in one group and some of them fail", async () => {
    const r = await room();
    const b = await chat.join(as(bob), r.id, 2, 100);
    const stale = through(carol, r.id, 1); // carol never joined
    const results = await Promise.allSettled([
      chat.post(r.owner, "a1", 3),
      chat.post(through(bob, r.id, b.member.epoch), "b1", 3),
      chat.post(stale, "forged", 3),
      chat.post(r.owner, "a2", 3),
      chat.post(through(bob, r.id, b.member.epoch + 1), "b-stale", 3),
      chat.post(r.owner, "a3", 3),
    ]);
    expect(results.map((x) => x.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    expect((results[2] as PromiseRejectedResult).reason).toEqual(code(ErrorCode.REVOKED));
    const all = await chat.history(r.id, { after: 0, limit: 100 });
    expect(all.map((m) => `${m.seq} ${m.authorName} ${m.kind} ${m.text}`)).toEqual([
      "1 alice joined ",
      "2 bob joined ",
      "3 alice text a1",
      "4 bob text b1",
      "5 alice text a2",
      "6 alice text a3",
    ]);
    expect((await chat.getRoom(r.id))?.lastSeq).toBe(6);
    expect((await chat.history(r.id, { before: 4, limit: 2 })).map((m) => m.seq)).toEqual([2, 3]);
    expect((await chat.history(r.id, { latest: true, limit: 2 })).map((m) => m.seq)).toEqual([5, 6]);
  });

  it("refuse a login whose epoch moved on, storing nothing", async () => {
    const r = await room();
    await store.bumpEpoch(alice.id);
    await expect(chat.post(r.owner, "after logout", 2)).rejects.toEqual(code(ErrorCode.REVOKED));
    await expect(chat.sendDirect(as(alice), bob.id, "dm", 2)).rejects.toEqual(code(ErrorCode.REVOKED));
    expect(await chat.history(r.id, { after: 0, limit: 10 })).toHaveLength(1);
    expect(await chat.inboxLastSeq(bob.id)).toBe(0);
  });

  it("refuse a muted member until the mute's time, with PERMISSION_DENIED", async () => {
    const r = await room("moderated");
    const b = await chat.join(as(bob), r.id, 2, 100);
    const bobIn = through(bob, r.id, b.member.epoch);
    await chat.mute(r.owner, bob.id, 100, "bob until 100", 3);
    await expect(chat.post(bobIn, "x", 99)).rejects.toEqual(code(ErrorCode.PERMISSION_DENIED));
    expect((await chat.post(bobIn, "y", 100)).seq).toBe(4);
  });
});

describe("memberships", () => {
  it("renew their epoch on every join and end, so a facet of an earlier membership stays dead", async () => {
    const r = await room();
    const first = await chat.join(as(bob), r.id, 2, 100);
    expect(first.member.epoch).toBe(1);
    // Joining again while a member (another device) is the same membership, with no message.
    const again = await chat.join(as(bob), r.id, 3, 100);
    expect([again.member.epoch, again.message]).toEqual([1, undefined]);
    const left = await chat.leave(through(bob, r.id, 1), 4);
    expect([left.member.active, left.member.epoch, left.message.kind]).toEqual([false, 2, "left"]);
    await expect(chat.leave(through(bob, r.id, 1), 5)).rejects.toEqual(code(ErrorCode.REVOKED));
    const back = await chat.join(as(bob), r.id, 6, 100);
    expect(back.member.epoch).toBe(3);
    await expect(chat.post(through(bob, r.id, 1), "old facet", 7)).rejects.toEqual(code(ErrorCode.REVOKED));
    expect((await chat.members(r.id)).map((m) => m.name)).toEqual(["alice", "bob"]);
  });

  it("keep a member removed from a moderated room out, unless a moderator invites them by name", async () => {
    const r = await room("moderated");
    const b = await chat.join(as(bob), r.id, 2, 100);
    await chat.join(as(carol), r.id, 2, 100);
    const removed = await chat.remove(r.owner, bob.id, "spam", 3);
    expect([removed.member.active, removed.message.text, removed.message.authorName]).toEqual([
      false,
      "bob",
      "alice",
    ]);
    await expect(chat.post(through(bob, r.id, b.member.epoch), "x", 4)).rejects.toEqual(
      code(ErrorCode.REVOKED),
    );
    await expect(chat.join(as(bob), r.id, 4, 100)).rejects.toEqual(code(ErrorCode.PERMISSION_DENIED));
    const bearer = await chat.invite(r.owner, null, 5, 10);
    await expect(chat.acceptInvitation(as(bob), bearer.id, 6, 100)).rejects.toEqual(
      code(ErrorCode.PERMISSION_DENIED),
    );
    const named = await chat.invite(r.owner, bob.id, 7, 10);
    const back = await chat.acceptInvitation(as(bob), named.id, 8, 100);
    expect(back.member.active).toBe(true);
    // The refused bearer acceptance used nothing.
    expect((await chat.getInvitation(bearer.id))?.usedAt).toBeNull();
  });

  it("keep the owner and moderators apart: nobody removes the owner, only the owner removes a moderator", async () => {
    const r = await room("moderated");
    const b = await chat.join(as(bob), r.id, 2, 100);
    await chat.join(as(carol), r.id, 2, 100);
    await chat.setModerator(r.owner, bob.id, true);
    const bobMod = through(bob, r.id, b.member.epoch);
    await expect(chat.remove(bobMod, alice.id, "", 3)).rejects.toEqual(code(ErrorCode.PERMISSION_DENIED));
    await expect(chat.setModerator(bobMod, carol.id, true)).rejects.toEqual(
      code(ErrorCode.PERMISSION_DENIED),
    );
    await chat.remove(r.owner, bob.id, "", 4);
    // Removed, Bob moderates nothing: his moderator acts fail as revoked.
    await expect(chat.mute(bobMod, carol.id, 0, "", 5)).rejects.toEqual(code(ErrorCode.REVOKED));
    expect((await chat.getMember(r.id, bob.id))?.moderator).toBe(false);
  });

  it("cap a room's members and a user's rooms with QUOTA", async () => {
    const r = await room();
    await chat.join(as(bob), r.id, 2, 2);
    await expect(chat.join(as(carol), r.id, 3, 2)).rejects.toEqual(code(ErrorCode.QUOTA));
    await expect(
      chat.createRoom(as(alice), { name: "second", kind: "public", topic: "", at: 1, maxOwned: 1 }),
    ).rejects.toEqual(code(ErrorCode.QUOTA));
    await expect(
      chat.createRoom(as(bob), { name: "GENERAL", kind: "public", topic: "", at: 1, maxOwned: 1 }),
    ).rejects.toEqual(code(ErrorCode.ALREADY_EXISTS));
  });
});

describe("invitations", () => {
  it("are used once even when two users accept a bearer invitation at the same moment", async () => {
    const r = await room("inviteOnly");
    const v = await chat.invite(r.owner, null, 2, 10);
    const [b, c] = await Promise.allSettled([
      chat.acceptInvitation(as(bob), v.id, 3, 100),
      chat.acceptInvitation(as(carol), v.id, 3, 100),
    ]);
    expect(b.status).toBe("fulfilled");
    expect((c as PromiseRejectedResult).reason).toEqual(code(ErrorCode.NOT_FOUND));
    expect((await chat.members(r.id)).map((m) => m.name)).toEqual(["alice", "bob"]);
  });

  it("serve only their invitee, are listed to them while open, and die with their inviter's membership", async () => {
    const r = await room("inviteOnly");
    const b = await chat.acceptInvitation(as(bob), (await chat.invite(r.owner, null, 1, 10)).id, 2, 100);
    const toCarol = await chat.invite(through(bob, r.id, b.member.epoch), carol.id, 3, 10);
    expect([toCarol.inviterName, toCarol.inviteeName, toCarol.roomName]).toEqual(["bob", "carol", "general"]);
    await expect(chat.acceptInvitation(as(alice), toCarol.id, 4, 100)).rejects.toEqual(
      code(ErrorCode.PERMISSION_DENIED),
    );
    expect((await chat.openInvitations(carol.id, 10)).map((v) => v.id)).toEqual([toCarol.id]);
    await chat.leave(through(bob, r.id, b.member.epoch), 5);
    expect(await chat.openInvitations(carol.id, 10)).toEqual([]);
    await expect(chat.acceptInvitation(as(carol), toCarol.id, 6, 100)).rejects.toEqual(
      code(ErrorCode.NOT_FOUND),
    );
    // A non-member cannot join an invite-only room, and is told it does not exist.
    await expect(chat.join(as(carol), r.id, 7, 100)).rejects.toEqual(code(ErrorCode.NOT_FOUND));
    expect((await chat.listRooms(carol.id, 10)).map((v) => v.name)).toEqual([]);
    expect((await chat.listRooms(alice.id, 10)).map((v) => v.name)).toEqual(["general"]);
  });

  it("are capped per inviter and room", async () => {
    const r = await room("inviteOnly");
    await chat.invite(r.owner, null, 1, 2);
    await chat.invite(r.owner, bob.id, 1, 2);
    await expect(chat.invite(r.owner, carol.id, 1, 2)).rejects.toEqual(code(ErrorCode.QUOTA));
  });
});

describe("inboxes and markers", () => {
  it("number each user's direct messages from 1, and read markers only move forward", async () => {
    expect((await chat.sendDirect(as(alice), bob.id, "one", 1)).seq).toBe(1);
    expect((await chat.sendDirect(as(carol), bob.id, "two", 2)).seq).toBe(2);
    expect((await chat.sendDirect(as(bob), alice.id, "back", 3)).seq).toBe(1);
    expect(
      (await chat.inbox(bob.id, { after: 0, limit: 10 })).map((m) => `${m.senderName}: ${m.text}`),
    ).toEqual(["alice: one", "carol: two"]);
    await expect(chat.sendDirect(as(alice), 999, "nobody", 4)).rejects.toEqual(code(ErrorCode.NOT_FOUND));
    const r = await room();
    await chat.post(r.owner, "x", 2);
    expect(await chat.markRead(r.owner, 2)).toBe(2);
    expect(await chat.markRead(r.owner, 1)).toBe(2);
    await expect(chat.markRead(r.owner, 3)).rejects.toEqual(code(ErrorCode.BAD_ARGUMENT));
  });
});

describe("the tables", () => {
  it("refuse rows that break their CHECKs, whatever code writes them", () => {
    store.close();
    withRaw(t.file, (db) => {
      const bad = [
        "INSERT INTO chat_rooms (name, name_key, kind, topic, owner_id, created_at) VALUES ('a b', 'a b', 'public', '', 1, 1)",
        "INSERT INTO chat_rooms (name, name_key, kind, topic, owner_id, created_at) VALUES ('Ab', 'Ab', 'public', '', 1, 1)",
        "INSERT INTO chat_rooms (name, name_key, kind, topic, owner_id, created_at) VALUES ('ab', 'ab', 'secret', '', 1, 1)",
        "INSERT INTO chat_messages (room_id, seq, author_id, author_name, kind, text, at) VALUES (1, 1, 1, 'a', 'text', '', 1)",
        `INSERT INTO chat_messages (room_id, seq, author_id, author_name, kind, text, at) VALUES (1, 1, 1, 'a', 'text', '${"x".repeat(4001)}', 1)`,
        "INSERT INTO chat_members (room_id, identity_id, moderator, epoch, active, joined_at) VALUES (1, 1, 1, 1, 0, 1)",
      ];
      db.prepare(
        "INSERT INTO chat_rooms (name, name_key, kind, topic, owner_id, created_at) VALUES ('r', 'r', 'public', '', 1, 1)",
      ).run();
      for (const sql of bad) expect(() => db.prepare(sql).run(), sql.slice(0, 60)).toThrow(/constraint/i);
    });
  });

  it("keep rooms, memberships, messages, markers and inboxes across closing and reopening the file", async () => {
    const r = await room("moderated");
    const b = await chat.join(as(bob), r.id, 2, 100);
    await chat.post(r.owner, "kept", 3);
    await chat.markRead(through(bob, r.id, b.member.epoch), 3);
    await chat.sendDirect(as(alice), bob.id, "dm", 4);
    store.close();
    const again = t.open().repository(CHAT_STORE) as ChatStore;
    const loaded = await again.loadRoom(r.id, 10);
    expect(loaded?.room).toMatchObject({ name: "general", kind: "moderated", lastSeq: 3, members: 2 });
    expect(loaded?.members.map((m) => `${m.name} ${m.moderator} ${m.lastRead}`)).toEqual([
      "alice true 0",
      "bob false 3",
    ]);
    expect(loaded?.messages.map((m) => m.text)).toEqual(["", "", "kept"]);
    expect((await again.inbox(bob.id, { latest: true, limit: 5 })).map((m) => m.text)).toEqual(["dm"]);
  });
});
