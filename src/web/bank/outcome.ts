/**
 * A transfer's outcome (the `TransferOutcome` union of schema/bank.capnp) in words, read out of
 * the message into a plain value the page keeps: which member it is (`kind`, the union member's
 * schema name, also put on the page as `data-outcome`), whether money moved (`tone`), and a
 * sentence. Every member of the union has its sentence; an unknown one (a newer server) says so
 * instead of pretending.
 *
 * Ownership: for `pendingApproval` the view carries the PendingPayment stub read out of the
 * outcome; whoever takes the view owns it and disposes it.
 *
 * Tests: test/web/bank.test.ts ("outcomes", and in Chromium)
 */
import {
  LimitKind,
  type PendingPayment,
  type Receipt,
  TransferField,
  type TransferOutcome,
  TransferOutcome_Which,
} from "../../wire/gen/bank.js";
import { formatMoney } from "./money.js";

export type OutcomeKind =
  | "applied"
  | "exists"
  | "existsWithDifferent"
  | "insufficientFunds"
  | "limitExceeded"
  | "pendingApproval"
  | "accountNotFound"
  | "currencyMismatch"
  | "sameAccount"
  | "overflow"
  | "linkedEventFailed"
  | "holdNotOpen"
  | "unknown";

export interface ReceiptView {
  readonly from: bigint;
  readonly to: bigint;
  readonly amount: bigint;
  readonly currency: string;
  readonly at: number;
  readonly journalSeq: bigint;
}

export interface OutcomeView {
  readonly kind: OutcomeKind;
  /** ok: the money moved (or had moved); wait: it will when approved; refused: nothing changed. */
  readonly tone: "ok" | "wait" | "refused";
  readonly text: string;
  readonly receipt?: ReceiptView;
  /** `pendingApproval` only: the request, owned by whoever holds this view. */
  readonly pending?: PendingPayment;
}

const FIELD_NAMES: Record<number, string> = {
  [TransferField.TO]: "the payee",
  [TransferField.AMOUNT]: "the amount",
  [TransferField.CURRENCY]: "the currency",
  [TransferField.MEMO]: "the memo",
  [TransferField.FROM]: "the paying account",
  [TransferField.KIND]: "the kind of transfer",
};

export function readReceipt(r: Receipt): ReceiptView {
  return {
    from: r.from,
    to: r.to,
    amount: r.amount,
    currency: r.currency,
    at: Number(r.at),
    journalSeq: r.journalSeq,
  };
}

/** The outcome of a payment of `amount` `currency` from `from`, in words. */
export function describeOutcome(o: TransferOutcome, currency: string): OutcomeView {
  const money = (n: bigint): string => formatMoney(n, currency);
  switch (o.which()) {
    case TransferOutcome_Which.APPLIED: {
      const r = readReceipt(o.applied);
      return {
        kind: "applied",
        tone: "ok",
        text: `Sent ${formatMoney(r.amount, r.currency)} from account ${r.from} to account ${r.to} (journal entry ${r.journalSeq}).`,
        receipt: r,
      };
    }
    case TransferOutcome_Which.EXISTS: {
      const r = readReceipt(o.exists);
      return {
        kind: "exists",
        tone: "ok",
        text: `Already sent: ${formatMoney(r.amount, r.currency)} to account ${r.to} went through before (journal entry ${r.journalSeq}); nothing was sent twice.`,
        receipt: r,
      };
    }
    case TransferOutcome_Which.EXISTS_WITH_DIFFERENT:
      return {
        kind: "existsWithDifferent",
        tone: "refused",
        text: `Refused: this transfer's id was used before for a transfer with different ${FIELD_NAMES[o.existsWithDifferent] ?? "fields"}. Nothing changed.`,
      };
    case TransferOutcome_Which.INSUFFICIENT_FUNDS:
      return {
        kind: "insufficientFunds",
        tone: "refused",
        text: `Refused: insufficient funds. ${money(o.insufficientFunds)} is available. Nothing changed.`,
      };
    case TransferOutcome_Which.LIMIT_EXCEEDED: {
      const l = o.limitExceeded;
      const text =
        l.kind === LimitKind.PER_DAY
          ? `Refused: over your limit of ${money(l.limit)} a day (${money(l.used)} spent today). Nothing changed.`
          : `Refused: over your limit of ${money(l.limit)} per payment. Nothing changed.`;
      return { kind: "limitExceeded", tone: "refused", text };
    }
    case TransferOutcome_Which.PENDING_APPROVAL:
      return {
        kind: "pendingApproval",
        tone: "wait",
        text: "Waiting for approval: the payment is above the organization's threshold, and another employee must approve it.",
        pending: o.pendingApproval,
      };
    case TransferOutcome_Which.ACCOUNT_NOT_FOUND:
      return {
        kind: "accountNotFound",
        tone: "refused",
        text: `Refused: there is no account ${o.accountNotFound}. Nothing changed.`,
      };
    case TransferOutcome_Which.CURRENCY_MISMATCH:
      return {
        kind: "currencyMismatch",
        tone: "refused",
        text: `Refused: that account holds ${o.currencyMismatch}; no transfers between currencies. Nothing changed.`,
      };
    case TransferOutcome_Which.SAME_ACCOUNT:
      return {
        kind: "sameAccount",
        tone: "refused",
        text: "Refused: that is the paying account itself. Nothing changed.",
      };
    case TransferOutcome_Which.OVERFLOW:
      return {
        kind: "overflow",
        tone: "refused",
        text: "Refused: a balance would overflow. Nothing changed.",
      };
    case TransferOutcome_Which.LINKED_EVENT_FAILED:
      return {
        kind: "linkedEventFailed",
        tone: "refused",
        text: "Refused: another transfer of the same batch failed, so none applied.",
      };
    case TransferOutcome_Which.HOLD_NOT_OPEN:
      return {
        kind: "holdNotOpen",
        tone: "refused",
        text: `Refused: the hold is no longer open (${o.holdNotOpen}).`,
      };
    default:
      return {
        kind: "unknown",
        tone: "refused",
        text: `The bank answered with an outcome this page does not know (${o.which()}); reload the page.`,
      };
  }
}
