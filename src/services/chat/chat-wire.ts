/**
 * What crosses the wire for chat (schema/chat.capnp), in one place: the checks every argument
 * passes before anything is stored, and the conversions between store records and wire structs.
 *
 * Invariants: every check throws PARALLAX_ERR_BAD_ARGUMENT with a message naming the limit, and
 * runs before any state is touched; lengths are counted in code points, as the store's CHECKs
 * (SQLite's `length`) count them; no text longer than its limit is ever copied into a message.
 *
 * Tests: test/services/chat/chat-hostile.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  ChatHistoryQuery,
  ChatInboxRecord,
  ChatMessageKind,
  ChatMessageRecord,
  ChatRoomKind,
} from "../../store/index.js";
import {
  type HistoryQuery,
  HistoryQuery_Which,
  type Message$Shape,
  MessageKind,
  RoomKind,
  Status,
} from "../../wire/gen/chat.js";

/** Longest message, in characters. */
export const MAX_MESSAGE_CHARS = 4000;
/** Longest room topic, in characters. */
export const MAX_TOPIC_CHARS = 200;
/** Longest status text and removal reason, in characters. */
export const MAX_STATUS_CHARS = 100;
export const MAX_REASON_CHARS = 200;
/** Longest user name (the broker's own limit). */
export const MAX_USER_NAME_CHARS = 64;
/** Most messages one history read returns; 0 asks for the default. */
export const MAX_HISTORY_READ = 100;
export const DEFAULT_HISTORY_READ = 50;

const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Control characters but tab and line feed, and the bidirectional overrides and isolates. */
const FORBIDDEN_IN_MESSAGE = /(?![\t\n\r])[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;
const FORBIDDEN_IN_LINE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

/** Code points in `s`, counting no further than `limit + 1` (a huge string costs no more). */
function chars(s: string, limit: number): number {
  // Each code point is one or two UTF-16 units: a string this short cannot be over the limit.
  if (s.length <= limit) return [...s].length;
  let n = 0;
  for (const _ of s) if (++n > limit) break;
  return n;
}

export function checkRoomName(name: string): string {
  if (!ROOM_NAME.test(name)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      name.length === 0 || name.length > 64
        ? `a room name has 1 to 64 characters; got ${name.length}`
        : "a room name has only ASCII letters, digits, '-', '_' and '.'",
    );
  }
  return name;
}

/** A message's text: 1..4000 characters, line breaks and tabs allowed, other controls not. */
export function checkMessage(text: string): string {
  const n = chars(text, MAX_MESSAGE_CHARS);
  if (n === 0 || n > MAX_MESSAGE_CHARS) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a message has 1 to ${MAX_MESSAGE_CHARS} characters; got ${n > MAX_MESSAGE_CHARS ? `more than ${MAX_MESSAGE_CHARS}` : 0}`,
    );
  }
  if (FORBIDDEN_IN_MESSAGE.test(text)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      "a message cannot contain control characters (but line breaks and tabs) or bidirectional overrides",
    );
  }
  return text;
}

/** One line of at most `max` characters (a topic, a status, a reason); empty allowed. */
export function checkLine(what: string, text: string, max: number): string {
  if (chars(text, max) > max) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} has at most ${max} characters`);
  }
  if (FORBIDDEN_IN_LINE.test(text)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${what} cannot contain control characters or bidirectional overrides`,
    );
  }
  return text;
}

/** A user name as an argument (who to write to, mute, invite): 1..64 characters. */
export function checkUserName(name: string): string {
  if (name.length === 0 || chars(name, MAX_USER_NAME_CHARS) > MAX_USER_NAME_CHARS) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a user name has 1 to ${MAX_USER_NAME_CHARS} characters`);
  }
  return name;
}

export function readRoomKind(kind: number): ChatRoomKind {
  switch (kind) {
    case RoomKind.PUBLIC:
      return "public";
    case RoomKind.INVITE_ONLY:
      return "inviteOnly";
    case RoomKind.MODERATED:
      return "moderated";
    default:
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `no room kind ${kind}`);
  }
}

export function writeRoomKind(kind: ChatRoomKind): RoomKind {
  return kind === "public"
    ? RoomKind.PUBLIC
    : kind === "inviteOnly"
      ? RoomKind.INVITE_ONLY
      : RoomKind.MODERATED;
}

const MESSAGE_KINDS: Record<ChatMessageKind, MessageKind> = {
  text: MessageKind.TEXT,
  joined: MessageKind.JOINED,
  left: MessageKind.LEFT,
  removed: MessageKind.REMOVED,
  muted: MessageKind.MUTED,
  unmuted: MessageKind.UNMUTED,
};

/** A sequence number from the wire (UInt64) as a safe integer. */
export function readSeq(what: string, seq: bigint): number {
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} ${seq} is beyond any sequence`);
  }
  return Number(seq);
}

export function readHistoryQuery(q: HistoryQuery): ChatHistoryQuery {
  const raw = q.limit;
  if (raw > MAX_HISTORY_READ) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a history read returns at most ${MAX_HISTORY_READ} messages; asked for ${raw}`,
    );
  }
  const limit = raw === 0 ? DEFAULT_HISTORY_READ : raw;
  switch (q.which()) {
    case HistoryQuery_Which.LATEST:
      return { latest: true, limit };
    case HistoryQuery_Which.BEFORE:
      return { before: readSeq("before", q.before), limit };
    case HistoryQuery_Which.AFTER:
      return { after: readSeq("after", q.after), limit };
    default:
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a history query is latest, before or after");
  }
}

/** A status one may set (offline is not one). */
export function readStatus(status: number): Status {
  if (status === Status.ONLINE || status === Status.AWAY || status === Status.BUSY) return status;
  throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a status set is online, away or busy");
}

export function writeMessage(room: string, m: ChatMessageRecord): Message$Shape {
  return {
    room,
    seq: BigInt(m.seq),
    author: m.authorName,
    text: m.text,
    at: BigInt(m.at),
    kind: MESSAGE_KINDS[m.kind],
  };
}

export function writeInboxMessage(m: ChatInboxRecord): Message$Shape {
  return {
    room: "",
    seq: BigInt(m.seq),
    author: m.senderName,
    text: m.text,
    at: BigInt(m.at),
    kind: MessageKind.TEXT,
  };
}
