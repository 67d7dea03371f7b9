import { describe, expect, it } from "vitest";
import { Argon2Kdf } from "../../src/cred/argon2-kdf.js";
import { checkKdfParams, checkSalt, KDF_CEILING, KDF_FLOOR, type KdfParams } from "../../src/cred/kdf.js";
import { WasmKdf } from "../../src/cred/wasm-kdf.js";
import { ErrorCode } from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";

const with_ = (patch: Record<string, unknown>): KdfParams => ({ ...KDF_FLOOR, ...patch }) as KdfParams;

describe("checkKdfParams", () => {
  it("accepts the floor and the ceiling themselves", () => {
    expect(() => checkKdfParams(KDF_FLOOR)).not.toThrow();
    expect(() => checkKdfParams(KDF_CEILING)).not.toThrow();
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["another algorithm", { algorithm: "argon2i" }, /^kdf\.algorithm must be "argon2id"; got "argon2i"$/],
    ["memory below the floor", { memoryKiB: 19455 }, /^kdf\.memoryKiB must be at least 19456; got 19455$/],
    [
      "memory above the ceiling",
      { memoryKiB: 1048577 },
      /^kdf\.memoryKiB must be at most 1048576; got 1048577$/,
    ],
    ["fractional memory", { memoryKiB: 20000.5 }, /^kdf\.memoryKiB must be an integer; got 20000\.5$/],
    ["memory that is not a number", { memoryKiB: "20000" }, /^kdf\.memoryKiB must be an integer; got 20000$/],
    ["one iteration", { iterations: 1 }, /^kdf\.iterations must be at least 2; got 1$/],
    ["65 iterations", { iterations: 65 }, /^kdf\.iterations must be at most 64; got 65$/],
    ["NaN iterations", { iterations: Number.NaN }, /^kdf\.iterations must be an integer; got NaN$/],
    ["no lanes", { parallelism: 0 }, /^kdf\.parallelism must be at least 1; got 0$/],
    ["17 lanes", { parallelism: 17 }, /^kdf\.parallelism must be at most 16; got 17$/],
    ["fractional lanes", { parallelism: 1.5 }, /^kdf\.parallelism must be an integer; got 1\.5$/],
  ];
  for (const [what, patch, message] of cases) {
    it(`rejects ${what} with BAD_ARGUMENT naming the field, value and bound`, async () => {
      const err = await rejection((async () => checkKdfParams(with_(patch)))());
      expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message).toMatch(message);
    });
  }
});

describe("checkSalt", () => {
  it("accepts 16 to 64 bytes", () => {
    expect(() => checkSalt(new Uint8Array(16))).not.toThrow();
    expect(() => checkSalt(new Uint8Array(64))).not.toThrow();
  });

  it("rejects 15 and 65 bytes with BAD_ARGUMENT", async () => {
    for (const n of [15, 65]) {
      const err = await rejection((async () => checkSalt(new Uint8Array(n)))());
      expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
      expect(err.message).toBe(`salt must be 16 to 64 bytes; got ${n}`);
    }
  });
});

describe("both Kdfs", () => {
  for (const kdf of [new Argon2Kdf(), new WasmKdf()]) {
    it(`${kdf.name} refuse parameters below the floor before deriving anything`, async () => {
      await expect(kdf.derive("pw", new Uint8Array(16), with_({ memoryKiB: 1024 }))).rejects.toMatchObject({
        code: ErrorCode.BAD_ARGUMENT,
        message: expect.stringContaining("memoryKiB"),
      });
    });

    it(`${kdf.name} refuse a short salt`, async () => {
      await expect(kdf.derive("pw", new Uint8Array(8), KDF_FLOOR)).rejects.toMatchObject({
        code: ErrorCode.BAD_ARGUMENT,
        message: expect.stringContaining("salt"),
      });
    });
  }
});
