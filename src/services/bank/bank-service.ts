/**
 * The bank (seed 001) on the service kit: a double-entry ledger (`BankStore`) reached only
 * through capabilities. ("bank", "customer") hands a user their PrivateAccounts; ("bank",
 * "employee") the facets their roles grant on their organizations' accounts; ("bank", "banker")
 * — on bank staff's keyrings — opens accounts and organizations and moves cash.
 *
 * Invariants:
 * - Who pays is the capability a call is made on, never an argument: a PrivateAccount pays from
 *   its owner's account and answers only its owner; a Payer facet pays from its organization's
 *   account within the employee's role. Every write names its actor (login and, for facets, the
 *   grant), which the store checks inside the transaction.
 * - A facet belongs to one grant (organization, employee, grant epoch): when the employee's role
 *   changes or they are removed, every facet of the old grant fails with PARALLAX_ERR_REVOKED at
 *   once, on every connection (checked on each call, pipelined ones included), and its watchers
 *   go; the employee's other logins and private accounts stay.
 * - Maker-checker: a payment above the organization's threshold answers `pendingApproval` with a
 *   PendingPayment whose `wait()` answers when another employee with `approve` decides it.
 * - Watchers hear every committed change of their account through a bounded Notifier, after the
 *   change is durable; changes travel on the bus (`BANK_CHANGED`), so another node's commit
 *   reaches this node's watchers once the bus crosses nodes.
 * - Holds expire on the clock by themselves.
 *
 * Tests: test/services/bank/
 */
import { type CallContext, type Capability, localServerOf } from "../../caps/index.js";
import type { Clock, Timer } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  callerIdentity,
  type DetachReason,
  type EventBus,
  type IdentityView,
  Notifier,
  PerUserService,
  type ServiceHost,
  type ServiceModule,
  topic,
  UserPerspective,
} from "../../login/index.js";
import {
  BANK_STORE,
  type BankAccountRecord,
  type BankActor,
  type BankStore,
  type BrokerStore,
  type EmploymentRecord,
  type PaymentPolicy,
  type PaymentRequestRecord,
  type Receipt,
  type TransferInput,
  type TransferResult,
} from "../../store/index.js";
import {
  type AccountListener,
  AccountView,
  type AccountView$Server,
  type AccountView_statement_Params,
  type AccountView_watch_Params,
  Approver,
  type Approver$Server,
  type Approver_approve_Params,
  type Approver_reject_Params,
  Banker,
  type Banker$Server,
  type Banker_deposit_Params,
  type Banker_openAccount_Params,
  type Banker_openOrganization_Params,
  type Banker_openOrganizationAccount_Params,
  type Banker_withdraw_Params,
  Customer,
  type Customer$Server,
  Depositor,
  type Depositor$Server,
  type Depositor_deposit_Params,
  Employee,
  type Employee$Server,
  Hold,
  type Hold$Server,
  type Hold_post_Params,
  type Hold_void_Params,
  OrgManager,
  type OrgManager$Server,
  type OrgManager_defineRole_Params,
  type OrgManager_removeEmployee_Params,
  type OrgManager_setApprovalThreshold_Params,
  type OrgManager_setRole_Params,
  Payer,
  type Payer$Server,
  type Payer_hold_Params,
  type Payer_pay_Params,
  type Payer_payBatch_Params,
  type PaymentRequest$Shape,
  type PendingPayment$Server,
  PrivateAccount,
  type PrivateAccount$Server,
  type TransferOutcome$Shape,
} from "../../wire/gen/bank.js";
import { BANK_BANKER, BANK_CUSTOMER, BANK_EMPLOYEE } from "./bank-keys.js";
import {
  accountInfo,
  outcome,
  readAccountNumber,
  readAmount,
  readCurrency,
  readId,
  readMemo,
  readName,
  readRange,
  readRole,
  readTransfer,
  receipt,
  statement,
} from "./bank-wire.js";

export interface BankOptions {
  /** Most entries one statement returns (it says `truncated` beyond). Default 1000. */
  readonly maxStatementEntries?: number;
  /** Most legs in one `payBatch`. Default 64. */
  readonly maxBatchLegs?: number;
  /** Watchers one attachment may register. Default 8. */
  readonly maxWatchersPerAttachment?: number;
  /** Unanswered changes one watcher may have before more are dropped. Default 32. */
  readonly maxNotificationsInFlight?: number;
  /** Shortest and longest hold timeout, in ms. Default 1 s and 7 days. */
  readonly minHoldMs?: number;
  readonly maxHoldMs?: number;
  /** How often holds opened elsewhere (another process) are swept for expiry, in ms. Default 60 s. */
  readonly holdSweepMs?: number;
}

/** A committed change of the ledger (JSON-compatible: amounts are decimal strings). */
interface ChangedEvent {
  readonly accounts: readonly number[];
  readonly receipt: {
    readonly id: string;
    readonly from: number;
    readonly to: number;
    readonly amount: string;
    readonly currency: string;
    readonly at: number;
    readonly journalSeq: number;
    readonly kind: Receipt["kind"];
  };
}

