import { once } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { ErrorCode } from "../../src/errors.js";
import { connectWebSocket } from "../../src/transport/websocket-transport.js";
import { frame } from "../helpers/frames.js";
import {
  Cleanup,
  expectEchoWorks,
  expectSameMessages,
  nextTurn,
  numbered,
  startWebSocket,
  u32s,
  type WebSocketFixture,
  watch,
} from "./helpers.js";

const cleanup = new Cleanup();
afterEach(cleanup.run);

async function client(url: string, limits = {}) {
  const transport = await connectWebSocket(url, limits);
  cleanup.add(() => transport.close());
  return watch(transport);
}

/** A plain ws client, so tests can send what our transport never would. */
async function rawClient(url: string, options: { autoPong?: boolean } = {}) {
  const ws = new WebSocket(url, options);
  cleanup.add(() => ws.terminate());
  ws.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await once(ws, "open");
  return { ws, closed };
}

function echoWorks(server: WebSocketFixture): Promise<void> {
  return expectEchoWorks(() => connectWebSocket(server.url));
}

/** Sends one frame from a raw client; expects both ends to see `code` and the server to live on. */
async function expectRejected(data: Uint8Array | string, code: number, serverSees: object, limits = {}) {
  const server = await startWebSocket(cleanup, limits);
  const raw = await rawClient(server.url);
  raw.ws.send(data);
  const conn = await server.accepting.next();
  expect(await conn.closed).toMatchObject({ code, ...serverSees });
  expect((await raw.closed).code).toBe(code);
  await echoWorks(server);
}

describe("WebSocketTransport", () => {
  it("carries messages both ways, whole and in order", async () => {
    const server = await startWebSocket(cleanup);
    const c = await client(server.url);
    const conn = await server.accepting.next();
    conn.transport.send(numbered(99));
    expect(await c.received(1)).toEqual([numbered(99)]);
    const sent = Array.from({ length: 300 }, (_, i) =>
      i % 50 === 0 ? frame([2000, 1, 3]) : numbered(i, i % 4),
    );
    for (const m of sent) c.transport.send(m);
    expectSameMessages((await c.received(301)).slice(1), sent);
    expect(c.transport.kind).toBe("websocket");
    expect(conn.transport.remoteAddress).toBe("127.0.0.1");
  });

  it("closes with 1003 on a text frame", async () => {
    await expectRejected("hello", 1003, {
      reason: "text frames are not part of this protocol; send binary Cap'n Proto messages",
      error: { code: ErrorCode.PROTOCOL },
    });
  });

  it("closes with 1009 on a frame over maxMessageBytes, refused by ws before buffering", async () => {
    await expectRejected(frame([200]), 1009, { error: { code: ErrorCode.LIMIT } }, { maxMessageBytes: 1024 });
  });

  it("closes with 1009 on a frame declaring more than maxSegments segments", async () => {
    await expectRejected(frame(Array.from({ length: 600 }, () => 0)), 1009, {
      reason: "message declares 600 segments; maxSegments is 512",
      error: { code: ErrorCode.LIMIT },
    });
  });

  it("closes with 1009 on a segment count of 0xffffffff", async () => {
    await expectRejected(u32s(0xffffffff, 0), 1009, {
      reason: "message declares 4294967296 segments; maxSegments is 512",
      error: { code: ErrorCode.LIMIT },
    });
  });

  it("closes with 1007 on a frame too short for its segment table", async () => {
    await expectRejected(new Uint8Array([1, 2, 3]), 1007, {
      reason: "a 3-byte frame ends inside its segment table",
      error: { code: ErrorCode.MALFORMED_MESSAGE },
    });
  });

  it("closes with 1007 on a frame that carries less than its table declares", async () => {
    await expectRejected(frame([4]).subarray(0, 20), 1007, {
      reason: "a 20-byte frame holds a segment table declaring 40 bytes",
      error: { code: ErrorCode.MALFORMED_MESSAGE },
    });
  });

  it("answers upgrades to other paths with 404 while the HTTP server keeps serving", async () => {
    const server = await startWebSocket(cleanup);
    await expect(connectWebSocket(`ws://127.0.0.1:${server.port}/elsewhere`)).rejects.toMatchObject({
      code: ErrorCode.DISCONNECTED,
      message: `cannot connect to ws://127.0.0.1:${server.port}/elsewhere: HTTP 404`,
    });
    const page = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe("hello from http");
    expect(server.listener.connections).toBe(0);
    await echoWorks(server);
  });

  it("refuses upgrades over maxConnections with 503, and accepts again when one leaves", async () => {
    const server = await startWebSocket(cleanup, { maxConnections: 1 });
    const first = await client(server.url);
    await expect(connectWebSocket(server.url)).rejects.toMatchObject({
      code: ErrorCode.LIMIT,
      kind: "overloaded",
    });
    first.transport.send(numbered(1));
    expect(await first.received(1)).toEqual([numbered(1)]);
    expect(server.accepting.connections).toHaveLength(1);
    first.transport.close();
    await vi.waitFor(() => expect(server.listener.connections).toBe(0));
    await echoWorks(server);
  });

  it("drops a reader that lets more than maxOutboundBytes queue up, and only that one", async () => {
    const limits = { maxOutboundBytes: 256 * 1024, idleTimeoutMs: 0 };
    const server = await startWebSocket(cleanup, limits, false);
    const slow = await client(server.url, limits);
    const toSlow = await server.accepting.next();
    const reader = await client(server.url, limits);
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
    const server = await startWebSocket(cleanup, {}, false);
    const paused = await client(server.url);
    const toPaused = await server.accepting.next();
    const control = await client(server.url);
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

  it("drops a peer that answers no ping for idleTimeoutMs", async () => {
    const server = await startWebSocket(cleanup, { idleTimeoutMs: 200 });
    const raw = await rawClient(server.url, { autoPong: false });
    const conn = await server.accepting.next();
    expect(await conn.closed).toMatchObject({
      code: 1006,
      reason: "idle: nothing received for 200 ms (idleTimeoutMs)",
      error: { code: ErrorCode.DISCONNECTED },
    });
    expect((await raw.closed).code).toBe(1006);
    await echoWorks(server);
  });

  it("keeps a silent peer that answers pings", async () => {
    const server = await startWebSocket(cleanup, { idleTimeoutMs: 200 });
    const raw = await rawClient(server.url);
    const conn = await server.accepting.next();
    for (let pings = 0; pings < 4; pings++) await once(raw.ws, "ping");
    expect(conn.transport.closed).toBe(false);
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("closes every connection with 1001 when the listener closes", async () => {
    const server = await startWebSocket(cleanup);
    const c = await client(server.url);
    await server.listener.close();
    expect(await c.closed).toEqual({ code: 1001, reason: "server shutting down" });
    expect(server.listener.connections).toBe(0);
  });
});
