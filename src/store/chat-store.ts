/**
 * The chat service's store contract (issue 12 §1, seed 004's chat) and its records. A service
 * asks for it with `store.repository(CHAT_STORE)`; `SqliteBrokerStore` answers with
 * `sqlite/chat.ts`, which shares the identities' database so that every write checks its
 * author's login epoch in its own transaction.
 *
 * A room is its row, its members (one row per user ever in it, kept after they leave so that
 * the membership epoch only grows), its bans, its messages (numbered 1, 2, … without gaps) and
 * its invitations. Each user has an inbox of direct messages, numbered the same way.
 *
 * Invariants every implementation keeps:
 * - A room's messages are numbered `last_seq + 1` in the transaction that stores them: no gap,
 *   no duplicate, whatever writes race. The same holds for each user's inbox.
 * - Every write by a user names them (`ChatActor`): inside the transaction the login must be
 *   current (PARALLAX_ERR_REVOKED otherwise). Writes through a membership also name its epoch:
 *   a membership that ended (left, removed) or was renewed since fails with REVOKED, so a stale
 *   facet can never post, even racing the removal.
 * - A membership's epoch grows on every join and every end; a row is never deleted.
 * - An invitation is used at most once; accepting it and joining commit together.
 * - A member removed from a moderated room is banned: no join brings them back, only an
 *   invitation addressed to them by a moderator (which lifts the ban with the join).
 * - Nothing a refused write touched changes: the checks run first, in the transaction.
 *
 * Tests: test/store/chat.test.ts, test/services/chat/
 */
import { type StoreContract, storeContract } from "./store-contract.js";

export type ChatRoomKind = "public" | "inviteOnly" | "moderated";
export type ChatMessageKind = "text" | "joined" | "left" | "removed" | "muted" | "unmuted";

/** Who writes: a login (identity and epoch). */
export interface ChatActor {
  readonly identityId: number;
  readonly epoch: number;
}

/** A write through a membership: the login, and the membership epoch the facet was minted at. */
export interface ChatMembershipActor extends ChatActor {
  readonly roomId: number;
  readonly membershipEpoch: number;
}

export interface ChatRoomRecord {
  readonly id: number;
  readonly name: string;
  readonly kind: ChatRoomKind;
  readonly topic: string;
  readonly ownerId: number;
  readonly ownerName: string;
  readonly createdAt: number;
  readonly lastSeq: number;
  /** Current members. */
  readonly members: number;
}

export interface ChatMemberRecord {
  readonly roomId: number;
  readonly identityId: number;
  readonly name: string;
  readonly moderator: boolean;
  /** null: not muted; 0: until unmuted; else muted while the clock is before it (ms). */
  readonly mutedUntil: number | null;
  readonly lastRead: number;
  /** Grows on every join and every end of the membership. */
  readonly epoch: number;
  readonly active: boolean;
  readonly joinedAt: number;
}

export interface ChatMessageRecord {
  readonly roomId: number;
  readonly seq: number;
  readonly authorId: number;
  readonly authorName: string;
  readonly kind: ChatMessageKind;
  readonly text: string;
  readonly at: number;
}

/** A room as one user sees it in a list. */
export interface ChatRoomView extends ChatRoomRecord {
  /** The viewer's membership (active or not), if they ever had one. */
  readonly membership: ChatMemberRecord | undefined;
}

export interface ChatInvitationRecord {
  readonly id: number;
  readonly roomId: number;
  readonly roomName: string;
  readonly inviterId: number;
  readonly inviterName: string;
  /** null: a bearer invitation. */
  readonly inviteeId: number | null;
  readonly inviteeName: string;
  readonly createdAt: number;
  /** null while open. */
  readonly usedAt: number | null;
}

export interface ChatInboxRecord {
  readonly identityId: number;
  readonly seq: number;
  readonly senderId: number;
  readonly senderName: string;
  readonly text: string;
  readonly at: number;
}

export type ChatHistoryQuery =
  | { readonly latest: true; readonly limit: number }
  | { readonly before: number; readonly limit: number }
  | { readonly after: number; readonly limit: number };

/** What a join (or an accepted invitation) did. */
export interface ChatJoinResult {
  readonly room: ChatRoomRecord;
  readonly member: ChatMemberRecord;
  /** The `joined` message; undefined if the user was a member already (another device). */
  readonly message: ChatMessageRecord | undefined;
}

/** What a membership change made by a moderator (or the member leaving) did. */
export interface ChatMembershipChange {
  readonly member: ChatMemberRecord;
  readonly message: ChatMessageRecord;
}

