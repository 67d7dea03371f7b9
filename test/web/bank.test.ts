/**
 * The bank page (`/bank`, src/web/bank/) in Chromium, as its users would use it: two customers'
 * pages, a transfer between them showing on both (the receiver's balance moves without a reload),
 * an overdraft refused and changing no balance, typed input the page refuses before anything is
 * sent, markup in an account name, an organization name and a memo shown as text, an employee's
 * page showing exactly the facets their role grants, a payment above the threshold approved by
 * another employee on their page, and a transfer whose answer is lost to a dropped connection
 * resent with the same id and applied once.
 *
 * Setup is a bank's, not a page's: users sign up on the page; a banker (a Node client with the
 * banker perspective on its keyring, over the broker's WebSocket) opens their accounts and pays
 * cash in, and the organization, its roles and employees are set through the bank's store, as
 * `parallax bank` does. Pages are reloaded to see accounts opened after they were shown (the bank
 * tells watchers of changes to accounts, not of new accounts).
 *
 * Before the browser part, the page's money and outcome helpers in Node (parsing what a user
 * types, formatting minor units, every outcome member in words).
 */
import { randomBytes } from "node:crypto";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../src/client.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { loginWithPassword, makeVerifier } from "../../src/login/client-login.js";
import { attach } from "../../src/login/index.js";
import type { RpcConnection } from "../../src/rpc/index.js";
import { DEFAULT_KEYRING } from "../../src/server.js";
import { BANK_BANKER } from "../../src/services/bank/bank-keys.js";
import { BANK_CHANGED } from "../../src/services/bank/bank-service.js";
import { BANK_STORE, type BankStore, type Permissions } from "../../src/store/index.js";
import {
  decimalString,
  formatMoney,
  minorDigits,
  parseAccountNumber,
  parseAmount,
} from "../../src/web/bank/money.js";
import { describeOutcome } from "../../src/web/bank/outcome.js";
import { newTransferId } from "../../src/web/bank/payment-form.js";
import { Refreshes, withRetries } from "../../src/web/bank/refreshes.js";
import { type Banker, TransferOutcome, TransferOutcome_Which } from "../../src/wire/gen/bank.js";
import { Root } from "../../src/wire/gen/broker.js";
import { Message } from "capnp-ts";
import { rejection } from "../helpers/errors.js";
import {
  describeInChromium,
  enter,
  launchChromium,
  newUser,
  type CutProxy,
  startCutProxy,
  startWebBroker,
  type User,
  type WebBroker,
} from "./chromium.js";

// --- in Node: the page's helpers ------------------------------------------------------------

