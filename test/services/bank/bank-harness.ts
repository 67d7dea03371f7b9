/**
 * A bank on the login harness: the lobby and the bank service on an in-memory store, a banker
 * and helpers to open accounts and move money. Every test that uses it is a leak test through
 * `h.close()`.
 */
import { randomBytes } from "node:crypto";
import { attach } from "../../../src/login/index.js";
import type { KeyringPair } from "../../../src/store/index.js";
import { lobby } from "../../../src/services/lobby/lobby-service.js";
import { BANK_BANKER, BANK_CUSTOMER, BANK_EMPLOYEE } from "../../../src/services/bank/bank-keys.js";
import { type BankOptions, bank } from "../../../src/services/bank/bank-service.js";
import type {
  Banker,
  Customer,
  Employee,
  PrivateAccount,
  TransferOutcome,
} from "../../../src/wire/gen/bank.js";
import { TransferOutcome_Which } from "../../../src/wire/gen/bank.js";
import type { Identity } from "../../../src/wire/gen/broker.js";
import { type Harness, makeHarness } from "../../login/harness.js";

export const pair = (k: KeyringPair): KeyringPair => ({ service: k.service, perspective: k.perspective });
export const CUSTOMER_KEYRING: KeyringPair[] = [pair(BANK_CUSTOMER), pair(BANK_EMPLOYEE)];
export const BANKER_KEYRING: KeyringPair[] = [...CUSTOMER_KEYRING, pair(BANK_BANKER)];

/** A fresh 16-byte transfer id. */
export function tid(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

export interface BankWorld {
  readonly h: Harness;
  readonly banker: Banker;
  /** Adds a user with the customer and employee pairs, logs them in. */
  user(name: string): Promise<{ identity: Identity; customer: Customer; employee: Employee }>;
  /** Opens an account for `owner` and deposits `cash` into it; returns its number and capability. */
  account(
    owner: { identity: Identity; customer: Customer },
    name: string,
    ownerName: string,
    cash?: bigint,
    currency?: string,
  ): Promise<{ number: bigint; account: PrivateAccount }>;
}

export async function makeBank(options: BankOptions = {}): Promise<BankWorld> {
  const h = await makeHarness({ services: [lobby(), bank(options)] });
  await h.addUser("teller", "teller pass", BANKER_KEYRING);
  const staff = await h.login("teller", "teller pass");
  const banker = attach(staff.identity, BANK_BANKER);
  const world: BankWorld = {
    h,
    banker,
    async user(name) {
      await h.addUser(name, `${name} pass`, CUSTOMER_KEYRING);
      const { identity } = await h.login(name, `${name} pass`);
      return {
        identity,
        customer: attach(identity, BANK_CUSTOMER),
        employee: attach(identity, BANK_EMPLOYEE),
      };
    },
    async account(owner, name, ownerName, cash = 0n, currency = "EUR") {
      const { info } = await banker.openAccount({ owner: ownerName, currency, name });
      if (cash > 0n) {
        const r = await banker.deposit({
          account: info.number,
          id: tid(),
          amount: cash,
          memo: "opening cash",
        });
        if (r.outcome.which() !== TransferOutcome_Which.APPLIED)
          throw new Error("the opening deposit failed");
      }
      const mine = (await owner.customer.accounts()).accounts
        .toArray()
        .find((a) => a.info.number === info.number);
      if (mine === undefined) throw new Error("the new account is not among the owner's");
      return { number: info.number, account: mine.account };
    },
  };
  return world;
}

/** The union member of an outcome, as a string (the test reads better with it). */
export function which(o: TransferOutcome): string {
  const names: Record<number, string> = {
    [TransferOutcome_Which.APPLIED]: "applied",
    [TransferOutcome_Which.EXISTS]: "exists",
    [TransferOutcome_Which.EXISTS_WITH_DIFFERENT]: "existsWithDifferent",
    [TransferOutcome_Which.INSUFFICIENT_FUNDS]: "insufficientFunds",
    [TransferOutcome_Which.LIMIT_EXCEEDED]: "limitExceeded",
    [TransferOutcome_Which.PENDING_APPROVAL]: "pendingApproval",
    [TransferOutcome_Which.ACCOUNT_NOT_FOUND]: "accountNotFound",
    [TransferOutcome_Which.CURRENCY_MISMATCH]: "currencyMismatch",
    [TransferOutcome_Which.SAME_ACCOUNT]: "sameAccount",
    [TransferOutcome_Which.OVERFLOW]: "overflow",
    [TransferOutcome_Which.LINKED_EVENT_FAILED]: "linkedEventFailed",
    [TransferOutcome_Which.HOLD_NOT_OPEN]: "holdNotOpen",
  };
  return names[o.which()] ?? `unknown ${o.which()}`;
}
