/**
 * Deep copy of an object between messages, capabilities included: what passing a call on from
 * one connection to another needs (capnp-ts's own copy refuses capability pointers).
 *
 * A capability pointer is re-indexed into the destination's cap table, which gains a reference
 * on the hook. The copy is bounded: `maxDepth` nested pointers and `maxWords` words in all,
 * counting every element of a list of zero-sized elements as a word, so a hostile message
 * cannot make the copy cost more than its limits allow.
 *
 * Tests: test/wire/deep-copy.test.ts; test/rpc/rpc-connection.test.ts ("forwarding between connections").
 */
import { List, ListElementSize, type Message, type ObjectSize, Pointer, PointerType, Struct } from "capnp-ts";
import { type CapHook, capTableOf } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import {
  getCapabilityId,
  getContent,
  getTargetCompositeListSize,
  getTargetListElementSize,
  getTargetListLength,
  getTargetPointerType,
  getTargetStructSize,
  initStructPointer,
  isNull,
} from "./capnp-internals.js";

export interface CopyLimits {
  readonly maxDepth: number;
  readonly maxWords: number;
}

/** Copies what `src` points to into the empty pointer slot `dst`. */
export function deepCopy(src: Pointer, dst: Pointer, limits: CopyLimits): void {
  const state = {
    srcCaps: capTableOf(src.segment.message as Message),
    dstCaps: capTableOf(dst.segment.message as Message),
    words: limits.maxWords,
  };
  copy(src, dst, limits.maxDepth, state);
}

interface CopyState {
  readonly srcCaps: Array<CapHook | null>;
  readonly dstCaps: Array<CapHook | null>;
  words: number;
}

function charge(state: CopyState, words: number): void {
  state.words -= Math.max(1, words);
  if (state.words < 0)
    throw new ParallaxError(ErrorCode.LIMIT, "copying a message exceeds maxTraversalWords");
}

function structWords(size: ObjectSize): number {
  return ((size.dataByteLength + 7) >>> 3) + size.pointerLength;
}

const ELEMENT_BITS: Partial<Record<ListElementSize, number>> = {
  [ListElementSize.VOID]: 0,
  [ListElementSize.BIT]: 1,
  [ListElementSize.BYTE]: 8,
  [ListElementSize.BYTE_2]: 16,
  [ListElementSize.BYTE_4]: 32,
  [ListElementSize.BYTE_8]: 64,
};

function copy(src: Pointer, dst: Pointer, depth: number, state: CopyState): void {
  if (isNull(src)) return;
  if (depth <= 0) throw new ParallaxError(ErrorCode.LIMIT, "copying a message exceeds maxNestingDepth");
  switch (getTargetPointerType(src)) {
    case PointerType.STRUCT: {
      const size = getTargetStructSize(src);
      charge(state, structWords(size));
      const target = new Struct(dst.segment, dst.byteOffset);
      initStructPointer(size, target);
      copySections(getContent(src), getContent(target), size, depth, state);
      return;
    }
    case PointerType.LIST: {
      const elementSize = getTargetListElementSize(src);
      const length = getTargetListLength(src);
      const target = new List<unknown>(dst.segment, dst.byteOffset);
      if (elementSize === ListElementSize.COMPOSITE) {
        const size = getTargetCompositeListSize(src);
        const stride = structWords(size) * 8;
        charge(state, Math.max(length, (length * stride) / 8));
        List.initList(ListElementSize.COMPOSITE, length, target, size);
        const s = getContent(src);
        const d = getContent(target);
        for (let i = 0; i < length; i++) {
          copySections(
            new Pointer(s.segment, s.byteOffset + i * stride),
            new Pointer(d.segment, d.byteOffset + i * stride),
            size,
            depth,
            state,
          );
        }
        return;
      }
      if (elementSize === ListElementSize.POINTER) {
        charge(state, length);
        List.initList(ListElementSize.POINTER, length, target);
        const s = getContent(src);
        const d = getContent(target);
        for (let i = 0; i < length; i++) {
          copy(
            new Pointer(s.segment, s.byteOffset + i * 8),
            new Pointer(d.segment, d.byteOffset + i * 8),
            depth - 1,
            state,
          );
        }
        return;
      }
      const bytes = Math.ceil((length * (ELEMENT_BITS[elementSize] ?? 0)) / 8);
      charge(state, elementSize === ListElementSize.VOID ? length : bytes / 8);
      List.initList(elementSize, length, target);
      if (bytes > 0) {
        const s = getContent(src);
        const d = getContent(target);
        new Uint8Array(d.segment.buffer, d.byteOffset, bytes).set(
          new Uint8Array(s.segment.buffer, s.byteOffset, bytes),
        );
      }
      return;
    }
    case PointerType.OTHER: {
      const hook = state.srcCaps[getCapabilityId(src)] ?? null;
      const index = state.dstCaps.push(hook === null ? null : hook.addRef()) - 1;
      dst.segment.setUint32(dst.byteOffset, 3);
      dst.segment.setUint32(dst.byteOffset + 4, index);
      return;
    }
    default:
      throw new ParallaxError(ErrorCode.MALFORMED_MESSAGE, "a pointer of an unknown kind");
  }
}

/** Copies a struct's data section verbatim and its pointer section pointer by pointer. */
function copySections(s: Pointer, d: Pointer, size: ObjectSize, depth: number, state: CopyState): void {
  const dataBytes = (size.dataByteLength + 7) & ~7;
  if (dataBytes > 0) d.segment.copyWords(d.byteOffset, s.segment, s.byteOffset, dataBytes / 8);
  for (let i = 0; i < size.pointerLength; i++) {
    copy(
      new Pointer(s.segment, s.byteOffset + dataBytes + i * 8),
      new Pointer(d.segment, d.byteOffset + dataBytes + i * 8),
      depth - 1,
      state,
    );
  }
}
