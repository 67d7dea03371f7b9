/** The browser entry point: it bundles for browsers with nothing from Node, and it works against the server. */
import { build } from "esbuild";
import path from "node:path";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { connectBrowser, demoSchema } from "../src/browser.js";
import { type ParallaxServer, startServer } from "../src/server.js";
import { demoBootstrap } from "../src/services/demo/demo-service.js";

const root = path.resolve(import.meta.dirname, "..");
let server: ParallaxServer | undefined;
const globals = globalThis as { WebSocket?: unknown };
const original = globals.WebSocket;

afterEach(async () => {
  globals.WebSocket = original;
  await server?.close();
  server = undefined;
});

describe("src/browser.ts", () => {
  it("bundles for the browser platform without any Node module or the ws package", async () => {
    const result = await build({
      entryPoints: [path.join(root, "src/browser.ts")],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.includes("src/rpc/rpc-connection.ts"))).toBe(true);
    expect(inputs.filter((i) => /node_modules\/ws\/|^node:/.test(i))).toEqual([]);
    expect(result.outputFiles[0]?.text).not.toMatch(/from ["']node:|require\(["']node:/);
  });

  it("talks to the server through the global WebSocket: calls, pipelining, disposal", async () => {
    globals.WebSocket = WebSocket; // what a browser provides
    server = await startServer({ port: 0, tcpPort: null, bootstrap: () => demoBootstrap() });
    const conn = await connectBrowser(server.url);
    const demo = conn.bootstrap(demoSchema.Demo);
    {
      using reply = demo.echo({ payload: new Uint8Array([4, 5, 6]) });
      expect([...(await reply).payload]).toEqual([4, 5, 6]);
      using counted = demo.newCounter({ start: 40n }).counter.inc({ by: 2n });
      expect((await counted).value).toBe(42n);
    }
    demo.dispose();
    conn.close();
  });
});