describe("the bank page's money helpers", () => {
  it("reads amounts exactly in the currency's decimals, and says what is wrong with the rest", () => {
    expect(parseAmount("12.50", "EUR")).toBe(1250n);
    expect(parseAmount(" 12,5 ", "EUR")).toBe(1250n);
    expect(parseAmount("0.01", "EUR")).toBe(1n);
    expect(parseAmount(".5", "EUR")).toBe(50n);
    expect(parseAmount("7", "EUR")).toBe(700n);
    expect(parseAmount("1500", "JPY")).toBe(1500n);
    expect(parseAmount("1.234", "KWD")).toBe(1234n);
    // 0.1 + 0.2 is exact here: no float on the way.
    expect(parseAmount("92233720368547758.07", "EUR")).toBe((1n << 63n) - 1n);
    const bad: Array<[string, string, RegExp]> = [
      ["", "EUR", /write the amount as a number of EUR, like 12\.50/],
      ["12.345", "EUR", /EUR has 2 decimals; "12.345" has 3/],
      ["12.5", "JPY", /JPY has no decimals/],
      ["-5", "EUR", /write the amount/],
      ["1e3", "EUR", /write the amount/],
      ["1,000.00", "EUR", /write the amount/],
      ["0", "EUR", /more than zero/],
      ["0.00", "EUR", /more than zero/],
      [".", "EUR", /write the amount/],
      ["92233720368547758.08", "EUR", /too large: at most 92233720368547758\.07 EUR/],
      ["１２", "EUR", /write the amount/],
    ];
    for (const [text, currency, message] of bad) {
      let error: unknown;
      try {
        parseAmount(text, currency);
      } catch (err) {
        error = err;
      }
      expect(error, text).toMatchObject({ code: ErrorCode.BAD_ARGUMENT });
      expect((error as Error).message, text).toMatch(message);
    }
  });

  it("formats minor units as the currency without passing through a float", () => {
    expect(formatMoney(1250n, "EUR", "en-US")).toBe("€12.50");
    expect(formatMoney(-5n, "EUR", "en-US")).toBe("-€0.05");
    expect(formatMoney(1500n, "JPY", "en-US")).toBe("¥1,500");
    expect(formatMoney((1n << 63n) - 1n, "USD", "en-US")).toBe("$92,233,720,368,547,758.07");
    expect(formatMoney(1234n, "KWD", "en-US")).toMatch(/1\.234/);
    expect(decimalString(-123456n, 2)).toBe("-1234.56");
    expect(decimalString(7n, 3)).toBe("0.007");
    expect(minorDigits("EUR")).toBe(2);
    expect(minorDigits("JPY")).toBe(0);
    expect(minorDigits("lower")).toBe(2);
  });

  it("reads account numbers as digits within 2^53 - 1, nothing else", () => {
    expect(parseAccountNumber(" 1002 ")).toBe(1002n);
    for (const text of ["", "0", "bob", "-3", "12.0", "1e3", "9007199254740992", "12345678901234567"]) {
      expect(() => parseAccountNumber(text), text).toThrow(/is not an account number/);
    }
  });

  it("makes a fresh 16-byte transfer id each time, from WebCrypto", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const id = newTransferId();
      expect(id.length).toBe(16);
      ids.add(Buffer.from(id).toString("hex"));
    }
    expect(ids.size).toBe(100);
  });

  it("puts every member of the outcome union in words, refusals saying nothing changed", () => {
    const make = (fill: (o: TransferOutcome) => void): TransferOutcome => {
      const o = new Message().initRoot(TransferOutcome);
      fill(o);
      return o;
    };
    const receipt = {
      id: new Uint8Array(16),
      from: 1001n,
      to: 1002n,
      amount: 1250n,
      currency: "EUR",
      at: 0n,
      journalSeq: 7n,
      kind: 0 as const,
    };
    const cases: Array<[TransferOutcome, string, string, RegExp]> = [
      [
        make((o) => (o.applied = receipt)),
        "applied",
        "ok",
        /Sent .*12\.50 from account 1001 to account 1002 \(journal entry 7\)/,
      ],
      [make((o) => (o.exists = receipt)), "exists", "ok", /Already sent.*nothing was sent twice/],
      [make((o) => (o.existsWithDifferent = 1)), "existsWithDifferent", "refused", /different the amount/],
      [
        make((o) => (o.insufficientFunds = 499n)),
        "insufficientFunds",
        "refused",
        /insufficient funds\. .*4\.99 is available\. Nothing changed/,
      ],
      [
        make((o) => (o.limitExceeded = { kind: 1, limit: 10000n, used: 9000n })),
        "limitExceeded",
        "refused",
        /a day .*90\.00 spent today/,
      ],
      [
        make((o) => (o.limitExceeded = { kind: 0, limit: 500n, used: 0n })),
        "limitExceeded",
        "refused",
        /per payment/,
      ],
      [make((o) => (o.accountNotFound = 9999n)), "accountNotFound", "refused", /no account 9999/],
      [make((o) => (o.currencyMismatch = "USD")), "currencyMismatch", "refused", /holds USD/],
      [make((o) => o.setSameAccount()), "sameAccount", "refused", /paying account itself/],
      [make((o) => o.setOverflow()), "overflow", "refused", /overflow/],
      [make((o) => o.setLinkedEventFailed()), "linkedEventFailed", "refused", /same batch/],
      [make((o) => (o.holdNotOpen = "posted")), "holdNotOpen", "refused", /no longer open \(posted\)/],
    ];
    const seen = new Set<number>();
    for (const [o, kind, tone, text] of cases) {
      seen.add(o.which());
      const view = describeOutcome(o, "EUR");
      expect(view.kind).toBe(kind);
      expect(view.tone).toBe(tone);
      expect(view.text).toMatch(text);
    }
    // pendingApproval carries a capability: covered in Chromium; every other member is here.
    expect(seen.size).toBe(Object.keys(TransferOutcome_Which).length - 1);
  });

  it("tries a call again only after a refresh, only for dropped connections and overload, at most 5 times", async () => {
    const refreshes = new Refreshes();
    let tries = 0;
    const answer = withRetries(refreshes, async () => {
      tries++;
      if (tries < 3) throw new ParallaxError(ErrorCode.DISCONNECTED, "dropped");
      return "paid";
    });
    await Promise.resolve();
    expect(tries).toBe(1);
    refreshes.bump();
    await new Promise((r) => setImmediate(r));
    expect(tries).toBe(2);
    refreshes.bump();
    expect(await answer).toBe("paid");
    expect(tries).toBe(3);
    // A refusal of another kind is the answer at once.
    let denied = 0;
    const refused = await rejection(
      withRetries(refreshes, async () => {
        denied++;
        throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "no");
      }),
    );
    expect(refused.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(denied).toBe(1);
    // Five tries, then the error.
    let forever = 0;
    const gone = rejection(
      withRetries(refreshes, async () => {
        forever++;
        throw new ParallaxError(ErrorCode.DISCONNECTED, "still dropped");
      }),
    );
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setImmediate(r));
      refreshes.bump();
    }
    expect((await gone).code).toBe(ErrorCode.DISCONNECTED);
    expect(forever).toBe(5);
  });
});

