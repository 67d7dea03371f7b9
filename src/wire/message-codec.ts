/**
 * Bytes ↔ RPC messages. Decoding checks the segment table against the limits before capnp-ts
 * sees the bytes, and bounds the work any later read of the message may do (traversal words and
 * nesting depth), so a hostile message costs at most what the limits allow.
 *
 * Tests: test/wire/message-codec.test.ts; every test in test/rpc/ decodes through it.
 */
import { Message } from "capnp-ts";
import { ErrorCode, malformedError, ParallaxError } from "../errors.js";
import type { Limits } from "../limits.js";
import {
  MultiSegmentArena,
  preallocateSegments,
  SingleSegmentArena,
  segmentsOf,
  setTraversalLimit,
} from "./capnp-internals.js";
import * as rpc from "./gen/capnp/rpc.js";

/**
 * Bytes of the stream-framing segment table of a message of `segmentCount` segments: a u32
 * count − 1, a u32 size per segment, padded to a whole word. (`src/transport/stream-framing.ts`
 * computes the same on the transport side, which may not import wire.)
 */
export function segmentTableSize(segmentCount: number): number {
  return Math.ceil((segmentCount + 1) / 2) * 8;
}

/** The segment table of a message of one segment: the layout the envelope reader accepts. */
const SINGLE_SEGMENT_TABLE_BYTES = segmentTableSize(1);

export interface DecodedMessage {
  readonly message: Message;
  readonly root: rpc.Message;
}

/** Decodes one stream-framed message, or throws a ParallaxError saying exactly what is wrong. */
export function decodeRpcMessage(
  bytes: Uint8Array,
  limits: Pick<Limits, "maxSegments" | "maxTraversalWords" | "maxNestingDepth">,
): DecodedMessage {
  if (bytes.byteLength < 8)
    throw malformedError(`message of ${bytes.byteLength} bytes is shorter than a segment table`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const segmentCount = dv.getUint32(0, true) + 1;
  if (segmentCount > limits.maxSegments) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `message has ${segmentCount} segments; the limit is ${limits.maxSegments}`,
    );
  }
  const headerBytes = segmentTableSize(segmentCount);
  if (headerBytes > bytes.byteLength) throw malformedError("segment table is truncated");
  let total = headerBytes;
  for (let i = 0; i < segmentCount; i++) total += dv.getUint32(4 + i * 4, true) * 8;
  if (total !== bytes.byteLength) {
    throw malformedError(`segment table declares ${total} bytes but the message has ${bytes.byteLength}`);
  }
  if (total === headerBytes) throw malformedError("message has no content");
  try {
    const message = readableMessage(bytes, segmentCount, headerBytes, limits);
    const root = new rpc.Message(message.getSegment(0), 0, limits.maxNestingDepth);
    return { message, root };
  } catch (err) {
    throw malformedError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * `readableMessage` for a frame the envelope reader accepted: one segment, so an 8-byte segment
 * table (which it checked).
 */
export function readableSingleSegment(bytes: Uint8Array, limits: Pick<Limits, "maxTraversalWords">): Message {
  return readableMessage(bytes, 1, SINGLE_SEGMENT_TABLE_BYTES, limits);
}

/**
 * A capnp-ts message over received bytes whose segment table was already checked: one copy per
 * segment, straight out of the bytes (capnp-ts alone would copy twice), with the read limits set.
 */
export function readableMessage(
  bytes: Uint8Array,
  segmentCount: number,
  headerBytes: number,
  limits: Pick<Limits, "maxTraversalWords">,
): Message {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const buffers: ArrayBuffer[] = new Array(segmentCount);
  let offset = bytes.byteOffset + headerBytes;
  for (let i = 0; i < segmentCount; i++) {
    const length = dv.getUint32(4 + i * 4, true) * 8;
    buffers[i] = (bytes.buffer as ArrayBuffer).slice(offset, offset + length);
    offset += length;
  }
  const message = new Message(new MultiSegmentArena(buffers));
  preallocateSegments(message); // the segments are full: this is a message to read
  setTraversalLimit(message, limits.maxTraversalWords);
  return message;
}

/** First segment size of outgoing messages: most RPC messages fit; larger ones grow. */
const FIRST_SEGMENT_BYTES = 1024;

/** A new outgoing RPC message. */
export function newRpcMessage(): DecodedMessage {
  const message = new Message(new SingleSegmentArena(new ArrayBuffer(FIRST_SEGMENT_BYTES)));
  return { message, root: message.initRoot(rpc.Message) };
}

/** The stream framing of a message we built: the segment table, then each segment, in one copy. */
export function encodeRpcMessage(message: Message): Uint8Array {
  const segments = segmentsOf(message);
  const count = segments.length;
  const header = segmentTableSize(count);
  let total = header;
  for (let i = 0; i < count; i++) total += (segments[i] as (typeof segments)[number]).byteLength;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, count - 1, true);
  let offset = header;
  for (let i = 0; i < count; i++) {
    const seg = segments[i] as (typeof segments)[number];
    dv.setUint32(4 + i * 4, seg.byteLength / 8, true);
    out.set(new Uint8Array(seg.buffer, 0, seg.byteLength), offset);
    offset += seg.byteLength;
  }
  return out;
}
