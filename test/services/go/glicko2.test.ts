import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import {
  GLICKO2_SCALE,
  GLICKO2_UNRATED,
  type Glicko2Rating,
  glicko2ExpectedScore,
  glicko2Game,
  glicko2Idle,
  glicko2Update,
  GLICKO2_MAX_GAMES_PER_PERIOD,
} from "../../../src/services/go/glicko2.js";

const badArgument = (message: RegExp) =>
  expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT, message: expect.stringMatching(message) });

const r = (rating: number, rd: number, volatility = 0.06): Glicko2Rating => ({ rating, rd, volatility });

describe("Glickman's worked example (the oracle)", () => {
  // "Example of the Glicko-2 system", section "Example calculation": τ = 0.5.
  const player = r(1500, 200);
  const games = [
    { opponent: r(1400, 30), score: 1 },
    { opponent: r(1550, 100), score: 0 },
    { opponent: r(1700, 300), score: 0 },
  ];

  it("gives r' ≈ 1464.06, RD' ≈ 151.52, σ' ≈ 0.05999", () => {
    const after = glicko2Update(player, games, { tau: 0.5 });
    // The paper prints μ' = −0.2069 → 1464.06; unrounded it is 1464.0507.
    expect(Math.abs(after.rating - 1464.06)).toBeLessThan(0.02);
    expect(after.rd).toBeCloseTo(151.52, 2);
    // The paper prints σ' = 0.05999 (to its last digit; unrounded 0.0599960).
    expect(Math.abs(after.volatility - 0.05999)).toBeLessThan(0.00001);
    // The paper's step-7 values on the Glicko-2 scale.
    expect((after.rating - 1500) / GLICKO2_SCALE).toBeCloseTo(-0.2069, 4);
    expect(after.rd / GLICKO2_SCALE).toBeCloseTo(0.8722, 4);
  });

  it("uses τ = 0.5 by default, and τ changes only the volatility's step", () => {
    expect(glicko2Update(player, games)).toEqual(glicko2Update(player, games, { tau: 0.5 }));
    const loose = glicko2Update(player, games, { tau: 1.2 });
    expect(loose.volatility).not.toBe(glicko2Update(player, games).volatility);
    expect(Math.abs(loose.rating - 1464.06)).toBeLessThan(1);
  });

  it("does not depend on the order of the period's games", () => {
    const reversed = glicko2Update(player, [...games].reverse());
    const forward = glicko2Update(player, games);
    expect(reversed.rating).toBeCloseTo(forward.rating, 9);
    expect(reversed.rd).toBeCloseTo(forward.rd, 9);
    expect(reversed.volatility).toBeCloseTo(forward.volatility, 12);
  });
});

describe("rating periods without games", () => {
  it("grow the RD to √(φ² + σ²) per period and keep rating and volatility", () => {
    const phi = 200 / GLICKO2_SCALE;
    const idle = glicko2Idle(r(1500, 200));
    expect(idle.rd).toBeCloseTo(GLICKO2_SCALE * Math.sqrt(phi * phi + 0.06 * 0.06), 9);
    expect(idle.rd).toBeCloseTo(200.2714, 4);
    expect(idle).toMatchObject({ rating: 1500, volatility: 0.06 });
    expect(glicko2Update(r(1500, 200), [])).toEqual(idle);
    expect(glicko2Idle(r(1500, 200), 4).rd).toBeCloseTo(GLICKO2_SCALE * Math.sqrt(phi * phi + 4 * 0.0036), 9);
    expect(glicko2Idle(r(1500, 200), 0).rd).toBeCloseTo(200, 9);
  });

  it("never grow the RD past that of an unrated player (350)", () => {
    expect(glicko2Idle(r(1800, 349), 1000).rd).toBe(350);
    expect(glicko2Idle(GLICKO2_UNRATED).rd).toBe(350);
  });
});

