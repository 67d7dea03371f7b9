/**
 * Round trips through the generated struct classes: build with `initRoot`, serialize with
 * `toArrayBuffer()`, read back from the bytes. Covers every field kind in test/schema/everything.capnp.
 */
import { Interface, Message, type Pointer, Struct, type StructCtor, TextList } from "capnp-ts";
import { describe, expect, it } from "vitest";
import { releaseCapTable } from "../../src/caps/index.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import * as E from "../gen/everything.js";
import { Remote } from "../gen/other.js";

function build<T extends Struct>(Cls: StructCtor<T>, fill: (root: T) => void): Uint8Array {
  const m = new Message();
  fill(m.initRoot(Cls));
  return new Uint8Array(m.toArrayBuffer());
}

function read<T extends Struct>(Cls: StructCtor<T>, bytes: Uint8Array): T {
  return new Message(bytes.slice().buffer, false).getRoot(Cls);
}

function roundTrip<T extends Struct>(Cls: StructCtor<T>, fill: (root: T) => void): T {
  return read(Cls, build(Cls, fill));
}

function pointerAs<T extends Struct>(Cls: StructCtor<T>, p: Pointer): T {
  return new Cls(p.segment, p.byteOffset);
}

const counterImpl = (start: bigint): E.Counter$Server => {
  let value = start;
  return {
    inc: (p) => {
      value += BigInt(p.by);
      return { value };
    },
    get: () => ({ value }),
    child: () => ({ counter: counterImpl(0n) }),
  };
};

