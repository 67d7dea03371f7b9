/**
 * One game of Go under a recorded `GoRules`: turns, handicap, captures, ko and superko, passes,
 * resignation and the end of the game. Illegal moves are domain outcomes (`{ ok: false, reason }`),
 * never exceptions; malformed input (a colour that is not "black"/"white", non-integer coordinates,
 * a wrong number of handicap stones) throws ParallaxError BAD_ARGUMENT.
 *
 * Invariants:
 * - `positions[0]` is the board after the handicap stones, `positions[i]` the board after move i
 *   (passes included), each with the player to move; superko compares a candidate board with all
 *   of them: the whole game, no window. A Zobrist hit is confirmed by comparing the boards
 *   themselves (the earlier board is rebuilt from the moves), so a hash collision can never make a
 *   legal move illegal.
 * - Simple ko (forbidden under every ko rule): a lone stone that captured exactly one stone and has
 *   that point as its only liberty may not be retaken by the very next move; any move or pass lifts
 *   the ban. This is GNU Go's rule, and under the superko rules the recapture is reported as `ko`.
 * - Two consecutive passes end play (`phase` becomes `scoring`); `recordScore` then ends the game.
 *   A resignation, timeout or forfeit ends it at once with `B+R`, `W+T`, `B+F`, ….
 * - `captures.black` counts the white stones Black took, suicided white stones included (as GNU Go
 *   and SGF count them), and the other way round.
 *
 * Tests: test/services/go/go-game.test.ts, test/services/go/oracle.test.ts,
 * test/services/go/superko.test.ts, test/services/go/go-properties.test.ts
 */

import { ErrorCode, ParallaxError } from "../../errors.js";
import { BLACK, EMPTY, GoBoard, type MoveEffect, type StoneColor, WHITE } from "./go-board.js";
import { checkPoint, isOnBoard, type Point, pointToGtp } from "./go-point.js";
import {
  type Color,
  checkColor,
  GO_LIMITS,
  type GoRules,
  type GoRulesInput,
  goRules,
  otherColor,
} from "./go-rules.js";
import { fixedHandicapPoints } from "./handicap.js";
import { type GoScore, scorePosition } from "./scoring.js";
import { hashKey } from "./zobrist.js";

export type IllegalReason =
  | "occupied"
  | "offBoard"
  | "suicide"
  | "ko"
  | "superko"
  | "gameOver"
  | "notYourTurn"
  | "handicapPending"
  | "notHandicapPhase"
  | "moveLimit";

export type GoPhase = "handicap" | "play" | "scoring" | "over";

export type GoMove =
  | {
      readonly kind: "play";
      readonly color: Color;
      readonly point: Point;
      /** Stones this move removed: enemy stones, or for a suicide the own group (`suicide: true`). */
      readonly captured: readonly Point[];
      readonly suicide: boolean;
    }
  | { readonly kind: "pass"; readonly color: Color };

export type GoEnd =
  | { readonly by: "score"; readonly winner: Color | undefined; readonly score: GoScore }
  | { readonly by: "resignation" | "time" | "forfeit"; readonly winner: Color };

export type MoveOutcome =
  | { readonly ok: true; readonly move: GoMove }
  | { readonly ok: false; readonly reason: IllegalReason; readonly message: string };

export type Verdict = { readonly legal: true } | { readonly legal: false; readonly reason: IllegalReason };

interface MoveRecord {
  readonly color: StoneColor;
  /** undefined for a pass. */
  readonly effect: MoveEffect | undefined;
  readonly koBefore: number;
  readonly passesBefore: number;
  readonly hashLoBefore: number;
  readonly hashHiBefore: number;
  readonly move: GoMove;
}

interface Position {
  readonly key: bigint;
  readonly toMove: StoneColor;
}

const stoneOf = (c: Color): StoneColor => (c === "black" ? BLACK : WHITE);
const colorOf = (s: StoneColor): Color => (s === BLACK ? "black" : "white");

