/**
 * Bytes ↔ RPC messages. Decoding checks the segment table against the limits before capnp-ts
 * sees the bytes, and bounds the work any later read of the message may do (traversal words and
 * nesting depth), so a hostile message costs at most what the limits allow.
 */
import { Message } from "capnp-ts";
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
    const message = new Message(bytes, false);
    (message as unknown as { _capnp: { traversalLimit: number } })._capnp.traversalLimit =
      limits.maxTraversalWords * 8;
    const root = new rpc.Message(message.getSegment(0), 0, limits.maxNestingDepth);
    return { message, root };
  } catch (err) {
    throw malformed(err instanceof Error ? err.message : String(err));
  }
}

/** A new outgoing RPC message. */
export function newRpcMessage(): DecodedMessage {
  const message = new Message();
  return { message, root: message.initRoot(rpc.Message) };
}

export function encodeRpcMessage(message: Message): Uint8Array {
  return new Uint8Array(message.toArrayBuffer());
}

function malformed(why: string): ParallaxError {
  return new ParallaxError(ErrorCode.MALFORMED_MESSAGE, `malformed message: ${why}`);
}
