/**
 * One GTP engine playing one game: `genmove(color, history)` brings the engine's board to the
 * game's history and asks it for a move.
 *
 * Invariants:
 * - Before every `genmove` the engine holds exactly `history`: the moves it already has are a
 *   prefix of it and only the rest is played; any other history (an undo, a move the server
 *   refused and replaced) is replayed from an empty board: `boardsize`, `clear_board`, `komi`,
 *   the setup stones (`set_free_handicap`), then every move.
 * - An engine that stopped (crashed, killed, timed out, misbehaved) is started again and the
 *   whole history replayed, at most `maxRestarts` times per player (one game); after that
 *   `genmove` fails with DISCONNECTED. An engine's `?` answer is not a crash: it fails the call
 *   with FAILED and the engine keeps its place (the history played so far).
 * - Calls run one at a time; `close()` kills the engine and waits until it is reaped.
 *
 * Tests: test/services/go/gtp-engine.test.ts, test/services/go/gtp-bridge.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { Point } from "./go-point.js";
import type { Color } from "./go-rules.js";
import { GtpEngine, type GtpEngineOptions, type GtpMoveChoice } from "./gtp-engine.js";

/** One move of a game as the engine hears it. */
export interface GtpMove {
  readonly color: Color;
  readonly point: Point | "pass";
}

/** A game so far: black's setup stones (handicap), then the moves. */
export interface GtpHistory {
  readonly setup?: readonly Point[];
  readonly moves: readonly GtpMove[];
}

export interface GtpPlayerOptions extends Omit<GtpEngineOptions, "command"> {
  readonly command: string;
  readonly size: number;
  readonly komi: number;
  /** Engine restarts allowed in this game. Default 3. */
  readonly maxRestarts?: number;
  /** Told about restarts and replays. */
  readonly log?: (line: string) => void;
}

export const GTP_DEFAULT_MAX_RESTARTS = 3;

export class GtpPlayer {
  readonly size: number;
  readonly komi: number;
  readonly maxRestarts: number;
  readonly #options: GtpPlayerOptions;
  readonly #log: (line: string) => void;
  #engine: GtpEngine | undefined;
  /** What the current engine holds; undefined until it was set up. */
  #synced: { setup: Point[]; moves: GtpMove[] } | undefined;
  #restarts = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: GtpPlayerOptions) {
    if (!Number.isInteger(options.size) || options.size < 2 || options.size > 25)
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `gtp: a board size is from 2 to 25, got ${options.size}`,
      );
    this.size = options.size;
    this.komi = options.komi;
    this.maxRestarts = options.maxRestarts ?? GTP_DEFAULT_MAX_RESTARTS;
    this.#options = options;
    this.#log = options.log ?? (() => {});
  }

  /** The running engine, if one was started (for tests and diagnostics). */
  get engine(): GtpEngine | undefined {
    return this.#engine;
  }

  /** Engines started again after one stopped. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Brings the engine to `history` and asks it for `color`'s move. */
  genmove(color: Color, history: GtpHistory): Promise<GtpMoveChoice> {
    return this.#serial(async () => {
      const choice = await this.#withEngine(history, (e) => e.genmove(color));
      if (choice.kind === "play" && this.#synced !== undefined)
        this.#synced.moves.push({ color, point: choice.point });
      else if (choice.kind === "pass" && this.#synced !== undefined)
        this.#synced.moves.push({ color, point: "pass" });
      return choice;
    });
  }

  /** Brings the engine to `history` and runs `fn` on it (e.g. `final_status_list dead`). */
  ask<T>(history: GtpHistory, fn: (engine: GtpEngine) => Promise<T>): Promise<T> {
    return this.#serial(() => this.#withEngine(history, fn));
  }

  /** Kills the engine; later calls fail with DISCONNECTED. */
  close(): Promise<void> {
    this.#closed = true;
    const e = this.#engine;
    this.#engine = undefined;
    return e === undefined ? Promise.resolve() : e.close();
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(op, op);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #withEngine<T>(history: GtpHistory, fn: (engine: GtpEngine) => Promise<T>): Promise<T> {
    for (;;) {
      if (this.#closed) throw new ParallaxError(ErrorCode.DISCONNECTED, "gtp: the player was closed");
      try {
        const engine = await this.#sync(history);
        return await fn(engine);
      } catch (err) {
        const engine = this.#engine;
        // An engine that lives on refused something: not ours to retry.
        if (engine?.alive === true || this.#closed) throw err;
        await engine?.close();
        this.#engine = undefined;
        this.#synced = undefined;
        if (this.#restarts >= this.maxRestarts) {
          throw new ParallaxError(
            ErrorCode.DISCONNECTED,
            `gtp: the engine was restarted ${this.#restarts} times in this game; giving up: ${
              err instanceof Error ? err.message : String(err)
            }`,
            { cause: err },
          );
        }
        this.#restarts++;
        this.#log(
          `gtp: restarting the engine (${this.#restarts} of ${this.maxRestarts}) after: ${
            err instanceof Error ? err.message : String(err)
          }`,
        );
      }
    }
  }

  async #sync(history: GtpHistory): Promise<GtpEngine> {
    const setup = [...(history.setup ?? [])];
    let engine = this.#engine;
    if (engine === undefined) {
      engine = await GtpEngine.start(this.#options);
      this.#engine = engine;
      this.#synced = undefined;
    }
    const synced = this.#synced;
    if (synced !== undefined && isContinuation(synced, setup, history.moves)) {
      for (const m of history.moves.slice(synced.moves.length)) {
        await engine.play(m.color, m.point);
        synced.moves.push(m);
      }
      return engine;
    }
    this.#synced = undefined;
    await engine.boardsize(this.size);
    await engine.clearBoard();
    await engine.komi(this.komi);
    if (setup.length >= 2) await engine.setFreeHandicap(setup);
    else for (const p of setup) await engine.play("black", p);
    const now = { setup, moves: [] as GtpMove[] };
    this.#synced = now;
    for (const m of history.moves) {
      await engine.play(m.color, m.point);
      now.moves.push(m);
    }
    return engine;
  }
}

function samePlace(a: Point | "pass", b: Point | "pass"): boolean {
  return a === "pass" || b === "pass" ? a === b : a.x === b.x && a.y === b.y;
}

function isContinuation(
  synced: { setup: readonly Point[]; moves: readonly GtpMove[] },
  setup: readonly Point[],
  moves: readonly GtpMove[],
): boolean {
  if (synced.setup.length !== setup.length || synced.moves.length > moves.length) return false;
  if (!synced.setup.every((p, i) => samePlace(p, setup[i] as Point))) return false;
  return synced.moves.every((m, i) => {
    const n = moves[i] as GtpMove;
    return m.color === n.color && samePlace(m.point, n.point);
  });
}
