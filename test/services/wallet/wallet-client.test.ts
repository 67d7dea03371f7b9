/**
 * WalletClient behaviours the seed's story does not reach: first pushes, refusing bad remote
 * wallets, password changes without a wallet, what crosses the wire, conflict policies, dropped
 * notifications, approval sign-ups and closing. A broker on an in-memory store, clients over the
 * in-memory transport, and a fast stand-in KDF (the server never runs the KDF, so any 32-byte
 * function of (password, salt) works for the client side). Every test is a leak test: the env's
 * `close()` asserts that the server connections, the broker and the wallet service kept nothing.
 */
import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { Kdf } from "../../../src/cred/kdf.js";
import type { SignUpMode } from "../../../src/cred/authorizer.js";
import { ErrorCode } from "../../../src/errors.js";
import { loginWithPassword } from "../../../src/login/client-login.js";
import { attach, Broker } from "../../../src/login/index.js";
import { RpcConnection } from "../../../src/rpc/index.js";
import { DEFAULT_KEYRING } from "../../../src/server.js";
import {
  LOCAL_CHANGES,
  WalletClient,
  type WalletClientOptions,
  type WalletEvent,
} from "../../../src/services/wallet/wallet-client.js";
import { deriveWalletKeys, encryptWallet, walletHmac } from "../../../src/services/wallet/wallet-crypto.js";
import { remoteWins } from "../../../src/services/wallet/wallet-merge.js";
import { type WalletService, wallet } from "../../../src/services/wallet/wallet-service.js";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import { memoryPair } from "../../../src/transport/index.js";
import { Root } from "../../../src/wire/gen/broker.js";
import { MaybeWallet_Which } from "../../../src/wire/gen/wallet.js";
import { WALLET_OWNER } from "../../../src/services/wallet/wallet-keys.js";
import { rejection } from "../../helpers/errors.js";
import { EMPTY_STATS } from "../../helpers/rpc-stats.js";
import { waitFor } from "../../helpers/wait.js";
import { walletsOf } from "../../helpers/stores.js";

/** Fast and deterministic; fine for the client side, since the server only ever sees verifiers. */
const fastKdf: Kdf = {
  name: "hmac-sha256 (tests only)",
  derive: async (password, salt) =>
    new Uint8Array(createHmac("sha256", salt).update(password.normalize("NFKC")).digest()),
};

interface Env {
  readonly store: SqliteBrokerStore;
  readonly broker: Broker;
  readonly service: WalletService;
  /** Every byte either side sent. */
  readonly wire: Uint8Array[];
  root(): Root;
  client(options?: Partial<WalletClientOptions> & { lines?: string[] }): WalletClient;
  /**
   * Closes every client and connection, then asserts nothing leaked: every server connection's
   * tables are empty, the broker holds no login (and is idle), the wallet service no user state
   * and no attachment.
   */
  close(): Promise<void>;
}

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

function makeEnv(options: { maxNotificationsInFlight?: number; signUp?: SignUpMode } = {}): Env {
  const store = SqliteBrokerStore.open(":memory:");
  const broker = new Broker({
    store,
    signUp: options.signUp ?? "open",
    defaultKeyring: DEFAULT_KEYRING,
    services: [wallet({ maxNotificationsInFlight: options.maxNotificationsInFlight })],
  });
  const service = broker.service("wallet") as WalletService;
  const connections: RpcConnection[] = [];
  const servers: RpcConnection[] = [];
  const clients: WalletClient[] = [];
  const wire: Uint8Array[] = [];
  const e: Env = {
    store,
    broker,
    service,
    wire,
    root() {
      const [a, b] = memoryPair();
      for (const t of [a, b]) {
        const send = t.send.bind(t);
        t.send = (m: Uint8Array) => {
          wire.push(m.slice());
          send(m);
        };
      }
      const server = new RpcConnection(b);
      const root = broker.root(server);
      server.setBootstrap(root);
      root.dispose();
      const client = new RpcConnection(a);
      connections.push(client, server);
      servers.push(server);
      return client.bootstrap(Root);
    },
    client(o = {}) {
      const lines = o.lines;
      const c = new WalletClient({
        username: "joe@example.com",
        password: "123abc2",
        kdf: fastKdf,
        openRoot: async () => e.root(),
        log: lines === undefined ? undefined : (l) => lines.push(l),
        ...o,
      });
      clients.push(c);
      return c;
    },
    async close() {
      try {
        const closed = servers.map((s) => new Promise<void>((resolve) => s.onClose(() => resolve())));
        for (const c of clients) await c.close();
        for (const c of connections) c.close();
        await Promise.all(closed);
        for (const s of servers) expect(s.stats()).toEqual(EMPTY_STATS);
        expect(broker.liveIdentities).toBe(0);
        expect(broker.idle).toBe(true);
        expect({ users: service.userCount, attached: service.attachmentCount }).toEqual({
          users: 0,
          attached: 0,
        });
      } finally {
        broker.close();
        store.close();
      }
    },
  };
  return e;
}

