/**
 * Keyrings: the (service, perspective) pairs a login may attach.
 *
 * Invariants: a keyring read from the wire is bounded (`MAX_KEYRING_ENTRIES`), has no duplicate
 * pair, and its names are in their one stored form (NFKC, no padding or invisible characters);
 * `onKeyring` compares those forms exactly.
 *
 * Tests: test/login/identity.test.ts, test/login/authority.test.ts
 */
import type * as $ from "capnp-ts";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { KeyringPair } from "../store/index.js";
import type { KeyringEntry } from "../wire/gen/broker.js";

/** The keyring pair that makes an identity an admin. */
export const ADMIN_PAIR: KeyringPair = Object.freeze({ service: "broker", perspective: "admin" });

export const MAX_KEYRING_ENTRIES = 256;
const MAX_PAIR_NAME_CHARS = 64;

/** Is `pair` on `keyring`? */
export function onKeyring(keyring: readonly KeyringPair[], pair: KeyringPair): boolean {
  return keyring.some((k) => k.service === pair.service && k.perspective === pair.perspective);
}

/** `keyring` narrowed to the pairs also on `owner` (an attenuated grant never exceeds its owner). */
export function intersectKeyring(
  keyring: readonly KeyringPair[],
  owner: readonly KeyringPair[],
): KeyringPair[] {
  return keyring.filter((k) => onKeyring(owner, k));
}

/** A service or perspective name in its stored form; BAD_ARGUMENT for an empty, long or odd one. */
export function pairName(name: string): string {
  const n = name.normalize("NFKC");
  if (n.length === 0 || n.length > MAX_PAIR_NAME_CHARS || n.trim() !== n || /[\p{C}\p{Z}]/u.test(n)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a service or perspective name has 1 to ${MAX_PAIR_NAME_CHARS} visible characters and no spaces`,
    );
  }
  return n;
}

/** A keyring from the wire, bounded, normalised and without duplicates. */
export function readKeyring(list: $.List<KeyringEntry>): KeyringPair[] {
  if (list.getLength() > MAX_KEYRING_ENTRIES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a keyring has at most ${MAX_KEYRING_ENTRIES} entries`);
  }
  const out: KeyringPair[] = [];
  for (const e of list.toArray()) {
    const pair = { service: pairName(e.service), perspective: pairName(e.perspective) };
    if (!onKeyring(out, pair)) out.push(pair);
  }
  return out;
}
