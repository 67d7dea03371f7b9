/**
 * The broker's composition root: an HTTP server whose `/rpc` path speaks Cap'n Proto RPC over
 * WebSocket, plus a TCP listener with standard stream framing. Every connection gets its own
 * RpcConnection and its own bootstrap capability. `startBroker` also serves the web pages on the
 * same port (src/web-server.ts answers every other HTTP request).
 *
 * Tests: test/server.test.ts
 */
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { CapHook, Capability } from "./caps/index.js";
import { type Limits, resolveLimits } from "./limits.js";
import type { Clock } from "./clock.js";
import type { SignUpMode } from "./cred/authorizer.js";
import { Broker, keyringPair, type ServiceModule } from "./login/index.js";
import { RpcConnection } from "./rpc/index.js";
import { bank } from "./services/bank/bank-service.js";
import { chat } from "./services/chat/chat-service.js";
import { go } from "./services/go/go-service.js";
import { lobby } from "./services/lobby/lobby-service.js";
import type { RoleConfig } from "./services/router/roles.js";
import { router } from "./services/router/router-service.js";
import { wallet } from "./services/wallet/wallet-service.js";
import { type BrokerStore, type KeyringPair, SqliteBrokerStore } from "./store/index.js";
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
  /**
   * Answers HTTP requests other than the WebSocket upgrade at `/rpc` (startBroker: the web pages,
   * src/web-server.ts). Default: `/` answers one line of text, anything else 404.
   */
  readonly http?: (req: IncomingMessage, res: ServerResponse) => void;
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

  const http: HttpServer = createServer(
    options.http ??
      ((req, res) => {
        res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/plain; charset=utf-8" });
        res.end(
          req.url === "/" ? "Parallax broker: Cap'n Proto RPC over WebSocket at /rpc\n" : "not found\n",
        );
      }),
  );
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

export interface BrokerServerOptions extends Omit<ServerOptions, "bootstrap"> {
  /** Folder of the SQLite store (`parallax.db`). Default `./data`. Ignored when `store` is given. */
  readonly dataDir?: string;
  /** A store to use instead of opening `dataDir` (the caller closes it). */
  readonly store?: BrokerStore;
  /**
   * The service modules to run, e.g. `[lobby(), wallet()]`. Default: `DEFAULT_SERVICES()`. The
   * admin service always runs.
   */
  readonly services?: readonly ServiceModule[];
  readonly signUp?: SignUpMode;
  /** What new users may attach. Default: every perspective of the default services for members. */
  readonly defaultKeyring?: readonly KeyringPair[];
  /** Allows anonymous logins with this keyring. */
  readonly anonymousKeyring?: readonly KeyringPair[];
  /** How often the broker looks for changes other processes (the CLI) made, in ms. */
  readonly watchIntervalMs?: number;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /**
   * Serve the web pages (src/web/: sign-up and login at `/`, chat at `/chat`), bundled in memory
   * when the broker starts, once per process (src/web-server.ts). Default true; false: `/`
   * answers one line of text, as `startServer` does. Ignored when `http` is given.
   */
  readonly web?: boolean;
}

export interface BrokerServer extends ParallaxServer {
  readonly broker: Broker;
  readonly store: BrokerStore;
}

/** Options of the default services that `parallax serve` exposes. */
export interface DefaultServicesOptions {
  /** The router's roles and their URI rules (`parallax serve --roles file.json`). */
  readonly roles?: RoleConfig;
}

/**
 * The services `npm start` runs: the lobby, wallet sync, the bank, Go, chat and the router (new
 * modules per call).
 */
export function DEFAULT_SERVICES(options: DefaultServicesOptions = {}): ServiceModule[] {
  return [lobby(), wallet(), bank(), go(), chat(), router({ roles: options.roles })];
}

/**
 * The default keyring of new users: what the default services grant (lobby member, wallet owner,
 * bank customer and employee, Go player, chat member, router session). The bank's banker pair goes on staff keyrings only.
 */
export const DEFAULT_KEYRING: readonly KeyringPair[] = Object.freeze(
  DEFAULT_SERVICES().flatMap((m) => m.defaultKeyring.map(keyringPair)),
);

/**
 * The broker: every connection's bootstrap is a Root that offers only logins; identities and
 * credentials live in the store (SQLite at `dataDir/parallax.db` by default).
 */
export async function startBroker(options: BrokerServerOptions = {}): Promise<BrokerServer> {
  let http = options.http;
  if (http === undefined && options.web !== false) {
    // Loaded here so that brokers without pages never load esbuild.
    const { webBundle, webHandler } = await import("./web-server.js");
    http = webHandler(await webBundle());
  }
  const ownStore = options.store === undefined;
  const store =
    options.store ?? SqliteBrokerStore.open(path.join(options.dataDir ?? "./data", "parallax.db"));
  let broker: Broker | undefined;
  try {
    broker = new Broker({
      store,
      services: options.services ?? DEFAULT_SERVICES(),
      signUp: options.signUp,
      defaultKeyring: options.defaultKeyring,
      anonymousKeyring: options.anonymousKeyring,
      limits: options.limits,
      watchIntervalMs: options.watchIntervalMs,
      clock: options.clock,
    });
    const running = broker;
    const server = await startServer({
      ...options,
      http,
      bootstrap: (connection) => running.root(connection),
    });
    return {
      ...server,
      connections: server.connections,
      broker: running,
      store,
      async close() {
        await server.close();
        running.close();
        if (ownStore) store.close();
      },
    };
  } catch (err) {
    broker?.close();
    if (ownStore) store.close();
    throw err;
  }
}
