/**
 * The chat page (`/chat`): the rooms of the server, the user's conversations (rooms joined, direct
 * messages), a conversation's history and live messages, its members with their presence, who is
 * typing, and a form to post. Built on ChatClient, so after a dropped connection every room and
 * the inbox resume where they were: a message is shown once, and none is missing.
 *
 * Who wrote a message is what the server stamped (`author`); the page has no way to send a name,
 * so nobody can post as someone else. Everything from the server or the user is written as text
 * (see src/web/app/dom.ts).
 *
 * Markup: src/web/pages/chat.html (ids used here). State lives in `Conversation`s keyed
 * "room:<name>" / "dm:<user>" (lower case), each with its own message list element; the page
 * shows one at a time.
 *
 * Tests: test/web/chat.test.ts
 */
import { systemClock, type Timer } from "../../clock.js";
import { toParallaxError } from "../../errors.js";
import type {
  ChatClient,
  ChatInbox,
  ChatMailbox,
  ChatMessage,
  ChatRoom,
  ChatRoomInfo,
  ChatRoomKind,
} from "../../services/chat/chat-client.js";
import { byId, type DomControl, type DomElement, type DomForm, el, setText, show } from "../app/dom.js";
import type { PageSession } from "../app/session.js";
import { MessageList } from "./message-list.js";

const STATUS_NAMES = ["online", "away", "busy", "offline"];
/** Rooms the user is in that the page follows at once (the rest: open them from the list). */
const MAX_AUTO_JOIN = 20;
const HISTORY_PAGE = 50;
/** How often typing is told to the room while the user types. */
const TYPING_EVERY_MS = 2000;
/** The longest a "typing" line stays without news (the server says 5 s). */
const MAX_TYPING_MS = 6000;

interface Conversation {
  readonly key: string;
  title: string;
  readonly list: MessageList;
  readonly nav: DomElement;
  readonly badge: DomElement;
  unread: number;
  room?: ChatRoom;
  peer?: string;
  mailbox?: ChatMailbox;
  topic: string;
  ended?: string;
  readonly members: Map<string, string>;
  readonly typing: Map<string, Timer>;
}

export class ChatPage {
  readonly #chat: ChatClient;
  readonly #me: string;
  readonly #conversations = new Map<string, Conversation>();
  #active: Conversation | undefined;
  #inbox: ChatInbox | undefined;
  #lastTyping = 0;
  readonly #pane = byId("conversation");

  private constructor(chat: ChatClient, me: string) {
    this.#chat = chat;
    this.#me = me;
  }

