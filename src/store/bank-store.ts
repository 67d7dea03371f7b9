/**
 * The bank service's store contract (seed 001) and its records: a double-entry ledger with
 * TigerBeetle's rules and Stripe's idempotency. A service asks for it with
 * `store.repository(BANK_STORE)`; `SqliteBrokerStore` answers with `sqlite/bank.ts`, which shares
 * the identities' database so that a transfer checks its actor's login epoch in its own
 * transaction.
 *
 * Invariants every implementation keeps:
 * - **Double entry.** A transfer debits one account and credits another by the same amount, both
 *   of one currency; so per currency the sum over accounts of (credits − debits), posted and
 *   pending alike, is always 0. Amounts are integers in minor units, > 0, < 2^63; no total
 *   (an account's debits or credits, posted + pending) ever passes 2^63 − 1 (`overflow`).
 * - **No overdraft** where flagged: an account with `noOverdraft` never has debits (posted +
 *   pending) above its credits posted.
 * - **Exactly once.** A transfer id (16 bytes) is unique forever across the ledger. A request whose
 *   id exists answers `exists` with the original receipt when every field is equal, else
 *   `existsWithDifferent` naming the first field that differs, and changes nothing. Refusals
 *   (insufficient funds, limits, unknown accounts) are not recorded: the id stays free.
 * - **Atomic.** A transfer, a batch (all legs or none), a hold's post or void, an approval and its
 *   transfer each commit as one transaction with their journal rows; nothing is acknowledged
 *   before it is durable. A crash leaves the last committed state.
 * - **Authority, checked inside the transaction.** Every write names its `BankActor`: the login
 *   (identity and epoch: `PARALLAX_ERR_REVOKED` if stale or suspended) and, for an employee, the
 *   grant (organization, identity, grant epoch: REVOKED if the employee was removed or their
 *   role changed since the facet was handed out) and that grant's limits.
 * - **Journal.** Every applied transfer, hold event and cash movement appends one journal row
 *   recording the actor (identity, perspective, facet), the transfer id and the time; each row's
 *   hash covers the row and the previous row's hash (`verifyJournal` recomputes the chain).
 * - Statements come from one consistent snapshot: opening + the entries = closing = the balance.
 *
 * Tests: test/store/bank.test.ts, test/store/bank-crash.test.ts, test/services/bank/
 */
import { type StoreContract, storeContract } from "./store-contract.js";

export type AccountKind = "private" | "organization" | "cash";

export interface BankAccountRecord {
  readonly number: number;
  readonly currency: string;
  readonly name: string;
  readonly kind: AccountKind;
  /** Private accounts: the owning identity. */
  readonly ownerId: number | null;
  /** Organization accounts: the owning organization. */
  readonly orgId: number | null;
  readonly noOverdraft: boolean;
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
  readonly debitsPending: bigint;
  readonly creditsPending: bigint;
}

export type TransferKind = "single" | "holdOpened" | "holdPosted" | "holdVoided" | "holdExpired";

export interface TransferInput {
  /** 16 bytes, chosen by the client. */
  readonly id: Uint8Array;
  readonly from: number;
  readonly to: number;
  readonly amount: bigint;
  readonly currency: string;
  readonly memo: string;
}

export interface Receipt {
  readonly id: Uint8Array;
  readonly from: number;
  readonly to: number;
  readonly amount: bigint;
  readonly currency: string;
  readonly at: number;
  readonly journalSeq: number;
  readonly kind: TransferKind;
}

export type TransferField = "to" | "amount" | "currency" | "memo" | "from" | "kind";

export type LimitKind = "perPayment" | "perDay";

export interface PaymentRequestRecord {
  readonly id: Uint8Array;
  readonly orgId: number;
  readonly transfer: TransferInput;
  /** The employee who made it. */
  readonly makerId: number;
  readonly makerName: string;
  readonly at: number;
  readonly state: "pending" | "approved" | "rejected";
  readonly reason: string;
}

