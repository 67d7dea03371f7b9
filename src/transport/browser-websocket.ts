/**
 * A client transport built only on the platform's global `WebSocket`, for browsers (and any
 * runtime that has one). It imports nothing Node-only.
 *
 * Invariants: every delivered frame is exactly one framed message within the limits, checked after
 * the browser received it whole (browsers offer no `maxPayload`); a text frame closes the
 * connection. Browsers cannot stop reading a WebSocket, so `pause` only holds messages locally.
 * The server pings; browsers answer by themselves, so there is no idle timer here.
 * Browsers may only send close codes 1000 and 3000–4999: other codes go out as
 * 4000 + (code − 1000), e.g. 1003 as 4003, while `onClose` reports the real one.
 *
 * Tests: test/transport/browser-websocket.test.ts.
 */

import { ErrorCode, ParallaxError } from "../errors.js";
import { type Limits, resolveLimits } from "../limits.js";
import { BaseTransport, remoteCloseInfo, wireReason } from "./base-transport.js";
import { CloseCode, type Transport } from "./transport.js";

/** The part of the WHATWG WebSocket this module uses. */
interface PlatformWebSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

type PlatformWebSocketConstructor = new (url: string) => PlatformWebSocket;

const OPEN = 1;

function browserCloseCode(code: number): number {
  return code === CloseCode.NORMAL || (code >= 3000 && code <= 4999) ? code : 4000 + (code % 1000);
}

class BrowserWebSocketTransport extends BaseTransport {
  readonly kind = "websocket";
  readonly remoteAddress: string | undefined;
  readonly #ws: PlatformWebSocket;

  constructor(ws: PlatformWebSocket, limits: Limits, remoteAddress: string) {
    super(limits);
    this.#ws = ws;
    this.remoteAddress = remoteAddress;
    ws.onmessage = (event) => this.#onFrame(event.data);
    ws.onclose = (event) => this.remoteClosed(remoteCloseInfo(event.code, event.reason));
    ws.onerror = () => {};
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.#ws.bufferedAmount;
  }

  protected write(message: Uint8Array): void {
    if (this.#ws.readyState === OPEN) this.#ws.send(message);
  }

  protected pauseReading(): void {}

  protected resumeReading(): void {}

  protected shutdown(code: number, reason: string): void {
    this.#ws.close(browserCloseCode(code), wireReason(reason));
  }

  #onFrame(data: unknown): void {
    if (this.closed) return;
    if (!(data instanceof ArrayBuffer)) {
      const reason = "text frames are not part of this protocol; send binary Cap'n Proto messages";
      this.abort(CloseCode.UNSUPPORTED_DATA, reason, new ParallaxError(ErrorCode.PROTOCOL, reason), false);
      return;
    }
    const message = new Uint8Array(data);
    this.deliverChecked(message);
  }
}

/**
 * Connects with the global `WebSocket`. Rejects with `PARALLAX_ERR_DISCONNECTED` if the connection
 * fails (browsers do not say why, so a 503 for too many connections looks the same).
 */
export async function connectBrowserWebSocket(url: string, limits?: Partial<Limits>): Promise<Transport> {
  const resolved = resolveLimits(limits);
  const Platform = (globalThis as { WebSocket?: PlatformWebSocketConstructor }).WebSocket;
  if (Platform === undefined) {
    throw new ParallaxError(ErrorCode.FAILED, "this runtime has no global WebSocket");
  }
  return new Promise((resolve, reject) => {
    const ws = new Platform(url);
    ws.binaryType = "arraybuffer";
    const fail = () => {
      ws.onopen = ws.onclose = ws.onerror = null;
      reject(new ParallaxError(ErrorCode.DISCONNECTED, `cannot connect to ${url}`));
    };
    ws.onerror = fail;
    ws.onclose = fail;
    ws.onopen = () => {
      ws.onopen = null;
      resolve(new BrowserWebSocketTransport(ws, resolved, new URL(url).hostname));
    };
  });
}
