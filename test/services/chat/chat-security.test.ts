/**
 * Chat's security claims (issue 12 §1, DESIGN's rule that nothing a caller names decides who
 * acts): no message appears from someone else by any call, forged fields included; a facet a user
 * passes on still acts as that user (capability delegation) and dies with their membership or
 * login; invite-only rooms are invisible without an invitation, and an invitation addressed to
 * one user serves no other; moderation mutes precisely and removal revokes every facet on every
 * connection, pipelined calls included; one device leaving never silences another.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { MethodDescriptor } from "../../../src/caps/index.js";
import { ErrorCode } from "../../../src/errors.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import {
  ChatMember,
  Invitation,
  Mailbox,
  Message,
  MessageKind,
  RoomKind,
  RoomMember,
  RoomMember$methods,
  type RoomMember_post_Results,
  Status,
} from "../../../src/wire/gen/chat.js";
import { rejection } from "../../helpers/errors.js";
import { kdf } from "../../login/harness.js";
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
  texts,
} from "./chat-harness.js";

let w: ChatWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

const WITH_RELAY = [...CHAT_KEYRING, RELAY_PAIR];

describe("who posts", () => {
  it("is the facet's user, whatever the call carries: a raw post with author, seq and time fields is stamped by the server", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const bobEar = ear();
    await join(bob, "general", bobEar.cap);
    // post's params have one field (text, pointer 0). Send a Message struct instead: its room
    // (pointer 0) is read as the text; author, seq and at ride along and are ignored.
    const forged = { ...RoomMember$methods.post, Params: Message } as unknown as MethodDescriptor<
      Message,
      RoomMember_post_Results
    >;
    w.h.clock.advance(5000);
    const call = a.$hook.call(forged, (p) => {
      p.room = "bob: I owe alice 100";
      p.author = "bob";
      p.seq = 999n;
      p.at = 1n;
      p.kind = MessageKind.JOINED;
    });
    const posted = (await call.promise).message;
    call.dispose?.();
    expect([posted.author, posted.text, posted.seq, posted.at, posted.kind]).toEqual([
      "alice",
      "bob: I owe alice 100",
      3n,
      BigInt(w.h.clock.now()),
      MessageKind.TEXT,
    ]);
    await bobEar.untilText(1);
    expect(bobEar.texts()).toEqual(["alice: bob: I owe alice 100"]);
  });

  it("stays Alice for a facet Alice hands Bob over the wire (delegation), and dies in Bob's hands when Alice's login ends", async () => {
    w = await makeChat({}, { extra: [relay()] });
    const alice = await w.user("alice", WITH_RELAY);
    const bob = await w.user("bob", WITH_RELAY);
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const viaRelay = await handOver(alice, bob, a, RoomMember);
    // What really happens: the facet is Alice's membership, so it posts as Alice — Bob acts with
    // the authority Alice lent him, and cannot make it say "bob".
    expect((await viaRelay.post({ text: "sent by bob's hand" })).message.author).toBe("alice");
    // Bob has no membership of his own from it.
    expect((await bob.chat.rooms()).rooms.get(0).member).toBe(false);
    // Alice's perspective handed over the same way refuses Bob outright.
    const perspective = await handOver(alice, bob, alice.chat, ChatMember);
    const denied = await rejection(perspective.rooms());
    expect(denied.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(denied.message).toBe("this chat perspective belongs to another user");
    await alice.identity.logout();
    expect((await rejection(viaRelay.post({ text: "after her logout" }))).code).toBe(ErrorCode.REVOKED);
    const alice2 = await w.device("alice");
    const history = (await (await join(alice2, "general")).history({ query: { latest: null, limit: 10 } }))
      .messages;
    expect(texts(history)).toEqual(["alice: sent by bob's hand"]);
  });

  it("sends direct messages as the mailbox's maker only: a mailbox handed to Bob still says alice", async () => {
    w = await makeChat({}, { extra: [relay()] });
    const alice = await w.user("alice", WITH_RELAY);
    const bob = await w.user("bob", WITH_RELAY);
    const carol = await w.user("carol", WITH_RELAY);
    const carolEar = inboxEar();
    await carol.chat.inbox({ options: { listener: carolEar.cap } });
    const toCarol = alice.chat.mailbox({ user: "carol" }).mailbox;
    const held = await handOver(alice, bob, toCarol, Mailbox);
    await held.send({ text: "from bob's hand" });
    await carolEar.until(1);
    expect(carolEar.messages.map((m) => `${m.author}: ${m.text}`)).toEqual(["alice: from bob's hand"]);
  });
});

describe("invite-only rooms", () => {
  it("are invisible and unjoinable without an invitation, answering exactly as a room that does not exist", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    await createRoom(alice, "Secret", RoomKind.INVITE_ONLY);
    expect((await bob.chat.rooms()).rooms.getLength()).toBe(0);
    const hidden = await rejection(bob.chat.join({ room: "secret", options: {} }));
    const absent = await rejection(bob.chat.join({ room: "nothing", options: {} }));
    expect([hidden.code, hidden.message]).toEqual([ErrorCode.NOT_FOUND, "no room secret"]);
    expect([absent.code, absent.message]).toEqual([ErrorCode.NOT_FOUND, "no room nothing"]);
    // A pipelined post on the refused join fails too.
    const pipelined = await rejection(
      bob.chat.join({ room: "secret", options: {} }).member.post({ text: "x" }),
    );
    expect(pipelined.code).toBe(ErrorCode.NOT_FOUND);
  });

  it("let the invitee in with the invitation their inbox was told of, once; an addressed invitation serves nobody else", async () => {
    w = await makeChat({}, { extra: [relay()] });
    const alice = await w.user("alice", WITH_RELAY);
    const bob = await w.user("bob", WITH_RELAY);
    const carol = await w.user("carol", WITH_RELAY);
    const a = await createRoom(alice, "secret", RoomKind.INVITE_ONLY);
    const bobInbox = inboxEar();
    await bob.chat.inbox({ options: { listener: bobInbox.cap } });
    const { invitation } = await a.invite({ user: "bob" });
    expect((await invitation.info()).invitee).toBe("bob");
    // Alice holds it, but it is Bob's: she cannot use it, nor can Carol when it reaches her.
    const mine = await rejection(invitation.accept({ options: {} }));
    expect([mine.code, mine.message]).toEqual([
      ErrorCode.PERMISSION_DENIED,
      "this invitation to secret is addressed to bob",
    ]);
    const carolsCopy = await handOver(alice, carol, invitation, Invitation);
    const viaOther = await rejection(carolsCopy.accept({ options: {} }));
    expect(viaOther.code).toBe(ErrorCode.PERMISSION_DENIED);
    const viaOwn = await rejection(carol.chat.acceptInvitation({ invitation: carolsCopy, options: {} }));
    expect([viaOwn.code, viaOwn.message]).toEqual([
      ErrorCode.PERMISSION_DENIED,
      "this invitation to secret is addressed to bob",
    ]);
    expect((await carol.chat.rooms()).rooms.getLength()).toBe(0);
    // Bob's inbox was told; he accepts with what it handed him.
    await bobInbox.untilInvited(1);
    expect((await bob.chat.invitations()).invitations.getLength()).toBe(1);
    const accepted = bobInbox.invitations[0]?.accept({ options: {} });
    const member = accepted?.member.dup() as RoomMember;
    expect((await accepted)?.info.member).toBe(true);
    accepted?.dispose();
    expect((await member.post({ text: "in" })).message.author).toBe("bob");
    expect((await bob.chat.invitations()).invitations.getLength()).toBe(0);
    // Used: once is all.
    await member.leave();
    const again = await rejection(bob.chat.acceptInvitation({ invitation, options: {} }).member.info());
    expect(again.code).toBe(ErrorCode.BAD_ARGUMENT); // Bob holds no stub of it here: Alice's is not his to pass
    const reused = await rejection((bobInbox.invitations[0] as Invitation).accept({ options: {} }));
    expect([reused.code, reused.message]).toEqual([ErrorCode.NOT_FOUND, "this invitation was used already"]);
    bobInbox.dispose();
  });

  it("take a bearer invitation from whoever holds it, once", async () => {
    w = await makeChat({}, { extra: [relay()] });
    const alice = await w.user("alice", WITH_RELAY);
    const bob = await w.user("bob", WITH_RELAY);
    const carol = await w.user("carol", WITH_RELAY);
    const a = await createRoom(alice, "secret", RoomKind.INVITE_ONLY);
    const { invitation } = await a.invite({ user: "" });
    const bobs = await handOver(alice, bob, invitation, Invitation);
    const joined = bob.chat.acceptInvitation({ invitation: bobs, options: {} });
    expect((await joined.member.post({ text: "bearer works" })).message.author).toBe("bob");
    joined.dispose();
    const carols = await handOver(alice, carol, invitation, Invitation);
    const late = await rejection(carol.chat.acceptInvitation({ invitation: carols, options: {} }));
    expect([late.code, late.message]).toEqual([ErrorCode.NOT_FOUND, "this invitation was used already"]);
    // Only members of invite-only rooms, and moderators, invite.
    await createRoom(alice, "open", RoomKind.PUBLIC);
    const b = await join(bob, "open");
    const notMod = await rejection(b.invite({ user: "carol" }));
    expect(notMod.code).toBe(ErrorCode.PERMISSION_DENIED);
  });
});

describe("moderation", () => {
  it("mutes a member with a precise error until the time given, on the clock; unmute lifts it; non-moderators get no Moderator", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const a = await createRoom(alice, "mod", RoomKind.MODERATED);
    const b = await join(bob, "mod");
    const denied = await rejection(b.moderation().moderator.mute({ user: "alice", untilMs: 0n }));
    expect([denied.code, denied.message]).toEqual([ErrorCode.PERMISSION_DENIED, "bob does not moderate mod"]);
    const mod = (await a.moderation()).moderator;
    const until = w.h.clock.now() + 60_000;
    await mod.mute({ user: "bob", untilMs: BigInt(until) });
    const muted = await rejection(b.post({ text: "let me speak" }));
    expect([muted.code, muted.message]).toEqual([
      ErrorCode.PERMISSION_DENIED,
      `you are muted in mod until ${new Date(until).toISOString()}`,
    ]);
    expect((await rejection(b.typing())).code).toBe(ErrorCode.PERMISSION_DENIED);
    w.h.clock.advance(60_000);
    expect((await b.post({ text: "time served" })).message.author).toBe("bob");
    await mod.mute({ user: "bob", untilMs: 0n });
    expect((await rejection(b.post({ text: "?" }))).message).toBe(
      "you are muted in mod until a moderator unmutes you",
    );
    await mod.unmute({ user: "bob" });
    await b.post({ text: "free" });
    const kinds = (await a.history({ query: { latest: null, limit: 100 } })).messages
      .toArray()
      .map((m) => `${m.kind}:${m.author}:${m.text}`);
    expect(kinds.filter((k) => !k.startsWith("0:"))).toEqual([
      `${MessageKind.JOINED}:alice:`,
      `${MessageKind.JOINED}:bob:`,
      `${MessageKind.MUTED}:alice:bob until ${new Date(until).toISOString()}`,
      `${MessageKind.MUTED}:alice:bob until unmuted`,
      `${MessageKind.UNMUTED}:alice:bob`,
    ]);
    // Nothing the muted member tried was stored.
    expect(texts((await a.history({ query: { latest: null, limit: 100 } })).messages)).toEqual([
      "bob: time served",
      "bob: free",
    ]);
  });

  it("removes a member: every facet fails on both connections, a pipelined call too, their listeners hear closed, and a moderated room keeps them out", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const bobLaptop = await w.device("bob");
    const a = await createRoom(alice, "mod", RoomKind.MODERATED);
    const phoneEar = ear();
    const laptopEar = ear();
    const phone = await join(bob, "mod", phoneEar.cap);
    const laptop = await join(bobLaptop, "mod", laptopEar.cap);
    await (await a.moderation()).moderator.remove({ user: "bob", reason: "spam" });
    await phoneEar.untilClosed();
    await laptopEar.untilClosed();
    expect(phoneEar.closed).toEqual(["removed from mod by alice: spam"]);
    expect(laptopEar.closed).toEqual(["removed from mod by alice: spam"]);
    for (const facet of [phone, laptop]) {
      expect((await rejection(facet.post({ text: "still?" }))).code).toBe(ErrorCode.REVOKED);
      expect((await rejection(facet.history({ query: { latest: null } }))).code).toBe(ErrorCode.REVOKED);
    }
    const pipelined = await rejection(laptop.invite({ user: "" }).invitation.info());
    expect(pipelined.code).toBe(ErrorCode.REVOKED);
    const rejoin = await rejection(bob.chat.join({ room: "mod", options: {} }));
    expect([rejoin.code, rejoin.message]).toEqual([
      ErrorCode.PERMISSION_DENIED,
      "you were removed from mod and cannot join it again",
    ]);
    expect((await a.members()).members.toArray().map((p) => p.user)).toEqual(["alice"]);
    // The removal is in the log, by the moderator, naming the member.
    const last = (await a.history({ query: { latest: null, limit: 1 } })).messages.get(0);
    expect([last.kind, last.author, last.text]).toEqual([MessageKind.REMOVED, "alice", "bob"]);
    // A public room's removal is a kick: one may come back.
    const p = await createRoom(alice, "pub", RoomKind.PUBLIC);
    await join(bob, "pub");
    await (await p.moderation()).moderator.remove({ user: "bob", reason: "" });
    expect((await (await join(bob, "pub")).info()).info.member).toBe(true);
  });

  it("keeps the owner above moderators: only the owner appoints them and removes them; a demoted moderator's facet is revoked", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const carol = await w.user("carol");
    const a = await createRoom(alice, "mod", RoomKind.MODERATED);
    const b = await join(bob, "mod");
    await join(carol, "mod");
    const owner = (await a.moderation()).moderator;
    await owner.setModerator({ user: "bob", moderator: true });
    const bobMod = (await b.moderation()).moderator;
    const cannot = await rejection(bobMod.remove({ user: "alice", reason: "" }));
    expect([cannot.code, cannot.message]).toEqual([
      ErrorCode.PERMISSION_DENIED,
      "the owner of mod cannot be removed",
    ]);
    const appoint = await rejection(bobMod.setModerator({ user: "carol", moderator: true }));
    expect([appoint.code, appoint.message]).toEqual([
      ErrorCode.PERMISSION_DENIED,
      "only the owner of mod appoints moderators",
    ]);
    await bobMod.mute({ user: "carol", untilMs: 0n });
    await owner.setModerator({ user: "bob", moderator: false });
    const demoted = await rejection(bobMod.unmute({ user: "carol" }));
    expect([demoted.code, demoted.message]).toEqual([ErrorCode.REVOKED, "bob no longer moderates mod"]);
    expect((await rejection(b.moderation())).code).toBe(ErrorCode.PERMISSION_DENIED);
    const unknown = await rejection(owner.mute({ user: "nobody", untilMs: 0n }));
    expect([unknown.code, unknown.message]).toEqual([ErrorCode.NOT_FOUND, "no user nobody"]);
  });
});

describe("revocation", () => {
  it("ends every facet of a login whose password changed — room, moderator, mailbox, inbox — and tells its listeners", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const aliceEar = ear();
    const a = await createRoom(alice, "general", RoomKind.MODERATED, aliceEar.cap);
    const mod = (await a.moderation()).moderator;
    const mailbox = alice.chat.mailbox({ user: "bob" }).mailbox;
    const { inbox } = await alice.chat.inbox({ options: {} });
    await mailbox.send({ text: "before" });
    const b = await join(bob, "general");
    const { verifier } = await makeVerifier("alice new pass", { kdf });
    await alice.identity.changePassword({ newVerifier: verifier });
    await aliceEar.untilClosed();
    for (const call of [
      a.post({ text: "as old alice" }),
      mod.mute({ user: "bob", untilMs: 0n }),
      mailbox.send({ text: "after" }),
      inbox.history({ query: { latest: null } }),
      alice.chat.join({ room: "general", options: {} }).member.post({ text: "pipelined" }),
    ]) {
      expect((await rejection(call)).code).toBe(ErrorCode.REVOKED);
    }
    // Bob lives on; nothing of the revoked calls was stored.
    expect((await b.post({ text: "still here" })).message.author).toBe("bob");
    expect(texts((await b.history({ query: { latest: null } })).messages)).toEqual(["bob: still here"]);
    expect(w.service().userOf((await w.h.store.findIdentityByName("alice"))?.id as number)).toBeUndefined();
  });
});

describe("logging out everywhere", () => {
  it("ends the facets and listeners of every device, the one that asked included", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const laptop = await w.device("alice");
    const bob = await w.user("bob");
    await createRoom(bob, "general", RoomKind.PUBLIC);
    const phoneEar = ear();
    const phone = await join(alice, "general", phoneEar.cap);
    const mine = await join(laptop, "general");
    await laptop.identity.logoutEverywhere();
    await phoneEar.untilClosed();
    for (const facet of [phone, mine]) {
      expect((await rejection(facet.post({ text: "x" }))).code).toBe(ErrorCode.REVOKED);
    }
    expect((await rejection(alice.chat.rooms())).code).toBe(ErrorCode.REVOKED);
    // Alice is offline to Bob now, and still a member: logging out is not leaving.
    const b = await join(bob, "general");
    const members = (await b.members()).members.toArray();
    expect(members.map((p) => `${p.user} ${p.status}`)).toEqual([
      `alice ${Status.OFFLINE}`,
      `bob ${Status.ONLINE}`,
    ]);
  });
});

describe("devices", () => {
  it("keeps one device's listener when another device of the same user detaches or drops", async () => {
    w = await makeChat();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const laptop = await w.device("bob");
    const tablet = await w.device("bob");
    const a = await createRoom(alice, "general", RoomKind.PUBLIC);
    const phoneEar = ear();
    const laptopEar = ear();
    const tabletEar = ear();
    await join(bob, "general", phoneEar.cap);
    await join(laptop, "general", laptopEar.cap);
    await join(tablet, "general", tabletEar.cap);
    const bobInbox = inboxEar();
    await bob.chat.inbox({ options: { listener: bobInbox.cap } });
    await laptop.chat.detach();
    tablet.drop();
    await a.post({ text: "anyone?" });
    await alice.chat.mailbox({ user: "bob" }).mailbox.send({ text: "dm" });
    await phoneEar.untilText(1);
    await bobInbox.until(1);
    expect(phoneEar.texts()).toEqual(["alice: anyone?"]);
    // The detached device was told why; the dropped one heard nothing more.
    expect(laptopEar.closed).toEqual(["detached by the client"]);
    expect(laptopEar.texts()).toEqual([]);
    expect(tabletEar.texts()).toEqual([]);
    const bobId = (await w.h.store.findIdentityByName("bob"))?.id as number;
    expect(w.service().attachedOf(bobId).size).toBe(1);
  });
});
