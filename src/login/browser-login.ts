/**
 * The client side of login without Node: password logins (SCRAM on WebCrypto, argon2id from a
 * `Kdf` — `WasmKdf` unless told otherwise), sign-up, and Ed25519 key logins with a WebCrypto key
 * or any signer. Browser-safe: everything it imports is (src/browser.ts exports it, and
 * test/browser.test.ts bundles it for the browser platform). `client-login.ts` is the Node face of
 * the same functions, with the native argon2 as its default KDF.
 *
 * Invariants: the password never leaves the caller's process — only the proof (and at sign-up the
 * verifier) is sent; the server's KDF parameters are checked against the floor and ceiling before
 * anything is derived; a password login is trusted only after the server's signature verified
 * (mutual authentication), and a refused login disposes the Identity it was handed. Nothing here
 * keeps the password or the SaltedPassword beyond the call.
 *
 * Tests: test/cred/scram-client.test.ts, test/browser.test.ts, and through client-login.ts every
 * test/login test.
 */
import { checkKdfParams, KDF_DEFAULT, type Kdf, type KdfParams } from "../cred/kdf.js";
import {
  authMessage,
  clientProof,
  deriveVerifier,
  keyLoginMessage,
  randomBytes,
  signWebEd25519,
  verifyServerSignature,
  type WebCryptoKey,
} from "../cred/scram-client.js";
import { WasmKdf } from "../cred/wasm-kdf.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { StoredVerifier } from "../store/broker-store.js";
import {
  type Identity,
  LoginOutcome_Which,
  type PendingApproval,
  type Root,
  SignUpOutcome_Which,
} from "../wire/gen/broker.js";

const CLIENT_NONCE_BYTES = 32;

let wasmKdf: Kdf | undefined;

/** The KDF browsers use unless told otherwise: argon2id in WebAssembly. */
export function browserKdf(): Kdf {
  wasmKdf ??= new WasmKdf();
  return wasmKdf;
}

export interface PasswordLogin {
  readonly identity: Identity;
  /** argon2id(password, salt): what the wallet derives its keys from. Keep it in memory only. */
  readonly saltedPassword: Uint8Array;
  readonly salt: Uint8Array;
  readonly kdf: KdfParams;
}

export type SignUpResult =
  | { readonly identity: Identity; readonly pending?: undefined }
  | { readonly pending: PendingApproval; readonly identity?: undefined };

/** Signs a key-login message: a WebCrypto Ed25519 private key, or a function that signs. */
export type Ed25519Signer = WebCryptoKey | ((message: Uint8Array) => Uint8Array | Promise<Uint8Array>);

/** Awaits a call's results, hands them to `use`, then releases what `use` did not take out. */
async function withResults<T, R>(
  call: PromiseLike<T> & { dispose(): void },
  use: (results: T) => Promise<R>,
): Promise<R> {
  try {
    return await use(await call);
  } finally {
    call.dispose();
  }
}

/**
 * Logs in with a password (SCRAM, argon2id). Fails with PARALLAX_ERR_AUTH_FAILED for a wrong
 * password or unknown name, and also when the server cannot prove it holds the verifier; with
 * BAD_ARGUMENT, before deriving anything, when the server asks for KDF parameters outside the
 * floor and ceiling.
 */
export async function loginWithPassword(
  root: Root,
  username: string,
  password: string,
  options: { kdf?: Kdf } = {},
): Promise<PasswordLogin> {
  const kdfImpl = options.kdf ?? browserKdf();
  const clientNonce = randomBytes(CLIENT_NONCE_BYTES);
  return withResults(root.login({ username, clientNonce }), async (start) => {
    const challenger = start.challenger;
    let identity: Identity | undefined;
    let trusted = false;
    try {
      const salt = start.salt.slice();
      const k = start.kdf;
      const kdf: KdfParams = {
        algorithm: k.algorithm as "argon2id",
        memoryKiB: k.memoryKiB,
        iterations: k.iterations,
        parallelism: k.parallelism,
      };
      // A hostile server must not make us run a weak (or enormous) KDF.
      checkKdfParams(kdf);
      const serverNonce = start.serverNonce.slice();
      const saltedPassword = await kdfImpl.derive(password, salt, kdf);
      const message = authMessage({
        username: username.normalize("NFKC"),
        clientNonce,
        serverNonce,
        salt,
        kdf,
      });
      const proof = await clientProof(saltedPassword, message);
      return await withResults(challenger.respond({ proof }), async (done) => {
        const outcome = done.outcome;
        if (outcome.which() !== LoginOutcome_Which.IDENTITY) {
          throw new ParallaxError(
            ErrorCode.AUTH_FAILED,
            "the server answered a password login with a pending request",
          );
        }
        identity = outcome.identity;
        if (!(await verifyServerSignature(saltedPassword, message, outcome.serverSignature.slice()))) {
          throw new ParallaxError(
            ErrorCode.AUTH_FAILED,
            "the server's signature is wrong: it does not hold this account's verifier (not the server you think)",
          );
        }
        trusted = true;
        return { identity, saltedPassword, salt, kdf };
      });
    } finally {
      challenger.dispose();
      if (!trusted) identity?.dispose();
    }
  });
}

/** A verifier for `password` (new random salt): what sign-up and password change send. */
export async function makeVerifier(
  password: string,
  options: { kdf?: Kdf; params?: KdfParams } = {},
): Promise<{ verifier: StoredVerifier; saltedPassword: Uint8Array }> {
  return deriveVerifier(options.kdf ?? browserKdf(), password, options.params ?? KDF_DEFAULT);
}

/** Signs up: sends the verifier, never the password. Answers the Identity or a PendingApproval. */
export async function signUp(
  root: Root,
  username: string,
  password: string,
  options: { kdf?: Kdf; params?: KdfParams } = {},
): Promise<SignUpResult> {
  const { verifier } = await makeVerifier(password, options);
  return withResults(root.signUp({ username, verifier }), async (res) => {
    const outcome = res.outcome;
    return outcome.which() === SignUpOutcome_Which.IDENTITY
      ? { identity: outcome.identity }
      : { pending: outcome.pending };
  });
}

/**
 * Logs in with an Ed25519 key: `privateKey` is a WebCrypto key (see `generateWebEd25519`) or a
 * function that signs. A key the user has not registered yet answers `pending`: a request for
 * this key, named `device`, that the owner or an admin approves.
 */
export async function loginWithKey(
  root: Root,
  username: string,
  key: { publicKey: Uint8Array; privateKey: Ed25519Signer },
  options: { device?: string } = {},
): Promise<SignUpResult> {
  const { privateKey } = key;
  const sign =
    typeof privateKey === "function"
      ? privateKey
      : (message: Uint8Array) => signWebEd25519(privateKey, message);
  const call = root.loginWithKey({ username, publicKey: key.publicKey, device: options.device ?? "" });
  return withResults(call, async (start) => {
    const challenger = start.challenger;
    try {
      const message = keyLoginMessage({
        username: username.normalize("NFKC"),
        publicKey: key.publicKey,
        serverNonce: start.serverNonce.slice(),
      });
      const proof = await sign(message);
      return await withResults(challenger.respond({ proof }), async (done) => {
        const outcome = done.outcome;
        return outcome.which() === LoginOutcome_Which.IDENTITY
          ? { identity: outcome.identity }
          : { pending: outcome.pending };
      });
    } finally {
      challenger.dispose();
    }
  });
}
