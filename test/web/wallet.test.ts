/**
 * The wallet page (`/wallet`, src/web/wallet/) in Chromium: a user signs up on the page, and a
 * Node WalletClient — another of the user's devices, logging in with the same password over the
 * broker's WebSocket — stores and updates the encrypted wallet. The page shows the status it
 * learns from its WalletWatcher: the sequence, the encrypted size, each update as it commits,
 * without a reload; after its network was cut, the updates made meanwhile (told apart from live
 * ones); the user's key devices, a name with markup written as text; and when another device
 * changes the password, that the page no longer follows the wallet, and why.
 *
 * The page goes through a CutProxy so a test can take its network away and give it back.
 */
import { generateKeyPairSync } from "node:crypto";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connect } from "../../src/client.js";
import { loginWithPassword } from "../../src/login/client-login.js";
import type { RpcConnection } from "../../src/rpc/index.js";
import { WalletClient } from "../../src/services/wallet/wallet-client.js";
import { Root } from "../../src/wire/gen/broker.js";
import {
  type CutProxy,
  describeInChromium,
  enter,
  launchChromium,
  newUser,
  startCutProxy,
  startWebBroker,
  type User,
  type WebBroker,
} from "./chromium.js";

const PASSWORD = "wallet password 1";
const DEVICE = `<img src=x onerror="globalThis.__pwned=1">phone <b>2</b>`;

let browser: Browser;
let web: WebBroker;
let proxy: CutProxy;
let dana: User;
let device: WalletClient;
const connections: RpcConnection[] = [];

function sequence(): Promise<string | null> {
  return dana.page.getAttribute("#wallet-sequence", "data-sequence");
}

/** The sequences of the update list, newest first, with how each was learned. */
function updates(): Promise<string[]> {
  return dana.page.$$eval("#wallet-updates li[data-sequence]", (items) =>
    items.map((i) => `${i.getAttribute("data-sequence")} ${i.getAttribute("data-how")}`),
  );
}

/** Another device of dana's pushes a change of its wallet. */
async function push(key: string, value: string): Promise<number> {
  device.setPreference(key, value);
  const r = await device.updateRemoteWallet();
  if (r.status !== "success") throw new Error(`the push failed: ${r.reason}`);
  return r.state.sequence;
}

describeInChromium("the wallet page in Chromium", () => {
  beforeAll(async () => {
    [browser, web] = await Promise.all([launchChromium(), startWebBroker({ signUp: "open" })]);
    proxy = await startCutProxy(web.server.port);
    device = new WalletClient({
      username: "dana",
      password: PASSWORD,
      name: "laptop",
      openRoot: async () => {
        const c = await connect(web.server.url);
        connections.push(c);
        return c.bootstrap(Root);
      },
    });
  });

  afterAll(async () => {
    await device?.close();
    for (const c of connections) c.close();
    await browser?.close();
    await proxy?.close();
    await web?.close();
  });

  it("shows a new user's wallet status: nothing stored yet, this page following live", async () => {
    dana = await newUser(browser);
    await enter(dana.page, proxy.origin, "dana", PASSWORD, "signup", "/wallet");
    await expect.poll(() => dana.page.getAttribute("#wallet-live", "data-live")).toBe("yes");
    expect(await sequence()).toBe("0");
    expect(await dana.page.textContent("#wallet-sequence")).toContain("none yet");
    expect(await dana.page.textContent("#wallet-updated")).toBe("never");
    expect(await dana.page.isVisible("#wallet-updates-empty")).toBe(true);
    expect(
      await dana.page.$$eval("#wallet-devices li", (l) => l.map((i) => i.getAttribute("data-device"))),
    ).toEqual(["this page"]);
    // Nothing the page sent carries the password.
    expect(dana.log.sent.some((f) => f.includes(Buffer.from(PASSWORD)))).toBe(false);
    expect(dana.log.errors).toEqual([]);
  });

  it("updates as soon as another device pushes: sequence, size and the update, without a reload", async () => {
    await device.login();
    device.initWalletState();
    await dana.page.evaluate(() => {
      (globalThis as { __samePage?: boolean }).__samePage = true;
    });
    expect(await push("animal", "cow")).toBe(1);
    await expect.poll(() => sequence()).toBe("1");
    expect(await updates()).toEqual(["1 live"]);
    const bytes = device.syncedState?.encryptedWallet.length ?? 0;
    expect(bytes).toBeGreaterThan(0);
    await expect.poll(() => dana.page.textContent("#wallet-size")).toContain(`${bytes} bytes`);
    expect(await dana.page.getAttribute("#wallet-updated", "data-at")).not.toBeNull();
    expect(await dana.page.isVisible("#wallet-updates-empty")).toBe(false);

    expect(await push("car", "bike")).toBe(2);
    await expect.poll(() => sequence()).toBe("2");
    expect(await updates()).toEqual(["2 live", "1 live"]);
    await expect
      .poll(async () => dana.page.textContent("#wallet-size"))
      .toContain(`${device.syncedState?.encryptedWallet.length} bytes`);
    expect(await dana.page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage)).toBe(true);
    // The ciphertext itself is never on the page.
    const b64 = Buffer.from(device.syncedState?.encryptedWallet ?? new Uint8Array()).toString("base64");
    expect(await dana.page.textContent("#page")).not.toContain(b64.slice(0, 16));
  });

  it("after its network comes back, shows what changed meanwhile, told apart from live updates", async () => {
    proxy.refusing = true;
    proxy.cut();
    await expect.poll(() => dana.page.textContent("#status")).toBe("reconnecting…");
    // Meanwhile: two pushes from the other device, and a new key device with markup in its name.
    expect(await push("animal", "horse")).toBe(3);
    expect(await push("animal", "zebra")).toBe(4);
    const other = await connect(web.server.url);
    connections.push(other);
    const login = await loginWithPassword(other.bootstrap(Root), "dana", PASSWORD);
    const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
    await login.identity.addPublicKey({
      publicKey: new Uint8Array(raw.subarray(raw.length - 32)),
      device: DEVICE,
    });
    expect(await sequence()).toBe("2");

    proxy.refusing = false;
    await expect.poll(() => dana.page.textContent("#status"), { timeout: 20_000 }).toBe("connected");
    await expect.poll(() => sequence()).toBe("4");
    expect(await updates()).toEqual(["4 away", "2 live", "1 live"]);
    expect(await dana.page.textContent("#wallet-updates li[data-sequence='4']")).toContain(
      "committed while this page was reconnecting (2 updates)",
    );
    await expect.poll(() => dana.page.$$eval("#wallet-devices li", (l) => l.length)).toBe(2);
    expect(await dana.page.textContent(`#wallet-devices li:nth-child(2) .device`)).toBe(DEVICE);
    expect(await dana.page.$$eval("#page img, #page b", (l) => l.length)).toBe(0);
    expect(await dana.page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();

    // The new attachment's watcher hears the next update live.
    expect(await push("car", "tram")).toBe(5);
    await expect.poll(() => sequence()).toBe("5");
    expect((await updates())[0]).toBe("5 live");
    // The refused connections while the network was away are the only errors.
    expect(
      dana.log.errors.filter((e) => !/^console: WebSocket connection to '\S+\/rpc' failed/.test(e)),
    ).toEqual([]);
  });

  it("stops following when another device changes the password, and says why", async () => {
    const r = await device.changePassword("a new wallet password", { relogin: false });
    expect(r.status).toBe("success");
    await expect.poll(() => dana.page.getAttribute("#wallet-live", "data-live")).toBe("no");
    expect(await dana.page.textContent("#wallet-live")).toContain("the password was changed");
  });
});
