/**
 * Grants: the CallScopes the login layer hangs on everything a login hands out.
 *
 * A `Session` is one login (one Identity capability) on one connection. An `Attachment` is one
 * Perspective attached through a session. The RPC engine asks them before every call through a
 * capability they handed out (directly or in the results of such calls) and counts what the peer
 * holds under them.
 *
 * Invariants:
 * - Once a session is revoked (its identity's epoch moved on, the connection closed, logout), every
 *   call under it and under its attachments fails with PARALLAX_ERR_REVOKED, and it never admits
 *   a call again.
 * - `detached` runs exactly once per attachment: `Attachment.end` is idempotent.
 * - Per-identity usage (calls in flight, capabilities held) is summed over all the identity's
 *   sessions on all connections; each admitted call is counted out exactly once.
 */
import type { Capability, CallScope } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { KeyringPair } from "../store/index.js";
import type { AuthMethodName, IdentityView, Perspective } from "./perspective.js";

/** What one identity uses across all its connections. */
export class IdentityUsage {
  callsInFlight = 0;
  exports = 0;
  readonly sessions = new Set<Session>();

  constructor(
    readonly maxCalls: number,
    readonly maxExports: number,
    /** Runs when the identity has no session, call or capability left (the broker forgets it). */
    readonly onIdle: (usage: IdentityUsage) => void,
  ) {}

  get idle(): boolean {
    return this.sessions.size === 0 && this.callsInFlight === 0 && this.exports === 0;
  }

  /** Tells the owner once nothing is left. */
  settle(): void {
    if (this.idle) this.onIdle(this);
  }
}

export class Session implements CallScope {
  #revoked: ParallaxError | undefined;
  /** Capabilities the peer holds under this session and its attachments. */
  #exports = 0;
  readonly attachments = new Set<Attachment>();
  readonly view: IdentityView;
  /** Set by the broker: runs when the peer let go of everything this session handed out. */
  onReleased: (session: Session) => void = () => {};

  constructor(
    readonly usage: IdentityUsage,
    view: IdentityView,
    /** Describes the credential: "password", "api key 3 (ci)". */
    readonly grant: string,
    /** The connection the session's Identity was handed out on. */
    readonly connection: object,
    /** Resume tokens issued from this session carry this keyring (null = the identity's own). */
    readonly attenuated: readonly KeyringPair[] | null,
  ) {
    this.view = view;
  }

  get revoked(): ParallaxError | undefined {
    return this.#revoked;
  }

  get authMethod(): AuthMethodName {
    return this.view.authMethod;
  }

  /** Throws PARALLAX_ERR_REVOKED once this session ended. */
  check(): void {
    if (this.#revoked !== undefined) throw this.#revoked;
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
    if (this.#exports === 0 && this.#revoked === undefined) this.onReleased(this);
    this.usage.settle();
  }

  /** Ends the session and detaches its attachments. Idempotent; the first reason stays. */
  revoke(reason: string): void {
    if (this.#revoked !== undefined) return;
    this.#revoked = new ParallaxError(ErrorCode.REVOKED, reason);
    for (const a of [...this.attachments]) a.end(reason);
  }
}

export class Attachment implements CallScope {
  #ended: ParallaxError | undefined;
  /** Capabilities the peer holds under this attachment; when it drops to 0 the attachment ends. */
  #exports = 0;

  constructor(
    readonly session: Session,
    readonly service: string,
    readonly perspectiveName: string,
    /** The Perspective the service handed out (after `attached`). */
    readonly perspective: Perspective,
    /** The client's callback capability, owned by the attachment until it ends. */
    readonly client: Capability | null,
  ) {}

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  check(): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.session.check();
  }

  enterCall(): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.session.enterCall();
  }

  leaveCall(): void {
    this.session.leaveCall();
  }

  enterExport(): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.session.enterExport();
    this.#exports++;
  }

  leaveExport(): void {
    // The peer let go of the perspective and everything it handed out: that detaches it.
    if (--this.#exports === 0) this.end("released by the client");
    this.session.leaveExport();
  }

  /** Ends the attachment: calls `detached` once and drops the client capability. */
  end(reason: string): void {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.REVOKED, reason);
    this.session.attachments.delete(this);
    try {
      this.perspective.detached(this.client, this.session.view, reason);
    } catch {
      // a failing detached() must not stop the others
    }
    this.client?.dispose();
  }
}
