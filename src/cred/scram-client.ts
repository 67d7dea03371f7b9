/**
 * The client half of SCRAM (see scram.ts for the construction) on WebCrypto, for browsers and for
 * Node (which has the same `globalThis.crypto`): async HMAC-SHA-256 and SHA-256 through
 * `crypto.subtle`, random bytes through `crypto.getRandomValues`, Ed25519 key logins through
 * `crypto.subtle` where the platform has it. Browser-safe: no `node:` imports and no `Buffer`.
 *
 * Invariants: the AuthMessage and key-login message bytes are exactly those of scram.ts (the
 * server checks proofs against its own); `verifyServerSignature` compares in constant time and is
 * false, never a throw, for a signature of the wrong type or length. Without WebCrypto (an
 * insecure http page that is not localhost has no `crypto.subtle`) every function here fails with
 * PARALLAX_ERR_UNIMPLEMENTED saying so.
 *
 * Tests: test/cred/scram-client.test.ts (against scram.ts and test/cred/scram-vectors.json)
 */
import { ErrorCode, ParallaxError } from "../errors.js";
import type { StoredVerifier } from "../store/broker-store.js";
import { checkSalt, KDF_DEFAULT, KDF_OUTPUT_BYTES, type Kdf, type KdfParams } from "./kdf.js";

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

/** A WebCrypto `CryptoKey`, as far as this module needs one (no DOM types in this build). */
export interface WebCryptoKey {
  readonly type: string;
  readonly algorithm: { readonly name: string };
  readonly extractable: boolean;
}

/** An Ed25519 key pair held by WebCrypto; the public key as its raw 32 bytes (what the broker stores). */
export interface WebEd25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: WebCryptoKey;
}

type Bytes = Uint8Array<ArrayBuffer>;

/** The part of WebCrypto's `SubtleCrypto` used here. */
interface Subtle {
  importKey(
    format: "raw",
    key: Bytes,
    algorithm: { name: "HMAC"; hash: "SHA-256" },
    extractable: false,
    usages: ["sign"],
  ): Promise<WebCryptoKey>;
  sign(algorithm: "HMAC" | { name: "Ed25519" }, key: WebCryptoKey, data: Bytes): Promise<ArrayBuffer>;
  digest(algorithm: "SHA-256", data: Bytes): Promise<ArrayBuffer>;
  generateKey(
    algorithm: { name: "Ed25519" },
    extractable: false,
    usages: ["sign", "verify"],
  ): Promise<{ publicKey: WebCryptoKey; privateKey: WebCryptoKey }>;
  exportKey(format: "raw", key: WebCryptoKey): Promise<ArrayBuffer>;
}

interface WebCrypto {
  readonly subtle: Subtle;
  getRandomValues(array: Bytes): Bytes;
}

const KEY_BYTES = 32;
const SALT_BYTES = 16;
const ED25519 = { name: "Ed25519" } as const;
const utf8 = new TextEncoder();

/** `globalThis.crypto`, or UNIMPLEMENTED naming what is missing. */
function webCrypto(): WebCrypto {
  const c = (globalThis as { crypto?: WebCrypto }).crypto;
  if (c?.subtle === undefined || typeof c.getRandomValues !== "function") {
    throw new ParallaxError(
      ErrorCode.UNIMPLEMENTED,
      "WebCrypto (crypto.subtle) is not available here; browsers offer it only to secure contexts (https, or http on localhost)",
    );
  }
  return c;
}

/** A copy of `b` on its own ArrayBuffer, as WebCrypto's BufferSource wants. */
function own(b: Uint8Array): Bytes {
  const out = new Uint8Array(b.length);
  out.set(b);
  return out;
}

