/**
 * The rules engine against GNU Go 3.8, the oracle: every fixture game (fixtures/gnugo-*.jsonl,
 * written by fixtures/generate.ts, which documents exactly what is recorded) is replayed through
 * `GoGame`, and at every step the engine must agree with GNU Go on which empty points are illegal
 * (so on every point of the board), on each explicit `is_legal` and refused `play`, on the stones
 * the move removed, on both capture counts, and on the whole board wherever GNU Go's was recorded.
 * Games played out are scored and compared with GNU Go's `final_score` where GNU Go saw no dead
 * stones (area) and no dead stones and no seki (territory).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type Color, GoGame, type GoRules, gtpToPoint, pointToGtp } from "../../../src/services/go/index.js";

type Config = "simple" | "positional" | "situational" | "suicide" | "constructed";

interface Step {
  c: "B" | "W";
  illegal: string[];
  probes: [string, "is_legal" | "play", number | string][];
  m: string;
  removed: string[];
  cap: [number, number];
  board?: string;
}
interface FixtureGame {
  id: string;
  config: Config;
  size: number;
  komi: number;
  handicap: string[];
  steps: Step[];
  end?: {
    area: { score: string; dead: string[]; seki: string[] };
    territory: { score: string; dead: string[]; seki: string[] };
  };
}

const dir = path.join(import.meta.dirname, "fixtures");
function load(config: Config): { gnugo: string; games: FixtureGame[] } {
  const [header, ...games] = readFileSync(path.join(dir, `gnugo-${config}.jsonl`), "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
  return { gnugo: header.gnugo, games };
}

function rulesFor(g: FixtureGame, scoring: GoRules["scoring"]): Partial<GoRules> {
  const option = g.config === "constructed" ? (g.id.split("-")[1] as Config) : g.config;
  return {
    size: g.size,
    komi: g.komi,
    koRule: option === "positional" || option === "situational" ? option : "simple",
    suicide: g.config === "suicide",
    scoring,
    handicap: g.handicap.length,
    handicapPlacement: "fixed",
    // GNU Go's Chinese count gives White a point per handicap stone.
    whiteHandicapBonus: "n",
  };
}

/** GNU Go's `final_score` (`B+3.5`, `W+0.5`, `0`) as black − white. */
function margin(score: string): number {
  if (score === "0") return 0;
  const m = /^([BW])\+([0-9.]+)$/.exec(score);
  if (m === null) throw new Error(`unexpected final_score ${score}`);
  return (m[1] === "B" ? 1 : -1) * Number(m[2]);
}

function replay(g: FixtureGame, scoring: GoRules["scoring"]): GoGame {
  const game = new GoGame(rulesFor(g, scoring));
  for (const s of g.steps) {
    const color: Color = s.c === "B" ? "black" : "white";
    const r = s.m === "pass" ? game.pass(color) : game.play(color, gtpToPoint(s.m, g.size) as never);
    if (!r.ok) throw new Error(`${g.id}: replay refused ${s.c} ${s.m}: ${r.reason}`);
  }
  return game;
}

