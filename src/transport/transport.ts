/**
 * The byte-moving contract under the RPC engine: one `Transport` per connection, moving whole
 * Cap'n Proto messages (standard stream framing: segment table, then segments).
 *
 * Invariants every implementation keeps:
 * - `onMessage` receives exactly one complete message per call, in the order the peer sent them,
 *   whose segment table was checked against `maxSegments` and `maxMessageBytes`.
 * - `onMessage` is never called while paused, after close, or from inside `send`, `resume` or
 *   `close`; messages that arrive before a handler is set are held (reading stops meanwhile).
 * - `onClose` is called exactly once, asynchronously, after the last `onMessage`.
 * - `send` never throws because the connection is gone; it drops the message once `closed`.
 *
 * Tests: test/transport/ (each implementation against the contract).
 */

import type { ParallaxError } from "../errors.js";

export type TransportKind = "websocket" | "tcp" | "memory";

/** Why a connection ended. `error` is set unless the close was orderly (1000, 1001, 1005). */
export interface CloseInfo {
  code: number;
  reason: string;
  error?: ParallaxError;
}

export interface Transport {
  readonly kind: TransportKind;
  /** The peer's IP address when known (the socket's, not any proxy header). */
  readonly remoteAddress: string | undefined;
  readonly closed: boolean;
  /** Outbound bytes queued but not yet handed to the network (or, in memory, to the peer). */
  readonly bufferedAmount: number;
  /**
   * Queues one framed message. The transport may keep `message` until it is written: do not
   * modify it afterwards. Queueing past `maxOutboundBytes` drops the connection.
   */
  send(message: Uint8Array): void;
  /**
   * Set by the user. The message may be a view into a larger buffer (check `byteOffset`); it
   * belongs to the receiver, the transport never touches it again. A throw closes the connection
   * with 1011.
   */
  onMessage: (message: Uint8Array) => void;
  /** Set by the user; called exactly once. It must not throw. */
  onClose: (info: CloseInfo) => void;
  /** Stops reading from the network and delivering messages until `resume`. */
  pause(): void;
  /** Delivers held messages, in order, then reads from the network again. */
  resume(): void;
  /** Closes politely: queued messages are still sent. Defaults to 1000 and an empty reason. */
  close(code?: number, reason?: string): void;
}

/**
 * Close codes, shared by all transports. On WebSocket they travel in the close frame; TCP and
 * memory report them locally only (the TCP peer sees the stream end).
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const;
