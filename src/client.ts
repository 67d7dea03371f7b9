/**
 * Connecting to a Parallax broker from Node: `ws://…/rpc` (or `wss://`) over WebSocket,
 * `tcp://host:port` over TCP with standard Cap'n Proto framing.
 *
 * Tests: test/server.test.ts, test/transport/
 */
import type { Limits } from "./limits.js";
import { RpcConnection } from "./rpc/index.js";
import { connectTcp, connectWebSocket } from "./transport/index.js";
import { ErrorCode, ParallaxError } from "./errors.js";

export interface ConnectOptions {
  readonly limits?: Partial<Limits>;
}

export async function connect(url: string, options: ConnectOptions = {}): Promise<RpcConnection> {
  const u = new URL(url);
  if (u.protocol === "ws:" || u.protocol === "wss:") {
    return new RpcConnection(await connectWebSocket(url, options.limits), { limits: options.limits });
  }
  if (u.protocol === "tcp:") {
    const host = u.hostname.replace(/^\[|\]$/g, "");
    return new RpcConnection(await connectTcp(host, Number(u.port), options.limits), {
      limits: options.limits,
    });
  }
  throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `cannot connect to ${url}: use ws://, wss:// or tcp://`);
}
