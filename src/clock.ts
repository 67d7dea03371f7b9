/**
 * Time, injected. Everything in Parallax that depends on the time of day or waits for a moment
 * (challenge and token expiry, pending approvals timing out, services' own deadlines) asks a
 * `Clock`, never `Date.now` or `setTimeout` directly, so tests drive time instead of sleeping.
 *
 * Invariants: `now()` never goes backwards for a given clock; a timer fires at most once, never
 * before `now()` reached its due time, and never after it was cancelled. `ManualClock` fires due
 * timers in due-time order (ties in the order they were set) while `advance` or `set` moves time.
 *
 * Tests: test/clock.test.ts
 */
import { ErrorCode, ParallaxError } from "./errors.js";

/** A pending timer; `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Runs `fn` once, `ms` (≥ 0) milliseconds from now, never synchronously. Timers never keep a
   * Node process alive.
   */
  setTimer(ms: number, fn: () => void): Timer;
}

/** The real clock: `Date.now` and unref'd `setTimeout`. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimer(ms: number, fn: () => void): Timer {
    // setTimeout's delay is a signed 32-bit number of ms: longer waits re-arm.
    const due = Date.now() + ms;
    let handle: ReturnType<typeof setTimeout> | undefined;
    const arm = (): void => {
      handle = setTimeout(fire, Math.min(Math.max(0, due - Date.now()), MAX_TIMEOUT_MS));
      handle.unref?.();
    };
    const fire = (): void => {
      if (due - Date.now() > 0) {
        arm();
        return;
      }
      handle = undefined;
      fn();
    };
    // Never synchronously: a timer fires on a later turn of the event loop, even for 0 ms.
    arm();
    return {
      cancel(): void {
        if (handle !== undefined) clearTimeout(handle);
        handle = undefined;
      },
    };
  },
});

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to: for tests (and simulations). */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  /** Starts at `start` (default: the real time now, so stores sharing files agree roughly). */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a timer needs a delay >= 0 ms, not ${ms}`);
    }
    const t: ManualTimer = { due: this.#now + ms, seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
        this.#timers = this.#timers.filter((x) => x !== t);
      },
    };
  }

  /** Timers set and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `time moves forward only, not by ${ms} ms`);
    }
    this.set(this.#now + ms);
  }

  /** Moves time forward to `at`, firing every timer that falls due, in order. */
  set(at: number): void {
    if (at < this.#now) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "time moves forward only");
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (
          t.due <= at &&
          (next === undefined || t.due < next.due || (t.due === next.due && t.seq < next.seq))
        )
          next = t;
      }
      if (next === undefined) break;
      this.#timers = this.#timers.filter((x) => x !== next);
      this.#now = Math.max(this.#now, next.due);
      if (!next.cancelled) next.fn();
    }
    this.#now = at;
  }
}
