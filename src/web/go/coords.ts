/**
 * How the Go page names points and stones: the board's own `{ x, y }` (x the column from the left,
 * y the row from the top, as schema/go.capnp and SGF count them) spelled as players read a board,
 * a column letter (A–Z without I) and a row number counted from the bottom, `D4`; and the words
 * the board's buttons say to a screen reader ("D4, black", "E5, white, dead", "C3, empty, black
 * territory").
 *
 * Invariant: `pointName` and `parsePointName` are inverse on every point of boards 2×2 to 25×25
 * (one letter per column: 25 letters, so the largest board still has one).
 *
 * Tests: test/web/go.test.ts ("names points")
 */

const COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ";

export interface BoardPoint {
  readonly x: number;
  readonly y: number;
}

/** The column's letter: 0 → "A", 8 → "J" (no I). */
export function columnLetter(x: number): string {
  return COLUMNS[x] ?? "?";
}

/** `{ x: 3, y: 5 }` on 9×9 → "D4". */
export function pointName(p: BoardPoint, size: number): string {
  return `${columnLetter(p.x)}${size - p.y}`;
}

/** "D4" (any case) → `{ x: 3, y: 5 }` on 9×9; undefined for anything that is not on the board. */
export function parsePointName(name: string, size: number): BoardPoint | undefined {
  const m = /^([A-HJ-Z])([1-9][0-9]?)$/.exec(name.trim().toUpperCase());
  if (m === null) return undefined;
  const x = COLUMNS.indexOf(m[1] as string);
  const row = Number(m[2]);
  if (x >= size || row > size) return undefined;
  return { x, y: size - row };
}

/** What a point holds, as BoardState.points spells it. */
export const EMPTY = 0;
export const BLACK = 1;
export const WHITE = 2;

export type Territory = "black" | "white" | undefined;

/** The accessible name of a point's button. */
export function pointLabel(
  p: BoardPoint,
  size: number,
  stone: number,
  marks: { readonly dead?: boolean; readonly last?: boolean; readonly territory?: Territory } = {},
): string {
  const parts = [pointName(p, size), stone === BLACK ? "black" : stone === WHITE ? "white" : "empty"];
  if (marks.dead === true && stone !== EMPTY) parts.push("dead");
  if (marks.last === true) parts.push("last move");
  if (marks.territory !== undefined) parts.push(`${marks.territory} territory`);
  return parts.join(", ");
}

/** The star points GNU Go and most boards draw (hoshi), for sizes 7 and up. */
export function starPoints(size: number): BoardPoint[] {
  if (size < 7) return [];
  const edge = size >= 13 ? 3 : 2;
  const far = size - 1 - edge;
  const lines = size % 2 === 1 && size >= 9 ? [edge, (size - 1) / 2, far] : [edge, far];
  const out: BoardPoint[] = [];
  for (const x of lines) {
    for (const y of lines) {
      // 9×9 draws the four corners' points and the centre only.
      if (size < 13 && lines.length === 3 && (x === lines[1]) !== (y === lines[1])) continue;
      out.push({ x, y });
    }
  }
  return out;
}
