/**
 * The Go page (`/go`) in Chromium, as real users: alice and bob sign up in their own browser
 * contexts and play a 9×9 game by clicking the board — a capture, refused clicks (an occupied
 * point, a suicide, out of turn), an undo offered and allowed, chat, two passes, a dead group
 * marked, the score accepted by both — while carol, in a third context, watches by the game's
 * number and sees every move, the marking and the result. Bob's network is cut mid-game (his
 * pages go through the harness's CutProxy, which also refuses his retries for a while): his page
 * says "reconnecting", resumes when the network is back, and shows every stone once; play goes
 * on from both sides. The SGF downloads from a Blob link; "Play GNU Go" starts a game when
 * the broker has GNU Go and shows the broker's refusal when it has not.
 *
 * Also, without a browser: the page's helpers (point names, the clock projection, the challenge
 * form) against their rules.
 */
import { readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findGnuGo } from "../../src/services/go/gtp-engine.js";
import { TimeSystem } from "../../src/wire/gen/go.js";
import {
  type ClockReading,
  clockText,
  formatDuration,
  projectClock,
  type TimeTerms,
} from "../../src/web/go/clock-view.js";
import { parsePointName, pointLabel, pointName, starPoints } from "../../src/web/go/coords.js";
import { readTermsForm, type TermsForm } from "../../src/web/go/terms.js";
import {
  describeInChromium,
  enter,
  launchChromium,
  newUser,
  startCutProxy,
  startWebBroker,
  type CutProxy,
  type User,
  type WebBroker,
} from "./chromium.js";

const PASSWORD = "correct horse battery";
const WAIT = { timeout: 15_000, interval: 50 };

/** The accessible name of point `name` ("B1") on the page's board. */
function label(page: Page, name: string): Promise<string | null> {
  return page
    .locator(`#go-board button[aria-label^="${name},"]`)
    .getAttribute("aria-label", { timeout: 5_000 });
}

async function click(page: Page, name: string, options: { force?: boolean } = {}): Promise<void> {
  await page.getByRole("button", { name: new RegExp(`^${name},`) }).click(options);
}

const text = async (page: Page, selector: string): Promise<string> =>
  ((await page.textContent(selector)) ?? "").trim();

/** How many stones the page's board shows. */
const stones = (page: Page) => page.locator("#go-board button[data-stone]").count();

/** The move list's numbers, in order. */
const moveNumbers = (page: Page) =>
  page.$$eval("#go-moves li", (items) =>
    items.map((li) => Number((li as unknown as { dataset: { number: string } }).dataset.number)),
  );

