/**
 * Conversions between `schema/go.capnp` and the rules engine, the clock and the store's JSON
 * documents. What arrives is copied out of the message and checked (PARALLAX_ERR_BAD_ARGUMENT
 * naming the field); what leaves is built from the engine's state.
 *
 * Invariant: the JSON stored for a game's rules and time control is exactly what `readTerms`
 * produced, so a game rebuilt from the store plays under the rules it was created with.
 *
 * Tests: test/services/go/go-service.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  type ChallengeTerms,
  type ChallengeTerms$Shape,
  type ClockState as WireClockState,
  Color as WireColor,
  ColorChoice,
  HandicapBonus,
  KoRule as WireKoRule,
  type MoveRecord$Shape,
  type Point$Shape,
  type Rules$Shape,
  Scoring,
  type TimeControl$Shape,
  TimeSystem,
} from "../../wire/gen/go.js";
import {
  type ClockState,
  type PlayerClockState,
  type TimeControl,
  validateTimeControl,
} from "./game-clock.js";
import type { GoMove } from "./go-game.js";
import type { Point } from "./go-point.js";
import { type Color, type GoRules, goRules } from "./go-rules.js";

export type ColorPreference = "nigiri" | "black" | "white";

export interface Terms {
  readonly rules: GoRules;
  readonly time: TimeControl;
  readonly ranked: boolean;
  readonly color: ColorPreference;
  /** The user name the challenge is addressed to, or "" for an open one. */
  readonly opponent: string;
}

const KO = ["simple", "positional", "situational"] as const;
const BONUS = ["none", "n", "n-1"] as const;

export const wireColor = (c: Color): WireColor => (c === "black" ? WireColor.BLACK : WireColor.WHITE);
export const colorOfWire = (c: WireColor): Color => (c === WireColor.BLACK ? "black" : "white");

