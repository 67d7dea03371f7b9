/**
 * Login throttling, per user name and per remote address, by kind of credential.
 *
 * Keys. A name is counted under its comparison key (`nameKey`: `Alice` and `alice` are one
 * name); an address under `addressKey` (an IPv4 address, IPv4-mapped IPv6 as that IPv4 address,
 * any other IPv6 address as its /64). The empty name and an address `addressKey` cannot read
 * ("") are never tracked.
 *
 * Counting. Each key counts failures. The first `free − 1` cost nothing; failure number
 * n ≥ free locks the key for baseDelayMs·2^(n − free), capped at maxDelayMs. A key forgets its
 * count after maxDelayMs of quiet: no failure and no lock (so waiting out a capped lock does not
 * reset it). `free` is `freeFailures`, or `freeDeviceRequests` for device-request counters.
 *
 * Three kinds of attempt:
 * - Passwords, which can be guessed: `attempt` … `settle` (or `check` and then `failure` /
 *   `success`). Refused while the name or the address is locked. A failure counts against both;
 *   a success clears the name's count, not the address's (one good login must not reset an
 *   address that is guessing other names). While the check runs the attempt is in flight: a
 *   name may have at most (freeFailures − failures, at least 1) attempts in flight and an address
 *   at most `maxInFlightPerAddress`, so a burst of concurrent guesses cannot all pass the check
 *   before the first failure is counted.
 * - Secrets nobody can guess — a registered key's signature, an API key, an OTP (24 random
 *   bytes), a resume token (32): `attemptSecret` … `settleSecret`. They never read or touch a
 *   name's count, so no lock on a name stops them. The address bounds them in flight
 *   (`maxInFlightPerAddress`, shared with passwords). An invalid secret is a failure against the
 *   address; a valid secret always succeeds, even from a locked address. An invalid secret from
 *   a locked address is not counted again: `settleSecret` returns the RateLimitedError to answer.
 * - New-device requests (a valid signature by a key the name has not registered):
 *   `deviceRequest`, counted per name and per address on counters of their own, never against
 *   password logins.
 *
 * Saturation. At most `maxTracked` keys are held. Room is made by evicting the oldest idle key
 * (unlocked, nothing in flight); a locked or busy key is never evicted, so a flood of names cannot
 * push a lock out. When no room is found, an attempt that needs a new key is admitted untracked
 * through a global token bucket (`globalRatePerSecond`, `globalBurst`; a token for each key it
 * cannot track): logins degrade to that rate instead of stopping for everyone, and beyond it are
 * refused with "the server is under a login flood; retry in N s". Secrets are admitted untracked
 * without a token (and an invalid one is then not counted): guessing them is hopeless, so a flood
 * must not shut out resume tokens and API keys.
 *
 * The spill. Failures of keys the table cannot hold are counted in a fixed array of `spillSlots`
 * counters: two slots per key, chosen by a hash with a per-process random seed; a key's count and
 * lock are the smaller of its two slots', so other keys can make a key look locked, never
 * unlocked. Only failures paid for by a token reach the spill, so it fills no faster than the
 * bucket allows; a key that later gets into the table starts from what the spill says of it. The
 * spill is allocated on the first failure it takes (18 bytes a slot).
 *
 * Time comes only from the injected clock (`now`); nothing here sets a timer. Every call does
 * O(1) work: making room looks at no more than ROOM_SCAN (32) keys, moving the busy and locked
 * ones it passes to the back, so later searches look further on.
 *
 * Tests: test/cred/login-throttle.test.ts, test/login/throttling.test.ts
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, ParallaxError } from "../errors.js";
import { nameKey } from "../store/name-key.js";
import { addressKey } from "./address-key.js";

export interface LoginThrottleOptions {
  /** Failures allowed before the first lock. Default 5. */
  readonly freeFailures?: number;
  /** The first lock, in ms; each further failure doubles it. Default 1000. */
  readonly baseDelayMs?: number;
  /** The longest lock, and the quiet time (unlocked, no failures) after which a count is forgotten, in ms. Default 900000. */
  readonly maxDelayMs?: number;
  /** Most names plus addresses tracked at once. Default 100000. */
  readonly maxTracked?: number;
  /** Attempts (password and secret) one address may have in flight at once. Default 64. */
  readonly maxInFlightPerAddress?: number;
  /**
   * New-device requests a name, and an address, may file before its device requests lock (on the
   * same schedule as failures, and on counters of their own). Default 3.
   * Why: a person adds a device or two at a time; the pending requests per name are capped
   * elsewhere, this bounds how fast they can be filed. Exceeded: `deviceRequest` throws
   * RateLimitedError; password and secret logins are not affected.
   */
  readonly freeDeviceRequests?: number;
  /**
   * Tokens per second of the global bucket (a positive number; one token per key the full table
   * cannot hold). Default 20.
   * Why: the table is full only while an attacker keeps `maxTracked` keys locked or busy. Then a
   * password login with a new name and a new address (two tokens) still gets in about 10 times a
   * second — the steady rate of 10 000 users each logging in once every quarter hour; resume
   * tokens, API keys and registered keys skip the bucket — while the attacker gains at most 20
   * untracked guesses a second, which the spill still counts. Exceeded: RateLimitedError "the
   * server is under a login flood; retry in N s", whose retryAfterMs is when the tokens are due.
   */
  readonly globalRatePerSecond?: number;
  /**
   * Tokens the global bucket holds when full, for bursts; at least 2 (a login may need one for its
   * name and one for its address). Default 40 (two seconds at the default rate).
   * Exceeded: see `globalRatePerSecond`.
   */
  readonly globalBurst?: number;
  /**
   * Counter slots of the spill (see the header). Default 262144 (4.5 MiB once allocated).
   * Why: a token pays for one key's failure (two slots), and keeping a slot locked takes a
   * failure per maxDelayMs, so an attacker spending the whole default bucket keeps at most
   * 2·20·900 = 36 000 slots locked (14%); a key looks locked by others' failures only if both its
   * slots are (2%), and while that is so the attacker leaves the bucket empty anyway.
   */
  readonly spillSlots?: number;
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
  /** Attempts started with `attempt` or `attemptSecret` and not yet settled. */
  inFlight: number;
  lastFailure: number;
  lockedUntil: number;
}

