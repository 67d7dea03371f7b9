/**
 * Chat (schema/chat.capnp; issue 12 §1 and §3, seed 004's chat with its spoofing bug designed
 * out). Each attachment of ("chat", "member") gets a ChatMemberPerspective (one per device); one
 * ChatUser per user holds their presence and their inbox while any device is attached. Joining a
 * room hands out a RoomMember facet bound to one membership; moderators get a Moderator facet;
 * invitations, mailboxes and inboxes are capabilities too.
 *
 * Invariants:
 * - Who acts is never an argument: a message's author is the user the facet was minted for (the
 *   store stamps the name, the clock the time and the room the next sequence); a direct message's
 *   sender is the user whose perspective made the mailbox.
 * - Every facet call first checks that its membership is current (memory, then the store inside
 *   the write): once the user left or was removed, every facet of that membership fails with
 *   PARALLAX_ERR_REVOKED on every connection and device, calls pipelined on it included. Facets
 *   are exported under the login that got them, so an ended login ends them all as well.
 * - Nothing is told before it is stored durably: listeners hear a message after its write
 *   committed and synced, in sequence order, before the writer's answer.
 * - Listeners are per device and per membership (or inbox): a device detaching drops only its
 *   own; a membership ending drops its listeners on all devices, with `closed`.
 * - Rate limits and sizes are checked before anything is stored; a refused call changes nothing.
 *   Posts, joins and leaves are held per member and room *and* per user over all rooms (one user
 *   in 256 rooms must not write 2560 messages a second); status changes, which reach every
 *   listener of every room the user is in, to a burst of 3 and one a second.
 * - Memory per room and per open inbox is bounded in bytes as well as in messages
 *   (`windowBytes`): what falls out is read from the store (`history`), and a listener resuming
 *   from before it hears `unrecoverable` first.
 *
 * Tests: test/services/chat/
 */
import { type CallContext, type Capability, localServerOf, scoped, unwrapScope } from "../../caps/index.js";
import type { Clock, Timer } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  Attachment,
  callerPerspective,
  capabilityKey,
  type DetachReason,
  grantOf,
  type IdentityView,
  PerUserService,
  type ServiceModule,
  UserPerspective,
} from "../../login/index.js";
import {
  type BrokerStore,
  CHAT_STORE,
  type ChatActor,
  type ChatInboxRecord,
  type ChatInvitationRecord,
  type ChatJoinResult,
  type ChatMemberRecord,
  type ChatMembershipActor,
  type ChatMessageRecord,
  type ChatRoomRecord,
  type ChatRoomView,
  type ChatStore,
} from "../../store/index.js";
import {
  ChatMember,
  type ChatMember$Server,
  type ChatMember_acceptInvitation_Params,
  type ChatMember_createRoom_Params,
  type ChatMember_inbox_Params,
  type ChatMember_join_Params,
  type ChatMember_mailbox_Params,
  type ChatMember_presence_Params,
  type ChatMember_setStatus_Params,
  Inbox,
  type Inbox$Server,
  type Inbox_history_Params,
  type InboxListener,
  Invitation,
  type Invitation$Server,
  type Invitation_accept_Params,
  type JoinOptions,
  Mailbox,
  type Mailbox$Server,
  type Mailbox_send_Params,
  Moderator,
  type Moderator$Server,
  type Moderator_mute_Params,
  type Moderator_remove_Params,
  type Moderator_setModerator_Params,
  type Moderator_unmute_Params,
  type Presence$Shape,
  RoomMember,
  type RoomMember$Server,
  type RoomMember_history_Params,
  type RoomMember_invite_Params,
  type RoomMember_markRead_Params,
  type RoomMember_post_Params,
  type Message$Shape,
  type RoomInfo$Shape,
  type RoomListener,
  Status,
} from "../../wire/gen/chat.js";
import { CHAT_MEMBER } from "./chat-keys.js";
import {
  checkLine,
  checkMessage,
  checkRoomName,
  checkUserName,
  MAX_HISTORY_READ,
  MAX_REASON_CHARS,
  MAX_STATUS_CHARS,
  MAX_TOPIC_CHARS,
  readHistoryQuery,
  readRoomKind,
  readSeq,
  readStatus,
  writeInboxMessage,
  writeMessage,
  writeRoomKind,
} from "./chat-wire.js";
import { LiveLog, LogReader } from "./live-log.js";
import { LiveRoom, messageBytes, type RoomSubscription } from "./live-room.js";
import { RateLimiter } from "./rate-limiter.js";

export interface ChatOptions {
  /** Messages a room (and an inbox) keeps in memory for resuming listeners. Default 1000. */
  readonly windowMessages?: number;
  /** Posts per second per member and room, and direct messages per second per sender. Default 10. */
  readonly messagesPerSecond?: number;
  /** Posts, joins and leaves per second per user over all rooms. Default twice messagesPerSecond. */
  readonly userMessagesPerSecond?: number;
  /** Bytes of messages a room's (or an inbox's) window keeps in memory. Default 1 MiB. */
  readonly windowBytes?: number;
  /** Rooms one user may own. Default 32. */
  readonly maxRoomsOwned?: number;
  /** Members one room may have. Default 2000. */
  readonly maxMembersPerRoom?: number;
  /** Open invitations per inviter and room. Default 50. */
  readonly maxOpenInvitations?: number;
  /** Listeners (rooms and inbox) one attachment may register. Default 64. */
  readonly maxListenersPerAttachment?: number;
  /** Unanswered messages one listener may have before it reads what it missed instead. Default 32. */
  readonly maxNotificationsInFlight?: number;
  /** Unanswered typing/presence/invitation notices per listener; more are dropped. Default 4. */
  readonly maxNoticesInFlight?: number;
  /** How long `typing` lasts. Default 5000 ms. */
  readonly typingMs?: number;
  /** Rooms kept in memory with no listener before the idle ones are dropped. Default 256. */
  readonly maxIdleRooms?: number;
}

