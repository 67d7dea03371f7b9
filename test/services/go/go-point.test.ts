import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { checkPoint, gtpToPoint, isOnBoard, pointToGtp, pointToSgf } from "../../../src/services/go/index.js";

describe("points", () => {
  it("spell the same point in GTP (no I, row 1 at the bottom) and SGF (row a at the top)", () => {
    expect(pointToGtp({ x: 3, y: 15 }, 19)).toBe("D4");
    expect(pointToGtp({ x: 8, y: 0 }, 19)).toBe("J19");
    expect(pointToGtp({ x: 24, y: 0 }, 25)).toBe("Z25");
    expect(gtpToPoint("d4", 19)).toEqual({ x: 3, y: 15 });
    expect(gtpToPoint("PASS", 19)).toBeUndefined();
    expect(pointToSgf({ x: 3, y: 15 })).toBe("dp");
    for (let size = 2; size <= 25; size++)
      for (let x = 0; x < size; x++)
        for (let y = 0; y < size; y++) expect(gtpToPoint(pointToGtp({ x, y }, size), size)).toEqual({ x, y });
  });

  it("reject vertices that are not on the board, and I", () => {
    for (const v of ["I5", "K10", "A0", "A10", "", "D4D", "44"])
      expect(() => gtpToPoint(v, 9), v).toThrowError(
        expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }),
      );
  });

  it("check that coordinates are integers; being on the board is a separate question", () => {
    expect(checkPoint({ x: -3, y: 40 })).toEqual({ x: -3, y: 40 });
    expect(isOnBoard({ x: -3, y: 40 }, 19)).toBe(false);
    for (const p of [{ x: 1.5, y: 0 }, { x: 1 }, "D4", [1, 2], { x: 2 ** 60, y: 0 }])
      expect(() => checkPoint(p)).toThrowError(expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }));
  });
});
