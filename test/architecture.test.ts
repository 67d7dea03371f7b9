/**
 * Enforces the README's dependency rules: the table under "### Dependency rules" is parsed here,
 * so the README stays the single statement of the rule.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");

interface Rule {
  /** Paths relative to the repo root; folders end with `/`. */
  readonly paths: readonly string[];
  readonly name: string;
  readonly mayImport: readonly string[] | "anything";
  readonly packages: readonly string[] | "anything";
}

/** Packages confined to one place, whatever the table allows. */
const CONFINED: Record<string, string> = {
  ws: "src/transport/websocket-transport.ts",
  argon2: "src/cred/",
  "better-sqlite3": "src/store/",
};
/** Code that must run in browsers: no `node:` built-ins. */
const BROWSER_SAFE = [
  "src/caps/",
  "src/wire/",
  "src/rpc/",
  "src/transport/browser-websocket.ts",
  "src/browser.ts",
  "src/cred/scram-client.ts",
  "src/cred/kdf.ts",
  "src/cred/wasm-kdf.ts",
  "src/login/browser-login.ts",
  "src/login/reconnecting-client.ts",
  "src/services/router/router-client.ts",
  "src/services/chat/chat-client.ts",
  "src/web/",
];
const GENERATED = ["src/wire/gen/", "test/gen/"];

function parseRules(readme: string): Rule[] {
  const start = readme.indexOf("### Dependency rules");
  if (start < 0) throw new Error("README has no '### Dependency rules' section");
  const rows = readme
    .slice(start)
    .split("\n")
    .filter((l) => l.startsWith("| `"));
  return rows.map((row) => {
    const cells = row
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    const ticks = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
    const paths = ticks(cells[0] ?? "");
    const first = paths[0] ?? "";
    const name = path.basename(first.replace(/\/$/, ""), ".ts");
    return {
      paths,
      name: first === "demos/" ? "demos" : name,
      mayImport: cells[1] === "anything" ? "anything" : ticks(cells[1] ?? ""),
      packages: cells[2] === "anything" ? "anything" : ticks(cells[2] ?? ""),
    };
  });
}

function ruleFor(rules: readonly Rule[], file: string): Rule | undefined {
  let best: Rule | undefined;
  let bestLen = -1;
  for (const r of rules) {
    for (const p of r.paths) {
      const hit = p.endsWith("/") ? file.startsWith(p) : file === p;
      if (hit && p.length > bestLen) {
        best = r;
        bestLen = p.length;
      }
    }
  }
  return best;
}

