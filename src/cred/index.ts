/**
 * Credential primitives: the password KDF, SCRAM, Ed25519 key logins, bearer secrets and the
 * failed-login throttle. Knows nothing of the RPC engine or the store.
 *
 * Tests: test/cred/
 */
export { Argon2Kdf } from "./argon2-kdf.js";
export {
  checkPublicKey,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  generateEd25519,
  signEd25519,
  verifyEd25519,
} from "./ed25519.js";
export {
  checkKdfParams,
  checkSalt,
  KDF_CEILING,
  KDF_DEFAULT,
  KDF_FLOOR,
  KDF_OUTPUT_BYTES,
  type Kdf,
  type KdfParams,
  MAX_SALT_BYTES,
  MIN_SALT_BYTES,
  passwordBytes,
} from "./kdf.js";
export { LoginThrottle, type LoginThrottleOptions, RateLimitedError } from "./login-throttle.js";
export {
  type AuthMessageFields,
  authMessage,
  clientProof,
  deriveVerifier,
  fakeVerifier,
  type KeyLoginFields,
  keyLoginMessage,
  makeVerifier,
  type ScramKeys,
  type StoredVerifier,
  saslName,
  scramKeys,
  serverSignature,
  verifyClientProof,
  verifyServerSignature,
} from "./scram.js";
export {
  constantTimeEqual,
  hashSecret,
  hasSecretFormat,
  newSecret,
  parseApiKey,
  randomBytes,
  type SecretKind,
} from "./secrets.js";
export { WasmKdf } from "./wasm-kdf.js";