/** The latest time a Date holds (ms since the epoch): later mute times are refused. */
const MAX_DATE_MS = 8_640_000_000_000_000;

/** The longest status lifetime: one day. */
export const MAX_STATUS_TTL_MS = 86_400_000;
const MAX_ROOMS_LISTED = 500;
const MAX_PRESENCE_USERS = 100;
const MAX_INVITATIONS_LISTED = 100;

interface Limits {
  readonly window: number;
  readonly windowBytes: number;
  readonly messagesPerSecond: number;
  readonly userMessagesPerSecond: number;
  readonly maxRoomsOwned: number;
  readonly maxMembersPerRoom: number;
  readonly maxOpenInvitations: number;
  readonly maxListenersPerAttachment: number;
  readonly maxNotificationsInFlight: number;
  readonly maxNoticesInFlight: number;
  readonly typingMs: number;
  readonly maxIdleRooms: number;
}

/** Chat as a module for `startBroker({ services: [chat()] })`. */
export function chat(options: ChatOptions = {}): ServiceModule<ChatService, ChatStore> {
  return {
    name: CHAT_MEMBER.service,
    defaultKeyring: [CHAT_MEMBER],
    store: CHAT_STORE,
    create: (ctx) =>
      new ChatService({ chats: ctx.repository, identities: ctx.store, clock: ctx.clock }, options),
  };
}

export interface ChatContext {
  readonly chats: ChatStore;
  readonly identities: BrokerStore;
  readonly clock: Clock;
}

/** One device's listener on the user's inbox. */
interface InboxSubscription {
  readonly owner: ChatMemberPerspective;
  readonly reader: LogReader<ChatInboxRecord, InboxListener>;
  /** The attachment the inbox was opened through: invitations are handed out under it. */
  readonly grant: Attachment | undefined;
}

/** A user's state while any of their devices is attached. */
export class ChatUser {
  status: Status = Status.ONLINE;
  text = "";
  /** When a status with a lifetime lapses; 0 = never. */
  until = 0;
  timer: Timer | undefined;
  inbox: LiveLog<ChatInboxRecord> | undefined;
  inboxReady: Promise<void> | undefined;
  readonly inboxSubscriptions = new Set<InboxSubscription>();

  constructor(
    readonly identityId: number,
    readonly name: string,
  ) {}
}

export class ChatService extends PerUserService<ChatUser, ChatMemberPerspective> {
  readonly name = CHAT_MEMBER.service;
  readonly store: ChatStore;
  readonly identities: BrokerStore;
  readonly clock: Clock;
  readonly limits: Limits;
  readonly rate: RateLimiter;
  /** Posts, joins and leaves per user over all rooms. */
  readonly userRate: RateLimiter;
  /** Status changes per user. */
  readonly statusRate: RateLimiter;
  readonly #rooms = new Map<number, LiveRoom>();
  /** The inboxes in memory (of attached users). */
  readonly #inboxes = new Set<LiveLog<ChatInboxRecord>>();

  constructor(context: ChatContext, options: ChatOptions = {}) {
    super();
    this.store = context.chats;
    this.identities = context.identities;
    this.clock = context.clock;
    const messagesPerSecond = options.messagesPerSecond ?? 10;
    this.limits = {
      window: options.windowMessages ?? 1000,
      windowBytes: options.windowBytes ?? 1024 * 1024,
      messagesPerSecond,
      userMessagesPerSecond: options.userMessagesPerSecond ?? 2 * messagesPerSecond,
      maxRoomsOwned: options.maxRoomsOwned ?? 32,
      maxMembersPerRoom: options.maxMembersPerRoom ?? 2000,
      maxOpenInvitations: options.maxOpenInvitations ?? 50,
      maxListenersPerAttachment: options.maxListenersPerAttachment ?? 64,
      maxNotificationsInFlight: options.maxNotificationsInFlight ?? 32,
      maxNoticesInFlight: options.maxNoticesInFlight ?? 4,
      typingMs: options.typingMs ?? 5000,
      maxIdleRooms: options.maxIdleRooms ?? 256,
    };
    this.rate = new RateLimiter(this.clock, {
      burst: this.limits.messagesPerSecond,
      perSecond: this.limits.messagesPerSecond,
    });
    this.userRate = new RateLimiter(this.clock, {
      burst: this.limits.userMessagesPerSecond,
      perSecond: this.limits.userMessagesPerSecond,
    });
    this.statusRate = new RateLimiter(this.clock, { burst: 3, perSecond: 1 });
  }

  /**
   * Takes a write's tokens: the member's in room `roomId` and the user's over all rooms, or QUOTA
   * (naming which) taking neither.
   */
  takeWrite(roomId: number, identityId: number, what: string): void {
    const roomKey = `${roomId}:${identityId}`;
    this.rate.check(roomKey, what);
    this.userRate.take(`${identityId}`, `${what} (over all rooms)`);
    this.rate.take(roomKey, what);
  }

