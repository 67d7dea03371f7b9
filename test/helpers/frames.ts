/**
 * Cap'n Proto stream framing by hand, for tests that need frames no encoder would write
 * (hostile segment tables, truncations, spliced segments). The segment table's size comes from
 * the wire layer's own `segmentTableSize`, so tests and code cannot disagree on it.
 */
import { segmentTableSize } from "../../src/wire/message-codec.js";

export { segmentTableSize };

/**
 * A frame whose table declares one segment per entry of `segmentWords`. The body is `bodyWords`
 * words (default: what the table declares, so the frame is well formed), its bytes a pattern
 * derived from `seed`.
 */
export function frame(
  segmentWords: readonly number[],
  options: { seed?: number; bodyWords?: number } = {},
): Uint8Array {
  const tableBytes = segmentTableSize(segmentWords.length);
  const bodyWords = options.bodyWords ?? segmentWords.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(tableBytes + bodyWords * 8);
  const view = new DataView(out.buffer);
  view.setUint32(0, segmentWords.length - 1, true);
  for (const [i, w] of segmentWords.entries()) view.setUint32(4 + 4 * i, w, true);
  const seed = options.seed ?? 0;
  for (let i = tableBytes; i < out.length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** The segments of one well-formed frame, copied out. */
export function segmentsOfFrame(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true) + 1;
  let at = segmentTableSize(count);
  const segments: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(4 + i * 4, true) * 8;
    segments.push(bytes.slice(at, at + length));
    at += length;
  }
  return segments;
}

/** One frame holding `segments` (each a whole number of words). */
export function frameOfSegments(segments: readonly Uint8Array[]): Uint8Array {
  const tableBytes = segmentTableSize(segments.length);
  const out = new Uint8Array(segments.reduce((n, s) => n + s.length, tableBytes));
  const view = new DataView(out.buffer);
  view.setUint32(0, segments.length - 1, true);
  let at = tableBytes;
  segments.forEach((s, i) => {
    view.setUint32(4 + i * 4, s.length / 8, true);
    out.set(s, at);
    at += s.length;
  });
  return out;
}

/** Splits a byte stream into its frames (views, not copies); throws where the stream is cut short. */
export function splitFrames(stream: Uint8Array): Uint8Array[] {
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at < stream.length) {
    if (stream.length - at < 4) throw new Error(`stream ends inside a segment table at byte ${at}`);
    const segments = view.getUint32(at, true) + 1;
    const tableBytes = segmentTableSize(segments);
    if (stream.length - at < tableBytes) throw new Error(`stream ends inside a segment table at byte ${at}`);
    let words = 0;
    for (let i = 0; i < segments; i++) words += view.getUint32(at + 4 + 4 * i, true);
    const total = tableBytes + words * 8;
    if (stream.length - at < total) throw new Error(`stream ends inside the message at byte ${at}`);
    frames.push(stream.subarray(at, at + total));
    at += total;
  }
  return frames;
}