// --- in Chromium ----------------------------------------------------------------------------

const PASSWORD = "a long bank password";

let browser: Browser;
let web: WebBroker;
/** Alice's pages go through it, so a test can cut her network. */
let proxy: CutProxy;
let ledger: BankStore;
let tellerConnection: RpcConnection;
let banker: Banker;
let orgId: number;
const users = new Map<string, User>();
const accounts = new Map<string, bigint>();

const tid = (): Uint8Array => new Uint8Array(randomBytes(16));

const NONE: Permissions = {
  view: false,
  deposit: false,
  pay: false,
  perPaymentLimit: 0n,
  perDayLimit: 0n,
  approve: false,
  manage: false,
};

const JAR_NAME = `<img src=x onerror="globalThis.__pwned=1">jar <b>bold</b>`;
const ORG_NAME = "Acme <em>Co</em>";

async function userId(name: string): Promise<number> {
  const found = await web.server.store.findIdentityByName(name);
  if (found === undefined) throw new Error(`no user ${name}`);
  return found.id;
}

/** The minor units the page shows for one account (`scope` narrows where it looks). */
function shown(user: User, number: bigint, scope = "#account-list"): Promise<string | null> {
  return user.page.getAttribute(`${scope} [data-account="${number}"] .balance`, "data-minor");
}

async function ledgerBalance(number: bigint): Promise<bigint> {
  const a = await ledger.getAccount(Number(number));
  if (a === undefined) throw new Error(`no account ${number}`);
  return a.creditsPosted - a.debitsPosted;
}

/** Pays `cash` into an account through the banker (the bank tells watchers). */
async function cashIn(number: bigint, cash: bigint): Promise<void> {
  const r = await banker.deposit({ account: number, id: tid(), amount: cash, memo: "opening cash" });
  expect(r.outcome.which()).toBe(TransferOutcome_Which.APPLIED);
}

