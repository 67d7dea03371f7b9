import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode } from "../../../src/errors.js";
import {
  GameClock,
  type PlayerClockState,
  type TimeControl,
  timeControlFromFlat,
  timeControlFromSgf,
  timeControlToFlat,
  timeControlToSgf,
  validateTimeControl,
} from "../../../src/services/go/game-clock.js";

const T0 = 1_000_000;
const badArgument = (message?: RegExp) =>
  expect.objectContaining({
    code: ErrorCode.BAD_ARGUMENT,
    ...(message ? { message: expect.stringMatching(message) } : {}),
  });

function started(control: TimeControl, first: "black" | "white" = "black"): GameClock {
  const c = new GameClock(control);
  c.start(T0, first);
  return c;
}

const idle: PlayerClockState = { mainMs: 0, periodsLeft: 0, periodMs: 0, stonesLeft: 0, inOvertime: false };

describe("absolute time", () => {
  const control: TimeControl = { system: "absolute", mainSeconds: 10 };

  it("charges each player only for their own thinking", () => {
    const c = started(control);
    expect(c.moveMade("black", T0 + 3000)).toEqual({ kind: "ok" });
    expect(c.moveMade("white", T0 + 5000)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 6000)).toMatchObject({
      black: { ...idle, mainMs: 6000 },
      white: { ...idle, mainMs: 8000 },
      toMove: "black",
    });
    expect(c.timeoutAt()).toBe(T0 + 5000 + 7000);
  });

  it("counts a move 1 ms before the deadline, and one exactly at the deadline as a timeout at the deadline", () => {
    const early = started(control);
    expect(early.moveMade("black", T0 + 9999)).toEqual({ kind: "ok" });
    expect(early.state(T0 + 9999).black.mainMs).toBe(1);

    const late = started(control);
    expect(late.moveMade("black", T0 + 10_000)).toEqual({ kind: "timeout", loser: "black", at: T0 + 10_000 });
    const s = late.state(T0 + 10_000);
    expect(s).toMatchObject({ timedOut: "black", stopped: true, black: idle });
  });

  it("reports a move that arrives long after the flag as a timeout at the flag's instant, and stops for good", () => {
    const c = started(control);
    c.moveMade("black", T0 + 1000);
    expect(c.moveMade("white", T0 + 60_000)).toEqual({ kind: "timeout", loser: "white", at: T0 + 11_000 });
    expect(c.timeoutAt()).toBeUndefined();
    expect(() => c.moveMade("black", T0 + 60_001)).toThrow(badArgument(/white ran out of time/));
    expect(c.checkTimeout(T0 + 70_000)).toEqual({ kind: "timeout", loser: "white", at: T0 + 11_000 });
  });

  it("agrees with a timer armed on the injected clock: it fires at the deadline and the flag has fallen then", () => {
    const clock = new ManualClock(T0);
    const c = new GameClock(control);
    c.start(clock.now());
    clock.advance(4000);
    c.moveMade("black", clock.now());
    const outcomes: unknown[] = [];
    const due = c.timeoutAt() as number;
    clock.setTimer(due - clock.now(), () => outcomes.push(c.checkTimeout(clock.now())));
    clock.advance(9999);
    expect(outcomes).toEqual([]);
    expect(c.checkTimeout(clock.now())).toEqual({ kind: "ok" });
    clock.advance(1);
    expect(outcomes).toEqual([{ kind: "timeout", loser: "white", at: T0 + 14_000 }]);
  });
});

