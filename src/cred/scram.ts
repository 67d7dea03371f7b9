/**
 * SCRAM (the RFC 5802 / RFC 7677 shape) with argon2id as the key-derivation function, as
 * WAMP-SCRAM does:
 *
 *   SaltedPassword  = argon2id(NFKC(password), salt, m, t, p)        (see kdf.ts)
 *   ClientKey       = HMAC-SHA256(SaltedPassword, "Client Key")
 *   StoredKey       = SHA-256(ClientKey)
 *   ServerKey       = HMAC-SHA256(SaltedPassword, "Server Key")
 *   ClientProof     = ClientKey XOR HMAC-SHA256(StoredKey, AuthMessage)
 *   ServerSignature = HMAC-SHA256(ServerKey, AuthMessage)
 *
 * Invariant: the server keeps only `StoredVerifier` (salt, params, StoredKey, ServerKey); it never
 * sees the password or SaltedPassword, and a stolen verifier does not let anyone log in without
 * first breaking the KDF. Comparisons of secret values are constant-time and the verify functions
 * return false on malformed input instead of throwing.
 *
 * Tests: test/cred/scram.test.ts, scram-vectors.test.ts
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { StoredVerifier } from "../store/broker-store.js";
import { checkSalt, KDF_DEFAULT, KDF_OUTPUT_BYTES, type Kdf, type KdfParams } from "./kdf.js";

export type { StoredVerifier };

/** The three keys SCRAM derives from SaltedPassword. */
export interface ScramKeys {
  readonly clientKey: Uint8Array;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
}

/** Everything both sides must agree on; both compute the same AuthMessage from it. */
export interface AuthMessageFields {
  readonly username: string;
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
  readonly salt: Uint8Array;
  readonly kdf: KdfParams;
}

export interface KeyLoginFields {
  readonly username: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly serverNonce: Uint8Array;
}

const KEY_BYTES = 32;
const FAKE_SALT_BYTES = 16;
const MIN_SERVER_SECRET_BYTES = 16;

