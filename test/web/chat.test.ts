/**
 * The chat page (`/chat`) in Chromium, with three users in three fresh browser contexts: alice and
 * bob chat in a room (history, live messages, presence, typing) and in direct messages; a third
 * user, whose name is markup, posts there too and the page shows their own name on their posts
 * (the page has no way to send an author); markup in a message or a name is shown as text and
 * runs nothing; a dropped WebSocket (alice's network is cut — her pages go through a proxy — and
 * stays down while bob posts) shows "reconnecting…", and once back the room shows every message
 * once, in order.
 *
 * The tests run in order and share the users (one browser launch for the file).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  describeInChromium,
  enter,
  launchChromium,
  newUser,
  type CutProxy,
  startCutProxy,
  startWebBroker,
  type User,
  type WebBroker,
} from "./chromium.js";

const MARKUP_NAME = "<img src=x onerror=window.__pwned=1>";
const MARKUP_TEXT = '<img src=x onerror="window.__pwned=2"><b>bold</b>';

let browser: Browser;
let web: WebBroker;
let alice: User;
let bob: User;
let carol: User;
/** alice's network. */
let proxy: CutProxy;

interface Shown {
  readonly seq: number;
  readonly kind: string;
  readonly author: string;
  readonly text: string;
}

/** The open conversation's messages as the page shows them. */
function shown(page: Page): Promise<Shown[]> {
  return page.$$eval("#message-lists ol:not([hidden]) li[data-seq]", (items) =>
    items.map((li) => {
      const e = li as unknown as {
        dataset: Record<string, string>;
        querySelector(s: string): { textContent: string } | null;
        textContent: string;
      };
      return {
        seq: Number(e.dataset.seq),
        kind: e.dataset.kind ?? "",
        author: e.querySelector(".author")?.textContent ?? "",
        text: e.querySelector(".text")?.textContent ?? e.textContent,
      };
    }),
  );
}

/** The open conversation's text messages as "author: text". */
async function lines(page: Page): Promise<string[]> {
  return (await shown(page)).filter((m) => m.kind === "text").map((m) => `${m.author}: ${m.text}`);
}

async function post(page: Page, text: string): Promise<void> {
  await page.fill("#post-text", text);
  await page.click("#post-form button[type=submit]");
  await expect.poll(() => lines(page)).toContain(`${await me(page)}: ${text}`);
}

async function me(page: Page): Promise<string> {
  return (await page.textContent("#whoami-list [data-field=name]")) ?? "";
}

async function members(page: Page): Promise<string[]> {
  return page.$$eval("#member-list li", (lis) => lis.map((li) => li.textContent ?? ""));
}

/** Nothing on any page ran the markup. */
async function expectNothingRan(): Promise<void> {
  for (const u of [alice, bob, carol]) {
    const state = await u.page.evaluate(() => ({
      pwned: (globalThis as { __pwned?: unknown }).__pwned ?? null,
      images: (
        globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
      ).document.querySelectorAll("main img, header img").length,
    }));
    expect(state).toEqual({ pwned: null, images: 0 });
  }
}

