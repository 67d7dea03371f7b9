/**
 * Scoring a finished position, given the stones both players agreed are dead.
 *
 * Dead stones are taken off first (they become the opponent's prisoners). Then every empty region
 * (a maximal connected set of empty points) that borders stones of one colour only is that
 * colour's territory; a region touching both colours, or none, is neutral (dame).
 * - `area` (Chinese, Tromp-Taylor): a player's score is their stones on the board plus their
 *   territory; with no dead stones this is exactly Tromp-Taylor's count.
 * - `territory` (Japanese): territory plus prisoners (stones captured during play, suicided stones
 *   of the opponent included, plus the opponent's dead stones). An empty point that is the last
 *   liberty of a group beside it is not territory: its owner still has to fill it, since the
 *   opponent could capture there (GNU Go counts it as dame too). Eyes in seki are counted like
 *   any other region: marking seki is left to the players (a known simplification of the 1989
 *   rules).
 * White adds komi, and with area scoring the handicap bonus of the rules.
 *
 * Invariant: `margin = black - white`; `result` is `B+<margin>`, `W+<−margin>` or `0` (jigo), the
 * SGF `RE` spelling.
 *
 * Tests: test/services/go/scoring.test.ts, test/services/go/oracle.test.ts
 */

import { ErrorCode, ParallaxError } from "../../errors.js";
import { BLACK, EMPTY, type GoBoard, WHITE } from "./go-board.js";
import type { Point } from "./go-point.js";
import type { Color, GoRules } from "./go-rules.js";

export interface GoScore {
  readonly black: number;
  readonly white: number;
  /** black − white. */
  readonly margin: number;
  readonly winner: Color | undefined;
  /** SGF `RE`: `B+3.5`, `W+0.5`, or `0` for a draw. */
  readonly result: string;
  readonly blackTerritory: number;
  readonly whiteTerritory: number;
  readonly blackStones: number;
  readonly whiteStones: number;
  /** Stones Black holds as prisoners (captured white stones plus dead white stones). */
  readonly blackPrisoners: number;
  readonly whitePrisoners: number;
  readonly dame: number;
  /** Per point (index `y * size + x`): 1 black's, 2 white's, 0 neither, after dead stones are removed. */
  readonly ownership: Uint8Array;
}

/** `B+3.5`, `W+0.5`, or `0`. */
export function formatScoreResult(margin: number): string {
  if (margin === 0) return "0";
  return margin > 0 ? `B+${margin}` : `W+${-margin}`;
}

export interface ScoreInput {
  readonly board: GoBoard;
  readonly rules: GoRules;
  /** Stones captured by each colour during play. */
  readonly captures: { readonly black: number; readonly white: number };
  /** Handicap stones Black received (for the area bonus). */
  readonly handicapStones: number;
  readonly dead: readonly Point[];
}

