/**
 * Glicko-2 ratings, as in Mark Glickman's "Example of the Glicko-2 system" (glicko.net/glicko/
 * glicko2.pdf): steps 1–8, the volatility found by the Illinois (regula falsi) iteration of step 5
 * with convergence tolerance ε = 0.000001, τ = 0.5 by default. Pure functions; nothing is stored.
 *
 * Invariants:
 * - Every input is checked: finite numbers, RD > 0, 0 < volatility ≤ 1, 0 ≤ score ≤ 1, τ > 0
 *   (a `BAD_ARGUMENT` otherwise). Ratings and RDs are then clamped, on the way in and out, to
 *   [`minRating`, `maxRating`] = [100, 6000] and [`minRd`, `maxRd`] = [30, 350]: 30 and 100/6000 are
 *   OGS's bounds (online-go/goratings, goratings/math/glicko2.py: MIN_RD, MIN_RATING, MAX_RATING);
 *   350 is Glickman's RD for an unrated player and OGS's starting deviation (OGS lets RD grow to 500
 *   with inactivity; we stop at "unrated"). The rating bounds also keep every expected score strictly
 *   inside (0, 1) in doubles.
 * - The volatility iteration always ends: it is capped at `MAX_ITERATIONS` (it converges in a few
 *   dozen steps on any checked input).
 * - A rating period's games are all scored against the opponents' ratings at its start; updating a
 *   player never reads or changes another's rating.
 *
 * Tests: test/services/go/glicko2.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";

export interface Glicko2Rating {
  /** r, on the Glicko scale (1500 is the default). */
  readonly rating: number;
  /** RD, the rating deviation. */
  readonly rd: number;
  /** σ, the volatility. */
  readonly volatility: number;
}

/** One game of a rating period, from the rated player's side: 1 win, 0.5 draw (jigo), 0 loss. */
export interface Glicko2Game {
  readonly opponent: Glicko2Rating;
  readonly score: number;
}

export interface Glicko2Options {
  /** τ, how much volatility may change per period. Default 0.5 (Glickman: 0.3 to 1.2). */
  readonly tau?: number;
  readonly minRd?: number;
  readonly maxRd?: number;
  readonly minRating?: number;
  readonly maxRating?: number;
}

/** 400 / ln 10: Glicko to Glicko-2 scale. */
export const GLICKO2_SCALE = 173.7178;

export const GLICKO2_DEFAULTS = Object.freeze({
  tau: 0.5,
  minRd: 30,
  maxRd: 350,
  minRating: 100,
  maxRating: 6000,
  /** Step 5's convergence tolerance. */
  epsilon: 0.000001,
});

/** An unrated player: 1500, RD 350, σ 0.06 (Glickman's suggested start). */
export const GLICKO2_UNRATED: Glicko2Rating = Object.freeze({ rating: 1500, rd: 350, volatility: 0.06 });

/** Most games in one rating period (a bound on work for one call). */
export const GLICKO2_MAX_GAMES_PER_PERIOD = 10_000;

const MAX_ITERATIONS = 1000;

/** The rating after a rating period with `games` (none: only the RD grows, as `glicko2Idle`). */
export function glicko2Update(
  player: Glicko2Rating,
  games: readonly Glicko2Game[],
  options: Glicko2Options = {},
): Glicko2Rating {
  const o = resolve(options);
  const me = scaled(checkRating(player, "player"), o);
  if (!Array.isArray(games)) throw bad("games must be an array");
  if (games.length > GLICKO2_MAX_GAMES_PER_PERIOD) {
    throw bad(`at most ${GLICKO2_MAX_GAMES_PER_PERIOD} games in one rating period, not ${games.length}`);
  }
  if (games.length === 0) return glicko2Idle(player, 1, options);

  // Steps 3 and 4: v, the estimated variance, and Δ, the estimated improvement.
  let vInverse = 0;
  let sum = 0;
  games.forEach((game, i) => {
    const them = scaled(checkRating(game?.opponent, `games[${i}].opponent`), o);
    const s = checkScore(game.score, `games[${i}].score`);
    const gj = g(them.phi);
    const e = expected(me.mu, them.mu, them.phi);
    vInverse += gj * gj * e * (1 - e);
    sum += gj * (s - e);
  });
  const v = 1 / vInverse;
  const delta = v * sum;

  // Step 5: the new volatility σ'.
  const sigma = newVolatility(me.phi, me.sigma, v, delta, o.tau);

  // Steps 6 and 7.
  const phiStar = Math.sqrt(me.phi * me.phi + sigma * sigma);
  const phi = 1 / Math.sqrt(1 / (phiStar * phiStar) + 1 / v);
  // Step 8, with r' = r + 173.7178·φ'²·Σ g(φj)(sj − Ej): the same as converting μ' = μ + φ'²·Σ…
  // back, but the change's sign survives rounding (a win never lowers a rating by an ulp).
  return unscaled(me.rating + GLICKO2_SCALE * phi * phi * sum, phi, sigma, o);
}

/**
 * One game between `a` and `b` as its own rating period for both (as OGS rates game by game):
 * each is updated against the other's rating before the game. `scoreA` is `a`'s result.
 */
export function glicko2Game(
  a: Glicko2Rating,
  b: Glicko2Rating,
  scoreA: number,
  options: Glicko2Options = {},
): [Glicko2Rating, Glicko2Rating] {
  const s = checkScore(scoreA, "scoreA");
  return [
    glicko2Update(a, [{ opponent: b, score: s }], options),
    glicko2Update(b, [{ opponent: a, score: 1 - s }], options),
  ];
}

