/**
 * A real broker for the chat client's tests: `startBroker` with chat alone, on a temporary SQLite
 * folder, WebSocket and TCP on free loopback ports; users made through the store as the CLI does
 * (chat keyring). `client()` starts ChatClients that record their events. `close()` closes every
 * client, then asserts the broker and chat kept nothing: no connection, no login, no attachment.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { connect } from "../../../src/client.js";
import { loginWithPassword, makeVerifier } from "../../../src/login/client-login.js";
import { type BrokerServer, startBroker } from "../../../src/server.js";
import {
  ChatClient,
  type ChatClientEvent,
  type ChatClientOptions,
  type ChatMessage,
} from "../../../src/services/chat/chat-client.js";
import { CHAT_MEMBER } from "../../../src/services/chat/chat-keys.js";
import { type ChatOptions, ChatService, chat } from "../../../src/services/chat/chat-service.js";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import { waitFor } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";

export const CHAT_KEYRING = [{ service: CHAT_MEMBER.service, perspective: CHAT_MEMBER.perspective }];

/** Something to wait on: `next()` resolves at the next `signal()`. */
export function signals() {
  let waiters: Array<() => void> = [];
  return {
    signal(): void {
      const w = waiters;
      waiters = [];
      for (const r of w) r();
    },
    next(): Promise<void> {
      return new Promise((resolve) => waiters.push(resolve));
    },
    /** Resolves once `test()` holds, checking at each signal. */
    async until(test: () => boolean): Promise<void> {
      while (!test()) await this.next();
    },
  };
}

/** A client and what it told its `onEvent`. */
export interface RecordedChat {
  readonly client: ChatClient;
  readonly events: ChatClientEvent[];
  /** Resolves with the `n`th event (1-based) `pick` accepts, counting those already seen. */
  nth(pick: (e: ChatClientEvent) => boolean, n: number): Promise<ChatClientEvent>;
}

export interface ChatClientHarness {
  readonly server: BrokerServer;
  readonly store: SqliteBrokerStore;
  readonly chat: ChatService;
  /** `tcp://127.0.0.1:port` of the broker. */
  readonly tcpUrl: string;
  addUser(name: string): Promise<number>;
  /** A started ChatClient logged in as `name` (password `${name} pw`), over WebSocket unless `connect` is given. */
  client(name: string, options?: Partial<ChatClientOptions>): Promise<RecordedChat>;
  close(): Promise<void>;
}

export const restored = (e: ChatClientEvent): boolean => e.type === "restored";
export const disconnected = (e: ChatClientEvent): boolean => e.type === "disconnected";

/** What a handler heard, as text: a message's text, or `lost (after, resumedFrom)`. */
export function recorder() {
  const heard: string[] = [];
  const seqs: number[] = [];
  const s = signals();
  return {
    heard,
    seqs,
    onMessage: (m: ChatMessage): void => {
      heard.push(m.text);
      seqs.push(m.seq);
      s.signal();
    },
    onUnrecoverable: (after: number, resumedFrom: number): void => {
      heard.push(`lost (${after}, ${resumedFrom})`);
      s.signal();
    },
    until: (n: number) => s.until(() => heard.length >= n),
    signals: s,
  };
}

export async function chatClientHarness(options: ChatOptions = {}): Promise<ChatClientHarness> {
  const folder = mkdtempSync(path.join(tmpdir(), "parallax-chat-client-"));
  const store = SqliteBrokerStore.open(path.join(folder, "parallax.db"));
  const server = await startBroker({
    port: 0,
    tcpPort: 0,
    store,
    signUp: "closed",
    services: [chat({ messagesPerSecond: 10_000, ...options })],
  });
  const service = server.broker.service("chat");
  if (!(service instanceof ChatService)) throw new Error("no chat service");
  const clients: ChatClient[] = [];
  let closed = false;
  const h: ChatClientHarness = {
    server,
    store,
    chat: service,
    tcpUrl: `tcp://127.0.0.1:${server.tcpPort}`,
    async addUser(name) {
      const { verifier } = await makeVerifier(`${name} pw`, { kdf });
      const { id } = await store.createIdentity({ name, verifier, keyring: CHAT_KEYRING });
      return id;
    },
    async client(name, overrides = {}) {
      const events: ChatClientEvent[] = [];
      const waiters: Array<() => void> = [];
      const url = server.url;
      const client = await ChatClient.start({
        connect: () => connect(url),
        login: async (root) => (await loginWithPassword(root, name, `${name} pw`, { kdf })).identity,
        baseDelayMs: 5,
        ...overrides,
        onEvent: (e) => {
          events.push(e);
          overrides.onEvent?.(e);
          for (const w of waiters.splice(0)) w();
        },
      });
      clients.push(client);
      const nth = (pick: (e: ChatClientEvent) => boolean, n: number) =>
        new Promise<ChatClientEvent>((resolve) => {
          const check = (): void => {
            const found = events.filter(pick)[n - 1];
            if (found !== undefined) resolve(found);
            else waiters.push(check);
          };
          check();
        });
      return { client, events, nth };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        for (const c of clients) c.close();
        await waitFor(() => {
          expect({
            connections: server.connections.size,
            identities: server.broker.liveIdentities,
            attachments: service.attachmentCount,
          }).toEqual({ connections: 0, identities: 0, attachments: 0 });
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
