/**
 * The runtime that generated schema code imports as `$$`: list and constant helpers for structs,
 * and (re-exported) the capability runtime for interfaces. Nothing here is for hand-written code.
 *
 * Tests: test/codegen/ (roundtrip, reference, interfaces).
 */
import {
  List,
  ListElementSize,
  type ListCtor,
  Message,
  type Pointer,
  Pointer as PointerClass,
  Struct,
  type StructCtor,
  type Void,
} from "capnp-ts";
import { getTargetCompositeListSize, getTargetListElementSize } from "./capnp-internals.js";
import { messageWords, setDataFast, setTextFast } from "./fast-struct.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import { type Capability, type CapabilityCtor, readCap, writeCap } from "../caps/index.js";

export {
  Capability,
  type CallContext,
  type CallOptions,
  type InterfaceDescriptor,
  localCapHook,
  type MethodDescriptor,
  type ParamsInit,
  readCap,
  StructPipeline,
  writeCap,
} from "../caps/index.js";

export {
  checkWhich,
  getBool,
  getData,
  getFloat32,
  getFloat64,
  getInt8,
  getList,
  getInt16,
  getInt32,
  getInt64,
  getStruct,
  getText,
  getUint8,
  getUint16,
  getUint32,
  getUint64,
  group,
  hasPointer,
  initStruct,
  setBool,
  setFloat32,
  setFloat64,
  setInt8,
  setInt16,
  setInt32,
  setInt64,
  setUint8,
  setUint16,
  setUint32,
  setUint64,
} from "./fast-struct.js";

/** What a server method may return: a results shape, nothing (it filled `ctx.results`), or a promise. */
// biome-ignore lint/suspicious/noConfusingVoidType: methods that fill ctx.results return void
export type MethodReturn<S> = S | undefined | void | Promise<S | undefined | void>;

/** How the elements of a list are written from and read into plain values. */
export type ListKind =
  | { readonly k: "prim" }
  | { readonly k: "void" }
  | { readonly k: "text" }
  | { readonly k: "data" }
  | { readonly k: "struct" }
  | { readonly k: "list"; readonly ctor: ListCtor<unknown>; readonly inner: ListKind }
  | { readonly k: "cap"; readonly Ctor: CapabilityCtor<Capability> };

export const PRIM: ListKind = { k: "prim" };
export const VOID: ListKind = { k: "void" };
export const TEXT: ListKind = { k: "text" };
export const DATA: ListKind = { k: "data" };
export const STRUCT: ListKind = { k: "struct" };

export function listKind(ctor: ListCtor<unknown>, inner: ListKind): ListKind {
  return { k: "list", ctor, inner };
}

export function capKind(Ctor: CapabilityCtor<Capability>): ListKind {
  return { k: "cap", Ctor };
}

interface Settable {
  $set(shape: unknown): void;
  $toObject(): unknown;
}

/** Fills a freshly initialized list from an array of plain values (or copies another list). */
export function setList(
  list: List<unknown>,
  values: ArrayLike<unknown> | List<unknown>,
  kind: ListKind,
): void {
  if (isList(values)) {
    Struct.copyFrom(values as unknown as Pointer, list as unknown as Pointer);
    return;
  }
  const arr = values as ArrayLike<unknown>;
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    switch (kind.k) {
      case "void":
        break;
      case "prim":
      case "text":
        list.set(i, v);
        break;
      case "data":
        setDataAt(list.get(i) as unknown as List<number>, v as Uint8Array);
        break;
      case "struct":
        if (v instanceof Struct) list.set(i, v);
        else (list.get(i) as Settable).$set(v);
        break;
      case "list": {
        const inner = list.get(i) as unknown as List<unknown>;
        const items = v as ArrayLike<unknown>;
        const c = kind.ctor._capnp;
        const length = isList(items) ? (items as unknown as List<unknown>).getLength() : items.length;
        List.initList(c.size, length, inner, c.compositeSize);
        setList(inner, items, kind.inner);
        break;
      }
      case "cap":
        writeCap(list.get(i) as unknown as Pointer, v as Capability | object, kind.Ctor.$interface);
        break;
    }
  }
}