describe("primitive fields", () => {
  it("Bool fields hold true and false independently of their neighbours", () => {
    const t = roundTrip(E.Primitives, (p) => {
      p.bool = true;
      p.int8 = -1;
    });
    expect(t.bool).toBe(true);
    expect(t.int8).toBe(-1);
    const f = roundTrip(E.Primitives, (p) => {
      p.setInt8(-1);
      p.setBool(true);
      p.setBool(false);
    });
    expect(f.getBool()).toBe(false);
    expect(f.getInt8()).toBe(-1);
  });

  it("every integer width round-trips its minimum and its maximum, 64-bit ones as bigint", () => {
    const min = roundTrip(E.Primitives, (p) => {
      p.int8 = -128;
      p.int16 = -32768;
      p.int32 = -2147483648;
      p.int64 = -(2n ** 63n);
      p.uint8 = 0;
      p.uint16 = 0;
      p.uint32 = 0;
      p.uint64 = 0n;
    });
    expect(min.$toObject()).toMatchObject({
      int8: -128,
      int16: -32768,
      int32: -2147483648,
      int64: -(2n ** 63n),
      uint8: 0,
      uint16: 0,
      uint32: 0,
      uint64: 0n,
    });
    const max = roundTrip(E.Primitives, (p) => {
      p.int8 = 127;
      p.int16 = 32767;
      p.int32 = 2147483647;
      p.int64 = 2n ** 63n - 1n;
      p.uint8 = 255;
      p.uint16 = 65535;
      p.uint32 = 4294967295;
      p.uint64 = 2n ** 64n - 1n;
    });
    expect(max.$toObject()).toMatchObject({
      int8: 127,
      int16: 32767,
      int32: 2147483647,
      int64: 2n ** 63n - 1n,
      uint8: 255,
      uint16: 65535,
      uint32: 4294967295,
      uint64: 2n ** 64n - 1n,
    });
    expect(typeof max.int64).toBe("bigint");
    expect(typeof max.getUint64()).toBe("bigint");
  });

  it.each([
    ["NaN", Number.NaN],
    ["negative zero", -0],
    ["positive infinity", Number.POSITIVE_INFINITY],
    ["negative infinity", Number.NEGATIVE_INFINITY],
    ["a fraction", 0.1],
    ["the largest double", Number.MAX_VALUE],
    ["the smallest subnormal", Number.MIN_VALUE],
  ])("Float64 keeps %s exactly", (_name, value) => {
    const t = roundTrip(E.Primitives, (p) => {
      p.float64 = value;
    });
    expect(Object.is(t.float64, value)).toBe(true);
  });

  it("Float32 keeps NaN, -0 and infinities and rounds other values to single precision", () => {
    for (const value of [Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5]) {
      const t = roundTrip(E.Primitives, (p) => {
        p.float32 = value;
      });
      expect(Object.is(t.float32, value)).toBe(true);
    }
    const rounded = roundTrip(E.Primitives, (p) => {
      p.setFloat32(0.1);
    });
    expect(rounded.getFloat32()).toBe(Math.fround(0.1));
    expect(rounded.getFloat32()).not.toBe(0.1);
  });

  it("Text round-trips unicode: accents, CJK, emoji outside the BMP, and the empty string", () => {
    for (const value of ["héllo wörld", "日本語のテキスト", "👩‍👩‍👧 🦀 𝄞", "", "nul\u0001ctrl"]) {
      const t = roundTrip(E.Primitives, (p) => {
        p.text = value;
      });
      expect(t.text).toBe(value);
      expect(t.hasText()).toBe(true);
    }
  });

  it("Data round-trips arbitrary bytes, including zeros, 0xff and the empty value", () => {
    const bytes = new Uint8Array(300).map((_, i) => (i * 37) & 0xff);
    const t = roundTrip(E.Primitives, (p) => {
      p.data = bytes;
    });
    expect(t.data).toEqual(bytes);
    const empty = roundTrip(E.Primitives, (p) => {
      p.setData(new Uint8Array(0));
    });
    expect(empty.hasData()).toBe(true);
    expect(empty.getData().length).toBe(0);
    const viaInit = roundTrip(E.Primitives, (p) => {
      p.initData(3).copyBuffer(new Uint8Array([0, 0xff, 7]));
    });
    expect([...viaInit.getData()]).toEqual([0, 0xff, 7]);
  });

  it("an enum field round-trips every enumerant by ordinal", () => {
    for (const color of Object.values(E.Color)) {
      const t = roundTrip(E.Primitives, (p) => {
        p.color = color;
      });
      expect(t.color).toBe(color);
    }
    expect(E.Color).toEqual({ RED: 0, GREEN: 1, BLUE: 2, ULTRA_VIOLET: 3 });
  });

  it("unset fields read as zero, false, empty text and no data", () => {
    const t = roundTrip(E.Primitives, () => {});
    expect(t.$toObject()).toEqual({
      bool: false,
      int8: 0,
      int16: 0,
      int32: 0,
      int64: 0n,
      uint8: 0,
      uint16: 0,
      uint32: 0,
      uint64: 0n,
      float32: 0,
      float64: 0,
      text: "",
      color: E.Color.RED,
    });
    expect(t.hasText()).toBe(false);
    expect(t.hasData()).toBe(false);
  });

  it("$set and $toObject round-trip a shape with every primitive field", () => {
    const shape: E.Primitives$Shape = {
      bool: true,
      int8: -7,
      int16: 1234,
      int32: -123456,
      int64: -(2n ** 40n),
      uint8: 200,
      uint16: 60000,
      uint32: 4000000000,
      uint64: 2n ** 63n + 5n,
      float32: 2.5,
      float64: Math.PI,
      text: "π ≈ 3.14",
      data: new Uint8Array([9, 8, 7]),
      color: E.Color.GREEN,
    };
    expect(roundTrip(E.Primitives, (p) => p.$set(shape)).$toObject()).toEqual(shape);
  });
});