describe("byo-yomi", () => {
  // 10 s main, then 3 periods of 5 s.
  const control: TimeControl = { system: "byoyomi", mainSeconds: 10, periods: 3, periodSeconds: 5 };

  it("enters byo-yomi when main time runs out, and a move within a period starts the next move with it full", () => {
    const c = started(control);
    expect(c.state(T0 + 12_000).black).toEqual({
      mainMs: 0,
      periodsLeft: 3,
      periodMs: 3000,
      stonesLeft: 0,
      inOvertime: true,
    });
    c.moveMade("black", T0 + 12_000);
    expect(c.state(T0 + 12_000).black).toEqual({
      mainMs: 0,
      periodsLeft: 3,
      periodMs: 5000,
      stonesLeft: 0,
      inOvertime: true,
    });
    expect(c.state(T0 + 12_000).white).toEqual({ ...idle, mainMs: 10_000, periodsLeft: 3, periodMs: 5000 });
  });

  it("uses up several periods in one long think, and resets the one it moves in", () => {
    const c = started(control);
    c.moveMade("black", T0 + 12_000); // in byo-yomi, 3 periods
    c.moveMade("white", T0 + 13_000);
    // 11 s: period 1 used (5 s), period 2 used (5 s), 1 s into period 3.
    expect(c.state(T0 + 24_000).black).toMatchObject({ periodsLeft: 1, periodMs: 4000 });
    expect(c.moveMade("black", T0 + 24_000)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 24_000).black).toMatchObject({ mainMs: 0, periodsLeft: 1, periodMs: 5000 });
  });

  it("uses up a period that ends exactly when the move arrives", () => {
    const c = started(control);
    c.moveMade("black", T0 + 10_000); // main ran out at that instant: now in byo-yomi, no period used
    expect(c.state(T0 + 10_000).black).toMatchObject({ mainMs: 0, periodsLeft: 3, periodMs: 5000 });
    c.moveMade("white", T0 + 10_000);
    c.moveMade("black", T0 + 15_000); // exactly one period
    expect(c.state(T0 + 15_000).black).toMatchObject({ periodsLeft: 2, periodMs: 5000 });
  });

  it("flags at main + all periods, exclusive", () => {
    const c = started(control);
    expect(c.timeoutAt()).toBe(T0 + 25_000);
    const late = started(control);
    expect(late.moveMade("black", T0 + 24_999)).toEqual({ kind: "ok" });
    expect(late.state(T0 + 24_999).black).toMatchObject({ periodsLeft: 1, periodMs: 5000 });
    expect(c.moveMade("black", T0 + 25_000)).toEqual({ kind: "timeout", loser: "black", at: T0 + 25_000 });
  });

  it("names each boundary a display needs: end of main time, then each period, then the flag", () => {
    const c = started(control);
    expect(c.nextBoundaryAt(T0)).toBe(T0 + 10_000);
    expect(c.nextBoundaryAt(T0 + 9999)).toBe(T0 + 10_000);
    expect(c.nextBoundaryAt(T0 + 10_000)).toBe(T0 + 15_000);
    expect(c.nextBoundaryAt(T0 + 15_000)).toBe(T0 + 20_000);
    expect(c.nextBoundaryAt(T0 + 21_234)).toBe(T0 + 25_000);
    expect(c.nextBoundaryAt(T0 + 30_000)).toBe(T0 + 25_000);
  });

  it("runs pure byo-yomi (no main time) from the first move", () => {
    const c = started({ system: "byoyomi", mainSeconds: 0, periods: 1, periodSeconds: 30 });
    expect(c.state(T0).black.inOvertime).toBe(true);
    expect(c.moveMade("black", T0 + 29_999)).toEqual({ kind: "ok" });
    expect(c.moveMade("white", T0 + 59_999)).toEqual({ kind: "timeout", loser: "white", at: T0 + 59_999 });
  });
});

describe("Canadian overtime", () => {
  // 10 s main, then 3 stones in 10 s.
  const control: TimeControl = { system: "canadian", mainSeconds: 10, stonesPerPeriod: 3, periodSeconds: 10 };

  it("counts stones in the period and starts it again full after the last, losing time left over", () => {
    const c = started(control);
    c.moveMade("black", T0 + 12_000); // 2 s into overtime: first stone
    expect(c.state(T0 + 12_000).black).toEqual({
      mainMs: 0,
      periodsLeft: 0,
      periodMs: 8000,
      stonesLeft: 2,
      inOvertime: true,
    });
    c.moveMade("white", T0 + 13_000);
    c.moveMade("black", T0 + 16_000);
    expect(c.state(T0 + 16_000).black).toMatchObject({ periodMs: 5000, stonesLeft: 1 });
    c.moveMade("white", T0 + 17_000);
    c.moveMade("black", T0 + 21_000); // third stone with 1 s left: a new period
    expect(c.state(T0 + 21_000).black).toMatchObject({ periodMs: 10_000, stonesLeft: 3 });
    c.moveMade("white", T0 + 22_000);
    expect(c.timeoutAt()).toBe(T0 + 32_000);
    expect(c.moveMade("black", T0 + 32_000)).toEqual({ kind: "timeout", loser: "black", at: T0 + 32_000 });
  });

  it("gives a think that crosses from main time into overtime the whole first period", () => {
    const c = started(control);
    expect(c.timeoutAt()).toBe(T0 + 20_000);
    expect(c.nextBoundaryAt(T0 + 1)).toBe(T0 + 10_000);
    expect(c.moveMade("black", T0 + 19_999)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 19_999).black).toMatchObject({ periodMs: 1, stonesLeft: 2 });
  });

  it("shows no period before overtime", () => {
    const c = started(control);
    expect(c.state(T0 + 1000).black).toEqual({ ...idle, mainMs: 9000 });
  });
});

