/**
 * The bank demo (`npm run demo:bank`): seed 001's story — a bank, people with private accounts
 * who log in with key pairs, an organization whose employees hold different permissions — told
 * as capabilities, against a real broker on a temporary folder, over WebSocket, through the
 * public API only (and the `parallax` CLI, as the bank's operator would run it).
 *
 * Every step prints one numbered line: `✔` when it behaved as described, `✘` with what was
 * expected and what happened instead. The process exits 0 only if every step behaved as
 * described (1 otherwise, also on any unexpected error), after closing every client, connection
 * and server and removing the temporary folder.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  attach,
  BANK_BANKER,
  BANK_CHANGED,
  BANK_CUSTOMER,
  BANK_EMPLOYEE,
  BANK_STORE,
  BankClient,
  type BrokerServer,
  bankSchema,
  brokerSchema,
  connect,
  DEFAULT_KEYRING,
  ErrorCode,
  generateEd25519,
  loginWithKey,
  loginWithPassword,
  makeVerifier,
  type ReconnectEvent,
  ReconnectingClient,
  type RpcConnection,
  signUp,
  startBroker,
} from "../src/index.js";
import { codeOf, failure, runStory, Steps } from "./steps.js";

const { Root } = brokerSchema;
const { LimitKind, Payer, TransferOutcome_Which } = bankSchema;
type Identity = brokerSchema.Identity;
type KeyPair = ReturnType<typeof generateEd25519>;
const CLI = path.resolve(import.meta.dirname, "../src/cli.ts");

// --- reporting -------------------------------------------------------------------------------

const steps = new Steps();

const OUTCOMES = new Map<number, string>(
  Object.entries(TransferOutcome_Which).map(([name, value]) => [
    value,
    name.toLowerCase().replace(/_(.)/g, (_, c: string) => c.toUpperCase()),
  ]),
);
/** The union member of a TransferOutcome: "applied", "exists", "limitExceeded", … */
const outcomeOf = (o: bankSchema.TransferOutcome): string => OUTCOMES.get(o.which()) ?? `#${o.which()}`;

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const newId = (): Uint8Array => crypto.getRandomValues(new Uint8Array(16));

/** Runs `parallax …` on the broker's data folder, as the bank's operator would. */
function parallax(args: string[], data: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args, "--data", data], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

// --- resources (closed at the end, whatever happens) -------------------------------------------

const folders: string[] = [];
const servers: BrokerServer[] = [];
const connections: RpcConnection[] = [];
const reconnecting: ReconnectingClient[] = [];

async function cleanUp(): Promise<void> {
  for (const c of reconnecting) c.close();
  for (const c of connections) c.close("the demo is done");
  for (const s of servers) await s.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
}

// --- the story ---------------------------------------------------------------------------------

