/**
 * Parallax for browsers: what a client needs, and nothing that imports Node (the dependency test
 * holds it to that, and a test bundles it for the browser platform).
 */
import type { Limits } from "./limits.js";
import { RpcConnection } from "./rpc/index.js";
import { connectBrowserWebSocket } from "./transport/browser-websocket.js";

export * from "./caps/index.js";
export { ErrorCode, type ErrorKind, ParallaxError } from "./errors.js";
export { DEFAULT_LIMITS, type Limits, resolveLimits } from "./limits.js";
export {
  type ConnectionStats,
  connectionOf,
  onDisconnect,
  RpcConnection,
  type RpcConnectionOptions,
} from "./rpc/index.js";
export { connectBrowserWebSocket } from "./transport/browser-websocket.js";
export * as brokerSchema from "./wire/gen/broker.js";
export * as demoSchema from "./wire/gen/demo.js";
export * as lobbySchema from "./wire/gen/lobby.js";

/** Connects to a broker's `ws://…/rpc` (or `wss://`) endpoint with the browser's WebSocket. */
export async function connectBrowser(
  url: string,
  options: { limits?: Partial<Limits> } = {},
): Promise<RpcConnection> {
  return new RpcConnection(await connectBrowserWebSocket(url, options.limits), { limits: options.limits });
}
