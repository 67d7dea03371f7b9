import { describe, expect, it } from "vitest";
import {
  constantTimeEqual,
  hashSecret,
  hasSecretFormat,
  newSecret,
  parseApiKey,
  randomBytes,
} from "../../src/cred/secrets.js";
import { ErrorCode } from "../../src/errors.js";

const B64URL = "[A-Za-z0-9_-]";

describe("secrets", () => {
  it("formats API keys as pxk_<id>_<43 base64url chars>", () => {
    expect(newSecret("pxk", 42)).toMatch(new RegExp(`^pxk_42_${B64URL}{43}$`));
    expect(newSecret("pxk", 7n)).toMatch(new RegExp(`^pxk_7_${B64URL}{43}$`));
  });

  it("formats one-time passwords and resume tokens", () => {
    expect(newSecret("pxo")).toMatch(new RegExp(`^pxo_${B64URL}{32}$`));
    expect(newSecret("pxr")).toMatch(new RegExp(`^pxr_${B64URL}{43}$`));
  });

  it("never repeats a secret", () => {
    const seen = new Set(Array.from({ length: 200 }, () => newSecret("pxr")));
    expect(seen.size).toBe(200);
  });

  it("refuses an API key without a valid id, and an id on other kinds", () => {
    for (const make of [
      () => newSecret("pxk"),
      () => newSecret("pxk", -1),
      () => newSecret("pxk", 1.5),
      () => newSecret("pxk", 2n ** 53n),
      () => newSecret("pxo", 1),
    ]) {
      expect(make).toThrow(expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT }));
    }
  });

  it("parses the API keys it makes", () => {
    const key = newSecret("pxk", 9007199254740991);
    expect(parseApiKey(key)).toEqual({
      id: 9007199254740991,
      secret: key.slice("pxk_9007199254740991_".length),
    });
    const zero = newSecret("pxk", 0);
    expect(parseApiKey(zero)?.id).toBe(0);
  });

  it("parses a key whose secret begins with '_', which base64url allows", () => {
    const secret = `_${"A".repeat(42)}`;
    expect(parseApiKey(`pxk_5_${secret}`)).toEqual({ id: 5, secret });
  });

  it("rejects malformed API keys without throwing", () => {
    const body = newSecret("pxk", 1).slice("pxk_1_".length);
    for (const bad of [
      `pxr_1_${body}`,
      `PXK_1_${body}`,
      `pxk_x_${body}`,
      `pxk_-1_${body}`,
      `pxk_01_${body}`,
      `pxk_1.5_${body}`,
      `pxk__${body}`,
      `pxk_1_${body.slice(1)}`,
      `pxk_1_${body}A`,
      `pxk_1_2_${body}`,
      `pxk__1_${body}`,
      `pxk_1_${body}_`,
      `pxk_1_${body.slice(0, 42)}=`,
      `pxk_1_${body.slice(0, 42)}B`,
      `pxk_99999999999999999_${body}`,
      ` pxk_1_${body}`,
      "",
      42 as unknown as string,
    ]) {
      expect(parseApiKey(bad), bad).toBeUndefined();
    }
  });

  it("checks the format of one-time passwords and resume tokens", () => {
    expect(hasSecretFormat("pxo", newSecret("pxo"))).toBe(true);
    expect(hasSecretFormat("pxr", newSecret("pxr"))).toBe(true);
    expect(hasSecretFormat("pxr", newSecret("pxo"))).toBe(false);
    expect(hasSecretFormat("pxo", `${newSecret("pxo")}x`)).toBe(false);
  });

  it("hashes a secret to the SHA-256 of its UTF-8, the same every time", () => {
    expect(Buffer.from(hashSecret("abc")).toString("hex")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    const key = newSecret("pxk", 3);
    expect(constantTimeEqual(hashSecret(key), hashSecret(key))).toBe(true);
    expect(constantTimeEqual(hashSecret(key), hashSecret(`${key}x`))).toBe(false);
  });

  it("compares bytes for equality, including different lengths", () => {
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
  });

  it("draws random bytes of the length asked", () => {
    const a = randomBytes(24);
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a).toHaveLength(24);
    expect(constantTimeEqual(a, randomBytes(24))).toBe(false);
  });
});
