/**
 * Fast field access for generated structs.
 *
 * capnp-ts re-resolves a struct's location (far pointers, composite-list index, section sizes)
 * on every field access, allocating as it goes. Here a struct's layout is resolved once, on first
 * access, and cached on the struct object; fields are then plain DataView reads at fixed offsets.
 *
 * Reads follow the spec where capnp-ts does not: a field beyond the end of a (smaller, older)
 * struct reads as its default instead of throwing or copying the struct. Writes beyond the end
 * throw, as they can only happen on a struct we did not build.
 *
 * Invariant: a cached layout stays right for the struct object's life, because capnp-ts never
 * moves a struct's content once built (segments grow in place; offsets stay valid).
 *
 * Tests: test/codegen/roundtrip.test.ts and reference.test.ts (every generated accessor goes through it).
 */
import { type List, type ListCtor, type Message, type Pointer, PointerType, Struct } from "capnp-ts";
import { ErrorCode, ParallaxError } from "../errors.js";
import {
  compositeIndexOf,
  depthLimitOf,
  getContent,
  getSize,
  getTargetPointerType,
  isNull,
  type Segment,
  segmentsOf,
} from "./capnp-internals.js";

export interface Layout {
  readonly seg: Segment;
  /** Byte offset of the data section in `seg`. */
  readonly data: number;
  readonly dataBytes: number;
  /** Byte offset of the pointer section in `seg`. */
  readonly ptrs: number;
  readonly ptrCount: number;
}

type Laid = Struct & { $layout?: Layout };
const EMPTY: Omit<Layout, "seg"> = { data: 0, dataBytes: 0, ptrs: 0, ptrCount: 0 };

export function layoutOf(s: Struct): Layout {
  const cached = (s as Laid).$layout;
  if (cached !== undefined) return cached;
  let layout: Layout;
  const composite = compositeIndexOf(s) !== undefined;
  if (!composite && isNull(s)) {
    layout = { seg: s.segment, ...EMPTY };
  } else {
    if (!composite && getTargetPointerType(s) !== PointerType.STRUCT) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        "a struct field holds a pointer that is not a struct pointer",
      );
    }
    const size = getSize(s);
    const c = getContent(s);
    const dataBytes = size.dataByteLength;
    const end = c.byteOffset + ((dataBytes + 7) & ~7) + size.pointerLength * 8;
    if (c.byteOffset < 0 || end > c.segment.byteLength) {
      throw new ParallaxError(ErrorCode.MALFORMED_MESSAGE, "a struct pointer points outside its segment");
    }
    layout = {
      seg: c.segment,
      data: c.byteOffset,
      dataBytes,
      ptrs: c.byteOffset + ((dataBytes + 7) & ~7),
      ptrCount: size.pointerLength,
    };
  }
  (s as Laid).$layout = layout;
  return layout;
}

/** A group shares its parent's sections. */
export function group<T extends Struct>(
  Group: new (segment: Segment, byteOffset: number, depthLimit?: number, compositeIndex?: number) => T,
  parent: Struct,
): T {
  const g = new Group(parent.segment, parent.byteOffset, depthLimitOf(parent), compositeIndexOf(parent));
  (g as Laid).$layout = layoutOf(parent);
  return g;
}

function outOfBounds(what: string): ParallaxError {
  return new ParallaxError(ErrorCode.FAILED, `cannot write ${what}: the struct is smaller than its schema`);
}

// ---- primitives -----------------------------------------------------------------------------------

export function getBool(s: Struct, bit: number): boolean {
  const l = layoutOf(s);
  const byte = bit >>> 3;
  return byte < l.dataBytes && (l.seg.getUint8(l.data + byte) & (1 << (bit & 7))) !== 0;
}
export function setBool(s: Struct, bit: number, value: boolean): void {
  const l = layoutOf(s);
  const byte = bit >>> 3;
  if (byte >= l.dataBytes) throw outOfBounds("a Bool");
  const v = l.seg.getUint8(l.data + byte);
  l.seg.setUint8(l.data + byte, value ? v | (1 << (bit & 7)) : v & ~(1 << (bit & 7)));
}

/** Reads `width` bytes at `off`, or undefined when the struct is too small (the field reads as its default). */
function at(s: Struct, off: number, width: number): Layout | undefined {
  const l = layoutOf(s);
  return off + width <= l.dataBytes ? l : undefined;
}
function atWrite(s: Struct, off: number, width: number): Layout {
  const l = layoutOf(s);
  if (off + width > l.dataBytes) throw outOfBounds("a field");
  return l;
}

