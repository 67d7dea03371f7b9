/**
 * Ed25519 for key logins. Public keys travel as their raw 32 bytes; signatures are 64 bytes.
 * Invariant: `verifyEd25519` never throws — any malformed key, message or signature is `false`.
 *
 * Tests: test/cred/ed25519.test.ts
 */
import { type KeyObject, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { ErrorCode, ParallaxError } from "../errors.js";

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/** DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410); the raw key follows it. */
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function keyObject(publicKey: Uint8Array): KeyObject {
  const der = new Uint8Array(SPKI_PREFIX.length + ED25519_PUBLIC_KEY_BYTES);
  der.set(SPKI_PREFIX);
  der.set(publicKey, SPKI_PREFIX.length);
  return createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
}

/** Throws BAD_ARGUMENT unless `bytes` is a 32-byte Ed25519 public key that parses. */
export function checkPublicKey(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== ED25519_PUBLIC_KEY_BYTES) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `an Ed25519 public key must be ${ED25519_PUBLIC_KEY_BYTES} bytes; got ${got}`,
    );
  }
  try {
    keyObject(bytes);
  } catch (cause) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "not an Ed25519 public key", { cause });
  }
}

/** Whether `signature` is `publicKey`'s signature of `message`. False on any malformed input. */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  if (!(message instanceof Uint8Array)) return false;
  try {
    return verify(null, message, keyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** A new key pair; the public key as raw bytes (what the broker stores), the private key as a KeyObject. */
export function generateEd25519(): { publicKey: Uint8Array; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const der = publicKey.export({ format: "der", type: "spki" });
  return { publicKey: new Uint8Array(der.subarray(SPKI_PREFIX.length)), privateKey };
}

/** The 64-byte signature of `message`. */
export function signEd25519(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKey));
}
