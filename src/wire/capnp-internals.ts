/**
 * Every use of capnp-ts beyond its documented API, in one place. capnp-ts is pinned (0.9.3): on an
 * upgrade this is the file to audit, and a serialization runtime of our own (the README's way to
 * close the speed gap) must provide what it lists:
 *
 * 1. Arenas: a message over segments we hand it, one buffer each, no copy (`MultiSegmentArena`);
 *    a single-segment message over a buffer we allocated (`SingleSegmentArena`); and marking a
 *    received message's segments as full (`preallocateSegments`).
 * 2. Message state: its list of segments, and its traversal budget in bytes.
 * 3. Struct state: the index inside a composite list, and the nesting budget left.
 * 4. Pointer primitives: a pointer's target content, kind, struct size, list element size and
 *    length, the capability index of a capability pointer, null checks, and writing a struct
 *    pointer to fresh content.
 * 5. `Segment`: its buffer, and a `byteLength` that may be grown in place (fast-struct reserves
 *    room that way; segments never move).
 * 6. Its read-limit failures, recognised by their message text: CAPNP-TS011 (nesting depth) and
 *    CAPNP-TS022 (traversal words).
 * 7. Class metadata: `static _capnp = { displayName, id, size }`, the protocol every generated
 *    struct class follows (written by hand only for `AnyPointerStruct` in
 *    src/rpc/answer-context.ts and `VoidList` in gen-runtime.ts).
 *
 * Two uses live elsewhere, by the layer rules: the message's cap table (`_capnp.capTable`) is read
 * and written in src/caps/cap-table.ts (caps sits below wire and may not import it), and the
 * compiler plugin (src/codegen/) reads capnp-ts's compiled schema.capnp at build time.
 *
 * Tests: test/wire/message-codec.test.ts (segments, traversal limit, read-limit failures),
 * test/wire/deep-copy.test.ts, test/codegen/roundtrip.test.ts (the pointer primitives).
 */
import type { Message, Struct } from "capnp-ts";
import type { Segment } from "capnp-ts/src/serialization/segment.js";

export { MultiSegmentArena, SingleSegmentArena } from "capnp-ts/src/serialization/arena/index.js";
export { preallocateSegments } from "capnp-ts/src/serialization/message.js";
export {
  getCapabilityId,
  getContent,
  getTargetCompositeListSize,
  getTargetListElementSize,
  getTargetListLength,
  getTargetPointerType,
  getTargetStructSize,
  isNull,
} from "capnp-ts/src/serialization/pointers/pointer.js";
export { getSize, initStruct as initStructPointer } from "capnp-ts/src/serialization/pointers/struct.js";
export type { Segment };

interface MessageState {
  segments: Segment[];
  traversalLimit: number;
}

interface StructState {
  depthLimit: number;
  compositeIndex?: number;
}

function messageState(message: Message): MessageState {
  return (message as unknown as { _capnp: MessageState })._capnp;
}

function structState(s: Struct): StructState {
  return (s as unknown as { _capnp: StructState })._capnp;
}

/** The message's segments, in order. */
export function segmentsOf(message: Message): readonly Segment[] {
  return messageState(message).segments;
}

/** Bounds the words any read of `message` may traverse (capnp-ts counts bytes). */
export function setTraversalLimit(message: Message, words: number): void {
  messageState(message).traversalLimit = words * 8;
}

/** The nesting budget left at `s` (each pointer followed spends one). */
export function depthLimitOf(s: Struct): number {
  return structState(s).depthLimit;
}

/** The element index when `s` lives inside a composite list, else undefined. */
export function compositeIndexOf(s: Struct): number | undefined {
  return structState(s).compositeIndex;
}

const READ_LIMIT_CODES = /\bCAPNP-TS0(11|22)\b/;

/** True when capnp-ts failed a read for hitting the nesting-depth or traversal limit. */
export function isReadLimitFailure(message: string): boolean {
  return READ_LIMIT_CODES.test(message);
}
