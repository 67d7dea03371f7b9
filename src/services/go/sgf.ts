/**
 * SGF FF[4] (https://red-bean.com/sgf/) for one Go game: `writeSgf` records a `GoGame` with its
 * rules and players; `parseSgf` reads the main line of a file back into a `GoGame`.
 *
 * Written: `GM[1] FF[4] CA[UTF-8] AP SZ KM RU`, `HA` and `AB` for handicap stones (`PL[W]`), the
 * given `PB PW BR WR DT GN TM OT`, `RE` (the game's result unless one is given), then one node per
 * move, `B[dp]`/`W[]` (a pass is `[]`), with optional comments `C`. `RU` is a preset's name
 * (Japanese, Chinese, AGA, NZ, Tromp-Taylor) when the rules match one, else
 * `Parallax:scoring=…;ko=…;suicide=…;bonus=…`, which `parseSgf` reads back exactly.
 *
 * Read: the first game of the collection, main line only (the first variation at every fork;
 * the others are skipped without being interpreted). Passes may be `[]` or, on boards up to 19×19,
 * `[tt]`. Lower-case letters in property names are ignored (FF[3] style `AddBlack`).
 *
 * Hostile input: the parser never recurses (variations are walked with a counter), and stops
 * with ParallaxError BAD_ARGUMENT naming the line and column at the first problem: more than
 * `SGF_LIMITS.maxChars` characters, `maxNodes` nodes, `maxValueChars` in one value or
 * `maxPropertiesPerNode`; bad syntax; a size outside 2–25 or not square; an off-board point; a
 * setup property other than `AB` in the root (the engine replays games, it does not edit boards);
 * a move that is illegal under the game's rules, out of turn, or after the game ended.
 *
 * Tests: test/services/go/sgf.test.ts
 */

import { ErrorCode, ParallaxError } from "../../errors.js";
import { GoGame } from "./go-game.js";
import { type Point, pointToGtp, pointToSgf, samePoint } from "./go-point.js";
import { type Color, GO_RULE_PRESETS, type GoRulePreset, type GoRules, goRules } from "./go-rules.js";
import { fixedHandicapPoints } from "./handicap.js";

export interface SgfGameInfo {
  readonly blackName?: string;
  readonly whiteName?: string;
  readonly blackRank?: string;
  readonly whiteRank?: string;
  /** `DT`, e.g. `2026-03-14`. */
  readonly date?: string;
  readonly gameName?: string;
  /** `RE`: `B+R`, `W+T`, `B+3.5`, `0`, `Void`, `?`. */
  readonly result?: string;
  /** `TM`: main time per player in seconds. */
  readonly timeLimitSeconds?: number;
  /** `OT`: the overtime system, e.g. `5x30 byo-yomi`. */
  readonly overtime?: string;
  /** `RU` as written in the file. */
  readonly ruleset?: string;
}

export const SGF_LIMITS = {
  /** Longest SGF text accepted, in characters. */
  maxChars: 1_000_000,
  /** Most nodes (`;`) in the file, variations included; a 25×25 game at the move limit has 6251. */
  maxNodes: 20_000,
  /** Longest property value, in characters (a comment). */
  maxValueChars: 100_000,
  /** Most properties in one node. */
  maxPropertiesPerNode: 64,
} as const;
export type SgfLimits = { -readonly [K in keyof typeof SGF_LIMITS]: number };

export interface ParsedSgf {
  readonly rules: GoRules;
  readonly info: SgfGameInfo;
  /** The game replayed: its moves, board, captures and (for `RE[B+R]`, `W+T`, `B+F`) its end. */
  readonly game: GoGame;
  /** `comments[0]` is the root's `C`, `comments[i]` the comment on move i. */
  readonly comments: readonly (string | undefined)[];
}

const RU_NAMES: Record<GoRulePreset, string> = {
  japanese: "Japanese",
  chinese: "Chinese",
  aga: "AGA",
  "new-zealand": "NZ",
  "tromp-taylor": "Tromp-Taylor",
};
const RU_ALIASES: Record<string, GoRulePreset> = {
  japanese: "japanese",
  korean: "japanese",
  chinese: "chinese",
  aga: "aga",
  nz: "new-zealand",
  "new zealand": "new-zealand",
  "new-zealand": "new-zealand",
  "tromp-taylor": "tromp-taylor",
  "tromp taylor": "tromp-taylor",
  tromptaylor: "tromp-taylor",
};

