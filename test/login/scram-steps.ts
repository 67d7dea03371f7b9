/**
 * A password login taken apart, for tests that replay, tamper with, delay or race its second
 * half: `startLogin` runs the first half (Root.login) by hand, `preparedLogin` also computes the
 * proof for a password, so the challenger can be answered later.
 */
import { authMessage, clientProof } from "../../src/cred/scram.js";
import { randomBytes } from "../../src/cred/secrets.js";
import type { AuthChallenger, Root } from "../../src/wire/gen/broker.js";
import { kdf } from "./harness.js";

/** Root.login with a fresh client nonce: the challenge, the salt and parameters, the AuthMessage. */
export async function startLogin(root: Root, username: string) {
  const clientNonce = randomBytes(32);
  const start = await root.login({ username, clientNonce });
  const salt = start.salt.slice();
  const kdfParams = {
    algorithm: "argon2id" as const,
    memoryKiB: start.kdf.memoryKiB,
    iterations: start.kdf.iterations,
    parallelism: start.kdf.parallelism,
  };
  const serverNonce = start.serverNonce.slice();
  const message = authMessage({ username, clientNonce, serverNonce, salt, kdf: kdfParams });
  return { start, salt, kdfParams, message, challenger: start.challenger };
}

/** The first half of a login, kept for later: the challenger and a proof for `password`. */
export async function preparedLogin(
  root: Root,
  username: string,
  password: string,
): Promise<{ challenger: AuthChallenger; proof: Uint8Array }> {
  const { salt, kdfParams, message, challenger } = await startLogin(root, username);
  const proof = clientProof(await kdf.derive(password, salt, kdfParams), message);
  return { challenger, proof };
}