  /** Bytes of messages held in memory by room and inbox windows (tests, stats). */
  get heldBytes(): number {
    let n = 0;
    for (const r of this.#rooms.values()) n += r.log.bytes;
    for (const l of this.#inboxes) n += l.bytes;
    return n;
  }

  protected newPerspective(name: string, identity: IdentityView): ChatMemberPerspective | undefined {
    return name === CHAT_MEMBER.perspective ? new ChatMemberPerspective(this, identity) : undefined;
  }

  protected newUser(identity: IdentityView): ChatUser {
    return new ChatUser(identity.id, identity.name);
  }

  protected override forgetUser(user: ChatUser): void {
    if (user.inbox !== undefined) this.#inboxes.delete(user.inbox);
    user.timer?.cancel();
    user.timer = undefined;
    for (const s of user.inboxSubscriptions) s.reader.close();
    user.inboxSubscriptions.clear();
  }

  /** Rooms in memory (tests). */
  get liveRooms(): number {
    return this.#rooms.size;
  }

  /** The room `id` in memory, loaded from the store on first use; undefined if there is none. */
  async live(id: number): Promise<LiveRoom | undefined> {
    let room = this.#rooms.get(id);
    if (room === undefined) {
      const made = new LiveRoom(id, {
        window: this.limits.window,
        windowBytes: this.limits.windowBytes,
        maxNotificationsInFlight: this.limits.maxNotificationsInFlight,
        maxEphemeralInFlight: this.limits.maxNoticesInFlight,
        typingRepeatMs: 1000,
      });
      room = made;
      this.#rooms.set(id, made);
      made.ready = this.store.loadRoom(id, this.limits.window).then(
        (snapshot) => {
          if (snapshot === undefined) {
            made.gone = true;
            if (this.#rooms.get(id) === made) this.#rooms.delete(id);
          } else made.load(snapshot);
        },
        (err: unknown) => {
          if (this.#rooms.get(id) === made) this.#rooms.delete(id);
          made.gone = true;
          throw err;
        },
      );
      this.#evictIdle();
    }
    await room.ready;
    return room.gone ? undefined : room;
  }

  /** Drops rooms nobody listens to or writes through, beyond `maxIdleRooms` of them. */
  #evictIdle(): void {
    let idle = 0;
    for (const r of this.#rooms.values()) if (r.loaded && r.subscriptions.size === 0 && r.busy === 0) idle++;
    if (idle <= this.limits.maxIdleRooms) return;
    for (const [id, r] of this.#rooms) {
      if (idle <= this.limits.maxIdleRooms) break;
      if (r.loaded && r.subscriptions.size === 0 && r.busy === 0) {
        this.#rooms.delete(id);
        idle--;
      }
    }
  }

  /**
   * Runs a store write through room `roomId` and applies its answer to memory in the same turn
   * it arrives (answers arrive in commit order). A write that failed in the store's own way
   * (STORAGE: committed or not, unknown) makes the room re-read from the store.
   */
  async write<T>(roomId: number, write: () => Promise<T>, apply: (result: T) => void): Promise<T> {
    const room = this.#rooms.get(roomId);
    if (room !== undefined) room.busy++;
    try {
      return await write().then((result) => {
        apply(result);
        return result;
      });
    } catch (err) {
      if (err instanceof ParallaxError && err.code === ErrorCode.STORAGE) this.#resync(roomId);
      throw err;
    } finally {
      if (room !== undefined) room.busy--;
    }
  }

  /** Applies `fn` to room `roomId` if it is in memory (queued while it loads). */
  withRoom(roomId: number, fn: (room: LiveRoom) => void): void {
    const room = this.#rooms.get(roomId);
    if (room !== undefined && !room.gone) room.apply(() => fn(room));
  }

  applyMessage(m: ChatMessageRecord): void {
    this.withRoom(m.roomId, (room) => room.message(m));
  }

  applyMember(m: ChatMemberRecord, reason: string): void {
    this.withRoom(m.roomId, (room) => room.member(m, reason));
  }

  applyJoin(r: ChatJoinResult): void {
    this.applyMember(r.member, "the membership was renewed");
    if (r.message !== undefined) this.applyMessage(r.message);
  }

  /** Re-reads room `roomId` after a write of unknown outcome: memory catches up with the store. */
  #resync(roomId: number): void {
    const room = this.#rooms.get(roomId);
    if (room === undefined) return;
    this.store.loadRoom(roomId, this.limits.window).then(
      (snapshot) => {
        if (snapshot === undefined || this.#rooms.get(roomId) !== room) return;
        room.apply(() => {
          for (const m of snapshot.messages) room.message(m);
          const now = new Set(snapshot.members.map((m) => m.identityId));
          for (const m of snapshot.members) room.member(m, "the membership changed");
          for (const old of [...room.members.values()]) {
            if (!now.has(old.identityId))
              room.member({ ...old, active: false, epoch: old.epoch + 1 }, "left");
          }
        });
      },
      () => {
        // The store is failing: forget the room, the next use reloads it.
        if (this.#rooms.get(roomId) === room && room.subscriptions.size === 0) this.#rooms.delete(roomId);
      },
    );
  }

  /** A user's inbox in memory (loaded on first use while they are attached). */
  async inboxOf(user: ChatUser): Promise<LiveLog<ChatInboxRecord>> {
    if (user.inbox === undefined || user.inboxReady === undefined) {
      const log = new LiveLog<ChatInboxRecord>(this.limits.window, {
        maxBytes: this.limits.windowBytes,
        sizeOf: messageBytes,
      });
      if (user.inbox !== undefined) this.#inboxes.delete(user.inbox);
      this.#inboxes.add(log);
      log.onAppend = (m) => {
        for (const s of user.inboxSubscriptions) s.reader.offer(m);
      };
      user.inbox = log;
      user.inboxReady = this.store
        .inbox(user.identityId, { latest: true, limit: this.limits.window })
        .then((entries) => log.load(entries))
        .catch((err: unknown) => {
          if (user.inbox === log) {
            user.inbox = undefined;
            user.inboxReady = undefined;
          }
          this.#inboxes.delete(log);
          throw err;
        });
    }
    const log = user.inbox;
    await user.inboxReady;
    return log;
  }

  /** A direct message was stored: the recipient's devices hear it, if their inbox is open. */
  delivered(m: ChatInboxRecord): void {
    this.userOf(m.identityId)?.inbox?.arrived(m);
  }

  /** Re-reads an open inbox after a write of unknown outcome, so no gap holds the later ones back. */
  resyncInbox(identityId: number): void {
    const log = this.userOf(identityId)?.inbox;
    if (log === undefined || !log.loaded) return;
    this.store.inbox(identityId, { after: log.lastSeq, limit: this.limits.window }).then(
      (entries) => {
        for (const m of entries) log.arrived(m);
      },
      () => {},
    );
  }

  /** Tells the invitee's open inboxes of an invitation addressed to them. */
  announceInvitation(record: ChatInvitationRecord): void {
    if (record.inviteeId === null) return;
    const user = this.userOf(record.inviteeId);
    if (user === undefined) return;
    for (const s of user.inboxSubscriptions) {
      s.reader.notice((l) => {
        const cap = this.invitationCap(record, s.grant);
        try {
          return l.invited({ invitation: cap });
        } finally {
          cap.dispose();
        }
      });
    }
  }

  /** A capability on invitation `record`, handed out under `grant` when given. */
  invitationCap(record: ChatInvitationRecord, grant?: Attachment): Invitation {
    const cap = Invitation.server(new InvitationFacet(this, record));
    return grant === undefined ? cap : scoped(cap, grant);
  }

  /** The identity named `name`, or NOT_FOUND. */
  async identityNamed(name: string): Promise<{ id: number; name: string }> {
    checkUserName(name);
    const found = await this.identities.findIdentityByName(name);
    if (found === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user ${name}`);
    return { id: found.id, name: found.name };
  }

  presenceOf(identityId: number, name: string): Presence$Shape {
    const u = this.userOf(identityId);
    if (u === undefined) return { user: name, status: Status.OFFLINE, text: "", until: 0n };
    if (u.until !== 0 && this.clock.now() >= u.until)
      return { user: name, status: Status.ONLINE, text: "", until: 0n };
    return { user: name, status: u.status, text: u.text, until: BigInt(u.until) };
  }

  /** Tells the rooms `identityId` is in (those in memory: the others have no listener). */
  presenceChanged(identityId: number, p: Presence$Shape): void {
    for (const room of this.#rooms.values()) if (room.members.has(identityId)) room.presence(p);
  }

  /** A status set with a lifetime lapsed. */
  statusLapsed(user: ChatUser): void {
    user.timer = undefined;
    user.status = Status.ONLINE;
    user.text = "";
    user.until = 0;
    this.presenceChanged(user.identityId, this.presenceOf(user.identityId, user.name));
  }

  info(room: LiveRoom, identityId: number): RoomInfo$Shape {
    const r = room.record as ChatRoomRecord;
    const m = room.members.get(identityId);
    return {
      name: r.name,
      kind: writeRoomKind(r.kind),
      topic: r.topic,
      owner: r.ownerName,
      members: room.members.size,
      lastSeq: BigInt(room.lastSeq),
      lastRead: BigInt(m?.lastRead ?? 0),
      member: m !== undefined,
      moderator: m?.moderator ?? false,
    };
  }

  /** Rooms as listed: the store's view, or memory's where the room is live (it may be newer). */
  listed(v: ChatRoomView): RoomInfo$Shape {
    const live = this.#rooms.get(v.id);
    if (live?.loaded && live.record !== undefined) return this.info(live, v.membership?.identityId ?? -1);
    const m = v.membership?.active ? v.membership : undefined;
    return {
      name: v.name,
      kind: writeRoomKind(v.kind),
      topic: v.topic,
      owner: v.ownerName,
      members: v.members,
      lastSeq: BigInt(v.lastSeq),
      lastRead: BigInt(m?.lastRead ?? 0),
      member: m !== undefined,
      moderator: m?.moderator ?? false,
    };
  }

  close(): void {
    for (const room of this.#rooms.values()) room.close();
    this.#rooms.clear();
  }
}

/** A listener from JoinOptions/InboxOptions, owned by the caller from here on (or null). */
function takeListener<L extends Capability>(has: boolean, get: () => L): L | null {
  return has ? get() : null;
}

/** One attachment of ("chat", "member"): one user on one device. */
export class ChatMemberPerspective extends UserPerspective<ChatUser> implements ChatMember$Server {
  /** This device's room listeners, and the room each listens to. */
  readonly roomSubscriptions = new Map<RoomSubscription, LiveRoom>();
  readonly inboxSubscriptions = new Set<InboxSubscription>();

  constructor(
    readonly chat: ChatService,
    identity: IdentityView,
  ) {
    super(chat, identity);
  }

  get actor(): ChatActor {
    return { identityId: this.identity.id, epoch: this.identity.epoch };
  }

  capability(): ChatMember {
    return ChatMember.server(this.serve<ChatMember$Server>());
  }

  protected override onAttached(): void {
    if (this.chat.attachedOf(this.identity.id).size === 1) {
      this.chat.presenceChanged(this.identity.id, this.chat.presenceOf(this.identity.id, this.identity.name));
    }
  }

  protected override onDetached(reason: DetachReason): void {
    const why = reason.kind === "disconnected" ? undefined : reason.message;
    for (const [sub, room] of [...this.roomSubscriptions]) room.unsubscribe(sub, why);
    this.roomSubscriptions.clear();
    for (const s of this.inboxSubscriptions) {
      this.user.inboxSubscriptions.delete(s);
      s.reader.close();
    }
    this.inboxSubscriptions.clear();
    // This attachment still counts until `leave`: it is the last one if it is the only one.
    if (this.chat.attachedOf(this.identity.id).size <= 1) {
      this.chat.presenceChanged(this.identity.id, {
        user: this.identity.name,
        status: Status.OFFLINE,
        text: "",
        until: 0n,
      });
    }
  }

  get listenerCount(): number {
    return this.roomSubscriptions.size + this.inboxSubscriptions.size;
  }

  /** QUOTA if this device cannot register one more listener. */
  checkListenerRoom(): void {
    if (this.listenerCount >= this.chat.limits.maxListenersPerAttachment) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this attachment has ${this.listenerCount} chat listeners (at most ${this.chat.limits.maxListenersPerAttachment})`,
      );
    }
  }

  /**
   * The facet of a membership just made or confirmed, and its listener registered on this device
   * (taking over `listener`).
   */
  async enter(
    result: ChatJoinResult,
    listener: RoomListener | null,
    resumeAfter: number,
    historyCount = 0,
  ): Promise<{ member: RoomMember; info: RoomInfo$Shape; history: Message$Shape[] }> {
    let owned = listener;
    try {
      const room = await this.chat.live(result.room.id);
      if (room === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no room ${result.room.name}`);
      const m = room.current(this.identity.id, result.member.epoch);
      if (m === undefined) {
        throw new ParallaxError(ErrorCode.REVOKED, `the membership of ${room.name} ended meanwhile`);
      }
      if (!this.isAttached) throw new ParallaxError(ErrorCode.REVOKED, "this chat attachment ended");
      // The listener (if any) starts after this sequence; the history on join ends at it.
      const upTo = resumeAfter > 0 ? resumeAfter : room.lastSeq;
      if (owned !== null) {
        const l = owned;
        owned = null;
        const sub = room.subscribe(this, this.identity.id, m.epoch, l, resumeAfter, (s) => {
          this.roomSubscriptions.delete(s);
        });
        if (sub !== undefined && !sub.reader.closed) this.roomSubscriptions.set(sub, room);
      }
      const history =
        historyCount === 0
          ? []
          : (await this.chat.store.history(room.id, { before: upTo + 1, limit: historyCount })).map((x) =>
              writeMessage(room.name, x),
            );
      const facet = new RoomMemberFacet(this.chat, this, room.id, room.name, m.epoch);
      return { member: RoomMember.server(facet), info: this.chat.info(room, this.identity.id), history };
    } finally {
      owned?.dispose();
    }
  }

  /** The options' listener (owned by the caller) and resume point, checked against `lastSeq`. */
  #options(
    options: JoinOptions,
    lastSeq: number,
  ): { listener: RoomListener | null; resumeAfter: number; historyCount: number } {
    const resumeAfter = readSeq("resumeAfter", options.resumeAfter);
    const historyCount = options.history;
    if (historyCount > MAX_HISTORY_READ) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `a join returns at most ${MAX_HISTORY_READ} messages of history; asked for ${historyCount}`,
      );
    }
    if (resumeAfter > lastSeq) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `resumeAfter ${resumeAfter} is beyond the room's last message (${lastSeq})`,
      );
    }
    const listener = takeListener(options.hasListener(), () => options.listener);
    if (listener !== null) {
      try {
        this.checkListenerRoom();
      } catch (err) {
        listener.dispose();
        throw err;
      }
    }
    return { listener, resumeAfter, historyCount };
  }

  // ---- schema methods -------------------------------------------------------------------------

  async rooms() {
    const views = await this.chat.store.listRooms(this.identity.id, MAX_ROOMS_LISTED);
    return { rooms: views.map((v) => this.chat.listed(v)) };
  }

  async createRoom(params: ChatMember_createRoom_Params) {
    const name = checkRoomName(params.name);
    const kind = readRoomKind(params.kind);
    const topic = checkLine("a topic", params.topic, MAX_TOPIC_CHARS);
    const { listener, resumeAfter, historyCount } = this.#options(params.options, 0);
    let result: ChatJoinResult;
    try {
      result = await this.chat.store.createRoom(this.actor, {
        name,
        kind,
        topic,
        at: this.chat.clock.now(),
        maxOwned: this.chat.limits.maxRoomsOwned,
      });
    } catch (err) {
      listener?.dispose();
      throw err;
    }
    return this.enter(result, listener, resumeAfter, historyCount);
  }

  async join(params: ChatMember_join_Params) {
    const name = checkRoomName(params.room);
    const found = await this.chat.store.findRoom(name);
    if (found === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no room ${name}`);
    const { listener, resumeAfter, historyCount } = this.#options(params.options, found.lastSeq);
    let result: ChatJoinResult;
    try {
      this.chat.takeWrite(found.id, this.identity.id, `joining ${found.name}`);
      result = await this.chat.write(
        found.id,
        () =>
          this.chat.store.join(
            this.actor,
            found.id,
            this.chat.clock.now(),
            this.chat.limits.maxMembersPerRoom,
          ),
        (r) => this.chat.applyJoin(r),
      );
    } catch (err) {
      listener?.dispose();
      // An invite-only room one is not in answers exactly as a room that does not exist.
      if (err instanceof ParallaxError && err.code === ErrorCode.NOT_FOUND) {
        throw new ParallaxError(ErrorCode.NOT_FOUND, `no room ${name}`);
      }
      throw err;
    }
    return this.enter(result, listener, resumeAfter, historyCount);
  }

  async invitations(_params: unknown, ctx: CallContext) {
    const grant = grantOf(ctx);
    const open = await this.chat.store.openInvitations(this.identity.id, MAX_INVITATIONS_LISTED);
    return {
      invitations: open.map((v) =>
        this.chat.invitationCap(v, grant instanceof Attachment ? grant : undefined),
      ),
    };
  }

  async mailbox(params: ChatMember_mailbox_Params) {
    const to = await this.chat.identityNamed(params.user);
    return { mailbox: Mailbox.server(new MailboxFacet(this.chat, this.actor, to.id)) };
  }

  async inbox(params: ChatMember_inbox_Params, ctx: CallContext) {
    const options = params.options;
    const resumeAfter = readSeq("resumeAfter", options.resumeAfter);
    const user = this.user;
    const log = await this.chat.inboxOf(user);
    if (resumeAfter > log.lastSeq) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `resumeAfter ${resumeAfter} is beyond the inbox's last message (${log.lastSeq})`,
      );
    }
    const listener = takeListener(options.hasListener(), () => options.listener);
    if (listener !== null) {
      try {
        this.checkListenerRoom();
        if (!this.isAttached) throw new ParallaxError(ErrorCode.REVOKED, "this chat attachment ended");
      } catch (err) {
        listener.dispose();
        throw err;
      }
      const key = capabilityKey(listener);
      if ([...this.inboxSubscriptions].some((s) => capabilityKey(s.reader.listener) === key)) {
        listener.dispose();
      } else {
        const grant = grantOf(ctx);
        const reader: LogReader<ChatInboxRecord, InboxListener> = new LogReader({
          log,
          listener,
          maxInFlight: this.chat.limits.maxNotificationsInFlight,
          maxEphemeralInFlight: this.chat.limits.maxNoticesInFlight,
          deliver: (l, m) => l.message({ message: writeInboxMessage(m) }),
          unrecoverable: (l, a, from) => l.unrecoverable({ after: BigInt(a), resumedFrom: BigInt(from) }),
          onFailed: () => {
            this.inboxSubscriptions.delete(sub);
            user.inboxSubscriptions.delete(sub);
          },
        });
        const sub: InboxSubscription = {
          owner: this,
          reader,
          grant: grant instanceof Attachment ? grant : undefined,
        };
        this.inboxSubscriptions.add(sub);
        user.inboxSubscriptions.add(sub);
        reader.start(resumeAfter, log.lastSeq);
      }
    }
    return { inbox: Inbox.server(new InboxFacet(this.chat, this.identity.id)) };
  }

  setStatus(params: ChatMember_setStatus_Params) {
    const status = readStatus(params.status);
    const text = checkLine("a status text", params.text, MAX_STATUS_CHARS);
    const ttl = params.ttlMs;
    if (ttl > MAX_STATUS_TTL_MS) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `a status lasts at most ${MAX_STATUS_TTL_MS} ms (a day)`,
      );
    }
    this.chat.statusRate.take(`${this.identity.id}`, "changing the status");
    const user = this.user;
    user.timer?.cancel();
    user.timer = undefined;
    user.status = status;
    user.text = text;
    user.until = ttl === 0 ? 0 : this.chat.clock.now() + ttl;
    if (ttl > 0) user.timer = this.chat.clock.setTimer(ttl, () => this.chat.statusLapsed(user));
    this.chat.presenceChanged(user.identityId, this.chat.presenceOf(user.identityId, user.name));
  }

  async presence(params: ChatMember_presence_Params) {
    const users = params.users;
    const n = users.getLength();
    if (n > MAX_PRESENCE_USERS) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `presence answers for at most ${MAX_PRESENCE_USERS} users at once; asked for ${n}`,
      );
    }
    const names = users.toArray().map((u) => checkUserName(u));
    const out: Presence$Shape[] = [];
    for (const name of names) {
      const found = await this.chat.identities.findIdentityByName(name);
      out.push(
        found === undefined
          ? { user: name, status: Status.OFFLINE, text: "", until: 0n }
          : this.chat.presenceOf(found.id, found.name),
      );
    }
    return { presence: out };
  }

  async acceptInvitation(params: ChatMember_acceptInvitation_Params) {
    const stub = params.invitation;
    try {
      await stub.whenResolved().catch(() => {});
      const { guards } = unwrapScope(stub.$hook);
      for (const g of guards) g.check?.();
      const impl = localServerOf(stub.$hook);
      if (!(impl instanceof InvitationFacet) || impl.chat !== this.chat) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "this capability is no invitation of this server");
      }
      return await this.accept(impl.record, params.options);
    } finally {
      stub.dispose();
    }
  }

  /** Accepts invitation `record` as this user, on this device. */
  async accept(record: ChatInvitationRecord, options: JoinOptions) {
    const room = await this.chat.store.getRoom(record.roomId);
    const { listener, resumeAfter, historyCount } = this.#options(options, room?.lastSeq ?? 0);
    let result: ChatJoinResult;
    try {
      result = await this.chat.write(
        record.roomId,
        () =>
          this.chat.store.acceptInvitation(
            this.actor,
            record.id,
            this.chat.clock.now(),
            this.chat.limits.maxMembersPerRoom,
          ),
        (r) => this.chat.applyJoin(r),
      );
    } catch (err) {
      listener?.dispose();
      throw err;
    }
    return this.enter(result, listener, resumeAfter, historyCount);
  }
}

