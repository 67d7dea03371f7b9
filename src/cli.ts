/**
 * The `parallax` command line. A composition root: it may import anything.
 *
 *   parallax serve [--port 8700] [--tcp-port 8701] [--host 127.0.0.1] [--data ./data]
 *                  [--sign-up open|approval|closed] [--anonymous]
 *   parallax user add|list|suspend|unsuspend|keyring ...   [--data ./data]
 *   parallax admin pending|approve|reject|audit ...        [--data ./data]
 * The user and admin commands work on the store directly; a running broker notices their
 * changes (revocations, decisions) within a second.
 *
 * Tests: test/cli.test.ts
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { normalizeUsername, type SignUpMode } from "./cred/authorizer.js";
import { ErrorCode, ParallaxError } from "./errors.js";
import { makeVerifier } from "./login/client-login.js";
import { DEFAULT_KEYRING, startBroker } from "./server.js";
import { type KeyringPair, SqliteBrokerStore } from "./store/index.js";

const USAGE = `usage:
  parallax serve [--port 8700] [--tcp-port 8701] [--host 127.0.0.1] [--data ./data]
                 [--sign-up open|approval|closed] [--anonymous]
  parallax user add <name> [--keyring service:perspective,...] [--no-password]   (password on stdin)
  parallax user list
  parallax user suspend|unsuspend <name>
  parallax user keyring <name> service:perspective,...
  parallax admin pending
  parallax admin approve <id>
  parallax admin reject <id> [--reason text]
  parallax admin audit [--limit 20]
every command takes --data <folder> (default ./data)`;

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
    },
    strict: true,
  });
  const signUp = values["sign-up"];
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "user":
      return user(rest);
    case "admin":
      return admin(rest);
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
