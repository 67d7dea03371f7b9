/**
 * Two connected in-process transports, for tests of the layers above.
 *
 * Invariants: delivery is asynchronous (one microtask per message) and in send order; each message
 * is copied, so the sides share no bytes; the receiving side checks framing and limits as a network
 * transport would; a side's `bufferedAmount` is what it sent that the peer has not yet handed to
 * `onMessage` (held while the peer is paused), so a paused peer trips `maxOutboundBytes` as a slow
 * network reader would. A polite close reaches the peer after the messages sent before it.
 *
 * Tests: test/transport/memory-transport.test.ts.
 */

import { type Limits, resolveLimits } from "../limits.js";
import { BaseTransport, remoteCloseInfo } from "./base-transport.js";
import { CloseCode, type Transport } from "./transport.js";

class MemoryTransport extends BaseTransport {
  readonly kind = "memory";
  remoteAddress: string | undefined = undefined;
  #peer: MemoryTransport | undefined;
  #inFlight = 0;

  connect(peer: MemoryTransport): void {
    this.#peer = peer;
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.#inFlight + (this.#peer?.inboxBytes ?? 0);
  }

  protected write(message: Uint8Array): void {
    const copy = message.slice();
    this.#inFlight += copy.byteLength;
    const peer = this.#peer;
    queueMicrotask(() => {
      this.#inFlight -= copy.byteLength;
      if (peer !== undefined) peer.#receive(copy);
    });
  }

  protected pauseReading(): void {}

  protected resumeReading(): void {}

  protected shutdown(code: number, reason: string, abrupt: boolean): void {
    const peer = this.#peer;
    if (peer === undefined) return;
    queueMicrotask(() => {
      if (abrupt) peer.finish(remoteCloseInfo(CloseCode.ABNORMAL, "connection reset"));
      else peer.remoteClosed(remoteCloseInfo(code, reason));
    });
  }

  #receive(message: Uint8Array): void {
    if (this.closed) return;
    this.deliverChecked(message);
  }
}

/** Two transports wired to each other; both sides use the same limits. */
export function memoryPair(
  limits?: Partial<Limits>,
  /** What each side reports as its peer's address (tests of per-address rules). */
  addresses: [string | undefined, string | undefined] = [undefined, undefined],
): [Transport, Transport] {
  const resolved = resolveLimits(limits);
  const a = new MemoryTransport(resolved);
  const b = new MemoryTransport(resolved);
  a.remoteAddress = addresses[0];
  b.remoteAddress = addresses[1];
  a.connect(b);
  b.connect(a);
  return [a, b];
}
