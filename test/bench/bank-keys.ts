/**
 * The bank bench's users and their Ed25519 keys, derived from their names so that the server
 * process (which registers the public keys) and the client process (which logs in with the
 * private ones) agree without exchanging anything. Bench use only: anyone can derive these keys.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";

/** Customers of the bank rows: each pays on its own connection. */
export const BANK_PAYERS = 100;
export const TELLER = "bench-teller";
export const MERCHANT = "bench-merchant";
export const payerName = (i: number): string => `bench-payer-${i}`;

/** DER PKCS#8 header of an Ed25519 private key (RFC 8410); the 32-byte seed follows it. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** DER SubjectPublicKeyInfo header of an Ed25519 public key; the raw 32 bytes follow it. */
const SPKI_PREFIX_BYTES = 12;

export function benchKey(name: string): { publicKey: Uint8Array; privateKey: KeyObject } {
  const seed = createHash("sha256").update(`parallax bench key ${name}`).digest();
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX_BYTES)), privateKey };
}