/** An employee's grant changed (new role or removed): facets of older grant epochs die. */
interface GrantEvent {
  readonly orgId: number;
  readonly identityId: number;
  readonly grantEpoch: number;
}

/** A payment request was decided (so its maker's `wait()` can answer). */
interface DecidedEvent {
  readonly id: string;
  readonly approved: boolean;
  readonly reason: string;
}

export const BANK_CHANGED = topic<ChangedEvent>("bank.changed");
export const BANK_GRANT = topic<GrantEvent>("bank.grant");
export const BANK_DECIDED = topic<DecidedEvent>("bank.decided");

/** The bank as a module for `startBroker({ services: [bank()] })`: needs `BANK_STORE`. */
export function bank(options: BankOptions = {}): ServiceModule<BankService, BankStore> {
  return {
    name: BANK_CUSTOMER.service,
    defaultKeyring: [BANK_CUSTOMER, BANK_EMPLOYEE],
    store: BANK_STORE,
    create: (ctx) =>
      new BankService(
        { ledger: ctx.repository, identities: ctx.store, clock: ctx.clock, bus: ctx.bus, host: ctx.host },
        options,
      ),
  };
}

interface WatchEvent {
  readonly account: number;
  readonly receipt: Receipt;
}

/** A registration of one watcher, by one attachment, possibly through one grant. */
interface WatchOwner {
  readonly perspective: BankPerspective;
  readonly account: number;
  readonly grant: string | undefined;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const grantKey = (orgId: number, identityId: number): string => `${orgId}:${identityId}`;

export class BankService extends PerUserService<null, BankPerspective> {
  readonly name = BANK_CUSTOMER.service;
  readonly ledger: BankStore;
  readonly identities: BrokerStore;
  readonly clock: Clock;
  readonly host: ServiceHost;
  readonly maxStatementEntries: number;
  readonly maxBatchLegs: number;
  readonly minHoldMs: number;
  readonly maxHoldMs: number;
  readonly #bus: EventBus;
  readonly #maxWatchers: number;
  readonly #maxInFlight: number;
  /** One notifier per watched account, made on first watch, dropped when empty. */
  readonly #watchers = new Map<number, Notifier<AccountListener, WatchEvent>>();
  readonly #owners = new Set<WatchOwner>();
  /** The newest grant epoch this node knows per (organization, employee). */
  readonly #grants = new Map<string, number>();
  readonly #waiters = new Map<string, Set<(d: DecidedEvent) => void>>();
  /** Per account, the delivery in progress (deliveries to one account keep their order). */
  readonly #delivering = new Map<number, Promise<void>>();
  readonly #holdTimers = new Map<string, Timer>();
  readonly #unsubscribe: Array<() => void> = [];
  #sweep: Timer | undefined;
  #closed = false;
  readonly #holdSweepMs: number;

  constructor(
    context: {
      readonly ledger: BankStore;
      readonly identities: BrokerStore;
      readonly clock: Clock;
      readonly bus: EventBus;
      readonly host: ServiceHost;
    },
    options: BankOptions = {},
  ) {
    super();
    this.ledger = context.ledger;
    this.identities = context.identities;
    this.clock = context.clock;
    this.host = context.host;
    this.#bus = context.bus;
    this.maxStatementEntries = options.maxStatementEntries ?? 1000;
    this.maxBatchLegs = options.maxBatchLegs ?? 64;
    this.minHoldMs = options.minHoldMs ?? 1000;
    this.maxHoldMs = options.maxHoldMs ?? 7 * 24 * 3600 * 1000;
    this.#maxWatchers = options.maxWatchersPerAttachment ?? 8;
    this.#maxInFlight = options.maxNotificationsInFlight ?? 32;
    this.#holdSweepMs = options.holdSweepMs ?? 60_000;
    this.#unsubscribe.push(
      this.#bus.subscribe(BANK_CHANGED, (e) => this.#deliver(e)),
      this.#bus.subscribe(BANK_GRANT, (e) => this.#grantChanged(e)),
      this.#bus.subscribe(BANK_DECIDED, (e) => this.#decided(e)),
    );
    this.#scheduleSweep();
  }

  protected newPerspective(name: string, identity: IdentityView): BankPerspective | undefined {
    if (name === BANK_CUSTOMER.perspective) return new CustomerPerspective(this, identity);
    if (name === BANK_EMPLOYEE.perspective) return new EmployeePerspective(this, identity);
    if (name === BANK_BANKER.perspective) return new BankerPerspective(this, identity);
    return undefined;
  }

  protected newUser(): null {
    return null;
  }

  // --- changes and watchers ---------------------------------------------------------------

  /** @internal Publishes what an outcome committed, so watchers hear of it. */
  published(result: TransferResult | TransferResult[]): Promise<void> {
    if (!Array.isArray(result)) {
      return result.kind === "applied" ? this.publishReceipt(result.receipt) : Promise.resolve();
    }
    return Promise.all(result.map((r) => this.published(r))).then(() => {});
  }

