/**
 * The Go server through its capabilities (issue 11): challenge → game Viewable → moves → score;
 * the colour from the caller's Perspective; spectators read-only with their own chat; undo, dead
 * stones, clocks on the injected clock, the disconnect grace, games rebuilt after a restart; and
 * hostile input refused precisely, the game intact.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import Database from "better-sqlite3";
import type { GoService } from "../../../src/services/go/go-service.js";
import { GO_STORE, SqliteBrokerStore } from "../../../src/store/index.js";
import { Game, Illegal, Phase } from "../../../src/wire/gen/go.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { TempStores } from "../../store/fixtures.js";
import { type GoWorld, kindOf, makeGo, NINE, playAll, recorder } from "./go-harness.js";

let w: GoWorld | undefined;
let temp: TempStores | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
  temp?.cleanup();
  temp = undefined;
});

/** Black's stones (1,0) (0,1) (1,2), White's (2,0) (3,1) (2,2), a tenuki, White into the mouth, Black takes: a ko. */
const KO = ["1,0", "2,0", "0,1", "3,1", "1,2", "2,2", "8,8", "1,1", "2,1"];

describe("a game between two players", () => {
  it("is made from a challenge: listed, accepted once, the challenger told, both seated as agreed", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const carol = await w.user("carol");
    const { challenge, id } = await alice.player.challenge({ terms: NINE });
    const listed = (await bob.player.openChallenges()).challenges.toArray();
    expect(listed.map((c) => [c.id, c.challenger, c.terms.rules.size])).toEqual([[id, "alice", 9]]);
    const told = challenge.accepted();
    const { game } = await bob.player.accept({ id });
    const info = (await game.info()).info;
    expect([info.black, info.white, info.phase, info.moveCount]).toEqual(["alice", "bob", Phase.PLAYING, 0]);
    expect((await (await told).game.info()).info.id).toBe(info.id);
    // Taken: carol finds nothing to accept.
    expect((await rejection(carol.player.accept({ id }))).code).toBe(ErrorCode.NOT_FOUND);
    expect((await bob.player.openChallenges()).challenges.getLength()).toBe(0);
  });

  it("plays the caller's colour only: out of turn is refused, and nothing names a player", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    expect(kindOf((await g.white.move({ point: { x: 4, y: 4 } })).outcome)).toBe("illegal");
    const first = (await g.black.move({ point: { x: 4, y: 4 } })).outcome;
    expect(kindOf(first)).toBe("played");
    expect(first.played.number).toBe(1);
    // Alice again: it is Bob's turn, and Alice's Game plays only black.
    const again = (await g.black.move({ point: { x: 3, y: 3 } })).outcome;
    expect(again.illegal).toBe(Illegal.NOT_YOUR_TURN);
    expect((await g.black.board()).board.points[4 * 9 + 4]).toBe(1);
    expect((await g.black.info()).info.moveCount).toBe(1);
  });

  it("captures, refuses the immediate ko recapture, and allows it after a ko threat", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await playAll(g, KO.slice(0, -1));
    const take = (await g.black.move({ point: { x: 2, y: 1 } })).outcome;
    expect(take.played.captured.toArray().map((p) => [p.x, p.y])).toEqual([[1, 1]]);
    expect((await g.black.info()).info.blackCaptures).toBe(1);
    expect((await g.white.move({ point: { x: 1, y: 1 } })).outcome.illegal).toBe(Illegal.KO);
    await playAll({ black: g.white, white: g.black }, ["7,7", "6,6"]);
    expect(kindOf((await g.white.move({ point: { x: 1, y: 1 } })).outcome)).toBe("played");
  });

  it("takes back a move when the opponent accepts, once per request, and refuses a second request while one waits", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "3,3", "2,2"]);
    expect(kindOf((await g.black.requestUndo()).outcome)).toBe("ended");
    expect((await g.black.requestUndo()).outcome.illegal).toBe(Illegal.UNDO_PENDING);
    expect((await g.black.answerUndo({ accept: true })).outcome.illegal).toBe(Illegal.NO_UNDO_PENDING);
    await g.white.answerUndo({ accept: true });
    const info = (await g.black.info()).info;
    expect([info.moveCount, info.toMove]).toEqual([2, 0]);
    expect((await g.black.board()).board.points[2 * 9 + 2]).toBe(0);
    expect((await g.black.moves({ from: 0, count: 10 })).moves.getLength()).toBe(2);
    // Refused: not again until a move is made.
    await g.black.move({ point: { x: 5, y: 5 } });
    await g.black.requestUndo();
    await g.white.answerUndo({ accept: false });
    expect((await g.black.requestUndo()).outcome.illegal).toBe(Illegal.TOO_EARLY);
    // White's last move has Black's reply after it: accepting takes back both.
    expect(kindOf((await g.white.requestUndo()).outcome)).toBe("ended");
    await g.black.answerUndo({ accept: true });
    expect((await g.white.moves({ from: 0, count: 10 })).moves.toArray().map((m) => m.number)).toEqual([1]);
    expect((await g.white.info()).info.toMove).toBe(1);
    const fresh = await w.game(alice, bob);
    expect((await fresh.black.requestUndo()).outcome.illegal).toBe(Illegal.NOTHING_TO_UNDO);
  });

  it("stops at two passes for dead stones; a marking change withdraws acceptance; both accepting ends it with the score", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.white.listen({ listener: seen.listener });
    // Black walls off columns 0..3 with column 3, White columns 5..8 with column 5; then a black
    // stone at (1,1) and a lone white invader at (1,4), dead inside Black's area.
    const moves: string[] = [];
    for (let y = 0; y < 9; y++) moves.push(`3,${y}`, `5,${y}`);
    await playAll(g, [...moves, "1,1", "1,4"]);
    await playAll(g, ["pass", "pass"]);
    expect((await g.black.info()).info.phase).toBe(Phase.SCORING);
    expect(kindOf((await g.black.move({ point: { x: 4, y: 4 } })).outcome)).toBe("illegal");
    await g.black.acceptScore();
    await g.white.markDead({ point: { x: 1, y: 4 }, dead: true });
    // The marking changed after black accepted: one more acceptance does not end it.
    expect(kindOf((await g.white.acceptScore()).outcome)).toBe("ended");
    expect((await g.black.info()).info.phase).toBe(Phase.SCORING);
    const ended = (await g.black.acceptScore()).outcome;
    expect(kindOf(ended)).toBe("ended");
    // Black: 4 columns (0..3) × 9 = 36 points; White: columns 5..8 = 36, column 4 is dame; komi 6.5.
    expect(ended.ended).toBe("W+6.5");
    expect((await g.black.info()).info.result).toBe("W+6.5");
    await waitFor(() => expect(seen.ended).toEqual(["W+6.5"]));
    expect(seen.kinds).toContain("scoring");
  });

  it("goes back to play from scoring when a player resumes, and a resign ends it at once", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "pass", "pass"]);
    await g.black.resume();
    expect((await g.black.info()).info.phase).toBe(Phase.PLAYING);
    // White passed first: after the resume it is White's move again.
    expect(kindOf((await g.white.move({ point: { x: 2, y: 2 } })).outcome)).toBe("played");
    expect((await g.white.resign()).outcome.ended).toBe("B+R");
    expect((await g.black.move({ point: { x: 3, y: 3 } })).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await alice.player.games({ includeFinished: false })).games.getLength()).toBe(0);
    expect((await alice.player.games({ includeFinished: true })).games.toArray()[0]?.result).toBe("B+R");
  });
});

