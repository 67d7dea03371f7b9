/**
 * The browser entry point: it bundles for browsers with nothing from Node, and it works against
 * the server — RPC, and logging in with nothing but what src/browser.ts exports (SCRAM on
 * WebCrypto, argon2id in WebAssembly at the broker's KDF floor, WebCrypto Ed25519 keys, the
 * ReconnectingClient) over the global WebSocket a browser provides.
 */
import { build, type Metafile } from "esbuild";
import path from "node:path";
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  brokerSchema,
  connectBrowser,
  demoSchema,
  ErrorCode,
  generateWebEd25519,
  type Kdf,
  LOBBY_MEMBER,
  loginWithKey,
  loginWithPassword,
  memoizeKdf,
  type ReconnectEvent,
  ReconnectingClient,
  type RpcConnection,
  signUp,
  WasmKdf,
} from "../src/browser.js";
import { type BrokerServer, type ParallaxServer, startBroker, startServer } from "../src/server.js";
import { demoBootstrap } from "../src/services/demo/demo-service.js";
import { lobby } from "../src/services/lobby/lobby-service.js";
import { SqliteBrokerStore } from "../src/store/index.js";
import { rejection } from "./helpers/errors.js";
import { waitFor } from "./helpers/wait.js";

const root = path.resolve(import.meta.dirname, "..");
let server: ParallaxServer | undefined;
const globals = globalThis as { WebSocket?: unknown };
const original = globals.WebSocket;

afterEach(async () => {
  globals.WebSocket = original;
  await server?.close();
  server = undefined;
});

/** Bundles `entry` (a file, or source text resolved from the repo root) as a browser would get it. */
async function bundle(entry: { file: string } | { source: string }) {
  const result = await build({
    ...("file" in entry
      ? { entryPoints: [path.join(root, entry.file)] }
      : { stdin: { contents: entry.source, resolveDir: root, loader: "ts" as const } }),
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    logLevel: "silent",
    metafile: true,
  });
  return {
    inputs: Object.keys((result.metafile as Metafile).inputs),
    text: result.outputFiles[0]?.text ?? "",
  };
}

/** What must never reach a browser bundle: Node built-ins, ws, native argon2, the node:crypto halves of cred. */
const NODE_ONLY =
  /^node:|node_modules\/(ws|argon2)\/|src\/cred\/(scram|ed25519|secrets|argon2-kdf)\.ts$|src\/login\/client-login\.ts$/;