  /** @internal */
  publishReceipt(r: Receipt): Promise<void> {
    return this.#bus.publish(BANK_CHANGED, {
      accounts: [r.from, r.to],
      receipt: {
        id: hex(r.id),
        from: r.from,
        to: r.to,
        amount: r.amount.toString(),
        currency: r.currency,
        at: r.at,
        journalSeq: r.journalSeq,
        kind: r.kind,
      },
    });
  }

  #deliver(e: ChangedEvent): void {
    if (!e.accounts.some((a) => this.#watchers.has(a))) return;
    const r: Receipt = {
      ...e.receipt,
      id: new Uint8Array(Buffer.from(e.receipt.id, "hex")),
      amount: BigInt(e.receipt.amount),
    };
    for (const account of e.accounts) {
      if (!this.#watchers.has(account)) continue;
      // Watchers registered through an employee's grant hear only while the grant is current,
      // whoever ended it (this broker, another process, the CLI): checked before each delivery,
      // in order per account.
      const before = this.#delivering.get(account) ?? Promise.resolve();
      const next = before
        .then(() => this.#dropStaleGrants(account))
        .then(() => this.#watchers.get(account)?.notify({ account, receipt: r }))
        .catch(() => {});
      this.#delivering.set(account, next);
      void next.then(() => {
        if (this.#delivering.get(account) === next) this.#delivering.delete(account);
      });
    }
  }

  /** Drops the watchers of `account` whose employee grant is no longer the current one. */
  async #dropStaleGrants(account: number): Promise<void> {
    const granted = [...this.#owners].filter((o) => o.account === account && o.grant !== undefined);
    for (const o of granted) {
      const [orgId, identityId, grantEpoch] = (o.grant as string).split(":").map(Number) as [
        number,
        number,
        number,
      ];
      const now = await this.ledger.employment(orgId, identityId);
      if (now === undefined || now.grantEpoch !== grantEpoch) {
        if (now !== undefined) this.noteGrant(orgId, identityId, now.grantEpoch);
        this.unwatch((x) => x === o, {
          kind: "revoked",
          message: "this employee's role in the organization changed",
        });
      }
    }
  }

  /** @internal Registers `listener` for changes of `account`, owned by `perspective` (and `grant`). */
  watch(perspective: BankPerspective, account: number, listener: AccountListener, grant?: string): void {
    const mine = [...this.#owners].filter((o) => o.perspective === perspective).length;
    if (mine >= this.#maxWatchers) {
      listener.dispose();
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this attachment watches ${mine} accounts already (at most ${this.#maxWatchers})`,
      );
    }
    let notifier = this.#watchers.get(account);
    if (notifier === undefined) {
      notifier = new Notifier<AccountListener, WatchEvent>({
        maxInFlight: this.#maxInFlight,
        maxPerOwner: 1,
        deliver: async (l, ev) => {
          const info = await this.ledger.getAccount(ev.account);
          if (info === undefined) return;
          await l.changed({ account: accountInfo(info), receipt: receipt(ev.receipt) });
        },
        dropped: (l, { count }) => l.dropped({ missed: count }),
      });
      this.#watchers.set(account, notifier);
    }
    const owner: WatchOwner = { perspective, account, grant };
    if (notifier.add(owner, listener)) this.#owners.add(owner);
  }

  /** @internal Drops the watchers `match` selects. */
  unwatch(match: (o: WatchOwner) => boolean, reason?: DetachReason): void {
    for (const o of [...this.#owners]) {
      if (!match(o)) continue;
      this.#owners.delete(o);
      const notifier = this.#watchers.get(o.account);
      notifier?.removeOwner(o, reason);
      if (notifier?.size === 0) this.#watchers.delete(o.account);
    }
  }

  /** Watchers registered (for tests and stats). */
  get watcherCount(): number {
    let n = 0;
    for (const w of this.#watchers.values()) n += w.size;
    return n;
  }

  // --- grants -------------------------------------------------------------------------------

  /** @internal Remembers the newest grant epoch seen for an employee. */
  noteGrant(orgId: number, identityId: number, grantEpoch: number): void {
    const key = grantKey(orgId, identityId);
    if (grantEpoch > (this.#grants.get(key) ?? -1)) this.#grants.set(key, grantEpoch);
  }

  /** @internal Throws REVOKED if a newer grant than `grantEpoch` is known for the employee. */
  checkGrant(orgId: number, identityId: number, grantEpoch: number): void {
    if ((this.#grants.get(grantKey(orgId, identityId)) ?? grantEpoch) > grantEpoch) {
      throw new ParallaxError(ErrorCode.REVOKED, "this employee's role in the organization changed");
    }
  }

  /** @internal Announces a grant change (this node and, through the bus, the others). */
  async grantChanged(orgId: number, identityId: number, grantEpoch: number): Promise<void> {
    this.noteGrant(orgId, identityId, grantEpoch);
    this.#dropGrant(orgId, identityId, grantEpoch);
    await this.#bus.publish(BANK_GRANT, { orgId, identityId, grantEpoch });
  }

  #grantChanged(e: GrantEvent): void {
    this.noteGrant(e.orgId, e.identityId, e.grantEpoch);
    this.#dropGrant(e.orgId, e.identityId, e.grantEpoch);
  }

  #dropGrant(orgId: number, identityId: number, grantEpoch: number): void {
    const stale = new Set<string>();
    for (let g = 0; g < grantEpoch; g++) stale.add(`${orgId}:${identityId}:${g}`);
    this.unwatch((o) => o.grant !== undefined && stale.has(o.grant), {
      kind: "revoked",
      message: "this employee's role in the organization changed",
    });
  }

  // --- maker-checker ------------------------------------------------------------------------

  /** @internal Waits for a payment request's decision. */
  waitForDecision(id: Uint8Array): Promise<DecidedEvent> {
    return new Promise<DecidedEvent>((resolve) => {
      const key = hex(id);
      let set = this.#waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(key, set);
      }
      set.add(resolve);
      // It may have been decided already (here or by another process).
      void this.ledger.paymentRequest(id).then((r) => {
        if (r !== undefined && r.state !== "pending") {
          this.#decided({ id: key, approved: r.state === "approved", reason: r.reason });
        }
      });
    });
  }

  /** @internal Announces a decision. */
  async announceDecision(id: Uint8Array, approved: boolean, reason: string): Promise<void> {
    await this.#bus.publish(BANK_DECIDED, { id: hex(id), approved, reason });
  }

  #decided(e: DecidedEvent): void {
    const set = this.#waiters.get(e.id);
    if (set === undefined) return;
    this.#waiters.delete(e.id);
    for (const w of set) w(e);
  }

  // --- holds --------------------------------------------------------------------------------

  /** @internal Voids the hold by itself once it expires. */
  scheduleExpiry(holdId: Uint8Array, expiresAt: number): void {
    const key = hex(holdId);
    this.#holdTimers.get(key)?.cancel();
    const timer = this.clock.setTimer(Math.max(0, expiresAt - this.clock.now()), () => {
      this.#holdTimers.delete(key);
      void this.expireHolds();
    });
    this.#holdTimers.set(key, timer);
  }

  /** Voids every expired hold now and tells watchers. */
  async expireHolds(): Promise<void> {
    if (this.#closed) return;
    const receipts = await this.ledger.expireHolds(this.clock.now());
    for (const r of receipts) await this.publishReceipt(r);
  }

  #scheduleSweep(): void {
    if (this.#closed) return;
    this.#sweep = this.clock.setTimer(this.#holdSweepMs, () => {
      void this.expireHolds()
        .catch(() => {})
        .finally(() => this.#scheduleSweep());
    });
  }

  close(): void {
    this.#closed = true;
    this.#sweep?.cancel();
    for (const t of this.#holdTimers.values()) t.cancel();
    this.#holdTimers.clear();
    for (const u of this.#unsubscribe) u();
    this.unwatch(() => true);
  }

  // --- shared helpers -----------------------------------------------------------------------

  /** @internal The actor of a call made by `who` through `perspective`'s `facet`. */
  actor(
    who: IdentityView,
    perspective: string,
    facet: string,
    grant?: { orgId: number; grantEpoch: number },
  ): BankActor {
    return { identityId: who.id, epoch: who.epoch, perspective, facet, grant };
  }

  /** @internal Builds the wire form of an outcome, making PendingPayments for requests. */
  wire(result: TransferResult, maker: IdentityView): TransferOutcome$Shape {
    return outcome(result, (request) => new PendingPaymentServer(this, request, maker));
  }
}

/** The perspectives of the bank: one per attachment. */
abstract class BankPerspective extends UserPerspective<null> {
  constructor(
    readonly bank: BankService,
    identity: IdentityView,
  ) {
    super(bank, identity);
  }

  protected override onDetached(reason: DetachReason): void {
    this.bank.unwatch((o) => o.perspective === this, reason);
  }

  /** @internal The caller of a capability this perspective handed out: must be its user. */
  ownerOf(ctx: CallContext): IdentityView {
    return this.caller(ctx);
  }
}

// --- customers ------------------------------------------------------------------------------

export class CustomerPerspective extends BankPerspective implements Customer$Server {
  capability(): Customer {
    return Customer.server(this.serve<Customer$Server>());
  }

  async accounts() {
    const accounts = await this.bank.ledger.accountsOf({ ownerId: this.identity.id });
    return {
      accounts: accounts.map((a) => ({
        info: accountInfo(a),
        account: PrivateAccount.server(new PrivateAccountServer(this, a.number)),
      })),
    };
  }
}

/** Reading one account, for whoever `guard` lets through. */
class AccountReader implements AccountView$Server {
  constructor(
    readonly perspective: BankPerspective,
    readonly account: number,
    /** The grant a facet belongs to ("org:identity:epoch"), for revocation of its watchers. */
    readonly grant: string | undefined,
    readonly guard: (ctx: CallContext) => Promise<IdentityView>,
  ) {}

  get bank(): BankService {
    return this.perspective.bank;
  }

  async info(_p: unknown, ctx: CallContext) {
    await this.guard(ctx);
    const a = await this.bank.ledger.getAccount(this.account);
    if (a === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no account ${this.account}`);
    return { info: accountInfo(a) };
  }

  async statement(params: AccountView_statement_Params, ctx: CallContext) {
    await this.guard(ctx);
    const { from, to } = readRange(params.from, params.to);
    const s = await this.bank.ledger.statement(
      this.account,
      from,
      to,
      this.bank.maxStatementEntries,
      this.bank.clock.now(),
    );
    return { statement: statement(s) };
  }

  async watch(params: AccountView_watch_Params, ctx: CallContext) {
    await this.guard(ctx);
    this.bank.watch(this.perspective, this.account, params.listener, this.grant);
  }
}

/** A customer's own account: only its owner may call it (a reference passed on refuses others). */
class PrivateAccountServer implements PrivateAccount$Server {
  readonly #reader: AccountReader;

  constructor(
    readonly owner: CustomerPerspective,
    readonly number: number,
  ) {
    this.#reader = new AccountReader(owner, number, undefined, async (ctx) => owner.ownerOf(ctx));
  }

  get #bank(): BankService {
    return this.owner.bank;
  }

  #policy(): PaymentPolicy {
    return { payer: { ownerId: this.owner.identity.id } };
  }

  info(p: unknown, ctx: CallContext) {
    return this.#reader.info(p, ctx);
  }

  statement(p: AccountView_statement_Params, ctx: CallContext) {
    return this.#reader.statement(p, ctx);
  }

  watch(p: AccountView_watch_Params, ctx: CallContext) {
    return this.#reader.watch(p, ctx);
  }

  async pay(params: Payer_pay_Params, ctx: CallContext) {
    const who = this.owner.ownerOf(ctx);
    return { outcome: await pay(this.#bank, who, "customer", "pay", this.number, params, this.#policy()) };
  }

  async payBatch(params: Payer_payBatch_Params, ctx: CallContext) {
    const who = this.owner.ownerOf(ctx);
    return {
      outcomes: await payBatch(this.#bank, who, "customer", "pay", this.number, params, this.#policy()),
    };
  }

  async hold(params: Payer_hold_Params, ctx: CallContext) {
    const who = this.owner.ownerOf(ctx);
    return openHold(this.#bank, who, this.owner, "customer", this.number, params, this.#policy());
  }
}

// --- shared payment paths -------------------------------------------------------------------

async function pay(
  bank: BankService,
  who: IdentityView,
  perspective: string,
  facet: string,
  from: number,
  params: Payer_pay_Params,
  policy: PaymentPolicy,
  grant?: { orgId: number; grantEpoch: number },
): Promise<TransferOutcome$Shape> {
  const input = readTransfer(params.transfer, from);
  const result = await bank.ledger.transfer(
    input,
    policy,
    bank.actor(who, perspective, facet, grant),
    bank.clock.now(),
  );
  await bank.published(result);
  return bank.wire(result, who);
}

async function payBatch(
  bank: BankService,
  who: IdentityView,
  perspective: string,
  facet: string,
  from: number,
  params: Payer_payBatch_Params,
  policy: PaymentPolicy,
  grant?: { orgId: number; grantEpoch: number },
): Promise<TransferOutcome$Shape[]> {
  const list = params.transfers;
  if (list.getLength() === 0 || list.getLength() > bank.maxBatchLegs) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a batch has 1 to ${bank.maxBatchLegs} transfers; got ${list.getLength()}`,
    );
  }
  const inputs: TransferInput[] = list.toArray().map((t) => readTransfer(t, from));
  const results = await bank.ledger.transferBatch(
    inputs,
    policy,
    bank.actor(who, perspective, facet, grant),
    bank.clock.now(),
  );
  await bank.published(results);
  return results.map((r) => bank.wire(r, who));
}

async function openHold(
  bank: BankService,
  who: IdentityView,
  perspective: BankPerspective,
  perspectiveName: string,
  from: number,
  params: Payer_hold_Params,
  policy: PaymentPolicy,
  grant?: { orgId: number; grantEpoch: number },
) {
  const input = readTransfer(params.transfer, from);
  const timeoutMs = params.timeoutMs;
  if (timeoutMs < bank.minHoldMs || timeoutMs > bank.maxHoldMs) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a hold's timeout is ${bank.minHoldMs} ms to ${bank.maxHoldMs} ms; got ${timeoutMs}`,
    );
  }
  const now = bank.clock.now();
  const actor = bank.actor(who, perspectiveName, "pay", grant);
  const result = await bank.ledger.openHold(input, timeoutMs, policy, actor, now);
  await bank.published(result);
  let hold: Hold | null = null;
  if (result.kind === "applied" || result.kind === "exists") {
    const held = result.receipt;
    bank.scheduleExpiry(held.id, now + timeoutMs);
    hold = Hold.server(new HoldServer(bank, perspective, held.id, perspectiveName, grant));
  }
  return { outcome: bank.wire(result, who), hold };
}

/** An open two-phase transfer, held by whoever opened it. */
class HoldServer implements Hold$Server {
  constructor(
    private readonly bank: BankService,
    private readonly perspective: BankPerspective,
    private readonly holdId: Uint8Array,
    private readonly perspectiveName: string,
    private readonly grant: { orgId: number; grantEpoch: number } | undefined,
  ) {}

  #who(ctx: CallContext): IdentityView {
    const who = this.perspective.ownerOf(ctx);
    if (this.grant !== undefined) this.bank.checkGrant(this.grant.orgId, who.id, this.grant.grantEpoch);
    return who;
  }

  async post(params: Hold_post_Params, ctx: CallContext) {
    const who = this.#who(ctx);
    const id = readId(params.id);
    const amount = readAmount(params.amount, "amount", true);
    const result = await this.bank.ledger.postHold(
      this.holdId,
      id,
      amount,
      this.bank.actor(who, this.perspectiveName, "pay", this.grant),
      this.bank.clock.now(),
    );
    await this.bank.published(result);
    return { outcome: this.bank.wire(result, who) };
  }

  async void(params: Hold_void_Params, ctx: CallContext) {
    const who = this.#who(ctx);
    const id = readId(params.id);
    const result = await this.bank.ledger.voidHold(
      this.holdId,
      id,
      this.bank.actor(who, this.perspectiveName, "pay", this.grant),
      this.bank.clock.now(),
    );
    await this.bank.published(result);
    return { outcome: this.bank.wire(result, who) };
  }

  async info(_p: unknown, ctx: CallContext) {
    this.#who(ctx);
    const h = await this.bank.ledger.getHold(this.holdId);
    if (h === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, "no such hold");
    return { receipt: receipt(h.receipt), open: h.state === "open", expiresAt: BigInt(h.expiresAt) };
  }
}

/** A payment waiting for a checker, held by the employee who made it. */
class PendingPaymentServer implements PendingPayment$Server {
  constructor(
    private readonly bank: BankService,
    private readonly request: PaymentRequestRecord,
    private readonly maker: IdentityView,
  ) {}

  #check(ctx: CallContext): void {
    const who = callerIdentity(ctx);
    if (who.id !== this.maker.id) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "this payment request belongs to another employee",
      );
    }
  }

  async wait(_p: unknown, ctx: CallContext) {
    this.#check(ctx);
    const decision = await this.bank.waitForDecision(this.request.id);
    if (!decision.approved) {
      throw new ParallaxError(
        ErrorCode.REJECTED,
        `the payment was rejected${decision.reason === "" ? "" : `: ${decision.reason}`}`,
      );
    }
    const done = await this.bank.ledger.receiptOf(this.request.id);
    if (done === undefined)
      throw new ParallaxError(ErrorCode.NOT_FOUND, "the approved payment's receipt is gone");
    return { outcome: { applied: receipt(done) } };
  }

  info(_p: unknown, ctx: CallContext) {
    this.#check(ctx);
    return { payment: paymentRequest(this.request) };
  }
}

function paymentRequest(r: PaymentRequestRecord): PaymentRequest$Shape {
  return {
    id: r.id,
    account: BigInt(r.transfer.from),
    to: BigInt(r.transfer.to),
    amount: r.transfer.amount,
    currency: r.transfer.currency,
    memo: r.transfer.memo,
    maker: r.makerName,
    at: BigInt(r.at),
  };
}

// --- employees ------------------------------------------------------------------------------

/** One employee's grant in one organization, shared by the facets handed out for it. */
class GrantFacets {
  readonly key: string;

  constructor(
    readonly perspective: EmployeePerspective,
    readonly employment: EmploymentRecord,
  ) {
    this.key = `${employment.org.id}:${employment.identityId}:${employment.grantEpoch}`;
  }

  get bank(): BankService {
    return this.perspective.bank;
  }

  get grant(): { orgId: number; grantEpoch: number } {
    return { orgId: this.employment.org.id, grantEpoch: this.employment.grantEpoch };
  }

  /**
   * The caller, who must be this employee with this grant still current: checked against what
   * this node knows at once, and against the store for reads (writes check it in their
   * transaction), so a role changed by another process is caught too.
   */
  async check(ctx: CallContext, read: boolean): Promise<IdentityView> {
    const who = this.perspective.ownerOf(ctx);
    const { orgId, grantEpoch } = this.grant;
    this.bank.checkGrant(orgId, who.id, grantEpoch);
    if (read) {
      const now = await this.bank.ledger.employment(orgId, who.id);
      if (now === undefined || now.grantEpoch !== grantEpoch) {
        if (now !== undefined) this.bank.noteGrant(orgId, who.id, now.grantEpoch);
        throw new ParallaxError(ErrorCode.REVOKED, "this employee's role in the organization changed");
      }
    }
    return who;
  }
}

export class EmployeePerspective extends BankPerspective implements Employee$Server {
  capability(): Employee {
    return Employee.server(this.serve<Employee$Server>());
  }

  async employments() {
    const jobs = await this.bank.ledger.employmentsOf(this.identity.id);
    const out = [];
    for (const job of jobs) {
      this.bank.noteGrant(job.org.id, job.identityId, job.grantEpoch);
      const g = new GrantFacets(this, job);
      const p = job.role.permissions;
      const accounts = await this.bank.ledger.accountsOf({ orgId: job.org.id });
      out.push({
        organization: {
          id: BigInt(job.org.id),
          name: job.org.name,
          approvalThreshold: job.org.approvalThreshold,
          // Without `view` the role learns which accounts there are (to deposit into, to pay
          // from), not what they hold.
          accounts: accounts.map((a) =>
            p.view
              ? accountInfo(a)
              : { ...accountInfo(a), balance: 0n, pendingDebits: 0n, pendingCredits: 0n },
          ),
        },
        role: {
          name: job.role.name,
          permissions: { ...p },
        },
        facets: accounts.map((a) => ({
          account: BigInt(a.number),
          view: p.view
            ? AccountView.server(new AccountReader(this, a.number, g.key, (ctx) => g.check(ctx, true)))
            : null,
          deposit: p.deposit ? Depositor.server(new DepositorServer(g, a.number)) : null,
          pay: p.pay ? Payer.server(new OrgPayerServer(g, a.number)) : null,
          approve: p.approve ? Approver.server(new ApproverServer(g)) : null,
        })),
        manage: p.manage ? OrgManager.server(new OrgManagerServer(g)) : null,
      });
    }
    return { employments: out };
  }
}

/** Paying from an organization's account, within the employee's role (checked by the store). */
class OrgPayerServer implements Payer$Server {
  constructor(
    private readonly g: GrantFacets,
    private readonly account: number,
  ) {}

  #policy(): PaymentPolicy {
    return { payer: { orgId: this.g.employment.org.id } };
  }

  async pay(params: Payer_pay_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    return {
      outcome: await pay(
        this.g.bank,
        who,
        "employee",
        "pay",
        this.account,
        params,
        this.#policy(),
        this.g.grant,
      ),
    };
  }

  async payBatch(params: Payer_payBatch_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    return {
      outcomes: await payBatch(
        this.g.bank,
        who,
        "employee",
        "pay",
        this.account,
        params,
        this.#policy(),
        this.g.grant,
      ),
    };
  }

  async hold(params: Payer_hold_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    return openHold(
      this.g.bank,
      who,
      this.g.perspective,
      "employee",
      this.account,
      params,
      this.#policy(),
      this.g.grant,
    );
  }
}

/** Deposit-only: money comes into the organization's account from a PrivateAccount of the caller's. */
class DepositorServer implements Depositor$Server {
  constructor(
    private readonly g: GrantFacets,
    private readonly account: number,
  ) {}

  async deposit(params: Depositor_deposit_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    const from = localServerOf((params.from as Capability).$hook);
    if (!(from instanceof PrivateAccountServer) || from.owner.identity.id !== who.id) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "deposit from a PrivateAccount of your own (the one your customer perspective handed you)",
      );
    }
    const bank = this.g.bank;
    const input: TransferInput = {
      id: readId(params.id),
      from: from.number,
      to: this.account,
      amount: readAmount(params.amount),
      currency: (await bank.ledger.getAccount(this.account))?.currency ?? "",
      memo: readMemo(params.memo),
    };
    const result = await bank.ledger.transfer(
      input,
      { payer: { ownerId: who.id }, payeeOrgId: this.g.employment.org.id },
      bank.actor(who, "employee", "deposit", this.g.grant),
      bank.clock.now(),
    );
    await bank.published(result);
    return { outcome: bank.wire(result, who) };
  }
}

