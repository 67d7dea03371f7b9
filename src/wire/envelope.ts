/**
 * The hot path of the wire: the envelopes of Call, Return, Finish and Release written and read by
 * hand at the offsets rpc.capnp fixes, instead of through capnp-ts's builder (which allocates a
 * pointer object and a trace call for every field). Finish and Release are whole messages here;
 * for Call and Return only the envelope is, and the params or results inside are built and read
 * by generated code as usual.
 *
 * The reader is bounds-checked and recognises only the plain single-segment layout every
 * implementation writes for these messages; anything else (far pointers, several segments, other
 * message kinds) returns undefined and goes to the full decoder. The tests hold both to the
 * generated classes' bytes.
 *
 * Tests: test/wire/envelope.test.ts.
 */
import { Message } from "capnp-ts";
import { SingleSegmentArena } from "./capnp-internals.js";
import { Message_Which, Payload } from "./gen/capnp/rpc.js";
import type { AnswerId, ExportId, QuestionId } from "./rpc-ids.js";

/** Frame header (1 segment, 4 words) + root pointer + Message struct + pointer to a 1-word struct. */
const SMALL_FRAME_BYTES = 8 + 4 * 8;

function smallMessage(which: number, lo: number, hi: number): Uint8Array {
  const bytes = new Uint8Array(SMALL_FRAME_BYTES);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, 0, true); // segment count - 1
  dv.setUint32(4, 4, true); // segment 0: 4 words
  // word 0: root pointer → Message at word 1 (offset 0), 1 data word, 1 pointer
  dv.setUint32(12, 0x0001_0001, true);
  // word 1: Message data: the union discriminant
  dv.setUint16(16, which, true);
  // word 2: Message.pointer0 → the body struct at word 3 (offset 0), 1 data word, no pointers
  dv.setUint32(28, 0x0000_0001, true);
  // word 3: the body's data word
  dv.setUint32(32, lo, true);
  dv.setUint32(36, hi, true);
  return bytes;
}

/** Finish(questionId, releaseResultCaps). The bool's default is true, so it is stored inverted. */
export function encodeFinish(questionId: QuestionId, releaseResultCaps: boolean): Uint8Array {
  return smallMessage(Message_Which.FINISH, questionId, releaseResultCaps ? 0 : 1);
}

export function encodeRelease(id: ExportId | number, referenceCount: number): Uint8Array {
  return smallMessage(Message_Which.RELEASE, id, referenceCount);
}

/** Where a call goes: an import of the receiver's, or a capability in the results of one of its answers. */
export type EnvelopeTarget =
  | { readonly kind: "import"; readonly id: number }
  | { readonly kind: "answer"; readonly questionId: number; readonly ops: readonly number[] };

/** An outgoing Call or Return whose envelope is written; `payload` is where the params or results go. */
export interface BuiltEnvelope {
  readonly message: Message;
  readonly payload: Payload;
}

/** Room for the params or results after the envelope; the segment grows beyond it when needed. */
const SPARE_BYTES = 256;

function builder(words: number): { message: Message; dv: DataView } {
  const bytes = words * 8;
  const buffer = new ArrayBuffer(bytes + SPARE_BYTES);
  const message = new Message(new SingleSegmentArena(buffer));
  const seg = message.getSegment(0); // reserves the root pointer
  seg.byteLength = bytes;
  return { message, dv: new DataView(buffer) };
}

/**
 * A Call message: root → Message(call) → Call{questionId, methodId, sendResultsTo = caller,
 * interfaceId; target, params, thirdParty = null} → MessageTarget, Payload{content, capTable}.
 */
