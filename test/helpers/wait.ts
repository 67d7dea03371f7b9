/**
 * Waiting on events in tests, never on the clock: `waitFor` polls an assertion until it holds
 * (vi.waitFor with the project's defaults), and `within` is the one failure detector for a
 * promise that would otherwise hang a test.
 */
import { vi } from "vitest";

/** How long `waitFor` keeps trying, and how often: generous for a loaded 2-core machine. */
export const WAIT_DEFAULTS = { timeout: 2000, interval: 5 } as const;

/** Retries `assertion` until it passes (or its promise resolves); fails with its last error. */
export function waitFor<T>(
  assertion: () => T | Promise<T>,
  options: { timeout?: number; interval?: number } = {},
): Promise<T> {
  return vi.waitFor(assertion, { ...WAIT_DEFAULTS, ...options });
}

/**
 * `promise`, or a failure naming `what` if it has not settled after `ms`. Not a wait: the test
 * goes on the moment `promise` settles; the timer only turns a hang into a clear failure.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
