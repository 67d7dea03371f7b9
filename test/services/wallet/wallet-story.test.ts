/**
 * Seed 000, the whole story: LBRY's wallet-sync test client walkthrough, replayed as capabilities
 * against a real broker over WebSocket (in-memory store, open sign-up). Two clients on two
 * "computers", one account. Every step asserts what the seed's transcript shows: the sequence
 * numbers, the preferences, which client merges, who fails and how.
 *
 * The steps run in order and share state (a failure makes the later steps fail too).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { ErrorCode } from "../../../src/errors.js";
import type { RpcConnection } from "../../../src/rpc/index.js";
import { type BrokerServer, startBroker } from "../../../src/server.js";
import {
  LOCAL_CHANGES,
  OUT_OF_DATE,
  WalletClient,
  type WalletEvent,
} from "../../../src/services/wallet/wallet-client.js";
import type { WalletService } from "../../../src/services/wallet/wallet-service.js";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";
import { Root } from "../../../src/wire/gen/broker.js";
import { walletsOf } from "../../helpers/stores.js";

/** A client's log lines; `take()` answers those since the last take. */
class LogLines {
  readonly all: string[] = [];
  #from = 0;
  readonly log = (line: string): void => {
    this.all.push(line);
  };
  take(): string[] {
    const out = this.all.slice(this.#from);
    this.#from = this.all.length;
    return out;
  }
}

const SEED_KEYS = ["animal", "car"] as const;
const EMAIL = `joe-${Date.now()}@example.com`;

let store: SqliteBrokerStore;
let server: BrokerServer;
const connections: RpcConnection[] = [];
const log1 = new LogLines();
const log2 = new LogLines();
let c1: WalletClient;
let c2: WalletClient;
const events1: WalletEvent[] = [];
const events2: WalletEvent[] = [];

function client(name: string, lines: LogLines): WalletClient {
  return new WalletClient({
    username: EMAIL,
    password: "123abc2",
    name,
    log: lines.log,
    kdf,
    openRoot: async () => {
      const c = await connect(server.url);
      connections.push(c);
      return c.bootstrap(Root);
    },
  });
}

const prefs = (c: WalletClient) => c.getPreferences(SEED_KEYS);
const shown = (events: WalletEvent[]) =>
  events.map((e) =>
    e.type === "walletUpdated"
      ? `walletUpdated ${e.sequence}`
      : e.type === "revoked"
        ? `revoked: ${e.reason}`
        : `dropped ${e.latestSequence}`,
  );

/** The seed's three lines after a successful push. */
function expectSynced(lines: string[], sequence: number, what = "wallet state"): void {
  expect(lines.slice(-3, -2)).toEqual([`Successfully updated ${what} on server`]);
  expect(lines.slice(-2, -1)).toEqual(["Synced walletState:"]);
  expect(lines.at(-1)).toMatch(
    new RegExp(`^WalletState\\(sequence=${sequence}, encrypted_wallet='[A-Za-z0-9+/]+…'\\)$`),
  );
}

beforeAll(async () => {
  store = SqliteBrokerStore.open(":memory:");
  server = await startBroker({ port: 0, tcpPort: null, store, signUp: "open" });
  c1 = client("c1", log1);
  c2 = client("c2", log2);
});

afterAll(async () => {
  try {
    await c1?.close();
    await c2?.close();
    for (const c of connections) c.close();
    // The story is a leak test too: once the clients are gone, the server holds nothing.
    await waitFor(() => {
      expect(server.connections.size).toBe(0);
      expect(server.broker.liveIdentities).toBe(0);
      expect(server.broker.idle).toBe(true);
    });
    const service = server.broker.service("wallet") as WalletService;
    expect({ users: service.userCount, attached: service.attachmentCount }).toEqual({
      users: 0,
      attached: 0,
    });
  } finally {
    await server?.close();
    store?.close();
  }
});

describe("seed 000: the wallet-sync walkthrough, as capabilities", { timeout: 30_000 }, () => {
  it("initial setup: c1 registers; c2 derives the same salt seed from the server; both log in", async () => {
    expect(await c1.register()).toBeUndefined();
    expect(log1.take()).toEqual(["Generating keys...", "Done generating keys", "Registered"]);
    expect(c1.saltSeed).toMatch(/^[0-9a-f]{32}$/);

    await c2.updateDerivedSecrets();
    expect(log2.take()).toEqual(["Generating keys...", "Done generating keys"]);
    expect(c2.saltSeed).toBe(c1.saltSeed);

    await c1.login();
    await c2.login();
    expect(log1.take()).toEqual([`Logged in as ${EMAIL}: wallet/owner attached`]);
    expect(log2.take()).toEqual([`Logged in as ${EMAIL}: wallet/owner attached`]);
    expect(c1.loggedIn && c2.loggedIn).toBe(true);
  });

  it("syncing: c1 pushes sequence 1; c2 gets it", async () => {
    c1.initWalletState();
    const pushed = await c1.updateRemoteWallet();
    expect(pushed.status).toBe("success");
    expect(pushed.status === "success" && pushed.state.sequence).toBe(1);
    expectSynced(log1.take(), 1);

    c2.initWalletState();
    const got = await c2.getRemoteWallet();
    expect(got.state?.sequence).toBe(1);
    expect(got.action).toBe("taken");
    const lines = log2.take();
    expect(lines[0]).toBe("Got latest walletState:");
    expect(lines[1]).toMatch(/^WalletState\(sequence=1, /);
    // the same ciphertext on both sides
    expect(
      Buffer.from(got.state?.encryptedWallet ?? []).equals(
        Buffer.from(c1.syncedState?.encryptedWallet ?? [1]),
      ),
    ).toBe(true);
  });

  it("updating: c2 pushes 2 without editing; c1 gets it with nothing to merge", async () => {
    const pushed = await c2.updateRemoteWallet();
    expect(pushed.status === "success" && pushed.state.sequence).toBe(2);
    expectSynced(log2.take(), 2);

    const got = await c1.getRemoteWallet();
    expect(got.state?.sequence).toBe(2);
    expect(got.action).toBe("taken");
    expect(log1.take().slice(0, 2)).toEqual([
      "Nothing to merge. Taking remote walletState as latest walletState.",
      "Got latest walletState:",
    ]);
  });

  it("wallet changes: c1 sets animal=cow, pushes 3; c2 gets it", async () => {
    expect(prefs(c1)).toEqual({ animal: "", car: "" });
    expect(prefs(c2)).toEqual({ animal: "", car: "" });
    expect(c1.setPreference("animal", "cow")).toEqual({ animal: "cow" });
    expect(prefs(c1)).toEqual({ animal: "cow", car: "" });

    const pushed = await c1.updateRemoteWallet();
    expect(pushed.status === "success" && pushed.state.sequence).toBe(3);
    const got = await c2.getRemoteWallet();
    expect(got.state?.sequence).toBe(3);
    expect(got.action).toBe("taken");
    expect(log2.take()).toContain("Nothing to merge. Taking remote walletState as latest walletState.");
    expect(prefs(c2)).toEqual({ animal: "cow", car: "" });
  });

  it("merging changes: divergent edits of different keys merge cleanly (4, then 5)", async () => {
    expect(c1.setPreference("car", "Audi")).toEqual({ car: "Audi" });
    expect(c2.setPreference("animal", "horse")).toEqual({ animal: "horse" });
    expect(prefs(c1)).toEqual({ animal: "cow", car: "Audi" });
    expect(prefs(c2)).toEqual({ animal: "horse", car: "" });

    const pushed = await c1.updateRemoteWallet();
    expect(pushed.status === "success" && pushed.state.sequence).toBe(4);
    log2.take();
    const merged = await c2.getRemoteWallet();
    expect(merged.state?.sequence).toBe(4);
    expect(merged.action).toBe("merged");
    expect(merged.conflicts).toEqual([]);
    expect(log2.take()[0]).toBe("Merging local changes with remote changes to create latest walletState.");
    expect(prefs(c2)).toEqual({ animal: "horse", car: "Audi" });

    const again = await c2.updateRemoteWallet();
    expect(again.status === "success" && again.state.sequence).toBe(5);
    log1.take();
    const got = await c1.getRemoteWallet();
    expect(got.state?.sequence).toBe(5);
    expect(got.action).toBe("taken");
    expect(log1.take()[0]).toBe("Nothing to merge. Taking remote walletState as latest walletState.");
    expect(prefs(c1)).toEqual({ animal: "horse", car: "Audi" });
  });

  it("conflicts: the second push fails with the latest state; c1 merges and pushes 7", async () => {
    c2.setPreference("animal", "beaver");
    c1.setPreference("car", "Toyota");
    expect(prefs(c2)).toEqual({ animal: "beaver", car: "Audi" });
    expect(prefs(c1)).toEqual({ animal: "horse", car: "Toyota" });

    const first = await c2.updateRemoteWallet();
    expect(first.status === "success" && first.state.sequence).toBe(6);
    log1.take();
    const second = await c1.updateRemoteWallet();
    expect(second.status).toBe("failure");
    if (second.status === "failure") {
      expect(second.reason).toBe(OUT_OF_DATE);
      expect(second.latest?.sequence).toBe(6);
    }
    expect(log1.take()).toEqual([
      "Submitted wallet is out of date.",
      "Could not update. Need to get new wallet and merge",
    ]);
    expect(prefs(c1)).toEqual({ animal: "horse", car: "Toyota" });
    expect(c1.sequence).toBe(5);

    const merged = await c1.getRemoteWallet();
    expect(merged.state?.sequence).toBe(6);
    expect(merged.action).toBe("merged");
    expect(log1.take()[0]).toBe("Merging local changes with remote changes to create latest walletState.");
    expect(prefs(c1)).toEqual({ animal: "beaver", car: "Toyota" });

    const pushed = await c1.updateRemoteWallet();
    expect(pushed.status === "success" && pushed.state.sequence).toBe(7);
  });

  it("changing password: sequence 8, a new salt seed, and every session of the user is revoked", async () => {
    const oldSalt = c1.saltSeed;
    log1.take();
    const changed = await c1.changePassword("eggsandwich", { relogin: false });
    expect(changed.status === "success" && changed.state?.sequence).toBe(8);
    const lines = log1.take();
    expect(lines.slice(0, 2)).toEqual(["Generating keys...", "Done generating keys"]);
    expectSynced(lines, 8, "password and wallet state");
    expect(c1.saltSeed).toMatch(/^[0-9a-f]{32}$/);
    expect(c1.saltSeed).not.toBe(oldSalt);

    // both clients lost access, the one that changed the password too
    for (const [c, lines] of [
      [c1, log1],
      [c2, log2],
    ] as const) {
      lines.take();
      const err = await rejection(c.getRemoteWallet());
      expect(err.code).toBe(ErrorCode.REVOKED);
      expect(err.message).toContain("password was changed");
      expect(lines.take()[0]).toMatch(/^Failed to get remote wallet: PARALLAX_ERR_REVOKED/);
    }
  });

  it("c1 logs in with its new password; c2's old one fails until setLocalPassword fetches the new salt", async () => {
    await c1.login();
    log2.take();
    const err = await rejection(c2.login());
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
    expect(log2.take()[0]).toMatch(/^Failed to log in: PARALLAX_ERR_AUTH_FAILED.*setLocalPassword\(\)/);

    await c2.setLocalPassword("eggsandwich");
    expect(log2.take()).toEqual(["Generating keys...", "Done generating keys"]);
    expect(c2.saltSeed).toBe(c1.saltSeed);
    await c2.login();
    expect(c2.loggedIn).toBe(true);
  });

  it("refuses a password change while local changes are unpushed; allows it after pushing (9, 10)", async () => {
    expect(c1.setPreference("animal", "leemur")).toEqual({ animal: "leemur" });
    log1.take();
    const refused = await c1.changePassword("starboard");
    expect(refused).toEqual({ status: "failure", reason: LOCAL_CHANGES });
    expect(log1.take()).toEqual([LOCAL_CHANGES]);
    expect(c1.hasLocalChanges()).toBe(true);

    const pushed = await c1.updateRemoteWallet();
    expect(pushed.status === "success" && pushed.state.sequence).toBe(9);
    const changed = await c1.changePassword("starboard");
    expect(changed.status === "success" && changed.state?.sequence).toBe(10);
    // changePassword logged in again with the new password; logging in once more works too
    expect(c1.loggedIn).toBe(true);
    await c1.login();

    await c2.setLocalPassword("starboard");
    expect(c2.saltSeed).toBe(c1.saltSeed);
    await c2.login();
  });

  it("notifications: both watching clients hear walletUpdated 11 and 12, in order", async () => {
    c1.watch((e) => {
      events1.push(e);
    });
    c2.watch((e) => {
      events2.push(e);
    });
    const eleven = await c1.updateRemoteWallet();
    expect(eleven.status === "success" && eleven.state.sequence).toBe(11);
    await waitFor(() => {
      expect(events1.length).toBeGreaterThanOrEqual(1);
      expect(events2.length).toBeGreaterThanOrEqual(1);
    });
    const twelve = await c1.updateRemoteWallet();
    expect(twelve.status === "success" && twelve.state.sequence).toBe(12);
    await waitFor(() => {
      expect(events1.length).toBeGreaterThanOrEqual(2);
      expect(events2.length).toBeGreaterThanOrEqual(2);
    });
    expect(shown(events1)).toEqual(["walletUpdated 11", "walletUpdated 12"]);
    expect(shown(events2)).toEqual(["walletUpdated 11", "walletUpdated 12"]);
    // c2 never got 11 or 12: it is told it is behind
    expect(events2.every((e) => e.type === "walletUpdated" && e.behind)).toBe(true);
    expect(c2.latestNotified).toBe(12);
    expect(log2.all).toContain(
      "c2 got notified of a wallet update, sequence=12. This client is behind: get the latest from the server.",
    );
  });

  it("a password change (13) ends every watcher's attachment: each hears revoked with the reason", async () => {
    const changed = await c1.changePassword("ihatesockets");
    expect(changed.status === "success" && changed.state?.sequence).toBe(13);
    await waitFor(() => {
      expect(events1.map((e) => e.type)).toContain("revoked");
      expect(events2.map((e) => e.type)).toContain("revoked");
    });
    const expected = [
      "walletUpdated 11",
      "walletUpdated 12",
      "walletUpdated 13",
      "revoked: the password was changed",
    ];
    expect(shown(events1)).toEqual(expected);
    expect(shown(events2)).toEqual(expected);
    expect(log2.all).toContain("c2 stopped getting notifications: the password was changed");
  });

  it("afterwards: c1 (logged in again) and c2 (after setLocalPassword) read wallet 13 alike", async () => {
    // c1 logged in again inside changePassword, with a new watcher that hears the next update
    expect((await c1.getRemoteWallet()).state?.sequence).toBe(13);
    expect(prefs(c1)).toEqual({ animal: "leemur", car: "Toyota" });

    expect((await rejection(c2.getRemoteWallet())).code).toBe(ErrorCode.REVOKED);
    await c2.setLocalPassword("ihatesockets");
    await c2.login();
    const got = await c2.getRemoteWallet();
    expect(got.state?.sequence).toBe(13);
    // c2's last base was 7 and it had no local changes since: it takes 13 as it is
    expect(got.action).toBe("taken");
    expect(prefs(c2)).toEqual({ animal: "leemur", car: "Toyota" });

    // the server holds only ciphertext: no preference and no password is readable there
    const record = await store.findIdentityByName(EMAIL);
    const wallet = await walletsOf(store).getWallet(record?.id ?? -1);
    expect(wallet?.sequence).toBe(13);
    const stored = Buffer.concat([
      Buffer.from(wallet?.encryptedWallet ?? []),
      Buffer.from(wallet?.hmac ?? []),
    ]);
    for (const secret of ["leemur", "Toyota", "animal", "ihatesockets"]) {
      expect(stored.includes(Buffer.from(secret))).toBe(false);
    }
  });
});
