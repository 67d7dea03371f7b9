import { describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "../src/clock.js";
import { ErrorCode } from "../src/errors.js";

describe("ManualClock", () => {
  it("moves only when told, firing due timers in due-time order and ties in the order they were set", () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimer(30, () => fired.push(`c@${clock.now()}`));
    clock.setTimer(10, () => fired.push(`a@${clock.now()}`));
    clock.setTimer(10, () => fired.push(`b@${clock.now()}`));
    clock.advance(9);
    expect(fired).toEqual([]);
    clock.advance(25);
    expect(fired).toEqual(["a@1010", "b@1010", "c@1030"]);
    expect(clock.now()).toBe(1034);
    expect(clock.pendingTimers).toBe(0);
  });

  it("never fires a cancelled timer, and fires timers set by a firing timer when they fall due", () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const t = clock.setTimer(5, () => fired.push(5));
    clock.setTimer(2, () => clock.setTimer(1, () => fired.push(clock.now())));
    t.cancel();
    t.cancel();
    clock.advance(10);
    expect(fired).toEqual([3]);
  });

  it("refuses to go backwards or to wait a negative time", () => {
    const clock = new ManualClock(100);
    expect(() => clock.set(50)).toThrow(expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }));
    expect(() => clock.advance(-1)).toThrow(expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }));
    expect(() => clock.setTimer(-1, () => {})).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }),
    );
  });
});

describe("systemClock", () => {
  it("fires a zero-delay timer on the event loop, and not after cancel", async () => {
    let fired = false;
    const cancelled = systemClock.setTimer(0, () => {
      fired = true;
    });
    cancelled.cancel();
    await new Promise<void>((resolve) => systemClock.setTimer(0, resolve));
    expect(fired).toBe(false);
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1000);
  });
});