export function buildCall(
  questionId: QuestionId,
  target: EnvelopeTarget,
  interfaceId: bigint,
  methodId: number,
): BuiltEnvelope {
  const ops = target.kind === "answer" ? target.ops : [];
  const extra = target.kind === "answer" ? 2 + (ops.length > 0 ? 1 + ops.length : 0) : 0;
  const { message, dv } = builder(13 + extra);
  dv.setUint32(4, 0x0001_0001, true); // w0 → Message (w1): 1 data word, 1 pointer
  dv.setUint16(8, Message_Which.CALL, true); // w1
  dv.setUint32(20, 0x0003_0003, true); // w2 → Call (w3): 3 data words, 3 pointers
  dv.setUint32(24, questionId, true); // w3: questionId
  dv.setUint16(28, methodId, true); //     methodId (sendResultsTo = caller: 0)
  dv.setBigUint64(32, interfaceId, true); // w4: interfaceId
  dv.setUint32(48, 2 << 2, true); // w6 (target) → MessageTarget (w9)
  dv.setUint32(52, 0x0001_0001, true);
  dv.setUint32(56, 3 << 2, true); // w7 (params) → Payload (w11)
  dv.setUint32(60, 0x0002_0000, true);
  if (target.kind === "import") {
    dv.setUint32(72, target.id, true); // w9: importedCap (discriminant 0)
  } else {
    dv.setUint16(76, 1, true); // w9: discriminant promisedAnswer
    dv.setUint32(80, 2 << 2, true); // w10 → PromisedAnswer (w13): 1 data word, 1 pointer
    dv.setUint32(84, 0x0001_0001, true);
    dv.setUint32(104, target.questionId, true); // w13
    if (ops.length > 0) {
      dv.setUint32(112, 1 | (0 << 2), true); // w14 → composite list (w15 tag)
      dv.setUint32(116, 7 | ((ops.length * 1) << 3), true);
      dv.setUint32(120, ops.length << 2, true); // w15: tag: count, 1 data word, 0 pointers
      dv.setUint32(124, 0x0000_0001, true);
      for (let i = 0; i < ops.length; i++) {
        dv.setUint16(128 + i * 8, 1, true); // getPointerField
        dv.setUint16(130 + i * 8, ops[i] as number, true);
      }
    }
  }
  const seg = message.getSegment(0);
  return { message, payload: new Payload(seg, 56) };
}

/** A Return carrying results: root → Message(return) → Return{answerId, releaseParamCaps = false} → Payload. */
export function buildReturn(answerId: AnswerId): BuiltEnvelope {
  const { message, dv } = builder(8);
  dv.setUint32(4, 0x0001_0001, true); // w0 → Message (w1)
  dv.setUint16(8, Message_Which.RETURN, true); // w1
  dv.setUint32(20, 0x0001_0002, true); // w2 → Return (w3): 2 data words, 1 pointer
  dv.setUint32(24, answerId, true); // w3: answerId
  dv.setUint8(28, 1); // releaseParamCaps = false (stored XOR its default, true); which = results (0)
  dv.setUint32(44, 0x0002_0000, true); // w5 → Payload (w6): 2 pointers
  return { message, payload: new Payload(message.getSegment(0), 40) };
}

export type Envelope =
  | { readonly kind: "finish"; readonly questionId: number; readonly releaseResultCaps: boolean }
  | { readonly kind: "release"; readonly id: number; readonly referenceCount: number }
  | {
      readonly kind: "call";
      readonly questionId: number;
      readonly interfaceId: bigint;
      readonly methodId: number;
      readonly target: EnvelopeTarget;
      /** sendResultsTo = caller (the only kind level 1 speaks). */
      readonly toCaller: boolean;
      /** Byte offset in segment 0 of the pointer to the params Payload. */
      readonly payloadAt: number;
    }
  | {
      readonly kind: "results";
      readonly answerId: number;
      readonly releaseParamCaps: boolean;
      /** Byte offset in segment 0 of the pointer to the results Payload. */
      readonly payloadAt: number;
    };

/**
 * Reads the envelope of a Finish, Release, Call or results Return in the plain single-segment
 * layout, in place. Returns undefined for anything else.
 */
export function readEnvelope(bytes: Uint8Array): Envelope | undefined {
  if (bytes.byteLength < 32) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== 0) return undefined; // more than one segment
  const words = dv.getUint32(4, true);
  if (8 + words * 8 !== bytes.byteLength) return undefined;
  const seg = 8;
  const end = seg + words * 8;
  const message = structAt(dv, seg, end, seg);
  if (message === undefined || message.dataWords < 1 || message.ptrCount < 1) return undefined;
  const which = dv.getUint16(message.data, true);
  const body = structAt(dv, seg, end, message.ptrs);
  if (body === undefined) return undefined;
  const dataBytes = body.dataWords * 8;
  // Finish and Release have one data word; a peer may send a shorter struct (all defaults).
  const lo = dataBytes >= 8 ? dv.getUint32(body.data, true) : 0;
  const hi = dataBytes >= 8 ? dv.getUint32(body.data + 4, true) : 0;
  switch (which) {
    case Message_Which.FINISH:
      return { kind: "finish", questionId: lo, releaseResultCaps: (hi & 1) === 0 };
    case Message_Which.RELEASE:
      return { kind: "release", id: lo, referenceCount: hi };
    case Message_Which.CALL: {
      if (body.dataWords < 2 || body.ptrCount < 2) return undefined;
      const flags = dataBytes >= 24 ? dv.getUint8(body.data + 16) : 0;
      if (flags !== 0) return undefined; // tail-call or pipelining hints: leave to the full decoder
      const target = readTarget(dv, seg, end, body.ptrs);
      if (target === undefined) return undefined;
      return {
        kind: "call",
        questionId: dv.getUint32(body.data, true),
        methodId: dv.getUint16(body.data + 4, true),
        toCaller: dv.getUint16(body.data + 6, true) === 0,
        interfaceId: dv.getBigUint64(body.data + 8, true),
        target,
        payloadAt: body.ptrs + 8 - seg,
      };
    }
    case Message_Which.RETURN: {
      if (body.dataWords < 1 || body.ptrCount < 1) return undefined;
      if (dv.getUint16(body.data + 6, true) !== 0) return undefined; // not results
      return {
        kind: "results",
        answerId: dv.getUint32(body.data, true),
        releaseParamCaps: (dv.getUint8(body.data + 4) & 1) === 0,
        payloadAt: body.ptrs - seg,
      };
    }
    default:
      return undefined;
  }
}

