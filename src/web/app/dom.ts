/**
 * The pages' view of the DOM, and the only way they make elements. The project type-checks with
 * Node's types and no DOM library (adding it would change how other files check), so the little
 * of the DOM the pages use is declared here and reached through `dom()`; at run time these are
 * the browser's own objects.
 *
 * Invariant (no injection): nothing here parses markup. `el` makes an element and appends its
 * children as nodes, strings as text nodes; `setText` sets `textContent`. There is no helper for
 * `innerHTML`, and the pages' Content-Security-Policy (src/web-server.ts) enables Trusted Types
 * with no policy, so a stray `innerHTML = string` would throw in the browser instead of parsing.
 * Attribute values may be user data (they are not markup), but never an `on*` attribute, `href`
 * or `src`: `el` refuses those names.
 *
 * Tests: test/web/chat.test.ts (markup in messages and names), test/web/session.test.ts
 */

export interface DomEvent {
  readonly type: string;
  readonly target: unknown;
  /** The button that submitted a form (SubmitEvent). */
  readonly submitter?: DomElement | null;
  preventDefault(): void;
}

export interface DomElement {
  readonly tagName: string;
  id: string;
  className: string;
  hidden: boolean;
  textContent: string | null;
  readonly dataset: Record<string, string | undefined>;
  readonly children: ArrayLike<DomElement>;
  readonly parentElement: DomElement | null;
  readonly scrollHeight: number;
  readonly clientHeight: number;
  scrollTop: number;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  getAttribute(name: string): string | null;
  append(...nodes: Array<DomElement | string>): void;
  prepend(...nodes: Array<DomElement | string>): void;
  before(...nodes: Array<DomElement | string>): void;
  replaceChildren(...nodes: Array<DomElement | string>): void;
  remove(): void;
  addEventListener(type: string, listener: (event: DomEvent) => void): void;
  querySelector(selector: string): DomElement | null;
  focus(): void;
}

/** An `<input>`, `<textarea>`, `<select>` or `<button>`. */
export interface DomControl extends DomElement {
  value: string;
  disabled: boolean;
}

export interface DomForm extends DomElement {
  reset(): void;
}

interface DomDocument {
  getElementById(id: string): DomElement | null;
  createElement(tag: string): DomElement;
  readonly body: DomElement;
}

export interface DomStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

interface DomWindow {
  readonly document: DomDocument;
  readonly sessionStorage: DomStorage;
  readonly location: { readonly protocol: string; readonly host: string; reload(): void };
  addEventListener(
    type: string,
    listener: (event: DomEvent & { readonly persisted?: boolean }) => void,
  ): void;
}

/** The browser's window, typed as the pages use it. */
export function dom(): DomWindow {
  return globalThis as unknown as DomWindow;
}

/** The element with this id; throws if the page lacks it (a page and its HTML disagree). */
export function byId<T extends DomElement = DomElement>(id: string): T {
  const found = dom().document.getElementById(id);
  if (found === null) throw new Error(`this page has no element #${id}`);
  return found as T;
}

/** Attributes `el` will not set: event handlers and URLs (the page never needs them from data). */
const REFUSED_ATTRIBUTE = /^(on|href$|src$|srcdoc$|action$|formaction$|style$)/i;

export type Child = DomElement | string | null | undefined | false;

/**
 * `<tag attrs…>children</tag>`: strings become text nodes, never markup. `class` sets the class
 * list; other attributes are set as given.
 */
export function el(
  tag: string,
  attrs: Record<string, string | boolean> = {},
  ...children: Child[]
): DomElement {
  const node = dom().document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (REFUSED_ATTRIBUTE.test(name)) throw new Error(`el() does not set the ${name} attribute`);
    if (value === false) continue;
    node.setAttribute(name, value === true ? "" : value);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/** Sets the element's text (never markup). */
export function setText(node: DomElement, text: string): void {
  node.textContent = text;
}

/** Shows or hides an element. */
export function show(node: DomElement, visible: boolean): void {
  node.hidden = !visible;
}

/** Whether a list scrolled to (near) its end, so new items should keep it there. */
export function atEnd(list: DomElement): boolean {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

/** Scrolls a list to its end. */
export function scrollToEnd(list: DomElement): void {
  list.scrollTop = list.scrollHeight;
}