export function getUint8(s: Struct, off: number): number {
  const l = at(s, off, 1);
  return l === undefined ? 0 : l.seg.getUint8(l.data + off);
}
export function getInt8(s: Struct, off: number): number {
  const l = at(s, off, 1);
  return l === undefined ? 0 : l.seg.getInt8(l.data + off);
}
export function getUint16(s: Struct, off: number): number {
  const l = at(s, off, 2);
  return l === undefined ? 0 : l.seg.getUint16(l.data + off);
}
export function getInt16(s: Struct, off: number): number {
  const l = at(s, off, 2);
  return l === undefined ? 0 : l.seg.getInt16(l.data + off);
}
export function getUint32(s: Struct, off: number): number {
  const l = at(s, off, 4);
  return l === undefined ? 0 : l.seg.getUint32(l.data + off);
}
export function getInt32(s: Struct, off: number): number {
  const l = at(s, off, 4);
  return l === undefined ? 0 : l.seg.getInt32(l.data + off);
}
export function getUint64(s: Struct, off: number): bigint {
  const l = at(s, off, 8);
  return l === undefined ? 0n : l.seg.getUint64(l.data + off);
}
export function getInt64(s: Struct, off: number): bigint {
  const l = at(s, off, 8);
  return l === undefined ? 0n : l.seg.getInt64(l.data + off);
}
export function setUint8(s: Struct, off: number, v: number): void {
  const l = atWrite(s, off, 1);
  l.seg.setUint8(l.data + off, v);
}
export function setInt8(s: Struct, off: number, v: number): void {
  const l = atWrite(s, off, 1);
  l.seg.setInt8(l.data + off, v);
}
export function setUint16(s: Struct, off: number, v: number): void {
  const l = atWrite(s, off, 2);
  l.seg.setUint16(l.data + off, v);
}
export function setInt16(s: Struct, off: number, v: number): void {
  const l = atWrite(s, off, 2);
  l.seg.setInt16(l.data + off, v);
}
export function setUint32(s: Struct, off: number, v: number): void {
  const l = atWrite(s, off, 4);
  l.seg.setUint32(l.data + off, v);
}
export function setInt32(s: Struct, off: number, v: number): void {
  const l = atWrite(s, off, 4);
  l.seg.setInt32(l.data + off, v);
}
export function setUint64(s: Struct, off: number, v: bigint): void {
  const l = atWrite(s, off, 8);
  l.seg.setUint64(l.data + off, BigInt.asUintN(64, v));
}
export function setInt64(s: Struct, off: number, v: bigint): void {
  const l = atWrite(s, off, 8);
  l.seg.setInt64(l.data + off, BigInt.asIntN(64, v));
}

const scratch = new DataView(new ArrayBuffer(8));

/** Float32 stored XOR `maskBits` (the spec's default encoding; 0 for no default). */
export function getFloat32(s: Struct, off: number, maskBits = 0): number {
  scratch.setUint32(0, (getUint32(s, off) ^ maskBits) >>> 0, true);
  return scratch.getFloat32(0, true);
}
export function setFloat32(s: Struct, off: number, v: number, maskBits = 0): void {
  scratch.setFloat32(0, v, true);
  setUint32(s, off, (scratch.getUint32(0, true) ^ maskBits) >>> 0);
}
export function getFloat64(s: Struct, off: number, maskBits = 0n): number {
  scratch.setBigUint64(0, getUint64(s, off) ^ maskBits, true);
  return scratch.getFloat64(0, true);
}
export function setFloat64(s: Struct, off: number, v: number, maskBits = 0n): void {
  scratch.setFloat64(0, v, true);
  setUint64(s, off, scratch.getBigUint64(0, true) ^ maskBits);
}

/** The IEEE bits of a default value, for the XOR masks above. */
export function float32Bits(v: number): number {
  scratch.setFloat32(0, v, true);
  return scratch.getUint32(0, true);
}
export function float64Bits(v: number): bigint {
  scratch.setFloat64(0, v, true);
  return scratch.getBigUint64(0, true);
}

// ---- unions -----------------------------------------------------------------------------------------

/** Throws unless the union member `name` (discriminant `wanted`) is the active one. */
export function checkWhich(s: Struct, discByte: number, wanted: number, name: string): void {
  const found = getUint16(s, discByte);
  if (found !== wanted) {
    throw new ParallaxError(
      ErrorCode.FAILED,
      `${s.constructor.name}.${name} is not the active union member (found discriminant ${found})`,
    );
  }
}