describe("spectators", () => {
  it("read the game and follow it, but hold no move: Game's method ids answer unimplemented", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const carol = await w.user("carol");
    const g = await w.game(alice, bob);
    const { spectator } = await carol.player.watch({ id: g.id });
    const seen = recorder();
    await spectator.listen({ listener: seen.listener });
    await g.black.move({ point: { x: 2, y: 6 } });
    await waitFor(() => expect(seen.kinds).toEqual(["moved"]));
    expect((await spectator.board()).board.points[6 * 9 + 2]).toBe(1);
    const forged = spectator.castAs(Game);
    expect((await rejection(forged.move({ point: { x: 0, y: 0 } }))).code).toBe(ErrorCode.UNIMPLEMENTED);
    expect((await rejection(forged.resign())).code).toBe(ErrorCode.UNIMPLEMENTED);
    expect((await g.black.info()).info.moveCount).toBe(1);
    // Nor can carol get a player's hold on a game she does not play.
    expect((await rejection(carol.player.game({ id: g.id }))).code).toBe(ErrorCode.NOT_FOUND);
  });

  it("chat among themselves: players never hear or read spectators' lines; everyone hears players", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const carol = await w.user("carol");
    const dave = await w.user("dave");
    const g = await w.game(alice, bob);
    const c = (await carol.player.watch({ id: g.id })).spectator;
    const d = (await dave.player.watch({ id: g.id })).spectator;
    const heard = { alice: recorder(), carol: recorder(), dave: recorder() };
    await g.black.listen({ listener: heard.alice.listener });
    await c.listen({ listener: heard.carol.listener });
    await d.listen({ listener: heard.dave.listener });
    await c.say({ text: "black should play tengen" });
    await g.white.say({ text: "good luck" });
    // Alice watching her own game through a Spectator is still a player.
    const own = (await alice.player.watch({ id: g.id })).spectator;
    await waitFor(() =>
      expect(heard.dave.chat).toEqual(["carol: black should play tengen", "bob: good luck"]),
    );
    expect(heard.carol.chat).toEqual(heard.dave.chat);
    expect(heard.alice.chat).toEqual(["bob: good luck"]);
    expect((await own.chat({ count: 10 })).lines.toArray().map((l) => l.text)).toEqual(["good luck"]);
    expect((await d.chat({ count: 10 })).lines.getLength()).toBe(2);
  });
});

