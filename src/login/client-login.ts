/**
 * The client side of login for Node: SCRAM with argon2id over a Root stub, key login, sign-up.
 * The protocol lives in browser-login.ts (WebCrypto, which Node has as well); this module gives it
 * Node's defaults — the native argon2 (`Argon2Kdf`, much faster than WebAssembly) and Ed25519 keys
 * as `node:crypto` KeyObjects.
 *
 * The password never leaves this process: the KDF runs here, only the proof (and at sign-up or
 * password change, the verifier) is sent, and the server's signature is checked before the
 * Identity is trusted (mutual authentication).
 *
 * Tests: test/login/login.test.ts (and every test that logs in), test/cred/scram-client.test.ts
 */
import { KeyObject } from "node:crypto";
import { Argon2Kdf } from "../cred/argon2-kdf.js";
import { signEd25519 } from "../cred/ed25519.js";
import type { Kdf } from "../cred/kdf.js";
import type { KdfParams, StoredVerifier } from "../store/index.js";
import type { Root } from "../wire/gen/broker.js";
import * as web from "./browser-login.js";

export type { PasswordLogin, SignUpResult } from "./browser-login.js";

let defaultKdf: Kdf | undefined;

/** The KDF clients use unless told otherwise: the native argon2 package. */
export function nodeKdf(): Kdf {
  defaultKdf ??= new Argon2Kdf();
  return defaultKdf;
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
): Promise<web.PasswordLogin> {
  return web.loginWithPassword(root, username, password, { kdf: options.kdf ?? nodeKdf() });
}

/** A verifier for `password` (new random salt): what sign-up and password change send. */
export async function makeVerifier(
  password: string,
  options: { kdf?: Kdf; params?: KdfParams } = {},
): Promise<{ verifier: StoredVerifier; saltedPassword: Uint8Array }> {
  return web.makeVerifier(password, { ...options, kdf: options.kdf ?? nodeKdf() });
}

/** Signs up: sends the verifier, never the password. Answers the Identity or a PendingApproval. */
export async function signUp(
  root: Root,
  username: string,
  password: string,
  options: { kdf?: Kdf; params?: KdfParams } = {},
): Promise<web.SignUpResult> {
  return web.signUp(root, username, password, { ...options, kdf: options.kdf ?? nodeKdf() });
}

/**
 * Logs in with an Ed25519 key: a `node:crypto` KeyObject (as `generateEd25519` makes), or what
 * the browser's `loginWithKey` takes (a WebCrypto key, a signing function). A key the user has
 * not registered yet answers `pending`: a request for this key, named `device`, that the owner or
 * an admin approves.
 */
export async function loginWithKey(
  root: Root,
  username: string,
  key: { publicKey: Uint8Array; privateKey: KeyObject | web.Ed25519Signer },
  options: { device?: string } = {},
): Promise<web.SignUpResult> {
  const { publicKey, privateKey } = key;
  const signer: web.Ed25519Signer =
    privateKey instanceof KeyObject ? (message) => signEd25519(privateKey, message) : privateKey;
  return web.loginWithKey(root, username, { publicKey, privateKey: signer }, options);
}