export interface ChatStore {
  /** Creates the room with its owner as first member and moderator, and the `joined` message. */
  createRoom(
    actor: ChatActor,
    init: { name: string; kind: ChatRoomKind; topic: string; at: number; maxOwned: number },
  ): Promise<ChatJoinResult>;
  /** The room of that name (ignoring case). */
  findRoom(name: string): Promise<ChatRoomRecord | undefined>;
  getRoom(id: number): Promise<ChatRoomRecord | undefined>;
  /**
   * One consistent read of what a live room needs: the room, its current members and its newest
   * `window` messages (oldest first). Undefined if there is no such room.
   */
  loadRoom(
    id: number,
    window: number,
  ): Promise<
    { room: ChatRoomRecord; members: ChatMemberRecord[]; messages: ChatMessageRecord[] } | undefined
  >;
  /** Rooms `identityId` may see (public, moderated, and invite-only ones it is in), by name. */
  listRooms(identityId: number, limit: number): Promise<ChatRoomView[]>;
  /** The membership row of (room, identity), active or not. */
  getMember(roomId: number, identityId: number): Promise<ChatMemberRecord | undefined>;
  /** A room's current members, by name. */
  members(roomId: number): Promise<ChatMemberRecord[]>;
  /**
   * Joins a public or moderated room (or any room the actor owns or is in). NOT_FOUND for an
   * invite-only room the actor is not in, PERMISSION_DENIED when banned, QUOTA when full.
   */
  join(actor: ChatActor, roomId: number, at: number, maxMembers: number): Promise<ChatJoinResult>;
  /** Ends the membership (it must be at `membershipEpoch`) with a `left` message. */
  leave(actor: ChatMembershipActor, at: number): Promise<ChatMembershipChange>;
  /**
   * A moderator (the actor, at their membership epoch) ends `targetId`'s membership with a
   * `removed` message; in a moderated room the target is banned.
   */
  remove(
    actor: ChatMembershipActor,
    targetId: number,
    reason: string,
    at: number,
  ): Promise<ChatMembershipChange>;
  /** A moderator mutes `targetId` until `until` (0: until unmuted), with a `muted` message. */
  mute(
    actor: ChatMembershipActor,
    targetId: number,
    until: number,
    text: string,
    at: number,
  ): Promise<ChatMembershipChange>;
  /** A moderator unmutes `targetId`, with an `unmuted` message. */
  unmute(actor: ChatMembershipActor, targetId: number, at: number): Promise<ChatMembershipChange>;
  /** The owner makes `targetId` a moderator or not. */
  setModerator(actor: ChatMembershipActor, targetId: number, moderator: boolean): Promise<ChatMemberRecord>;
  /** Stores a text message by a current, unmuted member (PERMISSION_DENIED while muted at `at`). */
  post(actor: ChatMembershipActor, text: string, at: number): Promise<ChatMessageRecord>;
  /** Moves the member's read marker to max(marker, seq); the marker now. */
  markRead(actor: ChatMembershipActor, seq: number): Promise<number>;
  /** In increasing sequence. */
  history(roomId: number, query: ChatHistoryQuery): Promise<ChatMessageRecord[]>;
  /**
   * A member (of an invite-only room) or a moderator invites `inviteeId` (null: bearer). QUOTA
   * beyond `maxOpen` open invitations of this inviter in this room.
   */
  invite(
    actor: ChatMembershipActor,
    inviteeId: number | null,
    at: number,
    maxOpen: number,
  ): Promise<ChatInvitationRecord>;
  getInvitation(id: number): Promise<ChatInvitationRecord | undefined>;
  /** Open invitations addressed to `identityId` whose inviter is still in the room, oldest first. */
  openInvitations(identityId: number, limit: number): Promise<ChatInvitationRecord[]>;
  /**
   * Uses the invitation and joins the actor to its room. PERMISSION_DENIED if it is addressed to
   * someone else; NOT_FOUND if used, or its inviter is no longer in the room.
   */
  acceptInvitation(actor: ChatActor, id: number, at: number, maxMembers: number): Promise<ChatJoinResult>;
  /** Appends a direct message from the actor to `recipientId`'s inbox (NOT_FOUND if no such user). */
  sendDirect(actor: ChatActor, recipientId: number, text: string, at: number): Promise<ChatInboxRecord>;
  /** In increasing sequence. */
  inbox(identityId: number, query: ChatHistoryQuery): Promise<ChatInboxRecord[]>;
  /** The sequence of the newest message in the inbox (0: none). */
  inboxLastSeq(identityId: number): Promise<number>;
}

export const CHAT_STORE: StoreContract<ChatStore> = storeContract<ChatStore>("chat");
