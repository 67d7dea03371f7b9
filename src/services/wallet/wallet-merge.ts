/**
 * The wallet's content, and the three-way merge a client runs when the server holds a newer
 * wallet than the one it last synced (seed 000, "Merging Changes").
 *
 * A wallet is `{ preferences: Record<string, string> }`, stored as JSON (keys sorted), encrypted on
 * the client. The merge base is the last wallet this client synced (got from or pushed to the
 * server): the last version both sides share.
 *
 * Merge rules, key by key (a missing key is a deleted preference):
 * - unchanged on both sides, or changed the same way on both: that value;
 * - changed on one side only: that side's value (so divergent edits of different keys combine);
 * - changed on both sides to different values: a conflict, decided by the `resolve` callback
 *   `(key, base, local, remote) => value | undefined` (undefined deletes the key).
 *   The default, `localWins`, keeps the local value: it is the user's latest intent on this device,
 *   the change they just made and have not pushed yet. Pass `remoteWins` (or your own callback,
 *   e.g. one that asks the user) to decide otherwise.
 *
 * Invariants: the inputs are never modified; results are fresh objects built with own properties
 * only (a key named `__proto__` is an ordinary key); decoding refuses anything that is not exactly
 * a wallet (PARALLAX_ERR_BAD_ARGUMENT), so a wallet that does not parse is never half-merged.
 *
 * Tests: test/services/wallet/wallet-client.test.ts, wallet-story.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";

export interface Wallet {
  readonly preferences: Readonly<Record<string, string>>;
}

/** Decides one key changed on both sides to different values; `undefined` deletes it. */
export type ConflictResolver = (
  key: string,
  base: string | undefined,
  local: string | undefined,
  remote: string | undefined,
) => string | undefined;

/** The default: the local value (the user's latest intent on this device). */
export const localWins: ConflictResolver = (_key, _base, local) => local;

/** The remote value (what another device pushed first). */
export const remoteWins: ConflictResolver = (_key, _base, _local, remote) => remote;

export interface MergeResult {
  readonly wallet: Wallet;
  /** Keys changed on both sides to different values, which `resolve` decided; sorted. */
  readonly conflicts: readonly string[];
}

/** An empty wallet: what `initWalletState` starts with. */
export function emptyWallet(): Wallet {
  return { preferences: {} };
}

function get(record: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Three-way merge of `local` and `remote` against their common `base`. */
export function mergeWallets(
  base: Wallet,
  local: Wallet,
  remote: Wallet,
  resolve: ConflictResolver = localWins,
): MergeResult {
  const keys = new Set([
    ...Object.keys(base.preferences),
    ...Object.keys(local.preferences),
    ...Object.keys(remote.preferences),
  ]);
  const entries: [string, string][] = [];
  const conflicts: string[] = [];
  for (const key of [...keys].sort()) {
    const b = get(base.preferences, key);
    const l = get(local.preferences, key);
    const r = get(remote.preferences, key);
    let value: string | undefined;
    if (l === r) value = l;
    else if (l === b) value = r;
    else if (r === b) value = l;
    else {
      conflicts.push(key);
      value = resolve(key, b, l, r);
      if (value !== undefined && typeof value !== "string") {
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          `the conflict callback answered a ${typeof value} for "${key}"; a preference is a string`,
        );
      }
    }
    if (value !== undefined) entries.push([key, value]);
  }
  return { wallet: { preferences: Object.fromEntries(entries) }, conflicts };
}

/** Whether two wallets hold the same preferences. */
export function walletsEqual(a: Wallet, b: Wallet): boolean {
  const ka = Object.keys(a.preferences);
  if (ka.length !== Object.keys(b.preferences).length) return false;
  return ka.every((k) => Object.hasOwn(b.preferences, k) && b.preferences[k] === a.preferences[k]);
}

/** A copy of `wallet` with `key` set to `value`. */
export function withPreference(wallet: Wallet, key: string, value: string): Wallet {
  if (typeof key !== "string" || typeof value !== "string") {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a preference's key and value are strings");
  }
  const entries = Object.entries(wallet.preferences).filter(([k]) => k !== key);
  entries.push([key, value]);
  return { preferences: Object.fromEntries(entries) };
}

/** The wallet's JSON (keys sorted, so equal wallets encode equally), as UTF-8. */
export function encodeWallet(wallet: Wallet): Uint8Array {
  const sorted = Object.keys(wallet.preferences)
    .sort()
    .map((k) => [k, wallet.preferences[k]] as const);
  const prefs = `{${sorted.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`;
  return new TextEncoder().encode(`{"preferences":${prefs}}`);
}

/** Parses `encodeWallet`'s output; anything else fails with PARALLAX_ERR_BAD_ARGUMENT. */
export function decodeWallet(bytes: Uint8Array): Wallet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "the wallet is not UTF-8 JSON");
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(parsed) || Object.keys(parsed).length !== 1 || !isObject(parsed.preferences)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      'the wallet must be {"preferences": {...}} and nothing else',
    );
  }
  const entries = Object.entries(parsed.preferences);
  for (const [k, v] of entries) {
    if (typeof v !== "string") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `the wallet's preference "${k}" is not a string`);
    }
  }
  return { preferences: Object.fromEntries(entries as [string, string][]) };
}
