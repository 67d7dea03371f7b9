/**
 * Hostile tests of the Go server (issue 11): players reaching for the other colour, spectators
 * reaching past read-only, revoked logins, concurrent operations on one game, clocks on the
 * injected clock, the disconnect grace, undo floods, handicap misuse, malformed terms, giant or
 * malformed reads and chat, restarts and store failures. Every test is a leak test (`h.close()`).
 *
 * The tests whose comment starts "Was a bug" were written `it.fails` by the review that found
 * them; they pass since the fix (the comment keeps the cause as it was found).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import { attach } from "../../../src/login/index.js";
import { GO_PLAYER } from "../../../src/services/go/go-keys.js";
import { type GoService, LiveGame } from "../../../src/services/go/go-service.js";
import { GO_STORE, type GoStore, SqliteBrokerStore } from "../../../src/store/index.js";
import {
  type ChallengeTerms$Shape,
  type ColorChoice,
  Game,
  GameListener,
  Illegal,
  type KoRule,
  Phase,
  type Scoring,
  TimeSystem,
} from "../../../src/wire/gen/go.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";
import { TempStores } from "../../store/fixtures.js";
import { type GoUser, type GoWorld, kindOf, makeGo, NINE, playAll, recorder } from "./go-harness.js";

let w: GoWorld | undefined;
let temp: TempStores | undefined;
let stores: SqliteBrokerStore[] = [];
afterEach(async () => {
  await w?.h.close();
  w = undefined;
  for (const s of stores) s.close();
  stores = [];
  temp?.cleanup();
  temp = undefined;
});

/** A broker on a store file that can be stopped and started again (a restart). */
async function onFile(options: Parameters<typeof makeGo>[0] = {}) {
  temp = new TempStores();
  const file = temp.file;
  const open = () => {
    const s = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    stores.push(s);
    return s;
  };
  let store = open();
  w = await makeGo({ engines: {}, ...options }, { store });
  return {
    world: w,
    /** Closes the broker (a leak test) and its store, and starts a new one on the same file. */
    async restart(): Promise<GoWorld> {
      await w?.h.close();
      store.close();
      store = open();
      w = await makeGo({ engines: {}, ...options }, { store });
      return w;
    },
  };
}

/** A world with no engines (nothing spawns), and the usual pair. */
async function world(options: Parameters<typeof makeGo>[0] = {}) {
  w = await makeGo({ engines: {}, ...options });
  const alice = await w.user("alice");
  const bob = await w.user("bob");
  return { w, alice, bob };
}

const service = (world: GoWorld): GoService => world.h.broker.service("go") as GoService;

async function liveGame(world: GoWorld, id: bigint): Promise<LiveGame> {
  const g = await service(world).live(Number(id));
  if (!(g instanceof LiveGame)) throw new Error(`no live game ${id}`);
  return g;
}

const goStore = (world: GoWorld): GoStore => {
  const s = world.h.store.repository(GO_STORE);
  if (s === undefined) throw new Error("no go store");
  return s;
};

async function changePassword(user: GoUser, password: string): Promise<void> {
  const { verifier } = await makeVerifier(password, { kdf });
  await user.identity.changePassword({ newVerifier: verifier });
}

const timed = (time: ChallengeTerms$Shape["time"]): ChallengeTerms$Shape => ({ ...NINE, time });