// ---- pointers ---------------------------------------------------------------------------------------

/** Byte offset of pointer slot `index`, or -1 when the struct has no such slot. */
function slot(l: Layout, index: number): number {
  return index < l.ptrCount ? l.ptrs + index * 8 : -1;
}

export function hasPointer(s: Struct, index: number): boolean {
  const l = layoutOf(s);
  const at = slot(l, index);
  return at >= 0 && (l.seg.getUint32(at) !== 0 || l.seg.getUint32(at + 4) !== 0);
}

const utf8 = new TextDecoder("utf-8");
const LIST = 1;
const FAR = 2;
const BYTE_ELEMENTS = 2;

/**
 * The bytes of a byte list (Text or Data) at pointer slot `index`: a view into the message, or
 * undefined for a null pointer. Far pointers and anything unusual take capnp-ts's careful path.
 */
function byteList(s: Struct, index: number, what: string): Uint8Array | undefined {
  const l = layoutOf(s);
  const at = slot(l, index);
  if (at < 0) return undefined;
  const lo = l.seg.getUint32(at);
  const hi = l.seg.getUint32(at + 4);
  if (lo === 0 && hi === 0) return undefined;
  const kind = lo & 3;
  if (kind === LIST && (hi & 7) === BYTE_ELEMENTS) {
    const start = at + 8 + ((lo | 0) >> 2) * 8;
    const length = hi >>> 3;
    if (start < 0 || start + length > l.seg.byteLength) {
      throw new ParallaxError(ErrorCode.MALFORMED_MESSAGE, `${what} points outside its segment`);
    }
    return new Uint8Array(l.seg.buffer, start, length);
  }
  if (kind === FAR) {
    try {
      return Struct.getData(index, s).toUint8Array();
    } catch {
      throw wrongType(what);
    }
  }
  throw wrongType(what);
}