export type TransferResult =
  | { readonly kind: "applied"; readonly receipt: Receipt }
  | { readonly kind: "exists"; readonly receipt: Receipt }
  | { readonly kind: "existsWithDifferent"; readonly field: TransferField }
  /** `available`: what the debit account could still pay (credits posted − debits posted − pending). */
  | { readonly kind: "insufficientFunds"; readonly available: bigint }
  | {
      readonly kind: "limitExceeded";
      readonly limit: { readonly kind: LimitKind; readonly limit: bigint; readonly used: bigint };
    }
  /** Above the organization's approval threshold: recorded as a payment request, not applied. */
  | { readonly kind: "pendingApproval"; readonly request: PaymentRequestRecord }
  | { readonly kind: "accountNotFound"; readonly number: number }
  | { readonly kind: "currencyMismatch"; readonly currency: string }
  | { readonly kind: "sameAccount" }
  | { readonly kind: "overflow" }
  | { readonly kind: "linkedEventFailed" }
  /** Post or void of a hold that is not open (posted, voided or expired). */
  | { readonly kind: "holdNotOpen"; readonly state: "posted" | "voided" | "expired" };

/** What an employee's role grants on an organization's accounts. Limits: 0n = none. */
export interface Permissions {
  readonly view: boolean;
  readonly deposit: boolean;
  readonly pay: boolean;
  readonly perPaymentLimit: bigint;
  readonly perDayLimit: bigint;
  readonly approve: boolean;
  readonly manage: boolean;
}

export interface RoleRecord {
  readonly name: string;
  readonly permissions: Permissions;
}

export interface OrganizationRecord {
  readonly id: number;
  readonly name: string;
  /** Payments above this amount wait for approval; 0n = never. */
  readonly approvalThreshold: bigint;
}

export interface EmploymentRecord {
  readonly org: OrganizationRecord;
  readonly identityId: number;
  readonly username: string;
  readonly role: RoleRecord;
  /** Bumped when the employee's role changes or they are removed: facets of an older one fail. */
  readonly grantEpoch: number;
}

/** Who makes a ledger write, checked inside its transaction. */
export interface BankActor {
  /** The login: refused with REVOKED unless the identity is at this epoch and not suspended. */
  readonly identityId: number;
  readonly epoch: number;
  /** For the journal: the perspective ("customer", "employee", "banker") and facet ("pay", …). */
  readonly perspective: string;
  readonly facet: string;
  /** An employee's grant: refused with REVOKED unless still at this grant epoch. */
  readonly grant?: { readonly orgId: number; readonly grantEpoch: number };
}

/**
 * Whose account a payment may debit, decided by the service from the capability the call came
 * through, and checked again inside the transaction (the store never trusts the account number
 * alone):
 * - `{ ownerId }`: the identity's own private account (a customer; an employee's deposit);
 * - `{ orgId }`: an account of that organization, paid by an employee whose `actor.grant` is of
 *   that organization; the grant's role (read inside the transaction) must have `pay`, its
 *   per-payment and per-day limits apply, and a payment above the organization's approval
 *   threshold becomes a payment request (`pendingApproval`) instead of a transfer;
 * - `{ cash: true }`: the bank's cash account of the currency (a banker's deposit);
 * - `{ counter: true }`: any private or organization account (a banker's withdrawal at the counter).
 * `payeeOrgId`, when set, requires the credit account to be that organization's (deposit-only).
 */
export interface PaymentPolicy {
  readonly payer:
    | { readonly ownerId: number }
    | { readonly orgId: number }
    | { readonly cash: true }
    | { readonly counter: true };
  readonly payeeOrgId?: number;
}

export interface JournalRecord {
  readonly seq: number;
  readonly transferId: Uint8Array;
  readonly kind: TransferKind;
  readonly from: number;
  readonly to: number;
  readonly amount: bigint;
  readonly currency: string;
  readonly at: number;
  /** Who made it happen: the actor's identity, perspective and facet. */
  readonly identityId: number;
  readonly perspective: string;
  readonly facet: string;
  /** Approved payment requests: the employee who made the request (the actor approved it). */
  readonly makerId: number | null;
  readonly memo: string;
  readonly prevHash: Uint8Array;
  readonly hash: Uint8Array;
}

export interface StatementRecord {
  readonly account: number;
  readonly from: number;
  readonly to: number;
  readonly opening: bigint;
  readonly entries: readonly {
    readonly journalSeq: number;
    readonly transferId: Uint8Array;
    readonly at: number;
    readonly counterparty: number;
    /** + credit, − debit. */
    readonly amount: bigint;
    readonly balance: bigint;
    readonly memo: string;
    readonly kind: TransferKind;
  }[];
  readonly closing: bigint;
  readonly asOf: number;
  readonly truncated: boolean;
}

export interface HoldRecord {
  readonly receipt: Receipt;
  readonly state: "open" | "posted" | "voided" | "expired";
  readonly expiresAt: number;
}

