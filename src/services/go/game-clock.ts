/**
 * Go time controls as a pure state machine: no timers, no `Date.now`. Every operation is given the
 * time (`now`, in ms) by the caller, which reads it from the injected `Clock` (src/clock.ts) and arms
 * one timer for `timeoutAt()` (the flag) or `nextBoundaryAt(now)` (the next change a display shows).
 *
 * Systems (`TimeControl`, whole seconds; OGS's system names):
 * - `none`: no limit. `absolute`: main time only.
 * - `byoyomi`: main time, then `periods` periods of `periodSeconds`. A period is used up only when
 *   it runs out; a move within a period starts the next move with that period full again.
 * - `canadian`: main time, then `stonesPerPeriod` moves within `periodSeconds`; after the last of
 *   them the period starts again full (time left over is lost, as on KGS and OGS).
 * - `fischer`: `initialSeconds`, plus `incrementSeconds` after each move, never above `maxSeconds`
 *   (when given).
 * - `simple`: `perMoveSeconds` for every move; nothing carries over.
 *
 * Invariants:
 * - The deadline is exclusive: a player whose time ends at `d` has flagged at `now >= d`. A move at
 *   exactly `d` is a timeout, and a period ending exactly at `d` is used up at `d` — the same instant
 *   a timer armed for `d` fires, so `checkTimeout(timeoutAt())` always reports the flag.
 * - A move arriving after the flag fell is a timeout (`moveMade` returns it), never a move.
 * - Remaining times in every `ClockState` are ≥ 0; after a timeout the clock is stopped for good.
 * - `now` never goes backwards across calls (a `BAD_ARGUMENT` otherwise); paused time is charged
 *   to no one.
 * - Configs are validated on entry (`validateTimeControl`): whole seconds, within `TIME_CONTROL_LIMITS`.
 *
 * SGF (`timeControlToSgf` / `timeControlFromSgf`): `TM` is main time in seconds; `OT` is written as
 * KGS and OGS write it: `5x30 byo-yomi`, `25/600 Canadian`, `30 fischer`, `60 simple` (TM[0]);
 * absolute has TM only, none neither. Sources: OGS's parser (online-go/goban,
 * src/engine/util/sgfTime.ts, `parseSGFOvertime`), OGS's rating scripts reading its SGF exports
 * (online-go/goratings, `(\d+) fischer`, `(\d+) simple`), KGS's help page on time systems (no
 * Fischer on KGS). OGS writes no cap for Fischer; we append ` max 600` when there is one (our
 * extension: OGS's anchored parser then ignores the OT, GNU Go and most readers ignore OT anyway).
 *
 * `timeControlToFlat` / `timeControlFromFlat` convert to and from schema/go.capnp's flat, ms-based
 * `TimeControl` (whole seconds only).
 *
 * Tests: test/services/go/game-clock.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";

type Color = "black" | "white";

export type TimeControl =
  | { readonly system: "none" }
  | { readonly system: "absolute"; readonly mainSeconds: number }
  | {
      readonly system: "byoyomi";
      readonly mainSeconds: number;
      readonly periods: number;
      readonly periodSeconds: number;
    }
  | {
      readonly system: "canadian";
      readonly mainSeconds: number;
      readonly stonesPerPeriod: number;
      readonly periodSeconds: number;
    }
  | {
      readonly system: "fischer";
      readonly initialSeconds: number;
      readonly incrementSeconds: number;
      /** The clock never exceeds this after an increment; absent: no cap. */
      readonly maxSeconds?: number;
    }
  | { readonly system: "simple"; readonly perMoveSeconds: number };

export type TimeSystem = TimeControl["system"];

/** Upper bounds of a time control; lower bounds are in `validateTimeControl`'s messages. */
export const TIME_CONTROL_LIMITS = Object.freeze({
  /** Any one duration (main, period, increment, cap, per move): 30 days, in seconds. */
  maxSeconds: 30 * 24 * 3600,
  /** Byo-yomi periods. */
  maxPeriods: 100,
  /** Canadian stones per period. */
  maxStonesPerPeriod: 100,
});

