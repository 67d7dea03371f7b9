/**
 * Cross-checks the generated classes against the reference implementation: the `capnp` tool
 * (Debian package capnproto). Each case is one value written twice, once through our classes and
 * once in Cap'n Proto text format for `capnp encode`. Skipped when `capnp` is not on PATH.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { Message, type Struct, type StructCtor } from "capnp-ts";
import { describe, expect, it } from "vitest";
import * as E from "../gen/everything.js";

const schemaDir = path.resolve(import.meta.dirname, "../schema");

const hasCapnp = ((): boolean => {
  try {
    execFileSync("capnp", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

if (!hasCapnp) {
  console.warn(
    "test/codegen/reference.test.ts: SKIPPED the cross-checks against the reference capnp tool, " +
      "because `capnp` is not on PATH. Enable them with: apt-get install -y capnproto",
  );
}

function capnp(args: readonly string[], input: string | Uint8Array): Buffer {
  // capnp resolves `import "other.capnp"` relative to the schema file; PWD keeps kj from warning.
  return execFileSync("capnp", args, {
    cwd: schemaDir,
    input,
    env: { ...process.env, PWD: schemaDir },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

const encode = (type: string, text: string): Uint8Array =>
  new Uint8Array(capnp(["encode", "everything.capnp", type], text));
const decode = (type: string, bytes: Uint8Array): string =>
  capnp(["decode", "--short", "everything.capnp", type], bytes).toString("utf8").trim();
const canonical = (bytes: Uint8Array): Uint8Array =>
  new Uint8Array(capnp(["convert", "binary:canonical"], bytes));

interface Case {
  readonly name: string;
  /** The type as `capnp` names it. */
  readonly type: string;
  /** The value in Cap'n Proto text format, for `capnp encode`. */
  readonly text: string;
  /** What `capnp decode --short` prints for it (defaults included, null pointers left out). */
  readonly decoded: string;
  /**
   * `exact`: our serialized message is byte-for-byte what `capnp encode` writes.
   * `canonical`: both agree once passed through `capnp convert binary:canonical`.
   * `text`: the bytes legitimately differ (see the case), so only the decoded text is compared.
   */
  readonly compare: "exact" | "canonical" | "text";
  ours(): Uint8Array;
  /** Our classes' plain-object reading of a message. */
  readBack(bytes: Uint8Array): unknown;
}

function kase<T extends Struct & { $toObject(): unknown }>(
  Cls: StructCtor<T>,
  c: Omit<Case, "ours" | "readBack" | "decoded"> & { decoded?: string; build(root: T): void },
): Case {
  return {
    ...c,
    decoded: c.decoded ?? c.text,
    ours: () => {
      const m = new Message();
      c.build(m.initRoot(Cls));
      return new Uint8Array(m.toArrayBuffer());
    },
    readBack: (bytes) => new Message(bytes.slice().buffer, false).getRoot(Cls).$toObject(),
  };
}

const shapeTail = "style = (solid = red), meta = (revision = 0, origin = (local = void))";

