/**
 * A benchmark server process:
 * `tsx test/bench/server.ts <parallax|ws|capnweb> [--broker STORE SYNC [--bank [--no-ledger]] [--chat]]`.
 * Prints `ready <port>` once listening. On stdin, `mem` answers `mem <rssBytes> <connections>`
 * after a full GC (run with --expose-gc).
 *
 * `parallax --broker STORE` also runs the login broker (open sign-up) in the same process, on a
 * second port, over the SQLite store at STORE (a file path, or `:memory:`) opened with
 * `synchronous = SYNC` (FULL, the store's default, or NORMAL), and prints
 * `ready <demoPort> <brokerPort>`: the login workloads log in on one and echo on the other.
 *
 * `--broker STORE SYNC --bank` also registers the bank workloads' users (`bank-keys.ts`): a teller
 * with the banker pair, a merchant and the payers, each with its Ed25519 key, so that the client
 * logs them in by key (no KDF anywhere). On stdin, `bankstats` answers
 * `bankstats <transactions> <requests> <largest>`: the bank store's group commits so far.
 * `--bank --no-ledger` (bench row bank-no-ledger): the ledger answers every 1-unit transfer
 * `applied` at once, without the store; other transfers (the opening deposits) go to the store.
 *
 * `--broker STORE SYNC --chat` (rows router-fanout and chat-room-1000) registers the fan-out
 * users (`chat-keys.ts`: a publisher, the router subscribers, the room's 1 000 members), each with
 * its Ed25519 key and the default keyring, and runs the default services with one change: chat
 * takes `BENCH_CHAT_MESSAGES_PER_SECOND` posts a second per member and room instead of 10, so the
 * row's posters are bounded by the server, not by the flood limit.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { newWebSocketRpcSession, RpcTarget } from "capnweb";
import WebSocket, { WebSocketServer } from "ws";
import type { ServiceModule } from "../../src/login/index.js";
import { DEFAULT_KEYRING, DEFAULT_SERVICES, startBroker, startServer } from "../../src/server.js";
import { chat } from "../../src/services/chat/chat-service.js";
import { demoBootstrap } from "../../src/services/demo/demo-service.js";
import { BANK_STORE, SqliteBrokerStore } from "../../src/store/index.js";
import { SqliteBankRepository } from "../../src/store/sqlite/bank.js";
import { BANK_PAYERS, benchKey, MERCHANT, payerName, TELLER } from "./bank-keys.js";
import { BENCH_CHAT_MESSAGES_PER_SECOND, fanoutUsers } from "./chat-keys.js";

const system = process.argv[2];
const brokerStore = process.argv[3] === "--broker" ? process.argv[4] : undefined;
const brokerSync = process.argv[5] === "NORMAL" ? "NORMAL" : "FULL";
const flags = process.argv.slice(6);
const withBank = flags.includes("--bank");
const noLedger = withBank && flags.includes("--no-ledger");
const withChat = flags.includes("--chat");
// Cap'n Web looks for a global WebSocket (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
let connections = (): number => 0;
let bankStats = (): string => "0 0 0";

/** Makes `ledger` answer the workload's 1-unit transfers `applied` without touching the store. */
function skipLedger(ledger: SqliteBankRepository): void {
  const real = ledger.transfer.bind(ledger);
  let seq = 1_000_000;
  ledger.transfer = (input, policy, actor, now) => {
    if (input.amount !== 1n) return real(input, policy, actor, now);
    const { id, from, to, amount, currency } = input;
    return Promise.resolve({
      kind: "applied",
      receipt: { id, from, to, amount, currency, at: now, journalSeq: seq++, kind: "single" },
    });
  };
}

/** Registers the bank workloads' users with their public keys (see `bank-keys.ts`). */
async function registerBankUsers(store: SqliteBrokerStore): Promise<void> {
  const banker = { service: "bank", perspective: "banker" };
  const names = [TELLER, MERCHANT, ...Array.from({ length: BANK_PAYERS }, (_, i) => payerName(i))];
  for (const name of names) {
    const keyring = name === TELLER ? [...DEFAULT_KEYRING, banker] : [...DEFAULT_KEYRING];
    const identity = await store.createIdentity({ name, verifier: null, keyring });
    await store.addPublicKey(identity.id, benchKey(name).publicKey, "bench");
  }
}

/** Registers the fan-out rows' users with their public keys (see `chat-keys.ts`). */
async function registerFanoutUsers(store: SqliteBrokerStore): Promise<void> {
  for (const name of fanoutUsers()) {
    const identity = await store.createIdentity({ name, verifier: null, keyring: [...DEFAULT_KEYRING] });
    await store.addPublicKey(identity.id, benchKey(name).publicKey, "bench");
  }
}

/** The default services, with chat's post rate raised for the bench. */
function fanoutServices(): ServiceModule[] {
  return DEFAULT_SERVICES().map((m) =>
    m.name === "chat" ? (chat({ messagesPerSecond: BENCH_CHAT_MESSAGES_PER_SECOND }) as ServiceModule) : m,
  );
}

class WebCounter extends RpcTarget {
  #value = 0;
  inc(by = 1): WebCounter {
    this.#value += by;
    return this;
  }
  get(): number {
    return this.#value;
  }
}

class WebApi extends RpcTarget {
  echo(payload: Uint8Array): Uint8Array {
    return payload;
  }
  newCounter(): WebCounter {
    return new WebCounter();
  }
}

async function main(): Promise<number[]> {
  if (system === "parallax") {
    const limits = { maxConnections: 100_000, idleTimeoutMs: 0 };
    const server = await startServer({ port: 0, tcpPort: null, bootstrap: () => demoBootstrap(), limits });
    connections = () => server.connections.size;
    if (brokerStore === undefined) return [server.port];
    const store = SqliteBrokerStore.open(brokerStore, { synchronous: brokerSync });
    if (withBank) {
      await registerBankUsers(store);
      const ledger = store.repository(BANK_STORE);
      if (!(ledger instanceof SqliteBankRepository)) throw new Error("the store's bank is not SQLite's");
      if (noLedger) skipLedger(ledger);
      bankStats = () => {
        const g = ledger.groupStats;
        return `${g.transactions} ${g.requests} ${g.largest}`;
      };
    }
    if (withChat) await registerFanoutUsers(store);
    const services = withChat ? fanoutServices() : undefined;
    const broker = await startBroker({ port: 0, tcpPort: null, store, signUp: "open", limits, services });
    connections = () => server.connections.size + broker.connections.size;
    return [server.port, broker.port];
  }
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  let open = 0;
  wss.on("connection", (ws) => {
    open++;
    ws.on("close", () => open--);
    if (system === "ws") {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    } else {
      newWebSocketRpcSession(ws as unknown as globalThis.WebSocket, new WebApi());
    }
  });
  connections = () => open;
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  return [(http.address() as AddressInfo).port];
}

main().then((ports) => {
  process.stdout.write(`ready ${ports.join(" ")}\n`);
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() === "exit") process.exit(0);
    if (line.trim() === "bankstats") {
      process.stdout.write(`bankstats ${bankStats()}\n`);
      return;
    }
    if (line.trim() !== "mem") return;
    (globalThis as { gc?: () => void }).gc?.();
    process.stdout.write(`mem ${process.memoryUsage().rss} ${connections()}\n`);
  });
});
