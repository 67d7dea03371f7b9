/** Asserting on failures: the ParallaxError a call or promise rejects with. */
import { expect } from "vitest";
import { ParallaxError } from "../../src/errors.js";

/** The ParallaxError a call or promise fails with (the test fails if it succeeds or throws anything else). */
export async function rejection(p: PromiseLike<unknown>): Promise<ParallaxError> {
  const err = await Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ParallaxError);
  return err as ParallaxError;
}
