import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { memoryPair } from "../../src/transport/memory-transport.js";
import { frame } from "../helpers/frames.js";
import { expectSameMessages, nextTurn, numbered, numberOf, watch } from "./helpers.js";

describe("memoryPair", () => {
  it("carries messages both ways, whole and in order", async () => {
    const [a, b] = memoryPair().map((t) => watch(t));
    const toB = Array.from({ length: 500 }, (_, i) => numbered(i, i % 7));
    const toA = [frame([1, 2, 3]), numbered(42)];
    for (const m of toB) a!.transport.send(m);
    for (const m of toA) b!.transport.send(m);
    expectSameMessages(await b!.received(500), toB);
    expectSameMessages(await a!.received(2), toA);
    expect(a!.transport.kind).toBe("memory");
  });

  it("delivers asynchronously, never from inside send", async () => {
    const [a, b] = memoryPair();
    const watched = watch(b!);
    a!.send(numbered(1));
    expect(watched.messages).toHaveLength(0);
    expect(a!.bufferedAmount).toBe(16);
    await watched.received(1);
    expect(a!.bufferedAmount).toBe(0);
  });

  it("copies each message, so the sender may reuse its buffer", async () => {
    const [a, b] = memoryPair();
    const watched = watch(b!);
    const message = numbered(7);
    a!.send(message);
    message.fill(0);
    expect(numberOf((await watched.received(1))[0]!)).toBe(7);
  });

  it("holds messages while paused, counts them as buffered, and delivers all in order on resume", async () => {
    const [a, b] = memoryPair();
    const watched = watch(b!);
    b!.pause();
    const sent = Array.from({ length: 10 }, (_, i) => numbered(i));
    for (const m of sent) a!.send(m);
    await nextTurn();
    expect(watched.messages).toHaveLength(0);
    expect(a!.bufferedAmount).toBe(160);
    b!.resume();
    expect(watched.messages).toHaveLength(0);
    expectSameMessages(await watched.received(10), sent);
    expect(a!.bufferedAmount).toBe(0);
  });

  it("stops delivering the rest of a batch as soon as the handler pauses", async () => {
    const [a, b] = memoryPair();
    const seen: number[] = [];
    b!.onMessage = (m) => {
      seen.push(numberOf(m));
      if (seen.length === 3) b!.pause();
    };
    for (let i = 0; i < 6; i++) a!.send(numbered(i));
    await nextTurn();
    expect(seen).toEqual([0, 1, 2]);
    b!.resume();
    await nextTurn();
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("holds messages that arrive before onMessage is set", async () => {
    const [a, b] = memoryPair();
    a!.send(numbered(1));
    await nextTurn();
    const watched = watch(b!);
    expect(numberOf((await watched.received(1))[0]!)).toBe(1);
  });

  it("closes politely: the peer gets earlier messages, then the code and reason, each side once", async () => {
    const [a, b] = memoryPair().map((t) => watch(t));
    for (let i = 0; i < 3; i++) a!.transport.send(numbered(i));
    a!.transport.close(4000, "bye");
    a!.transport.close(4001, "again");
    expect(a!.transport.closed).toBe(true);
    expect(() => a!.transport.send(numbered(9))).not.toThrow();
    expect(await a!.closed).toEqual({ code: 4000, reason: "bye" });
    const info = await b!.closed;
    expect(b!.messages.map(numberOf)).toEqual([0, 1, 2]);
    expect(info).toMatchObject({ code: 4000, reason: "bye", error: { code: ErrorCode.DISCONNECTED } });
    expect(b!.transport.closed).toBe(true);
  });

  it("reports a close to a handler set after it happened, exactly once", async () => {
    const [a] = memoryPair();
    a!.close();
    await nextTurn();
    const calls: unknown[] = [];
    a!.onClose = (info) => calls.push(info);
    await nextTurn();
    expect(calls).toEqual([{ code: 1000, reason: "" }]);
  });

  it("delivers a peer's close only after the messages held while paused", async () => {
    const [a, b] = memoryPair().map((t) => watch(t));
    b!.transport.pause();
    a!.transport.send(numbered(1));
    a!.transport.close();
    await nextTurn();
    expect(b!.transport.closed).toBe(false);
    b!.transport.resume();
    expect(await b!.closed).toEqual({ code: 1000, reason: "" });
    expect(b!.messages.map(numberOf)).toEqual([1]);
  });

  it("drops the connection when a paused peer lets more than maxOutboundBytes queue up", async () => {
    const [a, b] = memoryPair({ maxOutboundBytes: 4096 }).map((t) => watch(t));
    b!.transport.pause();
    const message = frame([100]);
    for (let i = 0; i < 10 && !a!.transport.closed; i++) {
      a!.transport.send(message);
      await nextTurn();
    }
    expect(await a!.closed).toMatchObject({
      code: 1008,
      reason: "peer is not reading: over maxOutboundBytes (4096) queued",
      error: { code: ErrorCode.LIMIT },
    });
    expect(await b!.closed).toMatchObject({ code: 1006, error: { code: ErrorCode.DISCONNECTED } });
  });

  it("closes the receiving side with 1009 and PARALLAX_ERR_LIMIT on a message over maxMessageBytes", async () => {
    const [a, b] = memoryPair({ maxMessageBytes: 64 }).map((t) => watch(t));
    a!.transport.send(frame([16]));
    expect(await b!.closed).toMatchObject({
      code: 1009,
      reason: "message declares 136 bytes; maxMessageBytes is 64",
      error: { code: ErrorCode.LIMIT },
    });
    expect(await a!.closed).toMatchObject({ code: 1009, error: { code: ErrorCode.DISCONNECTED } });
  });

  it("closes the receiving side with 1007 and PARALLAX_ERR_MALFORMED_MESSAGE on garbage", async () => {
    const [a, b] = memoryPair().map((t) => watch(t));
    a!.transport.send(new Uint8Array([1, 2, 3]));
    expect(await b!.closed).toMatchObject({ code: 1007, error: { code: ErrorCode.MALFORMED_MESSAGE } });
  });

  it("closes with 1011 when onMessage throws, without delivering more", async () => {
    const [a, b] = memoryPair();
    const watchedA = watch(a!);
    let calls = 0;
    b!.onMessage = () => {
      calls++;
      throw new Error("boom");
    };
    const closed = new Promise((resolve) => {
      b!.onClose = resolve;
    });
    a!.send(numbered(1));
    a!.send(numbered(2));
    expect(await closed).toMatchObject({
      code: 1011,
      reason: "internal error",
      error: { code: ErrorCode.FAILED, message: "onMessage handler threw: boom" },
    });
    expect(calls).toBe(1);
    expect(await watchedA.closed).toMatchObject({ code: 1011 });
  });
});
