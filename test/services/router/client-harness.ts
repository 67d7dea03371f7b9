/**
 * A real broker for the router client's tests: `startBroker` with the router alone, on a
 * temporary SQLite folder, WebSocket and TCP on free loopback ports; users made through the store
 * as the CLI does (router keyring; a role through `RouterService.setRole`). `client()` makes
 * started RouterClients that record their events. `close()` closes every client, then asserts
 * the broker and the router kept nothing: no connection, no login, no registration,
 * subscription, roster entry or watch.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { connect } from "../../../src/client.js";
import { loginWithPassword, makeVerifier } from "../../../src/login/client-login.js";
import { type BrokerServer, startBroker } from "../../../src/server.js";
import { ROUTER_SESSION } from "../../../src/services/router/router-keys.js";
import {
  type RouterClient as Client,
  RouterClient,
  type RouterClientEvent,
  type RouterClientOptions,
} from "../../../src/services/router/router-client.js";
import {
  type RouterOptions,
  type RouterService,
  router,
} from "../../../src/services/router/router-service.js";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import type { Root } from "../../../src/wire/gen/broker.js";
import { waitFor } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";

export const ROUTER_KEYRING = [{ service: ROUTER_SESSION.service, perspective: ROUTER_SESSION.perspective }];

/** A client and what it told its `onEvent`. */
export interface RecordedClient {
  readonly client: Client;
  readonly events: RouterClientEvent[];
  /** Resolves with the `n`th event (1-based) `pick` accepts, counting those already seen. */
  nth(pick: (e: RouterClientEvent) => boolean, n: number): Promise<RouterClientEvent>;
}

export interface RouterHarness {
  readonly server: BrokerServer;
  readonly store: SqliteBrokerStore;
  readonly router: RouterService;
  readonly folder: string;
  /** `tcp://127.0.0.1:port` of the broker. */
  readonly tcpUrl: string;
  addUser(name: string, password: string, role?: string): Promise<number>;
  /** Password login as the client's first login (the test KDF). */
  loginAs(
    name: string,
    password: string,
  ): (root: Root) => Promise<import("../../../src/wire/gen/broker.js").Identity>;
  /**
   * A RouterClient over WebSocket to the broker (unless `connect` is given), logged in as `name`
   * (unless `login: undefined` is passed explicitly in `options`), started.
   */
  client(
    name: string | undefined,
    password?: string,
    options?: Partial<RouterClientOptions>,
  ): Promise<RecordedClient>;
  /** Closes every client (and `extra`), waits for the broker to notice, asserts nothing was kept. */
  close(...extra: Array<{ close(): void }>): Promise<void>;
}

export const resumed = (e: RouterClientEvent): boolean => e.type === "connected" && e.resumed;

export async function routerHarness(options: { router?: RouterOptions } = {}): Promise<RouterHarness> {
  const folder = mkdtempSync(path.join(tmpdir(), "parallax-router-client-"));
  const store = SqliteBrokerStore.open(path.join(folder, "parallax.db"));
  const server = await startBroker({
    port: 0,
    tcpPort: 0,
    store,
    signUp: "closed",
    services: [router(options.router)],
  });
  const service = server.broker.service("router") as RouterService;
  const clients: Client[] = [];
  let closed = false;
  const h: RouterHarness = {
    server,
    store,
    router: service,
    folder,
    tcpUrl: `tcp://127.0.0.1:${server.tcpPort}`,
    async addUser(name, password, role) {
      const { verifier } = await makeVerifier(password, { kdf });
      const { id } = await store.createIdentity({ name, verifier, keyring: ROUTER_KEYRING });
      if (role !== undefined) await service.setRole(id, role);
      return id;
    },
    loginAs: (name, password) => async (root) =>
      (await loginWithPassword(root, name, password, { kdf })).identity,
    async client(name, password = "", overrides = {}) {
      const events: RouterClientEvent[] = [];
      const waiters: Array<() => void> = [];
      const url = server.url;
      const client = new RouterClient({
        connect: () => connect(url),
        login: name === undefined ? undefined : h.loginAs(name, password),
        baseDelayMs: 5,
        passwordLogin: async (root, u, p) => (await loginWithPassword(root, u, p, { kdf })).identity,
        ...overrides,
        onEvent: (e) => {
          events.push(e);
          overrides.onEvent?.(e);
          for (const w of waiters.splice(0)) w();
        },
      });
      clients.push(client);
      await client.start();
      const nth = (pick: (e: RouterClientEvent) => boolean, n: number) =>
        new Promise<RouterClientEvent>((resolve) => {
          const check = (): void => {
            const found = events.filter(pick)[n - 1];
            if (found !== undefined) resolve(found);
            else waiters.push(check);
          };
          check();
        });
      return { client, events, nth };
    },
    async close(...extra) {
      if (closed) return;
      closed = true;
      try {
        for (const c of clients) c.close();
        for (const c of extra) c.close();
        await waitFor(() => {
          expect(server.connections.size).toBe(0);
          expect(server.broker.liveIdentities).toBe(0);
          expect({
            attached: service.attachmentCount,
            registrations: service.procedures.registrationCount(),
            subscriptions: service.pubsub.subscriptionCount(),
            rosterEntries: service.rosters.entryCount,
            rosterWatches: service.rosters.watchCount,
            metadataWatches: service.metadata.watchCount,
          }).toEqual({
            attached: 0,
            registrations: 0,
            subscriptions: 0,
            rosterEntries: 0,
            rosterWatches: 0,
            metadataWatches: 0,
          });
        });
      } finally {
        await server.close();
        store.close();
        rmSync(folder, { recursive: true, force: true });
      }
    },
  };
  return h;
}
