/**
 * Fixed handicap placement as GTP's `fixed_handicap` defines it (GTP 2, section 4.1.1) and GNU Go
 * places it: star points on the third line for boards up to 11×11 and the fourth line from 12×12;
 * 2 stones on two opposite corners, 3 adds the upper left, 4 the fourth corner, 5 the centre,
 * 6 the left and right middles, 7 the centre again, 8 the four middles, 9 all of them. Boards
 * below 7×7 have none; 7×7 and even boards allow at most 4 (they have no centre point).
 *
 * Tests: test/services/go/handicap.test.ts (checked against GNU Go's answers, fixtures/handicap.json)
 */

import { ErrorCode, ParallaxError } from "../../errors.js";
import type { Point } from "./go-point.js";
import { maxFixedHandicap } from "./go-rules.js";

/** The fixed handicap stones, in GTP's order. Throws BAD_ARGUMENT for a count the size does not allow. */
export function fixedHandicapPoints(size: number, stones: number): Point[] {
  const max = maxFixedHandicap(size);
  if (!Number.isInteger(stones) || stones < 2 || stones > max)
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      max === 0
        ? `go: no fixed handicap is defined on ${size}×${size}`
        : `go: fixed handicap on ${size}×${size} must be from 2 to ${max} stones, got ${stones}`,
    );
  const line = size >= 12 ? 3 : 2;
  const lo = line;
  const hi = size - 1 - line;
  const mid = (size - 1) / 2;
  // y counts from the top: {x: lo, y: hi} is the lower left star point (D4 on 19×19).
  const lowerLeft = { x: lo, y: hi };
  const upperRight = { x: hi, y: lo };
  const upperLeft = { x: lo, y: lo };
  const lowerRight = { x: hi, y: hi };
  const centre = { x: mid, y: mid };
  const leftMiddle = { x: lo, y: mid };
  const rightMiddle = { x: hi, y: mid };
  const topMiddle = { x: mid, y: lo };
  const bottomMiddle = { x: mid, y: hi };
  const corners = [lowerLeft, upperRight, upperLeft, lowerRight];
  switch (stones) {
    case 2:
    case 3:
    case 4:
      return corners.slice(0, stones);
    case 5:
      return [...corners, centre];
    case 6:
      return [...corners, leftMiddle, rightMiddle];
    case 7:
      return [...corners, leftMiddle, rightMiddle, centre];
    case 8:
      return [...corners, leftMiddle, rightMiddle, bottomMiddle, topMiddle];
    default:
      return [...corners, leftMiddle, rightMiddle, bottomMiddle, topMiddle, centre];
  }
}