function escapeValue(s: string): string {
  return s.replace(/[\\\]]/g, (c) => `\\${c}`);
}

function rulesName(r: GoRules): string {
  for (const [name, p] of Object.entries(GO_RULE_PRESETS) as [
    GoRulePreset,
    (typeof GO_RULE_PRESETS)[GoRulePreset],
  ][])
    if (
      p.koRule === r.koRule &&
      p.scoring === r.scoring &&
      p.suicide === r.suicide &&
      p.whiteHandicapBonus === r.whiteHandicapBonus
    )
      return RU_NAMES[name];
  return `Parallax:scoring=${r.scoring};ko=${r.koRule};suicide=${r.suicide ? "yes" : "no"};bonus=${r.whiteHandicapBonus}`;
}

/** The SGF text of `game`; `comments[i]` (0 the root) become `C` properties. */
export function writeSgf(
  game: GoGame,
  info: SgfGameInfo = {},
  comments: readonly (string | undefined)[] = [],
): string {
  const r = game.rules;
  const props: string[] = [
    `GM[1]FF[4]CA[UTF-8]AP[Parallax]SZ[${r.size}]KM[${r.komi}]RU[${escapeValue(rulesName(r))}]`,
  ];
  const text = (id: string, v: string | undefined): void => {
    if (v !== undefined) props.push(`${id}[${escapeValue(v)}]`);
  };
  text("PB", info.blackName);
  text("PW", info.whiteName);
  text("BR", info.blackRank);
  text("WR", info.whiteRank);
  text("DT", info.date);
  text("GN", info.gameName);
  if (info.timeLimitSeconds !== undefined) text("TM", String(info.timeLimitSeconds));
  text("OT", info.overtime);
  text("RE", info.result ?? game.result);
  const stones = game.handicapStones;
  if (stones.length > 0)
    props.push(`HA[${stones.length}]AB${stones.map((p) => `[${pointToSgf(p)}]`).join("")}PL[W]`);
  text("C", comments[0]);
  const out = [`(;${props.join("")}`];
  let line = "";
  game.moves.forEach((m, i) => {
    const v = m.kind === "pass" ? "" : pointToSgf(m.point);
    const c = comments[i + 1];
    line += `;${m.color === "black" ? "B" : "W"}[${v}]${c === undefined ? "" : `C[${escapeValue(c)}]`}`;
    if ((i + 1) % 12 === 0) {
      out.push(line);
      line = "";
    }
  });
  if (line !== "") out.push(line);
  return `${out.join("\n")})\n`;
}

// --- parsing -----------------------------------------------------------------------------------

interface SgfNode {
  readonly offset: number;
  readonly props: Map<string, { values: string[]; offset: number }>;
}

class SgfReader {
  pos = 0;
  nodes = 0;
  constructor(
    readonly text: string,
    readonly limits: SgfLimits,
  ) {}