describe("one game between two players", () => {
  it("moves equal players by equal amounts in opposite directions, and leaves a draw between them alone", () => {
    const [a, b] = glicko2Game(GLICKO2_UNRATED, GLICKO2_UNRATED, 1);
    expect(a.rating).toBeGreaterThan(1500);
    expect(a.rating - 1500).toBeCloseTo(1500 - b.rating, 9);
    expect(a.rd).toBeCloseTo(b.rd, 9);
    const [c, d] = glicko2Game(r(1700, 80), r(1700, 80), 0.5);
    expect(c.rating).toBeCloseTo(1700, 9);
    expect(d.rating).toBeCloseTo(1700, 9);
  });

  it("updates each side against the other's rating before the game", () => {
    const a = r(1600, 120);
    const b = r(1450, 250, 0.07);
    const [a2, b2] = glicko2Game(a, b, 0);
    expect(a2).toEqual(glicko2Update(a, [{ opponent: b, score: 0 }]));
    expect(b2).toEqual(glicko2Update(b, [{ opponent: a, score: 1 }]));
  });

  it("keeps an established player's RD at its floor (30)", () => {
    const [a] = glicko2Game(r(2000, 30, 0.01), r(2000, 30, 0.01), 1);
    expect(a.rd).toBe(30);
  });
});

describe("bounds and hostile inputs", () => {
  it("clamps ratings and RDs into bounds, so results stay finite", () => {
    const after = glicko2Update(r(1e12, 1e9), [{ opponent: r(-1e12, 1e-9), score: 0 }]);
    expect(after.rating).toBeLessThanOrEqual(6000);
    expect(after.rd).toBeLessThanOrEqual(350);
    expect(after.rd).toBeGreaterThanOrEqual(30);
    expect(Number.isFinite(after.volatility)).toBe(true);
    expect(glicko2Update(r(99_999, 200), [])).toMatchObject({ rating: 6000 });
  });

  const cases: [string, () => unknown, RegExp][] = [
    [
      "a NaN rating",
      () => glicko2Update(r(Number.NaN, 200), []),
      /player.rating must be a finite number, not NaN/,
    ],
    [
      "an infinite RD",
      () => glicko2Update(r(1500, Number.POSITIVE_INFINITY), []),
      /player.rd must be a finite/,
    ],
    ["a zero RD", () => glicko2Update(r(1500, 0), []), /player.rd must be > 0/],
    ["a negative volatility", () => glicko2Update(r(1500, 200, -0.06), []), /volatility must be in \(0, 1\]/],
    ["a volatility above 1", () => glicko2Update(r(1500, 200, 6), []), /volatility must be in/],
    ["a string rating", () => glicko2Update({ rating: "1500" } as unknown as Glicko2Rating, []), /not 1500/],
    ["a null player", () => glicko2Update(null as unknown as Glicko2Rating, []), /player must be a rating/],
    [
      "a null opponent",
      () => glicko2Update(GLICKO2_UNRATED, [null as unknown as { opponent: Glicko2Rating; score: number }]),
      /games\[0\].opponent must be a rating/,
    ],
    [
      "a score above 1",
      () => glicko2Game(GLICKO2_UNRATED, GLICKO2_UNRATED, 2),
      /scoreA must be a number from 0/,
    ],
    [
      "a NaN score",
      () => glicko2Update(GLICKO2_UNRATED, [{ opponent: GLICKO2_UNRATED, score: Number.NaN }]),
      /games\[0\].score must be/,
    ],
    [
      "τ = 0",
      () => glicko2Update(GLICKO2_UNRATED, [], { tau: 0 }),
      /options.tau must be a finite number > 0/,
    ],
    ["crossed RD bounds", () => glicko2Idle(GLICKO2_UNRATED, 1, { minRd: 400 }), /minRd \(400\) is above/],
    ["negative periods", () => glicko2Idle(GLICKO2_UNRATED, -1), /periods must be a finite number >= 0/],
    [
      "games that are not an array",
      () => glicko2Update(GLICKO2_UNRATED, {} as never),
      /games must be an array/,
    ],
    [
      "too many games",
      () =>
        glicko2Update(
          GLICKO2_UNRATED,
          Array.from({ length: GLICKO2_MAX_GAMES_PER_PERIOD + 1 }, () => ({
            opponent: GLICKO2_UNRATED,
            score: 1,
          })),
        ),
      /at most 10000 games/,
    ],
  ];
  for (const [what, call, message] of cases) {
    it(`refuses ${what} with a precise error`, () => {
      expect(call).toThrow(badArgument(message));
    });
  }
});

