/**
 * nameKey against an independent oracle: Python 3's NFKC(str.casefold(NFKC(s))), recorded in
 * name-key-fixture.txt by gen-name-key-fixture.py (python3 need not be present to run this test;
 * rerun the script only to refresh the fixture).
 *
 * Unicode versions: the fixture records Python's `unicodedata.unidata_version` (14.0 for Python
 * 3.11) and which code points that version assigns; Node's ICU is newer (15.1 or later). Code
 * points assigned after Python's version have no oracle, so every comparison below is restricted
 * to code points assigned in both: in the fixture's `assigned` list (category not Cn, surrogates
 * left out) and not \p{Cn} in this Node. Unicode's stability policies keep normalization and case
 * folding of assigned characters fixed, so the newer data may not change their keys.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { nameKey, sameName } from "../../src/store/name-key.js";

interface Fixture {
  readonly unicode: string;
  /** Python's key of every code point assigned in its Unicode version. */
  readonly keys: Map<number, string>;
  readonly strings: readonly (readonly [string, string])[];
}

function loadFixture(): Fixture {
  const text = readFileSync(path.join(import.meta.dirname, "name-key-fixture.txt"), "ascii");
  const fromHex = (cps: string) =>
    cps
      .trim()
      .split(/\s+/)
      .map((h) => String.fromCodePoint(Number.parseInt(h, 16)))
      .join("");
  const rangesOf = (list: string): number[] =>
    list
      .trim()
      .split(/\s+/)
      .flatMap((r) => {
        const [a, b = a] = r.split("-").map((h) => Number.parseInt(h, 16)) as [number, number?];
        return Array.from({ length: b - a + 1 }, (_, i) => a + i);
      });
  let unicode = "";
  const keys = new Map<number, string>();
  const strings: [string, string][] = [];
  for (const line of text.split("\n")) {
    const [kind, rest = ""] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)];
    if (kind === "unicode") unicode = rest;
    else if (kind === "assigned") for (const cp of rangesOf(rest)) keys.set(cp, String.fromCodePoint(cp));
    else if (kind === "key" || kind === "string") {
      const [left = "", right = ""] = rest.split(" : ");
      if (kind === "string") strings.push([fromHex(left), fromHex(right)]);
      else for (const cp of rangesOf(right)) keys.set(cp, fromHex(left));
    }
  }
  return { unicode, keys, strings };
}

const fixture = loadFixture();
const UNASSIGNED = /\p{Cn}/u;
/** Code points assigned in Python's Unicode and in Node's. */
const common = [...fixture.keys.keys()].filter((cp) => !UNASSIGNED.test(String.fromCodePoint(cp)));

function show(s: string): string {
  return [...s].map((c) => `U+${(c.codePointAt(0) as number).toString(16).toUpperCase()}`).join(" ");
}

describe("nameKey, against Python's casefold and NFKC", () => {
  it("reads an oracle that covers the assigned code points and those whose key differs", () => {
    expect(fixture.unicode).toMatch(/^\d+\.\d+\.\d+$/);
    expect(fixture.keys.size).toBeGreaterThan(280_000);
    expect(common.length).toBe(fixture.keys.size);
    expect(fixture.keys.get(0x41)).toBe("a");
    expect(fixture.keys.get(0xdf)).toBe("ss");
  });

  it("gives every code point assigned in both Unicode versions Python's key", () => {
    const wrong: string[] = [];
    for (const cp of common) {
      const c = String.fromCodePoint(cp);
      const ours = nameKey(c);
      const theirs = fixture.keys.get(cp) as string;
      if (ours !== theirs) wrong.push(`${show(c)}: ours ${show(ours)}, Python ${show(theirs)}`);
    }
    expect(wrong.slice(0, 20)).toEqual([]);
  });

  it("makes the same classes of equal names as Python: two code points fold equal in one iff in the other", () => {
    const oursOf = new Map<string, string>();
    const theirsOf = new Map<string, string>();
    const splits: string[] = [];
    for (const cp of common) {
      const c = String.fromCodePoint(cp);
      const ours = nameKey(c);
      const theirs = fixture.keys.get(cp) as string;
      const seenOurs = oursOf.get(theirs);
      const seenTheirs = theirsOf.get(ours);
      if (seenOurs !== undefined && seenOurs !== ours)
        splits.push(`Python joins what we split at ${show(c)}`);
      if (seenTheirs !== undefined && seenTheirs !== theirs)
        splits.push(`we join what Python splits at ${show(c)}`);
      oursOf.set(theirs, ours);
      theirsOf.set(ours, theirs);
    }
    expect(splits.slice(0, 20)).toEqual([]);
    expect(oursOf.size).toBe(theirsOf.size);
  });

  it("gives multi-code-point strings Python's key", () => {
    expect(fixture.strings.length).toBeGreaterThan(50);
    for (const [s, key] of fixture.strings) expect(show(nameKey(s)), show(s)).toBe(show(key));
  });

  it("is idempotent on every common code point", () => {
    const moved = common
      .map((cp) => nameKey(String.fromCodePoint(cp)))
      .filter((k) => nameKey(k) !== k)
      .map(show);
    expect(moved.slice(0, 20)).toEqual([]);
  });
});

describe("sameName", () => {
  it("joins names that differ in case, width, compatibility form or sharp s", () => {
    expect(sameName("Alice", "alice")).toBe(true);
    expect(sameName("ＡＬＩＣＥ", "alice")).toBe(true);
    expect(sameName("𝐀𝐥𝐢𝐜𝐞", "alice")).toBe(true);
    expect(sameName("Straße", "STRASSE")).toBe(true);
    expect(sameName("\u1e9e", "ss")).toBe(true);
    expect(sameName("\ufb03", "FFI")).toBe(true);
    expect(sameName("\u01c5emal", "\u01c4EMAL")).toBe(true);
    expect(sameName("ὈΔΥΣΣΕΎΣ", "ὀδυσσεύς")).toBe(true);
    expect(sameName("ΣΑΣ", "σας")).toBe(true);
    expect(sameName("ᏣᎳᎩ", "ꮳꮃꭹ")).toBe(true);
    expect(sameName("e\u0301", "\u00c9")).toBe(true);
  });

  it("keeps İ and ı apart from i and I, as Unicode's default (non-Turkish) folding does", () => {
    expect(sameName("ALİCE", "alice")).toBe(false);
    expect(sameName("ALİCE", "ali\u0307ce")).toBe(true);
    expect(sameName("al\u0131ce", "alice")).toBe(false);
    expect(sameName("al\u0131ce", "ALICE")).toBe(false);
  });

  it("keeps different names apart", () => {
    expect(sameName("alice", "alicf")).toBe(false);
    expect(sameName("bob", "bob ")).toBe(false);
    expect(sameName("σ", "ο")).toBe(false);
  });
});