/** What a display shows for one player. All times in ms, all ≥ 0; unused fields are 0. */
export interface PlayerClockState {
  /** Main time left (Fischer: the whole clock; simple: 0). */
  readonly mainMs: number;
  /** Byo-yomi periods left, the current one included. */
  readonly periodsLeft: number;
  /** Time left in the current period (byo-yomi, Canadian overtime) or for this move (simple). */
  readonly periodMs: number;
  /** Canadian: moves still to play in the current period. */
  readonly stonesLeft: number;
  /** In byo-yomi or Canadian overtime (main time used up). */
  readonly inOvertime: boolean;
}

export interface ClockState {
  readonly system: TimeSystem;
  readonly black: PlayerClockState;
  readonly white: PlayerClockState;
  /** Whose clock runs (or would, while paused); undefined before `start`. */
  readonly toMove: Color | undefined;
  readonly paused: boolean;
  /** Stopped by a timeout or `stop`: nothing runs any more. */
  readonly stopped: boolean;
  /** Who ran out of time, if anyone. */
  readonly timedOut: Color | undefined;
}

/** What a move, pause, stop or timer check found: the move counted, or the flag had fallen. */
export type ClockOutcome =
  | { readonly kind: "ok" }
  | { readonly kind: "timeout"; readonly loser: Color /** When the flag fell. */; readonly at: number };

/** The clock's whole state, JSON-safe, for a store; `GameClock.restore` takes it back. */
export interface ClockSnapshot {
  readonly control: TimeControl;
  readonly black: PlayerBudget;
  readonly white: PlayerBudget;
  readonly toMove: Color | null;
  /** When the running player's current stretch began (ms), or null when nothing runs. */
  readonly runningSince: number | null;
  readonly paused: boolean;
  readonly stopped: boolean;
  readonly timedOut: Color | null;
  /** When the flag fell, if it did. */
  readonly flagAt: number | null;
  readonly lastNow: number | null;
}

/** One player's budget in ms, as at `runningSince` (for the player to move) or now (the other). */
interface PlayerBudget {
  readonly mainMs: number;
  readonly periodsLeft: number;
  readonly periodMs: number;
  readonly stonesLeft: number;
}

const OK: ClockOutcome = Object.freeze({ kind: "ok" });

export class GameClock {
  readonly control: TimeControl;
  #budget: { black: PlayerBudget; white: PlayerBudget };
  #toMove: Color | undefined;
  #runningSince: number | undefined;
  #paused = false;
  #stopped = false;
  #timedOut: Color | undefined;
  #flagAt: number | undefined;
  #lastNow: number | undefined;

  /** A clock for `control` (validated), not yet started. */
  constructor(control: TimeControl) {
    this.control = validateTimeControl(control);
    const b = initialBudget(this.control);
    this.#budget = { black: b, white: b };
  }

