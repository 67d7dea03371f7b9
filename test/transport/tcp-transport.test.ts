import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { connectTcp, listenTcp } from "../../src/transport/tcp-transport.js";
import { frame } from "../helpers/frames.js";
import {
  Cleanup,
  concat,
  expectEchoWorks,
  expectSameMessages,
  nextTurn,
  numbered,
  startTcp,
  type TcpFixture,
  u32s,
  watch,
} from "./helpers.js";

const cleanup = new Cleanup();
afterEach(cleanup.run);

async function client(port: number, limits = {}) {
  const transport = await connectTcp("127.0.0.1", port, limits);
  cleanup.add(() => transport.close());
  return watch(transport);
}

async function rawSocket(port: number): Promise<Socket> {
  const socket = connect({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  cleanup.add(() => socket.destroy());
  await once(socket, "connect");
  return socket;
}

function closeOf(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

function echoWorks(server: TcpFixture): Promise<void> {
  return expectEchoWorks(() => connectTcp("127.0.0.1", server.port));
}

/** Sends raw bytes; expects the server to drop the connection with `expected`, and to live on. */
async function expectRejected(bytes: Uint8Array, expected: object, limits = {}): Promise<void> {
  const server = await startTcp(cleanup, limits);
  const socket = await rawSocket(server.port);
  const socketClosed = closeOf(socket);
  socket.write(bytes);
  const conn = await server.accepting.next();
  expect(await conn.closed).toMatchObject(expected);
  await socketClosed;
  await echoWorks(server);
}

describe("TcpTransport", () => {
  it("carries messages both ways, whole and in order", async () => {
    const server = await startTcp(cleanup);
    const c = await client(server.port);
    const conn = await server.accepting.next();
    conn.transport.send(numbered(99));
    expect(await c.received(1)).toEqual([numbered(99)]);
    const sent = [numbered(1), frame([0]), frame([3, 0, 2]), frame([5000])];
    for (const m of sent) c.transport.send(m);
    expectSameMessages((await c.received(5)).slice(1), sent);
    expect(c.transport.kind).toBe("tcp");
    expect(conn.transport.remoteAddress).toBe("127.0.0.1");
  });

  it("delivers many small messages whole and in order when the peer writes one byte at a time", async () => {
    const server = await startTcp(cleanup, {}, false);
    const sent = Array.from({ length: 40 }, (_, i) =>
      i % 3 === 0 ? frame([1, 2], { seed: i }) : numbered(i, i % 4),
    );
    const stream = concat(sent);
    const socket = await rawSocket(server.port);
    for (const byte of stream) {
      await new Promise((resolve) => socket.write(new Uint8Array([byte]), resolve));
    }
    const conn = await server.accepting.next();
    expectSameMessages(await conn.received(sent.length), sent);
  });

  it("delivers many small messages whole and in order when they arrive coalesced in one write", async () => {
    const server = await startTcp(cleanup, {}, false);
    const sent = Array.from({ length: 2000 }, (_, i) => numbered(i, i % 5));
    const socket = await rawSocket(server.port);
    socket.write(concat(sent));
    const conn = await server.accepting.next();
    expectSameMessages(await conn.received(sent.length), sent);
  });

  it("batches the messages sent in one tick into one write", async () => {
    const server = await startTcp(cleanup);
    const c = await client(server.port);
    const sent = Array.from({ length: 1000 }, (_, i) => numbered(i));
    for (const m of sent) c.transport.send(m);
    expect(c.transport.bufferedAmount).toBe(16_000);
    expectSameMessages(await c.received(sent.length), sent);
  });

  it("sends queued messages before a polite close", async () => {
    const server = await startTcp(cleanup, {}, false);
    const c = await client(server.port);
    for (let i = 0; i < 10; i++) c.transport.send(numbered(i));
    c.transport.close();
    const conn = await server.accepting.next();
    expect(await conn.closed).toEqual({ code: 1000, reason: "peer closed the connection" });
    expect(conn.messages).toHaveLength(10);
  });

  it("drops a peer whose segment table declares more than maxMessageBytes, before buffering the body", async () => {
    await expectRejected(
      u32s(0, 1 << 20),
      {
        code: 1009,
        reason: "message declares 8388616 bytes; maxMessageBytes is 65536",
        error: { code: ErrorCode.LIMIT },
      },
      { maxMessageBytes: 65536 },
    );
  });

  it("drops a peer that declares more than maxSegments segments", async () => {
    await expectRejected(u32s(600), {
      code: 1009,
      reason: "message declares 601 segments; maxSegments is 512",
      error: { code: ErrorCode.LIMIT },
    });
  });

  it("drops a peer that declares 0xffffffff + 1 segments", async () => {
    await expectRejected(u32s(0xffffffff, 1, 1), {
      code: 1009,
      reason: "message declares 4294967296 segments; maxSegments is 512",
      error: { code: ErrorCode.LIMIT },
    });
  });

  it("drops a peer that sends garbage", async () => {
    await expectRejected(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), {
      code: 1009,
      reason: "message declares 542393672 segments; maxSegments is 512",
      error: { code: ErrorCode.LIMIT },
    });
  });

  it("reports PARALLAX_ERR_MALFORMED_MESSAGE when the stream ends inside a message", async () => {
    const server = await startTcp(cleanup);
    const socket = await rawSocket(server.port);
    socket.end(concat([numbered(1), frame([2]).subarray(0, 13)]));
    const conn = await server.accepting.next();
    expect(await conn.closed).toMatchObject({
      code: 1006,
      reason: "stream ended inside a message (13 of 24 bytes received)",
      error: { code: ErrorCode.MALFORMED_MESSAGE },
    });
    expect(conn.messages).toEqual([numbered(1)]);
    await echoWorks(server);
  });

  it("closes connections over maxConnections at once, and accepts again when one leaves", async () => {
    const server = await startTcp(cleanup, { maxConnections: 1 });
    const first = await client(server.port);
    first.transport.send(numbered(1));
    await first.received(1);
    const second = await client(server.port);
    expect(await second.closed).toMatchObject({ code: expect.any(Number) });
    expect(server.listener.connections).toBe(1);
    expect(server.accepting.connections).toHaveLength(1);
    first.transport.close();
    await vi.waitFor(() => expect(server.listener.connections).toBe(0));
    await echoWorks(server);
  });

  it("drops a reader that lets more than maxOutboundBytes queue up, and only that one", async () => {
    const limits = { maxOutboundBytes: 256 * 1024, idleTimeoutMs: 0 };
    const server = await startTcp(cleanup, limits, false);
    const slow = await client(server.port, limits);
    const toSlow = await server.accepting.next();
    const reader = await client(server.port, limits);
    const toReader = await server.accepting.next();
    slow.transport.pause();
    const big = frame([8192]);
    let sent = 0;
    for (; sent < 2000 && !toSlow.transport.closed; sent++) {
      toSlow.transport.send(big);
      toReader.transport.send(big);
      await nextTurn();
    }
    expect(await toSlow.closed).toMatchObject({
      code: 1008,
      reason: "peer is not reading: over maxOutboundBytes (262144) queued",
      error: { code: ErrorCode.LIMIT },
    });
    await reader.received(sent);
    expect(toReader.transport.closed).toBe(false);
  });

  it("reads nothing while paused and delivers everything in order on resume", async () => {
    const server = await startTcp(cleanup, {}, false);
    const paused = await client(server.port);
    const toPaused = await server.accepting.next();
    const control = await client(server.port);
    const toControl = await server.accepting.next();
    paused.transport.pause();
    const sent = Array.from({ length: 500 }, (_, i) => numbered(i, i % 3));
    for (const m of sent) {
      toPaused.transport.send(m);
      toControl.transport.send(m);
    }
    await control.received(sent.length);
    expect(paused.messages).toHaveLength(0);
    paused.transport.resume();
    expectSameMessages(await paused.received(sent.length), sent);
  });

  it("drops a connection that receives nothing for idleTimeoutMs", async () => {
    const server = await startTcp(cleanup, { idleTimeoutMs: 200 });
    const socket = await rawSocket(server.port);
    const socketClosed = closeOf(socket);
    const conn = await server.accepting.next();
    expect(await conn.closed).toMatchObject({
      code: 1006,
      reason: "idle: no bytes received for 200 ms (idleTimeoutMs)",
      error: { code: ErrorCode.DISCONNECTED },
    });
    await socketClosed;
    await echoWorks(server);
  });

  it("closes a connection with 1011 when onMessage throws, and serves others", async () => {
    const closes: unknown[] = [];
    const listener = await listenTcp({
      host: "127.0.0.1",
      port: 0,
      onConnection: (t) => {
        t.onMessage = (m) => {
          if (m.length > 16) throw new Error("boom");
          t.send(m);
        };
        t.onClose = (info) => closes.push(info);
      },
    });
    cleanup.add(() => listener.close());
    const c = await client(listener.port);
    c.transport.send(frame([5]));
    await c.closed;
    await vi.waitFor(() => expect(closes).toMatchObject([{ code: 1011, error: { code: ErrorCode.FAILED } }]));
    const other = await client(listener.port);
    other.transport.send(numbered(3));
    expect(await other.received(1)).toEqual([numbered(3)]);
  });

  it("rejects connectTcp with PARALLAX_ERR_DISCONNECTED when nothing listens", async () => {
    const listener = await listenTcp({ host: "127.0.0.1", port: 0, onConnection: () => {} });
    const port = listener.port;
    await listener.close();
    await expect(connectTcp("127.0.0.1", port)).rejects.toMatchObject({ code: ErrorCode.DISCONNECTED });
  });

  it("closes every connection when the listener closes", async () => {
    const listener = await listenTcp({ host: "127.0.0.1", port: 0, onConnection: () => {} });
    const c = await client(listener.port);
    await vi.waitFor(() => expect(listener.connections).toBe(1));
    await listener.close();
    expect(await c.closed).toEqual({ code: 1000, reason: "peer closed the connection" });
  });
});
