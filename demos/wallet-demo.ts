/**
 * The wallet demo (`npm run demo:wallet`): seed 000, LBRY's wallet-sync test-client walkthrough,
 * replayed end to end as capabilities. A real broker on a temporary folder, two clients ("two
 * computers") on one account, over WebSocket, through the public API only.
 *
 * It prints the session the way the seed's transcript does: `>>> c1.updateRemoteWallet()`, then
 * the client's own messages, then the answer. After each step one numbered line says whether it
 * behaved as the seed says (`✔`), or not (`✘`, with what was expected). The process exits 0 only
 * if every step behaved as described (1 otherwise, also on any unexpected error), after closing
 * every client, connection and server and removing the temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  type BrokerServer,
  brokerSchema,
  type ChangePasswordResult,
  connect,
  ErrorCode,
  type GetRemoteResult,
  LOCAL_CHANGES,
  OUT_OF_DATE,
  type RpcConnection,
  startBroker,
  type UpdateRemoteResult,
  WalletClient,
  type WalletEvent,
} from "../src/index.js";
import { failure, runStory, Steps } from "./steps.js";

const { Root } = brokerSchema;
const SEED_KEYS = ["animal", "car"] as const;

// --- reporting -------------------------------------------------------------------------------

const steps = new Steps();

/** Prints the call as typed at the prompt. */
const prompt = (call: string): void => console.log(`>>> ${call}`);

/** A record the way Python prints a dict: `{'animal': 'cow', 'car': ''}`. */
const py = (record: Record<string, string>): string =>
  `{${Object.entries(record)
    .map(([k, v]) => `'${k}': '${v}'`)
    .join(", ")}}`;

const answer = (r: { status: "success" | "failure" }): string =>
  r.status === "success" ? "'Success'" : "'Failure'";

