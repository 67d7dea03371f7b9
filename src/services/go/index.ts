/**
 * The Go rules engine's public API: a pure module (no RPC, no store), re-exported from src/index.ts.
 *
 * Tests: test/services/go/
 */
export type { GoEnd, GoMove, GoPhase, IllegalReason, MoveOutcome, Verdict } from "./go-game.js";
export { GoGame } from "./go-game.js";
export type { Point } from "./go-point.js";
export { checkPoint, gtpToPoint, isOnBoard, pointToGtp, pointToSgf, samePoint } from "./go-point.js";
export type {
  Color,
  GoRulePreset,
  GoRules,
  GoRulesInput,
  HandicapBonus,
  HandicapPlacement,
  KoRule,
  ScoringRule,
} from "./go-rules.js";
export {
  DEFAULT_GO_RULES,
  GO_LIMITS,
  GO_RULE_PRESETS,
  checkBoardSize,
  goRules,
  maxFixedHandicap,
  otherColor,
} from "./go-rules.js";
export { fixedHandicapPoints } from "./handicap.js";
export type { GoScore } from "./scoring.js";
export { formatScoreResult } from "./scoring.js";
export type { ParsedSgf, SgfGameInfo, SgfLimits } from "./sgf.js";
export { parseSgf, SGF_LIMITS, writeSgf } from "./sgf.js";
