import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../src/client.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithPassword, makeVerifier } from "../../src/login/client-login.js";
import { type ReconnectEvent, ReconnectingClient } from "../../src/login/reconnecting-client.js";
import { type BrokerServer, startBroker } from "../../src/server.js";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { Root } from "../../src/wire/gen/broker.js";
import { LOBBY_MEMBER } from "../../src/services/lobby/lobby-keys.js";
import type { LobbyMember } from "../../src/wire/gen/lobby.js";
import { kdf } from "./harness.js";

let server: BrokerServer | undefined;
let store: SqliteBrokerStore | undefined;
afterEach(async () => {
  await server?.close();
  store?.close();
  server = undefined;
});

/** Resolves with the first event `pick` accepts. */
function nextEvent(
  events: ReconnectEvent[],
  pick: (e: ReconnectEvent) => boolean,
  listeners: Array<() => void>,
) {
  return new Promise<ReconnectEvent>((resolve) => {
    const check = (): void => {
      const found = events.find(pick);
      if (found !== undefined) resolve(found);
      else listeners.push(check);
    };
    check();
  });
}

async function setup() {
  store = SqliteBrokerStore.open(":memory:");
  server = await startBroker({ port: 0, tcpPort: null, store, signUp: "open" });
  const { verifier } = await makeVerifier("alice password", { kdf });
  await store.createIdentity({
    name: "alice",
    verifier,
    keyring: [{ service: "lobby", perspective: "member" }],
  });
  const events: ReconnectEvent[] = [];
  const listeners: Array<() => void> = [];
  const url = server.url;
  const client = new ReconnectingClient({
    connect: () => connect(url),
    login: async (root) => (await loginWithPassword(root, "alice", "alice password", { kdf })).identity,
    device: "test laptop",
    baseDelayMs: 5,
    onEvent: (e) => {
      events.push(e);
      for (const l of listeners.splice(0)) l();
    },
  });
  return { client, events, listeners, url };
}

describe("ReconnectingClient", () => {
  it("resumes after a dropped connection and re-attaches its perspectives", async () => {
    const { client, events, listeners } = await setup();
    await client.start();
    const member = await client.attach(LOBBY_MEMBER);
    expect((await member.current.hello()).greeting).toBe("hello, alice");
    const reattached = new Promise<LobbyMember>((resolve) => member.onReattach(resolve));
    for (const c of server?.connections ?? []) c.close("network blip");
    await nextEvent(events, (e) => e.type === "disconnected", listeners);
    const fresh = await reattached;
    expect(await nextEvent(events, (e) => e.type === "connected" && e.resumed, listeners)).toMatchObject({
      resumed: true,
    });
    expect((await fresh.hello()).greeting).toBe("hello, alice");
    expect((await client.identity.whoami()).info.grant).toBe("resume token (test laptop)");
    client.close();
  });

  it("reports clearly that it cannot resume once the epoch moved on, and stops", async () => {
    const { client, events, listeners, url } = await setup();
    await client.start();
    await client.attach(LOBBY_MEMBER);
    // The password changes from another device: every session of alice is revoked.
    const other = await connect(url);
    const { identity } = await loginWithPassword(other.bootstrap(Root), "alice", "alice password", { kdf });
    const { verifier } = await makeVerifier("new password", { kdf });
    await identity.changePassword({ newVerifier: verifier });
    for (const c of server?.connections ?? []) c.close("network blip");
    const failed = await nextEvent(events, (e) => e.type === "failed", listeners);
    expect(failed.type === "failed" && failed.error.code).toBe(ErrorCode.AUTH_FAILED);
    expect(failed.type === "failed" && failed.error.message).toContain("log in again");
    expect(() => client.identity).toThrow(expect.objectContaining({ code: ErrorCode.DISCONNECTED }));
    client.close();
    other.close();
  });
});