describe("lists", () => {
  const everyKind: E.Lists$Shape = {
    voids: [null, null, null],
    bools: [true, false, true, true, false, false, false, false, true, true],
    int8s: [-128, 0, 127],
    int16s: [-32768, 1, 32767],
    int32s: [-2147483648, -1, 2147483647],
    int64s: [-(2n ** 63n), 0n, 2n ** 63n - 1n],
    uint8s: [0, 1, 255],
    uint16s: [0, 65535],
    uint32s: [0, 4294967295],
    uint64s: [0n, 2n ** 64n - 1n],
    float32s: [1.5, -0, Number.POSITIVE_INFINITY],
    float64s: [Math.E, Number.NEGATIVE_INFINITY, -0],
    texts: ["", "ascii", "ünïcødé 🎉"],
    datas: [new Uint8Array([]), new Uint8Array([0, 1, 2]), new Uint8Array([255])],
    colors: [E.Color.ULTRA_VIOLET, E.Color.RED, E.Color.BLUE],
    points: [
      { x: 1, y: 2 },
      { x: -3.5, y: 0 },
    ],
    listOfLists: [[1, 2, 3], [], [-4]],
    listOfTextLists: [["a", "b"], [], ["ç"]],
    listOfStructLists: [[{ x: 1, y: 1 }], [], [{ x: 2 }, { y: 3 }]],
  };

  it("$set and $toObject round-trip a list of every element kind", () => {
    const t = roundTrip(E.Lists, (l) => l.$set(everyKind));
    const out = t.$toObject();
    expect(out).toEqual({
      ...everyKind,
      points: [
        { x: 1, y: 2 },
        { x: -3.5, y: 0 },
      ],
      listOfStructLists: [
        [{ x: 1, y: 1 }],
        [],
        [
          { x: 2, y: 0 },
          { x: 0, y: 3 },
        ],
      ],
    });
    expect(Object.is((out.float32s as number[])[1], -0)).toBe(true);
  });

  it("a Float32 and Float64 list keeps NaN", () => {
    const t = roundTrip(E.Lists, (l) => {
      l.float32s = [Number.NaN];
      l.float64s = [Number.NaN, 1];
    });
    expect(t.float32s.get(0)).toBeNaN();
    expect(t.float64s.toArray()).toEqual([Number.NaN, 1]);
  });

  it("lists built element by element through initX read back through getX", () => {
    const t = roundTrip(E.Lists, (l) => {
      const bools = l.initBools(17);
      bools.set(16, true);
      bools.set(3, true);
      const ints = l.initInt64s(2);
      ints.set(0, -5n);
      ints.set(1, 2n ** 62n);
      const points = l.initPoints(2);
      points.get(1).x = 42;
      const lol = l.initListOfLists(2);
      lol.set(1, roundTrip(E.Lists, (o) => (o.int32s = [7, 8])).int32s);
      const texts = l.initTexts(2);
      texts.set(0, "zero");
    });
    expect(t.bools.toArray()).toEqual(Array.from({ length: 17 }, (_, i) => i === 3 || i === 16));
    expect(t.getInt64s().toArray()).toEqual([-5n, 2n ** 62n]);
    expect(t.getPoints().get(1).x).toBe(42);
    expect(t.getPoints().get(0).x).toBe(0);
    expect(t.listOfLists.get(0).getLength()).toBe(0);
    expect(t.listOfLists.get(1).toArray()).toEqual([7, 8]);
    expect(t.texts.toArray()).toEqual(["zero", ""]);
  });

  it("a list assigned from another message's list is deep-copied", () => {
    const source = roundTrip(E.Lists, (l) => {
      l.texts = ["one", "two"];
      l.points = [{ x: 5, y: 6 }];
      l.listOfTextLists = [["deep"]];
    });
    const t = roundTrip(E.Lists, (l) => {
      l.$set({
        texts: source.texts,
        points: source.points,
        listOfTextLists: source.listOfTextLists,
        listOfStructLists: [source.points, [{ y: 1 }]],
      });
    });
    source.points.get(0).x = 99;
    expect(t.$toObject()).toEqual({
      texts: ["one", "two"],
      points: [{ x: 5, y: 6 }],
      listOfTextLists: [["deep"]],
      listOfStructLists: [[{ x: 5, y: 6 }], [{ x: 0, y: 1 }]],
    });
  });

  it("unset list fields are absent from $toObject and read as empty lists", () => {
    const t = roundTrip(E.Lists, (l) => {
      l.int8s = [];
    });
    expect(t.$toObject()).toEqual({ int8s: [] });
    expect(t.hasInt8s()).toBe(true);
    expect(t.hasTexts()).toBe(false);
    expect(t.texts.getLength()).toBe(0);
  });

  it("a list of capabilities stores cap-table indexes and reads back stubs that call their servers", async () => {
    const m = new Message();
    const l = m.initRoot(E.Lists);
    using stub = E.Counter.server(counterImpl(20n));
    l.caps = [counterImpl(10n), null, stub];
    const fromBytes = read(E.Lists, new Uint8Array(m.toArrayBuffer()));
    expect([0, 1, 2].map((i) => Interface.getCapId(fromBytes.caps.get(i)))).toEqual([0, -1, 1]);

    const [a, missing, b] = l.$toObject().caps as E.Counter[];
    expect((await a!.inc({ by: 1 })).value).toBe(11n);
    expect((await b!.get()).value).toBe(20n);
    await expect(missing!.get()).rejects.toMatchObject({ code: ErrorCode.FAILED });
    for (const c of [a, missing, b]) c!.dispose();
    releaseCapTable(m);
  });
});