/** Most keys one search for room looks at. */
const ROOM_SCAN = 32;
const MAX_SPILL_COUNT = 0xffff;

export class LoginThrottle {
  readonly #freeFailures: number;
  readonly #freeDeviceRequests: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #maxTracked: number;
  readonly #maxInFlightPerAddress: number;
  readonly #rate: number;
  readonly #burst: number;
  readonly #spillSlots: number;
  readonly #now: () => number;
  /**
   * Keyed "n:<name key>", "a:<address key>", "dn:<name key>", "da:<address key>" (the last two
   * count device requests); oldest touch first.
   */
  readonly #entries = new Map<string, Entry>();
  #tokens: number;
  /** When `#tokens` was last brought up to date; undefined before the first token is asked for. */
  #refilledAt: number | undefined;
  /** Untracked keys admitted with a token whose `settle` has not come yet. */
  #credits = 0;
  #spill: Spill | undefined;

  constructor(options: LoginThrottleOptions = {}) {
    this.#freeFailures = positiveInteger("freeFailures", options.freeFailures ?? 5);
    this.#freeDeviceRequests = positiveInteger("freeDeviceRequests", options.freeDeviceRequests ?? 3);
    this.#baseDelayMs = positiveInteger("baseDelayMs", options.baseDelayMs ?? 1000);
    this.#maxDelayMs = positiveInteger("maxDelayMs", options.maxDelayMs ?? 900_000);
    this.#maxTracked = positiveInteger("maxTracked", options.maxTracked ?? 100_000);
    this.#maxInFlightPerAddress = positiveInteger(
      "maxInFlightPerAddress",
      options.maxInFlightPerAddress ?? 64,
    );
    this.#rate = options.globalRatePerSecond ?? 20;
    if (!Number.isFinite(this.#rate) || this.#rate <= 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `LoginThrottle globalRatePerSecond must be a positive number; got ${this.#rate}`,
      );
    }
    this.#burst = positiveInteger("globalBurst", options.globalBurst ?? 40);
    if (this.#burst < 2) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        "LoginThrottle globalBurst must be at least 2: a login may need a token for its name and one for its address",
      );
    }
    this.#spillSlots = positiveInteger("spillSlots", options.spillSlots ?? 262_144);
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
  }

  /** Keys currently tracked in the table (the spill not included); at most `maxTracked`. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Password logins: throws RateLimitedError if the name or the address is locked, naming the one
   * locked longer. Counts nothing.
   */
  check(username: string, address: string): void {
    const now = this.#now();
    const byName = this.#lockedFor(nameSlot(username), now);
    const byAddress = this.#lockedFor(addressSlot(address), now);
    const wait = Math.max(byName, byAddress);
    if (wait <= 0) return;
    throw locked("too many failed logins", byName >= byAddress ? "for this name" : "from this address", wait);
  }

  /**
   * Starts a password attempt: throws RateLimitedError if the name or the address is locked or
   * has too many attempts in flight, or if a key the full table cannot hold finds the global
   * bucket empty; else counts it in flight until `settle`, which must follow exactly once.
   */
  attempt(username: string, address: string): void {
    this.check(username, address);
    const now = this.#now();
    const nk = nameSlot(username);
    const ak = addressSlot(address);
    const name = nk === "" ? undefined : this.#slot(nk, now);
    if (name && name.inFlight >= Math.max(1, this.#freeFailures - name.failures)) {
      throw new RateLimitedError("too many logins in progress for this name; retry in 1 s", 1000);
    }
    // In flight from here, so making room for the address cannot evict it.
    if (name) name.inFlight++;
    try {
      const addr = ak === "" ? undefined : this.#slot(ak, now);
      if (addr && addr.inFlight >= this.#maxInFlightPerAddress) {
        throw new RateLimitedError("too many logins in progress from this address; retry in 1 s", 1000);
      }
      const untracked = (name === null ? 1 : 0) + (addr === null ? 1 : 0);
      if (untracked > 0) this.#admit(now, untracked);
      this.#credits += untracked;
      if (addr) addr.inFlight++;
    } catch (err) {
      if (name) name.inFlight--;
      throw err;
    }
  }

  /** Ends an attempt started with `attempt`: a failure counts against both, a success clears the name. */
  settle(username: string, address: string, ok: boolean): void {
    const now = this.#now();
    for (const key of [nameSlot(username), addressSlot(address)]) {
      if (key === "") continue;
      const entry = this.#entries.get(key);
      let credited = false;
      if (entry !== undefined && entry.inFlight > 0) entry.inFlight--;
      else if (this.#credits > 0) {
        this.#credits--;
        credited = true;
      }
      if (!ok) this.#count(key, now, credited ? "spill" : "token");
    }
    if (ok) this.success(username, address);
  }

  /** Counts a failed password login against the name and the address (outside attempt/settle). */
  failure(username: string, address: string): void {
    const now = this.#now();
    for (const key of [nameSlot(username), addressSlot(address)]) {
      if (key !== "") this.#count(key, now, "token");
    }
  }

  /** Clears the name's count (unless attempts are still in flight); the address's stays. */
  success(username: string, _address: string): void {
    const key = nameSlot(username);
    const entry = key === "" ? undefined : this.#entries.get(key);
    if (entry === undefined) return;
    if (entry.inFlight === 0) this.#entries.delete(key);
    else {
      entry.failures = 0;
      entry.lockedUntil = 0;
    }
  }

  /**
   * Starts a secret attempt (registered key signature, API key, OTP, resume token) from
   * `address`: never refused for a lock, only (RateLimitedError) when the address has
   * `maxInFlightPerAddress` attempts in flight. Counts it in flight until `settleSecret`, which
   * must follow exactly once. Names are not involved.
   */
  attemptSecret(address: string): void {
    const key = addressSlot(address);
    if (key === "") return;
    const entry = this.#slot(key, this.#now());
    // null: the table is full; secrets are admitted untracked, without a token.
    if (entry === null) return;
    if (entry.inFlight >= this.#maxInFlightPerAddress) {
      throw new RateLimitedError("too many logins in progress from this address; retry in 1 s", 1000);
    }
    entry.inFlight++;
  }

  /**
   * Ends a secret attempt. `ok`: the secret was valid — then this returns undefined and the
   * login goes ahead, whatever the address's lock. An invalid secret returns undefined after
   * counting a failure against the address, or, if the address is locked, returns the
   * RateLimitedError the caller should answer instead of AUTH_FAILED (and counts nothing).
   */
  settleSecret(address: string, ok: boolean): RateLimitedError | undefined {
    const key = addressSlot(address);
    if (key === "") return undefined;
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.inFlight > 0) entry.inFlight--;
    if (ok) return undefined;
    const wait = this.#lockedFor(key, now);
    if (wait > 0) return locked("too many failed logins", "from this address", wait);
    // An address the full table cannot hold is not counted: its secrets cannot be guessed.
    this.#count(key, now, "drop");
    return undefined;
  }

  /**
   * Files a new-device request for `username` from `address` (a valid signature by a key the
   * name has not registered): throws RateLimitedError if the name's or the address's device
   * requests are locked (or the table is full and the bucket empty); else counts one request
   * against each. Call it before filing the request. Password and secret logins are untouched.
   */
  deviceRequest(username: string, address: string): void {
    const now = this.#now();
    const nk = nameSlot(username) === "" ? "" : `d${nameSlot(username)}`;
    const ak = addressSlot(address) === "" ? "" : `d${addressSlot(address)}`;
    const byName = this.#lockedFor(nk, now);
    const byAddress = this.#lockedFor(ak, now);
    const wait = Math.max(byName, byAddress);
    if (wait > 0) {
      throw locked(
        "too many new-device requests",
        byName >= byAddress ? "for this name" : "from this address",
        wait,
      );
    }
    const name = nk === "" ? undefined : this.#slot(nk, now);
    if (name) name.inFlight++;
    const addr = ak === "" ? undefined : this.#slot(ak, now);
    if (name) name.inFlight--;
    const untracked = (name === null ? 1 : 0) + (addr === null ? 1 : 0);
    if (untracked > 0) this.#admit(now, untracked);
    for (const [key, entry] of [
      [nk, name],
      [ak, addr],
    ] as const) {
      if (entry) this.#fail(key, entry, now);
      else if (entry === null) this.#spillFail(key, now);
    }
  }

  /** A live entry for `key`, a new one if there is room, or null when the table is full. */
  #slot(key: string, now: number): Entry | null {
    return this.#live(key, now) ?? this.#make(key, now) ?? null;
  }

  #make(key: string, now: number): Entry | undefined {
    if (!this.#room(now)) return undefined;
    const seen = this.#spill?.view(key, now, this.#maxDelayMs);
    const entry: Entry =
      seen === undefined || seen.failures === 0
        ? { failures: 0, inFlight: 0, lastFailure: now, lockedUntil: 0 }
        : {
            failures: seen.failures,
            inFlight: 0,
            lastFailure: seen.lastFailure,
            lockedUntil: seen.lockedUntil,
          };
    this.#entries.set(key, entry);
    return entry;
  }

  /**
   * Makes room for one more key by evicting the oldest idle one, looking at ROOM_SCAN keys at
   * most and moving the locked or busy ones it passes to the back; false if it found none.
   */
  #room(now: number): boolean {
    if (this.#entries.size < this.#maxTracked) return true;
    let looked = 0;
    for (const [key, entry] of this.#entries) {
      this.#entries.delete(key);
      if (entry.lockedUntil <= now && entry.inFlight === 0) return true;
      this.#entries.set(key, entry);
      if (++looked >= ROOM_SCAN) break;
    }
    return false;
  }

  /**
   * Counts one failure of `key`: in the table if it is there or there is room, else in the spill
   * when `untracked` allows it ("spill": already paid for; "token": if a token is free).
   */
  #count(key: string, now: number, untracked: "spill" | "token" | "drop"): void {
    const entry = this.#live(key, now) ?? this.#make(key, now);
    if (entry !== undefined) this.#fail(key, entry, now);
    else if (untracked === "spill" || (untracked === "token" && this.#take(now))) this.#spillFail(key, now);
  }

  #fail(key: string, entry: Entry, now: number): void {
    entry.failures += 1;
    entry.lastFailure = now;
    entry.lockedUntil = Math.max(entry.lockedUntil, this.#lockEnd(key, entry.failures, now));
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  #spillFail(key: string, now: number): void {
    this.#spill ??= new Spill(this.#spillSlots);
    this.#spill.fail(key, now, this.#maxDelayMs, (failures) => this.#lockEnd(key, failures, now));
  }

  /** When the `failures`-th failure of `key` at `now` locks it until (0: it does not). */
  #lockEnd(key: string, failures: number, now: number): number {
    const free = key.startsWith("d") ? this.#freeDeviceRequests : this.#freeFailures;
    if (failures < free) return 0;
    // 2^exponent overflows to Infinity harmlessly; min() caps it.
    return now + Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (failures - free));
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

  /** Ms `key` stays locked (≤ 0: not locked), from the table, else from the spill. */
  #lockedFor(key: string, now: number): number {
    if (key === "") return 0;
    const entry = this.#live(key, now);
    if (entry !== undefined) return entry.lockedUntil - now;
    return (this.#spill?.view(key, now, this.#maxDelayMs).lockedUntil ?? 0) - now;
  }

  /** Takes a token for each of `keys` untracked keys, or throws the flood error. */
  #admit(now: number, keys: number): void {
    if (this.#take(now, keys)) return;
    const wait = Math.ceil(((keys - this.#tokens) * 1000) / this.#rate);
    throw new RateLimitedError(
      `the server is under a login flood; retry in ${Math.ceil(wait / 1000)} s`,
      wait,
    );
  }

  #take(now: number, tokens = 1): boolean {
    const elapsed = this.#refilledAt === undefined ? 0 : Math.max(0, now - this.#refilledAt);
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000);
    this.#refilledAt = now;
    if (this.#tokens < tokens) return false;
    this.#tokens -= tokens;
    return true;
  }
}

/**
 * Fixed-size failure counts for keys the table cannot hold: two slots per key (seeded hash), each
 * with the count, last failure and lock of every key that maps to it; a key reads the smaller.
 */
class Spill {
  readonly #failures: Uint16Array;
  readonly #lastFailure: Float64Array;
  readonly #lockedUntil: Float64Array;
  readonly #seeds: [number, number];

  constructor(slots: number) {
    this.#failures = new Uint16Array(slots);
    this.#lastFailure = new Float64Array(slots);
    this.#lockedUntil = new Float64Array(slots);
    const seed = randomBytes(8);
    this.#seeds = [seed.readUInt32LE(0), seed.readUInt32LE(4)];
  }

  view(
    key: string,
    now: number,
    quietMs: number,
  ): { failures: number; lastFailure: number; lockedUntil: number } {
    const [i, j] = this.#slots(key, now, quietMs);
    return {
      failures: Math.min(this.#failures[i] as number, this.#failures[j] as number),
      lastFailure: Math.min(this.#lastFailure[i] as number, this.#lastFailure[j] as number),
      lockedUntil: Math.min(this.#lockedUntil[i] as number, this.#lockedUntil[j] as number),
    };
  }

  fail(key: string, now: number, quietMs: number, lockEnd: (failures: number) => number): void {
    for (const s of new Set(this.#slots(key, now, quietMs))) {
      const failures = Math.min(MAX_SPILL_COUNT, (this.#failures[s] as number) + 1);
      this.#failures[s] = failures;
      this.#lastFailure[s] = now;
      this.#lockedUntil[s] = Math.max(this.#lockedUntil[s] as number, lockEnd(failures));
    }
  }

  /** The key's two slots, each cleared first if it has been quiet for `quietMs`. */
  #slots(key: string, now: number, quietMs: number): [number, number] {
    const slots = this.#seeds.map((seed) => hash(key, seed) % this.#failures.length) as [number, number];
    for (const s of slots) {
      const last = Math.max(this.#lastFailure[s] as number, this.#lockedUntil[s] as number);
      if (this.#failures[s] !== 0 && now - last >= quietMs) {
        this.#failures[s] = 0;
        this.#lastFailure[s] = 0;
        this.#lockedUntil[s] = 0;
      }
    }
    return slots;
  }
}

/**
 * A 32-bit hash of `text` under `seed`: FNV-1a steps, then a multiply-xorshift finish (the
 * constants of Chris Wellons' "lowbias32"). Not cryptographic; the random seed keeps an attacker
 * from aiming collisions at a chosen key.
 */
function hash(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

function locked(what: string, which: string, wait: number): RateLimitedError {
  return new RateLimitedError(`${what} ${which}; retry in ${Math.ceil(wait / 1000)} s`, wait);
}

/** The table key of a name's password count, or "" for the empty name. */
function nameSlot(username: string): string {
  return username === "" ? "" : `n:${nameKey(username)}`;
}

/** The table key of an address's count, or "" for an address `addressKey` cannot read. */
function addressSlot(address: string): string {
  const key = addressKey(address);
  return key === "" ? "" : `a:${key}`;
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
