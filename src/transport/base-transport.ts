/**
 * What every transport shares: the inbox that holds messages while paused or before a handler is
 * set, close-once bookkeeping, and the outbound limit. Subclasses only move bytes.
 *
 * Invariant: the network is read only while nothing is held (not paused, a handler set, inbox
 * empty), so held messages are bounded by what one read delivered, and order is kept because
 * reading resumes only after the inbox drained.
 *
 * Tests: test/transport/ (every transport runs through it).
 */

import { ErrorCode, ParallaxError, toParallaxError } from "../errors.js";
import type { Limits } from "../limits.js";
import { checkFramedMessage } from "./stream-framing.js";
import { type CloseInfo, CloseCode, type Transport, type TransportKind } from "./transport.js";

/** How long a polite close waits for the peer to finish the close before dropping the socket. */
export const CLOSE_GRACE_MS = 5_000;

const ORDERLY_CODES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL,
  CloseCode.GOING_AWAY,
  CloseCode.NO_STATUS,
]);

/** What the local side reports when the peer (or the network) ended the connection. */
export function remoteCloseInfo(code: number, reason: string): CloseInfo {
  if (ORDERLY_CODES.has(code)) return { code, reason };
  const detail = reason === "" ? `code ${code}` : `code ${code}: ${reason}`;
  return {
    code,
    reason,
    error: new ParallaxError(ErrorCode.DISCONNECTED, `connection closed by peer (${detail})`),
  };
}

/** Close code for a message the framing layer rejected. */
export function closeCodeFor(error: ParallaxError): number {
  return error.code === ErrorCode.LIMIT ? CloseCode.MESSAGE_TOO_BIG : CloseCode.INVALID_DATA;
}

/** A reason a WebSocket close frame can carry: at most 123 bytes of UTF-8, cut at a character. */
export function wireReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD+$/, "") + "...";
}

/** Codes an endpoint may put in a close frame (RFC 6455 §7.4). */
export function isSendableCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

export abstract class BaseTransport implements Transport {
  abstract readonly kind: TransportKind;
  abstract readonly remoteAddress: string | undefined;
  abstract readonly bufferedAmount: number;
  protected readonly limits: Limits;

  #inbox: (Uint8Array | undefined)[] = [];
  #head = 0;
  #inboxBytes = 0;
  #paused = false;
  #reading = true;
  #draining = false;
  #closed = false;
  #closeAfterInbox: CloseInfo | undefined;
  #closeInfo: CloseInfo | undefined;
  #closeReported = false;
  #onMessage: ((message: Uint8Array) => void) | undefined;
  #onClose: ((info: CloseInfo) => void) | undefined;

  constructor(limits: Limits) {
    this.limits = limits;
  }

  /** Writes one message to the network; only called while open. */
  protected abstract write(message: Uint8Array): void;
  protected abstract pauseReading(): void;
  protected abstract resumeReading(): void;
  /**
   * Ends the underlying connection after a local decision to close. `abrupt` drops queued output
   * (the peer is stalled or dead); otherwise the peer gets queued messages and then the close.
   */
  protected abstract shutdown(code: number, reason: string, abrupt: boolean): void;

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes of messages received and held, not yet delivered. */
  protected get inboxBytes(): number {
    return this.#inboxBytes;
  }

  get onMessage(): (message: Uint8Array) => void {
    return this.#onMessage ?? (() => {});
  }

