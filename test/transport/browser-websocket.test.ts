import { once } from "node:events";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { ErrorCode } from "../../src/errors.js";
import { connectBrowserWebSocket } from "../../src/transport/browser-websocket.js";
import { frame } from "../helpers/frames.js";
import { Cleanup, expectSameMessages, numbered, startWebSocket, watch } from "./helpers.js";

const cleanup = new Cleanup();
afterEach(cleanup.run);

const globals = globalThis as { WebSocket?: unknown };
const original = globals.WebSocket;
beforeAll(() => {
  globals.WebSocket = WebSocket;
});
afterAll(() => {
  globals.WebSocket = original;
});

async function client(url: string, limits = {}) {
  const transport = await connectBrowserWebSocket(url, limits);
  cleanup.add(() => transport.close());
  return watch(transport);
}

/** A bare ws server that runs `onConnection` for each client and reports the close code it got. */
async function rawServer(onConnection: (ws: WebSocket) => void) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  cleanup.add(() => new Promise((resolve) => wss.close(resolve)));
  await once(wss, "listening");
  const closeCode = new Promise<number>((resolve) =>
    wss.once("connection", (ws) => {
      ws.once("close", (code) => resolve(code));
      onConnection(ws);
    }),
  );
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, closeCode };
}

/** Relative imports of a source file, followed transitively, plus every bare import met. */
function importGraph(entry: string): { files: string[]; bare: string[] } {
  const files: string[] = [];
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (files.includes(file)) return;
    files.push(file);
    const source = readFileSync(file, "utf8");
    for (const [, spec] of source.matchAll(
      /^(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm,
    )) {
      if (spec!.startsWith(".")) visit(path.resolve(path.dirname(file), spec!.replace(/\.js$/, ".ts")));
      else bare.add(spec!);
    }
  };
  visit(entry);
  return { files, bare: [...bare] };
}

describe("connectBrowserWebSocket", () => {
  it("imports nothing Node-only, directly or through the modules it uses", () => {
    const { files, bare } = importGraph(
      path.resolve(import.meta.dirname, "../../src/transport/browser-websocket.ts"),
    );
    expect(files.length).toBeGreaterThan(3);
    expect(bare).toEqual([]);
  });

  it("carries messages both ways through a Parallax WebSocket server, whole and in order", async () => {
    const server = await startWebSocket(cleanup);
    const c = await client(server.url);
    const sent = Array.from({ length: 200 }, (_, i) => (i % 40 === 0 ? frame([1000, 2]) : numbered(i)));
    for (const m of sent) c.transport.send(m);
    expectSameMessages(await c.received(sent.length), sent);
    expect(c.transport.kind).toBe("websocket");
    expect(c.transport.remoteAddress).toBe("127.0.0.1");
  });

  it("holds messages while paused and delivers them in order on resume", async () => {
    const server = await startWebSocket(cleanup, {}, false);
    const c = await client(server.url);
    const conn = await server.accepting.next();
    c.transport.pause();
    conn.transport.send(numbered(1));
    conn.transport.send(numbered(2));
    conn.transport.close(4000, "done");
    await vi.waitFor(() => expect(server.listener.connections).toBe(0));
    expect(c.messages).toHaveLength(0);
    expect(c.transport.closed).toBe(false);
    c.transport.resume();
    expect(await c.closed).toEqual({ code: 4000, reason: "done", error: expect.anything() });
    expect(c.messages).toEqual([numbered(1), numbered(2)]);
  });

  it("reports the code and reason the server closed with", async () => {
    const server = await startWebSocket(cleanup, {}, false);
    const c = await client(server.url);
    (await server.accepting.next()).transport.close(1000, "bye");
    expect(await c.closed).toEqual({ code: 1000, reason: "bye" });
  });

  it("closes on a text frame, reporting 1003 and sending 4003, which browsers may send", async () => {
    const server = await rawServer((ws) => ws.send("not capnp"));
    const c = await client(server.url);
    expect(await c.closed).toMatchObject({ code: 1003, error: { code: ErrorCode.PROTOCOL } });
    expect(await server.closeCode).toBe(4003);
  });

  it("closes on a frame over maxMessageBytes with PARALLAX_ERR_LIMIT", async () => {
    const server = await rawServer((ws) => ws.send(frame([100])));
    const c = await client(server.url, { maxMessageBytes: 256 });
    expect(await c.closed).toMatchObject({
      code: 1009,
      reason: "message declares 808 bytes; maxMessageBytes is 256",
      error: { code: ErrorCode.LIMIT },
    });
    expect(await server.closeCode).toBe(4009);
  });

  it("rejects with PARALLAX_ERR_DISCONNECTED when the upgrade is refused", async () => {
    const server = await startWebSocket(cleanup);
    await expect(connectBrowserWebSocket(`ws://127.0.0.1:${server.port}/elsewhere`)).rejects.toMatchObject({
      code: ErrorCode.DISCONNECTED,
    });
  });
});
