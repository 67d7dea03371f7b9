/**
 * Property tests (fast-check) on random games: stones are conserved (every stone played is on the
 * board or counted as captured), the incremental Zobrist hash equals the hash recomputed from the
 * stones, no group is left without liberties, undo returns exactly to earlier states, and SGF
 * round-trips every game.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GoBoard } from "../../../src/services/go/go-board.js";
import { GoGame, type KoRule, parseSgf, writeSgf } from "../../../src/services/go/index.js";

interface Trial {
  size: number;
  koRule: KoRule;
  suicide: boolean;
  picks: number[];
}

const trials = fc.record({
  size: fc.integer({ min: 2, max: 9 }),
  koRule: fc.constantFrom<KoRule>("simple", "positional", "situational"),
  suicide: fc.boolean(),
  picks: fc.array(fc.nat(), { minLength: 1, maxLength: 160 }),
});

/** Plays the game the picks choose: each pick selects among the legal moves plus a pass. */
function playOut(t: Trial): {
  game: GoGame;
  snapshots: { cells: Uint8Array; hash: bigint; captures: object }[];
} {
  const game = new GoGame({ size: t.size, koRule: t.koRule, suicide: t.suicide, komi: 0.5 });
  const snapshots = [{ cells: game.cells(), hash: game.hash, captures: game.captures }];
  for (const pick of t.picks) {
    if (game.phase !== "play") break;
    const color = game.toMove;
    const legal = game.legalMoves(color);
    const choice = pick % (legal.length + 1);
    const r =
      choice === legal.length
        ? game.pass(color)
        : game.play(color, legal[choice] as { x: number; y: number });
    expect(r.ok).toBe(true);
    snapshots.push({ cells: game.cells(), hash: game.hash, captures: game.captures });
  }
  return { game, snapshots };
}

function recomputedHash(game: GoGame): bigint {
  const b = new GoBoard(game.size);
  const cells = game.cells();
  for (let i = 0; i < cells.length; i++) b.set(i, cells[i] as 0 | 1 | 2);
  const { lo, hi } = b.computeHash();
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function groupsWithoutLiberties(game: GoGame): number {
  const size = game.size;
  const cells = game.cells();
  const seen = new Uint8Array(cells.length);
  let bad = 0;
  for (let p = 0; p < cells.length; p++) {
    if (cells[p] === 0 || seen[p]) continue;
    const stack = [p];
    seen[p] = 1;
    let libs = 0;
    while (stack.length > 0) {
      const q = stack.pop() as number;
      const x = q % size;
      const y = Math.floor(q / size);
      for (const [nx, ny] of [
        [x - 1, y],
        [x + 1, y],
        [x, y - 1],
        [x, y + 1],
      ] as const) {
        if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
        const n = ny * size + nx;
        if (cells[n] === 0) libs++;
        else if (cells[n] === cells[p] && !seen[n]) {
          seen[n] = 1;
          stack.push(n);
        }
      }
    }
    if (libs === 0) bad++;
  }
  return bad;
}

describe("random games", () => {
  it("conserve stones, keep the hash equal to a recomputed one, and leave no group without liberties", () => {
    fc.assert(
      fc.property(trials, (t) => {
        const { game } = playOut(t);
        let black = 0;
        let white = 0;
        for (const m of game.moves)
          if (m.kind === "play") {
            if (m.color === "black") black++;
            else white++;
          }
        const cap = game.captures;
        expect(game.stones("black").length + cap.white).toBe(black);
        expect(game.stones("white").length + cap.black).toBe(white);
        expect(game.hash).toBe(recomputedHash(game));
        expect(groupsWithoutLiberties(game)).toBe(0);
      }),
      { numRuns: 150, seed: 20260314 },
    );
  });

  it("undo returns through exactly the states the game went through", () => {
    fc.assert(
      fc.property(trials, (t) => {
        const { game, snapshots } = playOut(t);
        for (let i = snapshots.length - 1; i >= 0; i--) {
          const s = snapshots[i] as (typeof snapshots)[number];
          if (game.phase !== "scoring") {
            expect(game.cells()).toEqual(s.cells);
            expect(game.hash).toBe(s.hash);
            expect(game.captures).toEqual(s.captures);
          }
          if (i > 0) expect(game.undo()).toBeDefined();
        }
        expect(game.hash).toBe(0n);
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  it("round-trip through SGF: same moves, board, captures and rules", () => {
    fc.assert(
      fc.property(trials, (t) => {
        const { game } = playOut(t);
        const back = parseSgf(writeSgf(game, { blackName: "Alice", whiteName: "Bob" }));
        expect(back.rules).toEqual(game.rules);
        expect(back.game.moves).toEqual(game.moves);
        expect(back.game.cells()).toEqual(game.cells());
        expect(back.game.captures).toEqual(game.captures);
        expect(back.game.phase).toBe(game.phase);
      }),
      { numRuns: 100, seed: 99 },
    );
  });
});
