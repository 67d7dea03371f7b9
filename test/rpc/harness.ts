/**
 * Two real RPC sessions over the in-memory transport. The leak check every protocol test ends
 * with lives in test/helpers/rpc-stats.ts; it is re-exported here for test/server.test.ts, which
 * imports it from this file.
 */
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

export { expectNoLeaks } from "../helpers/rpc-stats.js";
