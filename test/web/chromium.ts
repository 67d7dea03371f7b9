/**
 * The browser tests' harness: Debian's Chromium driven by playwright-core (no browser download),
 * headless, one launch per test file and one fresh context (its own storage, cookies and cache)
 * per simulated user, against a real broker with its pages (`startBroker` on a temporary data
 * folder, port 0, no TCP).
 *
 * Chromium is `command -v chromium`, else /usr/bin/chromium; when neither exists the suites are
 * skipped, saying so once (`describeInChromium`). Everything a page does that a test should
 * notice is written down per page (`PageLog`): uncaught errors, console errors (a CSP violation
 * is one), every WebSocket frame it sent (the bytes), and its status line over time.
 *
 * To drop one user's connection from the server side, take `snapshot(server)` before that user's
 * page connects and `since(server, snapshot)` after: the connections that are new are theirs.
 * To drop one user's network, that user's pages go through a `CutProxy` (a TCP proxy in front of
 * the broker's port, so the page's origin and its `/rpc` are the proxy's): `cut()` destroys
 * every connection through it — no WebSocket close, as when a network goes away — and while
 * `refusing` new connections are destroyed at once, so the page's retries fail until it is back.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { describe } from "vitest";
import type { RpcConnection } from "../../src/rpc/index.js";
import { type BrokerServer, type BrokerServerOptions, startBroker } from "../../src/server.js";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Debian's Chromium, if this machine has it. */
export function findChromium(): string | undefined {
  try {
    const found = execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
    if (found !== "" && existsSync(found)) return found;
  } catch {
    // not on the PATH
  }
  return existsSync("/usr/bin/chromium") ? "/usr/bin/chromium" : undefined;
}

export const CHROMIUM = findChromium();

let told = false;

/** `describe` when Chromium is here; otherwise a skipped suite and one clear line on stderr. */
export function describeInChromium(name: string, body: () => void): void {
  if (CHROMIUM === undefined) {
    if (!told) {
      told = true;
      process.stderr.write(
        "test/web: SKIPPED — no Chromium found (`command -v chromium`, /usr/bin/chromium). " +
          "Install Debian's chromium package to run the browser tests.\n",
      );
    }
    describe.skip(`${name} (no Chromium on this machine)`, body);
    return;
  }
  describe(name, { timeout: 60_000 }, body);
}

export async function launchChromium(): Promise<Browser> {
  if (CHROMIUM === undefined) throw new Error("no Chromium on this machine");
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface WebBroker {
  readonly server: BrokerServer;
  /** `http://127.0.0.1:port` */
  readonly origin: string;
  close(): Promise<void>;
}

/** A broker with its pages on a fresh temporary data folder. */
export async function startWebBroker(options: Partial<BrokerServerOptions> = {}): Promise<WebBroker> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "parallax-web-"));
  const server = await startBroker({ port: 0, tcpPort: null, dataDir, ...options });
  return {
    server,
    origin: `http://127.0.0.1:${server.port}`,
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** What a page did that tests look at. */
export interface PageLog {
  readonly errors: string[];
  /** Every WebSocket frame the page sent, as bytes. */
  readonly sent: Buffer[];
  /** The status line's texts, in order, as they changed. */
  readonly statuses: string[];
}

export interface User {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly log: PageLog;
}

/**
 * A new user: a fresh context (nothing shared with other users) and one page, logged. The status
 * line is watched from inside the page (a MutationObserver the test adds before any page script
 * runs), so a short "reconnecting…" is seen even if it lasts a moment.
 */
export async function newUser(browser: Browser): Promise<User> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const log: PageLog = { errors: [], sent: [], statuses: [] };
  page.on("pageerror", (e) => log.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") log.errors.push(`console: ${m.text()}`);
  });
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => log.sent.push(Buffer.isBuffer(f.payload) ? f.payload : Buffer.from(f.payload)));
  });
  await page.exposeFunction("__parallaxStatus", (text: string) => log.statuses.push(text));
  await page.addInitScript(() => {
    const w = globalThis as unknown as {
      __parallaxStatus(text: string): void;
      document: {
        addEventListener(type: string, fn: () => void): void;
        getElementById(id: string): { textContent: string | null } | null;
      };
      MutationObserver: new (
        fn: () => void,
      ) => { observe(node: unknown, options: Record<string, boolean>): void };
    };
    w.document.addEventListener("DOMContentLoaded", () => {
      const status = w.document.getElementById("status");
      if (status === null) return;
      let last = "";
      const seen = () => {
        const text = status.textContent ?? "";
        if (text !== last) w.__parallaxStatus(text);
        last = text;
      };
      new w.MutationObserver(seen).observe(status, { childList: true, characterData: true, subtree: true });
      seen();
    });
  });
  return { context, page, log };
}

/** Signs up (or logs in) from the page's form and waits for the whoami panel to name the user. */
export async function enter(
  page: Page,
  origin: string,
  name: string,
  password: string,
  how: "signup" | "login",
  path = "/",
): Promise<void> {
  await page.goto(`${origin}${path}`);
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await page.click(how === "signup" ? "#signup-submit" : "#login-submit");
  // A wait in the page (usable in beforeAll, where expect.poll is not).
  await page.waitForFunction(
    (n) => {
      const d = (
        globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }
      ).document;
      const shown = d.getElementById("whoami-list")?.textContent ?? "";
      return shown.startsWith(`Name${n}`) && d.getElementById("status")?.textContent === "connected";
    },
    name,
    { timeout: 30_000 },
  );
}

/** A TCP proxy to `port` on 127.0.0.1 that a test can cut. */
export interface CutProxy {
  readonly port: number;
  /** `http://127.0.0.1:port`: the origin of pages loaded through the proxy. */
  readonly origin: string;
  /** While true, new connections are destroyed as they arrive. */
  refusing: boolean;
  /** Destroys every connection through the proxy (both sides, no close handshake). */
  cut(): void;
  close(): Promise<void>;
}

export async function startCutProxy(port: number): Promise<CutProxy> {
  const live = new Set<Socket>();
  const track = (s: Socket) => {
    live.add(s);
    s.on("close", () => live.delete(s));
    s.on("error", () => s.destroy());
  };
  const proxy: { refusing: boolean } = { refusing: false };
  const server: Server = createServer((inbound) => {
    track(inbound);
    if (proxy.refusing) {
      inbound.destroy();
      return;
    }
    const outbound = tcpConnect({ host: "127.0.0.1", port });
    track(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const own = (server.address() as { port: number }).port;
  return Object.assign(proxy, {
    port: own,
    origin: `http://127.0.0.1:${own}`,
    cut() {
      for (const s of [...live]) s.destroy();
    },
    async close() {
      this.cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** The server's connections right now. */
export function snapshot(server: BrokerServer): ReadonlySet<RpcConnection> {
  return new Set(server.connections);
}

/** The server's connections that were not in `before`. */
export function since(server: BrokerServer, before: ReadonlySet<RpcConnection>): RpcConnection[] {
  return [...server.connections].filter((c) => !before.has(c));
}