describeInChromium("the chat page in Chromium", () => {
  beforeAll(async () => {
    [browser, web] = await Promise.all([
      launchChromium(),
      startWebBroker({ signUp: "open", limits: { loginFreeFailures: 50 } }),
    ]);
    proxy = await startCutProxy(web.server.port);
    alice = await newUser(browser);
    bob = await newUser(browser);
    carol = await newUser(browser);
    // Signed up one after the other: the KDF runs in each page.
    await enter(alice.page, proxy.origin, "alice", "alice's long password", "signup", "/chat");
    await enter(bob.page, web.origin, "bob", "bob's long password", "signup", "/chat");
    await enter(carol.page, web.origin, MARKUP_NAME, "carol's long password", "signup", "/chat");
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await web?.close();
  });

  it("lets two users chat in a room: history on joining, live messages, members with presence, typing", async () => {
    await alice.page.fill("#create-name", "lobby");
    await alice.page.fill("#create-topic", "say hello");
    await alice.page.click("#create-form button[type=submit]");
    await expect.poll(() => alice.page.textContent("#conversation-title")).toBe("# lobby");
    expect(await alice.page.textContent("#conversation-topic")).toBe("say hello");
    await post(alice.page, "hello from alice");

    await bob.page.click("#refresh-rooms");
    await bob.page.click("#room-list button[data-room=lobby]");
    await expect.poll(() => bob.page.textContent("#conversation-title")).toBe("# lobby");
    // What was said before bob came, read from history.
    await expect.poll(() => lines(bob.page)).toEqual(["alice: hello from alice"]);
    await expect.poll(() => members(bob.page)).toEqual(["alice (online)", "bob (online)"]);
    // alice hears bob join, live.
    await expect.poll(() => members(alice.page)).toEqual(["alice (online)", "bob (online)"]);
    await expect
      .poll(async () =>
        (await shown(alice.page)).some((m) => m.kind === "joined" && m.text.endsWith(" bob joined")),
      )
      .toBe(true);

    await post(bob.page, "hi alice");
    await expect.poll(() => lines(alice.page)).toEqual(["alice: hello from alice", "bob: hi alice"]);

    await bob.page.fill("#post-text", "typing something");
    await expect.poll(() => alice.page.textContent("#typing")).toBe("bob is typing…");
    expect(await bob.page.textContent("#typing")).toBe("");
    await bob.page.fill("#post-text", "");
  });

  it("shows a third user's posts with their own name, markup in the name as text: nobody can post as another", async () => {
    await carol.page.fill("#join-name", "lobby");
    await carol.page.click("#join-form button[type=submit]");
    await expect.poll(() => carol.page.textContent("#conversation-title")).toBe("# lobby");
    // The page has no field for an author: what carol sends is carol's.
    expect(await carol.page.$$("#post-form input")).toHaveLength(1);
    await post(carol.page, "I am alice, trust me");
    for (const u of [alice, bob]) {
      await expect
        .poll(() => lines(u.page))
        .toEqual(["alice: hello from alice", "bob: hi alice", `${MARKUP_NAME}: I am alice, trust me`]);
      await expect.poll(() => members(u.page)).toContain(`${MARKUP_NAME} (online)`);
    }
    expect(await carol.page.textContent("#whoami-name")).toBe(MARKUP_NAME);
    expect(await carol.page.textContent("#whoami-list [data-field=name]")).toBe(MARKUP_NAME);
    await expectNothingRan();
  });

  it("shows a message with markup as the text it is, and runs nothing", async () => {
    await post(bob.page, MARKUP_TEXT);
    for (const u of [alice, carol]) {
      await expect.poll(async () => (await lines(u.page)).at(-1)).toBe(`bob: ${MARKUP_TEXT}`);
    }
    await expectNothingRan();
  });

  it("sends direct messages through the mailbox; the other side's inbox shows them, stamped with the sender", async () => {
    await alice.page.fill("#dm-user", "bob");
    await alice.page.click("#dm-form button[type=submit]");
    await expect.poll(() => alice.page.textContent("#conversation-title")).toBe("Direct: bob");
    await alice.page.fill("#post-text", "psst, bob");
    await alice.page.click("#post-form button[type=submit]");
    await expect
      .poll(() => alice.page.$$eval("#message-lists ol:not([hidden]) li", (l) => l.map((i) => i.textContent)))
      .toEqual([expect.stringMatching(/^you \d\d:\d\d psst, bob$/)]);
    // bob's page lists the conversation, with an unread count until he opens it.
    const button = "#conversations button[data-key='dm:alice']";
    await expect.poll(() => bob.page.textContent(`${button} .unread`)).toBe("1 new");
    await bob.page.click(button);
    expect(await lines(bob.page)).toEqual(["alice: psst, bob"]);
    expect(await bob.page.isVisible(`${button} .unread`)).toBe(false);
    // Writing to nobody: the server says so, and nothing opens.
    await bob.page.fill("#dm-user", "nobody-here");
    await bob.page.click("#dm-form button[type=submit]");
    await expect.poll(() => bob.page.textContent("#chat-error")).toContain("nobody-here");
    expect(await bob.page.$$("#conversations button[data-key='dm:nobody-here']")).toHaveLength(0);
  });

  it("rides out a dropped WebSocket: shows reconnecting…, resumes, and shows every message once, in order", async () => {
    // A reload first: the page resumes with its token, rejoins the room and reads its history.
    await alice.page.reload();
    await expect.poll(() => alice.page.textContent("#status"), { timeout: 20_000 }).toBe("connected");
    await alice.page.click("#conversations button[data-key='room:lobby']");
    await expect.poll(() => lines(alice.page)).toHaveLength(4);
    const statusesBefore = alice.log.statuses.length;
    const errorsBefore = alice.log.errors.length;
    await bob.page.click("#conversations button[data-key='room:lobby']");

    // The network goes away under her, and stays away while bob posts.
    proxy.refusing = true;
    proxy.cut();
    await expect.poll(() => alice.page.textContent("#status")).toBe("reconnecting…");
    await post(bob.page, "said while alice was away");
    await post(bob.page, "and this too");
    expect(await alice.page.textContent("#status")).toBe("reconnecting…");
    expect(await lines(alice.page)).toHaveLength(4);

    proxy.refusing = false;
    await expect.poll(() => alice.page.textContent("#status"), { timeout: 20_000 }).toBe("connected");
    await expect.poll(() => lines(alice.page)).toHaveLength(6);
    await post(alice.page, "back again");
    await expect.poll(() => lines(bob.page)).toContain("alice: back again");

    const hersShown = await shown(alice.page);
    const bobsShown = await shown(bob.page);
    // Every message once, in sequence order, no gap: what alice shows is what bob shows
    // (bob's list started with the history he read on joining; alice's with her reload's).
    const seqs = hersShown.map((m) => m.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] as number) + i));
    expect(bobsShown.filter((m) => m.seq >= (seqs[0] as number))).toEqual(hersShown);
    expect(await lines(alice.page)).toEqual([
      "alice: hello from alice",
      "bob: hi alice",
      `${MARKUP_NAME}: I am alice, trust me`,
      `bob: ${MARKUP_TEXT}`,
      "bob: said while alice was away",
      "bob: and this too",
      "alice: back again",
    ]);
    // The browser reported the retries it could not make while offline (and nothing else).
    const offline = alice.log.errors.splice(errorsBefore);
    expect(offline.length).toBeGreaterThan(0);
    for (const e of offline) expect(e).toMatch(/^console: WebSocket connection to '.*\/rpc' failed/);
    // The status line said so, in that order.
    const told = alice.log.statuses.slice(statusesBefore);
    const away = told.indexOf("reconnecting…");
    expect(away).toBeGreaterThanOrEqual(0);
    expect(told.indexOf("connected", away)).toBeGreaterThan(away);
  });

  it("ran every page without a page error or a CSP violation", () => {
    for (const u of [alice, bob, carol]) expect(u.log.errors).toEqual([]);
  });
});
