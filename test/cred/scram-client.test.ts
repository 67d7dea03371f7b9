/**
 * The WebCrypto client half of SCRAM (src/cred/scram-client.ts) and the browser-safe logins
 * (src/login/browser-login.ts): byte for byte what the Node implementation and the published
 * vectors give; mutual authentication (a forged server signature is refused and the Identity it
 * came with disposed); a hostile server's KDF parameters refused before any derivation; no
 * WebCrypto is a precise error. Logins run against a real broker over the in-memory transport
 * (test/login/harness.ts, which asserts that nothing leaked).
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { checkPublicKey, verifyEd25519 } from "../../src/cred/ed25519.js";
import { KDF_CEILING, KDF_FLOOR, type Kdf, type KdfParams } from "../../src/cred/kdf.js";
import * as node from "../../src/cred/scram.js";
import * as web from "../../src/cred/scram-client.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithKey, loginWithPassword, makeVerifier, signUp } from "../../src/login/browser-login.js";
import { type AuthChallenger, AuthMethod, type Root } from "../../src/wire/gen/broker.js";
import { type Harness, kdf, makeHarness, rejection } from "../login/harness.js";
import file from "./scram-vectors.json" with { type: "json" };

interface Vector {
  name: string;
  username: string;
  salt: string;
  kdf: KdfParams;
  clientNonce: string;
  serverNonce: string;
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

describe("the WebCrypto SCRAM client against the published vectors", () => {
  for (const v of vectors) {
    it(`${v.name}: keys, AuthMessage, proof and signature check equal the vectors and scram.ts`, async () => {
      const salted = bytes(v.saltedPassword);
      const keys = await web.scramKeys(salted);
      const nodeKeys = node.scramKeys(salted);
      expect([hex(keys.clientKey), hex(keys.storedKey), hex(keys.serverKey)]).toEqual([
        v.clientKey,
        v.storedKey,
        v.serverKey,
      ]);
      expect(keys).toEqual(nodeKeys);

      const fields = {
        username: v.username,
        clientNonce: bytes(v.clientNonce),
        serverNonce: bytes(v.serverNonce),
        salt: bytes(v.salt),
        kdf: v.kdf,
      };
      const am = web.authMessage(fields);
      expect(new TextDecoder().decode(am)).toBe(v.authMessage);
      expect(am).toEqual(node.authMessage(fields));

      const proof = await web.clientProof(salted, am);
      expect(hex(proof)).toBe(v.clientProof);
      expect(proof).toEqual(node.clientProof(salted, am));

      const verifier = await web.makeVerifier(salted, bytes(v.salt), v.kdf);
      expect(verifier).toEqual(node.makeVerifier(salted, bytes(v.salt), v.kdf));
      expect(node.verifyClientProof(verifier, am, proof)).toBe(true);

      const signature = bytes(v.serverSignature);
      expect(await web.verifyServerSignature(salted, am, signature)).toBe(true);
    });
  }

  it("refuse a signature with one bit flipped, of the wrong length or type, without throwing", async () => {
    const v = vectors[0] as Vector;
    const salted = bytes(v.saltedPassword);
    const am = new TextEncoder().encode(v.authMessage);
    const good = bytes(v.serverSignature);
    for (let bit = 0; bit < 256; bit += 37) {
      const bad = good.slice();
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(await web.verifyServerSignature(salted, am, bad)).toBe(false);
    }
    for (const bad of [
      good.slice(0, 31),
      new Uint8Array(33),
      new Uint8Array(0),
      hex(good),
      null,
      [...good],
    ]) {
      expect(await web.verifyServerSignature(salted, am, bad)).toBe(false);
    }
    // The signature for another AuthMessage does not pass either.
    const other = new TextEncoder().encode(`${v.authMessage}x`);
    expect(await web.verifyServerSignature(salted, other, good)).toBe(false);
  });

  it("refuse a SaltedPassword that is not 32 bytes with BAD_ARGUMENT", async () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(64), "x".repeat(32) as unknown as Uint8Array]) {
      expect((await rejection(web.clientProof(bad, new Uint8Array(1)))).code).toBe(ErrorCode.BAD_ARGUMENT);
    }
  });
});

describe("the WebCrypto SCRAM client agrees with scram.ts on any input", () => {
  const kdfParams = fc.record({
    algorithm: fc.constant("argon2id" as const),
    memoryKiB: fc.integer({ min: KDF_FLOOR.memoryKiB, max: KDF_CEILING.memoryKiB }),
    iterations: fc.integer({ min: KDF_FLOOR.iterations, max: KDF_CEILING.iterations }),
    parallelism: fc.integer({ min: KDF_FLOOR.parallelism, max: KDF_CEILING.parallelism }),
  });

  it("gives the same AuthMessage, key-login message and base64", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 40 }),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        kdfParams,
        (username, clientNonce, serverNonce, salt, kdf) => {
          const fields = { username, clientNonce, serverNonce, salt, kdf };
          expect(web.authMessage(fields)).toEqual(node.authMessage(fields));
          const key = { username, publicKey: salt.slice(0, 32), serverNonce };
          expect(web.keyLoginMessage(key)).toEqual(node.keyLoginMessage(key));
          expect(web.base64(clientNonce.subarray(3))).toBe(
            Buffer.from(clientNonce.subarray(3)).toString("base64"),
          );
        },
      ),
    );
    expect(web.base64(new Uint8Array(0))).toBe("");
  });

  it("gives the same proof, verifier and signature check", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        async (salted, am) => {
          const proof = await web.clientProof(salted, am);
          expect(proof).toEqual(node.clientProof(salted, am));
          const verifier = node.makeVerifier(salted, new Uint8Array(16), KDF_FLOOR);
          expect(await web.verifyServerSignature(salted, am, node.serverSignature(verifier, am))).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("derives a verifier with a fresh 16-byte salt each time, that the server accepts proofs against", async () => {
    const fixed: Kdf = { name: "fixed", derive: async () => new Uint8Array(32).fill(7) };
    const a = await web.deriveVerifier(fixed, "pw", KDF_FLOOR);
    const b = await web.deriveVerifier(fixed, "pw", KDF_FLOOR);
    expect(a.verifier.salt).toHaveLength(16);
    expect(a.verifier.salt).not.toEqual(b.verifier.salt);
    const am = new TextEncoder().encode("any message");
    expect(node.verifyClientProof(a.verifier, am, await web.clientProof(a.saltedPassword, am))).toBe(true);
  });
});

describe("WebCrypto Ed25519", () => {
  it("makes a non-extractable key whose signatures the server's verifier accepts", async () => {
    const key = await web.generateWebEd25519();
    expect(key.publicKey).toHaveLength(32);
    expect(() => checkPublicKey(key.publicKey)).not.toThrow();
    expect(key.privateKey.extractable).toBe(false);
    const message = new TextEncoder().encode("parallax-key-v1,n=alice,k=...,sr=...");
    const signature = await web.signWebEd25519(key.privateKey, message);
    expect(signature).toHaveLength(64);
    expect(verifyEd25519(key.publicKey, message, signature)).toBe(true);
    expect(verifyEd25519(key.publicKey, new TextEncoder().encode("another"), signature)).toBe(false);
    expect(await web.webEd25519Available()).toBe(true);
  });

  it("refuses to sign with a key that is not an Ed25519 private key", async () => {
    const key = await web.generateWebEd25519();
    const pub = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, true, ["verify"]);
    const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    for (const bad of [pub, hmac, null]) {
      const err = await rejection(web.signWebEd25519(bad as never, new Uint8Array(1)));
      expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message).toBe("the key must be an Ed25519 private CryptoKey");
    }
  });
});

describe("without WebCrypto", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("fails with UNIMPLEMENTED, saying browsers need a secure context", async () => {
    vi.stubGlobal("crypto", undefined);
    const err = await rejection(web.clientProof(new Uint8Array(32), new Uint8Array(1)));
    expect(err.code).toBe(ErrorCode.UNIMPLEMENTED);
    expect(err.message).toMatch(/secure contexts \(https, or http on localhost\)/);
    expect(() => web.randomBytes(16)).toThrow(/crypto\.subtle/);
    expect((await rejection(web.generateWebEd25519())).code).toBe(ErrorCode.UNIMPLEMENTED);
    expect(await web.webEd25519Available()).toBe(false);
  });
});

/** What a tampering wrapper may change in the challenge and in the outcome. */
interface Tamper {
  kdf?: (k: KdfParams) => KdfParams;
  serverSignature?: (sig: Uint8Array) => Uint8Array;
}