/**
 * One membership of one room, as handed to one device: what `join`, `createRoom` and `accept`
 * answer. It acts for the user it was minted for, whoever calls it, and only while that
 * membership (its epoch) is current.
 */
class RoomMemberFacet implements RoomMember$Server {
  constructor(
    readonly chat: ChatService,
    readonly device: ChatMemberPerspective,
    readonly roomId: number,
    readonly roomName: string,
    readonly epoch: number,
  ) {}

  get identityId(): number {
    return this.device.identity.id;
  }

  get actor(): ChatMembershipActor {
    return { ...this.device.actor, roomId: this.roomId, membershipEpoch: this.epoch };
  }

  /** The room and the membership, which must be current (REVOKED otherwise). */
  async current(): Promise<{ room: LiveRoom; member: ChatMemberRecord }> {
    const room = await this.chat.live(this.roomId);
    const member = room?.current(this.identityId, this.epoch);
    if (room === undefined || member === undefined) {
      throw new ParallaxError(ErrorCode.REVOKED, `this membership of ${this.roomName} has ended`);
    }
    return { room, member };
  }

  async post(params: RoomMember_post_Params) {
    const text = checkMessage(params.text);
    const { room, member } = await this.current();
    mutedCheck(room, member, this.chat.clock.now());
    this.chat.takeWrite(this.roomId, this.identityId, `posting in ${room.name}`);
    const m = await this.chat.write(
      this.roomId,
      () => this.chat.store.post(this.actor, text, this.chat.clock.now()),
      (r) => this.chat.applyMessage(r),
    );
    return { message: writeMessage(room.name, m) };
  }

