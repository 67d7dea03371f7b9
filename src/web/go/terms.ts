/**
 * The challenge form's values as `ChallengeTerms`, and terms back in words for the lists. The
 * page checks what a form can get wrong (a number that is not one, a komi that is not a multiple
 * of 0.5, a byo-yomi without periods) so the user reads which field to fix; the server checks
 * everything again (schema/go.capnp) and its answer is shown as it comes.
 *
 * Invariant: `readTermsForm` answers either terms the server's limits accept for every field it
 * checks here, or a message naming the field — never both, never terms with a NaN in them.
 *
 * Tests: test/web/go.test.ts ("reads the challenge form")
 */
import {
  type ChallengeTerms$Shape,
  ColorChoice,
  KoRule,
  Scoring,
  type TimeControl$Shape,
  TimeSystem,
} from "../../wire/gen/go.js";
import { describeTime, type TimeTerms } from "./clock-view.js";

/** The form's controls, by name, as strings (checkboxes: "on" or ""). */
export interface TermsForm {
  readonly size: string;
  readonly komi: string;
  readonly handicap: string;
  readonly time: string;
  readonly mainMinutes: string;
  readonly periodSeconds: string;
  readonly periods: string;
  readonly stones: string;
  readonly incrementSeconds: string;
  readonly perMoveSeconds: string;
  readonly color: string;
  readonly opponent: string;
  readonly ranked: string;
}

export const TIME_SYSTEMS: Readonly<Record<string, number>> = Object.freeze({
  none: TimeSystem.NONE,
  absolute: TimeSystem.ABSOLUTE,
  byoyomi: TimeSystem.BYOYOMI,
  canadian: TimeSystem.CANADIAN,
  fischer: TimeSystem.FISCHER,
  simple: TimeSystem.SIMPLE,
});

/** Which of the form's time fields each system uses (the page hides the others). */
export const TIME_FIELDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  none: [],
  absolute: ["mainMinutes"],
  byoyomi: ["mainMinutes", "periods", "periodSeconds"],
  canadian: ["mainMinutes", "stones", "periodSeconds"],
  fischer: ["mainMinutes", "incrementSeconds"],
  simple: ["perMoveSeconds"],
});

const COLORS: Readonly<Record<string, number>> = Object.freeze({
  nigiri: ColorChoice.NIGIRI,
  black: ColorChoice.BLACK,
  white: ColorChoice.WHITE,
});

/** The longest duration a field may hold: 30 days, as the server's limit. */
const MAX_SECONDS = 30 * 24 * 3600;

export type TermsResult =
  | { readonly ok: true; readonly terms: ChallengeTerms$Shape }
  | { readonly ok: false; readonly error: string };

function whole(value: string, field: string, min: number, max: number): number | string {
  const t = value.trim();
  if (!/^[0-9]+$/.test(t)) return `${field}: a whole number, please`;
  const n = Number(t);
  if (n < min || n > max) return `${field}: between ${min} and ${max}`;
  return n;
}

/** The terms the form describes, or what to fix. */
export function readTermsForm(form: TermsForm): TermsResult {
  const fail = (error: string): TermsResult => ({ ok: false, error });
  const size = Number(form.size);
  if (![9, 13, 19].includes(size)) return fail("Board size: 9, 13 or 19");
  const komi = Number(form.komi.trim());
  if (
    form.komi.trim() === "" ||
    !Number.isFinite(komi) ||
    !Number.isInteger(komi * 2) ||
    Math.abs(komi) > 150
  ) {
    return fail("Komi: a multiple of 0.5 between -150 and 150");
  }
  const handicap = Number(form.handicap);
  if (!Number.isInteger(handicap) || handicap === 1 || handicap < 0 || handicap > 9) {
    return fail("Handicap: none, or 2 to 9 stones");
  }
  const system = TIME_SYSTEMS[form.time];
  if (system === undefined) return fail("Time: choose a time system");
  const time: Record<string, number> = { system };
  const fields = TIME_FIELDS[form.time] ?? [];
  const read = (
    name: keyof TermsForm,
    label: string,
    min: number,
    max: number,
    scale = 1,
  ): string | undefined => {
    if (!fields.includes(name)) return undefined;
    const n = whole(form[name], label, min, max);
    if (typeof n === "string") return n;
    time[name] = n * scale;
    return undefined;
  };
  const problem =
    read(
      "mainMinutes",
      "Main time (minutes)",
      system === TimeSystem.ABSOLUTE || system === TimeSystem.FISCHER ? 1 : 0,
      MAX_SECONDS / 60,
      60,
    ) ??
    read("periods", "Periods", 1, 100) ??
    read("stones", "Stones per period", 1, 100) ??
    read("periodSeconds", "Period (seconds)", 1, MAX_SECONDS) ??
    read("incrementSeconds", "Increment (seconds)", 0, MAX_SECONDS) ??
    read("perMoveSeconds", "Time per move (seconds)", 1, MAX_SECONDS);
  if (problem !== undefined) return fail(problem);
  const color = COLORS[form.color];
  if (color === undefined) return fail("Colour: nigiri, black or white");
  const opponent = form.opponent.trim();
  if (opponent.length > 64) return fail("Opponent: a user name (at most 64 characters)");
  const tc: TimeControl$Shape = {
    system: system as TimeControl$Shape["system"],
    mainSeconds: time.mainMinutes ?? 0,
    periods: time.periods ?? 0,
    stonesPerPeriod: time.stones ?? 0,
    periodSeconds: time.periodSeconds ?? 0,
    incrementSeconds: time.incrementSeconds ?? 0,
    perMoveSeconds: time.perMoveSeconds ?? 0,
  };
  return {
    ok: true,
    terms: {
      rules: {
        size,
        komi,
        koRule: KoRule.POSITIONAL,
        scoring: Scoring.AREA,
        handicap,
      },
      time: tc,
      ranked: form.ranked === "on",
      color: color as ChallengeTerms$Shape["color"],
      opponent,
    },
  };
}

/** The terms in words: "9×9, komi 6.5, byo-yomi 10:00 + 5 × 0:30, ranked, challenger black". */
export function describeTerms(t: {
  readonly rules: { readonly size: number; readonly komi: number; readonly handicap: number };
  readonly time: TimeTerms;
  readonly ranked: boolean;
  readonly color: number;
}): string {
  const parts = [`${t.rules.size}×${t.rules.size}`, `komi ${t.rules.komi}`];
  if (t.rules.handicap > 0) parts.push(`${t.rules.handicap} handicap stones`);
  parts.push(describeTime(t.time), t.ranked ? "ranked" : "free");
  parts.push(
    t.color === ColorChoice.BLACK
      ? "challenger black"
      : t.color === ColorChoice.WHITE
        ? "challenger white"
        : "nigiri",
  );
  return parts.join(", ");
}
