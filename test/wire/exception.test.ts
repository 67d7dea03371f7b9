/** How errors travel in rpc.capnp Exceptions (src/wire/exception.ts): one format, both ways. */
import { Message } from "capnp-ts";
import { describe, expect, it } from "vitest";
import { ERROR_KINDS, ErrorCode, ParallaxError } from "../../src/errors.js";
import { parseExceptionReason, readException, writeException } from "../../src/wire/exception.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";

function exception(): rpc.Exception {
  return new Message().initRoot(rpc.Exception);
}

function roundTrip(error: ParallaxError, exposeStack = false): { ex: rpc.Exception; back: ParallaxError } {
  const ex = exception();
  writeException(ex, error, exposeStack);
  return { ex, back: readException(ex) };
}

describe("an error in an Exception", () => {
  it.each(Object.values(ErrorCode))(
    "travels as [%s] message and comes back with its code, kind and message",
    (code) => {
      const error = new ParallaxError(code, `something about ${code}`);
      const { ex, back } = roundTrip(error);
      expect(ex.reason).toBe(`[${code}] something about ${code}`);
      expect(back).toBeInstanceOf(ParallaxError);
      expect({ code: back.code, kind: back.kind, message: back.message }).toEqual({
        code,
        kind: error.kind,
        message: error.message,
      });
    },
  );

  it("maps each kind to the Cap'n Proto exception type of that name, both ways", () => {
    for (const kind of ERROR_KINDS) {
      const { ex, back } = roundTrip(new ParallaxError(ErrorCode.FAILED, "x", { kind }));
      expect(ex.type).toBe(rpc.Exception_Type[kind.toUpperCase() as keyof typeof rpc.Exception_Type]);
      expect(back.kind).toBe(kind);
    }
  });

  it("sends the stack only when asked to", () => {
    const error = new ParallaxError(ErrorCode.FAILED, "boom");
    expect(roundTrip(error).ex.trace).toBe("");
    expect(roundTrip(error, true).ex.trace).toContain("boom");
  });
});

describe("an Exception from any peer", () => {
  it("without our prefix keeps its whole reason, with a code derived from its type", () => {
    const ex = exception();
    ex.reason = "remote exception: out of memory";
    ex.type = rpc.Exception_Type.OVERLOADED;
    expect(readException(ex)).toMatchObject({
      code: ErrorCode.LIMIT,
      kind: "overloaded",
      message: "remote exception: out of memory",
    });
  });

  it("naming a code we do not have keeps the prefix as part of the message", () => {
    expect(parseExceptionReason("[PARALLAX_ERR_NO_SUCH] gone")).toEqual({
      code: undefined,
      message: "[PARALLAX_ERR_NO_SUCH] gone",
    });
    const ex = exception();
    ex.reason = "[PARALLAX_ERR_NO_SUCH] gone";
    ex.type = rpc.Exception_Type.DISCONNECTED;
    expect(readException(ex)).toMatchObject({
      code: ErrorCode.DISCONNECTED,
      message: "[PARALLAX_ERR_NO_SUCH] gone",
    });
  });

  it("of a type outside the allow-list reads as failed", () => {
    const ex = exception();
    ex.reason = "[PARALLAX_ERR_QUOTA] too many";
    ex.type = 99 as rpc.Exception_Type;
    expect(readException(ex)).toMatchObject({ code: ErrorCode.QUOTA, kind: "failed", message: "too many" });
  });

  it("never carries the peer's trace into the error", () => {
    const ex = exception();
    ex.reason = "boom";
    ex.trace = "at evil (peer.js:1)";
    expect(readException(ex).stack ?? "").not.toContain("peer.js");
  });
});