  async history(params: RoomMember_history_Params) {
    const query = readHistoryQuery(params.query);
    const { room } = await this.current();
    const messages = await this.chat.store.history(this.roomId, query);
    return { messages: messages.map((m) => writeMessage(room.name, m)) };
  }

  async typing() {
    const { room, member } = await this.current();
    const now = this.chat.clock.now();
    mutedCheck(room, member, now);
    room.typing(this.identityId, member.name, now, this.chat.limits.typingMs);
  }

  async markRead(params: RoomMember_markRead_Params) {
    const seq = readSeq("seq", params.seq);
    const { room } = await this.current();
    if (seq > room.lastSeq) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `room ${room.name} has messages up to ${room.lastSeq}, not ${seq}`,
      );
    }
    await this.chat.write(
      this.roomId,
      () => this.chat.store.markRead(this.actor, seq),
      (lastRead) =>
        this.chat.withRoom(this.roomId, (r) => {
          const m = r.current(this.identityId, this.epoch);
          if (m !== undefined && lastRead > m.lastRead) r.members.set(this.identityId, { ...m, lastRead });
        }),
    );
  }

  async leave() {
    const { room } = await this.current();
    this.chat.takeWrite(this.roomId, this.identityId, `leaving ${room.name}`);
    await this.chat.write(
      this.roomId,
      () => this.chat.store.leave(this.actor, this.chat.clock.now()),
      (c) => {
        this.chat.applyMember(c.member, `${c.member.name} left ${room.name}`);
        this.chat.applyMessage(c.message);
      },
    );
  }

  async members() {
    const { room } = await this.current();
    const all = [...room.members.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { members: all.map((m) => this.chat.presenceOf(m.identityId, m.name)) };
  }

  async invite(params: RoomMember_invite_Params) {
    const invitee = params.user === "" ? null : await this.chat.identityNamed(params.user);
    await this.current();
    const record = await this.chat.write(
      this.roomId,
      () =>
        this.chat.store.invite(
          this.actor,
          invitee?.id ?? null,
          this.chat.clock.now(),
          this.chat.limits.maxOpenInvitations,
        ),
      () => {},
    );
    this.chat.announceInvitation(record);
    return { invitation: this.chat.invitationCap(record) };
  }

  async moderation() {
    const { room, member } = await this.current();
    if (!member.moderator) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, `${member.name} does not moderate ${room.name}`);
    }
    return { moderator: Moderator.server(new ModeratorFacet(this)) };
  }

  async info() {
    const { room } = await this.current();
    return { info: this.chat.info(room, this.identityId) };
  }
}

