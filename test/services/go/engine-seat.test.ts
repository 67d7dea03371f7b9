/**
 * GNU Go seated by the broker (`Player.playEngine`): it answers a human's moves, moves first as
 * black, grants undo, survives its process being killed (restart and replay) and a broker restart,
 * and an unknown engine is NOT_FOUND. Real GNU Go over GTP; skipped only where it is not installed
 * (`.ci/run` installs it).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import type { EngineConfig } from "../../../src/services/go/engine-seat.js";
import { type GoService, LiveGame } from "../../../src/services/go/go-service.js";
import { findGnuGo } from "../../../src/services/go/gtp-engine.js";
import { SqliteBrokerStore } from "../../../src/store/index.js";
import type { Game } from "../../../src/wire/gen/go.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor } from "../../helpers/wait.js";
import { TempStores } from "../../store/fixtures.js";
import { type GoWorld, kindOf, makeGo, NINE } from "./go-harness.js";

const GNUGO = findGnuGo();
const ENGINES: Record<string, EngineConfig> =
  GNUGO === undefined ? {} : { gnugo: { command: GNUGO, args: ["--mode", "gtp", "--level", "1"] } };
const SLOW = { timeout: 10_000 };

let w: GoWorld | undefined;
let temp: TempStores | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
  temp?.cleanup();
  temp = undefined;
});

const moveCount = async (g: Game) => (await g.info()).info.moveCount;
const liveGame = async (world: GoWorld, game: Game): Promise<LiveGame> => {
  const service = world.h.broker.service("go") as GoService;
  const g = await service.live(Number((await game.info()).info.id));
  if (!(g instanceof LiveGame)) throw new Error("no live game");
  return g;
};

describe("an unknown engine", () => {
  it("is NOT_FOUND, naming the engines there are", async () => {
    w = await makeGo({ engines: {} });
    const alice = await w.user("alice");
    const err = await rejection(alice.player.playEngine({ terms: NINE, engine: "gnugo" }));
    expect([err.code, err.message]).toEqual([ErrorCode.NOT_FOUND, expect.stringContaining("runs none")]);
  });
});

describe.skipIf(GNUGO === undefined)("GNU Go seated by the broker (skipped: gnugo is not installed)", () => {
  it("answers each move of the human with a legal move of its own, as white", async () => {
    w = await makeGo({ engines: ENGINES });
    const alice = await w.user("alice");
    const { game } = await alice.player.playEngine({ terms: NINE, engine: "gnugo" });
    const info = (await game.info()).info;
    expect([info.black, info.white]).toEqual(["alice", "gnugo (bot)"]);
    expect(kindOf((await game.move({ point: { x: 4, y: 4 } })).outcome)).toBe("played");
    await waitFor(async () => expect(await moveCount(game)).toBe(2), SLOW);
    const empty = (await game.board()).board.points.findIndex((v, i) => v === 0 && i !== 40);
    expect(kindOf((await game.move({ point: { x: empty % 9, y: Math.floor(empty / 9) } })).outcome)).toBe(
      "played",
    );
    await waitFor(async () => expect(await moveCount(game)).toBe(4), SLOW);
    // The engine moved for white only: alice cannot move out of turn, and white's stones are the engine's.
    const moves = (await game.moves({ from: 0, count: 10 })).moves.toArray();
    expect(moves.map((m) => m.color)).toEqual([0, 1, 0, 1]);
  });

  it("moves first when it plays black, and grants an undo (its reply goes too)", async () => {
    w = await makeGo({ engines: ENGINES });
    const alice = await w.user("alice");
    const { game } = await alice.player.playEngine({ terms: { ...NINE, color: 2 }, engine: "gnugo" });
    await waitFor(async () => expect(await moveCount(game)).toBe(1), SLOW);
    await game.move({ point: { x: 0, y: 0 } });
    await waitFor(async () => expect(await moveCount(game)).toBe(3), SLOW);
    expect(kindOf((await game.requestUndo()).outcome)).toBe("ended");
    // Granted: alice's move and the engine's reply are taken back; it is alice's turn again.
    await waitFor(async () => expect(await moveCount(game)).toBe(1), SLOW);
    expect((await game.board()).board.points[0]).toBe(0);
    expect(kindOf((await game.move({ point: { x: 0, y: 0 } })).outcome)).toBe("played");
    await waitFor(async () => expect(await moveCount(game)).toBe(3), SLOW);
  });

  it("is restarted and replays the game when its process is killed", async () => {
    w = await makeGo({ engines: ENGINES });
    const alice = await w.user("alice");
    const { game } = await alice.player.playEngine({ terms: NINE, engine: "gnugo" });
    await game.move({ point: { x: 4, y: 4 } });
    await waitFor(async () => expect(await moveCount(game)).toBe(2), SLOW);
    const seat = (await liveGame(w, game)).engineSeats[0];
    const pid = seat?.player.engine?.pid;
    expect(pid).toBeTypeOf("number");
    process.kill(pid as number, "SIGKILL");
    const empty = (await game.board()).board.points.findIndex((v) => v === 0);
    expect(kindOf((await game.move({ point: { x: empty % 9, y: Math.floor(empty / 9) } })).outcome)).toBe(
      "played",
    );
    await waitFor(async () => expect(await moveCount(game)).toBe(4), SLOW);
    expect(seat?.player.restarts).toBe(1);
    expect(seat?.player.engine?.pid).not.toBe(pid);
  });

  it("comes back with the game after a broker restart and plays on", async () => {
    temp = new TempStores();
    const open = () => SqliteBrokerStore.open((temp as TempStores).file, { synchronous: "NORMAL" });
    let store = open();
    w = await makeGo({ engines: ENGINES }, { store });
    let alice = await w.user("alice");
    const { game } = await alice.player.playEngine({ terms: NINE, engine: "gnugo" });
    const id = (await game.info()).info.id;
    await game.move({ point: { x: 4, y: 4 } });
    await waitFor(async () => expect(await moveCount(game)).toBe(2), SLOW);
    await w.h.close();
    store.close();
    store = open();
    w = await makeGo({ engines: ENGINES }, { store });
    alice = await w.login("alice");
    const again = (await alice.player.game({ id })).game;
    const empty = (await again.board()).board.points.findIndex((v) => v === 0);
    expect(kindOf((await again.move({ point: { x: empty % 9, y: Math.floor(empty / 9) } })).outcome)).toBe(
      "played",
    );
    await waitFor(async () => expect(await moveCount(again)).toBe(4), SLOW);
    await w.h.close();
    w = undefined;
    store.close();
  });
});
