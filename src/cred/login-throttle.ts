/**
 * Failed-login throttling, per user name and per remote address.
 *
 * Each key (a name, or an address) counts its failures. The first `freeFailures - 1` cost
 * nothing; failure number n ≥ freeFailures locks the key for baseDelayMs·2^(n − freeFailures),
 * capped at maxDelayMs. A success clears the name's count (not the address's: one good login
 * must not reset an address that is guessing other names). A key forgets its count after
 * maxDelayMs of quiet: no failure and no lock (so waiting out a capped lock does not reset it).
 *
 * Invariants: at most `maxTracked` keys are held (the key whose last failure is oldest goes first);
 * the unknown address "" is never tracked. Call `check` and then `failure`/`success` with no
 * `await` between them where possible: attempts that pass `check` concurrently are all counted
 * only afterwards.
 */
import { ErrorCode, ParallaxError } from "../errors.js";

export interface LoginThrottleOptions {
  /** Failures allowed before the first lock. Default 5. */
  readonly freeFailures?: number;
  /** The first lock, in ms; each further failure doubles it. Default 1000. */
  readonly baseDelayMs?: number;
  /** The longest lock, and the quiet time (unlocked, no failures) after which a count is forgotten, in ms. Default 900000. */
  readonly maxDelayMs?: number;
  /** Most names plus addresses tracked at once. Default 100000. */
  readonly maxTracked?: number;
  /** Clock in ms; tests inject one. Default `Date.now`. */
  readonly now?: () => number;
}

/** A RATE_LIMITED error that also says, in ms, when the locked key opens again. */
export class RateLimitedError extends ParallaxError {
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number) {
    super(ErrorCode.RATE_LIMITED, message);
    this.retryAfterMs = retryAfterMs;
  }
}

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

export class LoginThrottle {
  readonly #freeFailures: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #maxTracked: number;
  readonly #now: () => number;
  /** Keyed "n:<name>" or "a:<address>"; ordered by last failure, oldest first. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: LoginThrottleOptions = {}) {
    this.#freeFailures = positiveInteger("freeFailures", options.freeFailures ?? 5);
    this.#baseDelayMs = positiveInteger("baseDelayMs", options.baseDelayMs ?? 1000);
    this.#maxDelayMs = positiveInteger("maxDelayMs", options.maxDelayMs ?? 900_000);
    this.#maxTracked = positiveInteger("maxTracked", options.maxTracked ?? 100_000);
    this.#now = options.now ?? Date.now;
  }

  /** Names plus addresses currently tracked. */
  get size(): number {
    return this.#entries.size;
  }

  /** Throws RateLimitedError if the name or the address is locked, naming the one locked longer. */
  check(username: string, address: string): void {
    const now = this.#now();
    const byName = username === "" ? 0 : this.#lockedFor(nameKey(username), now);
    const byAddress = address === "" ? 0 : this.#lockedFor(addressKey(address), now);
    const wait = Math.max(byName, byAddress);
    if (wait <= 0) return;
    const which = byName >= byAddress ? "for this name" : "from this address";
    throw new RateLimitedError(`too many failed logins ${which}; retry in ${Math.ceil(wait / 1000)} s`, wait);
  }

  /** Counts a failed login against the name and the address (an empty one is not tracked). */
  failure(username: string, address: string): void {
    const now = this.#now();
    if (username !== "") this.#fail(nameKey(username), now);
    if (address !== "") this.#fail(addressKey(address), now);
  }

  /** Clears the name's count; the address's stays. */
  success(username: string, _address: string): void {
    this.#entries.delete(nameKey(username));
  }

  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined && now - Math.max(entry.lastFailure, entry.lockedUntil) >= this.#maxDelayMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #lockedFor(key: string, now: number): number {
    const entry = this.#live(key, now);
    return entry === undefined ? 0 : entry.lockedUntil - now;
  }

  #fail(key: string, now: number): void {
    const entry = this.#live(key, now) ?? { failures: 0, lastFailure: now, lockedUntil: 0 };
    entry.failures += 1;
    entry.lastFailure = now;
    if (entry.failures >= this.#freeFailures) {
      const exponent = entry.failures - this.#freeFailures;
      // 2^exponent overflows to Infinity harmlessly; min() caps it.
      const delay = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** exponent);
      entry.lockedUntil = Math.max(entry.lockedUntil, now + delay);
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#maxTracked) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }
}

function nameKey(username: string): string {
  return `n:${username}`;
}

function addressKey(address: string): string {
  return `a:${address}`;
}

function positiveInteger(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `LoginThrottle ${field} must be a positive integer; got ${value}`,
    );
  }
  return value;
}
