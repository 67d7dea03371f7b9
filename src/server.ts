/**
 * The broker's composition root: an HTTP server whose `/rpc` path speaks Cap'n Proto RPC over
 * WebSocket, plus a TCP listener with standard stream framing. Every connection gets its own
 * RpcConnection and its own bootstrap capability.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { CapHook, Capability } from "./caps/index.js";
import { type Limits, resolveLimits } from "./limits.js";
import { RpcConnection } from "./rpc/index.js";
import {
  attachWebSocketServer,
  listenTcp,
  type TcpListener,
  type Transport,
  type WebSocketListener,
} from "./transport/index.js";

export interface ServerOptions {
  /** Address to listen on. Default 127.0.0.1. */
  readonly host?: string;
  /** WebSocket (HTTP) port; 0 picks a free one. Default 8700. */
  readonly port?: number;
  /** TCP port; 0 picks a free one; `null` serves no TCP. Default 8701. */
  readonly tcpPort?: number | null;
  readonly limits?: Partial<Limits>;
  /** Makes the bootstrap capability for one new connection (whose reference the server drops after handing it over). */
  readonly bootstrap: (connection: RpcConnection) => Capability | CapHook;
  /** Send exception stack traces to peers (debugging only). */
  readonly exposeStacks?: boolean;
}

export interface ParallaxServer {
  /** `ws://host:port/rpc` */
  readonly url: string;
  readonly port: number;
  readonly tcpPort: number | undefined;
  /** Live RPC connections. */
  readonly connections: ReadonlySet<RpcConnection>;
  /** Closes every connection cleanly and stops listening. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<ParallaxServer> {
  const host = options.host ?? "127.0.0.1";
  const limits = resolveLimits(options.limits);
  const connections = new Set<RpcConnection>();

  const serve = (transport: Transport): void => {
    const connection = new RpcConnection(transport, { limits, exposeStacks: options.exposeStacks });
    const bootstrap = options.bootstrap(connection);
    connection.setBootstrap(bootstrap);
    if ("dispose" in bootstrap) bootstrap.dispose();
    else bootstrap.release();
    connections.add(connection);
    connection.onClose(() => connections.delete(connection));
  };

  const http: HttpServer = createServer((req, res) => {
    res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/plain; charset=utf-8" });
    res.end(req.url === "/" ? "Parallax broker: Cap'n Proto RPC over WebSocket at /rpc\n" : "not found\n");
  });
  const ws: WebSocketListener = attachWebSocketServer(http, { path: "/rpc", limits, onConnection: serve });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 8700, host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  let tcp: TcpListener | undefined;
  const tcpPort = options.tcpPort === undefined ? 8701 : options.tcpPort;
  if (tcpPort !== null) {
    try {
      tcp = await listenTcp({ host, port: tcpPort, limits, onConnection: serve });
    } catch (err) {
      await ws.close();
      await new Promise<void>((r) => http.close(() => r()));
      throw err;
    }
  }
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `ws://${urlHost}:${port}/rpc`,
    port,
    tcpPort: tcp?.port,
    connections,
    async close() {
      for (const c of [...connections]) c.close("server shutting down");
      await Promise.all([ws.close(), tcp?.close()]);
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
