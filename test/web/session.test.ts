/**
 * Signing up and logging in from the page (`/`) in Chromium, as a user would: the form, the
 * whoami panel (name, role, how the login was made, what it holds), reload and another page of
 * the tab resuming with the kept token, logging out, a wrong password. And what must never
 * happen: the password (or the SaltedPassword derived from it) in any WebSocket frame the page
 * sent or in the page's storage; a CSP violation or any page error.
 *
 * The broker runs the default KDF parameters (the floor, 19 MiB and 2 passes: each login and
 * sign-up derives argon2id once in the page's WebAssembly), and lets 50 logins fail before it
 * slows an address down (every page here comes from 127.0.0.1, and some failures are the point).
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Argon2Kdf } from "../../src/cred/argon2-kdf.js";
import { connect } from "../../src/client.js";
import { ErrorCode } from "../../src/errors.js";
import { Root } from "../../src/wire/gen/broker.js";
import { rejection } from "../helpers/errors.js";
import {
  describeInChromium,
  enter,
  launchChromium,
  newUser,
  startWebBroker,
  type User,
  type WebBroker,
} from "./chromium.js";

const PASSWORD = "tr0ub4dor & 3 horses";

let browser: Browser;
let web: WebBroker;
const users: User[] = [];

/** Everything the page keeps in storage, as one string. */
async function storageOf(user: User): Promise<string> {
  return user.page.evaluate(() => {
    const w = globalThis as unknown as { localStorage: object; sessionStorage: object };
    return JSON.stringify({ local: { ...w.localStorage }, session: { ...w.sessionStorage } });
  });
}

/** Whether `needle` occurs in any frame the page sent. */
function sentContains(user: User, needle: Buffer): boolean {
  return user.log.sent.some((frame) => frame.includes(needle));
}

async function field(user: User, name: string): Promise<string> {
  return ((await user.page.textContent(`#whoami-list [data-field=${name}]`)) ?? "").trim();
}

