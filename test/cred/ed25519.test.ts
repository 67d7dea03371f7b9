import { describe, expect, it } from "vitest";
import { checkPublicKey, generateEd25519, signEd25519, verifyEd25519 } from "../../src/cred/ed25519.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";

const message = new TextEncoder().encode("parallax-key-v1,n=alice,k=...,sr=...");

describe("Ed25519", () => {
  const { publicKey, privateKey } = generateEd25519();
  const signature = signEd25519(privateKey, message);

  it("gives a raw 32-byte public key and 64-byte signatures", () => {
    expect(publicKey).toHaveLength(32);
    expect(signature).toHaveLength(64);
  });

  it("verifies a valid signature", () => {
    expect(verifyEd25519(publicKey, message, signature)).toBe(true);
  });

  it("agrees with RFC 8032's first test vector", () => {
    const pk = Buffer.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex");
    const sig = Buffer.from(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
      "hex",
    );
    expect(verifyEd25519(new Uint8Array(pk), new Uint8Array(0), new Uint8Array(sig))).toBe(true);
    expect(verifyEd25519(new Uint8Array(pk), new Uint8Array(1), new Uint8Array(sig))).toBe(false);
  });

  it("rejects the signature for another message", () => {
    expect(verifyEd25519(publicKey, new TextEncoder().encode("something else"), signature)).toBe(false);
  });

  it("rejects the signature under another key", () => {
    expect(verifyEd25519(generateEd25519().publicKey, message, signature)).toBe(false);
  });

  it("answers false, without throwing, for garbage keys and signatures", () => {
    const flipped = signature.slice();
    flipped[10] = (flipped[10] as number) ^ 0x40;
    expect(verifyEd25519(publicKey, message, flipped)).toBe(false);
    expect(verifyEd25519(publicKey, message, signature.subarray(0, 63))).toBe(false);
    expect(verifyEd25519(publicKey, message, new Uint8Array(64).fill(0xff))).toBe(false);
    expect(verifyEd25519(publicKey.subarray(0, 31), message, signature)).toBe(false);
    expect(verifyEd25519(new Uint8Array(32).fill(0xff), message, signature)).toBe(false);
    expect(verifyEd25519(null as unknown as Uint8Array, message, signature)).toBe(false);
    expect(verifyEd25519(publicKey, "text" as unknown as Uint8Array, signature)).toBe(false);
  });

  it("checkPublicKey accepts a real key and rejects 31 or 33 bytes with BAD_ARGUMENT", () => {
    expect(() => checkPublicKey(publicKey)).not.toThrow();
    for (const bad of [publicKey.subarray(0, 31), new Uint8Array([...publicKey, 0])]) {
      let err: unknown;
      try {
        checkPublicKey(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ParallaxError);
      expect((err as ParallaxError).code).toBe(ErrorCode.BAD_ARGUMENT);
      expect((err as ParallaxError).message).toContain(`got ${bad.length} bytes`);
    }
  });
});
