/**
 * Conversions between `schema/bank.capnp` and the store's bank records. What arrives is copied
 * out of the message and checked (PARALLAX_ERR_BAD_ARGUMENT with the field named); what leaves is
 * built from records.
 *
 * Invariant: amounts stay `bigint` from the wire to the store and back; nothing passes through a
 * JavaScript number except account numbers, ids of rows and times (all below 2^53).
 *
 * Tests: test/services/bank/bank-service.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  BankAccountRecord,
  Permissions,
  Receipt,
  RoleRecord,
  StatementRecord,
  TransferField,
  TransferInput,
  TransferKind,
  TransferResult,
} from "../../store/index.js";
import {
  type AccountInfo$Shape,
  AccountKind,
  LimitKind,
  type PendingPayment$Server,
  type Permissions as WirePermissions,
  type Receipt$Shape,
  type Role as WireRole,
  type Statement$Shape,
  type Transfer,
  TransferField as WireField,
  TransferKind as WireKind,
  type TransferOutcome$Shape,
} from "../../wire/gen/bank.js";

export const TRANSFER_ID_BYTES = 16;
export const MAX_MEMO_CHARS = 140;
export const MAX_NAME_CHARS = 100;
const MAX_AMOUNT = (1n << 63n) - 1n;
const CURRENCY = /^[A-Z]{3}$/;

export function readId(id: Uint8Array, field = "id"): Uint8Array {
  if (id.length !== TRANSFER_ID_BYTES) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${field} must be ${TRANSFER_ID_BYTES} bytes (a client-chosen 128-bit id); got ${id.length}`,
    );
  }
  return id.slice();
}

export function readAmount(amount: bigint, field = "amount", allowZero = false): bigint {
  if ((amount === 0n && !allowZero) || amount < 0n || amount > MAX_AMOUNT) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${field} must be ${allowZero ? "0" : "1"} to 2^63 - 1 minor units; got ${amount}`,
    );
  }
  return amount;
}

export function readCurrency(currency: string): string {
  if (!CURRENCY.test(currency)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a currency is 3 upper-case letters (EUR, USD); got "${currency}"`,
    );
  }
  return currency;
}

export function readMemo(memo: string): string {
  if (memo.length > MAX_MEMO_CHARS || /\p{Cc}/u.test(memo)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a memo has at most ${MAX_MEMO_CHARS} characters and no control characters`,
    );
  }
  return memo;
}

export function readName(name: string, what: string): string {
  if (name.length === 0 || name.length > MAX_NAME_CHARS || /\p{Cc}/u.test(name)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} has 1 to ${MAX_NAME_CHARS} characters`);
  }
  return name;
}

export function readAccountNumber(n: bigint, field = "account"): number {
  if (n < 1n || n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${field} is not an account number: ${n}`);
  }
  return Number(n);
}

/** A transfer from the wire, debiting `from`. */
export function readTransfer(t: Transfer, from: number): TransferInput {
  return {
    id: readId(t.id),
    from,
    to: readAccountNumber(t.to, "to"),
    amount: readAmount(t.amount),
    currency: readCurrency(t.currency),
    memo: readMemo(t.memo),
  };
}

export function readPermissions(p: WirePermissions): Permissions {
  return {
    view: p.view,
    deposit: p.deposit,
    pay: p.pay,
    perPaymentLimit: readAmount(p.perPaymentLimit, "perPaymentLimit", true),
    perDayLimit: readAmount(p.perDayLimit, "perDayLimit", true),
    approve: p.approve,
    manage: p.manage,
  };
}

export function readRole(r: WireRole): RoleRecord {
  return { name: readName(r.name, "a role name"), permissions: readPermissions(r.permissions) };
}

const KIND: Record<TransferKind, WireKind> = {
  single: WireKind.SINGLE,
  holdOpened: WireKind.HOLD_OPENED,
  holdPosted: WireKind.HOLD_POSTED,
  holdVoided: WireKind.HOLD_VOIDED,
  holdExpired: WireKind.HOLD_EXPIRED,
};

const FIELD: Record<TransferField, WireField> = {
  to: WireField.TO,
  amount: WireField.AMOUNT,
  currency: WireField.CURRENCY,
  memo: WireField.MEMO,
  from: WireField.FROM,
  kind: WireField.KIND,
};

const ACCOUNT_KIND = {
  private: AccountKind.PRIVATE,
  organization: AccountKind.ORGANIZATION,
  cash: AccountKind.CASH,
} as const;

export function accountInfo(a: BankAccountRecord): AccountInfo$Shape {
  return {
    number: BigInt(a.number),
    currency: a.currency,
    name: a.name,
    kind: ACCOUNT_KIND[a.kind],
    balance: a.creditsPosted - a.debitsPosted,
    pendingDebits: a.debitsPending,
    pendingCredits: a.creditsPending,
    noOverdraft: a.noOverdraft,
  };
}

export function receipt(r: Receipt): Receipt$Shape {
  return {
    id: r.id,
    from: BigInt(r.from),
    to: BigInt(r.to),
    amount: r.amount,
    currency: r.currency,
    at: BigInt(r.at),
    journalSeq: BigInt(r.journalSeq),
    kind: KIND[r.kind],
  };
}

/** A store outcome on the wire; `pending` makes the PendingPayment capability for a request. */
export function outcome(
  r: TransferResult,
  pending: (
    request: Extract<TransferResult, { kind: "pendingApproval" }>["request"],
  ) => PendingPayment$Server,
): TransferOutcome$Shape {
  switch (r.kind) {
    case "applied":
      return { applied: receipt(r.receipt) };
    case "exists":
      return { exists: receipt(r.receipt) };
    case "existsWithDifferent":
      return { existsWithDifferent: FIELD[r.field] };
    case "insufficientFunds":
      return { insufficientFunds: r.available < 0n ? 0n : r.available };
    case "limitExceeded":
      return {
        limitExceeded: {
          kind: r.limit.kind === "perPayment" ? LimitKind.PER_PAYMENT : LimitKind.PER_DAY,
          limit: r.limit.limit,
          used: r.limit.used,
        },
      };
    case "pendingApproval":
      return { pendingApproval: pending(r.request) };
    case "accountNotFound":
      return { accountNotFound: BigInt(r.number) };
    case "currencyMismatch":
      return { currencyMismatch: r.currency };
    case "sameAccount":
      return { sameAccount: null };
    case "overflow":
      return { overflow: null };
    case "linkedEventFailed":
      return { linkedEventFailed: null };
    case "holdNotOpen":
      return { holdNotOpen: r.state };
  }
}

export function statement(s: StatementRecord): Statement$Shape {
  return {
    account: BigInt(s.account),
    from: BigInt(s.from),
    to: BigInt(s.to),
    opening: s.opening,
    entries: s.entries.map((e) => ({
      journalSeq: BigInt(e.journalSeq),
      transferId: e.transferId,
      at: BigInt(e.at),
      counterparty: BigInt(e.counterparty),
      amount: e.amount,
      balance: e.balance,
      memo: e.memo,
      kind: KIND[e.kind],
    })),
    closing: s.closing,
    asOf: BigInt(s.asOf),
    truncated: s.truncated,
  };
}

/** The time range of a statement from the wire (ms since the epoch; 0..2^53). */
export function readRange(from: bigint, to: bigint): { from: number; to: number } {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (from < 0n || to < from || to > max) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a statement range needs 0 <= from <= to; got ${from}..${to}`,
    );
  }
  return { from: Number(from), to: Number(to) };
}