describe("clocks", () => {
  it("end the game on time when the flag falls, on the injected clock, and refuse a late move", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob, {
      ...NINE,
      time: { system: 2, mainSeconds: 10, periods: 1, periodSeconds: 5 },
    });
    const seen = recorder();
    await g.black.listen({ listener: seen.listener });
    w.h.clock.advance(9_000);
    await g.black.move({ point: { x: 4, y: 4 } });
    const clocks = (await g.black.clocks()).clocks;
    expect([clocks.black.mainMs, clocks.white.running]).toEqual([1000n, true]);
    // White thinks 10 s main + the 5 s period: the flag falls at 15 s.
    w.h.clock.advance(14_999);
    expect((await g.white.info()).info.phase).toBe(Phase.PLAYING);
    w.h.clock.advance(1);
    await waitFor(() => expect(seen.ended).toEqual(["B+T"]));
    expect((await g.white.move({ point: { x: 3, y: 3 } })).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await g.white.info()).info.result).toBe("B+T");
  });
});

describe("clocks, each system through the service", () => {
  // Black moves at once; white thinks. `flag` is when white's flag falls after black's first move
  // (ms after it), `survives` a think white may take and still move in time.
  const cases = [
    { name: "absolute 30 s", time: { system: 1, mainSeconds: 30 }, survives: 29_999, flag: 30_000 },
    {
      name: "byo-yomi 10 s + 3×5 s",
      time: { system: 2, mainSeconds: 10, periods: 3, periodSeconds: 5 },
      survives: 24_999,
      flag: 25_000,
    },
    {
      name: "Canadian 10 s, then 2 stones in 20 s",
      time: { system: 3, mainSeconds: 10, stonesPerPeriod: 2, periodSeconds: 20 },
      survives: 29_999,
      flag: 30_000,
    },
    {
      name: "Fischer 20 s + 5 s, capped at 22 s",
      time: { system: 4, mainSeconds: 20, incrementSeconds: 5, maxSeconds: 22 },
      survives: 19_999,
      flag: 20_000,
    },
    { name: "simple 15 s a move", time: { system: 5, perMoveSeconds: 15 }, survives: 14_999, flag: 15_000 },
  ] as const;

  for (const c of cases) {
    it(`${c.name}: white moves at ${c.survives} ms, and loses on time at exactly ${c.flag} ms`, async () => {
      const world = await makeGo();
      w = world;
      const alice = await world.user("alice");
      const bob = await world.user("bob");
      const first = await world.game(alice, bob, { ...NINE, time: c.time });
      await first.black.move({ point: { x: 0, y: 0 } });
      world.h.clock.advance(c.survives);
      expect(kindOf((await first.white.move({ point: { x: 8, y: 8 } })).outcome)).toBe("played");
      // A second game on the same terms: white's think reaches the flag.
      const second = await world.game(alice, bob, { ...NINE, time: c.time });
      const seen = recorder();
      await second.black.listen({ listener: seen.listener });
      await second.black.move({ point: { x: 0, y: 0 } });
      world.h.clock.advance(c.flag - 1);
      expect((await second.white.info()).info.phase).toBe(Phase.PLAYING);
      world.h.clock.advance(1);
      await waitFor(() => expect(seen.ended).toEqual(["B+T"]));
      expect((await second.white.move({ point: { x: 8, y: 8 } })).outcome.illegal).toBe(Illegal.GAME_OVER);
    });
  }

  it("Fischer adds the increment after each move, never above the cap", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob, {
      ...NINE,
      time: { system: 4, mainSeconds: 20, incrementSeconds: 5, maxSeconds: 22 },
    });
    w.h.clock.advance(1_000);
    await g.black.move({ point: { x: 0, y: 0 } });
    // 20 − 1 + 5 = 24, capped at 22.
    expect((await g.black.clocks()).clocks.black.mainMs).toBe(22_000n);
    w.h.clock.advance(10_000);
    await g.white.move({ point: { x: 8, y: 8 } });
    expect((await g.black.clocks()).clocks.white.mainMs).toBe(15_000n);
  });
});

