/**
 * The `parallax` command line. A composition root: it may import anything.
 *
 *   parallax serve [--port 8700] [--tcp-port 8701] [--host 127.0.0.1] [--data ./data]
 *                  [--sign-up open|approval|closed] [--anonymous]
 *   parallax user add|list|suspend|unsuspend|keyring ...   [--data ./data]
 *   parallax admin pending|approve|reject|audit ...        [--data ./data]
 *   parallax bank open-account|open-org|role|employ|import|statement|totals|verify ... [--data ./data]
 *   parallax gtp --url ws://host:8700/rpc --api-key <key> [-- <engine command...>]
 * The user, admin and bank commands work on the store directly; a running broker notices their
 * changes (revocations, decisions) within a second. The bank commands act as the operator: no
 * login and no grant is checked (as for `user` and `admin`), and they move no money.
 *
 * `gtp` connects a GTP engine (GNU Go when no command is given) to a broker as the bot whose API
 * key it is; see src/services/go/gtp-bridge.ts.
 *
 * Tests: test/cli.test.ts, test/cli-bank.test.ts, test/services/go/gtp-bridge.test.ts
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { normalizeUsername, type SignUpMode } from "./cred/authorizer.js";
import { connect } from "./client.js";
import { ErrorCode, ParallaxError } from "./errors.js";
import { makeVerifier } from "./login/client-login.js";
import { DEFAULT_KEYRING, DEFAULT_SERVICES, startBroker } from "./server.js";
import { DEFAULT_ROLES, isRoleName, readRoleConfig } from "./services/router/roles.js";
import { findGnuGo } from "./services/go/gtp-engine.js";
import { runGtpBridge } from "./services/go/gtp-bridge.js";
import {
  BANK_STORE,
  type BankStore,
  type KeyringPair,
  nameKey,
  type OrganizationRecord,
  type Permissions,
  ROUTER_STORE,
  SqliteBrokerStore,
} from "./store/index.js";
import { Root } from "./wire/gen/broker.js";

const USAGE = `usage:
  parallax serve [--port 8700] [--tcp-port 8701] [--host 127.0.0.1] [--data ./data]
                 [--sign-up open|approval|closed] [--anonymous] [--roles roles.json]
  parallax user add <name> [--keyring service:perspective,...] [--no-password]   (password on stdin)
  parallax user list
  parallax user suspend|unsuspend <name>
  parallax user keyring <name> service:perspective,...
  parallax user role <name> [role]    (the router role; shows it without a role)
  parallax admin pending
  parallax admin approve <id>
  parallax admin reject <id> [--reason text]
  parallax admin audit [--limit 20]
  parallax bank open-account <owner> <currency> <name>
  parallax bank open-org <name> <currency> <admin>
  parallax bank open-org-account <org-id> <currency> <name>
  parallax bank role <org-id> <role> [--view] [--deposit] [--pay] [--per-payment N] [--per-day N]
                     [--approve] [--manage]
  parallax bank employ <org-id> <user> <role>
  parallax bank dismiss <org-id> <user>
  parallax bank threshold <org-id> <amount>
  parallax bank import <file.json>
  parallax bank statement <account> [--from ms] [--to ms]
  parallax bank totals
  parallax bank verify
  parallax gtp --url ws://127.0.0.1:8700/rpc [--api-key key] [-- engine command...]   (bot over GTP)
every command takes --data <folder> (default ./data)
bank: amounts are whole minor units (cents); limits and thresholds of 0 mean none. The bank
commands act as the operator, with no actor: no login or grant is checked, as for user and admin.
They open accounts and organizations and grant roles, but move no money (cash deposits are a
banker's, over RPC). employ/dismiss/role revoke the old grant's facets on every connection.
totals exits 1 if a currency's balances do not sum to 0; verify recomputes the journal's hash
chain and exits 1 naming the first altered row.
gtp (no --data): plays the challenges addressed to the API key's user with a GTP engine (default:
gnugo --mode gtp); the key may come from PARALLAX_API_KEY instead; runs until SIGINT or SIGTERM.`;

function port(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`--${name} must be a port number, got ${value}`);
  return n;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8700" },
      "tcp-port": { type: "string", default: "8701" },
      host: { type: "string", default: "127.0.0.1" },
      data: { type: "string", default: "./data" },
      "sign-up": { type: "string", default: "open" },
      anonymous: { type: "boolean", default: false },
      roles: { type: "string" },
    },
    strict: true,
  });
  const signUp = values["sign-up"];
  const roles =
    values.roles === undefined ? undefined : readRoleConfig(JSON.parse(readFileSync(values.roles, "utf8")));
  if (signUp !== "open" && signUp !== "approval" && signUp !== "closed") {
    throw new Error(`--sign-up must be open, approval or closed, got ${signUp}`);
  }
  mkdirSync(values.data, { recursive: true });
  const server = await startBroker({
    host: values.host,
    port: port(values.port, "port"),
    tcpPort: port(values["tcp-port"], "tcp-port"),
    dataDir: values.data,
    signUp: signUp as SignUpMode,
    anonymousKeyring: values.anonymous ? DEFAULT_KEYRING : undefined,
    services: DEFAULT_SERVICES({ roles }),
  });
  process.stdout.write(
    `parallax: broker on ${path.join(values.data, "parallax.db")} (sign-up ${signUp}${values.anonymous ? ", anonymous allowed" : ""})\n` +
      `parallax: listening on ${server.url} and tcp://${values.host}:${server.tcpPort}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.stdout.write(`parallax: ${signal}: closing ${server.connections.size} connection(s)\n`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await server.close();
  return 0;
}

function parseKeyring(text: string): KeyringPair[] {
  if (text.trim() === "") return [];
  return text.split(",").map((item) => {
    const [service, perspective, ...rest] = item.trim().split(":");
    if (
      service === undefined ||
      perspective === undefined ||
      rest.length > 0 ||
      service === "" ||
      perspective === ""
    ) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `keyring entries look like service:perspective, got "${item}"`,
      );
    }
    return { service, perspective };
  });
}

function showKeyring(keyring: readonly KeyringPair[]): string {
  return keyring.map((k) => `${k.service}:${k.perspective}`).join(",") || "(empty)";
}

function openStore(data: string): SqliteBrokerStore {
  mkdirSync(data, { recursive: true });
  return SqliteBrokerStore.open(path.join(data, "parallax.db"));
}

async function user(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      data: { type: "string", default: "./data" },
      keyring: { type: "string" },
      "no-password": { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, rawName, extra] = positionals;
  const store = openStore(values.data);
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const audit = (detail: string) => ({
    kind: "admin" as const,
    identityId: null,
    username: "cli",
    remoteAddress: "",
    detail,
  });
  try {
    if (sub === "list") {
      for (const u of await store.listIdentities()) {
        out(
          `${u.name}\tepoch ${u.epoch}\t${u.suspended ? "suspended" : "active"}\t${showKeyring(u.keyring)}`,
        );
      }
      return 0;
    }
    if (rawName === undefined)
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `user ${sub ?? ""} needs a user name`);
    const name = normalizeUsername(rawName);
    if (sub === "add") {
      const keyring = values.keyring === undefined ? [...DEFAULT_KEYRING] : parseKeyring(values.keyring);
      let verifier = null;
      if (!values["no-password"]) {
        const password = readFileSync(0, "utf8").split(/\r?\n/)[0] ?? "";
        if (password.length < 8)
          throw new ParallaxError(
            ErrorCode.BAD_ARGUMENT,
            "give a password of at least 8 characters on stdin",
          );
        verifier = (await makeVerifier(password)).verifier;
      }
      await store.createIdentity({ name, verifier, keyring, audit: audit(`user ${name} added`) });
      out(`added ${name} with keyring ${showKeyring(keyring)}`);
      return 0;
    }
    const found = await store.findIdentityByName(name);
    if (found === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
    if (sub === "suspend" || sub === "unsuspend") {
      const epoch = await store.setSuspended(found.id, sub === "suspend", { audit: audit(`${sub} ${name}`) });
      out(`${name} ${sub === "suspend" ? "suspended" : "unsuspended"} (epoch ${epoch}; live logins end)`);
      return 0;
    }
    if (sub === "role") {
      const roles = store.repository(ROUTER_STORE);
      if (roles === undefined) throw new ParallaxError(ErrorCode.STORAGE, "this store has no router tables");
      if (extra === undefined) {
        out(`${name} role ${(await roles.roleOf(found.id)) ?? `${DEFAULT_ROLES.defaultRole} (the default)`}`);
        return 0;
      }
      if (!isRoleName(extra)) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          `a role name is 1..64 of a-z, 0-9, '_' and '-'; got "${extra}"`,
        );
      }
      const epoch = await roles.setRole(found.id, extra, {
        audit: audit(`router role of ${name} set to ${extra}`),
      });
      out(`${name} role ${extra} (epoch ${epoch}; live logins end)`);
      return 0;
    }
    if (sub === "keyring") {
      if (extra === undefined) {
        out(showKeyring(found.keyring));
        return 0;
      }
      const keyring = parseKeyring(extra);
      const epoch = await store.setKeyring(found.id, keyring, { audit: audit(`keyring of ${name} set`) });
      out(`${name} keyring ${showKeyring(keyring)} (epoch ${epoch}; live logins end)`);
      return 0;
    }
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown user command "${sub ?? ""}"`);
  } finally {
    store.close();
  }
}

async function admin(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      data: { type: "string", default: "./data" },
      reason: { type: "string", default: "" },
      limit: { type: "string", default: "20" },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, rawId] = positionals;
  const store = openStore(values.data);
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    if (sub === "pending") {
      const all = await store.listPending(Date.now());
      if (all.length === 0) out("nothing pending");
      for (const p of all) {
        const what = p.kind === "signUp" ? "sign-up" : `device key "${p.device}"`;
        out(
          `${p.id}\t${what}\t${p.username}\tfrom ${p.remoteAddress || "?"}\t${new Date(p.createdAt).toISOString()}`,
        );
      }
      return 0;
    }
    if (sub === "audit") {
      for (const a of await store.listAudit(Number(values.limit))) {
        out(`${new Date(a.at).toISOString()}\t${a.kind}\t${a.username}\t${a.remoteAddress}\t${a.detail}`);
      }
      return 0;
    }
    if (sub === "approve" || sub === "reject") {
      const id = Number(rawId);
      if (!Number.isSafeInteger(id))
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `admin ${sub} needs a request id`);
      const approve = sub === "approve";
      const decision = await store.decidePending(id, approve, values.reason, DEFAULT_KEYRING, {
        audit: {
          kind: approve ? "approved" : "rejected",
          identityId: null,
          username: "cli",
          remoteAddress: "",
          detail: `request ${id}${values.reason === "" ? "" : `: ${values.reason}`}`,
        },
      });
      out(`${approve ? "approved" : "rejected"} request ${id} (${decision.request.username})`);
      return 0;
    }
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown admin command "${sub ?? ""}"`);
  } finally {
    store.close();
  }
}

// --- bank -------------------------------------------------------------------------------------

const MAX_AMOUNT = (1n << 63n) - 1n;
const CURRENCY = /^[A-Z]{3}$/;

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}

/** A whole number of minor units, 0 (when allowed) to 2^63 − 1, from a command-line word. */
function amountArg(text: string | undefined, what: string, allowZero = true): bigint {
  if (text === undefined || !/^\d{1,19}$/.test(text))
    throw bad(`${what} must be a whole number of minor units, got ${text ?? "nothing"}`);
  const n = BigInt(text);
  if (n > MAX_AMOUNT || (n === 0n && !allowZero))
    throw bad(`${what} must be ${allowZero ? 0 : 1} to 2^63 - 1, got ${text}`);
  return n;
}

