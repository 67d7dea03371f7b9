/** Two real RPC sessions over the in-memory transport, and the leak check every protocol test ends with. */
import { expect, vi } from "vitest";
import type { Capability } from "../../src/caps/index.js";
import type { Limits } from "../../src/limits.js";
import { RpcConnection, type RpcConnectionOptions } from "../../src/rpc/index.js";
import { demoBootstrap } from "../../src/services/demo/demo-service.js";
import { memoryPair } from "../../src/transport/index.js";
import { Demo } from "../../src/wire/gen/demo.js";

export interface Pair {
  readonly client: RpcConnection;
  readonly server: RpcConnection;
  readonly demo: Demo;
}

export function connectPair(
  options: { bootstrap?: Capability; limits?: Partial<Limits>; server?: RpcConnectionOptions } = {},
): Pair {
  const [a, b] = memoryPair(options.limits);
  const bootstrap = options.bootstrap ?? demoBootstrap();
  const server = new RpcConnection(b, { bootstrap, limits: options.limits, ...options.server });
  bootstrap.dispose();
  const client = new RpcConnection(a, { limits: options.limits });
  return { client, server, demo: client.bootstrap(Demo) };
}

const EMPTY = { questions: 0, answers: 0, imports: 0, exports: 0, embargoes: 0 };

/** Waits until all four tables (and embargoes) are empty on every connection. */
export async function expectNoLeaks(...connections: RpcConnection[]): Promise<void> {
  await vi.waitFor(
    () => {
      for (const c of connections) expect(c.stats()).toEqual(EMPTY);
    },
    { timeout: 2000, interval: 5 },
  );
}
