/** Shared fixtures for transport tests: framed messages, watched transports, echo servers. */

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import type { Limits } from "../../src/limits.js";
import {
  attachWebSocketServer,
  listenTcp,
  type TcpListener,
  type WebSocketListener,
} from "../../src/transport/index.js";
import type { CloseInfo, Transport } from "../../src/transport/transport.js";
import { frame } from "../helpers/frames.js";

/** A one-segment message whose first body word carries `n`, padded with `extraWords`. */
export function numbered(n: number, extraWords = 0): Uint8Array {
  const out = frame([1 + extraWords], { seed: n });
  new DataView(out.buffer).setUint32(8, n, true);
  return out;
}

export function numberOf(message: Uint8Array): number {
  return new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(8, true);
}

/** Raw little-endian u32s, for hand-made hostile segment tables. */
export function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (const [i, v] of values.entries()) view.setUint32(i * 4, v, true);
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Same messages, same order, same bytes; cheaper than `toEqual` on many typed arrays. */
export function expectSameMessages(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  expect(actual.map((m) => m.length)).toEqual(expected.map((m) => m.length));
  expect(Buffer.from(concat(actual)).equals(Buffer.from(concat(expected)))).toBe(true);
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface Watched {
  readonly transport: Transport;
  readonly messages: Uint8Array[];
  readonly closed: Promise<CloseInfo>;
  /** Resolves with the first `n` messages; rejects if the transport closes first. */
  received(n: number): Promise<Uint8Array[]>;
}

/** Takes over a transport's handlers; `echo` sends every message back. */
export function watch(transport: Transport, echo = false): Watched {
  const messages: Uint8Array[] = [];
  const waiters = new Set<() => void>();
  transport.onMessage = (m) => {
    messages.push(m);
    if (echo) transport.send(m);
    for (const w of waiters) w();
  };
  const closed = new Promise<CloseInfo>((resolve) => {
    transport.onClose = resolve;
  });
  const received = (n: number) =>
    new Promise<Uint8Array[]>((resolve, reject) => {
      const check = () => {
        if (messages.length < n) return;
        waiters.delete(check);
        resolve(messages.slice(0, n));
      };
      waiters.add(check);
      check();
      void closed.then((info) => {
        if (messages.length < n) {
          reject(new Error(`closed after ${messages.length} of ${n} messages: ${info.code} ${info.reason}`));
        }
      });
    });
  return { transport, messages, closed, received };
}

/** Collects a server's connections in order; echoes unless told otherwise. */
export class Accepting {
  readonly connections: Watched[] = [];
  #waiters: ((w: Watched) => void)[] = [];
  #taken = 0;

  constructor(private readonly echo = true) {}

  readonly accept = (transport: Transport): void => {
    const watched = watch(transport, this.echo);
    this.connections.push(watched);
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(watched);
  };

  /** The next connection not yet taken by `next`. */
  next(): Promise<Watched> {
    const index = this.#taken++;
    const ready = this.connections[index];
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** Runs registered clean-ups in reverse order; wire `run` to `afterEach`. */
export class Cleanup {
  #fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  readonly run = async (): Promise<void> => {
    while (this.#fns.length > 0) await this.#fns.pop()!();
  };
}

/** Sends a few messages over a fresh connection, expects them echoed whole, then closes it. */
export async function expectEchoWorks(connect: () => Promise<Transport>): Promise<void> {
  const client = watch(await connect());
  const sent = [numbered(1), numbered(2, 5), frame([1, 0, 3], { seed: 9 })];
  for (const m of sent) client.transport.send(m);
  expect(await client.received(sent.length)).toEqual(sent);
  client.transport.close();
  expect(await client.closed).toEqual({ code: 1000, reason: "" });
}

export interface TcpFixture {
  listener: TcpListener;
  accepting: Accepting;
  port: number;
}

export async function startTcp(cleanup: Cleanup, limits?: Partial<Limits>, echo = true): Promise<TcpFixture> {
  const accepting = new Accepting(echo);
  const listener = await listenTcp({ host: "127.0.0.1", port: 0, limits, onConnection: accepting.accept });
  cleanup.add(() => listener.close());
  return { listener, accepting, port: listener.port };
}

export interface WebSocketFixture {
  http: Server;
  listener: WebSocketListener;
  accepting: Accepting;
  port: number;
  url: string;
}

/** An HTTP server that answers "hello from http", with Parallax attached on /rpc. */
export async function startWebSocket(
  cleanup: Cleanup,
  limits?: Partial<Limits>,
  echo = true,
): Promise<WebSocketFixture> {
  const http = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("hello from http");
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const accepting = new Accepting(echo);
  const listener = attachWebSocketServer(http, { limits, onConnection: accepting.accept });
  cleanup.add(async () => {
    await listener.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  const port = (http.address() as AddressInfo).port;
  return { http, listener, accepting, port, url: `ws://127.0.0.1:${port}/rpc` };
}
