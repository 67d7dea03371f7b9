/**
 * The user's own accounts (the ("bank", "customer") perspective): one LiveAccount each, watched
 * so balances move as money comes and goes, with the PrivateAccount capability of the live
 * connection kept per account for paying, statements and deposits into an organization.
 *
 * Invariants: `refresh(customer)` replaces every capability with the new connection's (the old
 * stubs are disposed) and watches each account again on it; an account keeps its element (and
 * what the user typed around it) across refreshes. At most `MAX_WATCHED` accounts are watched
 * (the bank's limit per attachment is 8); the rest say they are not live.
 *
 * Tests: test/web/bank.test.ts
 */
import { toParallaxError } from "../../errors.js";
import type { Customer, PrivateAccount } from "../../wire/gen/bank.js";
import { type DomElement, el, setText, show } from "../app/dom.js";
import { LiveAccount, readAccount } from "./live-account.js";

/** The bank watches at most 8 accounts per attachment. */
export const MAX_WATCHED = 8;

interface Entry {
  readonly live: LiveAccount;
  cap: PrivateAccount;
}

export class CustomerPanel {
  readonly #list: DomElement;
  readonly #empty: DomElement;
  readonly #entries = new Map<string, Entry>();

  constructor(list: DomElement, empty: DomElement) {
    this.#list = list;
    this.#empty = empty;
  }

  /** The accounts, in the bank's order. */
  get accounts(): readonly LiveAccount[] {
    return [...this.#entries.values()].map((e) => e.live);
  }

  /** The PrivateAccount of `number` on the live connection (the panel keeps owning it). */
  account(number: bigint): PrivateAccount | undefined {
    return this.#entries.get(String(number))?.cap;
  }

  /** Reads the accounts on `customer` (a new connection's) and watches them. */
  async refresh(customer: Customer): Promise<void> {
    using answer = customer.accounts();
    const handles = (await answer).accounts.toArray();
    const seen = new Set<string>();
    for (const h of handles) {
      const info = readAccount(h.info);
      const key = String(info.number);
      seen.add(key);
      const cap = h.account;
      const known = this.#entries.get(key);
      if (known !== undefined) {
        known.cap.dispose();
        known.cap = cap;
        known.live.update(info);
      } else {
        const live = new LiveAccount(info);
        this.#entries.set(key, { live, cap });
        this.#list.append(el("li", {}, live.element));
      }
    }
    for (const [key, e] of [...this.#entries]) {
      if (seen.has(key)) continue;
      e.cap.dispose();
      e.live.element.parentElement?.remove();
      this.#entries.delete(key);
    }
    show(this.#empty, this.#entries.size === 0);
    setText(
      this.#empty,
      "You have no account yet. Accounts are opened by the bank's staff (parallax bank open-account).",
    );
    const entries = [...this.#entries.values()];
    await Promise.all(
      entries.map(async (e, i) => {
        if (i >= MAX_WATCHED) {
          e.live.notLive(`· not live (the page follows your first ${MAX_WATCHED} accounts)`);
          return;
        }
        try {
          await e.live.watch(e.cap);
        } catch (err) {
          e.live.fail(`This balance does not update by itself: ${toParallaxError(err).message}`);
        }
      }),
    );
  }
}
