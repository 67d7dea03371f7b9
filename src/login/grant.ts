/**
 * Grants: the CallScopes the login layer hangs on everything a login hands out.
 *
 * A `Login` is one successful login (one Identity capability) on one connection. An `Attachment`
 * is one Perspective attached through a login. Both are `Grant`s: the RPC engine asks them before
 * every call through a capability they handed out (directly or in the results of such calls) and
 * counts what the peer holds under them; `grantOf(ctx)` tells a method which grant its call came
 * through.
 *
 * Invariants:
 * - Once a login ends (its identity's epoch moved on, the connection closed, logout, release),
 *   every call under it and under its attachments fails with PARALLAX_ERR_REVOKED, and it never
 *   admits a call again.
 * - `detached` runs exactly once per attachment: `Attachment.end` is idempotent.
 * - Per-identity usage (calls in flight, capabilities held) is summed over all the identity's
 *   logins on all connections; each admitted call is counted out exactly once.
 *
 * Tests: test/login/authority.test.ts, test/login/service-kit.test.ts
 */
import { type CallContext, type CallScope, type Capability, primaryScope } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { RpcConnection } from "../rpc/index.js";
import type { KeyringPair } from "../store/index.js";
import type { AuthMethodName, IdentityView, Perspective } from "./perspective.js";

/** Why an attachment (or a login) ended. Services act on `kind`; `message` is for people. */
export interface DetachReason {
  readonly kind: DetachKind;
  readonly message: string;
}

/**
 * - `detached`: the client called `Perspective.detach()`;
 * - `released`: the client let go of every reference the attachment (or login) handed out;
 * - `disconnected`: the connection closed, or the broker shut down;
 * - `revoked`: the login ended: the credentials changed, the user logged out or was suspended.
 */
export type DetachKind = "detached" | "released" | "disconnected" | "revoked";

export function detachReason(kind: DetachKind, message: string): DetachReason {
  return Object.freeze({ kind, message });
}

/**
 * Why a grant ends when the peer holds nothing under it any more: the connection closing lets go
 * of everything too (before its close listeners run), and that is a disconnect, not a release.
 */
export function releaseReason(connection: RpcConnection): DetachReason {
  return connection.closed
    ? detachReason("disconnected", "the connection closed")
    : detachReason("released", "released by the client");
}

/** What one identity uses across all its connections. */
export class IdentityUsage {
  callsInFlight = 0;
  exports = 0;
  readonly logins = new Set<Login>();

  constructor(
    readonly maxCalls: number,
    readonly maxExports: number,
    /** Runs when the identity has no login, call or capability left (the broker forgets it). */
    readonly onIdle: (usage: IdentityUsage) => void,
  ) {}

  get idle(): boolean {
    return this.logins.size === 0 && this.callsInFlight === 0 && this.exports === 0;
  }

  /** Tells the owner once nothing is left. */
  settle(): void {
    if (this.idle) this.onIdle(this);
  }
}

/** A scope the login layer hands capabilities out under: a login, or an attachment of one. */
export interface Grant extends CallScope {
  /** The login this grant belongs to (itself, for a login). */
  readonly login: Login;
  /** Who is acting: the identity, keyring and epoch of the login. */
  readonly view: IdentityView;
  /** The attached Perspective, for an attachment; undefined for a login. */
  readonly perspective: Perspective | undefined;
}

/** The grant a call came through, or undefined for a call that came through no login. */
export function grantOf(ctx: CallContext): Grant | undefined {
  const scope = primaryScope(ctx.origin?.scope);
  return scope instanceof Login || scope instanceof Attachment ? scope : undefined;
}

export class Login implements Grant {
  #ended: ParallaxError | undefined;
  /** Capabilities the peer holds under this login and its attachments. */
  #exports = 0;
  readonly attachments = new Set<Attachment>();
  readonly view: IdentityView;
  /** Resumed logins: the resume-token family this login continues. */
  resumedFrom: Uint8Array | undefined;
  /** Resume-token families this login issued. */
  readonly issuedFamilies: Uint8Array[] = [];

