/**
 * The bank page (`/bank`): the user's accounts with balances that move live, a form to send money
 * to an account number, statements over a range of days, and — for employees — each
 * organization's accounts with exactly the facets the user's role grants (src/web/bank/
 * employee-panel.ts). Built on the page session's ReconnectingClient: ("bank", "customer") and
 * ("bank", "employee") are attached once and again after every reconnect, and each re-attach
 * reads the accounts and facets again (`refresh`), watching the accounts on the new connection.
 *
 * Who pays is always a capability the bank handed this login (a PrivateAccount, a Payer facet):
 * the page never sends a user name, and nothing typed here can name someone else's account as
 * the one paying. Everything from the bank or the user is written as text (src/web/app/dom.ts).
 *
 * Markup: src/web/pages/bank.html (ids used here). Accounts are opened by bank staff (the
 * banker perspective or `parallax bank open-account`), so a new user sees none at first.
 *
 * Invariants: refreshes run one at a time, in order; each finished one is counted
 * (src/web/bank/refreshes.ts), which is what a payment cut by a dropped connection waits for
 * before it is sent again with the same id.
 *
 * Tests: test/web/bank.test.ts
 */
import { toParallaxError } from "../../errors.js";
import type { AttachedPerspective } from "../../login/reconnecting-client.js";
import { BANK_CUSTOMER, BANK_EMPLOYEE } from "../../services/bank/bank-keys.js";
import type { Customer, Employee } from "../../wire/gen/bank.js";
import { byId, setText } from "../app/dom.js";
import type { PageClient, PageSession } from "../app/session.js";
import { CustomerPanel } from "./customer-panel.js";
import { EmployeePanel } from "./employee-panel.js";
import { PaymentForm, type PaymentSource, payOn } from "./payment-form.js";
import { Refreshes, withRetries } from "./refreshes.js";
import { StatementView } from "./statement-view.js";

export class BankPage {
  readonly #refreshes = new Refreshes();
  readonly #customerPanel: CustomerPanel;
  readonly #employeePanel: EmployeePanel;
  readonly #transfer: PaymentForm;
  readonly #statement: StatementView;
  #customer: AttachedPerspective<Customer> | undefined;
  #employee: AttachedPerspective<Employee> | undefined;
  #queue: Promise<void> = Promise.resolve();

  private constructor() {
    const run = <T>(once: () => Promise<T>): Promise<T> => withRetries(this.#refreshes, once);
    this.#customerPanel = new CustomerPanel(byId("account-list"), byId("accounts-empty"));
    this.#employeePanel = new EmployeePanel(byId("employments"), byId("org-list"), {
      ownAccounts: () => this.#sources(),
      ownAccount: (n) => this.#customerPanel.account(n),
      run,
      refreshSoon: () => this.#enqueue(() => this.#refreshEmployee()),
    });
    this.#transfer = new PaymentForm({
      title: "From one of your accounts to an account number",
      submitLabel: "Send",
      sources: () => this.#sources(),
      pay: (r) => {
        const account = this.#customerPanel.account(r.from);
        if (account === undefined) throw new Error(`you have no account ${r.from}`);
        return payOn(account, r);
      },
      run,
    });
    this.#statement = new StatementView({
      title: "An account's entries over some days",
      sources: () => this.#sources(),
      view: (n) => {
        const account = this.#customerPanel.account(n);
        if (account === undefined) throw new Error(`you have no account ${n}`);
        return account;
      },
      run,
    });
    byId("transfer").append(this.#transfer.element);
    byId("statements").append(this.#statement.element);
  }

  /** Shows the bank for the session's user. */
  static async show(session: PageSession<PageClient>): Promise<BankPage> {
    const page = new BankPage();
    const client = session.client.reconnecting;
    const problems: string[] = [];
    try {
      page.#customer = await client.attach(BANK_CUSTOMER);
    } catch (err) {
      problems.push(`Your accounts cannot be shown: ${toParallaxError(err).message}`);
    }
    try {
      page.#employee = await client.attach(BANK_EMPLOYEE);
    } catch (err) {
      problems.push(`Your organizations cannot be shown: ${toParallaxError(err).message}`);
    }
    setText(byId("bank-error"), problems.join(" "));
    // Both are re-attached before either is announced: one refresh covers both.
    (page.#customer ?? page.#employee)?.onReattach(() => page.#enqueue(() => page.#refreshAll()));
    await page.#enqueue(() => page.#refreshAll());
    return page;
  }

  #sources(): PaymentSource[] {
    return this.#customerPanel.accounts.map((a) => ({
      number: a.number,
      label: `${a.info.name} (account ${a.number})`,
      currency: a.info.currency,
    }));
  }

  /** Runs `job` after the refreshes before it; its failure is shown, not thrown. */
  #enqueue(job: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(job).catch((err: unknown) => {
      setText(byId("bank-error"), `The bank could not be read: ${toParallaxError(err).message}`);
    });
    this.#queue = next;
    return next;
  }

  async #refreshAll(): Promise<void> {
    setText(byId("bank-error"), "");
    try {
      if (this.#customer !== undefined) await this.#customerPanel.refresh(this.#customer.current);
      this.#transfer.refreshSources();
      this.#statement.refreshSources();
      if (this.#employee !== undefined) await this.#employeePanel.refresh(this.#employee.current);
    } finally {
      // Counted even when it failed: a payment waiting for it tries (and fails or waits) again.
      this.#refreshes.bump();
    }
  }

  async #refreshEmployee(): Promise<void> {
    if (this.#employee !== undefined) await this.#employeePanel.refresh(this.#employee.current);
  }
}