const ratingArb: fc.Arbitrary<Glicko2Rating> = fc.record({
  rating: fc.double({ min: 100, max: 6000, noNaN: true }),
  rd: fc.double({ min: 30, max: 350, noNaN: true }),
  volatility: fc.double({ min: 0.01, max: 0.2, noNaN: true }),
});

describe("properties", () => {
  it("a winner's rating never falls (and a loser's never rises) against an equal opponent", () => {
    fc.assert(
      fc.property(ratingArb, ratingArb, (a, other) => {
        const b = { ...other, rating: a.rating };
        const [winner, loser] = glicko2Game(a, b, 1);
        expect(winner.rating).toBeGreaterThanOrEqual(a.rating);
        expect(loser.rating).toBeLessThanOrEqual(b.rating);
      }),
    );
  });

  it("winning never lowers a rating against anyone, losing never raises it", () => {
    fc.assert(
      fc.property(ratingArb, ratingArb, (a, b) => {
        expect(glicko2Update(a, [{ opponent: b, score: 1 }]).rating).toBeGreaterThanOrEqual(a.rating);
        expect(glicko2Update(a, [{ opponent: b, score: 0 }]).rating).toBeLessThanOrEqual(a.rating);
      }),
      // Once found: a near-certain loss moved μ' by less than the rescale's rounding, up by an ulp.
      { examples: [[r(143.5046578634289, 30, 0.01), r(5699.147491355538, 30, 0.01)]] },
    );
  });

  it("expected scores lie strictly in (0, 1), and two players' sum to 1 when their RDs match", () => {
    fc.assert(
      fc.property(ratingArb, ratingArb, (a, b) => {
        const e = glicko2ExpectedScore(a, b);
        expect(e).toBeGreaterThan(0);
        expect(e).toBeLessThan(1);
        const same = { ...b, rd: a.rd };
        expect(glicko2ExpectedScore(a, same) + glicko2ExpectedScore(same, a)).toBeCloseTo(1, 12);
      }),
    );
    expect(glicko2ExpectedScore(r(1e300, 30), r(-1e300, 30))).toBeLessThan(1);
  });

  it("every update stays within bounds and finite, and a game never widens the RD beyond idling", () => {
    fc.assert(
      fc.property(
        ratingArb,
        fc.array(fc.record({ opponent: ratingArb, score: fc.constantFrom(0, 0.5, 1) }), { maxLength: 20 }),
        (a, games) => {
          const after = glicko2Update(a, games);
          expect(after.rating).toBeGreaterThanOrEqual(100);
          expect(after.rating).toBeLessThanOrEqual(6000);
          expect(after.rd).toBeGreaterThanOrEqual(30);
          expect(after.rd).toBeLessThanOrEqual(350);
          expect(after.volatility).toBeGreaterThan(0);
          expect(Number.isFinite(after.volatility)).toBe(true);
          if (games.length > 0) {
            const phiStar = Math.sqrt((a.rd / GLICKO2_SCALE) ** 2 + after.volatility ** 2) * GLICKO2_SCALE;
            expect(after.rd).toBeLessThanOrEqual(Math.max(30, Math.min(350, phiStar)) + 1e-9);
          }
        },
      ),
    );
  });
});