class ApproverServer implements Approver$Server {
  constructor(private readonly g: GrantFacets) {}

  async pending(_p: unknown, ctx: CallContext) {
    await this.g.check(ctx, true);
    const all = await this.g.bank.ledger.paymentRequestsOf(this.g.employment.org.id);
    return { payments: all.filter((r) => r.state === "pending").map(paymentRequest) };
  }

  async approve(params: Approver_approve_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    const bank = this.g.bank;
    const id = readId(params.id);
    await this.#ours(id);
    const result = await bank.ledger.decidePayment(
      id,
      true,
      "",
      bank.actor(who, "employee", "approve", this.g.grant),
      bank.clock.now(),
    );
    if (result.kind === "rejected")
      throw new ParallaxError(ErrorCode.FAILED, "the payment was rejected instead");
    await bank.published(result);
    if (result.kind === "applied") await bank.announceDecision(id, true, "");
    return { outcome: bank.wire(result, who) };
  }

  async reject(params: Approver_reject_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    const bank = this.g.bank;
    const id = readId(params.id);
    await this.#ours(id);
    const reason = readMemo(params.reason);
    await bank.ledger.decidePayment(
      id,
      false,
      reason,
      bank.actor(who, "employee", "approve", this.g.grant),
      bank.clock.now(),
    );
    await bank.announceDecision(id, false, reason);
  }

