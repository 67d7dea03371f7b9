/**
 * A Go board: stones on `size × size` points, addressed by index `y * size + x`, with its Zobrist
 * hash kept up to date. It knows how stones capture (a move removes every adjacent enemy group left
 * without liberties, then, if its own group has none, that group: suicide) and nothing about turns,
 * ko or history, which `GoGame` owns.
 *
 * Invariants: `cells[i]` is EMPTY, BLACK or WHITE; after `apply`, no group on the board is without
 * liberties; `hashLo`/`hashHi` always equal `computeHash()` (the XOR of the stones' Zobrist keys).
 *
 * Tests: test/services/go/go-properties.test.ts, test/services/go/oracle.test.ts
 */

import { ZOBRIST } from "./zobrist.js";

export const EMPTY = 0;
export const BLACK = 1;
export const WHITE = 2;
export type Stone = typeof EMPTY | typeof BLACK | typeof WHITE;
export type StoneColor = typeof BLACK | typeof WHITE;

/** What a stone of `color` at `point` would do, computed without changing the board. */
export interface MoveEffect {
  readonly point: number;
  readonly color: StoneColor;
  /** Enemy stones removed. */
  readonly captured: readonly number[];
  /** Own stones removed by suicide, the played point included; empty unless `suicide`. */
  readonly suicided: readonly number[];
  readonly suicide: boolean;
  /** The point the opponent may not retake next move (simple ko), or -1. */
  readonly koPoint: number;
  readonly hashLo: number;
  readonly hashHi: number;
}

const adjacencyCache = new Map<number, Int16Array>();

/** Four neighbours per point (-1 off the board), shared by all boards of a size. */
function adjacency(size: number): Int16Array {
  let a = adjacencyCache.get(size);
  if (a === undefined) {
    a = new Int16Array(size * size * 4).fill(-1);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const i = (y * size + x) * 4;
        if (y > 0) a[i] = (y - 1) * size + x;
        if (x > 0) a[i + 1] = y * size + x - 1;
        if (x < size - 1) a[i + 2] = y * size + x + 1;
        if (y < size - 1) a[i + 3] = (y + 1) * size + x;
      }
    adjacencyCache.set(size, a);
  }
  return a;
}

export class GoBoard {
  readonly size: number;
  readonly cells: Uint8Array;
  hashLo = 0;
  hashHi = 0;
  readonly adj: Int16Array;
  private readonly marks: Uint32Array;
  private stamp = 0;
  private readonly stack: Int32Array;

  constructor(size: number) {
    this.size = size;
    this.cells = new Uint8Array(size * size);
    this.adj = adjacency(size);
    this.marks = new Uint32Array(size * size);
    this.stack = new Int32Array(size * size);
  }

  clone(): GoBoard {
    const b = new GoBoard(this.size);
    b.cells.set(this.cells);
    b.hashLo = this.hashLo;
    b.hashHi = this.hashHi;
    return b;
  }

  /** Sets a point directly (setup stones, undo), keeping the hash. */
  set(point: number, stone: Stone): void {
    const old = this.cells[point] as Stone;
    if (old === stone) return;
    if (old !== EMPTY) this.toggleHash(point, old);
    if (stone !== EMPTY) this.toggleHash(point, stone);
    this.cells[point] = stone;
  }

  private toggleHash(point: number, stone: StoneColor): void {
    const k = 4 * point + 2 * (stone - 1);
    this.hashLo = (this.hashLo ^ (ZOBRIST[k] as number)) >>> 0;
    this.hashHi = (this.hashHi ^ (ZOBRIST[k + 1] as number)) >>> 0;
  }

  /** The hash recomputed from the stones, for checks. */
  computeHash(): { lo: number; hi: number } {
    let lo = 0;
    let hi = 0;
    for (let p = 0; p < this.cells.length; p++) {
      const s = this.cells[p] as Stone;
      if (s === EMPTY) continue;
      const k = 4 * p + 2 * (s - 1);
      lo = (lo ^ (ZOBRIST[k] as number)) >>> 0;
      hi = (hi ^ (ZOBRIST[k + 1] as number)) >>> 0;
    }
    return { lo, hi };
  }

  private nextStamp(): number {
    this.stamp = (this.stamp + 1) >>> 0;
    if (this.stamp === 0) {
      this.marks.fill(0);
      this.stamp = 1;
    }
    return this.stamp;
  }

  /** Whether the group at `start` has a liberty other than `except`. */
  private hasLibertyOtherThan(start: number, except: number): boolean {
    const color = this.cells[start];
    const stamp = this.nextStamp();
    const { marks, stack, adj, cells } = this;
    let top = 0;
    stack[top++] = start;
    marks[start] = stamp;
    while (top > 0) {
      const p = stack[--top] as number;
      for (let d = 0; d < 4; d++) {
        const n = adj[4 * p + d] as number;
        if (n < 0) continue;
        const c = cells[n];
        if (c === EMPTY) {
          if (n !== except) return true;
        } else if (c === color && marks[n] !== stamp) {
          marks[n] = stamp;
          stack[top++] = n;
        }
      }
    }
    return false;
  }

