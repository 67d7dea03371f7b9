/**
 * Cap'n Proto over WebSocket for Node: one message per binary frame; a text frame is a protocol
 * error. The only module that imports `ws`.
 *
 * Invariants: a frame over `maxMessageBytes` is refused by ws before it is buffered (close 1009);
 * every delivered frame is exactly one framed message within the limits; an attachment never holds
 * more than `maxConnections` sockets (upgrades beyond are answered 503 before any handshake work);
 * a peer silent for `idleTimeoutMs`, pongs included, is dropped.
 *
 * Tests: test/transport/websocket-transport.test.ts, test/transport/limits.test.ts.
 */

import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { ErrorCode, ParallaxError } from "../errors.js";
import { type Limits, resolveLimits } from "../limits.js";
import {
  BaseTransport,
  CLOSE_GRACE_MS,
  isSendableCloseCode,
  remoteCloseInfo,
  wireReason,
} from "./base-transport.js";
import { CloseCode } from "./transport.js";

/** ws's receiver errors, mapped to what we report. */
function wsErrorInfo(err: Error & { code?: string }): { code: number; error: ParallaxError } {
  switch (err.code) {
    case "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH":
    case "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH":
    case "WS_ERR_TOO_MANY_BUFFERED_PARTS":
      return {
        code: CloseCode.MESSAGE_TOO_BIG,
        error: new ParallaxError(ErrorCode.LIMIT, `frame refused: ${err.message}`, { cause: err }),
      };
    default:
      return {
        code: CloseCode.PROTOCOL_ERROR,
        error: new ParallaxError(ErrorCode.PROTOCOL, `WebSocket protocol error: ${err.message}`, {
          cause: err,
        }),
      };
  }
}

export class WebSocketTransport extends BaseTransport {
  readonly kind = "websocket";
  readonly remoteAddress: string | undefined;
  readonly #ws: WebSocket;
  #heardAt = Date.now();
  #readingPaused = false;
  #pinger: NodeJS.Timeout | undefined;
  #corked = false;

  /** Takes over an open ws connection. */
  constructor(ws: WebSocket, limits: Limits, remoteAddress: string | undefined) {
    super(limits);
    this.#ws = ws;
    this.remoteAddress = remoteAddress;
    ws.binaryType = "nodebuffer";
    if (limits.idleTimeoutMs > 0) {
      this.#pinger = setInterval(() => this.#checkIdle(), Math.max(1, limits.idleTimeoutMs / 2)).unref();
    }
    const heard = () => {
      this.#heardAt = Date.now();
    };
    ws.on("ping", heard);
    ws.on("pong", heard);
    ws.on("message", (data: RawData, isBinary: boolean) => {
      heard();
      this.#onFrame(data as Buffer, isBinary);
    });
    ws.on("error", (err) => {
      const { code, error } = wsErrorInfo(err);
      this.finish({ code, reason: error.message, error });
    });
    ws.on("close", (code: number, reason: Buffer) =>
      this.remoteClosed(remoteCloseInfo(code, reason.toString())),
    );
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.#ws.bufferedAmount;
  }

  protected write(message: Uint8Array): void {
    // Frames sent in one turn of the event loop (promise continuations included) leave in one
    // socket write: cork until the check phase.
    const socket = (this.#ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (socket !== undefined && !this.#corked) {
      this.#corked = true;
      socket.cork();
      setImmediate(() => {
        this.#corked = false;
        socket.uncork();
      });
    }
    this.#ws.send(message, { binary: true });
  }

  protected pauseReading(): void {
    this.#readingPaused = true;
    this.#ws.pause();
  }

  protected resumeReading(): void {
    this.#readingPaused = false;
    this.#heardAt = Date.now();
    this.#ws.resume();
  }

  protected shutdown(code: number, reason: string, abrupt: boolean): void {
    if (abrupt || !isSendableCloseCode(code) || this.#ws.readyState !== WebSocket.OPEN) {
      this.#ws.terminate();
      return;
    }
    this.#ws.close(code, wireReason(reason));
    const grace = setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
    this.#ws.once("close", () => clearTimeout(grace));
  }

