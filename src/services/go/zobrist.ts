/**
 * Zobrist keys for Go positions: one 64-bit key (two 32-bit halves) per point and colour, from a
 * fixed-seed generator, so a position's hash is the same in every process and every release (hashes
 * may be stored or compared across machines). A board's hash is the XOR of the keys of its stones;
 * the empty board hashes to 0. Keys are indexed by point index (`y * size + x`) up to 25×25, so
 * boards of different sizes share the table but are never compared with each other.
 *
 * Tests: test/services/go/go-rules.test.ts (a pinned hash), test/services/go/go-properties.test.ts
 */

const MAX_POINTS = 25 * 25;

/** splitmix32: a small, well-mixed generator; only its determinism matters here. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** `ZOBRIST[4 * point + 2 * (stone - 1)]` is the low half, `+ 1` the high half; stone 1 black, 2 white. */
export const ZOBRIST: Uint32Array = (() => {
  const next = splitmix32(0x9a11a7e5);
  const t = new Uint32Array(MAX_POINTS * 4);
  for (let i = 0; i < t.length; i++) t[i] = next();
  return t;
})();

/** The 64-bit key of a hash given as halves. */
export function hashKey(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
