/**
 * The chat client (issue 12 §1, §3): rooms, the inbox and mailboxes over a connection that heals
 * itself, with gap-free recovery done by the client — after a dropped connection every room and
 * inbox it follows is resumed from the last sequence its handler received, so the handler sees
 * each message exactly once and in order; beyond the server's retained window it is told
 * `onUnrecoverable` and, with `fillGaps` (the default), the missed range is read from history
 * and handed over before the rest.
 *
 * API: `join(room, onMessage, options)` and `createRoom(...)` answer a `ChatRoom` (post, history,
 * markRead, typing, leave, lastSeq; `current` is the RoomMember facet of the moment, for
 * moderation and invitations); `inbox(onMessage, options)` a `ChatInbox`; `mailbox(user)` a
 * `ChatMailbox` (send). Messages are plain values (`ChatMessage`, seq as a number).
 *
 * Built on ReconnectingClient (src/login/reconnecting-client.ts): it resumes with the rotated
 * token and re-attaches ("chat", "member"); `AttachedPerspective.onReattach` hands over each new
 * ChatMember, on which the client re-joins its rooms and re-opens its inbox. The ChatClient makes
 * its ReconnectingClient itself (`ChatClient.start(options)`, exposed as `reconnecting` for other
 * perspectives) because it must hear `disconnected` and `failed`, which a ReconnectingClient tells
 * only the `onEvent` it was made with: on `disconnected` every facet is dropped (calls wait for the
 * rejoin), on `failed` every handle ends and waiting calls fail.
 *
 * Invariants:
 * - A handle's handler runs one message at a time, in the order the server sent them; a message is
 *   accepted only if its seq exceeds the handle's `lastSeq` (then `lastSeq` is that seq), so none
 *   is handed over twice. The listener's call is answered once the handler is done, which is the
 *   server's back-pressure (at most 32 unanswered; the rest wait in its window).
 * - After each reconnect a room is joined again with `resumeAfter` = `lastSeq` (none lost); a loss
 *   the server reports is told as `onUnrecoverable(lastSeq, resumedFrom)` in order with the
 *   messages, only if the handler lacks something, then filled from `RoomMember.history` page by
 *   page (`fillGaps`) or skipped. A fill cut short by a drop stops that listener's deliveries: the
 *   next rejoin resumes after what was handed over, so the fill's gap is never skipped.
 * - A room is joined again only if `ChatMember.rooms()` on the new connection says the user is
 *   still a member: one removed, or who left on another device, while disconnected is not
 *   re-joined (a public room would take them back); its handle ends with `onClosed`. So does a
 *   room whose listener heard `closed`, and one whose rejoin the server refuses. Left open: a
 *   removal between that check and the join (one round trip) in a public room makes the join a
 *   new membership; the handle then follows the room as a member again.
 * - An inbox that had heard nothing (`lastSeq` 0) cannot ask the server to resume (0 means "from
 *   now"): it re-opens live and reads its history from the start before any live message, so
 *   what arrived while away is not lost. The first `inbox()` starts after the inbox's newest
 *   message at that moment (or `resumeAfter`), never replaying older ones.
 * - Calls on a handle (`post`, `markRead`, `history`, `leave`, a mailbox's `send`) made while
 *   disconnected wait for the rejoin; a call in flight when the connection drops fails with
 *   PARALLAX_ERR_DISCONNECTED and is not repeated (a post may have been stored). Calls on an
 *   ended handle fail with PARALLAX_ERR_REVOKED naming why it ended.
 * - A handler's or callback's throw is reported (`handlerFailed`) and the client goes on; the
 *   message counts as handed over.
 *
 * Browser-safe: nothing from Node.
 *
 * Tests: test/services/chat/chat-client.test.ts
 */
