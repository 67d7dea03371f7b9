import { Message } from "capnp-ts";
import * as rpc from "capnp-ts/src/std/rpc.capnp.js";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { DEFAULT_LIMITS } from "../../src/limits.js";
import { checkFramedMessage, StreamFrameDecoder } from "../../src/transport/stream-framing.js";
import { frame } from "../helpers/frames.js";
import { concat, expectSameMessages, prng, u32s } from "./helpers.js";

const limits = { maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes, maxSegments: DEFAULT_LIMITS.maxSegments };

/** Messages of assorted shapes: 1 to 5 segments (odd and even tables), empty and large segments. */
function assorted(count: number): Uint8Array[] {
  const random = prng(count);
  return Array.from({ length: count }, (_, i) => {
    const segments = Array.from({ length: 1 + (i % 5) }, () => Math.floor(random() * 6));
    if (i % 17 === 0) segments[0] = 300;
    return frame(segments, { seed: i });
  });
}

function decodeAll(chunks: readonly Uint8Array[], decoderLimits = limits): Uint8Array[] {
  const decoder = new StreamFrameDecoder(decoderLimits);
  const out: Uint8Array[] = [];
  for (const chunk of chunks) decoder.push(chunk, (m) => out.push(m));
  expect(decoder.pendingBytes).toBe(0);
  return out;
}

function decoderRejection(
  bytes: Uint8Array,
  decoderLimits = limits,
): { error: unknown; decoder: StreamFrameDecoder } {
  const decoder = new StreamFrameDecoder(decoderLimits);
  try {
    decoder.push(bytes, () => {});
  } catch (error) {
    return { error, decoder };
  }
  throw new Error("expected the decoder to reject the input");
}

