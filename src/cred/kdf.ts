/**
 * The password key-derivation function behind SCRAM: argon2id, 32-byte output.
 *
 * Invariant: every derivation goes through `checkKdfParams` and `checkSalt`, so a stored
 * verifier or a server's challenge can never make either side derive below `KDF_FLOOR` or
 * above `KDF_CEILING` (a hostile server cannot make a client spend more than 1 GiB and 64 passes).
 * Browser-safe: no `node:` imports.
 *
 * Tests: test/cred/kdf.test.ts
 */
import { ErrorCode, ParallaxError } from "../errors.js";
import type { KdfParams } from "../store/broker-store.js";

export type { KdfParams };

/** Derives the 32-byte SaltedPassword from a password. */
export interface Kdf {
  readonly name: string;
  /** The password is NFKC-normalised, then UTF-8 encoded. Throws BAD_ARGUMENT on bad params or salt. */
  derive(password: string, salt: Uint8Array, params: KdfParams): Promise<Uint8Array>;
}

/** Output length of every derivation, in bytes. */
export const KDF_OUTPUT_BYTES = 32;

/** The weakest parameters accepted: OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane). */
export const KDF_FLOOR: KdfParams = Object.freeze({
  algorithm: "argon2id",
  memoryKiB: 19456,
  iterations: 2,
  parallelism: 1,
});

/** What new verifiers get. */
export const KDF_DEFAULT: KdfParams = KDF_FLOOR;

/** The strongest parameters accepted: 1 GiB, 64 passes, 16 lanes. */
export const KDF_CEILING: KdfParams = Object.freeze({
  algorithm: "argon2id",
  memoryKiB: 1048576,
  iterations: 64,
  parallelism: 16,
});

export const MIN_SALT_BYTES = 16;
export const MAX_SALT_BYTES = 64;

function badKdf(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, `kdf.${message}`);
}

function checkRange(field: "memoryKiB" | "iterations" | "parallelism", value: unknown): void {
  const min = KDF_FLOOR[field];
  const max = KDF_CEILING[field];
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw badKdf(`${field} must be an integer; got ${String(value)}`);
  }
  if (value < min) throw badKdf(`${field} must be at least ${min}; got ${value}`);
  if (value > max) throw badKdf(`${field} must be at most ${max}; got ${value}`);
}

/** Throws BAD_ARGUMENT naming the field, its value and the bound it breaks. */
export function checkKdfParams(p: KdfParams): void {
  if (typeof p !== "object" || p === null) throw badKdf(`params must be an object; got ${String(p)}`);
  if (p.algorithm !== "argon2id") {
    throw badKdf(`algorithm must be "argon2id"; got ${JSON.stringify(p.algorithm) ?? String(p.algorithm)}`);
  }
  checkRange("memoryKiB", p.memoryKiB);
  checkRange("iterations", p.iterations);
  checkRange("parallelism", p.parallelism);
  // Argon2's own minimum; implied by the floor today, kept in case the floor is lowered.
  if (p.memoryKiB < 8 * p.parallelism) {
    throw badKdf(`memoryKiB must be at least 8 × parallelism = ${8 * p.parallelism}; got ${p.memoryKiB}`);
  }
}

/** Throws BAD_ARGUMENT unless `salt` is a Uint8Array of 16 to 64 bytes. */
export function checkSalt(salt: Uint8Array): void {
  if (!(salt instanceof Uint8Array)) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "salt must be bytes");
  if (salt.length < MIN_SALT_BYTES || salt.length > MAX_SALT_BYTES) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `salt must be ${MIN_SALT_BYTES} to ${MAX_SALT_BYTES} bytes; got ${salt.length}`,
    );
  }
}

const utf8 = new TextEncoder();

/** The bytes a Kdf hashes for `password`: UTF-8 of its NFKC form. */
export function passwordBytes(password: string): Uint8Array {
  if (typeof password !== "string")
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "password must be a string");
  return utf8.encode(password.normalize("NFKC"));
}

/**
 * `kdf` remembering its last `maxEntries` results, keyed by (password, salt, parameters): the
 * wallet client derives the same SaltedPassword for its login and its keys, and tests derive
 * each (password, salt) once. Each caller gets its own copy of the bytes. Keep `maxEntries`
 * small outside tests: the cache holds SaltedPasswords in memory.
 */
export function memoizeKdf(kdf: Kdf, maxEntries = 1): Kdf {
  const cache = new Map<string, Promise<Uint8Array>>();
  return {
    name: kdf.name,
    async derive(password: string, salt: Uint8Array, params: KdfParams): Promise<Uint8Array> {
      const key = JSON.stringify([
        password,
        Array.from(salt),
        params.memoryKiB,
        params.iterations,
        params.parallelism,
      ]);
      let v = cache.get(key);
      if (v === undefined) {
        v = kdf.derive(password, salt, params);
        cache.set(key, v);
        v.catch(() => cache.delete(key));
        while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
      }
      return (await v).slice();
    },
  };
}
