/**
 * The client side of login: SCRAM with argon2id over a Root stub, key login, sign-up.
 *
 * The password never leaves this process: the KDF runs here, only the proof (and at sign-up or
 * password change, the verifier) is sent, and the server's signature is checked before the
 * Identity is trusted (mutual authentication).
 *
 * Tests: test/login/login.test.ts
 */
import { Argon2Kdf } from "../cred/argon2-kdf.js";
import { signEd25519 } from "../cred/ed25519.js";
import { checkKdfParams, KDF_DEFAULT, type Kdf } from "../cred/kdf.js";
import {
  authMessage,
  clientProof,
  deriveVerifier,
  keyLoginMessage,
  verifyServerSignature,
} from "../cred/scram.js";
import { randomBytes } from "../cred/secrets.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { KdfParams, StoredVerifier } from "../store/index.js";
import {
  type Identity,
  LoginOutcome_Which,
  type PendingApproval,
  type Root,
  SignUpOutcome_Which,
} from "../wire/gen/broker.js";
import type { KeyObject } from "node:crypto";
import { readKdf } from "./broker-wire.js";

let defaultKdf: Kdf | undefined;

/** The KDF clients use unless told otherwise: the native argon2 package. */
export function nodeKdf(): Kdf {
  defaultKdf ??= new Argon2Kdf();
  return defaultKdf;
}

export interface PasswordLogin {
  readonly identity: Identity;
  /** argon2id(password, salt): what the wallet derives its keys from. Keep it in memory only. */
  readonly saltedPassword: Uint8Array;
  readonly salt: Uint8Array;
  readonly kdf: KdfParams;
}

/**
 * Logs in with a password (SCRAM, argon2id). Fails with PARALLAX_ERR_AUTH_FAILED for a wrong
 * password or unknown name, and also when the server cannot prove it holds the verifier.
 */
export async function loginWithPassword(
  root: Root,
  username: string,
  password: string,
  options: { kdf?: Kdf } = {},
): Promise<PasswordLogin> {
  const kdfImpl = options.kdf ?? nodeKdf();
  const clientNonce = randomBytes(32);
  const start = await root.login({ username, clientNonce });
  using challenger = start.challenger;
  const salt = start.salt.slice();
  const k = start.kdf;
  const kdf: KdfParams = readKdf(k);
  // A hostile server must not make us run a weak (or enormous) KDF.
  checkKdfParams(kdf);
  const serverNonce = start.serverNonce.slice();
  const saltedPassword = await kdfImpl.derive(password, salt, kdf);
  const message = authMessage({ username: username.normalize("NFKC"), clientNonce, serverNonce, salt, kdf });
  const done = await challenger.respond({ proof: clientProof(saltedPassword, message) });
  const outcome = done.outcome;
  const identity = outcome.identity;
  if (!verifyServerSignature(saltedPassword, message, outcome.serverSignature.slice())) {
    identity.dispose();
    throw new ParallaxError(
      ErrorCode.AUTH_FAILED,
      "the server's signature is wrong: it does not hold this account's verifier (not the server you think)",
    );
  }
  return { identity, saltedPassword, salt, kdf };
}

/** A verifier for `password` (new random salt): what sign-up and password change send. */
export async function makeVerifier(
  password: string,
  options: { kdf?: Kdf; params?: KdfParams } = {},
): Promise<{ verifier: StoredVerifier; saltedPassword: Uint8Array }> {
  return deriveVerifier(options.kdf ?? nodeKdf(), password, options.params ?? KDF_DEFAULT);
}

export type SignUpResult =
  | { readonly identity: Identity; readonly pending?: undefined }
  | { readonly pending: PendingApproval; readonly identity?: undefined };

/** Signs up: sends the verifier, never the password. Answers the Identity or a PendingApproval. */
export async function signUp(
  root: Root,
  username: string,
  password: string,
  options: { kdf?: Kdf; params?: KdfParams } = {},
): Promise<SignUpResult> {
  const { verifier } = await makeVerifier(password, options);
  const res = await root.signUp({ username, verifier });
  const outcome = res.outcome;
  return outcome.which() === SignUpOutcome_Which.IDENTITY
    ? { identity: outcome.identity }
    : { pending: outcome.pending };
}

/**
 * Logs in with an Ed25519 key. A key the user has not registered yet answers `pending`: a
 * request for this key, named `device`, that the owner or an admin approves.
 */
export async function loginWithKey(
  root: Root,
  username: string,
  key: { publicKey: Uint8Array; privateKey: KeyObject },
  options: { device?: string } = {},
): Promise<SignUpResult> {
  const start = await root.loginWithKey({ username, publicKey: key.publicKey, device: options.device ?? "" });
  using challenger = start.challenger;
  const message = keyLoginMessage({
    username: username.normalize("NFKC"),
    publicKey: key.publicKey,
    serverNonce: start.serverNonce.slice(),
  });
  const done = await challenger.respond({ proof: signEd25519(key.privateKey, message) });
  const outcome = done.outcome;
  return outcome.which() === LoginOutcome_Which.IDENTITY
    ? { identity: outcome.identity }
    : { pending: outcome.pending };
}
