/** The wallet's client-side cryptography and its three-way merge. */
import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { scramKeys } from "../../../src/cred/scram.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import {
  decryptWallet,
  deriveWalletKeys,
  encryptWallet,
  verifyWalletHmac,
  WALLET_IV_BYTES,
  WALLET_TAG_BYTES,
  walletHmac,
} from "../../../src/services/wallet/wallet-crypto.js";
import {
  type ConflictResolver,
  decodeWallet,
  encodeWallet,
  mergeWallets,
  remoteWins,
  type Wallet,
  walletsEqual,
  withPreference,
} from "../../../src/services/wallet/wallet-merge.js";

const sp = new Uint8Array(randomBytes(32));
const salt = new Uint8Array(randomBytes(16));
const utf8 = (s: string) => new TextEncoder().encode(s);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

function thrown(f: () => unknown): ParallaxError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ParallaxError);
    return err as ParallaxError;
  }
  throw new Error("it did not throw");
}

describe("wallet keys", () => {
  it("are two different 32-byte keys, neither of them anything the server stores or SCRAM sends", () => {
    const { encryptionKey, hmacKey } = deriveWalletKeys(sp, salt);
    expect(encryptionKey).toHaveLength(32);
    expect(hmacKey).toHaveLength(32);
    expect(same(encryptionKey, hmacKey)).toBe(false);
    const { clientKey, storedKey, serverKey } = scramKeys(sp);
    for (const k of [encryptionKey, hmacKey]) {
      for (const scram of [clientKey, storedKey, serverKey, sp]) expect(same(k, scram)).toBe(false);
    }
  });

  it("are deterministic in (SaltedPassword, salt) and change with either", () => {
    const a = deriveWalletKeys(sp, salt);
    const b = deriveWalletKeys(sp.slice(), salt.slice());
    expect(same(a.encryptionKey, b.encryptionKey) && same(a.hmacKey, b.hmacKey)).toBe(true);
    const otherSalt = deriveWalletKeys(sp, new Uint8Array(randomBytes(16)));
    const otherSp = deriveWalletKeys(new Uint8Array(randomBytes(32)), salt);
    for (const o of [otherSalt, otherSp]) {
      expect(same(o.encryptionKey, a.encryptionKey)).toBe(false);
      expect(same(o.hmacKey, a.hmacKey)).toBe(false);
    }
  });

  it("are HKDF-SHA256 with the documented info strings (a second implementation agrees)", () => {
    // RFC 5869 by hand: PRK = HMAC(salt, IKM); OKM = HMAC(PRK, info || 0x01) for 32 bytes.
    const prk = createHmac("sha256", salt).update(sp).digest();
    const expand = (info: string) =>
      createHmac("sha256", prk)
        .update(Buffer.concat([Buffer.from(info), Buffer.from([1])]))
        .digest();
    const keys = deriveWalletKeys(sp, salt);
    expect(same(keys.encryptionKey, expand("parallax wallet encryption v1"))).toBe(true);
    expect(same(keys.hmacKey, expand("parallax wallet hmac v1"))).toBe(true);
  });

  it("refuse a missing salt or a short SaltedPassword", () => {
    expect(thrown(() => deriveWalletKeys(sp, new Uint8Array(0))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(thrown(() => deriveWalletKeys(new Uint8Array(8), salt)).code).toBe(ErrorCode.BAD_ARGUMENT);
  });
});

describe("wallet encryption (AES-256-GCM)", () => {
  const { encryptionKey } = deriveWalletKeys(sp, salt);

  it("round-trips, as iv || ciphertext || tag with a fresh iv each time", () => {
    const plain = utf8('{"preferences":{"animal":"cow"}}');
    const a = encryptWallet(encryptionKey, plain);
    const b = encryptWallet(encryptionKey, plain);
    expect(a).toHaveLength(WALLET_IV_BYTES + plain.length + WALLET_TAG_BYTES);
    expect(same(a.subarray(0, 12), b.subarray(0, 12))).toBe(false);
    expect(same(a, b)).toBe(false);
    expect(same(decryptWallet(encryptionKey, a), plain)).toBe(true);
    expect(same(decryptWallet(encryptionKey, b), plain)).toBe(true);
    expect(Buffer.from(a).includes(Buffer.from("cow"))).toBe(false);
    expect(decryptWallet(encryptionKey, encryptWallet(encryptionKey, new Uint8Array(0)))).toHaveLength(0);
  });

  it("detects tampering with the iv, the ciphertext or the tag, and a wrong key", () => {
    const enc = encryptWallet(encryptionKey, utf8("secret wallet"));
    for (const at of [0, WALLET_IV_BYTES + 2, enc.length - 1]) {
      const bad = enc.slice();
      bad[at] = (bad[at] as number) ^ 1;
      const err = thrown(() => decryptWallet(encryptionKey, bad));
      expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message).toBe("wallet cannot be decrypted: wrong password or tampered");
    }
    const wrong = deriveWalletKeys(new Uint8Array(randomBytes(32)), salt).encryptionKey;
    expect(thrown(() => decryptWallet(wrong, enc)).message).toContain("wrong password or tampered");
    expect(thrown(() => decryptWallet(encryptionKey, enc.subarray(0, 20))).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(thrown(() => encryptWallet(new Uint8Array(16), enc)).code).toBe(ErrorCode.BAD_ARGUMENT);
  });
});

describe("wallet hmac", () => {
  const { hmacKey, encryptionKey } = deriveWalletKeys(sp, salt);
  const enc = encryptWallet(encryptionKey, utf8("w"));

  it("is HMAC-SHA256 over the 8-byte big-endian sequence, then the ciphertext", () => {
    const seq = Buffer.from([0, 0, 0, 0, 0, 0, 1, 2]);
    const expected = createHmac("sha256", hmacKey).update(seq).update(enc).digest();
    expect(same(walletHmac(hmacKey, 258, enc), expected)).toBe(true);
    expect(same(walletHmac(hmacKey, 258n, enc), expected)).toBe(true);
  });

  it("binds the sequence, the ciphertext and the key", () => {
    const mac = walletHmac(hmacKey, 7, enc);
    expect(verifyWalletHmac(hmacKey, 7, enc, mac)).toBe(true);
    expect(verifyWalletHmac(hmacKey, 8, enc, mac)).toBe(false);
    const other = enc.slice();
    other[0] = (other[0] as number) ^ 0x80;
    expect(verifyWalletHmac(hmacKey, 7, other, mac)).toBe(false);
    expect(verifyWalletHmac(encryptionKey, 7, enc, mac)).toBe(false);
    expect(verifyWalletHmac(hmacKey, 7, enc, mac.subarray(0, 31))).toBe(false);
    expect(verifyWalletHmac(hmacKey, 7, enc, new Uint8Array(32))).toBe(false);
    expect(verifyWalletHmac(new Uint8Array(3), 7, enc, mac)).toBe(false);
    expect(thrown(() => walletHmac(hmacKey, -1, enc)).code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(thrown(() => walletHmac(hmacKey, 1.5, enc)).code).toBe(ErrorCode.BAD_ARGUMENT);
  });
});

const w = (preferences: Record<string, string>): Wallet => ({ preferences });

describe("three-way merge", () => {
  const base = w({ animal: "horse", car: "Audi", color: "red" });

  it("takes a change made on one side only, from either side, and combines divergent keys", () => {
    const local = w({ animal: "horse", car: "Toyota", color: "red" });
    const remote = w({ animal: "beaver", car: "Audi", color: "red" });
    const m = mergeWallets(base, local, remote);
    expect(m.wallet.preferences).toEqual({ animal: "beaver", car: "Toyota", color: "red" });
    expect(m.conflicts).toEqual([]);
  });

  it("merges additions and deletions on either side, and identical changes on both", () => {
    const local = w({ animal: "cat", car: "Audi", hat: "fedora" });
    const remote = w({ animal: "cat", car: "Audi", color: "red", shoe: "boot" });
    const m = mergeWallets(base, local, remote);
    expect(m.wallet.preferences).toEqual({ animal: "cat", car: "Audi", hat: "fedora", shoe: "boot" });
    expect(m.conflicts).toEqual([]);
  });

  it("lets the local value win a conflict by default (the user's latest intent on this device)", () => {
    const m = mergeWallets(
      base,
      w({ ...base.preferences, animal: "cow" }),
      w({ ...base.preferences, animal: "emu" }),
    );
    expect(m.wallet.preferences.animal).toBe("cow");
    expect(m.conflicts).toEqual(["animal"]);
    // a deletion against an edit is a conflict too: local (deleted) wins
    const d = mergeWallets(
      base,
      w({ animal: "horse", car: "Audi" }),
      w({ ...base.preferences, color: "blue" }),
    );
    expect(d.wallet.preferences).toEqual({ animal: "horse", car: "Audi" });
    expect(d.conflicts).toEqual(["color"]);
  });

  it("asks a custom callback with (key, base, local, remote); remoteWins and deleting answers work", () => {
    const calls: unknown[][] = [];
    const resolve: ConflictResolver = (key, b, l, r) => {
      calls.push([key, b, l, r]);
      return key === "car" ? undefined : `${l}+${r}`;
    };
    const local = w({ animal: "cow", car: "VW", color: "red", x: "1" });
    const remote = w({ animal: "emu", car: "BMW", color: "red", x: "2" });
    const m = mergeWallets(base, local, remote, resolve);
    expect(calls).toEqual([
      ["animal", "horse", "cow", "emu"],
      ["car", "Audi", "VW", "BMW"],
      ["x", undefined, "1", "2"],
    ]);
    expect(m.wallet.preferences).toEqual({ animal: "cow+emu", color: "red", x: "1+2" });
    expect(mergeWallets(base, local, remote, remoteWins).wallet.preferences).toEqual(remote.preferences);
    expect(thrown(() => mergeWallets(base, local, remote, () => 3 as unknown as string)).code).toBe(
      ErrorCode.BAD_ARGUMENT,
    );
  });

  it("never changes its inputs and treats __proto__ as an ordinary key", () => {
    const local = w(JSON.parse('{"__proto__":"mine","animal":"horse","car":"Audi","color":"red"}'));
    const snapshot = JSON.stringify([base, local]);
    const m = mergeWallets(base, local, base);
    expect(JSON.stringify([base, local])).toBe(snapshot);
    expect(Object.hasOwn(m.wallet.preferences, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(m.wallet.preferences)).toBe(Object.prototype);
    expect(Object.entries(decodeWallet(encodeWallet(m.wallet)).preferences)).toContainEqual([
      "__proto__",
      "mine",
    ]);
  });
});

describe("wallet encoding", () => {
  it("round-trips with sorted keys, so equal wallets encode equally", () => {
    const a = withPreference(withPreference({ preferences: {} }, "car", "Audi"), "animal", "cow");
    expect(new TextDecoder().decode(encodeWallet(a))).toBe('{"preferences":{"animal":"cow","car":"Audi"}}');
    expect(walletsEqual(decodeWallet(encodeWallet(a)), a)).toBe(true);
    expect(walletsEqual(a, w({ animal: "cow" }))).toBe(false);
  });

  it("refuses anything that is not exactly a wallet", () => {
    for (const bad of ["nope", "[]", "{}", '{"preferences":{"a":1}}', '{"preferences":{},"x":1}', "null"]) {
      expect(thrown(() => decodeWallet(utf8(bad))).code).toBe(ErrorCode.BAD_ARGUMENT);
    }
    expect(thrown(() => decodeWallet(new Uint8Array([0xff, 0xfe]))).code).toBe(ErrorCode.BAD_ARGUMENT);
  });
});