function wrongType(what: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} holds something that is not a list of bytes`);
}

export function getText(s: Struct, index: number, fallback = ""): string {
  const bytes = byteList(s, index, "a Text field");
  if (bytes === undefined) return fallback;
  // Text carries a NUL terminator that is not part of the string.
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a Text field is missing its NUL terminator");
  }
  return utf8.decode(bytes.subarray(0, bytes.length - 1));
}

/** Data as a view into the message (valid while the message is); a null pointer reads as a copy of `fallback`. */
export function getData(s: Struct, index: number, fallback?: Uint8Array): Uint8Array {
  return (
    byteList(s, index, "a Data field") ?? (fallback === undefined ? new Uint8Array(0) : fallback.slice())
  );
}

/** Bytes taken by `count` elements of each list element size (composite: words, tag excluded). */
const ELEMENT_BYTES = [0, 1 / 8, 1, 2, 4, 8, 8, 8];

/**
 * The list at pointer slot `index`, after checking that the pointer is a list whose elements lie
 * inside their segment, and that a list of zero-sized elements claims no more elements than its
 * message has words (the reference implementation's rule against amplification). capnp-ts then
 * reads it; it would otherwise accept a struct pointer here and copy it.
 */
export function getList<T>(s: Struct, index: number, Ctor: ListCtor<T>, fallback?: Pointer): List<T> {
  const l = layoutOf(s);
  const at = slot(l, index);
  if (at >= 0) {
    const lo = l.seg.getUint32(at);
    const hi = l.seg.getUint32(at + 4);
    if (lo !== 0 || hi !== 0) {
      const kind = lo & 3;
      if (kind === LIST) checkList(l.seg, at, lo, hi);
      else if (kind !== FAR) {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          "a list field holds a pointer that is not a list pointer",
        );
      }
    }
  }
  return Struct.getList(index, Ctor, s, fallback);
}

function checkList(seg: Segment, at: number, lo: number, hi: number): void {
  const start = at + 8 + ((lo | 0) >> 2) * 8;
  const size = hi & 7;
  const count = hi >>> 3;
  const bytes = size === 7 ? 8 + count * 8 : Math.ceil(count * (ELEMENT_BYTES[size] as number));
  if (start < 0 || start + bytes > seg.byteLength) {
    throw new ParallaxError(ErrorCode.MALFORMED_MESSAGE, "a list pointer points outside its segment");
  }
  let elements = count;
  let zeroSized = size === 0;
  if (size === 7) {
    elements = seg.getUint32(start) >>> 2;
    const tagHi = seg.getUint32(start + 4);
    const stride = (tagHi & 0xffff) + (tagHi >>> 16);
    if (elements * stride > count) {
      throw new ParallaxError(
        ErrorCode.MALFORMED_MESSAGE,
        "a composite list's tag claims more than the list holds",
      );
    }
    zeroSized = stride === 0;
  }
  if (zeroSized && elements > messageWords(seg.message)) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `a list claims ${elements} zero-sized elements, more than its message holds`,
    );
  }
}

/** The words in a message's segments: what a list of zero-sized elements may claim at most. */
export function messageWords(message: Message): number {
  let words = 0;
  for (const s of segmentsOf(message)) {
    words += s.byteLength / 8;
  }
  return words;
}

/** The struct at pointer slot `index`; a null pointer reads as `fallback` (or the type's defaults). */
export function getStruct<T extends Struct>(
  s: Struct,
  index: number,
  Cls: (new (segment: Segment, byteOffset: number, depthLimit?: number) => T) & { _capnp: unknown },
  fallback?: Pointer,
): T {
  const l = layoutOf(s);
  const at = slot(l, index);
  if (at >= 0 && (l.seg.getUint32(at) !== 0 || l.seg.getUint32(at + 4) !== 0)) {
    const depth = depthLimitOf(s) - 1;
    return new Cls(l.seg, at, depth);
  }
  return Struct.getStruct(index, Cls as never, s, fallback) as T;
}

// ---- building ---------------------------------------------------------------------------------------

/**
 * Reserves `bytes` (rounded up to words) at the end of `seg` when it has room, returning the
 * offset, or -1 when it has not (callers then take capnp-ts's path, which can grow or chain
 * segments). Reserved space is zero: segments are only ever grown, never reused.
 */
function reserve(seg: Segment, bytes: number): number {
  const padded = (bytes + 7) & ~7;
  const at = seg.byteLength;
  if (at + padded > seg.buffer.byteLength) return -1;
  seg.byteLength = at + padded;
  return at;
}

function writeSlot(s: Struct, index: number): { l: Layout; at: number } {
  const l = layoutOf(s);
  const at = slot(l, index);
  if (at < 0) throw outOfBounds("a pointer");
  return { l, at };
}

/** Writes `bytes` as a byte list (Data, or Text with its terminator) into pointer slot `index`. */
function putBytes(s: Struct, index: number, bytes: Uint8Array, length: number): boolean {
  const { l, at } = writeSlot(s, index);
  const start = reserve(l.seg, length);
  if (start < 0) return false;
  const words = (start - at - 8) / 8;
  l.seg.setUint32(at, ((words << 2) | LIST) >>> 0);
  l.seg.setUint32(at + 4, ((length << 3) | BYTE_ELEMENTS) >>> 0);
  new Uint8Array(l.seg.buffer, start, bytes.byteLength).set(bytes);
  return true;
}

/** Sets a Data field from bytes; false when the segment is full (use the general path). */
export function setDataFast(s: Struct, index: number, bytes: Uint8Array): boolean {
  return putBytes(s, index, bytes, bytes.byteLength);
}

const utf8Encoder = new TextEncoder();

/** Sets a Text field; false when the segment is full (use the general path). */
export function setTextFast(s: Struct, index: number, text: string): boolean {
  const bytes = utf8Encoder.encode(text);
  return putBytes(s, index, bytes, bytes.byteLength + 1); // the NUL is already zero
}

type StructClass<T> = (new (
  segment: Segment,
  byteOffset: number,
  depthLimit?: number,
) => T) & {
  readonly _capnp: { readonly size: { readonly dataByteLength: number; readonly pointerLength: number } };
};

/** A new, zeroed struct in pointer slot `index`, in the same segment when it has room. */
export function initStruct<T extends Struct>(s: Struct, index: number, Cls: StructClass<T>): T {
  const { l, at } = writeSlot(s, index);
  const size = Cls._capnp.size;
  const dataBytes = (size.dataByteLength + 7) & ~7;
  const start = reserve(l.seg, dataBytes + size.pointerLength * 8);
  if (start < 0) return Struct.initStructAt(index, Cls as never, s) as T;
  const words = (start - at - 8) / 8;
  l.seg.setUint32(at, (words << 2) >>> 0);
  l.seg.setUint32(at + 4, ((dataBytes / 8) | (size.pointerLength << 16)) >>> 0);
  const depth = depthLimitOf(s) - 1;
  const child = new Cls(l.seg, at, depth);
  (child as Laid).$layout = {
    seg: l.seg,
    data: start,
    dataBytes: size.dataByteLength,
    ptrs: start + dataBytes,
    ptrCount: size.pointerLength,
  };
  return child;
}
