/**
 * `parallax bank …` run as a child process on a temporary store, as an operator would: opening
 * accounts and organizations, roles and employees, importing the permissions JSON (a good file,
 * the same file again changing nothing, a bad file naming its bad field and writing nothing),
 * statements, totals and the journal's offline verification, which names the row a test alters
 * with raw SQL.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BANK_STORE,
  type BankActor,
  type BankStore,
  type PaymentPolicy,
  SqliteBrokerStore,
} from "../src/store/index.js";

const root = path.resolve(import.meta.dirname, "..");
let data: string;
let dbFile: string;
beforeAll(() => {
  data = mkdtempSync(path.join(tmpdir(), "parallax-cli-bank-"));
  dbFile = path.join(data, "parallax.db");
});
afterAll(() => rmSync(data, { recursive: true, force: true }));

/** Runs `parallax …` on the test's data folder; resolves when it exits. */
function cli(args: string[], stdin = ""): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args, "--data", data], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, out, err })));
}

/** Runs `fn` on the test's store, opened in this process, and closes it. */
async function withLedger<T>(fn: (ledger: BankStore, store: SqliteBrokerStore) => Promise<T>): Promise<T> {
  const store = SqliteBrokerStore.open(dbFile);
  try {
    return await fn(store.repository(BANK_STORE) as BankStore, store);
  } finally {
    store.close();
  }
}

