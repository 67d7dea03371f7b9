/** The README's reference tables stay in step with the code they describe. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../src/errors.js";
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

  it("lists every error code", () => {
    for (const code of Object.values(ErrorCode))
      expect(rowOf(code), `no README row for ${code}`).toBeDefined();
  });
});
