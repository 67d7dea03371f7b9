import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import {
  formatScoreResult,
  GoGame,
  type GoRules,
  gtpToPoint,
  type Point,
} from "../../../src/services/go/index.js";

function game(rules: Partial<GoRules>, moves: string): GoGame {
  const g = new GoGame(rules);
  let color: "black" | "white" = g.toMove;
  for (const m of moves.split(/\s+/).filter((s) => s !== "")) {
    const r = m === "pass" ? g.pass(color) : g.play(color, gtpToPoint(m, g.size) as Point);
    if (!r.ok) throw new Error(`${m}: ${r.reason}`);
    color = color === "black" ? "white" : "black";
  }
  return g;
}
const pt = (v: string, size = 5) => gtpToPoint(v, size) as Point;

// 5×5: Black owns columns A–B behind a wall on C, White D–E behind a wall on D... (C is Black's).
const WALLS = "C1 D1 C2 D2 C3 D3 C4 D4 C5 D5";

describe("scoring", () => {
  it("area: stones plus empty regions reaching one colour only, plus komi", () => {
    const s = game({ size: 5, komi: 0.5, scoring: "area" }, WALLS).score();
    expect(s).toMatchObject({
      blackStones: 5,
      whiteStones: 5,
      blackTerritory: 10,
      whiteTerritory: 5,
      dame: 0,
    });
    expect(s.black).toBe(15);
    expect(s.white).toBe(10.5);
    expect(s.result).toBe("B+4.5");
    expect(s.winner).toBe("black");
  });

  it("territory: territory plus prisoners, dead stones counting as prisoners", () => {
    // A black stone dead inside White's area at E3 (not captured during play).
    const g = game({ size: 5, komi: 0.5, scoring: "territory" }, `${WALLS} E3 E4`);
    const s = g.score([pt("E3")]);
    // Black: 10 territory; White: 4 empty + E3 = 5 territory (minus nothing), 1 prisoner, + 0.5.
    expect(s).toMatchObject({ blackTerritory: 10, whiteTerritory: 4, blackPrisoners: 0, whitePrisoners: 1 });
    expect(s.white).toBe(4 + 1 + 0.5);
    expect(s.result).toBe("B+4.5");
  });

  it("area with dead stones: the dead stone's point belongs to the surrounding colour", () => {
    const g = game({ size: 5, komi: 0.5, scoring: "area" }, `${WALLS} E3 E4`);
    const alive = g.score();
    const dead = g.score([pt("E3")]);
    expect(alive.blackStones).toBe(6);
    expect(dead.blackStones).toBe(5);
    expect(dead.whiteStones + dead.whiteTerritory).toBe(10);
    expect(dead.result).toBe("B+4.5");
  });

  it("a region touching both colours is dame, and a board with no stones is all dame", () => {
    const empty = game({ size: 5, komi: 0, scoring: "area" }, "").score();
    expect(empty).toMatchObject({ dame: 25, black: 0, white: 0, margin: 0, result: "0", winner: undefined });
    const g = game({ size: 5, komi: 0, scoring: "area" }, "C3").score();
    expect(g.blackTerritory).toBe(24);
  });

  it("territory: the last liberty of a group in atari is not territory (its owner must fill it)", () => {
    //   A B C D E
    // 5 . O X . X     Black C5 has one liberty, D5, a point only Black stones touch:
    // 4 . O O X X     Black must still fill it, so it is not Black's territory.
    const g = new GoGame({ size: 5, komi: 0, scoring: "territory", handicap: 4, handicapPlacement: "free" });
    g.placeHandicap([pt("C5"), pt("E5"), pt("D4"), pt("E4")]);
    for (const m of ["B5", "pass", "C4", "pass", "B4", "pass", "pass"]) {
      const color = g.toMove;
      expect((m === "pass" ? g.pass(color) : g.play(color, pt(m))).ok).toBe(true);
    }
    expect(g.phase).toBe("scoring");
    expect(g.score()).toMatchObject({ blackTerritory: 0, dame: 25 - 7 });
    const area = new GoGame({ ...g.rules, scoring: "area" });
    area.placeHandicap([pt("C5"), pt("E5"), pt("D4"), pt("E4")]);
    for (const m of ["B5", "pass", "C4", "pass", "B4"]) {
      const color = area.toMove;
      expect((m === "pass" ? area.pass(color) : area.play(color, pt(m))).ok).toBe(true);
    }
    expect(area.score()).toMatchObject({ blackTerritory: 1, blackStones: 4, black: 5 });
  });

  it("area: the rules' handicap bonus goes to White", () => {
    const base = { size: 9, komi: 0.5, scoring: "area" as const, handicap: 4 };
    expect(game({ ...base, whiteHandicapBonus: "none" }, "").score().white).toBe(0.5);
    expect(game({ ...base, whiteHandicapBonus: "n" }, "").score().white).toBe(4.5);
    expect(game({ ...base, whiteHandicapBonus: "n-1" }, "").score().white).toBe(3.5);
    expect(game({ ...base, scoring: "territory", whiteHandicapBonus: "n" }, "").score().white).toBe(0.5);
  });

  it("formats results the SGF way", () => {
    expect(formatScoreResult(3.5)).toBe("B+3.5");
    expect(formatScoreResult(-0.5)).toBe("W+0.5");
    expect(formatScoreResult(0)).toBe("0");
    expect(formatScoreResult(12)).toBe("B+12");
  });

  it("rejects dead stones on empty or off-board points with BAD_ARGUMENT", () => {
    const g = game({ size: 5 }, "C3");
    for (const dead of [[pt("A1")], [{ x: 7, y: 0 }], [{ x: 0.5, y: 0 }]]) {
      try {
        g.score(dead);
        throw new Error("expected a refusal");
      } catch (err) {
        expect((err as { code?: string }).code).toBe(ErrorCode.BAD_ARGUMENT);
      }
    }
  });
});