/** Opens an account for `owner` through the banker and pays `cash` into it. */
async function open(owner: string, name: string, cash: bigint): Promise<bigint> {
  const { info } = await banker.openAccount({ owner, currency: "EUR", name });
  if (cash > 0n) await cashIn(info.number, cash);
  return info.number;
}

/** Logs `name` in on /bank in a fresh context and waits until the accounts are live. */
async function logIn(name: string, live: readonly bigint[], origin = web.origin): Promise<User> {
  const user = await newUser(browser);
  users.set(name, user);
  await enter(user.page, origin, name, PASSWORD, "login", "/bank");
  for (const n of live) {
    await expect.poll(() => user.page.getAttribute(`article[data-account="${n}"]`, "data-live")).toBe("yes");
  }
  return user;
}

/** Fills and sends a payment form inside `scope`. */
async function pay(
  user: User,
  scope: string,
  fields: { from?: bigint; to?: string; amount: string; memo?: string },
): Promise<void> {
  const p = user.page;
  if (fields.from !== undefined && (await p.isEnabled(`${scope} select[name=from]`))) {
    await p.selectOption(`${scope} select[name=from]`, String(fields.from));
  }
  if (fields.to !== undefined) await p.fill(`${scope} input[name=to]`, fields.to);
  await p.fill(`${scope} input[name=amount]`, fields.amount);
  await p.fill(`${scope} input[name=memo]`, fields.memo ?? "");
  await p.click(`${scope} button[type=submit]`);
}

/** `decimal` EUR as the page's locale writes it (the test does not assume the browser's locale). */
function money(user: User, decimal: string): Promise<string> {
  return user.page.evaluate(
    (d) => new Intl.NumberFormat(undefined, { style: "currency", currency: "EUR" }).format(d as `${number}`),
    decimal,
  );
}

function outcomeOf(user: User, scope: string): Promise<string | null> {
  return user.page.getAttribute(`${scope} .outcome`, "data-outcome");
}

const org = (rest = "") => `[data-org="${orgId}"]${rest === "" ? "" : ` ${rest}`}`;

