/**
 * How every demo reports its steps and ends: `Steps` numbers and prints each step's verdict,
 * `runStory` runs a demo's story, closes what it opened and gives the verdict on the whole run.
 * Not a demo itself; the demos import it next to the public API.
 *
 * Invariants:
 * - A step prints exactly one numbered line, `✔ N. what happened` — or `✘ N. what happened` and
 *   `     expected: …` beneath it. Steps are numbered 1, 2, 3, … in the order they are reported.
 * - An unexpected error is a failed step of its own (`unexpected error: <stack>`), so a run that
 *   stopped early never ends with "all N steps behaved …".
 * - `cleanUp` runs once, after the story, whether it finished or threw.
 * - Exit code 0 only if no step failed; after that the process must end by itself within 5 s,
 *   or it says that something still holds it open and exits 1.
 *
 * Tests: test/demos/*.test.ts run each demo as a user would and pin its lines.
 */
import { type ErrorCode, ParallaxError } from "../src/index.js";

/** What a call that should fail did: its ParallaxError, or a description of what went wrong. */
export async function failure(call: PromiseLike<unknown>): Promise<ParallaxError | string> {
  try {
    await call;
    return "it succeeded";
  } catch (err) {
    return err instanceof ParallaxError ? err : `it failed with ${String(err)}`;
  }
}

/** The error code of what `failure` answered, or its description when it was no ParallaxError. */
export const codeOf = (e: ParallaxError | string): string => (typeof e === "string" ? e : e.code);

/** The numbered steps of one demo run, and how many of them failed. */
export class Steps {
  #count = 0;
  #failures = 0;

  /** Steps reported so far. */
  get count(): number {
    return this.#count;
  }

  /** Steps that did not behave as described. */
  get failures(): number {
    return this.#failures;
  }

  /** Prints one step: what happened, and when that is not what was described, what was expected. */
  report(ok: boolean, happened: string, expected: string): void {
    this.#count++;
    if (ok) {
      console.log(`✔ ${this.#count}. ${happened}`);
    } else {
      this.#failures++;
      console.log(`✘ ${this.#count}. ${happened}`);
      console.log(`     expected: ${expected}`);
    }
  }

  /** Reports a step that must fail with `code`. */
  async expectFailure(call: PromiseLike<unknown>, code: ErrorCode, said: string): Promise<void> {
    const err = await failure(call);
    if (typeof err === "string") this.report(false, `${said}? No: ${err}`, `it fails with ${code}`);
    else if (err.code === code) this.report(true, `${said}: ${err.code}`, "");
    else this.report(false, `${said}? No: ${err.code}: ${err.message}`, `it fails with ${code}`);
  }
}

export interface StoryOptions {
  /** How the closing line words the verdict: "as described" unless the demo has its own measure. */
  readonly summary?: string;
  /** Whether a blank line separates the closing line from the last step. */
  readonly blankLine?: boolean;
}

/**
 * Runs `story`, reporting an error it throws as a failed step, then `cleanUp` (which must close
 * everything the story opened), prints the verdict, sets the exit code and lets the process end
 * by itself — saying so, and exiting 1, if something still holds it open 5 s later.
 */
export async function runStory(
  steps: Steps,
  story: () => Promise<void>,
  cleanUp: () => Promise<void>,
  { summary = "as described", blankLine = false }: StoryOptions = {},
): Promise<void> {
  try {
    await story();
  } catch (err) {
    steps.report(
      false,
      `unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      "no unexpected errors",
    );
  } finally {
    await cleanUp();
  }
  const gap = blankLine ? "\n" : "";
  if (steps.failures === 0) console.log(`${gap}all ${steps.count} steps behaved ${summary}`);
  else console.log(`${gap}${steps.failures} of ${steps.count} steps did not behave ${summary}`);
  process.exitCode = steps.failures === 0 ? 0 : 1;
  setTimeout(() => {
    console.log("✘ the process did not exit: something still holds it open");
    process.exit(1);
  }, 5000).unref();
}
