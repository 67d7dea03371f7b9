/**
 * How a ParallaxError travels in an rpc.capnp `Exception`, written once (as ws builds every
 * protocol error in one factory):
 * - `reason` is `[PARALLAX_ERR_*] message`, so a Parallax peer gets the code back; any other
 *   Cap'n Proto peer shows the whole reason;
 * - `type` is the error's kind, mapped to Cap'n Proto's exception types by the table below (the
 *   mapping names both sides, so it depends on no order);
 * - `trace` carries the stack only when the connection was told to expose stacks.
 *
 * Reading keeps only what `ParallaxError.fromRemote` allows: a kind from the allow-list (an unknown
 * type reads as `failed`) and a code of our own family (an unknown `[…]` prefix stays part of the
 * message).
 *
 * Tests: test/wire/exception.test.ts, and every Return or Abort in test/rpc/.
 */
import { ErrorCode, type ErrorKind, ParallaxError } from "../errors.js";
import { type Exception, Exception_Type } from "./gen/capnp/rpc.js";

const TYPE_OF_KIND: Readonly<Record<ErrorKind, Exception_Type>> = {
  failed: Exception_Type.FAILED,
  overloaded: Exception_Type.OVERLOADED,
  disconnected: Exception_Type.DISCONNECTED,
  unimplemented: Exception_Type.UNIMPLEMENTED,
};

const KIND_OF_TYPE: ReadonlyMap<number, ErrorKind> = new Map(
  Object.entries(TYPE_OF_KIND).map(([kind, type]) => [type, kind as ErrorKind]),
);

const CODE_PREFIX = /^\[(PARALLAX_ERR_[A-Z_]+)\] /;
const CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** The reason text an error travels as: `[code] message`. */
export function exceptionReason(error: ParallaxError): string {
  return `[${error.code}] ${error.message}`;
}

/** Splits a received reason into our code (when it names one) and the message. */
export function parseExceptionReason(reason: string): { code: ErrorCode | undefined; message: string } {
  const match = CODE_PREFIX.exec(reason);
  if (match === null || !CODES.has(match[1] as string)) return { code: undefined, message: reason };
  return { code: match[1] as ErrorCode, message: reason.slice(match[0].length) };
}

/** Fills `ex` from `error`; the stack goes along only if `exposeStack`. */
export function writeException(ex: Exception, error: ParallaxError, exposeStack = false): void {
  ex.reason = exceptionReason(error);
  ex.type = TYPE_OF_KIND[error.kind];
  if (exposeStack && error.stack !== undefined) ex.trace = error.stack;
}

/** Rebuilds the error a peer sent (its trace is never read). */
export function readException(ex: Exception): ParallaxError {
  return ParallaxError.fromRemote({
    kind: KIND_OF_TYPE.get(ex.type) ?? "failed",
    ...parseExceptionReason(ex.reason),
  });
}
