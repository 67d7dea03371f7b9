/**
 * `SqliteChatRepository`: the `chat_*` tables (migration 7); the store's `ChatStore`
 * (`CHAT_STORE`).
 *
 * Invariants (those of `ChatStore`, kept here):
 * - A message takes `chat_rooms.last_seq + 1` (an inbox message `max(seq) + 1` of its inbox) in
 *   the transaction that inserts it; the primary keys (room, seq) and (identity, seq) back that up.
 * - Every write checks, first and in its transaction, that the actor's login is current
 *   (REVOKED) and, for a write through a membership, that the membership is active at the epoch
 *   the facet names (REVOKED): a removal and a post racing it are ordered by the transactions, and
 *   the loser fails whole.
 * - A membership row is never deleted; its epoch grows by one on every join and every end, and an
 *   ended row is neither moderator nor muted.
 * - An open invitation is spent (used_at set) when its invitee gains a membership of the room, by
 *   whatever way, and when its inviter's membership ends (leave, removal): one made before a
 *   removal can never lift the ban that removal set, and one whose inviter left stays dead if they
 *   come back. A spent invitation records as `used_by` its invitee, or for a bearer one its
 *   inviter (the table's CHECKs; there is no separate "voided" column).
 * - Writes are group-committed (`GroupCommit`, as the Go server's): one event-loop turn's writes
 *   share one IMMEDIATE transaction and one fsync; each answers only once durable, and one that
 *   throws undoes only its own changes.
 *
 * Tests: test/store/chat.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  ChatActor,
  ChatHistoryQuery,
  ChatInboxRecord,
  ChatInvitationRecord,
  ChatJoinResult,
  ChatMemberRecord,
  ChatMembershipActor,
  ChatMembershipChange,
  ChatMessageKind,
  ChatMessageRecord,
  ChatRoomKind,
  ChatRoomRecord,
  ChatRoomView,
  ChatStore,
} from "../chat-store.js";
import { GroupCommit, type GroupStats } from "./bank-group.js";
import type { SqliteDatabase } from "./database.js";

interface RoomRow {
  id: number;
  name: string;
  kind: ChatRoomKind;
  topic: string;
  owner_id: number;
  owner_name: string;
  created_at: number;
  last_seq: number;
  members: number;
}

interface MemberRow {
  room_id: number;
  identity_id: number;
  name: string;
  moderator: number;
  muted_until: number | null;
  last_read: number;
  epoch: number;
  active: number;
  joined_at: number;
}

interface MessageRow {
  room_id: number;
  seq: number;
  author_id: number;
  author_name: string;
  kind: ChatMessageKind;
  text: string;
  at: number;
}

interface InvitationRow {
  id: number;
  room_id: number;
  room_name: string;
  inviter_id: number;
  inviter_name: string;
  invitee_id: number | null;
  invitee_name: string | null;
  created_at: number;
  used_at: number | null;
}

interface InboxRow {
  identity_id: number;
  seq: number;
  sender_id: number;
  sender_name: string;
  text: string;
  at: number;
}

type ViewRow = RoomRow & {
  m_identity_id: number | null;
  m_name: string | null;
  m_moderator: number | null;
  m_muted_until: number | null;
  m_last_read: number | null;
  m_epoch: number | null;
  m_active: number | null;
  m_joined_at: number | null;
};

const ROOM_COLUMNS = `r.id, r.name, r.kind, r.topic, r.owner_id, o.name AS owner_name, r.created_at, r.last_seq,
  (SELECT count(*) FROM chat_members c WHERE c.room_id = r.id AND c.active = 1) AS members
  FROM chat_rooms r JOIN identities o ON o.id = r.owner_id`;
const MEMBER_COLUMNS = `m.room_id, m.identity_id, i.name, m.moderator, m.muted_until, m.last_read, m.epoch, m.active,
  m.joined_at FROM chat_members m JOIN identities i ON i.id = m.identity_id`;
const MESSAGE_COLUMNS = "room_id, seq, author_id, author_name, kind, text, at FROM chat_messages";
const INVITATION_COLUMNS = `v.id, v.room_id, r.name AS room_name, v.inviter_id, a.name AS inviter_name, v.invitee_id,
  b.name AS invitee_name, v.created_at, v.used_at
  FROM chat_invitations v JOIN chat_rooms r ON r.id = v.room_id JOIN identities a ON a.id = v.inviter_id
  LEFT JOIN identities b ON b.id = v.invitee_id`;
const INBOX_COLUMNS = "identity_id, seq, sender_id, sender_name, text, at FROM chat_inbox";

function prepare(db: SqliteDatabase) {
  return {
    insertRoom: db.prepare<[string, string, ChatRoomKind, string, number, number], { id: number }>(
      `INSERT INTO chat_rooms (name, name_key, kind, topic, owner_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
       RETURNING id`,
    ),
    roomById: db.prepare<[number], RoomRow>(`SELECT ${ROOM_COLUMNS} WHERE r.id = ?`),
    roomByKey: db.prepare<[string], RoomRow>(`SELECT ${ROOM_COLUMNS} WHERE r.name_key = ?`),
    countOwned: db.prepare<[number], { n: number }>(
      "SELECT count(*) AS n FROM chat_rooms WHERE owner_id = ?",
    ),
    listRooms: db.prepare<[number, number, number], ViewRow>(
      `SELECT r.id, r.name, r.kind, r.topic, r.owner_id, o.name AS owner_name, r.created_at, r.last_seq,
         (SELECT count(*) FROM chat_members c WHERE c.room_id = r.id AND c.active = 1) AS members,
         m.identity_id AS m_identity_id, i.name AS m_name, m.moderator AS m_moderator,
         m.muted_until AS m_muted_until, m.last_read AS m_last_read, m.epoch AS m_epoch,
         m.active AS m_active, m.joined_at AS m_joined_at
       FROM chat_rooms r JOIN identities o ON o.id = r.owner_id
       LEFT JOIN chat_members m ON m.room_id = r.id AND m.identity_id = ?
       LEFT JOIN identities i ON i.id = m.identity_id
       WHERE r.kind <> 'inviteOnly' OR m.active = 1 OR r.owner_id = ?
       ORDER BY r.name_key LIMIT ?`,
    ),
    member: db.prepare<[number, number], MemberRow>(
      `SELECT ${MEMBER_COLUMNS} WHERE m.room_id = ? AND m.identity_id = ?`,
    ),
    members: db.prepare<[number], MemberRow>(
      `SELECT ${MEMBER_COLUMNS} WHERE m.room_id = ? AND m.active = 1 ORDER BY i.name_key`,
    ),
    countMembers: db.prepare<[number], { n: number }>(
      "SELECT count(*) AS n FROM chat_members WHERE room_id = ? AND active = 1",
    ),
    joinMember: db.prepare<[number, number, number, number]>(
      `INSERT INTO chat_members (room_id, identity_id, moderator, epoch, active, joined_at) VALUES (?, ?, ?, 1, 1, ?)
       ON CONFLICT (room_id, identity_id) DO UPDATE SET active = 1, epoch = epoch + 1,
         moderator = excluded.moderator, muted_until = NULL, joined_at = excluded.joined_at`,
    ),
    endMember: db.prepare<[number, number]>(
      `UPDATE chat_members SET active = 0, epoch = epoch + 1, moderator = 0, muted_until = NULL
       WHERE room_id = ? AND identity_id = ?`,
    ),
    setMuted: db.prepare<[number | null, number, number]>(
      "UPDATE chat_members SET muted_until = ? WHERE room_id = ? AND identity_id = ?",
    ),
    setModerator: db.prepare<[number, number, number]>(
      "UPDATE chat_members SET moderator = ? WHERE room_id = ? AND identity_id = ?",
    ),
    setLastRead: db.prepare<[number, number, number]>(
      "UPDATE chat_members SET last_read = max(last_read, ?) WHERE room_id = ? AND identity_id = ?",
    ),
    ban: db.prepare<[number, number], { reason: string }>(
      "SELECT reason FROM chat_bans WHERE room_id = ? AND identity_id = ?",
    ),
    insertBan: db.prepare<[number, number, number, string, number]>(
      `INSERT INTO chat_bans (room_id, identity_id, by_id, reason, at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (room_id, identity_id) DO UPDATE SET by_id = excluded.by_id, reason = excluded.reason,
         at = excluded.at`,
    ),
    deleteBan: db.prepare<[number, number]>("DELETE FROM chat_bans WHERE room_id = ? AND identity_id = ?"),
    nextSeq: db.prepare<[number], { last_seq: number }>(
      "UPDATE chat_rooms SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
    ),
    insertMessage: db.prepare<[number, number, number, string, ChatMessageKind, string, number]>(
      "INSERT INTO chat_messages (room_id, seq, author_id, author_name, kind, text, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    latest: db.prepare<[number, number], MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} WHERE room_id = ? ORDER BY seq DESC LIMIT ?`,
    ),
    before: db.prepare<[number, number, number], MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
    ),
    after: db.prepare<[number, number, number], MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    nameOf: db.prepare<[number], { name: string }>("SELECT name FROM identities WHERE id = ?"),
    insertInvitation: db.prepare<[number, number, number | null, number], { id: number }>(
      "INSERT INTO chat_invitations (room_id, inviter_id, invitee_id, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    ),
    invitation: db.prepare<[number], InvitationRow>(`SELECT ${INVITATION_COLUMNS} WHERE v.id = ?`),
    openFor: db.prepare<[number, number], InvitationRow>(
      `SELECT ${INVITATION_COLUMNS} WHERE v.invitee_id = ? AND v.used_at IS NULL
         AND EXISTS (SELECT 1 FROM chat_members m WHERE m.room_id = v.room_id AND m.identity_id = v.inviter_id
           AND m.active = 1)
       ORDER BY v.id LIMIT ?`,
    ),
    countOpenBy: db.prepare<[number, number], { n: number }>(
      "SELECT count(*) AS n FROM chat_invitations WHERE room_id = ? AND inviter_id = ? AND used_at IS NULL",
    ),
    useInvitation: db.prepare<[number, number, number]>(
      "UPDATE chat_invitations SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL",
    ),
    spendInvitationsTo: db.prepare<[number, number, number]>(
      `UPDATE chat_invitations SET used_at = ?, used_by = invitee_id
       WHERE room_id = ? AND invitee_id = ? AND used_at IS NULL`,
    ),
    spendInvitationsBy: db.prepare<[number, number, number]>(
      `UPDATE chat_invitations SET used_at = ?, used_by = coalesce(invitee_id, inviter_id)
       WHERE room_id = ? AND inviter_id = ? AND used_at IS NULL`,
    ),
    inboxLast: db.prepare<[number], { last: number }>(
      "SELECT coalesce(max(seq), 0) AS last FROM chat_inbox WHERE identity_id = ?",
    ),
    insertInbox: db.prepare<[number, number, number, string, string, number]>(
      "INSERT INTO chat_inbox (identity_id, seq, sender_id, sender_name, text, at) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    inboxLatest: db.prepare<[number, number], InboxRow>(
      `SELECT ${INBOX_COLUMNS} WHERE identity_id = ? ORDER BY seq DESC LIMIT ?`,
    ),
    inboxBefore: db.prepare<[number, number, number], InboxRow>(
      `SELECT ${INBOX_COLUMNS} WHERE identity_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
    ),
    inboxAfter: db.prepare<[number, number, number], InboxRow>(
      `SELECT ${INBOX_COLUMNS} WHERE identity_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
  };
}

const roomOf = (r: RoomRow): ChatRoomRecord => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  topic: r.topic,
  ownerId: r.owner_id,
  ownerName: r.owner_name,
  createdAt: r.created_at,
  lastSeq: r.last_seq,
  members: r.members,
});

const memberOf = (r: MemberRow): ChatMemberRecord => ({
  roomId: r.room_id,
  identityId: r.identity_id,
  name: r.name,
  moderator: r.moderator === 1,
  mutedUntil: r.muted_until,
  lastRead: r.last_read,
  epoch: r.epoch,
  active: r.active === 1,
  joinedAt: r.joined_at,
});

const messageOf = (r: MessageRow): ChatMessageRecord => ({
  roomId: r.room_id,
  seq: r.seq,
  authorId: r.author_id,
  authorName: r.author_name,
  kind: r.kind,
  text: r.text,
  at: r.at,
});

const invitationOf = (r: InvitationRow): ChatInvitationRecord => ({
  id: r.id,
  roomId: r.room_id,
  roomName: r.room_name,
  inviterId: r.inviter_id,
  inviterName: r.inviter_name,
  inviteeId: r.invitee_id,
  inviteeName: r.invitee_name ?? "",
  createdAt: r.created_at,
  usedAt: r.used_at,
});

const inboxOf = (r: InboxRow): ChatInboxRecord => ({
  identityId: r.identity_id,
  seq: r.seq,
  senderId: r.sender_id,
  senderName: r.sender_name,
  text: r.text,
  at: r.at,
});

function viewOf(r: ViewRow): ChatRoomView {
  const membership =
    r.m_identity_id === null
      ? undefined
      : memberOf({
          room_id: r.id,
          identity_id: r.m_identity_id,
          name: r.m_name ?? "",
          moderator: r.m_moderator ?? 0,
          muted_until: r.m_muted_until,
          last_read: r.m_last_read ?? 0,
          epoch: r.m_epoch ?? 0,
          active: r.m_active ?? 0,
          joined_at: r.m_joined_at ?? 0,
        });
  return { ...roomOf(r), membership };
}

/** Reads newest-first pages and turns them back into increasing sequence. */
function page<R, T>(
  query: ChatHistoryQuery,
  latest: (limit: number) => R[],
  before: (seq: number, limit: number) => R[],
  after: (seq: number, limit: number) => R[],
  map: (r: R) => T,
): T[] {
  if ("after" in query) return after(query.after, query.limit).map(map);
  const rows = "before" in query ? before(query.before, query.limit) : latest(query.limit);
  return rows.reverse().map(map);
}