describe("disconnects", () => {
  it("give the dropped player a grace period; after it the opponent may claim the win", async () => {
    w = await makeGo({ graceMs: 30_000 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await g.black.move({ point: { x: 4, y: 4 } });
    expect((await g.black.claimWin()).outcome.illegal).toBe(Illegal.NOT_DISCONNECTED);
    const seen = recorder();
    await g.black.listen({ listener: seen.listener });
    bob.close();
    await waitFor(() => expect(seen.kinds).toContain("disconnected"));
    w.h.clock.advance(29_999);
    expect((await g.black.claimWin()).outcome.illegal).toBe(Illegal.TOO_EARLY);
    // Bob comes back within the grace: the same game, board and turn.
    const again = await w.login("bob");
    const back = (await again.player.game({ id: g.id })).game;
    await waitFor(() => expect(seen.kinds).toContain("reconnected"));
    expect((await back.board()).board.points[4 * 9 + 4]).toBe(1);
    expect(kindOf((await back.move({ point: { x: 3, y: 3 } })).outcome)).toBe("played");
    again.close();
    await waitFor(() => expect(seen.kinds.filter((k) => k === "disconnected")).toHaveLength(2));
    w.h.clock.advance(30_000);
    expect((await g.black.claimWin()).outcome.ended).toBe("B+F");
  });
});

describe("persistence", () => {
  it("rebuilds every game from the store after a restart: board, turn, captures, clock", async () => {
    temp = new TempStores();
    const file = temp.file;
    const open = () => SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    let store = open();
    w = await makeGo({}, { store });
    let alice = await w.user("alice");
    let bob = await w.user("bob");
    const g = await w.game(alice, bob, { ...NINE, time: { system: 1, mainSeconds: 600 } });
    await playAll(g, KO);
    const before = (await g.black.board()).board;
    await w.h.close();
    store.close();
    store = open();
    w = await makeGo({}, { store });
    alice = await w.login("alice");
    bob = await w.login("bob");
    const black = (await alice.player.game({ id: g.id })).game;
    const white = (await bob.player.game({ id: g.id })).game;
    const after = (await black.board()).board;
    expect([...after.points]).toEqual([...before.points]);
    expect([after.toMove, after.moveCount, after.hasKo]).toEqual([before.toMove, 9, true]);
    expect((await black.info()).info.blackCaptures).toBe(1);
    // The ko is still a ko after the restart.
    expect((await white.move({ point: { x: 1, y: 1 } })).outcome.illegal).toBe(Illegal.KO);
    await w.h.close();
    w = undefined;
    store.close();
  });
});

describe("memory", () => {
  it("lets a finished game go and rebuilds it when asked for, result and moves intact", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "3,3"]);
    await g.black.resign();
    const service = w.h.broker.service("go") as GoService;
    const aliceId = (await w.h.store.findIdentityByName("alice"))?.id ?? -1;
    expect([...service.gamesOf(aliceId)]).toEqual([]);
    const again = (await alice.player.game({ id: g.id })).game;
    const info = (await again.info()).info;
    expect([info.result, info.moveCount, info.phase]).toEqual(["W+R", 2, Phase.FINISHED]);
  });

  it("loads every other game when one stored game cannot be replayed", async () => {
    temp = new TempStores();
    const file = temp.file;
    let store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    w = await makeGo({}, { store });
    let alice = await w.user("alice");
    const bob = await w.user("bob");
    const broken = await w.game(alice, bob);
    await playAll(broken, ["4,4", "3,3"]);
    const fine = await w.game(alice, bob, { ...NINE, time: { system: 1, mainSeconds: 60 } });
    await playAll(fine, ["4,4"]);
    await w.h.close();
    store.close();
    // Someone edits the file: the broken game's second move lands on the first one's point.
    const db = new Database(file);
    db.prepare("UPDATE go_moves SET x = 4, y = 4 WHERE game_id = ? AND number = 2").run(Number(broken.id));
    db.close();
    store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    w = await makeGo({}, { store });
    await (w.h.broker.service("go") as GoService).ready;
    // The good game was loaded at start and its clock armed, though nobody asked for it: white's
    // minute runs out with no one connected.
    w.h.clock.advance(60_000);
    const games = w.h.store.repository(GO_STORE);
    await waitFor(async () => expect((await games?.getGame(Number(fine.id)))?.result).toBe("B+T"));
    alice = await w.login("alice");
    expect((await rejection(alice.player.game({ id: broken.id }))).code).toBe(ErrorCode.STORAGE);
    expect((await (await alice.player.game({ id: fine.id })).game.info()).info.result).toBe("B+T");
    await w.h.close();
    w = undefined;
    store.close();
  });
});

