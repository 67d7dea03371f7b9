/**
 * One error family for all of Parallax.
 *
 * Every error carries a stable `code` (`PARALLAX_ERR_*`, listed in the README) and a `kind` taken
 * from Cap'n Proto's exception types, which is what a caller acts on:
 * - `failed`: the call failed; retrying the same call will fail the same way.
 * - `overloaded`: a limit or quota was hit; retrying later may succeed.
 * - `disconnected`: the connection (or the capability's host) is gone; reconnect and retry.
 * - `unimplemented`: the target does not implement this interface or method.
 *
 * Errors that arrive from a peer are rebuilt with `ParallaxError.fromRemote`, which keeps the kind
 * (from an allow-list) and the message, never a class or stack the peer names. How an error travels
 * (the `[PARALLAX_ERR_*] message` reason and the kind ↔ Exception.Type mapping) is written once, in
 * `src/wire/exception.ts`.
 *
 * The factories at the end give each common cause one message, wherever it is raised.
 *
 * Tests: test/wire/exception.test.ts, test/docs.test.ts
 */

export type ErrorKind = "failed" | "overloaded" | "disconnected" | "unimplemented";

export const ERROR_KINDS: readonly ErrorKind[] = ["failed", "overloaded", "disconnected", "unimplemented"];

/** Stable error codes. Adding one is fine; renaming one breaks users. */
export const ErrorCode = {
  /** A method threw or a call failed for an application reason. */
  FAILED: "PARALLAX_ERR_FAILED",
  /** The peer or target answered `unimplemented` for an interface or method. */
  UNIMPLEMENTED: "PARALLAX_ERR_UNIMPLEMENTED",
  /** The connection closed; every import and pending question fails with this. */
  DISCONNECTED: "PARALLAX_ERR_DISCONNECTED",
  /** A stub was used after `dispose()`. */
  DISPOSED: "PARALLAX_ERR_DISPOSED",
  /** A call argument did not match the schema (wrong type, two union members, ...). */
  BAD_ARGUMENT: "PARALLAX_ERR_BAD_ARGUMENT",
  /** A Cap'n Proto message could not be decoded. */
  MALFORMED_MESSAGE: "PARALLAX_ERR_MALFORMED_MESSAGE",
  /** The peer broke the RPC protocol; the connection is aborted. */
  PROTOCOL: "PARALLAX_ERR_PROTOCOL",
  /** A configured limit was exceeded. */
  LIMIT: "PARALLAX_ERR_LIMIT",
  /** The call was canceled by the caller. */
  CANCELED: "PARALLAX_ERR_CANCELED",
  /** The capability was revoked (its credential epoch ended). */
  REVOKED: "PARALLAX_ERR_REVOKED",
  /** The schema compiler met something it cannot translate. */
  CODEGEN: "PARALLAX_ERR_CODEGEN",
  /** A login failed: wrong password, unknown name, bad signature or key, used or expired challenger. */
  AUTH_FAILED: "PARALLAX_ERR_AUTH_FAILED",
  /** Too many failed logins for this name or address; the message says when to retry. */
  RATE_LIMITED: "PARALLAX_ERR_RATE_LIMITED",
  /** The caller's login may not do this (not on its keyring, not a password login, not an admin). */
  PERMISSION_DENIED: "PARALLAX_ERR_PERMISSION_DENIED",
  /** A pending sign-up or device key was rejected or expired. */
  REJECTED: "PARALLAX_ERR_REJECTED",
  /** A per-identity quota (calls in flight, capabilities held) is used up; the connection stays. */
  QUOTA: "PARALLAX_ERR_QUOTA",
  /** The named thing does not exist (or is not the caller's to see). */
  NOT_FOUND: "PARALLAX_ERR_NOT_FOUND",
  /** The thing to create exists already (a user name taken, a key registered). */
  ALREADY_EXISTS: "PARALLAX_ERR_ALREADY_EXISTS",
  /** The store could not be opened or migrated, or a write failed; nothing was changed. */
  STORAGE: "PARALLAX_ERR_STORAGE",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KIND_OF_CODE: Record<ErrorCode, ErrorKind> = {
  PARALLAX_ERR_FAILED: "failed",
  PARALLAX_ERR_UNIMPLEMENTED: "unimplemented",
  PARALLAX_ERR_DISCONNECTED: "disconnected",
  PARALLAX_ERR_DISPOSED: "failed",
  PARALLAX_ERR_BAD_ARGUMENT: "failed",
  PARALLAX_ERR_MALFORMED_MESSAGE: "failed",
  PARALLAX_ERR_PROTOCOL: "failed",
  PARALLAX_ERR_LIMIT: "overloaded",
  PARALLAX_ERR_CANCELED: "failed",
  PARALLAX_ERR_REVOKED: "failed",
  PARALLAX_ERR_CODEGEN: "failed",
  PARALLAX_ERR_AUTH_FAILED: "failed",
  PARALLAX_ERR_RATE_LIMITED: "overloaded",
  PARALLAX_ERR_PERMISSION_DENIED: "failed",
  PARALLAX_ERR_REJECTED: "failed",
  PARALLAX_ERR_QUOTA: "overloaded",
  PARALLAX_ERR_NOT_FOUND: "failed",
  PARALLAX_ERR_ALREADY_EXISTS: "failed",
  PARALLAX_ERR_STORAGE: "failed",
};

export class ParallaxError extends Error {
  override readonly name = "ParallaxError";
  readonly code: ErrorCode;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, message: string, options?: { kind?: ErrorKind; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.kind = options?.kind ?? KIND_OF_CODE[code];
  }

  /**
   * Rebuilds an error received from a peer. Only the kind (checked against the allow-list), a code
   * from our own family and the text survive, never a class or stack the peer names; an unknown
   * or absent code is derived from the kind. `src/wire/exception.ts` reads these parts out of an
   * rpc.capnp Exception.
   */
  static fromRemote(parts: { kind: string; code: string | undefined; message: string }): ParallaxError {
    const k: ErrorKind = (ERROR_KINDS as readonly string[]).includes(parts.kind)
      ? (parts.kind as ErrorKind)
      : "failed";
    const known = parts.code !== undefined && Object.hasOwn(KIND_OF_CODE, parts.code);
    return new ParallaxError(known ? (parts.code as ErrorCode) : codeForKind(k), parts.message, { kind: k });
  }
}

function codeForKind(kind: ErrorKind): ErrorCode {
  switch (kind) {
    case "overloaded":
      return ErrorCode.LIMIT;
    case "disconnected":
      return ErrorCode.DISCONNECTED;
    case "unimplemented":
      return ErrorCode.UNIMPLEMENTED;
    default:
      return ErrorCode.FAILED;
  }
}

/** Wraps anything thrown into a ParallaxError, keeping ParallaxErrors as they are. */
export function toParallaxError(err: unknown): ParallaxError {
  if (err instanceof ParallaxError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ParallaxError(ErrorCode.FAILED, message, { cause: err });
}

/** The peer broke the RPC protocol: the connection is aborted with this. */
export function protocolError(why: string): ParallaxError {
  return new ParallaxError(ErrorCode.PROTOCOL, `protocol violation: ${why}`);
}

/** Bytes that are not a valid Cap'n Proto message. */
export function malformedError(why: string): ParallaxError {
  return new ParallaxError(ErrorCode.MALFORMED_MESSAGE, `malformed message: ${why}`);
}

/** The caller canceled the call (its signal aborted, or it disposed the pending results). */
export function canceledError(): ParallaxError {
  return new ParallaxError(ErrorCode.CANCELED, "the call was canceled");
}

/**
 * A call on a capability that is not there: a null capability pointer, or a pipelined path
 * through results that holds no capability at that place.
 */
export function nullCapError(): ParallaxError {
  return new ParallaxError(ErrorCode.FAILED, "no capability there (a null capability pointer)");
}

/** A call argument that does not fit the schema; errors that already carry a code keep it. */
export function badArgumentError(err: unknown): ParallaxError {
  const e = toParallaxError(err);
  return e.code === ErrorCode.FAILED
    ? new ParallaxError(ErrorCode.BAD_ARGUMENT, e.message, { cause: err })
    : e;
}
