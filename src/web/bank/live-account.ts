/**
 * One account on the bank page, kept current while the page is open: its name, number, currency,
 * balance and holds, and the last changes heard. `watch(view)` registers an AccountListener on the
 * account (AccountView.watch) and reads the balance once the listener is in place, so no change
 * between the first read and the watch is missed; every `changed` carries the account as the bank
 * has it after that change, so the shown balance is the bank's, never a sum the page made.
 *
 * Invariants: only the listener of the latest `watch` changes what is shown (after a reconnect
 * the old connection's listener is gone anyway); a read answered after a change was heard is not
 * shown (the change is at least as new); every value is written as text (src/web/app/dom.ts),
 * so markup in an account name shows as typed. The balance element carries the exact minor units
 * as `data-minor`.
 *
 * The listener is the page's: the call's reference to it is the server's, released when the
 * attachment ends; the page disposes its own stub once `watch` answered.
 *
 * Tests: test/web/bank.test.ts
 */
import { toParallaxError } from "../../errors.js";
import { type AccountInfo, AccountKind, AccountListener, type AccountView } from "../../wire/gen/bank.js";
import { type DomElement, el, setText, show } from "../app/dom.js";
import { formatMoney } from "./money.js";
import { type ReceiptView, readReceipt } from "./outcome.js";

/** An AccountInfo copied out of its message. */
export interface AccountSnapshot {
  readonly number: bigint;
  readonly currency: string;
  readonly name: string;
  readonly kind: AccountKind;
  readonly balance: bigint;
  readonly pendingDebits: bigint;
  readonly pendingCredits: bigint;
  readonly noOverdraft: boolean;
}

export function readAccount(a: AccountInfo): AccountSnapshot {
  return {
    number: a.number,
    currency: a.currency,
    name: a.name,
    kind: a.kind,
    balance: a.balance,
    pendingDebits: a.pendingDebits,
    pendingCredits: a.pendingCredits,
    noOverdraft: a.noOverdraft,
  };
}

/** How many live changes an account shows. */
const RECENT = 5;

export class LiveAccount {
  readonly element: DomElement;
  #info: AccountSnapshot;
  #generation = 0;
  readonly #name: DomElement;
  readonly #balance: DomElement;
  readonly #holds: DomElement;
  readonly #live: DomElement;
  readonly #recent: DomElement;
  readonly #error: DomElement;

  /** `showBalance` false: the holder may not view the account (a facet without `view`). */
  constructor(info: AccountSnapshot, showBalance = true) {
    this.#info = info;
    this.#name = el("span", { class: "account-name" });
    this.#balance = el("span", { class: "balance" });
    this.#holds = el("span", { class: "meta holds" });
    this.#live = el("span", { class: "meta live" });
    this.#recent = el("ol", { class: "recent", "aria-label": "Latest changes" });
    this.#error = el("p", { class: "error", role: "alert" });
    this.element = el(
      "article",
      { class: "account", "data-account": String(info.number) },
      el(
        "h3",
        {},
        this.#name,
        " ",
        el("span", { class: "meta" }, `account ${info.number} · ${info.currency}${kindLabel(info.kind)}`),
      ),
      showBalance
        ? el("p", { class: "balance-line" }, "Balance ", this.#balance, " ", this.#holds, " ", this.#live)
        : el("p", { class: "hint" }, "Your role does not let you see this account's balance."),
      showBalance ? this.#recent : null,
      this.#error,
    );
    show(this.#recent, false);
    setText(this.#live, "");
    this.update(info);
  }

  get info(): AccountSnapshot {
    return this.#info;
  }

  get number(): bigint {
    return this.#info.number;
  }

  /** Shows the account as the bank has it now. */
  update(info: AccountSnapshot): void {
    this.#info = info;
    setText(this.#name, info.name);
    setText(this.#balance, formatMoney(info.balance, info.currency));
    this.#balance.dataset.minor = info.balance.toString();
    const holds: string[] = [];
    if (info.pendingDebits > 0n)
      holds.push(`${formatMoney(info.pendingDebits, info.currency)} held for payments`);
    if (info.pendingCredits > 0n)
      holds.push(`${formatMoney(info.pendingCredits, info.currency)} on its way in`);
    setText(this.#holds, holds.length === 0 ? "" : `(${holds.join(", ")})`);
  }

  /** Says why the account is not live (or nothing). */
  notLive(why: string): void {
    this.#generation++;
    this.element.dataset.live = "no";
    setText(this.#live, why);
  }

  /**
   * Watches the account through `view` (a stub the caller keeps owning): from now on the page
   * shows each change as it commits. Answers once the listener is in place and the balance read.
   */
  async watch(view: AccountView): Promise<void> {
    const generation = ++this.#generation;
    let heard = false;
    const current = () => generation === this.#generation;
    const listener = AccountListener.server({
      changed: ({ account, receipt }) => {
        if (!current()) return;
        heard = true;
        this.update(readAccount(account));
        this.#heard(readReceipt(receipt));
      },
      dropped: () => {
        // Fell behind: the listener stays; read the balance as it is now.
        if (current()) void this.#reread(view, generation);
      },
    });
    setText(this.#error, "");
    try {
      await view.watch({ listener });
    } finally {
      listener.dispose();
    }
    if (!current()) return;
    this.element.dataset.live = "yes";
    setText(this.#live, "· live");
    using answer = view.info();
    const info = readAccount((await answer).info);
    if (current() && !heard) this.update(info);
  }

  async #reread(view: AccountView, generation: number): Promise<void> {
    try {
      using answer = view.info();
      const info = readAccount((await answer).info);
      if (generation === this.#generation) this.update(info);
    } catch (err) {
      if (generation === this.#generation) setText(this.#error, toParallaxError(err).message);
    }
  }

  /** Shows a committed change of this account. */
  #heard(r: ReceiptView): void {
    const incoming = r.to === this.#info.number;
    const item = el(
      "li",
      { "data-journal": r.journalSeq.toString(), "data-direction": incoming ? "in" : "out" },
      el("time", { datetime: new Date(r.at).toISOString() }, clock(r.at)),
      " ",
      incoming
        ? `+${formatMoney(r.amount, r.currency)} from account ${r.from}`
        : `−${formatMoney(r.amount, r.currency)} to account ${r.to}`,
    );
    if (this.#recent.querySelector(`[data-journal="${r.journalSeq}"]`) !== null) return;
    this.#recent.prepend(item);
    while (this.#recent.children.length > RECENT) (this.#recent.children[RECENT] as DomElement).remove();
    show(this.#recent, true);
  }

  /** Shows an error about this account (a failed watch). */
  fail(message: string): void {
    setText(this.#error, message);
  }
}

function kindLabel(kind: AccountKind): string {
  return kind === AccountKind.ORGANIZATION ? " · organization" : kind === AccountKind.CASH ? " · cash" : "";
}

function clock(at: number): string {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}
