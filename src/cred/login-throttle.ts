/**
 * Failed-login throttling, per user name and per remote address.
 *
 * Each key (a name, or an address) counts its failures. The first `freeFailures - 1` cost
 * nothing; failure number n ≥ freeFailures locks the key for baseDelayMs·2^(n − freeFailures),
 * capped at maxDelayMs. A success clears the name's count (not the address's: one good login
 * must not reset an address that is guessing other names). A key forgets its count after
 * maxDelayMs of quiet: no failure and no lock (so waiting out a capped lock does not reset it).
 *
 * The check that verifies a guess runs between `attempt` and `settle`. While attempts are in
 * flight they count against what is left: a name may have at most (freeFailures − failures, at
 * least 1) attempts in flight, an address at most `maxInFlightPerAddress`, so a burst of
 * concurrent guesses cannot all pass the check before the first failure is counted.
 *
 * Invariants: at most `maxTracked` keys are held; a locked key is never evicted to make room
 * (when every tracked key is locked, new keys are refused), so a flood of names cannot push a
 * lock out. The unknown address "" and the empty name are never tracked.
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
  /** Attempts one address may have in flight at once. Default 64. */
  readonly maxInFlightPerAddress?: number;
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
  /** Attempts started with `attempt` and not yet settled. */
  inFlight: number;
  lastFailure: number;
  lockedUntil: number;
}

export class LoginThrottle {
  readonly #freeFailures: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #maxTracked: number;
  readonly #maxInFlightPerAddress: number;
  readonly #now: () => number;
  /** Keyed "n:<name>" or "a:<address>"; ordered by last failure, oldest first. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: LoginThrottleOptions = {}) {
    this.#freeFailures = positiveInteger("freeFailures", options.freeFailures ?? 5);
    this.#baseDelayMs = positiveInteger("baseDelayMs", options.baseDelayMs ?? 1000);
    this.#maxDelayMs = positiveInteger("maxDelayMs", options.maxDelayMs ?? 900_000);
    this.#maxTracked = positiveInteger("maxTracked", options.maxTracked ?? 100_000);
    this.#maxInFlightPerAddress = positiveInteger(
      "maxInFlightPerAddress",
      options.maxInFlightPerAddress ?? 64,
    );
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

  /**
   * Starts an attempt: throws RateLimitedError if the name or the address is locked or has too
   * many attempts in flight; else counts it in flight until `settle`, which must follow once.
   */
  attempt(username: string, address: string): void {
    this.check(username, address);
    const now = this.#now();
    const name = username === "" ? undefined : this.#entryFor(nameKey(username), now);
    const addr = address === "" ? undefined : this.#entryFor(addressKey(address), now);
    if (name !== undefined && name.inFlight >= Math.max(1, this.#freeFailures - name.failures)) {
      throw new RateLimitedError("too many logins in progress for this name; retry in 1 s", 1000);
    }
    if (addr !== undefined && addr.inFlight >= this.#maxInFlightPerAddress) {
      throw new RateLimitedError("too many logins in progress from this address; retry in 1 s", 1000);
    }
    if (name !== undefined) name.inFlight++;
    if (addr !== undefined) addr.inFlight++;
  }

  /** Ends an attempt started with `attempt`: a failure is counted, a success clears the name. */
  settle(username: string, address: string, ok: boolean): void {
    for (const key of [username === "" ? "" : nameKey(username), address === "" ? "" : addressKey(address)]) {
      const entry = key === "" ? undefined : this.#entries.get(key);
      if (entry !== undefined && entry.inFlight > 0) entry.inFlight--;
    }
    if (ok) this.success(username, address);
    else this.failure(username, address);
  }

  /** The entry for `key`, made if missing (refusing when every tracked key is busy or locked). */
  #entryFor(key: string, now: number): Entry {
    const existing = this.#live(key, now);
    if (existing !== undefined) return existing;
    if (!this.#room(now)) {
      throw new RateLimitedError("too many logins are being throttled right now; retry in 60 s", 60_000);
    }
    const entry: Entry = { failures: 0, inFlight: 0, lastFailure: now, lockedUntil: 0 };
    this.#entries.set(key, entry);
    return entry;
  }

  /** Makes room for one more key by evicting the oldest idle one; false if all are locked or busy. */
  #room(now: number): boolean {
    if (this.#entries.size < this.#maxTracked) return true;
    for (const [key, entry] of this.#entries) {
      if (entry.lockedUntil <= now && entry.inFlight === 0) {
        this.#entries.delete(key);
        return true;
      }
    }
    return false;
  }

  /** Counts a failed login against the name and the address (an empty one is not tracked). */
  failure(username: string, address: string): void {
    const now = this.#now();
    if (username !== "") this.#fail(nameKey(username), now);
    if (address !== "") this.#fail(addressKey(address), now);
  }

  /** Clears the name's count (unless attempts are still in flight); the address's stays. */
  success(username: string, _address: string): void {
    const entry = this.#entries.get(nameKey(username));
    if (entry === undefined) return;
    if (entry.inFlight === 0) this.#entries.delete(nameKey(username));
    else {
      entry.failures = 0;
      entry.lockedUntil = 0;
    }
  }

  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (
      entry !== undefined &&
      entry.inFlight === 0 &&
      now - Math.max(entry.lastFailure, entry.lockedUntil) >= this.#maxDelayMs
    ) {
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
    const entry = this.#live(key, now) ?? { failures: 0, inFlight: 0, lastFailure: now, lockedUntil: 0 };
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
    if (this.#entries.size > this.#maxTracked) this.#room(now);
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
