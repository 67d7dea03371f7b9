import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { type Color, GoGame, type GoRules, gtpToPoint, type Point } from "../../../src/services/go/index.js";

/** Plays GTP vertices alternately from `first` ("pass" passes); throws on a refusal. */
function playAll(game: GoGame, moves: string, first: Color = "black"): void {
  let color = first;
  for (const m of moves.split(/\s+/).filter((s) => s !== "")) {
    const r = m === "pass" ? game.pass(color) : game.play(color, gtpToPoint(m, game.size) as Point);
    if (!r.ok) throw new Error(`${color} ${m}: ${r.reason}`);
    color = color === "black" ? "white" : "black";
  }
}
const at = (game: GoGame, v: string) => game.at(gtpToPoint(v, game.size) as Point);
const pt = (game: GoGame, v: string) => gtpToPoint(v, game.size) as Point;

function badArgument(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect((err as { code?: string }).code).toBe(ErrorCode.BAD_ARGUMENT);
    return (err as Error).message;
  }
  throw new Error("expected BAD_ARGUMENT");
}

describe("GoGame", () => {
  it("captures a stone left without liberties and counts it for the capturer", () => {
    const g = new GoGame({ size: 9 });
    playAll(g, "D5 E5 F5 A1 E6 A2 E4 A3");
    const r = g.play("black", pt(g, "D4"));
    expect(r.ok).toBe(true);
    const g2 = new GoGame({ size: 9 });
    playAll(g2, "D5 E5 F5 A1 E6 A2 E4");
    expect(at(g2, "E5")).toBe(undefined);
    expect(g2.captures).toEqual({ black: 1, white: 0 });
    expect(g2.moves.at(-1)).toMatchObject({ kind: "play", captured: [pt(g2, "E5")], suicide: false });
  });

  it("refuses suicide by default and, when suicide is allowed, removes the whole own group", () => {
    const g = new GoGame({ size: 5 });
    playAll(g, "B1 A2 B2 E5 A3 E4");
    // White A2 has one liberty (A1); White at A1 would be a two-stone suicide.
    expect(g.play("black", pt(g, "E1")).ok).toBe(true);
    const r = g.play("white", pt(g, "A1"));
    expect(r).toMatchObject({ ok: false, reason: "suicide" });
    const s = new GoGame({ size: 5, suicide: true });
    playAll(s, "B1 A2 B2 E5 A3 E4 E1");
    const hash = s.hash;
    const r2 = s.play("white", pt(s, "A1"));
    expect(r2).toMatchObject({ ok: true, move: { suicide: true } });
    expect(at(s, "A1")).toBe(undefined);
    expect(at(s, "A2")).toBe(undefined);
    expect(s.captures).toEqual({ black: 2, white: 0 });
    expect(s.hash).not.toBe(hash);
  });

  it("forbids retaking a ko at once, and allows it after a move elsewhere", () => {
    const g = new GoGame({ size: 9 });
    // Black: D5 E6 E4; White: E5 F6 F4 G5; Black takes at F5, White may not retake at E5.
    playAll(g, "D5 E5 E6 F6 E4 F4 A1 G5 F5");
    expect(at(g, "E5")).toBe(undefined);
    expect(g.koPoint).toEqual(pt(g, "E5"));
    expect(g.play("white", pt(g, "E5"))).toMatchObject({ ok: false, reason: "ko" });
    expect(g.check("white", pt(g, "E5"))).toEqual({ legal: false, reason: "ko" });
    playAll(g, "J9 J8", "white");
    expect(g.play("white", pt(g, "E5")).ok).toBe(true);
    expect(at(g, "F5")).toBe(undefined);
  });

  it("refuses occupied points, points off the board and moves out of turn, and leaves the board as it was", () => {
    const g = new GoGame({ size: 9 });
    playAll(g, "E5");
    const before = g.cells();
    expect(g.play("white", pt(g, "E5"))).toMatchObject({ ok: false, reason: "occupied" });
    expect(g.play("white", { x: 9, y: 0 })).toMatchObject({ ok: false, reason: "offBoard" });
    expect(g.play("white", { x: -1, y: 3 })).toMatchObject({ ok: false, reason: "offBoard" });
    expect(g.play("black", pt(g, "D4"))).toMatchObject({ ok: false, reason: "notYourTurn" });
    expect(g.pass("black")).toMatchObject({ ok: false, reason: "notYourTurn" });
    expect(g.cells()).toEqual(before);
    expect(g.moveCount).toBe(1);
  });

  it("throws BAD_ARGUMENT on malformed input: colours, non-integer coordinates, non-objects", () => {
    const g = new GoGame({ size: 9 });
    expect(badArgument(() => g.play("red" as Color, { x: 1, y: 1 }))).toMatch(/color/);
    expect(badArgument(() => g.play("black", { x: 1.5, y: 1 }))).toMatch(/integers/);
    expect(badArgument(() => g.play("black", { x: "1", y: 1 } as unknown as Point))).toMatch(/integers/);
    expect(badArgument(() => g.play("black", null as unknown as Point))).toMatch(/object/);
    expect(badArgument(() => g.play("black", { x: Number.NaN, y: 1 }))).toMatch(/integers/);
    expect(g.moveCount).toBe(0);
  });

  it("accepts boards from 2×2 to 25×25 and rejects others precisely", () => {
    expect(new GoGame({ size: 2 }).size).toBe(2);
    expect(new GoGame({ size: 25 }).size).toBe(25);
    expect(badArgument(() => new GoGame({ size: 1 }))).toMatch(/from 2 to 25, got 1×1/);
    expect(badArgument(() => new GoGame({ size: 26 }))).toMatch(/from 2 to 25, got 26×26/);
    expect(badArgument(() => new GoGame({ size: 9.5 }))).toMatch(/integer/);
    expect(badArgument(() => new GoGame({ size: 1e9 }))).toMatch(/from 2 to 25/);
    expect(badArgument(() => new GoGame({ komi: 6.3 }))).toMatch(/multiple of 0.5/);
    expect(badArgument(() => new GoGame({ komi: 1e6 }))).toMatch(/komi must be from -1000 to 1000/);
    expect(badArgument(() => new GoGame({ komi: Number.POSITIVE_INFINITY }))).toMatch(/komi/);
    expect(badArgument(() => new GoGame({ koRule: "japanese" as GoRules["koRule"] }))).toMatch(/koRule/);
  });

  it("ends play after two consecutive passes; a pass between moves does not", () => {
    const g = new GoGame({ size: 9 });
    playAll(g, "E5 pass D4 pass C3 pass");
    expect(g.phase).toBe("play");
    playAll(g, "pass", "black");
    expect(g.phase).toBe("scoring");
    expect(g.play("black", pt(g, "A1"))).toMatchObject({ ok: false, reason: "gameOver" });
    expect(g.pass("black")).toMatchObject({ ok: false, reason: "gameOver" });
    expect(g.resume()).toBe(true);
    expect(g.toMove).toBe("white");
    expect(g.play("white", pt(g, "A1")).ok).toBe(true);
  });

  it("records a resignation as B+R / W+R and refuses moves afterwards", () => {
    const g = new GoGame({ size: 9 });
    playAll(g, "E5");
    expect(g.resign("white")).toMatchObject({ ok: true, end: { by: "resignation", winner: "black" } });
    expect(g.result).toBe("B+R");
    expect(g.phase).toBe("over");
    expect(g.play("white", pt(g, "A1"))).toMatchObject({ ok: false, reason: "gameOver" });
    expect(g.resign("black")).toMatchObject({ ok: false, reason: "gameOver" });
    const t = new GoGame({ size: 9 });
    t.concede("black", "time");
    expect(t.result).toBe("W+T");
  });

  it("scores a game ended by passes with the agreed dead stones", () => {
    const g = new GoGame({ size: 5, komi: 0.5, scoring: "area" });
    // Black wall on column C, White wall on column D; a black stone dead in White's area at E3.
    playAll(g, "C1 D1 C2 D2 C3 D3 C4 D4 C5 D5 E3 pass pass");
    expect(g.phase).toBe("scoring");
    const r = g.recordScore([pt(g, "E3")]);
    expect(r).toMatchObject({ ok: true, end: { by: "score", winner: "black" } });
    // Black 15 (A–C), White 10 + 0.5.
    expect(g.result).toBe("B+4.5");
    expect(g.phase).toBe("over");
  });

  it("places fixed handicap stones and lets White move first", () => {
    const g = new GoGame({ size: 19, handicap: 9, komi: 0.5 });
    expect(g.stones("black")).toHaveLength(9);
    expect(g.toMove).toBe("white");
    expect(g.play("black", pt(g, "C3"))).toMatchObject({ ok: false, reason: "notYourTurn" });
    expect(g.play("white", pt(g, "C3")).ok).toBe(true);
  });

  it("waits for free handicap stones, checking their number and points", () => {
    const g = new GoGame({ size: 9, handicap: 3, handicapPlacement: "free" });
    expect(g.phase).toBe("handicap");
    expect(g.play("black", pt(g, "E5"))).toMatchObject({ ok: false, reason: "handicapPending" });
    expect(badArgument(() => g.placeHandicap([pt(g, "A1")]))).toMatch(/expected 3 handicap stones, got 1/);
    expect(g.placeHandicap([pt(g, "A1"), pt(g, "A1"), pt(g, "B2")])).toMatchObject({
      ok: false,
      reason: "occupied",
    });
    expect(g.placeHandicap([pt(g, "A1"), { x: 20, y: 0 }, pt(g, "B2")])).toMatchObject({
      ok: false,
      reason: "offBoard",
    });
    expect(g.placeHandicap([pt(g, "A1"), pt(g, "J9"), pt(g, "E5")])).toMatchObject({ ok: true });
    expect(g.phase).toBe("play");
    expect(g.toMove).toBe("white");
    expect(g.placeHandicap([pt(g, "A2"), pt(g, "A3"), pt(g, "A4")])).toMatchObject({
      ok: false,
      reason: "notHandicapPhase",
    });
  });

  it("undoes moves back to the start: board, hash, captures, ko and turn", () => {
    const g = new GoGame({ size: 9 });
    const start = g.hash;
    playAll(g, "D5 E5 E6 F6 E4 F4 A1 G5 F5");
    const mid = { cells: g.cells(), hash: g.hash, captures: g.captures, ko: g.koPoint };
    playAll(g, "J9 J8 E5", "white");
    expect(g.undo()).toMatchObject({ kind: "play", color: "white" });
    expect(g.undo()).toMatchObject({ kind: "play", color: "black" });
    expect(g.undo()).toMatchObject({ kind: "play", color: "white" });
    expect({ cells: g.cells(), hash: g.hash, captures: g.captures, ko: g.koPoint }).toEqual(mid);
    expect(g.play("white", pt(g, "E5"))).toMatchObject({ ok: false, reason: "ko" });
    while (g.undo() !== undefined);
    expect(g.hash).toBe(start);
    expect(g.hash).toBe(0n);
    expect(g.toMove).toBe("black");
    expect(g.moveCount).toBe(0);
  });

  it("lists the legal moves of a colour", () => {
    const g = new GoGame({ size: 2 });
    expect(g.legalMoves("black")).toHaveLength(4);
    playAll(g, "A1 B2");
    // A2 and B1 join A1, which keeps a liberty; both are legal, the occupied points are not.
    expect(new Set(g.legalMoves("black").map((p) => `${p.x},${p.y}`))).toEqual(new Set(["0,0", "1,1"]));
  });
});

