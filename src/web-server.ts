/**
 * The broker's web pages: a composition root that bundles the pages of src/web/ (the list is
 * src/web/pages.ts) with esbuild's API, in memory, and answers their HTTP requests on the port
 * that serves `/rpc`. `startBroker` (src/server.ts) builds the bundle when it starts and hands
 * `webHandler(bundle)` every request that is not the WebSocket upgrade.
 *
 * What is served: each page at its path (HTML: the layout src/web/layout.html around the page's
 * own src/web/pages/<name>.html), and under `/assets/` the minified ES modules (one entry per
 * page plus chunks the pages share, esbuild's code splitting) and the one stylesheet. Asset names
 * carry a content hash, so they are cached for a year (`immutable`); pages are `no-cache` with an
 * ETag. Gzip when the browser accepts it.
 *
 * Invariants:
 * - Bundling reads source files only: nothing is written, nothing fetched. The bundle is built
 *   once per process (`webBundle()`), whatever the number of brokers.
 * - Only GET and HEAD (405 otherwise); a path that is not a page or an asset is 404; `/rpc`
 *   without the upgrade is 426. Every answer carries the security headers below, 404s too.
 * - Content-Security-Policy: scripts from this origin only, no inline script or eval, with
 *   'wasm-unsafe-eval' for argon2id in WebAssembly (WasmKdf); styles from this origin only;
 *   connections to this origin only (the `/rpc` WebSocket); no frames, no plugins, no base URL;
 *   Trusted Types required with no policy allowed, so no page code can turn a string into markup
 *   (`innerHTML = …` throws). Plus nosniff, no referrer, no framing, same-origin opener and
 *   resource policies.
 *
 * `tsx src/web-server.ts` prints each page's size (minified and gzipped).
 *
 * Tests: test/web/web-server.test.ts (headers, methods, paths, sizes), and the pages in
 * Chromium: test/web/session.test.ts, test/web/chat.test.ts
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build, type Metafile } from "esbuild";
import { ErrorCode, ParallaxError } from "./errors.js";
import { WEB_PAGES, type WebPage } from "./web/pages.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const WEB = path.join(ROOT, "src", "web");

export const WEB_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

/** Sent with every answer. */
export const WEB_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy": WEB_CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
});

const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "no-cache";

export interface WebResource {
  readonly contentType: string;
  readonly body: Buffer;
  readonly gzipped: Buffer;
  readonly cacheControl: string;
  readonly etag: string;
}

/** What one page costs a first visit: its HTML aside, every script it loads and the stylesheet. */
export interface PageSize {
  readonly path: string;
  readonly name: string;
  /** The asset URLs the page loads at once (its scripts and the stylesheet). */
  readonly assets: readonly string[];
  readonly minifiedBytes: number;
  readonly gzippedBytes: number;
  /** Scripts it imports when first needed (e.g. the router's schema for the whoami role). */
  readonly onDemand: readonly string[];
  readonly onDemandMinifiedBytes: number;
  readonly onDemandGzippedBytes: number;
}

export interface WebBundle {
  /** By URL path: the pages and `/assets/…`. */
  readonly resources: ReadonlyMap<string, WebResource>;
  readonly sizes: readonly PageSize[];
}

let shared: Promise<WebBundle> | undefined;

/** The bundle of WEB_PAGES, built once per process (again after a failed build). */
export function webBundle(): Promise<WebBundle> {
  if (shared === undefined) {
    const building = buildWebBundle();
    shared = building;
    building.catch(() => {
      if (shared === building) shared = undefined;
    });
  }
  return shared;
}

function resource(contentType: string, body: Buffer, cacheControl: string): WebResource {
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { contentType, body, gzipped: gzipSync(body, { level: 9 }), cacheControl, etag };
}