  protected override released(): void {
    clearInterval(this.#pinger);
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (!isBinary) {
      const reason = "text frames are not part of this protocol; send binary Cap'n Proto messages";
      this.abort(CloseCode.UNSUPPORTED_DATA, reason, new ParallaxError(ErrorCode.PROTOCOL, reason), false);
      return;
    }
    const message = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.deliverChecked(message);
  }

  #checkIdle(): void {
    if (this.closed || this.#readingPaused) return;
    if (Date.now() - this.#heardAt >= this.limits.idleTimeoutMs) {
      const reason = `idle: nothing received for ${this.limits.idleTimeoutMs} ms (idleTimeoutMs)`;
      this.abort(CloseCode.ABNORMAL, reason, new ParallaxError(ErrorCode.DISCONNECTED, reason), true);
      return;
    }
    this.#ws.ping();
  }
}

export interface WebSocketAttachOptions {
  /** The only path upgraded; other upgrade requests get 404. Default "/rpc". */
  path?: string;
  limits?: Partial<Limits>;
  /** Receives each accepted connection; a throw closes that connection with 1011. */
  onConnection: (transport: WebSocketTransport) => void;
}

export interface WebSocketListener {
  /** Open connections, handshakes in progress included. */
  readonly connections: number;
  /** Stops upgrading, closes every connection with 1001, resolves once all sockets are gone. */
  close(): Promise<void>;
}

function refuseUpgrade(socket: Duplex, status: 404 | 503, body: string): void {
  socket.on("error", () => socket.destroy());
  socket.once("finish", () => socket.destroy());
  const reason = status === 404 ? "Not Found" : "Service Unavailable";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Serves Cap'n Proto over WebSocket on `path` of an existing HTTP(S) server, which keeps serving
 * its other requests. Upgrades to other paths get 404 unless another `upgrade` listener is attached
 * (which then owns them). Upgrades over `maxConnections` are refused with 503.
 */
export function attachWebSocketServer(
  httpServer: HttpServer | HttpsServer,
  options: WebSocketAttachOptions,
): WebSocketListener {
  const path = options.path ?? "/rpc";
  const limits = resolveLimits(options.limits);
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: limits.maxMessageBytes,
  });
  /** Every upgraded socket until it closes, with its transport once the handshake is done. */
  const live = new Map<Duplex, WebSocketTransport | undefined>();
  let allGone: (() => void) | undefined;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.url ?? "/").split("?")[0] !== path) {
      if (httpServer.listenerCount("upgrade") === 1) refuseUpgrade(socket, 404, "not found");
      return;
    }
    if (live.size >= limits.maxConnections) {
      refuseUpgrade(socket, 503, "too many connections");
      return;
    }
    live.set(socket, undefined);
    track(socket);
    const remoteAddress = req.socket.remoteAddress;
    wss.handleUpgrade(req, socket, head, (ws) => accepted(socket, ws, remoteAddress));
  };
  // Kept out of `onUpgrade`'s scope so that no long-lived closure holds the upgrade request.
  const track = (socket: Duplex): void => {
    socket.once("close", () => {
      live.delete(socket);
      if (live.size === 0) allGone?.();
    });
  };
  const accepted = (socket: Duplex, ws: WebSocket, remoteAddress: string | undefined): void => {
    const transport = new WebSocketTransport(ws, limits, remoteAddress);
    if (live.has(socket)) live.set(socket, transport);
    try {
      options.onConnection(transport);
    } catch {
      transport.close(CloseCode.INTERNAL_ERROR, "internal error");
    }
  };
  httpServer.on("upgrade", onUpgrade);

  return {
    get connections() {
      return live.size;
    },
    close() {
      httpServer.off("upgrade", onUpgrade);
      wss.close();
      if (live.size === 0) return Promise.resolve();
      const gone = new Promise<void>((resolve) => {
        allGone = resolve;
      });
      for (const [socket, transport] of live) {
        if (transport === undefined) socket.destroy();
        else transport.close(CloseCode.GOING_AWAY, "server shutting down");
      }
      return gone;
    },
  };
}

/**
 * Connects to a Parallax WebSocket endpoint from Node. Rejects with `PARALLAX_ERR_LIMIT` when the
 * server answers 503 (too many connections), `PARALLAX_ERR_DISCONNECTED` on any other failure.
 */
export async function connectWebSocket(url: string, limits?: Partial<Limits>): Promise<WebSocketTransport> {
  const resolved = resolveLimits(limits);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: resolved.maxMessageBytes, perMessageDeflate: false });
    let status: number | undefined;
    ws.once("unexpected-response", (_req, res) => {
      status = res.statusCode;
      res.resume();
      ws.terminate();
    });
    ws.once("error", (err) => {
      if (status === 503) {
        reject(
          new ParallaxError(ErrorCode.LIMIT, `${url} refused the connection: too many connections (503)`),
        );
      } else {
        const detail = status === undefined ? err.message : `HTTP ${status}`;
        reject(
          new ParallaxError(ErrorCode.DISCONNECTED, `cannot connect to ${url}: ${detail}`, { cause: err }),
        );
      }
    });
    ws.once("open", () => {
      ws.removeAllListeners("error");
      ws.removeAllListeners("unexpected-response");
      resolve(new WebSocketTransport(ws, resolved, new URL(url).hostname));
    });
  });
}