export class SqliteChatRepository implements ChatStore {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #group: GroupCommit;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#s = prepare(db);
    this.#group = new GroupCommit(db);
  }

  /** What the group commit has done, for tests and the bench. */
  get groupStats(): GroupStats {
    return this.#group.stats;
  }

  /** Commits every queued write (the store is closing). */
  drain(): void {
    this.#group.drain();
  }

  // ---- checks, inside a write ---------------------------------------------------------------

  #room(id: number): RoomRow {
    const room = this.#s.roomById.get(id);
    if (room === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no chat room ${id}`);
    return room;
  }

  #name(identityId: number): string {
    const row = this.#s.nameOf.get(identityId);
    if (row === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user ${identityId}`);
    return row.name;
  }

  /** The actor's membership, which must be active at the facet's epoch (REVOKED otherwise). */
  #membership(actor: ChatMembershipActor): { room: RoomRow; member: MemberRow } {
    this.#db.assertCurrent(actor.identityId, actor.epoch);
    const room = this.#room(actor.roomId);
    const member = this.#s.member.get(actor.roomId, actor.identityId);
    if (member === undefined || member.active !== 1 || member.epoch !== actor.membershipEpoch) {
      throw new ParallaxError(ErrorCode.REVOKED, `this membership of room ${room.name} has ended`);
    }
    return { room, member };
  }

  #moderator(actor: ChatMembershipActor): { room: RoomRow; member: MemberRow } {
    const m = this.#membership(actor);
    if (m.member.moderator !== 1) {
      throw new ParallaxError(ErrorCode.REVOKED, `${m.member.name} no longer moderates room ${m.room.name}`);
    }
    return m;
  }

  /** The target of a moderator's act: a current member other than the actor and the owner. */
  #target(room: RoomRow, actor: MemberRow, targetId: number, act: string): MemberRow {
    const target = this.#s.member.get(room.id, targetId);
    if (target === undefined || target.active !== 1) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `${this.#name(targetId)} is not a member of ${room.name}`);
    }
    if (targetId === actor.identity_id) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a moderator cannot ${act} themselves`);
    }
    if (targetId === room.owner_id) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, `the owner of ${room.name} cannot be ${act}d`);
    }
    if (target.moderator === 1 && actor.identity_id !== room.owner_id) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `only the owner of ${room.name} may ${act} a moderator`,
      );
    }
    return target;
  }

  #append(
    roomId: number,
    authorId: number,
    kind: ChatMessageKind,
    text: string,
    at: number,
  ): ChatMessageRecord {
    const { last_seq: seq } = this.#s.nextSeq.get(roomId) as { last_seq: number };
    const author = this.#name(authorId);
    this.#s.insertMessage.run(roomId, seq, authorId, author, kind, text, at);
    return { roomId, seq, authorId, authorName: author, kind, text, at };
  }

  #memberRecord(roomId: number, identityId: number): ChatMemberRecord {
    return memberOf(this.#s.member.get(roomId, identityId) as MemberRow);
  }

  /** Makes (or renews) the membership with a `joined` message; nothing if already active. */
  #join(room: RoomRow, identityId: number, at: number, maxMembers: number): ChatJoinResult {
    const current = this.#s.member.get(room.id, identityId);
    if (current !== undefined && current.active === 1) {
      return { room: roomOf(room), member: memberOf(current), message: undefined };
    }
    if ((this.#s.countMembers.get(room.id)?.n ?? 0) >= maxMembers) {
      throw new ParallaxError(ErrorCode.QUOTA, `room ${room.name} is full (at most ${maxMembers} members)`);
    }
    this.#s.joinMember.run(room.id, identityId, identityId === room.owner_id ? 1 : 0, at);
    this.#s.spendInvitationsTo.run(at, room.id, identityId);
    const message = this.#append(room.id, identityId, "joined", "", at);
    return {
      room: roomOf(this.#s.roomById.get(room.id) as RoomRow),
      member: this.#memberRecord(room.id, identityId),
      message,
    };
  }

  // ---- rooms ----------------------------------------------------------------------------------

  async createRoom(
    actor: ChatActor,
    init: { name: string; kind: ChatRoomKind; topic: string; at: number; maxOwned: number },
  ): Promise<ChatJoinResult> {
    return this.#group.submit("chat.createRoom", () => {
      this.#db.assertCurrent(actor.identityId, actor.epoch);
      const key = init.name.toLowerCase();
      if (this.#s.roomByKey.get(key) !== undefined) {
        throw new ParallaxError(ErrorCode.ALREADY_EXISTS, `a room named ${init.name} exists already`);
      }
      if ((this.#s.countOwned.get(actor.identityId)?.n ?? 0) >= init.maxOwned) {
        throw new ParallaxError(ErrorCode.QUOTA, `a user owns at most ${init.maxOwned} rooms`);
      }
      const { id } = this.#s.insertRoom.get(
        init.name,
        key,
        init.kind,
        init.topic,
        actor.identityId,
        init.at,
      ) as { id: number };
      return this.#join(
        this.#s.roomById.get(id) as RoomRow,
        actor.identityId,
        init.at,
        Number.MAX_SAFE_INTEGER,
      );
    });
  }

  async findRoom(name: string): Promise<ChatRoomRecord | undefined> {
    return this.#db.read("chat.findRoom", () => {
      const row = this.#s.roomByKey.get(name.toLowerCase());
      return row === undefined ? undefined : roomOf(row);
    });
  }

  async getRoom(id: number): Promise<ChatRoomRecord | undefined> {
    return this.#db.read("chat.getRoom", () => {
      const row = this.#s.roomById.get(id);
      return row === undefined ? undefined : roomOf(row);
    });
  }

  async loadRoom(
    id: number,
    window: number,
  ): Promise<
    { room: ChatRoomRecord; members: ChatMemberRecord[]; messages: ChatMessageRecord[] } | undefined
  > {
    // One write lock held for the three reads: nothing commits between them.
    return this.#db.write("chat.loadRoom", () => {
      const room = this.#s.roomById.get(id);
      if (room === undefined) return undefined;
      return {
        room: roomOf(room),
        members: this.#s.members.all(id).map(memberOf),
        messages: this.#s.latest.all(id, window).reverse().map(messageOf),
      };
    });
  }

  async listRooms(identityId: number, limit: number): Promise<ChatRoomView[]> {
    return this.#db.read("chat.listRooms", () =>
      this.#s.listRooms.all(identityId, identityId, limit).map(viewOf),
    );
  }

  async getMember(roomId: number, identityId: number): Promise<ChatMemberRecord | undefined> {
    return this.#db.read("chat.getMember", () => {
      const row = this.#s.member.get(roomId, identityId);
      return row === undefined ? undefined : memberOf(row);
    });
  }

  async members(roomId: number): Promise<ChatMemberRecord[]> {
    return this.#db.read("chat.members", () => this.#s.members.all(roomId).map(memberOf));
  }

  // ---- memberships ----------------------------------------------------------------------------

  async join(actor: ChatActor, roomId: number, at: number, maxMembers: number): Promise<ChatJoinResult> {
    return this.#group.submit("chat.join", () => {
      this.#db.assertCurrent(actor.identityId, actor.epoch);
      const room = this.#room(roomId);
      const current = this.#s.member.get(roomId, actor.identityId);
      const active = current !== undefined && current.active === 1;
      if (room.kind === "inviteOnly" && !active && room.owner_id !== actor.identityId) {
        throw new ParallaxError(ErrorCode.NOT_FOUND, `no room ${room.name}`);
      }
      if (!active && this.#s.ban.get(roomId, actor.identityId) !== undefined) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `you were removed from ${room.name} and cannot join it again`,
        );
      }
      return this.#join(room, actor.identityId, at, maxMembers);
    });
  }

  async leave(actor: ChatMembershipActor, at: number): Promise<ChatMembershipChange> {
    return this.#group.submit("chat.leave", () => {
      const { room } = this.#membership(actor);
      this.#s.endMember.run(room.id, actor.identityId);
      this.#s.spendInvitationsBy.run(at, room.id, actor.identityId);
      const message = this.#append(room.id, actor.identityId, "left", "", at);
      return { member: this.#memberRecord(room.id, actor.identityId), message };
    });
  }

  async remove(
    actor: ChatMembershipActor,
    targetId: number,
    reason: string,
    at: number,
  ): Promise<ChatMembershipChange> {
    return this.#group.submit("chat.remove", () => {
      const { room, member } = this.#moderator(actor);
      const target = this.#target(room, member, targetId, "remove");
      this.#s.endMember.run(room.id, targetId);
      this.#s.spendInvitationsBy.run(at, room.id, targetId);
      if (room.kind === "moderated") this.#s.insertBan.run(room.id, targetId, actor.identityId, reason, at);
      const message = this.#append(room.id, actor.identityId, "removed", target.name, at);
      return { member: this.#memberRecord(room.id, targetId), message };
    });
  }

  async mute(
    actor: ChatMembershipActor,
    targetId: number,
    until: number,
    text: string,
    at: number,
  ): Promise<ChatMembershipChange> {
    return this.#group.submit("chat.mute", () => {
      const { room, member } = this.#moderator(actor);
      this.#target(room, member, targetId, "mute");
      if (!Number.isSafeInteger(until) || until < 0) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a mute lasts until a time in ms, or 0");
      }
      this.#s.setMuted.run(until, room.id, targetId);
      const message = this.#append(room.id, actor.identityId, "muted", text, at);
      return { member: this.#memberRecord(room.id, targetId), message };
    });
  }

  async unmute(actor: ChatMembershipActor, targetId: number, at: number): Promise<ChatMembershipChange> {
    return this.#group.submit("chat.unmute", () => {
      const { room, member } = this.#moderator(actor);
      const target = this.#target(room, member, targetId, "mute");
      if (target.muted_until === null) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${target.name} is not muted in ${room.name}`);
      }
      this.#s.setMuted.run(null, room.id, targetId);
      const message = this.#append(room.id, actor.identityId, "unmuted", target.name, at);
      return { member: this.#memberRecord(room.id, targetId), message };
    });
  }

  async setModerator(
    actor: ChatMembershipActor,
    targetId: number,
    moderator: boolean,
  ): Promise<ChatMemberRecord> {
    return this.#group.submit("chat.setModerator", () => {
      const { room } = this.#moderator(actor);
      if (actor.identityId !== room.owner_id) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `only the owner of ${room.name} appoints moderators`,
        );
      }
      if (targetId === room.owner_id) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `the owner of ${room.name} always moderates it`);
      }
      const target = this.#s.member.get(room.id, targetId);
      if (target === undefined || target.active !== 1) {
        throw new ParallaxError(
          ErrorCode.NOT_FOUND,
          `${this.#name(targetId)} is not a member of ${room.name}`,
        );
      }
      this.#s.setModerator.run(moderator ? 1 : 0, room.id, targetId);
      return this.#memberRecord(room.id, targetId);
    });
  }

  // ---- messages -------------------------------------------------------------------------------

  async post(actor: ChatMembershipActor, text: string, at: number): Promise<ChatMessageRecord> {
    return this.#group.submit("chat.post", () => {
      const { room, member } = this.#membership(actor);
      const until = member.muted_until;
      if (until !== null && (until === 0 || at < until)) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          until === 0
            ? `you are muted in ${room.name} until a moderator unmutes you`
            : `you are muted in ${room.name} until ${new Date(until).toISOString()}`,
        );
      }
      if (text.length === 0) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a message cannot be empty");
      return this.#append(room.id, actor.identityId, "text", text, at);
    });
  }

  async markRead(actor: ChatMembershipActor, seq: number): Promise<number> {
    return this.#group.submit("chat.markRead", () => {
      const { room } = this.#membership(actor);
      if (!Number.isSafeInteger(seq) || seq < 0 || seq > room.last_seq) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          `room ${room.name} has messages up to ${room.last_seq}, not ${seq}`,
        );
      }
      this.#s.setLastRead.run(seq, room.id, actor.identityId);
      return this.#memberRecord(room.id, actor.identityId).lastRead;
    });
  }

  async history(roomId: number, query: ChatHistoryQuery): Promise<ChatMessageRecord[]> {
    return this.#db.read("chat.history", () =>
      page(
        query,
        (limit) => this.#s.latest.all(roomId, limit),
        (seq, limit) => this.#s.before.all(roomId, seq, limit),
        (seq, limit) => this.#s.after.all(roomId, seq, limit),
        messageOf,
      ),
    );
  }

  // ---- invitations ----------------------------------------------------------------------------

  async invite(
    actor: ChatMembershipActor,
    inviteeId: number | null,
    at: number,
    maxOpen: number,
  ): Promise<ChatInvitationRecord> {
    return this.#group.submit("chat.invite", () => {
      const { room, member } = this.#membership(actor);
      if (room.kind !== "inviteOnly" && member.moderator !== 1) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `only moderators invite to ${room.name} (members invite only to invite-only rooms)`,
        );
      }
      if (inviteeId !== null) {
        if (inviteeId === actor.identityId) {
          throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "one cannot invite oneself");
        }
        this.#name(inviteeId);
        const m = this.#s.member.get(room.id, inviteeId);
        if (m !== undefined && m.active === 1) {
          throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${m.name} is a member of ${room.name} already`);
        }
      }
      if ((this.#s.countOpenBy.get(room.id, actor.identityId)?.n ?? 0) >= maxOpen) {
        throw new ParallaxError(ErrorCode.QUOTA, `at most ${maxOpen} open invitations per inviter and room`);
      }
      const { id } = this.#s.insertInvitation.get(room.id, actor.identityId, inviteeId, at) as { id: number };
      return invitationOf(this.#s.invitation.get(id) as InvitationRow);
    });
  }

  async getInvitation(id: number): Promise<ChatInvitationRecord | undefined> {
    return this.#db.read("chat.getInvitation", () => {
      const row = this.#s.invitation.get(id);
      return row === undefined ? undefined : invitationOf(row);
    });
  }

  async openInvitations(identityId: number, limit: number): Promise<ChatInvitationRecord[]> {
    return this.#db.read("chat.openInvitations", () =>
      this.#s.openFor.all(identityId, limit).map(invitationOf),
    );
  }

  async acceptInvitation(
    actor: ChatActor,
    id: number,
    at: number,
    maxMembers: number,
  ): Promise<ChatJoinResult> {
    return this.#group.submit("chat.acceptInvitation", () => {
      this.#db.assertCurrent(actor.identityId, actor.epoch);
      const v = this.#s.invitation.get(id);
      if (v === undefined || v.used_at !== null) {
        throw new ParallaxError(ErrorCode.NOT_FOUND, "this invitation was used already");
      }
      if (v.invitee_id !== null && v.invitee_id !== actor.identityId) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `this invitation to ${v.room_name} is addressed to ${v.invitee_name}`,
        );
      }
      const room = this.#room(v.room_id);
      const inviter = this.#s.member.get(room.id, v.inviter_id);
      if (inviter === undefined || inviter.active !== 1) {
        throw new ParallaxError(ErrorCode.NOT_FOUND, `the inviter is no longer in ${room.name}`);
      }
      const current = this.#s.member.get(room.id, actor.identityId);
      const active = current !== undefined && current.active === 1;
      if (!active && this.#s.ban.get(room.id, actor.identityId) !== undefined) {
        // Only a moderator's invitation by name lifts a ban.
        if (v.invitee_id === null || inviter.moderator !== 1) {
          throw new ParallaxError(
            ErrorCode.PERMISSION_DENIED,
            `you were removed from ${room.name}: only a moderator's invitation by name lets you back`,
          );
        }
        this.#s.deleteBan.run(room.id, actor.identityId);
      }
      this.#s.useInvitation.run(at, actor.identityId, id);
      return this.#join(room, actor.identityId, at, maxMembers);
    });
  }

  // ---- inboxes --------------------------------------------------------------------------------

  async sendDirect(
    actor: ChatActor,
    recipientId: number,
    text: string,
    at: number,
  ): Promise<ChatInboxRecord> {
    return this.#group.submit("chat.sendDirect", () => {
      this.#db.assertCurrent(actor.identityId, actor.epoch);
      this.#name(recipientId);
      if (text.length === 0) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a message cannot be empty");
      const seq = (this.#s.inboxLast.get(recipientId)?.last ?? 0) + 1;
      const sender = this.#name(actor.identityId);
      this.#s.insertInbox.run(recipientId, seq, actor.identityId, sender, text, at);
      return { identityId: recipientId, seq, senderId: actor.identityId, senderName: sender, text, at };
    });
  }

  async inbox(identityId: number, query: ChatHistoryQuery): Promise<ChatInboxRecord[]> {
    return this.#db.read("chat.inbox", () =>
      page(
        query,
        (limit) => this.#s.inboxLatest.all(identityId, limit),
        (seq, limit) => this.#s.inboxBefore.all(identityId, seq, limit),
        (seq, limit) => this.#s.inboxAfter.all(identityId, seq, limit),
        inboxOf,
      ),
    );
  }

  async inboxLastSeq(identityId: number): Promise<number> {
    return this.#db.read("chat.inboxLastSeq", () => this.#s.inboxLast.get(identityId)?.last ?? 0);
  }
}
