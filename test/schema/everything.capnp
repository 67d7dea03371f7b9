@0xd6b1a9c4e2f03a51;
# A schema that exercises every construct the Parallax compiler plugin supports.
# The round-trip and reference cross-check tests build, serialize and read these types.

using Other = import "other.capnp";

const answer :Int32 = 42;
# A primitive constant.

const greeting :Text = "hello, parallax";
const someBytes :Data = 0x"de ad be ef";
const primes :List(UInt16) = [2, 3, 5, 7, 11];
const origin :Point = (x = 1.5, y = -2.5);
const bigOne :UInt64 = 0xfedcba9876543210;

enum Color {
  # Enumerants carry their ordinal.
  red @0;
  green @1;
  blue @2;
  ultraViolet @3;
}

struct Point {
  # A tiny struct used inside lists and as a default.
  x @0 :Float64;
  y @1 :Float64;
}

struct Primitives {
  # Every primitive field kind, with and without defaults.
  void @0 :Void;
  bool @1 :Bool;
  int8 @2 :Int8;
  int16 @3 :Int16;
  int32 @4 :Int32;
  int64 @5 :Int64;
  uint8 @6 :UInt8;
  uint16 @7 :UInt16;
  uint32 @8 :UInt32;
  uint64 @9 :UInt64;
  float32 @10 :Float32;
  float64 @11 :Float64;
  text @12 :Text;
  data @13 :Data;
  color @14 :Color;
}

struct Defaults {
  # Defaults use the spec's XOR encoding for primitives and pointer defaults for the rest.
  bool @0 :Bool = true;
  int8 @1 :Int8 = -100;
  int16 @2 :Int16 = -12345;
  int32 @3 :Int32 = -1234567;
  int64 @4 :Int64 = -123456789012345;
  uint8 @5 :UInt8 = 200;
  uint16 @6 :UInt16 = 54321;
  uint32 @7 :UInt32 = 3456789012;
  uint64 @8 :UInt64 = 12345678901234567890;
  float32 @9 :Float32 = 1.25;
  float64 @10 :Float64 = -3.5e100;
  text @11 :Text = "default text";
  data @12 :Data = 0x"01 02 03";
  color @13 :Color = blue;
  point @14 :Point = (x = 3, y = 4);
  ints @15 :List(Int32) = [-1, 0, 1];
  names @16 :List(Text) = ["ann", "bob"];
  points @17 :List(Point) = [(x = 1, y = 2), (x = -1, y = -2)];
  bool2 @18 :Bool = false;
  float64NaNless @19 :Float64 = 0;
}

struct Lists {
  # A list of every element kind.
  voids @0 :List(Void);
  bools @1 :List(Bool);
  int8s @2 :List(Int8);
  int16s @3 :List(Int16);
  int32s @4 :List(Int32);
  int64s @5 :List(Int64);
  uint8s @6 :List(UInt8);
  uint16s @7 :List(UInt16);
  uint32s @8 :List(UInt32);
  uint64s @9 :List(UInt64);
  float32s @10 :List(Float32);
  float64s @11 :List(Float64);
  texts @12 :List(Text);
  datas @13 :List(Data);
  colors @14 :List(Color);
  points @15 :List(Point);
  listOfLists @16 :List(List(Int32));
  listOfTextLists @17 :List(List(Text));
  listOfStructLists @18 :List(List(Point));
  caps @19 :List(Counter);
}

struct Shape {
  # A union at the top level, plus fields outside it.
  name @0 :Text;
  union {
    circle @1 :Float64;
    # Radius.
    square @2 :Float64;
    rectangle :group {
      width @3 :Float64;
      height @4 :Float64;
    }
    nothing @5 :Void;
    label @6 :Text;
    points @7 :List(Point);
  }
  style :union {
    # A named union.
    solid @8 :Color;
    pattern @9 :Text;
  }
  meta :group {
    # A group that is not a union, holding a union.
    createdBy @10 :Text;
    revision @11 :UInt32;
    origin :union {
      local @12 :Void;
      remote @13 :Text;
    }
  }
}

struct Nested {
  # Nested declarations are named Outer_Inner.
  struct Inner {
    value @0 :Int32;
    enum Mode {
      off @0;
      on @1;
    }
    mode @1 :Mode = on;
  }
  inner @0 :Inner;
  inners @1 :List(Inner);
  other @2 :Other.Remote;
  any @3 :AnyPointer;
  anyStruct @4 :AnyStruct;
  anyList @5 :AnyList;
  cap @6 :Counter;
  anyCap @7 :Capability;
}

interface Counter {
  # A counter: the smallest interface with state.
  inc @0 (by :Int32 = 1) -> (value :Int64);
  # Adds `by` and answers the new value.
  get @1 () -> (value :Int64);
  child @2 () -> (counter :Counter, info :Nested.Inner);
  # A fresh counter; pipelining on `counter` works before the results arrive.
}

interface Named extends(Counter) {
  # Inherits Counter's methods.
  name @0 () -> (name :Text);
  rename @1 Rename -> Point;
  # Uses named structs as params and results.
  watch @2 (listener :Listener) -> ();
}

struct Rename {
  newName @0 :Text;
}

interface Listener {
  event @0 (what :Text, color :Color) -> ();
}

struct Tagged {
  # A union member that is a group with its own union, sharing bytes with the other members.
  union {
    number @0 :UInt64;
    pair :group {
      union {
        left @1 :Void;
        right @2 :Text;
      }
      weight @3 :Int16 = 7;
    }
  }
}

interface Recorder extends(Counter, Listener) {
  # Two superclasses: the stub extends the first and copies in the second's methods.
  log @0 () -> (events :List(Text));
}
