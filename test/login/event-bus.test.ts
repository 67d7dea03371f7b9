import { describe, expect, it } from "vitest";
import { InProcessBus, topic } from "../../src/login/index.js";

const A = topic<{ n: number }>("a");
const B = topic<{ n: number }>("b");

describe("InProcessBus", () => {
  it("delivers after publish returns, in publish order, to the subscribers of that topic only", async () => {
    const bus = new InProcessBus();
    const got: string[] = [];
    bus.subscribe(A, (e) => got.push(`1:${e.n}`));
    bus.subscribe(A, (e) => got.push(`2:${e.n}`));
    bus.subscribe(B, (e) => got.push(`b:${e.n}`));
    bus.publish(A, { n: 1 });
    bus.publish(A, { n: 2 });
    expect(got).toEqual([]);
    await Promise.resolve();
    expect(got).toEqual(["1:1", "2:1", "1:2", "2:2"]);
  });

  it("isolates a subscriber that throws, and stops delivering once unsubscribed", async () => {
    const bus = new InProcessBus();
    const errors: unknown[] = [];
    bus.onHandlerError = (e) => errors.push(e);
    const got: number[] = [];
    bus.subscribe(A, () => {
      throw new Error("bad subscriber");
    });
    const off = bus.subscribe(A, (e) => got.push(e.n));
    bus.publish(A, { n: 1 });
    // Unsubscribed after publishing but before delivery: it gets nothing more.
    off();
    bus.publish(A, { n: 2 });
    await Promise.resolve();
    expect(got).toEqual([]);
    expect(errors).toHaveLength(2);
    expect(bus.subscribers(A)).toBe(1);
  });
});
