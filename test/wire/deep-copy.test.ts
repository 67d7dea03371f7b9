import { Message, Struct } from "capnp-ts";
import { describe, expect, it } from "vitest";
import { capTableOf } from "../../src/caps/index.js";
import { ErrorCode } from "../../src/errors.js";
import { deepCopy } from "../../src/wire/deep-copy.js";
import * as E from "../gen/everything.js";

const UNBOUNDED = { maxDepth: 64, maxWords: 1 << 20 };

function counter(): E.Counter {
  return E.Counter.server({ inc: () => ({ value: 1n }), get: () => ({ value: 2n }), child: () => ({}) });
}

function copyOf<T extends Struct>(src: T, Cls: new (...a: never[]) => T, limits = UNBOUNDED): T {
  const dst = new Message();
  const root = dst.initRoot(E.Nested); // any struct: we copy into its pointer slot 0
  deepCopy(src as unknown as import("capnp-ts").Pointer, Struct.getPointer(0, root), limits);
  return Struct.getStruct(0, Cls as never, root) as T;
}

describe("deepCopy", () => {
  it("copies every field kind: primitives, text, data, lists of each kind, nested structs and groups", () => {
    const m = new Message();
    const lists = m.initRoot(E.Lists);
    lists.$set({
      bools: [true, false, true],
      int64s: [-1n, 2n ** 62n],
      float64s: [1.5, -0],
      texts: ["a", "ünï"],
      datas: [new Uint8Array([1, 2]), new Uint8Array(0)],
      colors: [E.Color.BLUE],
      points: [{ x: 1, y: 2 }],
      listOfLists: [[1, 2], [], [3]],
      listOfTextLists: [["x"], ["y", "z"]],
      listOfStructLists: [[{ x: 9 }]],
      voids: [null, null],
    });
    const copy = copyOf(lists, E.Lists);
    expect(copy.$toObject()).toEqual(lists.$toObject());
  });

  it("re-indexes capabilities into the destination's cap table, which gains a reference", async () => {
    const c = counter();
    const src = new Message();
    const root = src.initRoot(E.Nested);
    root.cap = c;
    root.inner = { value: 5 };
    const copy = copyOf(root, E.Nested);
    const table = capTableOf(copy.segment.message);
    expect(table).toHaveLength(1);
    expect(table[0]).toBe(c.$hook);
    expect((await copy.cap.get()).value).toBe(2n);
    expect(copy.inner.value).toBe(5);
    c.dispose();
  });

  it("refuses with LIMIT a copy deeper than maxDepth or larger than maxWords", () => {
    const m = new Message();
    const shape = m.initRoot(E.Lists);
    shape.listOfLists = [[1], [2], [3]];
    expect(() => copyOf(shape, E.Lists, { maxDepth: 1, maxWords: 1 << 20 })).toThrow(
      expect.objectContaining({ code: ErrorCode.LIMIT }),
    );
    const big = new Message();
    const many = big.initRoot(E.Lists);
    many.int64s = Array.from({ length: 1000 }, (_, i) => BigInt(i));
    expect(() => copyOf(many, E.Lists, { maxDepth: 64, maxWords: 100 })).toThrow(
      expect.objectContaining({ code: ErrorCode.LIMIT }),
    );
  });
});
