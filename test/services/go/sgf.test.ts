import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import {
  GoGame,
  gtpToPoint,
  parseSgf,
  type Point,
  SGF_LIMITS,
  writeSgf,
} from "../../../src/services/go/index.js";

function badArgument(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect((err as { code?: string }).code).toBe(ErrorCode.BAD_ARGUMENT);
    return (err as Error).message;
  }
  throw new Error("expected BAD_ARGUMENT");
}

function played(rules: ConstructorParameters<typeof GoGame>[0], moves: string[]): GoGame {
  const g = new GoGame(rules);
  for (const m of moves) {
    const color = g.toMove;
    const r = m === "pass" ? g.pass(color) : g.play(color, gtpToPoint(m, g.size) as Point);
    if (!r.ok) throw new Error(`${m}: ${r.reason}`);
  }
  return g;
}

describe("SGF", () => {
  it("writes FF[4] with the rules, players, handicap stones, moves, passes and result", () => {
    const g = played({ size: 9, komi: 0.5, handicap: 2, preset: "japanese" }, ["E5", "pass", "D4"]);
    g.resign("white");
    const text = writeSgf(
      g,
      {
        blackName: "Alice",
        whiteName: "Bob [the] \\ builder",
        blackRank: "3k",
        whiteRank: "1d",
        date: "2026-03-14",
        timeLimitSeconds: 600,
        overtime: "5x30 byo-yomi",
      },
      ["a game", undefined, "pass!"],
    );
    expect(text).toBe(
      "(;GM[1]FF[4]CA[UTF-8]AP[Parallax]SZ[9]KM[0.5]RU[Japanese]PB[Alice]PW[Bob [the\\] \\\\ builder]BR[3k]WR[1d]" +
        "DT[2026-03-14]TM[600]OT[5x30 byo-yomi]RE[B+R]HA[2]AB[cg][gc]PL[W]C[a game]\n" +
        ";W[ee];B[]C[pass!];W[df])\n",
    );
    const back = parseSgf(text);
    expect(back.info).toMatchObject({
      blackName: "Alice",
      whiteName: "Bob [the] \\ builder",
      blackRank: "3k",
      whiteRank: "1d",
      date: "2026-03-14",
      timeLimitSeconds: 600,
      overtime: "5x30 byo-yomi",
      result: "B+R",
      ruleset: "Japanese",
    });
    expect(back.comments).toEqual(["a game", undefined, "pass!", undefined]);
    expect(back.game.result).toBe("B+R");
    expect(back.game.moves).toEqual(g.moves);
    expect(back.rules).toEqual(g.rules);
  });

  it("round-trips every rule set: presets by name, anything else in Parallax's own RU", () => {
    for (const rules of [
      { preset: "chinese" as const },
      { preset: "aga" as const },
      { preset: "new-zealand" as const },
      { preset: "tromp-taylor" as const },
      { koRule: "situational" as const, scoring: "territory" as const, suicide: true },
      { size: 13, handicap: 3, handicapPlacement: "free" as const, whiteHandicapBonus: "n-1" as const },
    ]) {
      const g = new GoGame(rules);
      if (g.phase === "handicap")
        g.placeHandicap([
          { x: 0, y: 0 },
          { x: 5, y: 5 },
          { x: 12, y: 12 },
        ]);
      const back = parseSgf(writeSgf(g));
      expect(back.rules).toEqual(g.rules);
      expect(back.game.handicapStones).toEqual(g.handicapStones);
    }
    expect(writeSgf(new GoGame({ preset: "aga" }))).toContain("RU[AGA]");
    expect(writeSgf(new GoGame({ koRule: "positional" }))).toContain(
      "RU[Parallax:scoring=territory;ko=positional;suicide=no;bonus=none]",
    );
  });

  it("round-trips GNU Go's fixture games, handicap games included", () => {
    const lines = readFileSync(path.join(import.meta.dirname, "fixtures", "gnugo-simple.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .slice(1)
      .map(
        (l) => JSON.parse(l) as { size: number; komi: number; handicap: string[]; steps: { m: string }[] },
      );
    for (const f of lines) {
      const g = played(
        { size: f.size, komi: f.komi, handicap: f.handicap.length },
        f.steps.map((s) => s.m),
      );
      const back = parseSgf(writeSgf(g)).game;
      expect(back.cells()).toEqual(g.cells());
      expect(back.captures).toEqual(g.captures);
      expect(back.moves).toEqual(g.moves);
    }
  });

  it("writes files GNU Go loads to the same board and captures (and scores like the game fed by GTP, checked by the generator)", () => {
    const checks = readFileSync(path.join(import.meta.dirname, "fixtures", "gnugo-sgf.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map(
        (l) =>
          JSON.parse(l) as { id: string; sgf: string; board: string; cap: [number, number]; score?: string },
      );
    expect(checks.length).toBe(30);
    let scored = 0;
    for (const c of checks) {
      const { game } = parseSgf(c.sgf);
      expect(game.toAscii(), c.id).toBe(c.board.split("/").join("\n"));
      expect([game.captures.black, game.captures.white], c.id).toEqual(c.cap);
      expect(writeSgf(game, { blackName: "GNU Go", whiteName: "GNU Go", gameName: c.id }), c.id).toBe(c.sgf);
      if (c.score !== undefined && game.handicapStones.length === 0) scored++;
    }
    expect(scored).toBeGreaterThan(20);
  });

  it("reads passes written as tt on boards up to 19×19, and tt as a point on larger boards", () => {
    const g = parseSgf("(;GM[1]FF[4]SZ[19];B[tt];W[dd])").game;
    expect(g.moves[0]).toEqual({ kind: "pass", color: "black" });
    const big = parseSgf("(;SZ[21];B[tt])").game;
    expect(big.moves[0]).toMatchObject({ kind: "play", point: { x: 19, y: 19 } });
  });

  it("round-trips a 25×25 game to its far corner", () => {
    const g = new GoGame({ size: 25, komi: 7.5, preset: "chinese" });
    for (const [x, y] of [
      [24, 24],
      [0, 0],
      [19, 19],
      [24, 0],
    ] as const)
      expect(g.play(g.toMove, { x, y }).ok).toBe(true);
    g.pass(g.toMove);
    const text = writeSgf(g);
    expect(text).toContain(";B[yy];W[aa];B[tt];W[ya];B[]");
    const back = parseSgf(text).game;
    expect(back.moves).toEqual(g.moves);
    expect(back.rules).toEqual(g.rules);
  });

  it("takes the main line of variations and ignores the others", () => {
    const g = parseSgf("(;SZ[9](;B[aa](;W[bb];B[cc])(;W[ii]))(;B[ee]C[not this]))").game;
    expect(g.moves.map((m) => (m.kind === "play" ? `${m.point.x},${m.point.y}` : "pass"))).toEqual([
      "0,0",
      "1,1",
      "2,2",
    ]);
  });

  it("survives deeply nested variations without recursion", () => {
    const depth = 15_000;
    const nested = `(;SZ[9]${"(;C[x]".repeat(depth)}${")".repeat(depth)})`;
    expect(parseSgf(nested).game.moveCount).toBe(0);
    const siblings = `(;SZ[9](;B[aa])${"(;W[bb]".repeat(depth)}${")".repeat(depth)})`;
    expect(parseSgf(siblings).game.moveCount).toBe(1);
  });

  it("reads FF[3]-style property names and a collection's first game", () => {
    const g = parseSgf("(;GaMe[1]SiZe[9]AddBlack[cc][gg]HA[2];W[ee])(;SZ[19];B[aa])").game;
    expect(g.size).toBe(9);
    expect(g.rules.handicapPlacement).toBe("free");
    expect(g.moveCount).toBe(1);
  });

  it("refuses malformed or hostile input with BAD_ARGUMENT and the line and column", () => {
    expect(badArgument(() => parseSgf("(;GM[1]\nSZ[26])"))).toMatch(
      /line 2, column 1: SZ\[26\]: board size must be from 2 to 25/,
    );
    expect(badArgument(() => parseSgf("(;SZ[19:13])"))).toMatch(/only square boards/);
    expect(badArgument(() => parseSgf("(;GM[2])"))).toMatch(/is not Go/);
    expect(badArgument(() => parseSgf("(;SZ[9];B[zz])"))).toMatch(
      /column 9: \[zz\] is not a point on the 9×9 board/,
    );
    expect(badArgument(() => parseSgf("(;SZ[9];B[aa];W[aa])"))).toMatch(
      /move 2 \(W\[aa\], A9\) is refused: occupied/,
    );
    expect(badArgument(() => parseSgf("(;SZ[9];B[aa];B[bb])"))).toMatch(/refused: notYourTurn/);
    expect(badArgument(() => parseSgf("(;SZ[9];B[aa];W[];B[];W[cc])"))).toMatch(/refused: gameOver/);
    expect(badArgument(() => parseSgf("(;SZ[9]C[unterminated"))).toMatch(
      /line 1, column 9: unterminated property value/,
    );
    expect(badArgument(() => parseSgf("(;SZ[9])garbage"))).toMatch(/unexpected text after the game/);
    expect(badArgument(() => parseSgf("(;SZ[9]"))).toMatch(/expected '\)', got the end of the text/);
    expect(badArgument(() => parseSgf("hello"))).toMatch(/line 1, column 1: expected '\('/);
    expect(badArgument(() => parseSgf("(;SZ[9]SZ[9])"))).toMatch(/appears twice/);
    expect(badArgument(() => parseSgf("(;SZ[9]AW[aa])"))).toMatch(/setup property AW is not supported/);
    expect(badArgument(() => parseSgf("(;SZ[9];AB[aa])"))).toMatch(/after the root is not supported/);
    expect(badArgument(() => parseSgf("(;SZ[9]B)"))).toMatch(/property B has no value/);
    expect(badArgument(() => parseSgf("(;KM[lots])"))).toMatch(/KM\[lots\] is not a number/);
    expect(badArgument(() => parseSgf("(;RU[Parallax:scoring=weird])"))).toMatch(
      /not a rule set this server wrote/,
    );
    expect(badArgument(() => parseSgf(42 as unknown as string))).toMatch(/must be a string/);
  });

  it("enforces its size limits", () => {
    expect(badArgument(() => parseSgf(`(;C[${"x".repeat(SGF_LIMITS.maxChars)}])`))).toMatch(
      /more than 1000000 characters/,
    );
    expect(badArgument(() => parseSgf(`(;SZ[9]${";".repeat(50)})`, { maxNodes: 10 }))).toMatch(
      /more than 10 nodes/,
    );
    expect(badArgument(() => parseSgf(`(;C[${"x".repeat(200)}])`, { maxValueChars: 100 }))).toMatch(
      /longer than 100 characters/,
    );
    const many = Array.from(
      { length: 70 },
      (_, i) => `X${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + Math.floor(i / 26))}[1]`,
    ).join("");
    expect(badArgument(() => parseSgf(`(;${many})`))).toMatch(/more than 64 properties/);
  });

  it("keeps an unknown RU as written and plays by the default rules", () => {
    const r = parseSgf("(;SZ[9]RU[Ing];B[ee])");
    expect(r.info.ruleset).toBe("Ing");
    expect(r.rules.koRule).toBe("simple");
    const cn = parseSgf("(;SZ[9]RU[chinese])");
    expect(cn.rules).toMatchObject({ scoring: "area", koRule: "positional" });
  });
});
