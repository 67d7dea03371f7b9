/**
 * A broker on an in-memory store with a manual clock, clients over the in-memory transport, and
 * a memoizing KDF. Every harness is a leak test: `close()` closes the clients, then asserts that
 * the broker kept nothing (no login, usage, waiter or pre-login connection), that every
 * connection's tables are empty, and that every per-user service's attachments balanced
 * (attached = detached: no user state, no attachment, no listener left).
 */
import { expect } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { Argon2Kdf } from "../../src/cred/argon2-kdf.js";
import type { SignUpMode } from "../../src/cred/authorizer.js";
import { type Kdf, memoizeKdf } from "../../src/cred/kdf.js";
import type { Limits } from "../../src/limits.js";
import { loginWithPassword, makeVerifier } from "../../src/login/client-login.js";
import { Broker, PerUserService, type ServiceModule } from "../../src/login/index.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { DEFAULT_KEYRING } from "../../src/server.js";
import { lobby } from "../../src/services/lobby/lobby-service.js";
import { type WalletServiceOptions, wallet } from "../../src/services/wallet/wallet-service.js";
import { type KeyringPair, SqliteBrokerStore } from "../../src/store/index.js";
import { memoryPair } from "../../src/transport/index.js";
import { type Identity, Root } from "../../src/wire/gen/broker.js";

export { rejection } from "../helpers/errors.js";

/** argon2id is deliberately slow; tests derive each (password, salt) once. */
export const kdf: Kdf = memoizeKdf(new Argon2Kdf(), Number.POSITIVE_INFINITY);

export interface Harness {
  readonly broker: Broker;
  readonly store: SqliteBrokerStore;
  readonly clock: ManualClock;
  readonly connections: RpcConnection[];
  /** A new client connection to the broker; `address` is what the server sees as its address. */
  connect(address?: string): { client: RpcConnection; server: RpcConnection; root: Root };
  /** Creates a user with a password (through the store, as the CLI does); returns its id. */
  addUser(name: string, password: string, keyring?: readonly KeyringPair[]): Promise<number>;
  /** Connects and logs in with a password. */
  login(
    name: string,
    password: string,
    address?: string,
  ): Promise<{ identity: Identity; client: RpcConnection; server: RpcConnection; root: Root }>;
  /** Closes every client, then asserts nothing leaked (see the header). */
  close(): Promise<void>;
}

export async function makeHarness(
  options: {
    signUp?: SignUpMode;
    limits?: Partial<Limits>;
    /** Default: the lobby alone (plus the wallet when `wallet` is given). */
    services?: ServiceModule[];
    anonymousKeyring?: KeyringPair[];
    store?: SqliteBrokerStore;
    watchIntervalMs?: number;
    /** Also run the wallet service, with these options. */
    wallet?: WalletServiceOptions;
  } = {},
): Promise<Harness> {
  const clock = new ManualClock();
  const store = options.store ?? SqliteBrokerStore.open(":memory:", { now: () => clock.now() });
  const modules = [...(options.services ?? [lobby()])];
  if (options.wallet !== undefined) modules.push(wallet(options.wallet));
  const broker = new Broker({
    store,
    services: modules,
    signUp: options.signUp ?? "open",
    defaultKeyring: DEFAULT_KEYRING,
    anonymousKeyring: options.anonymousKeyring,
    limits: options.limits,
    clock,
    watchIntervalMs: options.watchIntervalMs,
  });
  const connections: RpcConnection[] = [];
  const servers: RpcConnection[] = [];
  let done = false;
  const h: Harness = {
    broker,
    store,
    clock,
    connections,
    connect(address = "127.0.0.1") {
      const [a, b] = memoryPair(undefined, [undefined, address]);
      const server = new RpcConnection(b);
      const root = broker.root(server);
      server.setBootstrap(root);
      root.dispose();
      const client = new RpcConnection(a);
      connections.push(client, server);
      servers.push(server);
      return { client, server, root: client.bootstrap(Root) };
    },
    async addUser(name, password, keyring = DEFAULT_KEYRING) {
      const { verifier } = await makeVerifier(password, { kdf });
      return (await store.createIdentity({ name, verifier, keyring })).id;
    },
    async login(name, password, address) {
      const { client, server, root } = h.connect(address);
      const { identity } = await loginWithPassword(root, name, password, { kdf });
      return { identity, client, server, root };
    },
    async close() {
      if (done) return;
      done = true;
      const closed = servers.map((s) => new Promise<void>((resolve) => s.onClose(() => resolve())));
      for (const c of connections) c.close();
      await Promise.all(closed);
      for (const s of servers) {
        expect(s.stats()).toEqual({ questions: 0, answers: 0, imports: 0, exports: 0, embargoes: 0 });
      }
      expect(broker.liveIdentities).toBe(0);
      expect(broker.idle).toBe(true);
      for (const name of [...modules.map((m) => m.name), "broker"]) {
        const service = broker.service(name);
        if (service instanceof PerUserService) {
          expect({ service: name, users: service.userCount, attached: service.attachmentCount }).toEqual({
            service: name,
            users: 0,
            attached: 0,
          });
        }
      }
      broker.close();
      if (options.store === undefined) store.close();
    },
  };
  return h;
}

export const ADMIN_KEYRING: KeyringPair[] = [...DEFAULT_KEYRING, { service: "broker", perspective: "admin" }];