function mutedCheck(room: LiveRoom, member: ChatMemberRecord, now: number): void {
  const until = member.mutedUntil;
  if (until === null || (until !== 0 && now >= until)) return;
  throw new ParallaxError(
    ErrorCode.PERMISSION_DENIED,
    until === 0
      ? `you are muted in ${room.name} until a moderator unmutes you`
      : `you are muted in ${room.name} until ${new Date(until).toISOString()}`,
  );
}

/** A moderator's powers over one room, for as long as they moderate it in that membership. */
class ModeratorFacet implements Moderator$Server {
  constructor(readonly member: RoomMemberFacet) {}

  get chat(): ChatService {
    return this.member.chat;
  }

  async #moderating(): Promise<{ room: LiveRoom; member: ChatMemberRecord }> {
    const { room, member } = await this.member.current().catch((err: unknown) => {
      if (err instanceof ParallaxError && err.code === ErrorCode.REVOKED) {
        throw new ParallaxError(ErrorCode.REVOKED, `this moderation of ${this.member.roomName} has ended`);
      }
      throw err;
    });
    if (!member.moderator) {
      throw new ParallaxError(ErrorCode.REVOKED, `${member.name} no longer moderates ${room.name}`);
    }
    return { room, member };
  }

  async mute(params: Moderator_mute_Params) {
    const until = Number(params.untilMs);
    const now = this.chat.clock.now();
    if (params.untilMs !== 0n && (params.untilMs <= BigInt(now) || !(until <= MAX_DATE_MS))) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        "a mute lasts until a time in the future (ms since the epoch), or 0",
      );
    }
    const target = await this.chat.identityNamed(params.user);
    const { room } = await this.#moderating();
    const text = `${target.name} until ${until === 0 ? "unmuted" : new Date(until).toISOString()}`;
    await this.chat.write(
      room.id,
      () => this.chat.store.mute(this.member.actor, target.id, until, text, now),
      (c) => {
        this.chat.applyMember(c.member, "muted");
        this.chat.applyMessage(c.message);
      },
    );
  }

  async unmute(params: Moderator_unmute_Params) {
    const target = await this.chat.identityNamed(params.user);
    const { room } = await this.#moderating();
    await this.chat.write(
      room.id,
      () => this.chat.store.unmute(this.member.actor, target.id, this.chat.clock.now()),
      (c) => {
        this.chat.applyMember(c.member, "unmuted");
        this.chat.applyMessage(c.message);
      },
    );
  }

  async remove(params: Moderator_remove_Params) {
    const reason = checkLine("a reason", params.reason, MAX_REASON_CHARS);
    const target = await this.chat.identityNamed(params.user);
    const { room, member } = await this.#moderating();
    const why = `removed from ${room.name} by ${member.name}${reason === "" ? "" : `: ${reason}`}`;
    await this.chat.write(
      room.id,
      () => this.chat.store.remove(this.member.actor, target.id, reason, this.chat.clock.now()),
      (c) => {
        this.chat.applyMember(c.member, why);
        this.chat.applyMessage(c.message);
      },
    );
  }

  async setModerator(params: Moderator_setModerator_Params) {
    const target = await this.chat.identityNamed(params.user);
    const { room } = await this.#moderating();
    await this.chat.write(
      room.id,
      () => this.chat.store.setModerator(this.member.actor, target.id, params.moderator),
      (m) => this.chat.applyMember(m, "moderation changed"),
    );
  }
}