  /** NOT_FOUND unless the request is this organization's. */
  async #ours(id: Uint8Array): Promise<void> {
    const r = await this.g.bank.ledger.paymentRequest(id);
    if (r === undefined || r.orgId !== this.g.employment.org.id) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, "this organization has no such payment request");
    }
  }
}

class OrgManagerServer implements OrgManager$Server {
  constructor(private readonly g: GrantFacets) {}

  get #orgId(): number {
    return this.g.employment.org.id;
  }

  async #user(name: string): Promise<number> {
    const user = await this.g.bank.identities.findIdentityByName(readName(name, "a user name"));
    if (user === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
    return user.id;
  }

  #actor(who: IdentityView): BankActor {
    return this.g.bank.actor(who, "employee", "manage", this.g.grant);
  }

  async defineRole(params: OrgManager_defineRole_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    await this.g.bank.ledger.defineRole(this.#orgId, readRole(params.role), this.#actor(who));
    // Redefining a role bumps the grant of everyone holding it: their old facets die.
    for (const e of await this.g.bank.ledger.employeesOf(this.#orgId)) {
      await this.g.bank.grantChanged(this.#orgId, e.identityId, e.grantEpoch);
    }
  }

  async setRole(params: OrgManager_setRole_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    const id = await this.#user(params.username);
    const epoch = await this.g.bank.ledger.setEmployeeRole(
      this.#orgId,
      id,
      readName(params.role, "a role name"),
      this.#actor(who),
    );
    await this.g.bank.grantChanged(this.#orgId, id, epoch);
  }

  async removeEmployee(params: OrgManager_removeEmployee_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    const id = await this.#user(params.username);
    const epoch = await this.g.bank.ledger.removeEmployee(this.#orgId, id, this.#actor(who));
    await this.g.bank.grantChanged(this.#orgId, id, epoch);
  }

  async setApprovalThreshold(params: OrgManager_setApprovalThreshold_Params, ctx: CallContext) {
    const who = await this.g.check(ctx, false);
    await this.g.bank.ledger.setApprovalThreshold(
      this.#orgId,
      readAmount(params.amount, "amount", true),
      this.#actor(who),
    );
  }

  async employees(_p: unknown, ctx: CallContext) {
    await this.g.check(ctx, true);
    const all = await this.g.bank.ledger.employeesOf(this.#orgId);
    return { employees: all.map((e) => ({ username: e.username, role: e.role.name })) };
  }
}

// --- bank staff -----------------------------------------------------------------------------

export class BankerPerspective extends BankPerspective implements Banker$Server {
  capability(): Banker {
    return Banker.server(this.serve<Banker$Server>());
  }

  async #user(name: string): Promise<number> {
    const user = await this.bank.identities.findIdentityByName(readName(name, "a user name"));
    if (user === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
    return user.id;
  }

  #actor(ctx: CallContext, facet: string): BankActor {
    return this.bank.actor(this.caller(ctx), "banker", facet);
  }

  async openAccount(params: Banker_openAccount_Params, ctx: CallContext) {
    const ownerId = await this.#user(params.owner);
    const account = await this.bank.ledger.openAccount(
      {
        currency: readCurrency(params.currency),
        name: readName(params.name, "an account name"),
        kind: "private",
        ownerId,
        noOverdraft: true,
      },
      this.#actor(ctx, "open"),
    );
    return { info: accountInfo(account) };
  }

  async openOrganization(params: Banker_openOrganization_Params, ctx: CallContext) {
    const adminId = await this.#user(params.admin);
    const { org, account } = await this.bank.ledger.createOrganization(
      {
        name: readName(params.name, "an organization name"),
        currency: readCurrency(params.currency),
        adminId,
      },
      this.#actor(ctx, "open"),
    );
    return {
      info: {
        id: BigInt(org.id),
        name: org.name,
        approvalThreshold: org.approvalThreshold,
        accounts: [accountInfo(account)],
      },
    };
  }

  async openOrganizationAccount(params: Banker_openOrganizationAccount_Params, ctx: CallContext) {
    const orgId = readAccountNumber(params.organization, "organization");
    if ((await this.bank.ledger.getOrganization(orgId)) === undefined) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `no organization ${orgId}`);
    }
    const account = await this.bank.ledger.openAccount(
      {
        currency: readCurrency(params.currency),
        name: readName(params.name, "an account name"),
        kind: "organization",
        orgId,
        noOverdraft: true,
      },
      this.#actor(ctx, "open"),
    );
    return { info: accountInfo(account) };
  }

  async #cash(params: Banker_deposit_Params | Banker_withdraw_Params, ctx: CallContext, deposit: boolean) {
    const who = this.caller(ctx);
    const number = readAccountNumber(params.account);
    const account: BankAccountRecord | undefined = await this.bank.ledger.getAccount(number);
    if (account === undefined) return { outcome: { accountNotFound: BigInt(number) } };
    const cash = await this.bank.ledger.cashAccount(account.currency);
    const input: TransferInput = {
      id: readId(params.id),
      from: deposit ? cash.number : number,
      to: deposit ? number : cash.number,
      amount: readAmount(params.amount),
      currency: account.currency,
      memo: readMemo(params.memo),
    };
    const policy: PaymentPolicy = deposit ? { payer: { cash: true } } : { payer: { counter: true } };
    const result = await this.bank.ledger.transfer(
      input,
      policy,
      this.bank.actor(who, "banker", deposit ? "deposit" : "withdraw"),
      this.bank.clock.now(),
    );
    await this.bank.published(result);
    return { outcome: this.bank.wire(result, who) };
  }

  deposit(params: Banker_deposit_Params, ctx: CallContext) {
    return this.#cash(params, ctx, true);
  }

  withdraw(params: Banker_withdraw_Params, ctx: CallContext) {
    return this.#cash(params, ctx, false);
  }

  async totals() {
    const all = await this.bank.ledger.totals();
    return {
      totals: all.map((t) => ({
        currency: t.currency,
        sum: t.sum,
        pendingSum: t.pendingSum,
        accounts: t.accounts,
      })),
    };
  }
}
