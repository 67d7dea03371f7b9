import { beforeAll, describe, expect, it } from "vitest";
import { Argon2Kdf } from "../../src/cred/argon2-kdf.js";
import { KDF_DEFAULT, KDF_FLOOR, type Kdf, type KdfParams } from "../../src/cred/kdf.js";
import {
  type AuthMessageFields,
  authMessage,
  clientProof,
  deriveVerifier,
  fakeVerifier,
  keyLoginMessage,
  makeVerifier,
  type StoredVerifier,
  serverSignature,
  verifyClientProof,
  verifyServerSignature,
} from "../../src/cred/scram.js";
import { WasmKdf } from "../../src/cred/wasm-kdf.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";

const PASSWORD = "hunter2 but longer";

function fields(verifier: StoredVerifier, serverNonce: Uint8Array): AuthMessageFields {
  return {
    username: "alice",
    clientNonce: new Uint8Array(32).fill(1),
    serverNonce,
    salt: verifier.salt,
    kdf: verifier.kdf,
  };
}

function thrown(fn: () => unknown): ParallaxError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ParallaxError) return err;
    throw err;
  }
  throw new Error("expected a ParallaxError");
}

/** A Kdf that costs nothing, for tests about what surrounds the derivation. */
class RecordingKdf implements Kdf {
  readonly name = "recording";
  readonly salts: Uint8Array[] = [];
  async derive(_password: string, salt: Uint8Array, _params: KdfParams): Promise<Uint8Array> {
    this.salts.push(salt);
    return new Uint8Array(32).fill(7);
  }
}