/** A positive whole number that fits a JS number (account numbers, organization ids, times). */
function idArg(text: string | undefined, what: string, allowZero = false): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || (n === 0 && !allowZero)) {
    throw bad(`${what} must be a whole number${allowZero ? "" : " from 1"}, got ${text ?? "nothing"}`);
  }
  return n;
}

function currencyArg(text: string | undefined): string {
  if (text === undefined || !CURRENCY.test(text))
    throw bad(`a currency is 3 upper-case letters (EUR, USD), got ${text ?? "nothing"}`);
  return text;
}

function showPermissions(p: Permissions): string {
  const out: string[] = [];
  if (p.view) out.push("view");
  if (p.deposit) out.push("deposit");
  if (p.pay) {
    const limits = [
      p.perPaymentLimit > 0n ? `≤ ${p.perPaymentLimit} per payment` : "",
      p.perDayLimit > 0n ? `≤ ${p.perDayLimit} per day` : "",
    ].filter((l) => l !== "");
    out.push(limits.length === 0 ? "pay" : `pay ${limits.join(", ")}`);
  }
  if (p.approve) out.push("approve");
  if (p.manage) out.push("manage");
  return out.join(", ") || "nothing";
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The organization named `name` (compared as user names are), if any. Organizations are never
 * deleted, so their ids run 1, 2, 3, … without gaps; the contract has no lookup by name.
 */
async function organizationNamed(ledger: BankStore, name: string): Promise<OrganizationRecord | undefined> {
  const key = nameKey(name);
  for (let id = 1; ; id++) {
    const org = await ledger.getOrganization(id);
    if (org === undefined) return undefined;
    if (nameKey(org.name) === key) return org;
  }
}

/** The permissions JSON of `bank import`, checked whole (see `readPermissionsFile`). */
interface ImportFile {
  readonly organizations: readonly {
    readonly name: string;
    readonly currency: string;
    readonly admin: string;
    readonly approvalThreshold: bigint | undefined;
    readonly roles: readonly { readonly name: string; readonly permissions: Permissions }[];
    readonly employees: readonly { readonly user: string; readonly role: string }[];
  }[];
  readonly accounts: readonly { readonly owner: string; readonly currency: string; readonly name: string }[];
}

/**
 * Reads and checks the whole permissions file before anything is written: every field's type and
 * range, names unique where they must be, every employee's role defined in the file (or "admin"),
 * every user existing in the store. The first problem is a BAD_ARGUMENT naming the field's path
 * (`organizations[0].roles[1].perDayLimit`).
 */
async function readPermissionsFile(
  text: string,
  users: (name: string) => Promise<boolean>,
): Promise<ImportFile> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw bad(`the file is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const fail = (at: string, message: string): never => {
    throw bad(`${at}: ${message}`);
  };
  const object = (v: unknown, at: string, keys: readonly string[]): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return fail(at, "must be an object");
    for (const k of Object.keys(v)) {
      if (!keys.includes(k))
        fail(`${at}.${k}`.replace(/^\./, ""), `unknown field (known: ${keys.join(", ")})`);
    }
    return v as Record<string, unknown>;
  };
  const list = (v: unknown, at: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) return fail(at, "must be an array");
    return v;
  };
  const name = (v: unknown, at: string): string => {
    if (typeof v !== "string" || v.length === 0 || v.length > 100 || /\p{Cc}/u.test(v)) {
      return fail(at, "must be a name of 1 to 100 characters");
    }
    return v;
  };
  const currency = (v: unknown, at: string): string =>
    typeof v === "string" && CURRENCY.test(v)
      ? v
      : fail(at, "must be a currency code of 3 upper-case letters");
  const flag = (v: unknown, at: string): boolean =>
    v === undefined ? false : typeof v === "boolean" ? v : fail(at, "must be true or false");
  const amount = (v: unknown, at: string): bigint => {
    if (v === undefined) return 0n;
    const ok =
      (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) ||
      (typeof v === "string" && /^\d{1,19}$/.test(v) && BigInt(v) <= MAX_AMOUNT);
    if (!ok) return fail(at, "must be a whole number of minor units, 0 to 2^63 - 1 (a string above 2^53)");
    return BigInt(v as number | string);
  };
  const user = async (v: unknown, at: string): Promise<string> => {
    const n = name(v, at);
    if (!(await users(n))) fail(at, `no user "${n}"`);
    return n;
  };

  const top = object(json, "", ["organizations", "accounts"]);
  const organizations: ImportFile["organizations"][number][] = [];
  const orgKeys = new Set<string>();
  for (const [i, raw] of list(top.organizations, "organizations").entries()) {
    const at = `organizations[${i}]`;
    const o = object(raw, at, ["name", "currency", "admin", "approvalThreshold", "roles", "employees"]);
    const orgName = name(o.name, `${at}.name`);
    if (orgKeys.has(nameKey(orgName))) fail(`${at}.name`, `"${orgName}" is named twice in the file`);
    orgKeys.add(nameKey(orgName));
    const admin = await user(o.admin, `${at}.admin`);
    const roles: ImportFile["organizations"][number]["roles"][number][] = [];
    for (const [j, rawRole] of list(o.roles, `${at}.roles`).entries()) {
      const rat = `${at}.roles[${j}]`;
      const r = object(rawRole, rat, [
        "name",
        "view",
        "deposit",
        "pay",
        "perPaymentLimit",
        "perDayLimit",
        "approve",
        "manage",
      ]);
      const roleName = name(r.name, `${rat}.name`);
      if (roleName === "admin")
        fail(`${rat}.name`, `"admin" is the built-in role of the organization's admin`);
      if (roles.some((x) => x.name === roleName))
        fail(`${rat}.name`, `the role "${roleName}" is defined twice`);
      roles.push({
        name: roleName,
        permissions: {
          view: flag(r.view, `${rat}.view`),
          deposit: flag(r.deposit, `${rat}.deposit`),
          pay: flag(r.pay, `${rat}.pay`),
          perPaymentLimit: amount(r.perPaymentLimit, `${rat}.perPaymentLimit`),
          perDayLimit: amount(r.perDayLimit, `${rat}.perDayLimit`),
          approve: flag(r.approve, `${rat}.approve`),
          manage: flag(r.manage, `${rat}.manage`),
        },
      });
    }
    const employees: { user: string; role: string }[] = [];
    for (const [j, rawEmployee] of list(o.employees, `${at}.employees`).entries()) {
      const eat = `${at}.employees[${j}]`;
      const e = object(rawEmployee, eat, ["user", "role"]);
      const who = await user(e.user, `${eat}.user`);
      if (nameKey(who) === nameKey(admin))
        fail(`${eat}.user`, `${who} is the admin (who holds the role "admin")`);
      if (employees.some((x) => nameKey(x.user) === nameKey(who)))
        fail(`${eat}.user`, `${who} is listed twice`);
      const role = name(e.role, `${eat}.role`);
      if (role !== "admin" && !roles.some((r) => r.name === role)) {
        fail(`${eat}.role`, `no role "${role}" in ${at}.roles (nor the built-in "admin")`);
      }
      employees.push({ user: who, role });
    }
    organizations.push({
      name: orgName,
      currency: currency(o.currency, `${at}.currency`),
      admin,
      approvalThreshold:
        o.approvalThreshold === undefined
          ? undefined
          : amount(o.approvalThreshold, `${at}.approvalThreshold`),
      roles,
      employees,
    });
  }
  const accounts: { owner: string; currency: string; name: string }[] = [];
  for (const [i, raw] of list(top.accounts, "accounts").entries()) {
    const at = `accounts[${i}]`;
    const a = object(raw, at, ["owner", "currency", "name"]);
    accounts.push({
      owner: await user(a.owner, `${at}.owner`),
      currency: currency(a.currency, `${at}.currency`),
      name: name(a.name, `${at}.name`),
    });
  }
  return { organizations, accounts };
}

