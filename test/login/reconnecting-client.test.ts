/**
 * ReconnectingClient against a real broker over WebSocket: it resumes after drops (again and
 * again, each time with the token the previous resume answered), re-attaches its perspectives,
 * and stops with a clear failure when resuming is impossible (the epoch moved on, or someone
 * else used its token). The client's connections are tapped to see which resume tokens cross
 * the wire. Every test ends by closing the clients and asserting the server kept nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../src/client.js";
import { hashSecret } from "../../src/cred/secrets.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { loginWithPassword, makeVerifier } from "../../src/login/client-login.js";
import { PerUserService } from "../../src/login/index.js";
import { type ReconnectEvent, ReconnectingClient } from "../../src/login/reconnecting-client.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { type BrokerServer, startBroker } from "../../src/server.js";
import { LOBBY_MEMBER } from "../../src/services/lobby/lobby-keys.js";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { connectWebSocket } from "../../src/transport/index.js";
import { Root } from "../../src/wire/gen/broker.js";
import type { LobbyMember } from "../../src/wire/gen/lobby.js";
import { rejection } from "../helpers/errors.js";
import { EMPTY_STATS } from "../helpers/rpc-stats.js";
import { waitFor } from "../helpers/wait.js";
import { kdf } from "./harness.js";

let server: BrokerServer | undefined;
let store: SqliteBrokerStore | undefined;
afterEach(async () => {
  await server?.close();
  store?.close();
  server = undefined;
  store = undefined;
});

const GRANT = "resume token (test laptop)";
const REUSED = "resume token reused after rotation";

/** The resume tokens seen in the client's traffic, in order. */
interface TokenWire {
  /** Presented by the client (its Root.resume calls). */
  readonly sent: string[];
  /** Answered by the server (issueResumeToken, then each resume's rotated token). */
  readonly received: string[];
}

const TOKEN = /pxr_[A-Za-z0-9_-]{43}/g;
const tokensIn = (bytes: Uint8Array): string[] =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1").match(TOKEN) ?? [];

/** `connect(url)`, with the resume tokens of every frame either way written down in `wire`. */
async function tappedConnect(url: string, wire: TokenWire): Promise<RpcConnection> {
  const transport = await connectWebSocket(url);
  const send = transport.send.bind(transport);
  transport.send = (m: Uint8Array) => {
    wire.sent.push(...tokensIn(m));
    send(m);
  };
  const connection = new RpcConnection(transport);
  const receive = transport.onMessage;
  transport.onMessage = (m: Uint8Array) => {
    wire.received.push(...tokensIn(m));
    receive(m);
  };
  return connection;
}

/** Resolves with the `n`th event (1-based) `pick` accepts. */
function nthEvent(
  events: ReconnectEvent[],
  pick: (e: ReconnectEvent) => boolean,
  n: number,
  listeners: Array<() => void>,
) {
  return new Promise<ReconnectEvent>((resolve) => {
    const check = (): void => {
      const found = events.filter(pick)[n - 1];
      if (found !== undefined) resolve(found);
      else listeners.push(check);
    };
    check();
  });
}

/** Resolves with the first event `pick` accepts. */
function nextEvent(
  events: ReconnectEvent[],
  pick: (e: ReconnectEvent) => boolean,
  listeners: Array<() => void>,
) {
  return nthEvent(events, pick, 1, listeners);
}

const resumed = (e: ReconnectEvent): boolean => e.type === "connected" && e.resumed;

/** Closes every connection the server holds, as a network failure would. */
function dropAll(): void {
  for (const c of server?.connections ?? []) c.close("network blip");
}

async function setup(
  options: { failConnects?: () => boolean; resumeToken?: string; tokens?: Array<string | undefined> } = {},
) {
  store ??= SqliteBrokerStore.open(":memory:");
  server ??= await startBroker({ port: 0, tcpPort: null, store, signUp: "open", web: false });
  if ((await store.findIdentityByName("alice")) === undefined) {
    const { verifier } = await makeVerifier("alice password", { kdf });
    await store.createIdentity({
      name: "alice",
      verifier,
      keyring: [{ service: "lobby", perspective: "member" }],
    });
  }
  const events: ReconnectEvent[] = [];
  const listeners: Array<() => void> = [];
  const wire: TokenWire = { sent: [], received: [] };
  const url = server.url;
  const client = new ReconnectingClient({
    connect: () =>
      options.failConnects?.() === true
        ? Promise.reject(new ParallaxError(ErrorCode.DISCONNECTED, "the network is down"))
        : tappedConnect(url, wire),
    resumeToken: options.resumeToken,
    onToken: (t) => options.tokens?.push(t),
    login: async (root) => (await loginWithPassword(root, "alice", "alice password", { kdf })).identity,
    device: "test laptop",
    baseDelayMs: 5,
    onEvent: (e) => {
      events.push(e);
      for (const l of listeners.splice(0)) l();
    },
  });
  return { client, events, listeners, url, wire };
}