import { type Clock, systemClock } from "../../clock.js";
import { ErrorCode, ParallaxError, toParallaxError } from "../../errors.js";
import {
  type ReconnectEvent,
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "../../login/reconnecting-client.js";
import type { Identity, Root } from "../../wire/gen/broker.js";
import {
  type ChatMember,
  type HistoryQuery$Shape,
  type Inbox,
  InboxListener,
  type Mailbox,
  type Message,
  type Presence,
  type RoomInfo,
  type RoomKind,
  RoomListener,
  type RoomMember,
} from "../../wire/gen/chat.js";
import { CHAT_MEMBER } from "./chat-keys.js";
import { MAX_HISTORY_READ } from "./chat-wire.js";

export type ChatMessageKind = "text" | "joined" | "left" | "removed" | "muted" | "unmuted";
export type ChatRoomKind = "public" | "inviteOnly" | "moderated";
export type ChatStatus = "online" | "away" | "busy" | "offline";

export interface ChatMessage {
  /** "" for a direct message. */
  readonly room: string;
  readonly seq: number;
  /** The author (the sender, for a direct message), stamped by the server. */
  readonly author: string;
  readonly text: string;
  /** ms since the epoch, the server's clock. */
  readonly at: number;
  readonly kind: ChatMessageKind;
}

export interface ChatPresence {
  readonly user: string;
  readonly status: ChatStatus;
  readonly text: string;
  /** When a status set with a lifetime lapses; 0 = never. */
  readonly until: number;
}

export interface ChatRoomInfo {
  readonly name: string;
  readonly kind: ChatRoomKind;
  readonly topic: string;
  readonly owner: string;
  readonly members: number;
  readonly lastSeq: number;
  readonly lastRead: number;
  readonly member: boolean;
  readonly moderator: boolean;
}

export type ChatHistoryQuery =
  | { readonly latest: true; readonly limit?: number }
  | { readonly before: number; readonly limit?: number }
  | { readonly after: number; readonly limit?: number };

export interface ChatFollowOptions {
  /** Messages in (after, resumedFrom) were beyond the server's window when this handle resumed. */
  readonly onUnrecoverable?: (after: number, resumedFrom: number) => unknown;
  /** Default true: after `onUnrecoverable`, read the missed range from history and hand it over first. */
  readonly fillGaps?: boolean;
  /** Start after this sequence instead of "from now" (a position kept from an earlier run). */
  readonly resumeAfter?: number;
}

export interface ChatJoinOptions extends ChatFollowOptions {
  /** The handle ended: removed, left on another device, refused on rejoin, or the login ended. */
  readonly onClosed?: (reason: string) => unknown;
  readonly onTyping?: (user: string, until: number) => unknown;
  readonly onPresence?: (presence: ChatPresence) => unknown;
}

export type ChatClientEvent =
  | ReconnectEvent
  /** Every room and inbox was joined again (or ended) after a reconnect. */
  | { readonly type: "restored" }
  /** A room could not be joined again; its handle has ended. */
  | { readonly type: "restoreFailed"; readonly room: string; readonly error: ParallaxError }
  /** A handler or callback threw, or a gap could not be read; the client carries on. */
  | { readonly type: "handlerFailed"; readonly where: string; readonly error: ParallaxError };

export interface ChatClientOptions {
  /** Opens a new connection (e.g. `() => connect(url)`). */
  readonly connect: ReconnectingClientOptions["connect"];
  /** The first login, given the Root of a fresh connection; later ones resume. */
  readonly login: (root: Root) => Promise<Identity>;
  /** Names this device on the resume token. */
  readonly device?: string;
  /** Start by resuming with this token instead of logging in (ReconnectingClientOptions.resumeToken). */
  readonly resumeToken?: string;
  /** Told each token the client holds as it changes (ReconnectingClientOptions.onToken). */
  readonly onToken?: (token: string | undefined) => void;
  readonly onEvent?: (event: ChatClientEvent) => void;
  /** First retry delay in ms (reconnects, and rejoins refused for a quota), doubled up to `maxDelayMs`. Default 200. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Waits between retries on this clock. Default: the system clock. */
  readonly clock?: Clock;
  /** Messages per history read when filling a gap, 1..100. Default 100. */
  readonly fillPageSize?: number;
}

const KINDS: readonly ChatMessageKind[] = ["text", "joined", "left", "removed", "muted", "unmuted"];
const ROOM_KINDS: readonly ChatRoomKind[] = ["public", "inviteOnly", "moderated"];
const STATUSES: readonly ChatStatus[] = ["online", "away", "busy", "offline"];
/** `ChatMember.rooms()` lists at most this many. */
const MAX_ROOMS_LISTED = 500;

/** The live attachment: which one (`gen`, +1 per re-attach) and its stub. */
interface Live {
  readonly gen: number;
  readonly member: ChatMember;
}

/** What handles need of their client. */
interface Host {
  readonly fillPage: number;
  emit(event: ChatClientEvent): void;
  live(): Promise<Live>;
  forget(handle: Followed): void;
}

export class ChatClient {
  readonly reconnecting: ReconnectingClient;
  readonly #options: ChatClientOptions;
  readonly #clock: Clock;
  #live: Live | undefined;
  #gen = 0;
  #failure: ParallaxError | undefined;
  #closed = false;
  readonly #waiting: Array<{ resolve: (l: Live) => void; reject: (e: ParallaxError) => void }> = [];
  readonly #handles = new Set<Followed>();
  readonly #timers = new Set<{ cancel(): void }>();
  /** `rooms()` of one attachment, asked once per restore. */
  #listing: { gen: number; rooms: Promise<ChatRoomInfo[]> } | undefined;
  readonly #host: Host;

  private constructor(options: ChatClientOptions) {
    const page = options.fillPageSize ?? MAX_HISTORY_READ;
    if (!Number.isSafeInteger(page) || page < 1 || page > MAX_HISTORY_READ) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `fillPageSize is 1 to ${MAX_HISTORY_READ} messages; got ${String(page)}`,
      );
    }
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#host = {
      fillPage: page,
      emit: (e) => this.#emit(e),
      live: () => this.#whenLive(),
      forget: (h) => this.#handles.delete(h),
    };
    this.reconnecting = new ReconnectingClient({
      connect: options.connect,
      login: options.login,
      device: options.device ?? "chat client",
      resumeToken: options.resumeToken,
      onToken: options.onToken,
      baseDelayMs: options.baseDelayMs,
      maxDelayMs: options.maxDelayMs,
      clock: options.clock,
      onEvent: (e) => this.#reconnectEvent(e),
    });
  }

  /** Connects, logs in and attaches the chat perspective. */
  static async start(options: ChatClientOptions): Promise<ChatClient> {
    const client = new ChatClient(options);
    try {
      await client.reconnecting.start();
      const attached = await client.reconnecting.attach(CHAT_MEMBER);
      attached.onReattach((member) => client.#reattached(member));
      client.#live = { gen: ++client.#gen, member: attached.current };
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Whether the chat perspective is attached right now (rooms may still be rejoining). */
  get connected(): boolean {
    return this.#live !== undefined;
  }

  /** Settles once a reconnect in progress is over. */
  settled(): Promise<void> {
    return this.reconnecting.settled();
  }

  /** The public and moderated rooms, and the invite-only ones the user is in (at most 500). */
  async rooms(): Promise<ChatRoomInfo[]> {
    const { member } = await this.#whenLive();
    return (await member.rooms()).rooms.toArray().map(readInfo);
  }

  /** Joins `room` and follows it: `onMessage` hears every message after now, once, in order, across reconnects. */
  async join(
    room: string,
    onMessage: (message: ChatMessage) => unknown,
    options: ChatJoinOptions = {},
  ): Promise<ChatRoom> {
    if (typeof room !== "string") throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a room name must be text");
    const handle = new ChatRoom(this.#host, room, onMessage, options, (member, listener, resumeAfter) =>
      member.join({ room, options: { listener, resumeAfter } }),
    );
    await this.#open(handle);
    return handle;
  }

  /** Creates a room (the user owns and moderates it) and follows it as `join` does. */
  async createRoom(
    room: string,
    kind: ChatRoomKind,
    topic: string,
    onMessage: (message: ChatMessage) => unknown,
    options: ChatJoinOptions = {},
  ): Promise<ChatRoom> {
    const k = ROOM_KINDS.indexOf(kind);
    if (k < 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `unknown room kind "${String(kind)}": public, inviteOnly or moderated`,
      );
    }
    if (options.resumeAfter !== undefined && options.resumeAfter !== 0) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a new room has nothing to resume after");
    }
    const handle = new ChatRoom(this.#host, room, onMessage, options, (member, listener, resumeAfter) =>
      member.createRoom({ name: room, kind: k as RoomKind, topic, options: { listener, resumeAfter } }),
    );
    await this.#open(handle);
    return handle;
  }

  /** Follows the user's direct messages from now on (or after `resumeAfter`), across reconnects. */
  async inbox(
    onMessage: (message: ChatMessage) => unknown,
    options: ChatFollowOptions = {},
  ): Promise<ChatInbox> {
    const handle = new ChatInbox(this.#host, onMessage, options);
    let after = options.resumeAfter ?? 0;
    if (after === 0) {
      const live = await this.#whenLive();
      // "From now": after the newest message there is (one that arrives meanwhile is replayed).
      const probe = live.member.inbox({ options: {} });
      try {
        const newest = (await probe.inbox.history({ query: { latest: null, limit: 1 } })).messages;
        after = newest.getLength() === 0 ? 0 : Number(newest.get(0).seq);
      } finally {
        probe.dispose();
      }
    }
    handle.startAfter(after);
    await this.#open(handle);
    return handle;
  }

  /** A send-only facet to `user`'s inbox (PARALLAX_ERR_NOT_FOUND for unknown users). */
  async mailbox(user: string): Promise<ChatMailbox> {
    if (typeof user !== "string") throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a user name must be text");
    const box = new ChatMailbox(this.#host, user);
    await box.open();
    return box;
  }

  /**
   * The first open of a handle; it is followed (restored after reconnects) once that is answered.
   * A drop meanwhile fails it with PARALLAX_ERR_DISCONNECTED (a join is not repeated unasked).
   */
  async #open(handle: Followed): Promise<void> {
    const live = await this.#whenLive();
    try {
      await handle.openFirst(live);
    } catch (err) {
      handle.end(undefined);
      const error = toParallaxError(err);
      if (error.code === ErrorCode.DISPOSED && this.#live !== live) {
        throw new ParallaxError(
          ErrorCode.DISCONNECTED,
          `the connection dropped while opening ${handle.name}; nothing is followed`,
        );
      }
      throw err;
    }
    this.#handles.add(handle);
    const now = this.#live;
    // Answered on an attachment since replaced, after its restore looked: open it again now.
    if (now !== undefined && handle.gen < now.gen) void this.#restoreOne(handle, now, 0);
  }

  #reconnectEvent(e: ReconnectEvent): void {
    if (e.type === "disconnected") {
      this.#live = undefined;
      for (const h of this.#handles) h.dropFacet();
    } else if (e.type === "failed") {
      this.#fail(e.error);
    }
    this.#emit(e);
  }

  #reattached(member: ChatMember): void {
    if (this.#closed) return;
    const live: Live = { gen: ++this.#gen, member };
    this.#live = live;
    for (const w of this.#waiting.splice(0)) w.resolve(live);
    void this.#restoreAll(live);
  }

  async #restoreAll(live: Live): Promise<void> {
    const jobs = [...this.#handles].filter((h) => h.gen < live.gen).map((h) => this.#restoreOne(h, live, 0));
    await Promise.all(jobs);
    if (this.#live === live) this.#emit({ type: "restored" });
  }

  /** Opens `h` again on `live`; never throws (a failure ends the handle, or waits for the next attachment). */
  async #restoreOne(h: Followed, live: Live, attempt: number): Promise<void> {
    try {
      if (h instanceof ChatRoom) {
        const rooms = await this.#roomsOf(live);
        const info = rooms.find((r) => r.name.toLowerCase() === h.name.toLowerCase());
        if ((info === undefined && rooms.length < MAX_ROOMS_LISTED) || info?.member === false) {
          h.end(
            `no longer a member of ${h.name} (removed, or left elsewhere, while this client was disconnected)`,
          );
          return;
        }
        if (info !== undefined && info.lastSeq < h.lastSeq) {
          h.end(
            `${h.name} has messages up to ${info.lastSeq} but this client saw ${h.lastSeq}: the server's history was reset`,
          );
          return;
        }
      }
      if (this.#live !== live || !h.active) return;
      await h.reopen(live);
    } catch (err) {
      const error = toParallaxError(err);
      if (this.#live !== live || !h.active) return;
      if (error.kind === "disconnected" || error.code === ErrorCode.DISPOSED) return; // the next attachment retries
      if (error.kind === "overloaded") {
        const base = this.#options.baseDelayMs ?? 200;
        const delay = Math.min(this.#options.maxDelayMs ?? 30_000, base * 2 ** attempt);
        const timer = this.#clock.setTimer(delay, () => {
          this.#timers.delete(timer);
          if (this.#live === live && h.active && h.gen < live.gen)
            void this.#restoreOne(h, live, attempt + 1);
        });
        this.#timers.add(timer);
        return;
      }
      this.#emit({ type: "restoreFailed", room: h.name, error });
      h.end(`could not rejoin ${h.name}: ${error.message}`);
    }
  }

  #roomsOf(live: Live): Promise<ChatRoomInfo[]> {
    if (this.#listing?.gen !== live.gen) {
      const rooms = (async () => (await live.member.rooms()).rooms.toArray().map(readInfo))();
      rooms.catch(() => {});
      this.#listing = { gen: live.gen, rooms };
    }
    return this.#listing.rooms;
  }

  #whenLive(): Promise<Live> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#live !== undefined) return Promise.resolve(this.#live);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  #fail(error: ParallaxError): void {
    this.#failure = error;
    for (const w of this.#waiting.splice(0)) w.reject(error);
    for (const h of [...this.#handles]) h.end(error.message);
  }

  #emit(event: ChatClientEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch {
      // a listener's failure is not the client's
    }
  }

  /** Ends every handle (without their `onClosed`), stops reconnecting and closes the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    const error = closedError();
    for (const w of this.#waiting.splice(0)) w.reject(error);
    for (const h of [...this.#handles]) h.end(undefined, error.message);
    this.#handles.clear();
    this.#live = undefined;
    this.reconnecting.close();
  }
}

/** A join, createRoom (or accepted invitation): its facet pipelined, its answer the room's info. */
interface RoomCall extends PromiseLike<{ readonly info: RoomInfo }> {
  readonly member: RoomMember;
  dispose(): void;
}

/** Joins on `member` with `listener` (the call takes its own reference), resuming after `resumeAfter`. */
type RoomOpener = (member: ChatMember, listener: RoomListener, resumeAfter: bigint) => RoomCall;

/** One join (or inbox open): its listener's token, the attachment and the facet (pipelined). */
interface Attempt<F> {
  readonly token: number;
  readonly gen: number;
  readonly facet: F;
  /** Answered: calls may use it. */
  answered: boolean;
}

/**
 * What a room and the inbox share: a log followed by sequence, a handler fed one message at a
 * time in order, and fills from history.
 */
abstract class Followed {
  #lastSeq = 0;
  /** The attachment the current facet belongs to (0: none yet). */
  gen = 0;
  #name: string;
  #chain: Promise<void> = Promise.resolve();
  #token = 0;
  /** Tasks of listeners with a smaller token are dropped (their fill was cut short). */
  #deadBelow = 0;
  #ended: ParallaxError | undefined;
  readonly #waiting: Array<{ resolve: () => void; reject: (e: ParallaxError) => void }> = [];

  constructor(
    readonly host: Host,
    name: string,
    readonly onMessage: (message: ChatMessage) => unknown,
    readonly follow: ChatFollowOptions,
  ) {
    this.#name = name;
    if (typeof follow !== "object" || follow === null)
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "options must be an object");
    if (typeof onMessage !== "function") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `following ${name} needs a message handler function`);
    }
    if (follow.resumeAfter !== undefined) checkSeq("resumeAfter", follow.resumeAfter);
    if (follow.onUnrecoverable !== undefined && typeof follow.onUnrecoverable !== "function")
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "onUnrecoverable must be a function");
  }

  /** The room's name (as the server spells it, once joined); "inbox" for the inbox. */
  get name(): string {
    return this.#name;
  }

  protected set name(name: string) {
    this.#name = name;
  }

  /** The seq of the last message handed to the handler: what a rejoin resumes after. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** @internal Where following starts (before the first open). */
  startAfter(seq: number): void {
    this.#lastSeq = seq;
  }

  get active(): boolean {
    return this.#ended === undefined;
  }

  /** Why it ended; undefined while active. */
  get error(): ParallaxError | undefined {
    return this.#ended;
  }

  protected abstract get attempt(): Attempt<unknown> | undefined;
  protected abstract set attempt(a: Attempt<unknown> | undefined);
  /** Up to `limit` messages after `after`, through `facet`. */
  protected abstract read(facet: unknown, after: number, limit: number): Promise<ChatMessage[]>;
  protected abstract closedBy(reason: string): void;

  /** @internal A fresh listener token. */
  protected nextToken(): number {
    return ++this.#token;
  }

  /** @internal Whether `token`'s listener is the current one. */
  protected isCurrent(token: number): boolean {
    return this.active && this.attempt?.token === token;
  }

  /** @internal The first open, on `live`. */
  abstract openFirst(live: Live): Promise<void>;
  /** @internal Opens the facet again on `live`, resuming after `lastSeq`. */
  abstract reopen(live: Live): Promise<void>;

  /** @internal The connection dropped: the facet went with it. */
  dropFacet(): void {
    const a = this.attempt;
    this.attempt = undefined;
    (a?.facet as { dispose(): void } | undefined)?.dispose();
  }

  /** The facet once answered, waiting for the rejoin while disconnected. */
  protected async facet<F>(): Promise<F> {
    for (;;) {
      if (this.#ended !== undefined) throw this.#ended;
      const a = this.attempt;
      if (a?.answered) return a.facet as F;
      await new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
    }
  }

  /** @internal Wakes calls waiting for the facet. */
  protected wake(): void {
    for (const w of this.#waiting.splice(0)) w.resolve();
  }

  /** Runs `fn` after everything queued before it, unless the handle ended or `token`'s listener died. */
  protected enqueue(token: number, where: string, fn: () => unknown): Promise<void> {
    const run = this.#chain
      .then(() => (this.#ended !== undefined || token < this.#deadBelow ? undefined : fn()))
      .then(
        () => {},
        (err: unknown) => this.host.emit({ type: "handlerFailed", where, error: toParallaxError(err) }),
      );
    this.#chain = run;
    return run;
  }

  /** @internal A message from `token`'s listener. */
  protected arrived(token: number, m: ChatMessage): Promise<void> {
    return this.enqueue(token, this.name, () => this.#accept(m));
  }

  async #accept(m: ChatMessage): Promise<void> {
    if (this.#ended !== undefined || m.seq <= this.lastSeq) return;
    this.#lastSeq = m.seq;
    try {
      await this.onMessage(m);
    } catch (err) {
      this.host.emit({ type: "handlerFailed", where: this.name, error: toParallaxError(err) });
    }
  }

  /** @internal `token`'s listener heard that (after, resumedFrom) is beyond the window. */
  protected lost(token: number, resumedFrom: number): Promise<void> {
    return this.enqueue(token, this.name, async () => {
      const upTo = resumedFrom - 1;
      if (upTo <= this.lastSeq) return;
      try {
        await this.follow.onUnrecoverable?.(this.lastSeq, resumedFrom);
      } catch (err) {
        this.host.emit({ type: "handlerFailed", where: this.name, error: toParallaxError(err) });
      }
      if (this.follow.fillGaps === false) this.#lastSeq = upTo;
      else await this.fill(token, upTo);
    });
  }

  /**
   * Hands over what history holds after `lastSeq` (up to `upTo`; undefined: all of it), page by
   * page, through `token`'s facet. Cut short by a drop, it stops `token`'s deliveries instead of
   * going on past the gap (the rejoin resumes after what was handed over).
   */
  protected async fill(token: number, upTo: number | undefined): Promise<void> {
    const page = this.host.fillPage;
    for (;;) {
      if (upTo !== undefined && this.lastSeq >= upTo) return;
      const a = this.attempt;
      if (this.#ended !== undefined) return;
      if (a === undefined || a.token !== token) {
        this.#deadBelow = Math.max(this.#deadBelow, token + 1);
        return;
      }
      let messages: ChatMessage[];
      try {
        messages = await this.read(a.facet, this.lastSeq, page);
      } catch (err) {
        const error = toParallaxError(err);
        if (error.kind === "disconnected" || error.code === ErrorCode.DISPOSED || !this.isCurrent(token)) {
          this.#deadBelow = Math.max(this.#deadBelow, token + 1);
          return;
        }
        this.host.emit({ type: "handlerFailed", where: `${this.name} history`, error });
        if (upTo !== undefined && upTo > this.lastSeq) this.#lastSeq = upTo;
        return;
      }
      let progressed = false;
      for (const m of messages) {
        if (upTo !== undefined && m.seq > upTo) return;
        if (m.seq > this.lastSeq) progressed = true;
        await this.#accept(m);
        if (this.#ended !== undefined) return;
      }
      if (messages.length < page || !progressed) {
        // The store has nothing more (of the gap: those are gone).
        if (upTo !== undefined && upTo > this.lastSeq) this.#lastSeq = upTo;
        return;
      }
    }
  }

  /**
   * @internal Ends the handle; `reason` (if any) goes to `onClosed`. Calls waiting fail with
   * REVOKED naming `why` (or `reason`).
   */
  end(reason: string | undefined, why = reason ?? `${this.name} was closed`): void {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.REVOKED, `this handle on ${this.name} has ended: ${why}`);
    this.host.forget(this);
    this.dropFacet();
    for (const w of this.#waiting.splice(0)) w.reject(this.#ended);
    if (reason !== undefined) this.closedBy(reason);
  }
}

/** A room the client follows: its messages reach the handler once each, in order, across reconnects. */
export class ChatRoom extends Followed {
  #attempt: Attempt<RoomMember> | undefined;
  #info: ChatRoomInfo | undefined;
  /** This handle's own `leave` is under way: the `closed` it causes is no news to tell. */
  #leaving = false;
  /** How the first open is made (join, createRoom); rejoins are joins. */
  readonly #first: RoomOpener;

  constructor(
    host: Host,
    room: string,
    onMessage: (message: ChatMessage) => unknown,
    readonly options: ChatJoinOptions,
    first: RoomOpener,
  ) {
    super(host, room, onMessage, options);
    this.#first = first;
    for (const k of ["onClosed", "onTyping", "onPresence"] as const) {
      const f = options[k];
      if (f !== undefined && typeof f !== "function") {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${k} must be a function`);
      }
    }
  }

  protected get attempt(): Attempt<unknown> | undefined {
    return this.#attempt;
  }

  protected set attempt(a: Attempt<unknown> | undefined) {
    this.#attempt = a as Attempt<RoomMember> | undefined;
  }

  /** The room as the first join answered it (name as the server spells it). */
  get info(): ChatRoomInfo {
    if (this.#info === undefined) throw new ParallaxError(ErrorCode.FAILED, `${this.name} is not joined yet`);
    return this.#info;
  }

  /**
   * The RoomMember facet of the current join (moderation, invitations, members). Replaced on every
   * rejoin: use it at once, never keep it. Throws while disconnected.
   */
  get current(): RoomMember {
    const a = this.#attempt;
    if (a === undefined || !a.answered || !this.active) {
      throw this.error ?? new ParallaxError(ErrorCode.DISCONNECTED, `${this.name} is not joined right now`);
    }
    return a.facet;
  }

  /** Posts as this user; answers the stored message. */
  async post(text: string): Promise<ChatMessage> {
    if (typeof text !== "string") throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a message must be text");
    const facet = await this.facet<RoomMember>();
    return readMessage((await facet.post({ text })).message);
  }

  /** Messages of the room, in sequence order (at most 100 a read). */
  async history(query: ChatHistoryQuery): Promise<ChatMessage[]> {
    const q = historyQuery(query);
    const facet = await this.facet<RoomMember>();
    return (await facet.history({ query: q })).messages.toArray().map(readMessage);
  }

  /** Moves the user's read marker to `seq` (never back), on every device. */
  async markRead(seq: number): Promise<void> {
    checkSeq("seq", seq);
    const facet = await this.facet<RoomMember>();
    await facet.markRead({ seq: BigInt(seq) });
  }

  /** Tells the other members this user is typing. */
  async typing(): Promise<void> {
    const facet = await this.facet<RoomMember>();
    await facet.typing();
  }

  /** Ends the membership on every device; this handle ends without `onClosed`. */
  async leave(): Promise<void> {
    if (!this.active) return;
    const facet = await this.facet<RoomMember>();
    this.#leaving = true;
    try {
      await facet.leave();
    } finally {
      this.#leaving = false;
    }
    this.end(undefined, `${this.name} was left`);
  }

  protected read(facet: unknown, after: number, limit: number): Promise<ChatMessage[]> {
    return (facet as RoomMember)
      .history({ query: { after: BigInt(after), limit } })
      .then((r) => r.messages.toArray().map(readMessage));
  }

  protected closedBy(reason: string): void {
    try {
      this.options.onClosed?.(reason);
    } catch (err) {
      this.host.emit({ type: "handlerFailed", where: this.name, error: toParallaxError(err) });
    }
  }

  openFirst(live: Live): Promise<void> {
    return this.#open(live, this.#first, true);
  }

  reopen(live: Live): Promise<void> {
    const name = this.name;
    return this.#open(
      live,
      (member, listener, resumeAfter) => member.join({ room: name, options: { listener, resumeAfter } }),
      false,
    );
  }

  /** Joins on `live`: the first time from `resumeAfter` (or now), later after `lastSeq`. */
  async #open(live: Live, opener: RoomOpener, first: boolean): Promise<void> {
    const token = this.nextToken();
    const listener = RoomListener.server({
      message: ({ message }) => this.arrived(token, readMessage(message)),
      unrecoverable: ({ resumedFrom }) => this.lost(token, Number(resumedFrom)),
      closed: ({ reason }) => {
        const why = reason;
        return this.enqueue(token, this.name, () => {
          if (this.isCurrent(token)) this.end(this.#leaving ? undefined : why, why);
        });
      },
      typing: ({ user, until }) => {
        if (this.isCurrent(token)) this.#tell(() => this.options.onTyping?.(user, Number(until)));
      },
      presence: ({ presence }) => {
        if (this.isCurrent(token)) {
          const p = readPresence(presence);
          this.#tell(() => this.options.onPresence?.(p));
        }
      },
    });
    const resumeAfter = first ? (this.options.resumeAfter ?? 0) : this.lastSeq;
    if (first) this.startAfter(resumeAfter);
    const call = opener(live.member, listener, BigInt(resumeAfter));
    const attempt: Attempt<RoomMember> = { token, gen: live.gen, facet: call.member.dup(), answered: false };
    this.#attempt?.facet.dispose();
    this.#attempt = attempt;
    let info: ChatRoomInfo;
    try {
      info = readInfo((await call).info);
    } catch (err) {
      if (this.#attempt === attempt) this.#attempt = undefined;
      attempt.facet.dispose();
      throw err;
    } finally {
      listener.dispose();
      call.dispose();
    }
    if (this.#attempt !== attempt || !this.active) return;
    if (first) {
      this.#info = info;
      this.name = info.name;
      // "From now": the answer says where now is (messages heard already are past it).
      if (resumeAfter === 0 && info.lastSeq > this.lastSeq) this.startAfter(info.lastSeq);
    }
    attempt.answered = true;
    this.gen = live.gen;
    this.wake();
  }

  #tell(fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise)
        r.catch((err: unknown) =>
          this.host.emit({ type: "handlerFailed", where: this.name, error: toParallaxError(err) }),
        );
    } catch (err) {
      this.host.emit({ type: "handlerFailed", where: this.name, error: toParallaxError(err) });
    }
  }
}

/** The user's direct messages, followed as a room is (sequenced per user; `room` is ""). */
export class ChatInbox extends Followed {
  #attempt: Attempt<Inbox> | undefined;

  constructor(host: Host, onMessage: (message: ChatMessage) => unknown, options: ChatFollowOptions) {
    super(host, "inbox", onMessage, options);
  }

  protected get attempt(): Attempt<unknown> | undefined {
    return this.#attempt;
  }

  protected set attempt(a: Attempt<unknown> | undefined) {
    this.#attempt = a as Attempt<Inbox> | undefined;
  }

  /** Direct messages, in sequence order (at most 100 a read). */
  async history(query: ChatHistoryQuery): Promise<ChatMessage[]> {
    const q = historyQuery(query);
    const facet = await this.facet<Inbox>();
    return (await facet.history({ query: q })).messages.toArray().map(readMessage);
  }

  /**
   * Stops following: nothing more reaches the handler, and no reconnect opens it again (the
   * server drops this device's listener when the attachment ends).
   */
  close(): void {
    this.end(undefined, "the inbox was closed");
  }

  protected read(facet: unknown, after: number, limit: number): Promise<ChatMessage[]> {
    return (facet as Inbox)
      .history({ query: { after: BigInt(after), limit } })
      .then((r) => r.messages.toArray().map(readMessage));
  }

  protected closedBy(): void {}

  openFirst(live: Live): Promise<void> {
    return this.reopen(live);
  }

  /** @internal Opens after `lastSeq`; from 0, live plus a read of all history before anything live. */
  async reopen(live: Live): Promise<void> {
    const token = this.nextToken();
    const listener = InboxListener.server({
      message: ({ message }) => this.arrived(token, readMessage(message)),
      unrecoverable: ({ resumedFrom }) => this.lost(token, Number(resumedFrom)),
      invited: () => {},
    });
    const resumeAfter = this.lastSeq;
    const call = live.member.inbox({ options: { listener, resumeAfter: BigInt(resumeAfter) } });
    const attempt: Attempt<Inbox> = { token, gen: live.gen, facet: call.inbox.dup(), answered: false };
    this.#attempt?.facet.dispose();
    this.#attempt = attempt;
    // Queued before anything the new listener hears: what came while away, read from history.
    if (resumeAfter === 0) void this.enqueue(token, "inbox history", () => this.fill(token, undefined));
    try {
      await call;
    } catch (err) {
      if (this.#attempt === attempt) this.#attempt = undefined;
      attempt.facet.dispose();
      throw err;
    } finally {
      listener.dispose();
      call.dispose();
    }
    if (this.#attempt !== attempt || !this.active) return;
    attempt.answered = true;
    this.gen = live.gen;
    this.wake();
  }
}

/** A send-only facet to one user's inbox, made again on each attachment as needed. */
export class ChatMailbox {
  #facet: { gen: number; mailbox: Mailbox } | undefined;

  constructor(
    readonly host: Host,
    readonly user: string,
  ) {}

  /** @internal Checks the user exists. */
  async open(): Promise<void> {
    const live = await this.host.live();
    const call = live.member.mailbox({ user: this.user });
    try {
      const mailbox = (await call).mailbox;
      this.#facet?.mailbox.dispose();
      this.#facet = { gen: live.gen, mailbox };
    } finally {
      call.dispose();
    }
  }

  /** Sends `text`, stamped with this user as the sender; answers its sequence in the recipient's inbox. */
  async send(text: string): Promise<number> {
    if (typeof text !== "string") throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a message must be text");
    const live = await this.host.live();
    const f = this.#facet;
    if (f !== undefined && f.gen === live.gen) return Number((await f.mailbox.send({ text })).seq);
    const call = live.member.mailbox({ user: this.user });
    try {
      const mailbox = call.mailbox.dup();
      const sent = mailbox.send({ text });
      try {
        const seq = Number((await sent).seq);
        this.#facet?.mailbox.dispose();
        this.#facet = { gen: live.gen, mailbox };
        return seq;
      } catch (err) {
        mailbox.dispose();
        throw err;
      } finally {
        sent.dispose();
      }
    } finally {
      call.dispose();
    }
  }

  /** Releases the facet. */
  dispose(): void {
    this.#facet?.mailbox.dispose();
    this.#facet = undefined;
  }
}

function closedError(): ParallaxError {
  return new ParallaxError(ErrorCode.DISCONNECTED, "this chat client was closed");
}

function checkSeq(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} must be an integer >= 0; got ${String(n)}`);
  }
}

function historyQuery(query: ChatHistoryQuery): HistoryQuery$Shape {
  if (query === null || typeof query !== "object")
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a history query is { latest }, { before } or { after }");
  const limit = query.limit ?? 0;
  checkSeq("limit", limit);
  const has = (k: string): boolean => (query as Record<string, unknown>)[k] !== undefined;
  const n = ["latest", "before", "after"].filter(has).length;
  if (n !== 1) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      "a history query has exactly one of latest, before and after",
    );
  }
  if ("before" in query && query.before !== undefined) {
    checkSeq("before", query.before);
    return { before: BigInt(query.before), limit };
  }
  if ("after" in query && query.after !== undefined) {
    checkSeq("after", query.after);
    return { after: BigInt(query.after), limit };
  }
  return { latest: null, limit };
}

function readMessage(m: Message): ChatMessage {
  return {
    room: m.room,
    seq: Number(m.seq),
    author: m.author,
    text: m.text,
    at: Number(m.at),
    kind: KINDS[m.kind] ?? "text",
  };
}

function readInfo(i: RoomInfo): ChatRoomInfo {
  return {
    name: i.name,
    kind: ROOM_KINDS[i.kind] ?? "public",
    topic: i.topic,
    owner: i.owner,
    members: i.members,
    lastSeq: Number(i.lastSeq),
    lastRead: Number(i.lastRead),
    member: i.member,
    moderator: i.moderator,
  };
}

function readPresence(p: Presence): ChatPresence {
  return { user: p.user, status: STATUSES[p.status] ?? "offline", text: p.text, until: Number(p.until) };
}