describeInChromium("the bank page in Chromium", () => {
  beforeAll(async () => {
    [browser, web] = await Promise.all([launchChromium(), startWebBroker({ signUp: "open" })]);
    proxy = await startCutProxy(web.server.port);
    ledger = web.server.store.repository(BANK_STORE) as BankStore;
    const params = web.server.broker.kdfDefault;
    const banker_pair = { service: BANK_BANKER.service, perspective: BANK_BANKER.perspective };
    for (const [name, password, keyring] of [
      ["teller", "teller password", [...DEFAULT_KEYRING, banker_pair]],
      ["alice", PASSWORD, DEFAULT_KEYRING],
      ["bob", PASSWORD, DEFAULT_KEYRING],
      ["carol", PASSWORD, DEFAULT_KEYRING],
    ] as const) {
      const { verifier } = await makeVerifier(password, { params });
      await web.server.store.createIdentity({ name, verifier, keyring });
    }
    tellerConnection = await connect(web.server.url);
    const login = await loginWithPassword(tellerConnection.bootstrap(Root), "teller", "teller password");
    banker = attach(login.identity, BANK_BANKER);
    accounts.set("alice", await open("alice", "Everyday", 10_000n));
    accounts.set("bob", await open("bob", "Savings", 5_000n));
    accounts.set("jar", await open("bob", JAR_NAME, 0n));
    // The organization, its roles and employees: the bank's store, as `parallax bank` sets them.
    const made = await ledger.createOrganization({
      name: ORG_NAME,
      currency: "EUR",
      adminId: await userId("alice"),
    });
    orgId = made.org.id;
    accounts.set("acme", BigInt(made.account.number));
    await cashIn(BigInt(made.account.number), 50_000n);
    await ledger.defineRole(orgId, { name: "clerk", permissions: { ...NONE, view: true, deposit: true } });
    await ledger.defineRole(orgId, { name: "checker", permissions: { ...NONE, view: true, approve: true } });
    await ledger.setEmployeeRole(orgId, await userId("bob"), "clerk");
    await ledger.setEmployeeRole(orgId, await userId("carol"), "checker");
  });

  afterAll(async () => {
    tellerConnection?.close();
    await browser?.close();
    await proxy?.close();
    await web?.close();
  });

  it("a transfer from alice's page shows on both pages: bob's balance moves without a reload", async () => {
    const a = accounts.get("alice") as bigint;
    const b = accounts.get("bob") as bigint;
    const [alice, bob] = await Promise.all([
      logIn("alice", [a], proxy.origin),
      logIn("bob", [b, accounts.get("jar") as bigint]),
    ]);
    expect(await shown(alice, a)).toBe("10000");
    expect(await shown(bob, b)).toBe("5000");
    expect(await alice.page.textContent(`[data-account="${a}"] .balance`)).toBe(await money(alice, "100.00"));
    expect(await alice.page.textContent(`[data-account="${a}"] .account-name`)).toBe("Everyday");
    await bob.page.evaluate(() => {
      (globalThis as { __samePage?: boolean }).__samePage = true;
    });

    await pay(alice, "#transfer", { to: String(b), amount: "12.50", memo: "lunch" });
    await expect.poll(() => outcomeOf(alice, "#transfer")).toBe("applied");
    expect(await alice.page.textContent("#transfer .outcome")).toContain(
      `Sent ${await money(alice, "12.50")} from account ${a} to account ${b}`,
    );
    await expect.poll(() => shown(bob, b)).toBe("6250");
    await expect.poll(() => shown(alice, a)).toBe("8750");
    expect(await bob.page.textContent(`[data-account="${b}"] .recent li[data-direction=in]`)).toContain(
      `+${await money(bob, "12.50")} from account ${a}`,
    );
    expect(await alice.page.textContent(`[data-account="${a}"] .recent li[data-direction=out]`)).toContain(
      `−${await money(alice, "12.50")} to account ${b}`,
    );
    // Bob's page was not reloaded: the change came to it.
    expect(await bob.page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage)).toBe(true);
    expect(await ledgerBalance(b)).toBe(6250n);
    expect(await ledgerBalance(a)).toBe(8750n);
    // The form is ready for the next payment.
    expect(await alice.page.inputValue("#transfer input[name=amount]")).toBe("");
    expect(alice.log.errors).toEqual([]);
    expect(bob.log.errors).toEqual([]);
  });

  it("an overdraft is refused on the page, and no balance changes anywhere", async () => {
    const alice = users.get("alice") as User;
    const bob = users.get("bob") as User;
    const a = accounts.get("alice") as bigint;
    const b = accounts.get("bob") as bigint;
    await pay(bob, "#transfer", { from: b, to: String(a), amount: "1000", memo: "too much" });
    await expect.poll(() => outcomeOf(bob, "#transfer")).toBe("insufficientFunds");
    const text = await bob.page.textContent("#transfer .outcome");
    expect(text).toContain("insufficient funds");
    expect(text).toContain(`${await money(bob, "62.50")} is available`);
    expect(text).toContain("Nothing changed");
    expect(await bob.page.getAttribute("#transfer .outcome", "data-tone")).toBe("refused");
    expect(await ledgerBalance(b)).toBe(6250n);
    expect(await ledgerBalance(a)).toBe(8750n);
    // What was typed stays, to correct it.
    expect(await bob.page.inputValue("#transfer input[name=amount]")).toBe("1000");
    // A later transfer shows up, so the pages were listening all along: the refusal moved nothing.
    await pay(bob, "#transfer", { from: b, to: String(a), amount: "0.50", memo: "" });
    await expect.poll(() => outcomeOf(bob, "#transfer")).toBe("applied");
    await expect.poll(() => shown(alice, a)).toBe("8800");
    expect(await shown(bob, b)).toBe("6200");
    expect(await ledgerBalance(b)).toBe(6200n);
    expect(
      await bob.page.$$eval(`[data-account="${b}"] .recent li[data-direction=out]`, (l) => l.length),
    ).toBe(1);
  });

  it("refuses what it cannot send before anything leaves the page; the bank's refusals come back as outcomes", async () => {
    const alice = users.get("alice") as User;
    const a = accounts.get("alice") as bigint;
    const b = accounts.get("bob") as bigint;
    const frames = alice.log.sent.length;
    const cases: Array<[string, string, RegExp]> = [
      [String(b), "12.345", /EUR has 2 decimals/],
      [String(b), "-3", /write the amount/],
      [String(b), "0", /more than zero/],
      ["bob", "1", /"bob" is not an account number/],
      [`${b}; DROP TABLE`, "1", /is not an account number/],
    ];
    for (const [to, amount, message] of cases) {
      await pay(alice, "#transfer", { to, amount });
      await expect.poll(() => alice.page.textContent("#transfer .outcome")).toMatch(message);
      expect(await outcomeOf(alice, "#transfer")).toBe("invalid");
    }
    expect(alice.log.sent.length).toBe(frames);
    expect(await ledgerBalance(a)).toBe(8800n);
    await pay(alice, "#transfer", { to: String(a), amount: "1" });
    await expect.poll(() => outcomeOf(alice, "#transfer")).toBe("sameAccount");
    await pay(alice, "#transfer", { to: "999999", amount: "1" });
    await expect.poll(() => outcomeOf(alice, "#transfer")).toBe("accountNotFound");
    expect(await alice.page.textContent("#transfer .outcome")).toContain("no account 999999");
    expect(await ledgerBalance(a)).toBe(8800n);
  });

  it("shows markup in an account name and a memo as text, and runs none of it", async () => {
    const alice = users.get("alice") as User;
    const bob = users.get("bob") as User;
    const jar = accounts.get("jar") as bigint;
    const memo = `<script>globalThis.__pwned=2</script><i>thanks</i> & "more"`;
    expect(await bob.page.textContent(`[data-account="${jar}"] .account-name`)).toBe(JAR_NAME);
    await pay(alice, "#transfer", { to: String(jar), amount: "3", memo });
    await expect.poll(() => outcomeOf(alice, "#transfer")).toBe("applied");
    await expect.poll(() => shown(bob, jar)).toBe("300");
    // The statement of the jar: the last 30 days, with the memo.
    await bob.page.selectOption("#statements select[name=account]", String(jar));
    await bob.page.click("#statements button[type=submit]");
    await expect.poll(() => bob.page.textContent("#statements td.memo")).toBe(memo);
    expect(await bob.page.getAttribute("#statements tbody tr[data-journal] td.amount", "data-minor")).toBe(
      "300",
    );
    expect(await bob.page.getAttribute("#statements tr.closing td.amount", "data-minor")).toBe("300");
    expect(await bob.page.getAttribute("#statements tr.opening td.amount", "data-minor")).toBe("0");
    // The names are also options of the forms' account choices: text there too.
    expect(await bob.page.$$eval("#transfer option", (os) => os.map((o) => o.textContent))).toContain(
      `${JAR_NAME} (account ${jar})`,
    );
    for (const page of [alice.page, bob.page]) {
      expect(await page.$$eval("#page img, #page script, #page b, #page i", (found) => found.length)).toBe(0);
      expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    }
    expect(bob.log.errors).toEqual([]);
    expect(alice.log.errors).toEqual([]);
  });

  it("shows an employee only the facets their role grants: a clerk views and deposits, the admin does all", async () => {
    const alice = users.get("alice") as User;
    const bob = users.get("bob") as User;
    const b = accounts.get("bob") as bigint;
    const orgAccount = accounts.get("acme") as bigint;
    const facets = (user: User) =>
      user.page.$$eval(org(`[data-account="${orgAccount}"] [data-facet]`), (els) =>
        els.map((e) => e.getAttribute("data-facet")),
      );
    const approvals = (user: User) => user.page.$$eval(org("[data-facet=approve]"), (l) => l.length);
    expect(await bob.page.getAttribute(org(), "data-role")).toBe("clerk");
    expect(await facets(bob)).toEqual(["view", "deposit"]);
    expect(await approvals(bob)).toBe(0);
    // No form in the organization asks where money goes: the clerk can only pay in.
    expect(await bob.page.$$eval(org(".payment-form input[name=to]"), (l) => l.length)).toBe(0);
    expect(await alice.page.$$eval(org(".payment-form input[name=to]"), (l) => l.length)).toBe(1);
    expect(await bob.page.textContent(org(".role"))).toContain("may view the accounts, deposit.");
    expect(await alice.page.getAttribute(org(), "data-role")).toBe("admin");
    expect(await facets(alice)).toEqual(["view", "deposit", "pay"]);
    expect(await approvals(alice)).toBe(1);
    // The organization's name is text as well.
    expect(await bob.page.textContent(org(".org-name"))).toBe(ORG_NAME);
    expect(await bob.page.$$eval("#page em", (l) => l.length)).toBe(0);
    expect(await shown(bob, orgAccount, org())).toBe("50000");

    // Bob deposits from his own account: both employees' pages see the organization's balance move.
    await pay(bob, org("[data-facet=deposit]"), { from: b, amount: "5", memo: "float" });
    await expect.poll(() => outcomeOf(bob, org("[data-facet=deposit]"))).toBe("applied");
    await expect.poll(() => shown(bob, orgAccount, org())).toBe("50500");
    await expect.poll(() => shown(alice, orgAccount, org())).toBe("50500");
    await expect.poll(() => shown(bob, b)).toBe("5700");
    expect(await ledgerBalance(orgAccount)).toBe(50_500n);
    expect(bob.log.errors).toEqual([]);
  });

  it("a role changed while the page is open: its facets go, and the page shows what the new role grants", async () => {
    const bob = users.get("bob") as User;
    const orgAccount = accounts.get("acme") as bigint;
    await ledger.defineRole(orgId, {
      name: "payer",
      permissions: { ...NONE, pay: true, perPaymentLimit: 1_000n },
    });
    await ledger.setEmployeeRole(orgId, await userId("bob"), "payer");
    // The old deposit facet is revoked; using it makes the page read what the role grants now.
    await pay(bob, org("[data-facet=deposit]"), { from: accounts.get("bob"), amount: "1" });
    await expect.poll(() => bob.page.getAttribute(org(), "data-role")).toBe("payer");
    const scope = org(`[data-account="${orgAccount}"]`);
    expect(
      await bob.page.$$eval(`${scope} [data-facet]`, (l) => l.map((e) => e.getAttribute("data-facet"))),
    ).toEqual(["pay"]);
    expect(await bob.page.$$eval(`${scope} .balance`, (l) => l.length)).toBe(0);
    expect(await ledgerBalance(accounts.get("bob") as bigint)).toBe(5_700n);
    // The new role's limit is the bank's answer, shown as such.
    await pay(bob, `${scope} [data-facet=pay]`, { to: String(accounts.get("bob")), amount: "20" });
    await expect.poll(() => outcomeOf(bob, `${scope} [data-facet=pay]`)).toBe("limitExceeded");
    expect(await bob.page.textContent(`${scope} [data-facet=pay] .outcome`)).toContain(
      `${await money(bob, "10.00")} per payment`,
    );
    expect(await ledgerBalance(orgAccount)).toBe(50_500n);
  });

  it("a payment above the threshold waits, and another employee's approval completes it on the maker's page", async () => {
    const alice = users.get("alice") as User;
    const bob = users.get("bob") as User;
    const orgAccount = accounts.get("acme") as bigint;
    const b = accounts.get("bob") as bigint;
    await ledger.setApprovalThreshold(orgId, 1_000n);
    const carol = await logIn("carol", [orgAccount]);
    expect(await carol.page.getAttribute(org(), "data-role")).toBe("checker");
    expect(await carol.page.textContent(org("[data-facet=approve]"))).toContain("No payment is waiting");

    const scope = org(`[data-account="${orgAccount}"] [data-facet=pay]`);
    await pay(alice, scope, { to: String(b), amount: "20", memo: "invoice <7>" });
    await expect.poll(() => outcomeOf(alice, scope)).toBe("pendingApproval");
    expect(await alice.page.textContent(`${scope} .outcome`)).toContain("Waiting for approval");
    expect(await ledgerBalance(orgAccount)).toBe(50_500n);

    await carol.page.click(org("[data-facet=approve] > button"));
    const row = org("[data-facet=approve] li[data-maker=alice]");
    const twenty = await money(carol, "20.00");
    await expect
      .poll(() => carol.page.textContent(row))
      .toContain(`${twenty} from account ${orgAccount} to account ${b}`);
    expect(await carol.page.textContent(`${row} .memo`)).toBe("invoice <7>");
    await carol.page.click(`${row} button[data-action=approve]`);
    await expect.poll(() => outcomeOf(carol, org("[data-facet=approve]"))).toBe("applied");
    // The maker's page learns the decision by itself (PendingPayment.wait), and balances move live.
    await expect
      .poll(() => alice.page.textContent(`${scope} .outcome`))
      .toContain(`Approved. Sent ${twenty}`);
    expect(await outcomeOf(alice, scope)).toBe("applied");
    await expect.poll(() => shown(alice, orgAccount, org())).toBe("48500");
    await expect.poll(() => shown(carol, orgAccount, org())).toBe("48500");
    await expect.poll(() => shown(bob, b)).toBe("7700");
    await expect.poll(() => carol.page.$$eval(row, (l) => l.length)).toBe(0);
    expect(carol.log.errors).toEqual([]);
  });

  it("a transfer whose answer is lost to a dropped connection is sent again with the same id: applied once", async () => {
    const alice = users.get("alice") as User;
    const bob = users.get("bob") as User;
    const a = accounts.get("alice") as bigint;
    const b = accounts.get("bob") as bigint;
    const balance = await ledgerBalance(a);
    let cuts = 0;
    // The bank publishes a commit before it answers: cut alice's network right then, so the
    // transfer is durable and its answer never reaches her page.
    const unsubscribe = web.server.broker.bus.subscribe(BANK_CHANGED, (e) => {
      if (e.receipt.from === Number(a) && e.receipt.amount === "333" && cuts === 0) {
        cuts++;
        proxy.cut();
      }
    });
    try {
      await pay(alice, "#transfer", { to: String(b), amount: "3.33", memo: "once" });
      await expect.poll(() => outcomeOf(alice, "#transfer"), { timeout: 20_000 }).toBe("exists");
    } finally {
      unsubscribe();
    }
    expect(cuts).toBe(1);
    expect(await alice.page.textContent("#transfer .outcome")).toContain("Already sent");
    expect(alice.log.statuses).toContain("reconnecting…");
    expect(await ledgerBalance(a)).toBe(balance - 333n);
    const s = await ledger.statement(Number(a), 0, Date.now() + 1000, 1000, Date.now());
    expect(s.entries.filter((e) => e.memo === "once").map((e) => e.amount)).toEqual([-333n]);
    // Her page, on its new connection, shows the bank's balance, and still hears changes.
    await expect.poll(() => shown(alice, a)).toBe(String(balance - 333n));
    await pay(bob, "#transfer", { from: b, to: String(a), amount: "1", memo: "after the drop" });
    await expect.poll(() => shown(alice, a)).toBe(String(balance - 233n));
  });
});
