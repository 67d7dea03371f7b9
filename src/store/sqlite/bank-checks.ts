/**
 * The bank repository's argument checks: what a well-formed transfer, role, name or actor is.
 * Each throws BAD_ARGUMENT naming the operation and the value, before anything is queued or read;
 * they are structural backstops (the service has its own limits, no looser than these).
 *
 * Invariants: an amount that passes is a bigint in [1, 2^63 − 1] (a limit or threshold: [0, 2^63 −
 * 1]); an id is exactly 16 bytes; a text is well-formed UTF-16 (no lone surrogate, which SQLite
 * would store as U+FFFD and so compare unequal on a resend) within its length in code points.
 *
 * Tests: test/store/bank.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { BankActor, Permissions, RoleRecord, TransferInput } from "../bank-store.js";

/** The largest amount, total or limit: 2^63 − 1. */
export const MAX_AMOUNT = 2n ** 63n - 1n;
export const TRANSFER_ID_BYTES = 16;
export const MAX_MEMO_CHARS = 140;
/** The most legs one `transferBatch` takes. */
export const MAX_BATCH_LEGS = 64;
/** Account, organization and role names. */
export const MAX_NAME_CHARS = 100;
/** An actor's perspective and facet names, as written to the journal. */
export const MAX_ACTOR_LABEL_CHARS = 64;

const CURRENCY = /^[A-Z]{3}$/;
/** A UTF-16 surrogate without its partner. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function bad(op: string, message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, `${op}: ${message}`);
}

export function checkId(op: string, id: unknown, what = "a transfer id"): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== TRANSFER_ID_BYTES) {
    const got = id instanceof Uint8Array ? `${id.length} bytes` : typeof id;
    throw bad(op, `${what} must be ${TRANSFER_ID_BYTES} bytes, not ${got}`);
  }
  return id;
}

/** An amount in minor units: a bigint > 0 (or ≥ 0 with `zero`) and < 2^63. */
export function checkAmount(op: string, amount: unknown, what = "the amount", zero = false): bigint {
  if (typeof amount !== "bigint" || amount < (zero ? 0n : 1n) || amount > MAX_AMOUNT) {
    throw bad(
      op,
      `${what} must be a whole number of minor units ${zero ? ">= 0" : "> 0"} and < 2^63, not ${String(amount)}`,
    );
  }
  return amount;
}

export function checkCurrency(op: string, currency: unknown): string {
  if (typeof currency !== "string" || !CURRENCY.test(currency)) {
    throw bad(op, `a currency is 3 upper-case letters (ISO 4217 style), not ${JSON.stringify(currency)}`);
  }
  return currency;
}

export function checkAccountNumber(op: string, n: unknown, what = "an account number"): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw bad(op, `${what} must be a whole number >= 1, not ${String(n)}`);
  }
  return n;
}

/** A text of at most `max` code points, well-formed, optionally non-empty. */
export function checkText(op: string, s: unknown, what: string, max: number, nonEmpty = false): string {
  if (typeof s !== "string" || LONE_SURROGATE.test(s)) throw bad(op, `${what} must be well-formed text`);
  const length = [...s].length;
  if (length > max || (nonEmpty && length === 0)) {
    throw bad(op, `${what} must have ${nonEmpty ? "1 to" : "at most"} ${max} characters, not ${length}`);
  }
  return s;
}

export function checkTime(op: string, t: unknown, what = "now"): number {
  if (typeof t !== "number" || !Number.isSafeInteger(t)) {
    throw bad(op, `${what} must be a whole number of ms since the epoch, not ${String(t)}`);
  }
  return t;
}

export function checkTransfer(op: string, input: TransferInput): void {
  if (typeof input !== "object" || input === null) throw bad(op, "a transfer is missing");
  checkId(op, input.id);
  checkAccountNumber(op, input.from, "the debit account (from)");
  checkAccountNumber(op, input.to, "the credit account (to)");
  checkAmount(op, input.amount);
  checkCurrency(op, input.currency);
  checkText(op, input.memo, "a memo", MAX_MEMO_CHARS);
}

export function checkActor(op: string, actor: BankActor): void {
  if (typeof actor !== "object" || actor === null) throw bad(op, "the actor is missing");
  if (!Number.isSafeInteger(actor.identityId) || !Number.isSafeInteger(actor.epoch)) {
    throw bad(op, "an actor names an identity and its epoch as whole numbers");
  }
  checkText(op, actor.perspective, "the actor's perspective", MAX_ACTOR_LABEL_CHARS);
  checkText(op, actor.facet, "the actor's facet", MAX_ACTOR_LABEL_CHARS);
  if (actor.grant !== undefined) {
    const g = actor.grant;
    if (typeof g !== "object" || !Number.isSafeInteger(g?.orgId) || !Number.isSafeInteger(g.grantEpoch)) {
      throw bad(op, "an actor's grant names an organization and a grant epoch as whole numbers");
    }
  }
}

export function checkRole(op: string, role: RoleRecord): void {
  if (typeof role !== "object" || role === null) throw bad(op, "a role is missing");
  checkText(op, role.name, "a role name", MAX_NAME_CHARS, true);
  const p: Permissions = role.permissions;
  if (typeof p !== "object" || p === null) throw bad(op, "a role needs its permissions");
  for (const flag of ["view", "deposit", "pay", "approve", "manage"] as const) {
    if (typeof p[flag] !== "boolean") throw bad(op, `the permission ${flag} must be true or false`);
  }
  checkAmount(op, p.perPaymentLimit, "a per-payment limit", true);
  checkAmount(op, p.perDayLimit, "a per-day limit", true);
}

/**
 * Duplicate ids inside one batch: BAD_ARGUMENT naming the legs (a batch is one request, so two
 * legs with one id could never both apply).
 */
export function checkDistinctIds(op: string, inputs: readonly TransferInput[]): void {
  const seen = new Map<string, number>();
  inputs.forEach((t, i) => {
    const key = Buffer.from(t.id).toString("hex");
    const first = seen.get(key);
    if (first !== undefined) throw bad(op, `legs ${first} and ${i} have the same id ${key}`);
    seen.set(key, i);
  });
}
