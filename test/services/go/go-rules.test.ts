import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { DEFAULT_GO_RULES, GO_RULE_PRESETS, GoGame, goRules } from "../../../src/services/go/index.js";

describe("go rules", () => {
  it("fill a preset's choices, then the overrides, then the defaults, into a frozen value", () => {
    const r = goRules({ preset: "chinese", size: 9, komi: 7 });
    expect(r).toEqual({ ...DEFAULT_GO_RULES, ...GO_RULE_PRESETS.chinese, size: 9, komi: 7 });
    expect(Object.isFrozen(r)).toBe(true);
    expect(goRules({ preset: "tromp-taylor", suicide: false }).suicide).toBe(false);
    expect(new GoGame({ preset: "aga" }).rules).toMatchObject({ koRule: "situational", scoring: "area" });
  });

  it("name the bad field in a BAD_ARGUMENT", () => {
    const bad = (input: object, message: RegExp) =>
      expect(() => goRules(input)).toThrowError(
        expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT, message: expect.stringMatching(message) }),
      );
    bad({ preset: "ing" }, /unknown preset "ing"/);
    bad({ scoring: "stones" }, /scoring must be one of "area", "territory"/);
    bad({ suicide: "yes" }, /suicide must be a boolean/);
    bad({ handicap: 2.5 }, /handicap must be an integer/);
    bad({ whiteHandicapBonus: "2" }, /whiteHandicapBonus/);
    bad({ handicapPlacement: "random" }, /handicapPlacement/);
  });

  it("single-stone suicide is refused under Tromp-Taylor (it would repeat the position), a group's suicide is played", () => {
    const g = new GoGame({ preset: "tromp-taylor", size: 3 });
    // Black B1 A2; Black has taken nothing; White at A1 is a lone-stone suicide.
    for (const [c, x, y] of [
      ["black", 1, 2],
      ["white", 2, 0],
      ["black", 0, 1],
    ] as const)
      expect(g.play(c, { x, y }).ok).toBe(true);
    expect(g.play("white", { x: 0, y: 2 })).toMatchObject({ ok: false, reason: "superko" });
    const nz = new GoGame({ preset: "new-zealand", size: 3 });
    for (const [c, x, y] of [
      ["black", 1, 2],
      ["white", 2, 0],
      ["black", 0, 1],
    ] as const)
      nz.play(c, { x, y });
    // Situational superko: the same board with Black to move was never seen, so it is played.
    expect(nz.play("white", { x: 0, y: 2 })).toMatchObject({ ok: true, move: { suicide: true } });
  });

  it("hash positions reproducibly (a fixed-seed Zobrist table)", () => {
    const g = new GoGame({ size: 19 });
    g.play("black", { x: 3, y: 15 });
    g.play("white", { x: 15, y: 3 });
    expect(g.hash.toString(16)).toMatchInlineSnapshot(`"74f802f5c13dd51e"`);
  });
});
