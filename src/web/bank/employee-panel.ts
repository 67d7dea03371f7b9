/**
 * The organizations employing the user (the ("bank", "employee") perspective) and, for each of
 * their accounts, exactly the facets the user's role hands out (`Facets` in schema/bank.capnp):
 * `view` shows the balance live and statements, `deposit` a form paying in from one of the user's
 * own accounts, `pay` a payment form (within the role's limits; above the threshold it waits for
 * approval), and `approve`, once per organization, the payments waiting for a checker. A facet the
 * role does not grant is null in the answer and has nothing on the page: a role without `pay`
 * gets no payment form, because there is no Payer to call.
 *
 * Each block carries `data-facet` (view, deposit, pay, approve) and each organization `data-org`
 * and `data-role`. Every value from the bank is written as text.
 *
 * Invariants: `refresh(employee)` swaps in the new connection's capabilities (old stubs disposed)
 * and keeps an organization's blocks when its role and accounts are unchanged, else rebuilds
 * them; a call that fails with PARALLAX_ERR_REVOKED (the role changed) reads the employments
 * again, so the page shows what the new role grants. `manage` (OrgManager) is not shown here
 * (the CLI and demos do that); its stub is released at once.
 *
 * Tests: test/web/bank.test.ts
 */
import { ErrorCode, type ParallaxError, toParallaxError } from "../../errors.js";
import type {
  AccountView,
  Approver,
  Depositor,
  Employee,
  Employment,
  Facets,
  Payer,
  PaymentRequest,
  PrivateAccount,
} from "../../wire/gen/bank.js";
import { type DomControl, type DomElement, el, setText, show } from "../app/dom.js";
import { type AccountSnapshot, LiveAccount, readAccount } from "./live-account.js";
import { formatMoney } from "./money.js";
import { describeOutcome, type OutcomeView } from "./outcome.js";
import { type PaymentRequestView, PaymentForm, type PaymentSource, payOn } from "./payment-form.js";
import { StatementView } from "./statement-view.js";

/** What the panel needs from the rest of the page. */
export interface EmployeePanelHost {
  /** The user's own accounts (deposits come from them). */
  readonly ownAccounts: () => readonly PaymentSource[];
  /** The PrivateAccount of one of them on the live connection (the host keeps owning it). */
  readonly ownAccount: (number: bigint) => PrivateAccount | undefined;
  /** Runs one call, trying again across dropped connections. */
  readonly run: <T>(once: () => Promise<T>) => Promise<T>;
  /** Asks for the employments to be read again (a facet was revoked). */
  readonly refreshSoon: () => void;
}

interface AccountCaps {
  view: AccountView | undefined;
  deposit: Depositor | undefined;
  pay: Payer | undefined;
}

interface AccountBlock {
  readonly info: AccountSnapshot;
  readonly caps: AccountCaps;
  readonly live: LiveAccount | undefined;
}

interface OrgBlock {
  readonly signature: string;
  readonly element: DomElement;
  readonly accounts: Map<string, AccountBlock>;
  approver: Approver | undefined;
  refreshPending: () => Promise<void>;
}

const revokedText = (e: ParallaxError) => `Your role changed (${e.message}); showing what it grants now…`;

export class EmployeePanel {
  readonly #root: DomElement;
  readonly #list: DomElement;
  readonly #host: EmployeePanelHost;
  readonly #orgs = new Map<string, OrgBlock>();

  constructor(root: DomElement, list: DomElement, host: EmployeePanelHost) {
    this.#root = root;
    this.#list = list;
    this.#host = host;
  }

