/**
 * argon2id in WebAssembly (`hash-wasm`): the Kdf for browsers, byte-identical to `Argon2Kdf`
 * (test/cred/scram-vectors.json is checked against both). Browser-safe: no `node:` imports.
 *
 * Tests: test/cred/kdf.test.ts, scram-vectors.test.ts
 */
import { argon2id } from "hash-wasm";
import {
  checkKdfParams,
  checkSalt,
  KDF_OUTPUT_BYTES,
  type Kdf,
  type KdfParams,
  passwordBytes,
} from "./kdf.js";

export class WasmKdf implements Kdf {
  readonly name = "argon2id-wasm";

  async derive(password: string, salt: Uint8Array, params: KdfParams): Promise<Uint8Array> {
    checkKdfParams(params);
    checkSalt(salt);
    return argon2id({
      password: passwordBytes(password),
      salt: salt.slice(),
      parallelism: params.parallelism,
      iterations: params.iterations,
      memorySize: params.memoryKiB,
      hashLength: KDF_OUTPUT_BYTES,
      outputType: "binary",
    });
  }
}