describe("acting for the other colour", () => {
  it("fails through every reference Alice holds: the challenge's game, game(), a pipelined game(), watch()", async () => {
    const { w, alice, bob } = await world();
    const { challenge, id } = await alice.player.challenge({ terms: NINE });
    const told = challenge.accepted();
    const { game: bobs } = await bob.player.accept({ id });
    const viaChallenge = (await told).game;
    const gid = (await bobs.info()).info.id;
    const viaGame = (await alice.player.game({ id: gid })).game;
    const pipelined = alice.player.game({ id: gid }).game;
    const watched = (await alice.player.watch({ id: gid })).spectator;
    await viaGame.move({ point: { x: 4, y: 4 } });
    // White to move: every hold Alice has plays black, so each is out of turn.
    for (const g of [viaChallenge, viaGame, pipelined]) {
      expect((await g.move({ point: { x: 3, y: 3 } })).outcome.illegal).toBe(Illegal.NOT_YOUR_TURN);
      expect((await g.pass()).outcome.illegal).toBe(Illegal.NOT_YOUR_TURN);
    }
    // The Spectator she got from watch() of her own game has no Game methods at all.
    const forged = watched.castAs(Game);
    for (const call of [
      () => forged.move({ point: { x: 3, y: 3 } }),
      () => forged.pass(),
      () => forged.resign(),
      () => forged.requestUndo(),
      () => forged.answerUndo({ accept: true }),
      () => forged.claimWin(),
      () => forged.score(),
      () => forged.placeHandicap({ points: [] }),
    ]) {
      expect((await rejection(call())).code).toBe(ErrorCode.UNIMPLEMENTED);
    }
    // Alice cannot answer her own undo request as if she were Bob.
    await viaGame.requestUndo();
    expect((await pipelined.answerUndo({ accept: true })).outcome.illegal).toBe(Illegal.NO_UNDO_PENDING);
    const info = (await bobs.info()).info;
    expect([info.moveCount, info.toMove, info.phase]).toEqual([1, 1, Phase.PLAYING]);
    expect(kindOf((await bobs.move({ point: { x: 3, y: 3 } })).outcome)).toBe("played");
    void w;
  });

  it("gives a spectator nothing of a player's: no Game by id or pipelined, no score, no players-only reads", async () => {
    const { w, alice, bob } = await world();
    const carol = await w.user("carol");
    const g = await w.game(alice, bob);
    await g.black.say({ text: "players' line" });
    const spectator = (await carol.player.watch({ id: g.id })).spectator;
    expect((await rejection(carol.player.game({ id: g.id }).game.move({ point: { x: 0, y: 0 } }))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect((await rejection(spectator.castAs(Game).score())).code).toBe(ErrorCode.UNIMPLEMENTED);
    expect((await rejection(spectator.castAs(Game).claimWin())).code).toBe(ErrorCode.UNIMPLEMENTED);
    // Carol reads the players' chat (it is public), and her line stays among spectators.
    await spectator.say({ text: "spectators' line" });
    expect(
      (await spectator.chat({ count: 10 })).lines.toArray().map((l) => [l.speaker, l.spectator]),
    ).toEqual([
      ["alice", false],
      ["carol", true],
    ]);
    expect((await g.white.chat({ count: 10 })).lines.toArray().map((l) => l.text)).toEqual(["players' line"]);
    expect((await g.black.info()).info.moveCount).toBe(0);
  });
});

describe("a spectator's reach", () => {
  it("is bounded: 4 listeners per attachment and game (QUOTA), the same listener counted once, a flood of chat refused", async () => {
    const { w, alice, bob } = await world({ chatLinesPerMinute: 5 });
    const carol = await w.user("carol");
    const g = await w.game(alice, bob);
    const spectator = (await carol.player.watch({ id: g.id })).spectator;
    const same = recorder();
    await spectator.listen({ listener: same.listener });
    await spectator.listen({ listener: same.listener });
    for (let i = 0; i < 3; i++) await spectator.listen({ listener: recorder().listener });
    expect((await rejection(spectator.listen({ listener: recorder().listener }))).code).toBe(ErrorCode.QUOTA);
    // Another watch() of the same game is the same attachment: the same quota.
    const again = (await carol.player.watch({ id: g.id })).spectator;
    expect((await rejection(again.listen({ listener: recorder().listener }))).code).toBe(ErrorCode.QUOTA);
    for (let i = 0; i < 5; i++) await spectator.say({ text: `spam ${i}` });
    expect((await rejection(spectator.say({ text: "more spam" }))).code).toBe(ErrorCode.QUOTA);
    // The players are untouched: their quota is their own and the game goes on.
    await g.black.say({ text: "hello" });
    await g.black.move({ point: { x: 4, y: 4 } });
    await waitFor(() =>
      expect(same.kinds).toEqual(["chat", "chat", "chat", "chat", "chat", "chat", "moved"]),
    );
    expect(same.kinds.filter((k) => k === "moved")).toHaveLength(1);
    expect((await liveGame(w, g.id)).listeners.size).toBe(4);
  });

  it("is bounded for a player too: the quota is shared by her Game and her Spectator of the same game", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    const own = (await alice.player.watch({ id: g.id })).spectator;
    for (let i = 0; i < 2; i++) await g.black.listen({ listener: recorder().listener });
    for (let i = 0; i < 2; i++) await own.listen({ listener: recorder().listener });
    expect((await rejection(own.listen({ listener: recorder().listener }))).code).toBe(ErrorCode.QUOTA);
    expect((await rejection(g.black.listen({ listener: recorder().listener }))).code).toBe(ErrorCode.QUOTA);
  });
});

describe("a revoked login", () => {
  it("loses its listeners and its chat at once; the opponent's and a spectator's listeners live on", async () => {
    const { w, alice, bob } = await world();
    const carol = await w.user("carol");
    const g = await w.game(alice, bob);
    const heard = { alice: recorder(), bob: recorder(), carol: recorder() };
    await g.black.listen({ listener: heard.alice.listener });
    await g.white.listen({ listener: heard.bob.listener });
    await (await carol.player.watch({ id: g.id })).spectator.listen({ listener: heard.carol.listener });
    expect((await liveGame(w, g.id)).listeners.size).toBe(3);
    await changePassword(alice, "alice new pass");
    await waitFor(async () => expect((await liveGame(w, g.id)).listeners.size).toBe(2));
    expect((await rejection(g.black.say({ text: "still here?" }))).code).toBe(ErrorCode.REVOKED);
    expect((await rejection(g.black.listen({ listener: recorder().listener }))).code).toBe(ErrorCode.REVOKED);
    expect((await rejection(g.black.board())).code).toBe(ErrorCode.REVOKED);
    await g.white.say({ text: "bye alice" });
    await waitFor(() => expect(heard.carol.chat).toEqual(["bob: bye alice"]));
    expect(heard.bob.chat).toEqual(["bob: bye alice"]);
    expect(heard.alice.chat).toEqual([]);
    // Her seat counts as disconnected now: the grace runs.
    expect(heard.bob.kinds).toContain("disconnected");
  });

  it("fails a challenger's pending accepted() wait and withdraws the challenge with the login", async () => {
    const { w, alice, bob } = await world();
    const { challenge, id } = await alice.player.challenge({ terms: NINE });
    const waiting = challenge.accepted();
    await changePassword(alice, "alice new pass");
    const err = await rejection(waiting);
    expect([ErrorCode.REVOKED, ErrorCode.FAILED]).toContain(err.code);
    // Her last attachment ended: nobody may be matched with a player who left.
    await waitFor(async () => expect((await bob.player.openChallenges()).challenges.getLength()).toBe(0));
    expect((await rejection(bob.player.accept({ id }))).code).toBe(ErrorCode.NOT_FOUND);
    // Alice, logged in again, challenges anew with her whole quota.
    const { identity } = await w.h.login("alice", "alice new pass");
    const again = attach(identity, GO_PLAYER);
    const fresh = await again.challenge({ terms: NINE });
    const { game } = await bob.player.accept({ id: fresh.id });
    const mine = (await again.game({ id: (await game.info()).info.id })).game;
    expect(kindOf((await mine.move({ point: { x: 4, y: 4 } })).outcome)).toBe("played");
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): a move sent in the same turn as the mover's own password change is admitted by the
  // membrane (the login is still current), played in memory, and then refused by the store
  // (REVOKED from SqliteGoRepository.#check, src/store/sqlite/go.ts:183). LiveGame.#persist
  // (src/services/go/go-service.ts:759-761) answers any store refusal with `go.forget(this)`,
  // which disposes the LiveGame (go-service.ts:1143-1147: every listener of the game cleared, the
  // opponent's and spectators' included, silently) — but the Game and Spectator capabilities
  // already handed out are bound to that LiveGame instance (go-service.ts:564-567), not to the
  // game id. Bob's Game keeps serving the forgotten memory: it shows Alice's refused move
  // (moveCount 1 while the store and a fresh game() say 0), and every move Bob makes through it
  // fails FAILED "move 2 does not follow move 0" for ever. Fix: on a store refusal, undo the
  // in-memory change (or rebuild in place) instead of swapping the LiveGame; or make the served
  // viewables look the game up by id on each call and carry the listeners over; and refuse
  // before touching memory when the caller's attachment has ended (`p.isAttached`).
  it("cannot slip a move in beside its own password change: the game stays whole for the opponent", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.white.listen({ listener: seen.listener });
    const { verifier } = await makeVerifier("alice new pass", { kdf });
    const [move] = await Promise.allSettled([
      g.black.move({ point: { x: 4, y: 4 } }),
      alice.identity.changePassword({ newVerifier: verifier }),
    ]);
    const played = move.status === "fulfilled" && kindOf(move.value.outcome) === "played";
    // Whatever won the race, Bob's capability and a fresh one agree with the store.
    const stored = (await goStore(w).getGame(Number(g.id)))?.moveCount;
    expect(stored).toBe(played ? 1 : 0);
    expect((await g.white.info()).info.moveCount).toBe(stored);
    const fresh = (await bob.player.game({ id: g.id })).game;
    expect((await fresh.info()).info.moveCount).toBe(stored);
    if (!played) {
      // Black's move never happened: it is still black's turn, and Bob hears the next events.
      expect((await g.white.move({ point: { x: 3, y: 3 } })).outcome.illegal).toBe(Illegal.NOT_YOUR_TURN);
    }
    await g.white.say({ text: "still listening?" });
    await waitFor(() => expect(seen.chat).toEqual(["bob: still listening?"]));
  });
});

describe("a store write that fails", () => {
  // Was a bug (fixed in go-service.ts / go-wire.ts): the same cause as above, without a race: when the store fails a write (disk full,
  // SQLITE_BUSY), LiveGame.#persist (src/services/go/go-service.ts:759-761) forgets the
  // LiveGame, but the capabilities both players and every spectator hold are bound to the
  // forgotten instance (go-service.ts:564-567). They keep answering from its memory — which holds
  // the move the store lacks, against the header's "memory never holds what the store lacks"
  // (go-service.ts:12-13) — and every later write through them conflicts; the game's listeners
  // are all cleared without a word (go-service.ts:1146). Fix as above: roll the memory back (or
  // rebuild in place) and keep the capabilities and listeners on the game, not the instance.
  it("leaves the game as the store has it, reachable through the capabilities already held", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.white.listen({ listener: seen.listener });
    const store = goStore(w);
    const appendMove = store.appendMove.bind(store);
    store.appendMove = async () => {
      store.appendMove = appendMove;
      return { kind: "conflict", reason: "the disk is full" };
    };
    expect((await rejection(g.black.move({ point: { x: 4, y: 4 } }))).code).toBe(ErrorCode.FAILED);
    expect((await goStore(w).getGame(Number(g.id)))?.moveCount).toBe(0);
    expect((await g.white.info()).info.moveCount).toBe(0);
    // Alice tries again through the same capability; Bob answers through his and is heard.
    expect(kindOf((await g.black.move({ point: { x: 4, y: 4 } })).outcome)).toBe("played");
    expect(kindOf((await g.white.move({ point: { x: 3, y: 3 } })).outcome)).toBe("played");
    await waitFor(() => expect(seen.kinds.filter((k) => k === "moved")).toHaveLength(2));
  });
});