  /** Reads the employments on `employee` (a new connection's, or after a revocation). */
  async refresh(employee: Employee): Promise<void> {
    using answer = employee.employments();
    const jobs = (await answer).employments.toArray();
    const seen = new Set<string>();
    const watches: Array<Promise<void>> = [];
    for (const job of jobs) {
      const orgId = String(job.organization.id);
      seen.add(orgId);
      const signature = signatureOf(job);
      const known = this.#orgs.get(orgId);
      if (job.hasManage()) job.manage.dispose();
      if (known !== undefined && known.signature === signature) {
        this.#swap(known, job, watches);
      } else {
        if (known !== undefined) this.#drop(orgId, known);
        const block = this.#build(job, signature, watches);
        this.#orgs.set(orgId, block);
        this.#list.append(block.element);
      }
    }
    for (const [orgId, block] of [...this.#orgs]) if (!seen.has(orgId)) this.#drop(orgId, block);
    show(this.#root, this.#orgs.size > 0);
    await Promise.all(watches);
    await Promise.all([...this.#orgs.values()].map((o) => o.refreshPending()));
  }

  #drop(orgId: string, block: OrgBlock): void {
    for (const a of block.accounts.values()) disposeCaps(a.caps);
    block.approver?.dispose();
    block.element.remove();
    this.#orgs.delete(orgId);
  }

  #swap(block: OrgBlock, job: Employment, watches: Array<Promise<void>>): void {
    block.approver?.dispose();
    block.approver = undefined;
    for (const f of job.facets.toArray()) {
      const a = block.accounts.get(String(f.account));
      const caps = readCaps(f);
      if (f.hasApprove()) {
        if (block.approver === undefined) block.approver = f.approve;
        else f.approve.dispose();
      }
      if (a === undefined) {
        disposeCaps(caps);
        continue;
      }
      disposeCaps(a.caps);
      Object.assign(a.caps, caps);
      if (a.live !== undefined && caps.view !== undefined) watches.push(this.#watch(a.live, caps.view));
    }
  }

  #watch(live: LiveAccount, view: AccountView): Promise<void> {
    return live.watch(view).catch((err: unknown) => {
      const error = toParallaxError(err);
      live.fail(`This balance does not update by itself: ${error.message}`);
      if (error.code === ErrorCode.REVOKED) this.#host.refreshSoon();
    });
  }

  #build(job: Employment, signature: string, watches: Array<Promise<void>>): OrgBlock {
    const org = job.organization;
    const role = job.role;
    const p = role.permissions;
    const infos = new Map(org.accounts.toArray().map((a) => [String(a.number), readAccount(a)]));
    const threshold = org.approvalThreshold;
    const currency = infos.values().next().value?.currency ?? "";
    const accountsList = el("div", { class: "org-accounts" });
    const approvals = el("div", { class: "approvals" });
    const element = el(
      "article",
      { class: "card organization", "data-org": String(org.id), "data-role": role.name },
      el(
        "h3",
        {},
        el("span", { class: "org-name" }, org.name),
        " ",
        el("span", { class: "meta" }, `organization ${org.id}`),
      ),
      el(
        "p",
        { class: "role" },
        "Your role: ",
        el("strong", { class: "role-name" }, role.name),
        ` — ${grants(p, currency)}`,
      ),
      threshold > 0n
        ? el(
            "p",
            { class: "meta" },
            `Payments above ${formatMoney(threshold, currency)} wait for another employee's approval.`,
          )
        : null,
      accountsList,
      approvals,
    );
    const block: OrgBlock = {
      signature,
      element,
      accounts: new Map(),
      approver: undefined,
      refreshPending: async () => {},
    };
    for (const f of job.facets.toArray()) {
      const key = String(f.account);
      const info = infos.get(key);
      const caps = readCaps(f);
      if (f.hasApprove()) {
        if (block.approver === undefined) block.approver = f.approve;
        else f.approve.dispose();
      }
      if (info === undefined) {
        disposeCaps(caps);
        continue;
      }
      const a: AccountBlock = {
        info,
        caps,
        live: caps.view === undefined ? undefined : new LiveAccount(info),
      };
      block.accounts.set(key, a);
      accountsList.append(this.#accountBlock(a));
      if (a.live !== undefined && caps.view !== undefined) watches.push(this.#watch(a.live, caps.view));
    }
    if (block.approver !== undefined) {
      const view = this.#approvals(block);
      approvals.append(view.element);
      block.refreshPending = view.refresh;
    }
    return block;
  }

  #accountBlock(a: AccountBlock): DomElement {
    const { info, caps } = a;
    const label = `${info.name} (account ${info.number})`;
    const source: PaymentSource = { number: info.number, label, currency: info.currency };
    const parts: DomElement[] = [];
    const onRevoked = () => this.#host.refreshSoon();
    if (a.live !== undefined) {
      const statement = new StatementView({
        title: `Statement of ${info.name}`,
        sources: () => [source],
        view: () => required(caps.view, "view"),
        run: this.#host.run,
      });
      parts.push(el("section", { class: "facet", "data-facet": "view" }, a.live.element, statement.element));
    } else {
      parts.push(
        el(
          "h4",
          {},
          el("span", { class: "account-name" }, info.name),
          " ",
          el("span", { class: "meta" }, `account ${info.number} · ${info.currency}`),
        ),
      );
    }
    if (caps.deposit !== undefined) {
      const form = new PaymentForm({
        title: `Deposit into ${info.name}`,
        submitLabel: "Deposit",
        to: info.number,
        sources: () => this.#host.ownAccounts().filter((s) => s.currency === info.currency),
        pay: (r) => this.#deposit(required(caps.deposit, "deposit"), r),
        run: this.#host.run,
        onRevoked,
      });
      parts.push(el("section", { class: "facet", "data-facet": "deposit" }, form.element));
    }
    if (caps.pay !== undefined) {
      const form = new PaymentForm({
        title: `Pay from ${info.name}`,
        submitLabel: "Pay",
        sources: () => [source],
        pay: (r) => payOn(required(caps.pay, "pay"), r),
        run: this.#host.run,
        onRevoked,
      });
      parts.push(el("section", { class: "facet", "data-facet": "pay" }, form.element));
    }
    if (parts.length === 1 && a.live === undefined) {
      parts.push(el("p", { class: "hint" }, "Your role grants nothing on this account."));
    }
    return el("section", { class: "org-account", "data-account": String(info.number) }, ...parts);
  }

  async #deposit(depositor: Depositor, r: PaymentRequestView): Promise<OutcomeView> {
    const from = this.#host.ownAccount(r.from);
    if (from === undefined) throw new Error(`you have no account ${r.from}`);
    using answer = depositor.deposit({ from, id: r.id, amount: r.amount, memo: r.memo });
    return describeOutcome((await answer).outcome, r.currency);
  }

  #approvals(block: OrgBlock): { element: DomElement; refresh: () => Promise<void> } {
    const list = el("ul", { class: "pending-payments" });
    const status = el("p", { class: "outcome", role: "status", "aria-live": "polite" });
    const empty = el("p", { class: "hint" }, "No payment is waiting.");
    const refreshButton = el("button", { type: "button" }, "Refresh") as DomControl;
    const approver = () => required(block.approver, "approve");
    const tell = (kind: string, tone: string, text: string) => {
      status.dataset.outcome = kind;
      status.dataset.tone = tone;
      setText(status, text);
    };
    const failed = (err: unknown) => {
      const error = toParallaxError(err);
      tell("error", "refused", error.code === ErrorCode.REVOKED ? revokedText(error) : error.message);
      if (error.code === ErrorCode.REVOKED) this.#host.refreshSoon();
    };
    const refresh = async (): Promise<void> => {
      try {
        const payments = await this.#host.run(async () => {
          using answer = approver().pending();
          return (await answer).payments.toArray().map(readPayment);
        });
        list.replaceChildren(...payments.map((pmt) => row(pmt)));
        show(empty, payments.length === 0);
      } catch (err) {
        failed(err);
      }
    };
    const row = (pmt: PaymentView): DomElement => {
      const reason = el("input", { name: "reason", maxlength: "140", autocomplete: "off" }) as DomControl;
      const approve = el("button", { type: "button", "data-action": "approve" }, "Approve") as DomControl;
      const reject = el("button", { type: "button", "data-action": "reject" }, "Reject") as DomControl;
      approve.addEventListener("click", () => {
        approve.disabled = true;
        void this.#host
          .run(async () => {
            using answer = approver().approve({ id: pmt.id });
            const view = describeOutcome((await answer).outcome, pmt.currency);
            view.pending?.dispose();
            return view;
          })
          .then((view) => tell(view.kind, view.tone, `Approved: ${view.text}`), failed)
          .finally(() => void refresh());
      });
      reject.addEventListener("click", () => {
        reject.disabled = true;
        void this.#host
          .run(async () => {
            using answer = approver().reject({ id: pmt.id, reason: reason.value });
            await answer;
          })
          .then(
            () =>
              tell(
                "rejected",
                "refused",
                `Rejected the payment of ${formatMoney(pmt.amount, pmt.currency)} to account ${pmt.to}.`,
              ),
            failed,
          )
          .finally(() => void refresh());
      });
      return el(
        "li",
        { "data-maker": pmt.maker },
        el("span", { class: "author" }, pmt.maker),
        ` asks to pay ${formatMoney(pmt.amount, pmt.currency)} from account ${pmt.account} to account ${pmt.to}`,
        pmt.memo === "" ? "" : ": ",
        el("span", { class: "memo" }, pmt.memo),
        " ",
        approve,
        " ",
        el("label", { class: "inline" }, "Reason (for a rejection) ", reason),
        reject,
      );
    };
    refreshButton.addEventListener("click", () => void refresh());
    const element = el(
      "section",
      { class: "facet", "data-facet": "approve" },
      el("h4", {}, "Payments waiting for approval"),
      empty,
      list,
      refreshButton,
      status,
    );
    return { element, refresh };
  }
}

