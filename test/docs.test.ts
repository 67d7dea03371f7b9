/** The README's reference tables stay in step with the code they describe. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../src/errors.js";
import { DEFAULT_LIMITS } from "../src/limits.js";

const readme = readFileSync(path.resolve(import.meta.dirname, "../README.md"), "utf8");

function rowOf(name: string): string | undefined {
  return readme.split("\n").find((l) => l.startsWith(`| \`${name}\` |`));
}

function humanize(n: number): string[] {
  const out = [String(n), n.toLocaleString("en-US").replace(/,/g, " ")];
  if (n % (1024 * 1024) === 0) out.push(`${n / (1024 * 1024)} MiB`, `${n / (1024 * 1024)} Mi words`);
  return out;
}

describe("README", () => {
  it("lists every limit with its default value", () => {
    for (const [name, value] of Object.entries(DEFAULT_LIMITS)) {
      const row = rowOf(name);
      expect(row, `no README row for ${name}`).toBeDefined();
      const cells = (row as string).split("|").map((c) => c.trim());
      expect(humanize(value), `${name}'s default in the README`).toContain(cells[2]);
    }
  });

  it("lists every error code with the kind the code carries", () => {
    for (const code of Object.values(ErrorCode)) {
      const row = rowOf(code);
      expect(row, `no README row for ${code}`).toBeDefined();
      const cells = (row as string).split("|").map((c) => c.trim());
      expect(cells[2], `${code}'s kind in the README`).toBe(new ParallaxError(code, "x").kind);
    }
  });

  it("has a limits row for every limit and no row for a limit that does not exist", () => {
    const table = readme.slice(readme.indexOf("### Limits"), readme.indexOf("## Benchmark"));
    const named = [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
    expect(named.sort()).toEqual(Object.keys(DEFAULT_LIMITS).sort());
  });
});
