/**
 * The rule set of one Go game, chosen when the game is created and recorded with it (the store and
 * the SGF `RU`/`KM`/`HA` properties carry it). A `GoRules` value is plain, frozen data.
 *
 * Invariants of a `GoRules` returned by `goRules` (the only way one should be made):
 * - `size` is an integer from `GO_LIMITS.minBoardSize` (2) to `GO_LIMITS.maxBoardSize` (25);
 * - `komi` is a multiple of 0.5 from −`GO_LIMITS.maxKomi` to `GO_LIMITS.maxKomi` (1000);
 * - `handicap` is 0, or for `fixed` placement a count `fixedHandicapPoints` defines for the size
 *   (2–9 on odd boards from 9×9, 2–4 on 7×7 and even boards from 8×8), or for `free` placement
 *   2 to size²−1 (the GTP `set_free_handicap` bounds);
 * - `koRule`, `scoring`, `suicide` and `whiteHandicapBonus` are members of their unions.
 *
 * Ko rules: `simple` forbids only the immediate recapture of a single-stone ko; `positional`
 * superko forbids any move that recreates a board seen earlier in the game; `situational` superko
 * forbids recreating an earlier board with the same player to move. Superko is checked against the
 * whole game, never a window (OGS looks back 30 moves; GNU Go, the test oracle, the whole game).
 *
 * Tests: test/services/go/go-rules.test.ts
 */

import { ErrorCode, ParallaxError } from "../../errors.js";

export type Color = "black" | "white";
export type KoRule = "simple" | "positional" | "situational";
/** `area`: stones + surrounded empty points (Chinese, Tromp-Taylor); `territory`: Japanese. */
export type ScoringRule = "area" | "territory";
export type HandicapPlacement = "fixed" | "free";
/** Points White receives in area scoring for Black's handicap stones (`n-1` is AGA, `n` Chinese). */
export type HandicapBonus = "none" | "n" | "n-1";

export interface GoRules {
  /** Board side, 2–25. */
  readonly size: number;
  /** Points added to White's score. */
  readonly komi: number;
  readonly koRule: KoRule;
  /** Whether suicide (of one stone or a whole group) is a legal move; it removes the own group. */
  readonly suicide: boolean;
  readonly scoring: ScoringRule;
  /** Number of handicap stones; 0 for an even game (Black moves first). */
  readonly handicap: number;
  /** `fixed`: the GTP `fixed_handicap` star points; `free`: Black chooses them before play. */
  readonly handicapPlacement: HandicapPlacement;
  /** Only counted with area scoring. */
  readonly whiteHandicapBonus: HandicapBonus;
}

export const GO_LIMITS = {
  minBoardSize: 2,
  maxBoardSize: 25,
  /** Largest komi either way, in points (a 25×25 board has 625). */
  maxKomi: 1000,
  /** Fixed handicap stones at most (GTP `fixed_handicap`). */
  maxFixedHandicap: 9,
  /**
   * Moves (passes included) one game may hold: max(1000, 10 × points), far beyond real games (a
   * long 19×19 game has 400). A longer game is refused with `moveLimit`, so a pair of clients
   * passing in turn cannot grow a game's history without bound.
   */
  maxMoves: (size: number): number => Math.max(1000, 10 * size * size),
} as const;

/** Named presets; `RU` in SGF uses these names. */
export const GO_RULE_PRESETS = {
  japanese: { koRule: "simple", scoring: "territory", suicide: false, whiteHandicapBonus: "none" },
  chinese: { koRule: "positional", scoring: "area", suicide: false, whiteHandicapBonus: "n" },
  aga: { koRule: "situational", scoring: "area", suicide: false, whiteHandicapBonus: "n-1" },
  "new-zealand": { koRule: "situational", scoring: "area", suicide: true, whiteHandicapBonus: "none" },
  "tromp-taylor": { koRule: "positional", scoring: "area", suicide: true, whiteHandicapBonus: "none" },
} as const satisfies Record<string, Pick<GoRules, "koRule" | "scoring" | "suicide" | "whiteHandicapBonus">>;
export type GoRulePreset = keyof typeof GO_RULE_PRESETS;
/** What `goRules` and `new GoGame` take: any fields, optionally on top of a named preset. */
export type GoRulesInput = Partial<GoRules> & { readonly preset?: GoRulePreset };

export const DEFAULT_GO_RULES: GoRules = Object.freeze({
  size: 19,
  komi: 6.5,
  koRule: "simple",
  suicide: false,
  scoring: "territory",
  handicap: 0,
  handicapPlacement: "fixed",
  whiteHandicapBonus: "none",
});

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, `go rules: ${message}`);
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value))
    throw bad(`${name} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${describe(value)}`);
  return value as T;
}