describe("concurrent operations on one game", () => {
  it("plays one of two moves sent at once by the same player; the other is out of turn", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    const [a, b] = await Promise.all([
      g.black.move({ point: { x: 4, y: 4 } }),
      g.black.move({ point: { x: 3, y: 3 } }),
    ]);
    expect([kindOf(a.outcome), b.outcome.illegal]).toEqual(["played", Illegal.NOT_YOUR_TURN]);
    expect((await goStore(w).moves(Number(g.id))).map((m) => [m.x, m.y])).toEqual([[4, 4]]);
    expect((await g.white.board()).board.points[3 * 9 + 3]).toBe(0);
  });

  it("orders a move racing the opponent's resignation: whichever came first, the record agrees", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    await g.black.move({ point: { x: 4, y: 4 } });
    const [move, resign] = await Promise.all([g.white.move({ point: { x: 3, y: 3 } }), g.black.resign()]);
    expect(kindOf(move.outcome)).toBe("played");
    expect(resign.outcome.ended).toBe("W+R");
    const record = await goStore(w).getGame(Number(g.id));
    expect([record?.moveCount, record?.result, record?.phase]).toEqual([2, "W+R", "finished"]);
    // And the other way round: the resignation first, then the move is refused.
    const h = await w.game(alice, bob);
    const [r2, m2] = await Promise.all([h.white.resign(), h.black.move({ point: { x: 4, y: 4 } })]);
    expect([r2.outcome.ended, m2.outcome.illegal]).toEqual(["B+R", Illegal.GAME_OVER]);
    expect((await goStore(w).getGame(Number(h.id)))?.moveCount).toBe(0);
  });

  it("lets a move racing an undo answer win cleanly: the offer is gone, nothing is taken back twice", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "3,3", "2,2"]);
    await g.black.requestUndo();
    // White moves and accepts at once: the move came first and withdrew the offer.
    const [move, answer] = await Promise.all([
      g.white.move({ point: { x: 6, y: 6 } }),
      g.white.answerUndo({ accept: true }),
    ]);
    expect([kindOf(move.outcome), answer.outcome.illegal]).toEqual(["played", Illegal.NO_UNDO_PENDING]);
    expect((await g.black.info()).info.moveCount).toBe(4);
    // An undo request racing the opponent's move: the request counts the move that came first.
    const [req, reply] = await Promise.all([g.white.requestUndo(), g.black.move({ point: { x: 5, y: 5 } })]);
    expect([kindOf(req.outcome), kindOf(reply.outcome)]).toEqual(["ended", "played"]);
    // The offer was withdrawn by Black's move, so accepting it now finds nothing.
    expect((await g.black.answerUndo({ accept: true })).outcome.illegal).toBe(Illegal.NO_UNDO_PENDING);
    expect((await goStore(w).getGame(Number(g.id)))?.moveCount).toBe(5);
  });

  it("orders markDead racing acceptScore: a marking change after an acceptance withdraws it", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "0,0", "pass", "pass"]);
    await g.white.acceptScore();
    const [mark, accept] = await Promise.all([
      g.white.markDead({ point: { x: 0, y: 0 }, dead: true }),
      g.black.acceptScore(),
    ]);
    expect([mark.outcome.ended, accept.outcome.ended]).toEqual(["", ""]);
    const live = await liveGame(w, g.id);
    expect([live.accepted, live.deadMarks]).toEqual([["black"], [{ x: 0, y: 0 }]]);
    expect((await g.black.info()).info.phase).toBe(Phase.SCORING);
    // Both accept the new marking: white's stone is dead, Black owns the board.
    expect((await g.white.acceptScore()).outcome.ended).toBe("B+74.5");
  });

  it("makes one game of a challenge accepted twice at once, by two users or by one", async () => {
    const { w, alice, bob } = await world();
    const carol = await w.user("carol");
    const { challenge, id } = await alice.player.challenge({ terms: NINE });
    const told = challenge.accepted();
    const [b, c] = await Promise.allSettled([bob.player.accept({ id }), carol.player.accept({ id })]);
    const won = [b, c].filter((r) => r.status === "fulfilled");
    const lost = [b, c].filter((r) => r.status === "rejected");
    expect([won.length, lost.length]).toEqual([1, 1]);
    expect((lost[0] as PromiseRejectedResult).reason.code).toBe(ErrorCode.NOT_FOUND);
    expect((await (await told).game.info()).info.white).toBe(b.status === "fulfilled" ? "bob" : "carol");
    const second = await alice.player.challenge({ terms: NINE });
    const twice = await Promise.allSettled([
      bob.player.accept({ id: second.id }),
      bob.player.accept({ id: second.id }),
    ]);
    expect(twice.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect((await alice.player.games({ includeFinished: true })).games.getLength()).toBe(2);
  });
});

