/**
 * Bearer secrets and their hashes. Formats (base64url without padding):
 * - API key:      `pxk_<id>_<32 random bytes>` — the id finds the record, the rest proves it;
 * - one-time pw:  `pxo_<24 random bytes>`;
 * - resume token: `pxr_<32 random bytes>`.
 * Invariant: the broker stores only `hashSecret(<the whole string>)`; secrets are compared only
 * as hashes, in constant time.
 *
 * Tests: test/cred/secrets.test.ts
 */
import { createHash, randomBytes as nodeRandomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode, ParallaxError } from "../errors.js";

export type SecretKind = "pxk" | "pxo" | "pxr";

const RANDOM_BYTES: Record<SecretKind, number> = { pxk: 32, pxo: 24, pxr: 32 };

/** `pxk_<decimal id, no leading zeros>_<43 base64url chars whose last char encodes 4 bits and two zeros>`. */
const API_KEY = /^pxk_(0|[1-9][0-9]{0,15})_([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$/;
const PLAIN: Record<"pxo" | "pxr", RegExp> = {
  pxo: /^pxo_[A-Za-z0-9_-]{32}$/,
  pxr: /^pxr_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/,
};

/** `n` cryptographically random bytes. */
export function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(n));
}

/** A fresh secret of `kind`; `id` (a non-negative safe integer) is required for API keys only. */
export function newSecret(kind: SecretKind, id?: number | bigint): string {
  const bytes = RANDOM_BYTES[kind];
  if (bytes === undefined)
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown secret kind ${String(kind)}`);
  const body = Buffer.from(randomBytes(bytes)).toString("base64url");
  if (kind !== "pxk") {
    if (id !== undefined) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a ${kind} secret has no id`);
    return `${kind}_${body}`;
  }
  const n = typeof id === "bigint" ? id : typeof id === "number" && Number.isInteger(id) ? BigInt(id) : -1n;
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `an API key id must be a non-negative safe integer; got ${String(id)}`,
    );
  }
  return `pxk_${n}_${body}`;
}

/** The id and random part of a well-formed API key, or undefined. Never throws. */
export function parseApiKey(s: string): { id: number; secret: string } | undefined {
  if (typeof s !== "string") return undefined;
  const m = API_KEY.exec(s);
  if (m === null) return undefined;
  const id = Number(m[1]);
  if (!Number.isSafeInteger(id)) return undefined;
  return { id, secret: m[2] as string };
}

/** Whether `s` has the exact format of a `pxo` or `pxr` secret. Never throws. */
export function hasSecretFormat(kind: "pxo" | "pxr", s: string): boolean {
  return typeof s === "string" && PLAIN[kind].test(s);
}

/** SHA-256 of the UTF-8 of `s`: what the broker stores for a secret. */
export function hashSecret(s: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(s, "utf8").digest());
}

/** Constant-time equality of two byte strings (false, quickly, when the lengths differ). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