/** Plays one fixture game, returning the number of verdicts checked; throws on the first disagreement. */
function check(g: FixtureGame): { verdicts: number; steps: number } {
  const game = new GoGame(rulesFor(g, "area"));
  const size = g.size;
  const v = (p: { x: number; y: number }) => pointToGtp(p, size);
  expect(game.handicapStones.map(v).sort(), `${g.id}: handicap`).toEqual([...g.handicap].sort());
  let verdicts = 0;
  g.steps.forEach((s, n) => {
    const where = `${g.id} step ${n + 1} (${s.c} ${s.m})`;
    const color: Color = s.c === "B" ? "black" : "white";
    expect(game.toMove, where).toBe(color);
    const legal = new Set(game.legalMoves(color).map(v));
    const empty: string[] = [];
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) if (game.at({ x, y }) === undefined) empty.push(v({ x, y }));
    const illegal = empty.filter((p) => !legal.has(p)).sort();
    expect(illegal, `${where}: illegal points`).toEqual(s.illegal);
    verdicts += empty.length;
    for (const [vertex, command, answer] of s.probes) {
      const p = gtpToPoint(vertex, size) as { x: number; y: number };
      if (command === "is_legal") {
        expect(game.check(color, p).legal, `${where}: is_legal ${vertex}`).toBe(answer === 1);
      } else {
        const hash = game.hash;
        const r = game.play(color, p);
        expect(r.ok, `${where}: play ${vertex} (GNU Go: ${answer})`).toBe(false);
        expect(game.hash).toBe(hash);
      }
      verdicts++;
    }
    const r = s.m === "pass" ? game.pass(color) : game.play(color, gtpToPoint(s.m, size) as never);
    expect(r.ok, `${where}: ${r.ok ? "" : r.message}`).toBe(true);
    if (r.ok && r.move.kind === "play")
      expect(r.move.captured.map(v).sort(), `${where}: removed`).toEqual(s.removed);
    const cap = game.captures;
    expect([cap.black, cap.white], `${where}: captures`).toEqual(s.cap);
    if (s.board !== undefined) expect(game.toAscii(), `${where}: board`).toBe(s.board.split("/").join("\n"));
  });
  return { verdicts, steps: g.steps.length };
}

describe("the rules engine agrees with GNU Go", () => {
  const constructed = load("constructed").games;
  const byId = (id: string) => constructed.find((g) => g.id === id) as FixtureGame;
  const last = (g: FixtureGame) => g.steps.at(-1) as Step;

  it("on a constructed position that comes back 34 moves later: refused by both superkos, allowed by simple ko", () => {
    const [simple, positional, situational] = ["simple", "positional", "situational"].map((k) =>
      byId(`constructed-${k}-long-ko-cycle`),
    ) as [FixtureGame, FixtureGame, FixtureGame];
    for (const g of [simple, positional, situational]) check(g);
    expect(last(simple).m).toBe("B10");
    for (const g of [positional, situational]) {
      expect(last(g).illegal).toContain("B10");
      expect(last(g).probes).toContainEqual(["B10", "play", "illegal move"]);
    }
  });

  it("on a board that comes back with the other player to move: refused by positional superko only", () => {
    const [simple, positional, situational] = ["simple", "positional", "situational"].map((k) =>
      byId(`constructed-${k}-other-player-to-move`),
    ) as [FixtureGame, FixtureGame, FixtureGame];
    for (const g of [simple, positional, situational]) check(g);
    expect(last(simple).m).toBe("B8");
    expect(last(situational).m).toBe("B8");
    expect(last(positional).illegal).toContain("B8");
    expect(last(positional).probes).toContainEqual(["B8", "play", "illegal move"]);
  });

  for (const config of ["simple", "positional", "situational", "suicide"] as const) {
    const fixture = load(config);
    it(`on every verdict, capture and board of the ${config} games (${fixture.games.length} games, ${fixture.gnugo})`, () => {
      let verdicts = 0;
      let steps = 0;
      for (const g of fixture.games) {
        const r = check(g);
        verdicts += r.verdicts;
        steps += r.steps;
      }
      expect(steps).toBeGreaterThan(1000);
      expect(verdicts).toBeGreaterThan(20_000);
    });

    it(`on the score of the ${config} games played out where GNU Go sees no dead stones`, () => {
      let compared = 0;
      for (const g of fixture.games) {
        if (g.end === undefined) continue;
        if (g.end.area.dead.length === 0) {
          const game = replay(g, "area");
          expect(game.phase).toBe("scoring");
          expect(game.score().margin, `${g.id}: area`).toBe(margin(g.end.area.score));
          compared++;
        }
        if (g.end.territory.dead.length === 0 && g.end.territory.seki.length === 0) {
          const game = replay(g, "territory");
          expect(game.score().margin, `${g.id}: territory`).toBe(margin(g.end.territory.score));
          compared++;
        }
      }
      expect(compared).toBeGreaterThan(5);
    });
  }
});