describe("Fischer", () => {
  it("adds the increment after each move, never above the cap", () => {
    const c = started({ system: "fischer", initialSeconds: 10, incrementSeconds: 5, maxSeconds: 12 });
    c.moveMade("black", T0 + 2000); // 8 + 5 = 13 → 12
    expect(c.state(T0 + 2000).black.mainMs).toBe(12_000);
    c.moveMade("white", T0 + 3000); // 9 + 5 = 14 → 12
    c.moveMade("black", T0 + 12_000); // 12 - 9 = 3, + 5 = 8
    expect(c.state(T0 + 12_000)).toMatchObject({ black: { mainMs: 8000 }, white: { mainMs: 12_000 } });
    expect(c.moveMade("white", T0 + 24_000)).toEqual({ kind: "timeout", loser: "white", at: T0 + 24_000 });
  });

  it("grows without a cap", () => {
    const c = started({ system: "fischer", initialSeconds: 10, incrementSeconds: 5 });
    c.moveMade("black", T0 + 1000);
    c.moveMade("white", T0 + 2000);
    c.moveMade("black", T0 + 3000);
    expect(c.state(T0 + 3000).black.mainMs).toBe(18_000);
  });

  it("gives no increment to a move that came too late", () => {
    const c = started({ system: "fischer", initialSeconds: 10, incrementSeconds: 30 });
    expect(c.moveMade("black", T0 + 10_000)).toMatchObject({ kind: "timeout", loser: "black" });
  });
});

describe("simple time", () => {
  const control: TimeControl = { system: "simple", perMoveSeconds: 5 };

  it("gives every move the same time, carrying nothing over", () => {
    const c = started(control);
    expect(c.moveMade("black", T0 + 1000)).toEqual({ kind: "ok" });
    expect(c.moveMade("white", T0 + 5999)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 5999).black).toEqual({ ...idle, periodMs: 5000 });
    expect(c.timeoutAt()).toBe(T0 + 10_999);
    expect(c.moveMade("black", T0 + 10_999)).toEqual({ kind: "timeout", loser: "black", at: T0 + 10_999 });
  });
});

describe("no time limit", () => {
  it("never flags and arms no timer", () => {
    const c = started({ system: "none" });
    expect(c.timeoutAt()).toBeUndefined();
    expect(c.nextBoundaryAt(T0)).toBeUndefined();
    expect(c.moveMade("black", T0 + 365 * 86_400_000)).toEqual({ kind: "ok" });
    expect(c.checkTimeout(T0 + 2 * 365 * 86_400_000)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 2 * 365 * 86_400_000)).toMatchObject({ black: idle, white: idle, toMove: "white" });
  });
});

describe("pause and resume", () => {
  it("charges no one for the paused stretch", () => {
    const c = started({ system: "absolute", mainSeconds: 10 });
    expect(c.pause(T0 + 3000)).toEqual({ kind: "ok" });
    expect(c.timeoutAt()).toBeUndefined();
    expect(c.state(T0 + 50_000)).toMatchObject({
      paused: true,
      black: { mainMs: 7000 },
      timedOut: undefined,
    });
    expect(c.checkTimeout(T0 + 50_000)).toEqual({ kind: "ok" });
    expect(() => c.moveMade("black", T0 + 50_000)).toThrow(badArgument(/paused/));
    c.resume(T0 + 100_000);
    expect(c.timeoutAt()).toBe(T0 + 107_000);
    expect(c.moveMade("black", T0 + 106_999)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 106_999).black.mainMs).toBe(1);
  });

  it("keeps a byo-yomi period's remainder across a pause (only a move resets it)", () => {
    const c = started({ system: "byoyomi", mainSeconds: 0, periods: 2, periodSeconds: 10 });
    c.pause(T0 + 4000);
    c.resume(T0 + 9000);
    expect(c.state(T0 + 9000).black).toMatchObject({ periodsLeft: 2, periodMs: 6000 });
    expect(c.timeoutAt()).toBe(T0 + 9000 + 16_000);
    c.pause(T0 + 17_000); // 8 s more: the first period ran out 2 s ago
    expect(c.state(T0 + 17_000).black).toMatchObject({ periodsLeft: 1, periodMs: 8000 });
  });

  it("reports a flag that fell before the pause arrived", () => {
    const c = started({ system: "simple", perMoveSeconds: 5 });
    expect(c.pause(T0 + 5000)).toEqual({ kind: "timeout", loser: "black", at: T0 + 5000 });
    expect(() => c.resume(T0 + 6000)).toThrow(badArgument(/not paused/));
  });
});