describe("structs, groups and unions", () => {
  it("nested structs, struct lists and a struct from another schema file round-trip", () => {
    const t = roundTrip(E.Nested, (n) => {
      n.inner = { value: -9, mode: E.Nested_Inner_Mode.OFF };
      n.inners = [{ value: 1 }, { value: 2, mode: E.Nested_Inner_Mode.ON }];
      n.other = { id: 2n ** 64n - 1n, tags: ["x", "ÿ"] };
    });
    expect(t.$toObject()).toEqual({
      inner: { value: -9, mode: E.Nested_Inner_Mode.OFF },
      inners: [
        { value: 1, mode: E.Nested_Inner_Mode.ON },
        { value: 2, mode: E.Nested_Inner_Mode.ON },
      ],
      other: { id: 2n ** 64n - 1n, tags: ["x", "ÿ"] },
    });
    expect(t.other).toBeInstanceOf(Remote);
    expect(t.getInner().getValue()).toBe(-9);
  });

  it("initX returns a zeroed struct and setX deep-copies a struct from another message", () => {
    const source = roundTrip(Remote, (r) => r.$set({ id: 7n, tags: ["t"] }));
    const t = roundTrip(E.Nested, (n) => {
      n.initInner().value = 3;
      n.setOther(source);
    });
    source.id = 8n;
    expect(t.inner.$toObject()).toEqual({ value: 3, mode: E.Nested_Inner_Mode.ON });
    expect(t.other.$toObject()).toEqual({ id: 7n, tags: ["t"] });
    const empty = roundTrip(E.Nested, () => {});
    expect(empty.hasInner()).toBe(false);
    expect(empty.$toObject()).toEqual({});
  });

  it("an enum inside a nested struct reads its schema default when unset", () => {
    const t = roundTrip(E.Nested_Inner, () => {});
    expect(t.mode).toBe(E.Nested_Inner_Mode.ON);
  });

  it("which() names the active member of an unnamed union and typed accessors read it", () => {
    const circle = roundTrip(E.Shape, (s) => {
      s.name = "c";
      s.circle = 2.5;
    });
    expect(circle.which()).toBe(E.Shape_Which.CIRCLE);
    expect(circle.isCircle()).toBe(true);
    expect(circle.isSquare()).toBe(false);
    expect(circle.getCircle()).toBe(2.5);
    expect(circle.name).toBe("c");

    const label = roundTrip(E.Shape, (s) => s.setLabel("hi"));
    expect(label.which()).toBe(E.Shape_Which.LABEL);
    expect(label.label).toBe("hi");

    const nothing = roundTrip(E.Shape, (s) => {
      s.setSquare(1);
      s.setNothing();
    });
    expect(nothing.which()).toBe(E.Shape_Which.NOTHING);
    expect(nothing.isNothing()).toBe(true);

    const points = roundTrip(E.Shape, (s) => {
      s.points = [{ x: 1, y: 2 }];
    });
    expect(points.which()).toBe(E.Shape_Which.POINTS);
    expect(points.points.get(0).$toObject()).toEqual({ x: 1, y: 2 });
  });

  it("reading an inactive union member throws", () => {
    const t = roundTrip(E.Shape, (s) => {
      s.square = 4;
    });
    expect(t.square).toBe(4);
    expect(() => t.getCircle()).toThrow(/circle/);
    expect(() => t.label).toThrow(/label/);
    expect(() => t.getRectangle()).toThrow(/rectangle/);
    expect(() => t.getPoints()).toThrow(/points/);
  });

  it("$set with two members of one union throws PARALLAX_ERR_BAD_ARGUMENT and names them", () => {
    const m = new Message();
    const s = m.initRoot(E.Shape);
    let caught: unknown;
    try {
      s.$set({ circle: 1, label: "x" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParallaxError);
    expect(caught).toMatchObject({ code: ErrorCode.BAD_ARGUMENT });
    expect((caught as Error).message).toMatch(/circle, label/);
    expect(() => s.$set({ style: { solid: E.Color.RED, pattern: "dots" } })).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }),
    );
    expect(() => s.$set({ nothing: null, square: 2 })).toThrow(ParallaxError);
  });

  it("initializing a union group zeroes the bytes a previous member left behind", () => {
    const t = roundTrip(E.Shape, (s) => {
      s.circle = 123.25;
      const r = s.initRectangle();
      expect(r.width).toBe(0);
      r.height = 2;
    });
    expect(t.which()).toBe(E.Shape_Which.RECTANGLE);
    expect(t.rectangle.$toObject()).toEqual({ width: 0, height: 2 });

    const again = roundTrip(E.Shape, (s) => {
      s.rectangle = { width: 3, height: 4 };
      s.setSquare(9);
      s.rectangle = { height: 1 };
    });
    expect(again.rectangle.$toObject()).toEqual({ width: 0, height: 1 });
  });

  it("initializing a union group resets the group's own union and fields, even where another member wrote", () => {
    const t = roundTrip(E.Tagged, (s) => {
      s.number = 2n ** 64n - 1n;
      const pair = s.initPair();
      expect(pair.which()).toBe(E.Tagged_Pair_Which.LEFT);
      expect(pair.weight).toBe(7);
    });
    expect(t.which()).toBe(E.Tagged_Which.PAIR);
    expect(t.pair.$toObject()).toEqual({ left: null, weight: 7 });
    const right = roundTrip(E.Tagged, (s) => s.$set({ pair: { right: "r", weight: -1 } }));
    expect(right.$toObject()).toEqual({ pair: { right: "r", weight: -1 } });
    const number = roundTrip(E.Tagged, (s) => {
      s.pair = { right: "r" };
      s.number = 5n;
    });
    expect(number.$toObject()).toEqual({ number: 5n });
    expect(() => number.pair).toThrow(/pair/);
  });

  it("a named union and a group holding a union round-trip alongside the unnamed union", () => {
    const t = roundTrip(E.Shape, (s) =>
      s.$set({
        name: "all",
        rectangle: { width: 1, height: 2 },
        style: { pattern: "stripes" },
        meta: { createdBy: "ann", revision: 4294967295, origin: { remote: "host" } },
      }),
    );
    expect(t.$toObject()).toEqual({
      name: "all",
      rectangle: { width: 1, height: 2 },
      style: { pattern: "stripes" },
      meta: { createdBy: "ann", revision: 4294967295, origin: { remote: "host" } },
    });
    expect(t.style.which()).toBe(E.Shape_Style_Which.PATTERN);
    expect(() => t.style.solid).toThrow(/solid/);
    expect(t.meta.origin.which()).toBe(E.Shape_Meta_Origin_Which.REMOTE);

    const solid = roundTrip(E.Shape, (s) => {
      s.style.solid = E.Color.BLUE;
      s.meta.origin.setLocal();
      s.meta.revision = 1;
    });
    expect(solid.style.which()).toBe(E.Shape_Style_Which.SOLID);
    expect(solid.style.solid).toBe(E.Color.BLUE);
    expect(solid.meta.origin.isLocal()).toBe(true);
    expect(solid.$toObject()).toEqual({
      name: "",
      circle: 0,
      style: { solid: E.Color.BLUE },
      meta: { createdBy: "", revision: 1, origin: { local: null } },
    });
  });

  it("$toObject and $set round-trip every member of the unnamed union", () => {
    const members: E.Shape$Shape[] = [
      { circle: 1 },
      { square: 2 },
      { rectangle: { width: 3, height: 4 } },
      { nothing: null },
      { label: "five" },
      { points: [{ x: 6, y: 7 }] },
    ];
    for (const member of members) {
      const shape = { name: "n", ...member, style: { solid: E.Color.GREEN } };
      const back = roundTrip(E.Shape, (s) => s.$set(shape)).$toObject();
      expect(back).toEqual({
        ...shape,
        meta: { createdBy: "", revision: 0, origin: { local: null } },
      });
    }
  });
});