/**
 * Applies a checked permissions file, idempotently: an organization that exists (by name) is
 * updated, not duplicated — its admin keeps or regains "admin", each role is (re)defined, each
 * listed employee gets the listed role, the threshold is set if given, and it gets an account in
 * the currency if it has none; employees the file does not list are left alone (dismissing is
 * `bank dismiss`, never an omission). An account is opened unless its owner has one of that
 * currency and name.
 */
async function applyPermissionsFile(
  store: SqliteBrokerStore,
  ledger: BankStore,
  file: ImportFile,
  out: (line: string) => void,
): Promise<void> {
  const idOf = async (name: string): Promise<number> => {
    const found = await store.findIdentityByName(normalizeUsername(name));
    if (found === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
    return found.id;
  };
  for (const o of file.organizations) {
    const adminId = await idOf(o.admin);
    let org = await organizationNamed(ledger, o.name);
    if (org === undefined) {
      const made = await ledger.createOrganization({ name: o.name, currency: o.currency, adminId });
      org = made.org;
      out(
        `organization ${org.name} (id ${org.id}): created, account ${made.account.number} (${o.currency}), admin ${o.admin}`,
      );
    } else {
      out(`organization ${org.name} (id ${org.id}): exists, updated`);
      const accounts = await ledger.accountsOf({ orgId: org.id });
      if (!accounts.some((a) => a.currency === o.currency)) {
        const a = await ledger.openAccount({
          currency: o.currency,
          name: org.name,
          kind: "organization",
          orgId: org.id,
          noOverdraft: true,
        });
        out(`  account ${a.number} (${o.currency}): opened`);
      }
      const before = await ledger.employment(org.id, adminId);
      if (before?.role.name !== "admin") {
        await ledger.setEmployeeRole(org.id, adminId, "admin");
        out(`  ${o.admin}: admin`);
      }
    }
    const orgId = org.id;
    for (const r of o.roles) {
      await ledger.defineRole(orgId, r);
      out(`  role ${r.name}: ${showPermissions(r.permissions)}`);
    }
    for (const e of o.employees) {
      const id = await idOf(e.user);
      const before = await ledger.employment(orgId, id);
      const epoch = await ledger.setEmployeeRole(orgId, id, e.role);
      const was =
        before === undefined ? "new" : before.role.name === e.role ? "unchanged" : `was ${before.role.name}`;
      out(`  ${e.user}: ${e.role} (${was}; grant epoch ${epoch})`);
    }
    if (o.approvalThreshold !== undefined) {
      await ledger.setApprovalThreshold(orgId, o.approvalThreshold);
      out(`  approval threshold: ${o.approvalThreshold === 0n ? "none" : o.approvalThreshold}`);
    }
  }
  for (const a of file.accounts) {
    const ownerId = await idOf(a.owner);
    const mine = await ledger.accountsOf({ ownerId });
    const same = mine.find((m) => m.currency === a.currency && m.name === a.name);
    if (same !== undefined) {
      out(`account ${same.number} (${a.currency}, "${a.name}") of ${a.owner}: exists`);
      continue;
    }
    const made = await ledger.openAccount({
      currency: a.currency,
      name: a.name,
      kind: "private",
      ownerId,
      noOverdraft: true,
    });
    out(`account ${made.number} (${a.currency}, "${a.name}") of ${a.owner}: opened`);
  }
}

async function bank(argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  const { values, positionals } = parseArgs({
    args,
    options: {
      data: { type: "string", default: "./data" },
      ...(sub === "role"
        ? {
            view: { type: "boolean", default: false },
            deposit: { type: "boolean", default: false },
            pay: { type: "boolean", default: false },
            "per-payment": { type: "string", default: "0" },
            "per-day": { type: "string", default: "0" },
            approve: { type: "boolean", default: false },
            manage: { type: "boolean", default: false },
          }
        : {}),
      ...(sub === "statement" ? { from: { type: "string", default: "0" }, to: { type: "string" } } : {}),
    },
    allowPositionals: true,
    strict: true,
  });
  const want = (n: number, shape: string): void => {
    if (positionals.length !== n) throw bad(`usage: parallax bank ${sub} ${shape}`);
  };
  const store = openStore(values.data as string);
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const found = store.repository(BANK_STORE);
    if (found === undefined) throw new ParallaxError(ErrorCode.STORAGE, "this store has no bank");
    const ledger: BankStore = found;
    const userId = async (name: string): Promise<number> => {
      const u = await store.findIdentityByName(normalizeUsername(name));
      if (u === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
      return u.id;
    };
    const orgArg = async (text: string | undefined): Promise<OrganizationRecord> => {
      const id = idArg(text, "an organization id");
      const org = await ledger.getOrganization(id);
      if (org === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no organization ${id}`);
      return org;
    };
    const [a, b, c] = positionals;
    switch (sub) {
      case "open-account": {
        want(3, "<owner> <currency> <name>");
        const ownerId = await userId(a as string);
        const account = await ledger.openAccount({
          currency: currencyArg(b),
          name: c as string,
          kind: "private",
          ownerId,
          noOverdraft: true,
        });
        out(`opened account ${account.number} (${account.currency}, "${account.name}") for ${a}`);
        return 0;
      }
      case "open-org": {
        want(3, "<name> <currency> <admin>");
        const adminId = await userId(c as string);
        const { org, account } = await ledger.createOrganization({
          name: a as string,
          currency: currencyArg(b),
          adminId,
        });
        out(
          `opened organization ${org.name} (id ${org.id}) with account ${account.number} (${account.currency}); ${c} is its admin`,
        );
        return 0;
      }
      case "open-org-account": {
        want(3, "<org-id> <currency> <name>");
        const org = await orgArg(a);
        const account = await ledger.openAccount({
          currency: currencyArg(b),
          name: c as string,
          kind: "organization",
          orgId: org.id,
          noOverdraft: true,
        });
        out(
          `opened account ${account.number} (${account.currency}, "${account.name}") for organization ${org.name} (id ${org.id})`,
        );
        return 0;
      }
      case "role": {
        want(
          2,
          "<org-id> <role> [--view] [--deposit] [--pay] [--per-payment N] [--per-day N] [--approve] [--manage]",
        );
        const org = await orgArg(a);
        const v = values as Record<string, string | boolean>;
        const permissions: Permissions = {
          view: v.view === true,
          deposit: v.deposit === true,
          pay: v.pay === true,
          perPaymentLimit: amountArg(v["per-payment"] as string, "--per-payment"),
          perDayLimit: amountArg(v["per-day"] as string, "--per-day"),
          approve: v.approve === true,
          manage: v.manage === true,
        };
        await ledger.defineRole(org.id, { name: b as string, permissions });
        out(
          `role ${b} of ${org.name} (id ${org.id}): ${showPermissions(permissions)} (its holders' older facets are revoked if it changed)`,
        );
        return 0;
      }
      case "employ": {
        want(3, "<org-id> <user> <role>");
        const org = await orgArg(a);
        const epoch = await ledger.setEmployeeRole(org.id, await userId(b as string), c as string);
        out(
          `${b} is ${c} at ${org.name} (id ${org.id}), grant epoch ${epoch}: facets of older grants are revoked`,
        );
        return 0;
      }
      case "dismiss": {
        want(2, "<org-id> <user>");
        const org = await orgArg(a);
        const epoch = await ledger.removeEmployee(org.id, await userId(b as string));
        out(
          `${b} no longer works at ${org.name} (id ${org.id}), grant epoch ${epoch}: every facet of theirs there is revoked`,
        );
        return 0;
      }
      case "threshold": {
        want(2, "<org-id> <amount>");
        const org = await orgArg(a);
        const amount = amountArg(b, "the threshold");
        await ledger.setApprovalThreshold(org.id, amount);
        out(
          `${org.name} (id ${org.id}): ${amount === 0n ? "no payment waits for approval" : `payments above ${amount} wait for a second employee's approval`}`,
        );
        return 0;
      }
      case "import": {
        want(1, "<file.json>");
        const text = readFileSync(a as string, "utf8");
        const file = await readPermissionsFile(text, async (name) => {
          try {
            return (await store.findIdentityByName(normalizeUsername(name))) !== undefined;
          } catch {
            return false;
          }
        });
        await applyPermissionsFile(store, ledger, file, out);
        out(
          `imported ${file.organizations.length} organization(s) and ${file.accounts.length} account(s) from ${a}`,
        );
        return 0;
      }
      case "statement": {
        want(1, "<account> [--from ms] [--to ms]");
        const number = idArg(a, "an account number");
        const now = Date.now();
        const v = values as Record<string, string | undefined>;
        const from = idArg(v.from, "--from", true);
        const to = v.to === undefined ? Math.max(now, from) : idArg(v.to, "--to", true);
        const account = await ledger.getAccount(number);
        if (account === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no account ${number}`);
        const s = await ledger.statement(number, from, to, 1000, now);
        out(
          `account ${number} (${account.currency}, "${account.name}", ${account.kind}) from ${iso(from)} to ${iso(to)}`,
        );
        out(`opening\t${s.opening}`);
        for (const e of s.entries) {
          const signed = e.amount > 0n ? `+${e.amount}` : `${e.amount}`;
          out(
            `${e.journalSeq}\t${iso(e.at)}\t${e.kind}\t${signed}\t${e.balance}\t${e.amount > 0n ? "from" : "to"} ${e.counterparty}\t${e.memo}`,
          );
        }
        out(`closing\t${s.closing}${s.truncated ? "\t(truncated: ask a shorter range)" : ""}`);
        return 0;
      }
      case "totals": {
        want(0, "");
        const all = await ledger.totals();
        if (all.length === 0) out("no accounts");
        for (const t of all)
          out(`${t.currency}\tsum ${t.sum}\tpending ${t.pendingSum}\t${t.accounts} accounts`);
        const broken = all.filter((t) => t.sum !== 0n || t.pendingSum !== 0n);
        if (broken.length === 0) {
          out("conservation: every currency sums to 0");
          return 0;
        }
        out(
          `conservation BROKEN: ${broken.map((t) => `${t.currency} sums to ${t.sum} (pending ${t.pendingSum})`).join(", ")}`,
        );
        return 1;
      }
      case "verify": {
        want(0, "");
        const { rows, firstBad } = await ledger.verifyJournal();
        if (firstBad === undefined) {
          out(`journal: ${rows} rows, chain intact`);
          return 0;
        }
        const [row] = await ledger.journal(firstBad, 1);
        const what =
          row === undefined
            ? ""
            : ` (transfer ${hexOf(row.transferId)}: ${row.kind} of ${row.amount} ${row.currency} from ${row.from} to ${row.to} at ${iso(row.at)})`;
        out(
          `journal: ${rows} rows, row ${firstBad} was altered${what}: its hash, its link to the row before or its number does not match; rows from ${firstBad} on cannot be trusted`,
        );
        return 1;
      }
      default:
        throw bad(`unknown bank command "${sub ?? ""}"`);
    }
  } finally {
    store.close();
  }
}

async function gtp(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      url: { type: "string" },
      "api-key": { type: "string" },
      "poll-ms": { type: "string", default: "3000" },
    },
    allowPositionals: true,
    strict: true,
  });
  const url = values.url;
  if (url === undefined) throw new Error("gtp: --url is required (e.g. ws://127.0.0.1:8700/rpc)");
  const apiKey = values["api-key"] ?? process.env.PARALLAX_API_KEY;
  if (apiKey === undefined || apiKey === "")
    throw new Error("gtp: give the bot's API key with --api-key or PARALLAX_API_KEY");
  const pollMs = Number(values["poll-ms"]);
  if (!Number.isInteger(pollMs) || pollMs < 100)
    throw new Error(`--poll-ms must be an integer ≥ 100, got ${values["poll-ms"]}`);
  let [command, ...args] = positionals;
  if (command === undefined || command === "gnugo") {
    const found = findGnuGo();
    if (found === undefined) throw new Error("gtp: no engine command given and gnugo is not installed");
    if (command === undefined) args = ["--mode", "gtp"];
    command = found;
  }
  const bridge = await runGtpBridge({
    connect: async () => {
      const c = await connect(url);
      return { root: c.bootstrap(Root), close: () => c.close(), onClose: (l) => c.onClose(l) };
    },
    apiKey,
    command,
    args,
    pollMs,
    log: (line) => process.stdout.write(`parallax: ${line}\n`),
  });
  const signal = await new Promise<string | undefined>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
    void bridge.closed.then(() => resolve(undefined));
  });
  if (signal !== undefined) process.stdout.write(`parallax: ${signal}: stopping the engines\n`);
  await bridge.close();
  return signal === undefined ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "user":
      return user(rest);
    case "admin":
      return admin(rest);
    case "bank":
      return bank(rest);
    case "gtp":
      return gtp(rest);
    case "help":
    case "--help":
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(
        `parallax: ${command === undefined ? "no command" : `unknown command ${JSON.stringify(command)}`}\n${USAGE}\n`,
      );
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`parallax: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
