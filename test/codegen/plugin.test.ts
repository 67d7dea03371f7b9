/**
 * The compiler plugin as `capnp` runs it: failures name the schema node, and `npm run gen` output
 * is exactly what the generator produces in-process from the same CodeGeneratorRequest.
 * Skipped when `capnp` is not on PATH.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateFromBytes } from "../../src/codegen/generate.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";

const root = path.resolve(import.meta.dirname, "../..");
const plugin = path.join(root, "src/codegen/capnpc-parallax");
const runtimePath = path.join(root, "src/wire/gen-runtime.ts");

const hasCapnp = ((): boolean => {
  try {
    execFileSync("capnp", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

if (!hasCapnp) {
  console.warn(
    "test/codegen/plugin.test.ts: SKIPPED the compiler plugin tests, because `capnp` is not on PATH. " +
      "Enable them with: apt-get install -y capnproto",
  );
}

/** Runs `capnp compile` with our plugin on `files` inside `dir`. */
function compileWithPlugin(dir: string, files: readonly string[]) {
  return spawnSync("capnp", ["compile", `-o${plugin}:${dir}`, ...files], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, PWD: dir },
  });
}

function schemaFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...schemaFiles(full));
    else if (entry.endsWith(".capnp")) out.push(full);
  }
  return out.sort();
}

/** What `npm run gen` (src/codegen/gen.ts) writes for one job, generated in-process. */
function generateJob(srcDir: string, outDir: string): Map<string, string> {
  const files = schemaFiles(path.join(root, srcDir)).map((f) => path.relative(root, f));
  const request = execFileSync(
    "capnp",
    ["compile", `-I${srcDir}`, `--src-prefix=${srcDir}`, "-o-", ...files],
    {
      cwd: root,
      env: { ...process.env, PWD: root },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return generateFromBytes(request, {
    outputPath: (displayName) => path.join(root, outDir, displayName.replace(/\.capnp$/, ".ts")),
    runtimePath,
  });
}

function committedFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...committedFiles(full));
    else if (entry.endsWith(".ts")) out.push(full);
  }
  return out.sort();
}

describe.skipIf(!hasCapnp)("the capnpc-parallax plugin", () => {
  let tmp = "";
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), "parallax-plugin-"));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it("exits non-zero and names the node when a schema declares a generic struct", () => {
    writeFileSync(path.join(tmp, "box.capnp"), "@0xc3b1a9c4e2f03a52;\nstruct Box(T) {\n  value @0 :T;\n}\n");
    const run = compileWithPlugin(tmp, ["box.capnp"]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/capnpc-parallax: box\.capnp:Box: generic types are not supported/);
    expect(readdirSync(tmp)).not.toContain("box.ts");
  });

  it("fails in-process with a ParallaxError coded PARALLAX_ERR_CODEGEN that names the node", () => {
    writeFileSync(
      path.join(tmp, "crate.capnp"),
      "@0xc3b1a9c4e2f03a55;\nstruct Crate(T) {\n  value @0 :T;\n}\n",
    );
    const request = execFileSync("capnp", ["compile", "-o-", "crate.capnp"], {
      cwd: tmp,
      env: { ...process.env, PWD: tmp },
    });
    let error: unknown;
    try {
      generateFromBytes(request, { outputPath: (name) => path.join(tmp, `${name}.ts`), runtimePath });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ParallaxError);
    expect(error).toMatchObject({ code: ErrorCode.CODEGEN, kind: "failed" });
    expect((error as Error).message).toMatch(/crate\.capnp:Crate: generic types are not supported/);
  });

  it("exits non-zero and names the method when an interface method has generic parameters", () => {
    writeFileSync(
      path.join(tmp, "store.capnp"),
      "@0xc3b1a9c4e2f03a53;\ninterface Store {\n  get @0 [T] (key :Text) -> (value :T);\n}\n",
    );
    const run = compileWithPlugin(tmp, ["store.capnp"]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/Store\.get/);
    expect(run.stderr).toMatch(/generic/);
  });

  it("compiles a schema whose request is small enough to land in Node's shared buffer pool", () => {
    writeFileSync(path.join(tmp, "plain.capnp"), "@0xc3b1a9c4e2f03a54;\nstruct Plain {\n  a @0 :Int32;\n}\n");
    const run = compileWithPlugin(tmp, ["plain.capnp"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(readFileSync(path.join(tmp, "plain.ts"), "utf8")).toContain(
      "export class Plain extends $.Struct {",
    );
  });

  it.each([
    ["test/schema", "test/gen"],
    ["schema", "src/wire/gen"],
  ])("regenerating %s in-process yields exactly the committed %s files", (srcDir, outDir) => {
    const generated = generateJob(srcDir, outDir);
    expect([...generated.keys()].sort()).toEqual(committedFiles(path.join(root, outDir)));
    for (const [file, text] of generated) {
      expect(text, `${path.relative(root, file)} differs from a fresh \`npm run gen\``).toBe(
        readFileSync(file, "utf8"),
      );
    }
  });

  it("carries doc comments from the schema into the generated code", () => {
    const everything = generateJob("test/schema", "test/gen").get(path.join(root, "test/gen/everything.ts"));
    expect(everything).toBeDefined();
    const text = everything as string;
    const methodDoc = "/** Adds `by` and answers the new value. */";
    // On the server interface's method and on the client stub's method.
    expect(text.split(methodDoc).length - 1).toBe(2);
    expect(text).toContain(
      "/**\n * A schema that exercises every construct the Parallax compiler plugin supports.\n" +
        " * The round-trip and reference cross-check tests build, serialize and read these types.\n */",
    );
    expect(text).toMatch(/\/\*\* Enumerants carry their ordinal\. \*\/\nexport const Color = \{/);
    expect(text).toMatch(/\/\*\* Radius\. \*\/\n\s+getCircle\(\)/);
    expect(text).toMatch(/\/\*\* A primitive constant\. \*\/\nexport const answer = 42;/);
    expect(text).toMatch(
      /\/\*\* A counter: the smallest interface with state\. \*\/\nexport class Counter extends \$\$\.Capability/,
    );
  });
});
