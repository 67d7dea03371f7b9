/** The leak check every protocol test ends with: all four tables (and embargoes) back to empty. */
import { expect } from "vitest";
import type { ConnectionStats, RpcConnection } from "../../src/rpc/index.js";
import { waitFor } from "./wait.js";

/** The stats of a connection that holds nothing. */
export const EMPTY_STATS: ConnectionStats = Object.freeze({
  questions: 0,
  answers: 0,
  imports: 0,
  exports: 0,
  embargoes: 0,
});

/** Waits until every connection's tables are empty (releases and Finishes are asynchronous). */
export async function expectNoLeaks(...connections: RpcConnection[]): Promise<void> {
  await waitFor(() => {
    for (const c of connections) expect(c.stats()).toEqual(EMPTY_STATS);
  });
}
