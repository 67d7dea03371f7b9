/**
 * Conversions between `schema/broker.capnp` and the records of the store and the login layer:
 * what arrives is copied out of the message and checked; what leaves is built from records.
 *
 * Invariant: nothing read from the wire is kept by reference (byte strings are copied), and every
 * value read here is bounded before it is stored.
 *
 * Tests: test/login/login.test.ts, test/login/identity.test.ts, test/login/api-key-scopes.test.ts
 */
import type * as $ from "capnp-ts";
import { checkVerifier } from "../cred/authorizer.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { ApiKeyRecord, KdfParams, PendingRecord, StoredVerifier } from "../store/index.js";
import {
  type ApiKeyInfo$Shape,
  AuthMethod,
  type KdfParams as WireKdfParams,
  PendingKind,
  type PendingRequest$Shape,
  UriMatch,
  type UriPermission,
  type UriPermission$Shape,
  type Verifier,
} from "../wire/gen/broker.js";
import type { AuthMethodName } from "./perspective.js";
import { readPattern, type UriMatchName, type UriRule } from "./uri-permissions.js";

export const MAX_DEVICE_CHARS = 100;
export const MAX_DESCRIPTION_CHARS = 200;
/** URI permissions one API key may carry (`Identity.createApiKey`). */
export const MAX_API_KEY_PERMISSIONS = 64;

const MATCH_NAME: Readonly<Record<number, UriMatchName>> = Object.freeze({
  [UriMatch.EXACT]: "exact",
  [UriMatch.PREFIX]: "prefix",
  [UriMatch.WILDCARD]: "wildcard",
});
const MATCH_WIRE: Readonly<Record<UriMatchName, UriMatch>> = Object.freeze({
  exact: UriMatch.EXACT,
  prefix: UriMatch.PREFIX,
  wildcard: UriMatch.WILDCARD,
});

/**
 * An API key's URI permissions from the wire: at most `MAX_API_KEY_PERMISSIONS`, each a
 * well-formed pattern (`readPattern`) granting at least one action, no pattern twice; in the
 * order given. BAD_ARGUMENT names the first fault and its position.
 */
export function readUriPermissions(list: $.List<UriPermission>): UriRule[] {
  const n = list.getLength();
  if (n > MAX_API_KEY_PERMISSIONS) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `an API key has at most ${MAX_API_KEY_PERMISSIONS} URI permissions; got ${n}`,
    );
  }
  const out: UriRule[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const p = list.get(i);
    const match = MATCH_NAME[p.match];
    if (match === undefined) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `permission ${i}: match ${p.match} is not exact, prefix or wildcard`,
      );
    }
    const pattern = readPattern(p.uri, match, `permission ${i}'s URI pattern`);
    const rule: UriRule = {
      ...pattern,
      call: p.call,
      register: p.register,
      publish: p.publish,
      subscribe: p.subscribe,
    };
    if (!(rule.call || rule.register || rule.publish || rule.subscribe)) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `permission ${i} (${match} "${pattern.uri}") grants no action: set call, register, publish or subscribe`,
      );
    }
    const key = `${match} ${pattern.uri}`;
    if (seen.has(key)) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `permission ${i} repeats the ${match} pattern "${pattern.uri}"`,
      );
    }
    seen.add(key);
    out.push(rule);
  }
  return out;
}

export function uriPermissionInfo(r: UriRule): UriPermission$Shape {
  return {
    uri: r.uri,
    match: MATCH_WIRE[r.match],
    call: r.call,
    register: r.register,
    publish: r.publish,
    subscribe: r.subscribe,
  };
}

/** KDF parameters from the wire (the algorithm is checked by `checkKdfParams` where it matters). */
export function readKdf(k: WireKdfParams): KdfParams {
  return {
    algorithm: k.algorithm as "argon2id",
    memoryKiB: k.memoryKiB,
    iterations: k.iterations,
    parallelism: k.parallelism,
  };
}

/** A verifier from the wire, copied out of the message and checked against the KDF floor. */
export function readVerifier(v: Verifier): StoredVerifier {
  const out: StoredVerifier = {
    salt: v.salt.slice(),
    kdf: readKdf(v.kdf),
    storedKey: v.storedKey.slice(),
    serverKey: v.serverKey.slice(),
  };
  checkVerifier(out);
  return out;
}

/** A device name from the wire: at most `MAX_DEVICE_CHARS` characters, no control characters. */
export function readDevice(device: string): string {
  if (device.length > MAX_DEVICE_CHARS) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a device name has at most ${MAX_DEVICE_CHARS} characters`,
    );
  }
  if (/\p{Cc}/u.test(device)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a device name cannot contain control characters");
  }
  return device;
}

/** A description from the wire (API keys): at most `MAX_DESCRIPTION_CHARS` characters. */
export function readDescription(description: string): string {
  if (description.length > MAX_DESCRIPTION_CHARS) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a description has at most ${MAX_DESCRIPTION_CHARS} characters`,
    );
  }
  return description;
}

export const AUTH_METHOD: Readonly<Record<AuthMethodName, AuthMethod>> = Object.freeze({
  password: AuthMethod.PASSWORD,
  publicKey: AuthMethod.PUBLIC_KEY,
  apiKey: AuthMethod.API_KEY,
  otp: AuthMethod.OTP,
  resume: AuthMethod.RESUME,
  anonymous: AuthMethod.ANONYMOUS,
  signUp: AuthMethod.SIGN_UP,
});

/** How a login was made, in words ("a password", "an API key"). */
export function describeMethod(m: AuthMethodName): string {
  return {
    password: "a password",
    publicKey: "a public key",
    apiKey: "an API key",
    otp: "a one-time password",
    resume: "a resume token",
    anonymous: "no credential (anonymous)",
    signUp: "a sign-up",
  }[m];
}

export function apiKeyInfo(k: ApiKeyRecord): ApiKeyInfo$Shape {
  return {
    id: BigInt(k.id),
    description: k.description,
    keyring: [...k.keyring],
    createdAt: BigInt(k.createdAt),
    expiresAt: BigInt(k.expiresAt),
    permissions: k.permissions.map(uriPermissionInfo),
  };
}

export function pendingInfo(p: PendingRecord): PendingRequest$Shape {
  return {
    id: BigInt(p.id),
    kind: p.kind === "signUp" ? PendingKind.SIGN_UP : PendingKind.DEVICE_KEY,
    username: p.username,
    device: p.device,
    publicKey: p.publicKey ?? new Uint8Array(0),
    createdAt: BigInt(p.createdAt),
    remoteAddress: p.remoteAddress,
  };
}
