/**
 * Serving the pages (src/web-server.ts), over real HTTP against `startBroker`: what each path
 * answers, with which headers (content type, caching, the CSP and the other security headers),
 * methods other than GET/HEAD, gzip, ETags, the bundle's shape (no Node module reaches a page)
 * and its sizes; the plain broker without pages; a page list that breaks the rules.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../../src/server.js";
import { demoBootstrap } from "../../src/services/demo/demo-service.js";
import {
  buildWebBundle,
  formatPageSizes,
  WEB_CONTENT_SECURITY_POLICY,
  WEB_SECURITY_HEADERS,
  type WebBundle,
  webBundle,
} from "../../src/web-server.js";
import { WEB_PAGES } from "../../src/web/pages.js";
import { startWebBroker, type WebBroker } from "./chromium.js";

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One raw HTTP request (fetch would hide Content-Encoding and refuse some methods). */
function call(
  port: number,
  path: string,
  method = "GET",
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

let web: WebBroker;
let bundle: WebBundle;

beforeAll(async () => {
  web = await startWebBroker();
  bundle = await webBundle();
});

afterAll(async () => {
  await web.close();
});

function expectSecurityHeaders(a: Answer): void {
  for (const [name, value] of Object.entries(WEB_SECURITY_HEADERS)) expect(a.headers[name]).toBe(value);
}

describe("the broker's web pages over HTTP", () => {
  it("serves every page as HTML with the layout, its own script and the stylesheet, revalidated", async () => {
    for (const page of WEB_PAGES) {
      const a = await call(web.server.port, page.path);
      expect(a.status).toBe(200);
      expect(a.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(a.headers["cache-control"]).toBe("no-cache");
      expectSecurityHeaders(a);
      const html = a.body.toString("utf8");
      expect(html).toContain(`<title>${page.title} · Parallax</title>`);
      expect(html).toMatch(
        new RegExp(`<script type="module" src="/assets/${page.name}-[A-Z0-9]+\\.js"></script>`),
      );
      expect(html).toMatch(/<link rel="stylesheet" href="\/assets\/style-[A-Z0-9]+\.css">/);
      expect(html).toContain(`<a href="${page.path}" aria-current="page">`);
      expect(html).toContain('id="login-form"');
      // No inline script, no inline style, no event-handler attribute: the CSP forbids them.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/i);
    }
  });

  it("serves the assets each page names, with their types, cached for a year", async () => {
    const html = (await call(web.server.port, "/chat")).body.toString("utf8");
    const urls = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(urls.some((u) => u.endsWith(".js"))).toBe(true);
    expect(urls.some((u) => u.endsWith(".css"))).toBe(true);
    for (const url of urls) {
      const a = await call(web.server.port, url);
      expect(a.status, url).toBe(200);
      expect(a.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
      const type = url.endsWith(".js")
        ? "text/javascript; charset=utf-8"
        : url.endsWith(".css")
          ? "text/css; charset=utf-8"
          : "image/svg+xml";
      expect(a.headers["content-type"]).toBe(type);
      expect(a.headers["x-content-type-options"]).toBe("nosniff");
      expect(Number(a.headers["content-length"])).toBe(a.body.length);
    }
  });

  it("states a CSP with scripts and connections from this origin only, WebAssembly allowed, no inline code, Trusted Types required", () => {
    const directives = new Map(
      WEB_CONTENT_SECURITY_POLICY.split(";").map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name as string, values.join(" ")];
      }),
    );
    expect(directives.get("default-src")).toBe("'none'");
    expect(directives.get("script-src")).toBe("'self' 'wasm-unsafe-eval'");
    expect(directives.get("connect-src")).toBe("'self'");
    expect(directives.get("style-src")).toBe("'self'");
    expect(directives.get("frame-ancestors")).toBe("'none'");
    expect(directives.get("require-trusted-types-for")).toBe("'script'");
    expect(directives.get("trusted-types")).toBe("'none'");
    expect(WEB_CONTENT_SECURITY_POLICY).not.toMatch(/'unsafe-inline'|'unsafe-eval'|\*|data:/);
  });

  it("answers 404 for unknown paths, 426 for /rpc without the upgrade, 405 for other methods — all with the security headers", async () => {
    for (const path of [
      "/nope",
      "/assets/",
      "/assets/index.js",
      "/chat/",
      "/index.html",
      "/..%2fpackage.json",
    ]) {
      const a = await call(web.server.port, path);
      expect(a.status, path).toBe(404);
      expect(a.body.toString()).toBe("not found\n");
      expectSecurityHeaders(a);
    }
    const rpc = await call(web.server.port, "/rpc");
    expect(rpc.status).toBe(426);
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const a = await call(web.server.port, "/", method);
      expect(a.status, method).toBe(405);
      expect(a.headers.allow).toBe("GET, HEAD");
      expectSecurityHeaders(a);
    }
  });

  it("answers HEAD with the headers and no body, a query string as the path, and If-None-Match with 304", async () => {
    const get = await call(web.server.port, "/");
    const head = await call(web.server.port, "/", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers["content-length"]).toBe(String(get.body.length));
    expect(head.headers.etag).toBe(get.headers.etag);
    const query = await call(web.server.port, "/chat?room=general");
    expect(query.status).toBe(200);
    expect(query.body.toString()).toContain("<title>Chat · Parallax</title>");
    const again = await call(web.server.port, "/", "GET", { "if-none-match": String(get.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it("sends gzip only to a client that accepts it, and the same bytes either way", async () => {
    const html = (await call(web.server.port, "/")).body.toString("utf8");
    const script = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1] as string;
    const plain = await call(web.server.port, script);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toBe("Accept-Encoding");
    const zipped = await call(web.server.port, script, "GET", { "accept-encoding": "br, gzip;q=0.8" });
    expect(zipped.headers["content-encoding"]).toBe("gzip");
    expect(zipped.body.length).toBeLessThan(plain.body.length);
    const { gunzipSync } = await import("node:zlib");
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    const refused = await call(web.server.port, script, "GET", { "accept-encoding": "gzip;q=0" });
    expect(refused.headers["content-encoding"]).toBeUndefined();
  });

  it("bundles once per process, minified, with nothing from Node in any script", async () => {
    expect(await webBundle()).toBe(bundle);
    const scripts = [...bundle.resources].filter(([url]) => url.endsWith(".js"));
    expect(scripts.length).toBeGreaterThanOrEqual(WEB_PAGES.length);
    for (const [url, r] of scripts) {
      const text = r.body.toString("utf8");
      expect(text, url).not.toMatch(/from ?["']node:|require\(["']|import\(["']node:/);
      expect(text, url).not.toMatch(/\bBuffer\.(from|alloc|concat)\(/);
      expect(text.split("\n").length, `${url} is minified`).toBeLessThan(20);
    }
    // The one page that logs in also signs up: SCRAM and the WebAssembly argon2 are in its scripts.
    const index = bundle.sizes.find((s) => s.path === "/");
    const text = index?.assets.map((a) => bundle.resources.get(a)?.body.toString("utf8")).join("");
    expect(text).toContain("parallax-scram-v1,n=");
  });

  it("reports each page's size minified and gzipped, the router's schema loaded on demand", () => {
    expect(bundle.sizes.map((s) => s.path)).toEqual(WEB_PAGES.map((p) => p.path));
    for (const s of bundle.sizes) {
      expect(s.minifiedBytes).toBeGreaterThan(s.gzippedBytes);
      expect(s.gzippedBytes).toBeGreaterThan(10_000);
      expect(s.onDemand.length).toBeGreaterThan(0);
      expect(s.assets.some((a) => s.onDemand.includes(a))).toBe(false);
    }
    const table = formatPageSizes(bundle.sizes);
    expect(table.split("\n")).toHaveLength(2 + WEB_PAGES.length);
    expect(table).toContain("| `/chat` |");
  });

  it("refuses a page list with a clash or a bad path or name, before bundling anything", async () => {
    const ok = { path: "/x", name: "x", title: "X" };
    for (const pages of [
      [ok, { ...ok, name: "y" }],
      [ok, { ...ok, path: "/y" }],
      [{ ...ok, path: "x" }],
      [{ ...ok, path: "/assets/x" }],
      [{ ...ok, path: "/rpc2" }],
      [{ ...ok, name: "../server" }],
    ]) {
      await expect(buildWebBundle(pages)).rejects.toMatchObject({ code: "PARALLAX_ERR_BAD_ARGUMENT" });
    }
  });

  it("leaves the plain server's one line at / when no pages are asked for", async () => {
    const plain = await startServer({ port: 0, tcpPort: null, bootstrap: () => demoBootstrap() });
    try {
      const a = await call(plain.port, "/");
      expect(a.body.toString()).toBe("Parallax broker: Cap'n Proto RPC over WebSocket at /rpc\n");
    } finally {
      await plain.close();
    }
    const bare = await startWebBroker({ web: false });
    try {
      const a = await call(bare.server.port, "/");
      expect(a.body.toString()).toBe("Parallax broker: Cap'n Proto RPC over WebSocket at /rpc\n");
      expect((await call(bare.server.port, "/chat")).status).toBe(404);
    } finally {
      await bare.close();
    }
  });
});