describeInChromium("the Go page in Chromium", () => {
  let browser: Browser;
  let web: WebBroker;
  let alice: User;
  let bob: User;
  let carol: User;
  let gameId = 0;
  /** Bob's pages reach the broker through it: the test cuts his network there. */
  let bobsNetwork: CutProxy;

  beforeAll(async () => {
    [browser, web] = await Promise.all([launchChromium(), startWebBroker({ signUp: "open" })]);
    bobsNetwork = await startCutProxy(web.server.port);
    [alice, bob, carol] = [await newUser(browser), await newUser(browser), await newUser(browser)];
  });

  afterAll(async () => {
    await browser?.close();
    await bobsNetwork?.close();
    await web?.close();
  });

  it("three users sign up on /go and see the lobby", async () => {
    await enter(alice.page, web.origin, "alice", PASSWORD, "signup", "/go");
    await enter(bob.page, bobsNetwork.origin, "bob", PASSWORD, "signup", "/go");
    await enter(carol.page, web.origin, "carol", PASSWORD, "signup", "/go");
    for (const u of [alice, bob, carol]) {
      expect(await u.page.isVisible("#go-lobby")).toBe(true);
      expect(await u.page.isVisible("#go-game")).toBe(false);
      await expect.poll(() => u.page.isVisible("#go-games-empty"), WAIT).toBe(true);
    }
  });

  it("alice challenges from the form, bob accepts from the open list, and both pages open the same game", async () => {
    const a = alice.page;
    await a.selectOption("#go-size", "9");
    await a.selectOption("#go-time", "byoyomi");
    await a.fill("#go-main", "10");
    await a.selectOption("#go-color", "black");
    await a.click("#go-challenge-submit");
    await expect.poll(() => a.locator("#go-my-challenges li").count(), WAIT).toBe(1);
    expect(await text(a, "#go-my-challenges li")).toContain("open to anyone");

    const b = bob.page;
    await b.click("#go-refresh");
    const row = b.locator("#go-open-challenges li", { hasText: "alice" });
    await expect.poll(() => row.count(), WAIT).toBe(1);
    expect(await row.textContent()).toContain("9×9");
    expect(await row.textContent()).toContain("challenger black");
    await row.getByRole("button", { name: "Accept" }).click();

    for (const p of [a, b]) {
      await expect
        .poll(() => text(p, "#go-game-title"), WAIT)
        .toMatch(/^Game \d+: alice \(black\) vs bob \(white\)$/);
      expect(await p.isVisible("#go-lobby")).toBe(false);
    }
    gameId = Number(/^Game (\d+)/.exec(await text(a, "#go-game-title"))?.[1]);
    expect(gameId).toBeGreaterThan(0);
    await expect.poll(() => a.locator("#go-my-challenges li").count(), WAIT).toBe(0);
    expect(await label(a, "E5")).toBe("E5, empty");
    expect(await a.locator("#go-board button").count()).toBe(81);
    await expect
      .poll(() => text(a, "#go-game-state"), WAIT)
      .toBe("Move 1: black (alice) to play — your turn");
    expect(await text(b, "#go-game-state")).toBe("Move 1: black (alice) to play");
  });

  it("carol watches by the game's number: the same board, read-only, no controls", async () => {
    const c = carol.page;
    await c.fill("#go-watch-id", String(gameId));
    await c.click("#go-watch-form button[type=submit]");
    await expect
      .poll(() => text(c, "#go-game-title"), WAIT)
      .toBe(`Game ${gameId}: alice (black) vs bob (white)`);
    expect(await text(c, "#go-game-terms")).toContain("you are watching");
    expect(await c.isVisible("#go-controls")).toBe(false);
    expect(await c.locator("#go-board button[aria-disabled=true]").count()).toBe(81);
    // A spectator's click plays nothing.
    await click(c, "E5", { force: true });
    expect(await label(c, "E5")).toBe("E5, empty");
  });

  it("moves by clicking reach the opponent and the spectator; a capture empties the point everywhere", async () => {
    const pages = [alice.page, bob.page, carol.page];
    const play = async (who: Page, point: string, color: "black" | "white") => {
      await click(who, point);
      for (const p of pages)
        await expect.poll(() => label(p, point), WAIT).toBe(`${point}, ${color}, last move`);
    };
    await play(alice.page, "B1", "black");
    await play(bob.page, "A1", "white");
    await play(alice.page, "A2", "black");
    for (const p of pages) {
      await expect.poll(() => label(p, "A1"), WAIT).toBe("A1, empty");
      await expect.poll(() => text(p, "#go-black-captures"), WAIT).toBe("captures: 1");
      expect(await stones(p)).toBe(2);
      expect(await moveNumbers(p)).toEqual([1, 2, 3]);
    }
    expect(await text(carol.page, "#go-moves")).toContain("3. black A2");
  });

  it("refuses illegal clicks with the reason and changes nothing: occupied, suicide, out of turn", async () => {
    const b = bob.page;
    await click(b, "A2");
    await expect.poll(() => text(b, "#go-notice"), WAIT).toBe("Refused (A2): that point is occupied.");
    await click(b, "A1");
    await expect
      .poll(() => text(b, "#go-notice"), WAIT)
      .toBe("Refused (A1): that stone would have no liberties (suicide).");
    await click(alice.page, "G7");
    await expect.poll(() => text(alice.page, "#go-notice"), WAIT).toBe("Refused (G7): it is not your turn.");
    for (const p of [alice.page, b, carol.page]) {
      expect(await label(p, "A1")).toBe("A1, empty");
      expect(await label(p, "G7")).toBe("G7, empty");
      expect(await stones(p)).toBe(2);
    }
  });

  it("runs the clock of the player to move from the server's reading", async () => {
    const a = alice.page;
    await expect.poll(() => a.getAttribute("#go-white-clock", "data-running"), WAIT).toBe("true");
    expect(await a.getAttribute("#go-black-clock", "data-running")).toBe("false");
    const black = await text(a, "#go-black-clock");
    expect(black).toMatch(/^\d+:\d\d \+ 5 × 0:30$/);
    const first = await text(a, "#go-white-clock");
    // The running clock counts down on its own (no event in between)…
    await expect.poll(() => text(a, "#go-white-clock"), WAIT).not.toBe(first);
    // …and the stopped one does not.
    expect(await text(a, "#go-black-clock")).toBe(black);
  });

  it("after bob's network drops, his page says reconnecting, resumes, shows each stone once, and play goes on", async () => {
    const b = bob.page;
    const seen = bob.log.statuses.length;
    const errorsBefore = bob.log.errors.length;
    bobsNetwork.refusing = true;
    bobsNetwork.cut();
    await expect.poll(() => text(b, "#status"), WAIT).toMatch(/^reconnecting/);
    // The server saw him go: his opponent is told, and his clock keeps running.
    await expect
      .poll(() => text(alice.page, "#go-events"), WAIT)
      .toBe("bob's connection dropped; their clock keeps running.");
    expect(await stones(b)).toBe(2);
    // Said while bob is away: his page reads it from the game's chat when it is back.
    await alice.page.fill("#go-chat-text", "are you there?");
    await alice.page.press("#go-chat-text", "Enter");
    await expect.poll(() => text(carol.page, "#go-chat li:last-child .text"), WAIT).toBe("are you there?");
    bobsNetwork.refusing = false;
    await expect.poll(() => text(b, "#status"), WAIT).toBe("connected");
    expect(bob.log.statuses.slice(seen)[0]).toMatch(/^reconnecting/);
    await expect.poll(() => text(alice.page, "#go-events"), WAIT).toBe("bob is back.");
    // What the browser logs of the refused retries, and nothing else.
    for (const e of bob.log.errors.splice(errorsBefore)) {
      expect(e).toMatch(/^console: WebSocket connection to '.*\/rpc' failed/);
    }
    expect(await stones(b)).toBe(2);
    expect(await moveNumbers(b)).toEqual([1, 2, 3]);
    await expect.poll(() => text(b, "#go-chat"), WAIT).toContain("are you there?");
    expect(await b.locator("#go-chat li").count()).toBe(1);
    // Bob plays through the game he asked for again; alice and carol hear it.
    await click(b, "E5");
    for (const p of [alice.page, b, carol.page]) {
      await expect.poll(() => label(p, "E5"), WAIT).toBe("E5, white, last move");
      expect(await stones(p)).toBe(3);
      expect(await moveNumbers(p)).toEqual([1, 2, 3, 4]);
    }
    // …and bob hears alice's next move live.
    await click(alice.page, "C7");
    await expect.poll(() => label(b, "C7"), WAIT).toBe("C7, black, last move");
    expect(await stones(b)).toBe(4);
  });

  it("offers an undo to the opponent, who allows it: the stone leaves every board", async () => {
    const a = alice.page;
    const b = bob.page;
    await a.click("#go-undo");
    await expect.poll(() => b.isVisible("#go-undo-offer"), WAIT).toBe(true);
    expect(await text(b, "#go-undo-text")).toBe("alice asks to take back their last move.");
    expect(await a.isVisible("#go-undo-offer")).toBe(false);
    await b.click("#go-undo-accept");
    for (const p of [a, b, carol.page]) {
      await expect.poll(() => label(p, "C7"), WAIT).toBe("C7, empty");
      await expect.poll(() => moveNumbers(p), WAIT).toEqual([1, 2, 3, 4]);
      expect(await stones(p)).toBe(3);
    }
    await expect
      .poll(() => text(a, "#go-game-state"), WAIT)
      .toBe("Move 5: black (alice) to play — your turn");
  });

  it("shows chat as text: players' lines to all, a spectator's line to spectators only", async () => {
    const markup = "<b>hello</b> <img src=x onerror=alert(1)>";
    await alice.page.fill("#go-chat-text", markup);
    await alice.page.press("#go-chat-text", "Enter");
    for (const p of [alice.page, bob.page, carol.page]) {
      await expect.poll(() => text(p, "#go-chat li:last-child .text"), WAIT).toBe(markup);
      expect(await p.locator("#go-chat b, #go-chat img").count()).toBe(0);
      expect(await text(p, "#go-chat li:last-child .author")).toBe("alice");
    }
    // A line the server refuses (a bidirectional override) is not shown, and comes back to the input.
    await bob.page.fill("#go-chat-text", "gg \u202e");
    await bob.page.press("#go-chat-text", "Enter");
    await expect.poll(() => text(bob.page, "#go-notice"), WAIT).toContain("bidirectional overrides");
    expect(await bob.page.inputValue("#go-chat-text")).toBe("gg \u202e");
    await bob.page.fill("#go-chat-text", "");
    await carol.page.fill("#go-chat-text", "white should live in the centre");
    await carol.page.press("#go-chat-text", "Enter");
    await expect
      .poll(() => text(carol.page, "#go-chat li:last-child .text"), WAIT)
      .toBe("white should live in the centre");
    // A round trip later the players still have one line only.
    await bob.page.fill("#go-chat-text", "thanks");
    await bob.page.press("#go-chat-text", "Enter");
    await expect.poll(() => text(alice.page, "#go-chat li:last-child .text"), WAIT).toBe("thanks");
    for (const p of [alice.page, bob.page]) {
      expect(await p.locator("#go-chat li").count()).toBe(3);
    }
    expect(await carol.page.locator("#go-chat li").count()).toBe(4);
  });

  it("opens the same game again and again (more often than the server's 4 listeners per game) and still hears it live", async () => {
    const a = alice.page;
    for (let i = 0; i < 6; i++) {
      await a.click("#go-back");
      await expect.poll(() => a.isVisible("#go-lobby"), WAIT).toBe(true);
      const open = a.locator(`#go-games li[data-game="${gameId}"] button`);
      await expect.poll(() => open.count(), WAIT).toBe(1);
      await open.click();
      await expect
        .poll(() => text(a, "#go-game-state"), WAIT)
        .toBe("Move 5: black (alice) to play — your turn");
      expect(await stones(a)).toBe(3);
    }
    await expect.poll(() => a.locator("#go-chat li").count(), WAIT).toBe(3);
    await bob.page.fill("#go-chat-text", "still there?");
    await bob.page.press("#go-chat-text", "Enter");
    await expect.poll(() => text(a, "#go-chat li:last-child .text"), WAIT).toBe("still there?");
    expect(await a.locator("#go-chat li").count()).toBe(4);
    expect(await text(a, "#go-notice")).toBe("");
  });

  it("two passes start scoring; a dead group is marked by clicking; both accept and every page shows the score", async () => {
    const a = alice.page;
    const b = bob.page;
    await a.click("#go-pass");
    await expect.poll(() => text(b, "#go-game-state"), WAIT).toBe("Move 6: white (bob) to play — your turn");
    // Move 5 again, after the undo took the first one back: the list shows the new one.
    await expect.poll(() => text(carol.page, "#go-moves li:last-child"), WAIT).toBe("5. black pass");
    expect(await moveNumbers(carol.page)).toEqual([1, 2, 3, 4, 5]);
    await b.click("#go-pass");
    for (const p of [a, b, carol.page]) {
      await expect.poll(() => text(p, "#go-game-state"), WAIT).toMatch(/^Both passed/);
    }
    expect(await a.isVisible("#go-accept-score")).toBe(true);
    expect(await a.isVisible("#go-pass")).toBe(false);
    // Clicking an empty point in scoring marks nothing.
    await click(a, "J9");
    await expect.poll(() => text(a, "#go-notice"), WAIT).toContain("J9 is empty");
    await click(a, "E5");
    await expect.poll(() => label(a, "E5"), WAIT).toBe("E5, white, dead");
    expect(await text(a, "#go-events")).not.toContain("ended");
    for (const p of [a, b, carol.page]) {
      await expect.poll(() => label(p, "E5"), WAIT).toBe("E5, white, dead");
      await expect
        .poll(() => text(p, "#go-score-text"), WAIT)
        .toBe(
          "Score of this marking: black 81, white 6.5 (komi included) — black (alice) wins by 74.5 points (B+74.5)",
        );
    }
    expect(await label(a, "J9")).toBe("J9, empty, black territory");
    await a.click("#go-accept-score");
    await expect.poll(() => text(b, "#go-events"), WAIT).toBe("alice accepted the score.");
    await b.click("#go-accept-score");
    await expect
      .poll(() => text(b, "#go-events"), WAIT)
      .toBe("The game ended: black (alice) wins by 74.5 points (B+74.5).");
    for (const p of [a, b, carol.page]) {
      await expect
        .poll(() => text(p, "#go-game-state"), WAIT)
        .toBe("Finished: black (alice) wins by 74.5 points (B+74.5)");
    }
    for (const p of [a, b]) {
      await expect
        .poll(() => text(p, "#go-score-text"), WAIT)
        .toBe(
          "Final score: black 81, white 6.5 (komi included) — black (alice) wins by 74.5 points (B+74.5)",
        );
      expect(await p.isVisible("#go-pass")).toBe(false);
    }
  });

  it("downloads the game as SGF from a Blob link", async () => {
    const a = alice.page;
    const [download] = await Promise.all([a.waitForEvent("download"), a.click("#go-sgf-button")]);
    expect(download.suggestedFilename()).toBe(`game-${gameId}.sgf`);
    expect(download.url()).toMatch(/^blob:/);
    const sgf = readFileSync((await download.path()) as string, "utf8");
    expect(sgf).toContain("SZ[9]");
    expect(sgf).toContain("PB[alice]");
    expect(sgf).toContain("PW[bob]");
    expect(sgf).toContain("RE[B+74.5]");
    // The moves as played, without the one taken back (C7), and the two passes.
    expect(sgf).toContain(";B[bi];W[ai];B[ah];W[ee];B[];W[])");
  });

  it("lists the finished game in the lobby and offers GNU Go: a game when the broker has it, its refusal when not", async () => {
    const a = alice.page;
    await a.click("#go-back");
    await expect.poll(() => a.isVisible("#go-lobby"), WAIT).toBe(true);
    const row = a.locator(`#go-games li[data-game="${gameId}"]`);
    await expect.poll(() => row.count(), WAIT).toBe(1);
    expect(await row.textContent()).toContain("wins by 74.5 points");
    await a.selectOption("#go-size", "9");
    await a.click("#go-engine-submit");
    if (findGnuGo() === undefined) {
      await expect.poll(() => text(a, "#go-lobby-error"), WAIT).toContain('no engine "gnugo" here');
    } else {
      await expect.poll(() => text(a, "#go-game-title"), WAIT).toContain("gnugo (bot)");
    }
  });

  it("addresses a challenge to one user, cancels one, and resigns by confirming", async () => {
    const a = alice.page;
    const b = bob.page;
    if (await a.isVisible("#go-back")) await a.click("#go-back");
    await expect.poll(() => a.isVisible("#go-lobby"), WAIT).toBe(true);
    // A challenge cancelled before anyone took it leaves both lists.
    await a.selectOption("#go-size", "13");
    await a.click("#go-challenge-submit");
    await expect.poll(() => a.locator("#go-my-challenges li").count(), WAIT).toBe(1);
    await a.click("#go-my-challenges li button");
    await expect.poll(() => text(a, "#go-my-note"), WAIT).toMatch(/^Challenge \d+ cancelled\.$/);
    expect(await a.locator("#go-my-challenges li").count()).toBe(0);
    await b.click("#go-back");
    await b.click("#go-refresh");
    await expect.poll(() => b.locator("#go-open-challenges li").count(), WAIT).toBe(0);
    // Addressed to bob: carol does not see it, bob does.
    await a.selectOption("#go-size", "9");
    await a.selectOption("#go-time", "none");
    await a.fill("#go-opponent", "bob");
    await a.click("#go-challenge-submit");
    await expect.poll(() => text(a, "#go-my-challenges li"), WAIT).toContain("for bob");
    await b.click("#go-refresh");
    const row = b.locator("#go-open-challenges li", { hasText: "alice" });
    await expect.poll(() => row.count(), WAIT).toBe(1);
    expect(await row.textContent()).toContain("→ bob");
    await carol.page.click("#go-back");
    await carol.page.click("#go-refresh");
    await expect.poll(() => carol.page.isVisible("#go-open-empty"), WAIT).toBe(true);
    await row.getByRole("button", { name: "Accept" }).click();
    await expect.poll(() => text(a, "#go-game-title"), WAIT).toMatch(/^Game \d+: /);
    await expect.poll(() => text(b, "#go-game-title"), WAIT).toBe(await text(a, "#go-game-title"));
    expect(await text(a, "#go-black-clock")).toBe("no time limit");
    // Resigning asks first; "No" changes nothing.
    await a.click("#go-resign");
    expect(await a.isVisible("#go-resign-confirm")).toBe(true);
    await a.click("#go-resign-no");
    expect(await a.isVisible("#go-resign-confirm")).toBe(false);
    expect(await text(b, "#go-game-state")).not.toMatch(/^Finished/);
    await a.click("#go-resign");
    await a.click("#go-resign-yes");
    const black = /alice \(black\)/.test(await text(a, "#go-game-title"));
    const result = black ? "white (bob) wins by resignation (W+R)" : "black (bob) wins by resignation (B+R)";
    for (const p of [a, b])
      await expect.poll(() => text(p, "#go-game-state"), WAIT).toBe(`Finished: ${result}`);
    expect(await a.isVisible("#go-score")).toBe(false);
  });

  it("answers a spectator asking for a game that does not exist with the server's refusal", async () => {
    const c = carol.page;
    await c.fill("#go-watch-id", "999999");
    await c.click("#go-watch-form button[type=submit]");
    await expect.poll(() => text(c, "#go-lobby-error"), WAIT).toBe("Game 999999: no game 999999");
    expect(await c.isVisible("#go-lobby")).toBe(true);
    await c.fill("#go-watch-id", "12; drop");
    await c.click("#go-watch-form button[type=submit]");
    await expect.poll(() => text(c, "#go-lobby-error"), WAIT).toBe("Watch: a game's number, e.g. 12");
  });

  it("had no page error and no CSP violation on any page", () => {
    for (const u of [alice, bob, carol]) expect(u.log.errors).toEqual([]);
  });
});

