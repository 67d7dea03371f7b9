/**
 * The broker's composition root: an HTTP server whose `/rpc` path speaks Cap'n Proto RPC over
 * WebSocket, plus a TCP listener with standard stream framing. Every connection gets its own
 * RpcConnection and its own bootstrap capability.
 */
import { createServer, type Server as HttpServer } from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { CapHook, Capability } from "./caps/index.js";
import { type Limits, resolveLimits } from "./limits.js";
import type { SignUpMode } from "./cred/authorizer.js";
import { Broker, type Service } from "./login/index.js";
import { RpcConnection } from "./rpc/index.js";
import { LobbyService } from "./services/lobby/lobby-service.js";
import { WalletService } from "./services/wallet/wallet-service.js";
import { type BrokerStore, type KeyringPair, SqliteBrokerStore, type WalletStore } from "./store/index.js";
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

export interface BrokerServerOptions extends Omit<ServerOptions, "bootstrap"> {
  /** Folder of the SQLite store (`parallax.db`). Default `./data`. Ignored when `store` is given. */
  readonly dataDir?: string;
  /** A store to use instead of opening `dataDir` (the caller closes it). */
  readonly store?: BrokerStore;
  /** The services to run. Default: the lobby and wallet sync. The admin service always runs. */
  readonly services?: readonly Service[];
  readonly signUp?: SignUpMode;
  /** What new users may attach. Default: every perspective of the default services for members. */
  readonly defaultKeyring?: readonly KeyringPair[];
  /** Allows anonymous logins with this keyring. */
  readonly anonymousKeyring?: readonly KeyringPair[];
  /** How often the broker looks for changes other processes (the CLI) made, in ms. */
  readonly watchIntervalMs?: number;
}

export interface BrokerServer extends ParallaxServer {
  readonly broker: Broker;
  readonly store: BrokerStore;
}

/** The default keyring of new users: what `npm start` lets them attach. */
export const DEFAULT_KEYRING: readonly KeyringPair[] = Object.freeze([
  { service: "lobby", perspective: "member" },
  { service: "wallet", perspective: "owner" },
]);

function isWalletStore(store: BrokerStore): store is BrokerStore & WalletStore {
  return typeof (store as Partial<WalletStore>).updateWallet === "function";
}

/**
 * The broker: every connection's bootstrap is a Root that offers only logins; identities and
 * credentials live in the store (SQLite at `dataDir/parallax.db` by default).
 */
export async function startBroker(options: BrokerServerOptions = {}): Promise<BrokerServer> {
  const ownStore = options.store === undefined;
  const store =
    options.store ?? SqliteBrokerStore.open(path.join(options.dataDir ?? "./data", "parallax.db"));
  try {
    const broker = new Broker({
      store,
      services: options.services ?? [new LobbyService()],
      signUp: options.signUp,
      defaultKeyring: options.defaultKeyring ?? DEFAULT_KEYRING,
      anonymousKeyring: options.anonymousKeyring,
      limits: options.limits,
      watchIntervalMs: options.watchIntervalMs,
    });
    if (options.services === undefined && isWalletStore(store)) {
      broker.addService(new WalletService({ store, broker }));
    }
    const server = await startServer({ ...options, bootstrap: (connection) => broker.root(connection) });
    return {
      ...server,
      connections: server.connections,
      broker,
      store,
      async close() {
        await server.close();
        broker.close();
        if (ownStore) store.close();
      },
    };
  } catch (err) {
    if (ownStore) store.close();
    throw err;
  }
}