describe("src/browser.ts", () => {
  it("bundles for the browser platform without any Node module or the ws package", async () => {
    const { inputs, text } = await bundle({ file: "src/browser.ts" });
    for (const file of [
      "src/rpc/rpc-connection.ts",
      "src/cred/scram-client.ts",
      "src/cred/wasm-kdf.ts",
      "src/login/browser-login.ts",
      "src/login/reconnecting-client.ts",
    ]) {
      expect(inputs).toContain(file);
    }
    expect(inputs.filter((i) => NODE_ONLY.test(i))).toEqual([]);
    expect(text).not.toMatch(/from ["']node:|require\(["']node:/);
  });

  it("gives a bundle of just the login functions and the ReconnectingClient with no node: import and no Buffer use", async () => {
    const { inputs, text } = await bundle({
      source:
        "export { connectBrowser, generateWebEd25519, loginWithKey, loginWithPassword, makeVerifier, " +
        'ReconnectingClient, signUp, WasmKdf } from "./src/browser.ts";',
    });
    expect(inputs).toContain("src/login/browser-login.ts");
    expect(inputs).toContain("node_modules/hash-wasm/dist/index.esm.js");
    expect(inputs.filter((i) => NODE_ONLY.test(i))).toEqual([]);
    expect(text).not.toMatch(/from ["']node:|require\(["']node:|import\(["']node:/);
    // Browsers have no Buffer: code that needs it would throw there, however it got in.
    expect(text).not.toMatch(/\bBuffer\.(from|alloc|isBuffer|concat)\(/);
    expect(text).toContain("parallax-scram-v1,n=");
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

describe("logging in from a browser (browser-safe code only) against a real broker", () => {
  const PASSWORD = "correct horse battery staple";
  const { AuthMethod, Root } = brokerSchema;
  /** argon2id at the floor (19 MiB) is slow: each (password, salt) is derived once. */
  const kdf: Kdf = memoizeKdf(new WasmKdf(), 4);
  let broker: BrokerServer;
  let store: SqliteBrokerStore;
  let signedUp: ReturnType<typeof signUpAlice> | undefined;
  /** Every frame the page sent, copied. */
  const sent: Uint8Array[] = [];
  /** What the running test opened; closed after it. */
  const opened: Array<{ close(): void }> = [];

  /** The global WebSocket of a page, with every frame it sends written down. */
  class PageWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      const send = this.send.bind(this);
      this.send = ((data: Uint8Array) => {
        sent.push(data.slice());
        send(data);
      }) as WebSocket["send"];
    }
  }

  async function open(): Promise<{ conn: RpcConnection; root: brokerSchema.Root }> {
    const conn = await connectBrowser(broker.url);
    opened.push(conn);
    return { conn, root: conn.bootstrap(Root) };
  }

  /** Signs alice up once, with the KDF parameters the broker announces as its floor. */
  async function signUpAlice() {
    const { root } = await open();
    const floor = (await root.info()).info.kdfFloor;
    const params = {
      algorithm: "argon2id" as const,
      memoryKiB: floor.memoryKiB,
      iterations: floor.iterations,
      parallelism: floor.parallelism,
    };
    return { params, result: await signUp(root, "alice", PASSWORD, { kdf, params }) };
  }

  const alice = () => {
    signedUp ??= signUpAlice();
    return signedUp;
  };

  beforeAll(async () => {
    store = SqliteBrokerStore.open(":memory:");
    broker = await startBroker({ port: 0, tcpPort: null, store, services: [lobby()], signUp: "open" });
  });

  afterAll(async () => {
    await broker.close();
    store.close();
  });

  beforeEach(() => {
    globals.WebSocket = PageWebSocket;
  });

  afterEach(async () => {
    for (const c of opened.splice(0)) c.close();
    await waitFor(() => {
      expect(broker.connections.size).toBe(0);
      expect(broker.broker.liveIdentities).toBe(0);
    });
  });

  it("signs up at the broker's KDF floor and logs in with the password, which never crosses the wire", async () => {
    const { params, result } = await alice();
    expect(params).toEqual({ algorithm: "argon2id", memoryKiB: 19456, iterations: 2, parallelism: 1 });
    const first = (await result.identity?.whoami())?.info;
    expect([first?.name, first?.authMethod]).toEqual(["alice", AuthMethod.SIGN_UP]);
    expect((await store.findIdentityByName("alice"))?.verifier?.kdf).toEqual(params);

    const { root } = await open();
    const login = await loginWithPassword(root, "alice", PASSWORD, { kdf });
    const who = (await login.identity.whoami()).info;
    expect([who.name, who.authMethod, who.grant]).toEqual(["alice", AuthMethod.PASSWORD, "password"]);
    expect(login.kdf).toEqual(params);

    const holding = (needle: Uint8Array) => (frame: Uint8Array) =>
      frame.some((_, i) => needle.every((b, j) => frame[i + j] === b));
    expect(sent.length).toBeGreaterThan(4);
    expect(sent.some(holding(new TextEncoder().encode("alice")))).toBe(true); // the tap sees what is sent
    expect(sent.filter(holding(new TextEncoder().encode(PASSWORD)))).toEqual([]);
    expect(sent.filter(holding(login.saltedPassword))).toEqual([]);
  });

  it("refuses a wrong password with AUTH_FAILED", async () => {
    await alice();
    const { root, conn } = await open();
    const err = await rejection(loginWithPassword(root, "alice", `${PASSWORD}!`, { kdf }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(conn.stats().imports).toBe(1);
  });

  it("logs in with a WebCrypto Ed25519 key registered from a password login", async () => {
    await alice();
    const key = await generateWebEd25519();
    const { identity } = await loginWithPassword((await open()).root, "alice", PASSWORD, { kdf });
    await identity.addPublicKey({ publicKey: key.publicKey, device: "this browser" });
    const res = await loginWithKey((await open()).root, "alice", key);
    const who = (await res.identity?.whoami())?.info;
    expect([who?.name, who?.authMethod]).toEqual(["alice", AuthMethod.PUBLIC_KEY]);
  });

  it("keeps a session through a dropped WebSocket with the ReconnectingClient, resuming with its token", async () => {
    await alice();
    const events: ReconnectEvent[] = [];
    const waiters: Array<() => void> = [];
    const next = (pick: (e: ReconnectEvent) => boolean) =>
      new Promise<ReconnectEvent>((resolve) => {
        const check = (): void => {
          const found = events.find(pick);
          if (found !== undefined) resolve(found);
          else waiters.push(check);
        };
        check();
      });
    const client = new ReconnectingClient({
      connect: () => connectBrowser(broker.url),
      login: async (r) => (await loginWithPassword(r, "alice", PASSWORD, { kdf })).identity,
      device: "browser tab",
      onEvent: (e) => {
        events.push(e);
        for (const w of waiters.splice(0)) w();
      },
    });
    opened.push(client);
    await client.start();
    const member = await client.attach(LOBBY_MEMBER);
    expect((await member.current.hello()).greeting).toBe("hello, alice");
    for (const c of broker.connections) c.close("network blip");
    const event = await next((e) => (e.type === "connected" && e.resumed) || e.type === "failed");
    expect(event).toEqual({ type: "connected", resumed: true });
    expect((await member.current.hello()).greeting).toBe("hello, alice");
    const who = (await client.identity.whoami()).info;
    expect([who.authMethod, who.grant]).toEqual([AuthMethod.RESUME, "resume token (browser tab)"]);
  });
});
