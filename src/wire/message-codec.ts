/**
 * Bytes ↔ RPC messages. Decoding checks the segment table against the limits before capnp-ts
 * sees the bytes, and bounds the work any later read of the message may do (traversal words and
 * nesting depth), so a hostile message costs at most what the limits allow.
 */
import { Message } from "capnp-ts";
import { MultiSegmentArena, SingleSegmentArena } from "capnp-ts/src/serialization/arena/index.js";
import { preallocateSegments } from "capnp-ts/src/serialization/message.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { Limits } from "../limits.js";
import * as rpc from "./gen/capnp/rpc.js";

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
    throw malformed(`message of ${bytes.byteLength} bytes is shorter than a segment table`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const segmentCount = dv.getUint32(0, true) + 1;
  if (segmentCount > limits.maxSegments) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `message has ${segmentCount} segments; the limit is ${limits.maxSegments}`,
    );
  }
  const headerBytes = (4 + segmentCount * 4 + 7) & ~7;
  if (headerBytes > bytes.byteLength) throw malformed("segment table is truncated");
  let total = headerBytes;
  for (let i = 0; i < segmentCount; i++) total += dv.getUint32(4 + i * 4, true) * 8;
  if (total !== bytes.byteLength) {
    throw malformed(`segment table declares ${total} bytes but the message has ${bytes.byteLength}`);
  }
  if (total === headerBytes) throw malformed("message has no content");
  try {
    const message = readableMessage(bytes, segmentCount, headerBytes, limits);
    const root = new rpc.Message(message.getSegment(0), 0, limits.maxNestingDepth);
    return { message, root };
  } catch (err) {
    throw malformed(err instanceof Error ? err.message : String(err));
  }
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
  (message as unknown as { _capnp: { traversalLimit: number } })._capnp.traversalLimit =
    limits.maxTraversalWords * 8;
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
  const segments = (
    message as unknown as { _capnp: { segments: Array<{ buffer: ArrayBuffer; byteLength: number }> } }
  )._capnp.segments;
  const count = segments.length;
  const header = (4 + count * 4 + 7) & ~7;
  let total = header;
  for (let i = 0; i < count; i++) total += (segments[i] as { byteLength: number }).byteLength;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, count - 1, true);
  let offset = header;
  for (let i = 0; i < count; i++) {
    const seg = segments[i] as { buffer: ArrayBuffer; byteLength: number };
    dv.setUint32(4 + i * 4, seg.byteLength / 8, true);
    out.set(new Uint8Array(seg.buffer, 0, seg.byteLength), offset);
    offset += seg.byteLength;
  }
  return out;
}

function malformed(why: string): ParallaxError {
  return new ParallaxError(ErrorCode.MALFORMED_MESSAGE, `malformed message: ${why}`);
}
