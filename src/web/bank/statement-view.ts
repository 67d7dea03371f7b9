/**
 * A statement form and table: pick an account (when there are several) and a range of days, and
 * the page shows the bank's statement for it (AccountView.statement) — the opening balance, every
 * entry with its counterparty, memo, amount and running balance, and the closing balance.
 *
 * Days are the user's local days: from the start of the first to the end of the last. Every value
 * is written as text, so markup in a memo shows as typed. Amount cells carry `data-minor`.
 *
 * Tests: test/web/bank.test.ts
 */
import { toParallaxError } from "../../errors.js";
import type { AccountView, StatementEntry } from "../../wire/gen/bank.js";
import { type DomControl, type DomElement, el, setText } from "../app/dom.js";
import { formatMoney } from "./money.js";

export interface StatementSource {
  readonly number: bigint;
  readonly label: string;
  readonly currency: string;
}

export interface StatementViewOptions {
  readonly title: string;
  /** The accounts to choose from (read when the form is shown and submitted). */
  readonly sources: () => readonly StatementSource[];
  /** The account's view on the live connection (the caller keeps owning it). */
  readonly view: (number: bigint) => AccountView;
  /** Runs the read, trying again across a dropped connection. */
  readonly run: <T>(once: () => Promise<T>) => Promise<T>;
}

const DAY_MS = 24 * 3600 * 1000;

/** "YYYY-MM-DD" of a local day. */
export function dayString(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** A local day's first and last millisecond; undefined if `day` is not "YYYY-MM-DD". */
export function dayRange(day: string): { start: number; end: number } | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (m === null) return undefined;
  const start = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])).getTime();
  const end = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + 1).getTime() - 1;
  return Number.isFinite(start) && start >= 0 ? { start, end } : undefined;
}

export class StatementView {
  readonly element: DomElement;
  readonly #options: StatementViewOptions;
  readonly #select: DomControl;
  readonly #from: DomControl;
  readonly #to: DomControl;
  readonly #result: DomElement;
  readonly #error: DomElement;

  constructor(options: StatementViewOptions) {
    this.#options = options;
    this.#select = el("select", { name: "account" }) as DomControl;
    const today = dayString(Date.now());
    this.#from = el("input", {
      type: "date",
      name: "from",
      required: true,
      value: dayString(Date.now() - 30 * DAY_MS),
    }) as DomControl;
    this.#to = el("input", { type: "date", name: "to", required: true, value: today }) as DomControl;
    this.#result = el("div", { class: "statement-result" });
    this.#error = el("p", { class: "error", role: "alert" });
    const form = el(
      "form",
      { class: "statement-form" },
      el(
        "fieldset",
        {},
        el("legend", {}, options.title),
        el("label", {}, "Account ", this.#select),
        el("label", {}, "From ", this.#from),
        el("label", {}, "To ", this.#to),
        el("button", { type: "submit" }, "Show the statement"),
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.#show();
    });
    this.element = el(
      "section",
      { class: "statement", "aria-label": options.title },
      form,
      this.#error,
      this.#result,
    );
    this.refreshSources();
  }

  /** Fills the account choice again (accounts came or went). */
  refreshSources(): void {
    const chosen = this.#select.value;
    const sources = this.#options.sources();
    this.#select.replaceChildren(
      ...sources.map((s) =>
        el("option", { value: String(s.number), selected: String(s.number) === chosen }, s.label),
      ),
    );
    this.#select.disabled = sources.length <= 1;
  }

  async #show(): Promise<void> {
    setText(this.#error, "");
    const source = this.#options.sources().find((s) => String(s.number) === this.#select.value);
    const from = dayRange(this.#from.value);
    const to = dayRange(this.#to.value);
    if (source === undefined) return setText(this.#error, "Choose an account.");
    if (from === undefined || to === undefined)
      return setText(this.#error, "Choose the first and the last day.");
    if (from.start > to.end) return setText(this.#error, "The first day is after the last day.");
    try {
      const statement = await this.#options.run(async () => {
        using answer = this.#options
          .view(source.number)
          .statement({ from: BigInt(from.start), to: BigInt(to.end) });
        const s = (await answer).statement;
        return {
          opening: s.opening,
          closing: s.closing,
          truncated: s.truncated,
          asOf: Number(s.asOf),
          entries: s.entries.toArray().map(readEntry),
        };
      });
      this.#render(source, this.#from.value, this.#to.value, statement);
    } catch (err) {
      setText(this.#error, toParallaxError(err).message);
    }
  }

  #render(
    source: StatementSource,
    from: string,
    to: string,
    s: { opening: bigint; closing: bigint; truncated: boolean; asOf: number; entries: EntryView[] },
  ): void {
    const money = (n: bigint, signed = false) =>
      el(
        "td",
        { class: "amount", "data-minor": n.toString() },
        `${signed && n > 0n ? "+" : ""}${formatMoney(n, source.currency)}`,
      );
    const rows = s.entries.map((e) =>
      el(
        "tr",
        { "data-journal": e.journalSeq.toString() },
        el("td", {}, el("time", { datetime: new Date(e.at).toISOString() }, new Date(e.at).toLocaleString())),
        el("td", {}, `account ${e.counterparty}`),
        el("td", { class: "memo" }, e.memo),
        money(e.amount, true),
        money(e.balance),
      ),
    );
    const table = el(
      "table",
      { class: "statement-table", "data-account": String(source.number) },
      el("caption", {}, `${source.label}, ${from} to ${to}`),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["When", "Counterparty", "Memo", "Amount", "Balance"].map((h) => el("th", { scope: "col" }, h)),
        ),
      ),
      el(
        "tbody",
        {},
        el("tr", { class: "opening" }, el("td", { colspan: "4" }, "Opening balance"), money(s.opening)),
        ...rows,
        el("tr", { class: "closing" }, el("td", { colspan: "4" }, "Closing balance"), money(s.closing)),
      ),
    );
    const notes: DomElement[] = [];
    if (s.entries.length === 0) notes.push(el("p", { class: "hint" }, "No entries in these days."));
    if (s.truncated)
      notes.push(el("p", { class: "hint" }, "More entries than one statement shows: choose fewer days."));
    this.#result.replaceChildren(table, ...notes);
  }
}

interface EntryView {
  readonly journalSeq: bigint;
  readonly at: number;
  readonly counterparty: bigint;
  readonly amount: bigint;
  readonly balance: bigint;
  readonly memo: string;
}

function readEntry(e: StatementEntry): EntryView {
  return {
    journalSeq: e.journalSeq,
    at: Number(e.at),
    counterparty: e.counterparty,
    amount: e.amount,
    balance: e.balance,
    memo: e.memo,
  };
}