/**
 * The rating after `periods` rating periods without games: the rating and volatility stay, the RD
 * grows to √(φ² + periods·σ²) (the paper's note after step 8, in closed form), at most `maxRd`.
 */
export function glicko2Idle(player: Glicko2Rating, periods = 1, options: Glicko2Options = {}): Glicko2Rating {
  const o = resolve(options);
  const me = scaled(checkRating(player, "player"), o);
  if (typeof periods !== "number" || !Number.isFinite(periods) || periods < 0) {
    throw bad(`periods must be a finite number >= 0, not ${periods}`);
  }
  return unscaled(me.rating, Math.sqrt(me.phi * me.phi + periods * me.sigma * me.sigma), me.sigma, o);
}

/** E, the score `a` is expected to make against `b` (the paper's E(μ, μj, φj)); always in (0, 1). */
export function glicko2ExpectedScore(
  a: Glicko2Rating,
  b: Glicko2Rating,
  options: Glicko2Options = {},
): number {
  const o = resolve(options);
  const x = scaled(checkRating(a, "a"), o);
  const y = scaled(checkRating(b, "b"), o);
  return expected(x.mu, y.mu, y.phi);
}

// --- the paper's functions -----------------------------------------------------------------------

function g(phi: number): number {
  return 1 / Math.sqrt(1 + (3 * phi * phi) / (Math.PI * Math.PI));
}

function expected(mu: number, muJ: number, phiJ: number): number {
  return 1 / (1 + Math.exp(-g(phiJ) * (mu - muJ)));
}

/** Step 5: the Illinois algorithm on f(x), x = ln σ'². */
function newVolatility(phi: number, sigma: number, v: number, delta: number, tau: number): number {
  const a = Math.log(sigma * sigma);
  const d2 = delta * delta;
  const p2 = phi * phi;
  const f = (x: number): number => {
    const ex = Math.exp(x);
    return (ex * (d2 - p2 - v - ex)) / (2 * (p2 + v + ex) ** 2) - (x - a) / (tau * tau);
  };
  let A = a;
  let B: number;
  if (d2 > p2 + v) {
    B = Math.log(d2 - p2 - v);
  } else {
    let k = 1;
    while (f(a - k * tau) < 0 && k < MAX_ITERATIONS) k++;
    B = a - k * tau;
  }
  let fA = f(A);
  let fB = f(B);
  for (let i = 0; Math.abs(B - A) > GLICKO2_DEFAULTS.epsilon && i < MAX_ITERATIONS; i++) {
    const C = A + ((A - B) * fA) / (fB - fA);
    const fC = f(C);
    if (fC * fB <= 0) {
      A = B;
      fA = fB;
    } else {
      fA /= 2;
    }
    B = C;
    fB = fC;
  }
  return Math.exp(A / 2);
}

// --- scales, bounds and checks -------------------------------------------------------------------

type Resolved = Required<Glicko2Options>;

function resolve(options: Glicko2Options): Resolved {
  const o = { ...GLICKO2_DEFAULTS, ...stripUndefined(options) };
  for (const k of ["tau", "minRd", "maxRd", "minRating", "maxRating"] as const) {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw bad(`options.${k} must be a finite number > 0, not ${String(v)}`);
    }
  }
  if (o.minRd > o.maxRd) throw bad(`options.minRd (${o.minRd}) is above options.maxRd (${o.maxRd})`);
  if (o.minRating > o.maxRating) {
    throw bad(`options.minRating (${o.minRating}) is above options.maxRating (${o.maxRating})`);
  }
  return o;
}

function stripUndefined(options: Glicko2Options): Glicko2Options {
  if (typeof options !== "object" || options === null) throw bad("options must be an object");
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

function checkRating(r: Glicko2Rating | undefined, what: string): Glicko2Rating {
  if (typeof r !== "object" || r === null) throw bad(`${what} must be a rating { rating, rd, volatility }`);
  const num = (k: keyof Glicko2Rating): number => {
    const v = r[k];
    if (typeof v !== "number" || !Number.isFinite(v))
      throw bad(`${what}.${k} must be a finite number, not ${String(v)}`);
    return v;
  };
  const rating = num("rating");
  const rd = num("rd");
  const volatility = num("volatility");
  if (rd <= 0) throw bad(`${what}.rd must be > 0, not ${rd}`);
  if (volatility <= 0 || volatility > 1) throw bad(`${what}.volatility must be in (0, 1], not ${volatility}`);
  return { rating, rd, volatility };
}

function checkScore(s: unknown, what: string): number {
  if (typeof s !== "number" || !Number.isFinite(s) || s < 0 || s > 1) {
    throw bad(`${what} must be a number from 0 (loss) to 1 (win), not ${String(s)}`);
  }
  return s;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** Step 2: μ and φ, after clamping the rating and RD into bounds (and that rating). */
function scaled(r: Glicko2Rating, o: Resolved): { rating: number; mu: number; phi: number; sigma: number } {
  const rating = clamp(r.rating, o.minRating, o.maxRating);
  return {
    rating,
    mu: (rating - 1500) / GLICKO2_SCALE,
    phi: clamp(r.rd, o.minRd, o.maxRd) / GLICKO2_SCALE,
    sigma: r.volatility,
  };
}

function unscaled(rating: number, phi: number, sigma: number, o: Resolved): Glicko2Rating {
  return {
    rating: clamp(rating, o.minRating, o.maxRating),
    rd: clamp(GLICKO2_SCALE * phi, o.minRd, o.maxRd),
    volatility: clamp(sigma, Number.MIN_VALUE, 1),
  };
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}
