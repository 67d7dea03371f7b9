/**
 * Cap'n Proto stream framing: a segment table (u32 LE segment count minus one, one u32 LE word
 * count per segment, padded to 8 bytes) followed by the segments.
 *
 * Invariant: nothing is allocated from a size a peer declared until that size was checked against
 * `maxSegments` and `maxMessageBytes`. The segment count is read as `u32 + 1` in a double, so the
 * 2^32 a hostile table can declare never wraps. Each message is copied at most once (not at all
 * when it arrives inside one chunk).
 *
 * Tests: test/transport/stream-framing.test.ts.
 */

import { ErrorCode, ParallaxError } from "../errors.js";
import type { Limits } from "../limits.js";

export type FramingLimits = Pick<Limits, "maxMessageBytes" | "maxSegments">;

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/**
 * Bytes in the segment table that starts at `bytes[0]`, or undefined if fewer than 4 bytes are
 * there. Throws `PARALLAX_ERR_LIMIT` if the declared segment count is over the limits.
 */
export function segmentTableBytes(bytes: Uint8Array, limits: FramingLimits): number | undefined {
  if (bytes.length < 4) return undefined;
  const segments = u32(bytes, 0) + 1;
  if (segments > limits.maxSegments) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `message declares ${segments} segments; maxSegments is ${limits.maxSegments}`,
    );
  }
  // A u32 count and a u32 per segment, padded to words: src/wire's `segmentTableSize`, computed
  // here again because transport may not import wire.
  const tableBytes = Math.ceil((segments + 1) / 2) * 8;
  if (tableBytes > limits.maxMessageBytes) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `message declares ${segments} segments, whose table alone exceeds maxMessageBytes (${limits.maxMessageBytes})`,
    );
  }
  return tableBytes;
}

/**
 * Total bytes of the message that starts at `bytes[0]`, table included, or undefined if its
 * segment table is not complete yet. Throws `PARALLAX_ERR_LIMIT` if over the limits.
 */
export function framedMessageBytes(bytes: Uint8Array, limits: FramingLimits): number | undefined {
  const tableBytes = segmentTableBytes(bytes, limits);
  if (tableBytes === undefined || bytes.length < tableBytes) return undefined;
  const segments = u32(bytes, 0) + 1;
  let words = 0;
  for (let i = 0; i < segments; i++) words += u32(bytes, 4 + 4 * i);
  const total = tableBytes + words * 8;
  if (total > limits.maxMessageBytes) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `message declares ${total} bytes; maxMessageBytes is ${limits.maxMessageBytes}`,
    );
  }
  return total;
}

/**
 * Checks that `bytes` is exactly one framed message within the limits, as a WebSocket frame must
 * be. Throws `PARALLAX_ERR_LIMIT` or `PARALLAX_ERR_MALFORMED_MESSAGE`.
 */
export function checkFramedMessage(bytes: Uint8Array, limits: FramingLimits): void {
  const total = framedMessageBytes(bytes, limits);
  if (total === undefined) {
    throw new ParallaxError(
      ErrorCode.MALFORMED_MESSAGE,
      `a ${bytes.length}-byte frame ends inside its segment table`,
    );
  }
  if (total !== bytes.length) {
    throw new ParallaxError(
      ErrorCode.MALFORMED_MESSAGE,
      `a ${bytes.length}-byte frame holds a segment table declaring ${total} bytes`,
    );
  }
}

/**
 * Turns a TCP byte stream, fed in arbitrary chunks, into whole messages. After `push` throws, the
 * stream is unrecoverable and the decoder must be discarded.
 */
export class StreamFrameDecoder {
  readonly #limits: FramingLimits;
  /** The incomplete segment table, while no message is allocated yet. */
  #table = new Uint8Array(8);
  #tableLength = 0;
  /** The message being filled, allocated once its checked size is known. */
  #message: Uint8Array | undefined;
  #filled = 0;

  constructor(limits: FramingLimits) {
    this.#limits = limits;
  }

  /** Bytes of an incomplete message held; non-zero means the stream must not end here. */
  get pendingBytes(): number {
    return this.#message === undefined ? this.#tableLength : this.#filled;
  }

  /** Size of the incomplete message, once its table was read. */
  get pendingMessageBytes(): number | undefined {
    return this.#message?.length;
  }

  /** Feeds one chunk; calls `onMessage` for each message it completes, in order. */
  push(chunk: Uint8Array, onMessage: (message: Uint8Array) => void): void {
    let at = 0;
    while (at < chunk.length) {
      const message = this.#message;
      if (message !== undefined) {
        const n = Math.min(message.length - this.#filled, chunk.length - at);
        message.set(chunk.subarray(at, at + n), this.#filled);
        this.#filled += n;
        at += n;
        this.#emitIfComplete(onMessage);
        continue;
      }
      if (this.#tableLength === 0) {
        const rest = chunk.subarray(at);
        const total = framedMessageBytes(rest, this.#limits);
        if (total !== undefined && total <= rest.length) {
          onMessage(rest.subarray(0, total));
          at += total;
          continue;
        }
      }
      at = this.#readTable(chunk, at);
      this.#emitIfComplete(onMessage);
    }
  }

  /** Copies segment-table bytes from `chunk`; allocates the message once the table is whole. */
  #readTable(chunk: Uint8Array, at: number): number {
    for (;;) {
      const table = this.#table.subarray(0, this.#tableLength);
      const need = segmentTableBytes(table, this.#limits) ?? 4;
      if (this.#tableLength === need) {
        const total = framedMessageBytes(table, this.#limits)!;
        this.#message = new Uint8Array(total);
        this.#message.set(table);
        this.#filled = need;
        this.#tableLength = 0;
        return at;
      }
      if (at === chunk.length) return at;
      if (this.#table.length < need) {
        const grown = new Uint8Array(need);
        grown.set(table);
        this.#table = grown;
      }
      const n = Math.min(need - this.#tableLength, chunk.length - at);
      this.#table.set(chunk.subarray(at, at + n), this.#tableLength);
      this.#tableLength += n;
      at += n;
    }
  }

  #emitIfComplete(onMessage: (message: Uint8Array) => void): void {
    const message = this.#message;
    if (message === undefined || this.#filled < message.length) return;
    this.#message = undefined;
    this.#filled = 0;
    onMessage(message);
  }
}