async function waitFor(pred: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

// --- resources (closed at the end, whatever happens) -------------------------------------------

const folders: string[] = [];
const servers: BrokerServer[] = [];
const connections: RpcConnection[] = [];
const clients: WalletClient[] = [];

async function cleanUp(): Promise<void> {
  for (const c of clients) await c.close();
  for (const c of connections) c.close("the demo is done");
  for (const s of servers) await s.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
}

// --- the steps ---------------------------------------------------------------------------------

/** `>>> cN.updateRemoteWallet()`, expecting `sequence` (or, with `conflict`, the seed's failure). */
async function update(c: WalletClient, sequence: number, conflict = false): Promise<UpdateRemoteResult> {
  prompt(`${c.name}.updateRemoteWallet()`);
  const r = await c.updateRemoteWallet();
  console.log(answer(r));
  if (conflict) {
    steps.report(
      r.status === "failure" && r.reason === OUT_OF_DATE && r.latest?.sequence === sequence,
      r.status === "failure"
        ? `${c.name}'s push was refused: "${r.reason}"; the server answered its latest state, sequence ${r.latest?.sequence}`
        : `${c.name}'s push was accepted as ${r.state.sequence}`,
      `the push fails as out of date, carrying the latest state (sequence ${sequence})`,
    );
  } else {
    steps.report(
      r.status === "success" && r.state.sequence === sequence,
      r.status === "success"
        ? `${c.name} pushed sequence ${r.state.sequence}`
        : `${c.name}'s push failed: ${r.reason}`,
      `the server accepts sequence ${sequence}`,
    );
  }
  return r;
}

/** `>>> cN.getRemoteWallet()`, expecting `sequence` and how the local changes were treated. */
async function get(c: WalletClient, sequence: number, action: GetRemoteResult["action"]): Promise<void> {
  prompt(`${c.name}.getRemoteWallet()`);
  const r = await c.getRemoteWallet();
  console.log(answer(r));
  const how = {
    none: "found no wallet",
    taken: "took it as it is",
    merged: "merged its local changes onto it",
  };
  steps.report(
    r.state?.sequence === sequence && r.action === action,
    `${c.name} got sequence ${r.state?.sequence ?? "(none)"} and ${how[r.action]}`,
    `sequence ${sequence}, and ${c.name} ${how[action]}`,
  );
}

/** `>>> cN.getPreferences()`, expecting exactly `expected`. */
function preferences(c: WalletClient, expected: Record<string, string>): void {
  prompt(`${c.name}.getPreferences()`);
  const p = c.getPreferences(SEED_KEYS);
  console.log(py(p));
  steps.report(py(p) === py(expected), `${c.name}'s preferences are ${py(p)}`, py(expected));
}

function set(c: WalletClient, key: string, value: string): void {
  prompt(`${c.name}.setPreference('${key}', '${value}')`);
  console.log(py(c.setPreference(key, value)));
}

async function changePassword(
  c: WalletClient,
  password: string,
  sequence: number,
  relogin: boolean,
): Promise<ChangePasswordResult> {
  prompt(`${c.name}.changePassword('${password}'${relogin ? "" : ", { relogin: false }"})`);
  const r = await c.changePassword(password, { relogin });
  console.log(answer(r));
  steps.report(
    r.status === "success" && r.state?.sequence === sequence,
    r.status === "success"
      ? `the password changed together with the wallet, re-encrypted as sequence ${r.state?.sequence}`
      : `the password change was refused: ${r.reason}`,
    `the password and the wallet (sequence ${sequence}) change in one call`,
  );
  return r;
}

async function mustFail(
  c: WalletClient,
  call: string,
  run: Promise<unknown>,
  code: ErrorCode,
): Promise<void> {
  prompt(`${c.name}.${call}`);
  const err = await failure(run);
  if (typeof err === "string") steps.report(false, `${c.name}.${call}: ${err}`, `it fails with ${code}`);
  else steps.report(err.code === code, `${c.name}.${call} failed: ${err.code}`, `it fails with ${code}`);
}

async function login(c: WalletClient): Promise<void> {
  prompt(`${c.name}.login()`);
  const err = await failure(c.login());
  steps.report(
    err === "it succeeded",
    err === "it succeeded"
      ? `${c.name} logged in and attached its wallet`
      : `${c.name} could not log in: ${err}`,
    `${c.name} logs in`,
  );
}

function showSalt(c: WalletClient): void {
  prompt(`${c.name}.saltSeed`);
  console.log(`'${c.saltSeed}'`);
}

async function story(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "parallax-wallet-demo-"));
  folders.push(dataDir);
  const server = await startBroker({ port: 0, tcpPort: null, dataDir, signUp: "open" });
  servers.push(server);
  console.log(`broker with open sign-up at ${server.url} (data in a temporary folder)`);

  const email = `joe-${Math.floor(Date.now() / 1000)}@example.com`;
  const newClient = (name: string): WalletClient => {
    const c = new WalletClient({
      name,
      username: email,
      password: "123abc2",
      log: (line) => console.log(line),
      openRoot: async () => {
        const connection = await connect(server.url);
        connections.push(connection);
        console.log(`${name} connected to the Wallet API at ${server.url}`);
        return connection.bootstrap(Root);
      },
    });
    clients.push(c);
    return c;
  };

  console.log("\n## Initial setup and account recovery");
  prompt(`c1 = new WalletClient({ name: "c1", username: "${email}", password: "123abc2", ... })`);
  const c1 = newClient("c1");
  prompt(`c2 = new WalletClient({ name: "c2", username: "${email}", password: "123abc2", ... })`);
  const c2 = newClient("c2");

  prompt("c1.register()");
  await c1.register();
  showSalt(c1);
  steps.report(
    /^[0-9a-f]{32}$/.test(c1.saltSeed ?? ""),
    `c1 registered; its salt seed is ${c1.saltSeed}`,
    "a salt seed",
  );
  prompt("c2.updateDerivedSecrets()");
  await c2.updateDerivedSecrets();
  showSalt(c2);
  steps.report(
    c2.saltSeed === c1.saltSeed,
    "c2 got the same salt seed from the server",
    `c2's salt seed is c1's, ${c1.saltSeed}`,
  );
  await login(c1);
  await login(c2);

  console.log("\n## Syncing");
  prompt("c1.initWalletState()");
  c1.initWalletState();
  await update(c1, 1);
  prompt("c2.initWalletState()");
  c2.initWalletState();
  await get(c2, 1, "taken");

  console.log("\n## Updating");
  await update(c2, 2);
  await get(c1, 2, "taken");

  console.log("\n## Wallet Changes");
  preferences(c1, { animal: "", car: "" });
  preferences(c2, { animal: "", car: "" });
  set(c1, "animal", "cow");
  preferences(c1, { animal: "cow", car: "" });
  await update(c1, 3);
  await get(c2, 3, "taken");
  preferences(c2, { animal: "cow", car: "" });

  console.log("\n## Merging Changes");
  set(c1, "car", "Audi");
  set(c2, "animal", "horse");
  preferences(c1, { animal: "cow", car: "Audi" });
  preferences(c2, { animal: "horse", car: "" });
  await update(c1, 4);
  await get(c2, 4, "merged");
  preferences(c2, { animal: "horse", car: "Audi" });
  await update(c2, 5);
  await get(c1, 5, "taken");
  preferences(c1, { animal: "horse", car: "Audi" });

  console.log("\n## Conflicts");
  set(c2, "animal", "beaver");
  set(c1, "car", "Toyota");
  preferences(c2, { animal: "beaver", car: "Audi" });
  preferences(c1, { animal: "horse", car: "Toyota" });
  await update(c2, 6);
  await update(c1, 6, true);
  preferences(c1, { animal: "horse", car: "Toyota" });
  await get(c1, 6, "merged");
  preferences(c1, { animal: "beaver", car: "Toyota" });
  await update(c1, 7);

  console.log("\n# Changing Password");
  const saltBefore = c1.saltSeed;
  await changePassword(c1, "eggsandwich", 8, false);
  showSalt(c1);
  steps.report(c1.saltSeed !== saltBefore, "c1 has a new salt seed", `a salt seed other than ${saltBefore}`);
  await mustFail(c1, "getRemoteWallet()", c1.getRemoteWallet(), ErrorCode.REVOKED);
  await mustFail(c2, "getRemoteWallet()", c2.getRemoteWallet(), ErrorCode.REVOKED);
  await login(c1);
  await mustFail(c2, "login()", c2.login(), ErrorCode.AUTH_FAILED);
  prompt(`c2.setLocalPassword('eggsandwich')`);
  await c2.setLocalPassword("eggsandwich");
  showSalt(c2);
  steps.report(
    c2.saltSeed === c1.saltSeed,
    "c2 derived its keys from the new salt seed",
    `c1's, ${c1.saltSeed}`,
  );
  await login(c2);

  set(c1, "animal", "leemur");
  prompt(`c1.changePassword('starboard')`);
  const refused = await c1.changePassword("starboard");
  console.log(answer(refused));
  steps.report(
    refused.status === "failure" && refused.reason === LOCAL_CHANGES,
    refused.status === "failure" ? `refused: "${refused.reason}"` : "the password changed",
    `refused: "${LOCAL_CHANGES}"`,
  );
  await update(c1, 9);
  await changePassword(c1, "starboard", 10, false);
  await login(c1);
  prompt(`c2.setLocalPassword('starboard')`);
  await c2.setLocalPassword("starboard");
  await login(c2);

  console.log("\n# Websockets (here: the WalletWatcher each login attaches)");
  const heard: Record<string, WalletEvent[]> = { c1: [], c2: [] };
  for (const c of [c1, c2]) {
    prompt(`${c.name}.watch(listener)`);
    c.watch((e) => {
      heard[c.name]?.push(e);
    });
    console.log(`${c.name} listening for now`);
  }
  const updates = (name: string): string =>
    (heard[name] ?? []).map((e) => (e.type === "walletUpdated" ? String(e.sequence) : e.type)).join(", ");
  for (const sequence of [11, 12]) {
    await update(c1, sequence);
    const both = await waitFor(
      () => updates("c1").endsWith(String(sequence)) && updates("c2").endsWith(String(sequence)),
    );
    steps.report(
      both && updates("c1") === updates("c2"),
      `c1 and c2 were notified of [${updates("c1")}] and [${updates("c2")}]`,
      `both notified of every update up to ${sequence}, in order`,
    );
  }
  await changePassword(c1, "ihatesockets", 13, true);
  const revoked = await waitFor(() => updates("c1").endsWith("revoked") && updates("c2").endsWith("revoked"));
  const reasons = [c1, c2].map((c) => {
    const last = heard[c.name]?.at(-1);
    return last?.type === "revoked" ? last.reason : "(none)";
  });
  steps.report(
    revoked && reasons.every((r) => r === "the password was changed"),
    `both watchers heard [${updates("c1")}] / [${updates("c2")}], ending "${reasons.join('" / "')}"`,
    'walletUpdated 13 then revoked "the password was changed", on both',
  );
}

await runStory(steps, story, cleanUp, { summary: "as the seed says", blankLine: true });