function readTarget(dv: DataView, seg: number, end: number, at: number): EnvelopeTarget | undefined {
  const t = structAt(dv, seg, end, at);
  if (t === undefined || t.dataWords < 1) return undefined;
  const which = dv.getUint16(t.data + 4, true);
  if (which === 0) return { kind: "import", id: dv.getUint32(t.data, true) };
  if (which !== 1 || t.ptrCount < 1) return undefined;
  const pa = structAt(dv, seg, end, t.ptrs);
  if (pa === undefined || pa.dataWords < 1) return undefined;
  const questionId = dv.getUint32(pa.data, true);
  if (pa.ptrCount < 1) return { kind: "answer", questionId, ops: [] };
  const listAt = pa.ptrs;
  const lo = dv.getUint32(listAt, true);
  const hi = dv.getUint32(listAt + 4, true);
  if (lo === 0 && hi === 0) return { kind: "answer", questionId, ops: [] };
  if ((lo & 3) !== 1 || (hi & 7) !== 7) return undefined; // not a composite list
  const tag = listAt + 8 + ((lo | 0) >> 2) * 8;
  if (tag < seg || tag + 8 > end) return undefined;
  const count = dv.getUint32(tag, true) >>> 2;
  const tagHi = dv.getUint32(tag + 4, true);
  const stride = ((tagHi & 0xffff) + (tagHi >>> 16)) * 8;
  const listBytes = (hi >>> 3) * 8;
  if ((tagHi & 0xffff) < 1 || count * stride > listBytes || tag + 8 + listBytes > end || count > 0xffff) {
    return undefined;
  }
  const ops: number[] = [];
  for (let i = 0; i < count; i++) {
    const op = tag + 8 + i * stride;
    const kind = dv.getUint16(op, true);
    if (kind === 1) ops.push(dv.getUint16(op + 2, true));
    else if (kind !== 0) return undefined;
  }
  return { kind: "answer", questionId, ops };
}

interface StructLoc {
  readonly data: number;
  readonly dataWords: number;
  readonly ptrs: number;
  readonly ptrCount: number;
}

/** The struct a near struct pointer at byte `at` designates, bounds-checked; undefined otherwise. */
function structAt(dv: DataView, segStart: number, segEnd: number, at: number): StructLoc | undefined {
  if (at < segStart || at + 8 > segEnd) return undefined;
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  if ((lo & 3) !== 0 || (lo === 0 && hi === 0)) return undefined;
  const data = at + 8 + ((lo | 0) >> 2) * 8;
  const dataWords = hi & 0xffff;
  const ptrCount = hi >>> 16;
  const ptrs = data + dataWords * 8;
  if (data < segStart || ptrs + ptrCount * 8 > segEnd) return undefined;
  return { data, dataWords, ptrs, ptrCount };
}

/**
 * `original` wrapped in an Unimplemented message, byte for byte: its segment follows a new root
 * and Message struct, and the old root pointer is re-aimed (one word further). Undefined for a
 * message that is not a single segment with a struct root.
 */
export function echoAsUnimplemented(original: Uint8Array): Uint8Array | undefined {
  if (original.byteLength < 16) return undefined;
  const src = new DataView(original.buffer, original.byteOffset, original.byteLength);
  if (src.getUint32(0, true) !== 0) return undefined;
  const words = src.getUint32(4, true);
  if (8 + words * 8 !== original.byteLength) return undefined;
  const lo = src.getUint32(8, true);
  const hi = src.getUint32(12, true);
  if ((lo & 3) !== 0) return undefined;
  const out = new Uint8Array(8 + (words + 3) * 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, words + 3, true);
  dv.setUint32(12, 0x0001_0001, true); // w0 → Message (w1); w1 stays 0: the unimplemented discriminant
  const isNull = lo === 0 && hi === 0;
  dv.setUint32(24, isNull ? 0 : ((((lo | 0) >> 2) + 1) << 2) >>> 0, true); // w2: the old root, one word further
  dv.setUint32(28, hi, true);
  out.set(original.subarray(8), 32);
  return out;
}