const cases: Case[] = [
  kase(E.Primitives, {
    name: "Primitives with every field set",
    type: "Primitives",
    compare: "exact",
    text:
      "(void = void, bool = true, int8 = -128, int16 = 32767, int32 = -5, int64 = -9223372036854775808, " +
      "uint8 = 255, uint16 = 65535, uint32 = 4294967295, uint64 = 18446744073709551615, float32 = 1.5, " +
      'float64 = -2.25, text = "héllo", data = "\\001\\002", color = ultraViolet)',
    build: (p) =>
      p.$set({
        bool: true,
        int8: -128,
        int16: 32767,
        int32: -5,
        int64: -(2n ** 63n),
        uint8: 255,
        uint16: 65535,
        uint32: 4294967295,
        uint64: 2n ** 64n - 1n,
        float32: 1.5,
        float64: -2.25,
        text: "héllo",
        data: new Uint8Array([1, 2]),
        color: E.Color.ULTRA_VIOLET,
      }),
  }),
  kase(E.Primitives, {
    name: "Primitives with minimums, NaN, -Infinity and astral text",
    type: "Primitives",
    compare: "exact",
    text:
      "(void = void, bool = false, int8 = -128, int16 = -32768, int32 = -2147483648, " +
      "int64 = -9223372036854775808, uint8 = 0, uint16 = 0, uint32 = 0, uint64 = 0, float32 = nan, " +
      'float64 = -inf, text = "日本 🌍", color = red)',
    build: (p) =>
      p.$set({
        int8: -128,
        int16: -32768,
        int32: -2147483648,
        int64: -(2n ** 63n),
        float32: Number.NaN,
        float64: Number.NEGATIVE_INFINITY,
        text: "日本 🌍",
      }),
  }),
  kase(E.Defaults, {
    name: "Defaults left empty",
    type: "Defaults",
    compare: "exact",
    text: "()",
    decoded:
      "(bool = true, int8 = -100, int16 = -12345, int32 = -1234567, int64 = -123456789012345, " +
      "uint8 = 200, uint16 = 54321, uint32 = 3456789012, uint64 = 12345678901234567890, float32 = 1.25, " +
      "float64 = -3.5e100, color = blue, bool2 = false, float64NaNless = 0)",
    build: () => {},
  }),
  kase(E.Defaults, {
    name: "Defaults with every field set away from its default",
    type: "Defaults",
    compare: "exact",
    text:
      "(bool = false, int8 = 0, int16 = 1, int32 = 2147483647, int64 = 0, uint8 = 0, uint16 = 0, " +
      'uint32 = 0, uint64 = 0, float32 = 0, float64 = 0, text = "", data = "", color = red, ' +
      'point = (x = 0, y = 0), ints = [], names = ["zed"], points = [], bool2 = true, float64NaNless = nan)',
    build: (d) =>
      d.$set({
        bool: false,
        int8: 0,
        int16: 1,
        int32: 2147483647,
        int64: 0n,
        uint8: 0,
        uint16: 0,
        uint32: 0,
        uint64: 0n,
        float32: 0,
        float64: 0,
        text: "",
        data: new Uint8Array(0),
        color: E.Color.RED,
        point: {},
        ints: [],
        names: ["zed"],
        points: [],
        bool2: true,
        float64NaNless: Number.NaN,
      }),
  }),
  kase(E.Lists, {
    name: "Lists of every element kind but capabilities",
    type: "Lists",
    // A List(Void) has no content, so the offset in its pointer is arbitrary: the C++ builder
    // points it at its allocation cursor, capnp-ts at the next word. Canonical form fixes it.
    compare: "canonical",
    text:
      "(voids = [void, void, void], bools = [true, false, true, false, false, false, false, false, true], " +
      "int8s = [-128, 127], int16s = [-32768, 32767], int32s = [-2147483648, 2147483647], " +
      "int64s = [-9223372036854775808, 9223372036854775807], uint8s = [0, 255], uint16s = [65535], " +
      "uint32s = [4294967295], uint64s = [18446744073709551615], float32s = [1.5, -inf], " +
      'float64s = [0.1, inf], texts = ["", "ünï 🎉"], datas = ["", "\\000\\377"], colors = [blue, ultraViolet], ' +
      "points = [(x = 1, y = 2), (x = -3, y = 0)], listOfLists = [[1, 2], [], [3]], " +
      'listOfTextLists = [["a"], [], ["b", "c"]], listOfStructLists = [[(x = 1, y = 0)], [], [(x = 0, y = 2)]])',
    build: (l) =>
      l.$set({
        voids: [null, null, null],
        bools: [true, false, true, false, false, false, false, false, true],
        int8s: [-128, 127],
        int16s: [-32768, 32767],
        int32s: [-2147483648, 2147483647],
        int64s: [-(2n ** 63n), 2n ** 63n - 1n],
        uint8s: [0, 255],
        uint16s: [65535],
        uint32s: [4294967295],
        uint64s: [2n ** 64n - 1n],
        float32s: [1.5, Number.NEGATIVE_INFINITY],
        float64s: [0.1, Number.POSITIVE_INFINITY],
        texts: ["", "ünï 🎉"],
        datas: [new Uint8Array(0), new Uint8Array([0, 255])],
        colors: [E.Color.BLUE, E.Color.ULTRA_VIOLET],
        points: [{ x: 1, y: 2 }, { x: -3 }],
        listOfLists: [[1, 2], [], [3]],
        listOfTextLists: [["a"], [], ["b", "c"]],
        listOfStructLists: [[{ x: 1 }], [], [{ y: 2 }]],
      }),
  }),
  kase(E.Lists, {
    name: "Lists of pointers and structs",
    type: "Lists",
    compare: "exact",
    text:
      '(texts = ["x", "yz"], points = [(x = 1, y = 2)], listOfLists = [[7], []], ' +
      'listOfTextLists = [["p", "q"]], listOfStructLists = [[], [(x = 5, y = 6), (x = 7, y = 8)]])',
    build: (l) =>
      l.$set({
        texts: ["x", "yz"],
        points: [{ x: 1, y: 2 }],
        listOfLists: [[7], []],
        listOfTextLists: [["p", "q"]],
        listOfStructLists: [
          [],
          [
            { x: 5, y: 6 },
            { x: 7, y: 8 },
          ],
        ],
      }),
  }),
  kase(E.Shape, {
    name: "Shape as a circle",
    type: "Shape",
    compare: "exact",
    text: `(name = "c", circle = 1.5, ${shapeTail})`,
    build: (s) => s.$set({ name: "c", circle: 1.5 }),
  }),
  kase(E.Shape, {
    name: "Shape as a square",
    type: "Shape",
    compare: "exact",
    text: `(square = 2, ${shapeTail})`,
    build: (s) => s.$set({ square: 2 }),
  }),
  kase(E.Shape, {
    name: "Shape as a rectangle, with a patterned style and a remote origin",
    type: "Shape",
    compare: "exact",
    text:
      '(name = "r", rectangle = (width = 1, height = 2), style = (pattern = "p"), ' +
      'meta = (createdBy = "me", revision = 3, origin = (remote = "h")))',
    build: (s) =>
      s.$set({
        name: "r",
        rectangle: { width: 1, height: 2 },
        style: { pattern: "p" },
        meta: { createdBy: "me", revision: 3, origin: { remote: "h" } },
      }),
  }),
  kase(E.Shape, {
    name: "Shape as nothing, with a solid style",
    type: "Shape",
    compare: "exact",
    text: '(name = "n", nothing = void, style = (solid = green), meta = (revision = 0, origin = (local = void)))',
    build: (s) => s.$set({ name: "n", nothing: null, style: { solid: E.Color.GREEN } }),
  }),
  kase(E.Shape, {
    name: "Shape as a label",
    type: "Shape",
    compare: "exact",
    text: `(label = "l", ${shapeTail})`,
    build: (s) => s.$set({ label: "l" }),
  }),
  kase(E.Shape, {
    name: "Shape as points",
    type: "Shape",
    compare: "exact",
    text: `(points = [(x = 1, y = 2), (x = 3, y = 4)], ${shapeTail})`,
    build: (s) =>
      s.$set({
        points: [
          { x: 1, y: 2 },
          { x: 3, y: 4 },
        ],
      }),
  }),
  kase(E.Tagged, {
    name: "Tagged as a number",
    type: "Tagged",
    compare: "exact",
    text: "(number = 18446744073709551615)",
    build: (t) => t.$set({ number: 2n ** 64n - 1n }),
  }),
  kase(E.Tagged, {
    name: "Tagged as a pair group holding the second member of its own union",
    type: "Tagged",
    compare: "exact",
    text: '(pair = (right = "r", weight = -1))',
    build: (t) => t.$set({ pair: { right: "r", weight: -1 } }),
  }),
  kase(E.Tagged, {
    name: "Tagged as a pair initialized over a number",
    type: "Tagged",
    // initPair() zeroes the group's own fields, as the C++ builder does; the bytes of `number`
    // outside the group stay behind, so only what the reader sees can match.
    compare: "text",
    text: "(pair = (left = void))",
    decoded: "(pair = (left = void, weight = 7))",
    build: (t) => {
      t.number = 2n ** 64n - 1n;
      t.initPair();
    },
  }),
  kase(E.Nested, {
    name: "Nested with inner structs and a struct from another file",
    type: "Nested",
    compare: "exact",
    text:
      "(inner = (value = 5, mode = off), inners = [(value = 1, mode = off), (value = 0, mode = on)], " +
      'other = (id = 18446744073709551615, tags = ["t", "u"]))',
    build: (n) =>
      n.$set({
        inner: { value: 5, mode: E.Nested_Inner_Mode.OFF },
        inners: [{ value: 1, mode: E.Nested_Inner_Mode.OFF }, {}],
        other: { id: 2n ** 64n - 1n, tags: ["t", "u"] },
      }),
  }),
  kase(E.Nested_Inner, {
    name: "Nested.Inner left empty",
    type: "Nested.Inner",
    compare: "exact",
    text: "()",
    decoded: "(value = 0, mode = on)",
    build: () => {},
  }),
];

describe.skipIf(!hasCapnp)("the reference capnp tool agrees with our generated classes", () => {
  for (const c of cases) {
    describe(c.name, () => {
      if (c.compare === "exact") {
        it("our bytes are identical to what `capnp encode` writes for the same text value", () => {
          expect(Buffer.from(c.ours()).toString("hex")).toBe(
            Buffer.from(encode(c.type, c.text)).toString("hex"),
          );
        });
      } else if (c.compare === "canonical") {
        it("our bytes canonicalize to the same bytes as `capnp encode` output does", () => {
          expect(Buffer.from(canonical(c.ours())).toString("hex")).toBe(
            Buffer.from(canonical(encode(c.type, c.text))).toString("hex"),
          );
        });
      }

      it("`capnp decode` of our bytes prints the value", () => {
        expect(decode(c.type, c.ours())).toBe(c.decoded);
      });

      it("our classes read the bytes `capnp encode` wrote as the value we wrote", () => {
        expect(c.readBack(encode(c.type, c.text))).toEqual(c.readBack(c.ours()));
      });
    });
  }
});