  fail(message: string, at = this.pos): never {
    let line = 1;
    let col = 1;
    for (let i = 0; i < at && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        col = 1;
      } else col++;
    }
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `sgf: line ${line}, column ${col}: ${message}`);
  }

  skipWs(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12) this.pos++;
      else break;
    }
  }

  peek(): string {
    return this.text[this.pos] ?? "";
  }

  expect(ch: string): void {
    this.skipWs();
    if (this.text[this.pos] !== ch)
      this.fail(
        this.pos >= this.text.length ? `expected '${ch}', got the end of the text` : `expected '${ch}'`,
      );
    this.pos++;
  }

  countNode(): void {
    if (++this.nodes > this.limits.maxNodes) this.fail(`more than ${this.limits.maxNodes} nodes`);
  }

  /** Reads `[value]` at pos, unescaped. */
  value(): string {
    const t = this.text;
    const start = this.pos;
    this.pos++; // [
    let out = "";
    let from = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated property value", start);
      const c = t[this.pos];
      if (c === "]") break;
      if (c === "\\") {
        out += t.slice(from, this.pos);
        this.pos++;
        if (this.pos >= t.length) this.fail("unterminated property value", start);
        const n = t[this.pos];
        if (n === "\n" || n === "\r") {
          // soft line break
          this.pos++;
          if ((n === "\n" && t[this.pos] === "\r") || (n === "\r" && t[this.pos] === "\n")) this.pos++;
        } else {
          out += n;
          this.pos++;
        }
        from = this.pos;
      } else this.pos++;
      if (this.pos - start > this.limits.maxValueChars + 2)
        this.fail(`a property value longer than ${this.limits.maxValueChars} characters`, start);
    }
    out += t.slice(from, this.pos);
    this.pos++; // ]
    return out;
  }

  /** Reads `;` and its properties. */
  node(): SgfNode {
    const offset = this.pos;
    this.pos++; // ;
    this.countNode();
    const props = new Map<string, { values: string[]; offset: number }>();
    for (;;) {
      this.skipWs();
      const c = this.text.charCodeAt(this.pos);
      const isLetter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
      if (!isLetter) break;
      const start = this.pos;
      let id = "";
      while (this.pos < this.text.length) {
        const d = this.text.charCodeAt(this.pos);
        if (d >= 65 && d <= 90) id += this.text[this.pos];
        else if (!(d >= 97 && d <= 122)) break;
        this.pos++;
        if (this.pos - start > 64) this.fail("a property name longer than 64 letters", start);
      }
      if (id === "") this.fail("a property name needs an upper-case letter", start);
      if (props.has(id)) this.fail(`property ${id} appears twice in one node`, start);
      if (props.size >= this.limits.maxPropertiesPerNode)
        this.fail(`more than ${this.limits.maxPropertiesPerNode} properties in one node`, start);
      const values: string[] = [];
      this.skipWs();
      if (this.peek() !== "[") this.fail(`property ${id} has no value`);
      while (this.peek() === "[") {
        values.push(this.value());
        this.skipWs();
      }
      props.set(id, { values, offset: start });
    }
    return { offset, props };
  }

  /** Skips one game tree starting at `(`, iteratively. */
  skipTree(): void {
    const t = this.text;
    let depth = 0;
    const start = this.pos;
    do {
      if (this.pos >= t.length) this.fail("unterminated variation", start);
      const c = t[this.pos];
      if (c === "[") {
        this.value();
        continue;
      }
      if (c === "(") depth++;
      else if (c === ")") depth--;
      else if (c === ";") this.countNode();
      this.pos++;
    } while (depth > 0);
  }

  /** The main line of the first game tree, then checks the rest of the collection is well formed. */
  mainLine(): SgfNode[] {
    const nodes: SgfNode[] = [];
    this.expect("(");
    let depth = 1;
    for (;;) {
      this.skipWs();
      if (this.peek() !== ";") this.fail("expected ';' to start a node");
      while (this.peek() === ";") {
        nodes.push(this.node());
        this.skipWs();
      }
      if (this.peek() === "(") {
        this.pos++;
        depth++;
        continue;
      }
      break;
    }
    this.expect(")");
    depth--;
    while (depth > 0) {
      this.skipWs();
      while (this.peek() === "(") {
        this.skipTree();
        this.skipWs();
      }
      this.expect(")");
      depth--;
    }
    this.skipWs();
    while (this.peek() === "(") {
      this.skipTree();
      this.skipWs();
    }
    if (this.pos < this.text.length) this.fail("unexpected text after the game");
    return nodes;
  }
}