describe("stopping", () => {
  it("stops for good at resignation, and reports a flag that fell first", () => {
    const c = started({ system: "absolute", mainSeconds: 10 });
    expect(c.stop(T0 + 4000)).toEqual({ kind: "ok" });
    expect(c.state(T0 + 99_000)).toMatchObject({
      stopped: true,
      black: { mainMs: 6000 },
      timedOut: undefined,
    });
    expect(() => c.moveMade("black", T0 + 99_000)).toThrow(badArgument(/stopped/));

    const late = started({ system: "absolute", mainSeconds: 10 });
    expect(late.stop(T0 + 10_000)).toEqual({ kind: "timeout", loser: "black", at: T0 + 10_000 });
  });
});

describe("misuse", () => {
  it("refuses the wrong colour, an unstarted clock, a second start and time going backwards", () => {
    const c = new GameClock({ system: "absolute", mainSeconds: 10 });
    expect(() => c.moveMade("black", T0)).toThrow(badArgument(/not started/));
    expect(() => c.pause(T0)).toThrow(badArgument(/not started/));
    c.start(T0, "white");
    expect(() => c.start(T0)).toThrow(badArgument(/already started/));
    expect(() => c.moveMade("black", T0 + 1)).toThrow(badArgument(/white's clock/));
    expect(() => c.moveMade("white", T0 - 1)).toThrow(badArgument(/backwards/));
    expect(() => c.state(T0 - 1)).toThrow(badArgument(/backwards/));
    expect(() => c.moveMade("white", Number.NaN)).toThrow(badArgument(/finite time/));
    expect(() => c.moveMade("purple" as "black", T0 + 2)).toThrow(badArgument(/"black" or "white"/));
    expect(c.moveMade("white", T0 + 2)).toEqual({ kind: "ok" });
  });

  it("shows a flag that has fallen but not yet been checked, with nothing negative", () => {
    const c = started({ system: "byoyomi", mainSeconds: 1, periods: 2, periodSeconds: 1 });
    const s = c.state(T0 + 99_000);
    expect(s.timedOut).toBe("black");
    expect(s.black).toEqual({ ...idle, inOvertime: true });
  });
});

describe("snapshots", () => {
  it("round-trip through JSON mid-game, paused or flagged", () => {
    const c = started({ system: "canadian", mainSeconds: 1, stonesPerPeriod: 2, periodSeconds: 3 });
    c.moveMade("black", T0 + 1500);
    c.moveMade("white", T0 + 1600);
    const back = GameClock.restore(JSON.parse(JSON.stringify(c.snapshot())));
    expect(back.state(T0 + 2000)).toEqual(c.state(T0 + 2000));
    expect(back.timeoutAt()).toBe(c.timeoutAt());
    expect(back.moveMade("black", T0 + 3000)).toEqual(c.moveMade("black", T0 + 3000));
    expect(back.state(T0 + 3000)).toEqual(c.state(T0 + 3000));
    c.checkTimeout(T0 + 60_000); // white: 900 ms main + a 3 s period from T0 + 3000
    const flagged = GameClock.restore(JSON.parse(JSON.stringify(c.snapshot())));
    expect(flagged.checkTimeout(T0 + 70_000)).toEqual({ kind: "timeout", loser: "white", at: T0 + 6900 });
  });

  it("refuses a snapshot with a broken budget", () => {
    const s = started({ system: "absolute", mainSeconds: 5 }).snapshot();
    expect(() => GameClock.restore({ ...s, black: { ...s.black, mainMs: -1 } })).toThrow(
      badArgument(/black.mainMs/),
    );
    expect(() => GameClock.restore({ ...s, control: { system: "absolute", mainSeconds: -5 } })).toThrow(
      badArgument(),
    );
    expect(() => GameClock.restore({ ...s, paused: true })).toThrow(badArgument(/runs only/));
    expect(() => GameClock.restore({ ...s, white: { ...s.white, mainMs: 0 } })).toThrow(
      badArgument(/white has no time left but did not time out/),
    );
  });
});

describe("hostile configs", () => {
  const DAY = 86_400;
  const cases: [string, unknown, RegExp][] = [
    ["null", null, /must be an object/],
    ["a string", "byoyomi", /must be an object/],
    ["an unknown system", { system: "hourglass" }, /unknown time system "hourglass"/],
    ["a prototype key as system", { system: "__proto__" }, /unknown time system/],
    [
      "a missing field",
      { system: "absolute" },
      /absolute.mainSeconds must be a whole number of seconds, not undefined/,
    ],
    ["NaN", { system: "absolute", mainSeconds: Number.NaN }, /whole number of seconds, not NaN/],
    ["Infinity", { system: "absolute", mainSeconds: Number.POSITIVE_INFINITY }, /not Infinity/],
    ["a fraction", { system: "simple", perMoveSeconds: 1.5 }, /not 1.5/],
    ["a numeric string", { system: "simple", perMoveSeconds: "30" }, /not "30"/],
    [
      "a negative time",
      { system: "byoyomi", mainSeconds: -1, periods: 5, periodSeconds: 30 },
      /between 0 and/,
    ],
    ["main time over 30 days", { system: "absolute", mainSeconds: 30 * DAY + 1 }, /between 1 and 2592000/],
    ["zero absolute time", { system: "absolute", mainSeconds: 0 }, /between 1 and/],
    [
      "zero periods",
      { system: "byoyomi", mainSeconds: 0, periods: 0, periodSeconds: 30 },
      /periods must be between 1 and 100 periods/,
    ],
    [
      "101 periods",
      { system: "byoyomi", mainSeconds: 0, periods: 101, periodSeconds: 30 },
      /between 1 and 100/,
    ],
    [
      "a zero-second period",
      { system: "byoyomi", mainSeconds: 60, periods: 5, periodSeconds: 0 },
      /periodSeconds/,
    ],
    [
      "zero stones",
      { system: "canadian", mainSeconds: 0, stonesPerPeriod: 0, periodSeconds: 300 },
      /stonesPerPeriod/,
    ],
    [
      "a cap below the start",
      { system: "fischer", initialSeconds: 600, incrementSeconds: 10, maxSeconds: 300 },
      /at least initialSeconds/,
    ],
    [
      "a stray field",
      { system: "fischer", initialSeconds: 600, incrementSeconds: 10, periods: 3 },
      /no field periods/,
    ],
    [
      "a misspelt field",
      { system: "byoyomi", mainSeconds: 60, periods: 5, periodSecond: 30 },
      /no field periodSecond/,
    ],
  ];
  for (const [what, config, message] of cases) {
    it(`refuses ${what} with a precise error`, () => {
      expect(() => validateTimeControl(config)).toThrow(badArgument(message));
      expect(() => new GameClock(config as TimeControl)).toThrow(badArgument(message));
    });
  }

  it("accepts the extremes and returns a frozen copy", () => {
    const c = validateTimeControl({
      system: "byoyomi",
      mainSeconds: 30 * DAY,
      periods: 100,
      periodSeconds: 30 * DAY,
    });
    expect(Object.isFrozen(c)).toBe(true);
    const clock = started(c);
    expect(clock.timeoutAt()).toBe(T0 + 101 * 30 * DAY * 1000);
  });
});

describe("SGF TM and OT", () => {
  const pairs: [TimeControl, { TM?: string; OT?: string }][] = [
    [{ system: "none" }, {}],
    [{ system: "absolute", mainSeconds: 3600 }, { TM: "3600" }],
    [
      { system: "byoyomi", mainSeconds: 1200, periods: 5, periodSeconds: 30 },
      { TM: "1200", OT: "5x30 byo-yomi" },
    ],
    [
      { system: "canadian", mainSeconds: 5400, stonesPerPeriod: 25, periodSeconds: 600 },
      { TM: "5400", OT: "25/600 Canadian" },
    ],
    [
      { system: "fischer", initialSeconds: 600, incrementSeconds: 30 },
      { TM: "600", OT: "30 fischer" },
    ],
    [
      { system: "fischer", initialSeconds: 600, incrementSeconds: 30, maxSeconds: 1200 },
      { TM: "600", OT: "30 fischer max 1200" },
    ],
    [
      { system: "simple", perMoveSeconds: 60 },
      { TM: "0", OT: "60 simple" },
    ],
  ];
  for (const [control, sgf] of pairs) {
    it(`writes ${control.system} as ${JSON.stringify(sgf)} and reads it back`, () => {
      expect(timeControlToSgf(control)).toEqual(sgf);
      expect(timeControlFromSgf(sgf.TM, sgf.OT)).toEqual(control);
    });
  }

  it("reads the spellings other servers and clients use", () => {
    expect(timeControlFromSgf("300", "5x10 Byo-Yomi")).toMatchObject({
      system: "byoyomi",
      periods: 5,
      periodSeconds: 10,
    });
    expect(timeControlFromSgf("300", " 3 x 30 byoyomi ")).toMatchObject({ periods: 3, periodSeconds: 30 });
    expect(timeControlFromSgf("1800.0", "10/300 canadian")).toMatchObject({
      mainSeconds: 1800,
      stonesPerPeriod: 10,
    });
    expect(timeControlFromSgf("259200", "86400 Fischer")).toEqual({
      system: "fischer",
      initialSeconds: 259_200,
      incrementSeconds: 86_400,
    });
    expect(timeControlFromSgf("600", "30 Fischer, max 900")).toMatchObject({ maxSeconds: 900 });
    expect(timeControlFromSgf(undefined, "5x30 byo-yomi")).toMatchObject({ mainSeconds: 0 });
    expect(timeControlFromSgf("0", undefined)).toEqual({ system: "none" });
  });

  it("refuses what it cannot read, naming the value (clipped)", () => {
    expect(() => timeControlFromSgf("600", "hourglass")).toThrow(
      badArgument(/OT\[hourglass\] is not a time system/),
    );
    expect(() => timeControlFromSgf("600", "5x30.5 byo-yomi")).toThrow(badArgument(/fractional seconds/));
    expect(() => timeControlFromSgf("60.5", undefined)).toThrow(badArgument(/TM\[60.5\] has fractional/));
    expect(() => timeControlFromSgf("-5", undefined)).toThrow(badArgument(/not a number of seconds/));
    expect(() => timeControlFromSgf(undefined, "30 fischer")).toThrow(badArgument(/needs a TM/));
    expect(() => timeControlFromSgf("600", "0x30 byo-yomi")).toThrow(badArgument(/periods must be between/));
    expect(() => timeControlFromSgf("9999999999", undefined)).toThrow(badArgument(/between 1 and/));
    const huge = `${"9".repeat(100_000)} simple`;
    const err = (() => {
      try {
        timeControlFromSgf("0", huge);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toEqual(badArgument(/not a time system/));
    expect(err?.message.length).toBeLessThan(200);
  });

  it("round-trips every valid time control", () => {
    fc.assert(
      fc.property(controlArb(3000), (control) => {
        const sgf = timeControlToSgf(control);
        expect(timeControlFromSgf(sgf.TM, sgf.OT)).toEqual(validateTimeControl(control));
      }),
    );
  });
});

describe("the schema's flat, ms-based form", () => {
  const zero = { mainMs: 0, periodMs: 0, periods: 0, stones: 0, incrementMs: 0, maxMs: 0 };

  it("converts each system both ways", () => {
    const pairs: [TimeControl, object][] = [
      [{ system: "none" }, { system: "none" }],
      [
        { system: "absolute", mainSeconds: 60 },
        { system: "absolute", mainMs: 60_000 },
      ],
      [
        { system: "byoyomi", mainSeconds: 600, periods: 5, periodSeconds: 30 },
        { system: "byoyomi", mainMs: 600_000, periods: 5, periodMs: 30_000 },
      ],
      [
        { system: "canadian", mainSeconds: 600, stonesPerPeriod: 25, periodSeconds: 300 },
        { system: "canadian", mainMs: 600_000, stones: 25, periodMs: 300_000 },
      ],
      [
        { system: "fischer", initialSeconds: 300, incrementSeconds: 20, maxSeconds: 600 },
        { system: "fischer", mainMs: 300_000, incrementMs: 20_000, maxMs: 600_000 },
      ],
      [
        { system: "fischer", initialSeconds: 300, incrementSeconds: 20 },
        { system: "fischer", mainMs: 300_000, incrementMs: 20_000 },
      ],
      [
        { system: "simple", perMoveSeconds: 30 },
        { system: "simple", periodMs: 30_000 },
      ],
    ];
    for (const [control, flat] of pairs) {
      expect(timeControlToFlat(control)).toEqual({ ...zero, ...flat });
      expect(timeControlFromFlat({ ...zero, ...flat } as never)).toEqual(control);
    }
    expect(timeControlFromFlat({ ...zero, system: "absolute", mainMs: 60_000n })).toEqual({
      system: "absolute",
      mainSeconds: 60,
    });
    fc.assert(
      fc.property(controlArb(TIME_LIMIT_FOR_ARB), (control) => {
        expect(timeControlFromFlat(timeControlToFlat(control))).toEqual(validateTimeControl(control));
      }),
    );
  });

  it("refuses fractions of a second, stray fields, negatives and unknown systems", () => {
    const from = (f: object) => () => timeControlFromFlat({ ...zero, ...f } as never);
    expect(from({ system: "absolute", mainMs: 60_500 })).toThrow(
      badArgument(/mainMs must be whole seconds, not 60500 ms/),
    );
    expect(from({ system: "absolute", mainMs: 60_000, periods: 3 })).toThrow(badArgument(/uses no periods/));
    expect(from({ system: "simple", periodMs: -1000 })).toThrow(badArgument(/whole number of ms >= 0/));
    expect(from({ system: "absolute", mainMs: 2n ** 80n })).toThrow(badArgument(/whole number of ms/));
    expect(from({ system: "hourglass" })).toThrow(badArgument(/unknown time system "hourglass"/));
    expect(from({ system: "byoyomi", mainMs: 0, periodMs: 30_000, periods: 0 })).toThrow(
      badArgument(/periods must be between 1/),
    );
  });
});

const TIME_LIMIT_FOR_ARB = 30 * 86_400;

// --- the property: the clock against a millisecond-by-millisecond reference ------------------------

function controlArb(maxS: number): fc.Arbitrary<TimeControl> {
  const s = (min: number) => fc.integer({ min, max: maxS });
  return fc.oneof(
    fc.constant<TimeControl>({ system: "none" }),
    s(1).map((mainSeconds): TimeControl => ({ system: "absolute", mainSeconds })),
    fc
      .record({ mainSeconds: s(0), periods: fc.integer({ min: 1, max: 3 }), periodSeconds: s(1) })
      .map((r): TimeControl => ({ system: "byoyomi", ...r })),
    fc
      .record({ mainSeconds: s(0), stonesPerPeriod: fc.integer({ min: 1, max: 3 }), periodSeconds: s(1) })
      .map((r): TimeControl => ({ system: "canadian", ...r })),
    fc
      .record({ initialSeconds: s(1), incrementSeconds: s(0), extra: fc.option(s(0), { nil: undefined }) })
      .map(
        ({ initialSeconds, incrementSeconds, extra }): TimeControl => ({
          system: "fischer",
          initialSeconds,
          incrementSeconds,
          ...(extra === undefined ? {} : { maxSeconds: Math.min(maxS, initialSeconds + extra) }),
        }),
      ),
    s(1).map((perMoveSeconds): TimeControl => ({ system: "simple", perMoveSeconds })),
  );
}

/** One player's clock the way a referee with a stopwatch keeps it: one millisecond at a time. */
class Referee {
  main: number;
  periods: number;
  period: number;
  stones: number;
  flagged = false;
  constructor(private readonly c: TimeControl) {
    this.main =
      c.system === "absolute" || c.system === "byoyomi" || c.system === "canadian" ? c.mainSeconds * 1000 : 0;
    if (c.system === "fischer") this.main = c.initialSeconds * 1000;
    this.periods = c.system === "byoyomi" ? c.periods : 0;
    this.period =
      c.system === "byoyomi" || c.system === "canadian"
        ? c.periodSeconds * 1000
        : c.system === "simple"
          ? c.perMoveSeconds * 1000
          : 0;
    this.stones = c.system === "canadian" ? c.stonesPerPeriod : 0;
  }
  tick(): void {
    const c = this.c;
    switch (c.system) {
      case "none":
        return;
      case "absolute":
      case "fischer":
        if (--this.main === 0) this.flagged = true;
        return;
      case "simple":
        if (--this.period === 0) this.flagged = true;
        return;
      case "canadian":
        if (this.main > 0) this.main--;
        else if (--this.period === 0) this.flagged = true;
        return;
      case "byoyomi":
        if (this.main > 0) this.main--;
        else if (--this.period === 0) {
          if (--this.periods === 0) this.flagged = true;
          else this.period = c.periodSeconds * 1000;
        }
        return;
    }
  }
  move(): void {
    const c = this.c;
    if (c.system === "byoyomi" && this.main === 0) this.period = c.periodSeconds * 1000;
    if (c.system === "canadian" && this.main === 0 && --this.stones === 0) {
      this.stones = c.stonesPerPeriod;
      this.period = c.periodSeconds * 1000;
    }
    if (c.system === "fischer") {
      this.main += c.incrementSeconds * 1000;
      if (c.maxSeconds !== undefined) this.main = Math.min(this.main, c.maxSeconds * 1000);
    }
    if (c.system === "simple") this.period = c.perMoveSeconds * 1000;
  }
  /** What the display should show (flagged: nothing left). */
  shown(): PlayerClockState {
    const c = this.c;
    if (this.flagged) {
      const overtime = c.system === "byoyomi" || c.system === "canadian";
      return { ...idle, stonesLeft: c.system === "canadian" ? this.stones : 0, inOvertime: overtime };
    }
    const overtime = (c.system === "byoyomi" || c.system === "canadian") && this.main === 0;
    return {
      mainMs: this.main,
      periodsLeft: this.periods,
      periodMs: c.system === "canadian" && !overtime ? 0 : this.period,
      stonesLeft: c.system === "canadian" && overtime ? this.stones : 0,
      inOvertime: overtime,
    };
  }
}

interface Step {
  readonly think: number;
  /** Where in the think a display looks (a fraction of it). */
  readonly peek: number;
  /** Paused this long after thinking (and before moving), or not paused. */
  readonly pauseFor: number | undefined;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  think: fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.constantFrom(0, 1000, 2000, 3000)),
  peek: fc.double({ min: 0, max: 1, noNaN: true }),
  pauseFor: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
});

describe("the clock against a stopwatch referee", () => {
  it("shows the referee's times (never negative) and flags exactly when and where the referee does", () => {
    fc.assert(
      fc.property(controlArb(3), fc.array(stepArb, { maxLength: 30 }), (control, steps) => {
        const clock = new GameClock(control);
        const ref = { black: new Referee(control), white: new Referee(control) };
        let now = T0;
        let color: "black" | "white" = "black";
        clock.start(now);
        const check = (at: number): void => {
          const s = clock.state(at);
          for (const p of ["black", "white"] as const) {
            expect(s[p]).toEqual(ref[p].shown());
            for (const v of [s[p].mainMs, s[p].periodMs, s[p].periodsLeft, s[p].stonesLeft])
              expect(v).toBeGreaterThanOrEqual(0);
          }
        };
        for (const step of steps) {
          const r = ref[color];
          const start = now;
          const peekAt = Math.floor(step.think * step.peek);
          let flagAt: number | undefined;
          for (let i = 0; i < step.think; i++) {
            if (i === peekAt) check(start + i);
            r.tick();
            if (r.flagged) {
              flagAt = start + i + 1;
              break;
            }
          }
          now = start + step.think;
          const expectTimeout = { kind: "timeout", loser: color, at: flagAt };
          if (step.pauseFor !== undefined) {
            const paused = clock.pause(now);
            if (flagAt !== undefined) {
              expect(paused).toEqual(expectTimeout);
              check(now);
              return;
            }
            expect(paused).toEqual({ kind: "ok" });
            check(now);
            now += step.pauseFor;
            clock.resume(now);
          }
          const outcome = clock.moveMade(color, now);
          if (flagAt !== undefined) {
            expect(outcome).toEqual(expectTimeout);
            check(now);
            return;
          }
          expect(outcome).toEqual({ kind: "ok" });
          r.move();
          color = color === "black" ? "white" : "black";
          check(now);
          // The deadline the service would arm a timer for is where the referee would flag.
          const due = clock.timeoutAt();
          if (control.system === "none") expect(due).toBeUndefined();
          else {
            const probe = new Referee(control);
            Object.assign(probe, { ...ref[color] });
            let left = 0;
            while (!probe.flagged) {
              probe.tick();
              left++;
            }
            expect(due).toBe(now + left);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
