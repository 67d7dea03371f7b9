/**
 * The capnp compiler plugin: `capnp compile -o path/to/capnpc-parallax:OUTDIR schema.capnp`.
 * Reads a CodeGeneratorRequest on stdin and writes one `.ts` file per requested schema file into
 * the current directory (capnp runs plugins in OUTDIR). Exits non-zero, naming the schema node,
 * on anything it cannot translate.
 *
 * Tests: test/codegen/plugin.test.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { generateFromBytes } from "./generate.js";

const runtimePath =
  process.env.PARALLAX_GEN_RUNTIME ?? path.resolve(import.meta.dirname, "../wire/gen-runtime.ts");

try {
  const request = readFileSync(0);
  const outDir = process.cwd();
  const files = generateFromBytes(request, {
    outputPath: (displayName) => path.join(outDir, displayName.replace(/\.capnp$/, ".ts")),
    runtimePath,
  });
  for (const [file, text] of files) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
} catch (err) {
  process.stderr.write(`capnpc-parallax: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