/** A registered account with a logged-in client. */
async function account(e: Env, o: Partial<WalletClientOptions> & { lines?: string[] } = {}) {
  const c = e.client(o);
  await c.register();
  await c.login();
  return c;
}

/** A raw WalletPerspective of joe's, to put arbitrary states on the server. */
async function rawWallet(e: Env, password = "123abc2") {
  const login = await loginWithPassword(e.root(), "joe@example.com", password, { kdf: fastKdf });
  const wallet = attach(login.identity, WALLET_OWNER);
  return { wallet, keys: deriveWalletKeys(login.saltedPassword, login.salt) };
}

describe("WalletClient", () => {
  it("pushes a new account's first wallet as sequence 1; a device that skipped get conflicts", async () => {
    env = makeEnv();
    const c1 = await account(env);
    expect(c1.sequence).toBe(0);
    c1.initWalletState();
    c1.setPreference("animal", "cow");
    const first = await c1.updateRemoteWallet();
    expect(first.status === "success" && first.state.sequence).toBe(1);
    expect(c1.sequence).toBe(1);
    expect(c1.hasLocalChanges()).toBe(false);

    const c2 = env.client();
    await c2.login();
    c2.initWalletState();
    c2.setPreference("car", "Audi");
    const clash = await c2.updateRemoteWallet();
    expect(clash.status).toBe("failure");
    expect(clash.status === "failure" && clash.latest?.sequence).toBe(1);
    expect(c2.getPreferences()).toEqual({ car: "Audi" });
    const got = await c2.getRemoteWallet();
    expect(got.action).toBe("merged");
    expect(c2.getPreferences()).toEqual({ animal: "cow", car: "Audi" });
    const second = await c2.updateRemoteWallet();
    expect(second.status === "success" && second.state.sequence).toBe(2);
  });

  it("says what to do first: log in, init or get a wallet", async () => {
    env = makeEnv();
    const c = env.client();
    expect((await rejection(c.getRemoteWallet())).message).toContain("not logged in: call login() first");
    // setPreference throws synchronously: the async wrapper turns the throw into a rejection
    expect((await rejection((async () => c.setPreference("a", "b"))())).message).toContain(
      "initWalletState()",
    );
    await c.register();
    await c.login();
    expect((await rejection(c.updateRemoteWallet())).message).toContain("no local wallet");
    const none = await c.getRemoteWallet();
    expect(none).toEqual({ status: "success", state: null, action: "none", conflicts: [] });
    await c.close();
    expect((await rejection(c.login())).message).toContain("closed");
  });

  it("refuses a remote wallet whose hmac does not verify, or that does not decrypt, and changes nothing", async () => {
    env = makeEnv();
    const lines: string[] = [];
    const c = await account(env, { lines });
    c.initWalletState();
    c.setPreference("animal", "cow");
    const { wallet, keys } = await rawWallet(env);

    const enc = encryptWallet(
      keys.encryptionKey,
      new TextEncoder().encode('{"preferences":{"animal":"emu"}}'),
    );
    // a wrong hmac (say, the server's forgery)
    await wallet.update({ state: { sequence: 1n, encryptedWallet: enc, hmac: new Uint8Array(32).fill(7) } });
    let err = await rejection(c.getRemoteWallet());
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("hmac does not verify");
    expect(lines.at(-1)).toMatch(/^Failed to get remote wallet: PARALLAX_ERR_BAD_ARGUMENT/);
    expect(c.sequence).toBe(0);
    expect(c.getPreferences()).toEqual({ animal: "cow" });

    // a valid hmac over the wallet's bytes replayed under another sequence
    await wallet.update({
      state: { sequence: 2n, encryptedWallet: enc, hmac: walletHmac(keys.hmacKey, 1, enc) },
    });
    expect((await rejection(c.getRemoteWallet())).message).toContain("hmac does not verify (sequence 2)");

    // a good hmac over bytes that are not a wallet under this key
    const junk = new Uint8Array(60).fill(1);
    await wallet.update({
      state: { sequence: 3n, encryptedWallet: junk, hmac: walletHmac(keys.hmacKey, 3, junk) },
    });
    err = await rejection(c.getRemoteWallet());
    expect(err.message).toBe("wallet cannot be decrypted: wrong password or tampered");
    expect(c.sequence).toBe(0);

    // and a proper one is taken
    await wallet.update({
      state: { sequence: 4n, encryptedWallet: enc, hmac: walletHmac(keys.hmacKey, 4, enc) },
    });
    const ok = await c.getRemoteWallet();
    expect(ok.state?.sequence).toBe(4);
    // both sides changed "animal" since the (empty) base: local wins by default
    expect(ok.conflicts).toEqual(["animal"]);
    expect(c.getPreferences()).toEqual({ animal: "cow" });
    wallet.dispose();
  });

  it("changes the password without a wallet when the server holds none, and logs in again", async () => {
    env = makeEnv();
    const lines: string[] = [];
    const c = await account(env, { lines });
    const oldSalt = c.saltSeed;
    c.initWalletState(); // an untouched local wallet is not a local change
    const res = await c.changePassword("eggsandwich");
    expect(res).toEqual({ status: "success", state: null });
    expect(lines).toContain("Successfully updated password on server (it holds no wallet yet)");
    expect(c.saltSeed).not.toBe(oldSalt);
    expect(c.loggedIn).toBe(true);
    const id = (await env.store.findIdentityByName("joe@example.com"))?.id ?? -1;
    expect(await walletsOf(env.store).getWallet(id)).toBeUndefined();
    // the new password works from another device, the old one does not
    const fresh = await rawWallet(env, "eggsandwich");
    expect((await fresh.wallet.get()).wallet.which()).toBe(MaybeWallet_Which.NONE);
    expect((await rejection(rawWallet(env, "123abc2"))).code).toBe(ErrorCode.AUTH_FAILED);
    // and the client's new login is live
    expect((await c.getRemoteWallet()).action).toBe("none");
  });

  it("keeps its password when the server refuses the change (a wallet it never synced)", async () => {
    env = makeEnv();
    const c1 = await account(env);
    c1.initWalletState();
    await c1.updateRemoteWallet();
    const c2 = env.client();
    await c2.login();
    const salt = c2.saltSeed;
    const err = await rejection(c2.changePassword("eggsandwich"));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("sequence 1");
    expect(c2.saltSeed).toBe(salt);
    await c2.login(); // still the old password
    await c2.getRemoteWallet();
    expect((await c2.changePassword("eggsandwich")).status).toBe("success");
  });

  it("refuses a password change with unpushed local changes, before deriving anything", async () => {
    env = makeEnv();
    const lines: string[] = [];
    const c = await account(env, { lines });
    c.initWalletState();
    c.setPreference("animal", "leemur");
    lines.length = 0;
    expect(await c.changePassword("starboard")).toEqual({ status: "failure", reason: LOCAL_CHANGES });
    expect(lines).toEqual([LOCAL_CHANGES]);
  });

  it("sends neither the password, SaltedPassword, the keys nor the plaintext wallet over the wire", async () => {
    env = makeEnv();
    const c = await account(env, { password: "hunter2-correct-horse" });
    c.initWalletState();
    c.setPreference("secret-key-name", "secret-value-xyzzy");
    await c.updateRemoteWallet();
    await c.getRemoteWallet();
    await c.changePassword("second-password-plugh");
    c.setPreference("secret-key-name", "another-secret-value");
    await c.updateRemoteWallet();
    const all = Buffer.concat(env.wire.map((m) => Buffer.from(m)));
    expect(all.length).toBeGreaterThan(1000);
    for (const s of [
      "hunter2",
      "second-password",
      "secret-value",
      "secret-key-name",
      "another-secret",
      "preferences",
    ]) {
      expect(all.includes(Buffer.from(s)), s).toBe(false);
    }
    const salt = Buffer.from(c.saltSeed ?? "", "hex");
    const sp = await fastKdf.derive("second-password-plugh", salt, {
      algorithm: "argon2id",
      memoryKiB: 19456,
      iterations: 2,
      parallelism: 1,
    });
    const keys = deriveWalletKeys(sp, salt);
    for (const secret of [sp, keys.encryptionKey, keys.hmacKey]) {
      expect(all.includes(Buffer.from(secret))).toBe(false);
    }
  });

  it("lets the local value win a conflict by default, or follows resolveConflict", async () => {
    env = makeEnv();
    const a = await account(env);
    const b = env.client({ resolveConflict: remoteWins });
    await b.login();
    const c = env.client();
    await c.login();
    a.initWalletState();
    a.setPreference("animal", "horse");
    await a.updateRemoteWallet();
    await b.getRemoteWallet();
    await c.getRemoteWallet();
    a.setPreference("animal", "cow");
    await a.updateRemoteWallet();
    b.setPreference("animal", "emu");
    c.setPreference("animal", "emu");
    const rb = await b.getRemoteWallet();
    const rc = await c.getRemoteWallet();
    expect(rb.conflicts).toEqual(["animal"]);
    expect(rc.conflicts).toEqual(["animal"]);
    expect(b.getPreferences()).toEqual({ animal: "cow" });
    expect(b.hasLocalChanges()).toBe(false);
    expect(c.getPreferences()).toEqual({ animal: "emu" });
    expect(c.hasLocalChanges()).toBe(true);
  });

  it("reports notificationsDropped to a slow watcher, then resumes", async () => {
    env = makeEnv({ maxNotificationsInFlight: 1 });
    const writer = await account(env);
    const slow = env.client();
    await slow.login();
    const events: WalletEvent[] = [];
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    slow.watch((e) => {
      events.push(e);
      return e.type === "walletUpdated" && e.sequence === 1 ? held : undefined;
    });
    writer.initWalletState();
    for (let i = 0; i < 3; i++) await writer.updateRemoteWallet();
    await waitFor(() => expect(events).toHaveLength(1));
    release();
    await waitFor(() => expect(events).toHaveLength(2));
    expect(events[0]).toEqual({ type: "walletUpdated", sequence: 1, behind: true });
    expect(events[1]).toMatchObject({ type: "notificationsDropped", latestSequence: 3 });
    expect(slow.latestNotified).toBe(3);
    await writer.updateRemoteWallet();
    await waitFor(() => expect(events).toHaveLength(3));
    expect(events[2]).toEqual({ type: "walletUpdated", sequence: 4, behind: true });
  });

  it("stops hearing events once unsubscribed, and detaches its watcher on close", async () => {
    env = makeEnv();
    const c = await account(env);
    const id = (await env.store.findIdentityByName("joe@example.com"))?.id ?? -1;
    expect(env.service.watchersOf(id)).toBe(1);
    const events: WalletEvent[] = [];
    const stop = c.watch((e) => {
      events.push(e);
    });
    c.initWalletState();
    await c.updateRemoteWallet();
    await waitFor(() => expect(events).toHaveLength(1));
    stop();
    await c.updateRemoteWallet();
    // logging in again replaces the attachment: still one watcher, and no stray revoked event
    c.watch((e) => {
      events.push(e);
    });
    await c.login();
    await waitFor(() => expect(env?.service.watchersOf(id)).toBe(1));
    await c.updateRemoteWallet();
    await waitFor(() => expect(events).toHaveLength(2));
    expect(events.map((e) => e.type === "walletUpdated" && e.sequence)).toEqual([1, 3]);
    await c.close();
    await waitFor(() => expect(env?.service.watchersOf(id)).toBe(0));
    expect(events).toHaveLength(2);
  });

  it("answers the PendingApproval when sign-up needs an operator's approval", async () => {
    env = makeEnv({ signUp: "approval" });
    const lines: string[] = [];
    const c = env.client({ lines });
    const pending = await c.register();
    expect(lines.at(-1)).toBe("Registered; the sign-up waits for an operator's approval");
    expect((await pending?.request())?.request.username).toBe("joe@example.com");
    pending?.dispose();
    const err = await rejection(c.login());
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
  });
});
