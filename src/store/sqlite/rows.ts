/**
 * Row shapes, converters and structural checks shared by the SQLite repositories.
 *
 * Invariants:
 * - Keyrings come back without duplicates, sorted by service, then perspective; byte strings
 *   come back as plain `Uint8Array` copies, never the driver's `Buffer`s.
 * - The `assert*Shape` checks are structural backstops (BAD_ARGUMENT), not policy: the cred layer
 *   decides what a good key or verifier is; these only keep malformed rows out of the file.
 *
 * Tests: test/store/identities.test.ts, credentials.test.ts, pending.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type { KeyringPair, StoredVerifier } from "../broker-store.js";

/** Ed25519 public keys are this long. */
const PUBLIC_KEY_BYTES = 32;

/** The verifier columns shared by `identities` and `pending`. */
export interface VerifierRow {
  salt: Buffer | null;
  stored_key: Buffer | null;
  server_key: Buffer | null;
  kdf_algorithm: string | null;
  kdf_memory_kib: number | null;
  kdf_iterations: number | null;
  kdf_parallelism: number | null;
}

/** The verifier as named parameters for the shared verifier columns. */
export interface VerifierParams {
  salt: Uint8Array | null;
  stored_key: Uint8Array | null;
  server_key: Uint8Array | null;
  kdf_algorithm: string | null;
  kdf_memory_kib: number | null;
  kdf_iterations: number | null;
  kdf_parallelism: number | null;
}

export const VERIFIER_INSERT_COLUMNS =
  "salt, stored_key, server_key, kdf_algorithm, kdf_memory_kib, kdf_iterations, kdf_parallelism";
export const VERIFIER_INSERT_VALUES =
  "@salt, @stored_key, @server_key, @kdf_algorithm, @kdf_memory_kib, @kdf_iterations, @kdf_parallelism";

/** A keyring pair as selected from `keyrings` or `api_key_keyrings`, with its owner's id. */
export interface PairRow {
  owner: number;
  service: string;
  perspective: string;
}

export function noIdentity(id: number): ParallaxError {
  return new ParallaxError(ErrorCode.NOT_FOUND, `no identity with id ${id}`);
}

/** A plain `Uint8Array` copy of a driver `Buffer`. */
export function bytes(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf);
}

export function assertPublicKeyShape(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== PUBLIC_KEY_BYTES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a public key must be ${PUBLIC_KEY_BYTES} bytes`);
  }
}

export function assertVerifierShape(v: StoredVerifier): StoredVerifier {
  const { kdf } = v;
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (
    kdf.algorithm !== "argon2id" ||
    !positive(kdf.memoryKiB) ||
    !positive(kdf.iterations) ||
    !positive(kdf.parallelism) ||
    !(v.salt instanceof Uint8Array && v.storedKey instanceof Uint8Array && v.serverKey instanceof Uint8Array)
  ) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      "a verifier needs argon2id parameters and three byte strings",
    );
  }
  return v;
}

/** Validates a keyring and returns it without duplicates, sorted by service then perspective. */
export function checkKeyring(keyring: readonly KeyringPair[]): KeyringPair[] {
  const seen = new Map<string, KeyringPair>();
  for (const p of keyring) {
    if (typeof p?.service !== "string" || typeof p.perspective !== "string") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a keyring pair needs a service and a perspective");
    }
    seen.set(pairKey(p), { service: p.service, perspective: p.perspective });
  }
  return [...seen.values()].sort(comparePairs);
}

function comparePairs(a: KeyringPair, b: KeyringPair): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  if (a.perspective !== b.perspective) return a.perspective < b.perspective ? -1 : 1;
  return 0;
}

export function pairKey(p: KeyringPair): string {
  return JSON.stringify([p.service, p.perspective]);
}

/** Plain keyring pairs from rows (or pairs), in the given order. */
export function toPairs(keyring: readonly (KeyringPair | PairRow)[]): KeyringPair[] {
  return keyring.map((p) => ({ service: p.service, perspective: p.perspective }));
}

/** Pair rows grouped by owner, each group in row order. */
export function groupPairs(rows: readonly PairRow[]): Map<number, KeyringPair[]> {
  const out = new Map<number, KeyringPair[]>();
  for (const r of rows) {
    const pair = { service: r.service, perspective: r.perspective };
    const list = out.get(r.owner);
    if (list) list.push(pair);
    else out.set(r.owner, [pair]);
  }
  return out;
}

export function verifierParams(v: StoredVerifier | null): VerifierParams {
  return {
    salt: v?.salt ?? null,
    stored_key: v?.storedKey ?? null,
    server_key: v?.serverKey ?? null,
    kdf_algorithm: v?.kdf.algorithm ?? null,
    kdf_memory_kib: v?.kdf.memoryKiB ?? null,
    kdf_iterations: v?.kdf.iterations ?? null,
    kdf_parallelism: v?.kdf.parallelism ?? null,
  };
}

export function toVerifier(row: VerifierRow): StoredVerifier | null {
  if (row.salt === null || row.stored_key === null || row.server_key === null) return null;
  if (row.kdf_algorithm !== "argon2id") {
    throw new ParallaxError(
      ErrorCode.STORAGE,
      `a stored verifier uses an unknown kdf (${row.kdf_algorithm})`,
    );
  }
  return {
    salt: bytes(row.salt),
    storedKey: bytes(row.stored_key),
    serverKey: bytes(row.server_key),
    kdf: {
      algorithm: "argon2id",
      memoryKiB: row.kdf_memory_kib as number,
      iterations: row.kdf_iterations as number,
      parallelism: row.kdf_parallelism as number,
    },
  };
}