function checkPages(pages: readonly WebPage[]): void {
  const paths = new Set<string>();
  const names = new Set<string>();
  for (const p of pages) {
    const bad =
      !p.path.startsWith("/") ||
      p.path.startsWith("/assets/") ||
      p.path.startsWith("/rpc") ||
      paths.has(p.path) ||
      !/^[a-z0-9-]+$/.test(p.name) ||
      names.has(p.name);
    if (bad) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `web page ${JSON.stringify(p)}: a path starts with "/" (not /assets/ or /rpc), a name is [a-z0-9-], both unique`,
      );
    }
    paths.add(p.path);
    names.add(p.name);
  }
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Bundles `pages` (and the stylesheet) with esbuild, in memory. */
export async function buildWebBundle(pages: readonly WebPage[] = WEB_PAGES): Promise<WebBundle> {
  checkPages(pages);
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
      absWorkingDir: ROOT,
      entryPoints: [
        ...pages.map((p) => ({ in: `src/web/pages/${p.name}.ts`, out: p.name })),
        { in: "src/web/style.css", out: "style" },
      ],
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: true,
      charset: "utf8",
      write: false,
      outdir: "assets",
      entryNames: "[name]-[hash]",
      chunkNames: "shared-[hash]",
      metafile: true,
      logLevel: "silent",
    });
  } catch (err) {
    throw new ParallaxError(
      ErrorCode.FAILED,
      `cannot bundle the web pages: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const metafile = result.metafile as Metafile;
  const resources = new Map<string, WebResource>();
  for (const file of result.outputFiles ?? []) {
    const rel = path.relative(ROOT, file.path).split(path.sep).join("/");
    const type = rel.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
    resources.set(`/${rel}`, resource(type, Buffer.from(file.contents), IMMUTABLE));
  }
  const outputs = Object.entries(metafile.outputs);
  const outputOf = (entry: string): string => {
    const found = outputs.find(([, o]) => o.entryPoint === entry);
    if (found === undefined) throw new ParallaxError(ErrorCode.FAILED, `esbuild made no output for ${entry}`);
    return found[0];
  };
  /** The output and every chunk it imports statically (`kind` "import-statement") or not, transitively. */
  const scriptsOf = (out: string, kind: string, seen = new Set<string>()): string[] => {
    if (seen.has(out)) return [];
    seen.add(out);
    const imports = metafile.outputs[out]?.imports ?? [];
    return [out, ...imports.filter((i) => i.kind === kind).flatMap((i) => scriptsOf(i.path, kind, seen))];
  };
  const total = (urls: readonly string[], pick: (r: WebResource) => Buffer): number =>
    urls.reduce((n, u) => n + pick(resources.get(u) as WebResource).length, 0);
  const stylesheet = `/${outputOf("src/web/style.css")}`;
  const iconBody = readFileSync(path.join(WEB, "icon.svg"));
  const icon = `/assets/icon-${createHash("sha256").update(iconBody).digest("hex").slice(0, 8)}.svg`;
  resources.set(icon, resource("image/svg+xml", iconBody, IMMUTABLE));
  const layout = readFileSync(path.join(WEB, "layout.html"), "utf8");
  const sizes: PageSize[] = [];
  for (const page of pages) {
    const entry = outputOf(`src/web/pages/${page.name}.ts`);
    const [script, ...chunks] = scriptsOf(entry, "import-statement").map((o) => `/${o}`);
    const loaded = new Set([script, ...chunks]);
    const onDemand = [
      ...new Set(
        [entry, ...chunks.map((c) => c.slice(1))].flatMap((o) =>
          (metafile.outputs[o]?.imports ?? [])
            .filter((i) => i.kind === "dynamic-import")
            .flatMap((i) => scriptsOf(i.path, "import-statement").map((d) => `/${d}`)),
        ),
      ),
    ].filter((u) => !loaded.has(u));
    const nav = pages
      .map(
        (p) =>
          `<li><a href="${escapeHtml(p.path)}"${p === page ? ' aria-current="page"' : ""}>${escapeHtml(p.title)}</a></li>`,
      )
      .join("");
    const preload = chunks.map((c) => `<link rel="modulepreload" href="${c}">`).join("\n");
    const fill: Record<string, string> = {
      title: escapeHtml(page.title),
      stylesheet,
      icon,
      script: `${script}`,
      nav,
      page: readFileSync(path.join(WEB, "pages", `${page.name}.html`), "utf8"),
    };
    const html = layout
      .replace(/\{\{(\w+)\}\}/g, (_, key: string) => fill[key] ?? "")
      .replace("</head>", `${preload}${preload === "" ? "" : "\n"}</head>`);
    resources.set(page.path, resource("text/html; charset=utf-8", Buffer.from(html), REVALIDATE));
    const assets = [script as string, ...chunks, stylesheet];
    sizes.push({
      path: page.path,
      name: page.name,
      assets,
      minifiedBytes: total(assets, (r) => r.body),
      gzippedBytes: total(assets, (r) => r.gzipped),
      onDemand,
      onDemandMinifiedBytes: total(onDemand, (r) => r.body),
      onDemandGzippedBytes: total(onDemand, (r) => r.gzipped),
    });
  }
  return { resources, sizes };
}

function acceptsGzip(req: IncomingMessage): boolean {
  const accept = req.headers["accept-encoding"];
  if (typeof accept !== "string") return false;
  return accept.split(",").some((part) => {
    const [coding, ...params] = part.trim().split(";");
    if (coding?.trim().toLowerCase() !== "gzip") return false;
    const q = params.find((p) => p.trim().startsWith("q="));
    return q === undefined || Number(q.trim().slice(2)) > 0;
  });
}

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(`${text}\n`);
  res.writeHead(status, {
    ...WEB_SECURITY_HEADERS,
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(body.length),
    "cache-control": "no-store",
    ...extra,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** Answers the HTTP requests of the pages (everything but the `/rpc` WebSocket upgrade). */
export function webHandler(bundle: WebBundle): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      plain(res, 405, "method not allowed: GET or HEAD", { allow: "GET, HEAD" });
      return;
    }
    let pathname: string;
    try {
      pathname = new URL(req.url ?? "/", "http://page.invalid").pathname;
    } catch {
      plain(res, 400, "bad request");
      return;
    }
    const found = bundle.resources.get(pathname);
    if (found === undefined) {
      if (pathname === "/rpc")
        plain(res, 426, "upgrade required: /rpc is a WebSocket", { upgrade: "websocket" });
      else plain(res, 404, "not found");
      return;
    }
    const headers: Record<string, string> = {
      ...WEB_SECURITY_HEADERS,
      "content-type": found.contentType,
      "cache-control": found.cacheControl,
      etag: found.etag,
      vary: "Accept-Encoding",
    };
    if (req.headers["if-none-match"] === found.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const gzip = acceptsGzip(req);
    const body = gzip ? found.gzipped : found.body;
    if (gzip) headers["content-encoding"] = "gzip";
    headers["content-length"] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === "HEAD" ? undefined : body);
  };
}

/** The sizes as a table (what the README and `npm run bench` show). */
export function formatPageSizes(sizes: readonly PageSize[]): string {
  const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  const rows = sizes.map(
    (s) =>
      `| \`${s.path}\` | ${kb(s.minifiedBytes)} | ${kb(s.gzippedBytes)} | ${kb(s.onDemandMinifiedBytes)} | ${kb(s.onDemandGzippedBytes)} |`,
  );
  return [
    "| page | at load, minified | at load, gzipped | on demand, minified | on demand, gzipped |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bundle = await buildWebBundle();
  process.stdout.write(`${formatPageSizes(bundle.sizes)}\n`);
}