function parseRules(ru: string | undefined, reader: SgfReader, at: number): Partial<GoRules> {
  if (ru === undefined) return {};
  const v = ru.trim();
  if (v.startsWith("Parallax:")) {
    const fields = new Map(
      v
        .slice("Parallax:".length)
        .split(";")
        .map((kv) => kv.split("=") as [string, string]),
    );
    const scoring = fields.get("scoring");
    const koRule = fields.get("ko");
    const suicide = fields.get("suicide");
    const bonus = fields.get("bonus");
    if (
      (scoring !== "area" && scoring !== "territory") ||
      (koRule !== "simple" && koRule !== "positional" && koRule !== "situational") ||
      (suicide !== "yes" && suicide !== "no") ||
      (bonus !== "none" && bonus !== "n" && bonus !== "n-1")
    )
      reader.fail(`RU[${v.slice(0, 80)}] is not a rule set this server wrote`, at);
    return { scoring, koRule, suicide: suicide === "yes", whiteHandicapBonus: bonus };
  }
  const preset = RU_ALIASES[v.toLowerCase()];
  return preset === undefined ? {} : GO_RULE_PRESETS[preset];
}

function single(node: SgfNode, id: string, reader: SgfReader): string | undefined {
  const p = node.props.get(id);
  if (p === undefined) return undefined;
  if (p.values.length !== 1) reader.fail(`${id} takes one value`, p.offset);
  return p.values[0];
}

function sgfPoint(v: string, size: number, reader: SgfReader, at: number): Point {
  const ok = /^[a-z]{2}$/.test(v);
  const p = ok ? { x: v.charCodeAt(0) - 97, y: v.charCodeAt(1) - 97 } : { x: -1, y: -1 };
  if (p.x < 0 || p.y < 0 || p.x >= size || p.y >= size)
    reader.fail(`[${v.slice(0, 10)}] is not a point on the ${size}×${size} board`, at);
  return p;
}

