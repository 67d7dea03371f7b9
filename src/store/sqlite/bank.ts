/**
 * `SqliteBankRepository`: the bank's tables (migration 4) and the store's `BankStore`
 * (`BANK_STORE`), in the identities' database so that every ledger write checks its actor's login
 * epoch (and an employee's grant epoch) inside its own transaction.
 *
 * Tables (all STRICT; every 64-bit amount is read and written as bigint, never as a JS number):
 * - `bank_accounts`: number, currency, name, kind, owner (private) or organization, the
 *   no-overdraft flag and the four totals (debits/credits, posted/pending). One `cash` account per
 *   currency, made on first need, may go negative: deposits come from it.
 * - `bank_orgs`, `bank_roles`, `bank_employees`: organizations (approval threshold), their named
 *   roles (permissions and limits) and employees. An employee row stays after removal with role
 *   NULL, so its grant epoch only grows: it is bumped whenever the employee's role changes, the
 *   role itself is redefined, or they are removed or re-hired, and a facet handed out at an older
 *   epoch is refused with REVOKED.
 * - `bank_transfers`: every applied transfer, hold and hold event by its 16-byte id, forever (the
 *   id's exactly-once record); holds carry their state and expiry, posts/voids/expiries the hold.
 * - `bank_payment_requests`: payments above an organization's threshold, pending or decided.
 * - `bank_journal`: one hash-chained row per applied transfer or hold event (`bank-journal.ts`).
 *
 * Invariants (those of `BankStore`, plus):
 * - Order of checks for a payment: arguments (BAD_ARGUMENT, before anything is queued) → the
 *   actor (REVOKED) → the debit account (`accountNotFound`) and the payer rule on it
 *   (PERMISSION_DENIED) → the id (`exists`, `existsWithDifferent`, or a pending request's
 *   `pendingApproval`) → `sameAccount` → the credit account → currencies (debit side first) → the
 *   payee rule → an employee's limits → the approval threshold → `overflow` → `insufficientFunds`.
 *   The payer rule comes before the id so that only someone who may pay from that account learns
 *   what an id was used for there.
 * - Every write goes through one group-committed queue (`bank-group.ts`), in call order; a call's
 *   promise settles only after its transaction committed. A refusal changes nothing.
 * - The journal row and the balances of a transfer commit together; posted journal entries of an
 *   account sum to its posted balance, which is what statements rely on.
 * - Reads that combine several queries (statement, totals, verifyJournal) run in one read
 *   transaction (`snapshot`): WAL gives them one consistent view even while another process writes.
 *
 * Where the contract leaves room, this implementation decides:
 * - Payer rules: `{ ownerId }` must be the actor's own identity; `{ cash }` and `{ counter }` are
 *   refused to an actor with a grant, and `{ counter }` pays only into a cash account.
 * - A batch leg answering `exists` counts as done (a resent batch answers `exists` leg by leg);
 *   any other answer fails the batch. Batches have 1 to 64 legs.
 * - A payment above the approval threshold in a batch or a hold is PERMISSION_DENIED: it must be
 *   made alone, to wait for approval. A resend of a rejected request's id answers
 *   `pendingApproval` with the request in state `rejected`.
 * - Per-day use counts transfers and holds (when opened) from the organization's accounts, the
 *   employee's approved requests (when approved) and their pending ones (when made).
 * - A post or void at or after the hold's expiry answers `holdNotOpen` `expired` without changing
 *   it (`expireHolds` closes it); an expiry has a fresh random id. Posting more than held is
 *   BAD_ARGUMENT.
 * - A statement's range is inclusive at both ends; one reaching `now` covers every entry recorded;
 *   a truncated one gives the first `maxEntries` entries and closes after the last of them.
 *
 * Tests: test/store/bank.test.ts (ledger rules, ids, batches), bank-holds.test.ts, bank-orgs.test.ts
 * (grants, limits, maker-checker), bank-statement.test.ts, bank-journal.test.ts, bank-group.test.ts,
 * bank-property.test.ts (fast-check against a model), bank-race.test.ts, bank-crash.test.ts
 */
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  AccountKind,
  BankAccountRecord,
  BankActor,
  BankStore,
  EmploymentRecord,
  HoldRecord,
  JournalRecord,
  OrganizationRecord,
  PaymentPolicy,
  PaymentRequestRecord,
  Permissions,
  Receipt,
  RoleRecord,
  StatementRecord,
  TransferField,
  TransferInput,
  TransferKind,
  TransferResult,
} from "../bank-store.js";
import { nameKey } from "../name-key.js";
import {
  checkAccountNumber,
  checkActor,
  checkAmount,
  checkCurrency,
  checkDistinctIds,
  checkId,
  checkRole,
  checkText,
  checkTime,
  checkTransfer,
  MAX_AMOUNT,
  MAX_BATCH_LEGS,
  MAX_MEMO_CHARS,
  MAX_NAME_CHARS,
} from "./bank-checks.js";
import { GroupCommit, type GroupStats, Rollback } from "./bank-group.js";
import { GENESIS_HASH, type JournalRow, journalHash, verifyChain } from "./bank-journal.js";
import type { SqliteDatabase } from "./database.js";

export { MAX_BATCH_LEGS, MAX_MEMO_CHARS } from "./bank-checks.js";

const DAY_MS = 86_400_000;
/** The most entries one statement or journal page may ask for. */
export const MAX_PAGE_ENTRIES = 100_000;
/** The built-in role of an organization's first employee: every permission, no limits. */
export const ADMIN_ROLE: RoleRecord = {
  name: "admin",
  permissions: {
    view: true,
    deposit: true,
    pay: true,
    perPaymentLimit: 0n,
    perDayLimit: 0n,
    approve: true,
    manage: true,
  },
};

// Rows as read with safeIntegers: every INTEGER is a bigint.
interface AccountRow {
  number: bigint;
  currency: string;
  name: string;
  kind: string;
  owner_id: bigint | null;
  org_id: bigint | null;
  no_overdraft: bigint;
  debits_posted: bigint;
  credits_posted: bigint;
  debits_pending: bigint;
  credits_pending: bigint;
}

interface TransferRow {
  id: Uint8Array;
  kind: TransferKind;
  debit_account: bigint;
  credit_account: bigint;
  amount: bigint;
  currency: string;
  memo: string;
  at: bigint;
  journal_seq: bigint;
  hold_id: Uint8Array | null;
  hold_state: HoldRecord["state"] | null;
  expires_at: bigint | null;
}

interface RequestRow {
  id: Uint8Array;
  org_id: bigint;
  maker_id: bigint;
  maker_name: string;
  debit_account: bigint;
  credit_account: bigint;
  amount: bigint;
  currency: string;
  memo: string;
  at: bigint;
  state: PaymentRequestRecord["state"];
  reason: string;
}

interface OrgRow {
  id: bigint;
  name: string;
  approval_threshold: bigint;
}

interface RoleRow {
  name: string;
  can_view: bigint;
  can_deposit: bigint;
  can_pay: bigint;
  per_payment_limit: bigint;
  per_day_limit: bigint;
  can_approve: bigint;
  can_manage: bigint;
}

interface EmploymentRow extends RoleRow {
  org_id: bigint;
  org_name: string;
  approval_threshold: bigint;
  identity_id: bigint;
  username: string;
  grant_epoch: bigint;
}

interface GrantRow {
  role: string | null;
  grant_epoch: bigint;
}

interface StatementRow {
  seq: bigint;
  transfer_id: Uint8Array;
  kind: TransferKind;
  debit_account: bigint;
  credit_account: bigint;
  amount: bigint;
  memo: string;
  at: bigint;
}

/** What a request asks for, compared field by field with a stored transfer of the same id. */
interface Wanted {
  readonly to: number;
  readonly amount: bigint;
  readonly currency: string;
  readonly memo: string;
  readonly from: number;
  readonly kind: TransferKind;
  /** Posts, voids and expiries: the hold they close (a different hold differs in `kind`). */
  readonly holdId: Uint8Array | null;
}

type Row = Record<string, unknown>;