  /** Shows chat for the session's user. */
  static async show(session: PageSession<ChatClient>): Promise<ChatPage> {
    const me = (await session.whoami()).name;
    const page = new ChatPage(session.client, me);
    page.#wire();
    session.onClientEvent((e) => {
      if (e.type === "restored") void page.#refreshMembers();
    });
    await Promise.all([page.#refreshRooms(true), page.#openInbox()]);
    return page;
  }

  #wire(): void {
    byId("refresh-rooms").addEventListener("click", () => void this.#refreshRooms(false));
    const join = byId<DomForm>("join-form");
    join.addEventListener("submit", (e) => {
      e.preventDefault();
      const input = byId<DomControl>("join-name");
      const name = input.value.trim();
      if (name === "") return;
      void this.#attempt(async () => {
        await this.#join(name, true);
        input.value = "";
      });
    });
    const create = byId<DomForm>("create-form");
    create.addEventListener("submit", (e) => {
      e.preventDefault();
      const name = byId<DomControl>("create-name");
      const topic = byId<DomControl>("create-topic");
      const kind = byId<DomControl>("create-kind").value as ChatRoomKind;
      void this.#attempt(async () => {
        await this.#create(name.value.trim(), kind, topic.value.trim());
        create.reset();
        await this.#refreshRooms(false);
      });
    });
    const dm = byId<DomForm>("dm-form");
    dm.addEventListener("submit", (e) => {
      e.preventDefault();
      const input = byId<DomControl>("dm-user");
      const user = input.value.trim();
      if (user === "") return;
      void this.#attempt(async () => {
        await this.#openDirect(user);
        input.value = "";
      });
    });
    const post = byId<DomForm>("post-form");
    const text = byId<DomControl>("post-text");
    post.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = text.value;
      if (body.trim() === "" || this.#active === undefined) return;
      const target = this.#active;
      text.value = "";
      void this.#attempt(
        () => this.#send(target, body),
        () => {
          // Not sent: give the text back.
          if (text.value === "") text.value = body;
        },
      );
    });
    text.addEventListener("input", () => {
      const room = this.#active?.room;
      const now = systemClock.now();
      if (room === undefined || now - this.#lastTyping < TYPING_EVERY_MS) return;
      this.#lastTyping = now;
      room.typing().catch(() => {});
    });
  }

  /** Runs `job`, showing its error (and running `failed`) if it throws. */
  async #attempt(job: () => Promise<unknown>, failed?: () => void): Promise<void> {
    setText(byId("chat-error"), "");
    try {
      await job();
    } catch (err) {
      failed?.();
      setText(byId("chat-error"), toParallaxError(err).message);
    }
  }

  async #refreshRooms(autoJoin: boolean): Promise<void> {
    const rooms = await this.#chat.rooms();
    const list = byId("room-list");
    list.replaceChildren(...rooms.map((r) => this.#roomRow(r)));
    setText(byId("room-count"), rooms.length === 0 ? "No rooms yet: create one." : "");
    if (autoJoin) {
      const mine = rooms.filter((r) => r.member).slice(0, MAX_AUTO_JOIN);
      await Promise.all(mine.map((r) => this.#join(r.name, false).catch(() => {})));
      const first = this.#conversations.values().next().value;
      if (first !== undefined && this.#active === undefined) this.#activate(first);
    }
  }

  #roomRow(r: ChatRoomInfo): DomElement {
    const open = el("button", { type: "button", "data-room": r.name }, r.member ? "Open" : "Join");
    open.addEventListener("click", () => void this.#attempt(() => this.#join(r.name, true)));
    const kind = r.kind === "inviteOnly" ? "invite only" : r.kind;
    return el(
      "li",
      {},
      el("span", { class: "room-name" }, r.name),
      " ",
      el("span", { class: "meta" }, `${kind}, ${r.members} member${r.members === 1 ? "" : "s"}`),
      r.topic === "" ? null : el("span", { class: "topic" }, r.topic),
      " ",
      open,
    );
  }

  #conversation(key: string, title: string): Conversation {
    const existing = this.#conversations.get(key);
    if (existing !== undefined) return existing;
    const badge = el("span", { class: "unread", hidden: true });
    const button = el(
      "button",
      { type: "button", "data-key": key },
      el("span", { class: "title" }, title),
      " ",
      badge,
    );
    const nav = el("li", {}, button);
    const c: Conversation = {
      key,
      title,
      list: new MessageList(title, this.#pane),
      nav,
      badge,
      unread: 0,
      topic: "",
      members: new Map(),
      typing: new Map(),
    };
    button.addEventListener("click", () => this.#activate(c));
    show(c.list.element, false);
    byId("message-lists").append(c.list.element);
    byId("conversations").append(nav);
    this.#conversations.set(key, c);
    return c;
  }

  #forget(c: Conversation): void {
    c.list.element.remove();
    c.nav.remove();
    this.#conversations.delete(c.key);
    if (this.#active === c) this.#active = undefined;
  }

  #activate(c: Conversation): void {
    const previous = this.#active;
    if (previous !== undefined) {
      show(previous.list.element, false);
      previous.nav.querySelector("button")?.removeAttribute("aria-current");
    }
    this.#active = c;
    c.unread = 0;
    this.#badge(c);
    show(c.list.element, true);
    c.nav.querySelector("button")?.setAttribute("aria-current", "true");
    setText(byId("conversation-title"), c.room !== undefined ? `# ${c.title}` : `Direct: ${c.title}`);
    setText(byId("conversation-topic"), c.ended ?? c.topic);
    const input = byId<DomControl>("post-text");
    input.disabled = c.ended !== undefined;
    show(byId("post-form"), true);
    this.#pane.scrollTop = this.#pane.scrollHeight;
    this.#renderMembers();
    this.#renderTyping();
    const last = c.room?.lastSeq ?? 0;
    if (c.room !== undefined && last > 0) c.room.markRead(last).catch(() => {});
  }

  #badge(c: Conversation): void {
    setText(c.badge, c.unread === 0 ? "" : `${c.unread} new`);
    show(c.badge, c.unread > 0);
  }

  /** A message for `c` arrived (live or from history). */
  #arrived(c: Conversation, m: ChatMessage, live: boolean): void {
    if (!c.list.add(m, m.author === this.#me)) return;
    if (c.room !== undefined) this.#memberChange(c, m);
    if (!live) return;
    if (this.#active === c) {
      if (c.room !== undefined) c.room.markRead(m.seq).catch(() => {});
    } else if (m.kind === "text") {
      c.unread++;
      this.#badge(c);
    }
  }

  #memberChange(c: Conversation, m: ChatMessage): void {
    if (m.kind === "joined") c.members.set(m.author, c.members.get(m.author) ?? "online");
    else if (m.kind === "left") c.members.delete(m.author);
    else if (m.kind === "removed") c.members.delete(m.text);
    else return;
    if (this.#active === c) this.#renderMembers();
  }

  async #join(name: string, activate: boolean): Promise<void> {
    const key = `room:${name.toLowerCase()}`;
    const known = this.#conversations.get(key);
    if (known?.room !== undefined) {
      if (activate) this.#activate(known);
      return;
    }
    await this.#follow(key, name, activate, (onMessage, options) =>
      this.#chat.join(name, onMessage, options),
    );
  }

  async #create(name: string, kind: ChatRoomKind, topic: string): Promise<void> {
    await this.#follow(`room:${name.toLowerCase()}`, name, true, (onMessage, options) =>
      this.#chat.createRoom(name, kind, topic, onMessage, options),
    );
  }

  /** Follows a room (join or create): its conversation exists before the first message can arrive. */
  async #follow(
    key: string,
    name: string,
    activate: boolean,
    open: (
      onMessage: (m: ChatMessage) => void,
      options: Parameters<ChatClient["join"]>[2],
    ) => Promise<ChatRoom>,
  ): Promise<void> {
    const fresh = !this.#conversations.has(key);
    const c = this.#conversation(key, name);
    let room: ChatRoom;
    try {
      room = await open((m) => this.#arrived(c, m, true), {
        onTyping: (user, until) => this.#typing(c, user, until),
        onPresence: (p) => {
          if (!c.members.has(p.user)) return;
          c.members.set(p.user, p.status);
          if (this.#active === c) this.#renderMembers();
        },
        onClosed: (reason) => {
          c.ended = `You are no longer in this room: ${reason}`;
          c.list.addNotice(c.ended);
          if (this.#active === c) this.#activate(c);
        },
      });
    } catch (err) {
      if (fresh) this.#forget(c);
      throw err;
    }
    c.room = room;
    c.title = room.info.name;
    c.topic = room.info.topic;
    setText(c.nav.querySelector(".title") as DomElement, c.title);
    const upTo = room.info.lastSeq;
    if (upTo > 0) {
      for (const m of await room.history({ before: upTo + 1, limit: HISTORY_PAGE }))
        this.#arrived(c, m, false);
    }
    await this.#loadMembers(c);
    if (activate || this.#active === undefined) this.#activate(c);
  }

  async #loadMembers(c: Conversation): Promise<void> {
    const room = c.room;
    if (room === undefined) return;
    try {
      using answer = room.current.members();
      const list = (await answer).members.toArray();
      c.members.clear();
      for (const p of list) c.members.set(p.user, STATUS_NAMES[p.status] ?? "offline");
    } catch {
      // reconnecting: "restored" loads them again
    }
    if (this.#active === c) this.#renderMembers();
  }

  async #refreshMembers(): Promise<void> {
    await Promise.all([...this.#conversations.values()].map((c) => this.#loadMembers(c)));
  }

  #renderMembers(): void {
    const c = this.#active;
    const list = byId("member-list");
    show(byId("members"), c?.room !== undefined);
    if (c?.room === undefined) {
      list.replaceChildren();
      return;
    }
    const names = [...c.members.keys()].sort((a, b) => a.localeCompare(b));
    list.replaceChildren(
      ...names.map((user) => {
        const status = c.members.get(user) ?? "offline";
        return el(
          "li",
          { "data-status": status },
          el("span", { class: "presence", "aria-hidden": "true" }),
          el("span", { class: "member-name" }, user),
          " ",
          el("span", { class: "status" }, `(${status})`),
        );
      }),
    );
  }

  #typing(c: Conversation, user: string, until: number): void {
    if (user === this.#me) return;
    c.typing.get(user)?.cancel();
    const ms = Math.max(0, Math.min(MAX_TYPING_MS, until - systemClock.now()));
    c.typing.set(
      user,
      systemClock.setTimer(ms, () => {
        c.typing.delete(user);
        if (this.#active === c) this.#renderTyping();
      }),
    );
    if (this.#active === c) this.#renderTyping();
  }

  #renderTyping(): void {
    const users = [...(this.#active?.typing.keys() ?? [])];
    setText(
      byId("typing"),
      users.length === 0 ? "" : `${users.join(", ")} ${users.length === 1 ? "is" : "are"} typing…`,
    );
  }

  async #openInbox(): Promise<void> {
    this.#inbox = await this.#chat.inbox((m) => this.#direct(m, true));
    const upTo = this.#inbox.lastSeq;
    if (upTo > 0) {
      for (const m of await this.#inbox.history({ before: upTo + 1, limit: HISTORY_PAGE }))
        this.#direct(m, false);
    }
  }

  /** A direct message to this user. */
  #direct(m: ChatMessage, live: boolean): void {
    const c = this.#conversation(`dm:${m.author.toLowerCase()}`, m.author);
    c.peer ??= m.author;
    this.#arrived(c, m, live);
    if (this.#active === undefined) this.#activate(c);
  }

  async #openDirect(user: string): Promise<void> {
    const key = `dm:${user.toLowerCase()}`;
    let c = this.#conversations.get(key);
    if (c?.mailbox === undefined) {
      const mailbox = await this.#chat.mailbox(user);
      c = this.#conversation(key, user);
      c.peer = user;
      c.mailbox = mailbox;
    }
    this.#activate(c);
  }

  async #send(c: Conversation, text: string): Promise<void> {
    if (c.room !== undefined) {
      const stored = await c.room.post(text);
      this.#arrived(c, stored, false);
      return;
    }
    const peer = c.peer;
    if (peer === undefined) return;
    c.mailbox ??= await this.#chat.mailbox(peer);
    await c.mailbox.send(text);
    c.list.addSent(peer, text, systemClock.now());
  }
}