export interface BankStore {
  // accounts and organizations (bank staff; `actor` is the banker)
  openAccount(
    init: {
      readonly currency: string;
      readonly name: string;
      readonly kind: "private" | "organization";
      readonly ownerId?: number;
      readonly orgId?: number;
      readonly noOverdraft: boolean;
    },
    actor?: BankActor,
  ): Promise<BankAccountRecord>;
  getAccount(number: number): Promise<BankAccountRecord | undefined>;
  /** The bank's cash account of `currency`, made on first use (a cash deposit's debit side). */
  cashAccount(currency: string): Promise<BankAccountRecord>;
  accountsOf(owner: { readonly ownerId: number } | { readonly orgId: number }): Promise<BankAccountRecord[]>;
  createOrganization(
    init: { readonly name: string; readonly currency: string; readonly adminId: number },
    actor?: BankActor,
  ): Promise<{ readonly org: OrganizationRecord; readonly account: BankAccountRecord }>;
  getOrganization(id: number): Promise<OrganizationRecord | undefined>;

  // roles and employees (an org admin's `actor` carries their `manage` grant)
  defineRole(orgId: number, role: RoleRecord, actor?: BankActor): Promise<void>;
  /** Adds or changes an employee's role; returns the new grant epoch. NOT_FOUND for an unknown role. */
  setEmployeeRole(orgId: number, identityId: number, roleName: string, actor?: BankActor): Promise<number>;
  /** Removes an employee; returns the new grant epoch (facets of older ones fail). */
  removeEmployee(orgId: number, identityId: number, actor?: BankActor): Promise<number>;
  setApprovalThreshold(orgId: number, amount: bigint, actor?: BankActor): Promise<void>;
  employmentsOf(identityId: number): Promise<EmploymentRecord[]>;
  employeesOf(orgId: number): Promise<EmploymentRecord[]>;
  /** The employee's current grant, or undefined if they are not employed there. */
  employment(orgId: number, identityId: number): Promise<EmploymentRecord | undefined>;

  // the ledger
  /** One transfer, under `policy`, at `now` (the bank's clock). */
  transfer(
    input: TransferInput,
    policy: PaymentPolicy,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult>;
  /** All legs or none; at most `maxLegs` (BAD_ARGUMENT beyond). */
  transferBatch(
    inputs: readonly TransferInput[],
    policy: PaymentPolicy,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult[]>;
  /** Opens a hold (pending debit and credit) that expires at `now + timeoutMs`. */
  openHold(
    input: TransferInput,
    timeoutMs: number,
    policy: PaymentPolicy,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult>;
  /** Posts `amount` (0n = all) of an open hold under the new transfer id `id`. */
  postHold(
    holdId: Uint8Array,
    id: Uint8Array,
    amount: bigint,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult>;
  voidHold(holdId: Uint8Array, id: Uint8Array, actor: BankActor, now: number): Promise<TransferResult>;
  getHold(holdId: Uint8Array): Promise<HoldRecord | undefined>;
  /** The receipt of the applied transfer with this id (any kind), if there is one. */
  receiptOf(id: Uint8Array): Promise<Receipt | undefined>;
  /** Voids every hold expired at `now` (kind holdExpired); their receipts. */
  expireHolds(now: number): Promise<Receipt[]>;

  // maker-checker
  paymentRequest(id: Uint8Array): Promise<PaymentRequestRecord | undefined>;
  paymentRequestsOf(orgId: number): Promise<PaymentRequestRecord[]>;
  /**
   * Approves (the payment executes now, under the maker's account and the approver's actor; the
   * approver must not be the maker: PERMISSION_DENIED) or rejects a pending payment request.
   */
  decidePayment(
    id: Uint8Array,
    approve: boolean,
    reason: string,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult | { readonly kind: "rejected" }>;

  // reading
  statement(
    account: number,
    from: number,
    to: number,
    maxEntries: number,
    now: number,
  ): Promise<StatementRecord>;
  /** Per currency: the sum of every account's posted balance and of its pending one (both 0 always). */
  totals(): Promise<
    {
      readonly currency: string;
      readonly sum: bigint;
      readonly pendingSum: bigint;
      readonly accounts: number;
    }[]
  >;
  /** Recomputes the journal's hash chain; the first row whose hash does not match, if any. */
  verifyJournal(): Promise<{ readonly rows: number; readonly firstBad: number | undefined }>;
  journal(fromSeq: number, limit: number): Promise<JournalRecord[]>;
}

/** The token a service passes to `BrokerStore.repository` to get the store's `BankStore`. */
export const BANK_STORE: StoreContract<BankStore> = storeContract<BankStore>("bank");