  set onMessage(handler: (message: Uint8Array) => void) {
    this.#onMessage = handler;
    queueMicrotask(() => this.#drain());
  }

  get onClose(): (info: CloseInfo) => void {
    return this.#onClose ?? (() => {});
  }

  set onClose(handler: (info: CloseInfo) => void) {
    this.#onClose = handler;
    if (this.#closeInfo !== undefined) queueMicrotask(() => this.#reportClose());
  }

  send(message: Uint8Array): void {
    if (this.#closed) return;
    this.write(message);
    if (this.bufferedAmount > this.limits.maxOutboundBytes) {
      const reason = `peer is not reading: over maxOutboundBytes (${this.limits.maxOutboundBytes}) queued`;
      this.abort(CloseCode.POLICY_VIOLATION, reason, new ParallaxError(ErrorCode.LIMIT, reason), true);
    }
  }

  pause(): void {
    if (this.#closed || this.#paused) return;
    this.#paused = true;
    this.#updateReading();
  }

  resume(): void {
    if (this.#closed || !this.#paused) return;
    this.#paused = false;
    queueMicrotask(() => this.#drain());
  }

  close(code: number = CloseCode.NORMAL, reason = ""): void {
    if (this.finish({ code, reason })) this.shutdown(code, reason, false);
  }

  /** Checks a received frame against the framing limits, then delivers it; a bad one closes the connection. */
  protected deliverChecked(message: Uint8Array): void {
    try {
      checkFramedMessage(message, this.limits);
    } catch (err) {
      const error = toParallaxError(err);
      this.abort(closeCodeFor(error), error.message, error, false);
      return;
    }
    this.deliver(message);
  }

  /** Hands one received message to the inbox; delivery follows unless held. */
  protected deliver(message: Uint8Array): void {
    if (this.#closed) return;
    this.#inbox.push(message);
    this.#inboxBytes += message.byteLength;
    this.#drain();
  }

  /** Closes because of something local or something the peer did wrong; reports `error`. */
  protected abort(code: number, reason: string, error: ParallaxError, abrupt: boolean): void {
    if (this.finish({ code, reason, error })) this.shutdown(code, reason, abrupt);
  }

  /** The peer or the network ended the connection: deliver what was received, then report. */
  protected remoteClosed(info: CloseInfo): void {
    if (this.#closed) return;
    this.#closeAfterInbox ??= info;
    this.#drain();
  }

  /** Marks the transport closed and schedules `onClose`. False if it was already closed. */
  protected finish(info: CloseInfo): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#closeInfo = info;
    this.#inbox = [];
    this.#head = 0;
    this.#inboxBytes = 0;
    this.released();
    queueMicrotask(() => this.#reportClose());
    return true;
  }

  /** Called once when the transport becomes closed, for any reason: stop timers here. */
  protected released(): void {}

  #reportClose(): void {
    if (this.#closeReported || this.#onClose === undefined || this.#closeInfo === undefined) return;
    this.#closeReported = true;
    this.#onClose(this.#closeInfo);
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (
        !this.#closed &&
        !this.#paused &&
        this.#onMessage !== undefined &&
        this.#head < this.#inbox.length
      ) {
        const message = this.#inbox[this.#head]!;
        this.#inbox[this.#head++] = undefined;
        this.#inboxBytes -= message.byteLength;
        try {
          this.#onMessage(message);
        } catch (err) {
          const detail = err instanceof Error ? err.message : String(err);
          const error = new ParallaxError(ErrorCode.FAILED, `onMessage handler threw: ${detail}`, {
            cause: err,
          });
          this.abort(CloseCode.INTERNAL_ERROR, "internal error", error, false);
        }
      }
      if (this.#head === this.#inbox.length) {
        this.#inbox = [];
        this.#head = 0;
        if (this.#closeAfterInbox !== undefined) this.finish(this.#closeAfterInbox);
      } else if (this.#head > 1024 && this.#head * 2 > this.#inbox.length) {
        this.#inbox = this.#inbox.slice(this.#head);
        this.#head = 0;
      }
    } finally {
      this.#draining = false;
    }
    this.#updateReading();
  }

  #updateReading(): void {
    if (this.#closed) return;
    const want = !this.#paused && this.#onMessage !== undefined && this.#head === this.#inbox.length;
    if (want === this.#reading) return;
    this.#reading = want;
    if (want) this.resumeReading();
    else this.pauseReading();
  }
}
