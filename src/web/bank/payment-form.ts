/**
 * A payment form: from one of the given accounts, to an account number, an amount typed in the
 * currency (sent in minor units), a memo. What the bank answered is shown as the outcome union
 * says (src/web/bank/outcome.ts), with `data-outcome` set to the union member; a payment waiting
 * for approval is followed (`PendingPayment.wait`) until another employee decides it.
 *
 * Exactly once: each payment gets a fresh 16-byte id (`newTransferId`, WebCrypto) before its
 * first try; a try cut by a dropped connection is sent again with the same id on the new
 * connection (src/web/bank/refreshes.ts), and a submit of the same fields after a failure that
 * left it unknown whether the payment went through reuses that id too, so the bank applies it at
 * most once. Who pays is the capability (`payer`), never a name.
 *
 * Tests: test/web/bank.test.ts
 */
import { ErrorCode, type ParallaxError, toParallaxError } from "../../errors.js";
import { type Payer, type PendingPayment, TransferOutcome_Which } from "../../wire/gen/bank.js";
import { type DomControl, type DomElement, el, setText } from "../app/dom.js";
import { formatMoney, parseAccountNumber, parseAmount } from "./money.js";
import { describeOutcome, type OutcomeView, readReceipt } from "./outcome.js";
import { transient } from "./refreshes.js";

const ID_BYTES = 16;

interface RandomSource {
  getRandomValues(array: Uint8Array): Uint8Array;
}

/** A fresh transfer id: 16 random bytes from WebCrypto (the browser's and Node's `crypto`). */
export function newTransferId(): Uint8Array {
  const c = (globalThis as { crypto?: RandomSource }).crypto;
  if (c === undefined || typeof c.getRandomValues !== "function") {
    throw new Error("this browser has no crypto.getRandomValues: no transfer id can be made");
  }
  return c.getRandomValues(new Uint8Array(ID_BYTES));
}

export interface PaymentSource {
  readonly number: bigint;
  readonly label: string;
  readonly currency: string;
}

/** What one try sends; `id` stays the same for every try of one payment. */
export interface PaymentRequestView {
  readonly id: Uint8Array;
  readonly from: bigint;
  readonly to: bigint;
  readonly amount: bigint;
  readonly currency: string;
  readonly memo: string;
}

export interface PaymentFormOptions {
  readonly title: string;
  readonly submitLabel: string;
  /** Where the money goes when the form does not ask (a deposit into one account). */
  readonly to?: bigint;
  /** The accounts money may come from. */
  readonly sources: () => readonly PaymentSource[];
  /** Pays on the live connection; called again for each try. */
  readonly pay: (request: PaymentRequestView) => Promise<OutcomeView>;
  /** Runs the tries of one payment across dropped connections. */
  readonly run: <T>(once: () => Promise<T>) => Promise<T>;
  /** Told when a payment committed (e.g. to refresh a list). */
  readonly onCommitted?: () => void;
  /** Told of errors meaning the capability was revoked (a changed role). */
  readonly onRevoked?: (error: ParallaxError) => void;
}

const MAX_MEMO_CHARS = 140;

/** Pays through `payer`, reading the outcome out of the answer. */
export async function payOn(payer: Payer, r: PaymentRequestView): Promise<OutcomeView> {
  using answer = payer.pay({
    transfer: { id: r.id, to: r.to, amount: r.amount, currency: r.currency, memo: r.memo },
  });
  return describeOutcome((await answer).outcome, r.currency);
}

export class PaymentForm {
  readonly element: DomElement;
  readonly #options: PaymentFormOptions;
  readonly #from: DomControl;
  readonly #to: DomControl;
  readonly #amount: DomControl;
  readonly #memo: DomControl;
  readonly #submit: DomControl;
  readonly #outcome: DomElement;
  /** The last payment whose fate is unknown (a failure that may have come after the commit). */
  #unsettled: { readonly key: string; readonly id: Uint8Array } | undefined;

