import { describe, expect, it } from "vitest";
import { Argon2Kdf } from "../../src/cred/argon2-kdf.js";
import { type Kdf, type KdfParams, passwordBytes } from "../../src/cred/kdf.js";
import {
  authMessage,
  clientProof,
  makeVerifier,
  scramKeys,
  serverSignature,
  verifyClientProof,
  verifyServerSignature,
} from "../../src/cred/scram.js";
import { WasmKdf } from "../../src/cred/wasm-kdf.js";
import file from "./scram-vectors.json" with { type: "json" };

interface Vector {
  name: string;
  username: string;
  password: string;
  salt: string;
  kdf: KdfParams;
  clientNonce: string;
  serverNonce: string;
  passwordNfkcUtf8: string;
  saltedPassword: string;
  clientKey: string;
  storedKey: string;
  serverKey: string;
  authMessage: string;
  clientProof: string;
  serverSignature: string;
}

const vectors = file.vectors as Vector[];
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

describe("the published SCRAM test vectors", () => {
  it("cover a non-ASCII password, a name needing escapes and parameters above the floor", () => {
    expect(vectors.length).toBeGreaterThanOrEqual(3);
    expect(vectors.some((v) => /[^\x20-\x7e]/.test(v.password))).toBe(true);
    expect(vectors.some((v) => v.username.includes(",") && v.username.includes("="))).toBe(true);
    expect(vectors.some((v) => v.kdf.memoryKiB > 19456 && v.kdf.parallelism > 1)).toBe(true);
  });

  for (const v of vectors) {
    describe(v.name, () => {
      it("hash the NFKC form of the password as UTF-8", () => {
        expect(hex(passwordBytes(v.password))).toBe(v.passwordNfkcUtf8);
      });

      for (const kdf of [new Argon2Kdf(), new WasmKdf()] as Kdf[]) {
        it(`give the published SaltedPassword with ${kdf.name}`, async () => {
          expect(hex(await kdf.derive(v.password, bytes(v.salt), v.kdf))).toBe(v.saltedPassword);
        });
      }

      it("give the published keys, AuthMessage, ClientProof and ServerSignature", () => {
        const salted = bytes(v.saltedPassword);
        const keys = scramKeys(salted);
        expect(hex(keys.clientKey)).toBe(v.clientKey);
        expect(hex(keys.storedKey)).toBe(v.storedKey);
        expect(hex(keys.serverKey)).toBe(v.serverKey);

        const am = authMessage({
          username: v.username,
          clientNonce: bytes(v.clientNonce),
          serverNonce: bytes(v.serverNonce),
          salt: bytes(v.salt),
          kdf: v.kdf,
        });
        expect(new TextDecoder().decode(am)).toBe(v.authMessage);
        expect(hex(clientProof(salted, am))).toBe(v.clientProof);

        const verifier = makeVerifier(salted, bytes(v.salt), v.kdf);
        expect(hex(serverSignature(verifier, am))).toBe(v.serverSignature);
        expect(verifyClientProof(verifier, am, bytes(v.clientProof))).toBe(true);
        expect(verifyServerSignature(salted, am, bytes(v.serverSignature))).toBe(true);
      });
    });
  }
});