export class GoGame {
  readonly rules: GoRules;
  private readonly board: GoBoard;
  private initial: Uint8Array;
  private handicapPoints: Point[] = [];
  private readonly records: MoveRecord[] = [];
  /** `records[i].move`, kept alongside so `moves` is one copy. */
  private readonly moveList: GoMove[] = [];
  private readonly positions: Position[] = [];
  private readonly index = new Map<bigint, number[]>();
  private turn: StoneColor = BLACK;
  private ko = -1;
  private passes = 0;
  private currentPhase: GoPhase = "play";
  private readonly taken = { black: 0, white: 0 };
  private finish: GoEnd | undefined;

  /** A new game; fixed handicap stones are placed at once, free ones wait for `placeHandicap`. */
  constructor(rules: GoRulesInput = {}) {
    this.rules = goRules(rules);
    this.board = new GoBoard(this.rules.size);
    this.initial = this.board.cells.slice();
    if (this.rules.handicap > 0) {
      if (this.rules.handicapPlacement === "fixed")
        this.setHandicap(fixedHandicapPoints(this.rules.size, this.rules.handicap));
      else this.currentPhase = "handicap";
    }
    if (this.currentPhase === "play") this.pushPosition();
  }

  private setHandicap(points: readonly Point[]): void {
    for (const p of points) this.board.set(p.y * this.rules.size + p.x, BLACK);
    this.handicapPoints = points.map((p) => ({ x: p.x, y: p.y }));
    this.initial = this.board.cells.slice();
    this.turn = WHITE;
  }

  private pushPosition(): void {
    const key = hashKey(this.board.hashLo, this.board.hashHi);
    const i = this.positions.length;
    this.positions.push({ key, toMove: this.turn });
    const list = this.index.get(key);
    if (list === undefined) this.index.set(key, [i]);
    else list.push(i);
  }

  private popPosition(): void {
    const pos = this.positions.pop();
    if (pos === undefined) return;
    const list = this.index.get(pos.key);
    if (list === undefined) return;
    list.pop();
    if (list.length === 0) this.index.delete(pos.key);
  }

