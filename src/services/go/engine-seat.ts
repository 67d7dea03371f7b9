/**
 * A GTP engine the broker seats as a player (`Player.playEngine`): it moves when it is its turn,
 * places fixed handicap stones, grants undo requests, and in the scoring phase marks the stones
 * its engine calls dead and accepts only that marking.
 *
 * Invariants:
 * - The seat acts only through the game's own operations, as its colour, with no login (the
 *   store's seat check is the game's): it can do nothing a player of that colour could not.
 * - One step at a time; a change announced while a step runs makes the seat look again after it.
 * - The engine is given the game's whole history before every move (`GtpPlayer`), so an undo, a
 *   restart of the broker or a crash of the engine costs a replay, never a desynchronised board.
 *   A move the game refuses becomes a pass; an engine that cannot go on (its restarts used up)
 *   resigns, so a human is never left waiting on a dead engine.
 *
 * Tests: test/services/go/engine-seat.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { MoveOutcome$Shape } from "../../wire/gen/go.js";
import type { GoGame } from "./go-game.js";
import type { Point } from "./go-point.js";
import type { Color } from "./go-rules.js";
import type { GtpHistory } from "./gtp-player.js";
import { GtpPlayer } from "./gtp-player.js";
import { fixedHandicapPoints } from "./handicap.js";

/** How to start one engine: the program, its arguments, and the per-command timeout. */
export interface EngineConfig {
  readonly command: string;
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
}

type Outcome = Promise<{ outcome: MoveOutcome$Shape }>;
interface SeatRef {
  readonly color: Color;
  readonly actor: null;
}

/** What the seat needs of a live game (LiveGame implements it). */
export interface EngineGame {
  readonly id: number;
  readonly finished: boolean;
  readonly engine: GoGame;
  readonly undoOffer: { readonly by: Color } | null;
  readonly deadMarks: readonly Point[];
  readonly accepted: readonly Color[];
  playAs(color: Color, point: Point | null, actor: null): Outcome;
  resign(who: SeatRef): Outcome;
  answerUndo(who: SeatRef, accept: boolean): Outcome;
  markDead(who: SeatRef, point: Point, dead: boolean): Outcome;
  acceptScore(who: SeatRef): Outcome;
  placeHandicap(who: SeatRef, points: Point[]): Outcome;
}

export class EngineSeat {
  readonly #game: EngineGame;
  readonly #seat: SeatRef;
  readonly #player: GtpPlayer;
  readonly #log: (line: string) => void;
  #busy = false;
  #again = false;
  #closed = false;
  /** The move count of the scoring phase the seat has marked, if any. */
  #markedAt = -1;
  #dead: Set<string> | undefined;

  constructor(game: EngineGame, color: Color, config: EngineConfig, log: (line: string) => void = () => {}) {
    this.#game = game;
    this.#seat = { color, actor: null };
    this.#log = log;
    this.#player = new GtpPlayer({
      command: config.command,
      args: config.args,
      timeoutMs: config.timeoutMs,
      size: game.engine.size,
      komi: game.engine.rules.komi,
      log,
    });
  }

  get color(): Color {
    return this.#seat.color;
  }

  /** The engine's player (restarts, the running process), for tests and diagnostics. */
  get player(): GtpPlayer {
    return this.#player;
  }

  /** Looks at the game and acts if it is the seat's turn; safe to call after every change. */
  poke(): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    void (async () => {
      try {
        do {
          this.#again = false;
          await this.#step();
        } while (this.#again && !this.#closed);
      } catch (err) {
        this.#log(
          `engine seat of game ${this.#game.id}: ${err instanceof Error ? err.message : String(err)}`,
        );
      } finally {
        this.#busy = false;
      }
    })();
  }

  close(): Promise<void> {
    this.#closed = true;
    return this.#player.close();
  }

  #history(): GtpHistory {
    const g = this.#game.engine;
    return {
      setup: g.handicapStones,
      moves: g.moves.map((m) => ({ color: m.color, point: m.kind === "play" ? m.point : "pass" })),
    };
  }

  async #step(): Promise<void> {
    const game = this.#game;
    const g = game.engine;
    const me = this.#seat.color;
    if (game.finished) {
      await this.close();
      return;
    }
    if (g.phase === "handicap") {
      if (me === "black") await game.placeHandicap(this.#seat, fixedHandicapPoints(g.size, g.rules.handicap));
      return;
    }
    const offer = game.undoOffer;
    if (offer !== null && offer.by !== me) {
      await game.answerUndo(this.#seat, true);
      return;
    }
    if (g.phase === "play" && g.toMove === me) {
      await this.#move();
      return;
    }
    if (g.phase === "scoring") await this.#score();
  }

  async #move(): Promise<void> {
    const game = this.#game;
    const me = this.#seat.color;
    let choice: Awaited<ReturnType<GtpPlayer["genmove"]>>;
    try {
      choice = await this.#player.genmove(me, this.#history());
    } catch (err) {
      if (err instanceof ParallaxError && err.code === ErrorCode.DISCONNECTED) {
        this.#log(`game ${game.id}: the engine cannot go on (${err.message}); it resigns`);
        await game.resign(this.#seat);
        return;
      }
      this.#log(
        `game ${game.id}: genmove failed (${err instanceof Error ? err.message : String(err)}); it passes`,
      );
      choice = { kind: "pass" };
    }
    if (choice.kind === "resign") {
      await game.resign(this.#seat);
      return;
    }
    const r = await game.playAs(me, choice.kind === "play" ? choice.point : null, null);
    if (r.outcome.illegal !== undefined && choice.kind === "play") {
      this.#log(`game ${game.id}: the engine's move was refused (${r.outcome.illegal}); it passes`);
      await game.playAs(me, null, null);
    }
  }

  async #score(): Promise<void> {
    const game = this.#game;
    const g = game.engine;
    const key = (p: Point) => `${p.x},${p.y}`;
    if (this.#markedAt !== g.moveCount || this.#dead === undefined) {
      const dead = await this.#player.ask(this.#history(), (e) => e.finalStatusList("dead"));
      this.#markedAt = g.moveCount;
      this.#dead = new Set(dead.map(key));
      const marked = new Set(game.deadMarks.map(key));
      for (const p of dead) if (!marked.has(key(p))) await game.markDead(this.#seat, p, true);
    }
    const mine = this.#dead;
    const marks = new Set(game.deadMarks.map(key));
    const same = marks.size === mine.size && [...mine].every((k) => marks.has(k));
    if (same && !game.accepted.includes(this.#seat.color)) await game.acceptScore(this.#seat);
  }
}