function writeJson(name: string, value: unknown): string {
  const file = path.join(data, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

const PERMISSIONS = {
  organizations: [
    {
      name: "Acme",
      currency: "EUR",
      admin: "carol",
      approvalThreshold: 500,
      roles: [
        { name: "clerk", view: true, pay: true, perPaymentLimit: 100, perDayLimit: "150" },
        { name: "checker", view: true, approve: true },
      ],
      employees: [
        { user: "dave", role: "clerk" },
        { user: "erin", role: "checker" },
      ],
    },
  ],
  accounts: [
    { owner: "alice", currency: "EUR", name: "alice main" },
    { owner: "bob", currency: "EUR", name: "bob main" },
  ],
};

/** What the store holds, in a form two snapshots compare by. */
async function snapshot(): Promise<unknown> {
  return withLedger(async (ledger, store) => {
    const orgs = [];
    for (let id = 1; ; id++) {
      const org = await ledger.getOrganization(id);
      if (org === undefined) break;
      orgs.push({
        org,
        employees: (await ledger.employeesOf(id)).map((e) => [e.username, e.role, e.grantEpoch]),
        accounts: await ledger.accountsOf({ orgId: id }),
      });
    }
    const people = [];
    for (const u of await store.listIdentities()) {
      people.push({ name: u.name, accounts: await ledger.accountsOf({ ownerId: u.id }) });
    }
    return { orgs, people };
  });
}

describe("parallax bank", { timeout: 60_000 }, () => {
  it("opens accounts and organizations for existing users, as the operator", async () => {
    for (const name of ["alice", "bob", "carol", "dave", "erin", "frank"]) {
      expect((await cli(["user", "add", name], `${name} password\n`)).code).toBe(0);
    }
    const help = await cli(["help"]);
    expect(help.out).toContain("parallax bank import <file.json>");
    expect(help.out).toContain("act as the operator, with no actor");
    const account = await cli(["bank", "open-account", "frank", "USD", "frank dollars"]);
    expect(account.err).toBe("");
    expect(account.out).toMatch(/^opened account (\d+) \(USD, "frank dollars"\) for frank\n$/);
    const org = await cli(["bank", "open-org", "Globex", "EUR", "frank"]);
    expect(org.out).toMatch(
      /^opened organization Globex \(id 1\) with account \d+ \(EUR\); frank is its admin/,
    );
    const second = await cli(["bank", "open-org-account", "1", "USD", "globex dollars"]);
    expect(second.out).toMatch(
      /opened account \d+ \(USD, "globex dollars"\) for organization Globex \(id 1\)/,
    );
    const role = await cli(["bank", "role", "1", "teller", "--view", "--pay", "--per-payment", "20"]);
    expect(role.out).toContain("role teller of Globex (id 1): view, pay ≤ 20 per payment");
    expect((await cli(["bank", "employ", "1", "alice", "teller"])).out).toContain(
      "alice is teller at Globex (id 1), grant epoch 1",
    );
    expect((await cli(["bank", "dismiss", "1", "alice"])).out).toContain("grant epoch 2");
    expect((await cli(["bank", "threshold", "1", "250"])).out).toContain("payments above 250 wait");
    await withLedger(async (ledger, store) => {
      const frank = await store.findIdentityByName("frank");
      expect((await ledger.accountsOf({ ownerId: frank?.id ?? 0 })).map((a) => a.name)).toEqual([
        "frank dollars",
      ]);
      expect((await ledger.getOrganization(1))?.approvalThreshold).toBe(250n);
      expect((await ledger.employeesOf(1)).map((e) => [e.username, e.role.name])).toEqual([
        ["frank", "admin"],
      ]);
    });
  });

  it("refuses bad arguments with a clear message and exit 1", async () => {
    const unknownUser = await cli(["bank", "open-org", "Initech", "EUR", "zed"]);
    expect(unknownUser.code).toBe(1);
    expect(unknownUser.err).toBe('parallax: no user "zed"\n');
    const currency = await cli(["bank", "open-account", "alice", "eur", "x"]);
    expect(currency.code).toBe(1);
    expect(currency.err).toContain("3 upper-case letters");
    const amount = await cli(["bank", "threshold", "1", "-5"]);
    expect(amount.code).toBe(1);
    const noOrg = await cli(["bank", "employ", "99", "alice", "teller"]);
    expect(noOrg.err).toContain("no organization 99");
    const noRole = await cli(["bank", "employ", "1", "alice", "janitor"]);
    expect(noRole.code).toBe(1);
    expect(noRole.err).toContain("no role named janitor");
  });

  it("imports a permissions file, and importing it again changes nothing", async () => {
    const file = writeJson("permissions.json", PERMISSIONS);
    const first = await cli(["bank", "import", file]);
    expect(first.err).toBe("");
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/organization Acme \(id 2\): created, account \d+ \(EUR\), admin carol/);
    expect(first.out).toContain("role clerk: view, pay ≤ 100 per payment, ≤ 150 per day");
    expect(first.out).toContain("dave: clerk (new; grant epoch 1)");
    expect(first.out).toContain("approval threshold: 500");
    expect(first.out).toMatch(/account \d+ \(EUR, "alice main"\) of alice: opened/);
    const after = await snapshot();
    const again = await cli(["bank", "import", file]);
    expect(again.code).toBe(0);
    expect(again.out).toContain("organization Acme (id 2): exists, updated");
    expect(again.out).toContain("dave: clerk (unchanged; grant epoch 1)");
    expect(again.out).toMatch(/account \d+ \(EUR, "alice main"\) of alice: exists/);
    expect(await snapshot()).toEqual(after);
    await withLedger(async (ledger, store) => {
      const dave = await store.findIdentityByName("dave");
      const job = await ledger.employment(2, dave?.id ?? 0);
      expect(job?.role).toEqual({
        name: "clerk",
        permissions: {
          view: true,
          deposit: false,
          pay: true,
          perPaymentLimit: 100n,
          perDayLimit: 150n,
          approve: false,
          manage: false,
        },
      });
    });
  });

  it("updates an organization that exists: a changed role revokes its holders' grant", async () => {
    const changed = structuredClone(PERMISSIONS);
    const acme = changed.organizations[0] as (typeof PERMISSIONS.organizations)[number];
    (acme.roles[0] as { perPaymentLimit: number }).perPaymentLimit = 50;
    acme.employees.push({ user: "alice", role: "checker" });
    const r = await cli(["bank", "import", writeJson("changed.json", { organizations: [acme] })]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("role clerk: view, pay ≤ 50 per payment, ≤ 150 per day");
    expect(r.out).toContain("alice: checker (new; grant epoch 1)");
    await withLedger(async (ledger, store) => {
      const dave = await store.findIdentityByName("dave");
      const job = await ledger.employment(2, dave?.id ?? 0);
      // the clerk role changed: dave's facets of grant epoch 1 are revoked
      expect(job?.grantEpoch).toBe(2);
      expect(job?.role.permissions.perPaymentLimit).toBe(50n);
    });
  });

  it("refuses a bad file naming the bad field's path, and writes nothing", async () => {
    const before = await snapshot();
    const cases: Array<[unknown, string]> = [
      [
        {
          organizations: [
            { name: "Hooli", currency: "EUR", admin: "bob" },
            { name: "Initech", currency: "EUR", admin: "bob", roles: [{ name: "r", perDayLimit: -1 }] },
          ],
        },
        "organizations[1].roles[0].perDayLimit: must be a whole number of minor units",
      ],
      [
        {
          organizations: [
            { name: "Hooli", currency: "EUR", admin: "bob", employees: [{ user: "zed", role: "admin" }] },
          ],
        },
        'organizations[0].employees[0].user: no user "zed"',
      ],
      [
        {
          organizations: [
            { name: "Hooli", currency: "EUR", admin: "bob", employees: [{ user: "dave", role: "boss" }] },
          ],
        },
        'organizations[0].employees[0].role: no role "boss"',
      ],
      [
        {
          organizations: [
            { name: "Hooli", currency: "EUR", admin: "bob", roles: [{ name: "r", pay: "yes" }] },
          ],
        },
        "organizations[0].roles[0].pay: must be true or false",
      ],
      [
        {
          accounts: [
            { owner: "alice", currency: "EUR", name: "x" },
            { owner: "alice", currency: "€" },
          ],
        },
        "accounts[1].currency",
      ],
      [{ organisations: [] }, "organisations: unknown field"],
      [
        {
          organizations: [
            { name: "Hooli", currency: "EUR", admin: "bob" },
            { name: "hooli", currency: "USD", admin: "bob" },
          ],
        },
        'organizations[1].name: "hooli" is named twice',
      ],
    ];
    for (const [content, message] of cases) {
      const r = await cli(["bank", "import", writeJson("bad.json", content)]);
      expect(r.code, r.out).toBe(1);
      expect(r.err).toContain(message);
      expect(r.out).toBe("");
    }
    const notJson = path.join(data, "not.json");
    writeFileSync(notJson, "{ organizations: ");
    expect((await cli(["bank", "import", notJson])).err).toContain("the file is not JSON");
    expect(await snapshot()).toEqual(before);
  });

  it("prints statements and totals, verifies the journal, and names a row altered with raw SQL", async () => {
    // Money moves only over RPC; here the ledger is driven in-process as the service would.
    const ids = await withLedger(async (ledger, store) => {
      const teller = await store.createIdentity({
        name: "teller",
        verifier: null,
        keyring: [{ service: "bank", perspective: "banker" }],
      });
      const alice = (await store.findIdentityByName("alice")) as { id: number; epoch: number };
      const bob = (await store.findIdentityByName("bob")) as { id: number; epoch: number };
      const [a] = await ledger.accountsOf({ ownerId: alice.id });
      const [b] = await ledger.accountsOf({ ownerId: bob.id });
      if (a === undefined || b === undefined) throw new Error("the import opened no accounts");
      const cash = await ledger.cashAccount("EUR");
      const banker: BankActor = {
        identityId: teller.id,
        epoch: teller.epoch,
        perspective: "banker",
        facet: "deposit",
      };
      const customer: BankActor = {
        identityId: alice.id,
        epoch: alice.epoch,
        perspective: "customer",
        facet: "pay",
      };
      const move = async (
        from: number,
        to: number,
        amount: bigint,
        memo: string,
        actor: BankActor,
        payer: PaymentPolicy["payer"],
      ) => {
        const r = await ledger.transfer(
          { id: new Uint8Array(randomBytes(16)), from, to, amount, currency: "EUR", memo },
          { payer },
          actor,
          Date.now(),
        );
        expect(r.kind).toBe("applied");
      };
      await move(cash.number, a.number, 1000n, "opening cash", banker, { cash: true });
      await move(a.number, b.number, 300n, "rent", customer, { ownerId: alice.id });
      await move(a.number, b.number, 50n, "lunch", customer, { ownerId: alice.id });
      return { alice: a.number, bob: b.number };
    });
    const statement = await cli(["bank", "statement", String(ids.alice)]);
    expect(statement.code).toBe(0);
    const lines = statement.out.trim().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^account ${ids.alice} \\(EUR, "alice main", private\\)`));
    expect(lines[1]).toBe("opening\t0");
    expect(lines.slice(2, 5).map((l) => l.split("\t").slice(2))).toEqual([
      ["single", "+1000", "1000", expect.stringMatching(/^from \d+$/), "opening cash"],
      ["single", "-300", "700", `to ${ids.bob}`, "rent"],
      ["single", "-50", "650", `to ${ids.bob}`, "lunch"],
    ]);
    expect(lines[5]).toBe("closing\t650");
    const future = await cli(["bank", "statement", String(ids.alice), "--from", String(Date.now() + 60_000)]);
    expect(future.out).toContain("opening\t650\nclosing\t650");

    const totals = await cli(["bank", "totals"]);
    expect(totals.code).toBe(0);
    expect(totals.out).toMatch(/^EUR\tsum 0\tpending 0\t\d+ accounts$/m);
    expect(totals.out).toContain("conservation: every currency sums to 0");
    const intact = await cli(["bank", "verify"]);
    expect(intact.code).toBe(0);
    expect(intact.out).toBe("journal: 3 rows, chain intact\n");

    // Someone edits the second payment's amount in the file behind the bank's back.
    const raw = new Database(dbFile);
    try {
      raw.prepare("UPDATE bank_journal SET amount = 30 WHERE seq = 2").run();
    } finally {
      raw.close();
    }
    const altered = await cli(["bank", "verify"]);
    expect(altered.code).toBe(1);
    expect(altered.out).toMatch(
      new RegExp(
        `^journal: 3 rows, row 2 was altered \\(transfer [0-9a-f]{32}: single of 30 EUR from ${ids.alice} to ${ids.bob} at `,
      ),
    );
    expect(altered.out).toContain("rows from 2 on cannot be trusted");

    // And a balance edited the same way breaks conservation.
    const raw2 = new Database(dbFile);
    try {
      raw2
        .prepare("UPDATE bank_accounts SET credits_posted = credits_posted + 5 WHERE number = ?")
        .run(ids.bob);
    } finally {
      raw2.close();
    }
    const broken = await cli(["bank", "totals"]);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/^EUR\tsum 5\tpending 0/m);
    expect(broken.out).toContain("conservation BROKEN: EUR sums to 5 (pending 0)");
  });
});