describe("hostile input", () => {
  it("is refused precisely and leaves the game intact", async () => {
    w = await makeGo({ chatLinesPerMinute: 3 });
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    await expect(alice.player.challenge({ terms: { ...NINE, rules: { size: 30 } } })).rejects.toMatchObject({
      code: ErrorCode.BAD_ARGUMENT,
    });
    await expect(
      alice.player.challenge({ terms: { ...NINE, rules: { size: 9, komi: 0.3 } } }),
    ).rejects.toMatchObject({ code: ErrorCode.BAD_ARGUMENT });
    await expect(
      alice.player.challenge({
        terms: { ...NINE, time: { system: 2, mainSeconds: 1, periods: 1000, periodSeconds: 1 } },
      }),
    ).rejects.toMatchObject({ code: ErrorCode.BAD_ARGUMENT });
    await expect(alice.player.challenge({ terms: { ...NINE, opponent: "nobody" } })).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    const g = await w.game(alice, bob);
    const off = await rejection(g.black.move({ point: { x: 9, y: 0 } }));
    expect([off.code, off.message]).toEqual([
      ErrorCode.BAD_ARGUMENT,
      expect.stringContaining("off the 9×9 board"),
    ]);
    expect((await rejection(g.black.say({ text: "x".repeat(501) }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    for (let i = 0; i < 3; i++) await g.black.say({ text: `line ${i}` });
    expect((await rejection(g.black.say({ text: "flood" }))).code).toBe(ErrorCode.QUOTA);
    w.h.clock.advance(60_000);
    await g.black.say({ text: "a minute later" });
    expect((await g.black.markDead({ point: { x: 0, y: 0 }, dead: true })).outcome.illegal).toBe(
      Illegal.NOT_SCORING,
    );
    for (let i = 0; i < 5; i++) await alice.player.challenge({ terms: NINE }).catch(() => {});
    expect((await rejection(alice.player.challenge({ terms: NINE }))).code).toBe(ErrorCode.QUOTA);
    expect((await g.black.info()).info.moveCount).toBe(0);
    expect(kindOf((await g.black.move({ point: { x: 0, y: 0 } })).outcome)).toBe("played");
  });
});
