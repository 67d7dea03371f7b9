import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import {
  fixedHandicapPoints,
  GoGame,
  goRules,
  maxFixedHandicap,
  pointToGtp,
} from "../../../src/services/go/index.js";

const table: { gnugo: string; placements: Record<string, string[] | null> } = JSON.parse(
  readFileSync(path.join(import.meta.dirname, "fixtures", "handicap.json"), "utf8"),
);

describe("fixed handicap", () => {
  it("places exactly the stones GNU Go's fixed_handicap places, for every size 2–19 and count 2–9", () => {
    let compared = 0;
    for (const [key, expected] of Object.entries(table.placements)) {
      const [size, n] = key.split(":").map(Number) as [number, number];
      if (expected === null) {
        expect(() => fixedHandicapPoints(size, n), key).toThrow();
        expect(n > maxFixedHandicap(size), key).toBe(true);
      } else {
        const ours = fixedHandicapPoints(size, n).map((p) => pointToGtp(p, size));
        expect(ours.sort(), key).toEqual([...expected].sort());
      }
      compared++;
    }
    expect(compared).toBe(18 * 8);
  });

  it("extends the same rule to boards up to 25×25 (fourth line, centre on odd sizes)", () => {
    expect(fixedHandicapPoints(25, 9).map((p) => pointToGtp(p, 25))).toEqual([
      "D4",
      "W22",
      "D22",
      "W4",
      "D13",
      "W13",
      "N4",
      "N22",
      "N13",
    ]);
    expect(maxFixedHandicap(24)).toBe(4);
    expect(maxFixedHandicap(25)).toBe(9);
  });

  it("is refused where GTP defines none, with a message saying why", () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect((e as { code?: string }).code).toBe(ErrorCode.BAD_ARGUMENT);
        return (e as Error).message;
      }
      throw new Error("expected a refusal");
    };
    expect(err(() => goRules({ size: 5, handicap: 2 }))).toMatch(/no fixed handicap is defined on 5×5/);
    expect(err(() => goRules({ size: 13, handicap: 10 }))).toMatch(/from 2 to 9, got 10/);
    expect(err(() => goRules({ size: 8, handicap: 5 }))).toMatch(/from 2 to 4, got 5/);
    expect(err(() => goRules({ size: 9, handicap: 1 }))).toMatch(/from 2 to 9, got 1/);
    expect(goRules({ size: 5, handicap: 2, handicapPlacement: "free" }).handicap).toBe(2);
    expect(err(() => goRules({ size: 3, handicap: 9, handicapPlacement: "free" }))).toMatch(/from 2 to 8/);
  });

  it("is on the board of a new game, recorded with the rules", () => {
    const g = new GoGame({ size: 13, handicap: 5, komi: 0.5 });
    expect(g.rules).toMatchObject({ handicap: 5, handicapPlacement: "fixed" });
    expect(g.handicapStones.map((p) => pointToGtp(p, 13)).sort()).toEqual(["D10", "D4", "G7", "K10", "K4"]);
  });
});