  /**
   * Rebuilds a game from its record (the store, an SGF file): free handicap stones if the rules
   * want them and the record has them (without, the game waits for them), then the moves in order
   * — going back to play after each move numbered in `resumedAfter` that had stopped play for
   * scoring — then how it ended. Throws BAD_ARGUMENT naming the first move the rules refuse.
   */
  static replay(
    rules: GoRulesInput,
    record: {
      readonly handicapStones?: readonly Point[];
      readonly moves: readonly ({ readonly color: Color; readonly point?: Point } | GoMove)[];
      readonly resumedAfter?: readonly number[];
      readonly end?:
        | { readonly by: "resignation" | "time" | "forfeit"; readonly loser: Color }
        | { readonly by: "score"; readonly dead: readonly Point[] };
    },
  ): GoGame {
    const game = new GoGame(rules);
    if (game.phase === "handicap" && record.handicapStones !== undefined) {
      const r = game.placeHandicap(record.handicapStones);
      if (!r.ok) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `go: handicap stones: ${r.message}`);
    }
    const resumed = new Set(record.resumedAfter ?? []);
    record.moves.forEach((m, i) => {
      const point = "kind" in m ? (m.kind === "play" ? m.point : undefined) : m.point;
      const r = point === undefined ? game.pass(m.color) : game.play(m.color, point);
      if (!r.ok)
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          `go: move ${i + 1} is refused: ${r.reason}: ${r.message}`,
        );
      if (game.phase === "scoring" && resumed.has(i + 1)) game.resume();
    });
    const end = record.end;
    if (end?.by === "score") {
      const r = game.recordScore(end.dead);
      if (!r.ok)
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `go: the score: ${"message" in r ? r.message : ""}`);
    } else if (end !== undefined) game.concede(end.loser, end.by);
    return game;
  }

  // --- reading -------------------------------------------------------------------------------

  get size(): number {
    return this.rules.size;
  }
  get phase(): GoPhase {
    return this.currentPhase;
  }
  /** Whose move it is (Black during free handicap placement). */
  get toMove(): Color {
    return colorOf(this.turn);
  }
  /** A copy of the moves so far. */
  get moves(): readonly GoMove[] {
    return this.moveList.slice();
  }
  get moveCount(): number {
    return this.records.length;
  }
  /** Stones captured by each colour. */
  get captures(): { readonly black: number; readonly white: number } {
    return { ...this.taken };
  }
  get handicapStones(): readonly Point[] {
    return this.handicapPoints;
  }
  get end(): GoEnd | undefined {
    return this.finish;
  }
  /** SGF `RE` once the game is over: `B+R`, `W+T`, `B+F`, `B+3.5`, `0`. */
  get result(): string | undefined {
    const f = this.finish;
    if (f === undefined) return undefined;
    if (f.by === "score") return f.score.result;
    return `${f.winner === "black" ? "B" : "W"}+${f.by === "resignation" ? "R" : f.by === "time" ? "T" : "F"}`;
  }
  /** The simple-ko point the player to move may not take, if any. */
  get koPoint(): Point | undefined {
    return this.ko < 0 ? undefined : { x: this.ko % this.size, y: Math.floor(this.ko / this.size) };
  }
  /** The position's 64-bit Zobrist hash (stones only). */
  get hash(): bigint {
    return hashKey(this.board.hashLo, this.board.hashHi);
  }

  at(point: Point): Color | undefined {
    const p = checkPoint(point);
    if (!isOnBoard(p, this.size)) return undefined;
    const c = this.board.cells[p.y * this.size + p.x];
    return c === EMPTY ? undefined : colorOf(c as StoneColor);
  }

  /** The stones of one colour, row by row from the top left. */
  stones(color: Color): Point[] {
    const s = stoneOf(checkColor(color));
    const out: Point[] = [];
    const cells = this.board.cells;
    for (let i = 0; i < cells.length; i++)
      if (cells[i] === s) out.push({ x: i % this.size, y: Math.floor(i / this.size) });
    return out;
  }

  /** A copy of the board: index `y * size + x`, 0 empty, 1 black, 2 white. */
  cells(): Uint8Array {
    return this.board.cells.slice();
  }

  /** Rows top to bottom, `.` empty, `X` black, `O` white. */
  toAscii(): string {
    return this.board.toAscii();
  }

  /** Whether `color` may play at `point` now, without playing. */
  check(color: Color, point: Point): Verdict {
    const r = this.evaluate(checkColor(color), checkPoint(point));
    return r.ok ? { legal: true } : { legal: false, reason: r.reason };
  }

  /** Every point `color` may play now (passing is always possible while play goes on). */
  legalMoves(color: Color): Point[] {
    const c = checkColor(color);
    const out: Point[] = [];
    for (let y = 0; y < this.size; y++)
      for (let x = 0; x < this.size; x++) if (this.evaluate(c, { x, y }).ok) out.push({ x, y });
    return out;
  }

  private evaluate(
    color: Color,
    p: Point,
  ): { ok: true; effect: MoveEffect } | { ok: false; reason: IllegalReason; message?: string } {
    const pre = this.turnProblem(color);
    if (pre !== undefined) return pre;
    const refuse = (reason: IllegalReason) => ({ ok: false as const, reason });
    if (!isOnBoard(p, this.size)) return refuse("offBoard");
    const i = p.y * this.size + p.x;
    if (this.board.cells[i] !== EMPTY) return refuse("occupied");
    const s = stoneOf(color);
    const effect = this.board.effect(i, s);
    if (effect.suicide && !this.rules.suicide) return refuse("suicide");
    if (i === this.ko) return refuse("ko");
    if (this.rules.koRule !== "simple" && this.repeats(effect, s === BLACK ? WHITE : BLACK))
      return refuse("superko");
    return { ok: true, effect };
  }

  /** The message of a refusal at `p`, built only for `play` (`check` and `legalMoves` need none). */
  private explain(reason: IllegalReason, p: Point): string {
    const where = isOnBoard(p, this.size) ? pointToGtp(p, this.size) : `(${p.x}, ${p.y})`;
    switch (reason) {
      case "offBoard":
        return `${where} is off the ${this.size}×${this.size} board`;
      case "occupied":
        return `${where} is occupied`;
      case "suicide":
        return `${where} would be suicide`;
      case "ko":
        return `${where} retakes the ko at once; play elsewhere first`;
      default:
        return `${where} would repeat an earlier position (${this.rules.koRule} superko)`;
    }
  }

  private turnProblem(color: Color): { ok: false; reason: IllegalReason; message: string } | undefined {
    if (this.currentPhase === "over" || this.currentPhase === "scoring")
      return { ok: false, reason: "gameOver", message: "play has ended" };
    if (this.currentPhase === "handicap")
      return {
        ok: false,
        reason: "handicapPending",
        message: "Black has not placed the handicap stones yet",
      };
    if (stoneOf(color) !== this.turn)
      return { ok: false, reason: "notYourTurn", message: `it is ${colorOf(this.turn)}'s move` };
    if (this.records.length >= GO_LIMITS.maxMoves(this.size))
      return {
        ok: false,
        reason: "moveLimit",
        message: `a game holds at most ${GO_LIMITS.maxMoves(this.size)} moves`,
      };
    return undefined;
  }

  /** Whether the board after `e` (with `toMove` to play) occurred before, under the rules' superko. */
  private repeats(e: MoveEffect, toMove: StoneColor): boolean {
    const hits = this.index.get(hashKey(e.hashLo, e.hashHi));
    if (hits === undefined) return false;
    let candidate: Uint8Array | undefined;
    for (const k of hits) {
      if (this.rules.koRule === "situational" && (this.positions[k] as Position).toMove !== toMove) continue;
      if (candidate === undefined) {
        const { hashLo, hashHi } = this.board;
        this.board.apply(e);
        candidate = this.board.cells.slice();
        this.board.revert(e, hashLo, hashHi);
      }
      const earlier = this.boardAt(k);
      if (earlier.every((v, j) => v === candidate?.[j])) return true;
    }
    return false;
  }

  /** The board at position k, rebuilt from the initial board and the moves. */
  private boardAt(k: number): Uint8Array {
    const b = new GoBoard(this.size);
    b.cells.set(this.initial);
    for (let m = 0; m < k; m++) {
      const e = (this.records[m] as MoveRecord).effect;
      if (e !== undefined) b.apply(e);
    }
    return b.cells;
  }

  // --- moving --------------------------------------------------------------------------------

  play(color: Color, point: Point): MoveOutcome {
    const c = checkColor(color);
    const p = checkPoint(point);
    const r = this.evaluate(c, p);
    if (!r.ok) return { ok: false, reason: r.reason, message: r.message ?? this.explain(r.reason, p) };
    const e = r.effect;
    const size = this.size;
    const toPoint = (i: number): Point => ({ x: i % size, y: Math.floor(i / size) });
    const move: GoMove = {
      kind: "play",
      color: c,
      point: toPoint(e.point),
      captured: (e.suicide ? e.suicided : e.captured).map(toPoint),
      suicide: e.suicide,
    };
    this.records.push({
      color: e.color,
      effect: e,
      koBefore: this.ko,
      passesBefore: this.passes,
      hashLoBefore: this.board.hashLo,
      hashHiBefore: this.board.hashHi,
      move,
    });
    this.moveList.push(move);
    this.board.apply(e);
    if (e.suicide) this.taken[otherColor(c)] += e.suicided.length;
    else this.taken[c] += e.captured.length;
    this.ko = e.koPoint;
    this.passes = 0;
    this.turn = e.color === BLACK ? WHITE : BLACK;
    this.pushPosition();
    return { ok: true, move };
  }

  pass(color: Color): MoveOutcome {
    const c = checkColor(color);
    const pre = this.turnProblem(c);
    if (pre !== undefined) return { ok: false, reason: pre.reason, message: pre.message };
    const move: GoMove = { kind: "pass", color: c };
    this.records.push({
      color: stoneOf(c),
      effect: undefined,
      koBefore: this.ko,
      passesBefore: this.passes,
      hashLoBefore: this.board.hashLo,
      hashHiBefore: this.board.hashHi,
      move,
    });
    this.moveList.push(move);
    this.ko = -1;
    this.passes++;
    this.turn = this.turn === BLACK ? WHITE : BLACK;
    this.pushPosition();
    if (this.passes >= 2) this.currentPhase = "scoring";
    return { ok: true, move };
  }

  /** Black places free handicap stones (exactly `rules.handicap` distinct points) before play. */
  placeHandicap(
    points: readonly Point[],
  ): MoveOutcome | { readonly ok: true; readonly points: readonly Point[] } {
    if (!Array.isArray(points))
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "go: handicap stones must be an array of points");
    const ps = points.map(checkPoint);
    if (this.currentPhase !== "handicap")
      return { ok: false, reason: "notHandicapPhase", message: "this game has no free handicap to place" };
    if (ps.length !== this.rules.handicap)
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `go: expected ${this.rules.handicap} handicap stones, got ${ps.length}`,
      );
    const seen = new Set<number>();
    for (const p of ps) {
      if (!isOnBoard(p, this.size))
        return { ok: false, reason: "offBoard", message: `(${p.x}, ${p.y}) is off the board` };
      const i = p.y * this.size + p.x;
      if (seen.has(i))
        return { ok: false, reason: "occupied", message: `${pointToGtp(p, this.size)} is listed twice` };
      seen.add(i);
    }
    this.setHandicap(ps);
    this.currentPhase = "play";
    this.pushPosition();
    return { ok: true, points: this.handicapPoints };
  }

  /** `color` resigns; allowed while play goes on or during scoring. */
  resign(color: Color): MoveOutcome | { readonly ok: true; readonly end: GoEnd } {
    return this.concede(color, "resignation");
  }

  /** Ends the game against `loser` (a clock ran out, or a forfeit such as an abandoned game). */
  concede(loser: Color, by: "resignation" | "time" | "forfeit"): MoveOutcome | { ok: true; end: GoEnd } {
    const c = checkColor(loser);
    if (by !== "resignation" && by !== "time" && by !== "forfeit")
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        "go: a game is conceded by resignation, time or forfeit",
      );
    if (this.currentPhase === "over") return { ok: false, reason: "gameOver", message: "the game is over" };
    const end: GoEnd = { by, winner: otherColor(c) };
    this.finish = end;
    this.currentPhase = "over";
    return { ok: true, end };
  }

  /** The score of the current position with `dead` stones removed (see scoring.ts). */
  score(dead: readonly Point[] = []): GoScore {
    if (!Array.isArray(dead))
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "go: dead stones must be an array");
    if (dead.length > this.size * this.size)
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `go: ${dead.length} dead stones on a board of ${this.size * this.size} points`,
      );
    return scorePosition({
      board: this.board,
      rules: this.rules,
      captures: this.taken,
      handicapStones: this.handicapPoints.length,
      dead: dead.map(checkPoint),
    });
  }

  /** Ends a game whose play ended by two passes with the agreed dead stones. */
  recordScore(dead: readonly Point[] = []): { ok: true; end: GoEnd } | MoveOutcome {
    if (this.currentPhase !== "scoring")
      return {
        ok: false,
        reason: this.currentPhase === "over" ? "gameOver" : "notYourTurn",
        message: "play has not ended: only a game whose play ended with two passes can be scored",
      };
    const score = this.score(dead);
    const end: GoEnd = { by: "score", winner: score.winner, score };
    this.finish = end;
    this.currentPhase = "over";
    return { ok: true, end };
  }

  /** Back to play after two passes (the players disagree about dead stones); the next player moves. */
  resume(): boolean {
    if (this.currentPhase !== "scoring") return false;
    this.currentPhase = "play";
    this.passes = 0;
    return true;
  }

  /** Takes back the last move (play or pass) unless the game is over; returns it, or undefined. */
  undo(): GoMove | undefined {
    if (this.currentPhase === "over" || this.currentPhase === "handicap") return undefined;
    const r = this.records.pop();
    if (r === undefined) return undefined;
    this.moveList.pop();
    this.popPosition();
    if (r.effect !== undefined) {
      this.board.revert(r.effect, r.hashLoBefore, r.hashHiBefore);
      if (r.effect.suicide) this.taken[otherColor(colorOf(r.color))] -= r.effect.suicided.length;
      else this.taken[colorOf(r.color)] -= r.effect.captured.length;
    }
    this.ko = r.koBefore;
    this.passes = r.passesBefore;
    this.turn = r.color;
    this.currentPhase = "play";
    return r.move;
  }
}