  constructor(options: PaymentFormOptions) {
    this.#options = options;
    this.#from = el("select", { name: "from" }) as DomControl;
    this.#to = el("input", {
      name: "to",
      inputmode: "numeric",
      autocomplete: "off",
      required: true,
    }) as DomControl;
    this.#amount = el("input", {
      name: "amount",
      inputmode: "decimal",
      autocomplete: "off",
      required: true,
    }) as DomControl;
    this.#memo = el("input", {
      name: "memo",
      maxlength: String(MAX_MEMO_CHARS),
      autocomplete: "off",
    }) as DomControl;
    this.#submit = el("button", { type: "submit" }, options.submitLabel) as DomControl;
    this.#outcome = el("p", { class: "outcome", role: "status", "aria-live": "polite" });
    const form = el(
      "form",
      { class: "payment-form" },
      el(
        "fieldset",
        {},
        el("legend", {}, options.title),
        el("label", {}, "From ", this.#from),
        options.to === undefined
          ? el("label", {}, "To account number ", this.#to)
          : el("p", { class: "meta" }, `To account ${options.to}`),
        el("label", {}, "Amount ", this.#amount),
        el("label", {}, "Memo ", this.#memo),
        this.#submit,
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.#send();
    });
    this.element = el("section", { class: "payment", "aria-label": options.title }, form, this.#outcome);
    this.refreshSources();
  }

  /** Fills the account choice again (accounts came or went). */
  refreshSources(): void {
    const chosen = this.#from.value;
    const sources = this.#options.sources();
    this.#from.replaceChildren(
      ...sources.map((s) =>
        el("option", { value: String(s.number), selected: String(s.number) === chosen }, s.label),
      ),
    );
    this.#from.disabled = sources.length <= 1;
    this.#submit.disabled = sources.length === 0;
  }

  #show(view: { kind: string; tone: string; text: string }): void {
    this.#outcome.dataset.outcome = view.kind;
    this.#outcome.dataset.tone = view.tone;
    setText(this.#outcome, view.text);
  }

  async #send(): Promise<void> {
    const source = this.#options.sources().find((s) => String(s.number) === this.#from.value);
    let request: PaymentRequestView;
    try {
      if (source === undefined) throw new Error("choose the account to pay from");
      const memo = this.#memo.value;
      if (memo.length > MAX_MEMO_CHARS) throw new Error(`a memo has at most ${MAX_MEMO_CHARS} characters`);
      const fields = {
        from: source.number,
        to: this.#options.to ?? parseAccountNumber(this.#to.value),
        amount: parseAmount(this.#amount.value, source.currency),
        currency: source.currency,
        memo,
      };
      const key = `${fields.from}|${fields.to}|${fields.amount}|${fields.currency}|${memo}`;
      const id = this.#unsettled?.key === key ? this.#unsettled.id : newTransferId();
      request = { id, ...fields };
      this.#unsettled = { key, id };
    } catch (err) {
      this.#show({ kind: "invalid", tone: "refused", text: toParallaxError(err).message });
      return;
    }
    this.#submit.disabled = true;
    this.#show({
      kind: "sending",
      tone: "wait",
      text: `Sending ${formatMoney(request.amount, request.currency)} to account ${request.to}…`,
    });
    try {
      const outcome = await this.#options.run(() => this.#options.pay(request));
      // The bank answered: the id is spent or the refusal final; a new payment gets a new id.
      this.#unsettled = undefined;
      this.#show(outcome);
      if (outcome.tone === "ok") {
        for (const input of [this.#to, this.#amount, this.#memo]) input.value = "";
        this.#options.onCommitted?.();
      }
      if (outcome.pending !== undefined) void this.#follow(outcome.pending);
    } catch (err) {
      const error = toParallaxError(err);
      if (!transient(error)) this.#unsettled = undefined;
      this.#show({
        kind: "error",
        tone: "refused",
        text: transient(error)
          ? `The bank could not be reached (${error.message}); it is not known whether the payment went through. Send it again unchanged: it will not be paid twice.`
          : `Not sent: ${error.message}`,
      });
      if (error.code === ErrorCode.REVOKED) this.#options.onRevoked?.(error);
    } finally {
      this.#submit.disabled = this.#options.sources().length === 0;
    }
  }

  /** Waits for the decision on a payment above the threshold (owns and disposes `pending`). */
  async #follow(pending: PendingPayment): Promise<void> {
    try {
      using answer = pending.wait();
      const o = (await answer).outcome;
      const view = describeOutcome(
        o,
        o.which() === TransferOutcome_Which.APPLIED ? readReceipt(o.applied).currency : "",
      );
      view.pending?.dispose();
      this.#show({ ...view, text: `Approved. ${view.text}` });
      if (view.tone === "ok") this.#options.onCommitted?.();
    } catch (err) {
      const error = toParallaxError(err);
      this.#show({
        kind: error.code === ErrorCode.REJECTED ? "rejected" : "error",
        tone: "refused",
        text:
          error.code === ErrorCode.REJECTED
            ? `Rejected: ${error.message}`
            : `Still waiting for approval, but this page stopped following it (${error.message}).`,
      });
    } finally {
      pending.dispose();
    }
  }
}
