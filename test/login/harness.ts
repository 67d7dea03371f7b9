/** A broker on an in-memory store, clients over the in-memory transport, and a memoizing KDF. */
import { expect } from "vitest";
import { ParallaxError } from "../../src/errors.js";
import type { Kdf } from "../../src/cred/kdf.js";
import { Argon2Kdf } from "../../src/cred/argon2-kdf.js";
import type { SignUpMode } from "../../src/cred/authorizer.js";
import type { Limits } from "../../src/limits.js";
import { loginWithPassword, makeVerifier } from "../../src/login/client-login.js";
import { Broker, type Service } from "../../src/login/index.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { DEFAULT_KEYRING } from "../../src/server.js";
import { LobbyService } from "../../src/services/lobby/lobby-service.js";
import { WalletService } from "../../src/services/wallet/wallet-service.js";
import { type KeyringPair, SqliteBrokerStore } from "../../src/store/index.js";
import { memoryPair } from "../../src/transport/index.js";
import { type Identity, Root } from "../../src/wire/gen/broker.js";
import type { KdfParams } from "../../src/store/index.js";

/** argon2id is deliberately slow; tests derive each (password, salt) once. */
class MemoKdf implements Kdf {
  readonly name = "memo";
  readonly #inner = new Argon2Kdf();
  readonly #cache = new Map<string, Promise<Uint8Array>>();

  derive(password: string, salt: Uint8Array, params: KdfParams): Promise<Uint8Array> {
    const key = `${password}|${Buffer.from(salt).toString("hex")}|${params.memoryKiB}|${params.iterations}|${params.parallelism}`;
    let v = this.#cache.get(key);
    if (v === undefined) {
      v = this.#inner.derive(password, salt, params);
      this.#cache.set(key, v);
    }
    return v.then((b) => b.slice());
  }
}

export const kdf: Kdf = new MemoKdf();

export interface Harness {
  readonly broker: Broker;
  readonly store: SqliteBrokerStore;
  readonly clock: { now: number };
  readonly connections: RpcConnection[];
  /** A new client connection to the broker; `address` is what the server sees as its address. */
  connect(address?: string): { client: RpcConnection; server: RpcConnection; root: Root };
  /** Creates a user with a password (through the store, as the CLI does). */
  addUser(name: string, password: string, keyring?: readonly KeyringPair[]): Promise<void>;
  /** Connects and logs in with a password. */
  login(
    name: string,
    password: string,
    address?: string,
  ): Promise<{ identity: Identity; client: RpcConnection; root: Root }>;
  close(): void;
}

export async function makeHarness(
  options: {
    signUp?: SignUpMode;
    limits?: Partial<Limits>;
    services?: Service[];
    anonymousKeyring?: KeyringPair[];
    store?: SqliteBrokerStore;
    watchIntervalMs?: number;
    /** Also run the wallet service, with these options. */
    wallet?: { maxNotificationsInFlight?: number; maxWalletBytes?: number };
  } = {},
): Promise<Harness> {
  const store = options.store ?? SqliteBrokerStore.open(":memory:");
  const clock = { now: Date.now() };
  const broker = new Broker({
    store,
    services: options.services ?? [new LobbyService()],
    signUp: options.signUp ?? "open",
    defaultKeyring: DEFAULT_KEYRING,
    anonymousKeyring: options.anonymousKeyring,
    limits: options.limits,
    now: () => clock.now,
    watchIntervalMs: options.watchIntervalMs,
  });
  if (options.wallet !== undefined)
    broker.addService(new WalletService({ store, broker, ...options.wallet }));
  const connections: RpcConnection[] = [];
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
      return { client, server, root: client.bootstrap(Root) };
    },
    async addUser(name, password, keyring = DEFAULT_KEYRING) {
      const { verifier } = await makeVerifier(password, { kdf });
      await store.createIdentity({ name, verifier, keyring });
    },
    async login(name, password, address) {
      const { client, root } = h.connect(address);
      const { identity } = await loginWithPassword(root, name, password, { kdf });
      return { identity, client, root };
    },
    close() {
      for (const c of connections) c.close();
      broker.close();
      if (options.store === undefined) store.close();
    },
  };
  return h;
}

export const ADMIN_KEYRING: KeyringPair[] = [...DEFAULT_KEYRING, { service: "broker", perspective: "admin" }];

/** The ParallaxError a call or promise fails with (the test fails if it succeeds). */
export async function rejection(p: PromiseLike<unknown>): Promise<ParallaxError> {
  const err = await Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ParallaxError);
  return err as ParallaxError;
}