describe("list encoding", () => {
  it("a List(Void) is a void-element list pointer with no content", () => {
    const bytes = build(E.Lists, (l) => {
      l.voids = [null, null, null];
    });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    // segment table, root pointer, then the struct's first pointer: voids
    const upper = view.getUint32(8 + 8 + 4, true);
    expect(upper & 7).toBe(0); // element size VOID
    expect(upper >>> 3).toBe(3); // element count
    expect(bytes.byteLength).toBe(8 + 8 + 20 * 8); // no words spent on the elements
    expect(read(E.Lists, bytes).voids.getLength()).toBe(3);
  });
});

describe("defaults", () => {
  const schemaDefaults: E.Defaults$Shape = {
    bool: true,
    int8: -100,
    int16: -12345,
    int32: -1234567,
    int64: -123456789012345n,
    uint8: 200,
    uint16: 54321,
    uint32: 3456789012,
    uint64: 12345678901234567890n,
    float32: 1.25,
    float64: -3.5e100,
    text: "default text",
    data: new Uint8Array([1, 2, 3]),
    color: E.Color.BLUE,
    point: { x: 3, y: 4 },
    ints: [-1, 0, 1],
    names: ["ann", "bob"],
    points: [
      { x: 1, y: 2 },
      { x: -1, y: -2 },
    ],
    bool2: false,
    float64NaNless: 0,
  };

  const primitiveDefaults: E.Defaults$Shape = {
    bool: true,
    int8: -100,
    int16: -12345,
    int32: -1234567,
    int64: -123456789012345n,
    uint8: 200,
    uint16: 54321,
    uint32: 3456789012,
    uint64: 12345678901234567890n,
    float32: 1.25,
    float64: -3.5e100,
    color: E.Color.BLUE,
    bool2: false,
    float64NaNless: 0,
  };

  it("an empty Defaults struct reads every schema default, primitive and pointer", () => {
    expect(roundTrip(E.Defaults, () => {}).$toObject()).toEqual(schemaDefaults);
  });

  it("a field set to its default is stored as zero bytes: the XOR encoding", () => {
    // Pointer defaults are not XOR-encoded: a field holds its pointer default by being null, so
    // only the data section can be explicitly set to its defaults and still be all zero.
    const empty = build(E.Defaults, () => {});
    const explicit = build(E.Defaults, (d) => d.$set(primitiveDefaults));
    expect(explicit).toEqual(empty);
    const words = empty.byteLength / 8;
    expect(words).toBe(1 + 1 + 7 + 6); // segment table, root pointer, data section, pointer section
    expect(empty.subarray(16).every((b) => b === 0)).toBe(true);
  });

  it("setting a field to any other value, zero included, stores and reads that value", () => {
    const others: E.Defaults$Shape = {
      bool: false,
      int8: 0,
      int16: 0,
      int32: 0,
      int64: 0n,
      uint8: 0,
      uint16: 0,
      uint32: 0,
      uint64: 0n,
      float32: 0,
      float64: 0,
      color: E.Color.RED,
      bool2: true,
      float64NaNless: Number.NaN,
    };
    expect(roundTrip(E.Defaults, (d) => d.$set(others)).$toObject()).toMatchObject(others);
    const extremes: E.Defaults$Shape = {
      int8: 127,
      int16: -32768,
      int32: 2147483647,
      int64: -(2n ** 63n),
      uint8: 255,
      uint16: 65535,
      uint32: 4294967295,
      uint64: 2n ** 64n - 1n,
      float32: Number.NEGATIVE_INFINITY,
      float64: -0,
    };
    const t = roundTrip(E.Defaults, (d) => d.$set(extremes)).$toObject();
    expect(t).toMatchObject(extremes);
    expect(Object.is(t.float64, -0)).toBe(true);
  });

  it("pointer fields explicitly set to empty values read empty, not their defaults", () => {
    const t = roundTrip(E.Defaults, (d) =>
      d.$set({ text: "", data: new Uint8Array(0), ints: [], names: [], points: [] }),
    );
    expect(t.text).toBe("");
    expect(t.data.length).toBe(0);
    expect(t.ints.getLength()).toBe(0);
    expect(t.names.getLength()).toBe(0);
    expect(t.points.getLength()).toBe(0);
  });

  it("pointer fields set to other values round-trip, and initX gives a zeroed struct, not the default", () => {
    const t = roundTrip(E.Defaults, (d) => {
      d.$set({ text: "mine", data: new Uint8Array([9]), ints: [5], names: ["cy"], points: [{ x: 8 }] });
      d.initPoint().y = 1;
    });
    expect(t.$toObject()).toMatchObject({
      text: "mine",
      data: new Uint8Array([9]),
      ints: [5],
      names: ["cy"],
      points: [{ x: 8, y: 0 }],
      point: { x: 0, y: 1 },
    });
  });

  it("changing a default read from one message leaves the defaults of other messages intact", () => {
    const first = roundTrip(E.Defaults, () => {});
    first.points.get(0).x = 100;
    first.getPoint().x = 100;
    first.ints.set(0, 100);
    first.data[0] = 100;
    const second = roundTrip(E.Defaults, () => {});
    expect(second.$toObject()).toEqual(schemaDefaults);
  });
});