describe("StreamFrameDecoder", () => {
  it("yields every message whole and in order when fed one byte at a time", () => {
    const messages = assorted(60);
    const stream = concat(messages);
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expectSameMessages(decodeAll(bytes), messages);
  });

  it("yields every message whole and in order when all arrive coalesced in one chunk", () => {
    const messages = assorted(200);
    expectSameMessages(decodeAll([concat(messages)]), messages);
  });

  it("yields every message whole and in order for random chunk boundaries", () => {
    const messages = assorted(100);
    const stream = concat(messages);
    for (let seed = 1; seed <= 20; seed++) {
      const random = prng(seed);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = 1 + Math.floor(random() * 200);
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      expectSameMessages(decodeAll(chunks), messages);
    }
  });

  it("hands out a message that arrives inside one chunk without copying it", () => {
    const chunk = concat([frame([2]), frame([1, 1])]);
    const [first, second] = decodeAll([chunk]);
    expect(first?.buffer).toBe(chunk.buffer);
    expect(second?.buffer).toBe(chunk.buffer);
    expect(second?.byteOffset).toBe(24);
  });

  it("copies a message split across chunks once, into a buffer of exactly its size", () => {
    const message = frame([1000]);
    const [out] = decodeAll([message.subarray(0, 3), message.subarray(3, 5000), message.subarray(5000)]);
    expect(out).toEqual(message);
    expect(out?.buffer.byteLength).toBe(message.length);
  });

  it("reports the bytes of an incomplete message it holds", () => {
    const decoder = new StreamFrameDecoder(limits);
    const message = frame([2]);
    decoder.push(message.subarray(0, 5), () => {});
    expect(decoder.pendingBytes).toBe(5);
    expect(decoder.pendingMessageBytes).toBeUndefined();
    decoder.push(message.subarray(5, 10), () => {});
    expect(decoder.pendingBytes).toBe(10);
    expect(decoder.pendingMessageBytes).toBe(24);
  });

  it("rejects a segment table declaring more than maxMessageBytes before any of the body arrives", () => {
    const { error, decoder } = decoderRejection(u32s(0, 1_048_577), {
      maxMessageBytes: 8 * 1024 * 1024,
      maxSegments: 512,
    });
    expect(error).toMatchObject({
      code: ErrorCode.LIMIT,
      message: "message declares 8388624 bytes; maxMessageBytes is 8388608",
    });
    expect(decoder.pendingBytes).toBeLessThanOrEqual(8);
  });

  it("rejects more than maxSegments segments from the first four bytes", () => {
    const { error } = decoderRejection(u32s(512));
    expect(error).toMatchObject({
      code: ErrorCode.LIMIT,
      message: "message declares 513 segments; maxSegments is 512",
    });
  });

  it("accepts exactly maxSegments segments", () => {
    const message = frame(Array.from({ length: 512 }, () => 1));
    expect(decodeAll([message])).toEqual([message]);
  });

  it("reads a segment count of 0xffffffff as 2^32 segments, without wrapping or allocating", () => {
    const { error } = decoderRejection(u32s(0xffffffff));
    expect(error).toMatchObject({
      code: ErrorCode.LIMIT,
      message: "message declares 4294967296 segments; maxSegments is 512",
    });
  });

  it("rejects a table that alone exceeds maxMessageBytes even when maxSegments allows it", () => {
    const { error } = decoderRejection(u32s(0xffffffff), { maxMessageBytes: 1024, maxSegments: 2 ** 32 });
    expect(error).toMatchObject({ code: ErrorCode.LIMIT });
    expect((error as Error).message).toMatch(
      /4294967296 segments, whose table alone exceeds maxMessageBytes/,
    );
  });

  it("sums huge segment sizes without overflow", () => {
    const table = u32s(511, ...Array.from({ length: 512 }, () => 0xffffffff), 0);
    const { error } = decoderRejection(table);
    expect(error).toMatchObject({
      code: ErrorCode.LIMIT,
      message: `message declares ${2056 + 512 * 0xffffffff * 8} bytes; maxMessageBytes is 8388608`,
    });
  });

  it("passes capnp-ts messages through unchanged, readable by capnp-ts on the other side", () => {
    const build = (id: number) => {
      const message = new Message();
      message.initRoot(rpc.Message).initFinish().setQuestionId(id);
      return new Uint8Array(message.toArrayBuffer());
    };
    const sent = [build(1), build(2), build(3)];
    const stream = concat(sent);
    const received = decodeAll([stream.subarray(0, 7), stream.subarray(7, 50), stream.subarray(50)]);
    expect(received).toEqual(sent);
    expect(
      received.map((m) => new Message(m, false).getRoot(rpc.Message).getFinish().getQuestionId()),
    ).toEqual([1, 2, 3]);
  });
});

describe("checkFramedMessage", () => {
  it("accepts exactly one framed message", () => {
    expect(() => checkFramedMessage(frame([3, 0, 1]), limits)).not.toThrow();
  });

  it("rejects a frame too short for its segment table as malformed", () => {
    expect(() => checkFramedMessage(new Uint8Array([1, 2, 3]), limits)).toThrow(
      expect.objectContaining({
        code: ErrorCode.MALFORMED_MESSAGE,
        message: "a 3-byte frame ends inside its segment table",
      }),
    );
    expect(() => checkFramedMessage(u32s(1, 1), limits)).toThrow(
      expect.objectContaining({ code: ErrorCode.MALFORMED_MESSAGE }),
    );
  });

  it("rejects a frame whose table declares fewer or more bytes than it carries", () => {
    const message = frame([2]);
    expect(() => checkFramedMessage(message.subarray(0, 20), limits)).toThrow(
      expect.objectContaining({
        code: ErrorCode.MALFORMED_MESSAGE,
        message: "a 20-byte frame holds a segment table declaring 24 bytes",
      }),
    );
    expect(() => checkFramedMessage(concat([message, new Uint8Array(8)]), limits)).toThrow(
      expect.objectContaining({ code: ErrorCode.MALFORMED_MESSAGE }),
    );
  });

  it("rejects a frame over the limits with PARALLAX_ERR_LIMIT", () => {
    expect(() => checkFramedMessage(frame([8]), { maxMessageBytes: 64, maxSegments: 512 })).toThrow(
      expect.objectContaining({
        code: ErrorCode.LIMIT,
        message: "message declares 72 bytes; maxMessageBytes is 64",
      }),
    );
  });
});
