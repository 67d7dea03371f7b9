/**
 * Points on a Go board and their three spellings: `{ x, y }` (0-based, x the column from the left,
 * y the row from the top, as in SGF), GTP vertices (`D4`: columns A–Z without I, row 1 at the
 * bottom) and SGF points (`dp`: column letter then row letter, `a` = 0).
 *
 * Invariant: a `Point` that passed `checkPoint` has integer coordinates; whether it is on a given
 * board is a separate question (an off-board point is an illegal move, not a malformed one).
 *
 * Tests: test/services/go/go-point.test.ts
 */

import { ErrorCode, ParallaxError } from "../../errors.js";
import { describe } from "./go-rules.js";

export interface Point {
  readonly x: number;
  readonly y: number;
}

const GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ";

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, `go: ${message}`);
}

/** Throws BAD_ARGUMENT unless `p` is an object with integer (safe) `x` and `y`. */
export function checkPoint(p: unknown): Point {
  if (typeof p !== "object" || p === null)
    throw bad(`a point must be an object { x, y }, got ${describe(p)}`);
  const { x, y } = p as { x: unknown; y: unknown };
  if (typeof x !== "number" || !Number.isSafeInteger(x) || typeof y !== "number" || !Number.isSafeInteger(y))
    throw bad(`point coordinates must be integers, got x=${describe(x)}, y=${describe(y)}`);
  return { x, y };
}

export function isOnBoard(p: Point, size: number): boolean {
  return p.x >= 0 && p.y >= 0 && p.x < size && p.y < size;
}

export function samePoint(a: Point, b: Point): boolean {
  return a.x === b.x && a.y === b.y;
}

/** `{x: 3, y: 15}` on 19×19 → `"D4"`. */
export function pointToGtp(p: Point, size: number): string {
  return `${GTP_COLUMNS[p.x]}${size - p.y}`;
}

/** `"D4"` (any case) → `{x: 3, y: 15}` on 19×19; `undefined` for `pass`. Throws BAD_ARGUMENT off the board. */
export function gtpToPoint(vertex: string, size: number): Point | undefined {
  const v = vertex.trim().toUpperCase();
  if (v === "PASS") return undefined;
  const m = /^([A-HJ-Z])([0-9]{1,2})$/.exec(v);
  const x = m === null ? -1 : GTP_COLUMNS.indexOf(m[1] as string);
  const row = m === null ? 0 : Number(m[2]);
  if (x < 0 || x >= size || row < 1 || row > size)
    throw bad(`${describe(vertex)} is not a vertex on a ${size}×${size} board`);
  return { x, y: size - row };
}

/** `{x: 3, y: 15}` → `"dp"`. */
export function pointToSgf(p: Point): string {
  return String.fromCharCode(97 + p.x, 97 + p.y);
}