describe("clocks on the injected clock", () => {
  it("flag at exactly the deadline: a move 1 ms before counts, the flag falls at the deadline, a later move is refused", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, timed({ system: TimeSystem.ABSOLUTE, mainSeconds: 10 }));
    const seen = recorder();
    await g.white.listen({ listener: seen.listener });
    w.h.clock.advance(9_999);
    expect(kindOf((await g.black.move({ point: { x: 4, y: 4 } })).outcome)).toBe("played");
    expect((await g.black.clocks()).clocks.black.mainMs).toBe(1n);
    w.h.clock.advance(9_999);
    expect(kindOf((await g.white.move({ point: { x: 3, y: 3 } })).outcome)).toBe("played");
    // Black has 1 ms: the flag falls at that instant, not a millisecond later.
    w.h.clock.advance(1);
    await waitFor(() => expect(seen.ended).toEqual(["W+T"]));
    expect((await g.black.move({ point: { x: 5, y: 5 } })).outcome.illegal).toBe(Illegal.GAME_OVER);
    const record = await goStore(w).getGame(Number(g.id));
    expect([record?.result, record?.moveCount]).toEqual(["W+T", 2]);
    expect((await g.black.clocks()).clocks.black.mainMs).toBe(0n);
  });

  it("stop during the scoring phase: no flag falls however long the players mark, and resume restarts the right clock", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, timed({ system: TimeSystem.ABSOLUTE, mainSeconds: 60 }));
    w.h.clock.advance(10_000);
    await g.black.move({ point: { x: 4, y: 4 } });
    w.h.clock.advance(10_000);
    await g.white.pass();
    w.h.clock.advance(5_000);
    await g.black.pass();
    expect((await g.black.info()).info.phase).toBe(Phase.SCORING);
    w.h.clock.advance(24 * 3600 * 1000);
    const paused = (await g.white.clocks()).clocks;
    expect([paused.paused, paused.black.mainMs, paused.white.mainMs, paused.white.running]).toEqual([
      true,
      45_000n,
      50_000n,
      false,
    ]);
    expect((await g.white.info()).info.phase).toBe(Phase.SCORING);
    // Black passed last: after the resume White moves, with White's 50 s.
    await g.black.resume();
    expect((await g.white.clocks()).clocks.white.running).toBe(true);
    w.h.clock.advance(49_999);
    expect((await g.white.info()).info.phase).toBe(Phase.PLAYING);
    w.h.clock.advance(1);
    await waitFor(async () => expect((await g.white.info()).info.result).toBe("B+T"));
  });

  it("byo-yomi through the service: a period is lost only when overrun, and a move refills the current one", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(
      alice,
      bob,
      timed({ system: TimeSystem.BYOYOMI, mainSeconds: 10, periods: 3, periodSeconds: 5 }),
    );
    w.h.clock.advance(12_000);
    await g.black.move({ point: { x: 4, y: 4 } });
    let b = (await g.black.clocks()).clocks.black;
    expect([b.mainMs, b.periodsLeft, b.periodMs, b.inOvertime]).toEqual([0n, 3, 5_000n, true]);
    await g.white.move({ point: { x: 3, y: 3 } });
    w.h.clock.advance(11_000);
    b = (await g.black.clocks()).clocks.black;
    expect([b.periodsLeft, b.periodMs]).toEqual([1, 4_000n]);
    await g.black.move({ point: { x: 5, y: 5 } });
    b = (await g.black.clocks()).clocks.black;
    expect([b.periodsLeft, b.periodMs]).toEqual([1, 5_000n]);
    await g.white.move({ point: { x: 2, y: 2 } });
    w.h.clock.advance(4_999);
    expect((await g.black.info()).info.phase).toBe(Phase.PLAYING);
    w.h.clock.advance(1);
    await waitFor(async () => expect((await g.black.info()).info.result).toBe("W+T"));
  });

  it("Canadian through the service: the stones of a period are counted, and the period refills after the last", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(
      alice,
      bob,
      timed({ system: TimeSystem.CANADIAN, mainSeconds: 5, stonesPerPeriod: 2, periodSeconds: 10 }),
    );
    w.h.clock.advance(6_000);
    await g.black.move({ point: { x: 4, y: 4 } });
    let b = (await g.black.clocks()).clocks.black;
    expect([b.inOvertime, b.stonesLeft, b.periodMs]).toEqual([true, 1, 9_000n]);
    await g.white.move({ point: { x: 3, y: 3 } });
    w.h.clock.advance(8_000);
    await g.black.move({ point: { x: 5, y: 5 } });
    b = (await g.black.clocks()).clocks.black;
    expect([b.stonesLeft, b.periodMs]).toEqual([2, 10_000n]);
    await g.white.move({ point: { x: 2, y: 2 } });
    w.h.clock.advance(10_000);
    await waitFor(async () => expect((await g.black.info()).info.result).toBe("W+T"));
  });

  it("Fischer through the service: the increment never lifts the clock above its cap", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(
      alice,
      bob,
      timed({ system: TimeSystem.FISCHER, mainSeconds: 10, incrementSeconds: 5, maxSeconds: 12 }),
    );
    w.h.clock.advance(1_000);
    await g.black.move({ point: { x: 4, y: 4 } });
    expect((await g.black.clocks()).clocks.black.mainMs).toBe(12_000n);
    w.h.clock.advance(8_000);
    await g.white.move({ point: { x: 3, y: 3 } });
    expect((await g.black.clocks()).clocks.white.mainMs).toBe(7_000n);
    w.h.clock.advance(12_000);
    await waitFor(async () => expect((await g.black.info()).info.result).toBe("W+T"));
  });

  it("simple time through the service: each move has its own seconds, nothing carries over", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, timed({ system: TimeSystem.SIMPLE, perMoveSeconds: 5 }));
    w.h.clock.advance(4_999);
    await g.black.move({ point: { x: 4, y: 4 } });
    w.h.clock.advance(1_000);
    await g.white.move({ point: { x: 3, y: 3 } });
    expect((await g.black.clocks()).clocks.black.periodMs).toBe(5_000n);
    w.h.clock.advance(5_000);
    await waitFor(async () => expect((await g.black.info()).info.result).toBe("W+T"));
  });

  it("runs Black's clock while Black places a free handicap: the flag can fall before the first move", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, {
      ...NINE,
      rules: { size: 9, komi: 0.5, handicap: 2, freeHandicap: true },
      time: { system: TimeSystem.ABSOLUTE, mainSeconds: 10 },
    });
    expect((await g.black.clocks()).clocks.black.running).toBe(true);
    w.h.clock.advance(10_000);
    await waitFor(async () => expect((await g.black.info()).info.result).toBe("W+T"));
    expect(
      (
        await g.black.placeHandicap({
          points: [
            { x: 2, y: 2 },
            { x: 6, y: 6 },
          ],
        })
      ).outcome.illegal,
    ).toBe(Illegal.NOT_HANDICAP_PHASE);
  });
});

describe("the disconnect grace", () => {
  const attachments = async (world: GoWorld, name: string): Promise<number> => {
    const found = await world.h.store.findIdentityByName(name);
    return found === undefined ? -1 : service(world).attachedOf(found.id).size;
  };

  it("does not count a player who drops one of two connections (or detaches one of two attachments) as gone", async () => {
    const { w, alice, bob } = await world({ graceMs: 1_000 });
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.black.listen({ listener: seen.listener });
    const second = await w.login("bob");
    await second.player.games({ includeFinished: false });
    expect(await attachments(w, "bob")).toBe(2);
    bob.close();
    await waitFor(async () => expect(await attachments(w, "bob")).toBe(1));
    // A second attachment on the remaining login, then one detached: still one left.
    const { identity } = await w.h.login("bob", "bob pass");
    const third = attach(identity, GO_PLAYER);
    await third.games({ includeFinished: false });
    await third.detach();
    await waitFor(async () => expect(await attachments(w, "bob")).toBe(1));
    w.h.clock.advance(5_000);
    expect((await g.black.claimWin()).outcome.illegal).toBe(Illegal.NOT_DISCONNECTED);
    const mine = (await second.player.game({ id: g.id })).game;
    await mine.say({ text: "still here" });
    await waitFor(() => expect(seen.chat).toEqual(["bob: still here"]));
    expect(seen.kinds).not.toContain("disconnected");
    // The last one goes: now the grace runs.
    second.close();
    await waitFor(() => expect(seen.kinds).toContain("disconnected"));
    expect((await g.black.claimWin()).outcome.illegal).toBe(Illegal.TOO_EARLY);
    w.h.clock.advance(1_000);
    expect((await g.black.claimWin()).outcome.ended).toBe("B+F");
  });

  it("refuses claimWin once the opponent came back, however long ago the grace ran out", async () => {
    const { w, alice, bob } = await world({ graceMs: 1_000 });
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.black.listen({ listener: seen.listener });
    bob.close();
    await waitFor(() => expect(seen.kinds).toContain("disconnected"));
    w.h.clock.advance(10_000);
    const back = await w.login("bob");
    await back.player.game({ id: g.id });
    await waitFor(() => expect(seen.kinds).toContain("reconnected"));
    expect((await g.black.claimWin()).outcome.illegal).toBe(Illegal.NOT_DISCONNECTED);
    expect((await goStore(w).getGame(Number(g.id)))?.phase).toBe("playing");
  });

  it("lets the win be claimed in the scoring phase too, and only by the player who stayed", async () => {
    const { w, alice, bob } = await world({ graceMs: 1_000 });
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "pass", "pass"]);
    const seen = recorder();
    await g.black.listen({ listener: seen.listener });
    bob.close();
    await waitFor(() => expect(seen.kinds).toContain("disconnected"));
    w.h.clock.advance(1_000);
    expect((await g.black.claimWin()).outcome.ended).toBe("B+F");
    expect((await g.black.acceptScore()).outcome.illegal).toBe(Illegal.GAME_OVER);
  });

  // BUG (policy gap): an open challenge outlives its challenger's last attachment. When Alice has
  // left, Bob can still accept her ranked challenge; the new game marks her away from its first
  // instant (LiveGame.rebuild, src/services/go/go-service.ts:651-654, via `adopt` at :291) and
  // after the grace Bob claims a forfeit win — and Glicko-2 points — in a game Alice never saw.
  // Challenges are not withdrawn when the challenger goes (PlayerPerspective.onDetached,
  // go-service.ts:373-379, touches only games). Fix: withdraw (or hide from openChallenges and
  // refuse accept of) the challenges of a user with no attachment; or start a game's grace only
  // once both players have been present in it.
  it("gives no forfeit win in a ranked game made from the challenge of a user who had already left", async () => {
    const { w, alice, bob } = await world({ graceMs: 1_000 });
    const { id } = await alice.player.challenge({ terms: { ...NINE, ranked: true } });
    alice.close();
    await waitFor(async () => expect(await attachments(w, "alice")).toBe(0));
    const accepted = await bob.player.accept({ id }).then(
      (r) => r.game,
      () => undefined,
    );
    if (accepted !== undefined) {
      w.h.clock.advance(1_000);
      expect(kindOf((await accepted.claimWin()).outcome)).toBe("illegal");
    }
    expect((await bob.player.rating()).rating.games).toBe(0);
  });
});

