/**
 * The pages the broker serves (src/web-server.ts reads this list; nothing here runs in a page).
 *
 * A page named `n` is three things: a row here, its entry module `src/web/pages/n.ts` (which calls
 * `runPage` from src/web/app/page.ts) and its markup `src/web/pages/n.html` (the page's own part,
 * shown inside the shared layout, src/web/layout.html, once someone is logged in). To add a page:
 * write those two files, add the row (path, name, title), and test it in test/web/ with the
 * harness in test/web/chromium.ts. The stylesheet (src/web/style.css) is shared by every page.
 * Page markup is trusted source text, never data; pages write what users type as text only.
 *
 * Invariant: paths are distinct, start with "/" and do not start with "/assets/" or "/rpc";
 * names are distinct file names ([a-z0-9-]). Checked when the bundle is built.
 *
 * Tests: test/web/web-server.test.ts
 */

export interface WebPage {
  /** Where it is served, e.g. "/chat". */
  readonly path: string;
  /** The file name of its entry module and markup under src/web/pages/. */
  readonly name: string;
  /** The document title and the navigation label. */
  readonly title: string;
}

export const WEB_PAGES: readonly WebPage[] = Object.freeze([
  { path: "/", name: "index", title: "Account" },
  { path: "/chat", name: "chat", title: "Chat" },
  { path: "/bank", name: "bank", title: "Bank" },
  { path: "/wallet", name: "wallet", title: "Wallet" },
  { path: "/go", name: "go", title: "Go" },
]);