  /** Appends the stones of the group at `start` to `out` unless `seen(stone)` already. */
  private collectGroup(start: number, out: number[], inOut: Set<number>): void {
    const color = this.cells[start];
    const { stack, adj, cells } = this;
    let top = 0;
    stack[top++] = start;
    inOut.add(start);
    out.push(start);
    while (top > 0) {
      const p = stack[--top] as number;
      for (let d = 0; d < 4; d++) {
        const n = adj[4 * p + d] as number;
        if (n >= 0 && cells[n] === color && !inOut.has(n)) {
          inOut.add(n);
          out.push(n);
          stack[top++] = n;
        }
      }
    }
  }

  /** The effect of `color` playing on the empty point `point`. */
  effect(point: number, color: StoneColor): MoveEffect {
    const { adj, cells } = this;
    const enemy = (3 - color) as StoneColor;
    const captured: number[] = [];
    let capturedSet: Set<number> | undefined;
    let liberty = false;
    let ownNeighbour = false;
    for (let d = 0; d < 4; d++) {
      const n = adj[4 * point + d] as number;
      if (n < 0) continue;
      const c = cells[n];
      if (c === EMPTY) liberty = true;
      else if (c === enemy) {
        if (capturedSet?.has(n)) continue;
        if (!this.hasLibertyOtherThan(n, point)) {
          capturedSet ??= new Set();
          this.collectGroup(n, captured, capturedSet);
        }
      } else {
        ownNeighbour = true;
        if (!liberty && this.hasLibertyOtherThan(n, point)) liberty = true;
      }
    }
    let lo = this.hashLo;
    let hi = this.hashHi;
    const suicide = !liberty && captured.length === 0;
    let suicided: number[] = [];
    let koPoint = -1;
    if (suicide) {
      const set = new Set<number>([point]);
      suicided = [point];
      for (let d = 0; d < 4; d++) {
        const n = adj[4 * point + d] as number;
        if (n >= 0 && cells[n] === color && !set.has(n)) this.collectGroup(n, suicided, set);
      }
      for (const s of suicided) {
        if (s === point) continue;
        const k = 4 * s + 2 * (color - 1);
        lo ^= ZOBRIST[k] as number;
        hi ^= ZOBRIST[k + 1] as number;
      }
    } else {
      const k = 4 * point + 2 * (color - 1);
      lo ^= ZOBRIST[k] as number;
      hi ^= ZOBRIST[k + 1] as number;
      for (const s of captured) {
        const ke = 4 * s + 2 * (enemy - 1);
        lo ^= ZOBRIST[ke] as number;
        hi ^= ZOBRIST[ke + 1] as number;
      }
      if (captured.length === 1 && !ownNeighbour) {
        // A lone stone that took one stone and whose only liberty is that stone's point: a ko.
        let libs = 0;
        for (let d = 0; d < 4; d++) {
          const n = adj[4 * point + d] as number;
          if (n >= 0 && (cells[n] === EMPTY || n === captured[0])) libs++;
        }
        if (libs === 1) koPoint = captured[0] as number;
      }
    }
    return { point, color, captured, suicided, suicide, koPoint, hashLo: lo >>> 0, hashHi: hi >>> 0 };
  }

  /** Plays a computed effect (which must have been computed on this board as it is). */
  apply(e: MoveEffect): void {
    if (e.suicide) {
      for (const s of e.suicided) this.cells[s] = EMPTY;
    } else {
      this.cells[e.point] = e.color;
      for (const s of e.captured) this.cells[s] = EMPTY;
    }
    this.hashLo = e.hashLo;
    this.hashHi = e.hashHi;
  }

  /** Undoes `apply(e)`. */
  revert(e: MoveEffect, previousLo: number, previousHi: number): void {
    const enemy = 3 - e.color;
    if (e.suicide) {
      for (const s of e.suicided) this.cells[s] = s === e.point ? EMPTY : e.color;
    } else {
      this.cells[e.point] = EMPTY;
      for (const s of e.captured) this.cells[s] = enemy;
    }
    this.hashLo = previousLo;
    this.hashHi = previousHi;
  }

  /** Rows top to bottom, `.` empty, `X` black, `O` white. */
  toAscii(): string {
    const rows: string[] = [];
    for (let y = 0; y < this.size; y++) {
      let r = "";
      for (let x = 0; x < this.size; x++) r += ".XO"[this.cells[y * this.size + x] as number];
      rows.push(r);
    }
    return rows.join("\n");
  }
}