async function story(): Promise<void> {
  const data = mkdtempSync(path.join(tmpdir(), "parallax-bank-demo-"));
  folders.push(data);
  const server = await startBroker({ port: 0, tcpPort: null, dataDir: data, signUp: "open" });
  servers.push(server);
  console.log(`broker with the bank and open sign-up at ${server.url} (data in a temporary folder)`);

  const newRoot = async (): Promise<brokerSchema.Root> => {
    const connection = await connect(server.url);
    connections.push(connection);
    return connection.bootstrap(Root);
  };
  const keyLogin = async (name: string, key: KeyPair, device: string): Promise<Identity> => {
    const r = await loginWithKey(await newRoot(), name, key, { device });
    if (r.identity === undefined) throw new Error(`${name}'s registered key answered a pending request`);
    return r.identity;
  };

  console.log("\n## The bank");
  // The operator adds bank staff through the store (as `parallax user add` does), with the
  // banker pair on the keyring next to the default ones.
  const { verifier } = await makeVerifier("teller password");
  const bankerPair = { service: BANK_BANKER.service, perspective: BANK_BANKER.perspective };
  await server.store.createIdentity({
    name: "teller",
    verifier,
    keyring: [...DEFAULT_KEYRING, bankerPair],
  });
  const tellerLogin = (await loginWithPassword(await newRoot(), "teller", "teller password")).identity;
  const banker = attach(tellerLogin, BANK_BANKER);
  {
    const who = (await tellerLogin.whoami()).info;
    const hasBanker = who.keyring.toArray().some((k) => k.service === "bank" && k.perspective === "banker");
    const totals = (await banker.totals()).totals.toArray();
    steps.report(
      who.name === "teller" && hasBanker && totals.length === 0,
      `the teller logged in with a banker pair on the keyring and attached bank/banker: the ledger is empty`,
      "the teller's keyring holds bank/banker, and totals() lists no currency yet",
    );
  }

  console.log("\n## Two people, logging in with key pairs (client-chosen ids cannot be trusted)");
  const people = new Map<string, KeyPair>();
  for (const name of ["alice", "bob"]) {
    // Sign up with a password, register an Ed25519 key from that login.
    const up = await signUp(await newRoot(), name, `${name}'s password`);
    if (up.identity === undefined) throw new Error(`${name}'s sign-up answered pending`);
    const key = generateEd25519();
    await up.identity.addPublicKey({ publicKey: key.publicKey, device: `${name}'s laptop` });
    up.identity.dispose();
    people.set(name, key);
    const login = await keyLogin(name, key, `${name}'s laptop`);
    const who = (await login.whoami()).info;
    steps.report(
      who.name === name && who.authMethod === brokerSchema.AuthMethod.PUBLIC_KEY,
      `${name} signed up, registered an Ed25519 key from that password login, and logged in with the key pair on a new connection (grant "${who.grant}")`,
      `whoami says ${name}, a public-key login`,
    );
    login.dispose();
  }
  const aliceKey = people.get("alice") as KeyPair;
  const bobKey = people.get("bob") as KeyPair;
  {
    // Claiming to be alice proves nothing: a key she did not register gets no Identity.
    const stranger = generateEd25519();
    const r = await loginWithKey(await newRoot(), "alice", stranger, { device: "not alice" });
    const pending = r.pending !== undefined;
    r.pending?.dispose();
    r.identity?.dispose();
    steps.report(
      pending,
      pending
        ? `someone saying "I am alice" with another key pair gets no Identity: only a device request that alice must approve`
        : "someone with another key pair logged in as alice",
      "an unregistered key for alice answers pending, never an Identity",
    );
  }

  // Private accounts, opened by the bank, with cash deposited at the counter.
  const alice = attach(await keyLogin("alice", aliceKey, "alice's laptop"), BANK_CUSTOMER);
  const bob = attach(await keyLogin("bob", bobKey, "bob's laptop"), BANK_CUSTOMER);
  const aliceNo = (await banker.openAccount({ owner: "alice", currency: "EUR", name: "alice main" })).info
    .number;
  const bobNo = (await banker.openAccount({ owner: "bob", currency: "EUR", name: "bob main" })).info.number;
  const cashIn = async (account: bigint, amount: bigint, memo: string): Promise<string> =>
    outcomeOf((await banker.deposit({ account, id: newId(), amount, memo })).outcome);
  const deposits = [await cashIn(aliceNo, 1000n, "cash at the counter"), await cashIn(bobNo, 500n, "cash")];
  const accountOf = async (who: bankSchema.Customer) => {
    const [mine] = (await who.accounts()).accounts.toArray();
    if (mine === undefined) throw new Error("no account");
    return mine;
  };
  const aliceAccount = await accountOf(alice);
  const bobAccount = await accountOf(bob);
  steps.report(
    deposits.every((d) => d === "applied") &&
      aliceAccount.info.number === aliceNo &&
      aliceAccount.info.balance === 1000n &&
      bobAccount.info.balance === 500n,
    `the teller opened account ${aliceNo} for alice and ${bobNo} for bob and deposited cash (${deposits.join(", ")}); each sees only their own: alice ${aliceAccount.info.balance}, bob ${bobAccount.info.balance}`,
    "both deposits applied; alice's customer perspective lists her account with 1000, bob's his with 500",
  );

  console.log("\n## An organization whose employees hold different permissions");
  const employees = new Map<string, Identity>();
  for (const name of ["carol", "dave", "erin", "frank"]) {
    const up = await signUp(await newRoot(), name, `${name}'s password`);
    if (up.identity === undefined) throw new Error(`${name}'s sign-up answered pending`);
    employees.set(name, up.identity);
  }
  const permissions = {
    organizations: [
      {
        name: "Acme",
        currency: "EUR",
        admin: "carol",
        approvalThreshold: 200,
        roles: [
          { name: "clerk", view: true, pay: true, perPaymentLimit: 100, perDayLimit: 150 },
          { name: "checker", view: true, approve: true },
          { name: "cashier", deposit: true },
        ],
        employees: [
          { user: "dave", role: "clerk" },
          { user: "erin", role: "checker" },
          { user: "frank", role: "cashier" },
        ],
      },
    ],
  };
  const file = path.join(data, "bank_permissions.json");
  writeFileSync(file, JSON.stringify(permissions, null, 2));
  {
    // The seed's permission file, imported by the operator with the CLI while the broker runs.
    console.log(`$ parallax bank import bank_permissions.json`);
    const r = await parallax(["bank", "import", file], data);
    for (const line of r.out.trim().split("\n")) console.log(`  ${line}`);
    steps.report(
      r.code === 0 &&
        /organization Acme \(id 1\): created/.test(r.out) &&
        r.out.includes("frank: cashier (new"),
      r.code === 0
        ? "the operator imported the permissions file: Acme, its roles clerk, checker and cashier, and three employees besides carol, its admin"
        : `the import failed (${r.code}): ${r.err.trim()}`,
      "exit 0: Acme created with carol as admin, dave clerk, erin checker, frank cashier",
    );
  }
  const staff = new Map<string, bankSchema.Employee>();
  for (const [name, identity] of employees) staff.set(name, attach(identity, BANK_EMPLOYEE));
  const jobOf = async (name: string): Promise<bankSchema.Employment> => {
    const [job] = (await (staff.get(name) as bankSchema.Employee).employments()).employments.toArray();
    if (job === undefined) throw new Error(`${name} has no employment`);
    return job;
  };
  const facetsOf = async (name: string): Promise<bankSchema.Facets> => (await jobOf(name)).facets.get(0);
  const acmeNo = (await jobOf("carol")).organization.accounts.get(0).number;
  {
    // What each one's perspective hands out.
    const shown: string[] = [];
    for (const name of ["carol", "dave", "erin", "frank"]) {
      const job = await jobOf(name);
      const f = job.facets.get(0);
      const held = [
        f.hasView() ? "view" : "",
        f.hasDeposit() ? "deposit" : "",
        f.hasPay() ? "pay" : "",
        f.hasApprove() ? "approve" : "",
        job.hasManage() ? "manage" : "",
      ].filter((x) => x !== "");
      shown.push(`${name} (${job.role.name}): ${held.join(", ")}`);
    }
    const text = shown.join("; ");
    steps.report(
      text ===
        "carol (admin): view, deposit, pay, approve, manage; dave (clerk): view, pay; erin (checker): view, approve; frank (cashier): deposit",
      `each employee's perspective hands out only their role's facets — ${text}`,
      "carol all five, dave view and pay, erin view and approve, frank deposit only",
    );
  }
  const capital = await cashIn(acmeNo, 5000n, "capital");
  steps.report(
    capital === "applied",
    `the teller deposited 5000 of capital into Acme's account ${acmeNo} (${capital})`,
    "the deposit applied",
  );

  console.log("\n## Concurrent transfers from several connections");
  {
    // Alice and bob on two connections each, and dave paying from Acme, all at once.
    const pay = (from: bankSchema.PrivateAccount | bankSchema.Payer, to: bigint, amount: bigint) =>
      from
        .pay({ transfer: { id: newId(), to, amount, currency: "EUR", memo: "" } })
        .then((r) => outcomeOf(r.outcome));
    const aliceAgain = attach(await keyLogin("alice", aliceKey, "alice's phone"), BANK_CUSTOMER);
    const bobAgain = attach(await keyLogin("bob", bobKey, "bob's phone"), BANK_CUSTOMER);
    const payers = [
      { from: aliceAccount.account, to: bobNo, amount: 5n },
      { from: (await accountOf(aliceAgain)).account, to: bobNo, amount: 5n },
      { from: bobAccount.account, to: aliceNo, amount: 3n },
      { from: (await accountOf(bobAgain)).account, to: aliceNo, amount: 3n },
    ];
    const clerk = (await facetsOf("dave")).pay;
    const all = await Promise.all([
      ...payers.flatMap((p) => Array.from({ length: 10 }, () => pay(p.from, p.to, p.amount))),
      ...Array.from({ length: 3 }, () => pay(clerk, aliceNo, 30n)),
    ]);
    const a = (await aliceAccount.account.info()).info.balance;
    const b = (await bobAccount.account.info()).info.balance;
    const acme = (await (await facetsOf("carol")).view.info()).info.balance;
    const applied = all.filter((o) => o === "applied").length;
    steps.report(
      applied === 43 && a === 1050n && b === 540n && acme === 4910n,
      `43 transfers at once from 5 connections (alice ⇄ bob on two connections each, dave paying alice from Acme): ${applied} applied; alice ${a}, bob ${b}, Acme ${acme}`,
      "all 43 applied; alice 1000 − 100 + 60 + 90 = 1050, bob 500 + 100 − 60 = 540, Acme 5000 − 90 = 4910",
    );
  }

  console.log("\n## A retry after a dropped connection, applied once");
  {
    // Alice's BankClient over a ReconnectingClient. The server cuts her connection the
    // instant the bank announces the transfer committed, before its answer is sent.
    const events: string[] = [];
    const before = new Set(server.connections);
    const client = new ReconnectingClient({
      connect: () => connect(server.url),
      login: async (root) => {
        const r = await loginWithKey(root, "alice", aliceKey, { device: "alice's tablet" });
        if (r.identity === undefined) throw new Error("alice's key answered pending");
        return r.identity;
      },
      device: "alice's tablet",
      baseDelayMs: 50,
      onEvent: (e: ReconnectEvent) =>
        void events.push(e.type === "connected" && e.resumed ? "resumed" : e.type),
    });
    reconnecting.push(client);
    await client.start();
    const line = [...server.connections].find((c) => !before.has(c));
    const retries: string[] = [];
    const bankClient = new BankClient(client, {
      backoffMs: 50,
      onRetry: (attempt, error) => void retries.push(`try ${attempt}: ${error.code}`),
    });
    await bankClient.start();
    const id = newId();
    let cut = false;
    const unsubscribe = server.broker.bus.subscribe(BANK_CHANGED, (e) => {
      if (e.receipt.id === hex(id) && !cut) {
        cut = true;
        line?.close("the network failed");
      }
    });
    const result = await bankClient.pay(aliceNo, {
      id,
      to: bobNo,
      amount: 75n,
      currency: "EUR",
      memo: "the retried one",
    });
    unsubscribe();
    console.log(`  the client saw: ${events.join(" → ")}; retried after ${retries.join(", ")}`);
    const s = (await aliceAccount.account.statement({ from: 0n, to: BigInt(Date.now() + 60_000) })).statement;
    const entries = s.entries.toArray().filter((e) => hex(e.transferId) === hex(id));
    steps.report(
      cut &&
        result.tries === 2 &&
        outcomeOf(result.outcome) === "exists" &&
        entries.length === 1 &&
        s.closing === 975n,
      `alice paid bob 75; the server dropped her connection after committing it, her BankClient reconnected and resent the same id: "${outcomeOf(result.outcome)}" after ${result.tries} tries, ${entries.length} entry in her statement, balance ${s.closing}`,
      'the resend answers "exists" on the second try; one statement entry; alice 1050 − 75 = 975',
    );
  }

  console.log("\n## Employees refused beyond their permissions");
  const daveFacets = await facetsOf("dave");
  const clerk = daveFacets.pay;
  const clerkPays = async (amount: bigint) =>
    (await clerk.pay({ transfer: { id: newId(), to: bobNo, amount, currency: "EUR", memo: "" } })).outcome;
  {
    // Dave's limits: 100 per payment, 150 a day (he paid 90 today already).
    const big = await clerkPays(101n);
    steps.report(
      outcomeOf(big) === "limitExceeded" && big.limitExceeded.kind === LimitKind.PER_PAYMENT,
      `dave (clerk) paying 101 from Acme: ${outcomeOf(big)} (per payment, limit ${big.limitExceeded.limit})`,
      "limitExceeded, per payment, limit 100",
    );
    const day = await clerkPays(70n);
    steps.report(
      outcomeOf(day) === "limitExceeded" &&
        day.limitExceeded.kind === LimitKind.PER_DAY &&
        day.limitExceeded.used === 90n,
      `dave paying 70 more today: ${outcomeOf(day)} (per day, limit ${day.limitExceeded.limit}, ${day.limitExceeded.used} used)`,
      "limitExceeded, per day, limit 150, 90 used",
    );
  }
  {
    // Erin's facet has no pay: there is nothing to call, and a cast does not make one.
    const checker = await facetsOf("erin");
    const forged = checker.view.castAs(Payer);
    const err = await failure(
      forged.pay({ transfer: { id: newId(), to: bobNo, amount: 1n, currency: "EUR", memo: "" } }),
    );
    const code = codeOf(err);
    steps.report(
      checker.hasPay() === false && code === ErrorCode.UNIMPLEMENTED,
      `erin (checker) holds no pay facet at all; her view facet cast to Payer answers ${code}`,
      `no pay facet, and the cast call fails with ${ErrorCode.UNIMPLEMENTED}`,
    );
  }

  console.log("\n## A payment waiting for a second employee's approval");
  const carolFacets = await facetsOf("carol");
  {
    // Above the threshold (200), carol's payment waits; she may not approve it herself.
    const big = (
      await carolFacets.pay.pay({
        transfer: { id: newId(), to: bobNo, amount: 400n, currency: "EUR", memo: "invoice 17" },
      })
    ).outcome;
    if (outcomeOf(big) !== "pendingApproval") {
      steps.report(false, `carol's payment of 400 answered ${outcomeOf(big)}`, "pendingApproval");
      return;
    }
    const pending = big.pendingApproval;
    let waited = "still waiting";
    const waiting = pending.wait().then(
      (r) => {
        waited = outcomeOf(r.outcome);
        return r.outcome;
      },
      (e: unknown) => {
        waited = String(e);
        return undefined;
      },
    );
    const request = (await pending.info()).payment;
    steps.report(
      request.amount === 400n && request.maker === "carol" && waited === "still waiting",
      `carol (admin) paid 400 from Acme, above the threshold of 200: pendingApproval; she waits on it (made by "${request.maker}")`,
      "pendingApproval for 400, made by carol, and her wait() has not answered",
    );
    await steps.expectFailure(
      carolFacets.approve.approve({ id: request.id }),
      ErrorCode.PERMISSION_DENIED,
      "carol approving her own payment is refused",
    );
    // Erin, who holds approve, sees it and approves: carol's wait() answers.
    const checker = (await facetsOf("erin")).approve;
    const list = (await checker.pending()).payments.toArray();
    const decided = await checker.approve({ id: request.id });
    const outcome = await waiting;
    const acme = (await (await facetsOf("carol")).view.info()).info.balance;
    steps.report(
      list.length === 1 && outcomeOf(decided.outcome) === "applied" && waited === "applied" && acme === 4510n,
      `erin (checker) saw ${list.length} pending payment (${list.map((p) => `${p.amount} by ${p.maker}`).join(", ")}) and approved it: ${outcomeOf(decided.outcome)}; carol's wait() answered ${waited} (journal row ${outcome?.applied.journalSeq}); Acme ${acme}`,
      "one pending payment, approved: applied, and carol's wait() answers applied; Acme 4910 − 400 = 4510",
    );
  }

  console.log("\n## A revoked employee");
  {
    // Carol removes dave through her manage facet: his facets die at once, his login stays.
    const manager = (await jobOf("carol")).manage;
    await manager.removeEmployee({ username: "dave" });
    const payErr = await failure(clerkPays(1n));
    const viewErr = await failure(daveFacets.view.info());
    const jobs = (await (staff.get("dave") as bankSchema.Employee).employments()).employments.toArray()
      .length;
    const who = (await (employees.get("dave") as Identity).whoami()).info.name;
    steps.report(
      codeOf(payErr) === ErrorCode.REVOKED &&
        codeOf(viewErr) === ErrorCode.REVOKED &&
        jobs === 0 &&
        who === "dave",
      `carol removed dave: his pay facet answers ${codeOf(payErr)}, his view facet ${codeOf(viewErr)}; he has ${jobs} employments now, and his login still answers whoami ("${who}")`,
      `both facets fail with ${ErrorCode.REVOKED}, no employment left, whoami still works`,
    );
  }

  console.log("\n## Conservation");
  {
    // Per currency, every balance sums to zero; the journal's hash chain verifies.
    const totals = (await banker.totals()).totals.toArray();
    const shown = totals
      .map((t) => `${t.currency} sum ${t.sum} over ${t.accounts} accounts, pending ${t.pendingSum}`)
      .join("; ");
    steps.report(
      totals.length === 1 && totals.every((t) => t.sum === 0n && t.pendingSum === 0n),
      `totals: ${shown} — deposits came from the bank's cash account, so no money was made or destroyed`,
      "EUR sums to 0, pending 0",
    );
    const ledger = server.store.repository(BANK_STORE);
    const inProcess = await ledger?.verifyJournal();
    console.log("$ parallax bank verify");
    const r = await parallax(["bank", "verify"], data);
    console.log(`  ${r.out.trim()}`);
    steps.report(
      r.code === 0 &&
        inProcess?.firstBad === undefined &&
        r.out.trim() === `journal: ${inProcess?.rows} rows, chain intact`,
      `the operator verified the journal's hash chain with the CLI: ${r.out.trim()}`,
      `exit 0, "journal: ${inProcess?.rows} rows, chain intact"`,
    );
  }
}

await runStory(steps, story, cleanUp, { blankLine: true });