function importsOf(source: string): string[] {
  const out: string[] = [];
  const re =
    /^\s*(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"'$]+)["']|\bimport\(\s*["']([^"'$]+)["']\s*\)/gm;
  for (const m of source.matchAll(re)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/**
 * The relative imports of `source` that exist at run time: every import and re-export statement
 * except the whole-statement `import type` / `export type` forms (with verbatimModuleSyntax,
 * `import { type X }` stays as an import of the module).
 */
function runtimeImportsOf(source: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s+(?!type\s)(?:[^"';]*?\s+from\s+)?["'](\.[^"'$]*)["']/gm;
  for (const m of source.matchAll(re)) out.push(m[1] as string);
  return out;
}

/** The strongly connected components of more than one file (or a file importing itself). */
function runtimeCycles(files: readonly string[], read: (f: string) => string): string[][] {
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const targets = runtimeImportsOf(read(f)).map((spec) =>
      path
        .relative(root, path.resolve(root, path.dirname(f), spec))
        .replace(/\\/g, "/")
        .replace(/\.js$/, ".ts"),
    );
    edges.set(
      f,
      targets.filter((t) => files.includes(t)),
    );
  }
  // Tarjan's algorithm.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      for (;;) {
        const w = stack.pop() as string;
        on.delete(w);
        scc.push(w);
        if (w === v) break;
      }
      if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return out;
}

function packageName(spec: string): string {
  const parts = spec.split("/");
  return spec.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** Returns a list of violations, one line each, for `file` (repo-relative) with `source`. */
function checkFile(rules: readonly Rule[], file: string, source: string): string[] {
  const problems: string[] = [];
  const rule = ruleFor(rules, file);
  const generated = GENERATED.some((g) => file.startsWith(g));
  for (const spec of importsOf(source)) {
    if (spec.startsWith(".")) {
      const target = path
        .relative(root, path.resolve(root, path.dirname(file), spec))
        .replace(/\\/g, "/")
        .replace(/\.js$/, ".ts");
      if (generated) {
        const ok = GENERATED.some((g) => target.startsWith(g)) || target === "src/wire/gen-runtime.ts";
        if (!ok) problems.push(`${file}: generated code imports ${spec}`);
        continue;
      }
      if (!target.startsWith("src/") || rule === undefined) continue;
      const targetRule = ruleFor(rules, target);
      if (targetRule === undefined) {
        problems.push(`${file}: imports ${spec}, which no dependency rule covers`);
      } else if (
        targetRule !== rule &&
        rule.mayImport !== "anything" &&
        !rule.mayImport.includes(targetRule.name)
      ) {
        problems.push(`${file}: ${rule.name} may not import ${targetRule.name} (${spec})`);
      }
      continue;
    }
    if (spec.startsWith("node:")) {
      if (BROWSER_SAFE.some((b) => file.startsWith(b)))
        problems.push(`${file}: browser-safe code imports ${spec}`);
      continue;
    }
    const pkg = packageName(spec);
    const confined = CONFINED[pkg];
    if (confined !== undefined && !file.startsWith(confined) && !file.startsWith("test/")) {
      problems.push(`${file}: ${pkg} may be imported only in ${confined}`);
    }
    if (generated) {
      if (pkg !== "capnp-ts") problems.push(`${file}: generated code imports ${spec}`);
      continue;
    }
    if (rule !== undefined && rule.packages !== "anything" && !rule.packages.includes(pkg)) {
      problems.push(`${file}: ${rule.name} may not import the package ${pkg}`);
    }
  }
  if (file.startsWith("src/") && rule === undefined)
    problems.push(`${file}: no dependency rule covers this file`);
  return problems;
}

function sourceFiles(dir: string): string[] {
  const abs = path.join(root, dir);
  const out: string[] = [];
  for (const entry of readdirSync(abs)) {
    const rel = `${dir}/${entry}`;
    if (statSync(path.join(root, rel)).isDirectory()) out.push(...sourceFiles(rel));
    else if (entry.endsWith(".ts")) out.push(rel);
  }
  return out;
}

const rules = parseRules(readFileSync(path.join(root, "README.md"), "utf8"));

describe("dependency rules", () => {
  it("are read from the README table", () => {
    expect(rules.length).toBeGreaterThanOrEqual(12);
    expect(rules.find((r) => r.name === "caps")?.mayImport).toEqual(["errors"]);
    expect(rules.find((r) => r.name === "index")?.mayImport).toBe("anything");
  });

  it("are kept by every source file, demo and generated file", () => {
    const files = [...sourceFiles("src"), ...sourceFiles("demos"), ...sourceFiles("test/gen")];
    expect(files.length).toBeGreaterThan(10);
    const problems = files.flatMap((f) => checkFile(rules, f, readFileSync(path.join(root, f), "utf8")));
    expect(problems).toEqual([]);
  });

  it("leave no runtime import cycle among the source files", () => {
    const files = sourceFiles("src").filter((f) => !f.startsWith("src/wire/gen/"));
    const read = (f: string) => readFileSync(path.join(root, f), "utf8");
    expect(runtimeCycles(files, read)).toEqual([]);
  });

  it("find a runtime cycle, and ignore one made of type-only imports", () => {
    const sources: Record<string, string> = {
      "src/a.ts": 'import { b } from "./b.js";',
      "src/b.ts": 'import { c } from "./c.js";',
      "src/c.ts": 'export { a } from "./a.js";',
      "src/d.ts": 'import type { E } from "./e.js";',
      "src/e.ts": 'import type { D } from "./d.js";',
    };
    const cycles = runtimeCycles(Object.keys(sources), (f) => sources[f] as string);
    expect(cycles).toEqual([["src/a.ts", "src/b.ts", "src/c.ts"]]);
  });

  it("catch an upward import, a stray package, a node built-in in browser code and a demo reaching inside", () => {
    expect(checkFile(rules, "src/caps/x.ts", 'import { Conn } from "../rpc/connection.js";')).toHaveLength(1);
    expect(checkFile(rules, "src/cred/x.ts", 'import { Rpc } from "../rpc/index.js";')).toHaveLength(1);
    expect(checkFile(rules, "src/rpc/x.ts", 'import WebSocket from "ws";')).toHaveLength(2);
    expect(checkFile(rules, "src/wire/x.ts", 'import { readFileSync } from "node:fs";')).toHaveLength(1);
    expect(
      checkFile(rules, "demos/x.ts", 'import { Capability } from "../src/caps/capability.js";'),
    ).toHaveLength(1);
    expect(checkFile(rules, "src/codegen/x.ts", 'export { x } from "../caps/index.js";')).toHaveLength(1);
    expect(checkFile(rules, "test/gen/x.ts", 'import * as y from "../../src/caps/index.js";')).toHaveLength(
      1,
    );
    expect(checkFile(rules, "src/rpc/x.ts", 'import type { CapHook } from "../caps/index.js";')).toEqual([]);
  });
});
