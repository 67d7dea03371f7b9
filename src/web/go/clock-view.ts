/**
 * The Go page's clocks between two readings from the server. The server's `ClockState` is the
 * authority (it decides flags); the page only shows it running down: the running clock's reading
 * is charged with the time elapsed since the page received it, by the rules of the game's time
 * system (src/services/go/game-clock.ts states them: byo-yomi loses a period only when it runs
 * out, Canadian has `stonesLeft` moves in the period, simple has only the move's time).
 *
 * Invariants: a projection never shows more time than the reading it started from, never less
 * than zero, and a stopped clock (not running, or paused for scoring) does not move. The
 * elapsed time is measured on the page's own clock from the moment the reading arrived, never
 * from the server's `at`, so a page whose clock is off by minutes still counts down correctly.
 *
 * Tests: test/web/go.test.ts ("projects clocks")
 */
import { TimeSystem } from "../../wire/gen/go.js";

/** A player's clock as ClockState has it (bigints read out as numbers). */
export interface ClockReading {
  readonly mainMs: number;
  readonly periodMs: number;
  readonly periodsLeft: number;
  readonly stonesLeft: number;
  readonly inOvertime: boolean;
  readonly running: boolean;
}

/** The game's TimeControl (whole seconds). */
export interface TimeTerms {
  readonly system: number;
  readonly mainSeconds: number;
  readonly periodSeconds: number;
  readonly periods: number;
  readonly stonesPerPeriod: number;
  readonly incrementSeconds: number;
  readonly maxSeconds: number;
  readonly perMoveSeconds: number;
}

export interface ProjectedClock {
  readonly mainMs: number;
  readonly periodMs: number;
  readonly periodsLeft: number;
  readonly stonesLeft: number;
  readonly overtime: boolean;
  /** Every bit of time is used: the server is about to (or did) end the game on time. */
  readonly out: boolean;
}

/** `reading` after `elapsedMs` more of thinking (`paused`: the clocks stopped for scoring). */
export function projectClock(
  time: TimeTerms,
  reading: ClockReading,
  elapsedMs: number,
  paused = false,
): ProjectedClock {
  const ms = reading.running && !paused ? Math.max(0, elapsedMs) : 0;
  const { mainMs, periodsLeft } = reading;
  const period = time.periodSeconds * 1000;
  switch (time.system) {
    case TimeSystem.NONE:
      return { mainMs: 0, periodMs: 0, periodsLeft: 0, stonesLeft: 0, overtime: false, out: false };
    case TimeSystem.ABSOLUTE:
    case TimeSystem.FISCHER: {
      const left = Math.max(0, mainMs - ms);
      return { mainMs: left, periodMs: 0, periodsLeft: 0, stonesLeft: 0, overtime: false, out: left === 0 };
    }
    case TimeSystem.SIMPLE: {
      const left = Math.max(0, reading.periodMs - ms);
      return { mainMs: 0, periodMs: left, periodsLeft: 0, stonesLeft: 0, overtime: false, out: left === 0 };
    }
    case TimeSystem.CANADIAN: {
      // In main time the reading shows no period: the first one is still whole.
      const periodMs = reading.inOvertime ? reading.periodMs : period;
      const stonesLeft = reading.inOvertime ? reading.stonesLeft : time.stonesPerPeriod;
      if (ms < mainMs)
        return { mainMs: mainMs - ms, periodMs, periodsLeft: 0, stonesLeft, overtime: false, out: false };
      const left = Math.max(0, periodMs - (ms - mainMs));
      return { mainMs: 0, periodMs: left, periodsLeft: 0, stonesLeft, overtime: true, out: left === 0 };
    }
    case TimeSystem.BYOYOMI: {
      const periodMs = reading.periodMs > 0 ? reading.periodMs : period;
      const base = { stonesLeft: 0 };
      if (ms < mainMs)
        return { ...base, mainMs: mainMs - ms, periodMs, periodsLeft, overtime: false, out: false };
      let rest = ms - mainMs;
      if (rest < periodMs)
        return { ...base, mainMs: 0, periodMs: periodMs - rest, periodsLeft, overtime: true, out: false };
      rest -= periodMs;
      const used = period > 0 ? Math.floor(rest / period) : periodsLeft;
      const left = periodsLeft - 1 - used;
      if (left <= 0) return { ...base, mainMs: 0, periodMs: 0, periodsLeft: 0, overtime: true, out: true };
      return {
        ...base,
        mainMs: 0,
        periodMs: period - (rest - used * period),
        periodsLeft: left,
        overtime: true,
        out: false,
      };
    }
    default:
      return { mainMs, periodMs: reading.periodMs, periodsLeft, stonesLeft: 0, overtime: false, out: false };
  }
}

/** 65 000 ms → "1:05"; 3 725 000 → "1:02:05". Rounds up: "0:00" means the time is gone. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** What the clock shows, e.g. "4:59 + 5 × 0:30", "0:21 (period 3 of 5 left)", "1:40 for 8 stones". */
export function clockText(time: TimeTerms, c: ProjectedClock): string {
  switch (time.system) {
    case TimeSystem.NONE:
      return "no time limit";
    case TimeSystem.ABSOLUTE:
    case TimeSystem.FISCHER:
      return formatDuration(c.mainMs);
    case TimeSystem.SIMPLE:
      return `${formatDuration(c.periodMs)} for this move`;
    case TimeSystem.CANADIAN:
      return c.overtime
        ? `${formatDuration(c.periodMs)} for ${c.stonesLeft} stone${c.stonesLeft === 1 ? "" : "s"}`
        : `${formatDuration(c.mainMs)} + ${formatDuration(time.periodSeconds * 1000)} for ${time.stonesPerPeriod} stones`;
    case TimeSystem.BYOYOMI:
      return c.overtime
        ? `${formatDuration(c.periodMs)} (byo-yomi, ${c.periodsLeft} period${c.periodsLeft === 1 ? "" : "s"} left)`
        : `${formatDuration(c.mainMs)} + ${c.periodsLeft} × ${formatDuration(time.periodSeconds * 1000)}`;
    default:
      return formatDuration(c.mainMs);
  }
}

/** The time system in words, for the challenge list: "byo-yomi 10:00 + 5 × 0:30". */
export function describeTime(time: TimeTerms): string {
  const main = formatDuration(time.mainSeconds * 1000);
  const period = formatDuration(time.periodSeconds * 1000);
  switch (time.system) {
    case TimeSystem.NONE:
      return "no time limit";
    case TimeSystem.ABSOLUTE:
      return `${main} absolute`;
    case TimeSystem.BYOYOMI:
      return `byo-yomi ${main} + ${time.periods} × ${period}`;
    case TimeSystem.CANADIAN:
      return `Canadian ${main} + ${time.stonesPerPeriod} stones in ${period}`;
    case TimeSystem.FISCHER:
      return `Fischer ${main} + ${time.incrementSeconds} s a move${time.maxSeconds > 0 ? `, at most ${formatDuration(time.maxSeconds * 1000)}` : ""}`;
    case TimeSystem.SIMPLE:
      return `${formatDuration(time.perMoveSeconds * 1000)} a move`;
    default:
      return `time system ${time.system}`;
  }
}
