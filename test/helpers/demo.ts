/** Running a demo as a user would (`tsx demos/<name>.ts` in its own process) and reading what it printed. */
import { spawn } from "node:child_process";
import path from "node:path";
import { expect } from "vitest";

const repoRoot = path.resolve(import.meta.dirname, "../..");

/** Runs `demos/<file>` to its end: its exit code and everything it printed. */
export function runDemo(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join("demos", file)], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** `fragments` must appear in `text` in this order. */
export function expectInOrder(text: string, fragments: readonly string[]): void {
  let at = 0;
  for (const f of fragments) {
    const i = text.indexOf(f, at);
    expect(i, `"${f}" after position ${at}`).toBeGreaterThanOrEqual(0);
    at = i + f.length;
  }
}