/** Reads the main line of the first game in `text`. Throws BAD_ARGUMENT (with line and column) on any problem. */
export function parseSgf(text: string, limits: Partial<SgfLimits> = {}): ParsedSgf {
  if (typeof text !== "string")
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "sgf: the input must be a string");
  const lim: SgfLimits = { ...SGF_LIMITS, ...limits };
  const reader: SgfReader = new SgfReader(text, lim);
  if (text.length > lim.maxChars)
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `sgf: more than ${lim.maxChars} characters (${text.length})`,
    );
  const nodes = reader.mainLine();
  const root = nodes[0] as SgfNode;
  const at = (n: SgfNode, id: string) => n.props.get(id)?.offset ?? n.offset;

  const gm = single(root, "GM", reader);
  if (gm !== undefined && gm.trim() !== "1")
    reader.fail(`GM[${gm.slice(0, 10)}] is not Go (GM[1])`, at(root, "GM"));
  const ff = single(root, "FF", reader);
  if (ff !== undefined && !/^\s*[1-4]\s*$/.test(ff))
    reader.fail(`FF[${ff.slice(0, 10)}] is not 1–4`, at(root, "FF"));
  const sz = single(root, "SZ", reader) ?? "19";
  const szm = /^\s*(\d{1,3})\s*(?::\s*(\d{1,3})\s*)?$/.exec(sz);
  if (szm === null) reader.fail(`SZ[${sz.slice(0, 10)}] is not a board size`, at(root, "SZ"));
  if (szm[2] !== undefined && szm[2] !== szm[1])
    reader.fail(`SZ[${sz}]: only square boards are supported`, at(root, "SZ"));
  const size = Number(szm[1]);
  if (size < 2 || size > 25) reader.fail(`SZ[${size}]: board size must be from 2 to 25`, at(root, "SZ"));
  const km = single(root, "KM", reader);
  const komi = km === undefined || km.trim() === "" ? 0 : Number(km);
  if (!Number.isFinite(komi)) reader.fail(`KM[${km?.slice(0, 20)}] is not a number`, at(root, "KM"));
  const ha = single(root, "HA", reader);
  const haN = ha === undefined ? 0 : Number(ha);
  if (!Number.isInteger(haN) || haN < 0)
    reader.fail(`HA[${ha?.slice(0, 10)}] is not a stone count`, at(root, "HA"));
  for (const id of ["AW", "AE"])
    if (root.props.has(id))
      reader.fail(`setup property ${id} is not supported (only AB handicap stones)`, at(root, id));
  const ab = (root.props.get("AB")?.values ?? []).map((v) => sgfPoint(v, size, reader, at(root, "AB")));
  const handicap = ab.length > 0 ? ab.length : haN >= 2 ? haN : 0;
  if (ab.length > 0 && haN !== 0 && haN !== ab.length)
    reader.fail(`HA[${haN}] but ${ab.length} AB stones`, at(root, "HA"));
  let placement: "fixed" | "free" = "fixed";
  if (ab.length > 0) {
    let fixed: Point[] = [];
    try {
      fixed = fixedHandicapPoints(size, ab.length);
    } catch {
      fixed = [];
    }
    const same = fixed.length === ab.length && fixed.every((f) => ab.some((p) => samePoint(p, f)));
    placement = same ? "fixed" : "free";
  }
  const ru = single(root, "RU", reader);
  let rules: GoRules;
  try {
    rules = goRules({
      ...parseRules(ru, reader, at(root, "RU")),
      size,
      komi,
      handicap,
      handicapPlacement: placement,
    });
  } catch (err) {
    reader.fail(err instanceof Error ? err.message : String(err), root.offset);
  }
  const game = new GoGame(rules);
  if (placement === "free" && handicap > 0) {
    const r = game.placeHandicap(ab);
    if (!r.ok) reader.fail(`AB: ${r.message}`, at(root, "AB"));
  }

  const tm = single(root, "TM", reader);
  const timeLimitSeconds = tm === undefined ? undefined : Number(tm);
  if (timeLimitSeconds !== undefined && !Number.isFinite(timeLimitSeconds))
    reader.fail(`TM[${tm?.slice(0, 20)}] is not a number of seconds`, at(root, "TM"));
  const info: Record<string, string | number> = {};
  const put = (key: keyof SgfGameInfo, id: string) => {
    const v = single(root, id, reader);
    if (v !== undefined) info[key] = v;
  };
  put("blackName", "PB");
  put("whiteName", "PW");
  put("blackRank", "BR");
  put("whiteRank", "WR");
  put("date", "DT");
  put("gameName", "GN");
  put("result", "RE");
  put("overtime", "OT");
  put("ruleset", "RU");
  if (timeLimitSeconds !== undefined) info.timeLimitSeconds = timeLimitSeconds;

  const comments: (string | undefined)[] = [single(root, "C", reader)];
  if (root.props.has("B") || root.props.has("W"))
    reader.fail("a move in the root node is not supported", root.offset);
  for (let n = 1; n < nodes.length; n++) {
    const node = nodes[n] as SgfNode;
    for (const id of ["AB", "AW", "AE"])
      if (node.props.has(id))
        reader.fail(`setup property ${id} after the root is not supported`, at(node, id));
    const b = single(node, "B", reader);
    const w = single(node, "W", reader);
    const c = single(node, "C", reader);
    if (b !== undefined && w !== undefined) reader.fail("B and W in one node", node.offset);
    const v = b ?? w;
    if (v === undefined) {
      if (c !== undefined) {
        const i = comments.length - 1;
        comments[i] = comments[i] === undefined ? c : `${comments[i]}\n${c}`;
      }
      continue;
    }
    const color: Color = b !== undefined ? "black" : "white";
    const idAt = at(node, b !== undefined ? "B" : "W");
    const pass = v === "" || (v === "tt" && size <= 19);
    const point = pass ? undefined : sgfPoint(v, size, reader, idAt);
    const r = point === undefined ? game.pass(color) : game.play(color, point);
    if (!r.ok)
      reader.fail(
        `move ${game.moveCount + 1} (${b !== undefined ? "B" : "W"}[${v}]${point === undefined ? "" : `, ${pointToGtp(point, size)}`}) is refused: ${r.reason}: ${r.message}`,
        idAt,
      );
    comments.push(c);
  }
  const re = info.result;
  if (typeof re === "string") {
    const m = /^\s*([BW])\+(R|Resign|T|Time|F|Forfeit)\s*$/i.exec(re);
    if (m !== null) {
      const loser: Color = (m[1] as string).toUpperCase() === "B" ? "white" : "black";
      const kind = (m[2] as string).charAt(0).toUpperCase();
      game.concede(loser, kind === "R" ? "resignation" : kind === "T" ? "time" : "forfeit");
    }
  }
  return { rules, info: info as SgfGameInfo, game, comments };
}