const EMPLOYMENT_COLUMNS = `o.id AS org_id, o.name AS org_name, o.approval_threshold, e.identity_id,
  i.name AS username, e.grant_epoch, r.name, r.can_view, r.can_deposit, r.can_pay, r.per_payment_limit,
  r.per_day_limit, r.can_approve, r.can_manage
  FROM bank_employees e JOIN bank_orgs o ON o.id = e.org_id
  JOIN bank_roles r ON r.org_id = e.org_id AND r.name = e.role
  JOIN identities i ON i.id = e.identity_id`;

const REQUEST_COLUMNS = `q.id, q.org_id, q.maker_id, i.name AS maker_name, q.debit_account, q.credit_account,
  q.amount, q.currency, q.memo, q.at, q.state, q.reason
  FROM bank_payment_requests q JOIN identities i ON i.id = q.maker_id`;

function prepare(db: SqliteDatabase) {
  // Every statement reads integers as bigint; parameters may be numbers or bigints.
  const p = <P extends unknown[], R = never>(sql: string) => db.prepare<P, R>(sql).safeIntegers(true);
  return {
    identity: p<[number], Row>("SELECT id FROM identities WHERE id = ?"),
    account: p<[number], AccountRow>("SELECT * FROM bank_accounts WHERE number = ?"),
    cash: p<[string], AccountRow>("SELECT * FROM bank_accounts WHERE kind = 'cash' AND currency = ?"),
    accountsOfOwner: p<[number], AccountRow>(
      "SELECT * FROM bank_accounts WHERE owner_id = ? ORDER BY number",
    ),
    accountsOfOrg: p<[number], AccountRow>("SELECT * FROM bank_accounts WHERE org_id = ? ORDER BY number"),
    allAccounts: p<[], AccountRow>("SELECT * FROM bank_accounts ORDER BY currency, number"),
    insertAccount: p<[string, string, AccountKind, number | null, number | null, number, number], AccountRow>(
      `INSERT INTO bank_accounts (currency, name, kind, owner_id, org_id, no_overdraft, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ),
    saveTotals: p<[bigint, bigint, bigint, bigint, number]>(
      `UPDATE bank_accounts SET debits_posted = ?, credits_posted = ?, debits_pending = ?, credits_pending = ?
       WHERE number = ?`,
    ),
    org: p<[number], OrgRow>("SELECT id, name, approval_threshold FROM bank_orgs WHERE id = ?"),
    orgByKey: p<[string], OrgRow>("SELECT id, name, approval_threshold FROM bank_orgs WHERE name_key = ?"),
    insertOrg: p<[string, string, number], OrgRow>(
      "INSERT INTO bank_orgs (name, name_key, created_at) VALUES (?, ?, ?) RETURNING id, name, approval_threshold",
    ),
    setThreshold: p<[bigint, number]>("UPDATE bank_orgs SET approval_threshold = ? WHERE id = ?"),
    role: p<[number, string], RoleRow>("SELECT * FROM bank_roles WHERE org_id = ? AND name = ?"),
    upsertRole: p<[number, string, number, number, number, bigint, bigint, number, number]>(
      `INSERT INTO bank_roles (org_id, name, can_view, can_deposit, can_pay, per_payment_limit, per_day_limit,
         can_approve, can_manage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (org_id, name) DO UPDATE SET can_view = excluded.can_view, can_deposit = excluded.can_deposit,
         can_pay = excluded.can_pay, per_payment_limit = excluded.per_payment_limit,
         per_day_limit = excluded.per_day_limit, can_approve = excluded.can_approve,
         can_manage = excluded.can_manage`,
    ),
    bumpRoleHolders: p<[number, string]>(
      "UPDATE bank_employees SET grant_epoch = grant_epoch + 1 WHERE org_id = ? AND role = ?",
    ),
    grant: p<[number, number], GrantRow>(
      "SELECT role, grant_epoch FROM bank_employees WHERE org_id = ? AND identity_id = ?",
    ),
    insertEmployee: p<[number, number, string]>(
      "INSERT INTO bank_employees (org_id, identity_id, role, grant_epoch) VALUES (?, ?, ?, 1)",
    ),
    setEmployee: p<[string | null, number, number], { grant_epoch: bigint }>(
      `UPDATE bank_employees SET role = ?, grant_epoch = grant_epoch + 1 WHERE org_id = ? AND identity_id = ?
       RETURNING grant_epoch`,
    ),
    employment: p<[number, number], EmploymentRow>(
      `SELECT ${EMPLOYMENT_COLUMNS} WHERE e.org_id = ? AND e.identity_id = ?`,
    ),
    employmentsOf: p<[number], EmploymentRow>(
      `SELECT ${EMPLOYMENT_COLUMNS} WHERE e.identity_id = ? ORDER BY o.id`,
    ),
    employeesOf: p<[number], EmploymentRow>(
      `SELECT ${EMPLOYMENT_COLUMNS} WHERE e.org_id = ? ORDER BY i.name`,
    ),
    transfer: p<[Uint8Array], TransferRow>("SELECT * FROM bank_transfers WHERE id = ?"),
    insertTransfer: p<
      [
        Uint8Array,
        TransferKind,
        number,
        number,
        bigint,
        string,
        string,
        number,
        bigint,
        Uint8Array | null,
        string | null,
        number | null,
        number | null,
        number | null,
      ]
    >(
      `INSERT INTO bank_transfers (id, kind, debit_account, credit_account, amount, currency, memo, at,
         journal_seq, hold_id, hold_state, expires_at, limit_org_id, limit_identity_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    closeHold: p<[string, Uint8Array]>(
      "UPDATE bank_transfers SET hold_state = ? WHERE id = ? AND hold_state = 'open'",
    ),
    expired: p<[number], TransferRow>(
      "SELECT * FROM bank_transfers WHERE hold_state = 'open' AND expires_at <= ? ORDER BY expires_at, id",
    ),
    usedByTransfers: p<[number, number, number], { used: bigint | null }>(
      `SELECT SUM(amount) AS used FROM bank_transfers WHERE limit_org_id = ? AND limit_identity_id = ?
         AND at >= ? AND kind IN ('single', 'holdOpened')`,
    ),
    usedByRequests: p<[number, number, number], { used: bigint | null }>(
      `SELECT SUM(amount) AS used FROM bank_payment_requests WHERE org_id = ? AND maker_id = ?
         AND at >= ? AND state = 'pending'`,
    ),
    request: p<[Uint8Array], RequestRow>(`SELECT ${REQUEST_COLUMNS} WHERE q.id = ?`),
    requestsOf: p<[number], RequestRow>(`SELECT ${REQUEST_COLUMNS} WHERE q.org_id = ? ORDER BY q.at, q.id`),
    insertRequest: p<[Uint8Array, number, number, number, number, bigint, string, string, number]>(
      `INSERT INTO bank_payment_requests (id, org_id, maker_id, debit_account, credit_account, amount, currency,
         memo, at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
    ),
    decideRequest: p<[string, string, number, number, Uint8Array]>(
      `UPDATE bank_payment_requests SET state = ?, reason = ?, decided_by = ?, decided_at = ?
       WHERE id = ? AND state = 'pending'`,
    ),
    journalHead: p<[], { seq: bigint; hash: Uint8Array }>(
      "SELECT seq, hash FROM bank_journal ORDER BY seq DESC LIMIT 1",
    ),
    insertJournal: p<
      [
        bigint,
        Uint8Array,
        TransferKind,
        number,
        number,
        bigint,
        string,
        number,
        number,
        string,
        string,
        number | null,
        string,
        Uint8Array,
        Uint8Array,
      ]
    >(
      `INSERT INTO bank_journal (seq, transfer_id, kind, debit_account, credit_account, amount, currency, at,
         identity_id, perspective, facet, maker_id, memo, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    journalPage: p<[number, number], JournalRow>(
      "SELECT * FROM bank_journal WHERE seq >= ? ORDER BY seq LIMIT ?",
    ),
    journalAll: p<[], JournalRow>("SELECT * FROM bank_journal ORDER BY seq"),
    journalActor: p<[bigint], { identity_id: bigint; perspective: string }>(
      "SELECT identity_id, perspective FROM bank_journal WHERE seq = ?",
    ),
    // Posted entries only: holds opened, voided or expired move no posted balance.
    creditsSince: p<[number, number], { total: bigint | null }>(
      `SELECT SUM(amount) AS total FROM bank_journal WHERE credit_account = ? AND at >= ?
         AND kind IN ('single', 'holdPosted')`,
    ),
    debitsSince: p<[number, number], { total: bigint | null }>(
      `SELECT SUM(amount) AS total FROM bank_journal WHERE debit_account = ? AND at >= ?
         AND kind IN ('single', 'holdPosted')`,
    ),
    entries: p<[{ account: number; from: number; upper: number; limit: number }], StatementRow>(
      `SELECT seq, transfer_id, kind, debit_account, credit_account, amount, memo, at FROM (
         SELECT * FROM bank_journal WHERE debit_account = @account AND at BETWEEN @from AND @upper
           AND kind IN ('single', 'holdPosted')
         UNION ALL
         SELECT * FROM bank_journal WHERE credit_account = @account AND at BETWEEN @from AND @upper
           AND kind IN ('single', 'holdPosted'))
       ORDER BY seq LIMIT @limit`,
    ),
    dataVersion: db.prepare<[], number>("PRAGMA data_version").pluck(),
    begin: db.prepare<[]>("BEGIN DEFERRED"),
    commit: db.prepare<[]>("COMMIT"),
    rollback: db.prepare<[]>("ROLLBACK"),
  };
}

function storageError(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.STORAGE, message);
}

function denied(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.PERMISSION_DENIED, message);
}

function notFound(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.NOT_FOUND, message);
}

/** A stored integer that must fit a JS number (ids, times, epochs). */
function small(v: bigint | null, what: string): number {
  const n = Number(v);
  if (v === null || !Number.isSafeInteger(n)) throw storageError(`a stored ${what} is not a whole number`);
  return n;
}

function total(v: bigint, what: string, number: bigint): bigint {
  if (typeof v !== "bigint" || v < 0n || v > MAX_AMOUNT) {
    throw storageError(`bank account ${number} is malformed: its ${what} is ${String(v)}`);
  }
  return v;
}

const ACCOUNT_KINDS: readonly string[] = ["private", "organization", "cash"];

function toAccount(r: AccountRow): BankAccountRecord {
  if (!ACCOUNT_KINDS.includes(r.kind) || !/^[A-Z]{3}$/.test(r.currency)) {
    throw storageError(`bank account ${r.number} is malformed: kind ${r.kind}, currency ${r.currency}`);
  }
  return {
    number: small(r.number, "account number"),
    currency: r.currency,
    name: r.name,
    kind: r.kind as AccountKind,
    ownerId: r.owner_id === null ? null : small(r.owner_id, "owner"),
    orgId: r.org_id === null ? null : small(r.org_id, "organization"),
    noOverdraft: r.no_overdraft === 1n,
    debitsPosted: total(r.debits_posted, "debits posted", r.number),
    creditsPosted: total(r.credits_posted, "credits posted", r.number),
    debitsPending: total(r.debits_pending, "debits pending", r.number),
    creditsPending: total(r.credits_pending, "credits pending", r.number),
  };
}

function toOrg(r: OrgRow): OrganizationRecord {
  return { id: small(r.id, "organization id"), name: r.name, approvalThreshold: r.approval_threshold };
}

function toRole(r: RoleRow): RoleRecord {
  return {
    name: r.name,
    permissions: {
      view: r.can_view === 1n,
      deposit: r.can_deposit === 1n,
      pay: r.can_pay === 1n,
      perPaymentLimit: r.per_payment_limit,
      perDayLimit: r.per_day_limit,
      approve: r.can_approve === 1n,
      manage: r.can_manage === 1n,
    },
  };
}

function toEmployment(r: EmploymentRow): EmploymentRecord {
  return {
    org: {
      id: small(r.org_id, "organization id"),
      name: r.org_name,
      approvalThreshold: r.approval_threshold,
    },
    identityId: small(r.identity_id, "identity id"),
    username: r.username,
    role: toRole(r),
    grantEpoch: small(r.grant_epoch, "grant epoch"),
  };
}

function toReceipt(t: TransferRow): Receipt {
  return {
    id: new Uint8Array(t.id),
    from: small(t.debit_account, "account number"),
    to: small(t.credit_account, "account number"),
    amount: t.amount,
    currency: t.currency,
    at: small(t.at, "time"),
    journalSeq: small(t.journal_seq, "journal seq"),
    kind: t.kind,
  };
}

function toRequest(r: RequestRow): PaymentRequestRecord {
  return {
    id: new Uint8Array(r.id),
    orgId: small(r.org_id, "organization id"),
    transfer: {
      id: new Uint8Array(r.id),
      from: small(r.debit_account, "account number"),
      to: small(r.credit_account, "account number"),
      amount: r.amount,
      currency: r.currency,
      memo: r.memo,
    },
    makerId: small(r.maker_id, "identity id"),
    makerName: r.maker_name,
    at: small(r.at, "time"),
    state: r.state,
    reason: r.reason,
  };
}

function toJournal(r: JournalRow): JournalRecord {
  return {
    seq: small(r.seq, "journal seq"),
    transferId: new Uint8Array(r.transfer_id),
    kind: r.kind as TransferKind,
    from: small(r.debit_account, "account number"),
    to: small(r.credit_account, "account number"),
    amount: r.amount,
    currency: r.currency,
    at: small(r.at, "time"),
    identityId: small(r.identity_id, "identity id"),
    perspective: r.perspective,
    facet: r.facet,
    makerId: r.maker_id === null ? null : small(r.maker_id, "identity id"),
    memo: r.memo,
    prevHash: new Uint8Array(r.prev_hash),
    hash: new Uint8Array(r.hash),
  };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** The first field (in the order to, amount, currency, memo, from, kind) where `stored` and `want` differ. */
function firstDifference(stored: Wanted, want: Wanted): TransferField | undefined {
  if (stored.to !== want.to) return "to";
  if (stored.amount !== want.amount) return "amount";
  if (stored.currency !== want.currency) return "currency";
  if (stored.memo !== want.memo) return "memo";
  if (stored.from !== want.from) return "from";
  if (stored.kind !== want.kind || !sameBytes(stored.holdId, want.holdId)) return "kind";
  return undefined;
}

function checkPolicy(op: string, policy: PaymentPolicy): void {
  const payer = policy?.payer as Record<string, unknown> | undefined;
  const ok =
    typeof payer === "object" &&
    payer !== null &&
    ((Number.isSafeInteger(payer.ownerId) && Object.keys(payer).length === 1) ||
      (Number.isSafeInteger(payer.orgId) && Object.keys(payer).length === 1) ||
      (payer.cash === true && Object.keys(payer).length === 1) ||
      (payer.counter === true && Object.keys(payer).length === 1)) &&
    (policy.payeeOrgId === undefined || Number.isSafeInteger(policy.payeeOrgId));
  if (!ok) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${op}: a payment policy names one payer ({ ownerId }, { orgId }, { cash: true } or { counter: true })`,
    );
  }
}

type HoldMode = { readonly kind: "hold"; readonly timeoutMs: number };
type Mode = { readonly kind: "single" } | { readonly kind: "batch" } | HoldMode;

/** A transfer's effect on its two accounts' totals. */
type Effect = "posted" | "pending";

export class SqliteBankRepository implements BankStore {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #group: GroupCommit;
  /**
   * Inside a group transaction only: the accounts read or written in it and the journal head,
   * as this connection last saw them. Kept from one group to the next while no other connection
   * committed (`PRAGMA data_version` unchanged), dropped whenever changes are undone. Every bank
   * write of this process runs in a group, so nothing else changes these rows under it.
   */
  readonly #accounts = new Map<number, BankAccountRecord>();
  #head: { readonly seq: bigint; readonly hash: Uint8Array } | undefined;
  #dataVersion = -1;
  #inGroup = false;

  /** `maxGroupRequests`: the most requests per group transaction (1 turns grouping off, for the bench). */
  constructor(db: SqliteDatabase, options: { readonly maxGroupRequests?: number } = {}) {
    this.#db = db;
    this.#s = prepare(db);
    this.#group = new GroupCommit(db, options.maxGroupRequests, {
      began: () => {
        const version = this.#s.dataVersion.get() as number;
        if (version !== this.#dataVersion) this.#forget();
        this.#dataVersion = version;
        this.#inGroup = true;
      },
      undone: () => this.#forget(),
      ended: () => {
        this.#inGroup = false;
      },
    });
  }

  /** What the group commit has done (transactions and requests), for tests and the bench. */
  get groupStats(): GroupStats {
    return this.#group.stats;
  }

  /** Commits every write still queued (called when the store closes). */
  drain(): void {
    this.#group.drain();
  }

  /**
   * Runs `fn` (reads only) in one read transaction, so that all its queries see one committed
   * state even while another process writes (WAL); inside a transaction already open, in that.
   */
  snapshot<T>(op: string, fn: () => T): T {
    return this.#db.read(op, () => {
      if (this.#db.inTransaction) return fn();
      this.#s.begin.run();
      try {
        const value = fn();
        this.#s.commit.run();
        return value;
      } catch (err) {
        if (this.#db.inTransaction) this.#s.rollback.run();
        throw err;
      }
    });
  }

  // --- accounts and organizations -----------------------------------------------------------

  async openAccount(
    init: {
      readonly currency: string;
      readonly name: string;
      readonly kind: "private" | "organization";
      readonly ownerId?: number;
      readonly orgId?: number;
      readonly noOverdraft: boolean;
    },
    actor?: BankActor,
  ): Promise<BankAccountRecord> {
    const op = "openAccount";
    if (typeof init !== "object" || init === null) throw this.#bad(op, "the account is missing");
    checkCurrency(op, init.currency);
    checkText(op, init.name, "an account name", MAX_NAME_CHARS, true);
    if (typeof init.noOverdraft !== "boolean") throw this.#bad(op, "noOverdraft must be true or false");
    const owner = init.kind === "private" ? init.ownerId : init.orgId;
    const other = init.kind === "private" ? init.orgId : init.ownerId;
    if ((init.kind !== "private" && init.kind !== "organization") || other !== undefined) {
      throw this.#bad(op, "an account is private (with ownerId) or an organization's (with orgId), not both");
    }
    checkAccountNumber(op, owner, init.kind === "private" ? "ownerId" : "orgId");
    if (actor !== undefined) checkActor(op, actor);
    return this.#group.submit(op, () => {
      this.#assertStaff(op, actor);
      if (init.kind === "private" && this.#s.identity.get(owner as number) === undefined) {
        throw notFound(`${op}: no identity with id ${owner}`);
      }
      if (init.kind === "organization" && this.#s.org.get(owner as number) === undefined) {
        throw notFound(`${op}: no organization with id ${owner}`);
      }
      const row = this.#s.insertAccount.get(
        init.currency,
        init.name,
        init.kind,
        init.kind === "private" ? (owner as number) : null,
        init.kind === "organization" ? (owner as number) : null,
        init.noOverdraft ? 1 : 0,
        this.#db.now(),
      ) as AccountRow;
      return toAccount(row);
    });
  }

  async getAccount(number: number): Promise<BankAccountRecord | undefined> {
    checkAccountNumber("getAccount", number);
    return this.#db.read("getAccount", () => this.#account(number));
  }

  async cashAccount(currency: string): Promise<BankAccountRecord> {
    checkCurrency("cashAccount", currency);
    const found = this.#db.read("cashAccount", () => this.#s.cash.get(currency));
    if (found !== undefined) return toAccount(found);
    return this.#group.submit("cashAccount", () => this.#cash(currency));
  }

  async accountsOf(
    owner: { readonly ownerId: number } | { readonly orgId: number },
  ): Promise<BankAccountRecord[]> {
    const op = "accountsOf";
    const byOwner = typeof owner === "object" && owner !== null && "ownerId" in owner;
    const id = byOwner ? (owner as { ownerId: number }).ownerId : (owner as { orgId?: number })?.orgId;
    checkAccountNumber(op, id, byOwner ? "ownerId" : "orgId");
    return this.#db.read(op, () =>
      (byOwner ? this.#s.accountsOfOwner : this.#s.accountsOfOrg).all(id as number).map(toAccount),
    );
  }

  async createOrganization(
    init: { readonly name: string; readonly currency: string; readonly adminId: number },
    actor?: BankActor,
  ): Promise<{ readonly org: OrganizationRecord; readonly account: BankAccountRecord }> {
    const op = "createOrganization";
    if (typeof init !== "object" || init === null) throw this.#bad(op, "the organization is missing");
    checkText(op, init.name, "an organization name", MAX_NAME_CHARS, true);
    checkCurrency(op, init.currency);
    checkAccountNumber(op, init.adminId, "adminId");
    if (actor !== undefined) checkActor(op, actor);
    return this.#group.submit(op, () => {
      this.#assertStaff(op, actor);
      if (this.#s.identity.get(init.adminId) === undefined) {
        throw notFound(`${op}: no identity with id ${init.adminId}`);
      }
      const key = nameKey(init.name);
      if (this.#s.orgByKey.get(key) !== undefined) {
        throw new ParallaxError(ErrorCode.ALREADY_EXISTS, `${op}: an organization named ${init.name} exists`);
      }
      const org = toOrg(this.#s.insertOrg.get(init.name, key, this.#db.now()) as OrgRow);
      this.#putRole(org.id, ADMIN_ROLE);
      this.#s.insertEmployee.run(org.id, init.adminId, ADMIN_ROLE.name);
      const row = this.#s.insertAccount.get(
        init.currency,
        init.name,
        "organization",
        null,
        org.id,
        1,
        this.#db.now(),
      ) as AccountRow;
      return { org, account: toAccount(row) };
    });
  }

  async getOrganization(id: number): Promise<OrganizationRecord | undefined> {
    checkAccountNumber("getOrganization", id, "an organization id");
    return this.#db.read("getOrganization", () => {
      const row = this.#s.org.get(id);
      return row && toOrg(row);
    });
  }

  // --- roles and employees ------------------------------------------------------------------

  async defineRole(orgId: number, role: RoleRecord, actor?: BankActor): Promise<void> {
    const op = "defineRole";
    checkAccountNumber(op, orgId, "an organization id");
    checkRole(op, role);
    if (actor !== undefined) checkActor(op, actor);
    return this.#group.submit(op, () => {
      this.#assertManager(op, orgId, actor);
      const stored = this.#s.role.get(orgId, role.name);
      if (stored !== undefined && samePermissions(toRole(stored).permissions, role.permissions)) return;
      this.#putRole(orgId, role);
      // Facets handed out under the old permissions must not outlive them.
      if (stored !== undefined) this.#s.bumpRoleHolders.run(orgId, role.name);
    });
  }

  async setEmployeeRole(
    orgId: number,
    identityId: number,
    roleName: string,
    actor?: BankActor,
  ): Promise<number> {
    const op = "setEmployeeRole";
    checkAccountNumber(op, orgId, "an organization id");
    checkAccountNumber(op, identityId, "an identity id");
    checkText(op, roleName, "a role name", MAX_NAME_CHARS, true);
    if (actor !== undefined) checkActor(op, actor);
    return this.#group.submit(op, () => {
      this.#assertManager(op, orgId, actor);
      if (this.#s.identity.get(identityId) === undefined)
        throw notFound(`${op}: no identity with id ${identityId}`);
      if (this.#s.role.get(orgId, roleName) === undefined) {
        throw notFound(`${op}: organization ${orgId} has no role named ${roleName}`);
      }
      const grant = this.#s.grant.get(orgId, identityId);
      if (grant === undefined) {
        this.#s.insertEmployee.run(orgId, identityId, roleName);
        return 1;
      }
      if (grant.role === roleName) return small(grant.grant_epoch, "grant epoch");
      return this.#setEmployee(orgId, identityId, roleName);
    });
  }

  async removeEmployee(orgId: number, identityId: number, actor?: BankActor): Promise<number> {
    const op = "removeEmployee";
    checkAccountNumber(op, orgId, "an organization id");
    checkAccountNumber(op, identityId, "an identity id");
    if (actor !== undefined) checkActor(op, actor);
    return this.#group.submit(op, () => {
      this.#assertManager(op, orgId, actor);
      const grant = this.#s.grant.get(orgId, identityId);
      if (grant === undefined || grant.role === null) {
        throw notFound(`${op}: identity ${identityId} is not an employee of organization ${orgId}`);
      }
      return this.#setEmployee(orgId, identityId, null);
    });
  }

  async setApprovalThreshold(orgId: number, amount: bigint, actor?: BankActor): Promise<void> {
    const op = "setApprovalThreshold";
    checkAccountNumber(op, orgId, "an organization id");
    checkAmount(op, amount, "an approval threshold", true);
    if (actor !== undefined) checkActor(op, actor);
    return this.#group.submit(op, () => {
      this.#assertManager(op, orgId, actor);
      this.#s.setThreshold.run(amount, orgId);
    });
  }

  async employmentsOf(identityId: number): Promise<EmploymentRecord[]> {
    checkAccountNumber("employmentsOf", identityId, "an identity id");
    return this.#db.read("employmentsOf", () => this.#s.employmentsOf.all(identityId).map(toEmployment));
  }

  async employeesOf(orgId: number): Promise<EmploymentRecord[]> {
    checkAccountNumber("employeesOf", orgId, "an organization id");
    return this.#db.read("employeesOf", () => this.#s.employeesOf.all(orgId).map(toEmployment));
  }

  async employment(orgId: number, identityId: number): Promise<EmploymentRecord | undefined> {
    checkAccountNumber("employment", orgId, "an organization id");
    checkAccountNumber("employment", identityId, "an identity id");
    return this.#db.read("employment", () => {
      const row = this.#s.employment.get(orgId, identityId);
      return row && toEmployment(row);
    });
  }

  // --- the ledger ---------------------------------------------------------------------------

  // Not `async`: the hottest path, spared an async function's extra promise. It never throws;
  // a bad argument comes back as a rejected promise, as from the async methods.
  transfer(
    input: TransferInput,
    policy: PaymentPolicy,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult> {
    const op = "transfer";
    try {
      checkTransfer(op, input);
      checkPolicy(op, policy);
      checkActor(op, actor);
      checkTime(op, now);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#group.submit(op, () => {
      const role = this.#authorize(actor);
      return this.#pay(input, policy, actor, role, now, { kind: "single" });
    });
  }

  async transferBatch(
    inputs: readonly TransferInput[],
    policy: PaymentPolicy,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult[]> {
    const op = "transferBatch";
    if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > MAX_BATCH_LEGS) {
      throw this.#bad(op, `a batch has 1 to ${MAX_BATCH_LEGS} legs, not ${inputs?.length}`);
    }
    for (const [i, t] of inputs.entries()) checkTransfer(`${op}: leg ${i}`, t);
    checkDistinctIds(op, inputs);
    checkPolicy(op, policy);
    checkActor(op, actor);
    checkTime(op, now);
    return this.#group.submit(op, () => {
      const role = this.#authorize(actor);
      const results: TransferResult[] = [];
      for (const [i, leg] of inputs.entries()) {
        const r = this.#pay(leg, policy, actor, role, now, { kind: "batch" });
        if (r.kind !== "applied" && r.kind !== "exists") {
          // All or nothing: undo the legs applied so far and say which one failed.
          throw new Rollback(
            inputs.map((_, j): TransferResult => (j === i ? r : { kind: "linkedEventFailed" })),
          );
        }
        results.push(r);
      }
      return results;
    });
  }

  async openHold(
    input: TransferInput,
    timeoutMs: number,
    policy: PaymentPolicy,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult> {
    const op = "openHold";
    checkTransfer(op, input);
    checkPolicy(op, policy);
    checkActor(op, actor);
    checkTime(op, now);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || !Number.isSafeInteger(now + timeoutMs)) {
      throw this.#bad(op, `a hold's timeout must be a whole number of ms >= 1, not ${timeoutMs}`);
    }
    return this.#group.submit(op, () => {
      const role = this.#authorize(actor);
      return this.#pay(input, policy, actor, role, now, { kind: "hold", timeoutMs });
    });
  }

  async postHold(
    holdId: Uint8Array,
    id: Uint8Array,
    amount: bigint,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult> {
    const op = "postHold";
    checkId(op, holdId, "a hold id");
    checkId(op, id);
    checkAmount(op, amount, "the amount to post", true);
    checkActor(op, actor);
    checkTime(op, now);
    return this.#group.submit(op, () => {
      this.#authorize(actor);
      return this.#closeHold(op, holdId, id, amount, actor, now, "holdPosted");
    });
  }

  async voidHold(holdId: Uint8Array, id: Uint8Array, actor: BankActor, now: number): Promise<TransferResult> {
    const op = "voidHold";
    checkId(op, holdId, "a hold id");
    checkId(op, id);
    checkActor(op, actor);
    checkTime(op, now);
    return this.#group.submit(op, () => {
      this.#authorize(actor);
      return this.#closeHold(op, holdId, id, 0n, actor, now, "holdVoided");
    });
  }

  async getHold(holdId: Uint8Array): Promise<HoldRecord | undefined> {
    checkId("getHold", holdId, "a hold id");
    return this.#db.read("getHold", () => {
      const t = this.#s.transfer.get(holdId);
      if (t === undefined || t.kind !== "holdOpened") return undefined;
      return {
        receipt: toReceipt(t),
        state: t.hold_state as HoldRecord["state"],
        expiresAt: small(t.expires_at, "expiry"),
      };
    });
  }

  async receiptOf(id: Uint8Array): Promise<Receipt | undefined> {
    checkId("receiptOf", id);
    return this.#db.read("receiptOf", () => {
      const t = this.#s.transfer.get(id);
      return t && toReceipt(t);
    });
  }

  async expireHolds(now: number): Promise<Receipt[]> {
    checkTime("expireHolds", now);
    return this.#group.submit("expireHolds", () => {
      const receipts: Receipt[] = [];
      for (const hold of this.#s.expired.all(now)) {
        const opener = this.#s.journalActor.get(hold.journal_seq);
        if (opener === undefined) throw storageError(`hold ${hex(hold.id)} has no journal row`);
        const actor: BankActor = {
          identityId: small(opener.identity_id, "identity id"),
          epoch: 0,
          perspective: opener.perspective,
          facet: "expiry",
        };
        receipts.push(this.#release(hold, this.#freshId(), 0n, actor, now, "holdExpired"));
      }
      return receipts;
    });
  }

  // --- maker-checker ------------------------------------------------------------------------

  async paymentRequest(id: Uint8Array): Promise<PaymentRequestRecord | undefined> {
    checkId("paymentRequest", id, "a payment request id");
    return this.#db.read("paymentRequest", () => {
      const row = this.#s.request.get(id);
      return row && toRequest(row);
    });
  }

  async paymentRequestsOf(orgId: number): Promise<PaymentRequestRecord[]> {
    checkAccountNumber("paymentRequestsOf", orgId, "an organization id");
    return this.#db.read("paymentRequestsOf", () => this.#s.requestsOf.all(orgId).map(toRequest));
  }

  /**
   * The approver must hold a grant of the request's organization whose role has `approve`, and
   * not be its maker (PERMISSION_DENIED). Approving executes the maker's transfer now (funds and
   * totals checked now; the maker's limits were checked when it was made); a refusal leaves the
   * request pending. Deciding again the way it was decided answers as before (`exists` with the
   * receipt, or `rejected`); deciding it the other way is ALREADY_EXISTS.
   */
  async decidePayment(
    id: Uint8Array,
    approve: boolean,
    reason: string,
    actor: BankActor,
    now: number,
  ): Promise<TransferResult | { readonly kind: "rejected" }> {
    const op = "decidePayment";
    checkId(op, id, "a payment request id");
    if (typeof approve !== "boolean") throw this.#bad(op, "approve must be true or false");
    checkText(op, reason, "a reason", MAX_MEMO_CHARS);
    checkActor(op, actor);
    checkTime(op, now);
    return this.#group.submit(op, (): TransferResult | { readonly kind: "rejected" } => {
      const role = this.#authorize(actor);
      const row = this.#s.request.get(id);
      if (row === undefined) throw notFound(`${op}: no payment request with id ${hex(id)}`);
      const request = toRequest(row);
      if (role === undefined || actor.grant?.orgId !== request.orgId) {
        throw denied(`${op}: payments are decided by an approver of organization ${request.orgId}`);
      }
      if (actor.identityId === request.makerId) {
        throw denied(`${op}: an employee may not decide their own payment request`);
      }
      if (!role.approve) throw denied(`${op}: this employee's role does not approve payments`);
      if (request.state === "approved") {
        const t = this.#s.transfer.get(id);
        if (!approve || t === undefined)
          throw new ParallaxError(ErrorCode.ALREADY_EXISTS, `${op}: it was approved`);
        return { kind: "exists", receipt: toReceipt(t) };
      }
      if (request.state === "rejected") {
        if (approve) throw new ParallaxError(ErrorCode.ALREADY_EXISTS, `${op}: it was rejected`);
        return { kind: "rejected" };
      }
      if (!approve) {
        this.#s.decideRequest.run("rejected", reason, actor.identityId, now, id);
        return { kind: "rejected" };
      }
      const t = request.transfer;
      const debit = this.#account(t.from);
      const credit = this.#account(t.to);
      if (debit === undefined) return { kind: "accountNotFound", number: t.from };
      if (credit === undefined) return { kind: "accountNotFound", number: t.to };
      const refused = refusal(debit, credit, t.amount);
      if (refused !== undefined) return refused;
      const receipt = this.#record(t, debit, credit, "single", "posted", actor, now, {
        makerId: request.makerId,
        limit: { orgId: request.orgId, identityId: request.makerId },
      });
      this.#s.decideRequest.run("approved", reason, actor.identityId, now, id);
      return { kind: "applied", receipt };
    });
  }

  // --- reading ------------------------------------------------------------------------------

  async statement(
    account: number,
    from: number,
    to: number,
    maxEntries: number,
    now: number,
  ): Promise<StatementRecord> {
    const op = "statement";
    checkAccountNumber(op, account);
    checkTime(op, from, "from");
    checkTime(op, to, "to");
    checkTime(op, now);
    if (from > to) throw this.#bad(op, `the range must not end (${to}) before it starts (${from})`);
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_PAGE_ENTRIES) {
      throw this.#bad(op, `maxEntries must be 1 to ${MAX_PAGE_ENTRIES}, not ${maxEntries}`);
    }
    // A range reaching `now` covers everything recorded so far, so that its closing balance is the
    // account's balance even if a clock stamped an entry later than `now`.
    const upper = to >= now ? Number.MAX_SAFE_INTEGER : to;
    return this.snapshot(op, () => {
      const a = this.#account(account);
      if (a === undefined) throw notFound(`${op}: no account ${account}`);
      const since =
        (this.#s.creditsSince.get(account, from)?.total ?? 0n) -
        (this.#s.debitsSince.get(account, from)?.total ?? 0n);
      const opening = a.creditsPosted - a.debitsPosted - since;
      const rows = this.#s.entries.all({ account, from, upper, limit: maxEntries + 1 });
      let balance = opening;
      const entries = rows.slice(0, maxEntries).map((r) => {
        const credit = r.credit_account === BigInt(account);
        const amount = credit ? r.amount : -r.amount;
        balance += amount;
        return {
          journalSeq: small(r.seq, "journal seq"),
          transferId: new Uint8Array(r.transfer_id),
          at: small(r.at, "time"),
          counterparty: small(credit ? r.debit_account : r.credit_account, "account number"),
          amount,
          balance,
          memo: r.memo,
          kind: r.kind,
        };
      });
      return {
        account,
        from,
        to,
        opening,
        entries,
        closing: balance,
        asOf: now,
        truncated: rows.length > maxEntries,
      };
    });
  }

  async totals(): Promise<{ currency: string; sum: bigint; pendingSum: bigint; accounts: number }[]> {
    return this.snapshot("totals", () => {
      const out = new Map<string, { currency: string; sum: bigint; pendingSum: bigint; accounts: number }>();
      for (const row of this.#s.allAccounts.iterate()) {
        const a = toAccount(row);
        let t = out.get(a.currency);
        if (t === undefined) {
          t = { currency: a.currency, sum: 0n, pendingSum: 0n, accounts: 0 };
          out.set(a.currency, t);
        }
        t.sum += a.creditsPosted - a.debitsPosted;
        t.pendingSum += a.creditsPending - a.debitsPending;
        t.accounts++;
      }
      return [...out.values()];
    });
  }

  async verifyJournal(): Promise<{ rows: number; firstBad: number | undefined }> {
    return this.snapshot("verifyJournal", () => verifyChain(this.#s.journalAll.iterate()));
  }

  async journal(fromSeq: number, limit: number): Promise<JournalRecord[]> {
    checkTime("journal", fromSeq, "fromSeq");
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_PAGE_ENTRIES) {
      throw this.#bad("journal", `limit must be 0 to ${MAX_PAGE_ENTRIES}, not ${limit}`);
    }
    return this.#db.read("journal", () => this.#s.journalPage.all(fromSeq, limit).map(toJournal));
  }

  // --- inside a transaction -----------------------------------------------------------------

  #bad(op: string, message: string): ParallaxError {
    return new ParallaxError(ErrorCode.BAD_ARGUMENT, `${op}: ${message}`);
  }

  #account(number: number): BankAccountRecord | undefined {
    if (!this.#inGroup) {
      const row = this.#s.account.get(number);
      return row && toAccount(row);
    }
    const known = this.#accounts.get(number);
    if (known !== undefined) return known;
    const row = this.#s.account.get(number);
    if (row === undefined) return undefined;
    const a = toAccount(row);
    this.#accounts.set(number, a);
    return a;
  }

  /** Drops what the group cache holds (see `#accounts`). */
  #forget(): void {
    this.#accounts.clear();
    this.#head = undefined;
  }

  #cash(currency: string): BankAccountRecord {
    const found = this.#s.cash.get(currency);
    if (found !== undefined) return toAccount(found);
    const row = this.#s.insertAccount.get(
      currency,
      `cash ${currency}`,
      "cash",
      null,
      null,
      0,
      this.#db.now(),
    );
    return toAccount(row as AccountRow);
  }

  /**
   * The actor's login (REVOKED unless current) and, with a grant, the grant (REVOKED unless the
   * employee is still employed at that grant epoch); the grant's role's permissions.
   */
  #authorize(actor: BankActor): Permissions | undefined {
    this.#db.assertCurrent(actor.identityId, actor.epoch);
    if (actor.grant === undefined) return undefined;
    const { orgId, grantEpoch } = actor.grant;
    const grant = this.#s.grant.get(orgId, actor.identityId);
    if (grant === undefined || grant.role === null || grant.grant_epoch !== BigInt(grantEpoch)) {
      throw new ParallaxError(
        ErrorCode.REVOKED,
        "this employee's grant changed (role changed or removed) since the facet was handed out",
      );
    }
    const role = this.#s.role.get(orgId, grant.role);
    if (role === undefined) throw storageError(`organization ${orgId} lost its role ${grant.role}`);
    return toRole(role).permissions;
  }

  /** Bank staff (an actor without a grant) or the operator (no actor). */
  #assertStaff(op: string, actor: BankActor | undefined): void {
    if (actor === undefined) return;
    if (this.#authorize(actor) !== undefined)
      throw denied(`${op}: accounts and organizations are opened by bank staff`);
  }

  /** The operator, bank staff, or an employee of `orgId` whose role has `manage`. */
  #assertManager(op: string, orgId: number, actor: BankActor | undefined): void {
    const role = actor === undefined ? undefined : this.#authorize(actor);
    if (actor?.grant !== undefined) {
      if (actor.grant.orgId !== orgId) throw denied(`${op}: this grant is of another organization`);
      if (!role?.manage) throw denied(`${op}: this employee's role does not manage the organization`);
    }
    if (this.#s.org.get(orgId) === undefined) throw notFound(`${op}: no organization with id ${orgId}`);
  }

  #putRole(orgId: number, role: RoleRecord): void {
    const p = role.permissions;
    this.#s.upsertRole.run(
      orgId,
      role.name,
      p.view ? 1 : 0,
      p.deposit ? 1 : 0,
      p.pay ? 1 : 0,
      p.perPaymentLimit,
      p.perDayLimit,
      p.approve ? 1 : 0,
      p.manage ? 1 : 0,
    );
  }

  #setEmployee(orgId: number, identityId: number, role: string | null): number {
    const row = this.#s.setEmployee.get(role, orgId, identityId);
    return small(row?.grant_epoch ?? null, "grant epoch");
  }

  /** PERMISSION_DENIED unless `policy`'s payer may debit `debit` (see `PaymentPolicy`). */
  #assertPayer(
    op: string,
    policy: PaymentPolicy,
    debit: BankAccountRecord,
    actor: BankActor,
    role?: Permissions,
  ) {
    const payer = policy.payer;
    const n = debit.number;
    if ("ownerId" in payer) {
      if (payer.ownerId !== actor.identityId)
        throw denied(`${op}: a private account pays only for its owner`);
      if (debit.kind !== "private" || debit.ownerId !== payer.ownerId) {
        throw denied(`${op}: account ${n} is not the payer's own`);
      }
    } else if ("orgId" in payer) {
      if (actor.grant?.orgId !== payer.orgId || role === undefined) {
        throw denied(`${op}: an organization's account pays only through a grant of that organization`);
      }
      if (debit.kind !== "organization" || debit.orgId !== payer.orgId) {
        throw denied(`${op}: account ${n} is not an account of organization ${payer.orgId}`);
      }
      if (!role.pay) throw denied(`${op}: this employee's role does not pay`);
    } else {
      if (actor.grant !== undefined) throw denied(`${op}: cash movements are made by bank staff`);
      if ("cash" in payer && debit.kind !== "cash")
        throw denied(`${op}: account ${n} is not the bank's cash account`);
      if ("counter" in payer && debit.kind === "cash")
        throw denied(`${op}: a withdrawal is from a customer's account`);
    }
  }

  #assertPayee(op: string, policy: PaymentPolicy, credit: BankAccountRecord): void {
    const org = policy.payeeOrgId;
    if (org !== undefined && (credit.kind !== "organization" || credit.orgId !== org)) {
      throw denied(`${op}: account ${credit.number} is not an account of organization ${org}`);
    }
    if ("counter" in policy.payer && credit.kind !== "cash") {
      throw denied(`${op}: a withdrawal at the counter pays into the bank's cash account`);
    }
  }

  /** `exists`, `existsWithDifferent` or a pending request's `pendingApproval` if `id` is taken. */
  #taken(id: Uint8Array, want: Wanted): TransferResult | undefined {
    const t = this.#s.transfer.get(id);
    if (t !== undefined) {
      const stored: Wanted = {
        to: small(t.credit_account, "account number"),
        amount: t.amount,
        currency: t.currency,
        memo: t.memo,
        from: small(t.debit_account, "account number"),
        kind: t.kind,
        holdId: t.hold_id,
      };
      const field = firstDifference(stored, want);
      return field === undefined
        ? { kind: "exists", receipt: toReceipt(t) }
        : { kind: "existsWithDifferent", field };
    }
    const r = this.#s.request.get(id);
    if (r === undefined) return undefined;
    const request = toRequest(r);
    const field = firstDifference({ ...request.transfer, kind: "single", holdId: null }, want);
    if (field !== undefined) return { kind: "existsWithDifferent", field };
    // Approved requests have their transfer row (found above); pending and rejected ones answer the request.
    return { kind: "pendingApproval", request };
  }

  /** One payment (a transfer, a batch leg or a hold) under `policy`, after `#authorize`. */
  #pay(
    input: TransferInput,
    policy: PaymentPolicy,
    actor: BankActor,
    role: Permissions | undefined,
    now: number,
    mode: Mode,
  ): TransferResult {
    const op = mode.kind === "hold" ? "openHold" : mode.kind === "batch" ? "transferBatch" : "transfer";
    const debit = this.#account(input.from);
    if (debit === undefined) return { kind: "accountNotFound", number: input.from };
    this.#assertPayer(op, policy, debit, actor, role);
    const kind: TransferKind = mode.kind === "hold" ? "holdOpened" : "single";
    const seen = this.#taken(input.id, { ...input, kind, holdId: null });
    if (seen !== undefined) return seen;
    if (input.from === input.to) return { kind: "sameAccount" };
    const credit = this.#account(input.to);
    if (credit === undefined) return { kind: "accountNotFound", number: input.to };
    if (debit.currency !== input.currency) return { kind: "currencyMismatch", currency: debit.currency };
    if (credit.currency !== input.currency) return { kind: "currencyMismatch", currency: credit.currency };
    this.#assertPayee(op, policy, credit);

    let limit: { orgId: number; identityId: number } | undefined;
    if ("orgId" in policy.payer && role !== undefined) {
      const orgId = policy.payer.orgId;
      limit = { orgId, identityId: actor.identityId };
      const exceeded = this.#limits(orgId, actor.identityId, role, input.amount, now);
      if (exceeded !== undefined) return exceeded;
      const threshold = this.#s.org.get(orgId)?.approval_threshold ?? 0n;
      if (threshold > 0n && input.amount > threshold) {
        if (mode.kind !== "single") {
          throw denied(
            `${op}: a payment above the organization's approval threshold (${threshold}) is made alone, ` +
              "to wait for approval",
          );
        }
        this.#s.insertRequest.run(
          input.id,
          orgId,
          actor.identityId,
          input.from,
          input.to,
          input.amount,
          input.currency,
          input.memo,
          now,
        );
        return { kind: "pendingApproval", request: toRequest(this.#s.request.get(input.id) as RequestRow) };
      }
    }

    const refused = refusal(debit, credit, input.amount);
    if (refused !== undefined) return refused;
    const hold = mode.kind === "hold" ? { expiresAt: now + mode.timeoutMs } : undefined;
    const receipt = this.#record(input, debit, credit, kind, hold ? "pending" : "posted", actor, now, {
      makerId: null,
      limit,
      hold,
    });
    return { kind: "applied", receipt };
  }

  /** An employee's per-payment and per-day limits for `amount` (0n = none). */
  #limits(
    orgId: number,
    identityId: number,
    role: Permissions,
    amount: bigint,
    now: number,
  ): TransferResult | undefined {
    if (role.perPaymentLimit > 0n && amount > role.perPaymentLimit) {
      return { kind: "limitExceeded", limit: { kind: "perPayment", limit: role.perPaymentLimit, used: 0n } };
    }
    if (role.perDayLimit > 0n) {
      const used = this.#usedToday(orgId, identityId, now);
      if (used + amount > role.perDayLimit) {
        return { kind: "limitExceeded", limit: { kind: "perDay", limit: role.perDayLimit, used } };
      }
    }
    return undefined;
  }

  /**
   * What the employee paid from the organization's accounts since the start of the UTC day of
   * `now`: transfers and holds opened (a hold counts when opened, whatever later happens to it),
   * approved requests they made (counted at approval), and requests still pending (so that
   * approvals cannot lift the day over the limit).
   */
  #usedToday(orgId: number, identityId: number, now: number): bigint {
    const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
    try {
      return (
        (this.#s.usedByTransfers.get(orgId, identityId, dayStart)?.used ?? 0n) +
        (this.#s.usedByRequests.get(orgId, identityId, dayStart)?.used ?? 0n)
      );
    } catch (err) {
      // SUM past 2^63 − 1: more than any limit.
      if (err instanceof Database.SqliteError && /overflow/i.test(err.message)) return MAX_AMOUNT + 1n;
      throw err;
    }
  }

  /**
   * Applies a checked transfer to its accounts' totals (`posted` or, for a hold, `pending`) and
   * writes its journal row and its transfer row; its receipt.
   */
  #record(
    t: TransferInput,
    debit: BankAccountRecord,
    credit: BankAccountRecord,
    kind: TransferKind,
    effect: Effect,
    actor: BankActor,
    now: number,
    extra: {
      readonly makerId: number | null;
      readonly limit?: { readonly orgId: number; readonly identityId: number } | undefined;
      readonly hold?: { readonly expiresAt: number } | undefined;
      readonly holdId?: Uint8Array;
    },
  ): Receipt {
    if (effect === "posted") {
      this.#saveTotals(debit, { debitsPosted: debit.debitsPosted + t.amount });
      this.#saveTotals(credit, { creditsPosted: credit.creditsPosted + t.amount });
    } else {
      this.#saveTotals(debit, { debitsPending: debit.debitsPending + t.amount });
      this.#saveTotals(credit, { creditsPending: credit.creditsPending + t.amount });
    }
    return this.#write(t, kind, actor, now, extra);
  }

  /** Writes the journal row and the transfer row of an event whose totals are already saved. */
  #write(
    t: TransferInput,
    kind: TransferKind,
    actor: BankActor,
    now: number,
    extra: {
      readonly makerId: number | null;
      readonly limit?: { readonly orgId: number; readonly identityId: number } | undefined;
      readonly hold?: { readonly expiresAt: number } | undefined;
      readonly holdId?: Uint8Array;
    },
  ): Receipt {
    const head = (this.#inGroup ? this.#head : undefined) ?? this.#s.journalHead.get();
    const seq = head === undefined ? 1n : head.seq + 1n;
    const prevHash = head === undefined ? GENESIS_HASH : head.hash;
    const row = {
      seq,
      transfer_id: t.id,
      kind,
      debit_account: BigInt(t.from),
      credit_account: BigInt(t.to),
      amount: t.amount,
      currency: t.currency,
      at: BigInt(now),
      identity_id: BigInt(actor.identityId),
      perspective: actor.perspective,
      facet: actor.facet,
      maker_id: extra.makerId === null ? null : BigInt(extra.makerId),
      memo: t.memo,
    };
    const hash = journalHash(prevHash, row);
    this.#s.insertJournal.run(
      seq,
      t.id,
      kind,
      t.from,
      t.to,
      t.amount,
      t.currency,
      now,
      actor.identityId,
      actor.perspective,
      actor.facet,
      extra.makerId,
      t.memo,
      prevHash,
      hash,
    );
    if (this.#inGroup) this.#head = { seq, hash };
    this.#s.insertTransfer.run(
      t.id,
      kind,
      t.from,
      t.to,
      t.amount,
      t.currency,
      t.memo,
      now,
      seq,
      extra.holdId ?? null,
      extra.hold ? "open" : null,
      extra.hold ? extra.hold.expiresAt : null,
      extra.limit?.orgId ?? null,
      extra.limit?.identityId ?? null,
    );
    return {
      id: new Uint8Array(t.id),
      from: t.from,
      to: t.to,
      amount: t.amount,
      currency: t.currency,
      at: now,
      journalSeq: small(seq, "journal seq"),
      kind,
    };
  }

  #saveTotals(
    a: BankAccountRecord,
    change: Partial<
      Pick<BankAccountRecord, "debitsPosted" | "creditsPosted" | "debitsPending" | "creditsPending">
    >,
  ): void {
    const next = { ...a, ...change };
    for (const v of [next.debitsPosted, next.creditsPosted, next.debitsPending, next.creditsPending]) {
      // Unreachable after `refusal`; kept so that no bug can store a total out of range.
      if (v < 0n || v > MAX_AMOUNT) throw storageError(`account ${a.number}: a total would leave its range`);
    }
    this.#s.saveTotals.run(
      next.debitsPosted,
      next.creditsPosted,
      next.debitsPending,
      next.creditsPending,
      a.number,
    );
    if (this.#inGroup) this.#accounts.set(a.number, next);
  }

  /** Posts (`amount`, 0n = all) or voids the hold `holdId` under the new transfer id `id`. */
  #closeHold(
    op: string,
    holdId: Uint8Array,
    id: Uint8Array,
    amount: bigint,
    actor: BankActor,
    now: number,
    kind: "holdPosted" | "holdVoided",
  ): TransferResult {
    const hold = this.#s.transfer.get(holdId);
    if (hold === undefined || hold.kind !== "holdOpened")
      throw notFound(`${op}: no hold with id ${hex(holdId)}`);
    const effective = kind === "holdPosted" && amount > 0n ? amount : hold.amount;
    const seen = this.#taken(id, {
      to: small(hold.credit_account, "account number"),
      amount: effective,
      currency: hold.currency,
      memo: hold.memo,
      from: small(hold.debit_account, "account number"),
      kind,
      holdId,
    });
    if (seen !== undefined) return seen;
    const state = hold.hold_state;
    if (state !== "open") return { kind: "holdNotOpen", state: state as "posted" | "voided" | "expired" };
    if (small(hold.expires_at, "expiry") <= now) return { kind: "holdNotOpen", state: "expired" };
    if (effective > hold.amount) {
      throw this.#bad(op, `the amount to post (${effective}) is more than the hold's ${hold.amount}`);
    }
    const posted = kind === "holdPosted" ? effective : 0n;
    return { kind: "applied", receipt: this.#release(hold, id, posted, actor, now, kind) };
  }

  /**
   * Closes an open hold: releases its pending totals, posts `posted` of it (0n for a void or an
   * expiry) and records the closing event under `id`.
   */
  #release(
    hold: TransferRow,
    id: Uint8Array,
    posted: bigint,
    actor: BankActor,
    now: number,
    kind: "holdPosted" | "holdVoided" | "holdExpired",
  ): Receipt {
    const from = small(hold.debit_account, "account number");
    const to = small(hold.credit_account, "account number");
    const debit = this.#account(from);
    const credit = this.#account(to);
    if (debit === undefined || credit === undefined)
      throw storageError(`hold ${hex(hold.id)} lost an account`);
    this.#saveTotals(debit, {
      debitsPending: debit.debitsPending - hold.amount,
      debitsPosted: debit.debitsPosted + posted,
    });
    this.#saveTotals(credit, {
      creditsPending: credit.creditsPending - hold.amount,
      creditsPosted: credit.creditsPosted + posted,
    });
    const state = kind === "holdPosted" ? "posted" : kind === "holdVoided" ? "voided" : "expired";
    if (this.#s.closeHold.run(state, hold.id).changes !== 1)
      throw storageError(`hold ${hex(hold.id)} is not open`);
    const event: TransferInput = {
      id,
      from,
      to,
      amount: kind === "holdPosted" ? posted : hold.amount,
      currency: hold.currency,
      memo: hold.memo,
    };
    return this.#write(event, kind, actor, now, { makerId: null, holdId: hold.id });
  }

  /** A random transfer id no transfer or payment request uses (an expiry's own id). */
  #freshId(): Uint8Array {
    for (;;) {
      const id = new Uint8Array(randomBytes(16));
      if (this.#s.transfer.get(id) === undefined && this.#s.request.get(id) === undefined) return id;
    }
  }
}

/** `overflow` if a total of either account would pass 2^63 − 1, else `insufficientFunds` if the debit may not overdraw. */
function refusal(
  debit: BankAccountRecord,
  credit: BankAccountRecord,
  amount: bigint,
): TransferResult | undefined {
  const debits = debit.debitsPosted + debit.debitsPending + amount;
  if (debits > MAX_AMOUNT) return { kind: "overflow" };
  if (credit.creditsPosted + credit.creditsPending + amount > MAX_AMOUNT) return { kind: "overflow" };
  if (debit.noOverdraft && debits > debit.creditsPosted) {
    return {
      kind: "insufficientFunds",
      available: debit.creditsPosted - debit.debitsPosted - debit.debitsPending,
    };
  }
  return undefined;
}

function samePermissions(a: Permissions, b: Permissions): boolean {
  return (
    a.view === b.view &&
    a.deposit === b.deposit &&
    a.pay === b.pay &&
    a.perPaymentLimit === b.perPaymentLimit &&
    a.perDayLimit === b.perDayLimit &&
    a.approve === b.approve &&
    a.manage === b.manage
  );
}

function hex(id: Uint8Array): string {
  return Buffer.from(id).toString("hex");
}
