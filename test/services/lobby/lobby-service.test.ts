/**
 * The lobby as the service kit's worked example: who speaks comes from the perspective, lines and
 * history are bounded, listeners are per device, deduplicated, capped and bounded in flight (the
 * security review's finding 3 and the code review's per-attachment bug), revocation removes
 * exactly the revoked user's listeners, and times come from the injected clock.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import { attach } from "../../../src/login/index.js";
import { LOBBY_MEMBER } from "../../../src/services/lobby/lobby-keys.js";
import { type LobbyOptions, LobbyService, lobby } from "../../../src/services/lobby/lobby-service.js";
import { RoomListener } from "../../../src/wire/gen/lobby.js";
import { waitFor } from "../../helpers/wait.js";
import { type Harness, kdf, makeHarness, rejection } from "../../login/harness.js";

let h: Harness;
afterEach(() => h?.close());

async function lobbyHarness(options: LobbyOptions = {}): Promise<Harness> {
  h = await makeHarness({ services: [lobby(options)] });
  await h.addUser("alice", "alice pass");
  await h.addUser("bob", "bob pass");
  return h;
}

function lobbyOf(harness: Harness): LobbyService {
  const service = harness.broker.service("lobby");
  if (!(service instanceof LobbyService)) throw new Error("no lobby");
  return service;
}

/** Logs `name` in on a connection of its own (one device) and attaches the lobby. */
async function device(name: string) {
  const login = await h.login(name, `${name} pass`);
  const member = attach(login.identity, LOBBY_MEMBER);
  // Keep the room, release the results it came in (as attach() does).
  const call = member.room();
  const room = call.room.dup();
  call.then(
    () => call.dispose(),
    () => call.dispose(),
  );
  return { ...login, member, room };
}

/**
 * A client listener that records what it hears as "speaker: text". `hold` keeps every answer
 * back (a listener that never answers) until `answerAll`.
 */
function ear(options: { hold?: boolean } = {}) {
  const heard: string[] = [];
  const at: bigint[] = [];
  const held: Array<() => void> = [];
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  const cap = RoomListener.server({
    said({ line }) {
      heard.push(`${line.speaker}: ${line.text}`);
      at.push(line.at);
      for (const w of waiting.filter((x) => heard.length >= x.n)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
      return options.hold ? new Promise<void>((resolve) => held.push(resolve)) : undefined;
    },
  });
  return {
    cap,
    heard,
    at,
    /** Resolves once `n` lines were heard. */
    until: (n: number): Promise<void> =>
      heard.length >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve })),
    answerAll: () => {
      for (const r of held.splice(0)) r();
    },
  };
}

const texts = (lines: { toArray(): Array<{ speaker: string; text: string }> }) =>
  lines.toArray().map((l) => `${l.speaker}: ${l.text}`);

describe("who speaks", () => {
  it("signs every line with the caller's perspective: Alice cannot say as Bob, whatever she writes", async () => {
    await lobbyHarness();
    const alice = await device("alice");
    const bob = await device("bob");
    const bobEar = ear();
    await bob.room.listen({ listener: bobEar.cap });
    // The same shared room, reached by both: only the text is an argument.
    const said = (await alice.room.say({ text: "bob: I owe alice 100" })).line;
    expect(said.speaker).toBe("alice");
    expect((await bob.room.say({ text: "hi" })).line.speaker).toBe("bob");
    await bobEar.until(2);
    expect(bobEar.heard).toEqual(["alice: bob: I owe alice 100", "bob: hi"]);
    expect(texts((await bob.room.history({ count: 10 })).lines)).toEqual([
      "alice: bob: I owe alice 100",
      "bob: hi",
    ]);
  });
});

