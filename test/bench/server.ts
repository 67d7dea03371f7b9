/**
 * A benchmark server process: `tsx test/bench/server.ts <parallax|ws|capnweb> [--broker STORE SYNC]`.
 * Prints `ready <port>` once listening. On stdin, `mem` answers `mem <rssBytes> <connections>`
 * after a full GC (run with --expose-gc).
 *
 * `parallax --broker STORE` also runs the login broker (open sign-up) in the same process, on a
 * second port, over the SQLite store at STORE (a file path, or `:memory:`) opened with
 * `synchronous = SYNC` (FULL, the store's default, or NORMAL), and prints
 * `ready <demoPort> <brokerPort>`: the login workloads log in on one and echo on the other.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { newWebSocketRpcSession, RpcTarget } from "capnweb";
import WebSocket, { WebSocketServer } from "ws";
import { startBroker, startServer } from "../../src/server.js";
import { demoBootstrap } from "../../src/services/demo/demo-service.js";
import { SqliteBrokerStore } from "../../src/store/index.js";

const system = process.argv[2];
const brokerStore = process.argv[3] === "--broker" ? process.argv[4] : undefined;
const brokerSync = process.argv[5] === "NORMAL" ? "NORMAL" : "FULL";
// Cap'n Web looks for a global WebSocket (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
let connections = (): number => 0;

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
    const broker = await startBroker({
      port: 0,
      tcpPort: null,
      store: SqliteBrokerStore.open(brokerStore, { synchronous: brokerSync }),
      signUp: "open",
      limits,
    });
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
    if (line.trim() !== "mem") return;
    (globalThis as { gc?: () => void }).gc?.();
    process.stdout.write(`mem ${process.memoryUsage().rss} ${connections()}\n`);
  });
});