/**
 * An invitation to one room. `info` answers whoever holds it; `accept` acts for the caller, taken
 * from the chat perspective the broker says the call came through (never from an argument).
 */
class InvitationFacet implements Invitation$Server {
  constructor(
    readonly chat: ChatService,
    readonly record: ChatInvitationRecord,
  ) {}

  info() {
    return { room: this.record.roomName, inviter: this.record.inviterName, invitee: this.record.inviteeName };
  }

  accept(params: Invitation_accept_Params, ctx: CallContext) {
    const p = callerPerspective(ctx);
    if (!(p instanceof ChatMemberPerspective) || p.chat !== this.chat) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "accept an invitation through your own chat perspective (ChatMember.acceptInvitation takes one from elsewhere)",
      );
    }
    return p.accept(this.record, params.options);
  }
}

/** Send-only: writes into one user's inbox as the user whose perspective made it. */
class MailboxFacet implements Mailbox$Server {
  constructor(
    readonly chat: ChatService,
    readonly sender: ChatActor,
    readonly recipientId: number,
  ) {}

  async send(params: Mailbox_send_Params) {
    const text = checkMessage(params.text);
    this.chat.rate.take(`dm:${this.sender.identityId}`, "sending direct messages");
    try {
      const m = await this.chat.store.sendDirect(this.sender, this.recipientId, text, this.chat.clock.now());
      this.chat.delivered(m);
      return { seq: BigInt(m.seq) };
    } catch (err) {
      if (err instanceof ParallaxError && err.code === ErrorCode.STORAGE)
        this.chat.resyncInbox(this.recipientId);
      throw err;
    }
  }
}

/** Reading one user's inbox. */
class InboxFacet implements Inbox$Server {
  constructor(
    readonly chat: ChatService,
    readonly identityId: number,
  ) {}

  async history(params: Inbox_history_Params) {
    const query = readHistoryQuery(params.query);
    const messages = await this.chat.store.inbox(this.identityId, query);
    return { messages: messages.map(writeInboxMessage) };
  }
}