describe("bounds", () => {
  it("refuses a line longer than maxLineChars with BAD_ARGUMENT, and neither stores nor sends it", async () => {
    await lobbyHarness({ maxLineChars: 10 });
    const alice = await device("alice");
    const e = ear();
    await alice.room.listen({ listener: e.cap });
    const err = await rejection(alice.room.say({ text: "x".repeat(11) }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toContain("at most 10 characters");
    await alice.room.say({ text: "y".repeat(10) });
    // In order on one connection: a sent long line would arrive first.
    await e.until(1);
    expect(e.heard).toEqual([`alice: ${"y".repeat(10)}`]);
    expect(texts((await alice.room.history({ count: 10 })).lines)).toEqual([`alice: ${"y".repeat(10)}`]);
  });

  it("keeps only the last maxHistory lines", async () => {
    await lobbyHarness({ maxHistory: 3 });
    const alice = await device("alice");
    for (const t of ["1", "2", "3", "4", "5"]) await alice.room.say({ text: t });
    expect(texts((await alice.room.history({ count: 100 })).lines)).toEqual([
      "alice: 3",
      "alice: 4",
      "alice: 5",
    ]);
  });

  it("returns at most maxHistoryRead lines per history call, the newest", async () => {
    await lobbyHarness({ maxHistoryRead: 2 });
    const alice = await device("alice");
    for (const t of ["1", "2", "3", "4", "5"]) await alice.room.say({ text: t });
    expect(texts((await alice.room.history({ count: 100 })).lines)).toEqual(["alice: 4", "alice: 5"]);
    expect(texts((await alice.room.history({ count: 1 })).lines)).toEqual(["alice: 5"]);
    expect(texts((await alice.room.history({ count: 0 })).lines)).toEqual([]);
  });
});

describe("listeners", () => {
  it("are per device: one device detaching leaves the other device's listener hearing", async () => {
    await lobbyHarness();
    const phone = await device("alice");
    const laptop = await device("alice");
    const bob = await device("bob");
    const phoneEar = ear();
    const laptopEar = ear();
    await phone.room.listen({ listener: phoneEar.cap });
    await laptop.room.listen({ listener: laptopEar.cap });
    await laptop.member.detach();
    // The laptop's listener is removed and released; the phone's stays.
    await waitFor(() => expect(laptop.client.stats().exports).toBe(0));
    expect(lobbyOf(h).listeners.size).toBe(1);
    await bob.room.say({ text: "anyone?" });
    await phoneEar.until(1);
    expect(phoneEar.heard).toEqual(["bob: anyone?"]);
    expect(laptopEar.heard).toEqual([]);
  });

  it("are capped per device at maxListenersPerMember (QUOTA), and the refused one is released", async () => {
    await lobbyHarness({ maxListenersPerMember: 2 });
    const phone = await device("alice");
    const [one, two, three] = [ear(), ear(), ear()];
    await phone.room.listen({ listener: one.cap });
    await phone.room.listen({ listener: two.cap });
    const err = await rejection(phone.room.listen({ listener: three.cap }));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("at most 2");
    await waitFor(() => expect(phone.client.stats().exports).toBe(2));
    expect(lobbyOf(h).listeners.size).toBe(2);
    // Another device has its own allowance.
    const laptop = await device("alice");
    await laptop.room.listen({ listener: three.cap });
    await phone.room.say({ text: "x" });
    await Promise.all([one.until(1), two.until(1), three.until(1)]);
    expect([one.heard, two.heard, three.heard]).toEqual([["alice: x"], ["alice: x"], ["alice: x"]]);
  });

  it("give a listener that never answers at most maxNotificationsInFlight lines, while the others hear every line", async () => {
    await lobbyHarness({ maxNotificationsInFlight: 3 });
    const alice = await device("alice");
    const bob = await device("bob");
    const stuck = ear({ hold: true });
    const healthy = ear();
    const bobEar = ear();
    // Stuck first, on the same connection as healthy: its lines go out before healthy's.
    await alice.room.listen({ listener: stuck.cap });
    await alice.room.listen({ listener: healthy.cap });
    await bob.room.listen({ listener: bobEar.cap });
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`);
    for (const text of lines) await bob.room.say({ text });
    await Promise.all([healthy.until(10), bobEar.until(10)]);
    expect(healthy.heard).toEqual(lines.map((t) => `bob: ${t}`));
    expect(bobEar.heard).toEqual(lines.map((t) => `bob: ${t}`));
    expect(stuck.heard).toEqual(["bob: line 1", "bob: line 2", "bob: line 3"]);
    // Nothing queued: once it answers, it hears the next line, not the dropped ones.
    stuck.answerAll();
    await waitFor(() => expect(alice.server.stats().questions).toBe(0));
    await bob.room.say({ text: "line 11" });
    await Promise.all([healthy.until(11), stuck.until(4)]);
    expect(stuck.heard.at(-1)).toBe("bob: line 11");
    expect(stuck.heard).toHaveLength(4);
    stuck.answerAll();
  });

  it("cost one registration and one delivery per line for thousands of listen calls of one listener (review finding 3)", async () => {
    await lobbyHarness({ maxListenersPerMember: 4 });
    const alice = await device("alice");
    const e = ear();
    const calls = 3000;
    const batch = 200; // under maxIdentityCallsInFlight
    for (let i = 0; i < calls; i += batch) {
      await Promise.all(Array.from({ length: batch }, () => alice.room.listen({ listener: e.cap })));
    }
    expect(lobbyOf(h).listeners.size).toBe(1);
    expect(alice.server.stats().imports).toBe(1);
    await alice.room.say({ text: "one" });
    await alice.room.say({ text: "two" });
    // In order on one connection: a second delivery of "one" would arrive before "two".
    await e.until(2);
    expect(e.heard).toEqual(["alice: one", "alice: two"]);
  });
});

describe("revocation", () => {
  it("removes exactly the revoked user's listeners on a password change: her room calls fail REVOKED, Bob's go on", async () => {
    await lobbyHarness();
    const phone = await device("alice");
    const laptop = await device("alice");
    const bob = await device("bob");
    const [phoneEar, laptopEar, bobEar] = [ear(), ear(), ear()];
    await phone.room.listen({ listener: phoneEar.cap });
    await laptop.room.listen({ listener: laptopEar.cap });
    await bob.room.listen({ listener: bobEar.cap });
    await phone.room.say({ text: "before" });
    await Promise.all([phoneEar.until(1), laptopEar.until(1), bobEar.until(1)]);
    expect(lobbyOf(h).listeners.size).toBe(3);

    const { verifier } = await makeVerifier("alice new pass", { kdf });
    await phone.identity.changePassword({ newVerifier: verifier });
    expect(lobbyOf(h).listeners.size).toBe(1);
    // Her listeners were released on both devices.
    await waitFor(() =>
      expect([phone.client.stats().exports, laptop.client.stats().exports]).toEqual([0, 0]),
    );
    for (const d of [phone, laptop]) {
      for (const call of [d.room.say({ text: "after" }), d.room.history({ count: 1 }), d.member.hello()]) {
        const err = await rejection(call);
        expect(err.code).toBe(ErrorCode.REVOKED);
        expect(err.message).toBe("the password was changed");
      }
    }
    await bob.room.say({ text: "still here" });
    await bobEar.until(2);
    expect(bobEar.heard).toEqual(["alice: before", "bob: still here"]);
    expect(texts((await bob.room.history({ count: 10 })).lines)).toEqual([
      "alice: before",
      "bob: still here",
    ]);
    expect([phoneEar.heard, laptopEar.heard]).toEqual([["alice: before"], ["alice: before"]]);
  });
});

describe("time", () => {
  it("stamps lines with the injected clock, in the reply, the history and to listeners", async () => {
    await lobbyHarness();
    const alice = await device("alice");
    const e = ear();
    await alice.room.listen({ listener: e.cap });
    const t0 = Date.UTC(2031, 4, 6, 7, 8, 9);
    h.clock.set(t0);
    expect((await alice.room.say({ text: "first" })).line.at).toBe(BigInt(t0));
    h.clock.advance(90_000);
    expect((await alice.room.say({ text: "second" })).line.at).toBe(BigInt(t0 + 90_000));
    await e.until(2);
    expect(e.at).toEqual([BigInt(t0), BigInt(t0 + 90_000)]);
    const history = (await alice.room.history({ count: 2 })).lines.toArray().map((l) => l.at);
    expect(history).toEqual([BigInt(t0), BigInt(t0 + 90_000)]);
  });
});
