/**
 * What a service author writes: a Service that hands out Perspectives, and Viewables shared by
 * many users.
 *
 * A Perspective is one user's view of one service (PB's Perspective, Twisted's later "avatar").
 * Its methods act as that user: the name comes from the Perspective, never from an argument.
 * `attached` and `detached` run exactly once per attachment; `detached` runs when the client
 * detaches, lets go, disconnects, logs out or is revoked, whichever comes first, and says which.
 *
 * Tests: test/login/authority.test.ts, test/login/service-kit.test.ts
 */
import type { CallContext, Capability } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { KeyringPair } from "../store/index.js";
import type { Perspective as PerspectiveStub, Perspective_detach_Params } from "../wire/gen/broker.js";
import { Attachment, type DetachReason, detachReason, grantOf } from "./grant.js";
import type { UriRule } from "./uri-permissions.js";

/** How a login was authenticated (the schema's AuthMethod, as text). */
export type AuthMethodName = "password" | "publicKey" | "apiKey" | "otp" | "resume" | "anonymous" | "signUp";

/** What a service learns of the user attaching: read-only, no credentials. */
export interface IdentityView {
  /** Stable id of the identity. Meaningless for anonymous logins (check `anonymous`). */
  readonly id: number;
  /** True for anonymous logins, which all share one view: there is no account behind them. */
  readonly anonymous: boolean;
  readonly name: string;
  readonly authMethod: AuthMethodName;
  /** The keyring of this login (an API key's subset, if any). */
  readonly keyring: readonly KeyringPair[];
  readonly epoch: number;
  /**
   * The URI limits of the API key this login was made with, in the key's order (frozen);
   * undefined = not limited by URI (every other kind of login, and keys minted without any).
   * A service acting on URIs (the router) allows an action only if these allow it too
   * (`allows`/`allowsPattern` in uri-permissions.ts), on top of its own rules.
   */
  readonly uriPermissions?: readonly UriRule[];
}

export interface Service {
  /** The service name keyring entries use. */
  readonly name: string;
  /**
   * The Perspective `perspectiveName` of this service for `identity`. Called only for pairs on
   * the login's keyring. Throw PARALLAX_ERR_NOT_FOUND for a perspective the service lacks.
   */
  getPerspectiveForIdentity(
    perspectiveName: string,
    identity: IdentityView,
  ): Perspective | Promise<Perspective>;
  /** The broker is shutting down: drop timers and subscriptions. Optional. */
  close?(): void;
}

export abstract class Perspective {
  /**
   * A capability on this perspective for its schema interface, e.g. `LobbyMember.server(this)`.
   * Called once per attachment.
   */
  abstract capability(): PerspectiveStub;

  /**
   * A client attached. `client` is its callback capability (or null); the Perspective owns it
   * until `detached`, which disposes it afterwards. May return another Perspective to hand out
   * instead (PB's `attached` returning a different perspective).
   */
  attached(_client: Capability | null, _identity: IdentityView): Perspective | Promise<Perspective> {
    return this;
  }

  /**
   * The attachment ended; `reason.kind` says why. Runs once per attachment, on the Perspective
   * `attached` returned.
   */
  detached(_client: Capability | null, _identity: IdentityView, _reason: DetachReason): void {}

  /** Schema method `Perspective.detach`: the holder ends this attachment now. */
  detach(_params: Perspective_detach_Params, ctx: CallContext): void {
    const grant = grantOf(ctx);
    if (!(grant instanceof Attachment)) {
      throw new ParallaxError(ErrorCode.FAILED, "detach works only on an attached perspective");
    }
    grant.end(detachReason("detached", "detached by the client"));
  }
}

/**
 * The login a call was made under (its identity, keyring and epoch), taken from the grant the
 * broker set on the export entry. Fails the call if it came through no login.
 */
export function callerIdentity(ctx: CallContext): IdentityView {
  const view = grantOf(ctx)?.view;
  if (view === undefined) {
    throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this object is reachable only through a login");
  }
  return view;
}

/**
 * The caller's Perspective, taken from the grant the call runs under (set by the broker from the
 * export entry the caller got the object through). Fails the call if it came through no
 * attachment (a local call, or an object handed out before any perspective).
 */
export function callerPerspective(ctx: CallContext): Perspective {
  const p = grantOf(ctx)?.perspective;
  if (p === undefined) {
    throw new ParallaxError(
      ErrorCode.PERMISSION_DENIED,
      "this object is reachable only through a perspective",
    );
  }
  return p;
}

/**
 * The server methods of a Viewable: each takes the caller's Perspective first. `S` is a
 * generated `$Server` interface, `P` the service's Perspective class.
 */
export type ViewableServer<S, P extends Perspective> = {
  [K in keyof S]: S[K] extends (params: infer A, ctx: infer C) => infer R
    ? (perspective: P, params: A, ctx: C) => R
    : never;
};

/**
 * Turns a Viewable (methods taking the caller's Perspective first) into a plain server object for
 * `Iface.server(...)`. The broker supplies the Perspective from the export entry the caller got
 * the object through; a client can neither supply nor forge it. `isPerspective` checks it is the
 * service's own kind. Only schema methods are ever looked up by the engine, so helper methods on
 * the Viewable are wrapped but unreachable.
 */
export function viewable<S extends object, P extends Perspective>(
  impl: ViewableServer<S, P>,
  isPerspective: (p: Perspective) => p is P,
): S {
  return wrapMethods(impl, (fn, params, ctx) => {
    const p = callerPerspective(ctx);
    if (!isPerspective(p)) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this object belongs to another service");
    }
    return (fn as (this: unknown, ...a: unknown[]) => unknown).call(impl, p, params, ctx);
  }) as S;
}

type AnyMethod = (...args: never[]) => unknown;

/**
 * A plain object with one function per method of `impl` (own and inherited, `constructor`
 * excluded), each calling `around(method, params, ctx)`.
 */
export function wrapMethods(
  impl: object,
  around: (fn: AnyMethod, params: unknown, ctx: CallContext) => unknown,
): Record<string, (params: unknown, ctx: CallContext) => unknown> {
  const server: Record<string, (params: unknown, ctx: CallContext) => unknown> = {};
  let proto: object | null = impl;
  while (proto !== null && proto !== Object.prototype) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      // Methods only: accessors are not evaluated (a getter may not be ready yet).
      const fn = Object.getOwnPropertyDescriptor(proto, name)?.value;
      if (name === "constructor" || typeof fn !== "function" || name in server) continue;
      server[name] = (params, ctx) => around(fn as AnyMethod, params, ctx);
    }
    proto = Object.getPrototypeOf(proto);
  }
  return server;
}