describe("the Go page's helpers", () => {
  it("names points as players read them (no I column, rows from the bottom) and back", () => {
    expect(pointName({ x: 3, y: 5 }, 9)).toBe("D4");
    expect(pointName({ x: 8, y: 0 }, 9)).toBe("J9");
    expect(pointName({ x: 0, y: 18 }, 19)).toBe("A1");
    for (const size of [2, 9, 19, 25]) {
      for (let x = 0; x < size; x++) {
        for (let y = 0; y < size; y++)
          expect(parsePointName(pointName({ x, y }, size), size)).toEqual({ x, y });
      }
    }
    expect(parsePointName("I5", 19)).toBeUndefined();
    expect(parsePointName("K1", 9)).toBeUndefined();
    expect(parsePointName("A10", 9)).toBeUndefined();
    expect(parsePointName("A0", 9)).toBeUndefined();
    expect(pointLabel({ x: 4, y: 4 }, 9, 2, { dead: true, territory: "black" })).toBe(
      "E5, white, dead, black territory",
    );
    expect(pointLabel({ x: 4, y: 4 }, 9, 0, { dead: true })).toBe("E5, empty");
    expect(
      starPoints(9)
        .map((p) => pointName(p, 9))
        .sort(),
    ).toEqual(["C3", "C7", "E5", "G3", "G7"]);
    expect(starPoints(19)).toHaveLength(9);
  });

  const byoyomi: TimeTerms = {
    system: TimeSystem.BYOYOMI,
    mainSeconds: 60,
    periodSeconds: 30,
    periods: 3,
    stonesPerPeriod: 0,
    incrementSeconds: 0,
    maxSeconds: 0,
    perMoveSeconds: 0,
  };
  const running = (r: Partial<ClockReading>): ClockReading => ({
    mainMs: 0,
    periodMs: 0,
    periodsLeft: 0,
    stonesLeft: 0,
    inOvertime: false,
    running: true,
    ...r,
  });

  it("projects clocks by the time system's rules and never shows more than the reading or less than zero", () => {
    const r = running({ mainMs: 60_000, periodMs: 30_000, periodsLeft: 3 });
    expect(projectClock(byoyomi, r, 0).mainMs).toBe(60_000);
    expect(projectClock(byoyomi, r, 10_000)).toMatchObject({ mainMs: 50_000, overtime: false });
    // Main time gone: into the first period, then a period lost only when it runs out.
    expect(projectClock(byoyomi, r, 70_000)).toMatchObject({
      mainMs: 0,
      periodMs: 20_000,
      periodsLeft: 3,
      overtime: true,
    });
    expect(projectClock(byoyomi, r, 95_000)).toMatchObject({ periodMs: 25_000, periodsLeft: 2 });
    expect(projectClock(byoyomi, r, 150_000)).toMatchObject({ periodMs: 0, periodsLeft: 0, out: true });
    // A stopped clock, or a paused game, does not move.
    expect(projectClock(byoyomi, { ...r, running: false }, 10_000).mainMs).toBe(60_000);
    expect(projectClock(byoyomi, r, 10_000, true).mainMs).toBe(60_000);
    // A negative elapsed time (the page's clock stepped back) counts as none.
    expect(projectClock(byoyomi, r, -5_000).mainMs).toBe(60_000);
    const fischer = { ...byoyomi, system: TimeSystem.FISCHER, incrementSeconds: 5 };
    expect(projectClock(fischer, running({ mainMs: 3_000 }), 4_000)).toMatchObject({ mainMs: 0, out: true });
    const canadian = { ...byoyomi, system: TimeSystem.CANADIAN, stonesPerPeriod: 10, periodSeconds: 300 };
    expect(projectClock(canadian, running({ mainMs: 1_000 }), 2_000)).toMatchObject({
      periodMs: 299_000,
      stonesLeft: 10,
      overtime: true,
    });
    const simple = { ...byoyomi, system: TimeSystem.SIMPLE, perMoveSeconds: 20 };
    expect(clockText(simple, projectClock(simple, running({ periodMs: 20_000 }), 5_500))).toBe(
      "0:15 for this move",
    );
    expect(clockText(byoyomi, projectClock(byoyomi, r, 0))).toBe("1:00 + 3 × 0:30");
    expect(clockText(byoyomi, projectClock(byoyomi, r, 70_000))).toBe("0:20 (byo-yomi, 3 periods left)");
    expect(formatDuration(3_725_000)).toBe("1:02:05");
    expect(formatDuration(100)).toBe("0:01");
    expect(formatDuration(-1)).toBe("0:00");
  });

  const form: TermsForm = {
    size: "9",
    komi: "6.5",
    handicap: "0",
    time: "byoyomi",
    mainMinutes: "10",
    periodSeconds: "30",
    periods: "5",
    stones: "",
    incrementSeconds: "x",
    perMoveSeconds: "",
    color: "black",
    opponent: "  bob ",
    ranked: "on",
  };

  it("reads the challenge form into terms, using only the chosen time system's fields", () => {
    const read = readTermsForm(form);
    expect(read).toEqual({
      ok: true,
      terms: {
        rules: { size: 9, komi: 6.5, koRule: 1, scoring: 0, handicap: 0 },
        time: {
          system: TimeSystem.BYOYOMI,
          mainSeconds: 600,
          periods: 5,
          stonesPerPeriod: 0,
          periodSeconds: 30,
          incrementSeconds: 0,
          perMoveSeconds: 0,
        },
        ranked: true,
        color: 1,
        opponent: "bob",
      },
    });
  });

  it("refuses a form it cannot send, naming the field", () => {
    const bad = (change: Partial<TermsForm>) => {
      const r = readTermsForm({ ...form, ...change });
      return r.ok ? "accepted" : r.error;
    };
    expect(bad({ size: "10" })).toBe("Board size: 9, 13 or 19");
    expect(bad({ komi: "6.3" })).toMatch(/^Komi/);
    expect(bad({ komi: "" })).toMatch(/^Komi/);
    expect(bad({ komi: "1e9" })).toMatch(/^Komi/);
    expect(bad({ handicap: "1" })).toMatch(/^Handicap/);
    expect(bad({ time: "hourglass" })).toMatch(/^Time/);
    expect(bad({ periods: "0" })).toBe("Periods: between 1 and 100");
    expect(bad({ periods: "2.5" })).toBe("Periods: a whole number, please");
    expect(bad({ mainMinutes: "-1" })).toBe("Main time (minutes): a whole number, please");
    expect(bad({ time: "absolute", mainMinutes: "0" })).toBe("Main time (minutes): between 1 and 43200");
    expect(bad({ color: "red" })).toMatch(/^Colour/);
    expect(bad({ opponent: "x".repeat(65) })).toMatch(/^Opponent/);
    expect(bad({ time: "none", mainMinutes: "junk" })).toBe("accepted");
  });
});
