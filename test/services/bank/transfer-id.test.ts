/**
 * `newTransferId`: 16 bytes laid out like a ULID — the time in ms (48 bits, big-endian) then 80
 * random bits — so that ids made later sort after earlier ones (the ledger's id index then grows
 * at its end) while ids made in the same millisecond, here or in another process, still differ.
 */
import { describe, expect, it } from "vitest";
import { newTransferId } from "../../../src/services/bank/bank-client.js";

const timeOf = (id: Uint8Array) => id.subarray(0, 6).reduce((t, b) => t * 256 + b, 0);
const compare = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe("newTransferId", () => {
  it("starts with the time in ms, big-endian, and sorts by it", () => {
    const t = Date.UTC(2026, 11, 3, 12, 0, 0, 123);
    const id = newTransferId(t);
    expect(id).toBeInstanceOf(Uint8Array);
    expect(id.length).toBe(16);
    expect(timeOf(id)).toBe(t);
    expect(compare(newTransferId(t), newTransferId(t + 1))).toBeLessThan(0);
    expect(compare(newTransferId(t + 256), newTransferId(t + 255))).toBeGreaterThan(0);
    expect(timeOf(newTransferId(2 ** 48 - 1))).toBe(2 ** 48 - 1);
  });

  it("differs in its random part between ids of the same millisecond, across pool refills", () => {
    const t = 1_700_000_000_000;
    const seen = new Set<string>();
    // 3 000 ids: more than ten refills of the pool of random bytes.
    for (let i = 0; i < 3000; i++) {
      const id = newTransferId(t);
      expect(timeOf(id)).toBe(t);
      seen.add(Buffer.from(id.subarray(6)).toString("hex"));
    }
    expect(seen.size).toBe(3000);
  });

  it("hands out ids that do not share memory: changing one leaves the next intact", () => {
    const a = newTransferId(5);
    const copy = Uint8Array.from(a);
    const b = newTransferId(5);
    b.fill(0);
    expect(a).toEqual(copy);
    expect(a.buffer).not.toBe(b.buffer);
  });
});
