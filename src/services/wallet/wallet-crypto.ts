/**
 * The wallet's client-side cryptography (seed 000): what a client does to a wallet before the
 * server ever sees it.
 *
 *   EncryptionKey = HKDF-SHA256(ikm = SaltedPassword, salt = SCRAM salt, info = "parallax wallet encryption v1")
 *   HmacKey       = HKDF-SHA256(ikm = SaltedPassword, salt = SCRAM salt, info = "parallax wallet hmac v1")
 *   encrypted     = iv (12 random bytes) || AES-256-GCM(EncryptionKey, iv, plaintext) || tag (16 bytes)
 *   hmac          = HMAC-SHA256(HmacKey, uint64-big-endian(sequence) || encrypted)
 *
 * Invariants:
 * - Both keys come from SaltedPassword (argon2id of the password), which never leaves the client.
 *   The server stores StoredKey = SHA-256(HMAC(SP, "Client Key")) and ServerKey =
 *   HMAC(SP, "Server Key"); HKDF's extract step is HMAC(salt, SP), a different function of SP, so
 *   neither key can be computed from what the server holds, and neither key reveals the other.
 * - A changed password (new salt, new SaltedPassword) gives new, unrelated keys.
 * - Decryption fails (PARALLAX_ERR_BAD_ARGUMENT) on any change to the iv, ciphertext or tag; the
 *   hmac binds the sequence, so a ciphertext replayed under another sequence does not verify.
 *   Hmac comparison is constant-time.
 *
 * Tests: test/services/wallet/wallet-crypto.test.ts
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { ErrorCode, ParallaxError } from "../../errors.js";

export const WALLET_KEY_BYTES = 32;
export const WALLET_IV_BYTES = 12;
export const WALLET_TAG_BYTES = 16;
export const WALLET_HMAC_BYTES = 32;

const ENCRYPTION_INFO = "parallax wallet encryption v1";
const HMAC_INFO = "parallax wallet hmac v1";

/** The two keys a client derives for its wallet. Keep them in memory only. */
export interface WalletKeys {
  readonly encryptionKey: Uint8Array;
  readonly hmacKey: Uint8Array;
}

function checkKey(what: string, key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== WALLET_KEY_BYTES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} must be ${WALLET_KEY_BYTES} bytes`);
  }
}

function hkdf(saltedPassword: Uint8Array, salt: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", saltedPassword, salt, info, WALLET_KEY_BYTES));
}

/** The wallet keys of a SaltedPassword and the SCRAM salt it was derived with. */
export function deriveWalletKeys(saltedPassword: Uint8Array, salt: Uint8Array): WalletKeys {
  if (!(saltedPassword instanceof Uint8Array) || saltedPassword.length < 16) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "saltedPassword must be at least 16 bytes");
  }
  if (!(salt instanceof Uint8Array) || salt.length === 0) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "the salt must be a non-empty byte string");
  }
  return {
    encryptionKey: hkdf(saltedPassword, salt, ENCRYPTION_INFO),
    hmacKey: hkdf(saltedPassword, salt, HMAC_INFO),
  };
}

/** AES-256-GCM with a fresh random iv: `iv || ciphertext || tag`. */
export function encryptWallet(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  checkKey("the encryption key", key);
  const iv = randomBytes(WALLET_IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([iv, body, cipher.getAuthTag()]));
}

/**
 * The plaintext of `encryptWallet`'s output. Fails with PARALLAX_ERR_BAD_ARGUMENT ("wallet cannot
 * be decrypted: wrong password or tampered") if it was made with another key or changed since.
 */
export function decryptWallet(key: Uint8Array, encrypted: Uint8Array): Uint8Array {
  checkKey("the encryption key", key);
  if (!(encrypted instanceof Uint8Array) || encrypted.length < WALLET_IV_BYTES + WALLET_TAG_BYTES) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `wallet cannot be decrypted: it is ${encrypted?.length ?? 0} bytes, shorter than an iv and a tag`,
    );
  }
  const iv = encrypted.subarray(0, WALLET_IV_BYTES);
  const tag = encrypted.subarray(encrypted.length - WALLET_TAG_BYTES);
  const body = encrypted.subarray(WALLET_IV_BYTES, encrypted.length - WALLET_TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "wallet cannot be decrypted: wrong password or tampered");
  }
}

function sequenceBytes(sequence: number | bigint): Buffer {
  if (typeof sequence === "number" && !Number.isSafeInteger(sequence)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a wallet sequence must be a whole number, not ${sequence}`,
    );
  }
  const s = typeof sequence === "bigint" ? sequence : BigInt(sequence);
  if (s < 0n || s > 0xffff_ffff_ffff_ffffn) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a wallet sequence must fit 64 unsigned bits, not ${s}`);
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(s);
  return out;
}

/** HMAC-SHA256 over the 8-byte big-endian sequence, then the encrypted wallet. */
export function walletHmac(
  hmacKey: Uint8Array,
  sequence: number | bigint,
  encryptedWallet: Uint8Array,
): Uint8Array {
  checkKey("the hmac key", hmacKey);
  return new Uint8Array(
    createHmac("sha256", hmacKey).update(sequenceBytes(sequence)).update(encryptedWallet).digest(),
  );
}

/** Whether `hmac` is `walletHmac(hmacKey, sequence, encryptedWallet)`; constant-time, never throws on bad input. */
export function verifyWalletHmac(
  hmacKey: Uint8Array,
  sequence: number | bigint,
  encryptedWallet: Uint8Array,
  hmac: Uint8Array,
): boolean {
  if (!(hmac instanceof Uint8Array) || hmac.length !== WALLET_HMAC_BYTES) return false;
  let expected: Uint8Array;
  try {
    expected = walletHmac(hmacKey, sequence, encryptedWallet);
  } catch {
    return false;
  }
  return timingSafeEqual(expected, hmac);
}