function hmac(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

function equal32(a: Uint8Array, b: unknown): boolean {
  return b instanceof Uint8Array && a.length === KEY_BYTES && b.length === KEY_BYTES && timingSafeEqual(a, b);
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** RFC 5802 saslname: "=" becomes "=3D" and "," becomes "=2C". */
export function saslName(username: string): string {
  return username.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function checkSaltedPassword(saltedPassword: Uint8Array): void {
  if (!(saltedPassword instanceof Uint8Array) || saltedPassword.length !== KDF_OUTPUT_BYTES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `saltedPassword must be ${KDF_OUTPUT_BYTES} bytes`);
  }
}

/** ClientKey, StoredKey and ServerKey for a SaltedPassword. */
export function scramKeys(saltedPassword: Uint8Array): ScramKeys {
  checkSaltedPassword(saltedPassword);
  const clientKey = hmac(saltedPassword, "Client Key");
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(saltedPassword, "Server Key") };
}

/** The verifier the server stores for a SaltedPassword derived with `salt` and `kdf`. */
export function makeVerifier(saltedPassword: Uint8Array, salt: Uint8Array, kdf: KdfParams): StoredVerifier {
  checkSalt(salt);
  const { storedKey, serverKey } = scramKeys(saltedPassword);
  return { salt: salt.slice(), kdf: { ...kdf }, storedKey, serverKey };
}

/** Derives a verifier for `password`; a random 16-byte salt is drawn when none is given. */
export async function deriveVerifier(
  kdf: Kdf,
  password: string,
  params: KdfParams,
  salt: Uint8Array = new Uint8Array(randomBytes(16)),
): Promise<{ verifier: StoredVerifier; saltedPassword: Uint8Array }> {
  const saltedPassword = await kdf.derive(password, salt, params);
  return { verifier: makeVerifier(saltedPassword, salt, params), saltedPassword };
}

/**
 * The UTF-8 bytes of
 * `parallax-scram-v1,n=<saslname>,r=<b64 clientNonce>,s=<b64 salt>,m=<memoryKiB>,t=<iterations>,p=<parallelism>,sr=<b64 serverNonce>`
 * (standard base64 with padding). The KDF parameters are inside, so a server cannot lower them
 * unnoticed after the client has committed to its proof.
 */
export function authMessage(fields: AuthMessageFields): Uint8Array {
  const { username, clientNonce, serverNonce, salt, kdf } = fields;
  const text =
    `parallax-scram-v1,n=${saslName(username)},r=${b64(clientNonce)},s=${b64(salt)}` +
    `,m=${kdf.memoryKiB},t=${kdf.iterations},p=${kdf.parallelism},sr=${b64(serverNonce)}`;
  return new TextEncoder().encode(text);
}

/** Client: ClientKey XOR HMAC(StoredKey, AuthMessage). */
export function clientProof(saltedPassword: Uint8Array, authMsg: Uint8Array): Uint8Array {
  const { clientKey, storedKey } = scramKeys(saltedPassword);
  return xor(clientKey, hmac(storedKey, authMsg));
}

/** Client: whether the server proved it holds ServerKey. Constant-time; false for a malformed signature. */
export function verifyServerSignature(
  saltedPassword: Uint8Array,
  authMsg: Uint8Array,
  signature: Uint8Array,
): boolean {
  const { serverKey } = scramKeys(saltedPassword);
  return equal32(hmac(serverKey, authMsg), signature);
}

/**
 * Server: recovers ClientKey = proof XOR HMAC(StoredKey, AuthMessage) and checks that its SHA-256
 * is StoredKey. Constant-time; false (never a throw) for a proof of the wrong length or type.
 */
export function verifyClientProof(verifier: StoredVerifier, authMsg: Uint8Array, proof: Uint8Array): boolean {
  if (!(proof instanceof Uint8Array) || proof.length !== KEY_BYTES) return false;
  if (!(verifier.storedKey instanceof Uint8Array) || verifier.storedKey.length !== KEY_BYTES) return false;
  const clientKey = xor(proof, hmac(verifier.storedKey, authMsg));
  return equal32(sha256(clientKey), verifier.storedKey);
}

/** Server: HMAC(ServerKey, AuthMessage), which the client checks with `verifyServerSignature`. */
export function serverSignature(verifier: StoredVerifier, authMsg: Uint8Array): Uint8Array {
  return hmac(verifier.serverKey, authMsg);
}

/**
 * A verifier for a name that has none (unknown, or key-only), so that the challenge for it looks
 * like a real one: deterministic per (serverSecret, username), so repeated challenges agree, and
 * the same shape and lengths as a real verifier. No proof verifies against it. `kdf` must be the
 * parameters real verifiers get, or the challenge tells the names apart.
 */
export function fakeVerifier(
  serverSecret: Uint8Array,
  username: string,
  kdf: KdfParams = KDF_DEFAULT,
): StoredVerifier {
  if (!(serverSecret instanceof Uint8Array) || serverSecret.length < MIN_SERVER_SECRET_BYTES) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `serverSecret must be at least ${MIN_SERVER_SECRET_BYTES} bytes`,
    );
  }
  return {
    salt: hmac(serverSecret, `parallax-fake-salt:${username}`).slice(0, FAKE_SALT_BYTES),
    kdf: { ...kdf },
    storedKey: hmac(serverSecret, `parallax-fake-stored:${username}`),
    serverKey: hmac(serverSecret, `parallax-fake-server:${username}`),
  };
}

/**
 * The UTF-8 bytes a device signs with its Ed25519 key to log in:
 * `parallax-key-v1,n=<saslname>,k=<b64 publicKey>,sr=<b64 serverNonce>`.
 */
export function keyLoginMessage(fields: KeyLoginFields): Uint8Array {
  const { username, publicKey, serverNonce } = fields;
  return new TextEncoder().encode(
    `parallax-key-v1,n=${saslName(username)},k=${b64(publicKey)},sr=${b64(serverNonce)}`,
  );
}