/** `value`, disposable like a call's results: disposing it releases `call`'s. */
function results<T>(value: Promise<T>, call: { dispose(): void }): Promise<T> & { dispose(): void } {
  return Object.assign(value, { dispose: () => call.dispose() });
}

/** `root`, with the challenge and the outcome of its password logins rewritten (a hostile server). */
function tampered(root: Root, tamper: Tamper): Root {
  const respond = (challenger: AuthChallenger, args: { proof: Uint8Array }) => {
    const call = challenger.respond(args);
    const value = call.then((done) => {
      const o = done.outcome;
      const signature = tamper.serverSignature?.(o.serverSignature.slice()) ?? o.serverSignature;
      return {
        outcome: {
          which: () => o.which(),
          get identity() {
            return o.identity;
          },
          get pending() {
            return o.pending;
          },
          serverSignature: signature,
        },
      };
    });
    return results(value, call);
  };
  const login = (params: Parameters<Root["login"]>[0]) => {
    const call = root.login(params);
    const value = call.then((start) => {
      const challenger = start.challenger;
      const k = start.kdf;
      const kdf: KdfParams = {
        algorithm: k.algorithm as "argon2id",
        memoryKiB: k.memoryKiB,
        iterations: k.iterations,
        parallelism: k.parallelism,
      };
      return {
        salt: start.salt,
        serverNonce: start.serverNonce,
        kdf: tamper.kdf?.(kdf) ?? kdf,
        challenger: {
          respond: (args: { proof: Uint8Array }) => respond(challenger, args),
          dispose: () => challenger.dispose(),
        },
      };
    });
    return results(value, call);
  };
  return new Proxy(root, {
    get: (target, prop) => {
      if (prop === "login") return login;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** `kdf`, counting its derivations. */
function counting(inner: Kdf): Kdf & { calls: number } {
  const k = {
    name: inner.name,
    calls: 0,
    derive(password: string, salt: Uint8Array, params: KdfParams) {
      k.calls++;
      return inner.derive(password, salt, params);
    },
  };
  return k;
}

describe("browser-safe logins against a broker", () => {
  let h: Harness;
  afterEach(() => h?.close());

  it("sign up and log in with the password, checking the server's signature", async () => {
    h = await makeHarness({ signUp: "open" });
    const res = await signUp(h.connect().root, "alice", "correct horse", { kdf });
    expect((await res.identity?.whoami())?.info.name).toBe("alice");
    res.identity?.dispose();
    const {
      identity,
      saltedPassword,
      salt,
      kdf: params,
    } = await loginWithPassword(h.connect().root, "alice", "correct horse", { kdf });
    expect(saltedPassword).toEqual(await kdf.derive("correct horse", salt, params));
    const who = (await identity.whoami()).info;
    expect([who.name, who.authMethod]).toEqual(["alice", AuthMethod.PASSWORD]);
    identity.dispose();
  });

  it("make verifiers the Node makeVerifier's logins accept: the same protocol both ways", async () => {
    h = await makeHarness();
    const { verifier } = await makeVerifier("pass phrase", { kdf });
    await h.store.createIdentity({ name: "bob", verifier, keyring: [] });
    const { identity } = await h.login("bob", "pass phrase");
    expect((await identity.whoami()).info.name).toBe("bob");
  });

  it("refuse a wrong password with AUTH_FAILED", async () => {
    h = await makeHarness();
    await h.addUser("alice", "right one");
    const err = await rejection(loginWithPassword(h.connect().root, "alice", "wrong one", { kdf }));
    expect(err.code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("refuse a server whose signature is forged, and dispose the Identity it handed out", async () => {
    h = await makeHarness();
    await h.addUser("alice", "right one");
    const forgeries: ((sig: Uint8Array) => Uint8Array)[] = [
      (sig) => sig.map((b, i) => (i === 0 ? b ^ 1 : b)),
      () => new Uint8Array(32),
      () => new Uint8Array(0),
      (sig) => sig.subarray(0, 16),
    ];
    for (const forge of forgeries) {
      const { root, client } = h.connect();
      const err = await rejection(
        loginWithPassword(tampered(root, { serverSignature: forge }), "alice", "right one", { kdf }),
      );
      expect(err.code).toBe(ErrorCode.AUTH_FAILED);
      expect(err.message).toMatch(/the server's signature is wrong/);
      // Only the Root is left: the challenger and the refused Identity were released.
      expect(client.stats().imports).toBe(1);
    }
    // (h.close() asserts the broker holds no live Identity.)
  });

  it("refuse KDF parameters outside the floor and ceiling before deriving anything", async () => {
    h = await makeHarness();
    await h.addUser("alice", "right one");
    const cases: [(k: KdfParams) => KdfParams, RegExp][] = [
      [(k) => ({ ...k, memoryKiB: KDF_FLOOR.memoryKiB - 1 }), /kdf\.memoryKiB must be at least 19456/],
      [(k) => ({ ...k, iterations: 1 }), /kdf\.iterations must be at least 2/],
      [(k) => ({ ...k, memoryKiB: KDF_CEILING.memoryKiB + 1 }), /kdf\.memoryKiB must be at most 1048576/],
      [(k) => ({ ...k, algorithm: "argon2i" as "argon2id" }), /kdf\.algorithm must be "argon2id"/],
    ];
    for (const [change, message] of cases) {
      const spy = counting(kdf);
      const { root, client } = h.connect();
      const err = await rejection(
        loginWithPassword(tampered(root, { kdf: change }), "alice", "right one", { kdf: spy }),
      );
      expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message).toMatch(message);
      expect(spy.calls).toBe(0);
      expect(client.stats().imports).toBe(1);
    }
  });

  it("log in with a WebCrypto Ed25519 key once it is registered, and ask for approval before", async () => {
    h = await makeHarness();
    await h.addUser("alice", "right one");
    const key = await web.generateWebEd25519();
    const before = await loginWithKey(h.connect().root, "alice", key, { device: "browser" });
    expect(before.identity).toBeUndefined();
    const info = (await before.pending?.request())?.request;
    expect([info?.device, hex(info?.publicKey ?? new Uint8Array())]).toEqual(["browser", hex(key.publicKey)]);
    before.pending?.dispose();

    const { identity } = await h.login("alice", "right one");
    await identity.addPublicKey({ publicKey: key.publicKey, device: "browser" });
    const res = await loginWithKey(h.connect().root, "alice", key);
    const who = (await res.identity?.whoami())?.info;
    expect([who?.name, who?.authMethod]).toEqual(["alice", AuthMethod.PUBLIC_KEY]);
    res.identity?.dispose();

    // Another key's signature does not pass for this public key.
    const other = await web.generateWebEd25519();
    const forged = { publicKey: key.publicKey, privateKey: other.privateKey };
    expect((await rejection(loginWithKey(h.connect().root, "alice", forged))).code).toBe(
      ErrorCode.AUTH_FAILED,
    );
  });
});
