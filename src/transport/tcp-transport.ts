/**
 * Cap'n Proto over TCP with the standard stream framing, so a peer built on the reference C++
 * library (or Rust/Go capnp-rpc) can connect to the same Root.
 *
 * Invariants: sends made in one turn of the event loop leave in one write (the socket stays
 * corked until the check phase); a connection from which no byte arrived for `idleTimeoutMs`
 * while reading is dropped; a listener never holds more than `maxConnections` sockets.
 *
 * Tests: test/transport/tcp-transport.test.ts.
 */

import { type AddressInfo, connect, type Socket, createServer } from "node:net";
import { ErrorCode, ParallaxError, toParallaxError } from "../errors.js";
import { type Limits, resolveLimits } from "../limits.js";
import { BaseTransport, CLOSE_GRACE_MS, closeCodeFor } from "./base-transport.js";
import { StreamFrameDecoder } from "./stream-framing.js";
import { CloseCode } from "./transport.js";

export class TcpTransport extends BaseTransport {
  readonly kind = "tcp";
  readonly remoteAddress: string | undefined;
  readonly #socket: Socket;
  readonly #decoder: StreamFrameDecoder;
  #corked = false;
  #readingPaused = false;
  #idleTimer: NodeJS.Timeout | undefined;

  /** Takes over a connected socket. */
  constructor(socket: Socket, limits: Limits) {
    super(limits);
    this.#socket = socket;
    this.remoteAddress = socket.remoteAddress;
    this.#decoder = new StreamFrameDecoder(limits);
    socket.setNoDelay(true);
    if (limits.idleTimeoutMs > 0) {
      socket.setKeepAlive(true, limits.idleTimeoutMs);
      this.#idleTimer = setTimeout(() => this.#idle(), limits.idleTimeoutMs).unref();
    }
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (err) => {
      const error = new ParallaxError(ErrorCode.DISCONNECTED, `connection lost: ${err.message}`, {
        cause: err,
      });
      this.remoteClosed({ code: CloseCode.ABNORMAL, reason: err.message, error });
    });
    socket.on("close", () => {
      const error = new ParallaxError(ErrorCode.DISCONNECTED, "connection lost");
      this.remoteClosed({ code: CloseCode.ABNORMAL, reason: "connection lost", error });
    });
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.#socket.writableLength;
  }

  protected write(message: Uint8Array): void {
    if (!this.#socket.writable) return;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(message);
  }

  protected pauseReading(): void {
    this.#readingPaused = true;
    this.#socket.pause();
  }

  protected resumeReading(): void {
    this.#readingPaused = false;
    this.#idleTimer?.refresh();
    this.#socket.resume();
  }

  protected shutdown(_code: number, _reason: string, abrupt: boolean): void {
    if (abrupt) {
      this.#socket.destroy();
      return;
    }
    this.#socket.resume();
    this.#socket.end();
    const grace = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
    this.#socket.once("close", () => clearTimeout(grace));
  }

  protected override released(): void {
    clearTimeout(this.#idleTimer);
  }

  #onData(chunk: Buffer): void {
    if (this.closed) return;
    this.#idleTimer?.refresh();
    try {
      this.#decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), (message) =>
        this.deliver(message),
      );
    } catch (err) {
      const error = toParallaxError(err);
      this.abort(closeCodeFor(error), error.message, error, true);
    }
  }

  #onEnd(): void {
    const pending = this.#decoder.pendingBytes;
    if (pending === 0) {
      this.remoteClosed({ code: CloseCode.NORMAL, reason: "peer closed the connection" });
      return;
    }
    const of = this.#decoder.pendingMessageBytes;
    const reason = `stream ended inside a message (${pending} of ${of ?? "an unknown number of"} bytes received)`;
    const error = new ParallaxError(ErrorCode.MALFORMED_MESSAGE, reason);
    this.remoteClosed({ code: CloseCode.ABNORMAL, reason, error });
  }

  #idle(): void {
    if (this.closed || this.#readingPaused) return;
    const reason = `idle: no bytes received for ${this.limits.idleTimeoutMs} ms (idleTimeoutMs)`;
    this.abort(CloseCode.ABNORMAL, reason, new ParallaxError(ErrorCode.DISCONNECTED, reason), true);
  }
}

export interface TcpListenOptions {
  host: string;
  port: number;
  limits?: Partial<Limits>;
  /** Receives each accepted connection; a throw closes that connection with 1011. */
  onConnection: (transport: TcpTransport) => void;
}

export interface TcpListener {
  /** The bound port (useful after listening on port 0). */
  readonly port: number;
  /** Open connections. */
  readonly connections: number;
  /** Stops accepting, closes every connection politely, resolves once all sockets are gone. */
  close(): Promise<void>;
}

/** Listens for Cap'n Proto connections over TCP. Connections over `maxConnections` are closed at once. */
export async function listenTcp(options: TcpListenOptions): Promise<TcpListener> {
  const limits = resolveLimits(options.limits);
  const live = new Set<TcpTransport>();
  const server = createServer((socket) => {
    if (live.size >= limits.maxConnections) {
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    const transport = new TcpTransport(socket, limits);
    live.add(transport);
    socket.once("close", () => live.delete(transport));
    try {
      options.onConnection(transport);
    } catch {
      transport.close(CloseCode.INTERNAL_ERROR, "internal error");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      const where = `${options.host}:${options.port}`;
      reject(
        new ParallaxError(ErrorCode.FAILED, `cannot listen on ${where}: ${err.message}`, { cause: err }),
      );
    });
    server.listen(options.port, options.host, () => resolve());
  });
  server.removeAllListeners("error");
  server.on("error", () => {});
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return live.size;
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const transport of live) transport.close(CloseCode.GOING_AWAY, "server shutting down");
      return closed;
    },
  };
}

/** Connects to a Cap'n Proto peer over TCP; rejects with `PARALLAX_ERR_DISCONNECTED` on failure. */
export async function connectTcp(
  host: string,
  port: number,
  limits?: Partial<Limits>,
): Promise<TcpTransport> {
  const resolved = resolveLimits(limits);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const fail = (err: Error) =>
      reject(
        new ParallaxError(ErrorCode.DISCONNECTED, `cannot connect to ${host}:${port}: ${err.message}`, {
          cause: err,
        }),
      );
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.off("error", fail);
      resolve(new TcpTransport(socket, resolved));
    });
  });
}
