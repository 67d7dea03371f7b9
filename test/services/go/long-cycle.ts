/**
 * A constructed game whose position comes back more than 30 moves later (OGS checks superko only
 * 30 moves back). `n` separate kos on 19×19, each
 *
 *     . X O .        White's stone in the middle can be taken by Black at `take`;
 *     X O . O        after that White can take back at `retake` (the original shape).
 *     . X O .
 *
 * are built by alternate moves (Black passes when it has placed its stones), then: Black takes
 * ko 1, White passes, Black takes ko 2, White passes, …, Black takes ko n; White retakes ko 1,
 * Black passes, …, White retakes ko n. No two passes are consecutive and every position between is
 * new, but White's last retake recreates the board (with Black to move) from 4n − 2 moves before:
 * legal under simple ko, refused by positional and situational superko. n = 9 gives 34 moves.
 *
 * Used by test/services/go/superko.test.ts and fixtures/generate.ts (which asks GNU Go about it).
 */

export interface ScriptedMove {
  readonly color: "black" | "white";
  /** `{x, y}` (y from the top), or undefined for a pass. */
  readonly point: { x: number; y: number } | undefined;
}

export interface LongCycle {
  readonly size: number;
  readonly moves: readonly ScriptedMove[];
  /** Index in `moves` of the first ko take; the position before it is the one that comes back. */
  readonly cycleStart: number;
}

export function longKoCycle(n: number): LongCycle {
  const size = 19;
  const origins: { x: number; y: number }[] = [];
  for (let row = 0; row < 5 && origins.length < n; row++)
    for (let col = 0; col < 4 && origins.length < n; col++) origins.push({ x: col * 5, y: row * 4 });
  if (origins.length < n) throw new Error(`at most 20 kos fit, asked for ${n}`);
  const black: { x: number; y: number }[] = [];
  const white: { x: number; y: number }[] = [];
  const take: { x: number; y: number }[] = [];
  const retake: { x: number; y: number }[] = [];
  for (const o of origins) {
    const at = (dx: number, dy: number) => ({ x: o.x + dx, y: o.y + dy });
    black.push(at(1, 0), at(0, 1), at(1, 2));
    white.push(at(2, 0), at(1, 1), at(3, 1), at(2, 2));
    take.push(at(2, 1));
    retake.push(at(1, 1));
  }
  const moves: ScriptedMove[] = [];
  for (let i = 0; i < white.length; i++) {
    moves.push({ color: "black", point: black[i] });
    moves.push({ color: "white", point: white[i] });
  }
  const cycleStart = moves.length;
  for (let i = 0; i < n; i++) {
    moves.push({ color: "black", point: take[i] });
    if (i < n - 1) moves.push({ color: "white", point: undefined });
  }
  for (let i = 0; i < n; i++) {
    moves.push({ color: "white", point: retake[i] });
    if (i < n - 1) moves.push({ color: "black", point: undefined });
  }
  return { size, moves, cycleStart };
}

/**
 * A 9×9 game where a board comes back with the other player to move: two kos, K1 (White's stone
 * in it, Black may take) and K2 (colours swapped), built so that White moves first from the start
 * position S0; then W takes K2, B takes K1, W passes, B retakes K2, and White's retake of K1 would
 * recreate S0 with Black to move. Positional superko refuses it; situational superko allows it
 * (S0 was seen only with White to move); simple ko allows it.
 */
export function situationalDifference(): LongCycle {
  const k1 = { x: 0, y: 0 };
  const k2 = { x: 5, y: 4 };
  const at = (o: { x: number; y: number }, dx: number, dy: number) => ({ x: o.x + dx, y: o.y + dy });
  // K1: X at (1,0) (0,1) (1,2), O at (2,0) (1,1) (3,1) (2,2); Black takes at (2,1), White retakes at (1,1).
  const black = [
    at(k1, 1, 0),
    at(k1, 0, 1),
    at(k1, 1, 2),
    at(k2, 2, 0),
    at(k2, 1, 1),
    at(k2, 3, 1),
    at(k2, 2, 2),
  ];
  const white = [
    at(k2, 1, 0),
    at(k2, 0, 1),
    at(k2, 1, 2),
    at(k1, 2, 0),
    at(k1, 1, 1),
    at(k1, 3, 1),
    at(k1, 2, 2),
  ];
  const moves: ScriptedMove[] = [{ color: "black", point: undefined }];
  for (let i = 0; i < white.length; i++) {
    moves.push({ color: "white", point: white[i] });
    moves.push({ color: "black", point: black[i] });
  }
  const cycleStart = moves.length;
  moves.push(
    { color: "white", point: at(k2, 2, 1) },
    { color: "black", point: at(k1, 2, 1) },
    { color: "white", point: undefined },
    { color: "black", point: at(k2, 1, 1) },
    { color: "white", point: at(k1, 1, 1) },
  );
  return { size: 9, moves, cycleStart };
}