interface PaymentView {
  readonly id: Uint8Array;
  readonly account: bigint;
  readonly to: bigint;
  readonly amount: bigint;
  readonly currency: string;
  readonly memo: string;
  readonly maker: string;
}

function readPayment(p: PaymentRequest): PaymentView {
  return {
    id: p.id.slice(),
    account: p.account,
    to: p.to,
    amount: p.amount,
    currency: p.currency,
    memo: p.memo,
    maker: p.maker,
  };
}

function readCaps(f: Facets): AccountCaps {
  return {
    view: f.hasView() ? f.view : undefined,
    deposit: f.hasDeposit() ? f.deposit : undefined,
    pay: f.hasPay() ? f.pay : undefined,
  };
}

function disposeCaps(c: AccountCaps): void {
  c.view?.dispose();
  c.deposit?.dispose();
  c.pay?.dispose();
  c.view = undefined;
  c.deposit = undefined;
  c.pay = undefined;
}

function required<T>(cap: T | undefined, facet: string): T {
  if (cap === undefined) throw new Error(`your role no longer grants ${facet} on this account`);
  return cap;
}

/** What decides whether an organization's blocks can be kept: role, permissions, accounts, facets. */
function signatureOf(job: Employment): string {
  const p = job.role.permissions;
  const facets = job.facets
    .toArray()
    .map(
      (f) =>
        `${f.account}:${f.hasView() ? "v" : ""}${f.hasDeposit() ? "d" : ""}${f.hasPay() ? "p" : ""}${f.hasApprove() ? "a" : ""}`,
    );
  const accounts = job.organization.accounts.toArray().map((a) => `${a.number}=${a.name}`);
  return JSON.stringify([
    job.role.name,
    p.view,
    p.deposit,
    p.pay,
    String(p.perPaymentLimit),
    String(p.perDayLimit),
    p.approve,
    String(job.organization.approvalThreshold),
    accounts,
    facets,
  ]);
}

function grants(p: Employment["role"]["permissions"], currency: string): string {
  const out: string[] = [];
  if (p.view) out.push("view the accounts");
  if (p.deposit) out.push("deposit");
  if (p.pay) {
    const limits: string[] = [];
    if (p.perPaymentLimit > 0n) limits.push(`${formatMoney(p.perPaymentLimit, currency)} per payment`);
    if (p.perDayLimit > 0n) limits.push(`${formatMoney(p.perDayLimit, currency)} a day`);
    out.push(limits.length === 0 ? "pay" : `pay (up to ${limits.join(", ")})`);
  }
  if (p.approve) out.push("approve payments");
  if (p.manage) out.push("manage roles");
  return out.length === 0 ? "grants nothing yet." : `may ${out.join(", ")}.`;
}