  /**
   * The families ending this login alone (`logout`) deletes, so the device it was made on cannot
   * quietly come back: the one it continues and those it issued.
   */
  get resumeFamilies(): Uint8Array[] {
    return this.resumedFrom === undefined
      ? [...this.issuedFamilies]
      : [this.resumedFrom, ...this.issuedFamilies];
  }
  /** Set by the broker: runs when the peer let go of everything this login handed out. */
  onReleased: (login: Login) => void = () => {};

  constructor(
    readonly usage: IdentityUsage,
    view: IdentityView,
    /** Describes the credential, for people: "password", "api key 3 (ci)". */
    readonly credentialLabel: string,
    /** The connection the login's Identity was handed out on. */
    readonly connection: RpcConnection,
    /** Resume tokens issued from this login carry this keyring (null = the identity's own). */
    readonly attenuated: readonly KeyringPair[] | null,
  ) {
    this.view = view;
  }

  get login(): Login {
    return this;
  }

  get perspective(): undefined {
    return undefined;
  }

  get ended(): ParallaxError | undefined {
    return this.#ended;
  }

  get authMethod(): AuthMethodName {
    return this.view.authMethod;
  }

  /** Throws PARALLAX_ERR_REVOKED once this login ended. */
  check(): void {
    if (this.#ended !== undefined) throw this.#ended;
  }

  enterCall(): void {
    this.check();
    const u = this.usage;
    if (u.callsInFlight >= u.maxCalls) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `${this.view.name} has ${u.maxCalls} calls in flight across all connections (maxIdentityCallsInFlight)`,
      );
    }
    u.callsInFlight++;
  }

  leaveCall(): void {
    this.usage.callsInFlight--;
    this.usage.settle();
  }

  enterExport(): void {
    this.check();
    const u = this.usage;
    if (u.exports >= u.maxExports) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `${this.view.name} holds ${u.maxExports} capabilities across all connections (maxIdentityExports)`,
      );
    }
    u.exports++;
    this.#exports++;
  }

  leaveExport(): void {
    this.usage.exports--;
    this.#exports--;
    if (this.#exports === 0 && this.#ended === undefined) this.onReleased(this);
    this.usage.settle();
  }

  /** Ends the login and detaches its attachments. Idempotent; the first reason stays. */
  end(reason: DetachReason): void {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.REVOKED, reason.message);
    for (const a of [...this.attachments]) a.end(reason);
  }
}

export class Attachment implements Grant {
  #ended: ParallaxError | undefined;
  /** Capabilities the peer holds under this attachment; when it drops to 0 the attachment ends. */
  #exports = 0;

  constructor(
    readonly login: Login,
    readonly service: string,
    readonly perspectiveName: string,
    /** The Perspective the service handed out (after `attached`). */
    readonly perspective: Perspective,
    /** The client's callback capability, owned by the attachment until it ends. */
    readonly client: Capability | null,
  ) {}

  get view(): IdentityView {
    return this.login.view;
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  check(): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.login.check();
  }

  enterCall(): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.login.enterCall();
  }

  leaveCall(): void {
    this.login.leaveCall();
  }

  enterExport(): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.login.enterExport();
    this.#exports++;
  }

  leaveExport(): void {
    // The peer let go of the perspective and everything it handed out: that detaches it.
    if (--this.#exports === 0) this.end(releaseReason(this.login.connection));
    this.login.leaveExport();
  }

  /** Ends the attachment: calls `detached` once and drops the client capability. */
  end(reason: DetachReason): void {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.REVOKED, reason.message);
    this.login.attachments.delete(this);
    try {
      this.perspective.detached(this.client, this.login.view, reason);
    } catch {
      // a failing detached() must not stop the others
    }
    this.client?.dispose();
  }
}