async function hmac(key: Uint8Array, data: Uint8Array | string): Promise<Uint8Array> {
  const { subtle } = webCrypto();
  const k = await subtle.importKey("raw", own(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const bytes = typeof data === "string" ? utf8.encode(data) : own(data);
  return new Uint8Array(await subtle.sign("HMAC", k, bytes));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await webCrypto().subtle.digest("SHA-256", own(data)));
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Constant-time equality of two byte strings (false, quickly, when the lengths or types differ). */
export function constantTimeEqual(a: Uint8Array, b: unknown): boolean {
  if (!(b instanceof Uint8Array) || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding (RFC 4648 §4). */
export function base64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out += `${B64[n >>> 18]}${B64[(n >>> 12) & 63]}${B64[(n >>> 6) & 63]}${B64[n & 63]}`;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += `${B64[n >>> 18]}${B64[(n >>> 12) & 63]}==`;
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += `${B64[n >>> 18]}${B64[(n >>> 12) & 63]}${B64[(n >>> 6) & 63]}=`;
  }
  return out;
}

/** `n` cryptographically random bytes (n ≤ 65 536, WebCrypto's limit per draw). */
export function randomBytes(n: number): Uint8Array {
  return webCrypto().getRandomValues(new Uint8Array(n));
}

/** RFC 5802 saslname: "=" becomes "=3D" and "," becomes "=2C". */
export function saslName(username: string): string {
  return username.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/**
 * The UTF-8 bytes of
 * `parallax-scram-v1,n=<saslname>,r=<b64 clientNonce>,s=<b64 salt>,m=<memoryKiB>,t=<iterations>,p=<parallelism>,sr=<b64 serverNonce>`,
 * byte for byte what scram.ts's `authMessage` gives.
 */
export function authMessage(fields: AuthMessageFields): Uint8Array {
  const { username, clientNonce, serverNonce, salt, kdf } = fields;
  return utf8.encode(
    `parallax-scram-v1,n=${saslName(username)},r=${base64(clientNonce)},s=${base64(salt)}` +
      `,m=${kdf.memoryKiB},t=${kdf.iterations},p=${kdf.parallelism},sr=${base64(serverNonce)}`,
  );
}

/** `parallax-key-v1,n=<saslname>,k=<b64 publicKey>,sr=<b64 serverNonce>`, as scram.ts's `keyLoginMessage`. */
export function keyLoginMessage(fields: KeyLoginFields): Uint8Array {
  const { username, publicKey, serverNonce } = fields;
  return utf8.encode(
    `parallax-key-v1,n=${saslName(username)},k=${base64(publicKey)},sr=${base64(serverNonce)}`,
  );
}

function checkSaltedPassword(saltedPassword: Uint8Array): void {
  if (!(saltedPassword instanceof Uint8Array) || saltedPassword.length !== KDF_OUTPUT_BYTES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `saltedPassword must be ${KDF_OUTPUT_BYTES} bytes`);
  }
}

/** ClientKey, StoredKey and ServerKey for a SaltedPassword. */
export async function scramKeys(saltedPassword: Uint8Array): Promise<ScramKeys> {
  checkSaltedPassword(saltedPassword);
  const clientKey = await hmac(saltedPassword, "Client Key");
  const [storedKey, serverKey] = await Promise.all([sha256(clientKey), hmac(saltedPassword, "Server Key")]);
  return { clientKey, storedKey, serverKey };
}

/** ClientKey XOR HMAC(StoredKey, AuthMessage): what the client answers the challenger with. */
export async function clientProof(saltedPassword: Uint8Array, authMsg: Uint8Array): Promise<Uint8Array> {
  const { clientKey, storedKey } = await scramKeys(saltedPassword);
  return xor(clientKey, await hmac(storedKey, authMsg));
}

/** Whether the server proved it holds ServerKey. Constant-time; false for a malformed signature. */
export async function verifyServerSignature(
  saltedPassword: Uint8Array,
  authMsg: Uint8Array,
  signature: unknown,
): Promise<boolean> {
  if (!(signature instanceof Uint8Array) || signature.length !== KEY_BYTES) return false;
  const { serverKey } = await scramKeys(saltedPassword);
  return constantTimeEqual(await hmac(serverKey, authMsg), signature);
}

/** The verifier the server stores for a SaltedPassword derived with `salt` and `kdf`. */
export async function makeVerifier(
  saltedPassword: Uint8Array,
  salt: Uint8Array,
  kdf: KdfParams,
): Promise<StoredVerifier> {
  checkSalt(salt);
  const { storedKey, serverKey } = await scramKeys(saltedPassword);
  return { salt: salt.slice(), kdf: { ...kdf }, storedKey, serverKey };
}

/** Derives a verifier for `password` with `kdf`; a random 16-byte salt is drawn when none is given. */
export async function deriveVerifier(
  kdf: Kdf,
  password: string,
  params: KdfParams = KDF_DEFAULT,
  salt: Uint8Array = randomBytes(SALT_BYTES),
): Promise<{ verifier: StoredVerifier; saltedPassword: Uint8Array }> {
  const saltedPassword = await kdf.derive(password, salt, params);
  return { verifier: await makeVerifier(saltedPassword, salt, params), saltedPassword };
}

/**
 * A new Ed25519 key pair in WebCrypto. The private key is not extractable: a page can keep the
 * CryptoKey (IndexedDB stores it as is) and sign with it, but script cannot read its bytes.
 * UNIMPLEMENTED where the platform's WebCrypto has no Ed25519.
 */
export async function generateWebEd25519(): Promise<WebEd25519KeyPair> {
  const { subtle } = webCrypto();
  let pair: { publicKey: WebCryptoKey; privateKey: WebCryptoKey };
  try {
    pair = await subtle.generateKey(ED25519, false, ["sign", "verify"]);
  } catch (cause) {
    throw new ParallaxError(ErrorCode.UNIMPLEMENTED, "this platform's WebCrypto has no Ed25519", { cause });
  }
  const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { publicKey, privateKey: pair.privateKey };
}

/** Whether this platform's WebCrypto can make and use Ed25519 keys. */
export async function webEd25519Available(): Promise<boolean> {
  try {
    await generateWebEd25519();
    return true;
  } catch {
    return false;
  }
}

/** The 64-byte Ed25519 signature of `message` by a WebCrypto private key. */
export async function signWebEd25519(privateKey: WebCryptoKey, message: Uint8Array): Promise<Uint8Array> {
  if (privateKey?.algorithm?.name !== "Ed25519" || privateKey.type !== "private") {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "the key must be an Ed25519 private CryptoKey");
  }
  return new Uint8Array(await webCrypto().subtle.sign(ED25519, privateKey, own(message)));
}