function enumValue<T>(values: readonly T[], index: number, field: string): T {
  const v = values[index];
  if (v === undefined) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${field}: unknown value ${index}`);
  return v;
}

/** The rules of a challenge, checked by the engine's own validation. */
export function readRules(r: Rules$Shape): GoRules {
  const handicap = r.handicap ?? 0;
  if (handicap === 1 || handicap > 9) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `rules.handicap is 0 or 2 to 9 stones; got ${handicap}`);
  }
  const komi = r.komi ?? 6.5;
  if (!Number.isFinite(komi) || Math.abs(komi) > 150 || !Number.isInteger(komi * 2)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `rules.komi must be a multiple of 0.5 within ±150; got ${komi}`,
    );
  }
  return goRules({
    size: r.size ?? 19,
    komi,
    koRule: enumValue(KO, r.koRule ?? WireKoRule.POSITIONAL, "rules.koRule"),
    scoring: enumValue(["area", "territory"] as const, r.scoring ?? Scoring.AREA, "rules.scoring"),
    suicide: r.allowSuicide ?? false,
    handicap: r.handicap ?? 0,
    handicapPlacement: r.freeHandicap ? "free" : "fixed",
    whiteHandicapBonus: enumValue(BONUS, r.handicapBonus ?? HandicapBonus.NONE, "rules.handicapBonus"),
  });
}

export function writeRules(r: GoRules): Rules$Shape {
  return {
    size: r.size,
    komi: r.komi,
    koRule: KO.indexOf(r.koRule) as WireKoRule,
    scoring: r.scoring === "area" ? Scoring.AREA : Scoring.TERRITORY,
    allowSuicide: r.suicide,
    handicap: r.handicap,
    freeHandicap: r.handicapPlacement === "free",
    handicapBonus: BONUS.indexOf(r.whiteHandicapBonus) as HandicapBonus,
  };
}

export function readTime(t: TimeControl$Shape): TimeControl {
  const s = t.system ?? TimeSystem.NONE;
  const raw = (() => {
    switch (s) {
      case TimeSystem.NONE:
        return { system: "none" };
      case TimeSystem.ABSOLUTE:
        return { system: "absolute", mainSeconds: t.mainSeconds ?? 0 };
      case TimeSystem.BYOYOMI:
        return {
          system: "byoyomi",
          mainSeconds: t.mainSeconds ?? 0,
          periods: t.periods ?? 0,
          periodSeconds: t.periodSeconds ?? 0,
        };
      case TimeSystem.CANADIAN:
        return {
          system: "canadian",
          mainSeconds: t.mainSeconds ?? 0,
          stonesPerPeriod: t.stonesPerPeriod ?? 0,
          periodSeconds: t.periodSeconds ?? 0,
        };
      case TimeSystem.FISCHER:
        return {
          system: "fischer",
          initialSeconds: t.mainSeconds ?? 0,
          incrementSeconds: t.incrementSeconds ?? 0,
          ...(t.maxSeconds ? { maxSeconds: t.maxSeconds } : {}),
        };
      case TimeSystem.SIMPLE:
        return { system: "simple", perMoveSeconds: t.perMoveSeconds ?? 0 };
      default:
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `time.system: unknown value ${s}`);
    }
  })();
  return validateTimeControl(raw);
}

export function writeTime(t: TimeControl): TimeControl$Shape {
  switch (t.system) {
    case "none":
      return { system: TimeSystem.NONE };
    case "absolute":
      return { system: TimeSystem.ABSOLUTE, mainSeconds: t.mainSeconds };
    case "byoyomi":
      return {
        system: TimeSystem.BYOYOMI,
        mainSeconds: t.mainSeconds,
        periods: t.periods,
        periodSeconds: t.periodSeconds,
      };
    case "canadian":
      return {
        system: TimeSystem.CANADIAN,
        mainSeconds: t.mainSeconds,
        stonesPerPeriod: t.stonesPerPeriod,
        periodSeconds: t.periodSeconds,
      };
    case "fischer":
      return {
        system: TimeSystem.FISCHER,
        mainSeconds: t.initialSeconds,
        incrementSeconds: t.incrementSeconds,
        maxSeconds: t.maxSeconds ?? 0,
      };
    case "simple":
      return { system: TimeSystem.SIMPLE, perMoveSeconds: t.perMoveSeconds };
  }
}

export const MAX_NAME_CHARS = 100;

export function readTerms(t: ChallengeTerms): Terms {
  const color = enumValue(["nigiri", "black", "white"] as const, t.color, "terms.color");
  const opponent = t.opponent;
  if (opponent.length > MAX_NAME_CHARS) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `terms.opponent: at most ${MAX_NAME_CHARS} characters`);
  }
  return {
    rules: readRules(t.rules.$toObject()),
    time: readTime(t.time.$toObject()),
    ranked: t.ranked,
    color,
    opponent,
  };
}

export function writeTerms(t: Terms): ChallengeTerms$Shape {
  return {
    rules: writeRules(t.rules),
    time: writeTime(t.time),
    ranked: t.ranked,
    color:
      t.color === "nigiri" ? ColorChoice.NIGIRI : t.color === "black" ? ColorChoice.BLACK : ColorChoice.WHITE,
    opponent: t.opponent,
  };
}

/** A point from the wire, on a board of `size` (BAD_ARGUMENT off the board). */
export function readPoint(
  p: { readonly x: number; readonly y: number },
  size: number,
  field = "point",
): Point {
  const { x, y } = p;
  if (x >= size || y >= size) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${field} (${x}, ${y}) is off the ${size}×${size} board (0 ≤ x, y < ${size})`,
    );
  }
  return { x, y };
}

export const writePoint = (p: Point): Point$Shape => ({ x: p.x, y: p.y });

export function writeMove(move: GoMove, number: number, at: number): MoveRecord$Shape {
  return move.kind === "play"
    ? {
        number,
        color: wireColor(move.color),
        play: writePoint(move.point),
        captured: move.suicide ? [] : move.captured.map(writePoint),
        at: BigInt(at),
      }
    : { number, color: wireColor(move.color), pass: null, captured: [], at: BigInt(at) };
}

function writePlayerClock(s: PlayerClockState, running: boolean): Parameters<WireClockState["$set"]>[0] {
  return {
    mainMs: BigInt(Math.max(0, Math.floor(s.mainMs))),
    periodMs: BigInt(Math.max(0, Math.floor(s.periodMs))),
    periodsLeft: s.periodsLeft,
    stonesLeft: s.stonesLeft,
    inOvertime: s.inOvertime,
    running,
  };
}

export function writeClocks(s: ClockState, at: number) {
  const runs = (c: Color) => !s.paused && !s.stopped && s.toMove === c;
  return {
    black: writePlayerClock(s.black, runs("black")),
    white: writePlayerClock(s.white, runs("white")),
    at: BigInt(at),
    paused: s.paused,
  };
}
