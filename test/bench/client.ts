/**
 * A benchmark client process: `tsx test/bench/client.ts <system> <workload> <port>`.
 * Prints one JSON line with the workload's figures. Every loop is bounded by a call count.
 */
import { createServer, connect as netConnect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { newWebSocketRpcSession } from "capnweb";
import WebSocket from "ws";
import { connect } from "../../src/client.js";
import { Demo } from "../../src/wire/gen/demo.js";

const [system, workload, portArg] = process.argv.slice(2) as [string, string, string];
const serverPort = Number(portArg);
// Cap'n Web looks for a global WebSocket (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
const PAYLOAD = Uint8Array.from({ length: 100 }, (_, i) => i);

interface BenchClient {
  echo(): Promise<void>;
  chain(): Promise<void>;
  close(): void;
}

async function open(port: number): Promise<BenchClient> {
  const url = `ws://127.0.0.1:${port}/rpc`;
  if (system === "parallax") {
    const conn = await connect(url, { limits: { idleTimeoutMs: 0 } });
    const demo = conn.bootstrap(Demo);
    return {
      async echo() {
        using p = demo.echo({ payload: PAYLOAD });
        await p;
      },
      async chain() {
        using a = demo.newCounter({ start: 0n });
        using b = a.counter.inc();
        using c = b.self.get();
        await c;
      },
      close: () => conn.close(),
    };
  }
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  if (system === "ws") {
    const waiting: Array<() => void> = [];
    ws.on("message", () => waiting.shift()?.());
    const echo = () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        ws.send(PAYLOAD);
      });
    return {
      echo,
      async chain() {
        await echo();
        await echo();
        await echo();
      },
      close: () => ws.close(),
    };
  }
  // biome-ignore lint/suspicious/noExplicitAny: capnweb stubs are untyped proxies here
  const api: any = newWebSocketRpcSession(ws as unknown as globalThis.WebSocket);
  return {
    async echo() {
      await api.echo(PAYLOAD);
    },
    async chain() {
      await api.newCounter().inc().get();
    },
    close: () => ws.close(),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

/** Runs `total` calls spread over `workers` loops, each one call in flight. */
async function drive(clients: BenchClient[], perClient: number, total: number) {
  const latencies: number[] = [];
  let left = total;
  const started = process.hrtime.bigint();
  const loop = async (c: BenchClient) => {
    while (left > 0) {
      left--;
      const t0 = process.hrtime.bigint();
      await c.echo();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: perClient }, () => loop(c))));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    calls_per_s: Math.round(total / seconds),
    p50_us: Math.round(percentile(latencies, 50)),
    p99_us: Math.round(percentile(latencies, 99)),
  };
}

/** A TCP proxy that delays every chunk by `ms` in each direction. */
async function delayProxy(target: number, ms: number): Promise<number> {
  const server = createServer((inbound: Socket) => {
    const outbound = netConnect(target, "127.0.0.1");
    inbound.setNoDelay(true);
    outbound.setNoDelay(true);
    inbound.on("data", (d) => setTimeout(() => outbound.write(d), ms));
    outbound.on("data", (d) => setTimeout(() => inbound.write(d), ms));
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
    inbound.on("error", () => {});
    outbound.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  server.unref();
  return (server.address() as { port: number }).port;
}

async function main(): Promise<unknown> {
  switch (workload) {
    case "echo-1": {
      const c = await open(serverPort);
      await drive([c], 1, 2000);
      const r = await drive([c], 1, 10_000);
      c.close();
      return r;
    }
    case "echo-64": {
      const c = await open(serverPort);
      await drive([c], 64, 5000);
      const r = await drive([c], 64, 40_000);
      c.close();
      return r;
    }
    case "conn-100": {
      const clients = await Promise.all(Array.from({ length: 100 }, () => open(serverPort)));
      await drive(clients, 1, 5000);
      const r = await drive(clients, 1, 30_000);
      for (const c of clients) c.close();
      return r;
    }
    case "chain-3": {
      const delayMs = 5;
      const c = await open(await delayProxy(serverPort, delayMs));
      for (let i = 0; i < 3; i++) await c.chain();
      const times: number[] = [];
      for (let i = 0; i < 15; i++) {
        const t0 = process.hrtime.bigint();
        await c.chain();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      c.close();
      times.sort((a, b) => a - b);
      const median = percentile(times, 50);
      return {
        round_trips: Math.round((median / (2 * delayMs)) * 100) / 100,
        chain_ms: Math.round(median * 10) / 10,
      };
    }
    case "idle-memory": {
      const clients: BenchClient[] = [];
      for (let i = 0; i < 1000; i++) {
        const c = await open(serverPort);
        await c.echo();
        clients.push(c);
      }
      process.stdout.write("opened\n");
      await new Promise<void>((resolve) => {
        createInterface({ input: process.stdin }).on("line", (l) => {
          if (l.trim() === "close") resolve();
        });
      });
      for (const c of clients) c.close();
      return { opened: clients.length };
    }
    default:
      throw new Error(`unknown workload ${workload}`);
  }
}

main().then(
  (r) => {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    setTimeout(() => process.exit(0), 50);
  },
  (err: unknown) => {
    process.stderr.write(`bench client failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