/** Reads a list into plain values; capability lists read as stubs that each own a reference. */
export function listToArray(list: List<unknown>, kind: ListKind): unknown[] {
  const n = list.getLength();
  // A list of zero-sized elements can claim any length in a few bytes: count each element as a
  // word of its message, as the reference implementation does, so it cannot amplify.
  if (n > messageWords(list.segment.message) && zeroSized(list)) {
    throw new ParallaxError(
      ErrorCode.LIMIT,
      `a list claims ${n} zero-sized elements, more than its message holds`,
    );
  }
  const out: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) {
    switch (kind.k) {
      case "void":
        out[i] = null;
        break;
      case "prim":
      case "text":
        out[i] = list.get(i);
        break;
      case "data":
        out[i] = (list.get(i) as unknown as { toUint8Array(): Uint8Array }).toUint8Array().slice();
        break;
      case "struct":
        out[i] = (list.get(i) as Settable).$toObject();
        break;
      case "list":
        out[i] = listToArray(list.get(i) as unknown as List<unknown>, kind.inner);
        break;
      case "cap":
        out[i] = readCap(list.get(i) as unknown as Pointer, kind.Ctor);
        break;
    }
  }
  return out;
}

/** True when the list's elements, as encoded, take no room at all. */
function zeroSized(list: List<unknown>): boolean {
  const p = list as unknown as Pointer;
  const size = getTargetListElementSize(p);
  if (size === ListElementSize.VOID) return true;
  if (size !== ListElementSize.COMPOSITE) return false;
  const s = getTargetCompositeListSize(p);
  return s.dataByteLength === 0 && s.pointerLength === 0;
}

function isList(v: unknown): boolean {
  return (
    typeof v === "object" && v !== null && typeof (v as { getLength?: unknown }).getLength === "function"
  );
}

function setDataAt(slot: List<number>, bytes: Uint8Array): void {
  List.initList(ListElementSize.BYTE, bytes.byteLength, slot);
  (slot as unknown as { copyBuffer(b: Uint8Array): void }).copyBuffer(bytes);
}

/** Writes bytes into a Data field, allocating it. */
export function setData(index: number, value: Uint8Array | List<number>, s: Struct): void {
  if (isList(value)) {
    Struct.copyFrom(value as unknown as Pointer, Struct.getPointer(index, s));
    return;
  }
  const bytes = value as Uint8Array;
  if (!setDataFast(s, index, bytes)) Struct.initData(index, bytes.byteLength, s).copyBuffer(bytes);
}

/** Sets a Text field, in place when its segment has room. */
export function setText(index: number, value: string, s: Struct): void {
  if (!setTextFast(s, index, value)) Struct.setText(index, value, s);
}

/**
 * `List(Void)`. capnp-ts 0.9.3's VoidList is a list of pointers: it spends a word per element and
 * tags the list with the wrong element size. Void elements carry nothing to read or write.
 */
export class VoidList extends List<Void> {
  static override readonly _capnp = { displayName: "List<Void>", size: ListElementSize.VOID };
  override get(_index: number): Void {
    return undefined as unknown as Void;
  }
  override set(_index: number, _value: Void): void {}
}

/** Nulls a pointer slot (what initializing a union group does to the group's pointers). */
export function clearPointer(index: number, s: Struct): void {
  const p = Struct.getPointer(index, s);
  p.segment.setUint32(p.byteOffset, 0);
  p.segment.setUint32(p.byteOffset + 4, 0);
}

/** A default or constant value stored as a framed (unpacked) single-segment message. */
export function rawPointer(bytes: readonly number[]): Pointer {
  return new PointerClass(new Message(new Uint8Array(bytes).buffer, false).getSegment(0), 0);
}

export function constStruct<T extends Struct>(Cls: StructCtor<T>, bytes: readonly number[]): T {
  return new Message(new Uint8Array(bytes).buffer, false).getRoot(Cls);
}

export function constList<T>(Ctor: ListCtor<T>, bytes: readonly number[]): List<T> {
  const p = rawPointer(bytes);
  return new Ctor(p.segment, p.byteOffset);
}

/** Thrown by `$set` when a shape names two members of one union. */
export function unionConflict(struct: string, members: readonly string[]): never {
  throw new ParallaxError(
    ErrorCode.BAD_ARGUMENT,
    `${struct}: only one union member may be set, got ${members.join(", ")}`,
  );
}