describe("constants", () => {
  it("primitive, text and data constants carry their schema values", () => {
    expect(E.answer).toBe(42);
    expect(E.greeting).toBe("hello, parallax");
    expect([...E.someBytes]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(E.bigOne).toBe(0xfedcba9876543210n);
  });

  it("list and struct constants read their schema values and can be copied into messages", () => {
    expect(E.primes.toArray()).toEqual([2, 3, 5, 7, 11]);
    expect(E.origin.$toObject()).toEqual({ x: 1.5, y: -2.5 });
    const t = roundTrip(E.Defaults, (d) => {
      d.point = E.origin;
    });
    expect(t.point.$toObject()).toEqual({ x: 1.5, y: -2.5 });
    const l = roundTrip(E.Lists, (d) => {
      d.setUint16s(E.primes);
    });
    expect(l.uint16s.toArray()).toEqual([2, 3, 5, 7, 11]);
  });
});

describe("AnyPointer and capability fields", () => {
  it("AnyPointer, AnyStruct and AnyList fields hold a struct or a list copied in", () => {
    const point = roundTrip(E.Point, (p) => p.$set({ x: 1, y: -1 }));
    const remote = roundTrip(Remote, (r) => r.$set({ tags: ["a", "b"] }));
    const t = roundTrip(E.Nested, (n) => {
      n.any = point;
      n.anyStruct = remote;
      n.anyList = remote.tags;
    });
    expect(pointerAs(E.Point, t.any).$toObject()).toEqual({ x: 1, y: -1 });
    expect(pointerAs(Remote, t.anyStruct).$toObject()).toEqual({ id: 0n, tags: ["a", "b"] });
    expect(new TextList(t.anyList.segment, t.anyList.byteOffset).toArray()).toEqual(["a", "b"]);
    expect(t.hasAny()).toBe(true);
    expect(roundTrip(E.Nested, () => {}).hasAny()).toBe(false);
  });

  it("typed and untyped capability fields hold stubs that reach their servers", async () => {
    const m = new Message();
    const n = m.initRoot(E.Nested);
    const counter = E.Counter.server(counterImpl(5n));
    n.cap = counter;
    n.anyCap = counter;
    expect(n.hasCap()).toBe(true);
    const fromBytes = read(E.Nested, new Uint8Array(m.toArrayBuffer()));
    expect(Interface.getCapId(Struct.getPointer(6, fromBytes))).toBe(0);
    expect(Interface.getCapId(Struct.getPointer(7, fromBytes))).toBe(1);

    const typed = n.cap;
    const untyped = n.anyCap.castAs(E.Counter);
    expect((await typed.inc({ by: 2 })).value).toBe(7n);
    expect((await untyped.get()).value).toBe(7n);
    for (const c of [typed, untyped, counter]) c.dispose();
    n.cap = null;
    expect(n.hasCap()).toBe(false);
    releaseCapTable(m);
  });
});