describe("undo", () => {
  it("refuses a flood of requests after a refusal until the next move, and leaves the game intact", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.white.listen({ listener: seen.listener });
    await playAll(g, ["4,4"]);
    await g.black.requestUndo();
    await g.white.answerUndo({ accept: false });
    for (let i = 0; i < 50; i++) {
      expect((await g.black.requestUndo()).outcome.illegal).toBe(Illegal.TOO_EARLY);
    }
    expect((await g.white.answerUndo({ accept: true })).outcome.illegal).toBe(Illegal.NO_UNDO_PENDING);
    expect((await g.black.info()).info.moveCount).toBe(1);
    await waitFor(() => expect(seen.kinds).toEqual(["moved", "undo_requested", "undo_answered"]));
    // After White's reply Black may ask again (for both moves).
    await g.white.move({ point: { x: 3, y: 3 } });
    expect(kindOf((await g.black.requestUndo()).outcome)).toBe("ended");
    await g.white.answerUndo({ accept: true });
    expect((await goStore(w).getGame(Number(g.id)))?.moveCount).toBe(0);
    expect((await g.black.board()).board.points.every((p) => p === 0)).toBe(true);
  });

  it("is refused after the game ended and once scoring started; a pending offer dies with the game", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "pass", "pass"]);
    expect((await g.white.requestUndo()).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await g.black.answerUndo({ accept: true })).outcome.illegal).toBe(Illegal.NO_UNDO_PENDING);
    const h = await w.game(alice, bob);
    await playAll(h, ["4,4"]);
    await h.black.requestUndo();
    await h.black.resign();
    expect((await h.white.answerUndo({ accept: true })).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await h.black.requestUndo()).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await goStore(w).getGame(Number(h.id)))?.moveCount).toBe(1);
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): `state.resumedAt` (the move counts at which play resumed from scoring) is never trimmed
  // when an accepted undo takes back moves at or before such a count (LiveGame.answerUndo,
  // src/services/go/go-service.ts:946-955). If the same move number later becomes a second pass
  // again, memory is (rightly) in the scoring phase, but LiveGame.rebuild
  // (go-service.ts:638) reads the stale entry and resumes play after that pass: after a restart
  // the game is in play instead of scoring, the marking phase is lost, and the clocks (paused in
  // memory) disagree with the phase. Fix: in answerUndo, drop every resumedAt entry ≥ the kept
  // move count (`state.resumedAt = state.resumedAt.filter((n) => n < keep)`).
  it("keeps the phase across a restart after an undo took back a pass that play had resumed from", async () => {
    const run = await onFile();
    const alice = await run.world.user("alice");
    const bob = await run.world.user("bob");
    const g = await run.world.game(alice, bob);
    await playAll(g, ["4,4", "pass", "pass"]);
    await g.black.resume();
    // Black passed last: White moves, then takes it back; Black takes back the pass.
    await g.white.move({ point: { x: 3, y: 3 } });
    await g.white.requestUndo();
    await g.black.answerUndo({ accept: true });
    await g.black.requestUndo();
    await g.white.answerUndo({ accept: true });
    expect((await g.black.info()).info.moveCount).toBe(2);
    await g.black.pass();
    expect((await g.black.info()).info.phase).toBe(Phase.SCORING);
    const after = await run.restart();
    const again = (await (await after.login("alice")).player.game({ id: g.id })).game;
    const info = (await again.info()).info;
    expect([info.moveCount, info.phase]).toEqual([3, Phase.SCORING]);
  });
});