/** Whether the audit log says a rotated token was presented again. */
async function replayAudited(): Promise<boolean> {
  const audit = (await store?.listAudit(50)) ?? [];
  return audit.some((a) => a.kind === "revoked" && a.detail.includes(REUSED));
}

/**
 * Closes `closables`, waits until the server has seen every connection close (it notices
 * asynchronously), then asserts it kept nothing: empty tables on the connections that were open,
 * no login, an idle broker, no per-user service state.
 */
async function closeAndExpectNoLeaks(...closables: Array<{ close(): void }>): Promise<void> {
  const s = server as BrokerServer;
  const open = [...s.connections];
  for (const c of closables) c.close();
  await waitFor(() => {
    expect(s.connections.size).toBe(0);
    expect(s.broker.liveIdentities).toBe(0);
    expect(s.broker.idle).toBe(true);
  });
  for (const c of open) expect(c.stats()).toEqual(EMPTY_STATS);
  for (const name of ["lobby", "wallet", "broker"]) {
    const service = s.broker.service(name);
    if (service instanceof PerUserService) {
      expect({ service: name, users: service.userCount, attached: service.attachmentCount }).toEqual({
        service: name,
        users: 0,
        attached: 0,
      });
    }
  }
}

describe("ReconnectingClient", () => {
  it("resumes after a dropped connection and re-attaches its perspectives", async () => {
    const { client, events, listeners } = await setup();
    await client.start();
    const member = await client.attach(LOBBY_MEMBER);
    expect((await member.current.hello()).greeting).toBe("hello, alice");
    const reattached = new Promise<LobbyMember>((resolve) => member.onReattach(resolve));
    dropAll();
    await nextEvent(events, (e) => e.type === "disconnected", listeners);
    const fresh = await reattached;
    expect(await nextEvent(events, resumed, listeners)).toMatchObject({ resumed: true });
    expect((await fresh.hello()).greeting).toBe("hello, alice");
    expect((await client.identity.whoami()).info.grant).toBe(GRANT);
    await closeAndExpectNoLeaks(client);
  });

  it("survives two drops in a row: each resume presents the token the one before it answered", async () => {
    const { client, events, listeners, wire } = await setup();
    await client.start();
    const member = await client.attach(LOBBY_MEMBER);
    expect(wire.received).toHaveLength(1);
    for (const drop of [1, 2]) {
      dropAll();
      // the outcome of this drop's reconnect: resumed, or failed (which would end the test here)
      const outcome = await nthEvent(events, (e) => resumed(e) || e.type === "failed", drop, listeners);
      expect(outcome).toEqual({ type: "connected", resumed: true });
      expect((await member.current.hello()).greeting).toBe("hello, alice");
    }
    expect(events.filter((e) => e.type === "failed")).toEqual([]);
    expect((await client.identity.whoami()).info.grant).toBe(GRANT);
    // Three tokens, each rotated from the one before; the client presented the issued one, then
    // the one the first resume answered (the issued one was spent by then).
    expect(new Set(wire.received).size).toBe(3);
    expect(wire.sent).toEqual([wire.received[0], wire.received[1]]);
    // The spent two are dead, the newest is live, and no token was presented twice.
    const now = Date.now();
    const [first, second, newest] = wire.received.map((t) => hashSecret(t));
    expect(await store?.findResumeToken(first as Uint8Array, now)).toBeUndefined();
    expect(await store?.findResumeToken(second as Uint8Array, now)).toBeUndefined();
    expect((await store?.findResumeToken(newest as Uint8Array, now))?.device).toBe("test laptop");
    expect(await replayAudited()).toBe(false);
    await closeAndExpectNoLeaks(client);
  });

  it("stops with a clear failure once someone else replays the token it spent: the replay ends the family", async () => {
    const { client, events, listeners, url, wire } = await setup();
    await client.start();
    await client.attach(LOBBY_MEMBER);
    dropAll();
    await nextEvent(events, resumed, listeners);
    const [spent] = wire.sent;
    // A copy of the token the client presented (and so spent) turns up elsewhere.
    const thief = await connect(url);
    const replay = await rejection(thief.bootstrap(Root).resume({ token: spent ?? "" }));
    expect(replay.code).toBe(ErrorCode.AUTH_FAILED);
    expect(await replayAudited()).toBe(true);
    // The client's newest token went with its family: its next resume fails, and it stops.
    dropAll();
    const failed = await nextEvent(events, (e) => e.type === "failed", listeners);
    expect(failed.type === "failed" && failed.error.code).toBe(ErrorCode.AUTH_FAILED);
    expect(failed.type === "failed" && failed.error.message).toContain("log in again");
    expect(wire.sent).toEqual([wire.received[0], wire.received[1]]);
    expect(() => client.identity).toThrow(expect.objectContaining({ code: ErrorCode.DISCONNECTED }));
    await closeAndExpectNoLeaks(client, thief);
  });

  it("stops with a clear failure when someone else resumed with its token first, whose rotated token dies too", async () => {
    const { client, events, listeners, url, wire } = await setup();
    await client.start();
    await client.attach(LOBBY_MEMBER);
    const [issued] = wire.received;
    const thief = await connect(url);
    const stolen = await thief.bootstrap(Root).resume({ token: issued ?? "" });
    expect((await stolen.identity.whoami()).info.name).toBe("alice");
    dropAll();
    const failed = await nextEvent(events, (e) => e.type === "failed", listeners);
    expect(failed.type === "failed" && failed.error.code).toBe(ErrorCode.AUTH_FAILED);
    expect(failed.type === "failed" && failed.error.message).toContain("log in again");
    // The client presented the token it was issued (spent by the thief): the family is gone.
    expect(wire.sent).toEqual([issued]);
    expect(await replayAudited()).toBe(true);
    const again = await connect(url);
    const dead = await rejection(again.bootstrap(Root).resume({ token: stolen.token }));
    expect(dead.code).toBe(ErrorCode.AUTH_FAILED);
    await closeAndExpectNoLeaks(client, thief, again);
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
    dropAll();
    const failed = await nextEvent(events, (e) => e.type === "failed", listeners);
    expect(failed.type === "failed" && failed.error.code).toBe(ErrorCode.AUTH_FAILED);
    expect(failed.type === "failed" && failed.error.message).toContain("log in again");
    expect(() => client.identity).toThrow(expect.objectContaining({ code: ErrorCode.DISCONNECTED }));
    await closeAndExpectNoLeaks(client, other);
  });

  it("comes back after reconnect attempts that failed: each attempt starts clean", async () => {
    let failures = 0;
    const { client, events, listeners } = await setup({ failConnects: () => failures-- > 0 });
    await client.start();
    const member = await client.attach(LOBBY_MEMBER);
    failures = 3;
    dropAll();
    expect(await nextEvent(events, resumed, listeners)).toEqual({ type: "connected", resumed: true });
    expect(
      events.filter((e) => e.type === "retrying").map((e) => e.type === "retrying" && e.attempt),
    ).toEqual([1, 2, 3]);
    expect((await member.current.hello()).greeting).toBe("hello, alice");
    // Connected for good: no disconnect after the resume.
    expect(events.filter((e) => e.type === "disconnected")).toHaveLength(1);
    await closeAndExpectNoLeaks(client);
  });

  it("tells every token it holds, and a new client starts by resuming with the newest (a page reload)", async () => {
    const tokens: Array<string | undefined> = [];
    const first = await setup({ tokens });
    await first.client.start();
    await first.client.attach(LOBBY_MEMBER);
    dropAll();
    await nextEvent(first.events, resumed, first.listeners);
    // Issued at start, rotated by the resume: the newest is the one the client holds.
    expect(tokens).toEqual([first.wire.received[0], first.wire.received[1]]);
    const newest = tokens.at(-1) as string;
    first.client.close();
    const after: Array<string | undefined> = [];
    const second = await setup({ resumeToken: newest, tokens: after });
    const identity = await second.client.start();
    expect((await identity.whoami()).info.grant).toBe(GRANT);
    expect(second.events).toEqual([{ type: "connected", resumed: true }]);
    expect(second.wire.sent).toEqual([newest]);
    expect(after).toEqual([second.wire.received[0]]);
    const member = await second.client.attach(LOBBY_MEMBER);
    expect((await member.current.hello()).greeting).toBe("hello, alice");
    // A spent token fails start at once, and no connection is left behind.
    const third = await setup({ resumeToken: first.wire.received[0] });
    const refused = await rejection(third.client.start());
    expect(refused.code).toBe(ErrorCode.AUTH_FAILED);
    await closeAndExpectNoLeaks(second.client, third.client);
  });

  it("tells undefined once resuming failed for good", async () => {
    const tokens: Array<string | undefined> = [];
    const { client, events, listeners, url } = await setup({ tokens });
    await client.start();
    const thief = await connect(url);
    await thief.bootstrap(Root).resume({ token: tokens[0] as string });
    dropAll();
    await nextEvent(events, (e) => e.type === "failed", listeners);
    expect(tokens).toEqual([expect.stringMatching(/^pxr_/), undefined]);
    await closeAndExpectNoLeaks(client, thief);
  });
});
