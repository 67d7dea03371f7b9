/**
 * A TCP proxy on loopback that breaks connections on command, for the router client's recovery
 * tests: `cutMidStream()` arms a cut — the next chunk the broker sends through any live pair is
 * forwarded only in part (its first half: a Cap'n Proto frame cut in two), then both sides of
 * that pair are reset (RST). `resetAll()` resets every pair at once. `orphanAll()` resets only
 * the client's side and keeps the broker's open, discarding what the broker sends: the broker
 * still believes the session alive (the seed's zombie) until `releaseOrphans()`. The proxy forwards bytes
 * unchanged otherwise, and counts what it did, so a test can assert the cuts really happened.
 *
 * Loopback only: it listens on 127.0.0.1 and forwards to the broker's TCP port there.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import type { AddressInfo } from "node:net";

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  dead: boolean;
}

export class ResettingProxy {
  readonly #server: Server;
  readonly #pairs = new Set<Pair>();
  readonly #orphans = new Set<Socket>();
  #armed = false;
  #onCut: Array<() => void> = [];
  #target: number;
  /** Connections accepted. */
  accepted = 0;
  /** Pairs reset (by a cut or `resetAll`). */
  resets = 0;
  /** Cuts that split a chunk from the broker. */
  cuts = 0;

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#target = targetPort;
  }

  static async start(targetPort: number): Promise<ResettingProxy> {
    const accept: { to?: (client: Socket) => void } = {};
    const server = createServer((client) => accept.to?.(client));
    const proxy = new ResettingProxy(server, targetPort);
    accept.to = (client) => proxy.#accept(client);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The URL clients connect to (`tcp://127.0.0.1:port`). */
  get url(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  /** Pairs open now. */
  get open(): number {
    return this.#pairs.size;
  }

  /** Arms one cut (see the header); resolves once it happened. */
  cutMidStream(): Promise<void> {
    this.#armed = true;
    return new Promise((resolve) => this.#onCut.push(resolve));
  }

  /** Whether a cut is armed and has not happened yet. */
  get armed(): boolean {
    return this.#armed;
  }

  resetAll(): void {
    for (const p of [...this.#pairs]) this.#reset(p);
  }

  /** Resets the client side of every pair; the broker's side stays open, unread (see the header). */
  orphanAll(): void {
    for (const p of [...this.#pairs]) {
      p.dead = true;
      this.#pairs.delete(p);
      this.resets++;
      this.#orphans.add(p.upstream);
      p.upstream.on("close", () => this.#orphans.delete(p.upstream));
      if (!p.client.destroyed) p.client.resetAndDestroy();
    }
  }

  /** Broker-side sockets kept open by `orphanAll`. */
  get orphans(): number {
    return this.#orphans.size;
  }

  /** Resets the broker-side sockets `orphanAll` kept open. */
  releaseOrphans(): void {
    for (const s of [...this.#orphans]) {
      this.#orphans.delete(s);
      if (!s.destroyed) s.resetAndDestroy();
    }
  }

  /** Connections accepted from now on go to this port (a broker restarted elsewhere). */
  retarget(port: number): void {
    this.#target = port;
  }

  #accept(client: Socket): void {
    this.accepted++;
    const upstream = tcpConnect(this.#target, "127.0.0.1");
    const pair: Pair = { client, upstream, dead: false };
    this.#pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on("data", (d: Buffer) => {
      if (!pair.dead) upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (pair.dead) return;
      if (!this.#armed) {
        client.write(d);
        return;
      }
      this.#armed = false;
      this.cuts++;
      const part = d.subarray(0, Math.max(1, d.length >> 1));
      client.write(part, () => {
        this.#reset(pair);
        for (const r of this.#onCut.splice(0)) r();
      });
    });
    const end = (): void => {
      if (!this.#orphans.has(upstream)) this.#reset(pair, false);
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
  }

  #reset(pair: Pair, count = true): void {
    if (pair.dead) return;
    pair.dead = true;
    this.#pairs.delete(pair);
    if (count) this.resets++;
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      if (s.connecting) s.destroy();
      else s.resetAndDestroy();
    }
  }

  async close(): Promise<void> {
    this.releaseOrphans();
    for (const p of [...this.#pairs]) this.#reset(p, false);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
