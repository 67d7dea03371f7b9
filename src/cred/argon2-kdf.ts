/**
 * argon2id through the native `argon2` package (libargon2, off the event loop): the server's Kdf.
 * The only file that imports `argon2`.
 *
 * Tests: test/cred/kdf.test.ts, scram-vectors.test.ts
 */
import argon2 from "argon2";
import {
  checkKdfParams,
  checkSalt,
  KDF_OUTPUT_BYTES,
  type Kdf,
  type KdfParams,
  passwordBytes,
} from "./kdf.js";

export class Argon2Kdf implements Kdf {
  readonly name = "argon2id-native";

  async derive(password: string, salt: Uint8Array, params: KdfParams): Promise<Uint8Array> {
    checkKdfParams(params);
    checkSalt(salt);
    const out = await argon2.hash(Buffer.from(passwordBytes(password)), {
      type: argon2.argon2id,
      raw: true,
      salt: Buffer.from(salt),
      memoryCost: params.memoryKiB,
      timeCost: params.iterations,
      parallelism: params.parallelism,
      hashLength: KDF_OUTPUT_BYTES,
    });
    return new Uint8Array(out);
  }
}