  /** Starts `first`'s clock at `now` (White first in handicap games with free placement done). */
  start(now: number, first: Color = "black"): void {
    this.#advance(now);
    if (this.#toMove !== undefined) throw bad("the clock has already started");
    checkColor(first);
    this.#toMove = first;
    this.#runningSince = now;
  }

  /**
   * `color` moved (a pass counts) at `now`. Charges the time since its clock started, applies the
   * period reset, Canadian stone count or Fischer increment, and starts the opponent's clock. If
   * `color`'s time had run out by `now` the move does not count: the clock stops and the timeout
   * is returned.
   */
  moveMade(color: Color, now: number): ClockOutcome {
    this.#advance(now);
    checkColor(color);
    this.#mustRun();
    if (color !== this.#toMove) throw bad(`it is ${this.#toMove}'s clock that runs, not ${color}'s`);
    const outcome = this.#charge(now);
    if (outcome.kind === "timeout") return outcome;
    this.#budget[color] = afterMove(this.control, this.#budget[color]);
    this.#toMove = other(color);
    this.#runningSince = now;
    return OK;
  }

  /** Stops the running clock at `now` (a player dropped). A flag already fallen is returned instead. */
  pause(now: number): ClockOutcome {
    this.#advance(now);
    this.#mustRun();
    const outcome = this.#charge(now);
    if (outcome.kind === "timeout") return outcome;
    this.#paused = true;
    this.#runningSince = undefined;
    return OK;
  }

  /** Restarts the paused clock at `now`; the paused stretch is charged to no one. */
  resume(now: number): void {
    this.#advance(now);
    if (!this.#paused) throw bad("the clock is not paused");
    this.#paused = false;
    this.#runningSince = now;
  }

  /**
   * The timer fired (or anyone asks): if the running player's time is up at `now`, the clock stops
   * and the timeout is returned.
   */
  checkTimeout(now: number): ClockOutcome {
    this.#advance(now);
    if (this.#timedOut !== undefined) {
      return { kind: "timeout", loser: this.#timedOut, at: this.#flagAt ?? now };
    }
    if (this.#toMove === undefined || this.#stopped || this.#paused) return OK;
    const deadline = this.timeoutAt();
    if (deadline !== undefined && now >= deadline) return this.#flag(deadline);
    return OK;
  }

  /**
   * The game ended otherwise (resignation, scoring) at `now`: the clock stops for good. If the
   * running player's flag had fallen first, that timeout is returned (the caller decides what wins).
   */
  stop(now: number): ClockOutcome {
    const outcome = this.checkTimeout(now);
    if (outcome.kind === "timeout") return outcome;
    if (this.#runningSince !== undefined && this.#toMove !== undefined) {
      const b = this.#budget[this.#toMove];
      this.#budget[this.#toMove] =
        charged(this.control, b, now - this.#runningSince) ?? zeroBudget(this.control, b);
    }
    this.#stopped = true;
    this.#runningSince = undefined;
    return OK;
  }

  /**
   * When the running player's flag falls (ms), or undefined when no clock runs (not started,
   * paused, stopped, or no time limit). A move at exactly this instant is too late.
   */
  timeoutAt(): number | undefined {
    if (this.#runningSince === undefined || this.#toMove === undefined) return undefined;
    const total = totalMs(this.control, this.#budget[this.#toMove]);
    return total === Number.POSITIVE_INFINITY ? undefined : this.#runningSince + total;
  }

  /**
   * The first instant after `now` at which the running player's display changes discretely: main
   * time ends, a byo-yomi period is used up, or the flag falls. At or after the flag: the flag's
   * instant. Undefined when `timeoutAt()` is.
   */
  nextBoundaryAt(now: number): number | undefined {
    checkNow(now);
    const deadline = this.timeoutAt();
    if (deadline === undefined || this.#runningSince === undefined || this.#toMove === undefined) {
      return undefined;
    }
    if (now >= deadline) return deadline;
    const start = this.#runningSince;
    const b = this.#budget[this.#toMove];
    const c = this.control;
    if (c.system === "byoyomi" || c.system === "canadian") {
      const mainEnd = start + b.mainMs;
      if (b.mainMs > 0 && now < mainEnd) return mainEnd;
      if (c.system === "byoyomi") {
        const firstEnd = start + b.mainMs + b.periodMs;
        if (now < firstEnd) return firstEnd;
        const p = c.periodSeconds * 1000;
        return Math.min(deadline, firstEnd + (Math.floor((now - firstEnd) / p) + 1) * p);
      }
    }
    return deadline;
  }

  /** What a display shows at `now` (≥ the last time given); a flag fallen by `now` shows as 0. */
  state(now: number): ClockState {
    checkNow(now);
    if (this.#lastNow !== undefined && now < this.#lastNow) throw backwards(now, this.#lastNow);
    const show = (color: Color): PlayerClockState => {
      let b = this.#budget[color];
      if (color === this.#toMove && this.#runningSince !== undefined) {
        b = charged(this.control, b, now - this.#runningSince) ?? zeroBudget(this.control, b);
      }
      if (this.#timedOut === color) b = zeroBudget(this.control, b);
      return display(this.control, b);
    };
    const deadline = this.timeoutAt();
    return {
      system: this.control.system,
      black: show("black"),
      white: show("white"),
      toMove: this.#toMove,
      paused: this.#paused,
      stopped: this.#stopped,
      timedOut: this.#timedOut ?? (deadline !== undefined && now >= deadline ? this.#toMove : undefined),
    };
  }

  snapshot(): ClockSnapshot {
    return {
      control: this.control,
      black: this.#budget.black,
      white: this.#budget.white,
      toMove: this.#toMove ?? null,
      runningSince: this.#runningSince ?? null,
      paused: this.#paused,
      stopped: this.#stopped,
      timedOut: this.#timedOut ?? null,
      flagAt: this.#flagAt ?? null,
      lastNow: this.#lastNow ?? null,
    };
  }

  /** A clock from `snapshot()` output (e.g. read back from a store); checked like a new config. */
  static restore(s: ClockSnapshot): GameClock {
    const clock = new GameClock(s.control);
    const budget = (b: PlayerBudget, who: string): PlayerBudget => {
      for (const k of ["mainMs", "periodsLeft", "periodMs", "stonesLeft"] as const) {
        const v = b?.[k];
        if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
          throw bad(`clock snapshot: ${who}.${k} must be a finite number >= 0`);
        }
      }
      return { mainMs: b.mainMs, periodsLeft: b.periodsLeft, periodMs: b.periodMs, stonesLeft: b.stonesLeft };
    };
    clock.#budget = { black: budget(s.black, "black"), white: budget(s.white, "white") };
    for (const who of ["black", "white"] as const) {
      if (s.timedOut !== who && !(totalMs(clock.control, clock.#budget[who]) > 0)) {
        throw bad(`clock snapshot: ${who} has no time left but did not time out`);
      }
    }
    if (s.toMove !== null) checkColor(s.toMove);
    if (s.timedOut !== null) checkColor(s.timedOut);
    for (const [k, v] of [
      ["runningSince", s.runningSince],
      ["flagAt", s.flagAt],
      ["lastNow", s.lastNow],
    ] as const) {
      if (v !== null) checkNow(v, `clock snapshot: ${k}`);
    }
    if (s.runningSince !== null && (s.toMove === null || s.paused || s.stopped)) {
      throw bad("clock snapshot: a clock runs only when started, not paused and not stopped");
    }
    clock.#toMove = s.toMove ?? undefined;
    clock.#runningSince = s.runningSince ?? undefined;
    clock.#paused = s.paused === true;
    clock.#stopped = s.stopped === true || s.timedOut !== null;
    clock.#timedOut = s.timedOut ?? undefined;
    clock.#flagAt = s.flagAt ?? undefined;
    clock.#lastNow = s.lastNow ?? undefined;
    return clock;
  }

  #flag(at: number): ClockOutcome {
    const loser = this.#toMove as Color;
    this.#budget[loser] = zeroBudget(this.control, this.#budget[loser]);
    this.#timedOut = loser;
    this.#flagAt = at;
    this.#stopped = true;
    this.#runningSince = undefined;
    return { kind: "timeout", loser, at };
  }

  /** Charges the running stretch up to `now` to the player to move; flags if it is too much. */
  #charge(now: number): ClockOutcome {
    const since = this.#runningSince as number;
    const color = this.#toMove as Color;
    const after = charged(this.control, this.#budget[color], now - since);
    if (after === undefined) return this.#flag(since + totalMs(this.control, this.#budget[color]));
    this.#budget[color] = after;
    this.#runningSince = now;
    return OK;
  }

  #mustRun(): void {
    if (this.#timedOut !== undefined) throw bad(`the clock has stopped: ${this.#timedOut} ran out of time`);
    if (this.#stopped) throw bad("the clock has stopped");
    if (this.#toMove === undefined) throw bad("the clock has not started");
    if (this.#paused) throw bad("the clock is paused");
  }

  #advance(now: number): void {
    checkNow(now);
    if (this.#lastNow !== undefined && now < this.#lastNow) throw backwards(now, this.#lastNow);
    this.#lastNow = now;
  }
}

// --- budgets -------------------------------------------------------------------------------------

function initialBudget(c: TimeControl): PlayerBudget {
  switch (c.system) {
    case "none":
      return { mainMs: 0, periodsLeft: 0, periodMs: 0, stonesLeft: 0 };
    case "absolute":
      return { mainMs: c.mainSeconds * 1000, periodsLeft: 0, periodMs: 0, stonesLeft: 0 };
    case "byoyomi":
      return {
        mainMs: c.mainSeconds * 1000,
        periodsLeft: c.periods,
        periodMs: c.periodSeconds * 1000,
        stonesLeft: 0,
      };
    case "canadian":
      return {
        mainMs: c.mainSeconds * 1000,
        periodsLeft: 0,
        periodMs: c.periodSeconds * 1000,
        stonesLeft: c.stonesPerPeriod,
      };
    case "fischer":
      return { mainMs: c.initialSeconds * 1000, periodsLeft: 0, periodMs: 0, stonesLeft: 0 };
    case "simple":
      return { mainMs: 0, periodsLeft: 0, periodMs: c.perMoveSeconds * 1000, stonesLeft: 0 };
  }
}

/** All the time `b` has before its flag falls (infinite without a limit). */
function totalMs(c: TimeControl, b: PlayerBudget): number {
  switch (c.system) {
    case "none":
      return Number.POSITIVE_INFINITY;
    case "absolute":
    case "fischer":
      return b.mainMs;
    case "byoyomi":
      return b.mainMs + b.periodMs + (b.periodsLeft - 1) * c.periodSeconds * 1000;
    case "canadian":
      return b.mainMs + b.periodMs;
    case "simple":
      return b.periodMs;
  }
}

/** `b` after `ms` more of thinking, or undefined if that reaches the flag (`ms >= total`). */
function charged(c: TimeControl, b: PlayerBudget, ms: number): PlayerBudget | undefined {
  if (c.system === "none") return b;
  if (ms >= totalMs(c, b)) return undefined;
  switch (c.system) {
    case "absolute":
    case "fischer":
      return { ...b, mainMs: b.mainMs - ms };
    case "simple":
      return { ...b, periodMs: b.periodMs - ms };
    case "canadian":
      if (ms < b.mainMs) return { ...b, mainMs: b.mainMs - ms };
      return { ...b, mainMs: 0, periodMs: b.periodMs - (ms - b.mainMs) };
    case "byoyomi": {
      if (ms < b.mainMs) return { ...b, mainMs: b.mainMs - ms };
      let rest = ms - b.mainMs;
      if (rest < b.periodMs) return { ...b, mainMs: 0, periodMs: b.periodMs - rest };
      rest -= b.periodMs;
      const p = c.periodSeconds * 1000;
      const used = Math.floor(rest / p);
      return { ...b, mainMs: 0, periodsLeft: b.periodsLeft - 1 - used, periodMs: p - (rest - used * p) };
    }
  }
}

/** `b` once its move counted (the thinking already charged). */
function afterMove(c: TimeControl, b: PlayerBudget): PlayerBudget {
  switch (c.system) {
    case "none":
    case "absolute":
      return b;
    case "byoyomi":
      return b.mainMs > 0 ? b : { ...b, periodMs: c.periodSeconds * 1000 };
    case "canadian": {
      if (b.mainMs > 0) return b;
      const stones = b.stonesLeft - 1;
      return stones > 0
        ? { ...b, stonesLeft: stones }
        : { ...b, stonesLeft: c.stonesPerPeriod, periodMs: c.periodSeconds * 1000 };
    }
    case "fischer": {
      const next = b.mainMs + c.incrementSeconds * 1000;
      return { ...b, mainMs: c.maxSeconds === undefined ? next : Math.min(next, c.maxSeconds * 1000) };
    }
    case "simple":
      return { ...b, periodMs: c.perMoveSeconds * 1000 };
  }
}

function zeroBudget(c: TimeControl, b: PlayerBudget): PlayerBudget {
  return { mainMs: 0, periodsLeft: 0, periodMs: 0, stonesLeft: c.system === "canadian" ? b.stonesLeft : 0 };
}

function display(c: TimeControl, b: PlayerBudget): PlayerClockState {
  const overtime = (c.system === "byoyomi" || c.system === "canadian") && b.mainMs === 0;
  return {
    mainMs: b.mainMs,
    periodsLeft: b.periodsLeft,
    periodMs: c.system === "canadian" && !overtime ? 0 : b.periodMs,
    stonesLeft: overtime && c.system === "canadian" ? b.stonesLeft : 0,
    inOvertime: overtime,
  };
}

// --- validation ----------------------------------------------------------------------------------

const FIELDS: Record<TimeSystem, readonly string[]> = {
  none: [],
  absolute: ["mainSeconds"],
  byoyomi: ["mainSeconds", "periods", "periodSeconds"],
  canadian: ["mainSeconds", "stonesPerPeriod", "periodSeconds"],
  fischer: ["initialSeconds", "incrementSeconds", "maxSeconds"],
  simple: ["perMoveSeconds"],
};

/**
 * Checks a time control from anywhere (a peer's challenge, a store, an SGF file) and returns a
 * frozen copy. Every field is a whole number within its range; unknown fields are refused, so a
 * misspelt one is not silently ignored.
 */
export function validateTimeControl(c: unknown): TimeControl {
  if (typeof c !== "object" || c === null) throw bad("a time control must be an object");
  const o = c as Record<string, unknown>;
  const system = o.system;
  if (typeof system !== "string" || !Object.hasOwn(FIELDS, system)) {
    throw bad(
      `unknown time system ${describe(system)}: expected none, absolute, byoyomi, canadian, fischer or simple`,
    );
  }
  const fields = FIELDS[system as TimeSystem];
  for (const k of Object.keys(o)) {
    if (k !== "system" && !fields.includes(k)) throw bad(`a ${system} time control has no field ${k}`);
  }
  const { maxSeconds: maxS, maxPeriods, maxStonesPerPeriod } = TIME_CONTROL_LIMITS;
  const int = (k: string, min: number, max: number, unit = "seconds"): number => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v)) {
      throw bad(`${system}.${k} must be a whole number of ${unit}, not ${describe(v)}`);
    }
    if (v < min || v > max) throw bad(`${system}.${k} must be between ${min} and ${max} ${unit}, not ${v}`);
    return v;
  };
  switch (system as TimeSystem) {
    case "none":
      return Object.freeze({ system: "none" });
    case "absolute":
      return Object.freeze({ system: "absolute", mainSeconds: int("mainSeconds", 1, maxS) });
    case "byoyomi":
      return Object.freeze({
        system: "byoyomi",
        mainSeconds: int("mainSeconds", 0, maxS),
        periods: int("periods", 1, maxPeriods, "periods"),
        periodSeconds: int("periodSeconds", 1, maxS),
      });
    case "canadian":
      return Object.freeze({
        system: "canadian",
        mainSeconds: int("mainSeconds", 0, maxS),
        stonesPerPeriod: int("stonesPerPeriod", 1, maxStonesPerPeriod, "stones"),
        periodSeconds: int("periodSeconds", 1, maxS),
      });
    case "fischer": {
      const initialSeconds = int("initialSeconds", 1, maxS);
      const incrementSeconds = int("incrementSeconds", 0, maxS);
      if (o.maxSeconds === undefined)
        return Object.freeze({ system: "fischer", initialSeconds, incrementSeconds });
      const cap = int("maxSeconds", 1, maxS);
      if (cap < initialSeconds) {
        throw bad(`fischer.maxSeconds (${cap}) must be at least initialSeconds (${initialSeconds})`);
      }
      return Object.freeze({ system: "fischer", initialSeconds, incrementSeconds, maxSeconds: cap });
    }
    case "simple":
      return Object.freeze({ system: "simple", perMoveSeconds: int("perMoveSeconds", 1, maxS) });
  }
}

// --- the schema's flat form ----------------------------------------------------------------------

/**
 * schema/go.capnp's `TimeControl`: one struct for every system, times in ms, unused fields 0,
 * `maxMs` 0 for an uncapped Fischer clock. Structural, so this module imports no generated code.
 */
export interface FlatTimeControl {
  readonly system: TimeSystem;
  readonly mainMs: number | bigint;
  readonly periodMs: number | bigint;
  readonly periods: number;
  readonly stones: number;
  readonly incrementMs: number | bigint;
  readonly maxMs: number | bigint;
}

/** The flat form of `control` (fields a system does not use are 0). */
export function timeControlToFlat(control: TimeControl): FlatTimeControl {
  const c = validateTimeControl(control);
  const flat = { system: c.system, mainMs: 0, periodMs: 0, periods: 0, stones: 0, incrementMs: 0, maxMs: 0 };
  switch (c.system) {
    case "none":
      return flat;
    case "absolute":
      return { ...flat, mainMs: c.mainSeconds * 1000 };
    case "byoyomi":
      return { ...flat, mainMs: c.mainSeconds * 1000, periods: c.periods, periodMs: c.periodSeconds * 1000 };
    case "canadian":
      return {
        ...flat,
        mainMs: c.mainSeconds * 1000,
        stones: c.stonesPerPeriod,
        periodMs: c.periodSeconds * 1000,
      };
    case "fischer":
      return {
        ...flat,
        mainMs: c.initialSeconds * 1000,
        incrementMs: c.incrementSeconds * 1000,
        maxMs: (c.maxSeconds ?? 0) * 1000,
      };
    case "simple":
      return { ...flat, periodMs: c.perMoveSeconds * 1000 };
  }
}

/**
 * The time control a flat one (e.g. a peer's challenge) describes, checked like any other: times
 * must be whole seconds; fields the system does not use must be 0.
 */
export function timeControlFromFlat(flat: FlatTimeControl): TimeControl {
  if (typeof flat !== "object" || flat === null) throw bad("a time control must be an object");
  const system = flat.system;
  if (typeof system !== "string" || !Object.hasOwn(FIELDS, system)) {
    throw bad(`unknown time system ${describe(system)}`);
  }
  const secs = (k: "mainMs" | "periodMs" | "incrementMs" | "maxMs"): number => {
    const raw = flat[k];
    const ms = typeof raw === "bigint" ? Number(raw) : raw;
    if (typeof ms !== "number" || !Number.isSafeInteger(ms) || ms < 0) {
      throw bad(`${system}.${k} must be a whole number of ms >= 0, not ${describe(ms)}`);
    }
    if (ms % 1000 !== 0) throw bad(`${system}.${k} must be whole seconds, not ${ms} ms`);
    return ms / 1000;
  };
  const count = (k: "periods" | "stones"): number => {
    const v = flat[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw bad(`${system}.${k} must be a whole number >= 0, not ${describe(v)}`);
    }
    return v;
  };
  const used: Record<TimeSystem, readonly string[]> = {
    none: [],
    absolute: ["mainMs"],
    byoyomi: ["mainMs", "periodMs", "periods"],
    canadian: ["mainMs", "periodMs", "stones"],
    fischer: ["mainMs", "incrementMs", "maxMs"],
    simple: ["periodMs"],
  };
  const values = {
    mainMs: secs("mainMs"),
    periodMs: secs("periodMs"),
    incrementMs: secs("incrementMs"),
    maxMs: secs("maxMs"),
    periods: count("periods"),
    stones: count("stones"),
  };
  for (const [k, v] of Object.entries(values)) {
    if (v !== 0 && !used[system as TimeSystem].includes(k))
      throw bad(`a ${system} time control uses no ${k}; it must be 0`);
  }
  switch (system as TimeSystem) {
    case "none":
      return validateTimeControl({ system });
    case "absolute":
      return validateTimeControl({ system, mainSeconds: values.mainMs });
    case "byoyomi":
      return validateTimeControl({
        system,
        mainSeconds: values.mainMs,
        periods: values.periods,
        periodSeconds: values.periodMs,
      });
    case "canadian":
      return validateTimeControl({
        system,
        mainSeconds: values.mainMs,
        stonesPerPeriod: values.stones,
        periodSeconds: values.periodMs,
      });
    case "fischer":
      return validateTimeControl({
        system,
        initialSeconds: values.mainMs,
        incrementSeconds: values.incrementMs,
        ...(values.maxMs === 0 ? {} : { maxSeconds: values.maxMs }),
      });
    case "simple":
      return validateTimeControl({ system, perMoveSeconds: values.periodMs });
  }
}

// --- SGF -----------------------------------------------------------------------------------------

/** SGF game-info values for a time control: `TM` (main time, seconds) and `OT`; absent ones unset. */
export interface SgfTimeProperties {
  readonly TM?: string;
  readonly OT?: string;
}

/** The `TM` and `OT` values KGS and OGS would write for `control` (see the header). */
export function timeControlToSgf(control: TimeControl): SgfTimeProperties {
  const c = validateTimeControl(control);
  switch (c.system) {
    case "none":
      return {};
    case "absolute":
      return { TM: `${c.mainSeconds}` };
    case "byoyomi":
      return { TM: `${c.mainSeconds}`, OT: `${c.periods}x${c.periodSeconds} byo-yomi` };
    case "canadian":
      return { TM: `${c.mainSeconds}`, OT: `${c.stonesPerPeriod}/${c.periodSeconds} Canadian` };
    case "fischer":
      return {
        TM: `${c.initialSeconds}`,
        OT: `${c.incrementSeconds} fischer${c.maxSeconds === undefined ? "" : ` max ${c.maxSeconds}`}`,
      };
    case "simple":
      return { TM: "0", OT: `${c.perMoveSeconds} simple` };
  }
}

const NUM = String.raw`(\d{1,12}(?:\.\d{1,6})?)`;
type Nums = readonly (number | undefined)[];
const OT_FORMS: readonly {
  re: RegExp;
  make: (n: Nums, tm: number | undefined) => Record<string, unknown>;
}[] = [
  {
    re: new RegExp(String.raw`^(\d{1,12})\s*x\s*${NUM}\s*byo-?yomi$`, "i"),
    make: ([periods, period], tm) => ({
      system: "byoyomi",
      mainSeconds: tm ?? 0,
      periods,
      periodSeconds: period,
    }),
  },
  {
    re: new RegExp(String.raw`^(\d{1,12})\s*/\s*${NUM}\s*canadian$`, "i"),
    make: ([stones, period], tm) => ({
      system: "canadian",
      mainSeconds: tm ?? 0,
      stonesPerPeriod: stones,
      periodSeconds: period,
    }),
  },
  {
    re: new RegExp(String.raw`^${NUM}\s*fischer(?:\s*,?\s*max\s*${NUM})?$`, "i"),
    make: ([inc, cap], tm) => ({
      system: "fischer",
      initialSeconds: tm,
      incrementSeconds: inc,
      ...(cap === undefined ? {} : { maxSeconds: cap }),
    }),
  },
  {
    re: new RegExp(String.raw`^${NUM}\s*simple$`, "i"),
    make: ([perMove]) => ({ system: "simple", perMoveSeconds: perMove }),
  },
];

/**
 * The time control an SGF game records, from its `TM` and `OT` values (either may be absent). No TM
 * (or TM[0]) and no OT: none. TM alone: absolute. OT in one of the forms above (case and spacing
 * as KGS, OGS and CGoban vary them): that system, with TM as its main time (absent: 0). Anything
 * else, and fractional seconds, is a `BAD_ARGUMENT` naming the value.
 */
export function timeControlFromSgf(tm: string | undefined, ot: string | undefined): TimeControl {
  const mainSeconds = tm === undefined || tm.trim() === "" ? undefined : wholeSeconds(tm.trim(), "TM");
  const text = ot?.trim() ?? "";
  if (text === "") {
    return mainSeconds === undefined || mainSeconds === 0
      ? validateTimeControl({ system: "none" })
      : validateTimeControl({ system: "absolute", mainSeconds });
  }
  for (const form of OT_FORMS) {
    const m = form.re.exec(text);
    if (m === null) continue;
    const made = form.make(
      m.slice(1).map((s) => (s === undefined ? undefined : wholeSeconds(s, "OT"))),
      mainSeconds,
    );
    if (made.system === "fischer" && made.initialSeconds === undefined) {
      throw bad(`SGF OT[${clip(text)}] is Fischer, which needs a TM (initial time)`);
    }
    return validateTimeControl(made);
  }
  throw bad(
    `SGF OT[${clip(text)}] is not a time system we read: expected "5x30 byo-yomi", "25/600 Canadian", "30 fischer" or "60 simple"`,
  );
}

function wholeSeconds(s: string, prop: string): number {
  if (!new RegExp(`^${NUM}$`).test(s)) throw bad(`SGF ${prop}[${clip(s)}] is not a number of seconds`);
  const n = Number(s);
  if (!Number.isInteger(n))
    throw bad(`SGF ${prop}[${clip(s)}] has fractional seconds; we keep whole seconds`);
  return n;
}

// --- helpers -------------------------------------------------------------------------------------

function other(c: Color): Color {
  return c === "black" ? "white" : "black";
}

function checkColor(c: unknown): asserts c is Color {
  if (c !== "black" && c !== "white") throw bad(`a colour is "black" or "white", not ${describe(c)}`);
}

function checkNow(now: number, what = "now"): void {
  if (typeof now !== "number" || !Number.isFinite(now) || now < 0) {
    throw bad(`${what} must be a finite time in ms since the epoch, not ${describe(now)}`);
  }
}

function backwards(now: number, last: number): ParallaxError {
  return bad(`time went backwards: ${now} ms after ${last} ms`);
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(clip(v));
  if (typeof v === "number" || typeof v === "boolean" || v === undefined || v === null) return String(v);
  return typeof v;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}
