/**
 * One conversation's messages as an `<ol>`: a room's by sequence, a direct conversation's
 * received messages by inbox sequence with the user's own sent ones where they were sent.
 *
 * Invariants: at most one item per sequence (a message handed over again — the post's answer and
 * the live copy of the same message — is not shown twice); keyed items stay in sequence order
 * whatever order they arrive in (history read after live messages goes before them); every
 * value is written as text (`el`), so markup in a message or a name shows as typed.
 *
 * Tests: test/web/chat.test.ts
 */
import type { ChatMessage } from "../../services/chat/chat-client.js";
import { atEnd, type DomElement, el, scrollToEnd } from "../app/dom.js";

export class MessageList {
  readonly element: DomElement;
  readonly #seqs = new Set<number>();
  /** The scrolling container (the conversation pane). */
  readonly #scroller: DomElement;

  constructor(label: string, scroller: DomElement) {
    this.element = el("ol", { class: "messages", "aria-label": label });
    this.#scroller = scroller;
  }

  /** Adds a message at its place by `seq` (once); answers whether it was new. */
  add(message: ChatMessage, mine: boolean): boolean {
    if (this.#seqs.has(message.seq)) return false;
    this.#seqs.add(message.seq);
    const item = renderMessage(message, mine);
    item.dataset.seq = String(message.seq);
    this.#place(item, message.seq);
    return true;
  }

  /** A direct message this user sent (no sequence in their own inbox): at the end. */
  addSent(to: string, text: string, at: number): void {
    const item = renderMessage({ room: "", seq: 0, author: "you", text, at, kind: "text" }, true);
    item.dataset.sentTo = to;
    this.#place(item, undefined);
  }

  /** A line from the page itself (not a message). */
  addNotice(text: string): void {
    this.#place(el("li", { class: "notice" }, text), undefined);
  }

  #place(item: DomElement, seq: number | undefined): void {
    const follow = atEnd(this.#scroller);
    const items = this.element.children;
    let before: DomElement | undefined;
    if (seq !== undefined) {
      // From the end: new messages almost always go last.
      for (let i = items.length - 1; i >= 0; i--) {
        const other = items[i] as DomElement;
        const s = other.dataset.seq;
        if (s === undefined) continue;
        if (Number(s) > seq) before = other;
        else break;
      }
    }
    if (before === undefined) this.element.append(item);
    else before.before(item);
    if (follow) scrollToEnd(this.#scroller);
  }
}

function clock(at: number): DomElement {
  const d = new Date(at);
  const hh = String(d.getHours()).padStart(2, "0");
  const mm = String(d.getMinutes()).padStart(2, "0");
  return el("time", { datetime: d.toISOString() }, `${hh}:${mm}`);
}

/** What a system message says, in words. */
function describe(m: ChatMessage): string {
  switch (m.kind) {
    case "joined":
      return `${m.author} joined`;
    case "left":
      return `${m.author} left`;
    case "removed":
      return `${m.author} removed ${m.text}`;
    case "muted":
      return `${m.author} muted ${m.text}`;
    case "unmuted":
      return `${m.author} unmuted ${m.text}`;
    default:
      return m.text;
  }
}

function renderMessage(m: ChatMessage, mine: boolean): DomElement {
  if (m.kind !== "text") {
    return el("li", { class: "msg system", "data-kind": m.kind }, clock(m.at), " ", describe(m));
  }
  return el(
    "li",
    { class: mine ? "msg mine" : "msg", "data-kind": "text" },
    el("span", { class: "author" }, m.author),
    " ",
    clock(m.at),
    " ",
    el("span", { class: "text" }, m.text),
  );
}
