/**
 * Superko over the whole game: constructed positions that come back long after (OGS looks back
 * only 30 moves). The same games are checked against GNU Go in oracle.test.ts.
 */
import { describe, expect, it } from "vitest";
import { GoGame, type KoRule, type MoveOutcome } from "../../../src/services/go/index.js";
import { type LongCycle, longKoCycle, situationalDifference } from "./long-cycle.js";

/** Plays all but the last scripted move; returns the game and the outcome of the last one. */
function run(cycle: LongCycle, koRule: KoRule): { game: GoGame; last: MoveOutcome; hashes: bigint[] } {
  const game = new GoGame({ size: cycle.size, koRule, komi: 0.5 });
  const hashes: bigint[] = [];
  cycle.moves.forEach((m, i) => {
    if (i === cycle.moves.length - 1) return;
    const r = m.point === undefined ? game.pass(m.color) : game.play(m.color, m.point);
    if (!r.ok) throw new Error(`move ${i + 1}: ${r.reason}`);
    hashes.push(game.hash);
  });
  const m = cycle.moves.at(-1) as LongCycle["moves"][number];
  const last = m.point === undefined ? game.pass(m.color) : game.play(m.color, m.point);
  return { game, last, hashes };
}

describe("superko over the whole game", () => {
  for (const n of [9, 12, 20]) {
    const cycle = longKoCycle(n);
    const distance = cycle.moves.length - cycle.cycleStart;

    it(`refuses a position that returns ${distance} moves later (${n} kos) under positional and situational superko`, () => {
      expect(distance).toBeGreaterThan(30);
      for (const koRule of ["positional", "situational"] as const) {
        const { game, last } = run(cycle, koRule);
        expect(last, koRule).toMatchObject({ ok: false, reason: "superko" });
        expect(game.moveCount).toBe(cycle.moves.length - 1);
      }
    });

    it(`allows it under simple ko, and the board is then the one from ${distance} moves before`, () => {
      const { game, last, hashes } = run(cycle, "simple");
      expect(last.ok).toBe(true);
      expect(game.hash).toBe(hashes[cycle.cycleStart - 1]);
      expect(hashes.slice(cycle.cycleStart, -1)).not.toContain(game.hash);
    });
  }

  it("situational superko allows a board that returns with the other player to move; positional refuses it", () => {
    const cycle = situationalDifference();
    expect(run(cycle, "positional").last).toMatchObject({ ok: false, reason: "superko" });
    expect(run(cycle, "situational").last.ok).toBe(true);
    expect(run(cycle, "simple").last.ok).toBe(true);
  });

  it("reports an immediate ko recapture as ko under the superko rules too", () => {
    const cycle = longKoCycle(1);
    const game = new GoGame({ size: 19, koRule: "positional" });
    for (const m of cycle.moves.slice(0, cycle.cycleStart + 1))
      expect((m.point === undefined ? game.pass(m.color) : game.play(m.color, m.point)).ok).toBe(true);
    expect(game.play("white", { x: 1, y: 1 })).toMatchObject({ ok: false, reason: "ko" });
  });

  it("forgets the positions undo took back: the same board reached again another way is legal", () => {
    const game = new GoGame({ size: 9, koRule: "positional" });
    const p = (x: number, y: number) => ({ x, y });
    expect(
      game.play("black", p(4, 4)).ok && game.play("white", p(3, 4)).ok && game.play("black", p(2, 6)).ok,
    ).toBe(true);
    const board = game.cells();
    for (let i = 0; i < 3; i++) game.undo();
    expect(game.play("black", p(2, 6)).ok && game.play("white", p(3, 4)).ok).toBe(true);
    expect(game.play("black", p(4, 4))).toMatchObject({ ok: true });
    expect(game.cells()).toEqual(board);
  });
});