export function scorePosition(input: ScoreInput): GoScore {
  const { board, rules } = input;
  const size = board.size;
  const cells = board.cells.slice();
  let deadBlack = 0;
  let deadWhite = 0;
  for (const p of input.dead) {
    if (p.x < 0 || p.y < 0 || p.x >= size || p.y >= size)
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `go: dead stone (${p.x}, ${p.y}) is off the board`);
    const i = p.y * size + p.x;
    const c = cells[i];
    if (c === EMPTY) {
      if (board.cells[i] === EMPTY)
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `go: dead stone (${p.x}, ${p.y}) is an empty point`);
      continue; // listed twice
    }
    if (c === BLACK) deadBlack++;
    else deadWhite++;
    cells[i] = EMPTY;
  }
  // With territory scoring, an empty point that is the last liberty of a group next to it is one
  // its owner must still fill (the opponent could capture there): not territory (GNU Go agrees).
  const libertyCount = groupLiberties(board, cells);
  const isLastLiberty = (q: number): boolean => {
    for (let d = 0; d < 4; d++) {
      const n = board.adj[4 * q + d] as number;
      if (n >= 0 && cells[n] !== EMPTY && libertyCount[n] === 1) return true;
    }
    return false;
  };
  const ownership = new Uint8Array(size * size);
  let blackStones = 0;
  let whiteStones = 0;
  let blackTerritory = 0;
  let whiteTerritory = 0;
  let dame = 0;
  const seen = new Uint8Array(size * size);
  const stack = new Int32Array(size * size);
  const region: number[] = [];
  for (let p = 0; p < cells.length; p++) {
    const c = cells[p];
    if (c === BLACK) {
      blackStones++;
      ownership[p] = BLACK;
      continue;
    }
    if (c === WHITE) {
      whiteStones++;
      ownership[p] = WHITE;
      continue;
    }
    if (seen[p]) continue;
    let borders = 0;
    region.length = 0;
    let top = 0;
    stack[top++] = p;
    seen[p] = 1;
    while (top > 0) {
      const q = stack[--top] as number;
      region.push(q);
      for (let d = 0; d < 4; d++) {
        const n = board.adj[4 * q + d] as number;
        if (n < 0) continue;
        const nc = cells[n] as number;
        if (nc === EMPTY) {
          if (!seen[n]) {
            seen[n] = 1;
            stack[top++] = n;
          }
        } else borders |= nc;
      }
    }
    if (borders === BLACK || borders === WHITE) {
      let owned = 0;
      for (const q of region) {
        if (rules.scoring === "territory" && isLastLiberty(q)) continue;
        ownership[q] = borders;
        owned++;
      }
      if (borders === BLACK) blackTerritory += owned;
      else whiteTerritory += owned;
      dame += region.length - owned;
    } else dame += region.length;
  }
  const blackPrisoners = input.captures.black + deadWhite;
  const whitePrisoners = input.captures.white + deadBlack;
  let black: number;
  let white: number;
  if (rules.scoring === "area") {
    const bonus =
      rules.whiteHandicapBonus === "n"
        ? input.handicapStones
        : rules.whiteHandicapBonus === "n-1" && input.handicapStones > 0
          ? input.handicapStones - 1
          : 0;
    black = blackStones + blackTerritory;
    white = whiteStones + whiteTerritory + rules.komi + bonus;
  } else {
    black = blackTerritory + blackPrisoners;
    white = whiteTerritory + whitePrisoners + rules.komi;
  }
  const margin = black - white;
  return {
    black,
    white,
    margin,
    winner: margin > 0 ? "black" : margin < 0 ? "white" : undefined,
    result: formatScoreResult(margin),
    blackTerritory,
    whiteTerritory,
    blackStones,
    whiteStones,
    blackPrisoners,
    whitePrisoners,
    dame,
    ownership,
  };
}

/** For each stone, the number of liberties of its group on `cells`; 0 for empty points. */
function groupLiberties(board: GoBoard, cells: Uint8Array): Int32Array {
  const n = cells.length;
  const out = new Int32Array(n);
  const group = new Int32Array(n).fill(-1);
  const libMark = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const members: number[] = [];
  let id = 0;
  for (let p = 0; p < n; p++) {
    if (cells[p] === EMPTY || (group[p] as number) >= 0) continue;
    const color = cells[p];
    members.length = 0;
    let libs = 0;
    let top = 0;
    stack[top++] = p;
    group[p] = id;
    while (top > 0) {
      const q = stack[--top] as number;
      members.push(q);
      for (let d = 0; d < 4; d++) {
        const m = board.adj[4 * q + d] as number;
        if (m < 0) continue;
        if (cells[m] === EMPTY) {
          if (libMark[m] !== id) {
            libMark[m] = id;
            libs++;
          }
        } else if (cells[m] === color && (group[m] as number) < 0) {
          group[m] = id;
          stack[top++] = m;
        }
      }
    }
    for (const q of members) out[q] = libs;
    id++;
  }
  return out;
}