describeInChromium("the account page in Chromium", () => {
  beforeAll(async () => {
    [browser, web] = await Promise.all([
      launchChromium(),
      startWebBroker({ signUp: "open", limits: { loginFreeFailures: 50 } }),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  it("signs up from the form and shows whoami: the name, the router's role, a sign-up login, the keyring", async () => {
    const alice = await newUser(browser);
    users.push(alice);
    await enter(alice.page, web.origin, "alice", PASSWORD, "signup");
    expect(await field(alice, "name")).toBe("alice");
    expect(await field(alice, "login")).toBe("sign-up");
    await expect.poll(() => field(alice, "role")).not.toBe("");
    expect(await field(alice, "role")).not.toContain("none");
    const keyring = await alice.page.$$eval("#whoami-list [data-field=keyring] li", (lis) =>
      lis.map((li) => li.textContent),
    );
    expect(keyring).toContain("chat/member");
    expect(keyring).toContain("router/session");
    expect(await field(alice, "holds")).toBe("nothing");
    expect(await alice.page.isVisible("#login")).toBe(false);
    expect(await alice.page.isVisible("#logout")).toBe(true);
    expect(await alice.page.textContent("#whoami-name")).toBe("alice");
    // The server stored a verifier made with its announced default parameters.
    const record = await web.server.store.findIdentityByName("alice");
    expect(record?.verifier?.kdf).toEqual(web.server.broker.kdfDefault);
    expect(alice.log.errors).toEqual([]);
  });

  it("keeps only a resume token: reload resumes with it (rotated), and so does another page of the tab", async () => {
    const [alice] = users as [User];
    const before = JSON.parse(await storageOf(alice));
    expect(Object.keys(before.local)).toEqual([]);
    expect(Object.keys(before.session)).toEqual(["parallax.resumeToken"]);
    const first = before.session["parallax.resumeToken"] as string;
    expect(first).toMatch(/^pxr_/);
    await alice.page.reload();
    await expect.poll(() => field(alice, "login")).toBe("resume token (web page)");
    expect(await alice.page.textContent("#status")).toBe("connected");
    expect(await alice.page.isVisible("#login")).toBe(false);
    const second = JSON.parse(await storageOf(alice)).session["parallax.resumeToken"] as string;
    expect(second).toMatch(/^pxr_/);
    expect(second).not.toBe(first);
    await alice.page.click("a[href='/chat']");
    await expect.poll(() => alice.page.textContent("#whoami-list [data-field=name]")).toBe("alice");
    await expect.poll(() => field(alice, "holds")).toContain("chat/member");
    const third = JSON.parse(await storageOf(alice)).session["parallax.resumeToken"] as string;
    expect(third).not.toBe(second);
    // The spent tokens are refused. The one spent last is still known as spent: presenting it
    // again says someone holds a copy, and the server ends the whole session.
    const probe = await connect(web.server.url);
    try {
      for (const spent of [first, second]) {
        const replay = await rejection(probe.bootstrap(Root).resume({ token: spent }));
        expect(replay.code).toBe(ErrorCode.AUTH_FAILED);
      }
    } finally {
      probe.close();
    }
    const audit = await web.server.store.listAudit(20);
    expect(audit.some((a) => a.kind === "revoked" && a.detail.includes("reused after rotation"))).toBe(true);
    // That replay revoked the family (the server cannot tell a thief from a bug): the next page
    // cannot resume, forgets the token and asks for a login.
    await alice.page.reload();
    await expect
      .poll(() => alice.page.textContent("#login-notice"), { timeout: 20_000 })
      .toContain("Log in again");
    expect(await alice.page.isVisible("#login-form")).toBe(true);
    expect(JSON.parse(await storageOf(alice)).session).toEqual({});
  });

  it("logs out: the token is gone from storage and from the server, and the form says so", async () => {
    const alice = (users[0] as User).page;
    await enter(alice, web.origin, "alice", PASSWORD, "login");
    expect(await field(users[0] as User, "login")).toBe("password");
    const token = JSON.parse(await storageOf(users[0] as User)).session["parallax.resumeToken"] as string;
    await alice.click("#logout");
    await expect.poll(() => alice.textContent("#login-notice")).toBe("You logged out.");
    expect(await alice.isVisible("#login-form")).toBe(true);
    expect(JSON.parse(await storageOf(users[0] as User)).session).toEqual({});
    const probe = await connect(web.server.url);
    try {
      expect((await rejection(probe.bootstrap(Root).resume({ token }))).code).toBe(ErrorCode.AUTH_FAILED);
    } finally {
      probe.close();
    }
    // A reload stays logged out.
    await alice.reload();
    await expect.poll(() => alice.isVisible("#login-form")).toBe(true);
  });

  it("refuses a wrong password with a message, keeps nothing, and a taken name on sign-up", async () => {
    const mallory = await newUser(browser);
    users.push(mallory);
    await mallory.page.goto(web.origin);
    await mallory.page.fill("#login-name", "alice");
    await mallory.page.fill("#login-password", "not the password");
    await mallory.page.click("#login-submit");
    await expect
      .poll(() => mallory.page.textContent("#login-error"), { timeout: 20_000 })
      .toBe("Wrong name or password.");
    // The field was emptied when the form was sent.
    expect(await mallory.page.inputValue("#login-password")).toBe("");
    expect(JSON.parse(await storageOf(mallory)).session).toEqual({});
    await mallory.page.fill("#login-password", "another password");
    await mallory.page.click("#signup-submit");
    await expect
      .poll(() => mallory.page.textContent("#login-error"), { timeout: 20_000 })
      .toBe("That name is taken: choose another, or log in.");
    await mallory.page.fill("#login-name", "mallory");
    await mallory.page.fill("#login-password", "short");
    await mallory.page.click("#signup-submit");
    await expect.poll(() => mallory.page.textContent("#login-error")).toContain("at least 8 characters");
    expect(await mallory.page.isVisible("#whoami")).toBe(false);
  });

  it("never sent the password or the SaltedPassword in any frame, nor kept either in storage", async () => {
    const record = await web.server.store.findIdentityByName("alice");
    const verifier = record?.verifier;
    if (verifier === null || verifier === undefined) throw new Error("alice has no verifier");
    const salted = Buffer.from(await new Argon2Kdf().derive(PASSWORD, verifier.salt, verifier.kdf));
    const needles = [
      Buffer.from(PASSWORD, "utf8"),
      Buffer.from(PASSWORD, "utf16le"),
      Buffer.from(PASSWORD.slice(0, 8), "utf8"),
      salted,
      Buffer.from(salted.toString("hex")),
      Buffer.from(salted.toString("base64")),
    ];
    const alice = users[0] as User;
    // Frames were sent: sign-up, three logins, resumes (so the search below means something).
    expect(alice.log.sent.length).toBeGreaterThan(10);
    expect(alice.log.sent.some((f) => f.includes(Buffer.from("alice")))).toBe(true);
    for (const needle of needles) {
      for (const user of users) {
        expect(sentContains(user, needle)).toBe(false);
        const stored = await storageOf(user);
        expect(stored.includes(needle.toString("utf8"))).toBe(false);
      }
    }
    // The wrong password mallory typed was not sent either.
    expect(sentContains(users[1] as User, Buffer.from("not the password"))).toBe(false);
  });

  it("ran without a page error or a CSP violation", () => {
    for (const user of users) expect(user.log.errors).toEqual([]);
  });
});