describe("SCRAM", () => {
  let verifier: StoredVerifier;
  /** What a browser client derives from the challenge's salt and parameters. */
  let clientSalted: Uint8Array;
  const serverNonce = new Uint8Array(32).fill(9);

  beforeAll(async () => {
    ({ verifier } = await deriveVerifier(new Argon2Kdf(), PASSWORD, KDF_FLOOR));
    clientSalted = await new WasmKdf().derive(PASSWORD, verifier.salt, verifier.kdf);
  });

  it("accepts the proof of a client that knows the password", () => {
    const am = authMessage(fields(verifier, serverNonce));
    expect(verifyClientProof(verifier, am, clientProof(clientSalted, am))).toBe(true);
  });

  it("rejects the proof of a client with the wrong password", async () => {
    const wrong = await new Argon2Kdf().derive("hunter3 but longer", verifier.salt, verifier.kdf);
    const am = authMessage(fields(verifier, serverNonce));
    expect(verifyClientProof(verifier, am, clientProof(wrong, am))).toBe(false);
  });

  it("rejects a proof replayed against a different server nonce", () => {
    const old = clientProof(clientSalted, authMessage(fields(verifier, serverNonce)));
    const fresh = authMessage(fields(verifier, new Uint8Array(32).fill(10)));
    expect(verifyClientProof(verifier, fresh, old)).toBe(false);
  });

  it("rejects a proof whose AuthMessage names other KDF parameters", () => {
    const am = authMessage(fields(verifier, serverNonce));
    const proof = clientProof(clientSalted, am);
    const weaker = authMessage({ ...fields(verifier, serverNonce), kdf: { ...verifier.kdf, iterations: 3 } });
    expect(verifyClientProof(verifier, weaker, proof)).toBe(false);
  });

  it("answers false, without throwing, for truncated, overlong, garbage or non-byte proofs", () => {
    const am = authMessage(fields(verifier, serverNonce));
    const proof = clientProof(clientSalted, am);
    expect(verifyClientProof(verifier, am, proof.subarray(0, 31))).toBe(false);
    expect(verifyClientProof(verifier, am, new Uint8Array([...proof, 0]))).toBe(false);
    expect(verifyClientProof(verifier, am, new Uint8Array(32).fill(0xff))).toBe(false);
    expect(verifyClientProof(verifier, am, new Uint8Array(0))).toBe(false);
    expect(verifyClientProof(verifier, am, "not bytes" as unknown as Uint8Array)).toBe(false);
  });

  it("lets the client verify the server's signature and reject a tampered one", () => {
    const am = authMessage(fields(verifier, serverNonce));
    const signature = serverSignature(verifier, am);
    expect(verifyServerSignature(clientSalted, am, signature)).toBe(true);
    const tampered = signature.slice();
    tampered[0] = (tampered[0] as number) ^ 1;
    expect(verifyServerSignature(clientSalted, am, tampered)).toBe(false);
    expect(verifyServerSignature(clientSalted, am, signature.subarray(0, 16))).toBe(false);
    const otherNonce = authMessage(fields(verifier, new Uint8Array(32)));
    expect(verifyServerSignature(clientSalted, otherNonce, signature)).toBe(false);
  });

  it("derives a verifier with a fresh random 16-byte salt when none is given", async () => {
    const kdf = new RecordingKdf();
    const a = await deriveVerifier(kdf, PASSWORD, KDF_FLOOR);
    const b = await deriveVerifier(kdf, PASSWORD, KDF_FLOOR);
    expect(a.verifier.salt).toHaveLength(16);
    expect(Buffer.from(a.verifier.salt).equals(Buffer.from(b.verifier.salt))).toBe(false);
    expect(kdf.salts.map((s) => Buffer.from(s).toString("hex"))).toEqual([
      Buffer.from(a.verifier.salt).toString("hex"),
      Buffer.from(b.verifier.salt).toString("hex"),
    ]);
  });

  it("derives with the salt it is given", async () => {
    const salt = new Uint8Array(20).fill(3);
    const { verifier: v } = await deriveVerifier(new RecordingKdf(), PASSWORD, KDF_FLOOR, salt);
    expect([...v.salt]).toEqual([...salt]);
  });

  it("refuses to make a verifier from a SaltedPassword or salt of the wrong length", () => {
    expect(thrown(() => makeVerifier(new Uint8Array(31), new Uint8Array(16), KDF_FLOOR)).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
    expect(thrown(() => makeVerifier(new Uint8Array(32), new Uint8Array(15), KDF_FLOOR)).message).toMatch(
      /salt .*got 15/,
    );
  });

  it("escapes ',' and '=' in the name so that no name can forge another AuthMessage's fields", () => {
    const am = new TextDecoder().decode(
      authMessage({ ...fields(verifier, serverNonce), username: "a=b,r=x" }),
    );
    expect(am.startsWith("parallax-scram-v1,n=a=3Db=2Cr=3Dx,r=")).toBe(true);
  });

  it("builds the key-login message from the name, raw key and server nonce", () => {
    const text = new TextDecoder().decode(
      keyLoginMessage({
        username: "bob,=",
        publicKey: new Uint8Array(32).fill(0xfb),
        serverNonce: new Uint8Array([1, 2, 3]),
      }),
    );
    expect(text).toBe(`parallax-key-v1,n=bob=2C=3D,k=${Buffer.alloc(32, 0xfb).toString("base64")},sr=AQID`);
  });
});

describe("fakeVerifier", () => {
  const secret = new Uint8Array(32).fill(42);

  it("is the same for the same name and server secret", () => {
    expect(fakeVerifier(secret, "mallory")).toEqual(fakeVerifier(secret, "mallory"));
  });

  it("differs between names and between server secrets", () => {
    const base = fakeVerifier(secret, "mallory");
    for (const other of [
      fakeVerifier(secret, "mallory2"),
      fakeVerifier(new Uint8Array(32).fill(43), "mallory"),
    ]) {
      expect(Buffer.from(other.salt).equals(Buffer.from(base.salt))).toBe(false);
      expect(Buffer.from(other.storedKey).equals(Buffer.from(base.storedKey))).toBe(false);
      expect(Buffer.from(other.serverKey).equals(Buffer.from(base.serverKey))).toBe(false);
    }
  });

  it("has the shape and lengths of a real verifier with the default parameters", async () => {
    const { verifier: real } = await deriveVerifier(new RecordingKdf(), "pw", KDF_DEFAULT);
    const fake = fakeVerifier(secret, "mallory");
    expect(Object.keys(fake).sort()).toEqual(Object.keys(real).sort());
    expect(fake.kdf).toEqual(real.kdf);
    expect([fake.salt.length, fake.storedKey.length, fake.serverKey.length]).toEqual([
      real.salt.length,
      real.storedKey.length,
      real.serverKey.length,
    ]);
    expect(fake.salt).toBeInstanceOf(Uint8Array);
  });

  it("takes the parameters real verifiers get when they differ from the default", () => {
    const strong = { ...KDF_DEFAULT, memoryKiB: 65536 };
    expect(fakeVerifier(secret, "mallory", strong).kdf).toEqual(strong);
  });

  it("verifies no proof", () => {
    const fake = fakeVerifier(secret, "mallory");
    const am = authMessage(fields(fake, new Uint8Array(32)));
    expect(verifyClientProof(fake, am, clientProof(new Uint8Array(32), am))).toBe(false);
  });

  it("refuses a server secret shorter than 16 bytes", () => {
    expect(thrown(() => fakeVerifier(new Uint8Array(15), "x")).code).toBe(ErrorCode.BAD_ARGUMENT);
  });
});