describe("GoGame.replay", () => {
  it("rebuilds a game from its record: free handicap, moves with passes, and a resignation", () => {
    const g = new GoGame({ size: 9, handicap: 2, handicapPlacement: "free" });
    g.placeHandicap([
      { x: 0, y: 0 },
      { x: 8, y: 8 },
    ]);
    playAll(g, "E5 D4 pass C3", "white");
    g.resign("black");
    const back = GoGame.replay(g.rules, {
      handicapStones: g.handicapStones,
      moves: g.moves,
      end: { by: "resignation", loser: "black" },
    });
    expect(back.cells()).toEqual(g.cells());
    expect(back.moves).toEqual(g.moves);
    expect(back.result).toBe("W+R");
  });

  it("goes back to play where the record says play resumed after two passes, and ends by the score", () => {
    const g = new GoGame({ size: 5, komi: 0.5 });
    playAll(g, "C3 pass pass", "black");
    expect(g.phase).toBe("scoring");
    g.resume();
    playAll(g, "D4 pass pass", "white");
    g.recordScore([{ x: 3, y: 1 }]);
    const record = {
      moves: g.moves,
      resumedAfter: [3],
      end: { by: "score", dead: [{ x: 3, y: 1 }] },
    } as const;
    const back = GoGame.replay(g.rules, record);
    expect([back.phase, back.result, back.moveCount]).toEqual(["over", g.result, 6]);
    // Without the resumption the record's fourth move comes in the scoring phase: refused.
    expect(() => GoGame.replay(g.rules, { moves: g.moves })).toThrow(/move 4 is refused/);
    // A free-handicap record without its stones waits for them.
    expect(GoGame.replay({ size: 9, handicap: 2, handicapPlacement: "free" }, { moves: [] }).phase).toBe(
      "handicap",
    );
  });

  it("names the first move the rules refuse", () => {
    expect(() =>
      GoGame.replay({ size: 9 }, { moves: [{ color: "black", point: { x: 0, y: 0 } }, { color: "black" }] }),
    ).toThrow(/move 2 is refused: notYourTurn/);
  });

  it("refuses to score a game still in play, and a dead-stone list longer than the board", () => {
    const g = new GoGame({ size: 5 });
    expect(g.recordScore([])).toMatchObject({
      ok: false,
      reason: "notYourTurn",
      message: /play has not ended/,
    });
    expect(badArgument(() => g.score(Array.from({ length: 26 }, () => ({ x: 0, y: 0 }))))).toMatch(
      /26 dead stones/,
    );
  });
});