export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined)
    return String(value);
  return typeof value;
}

/** Throws BAD_ARGUMENT unless `size` is an integer board size from 2 to 25. */
export function checkBoardSize(size: unknown): number {
  if (typeof size !== "number" || !Number.isInteger(size))
    throw bad(`board size must be an integer, got ${describe(size)}`);
  if (size < GO_LIMITS.minBoardSize || size > GO_LIMITS.maxBoardSize)
    throw bad(
      `board size must be from ${GO_LIMITS.minBoardSize} to ${GO_LIMITS.maxBoardSize}, got ${size}×${size}`,
    );
  return size;
}

/** The largest fixed handicap GTP defines for a board size: 0 below 7×7, 4 on 7×7 and even boards, else 9. */
export function maxFixedHandicap(size: number): number {
  if (size < 7) return 0;
  if (size === 7 || size % 2 === 0) return 4;
  return GO_LIMITS.maxFixedHandicap;
}

/**
 * Builds and checks a rule set: a preset's ko, scoring, suicide and bonus choices, then `overrides`
 * on top, then `DEFAULT_GO_RULES` for anything left. Throws BAD_ARGUMENT naming the first bad field.
 */
export function goRules(overrides: GoRulesInput = {}): GoRules {
  if (typeof overrides !== "object" || overrides === null) throw bad("rules must be an object");
  const presetName = overrides.preset;
  let preset: Partial<GoRules> = {};
  if (presetName !== undefined) {
    if (typeof presetName !== "string" || !Object.hasOwn(GO_RULE_PRESETS, presetName))
      throw bad(`unknown preset ${describe(presetName)}`);
    preset = GO_RULE_PRESETS[presetName];
  }
  const pick = <K extends keyof GoRules>(k: K): unknown =>
    overrides[k] !== undefined ? overrides[k] : preset[k] !== undefined ? preset[k] : DEFAULT_GO_RULES[k];

  const size = checkBoardSize(pick("size"));
  const komi = pick("komi");
  if (typeof komi !== "number" || !Number.isFinite(komi))
    throw bad(`komi must be a number, got ${describe(komi)}`);
  if (!Number.isInteger(komi * 2)) throw bad(`komi must be a multiple of 0.5, got ${komi}`);
  if (Math.abs(komi) > GO_LIMITS.maxKomi)
    throw bad(`komi must be from -${GO_LIMITS.maxKomi} to ${GO_LIMITS.maxKomi}, got ${komi}`);
  const koRule = oneOf("koRule", pick("koRule"), ["simple", "positional", "situational"] as const);
  const scoring = oneOf("scoring", pick("scoring"), ["area", "territory"] as const);
  const suicide = pick("suicide");
  if (typeof suicide !== "boolean") throw bad(`suicide must be a boolean, got ${describe(suicide)}`);
  const handicapPlacement = oneOf("handicapPlacement", pick("handicapPlacement"), ["fixed", "free"] as const);
  const whiteHandicapBonus = oneOf("whiteHandicapBonus", pick("whiteHandicapBonus"), [
    "none",
    "n",
    "n-1",
  ] as const);
  const handicap = pick("handicap");
  if (typeof handicap !== "number" || !Number.isInteger(handicap))
    throw bad(`handicap must be an integer, got ${describe(handicap)}`);
  if (handicap !== 0) {
    if (handicapPlacement === "fixed") {
      const max = maxFixedHandicap(size);
      if (handicap < 2 || handicap > max)
        throw bad(
          max === 0
            ? `no fixed handicap is defined on ${size}×${size}; use free placement`
            : `fixed handicap on ${size}×${size} must be from 2 to ${max}, got ${handicap}`,
        );
    } else if (handicap < 2 || handicap > size * size - 1) {
      throw bad(`free handicap on ${size}×${size} must be from 2 to ${size * size - 1}, got ${handicap}`);
    }
  }
  return Object.freeze({
    size,
    komi,
    koRule,
    suicide,
    scoring,
    handicap,
    handicapPlacement,
    whiteHandicapBonus,
  });
}

export function otherColor(color: Color): Color {
  return color === "black" ? "white" : "black";
}

/** Throws BAD_ARGUMENT unless `color` is "black" or "white". */
export function checkColor(color: unknown): Color {
  if (color !== "black" && color !== "white")
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `go: color must be "black" or "white", got ${describe(color)}`,
    );
  return color;
}
