/** Bytes ↔ RPC messages (src/wire/message-codec.ts) and the capnp-ts internals it stands on. */
import { Message } from "capnp-ts";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { isReadLimitFailure, MultiSegmentArena, segmentsOf } from "../../src/wire/capnp-internals.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";
import {
  decodeRpcMessage,
  encodeRpcMessage,
  newRpcMessage,
  readableSingleSegment,
  segmentTableSize,
} from "../../src/wire/message-codec.js";

const LIMITS = { maxSegments: 512, maxTraversalWords: 1 << 20, maxNestingDepth: 64 };

/** A message of several segments, built by capnp-ts itself. */
function multiSegment(): Message {
  const m = new Message(new MultiSegmentArena());
  const root = m.initRoot(rpc.Message);
  root.initAbort().reason = "x".repeat(10_000); // larger than the first segment: a second one
  return m;
}

describe("the segment table", () => {
  it("is a count word and a size word per segment, padded to whole words", () => {
    expect([1, 2, 3, 4, 5].map(segmentTableSize)).toEqual([8, 16, 16, 24, 24]);
  });

  it("has the size capnp-ts itself writes, for one segment and for several", () => {
    for (const m of [new Message(), multiSegment()]) {
      if (segmentsOf(m).length === 0) m.initRoot(rpc.Message).initFinish();
      const bytes = new Uint8Array(m.toArrayBuffer());
      const count = new DataView(bytes.buffer).getUint32(0, true) + 1;
      const body = segmentsOf(m).reduce((n, s) => n + s.byteLength, 0);
      expect(bytes.length - body).toBe(segmentTableSize(count));
    }
  });
});

describe("encoding and decoding", () => {
  it("encodes a message as capnp-ts frames it, and decodes it back", () => {
    const m = multiSegment();
    expect(segmentsOf(m).length).toBeGreaterThan(1);
    const bytes = encodeRpcMessage(m);
    expect(bytes).toEqual(new Uint8Array(m.toArrayBuffer()));
    expect(decodeRpcMessage(bytes, LIMITS).root.abort.reason).toBe("x".repeat(10_000));
  });

  it("reads a single-segment frame without checking its table again, under the traversal limit", () => {
    const { message, root } = newRpcMessage();
    root.initAbort().reason = "y".repeat(400);
    const bytes = encodeRpcMessage(message);
    const read = readableSingleSegment(bytes, { maxTraversalWords: 1 << 20 });
    expect(read.getRoot(rpc.Message).abort.reason).toBe("y".repeat(400));
    const starved = readableSingleSegment(bytes, { maxTraversalWords: 4 });
    let failure = "";
    try {
      void starved.getRoot(rpc.Message).abort.reason;
    } catch (err) {
      failure = (err as Error).message;
    }
    expect(isReadLimitFailure(failure)).toBe(true);
  });

  it("refuses a frame with more segments than maxSegments before reading it", () => {
    const bytes = encodeRpcMessage(multiSegment());
    expect(() => decodeRpcMessage(bytes, { ...LIMITS, maxSegments: 1 })).toThrow(
      expect.objectContaining({ code: ErrorCode.LIMIT }),
    );
  });

  it("tells capnp-ts's read-limit failures from its other failures by their codes", () => {
    expect(isReadLimitFailure("CAPNP-TS011 Nesting depth limit exceeded for Struct_1@0x8.")).toBe(true);
    expect(isReadLimitFailure("CAPNP-TS022 Traversal limit exceeded! Slow down! Pointer")).toBe(true);
    expect(isReadLimitFailure("CAPNP-TS017 Invalid pointer type: 0x2.")).toBe(false);
    expect(isReadLimitFailure("CAPNP-TS0110 something else")).toBe(false);
  });
});
