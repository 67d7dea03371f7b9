/**
 * `npm run gen`: compiles every schema with the Parallax plugin.
 *   schema/**.capnp       → src/wire/gen/
 *   test/schema/*.capnp   → test/gen/
 * Needs the `capnp` tool (Debian: `apt-get install capnproto`). The output is committed, so only
 * schema authors need it; CI regenerates and fails if anything differs.
 *
 * Tests: test/codegen/plugin.test.ts (and CI regenerates and compares)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
const plugin = path.join(root, "src/codegen/capnpc-parallax");

interface Job {
  readonly srcDir: string;
  readonly outDir: string;
}

const jobs: Job[] = [
  { srcDir: "schema", outDir: "src/wire/gen" },
  { srcDir: "test/schema", outDir: "test/gen" },
];

function schemaFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...schemaFiles(full));
    else if (entry.endsWith(".capnp")) out.push(full);
  }
  return out.sort();
}

for (const job of jobs) {
  const srcDir = path.join(root, job.srcDir);
  const outDir = path.join(root, job.outDir);
  const files = schemaFiles(srcDir).map((f) => path.relative(root, f));
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  execFileSync(
    "capnp",
    ["compile", `-I${job.srcDir}`, `--src-prefix=${job.srcDir}`, `-o${plugin}:${job.outDir}`, ...files],
    { cwd: root, stdio: "inherit" },
  );
  process.stdout.write(`gen: ${files.length} schema file(s) from ${job.srcDir}/ → ${job.outDir}/\n`);
}