describe("placeHandicap misuse", () => {
  const FREE: ChallengeTerms$Shape = {
    ...NINE,
    rules: { size: 9, komi: 0.5, handicap: 3, freeHandicap: true },
  };

  it("is refused precisely: white, wrong counts, duplicates, off-board, ten stones, moves before it, twice", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, FREE);
    const three = [
      { x: 2, y: 2 },
      { x: 6, y: 6 },
      { x: 2, y: 6 },
    ];
    expect((await g.white.placeHandicap({ points: three })).outcome.illegal).toBe(Illegal.NOT_YOUR_TURN);
    expect((await rejection(g.black.placeHandicap({ points: three.slice(0, 2) }))).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect((await rejection(g.black.placeHandicap({ points: [] }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(
      (await g.black.placeHandicap({ points: [three[0], three[1], three[0]] as typeof three })).outcome
        .illegal,
    ).toBe(Illegal.OCCUPIED);
    expect(
      (
        await rejection(
          g.black.placeHandicap({ points: [three[0], three[1], { x: 9, y: 0 }] as typeof three }),
        )
      ).code,
    ).toBe(ErrorCode.BAD_ARGUMENT);
    expect(
      (
        await rejection(
          g.black.placeHandicap({ points: [three[0], three[1], { x: 0, y: 255 }] as typeof three }),
        )
      ).code,
    ).toBe(ErrorCode.BAD_ARGUMENT);
    const ten = Array.from({ length: 10 }, (_, i) => ({ x: i % 9, y: Math.floor(i / 9) }));
    expect((await rejection(g.black.placeHandicap({ points: ten }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await g.black.move({ point: { x: 4, y: 4 } })).outcome.illegal).toBe(Illegal.HANDICAP_PENDING);
    expect((await g.white.move({ point: { x: 4, y: 4 } })).outcome.illegal).toBe(Illegal.HANDICAP_PENDING);
    expect((await g.white.pass()).outcome.illegal).toBe(Illegal.HANDICAP_PENDING);
    expect((await g.black.board()).board.points.every((p) => p === 0)).toBe(true);
    expect(kindOf((await g.black.placeHandicap({ points: three })).outcome)).toBe("ended");
    expect((await g.black.placeHandicap({ points: three })).outcome.illegal).toBe(Illegal.NOT_HANDICAP_PHASE);
    const board = (await g.white.board()).board;
    expect([board.toMove, board.points.filter((p) => p === 1).length, board.moveCount]).toEqual([1, 3, 0]);
    // A fixed-handicap game has nothing to place.
    const fixed = await w.game(alice, bob, { ...NINE, rules: { size: 9, komi: 0.5, handicap: 2 } });
    expect((await fixed.black.placeHandicap({ points: three.slice(0, 2) })).outcome.illegal).toBe(
      Illegal.NOT_HANDICAP_PHASE,
    );
    expect(kindOf((await fixed.white.move({ point: { x: 4, y: 4 } })).outcome)).toBe("played");
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): the schema allows a handicap of "0, or 2 to 9 stones" (schema/go.capnp, Rules.handicap),
  // and GameViewable.placeHandicap refuses more than 9 points (src/services/go/go-service.ts:1244),
  // but readRules (src/services/go/go-wire.ts:75) passes the handicap to goRules, which allows a
  // free handicap up to size²−1 (src/services/go/go-rules.ts:166). A challenge with a free
  // handicap of 10 is accepted and makes a game Black can never start: exactly 10 points are
  // wanted and more than 9 are refused; without a clock it hangs in the handicap phase for ever.
  // Fix: readRules refuses a handicap above 9 (BAD_ARGUMENT naming rules.handicap).
  it("refuses a free handicap above 9 stones when the challenge is made", async () => {
    const { w, alice } = await world();
    const err = await rejection(
      alice.player.challenge({
        terms: { ...NINE, rules: { size: 19, komi: 0.5, handicap: 10, freeHandicap: true } },
      }),
    );
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    void w;
  });
});

describe("a restart", () => {
  it("keeps a pending undo offer, a refusal's bar, dead-stone marks and an acceptance", async () => {
    const run = await onFile();
    const alice = await run.world.user("alice");
    const bob = await run.world.user("bob");
    const undo = await run.world.game(alice, bob);
    await playAll(undo, ["4,4", "3,3"]);
    await undo.white.requestUndo();
    const barred = await run.world.game(alice, bob);
    await playAll(barred, ["4,4"]);
    await barred.black.requestUndo();
    await barred.white.answerUndo({ accept: false });
    const scoring = await run.world.game(alice, bob);
    await playAll(scoring, ["4,4", "0,0", "pass", "pass"]);
    await scoring.white.markDead({ point: { x: 0, y: 0 }, dead: true });
    await scoring.white.acceptScore();
    const after = await run.restart();
    const a = await after.login("alice");
    const b = await after.login("bob");
    const mine = async (u: GoUser, id: bigint) => (await u.player.game({ id })).game;
    // The undo offer waits still: White may not ask twice, Black answers it.
    expect((await (await mine(b, undo.id)).requestUndo()).outcome.illegal).toBe(Illegal.UNDO_PENDING);
    expect(kindOf((await (await mine(a, undo.id)).answerUndo({ accept: true })).outcome)).toBe("ended");
    expect((await (await mine(a, undo.id)).info()).info.moveCount).toBe(1);
    // The refused request still bars another until the next move.
    expect((await (await mine(a, barred.id)).requestUndo()).outcome.illegal).toBe(Illegal.TOO_EARLY);
    // The marking and White's acceptance survive: Black's acceptance ends the game with them.
    const s = await mine(a, scoring.id);
    expect((await s.board()).board.dead.toArray().map((p) => [p.x, p.y])).toEqual([[0, 0]]);
    expect((await liveGame(after, scoring.id)).accepted).toEqual(["white"]);
    expect((await s.acceptScore()).outcome.ended).toBe("B+74.5");
  });

  it("ends on time a game whose flag fell while the broker was down, at the first look", async () => {
    const run = await onFile();
    const alice = await run.world.user("alice");
    const bob = await run.world.user("bob");
    const g = await run.world.game(alice, bob, timed({ system: TimeSystem.ABSOLUTE, mainSeconds: 60 }));
    await g.black.move({ point: { x: 4, y: 4 } });
    const stopped = run.world.h.clock.now();
    const after = await run.restart();
    after.h.clock.set(Math.max(after.h.clock.now(), stopped + 120_000));
    const white = (await (await after.login("bob")).player.game({ id: g.id })).game;
    // The clock moved past White's flag: the timer armed at the rebuild fired, and the move is late.
    expect((await white.move({ point: { x: 3, y: 3 } })).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await white.info()).info.result).toBe("B+T");
    expect((await goStore(after).getGame(Number(g.id)))?.result).toBe("B+T");
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): a timed game is wedged when the server's clock reads earlier than the last time stored
  // with it — the wall clock stepped back (NTP, a VM restored, a restart on another host), here a
  // restart whose clock is behind the one the game last saw. GameClock refuses time that goes
  // backwards (src/services/go/game-clock.ts:375-377, `#advance`; `state` at :275), and the
  // service feeds it `clock.now()` unguarded (src/services/go/go-service.ts:720-721, :847-849):
  // every move, pass and clocks() of the game fails BAD_ARGUMENT "time went backwards" until the
  // wall clock catches up (an hour here). Fix: clamp in the service (`Math.max(now, lastNow)`)
  // or let GameClock treat a backwards step as no time passing.
  it("keeps playing after a restart whose clock is behind the one the game last saw", async () => {
    const run = await onFile();
    const alice = await run.world.user("alice");
    const bob = await run.world.user("bob");
    const g = await run.world.game(alice, bob, timed({ system: TimeSystem.ABSOLUTE, mainSeconds: 7_200 }));
    run.world.h.clock.advance(3_600_000);
    await g.black.move({ point: { x: 4, y: 4 } });
    const after = await run.restart();
    const white = (await (await after.login("bob")).player.game({ id: g.id })).game;
    expect(kindOf((await white.move({ point: { x: 3, y: 3 } })).outcome)).toBe("played");
    expect((await white.clocks()).clocks.white.running).toBe(false);
  });
});

describe("malformed terms", () => {
  const refused = async (user: GoUser, terms: ChallengeTerms$Shape) =>
    (await rejection(user.player.challenge({ terms }))).code;

  it("are refused with BAD_ARGUMENT: board sizes, komi, time fields, enums, handicaps, the opponent's name", async () => {
    const { alice } = await world();
    for (const size of [0, 1, 26, 255]) {
      expect(await refused(alice, { ...NINE, rules: { size } })).toBe(ErrorCode.BAD_ARGUMENT);
    }
    for (const komi of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      0.25,
      1e9,
      150.5,
      -151,
    ]) {
      expect(await refused(alice, { ...NINE, rules: { size: 9, komi } })).toBe(ErrorCode.BAD_ARGUMENT);
    }
    const MAX32 = 0xffff_ffff;
    for (const time of [
      { system: TimeSystem.BYOYOMI, mainSeconds: 60, periods: 0, periodSeconds: 30 },
      { system: TimeSystem.BYOYOMI, mainSeconds: 60, periods: 1000, periodSeconds: 30 },
      { system: TimeSystem.BYOYOMI, mainSeconds: MAX32, periods: 5, periodSeconds: 30 },
      { system: TimeSystem.BYOYOMI, mainSeconds: 60, periods: 5, periodSeconds: 0 },
      { system: TimeSystem.ABSOLUTE, mainSeconds: 0 },
      { system: TimeSystem.ABSOLUTE, mainSeconds: MAX32 },
      { system: TimeSystem.CANADIAN, mainSeconds: 60, stonesPerPeriod: 0, periodSeconds: 60 },
      { system: TimeSystem.CANADIAN, mainSeconds: 60, stonesPerPeriod: MAX32, periodSeconds: 60 },
      { system: TimeSystem.FISCHER, mainSeconds: 60, incrementSeconds: MAX32 },
      { system: TimeSystem.FISCHER, mainSeconds: 60, incrementSeconds: 5, maxSeconds: 30 },
      { system: TimeSystem.FISCHER, mainSeconds: 0, incrementSeconds: 5 },
      { system: TimeSystem.SIMPLE, perMoveSeconds: 0 },
      { system: TimeSystem.SIMPLE, perMoveSeconds: MAX32 },
      { system: 99 as TimeSystem },
    ]) {
      expect(await refused(alice, timed(time))).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect(await refused(alice, { ...NINE, color: 7 as ColorChoice })).toBe(ErrorCode.BAD_ARGUMENT);
    expect(await refused(alice, { ...NINE, rules: { size: 9, koRule: 9 as KoRule } })).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    for (const handicap of [1, 10, 255]) {
      expect(await refused(alice, { ...NINE, rules: { size: 9, handicap } })).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect(await refused(alice, { ...NINE, rules: { size: 5, handicap: 2 } })).toBe(ErrorCode.BAD_ARGUMENT);
    expect(await refused(alice, { ...NINE, opponent: "x".repeat(101) })).toBe(ErrorCode.BAD_ARGUMENT);
    expect(await refused(alice, { ...NINE, opponent: "alice" })).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await alice.player.openChallenges()).challenges.getLength()).toBe(0);
  });

  it("at their bounds make games: 2×2 and 25×25 boards, komi ±150, 100 byo-yomi periods, 30-day clocks", async () => {
    const { w, alice, bob } = await world({ maxOpenChallenges: 10 });
    const tiny = await w.game(alice, bob, { ...NINE, rules: { size: 2, komi: 150 } });
    expect(kindOf((await tiny.black.move({ point: { x: 1, y: 1 } })).outcome)).toBe("played");
    expect((await rejection(tiny.white.move({ point: { x: 2, y: 0 } }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    const huge = await w.game(alice, bob, { ...NINE, rules: { size: 25, komi: -150 } });
    expect(kindOf((await huge.black.move({ point: { x: 24, y: 24 } })).outcome)).toBe("played");
    expect((await huge.black.board()).board.points.length).toBe(625);
    const month = 30 * 24 * 3600;
    const slow = await w.game(
      alice,
      bob,
      timed({ system: TimeSystem.BYOYOMI, mainSeconds: month, periods: 100, periodSeconds: month }),
    );
    expect((await slow.black.clocks()).clocks.black.periodsLeft).toBe(100);
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): an unknown `rules.scoring` value is not refused but silently read as territory scoring:
  // readRules maps anything but AREA to "territory" (src/services/go/go-wire.ts:73), where every
  // other enum goes through `enumValue` and is refused BAD_ARGUMENT naming the field (the file's
  // header: "What arrives is ... checked (PARALLAX_ERR_BAD_ARGUMENT naming the field)"). Fix:
  // `enumValue(["area", "territory"], r.scoring ?? Scoring.AREA, "rules.scoring")`.
  it("refuses an unknown scoring rule", async () => {
    const { alice } = await world();
    expect(await refused(alice, { ...NINE, rules: { size: 9, scoring: 7 as Scoring } })).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
  });
});

describe("giant or malformed reads and chat", () => {
  it("moves(from, count) with huge values answers what exists, at most 1000, never more", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    await playAll(g, ["4,4", "3,3", "2,2"]);
    const MAX32 = 0xffff_ffff;
    expect((await g.black.moves({ from: MAX32, count: MAX32 })).moves.getLength()).toBe(0);
    expect((await g.black.moves({ from: 0, count: 0 })).moves.getLength()).toBe(0);
    expect((await g.black.moves({ from: 0, count: MAX32 })).moves.toArray().map((m) => m.number)).toEqual([
      1, 2, 3,
    ]);
    expect((await g.black.moves({ from: 2, count: MAX32 })).moves.toArray().map((m) => m.number)).toEqual([
      3,
    ]);
    expect((await g.black.moves({ from: 3, count: 1 })).moves.getLength()).toBe(0);
    const big = 2n ** 64n - 1n;
    expect((await rejection(alice.player.game({ id: big }))).code).toBe(ErrorCode.NOT_FOUND);
    expect((await rejection(alice.player.watch({ id: big }))).code).toBe(ErrorCode.NOT_FOUND);
    expect((await rejection(alice.player.accept({ id: big }))).code).toBe(ErrorCode.NOT_FOUND);
    expect((await rejection(alice.player.watch({ id: 0n }))).code).toBe(ErrorCode.NOT_FOUND);
  });

  it("chat: an empty or 501-character line, control characters and bidi overrides are BAD_ARGUMENT; reads cap at 100", async () => {
    const { w, alice, bob } = await world({ chatLinesPerMinute: 1000 });
    const g = await w.game(alice, bob);
    expect((await rejection(g.black.say({ text: "" }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await rejection(g.black.say({ text: "x".repeat(501) }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect((await rejection(g.black.say({ text: "x".repeat(100_000) }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    await g.black.say({ text: "x".repeat(500) });
    for (const odd of ["\u0000", "\u001b[2J", "two\r\nlines", "bell\u0007", "abc\u202edcba"]) {
      expect((await rejection(g.black.say({ text: odd }))).code).toBe(ErrorCode.BAD_ARGUMENT);
    }
    await g.black.say({ text: "family 👨\u200d👩\u200d👧 and 日本語" });
    const last = (await g.white.chat({ count: 1 })).lines.toArray().map((l) => l.text);
    expect(last).toEqual(["family 👨\u200d👩\u200d👧 and 日本語"]);
    for (let i = 0; i < 150; i++) await g.white.say({ text: `line ${i}` });
    const lines = (await g.black.chat({ count: 0xffff_ffff })).lines.toArray();
    expect([lines.length, lines.at(-1)?.text]).toEqual([100, "line 149"]);
    expect((await g.black.chat({ count: 0 })).lines.getLength()).toBe(0);
    expect((await g.black.info()).info.moveCount).toBe(0);
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): the limit is in characters (schema/go.capnp GameView.say: "1 to 500 characters";
  // GoOptions.maxChatChars: "in characters"), but LiveGame.say measures UTF-16 code units
  // (`text.length`, src/services/go/go-service.ts:1076): a line of 500 emoji (or of CJK
  // characters outside the BMP) is refused as "got 1000". Fix: count code points
  // (`[...text].length`, or a loop stopping at the limit), and say so in the message.
  it("accepts a 500-character line of characters outside the BMP", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    await g.black.say({ text: "🀄".repeat(500) });
    expect((await g.white.chat({ count: 1 })).lines.get(0).text).toBe("🀄".repeat(500));
  });
});

describe("challenges", () => {
  it("cancelled: the wait fails, the challenge is gone for everyone, and the quota is freed", async () => {
    const { w, alice, bob } = await world({ maxOpenChallenges: 2 });
    const first = await alice.player.challenge({ terms: NINE });
    await alice.player.challenge({ terms: NINE });
    expect((await rejection(alice.player.challenge({ terms: NINE }))).code).toBe(ErrorCode.QUOTA);
    const waiting = first.challenge.accepted();
    await first.challenge.cancel();
    expect((await rejection(waiting)).code).toBe(ErrorCode.FAILED);
    expect((await rejection(first.challenge.accepted())).code).toBe(ErrorCode.FAILED);
    await first.challenge.cancel();
    expect((await rejection(bob.player.accept({ id: first.id }))).code).toBe(ErrorCode.NOT_FOUND);
    expect((await bob.player.openChallenges()).challenges.getLength()).toBe(1);
    await alice.player.challenge({ terms: NINE });
    void w;
  });

  it("accepted before the challenger waits: a late accepted() still hands over the game; cancel then changes nothing", async () => {
    const { w, alice, bob } = await world();
    const { challenge, id } = await alice.player.challenge({ terms: NINE });
    const { game } = await bob.player.accept({ id });
    const late = (await challenge.accepted()).game;
    expect((await late.info()).info.id).toBe((await game.info()).info.id);
    await challenge.cancel();
    expect(kindOf((await late.move({ point: { x: 4, y: 4 } })).outcome)).toBe("played");
    expect((await game.info()).info.moveCount).toBe(1);
    void w;
  });

  // Was a bug (fixed in go-service.ts / go-wire.ts): open challenges never expire (nothing in src/services/go or src/store/sqlite/go.ts
  // removes one but `cancel` and `accept`, though schema/go.capnp's Challenge.accepted speaks of
  // "cancelled or expired"), and the only way to cancel one is the Challenge capability returned
  // by `challenge()` (go-service.ts:410-421), which dies with its connection: Player has no
  // method to get it back or to cancel by id. A user whose connection dropped (or whose broker
  // restarted) with open challenges can never withdraw them, and once they fill the quota
  // (`maxOpenChallenges`, counted in the store at src/store/sqlite/go.ts:206-209) that user can
  // never challenge again. Fix: withdraw a user's challenges when their last attachment ends (see
  // the forfeit bug above), or add `Player.cancelChallenge(id)` / a `challenges()` that hands
  // the Challenge capabilities back, and expire challenges after a limit.
  it("lets a user who reconnected withdraw the challenges of the connection they lost", async () => {
    const { w, alice } = await world({ maxOpenChallenges: 2 });
    await alice.player.challenge({ terms: NINE });
    await alice.player.challenge({ terms: NINE });
    alice.close();
    const again = await w.login("alice");
    w.h.clock.advance(7 * 24 * 3600 * 1000);
    await again.player.challenge({ terms: NINE });
  });
});

describe("scoring misuse", () => {
  it("counts one player's repeated acceptance once, refuses marks off the board or on empty points, and resume outside scoring", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    expect((await g.black.resume()).outcome.illegal).toBe(Illegal.NOT_SCORING);
    expect((await g.black.acceptScore()).outcome.illegal).toBe(Illegal.NOT_SCORING);
    await playAll(g, ["4,4", "0,0", "pass", "pass"]);
    for (let i = 0; i < 3; i++) expect((await g.black.acceptScore()).outcome.ended).toBe("");
    expect((await g.black.info()).info.phase).toBe(Phase.SCORING);
    expect((await rejection(g.black.markDead({ point: { x: 1, y: 1 }, dead: true }))).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect((await rejection(g.black.markDead({ point: { x: 9, y: 9 }, dead: true }))).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect((await liveGame(w, g.id)).accepted).toEqual(["black"]);
    // The score a player asks for is that of the marking; a spectator has no score() at all.
    expect((await g.white.score()).score.result).toBe("W+6.5");
    expect((await g.white.acceptScore()).outcome.ended).toBe("W+6.5");
    expect((await g.white.markDead({ point: { x: 0, y: 0 }, dead: true })).outcome.illegal).toBe(
      Illegal.GAME_OVER,
    );
  });
});

describe("listeners", () => {
  it("drops a listener whose call fails, and one that never answers misses events without holding anything at the end", async () => {
    const { w, alice, bob } = await world({ maxNotificationsInFlight: 2 });
    const g = await w.game(alice, bob);
    let calls = 0;
    const failing = GameListener.server({
      event() {
        calls++;
        throw new Error("listener broke");
      },
    });
    let stuck = 0;
    const hanging = GameListener.server({
      event() {
        stuck++;
        return new Promise<void>(() => {});
      },
    });
    await g.black.listen({ listener: failing });
    await g.white.listen({ listener: hanging });
    const live = await liveGame(w, g.id);
    expect(live.listeners.size).toBe(2);
    await playAll(g, ["4,4", "3,3", "2,2", "6,6"]);
    await waitFor(() => expect(live.listeners.size).toBe(1));
    expect(calls).toBe(1);
    await waitFor(() => expect(stuck).toBe(2));
    // The game goes on; at the end the harness finds every table empty.
    expect(kindOf((await g.black.move({ point: { x: 5, y: 5 } })).outcome)).toBe("played");
    expect(stuck).toBe(2);
  });

  it("goes with a spectator who leaves: the count falls back, the players' own stay", async () => {
    const { w, alice, bob } = await world();
    const carol = await w.user("carol");
    const g = await w.game(alice, bob);
    await g.black.listen({ listener: recorder().listener });
    const spectator = (await carol.player.watch({ id: g.id })).spectator;
    for (let i = 0; i < 4; i++) await spectator.listen({ listener: recorder().listener });
    const live = await liveGame(w, g.id);
    expect(live.listeners.size).toBe(5);
    carol.close();
    await waitFor(() => expect(live.listeners.size).toBe(1));
  });
});

describe("more races and floods", () => {
  it("ends the game once when both players accept at the same instant", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob);
    const seen = recorder();
    await g.white.listen({ listener: seen.listener });
    await playAll(g, ["4,4", "0,0", "pass", "pass"]);
    const [b, wt] = await Promise.all([g.black.acceptScore(), g.white.acceptScore()]);
    expect([b.outcome.ended, wt.outcome.ended]).toEqual(["", "W+6.5"]);
    await waitFor(() => expect(seen.ended).toEqual(["W+6.5"]));
    expect((await g.black.acceptScore()).outcome.illegal).toBe(Illegal.GAME_OVER);
    expect((await goStore(w).getGame(Number(g.id)))?.result).toBe("W+6.5");
  });

  it("caps a game that two clients keep passing and resuming at the move limit, and it stays intact", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, { ...NINE, rules: { size: 2, komi: 0.5 } });
    // 1000 moves at most (GO_LIMITS.maxMoves): pass, pass, resume, over and over.
    let black = true;
    for (let n = 0; n < 1000; n += 1) {
      const r = await (black ? g.black : g.white).pass();
      expect(kindOf(r.outcome)).toBe("played");
      black = !black;
      if (n % 2 === 1) await g.black.resume();
    }
    const r = await (black ? g.black : g.white).pass();
    expect(r.outcome.illegal).toBe(Illegal.MOVE_LIMIT);
    expect((await goStore(w).getGame(Number(g.id)))?.moveCount).toBe(1000);
    expect((await g.white.resign()).outcome.ended).toBe("B+R");
  }, 30_000);

  it("lets Black resign during the free handicap placement", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, {
      ...NINE,
      rules: { size: 9, komi: 0.5, handicap: 2, freeHandicap: true },
    });
    expect((await g.black.resign()).outcome.ended).toBe("W+R");
    expect(
      (
        await g.black.placeHandicap({
          points: [
            { x: 2, y: 2 },
            { x: 6, y: 6 },
          ],
        })
      ).outcome.illegal,
    ).toBe(Illegal.NOT_HANDICAP_PHASE);
  });
});

describe("undo during the handicap placement", () => {
  // BUG (imprecise refusal): an undo request during the free-handicap placement is answered
  // GAME_OVER ("the game has ended, or play has stopped for scoring"), though neither is true:
  // LiveGame.requestUndo folds every phase but play into GAME_OVER
  // (src/services/go/go-service.ts:915). Fix: answer HANDICAP_PENDING in the handicap phase (and
  // keep GAME_OVER for scoring and the end).
  it("answers an undo request during the free-handicap placement with handicapPending", async () => {
    const { w, alice, bob } = await world();
    const g = await w.game(alice, bob, {
      ...NINE,
      rules: { size: 9, komi: 0.5, handicap: 2, freeHandicap: true },
    });
    expect((await g.black.requestUndo()).outcome.illegal).toBe(Illegal.HANDICAP_PENDING);
  });
});
