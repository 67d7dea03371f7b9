/**
 * The base for per-user services: the shape every service here has, written once.
 *
 * - One Perspective object per *attachment* (one device, one login): per-device state (its
 *   listeners, its subscriptions) lives on it, so one device leaving never disturbs another.
 * - One user-state object `U` per *user*, shared by that user's attachments, made when the first
 *   attaches and forgotten (`forgetUser`) when the last one detaches.
 * - Unknown perspective names answer PARALLAX_ERR_NOT_FOUND; anonymous logins are refused unless
 *   the service allows them (`allowAnonymous`).
 * - A perspective acts only for its user: every schema method of a `UserPerspective` served with
 *   `serve()` refuses a call whose grant is another user's (a perspective passed on to Bob stays
 *   Alice's, and Bob cannot use it).
 *
 * Invariants: `attached` and `detached` balance per perspective; a user's state exists exactly
 * while at least one of their perspectives is attached; `detached` runs `onDetached` then
 * unregisters, even if `onDetached` throws.
 *
 * Tests: test/login/service-kit.test.ts
 */
import type { CallContext, Capability } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { DetachReason } from "./grant.js";
import { callerIdentity, type IdentityView, Perspective, type Service, wrapMethods } from "./perspective.js";

interface UserEntry<U, P> {
  readonly user: U;
  readonly attached: Set<P>;
}

export abstract class PerUserService<U, P extends UserPerspective<U> = UserPerspective<U>>
  implements Service
{
  abstract readonly name: string;
  /** Whether anonymous logins may attach (they all share one user). Default false. */
  readonly allowAnonymous: boolean = false;
  readonly #users = new Map<number, UserEntry<U, P>>();

  /** A new perspective named `name` for `identity`, or undefined if the service has none. */
  protected abstract newPerspective(name: string, identity: IdentityView): P | undefined;

  /** The state of a user whose first attachment is being made. */
  protected abstract newUser(identity: IdentityView): U;

  /** The user's last attachment ended: release what `newUser` made. */
  protected forgetUser(_user: U, _identity: IdentityView): void {}

  getPerspectiveForIdentity(name: string, identity: IdentityView): P {
    if (identity.anonymous && !this.allowAnonymous) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `anonymous logins cannot attach the ${this.name} service`,
      );
    }
    const p = this.newPerspective(name, identity);
    if (p === undefined) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `the ${this.name} service has no perspective "${name}"`);
    }
    return p;
  }

  /** The user's state while attached; undefined otherwise. */
  userOf(identityId: number): U | undefined {
    return this.#users.get(identityId)?.user;
  }

  /** The user's attached perspectives (one per device/login). */
  attachedOf(identityId: number): ReadonlySet<P> {
    return this.#users.get(identityId)?.attached ?? EMPTY;
  }

  /** Users with at least one attachment. */
  get userCount(): number {
    return this.#users.size;
  }

  /** Attached perspectives, over all users. */
  get attachmentCount(): number {
    let n = 0;
    for (const e of this.#users.values()) n += e.attached.size;
    return n;
  }

  /** @internal Registers an attaching perspective; its user's state. */
  enter(p: P): U {
    const id = p.identity.id;
    let entry = this.#users.get(id);
    if (entry === undefined) {
      entry = { user: this.newUser(p.identity), attached: new Set() };
      this.#users.set(id, entry);
    }
    entry.attached.add(p);
    return entry.user;
  }

  /** @internal Unregisters a detached perspective; forgets the user after the last. */
  leave(p: P): void {
    const id = p.identity.id;
    const entry = this.#users.get(id);
    if (entry === undefined || !entry.attached.delete(p)) return;
    if (entry.attached.size === 0) {
      this.#users.delete(id);
      this.forgetUser(entry.user, p.identity);
    }
  }
}

const EMPTY: ReadonlySet<never> = new Set();

/** A Perspective of a PerUserService: one per attachment, acting for one user. */
export abstract class UserPerspective<U> extends Perspective {
  #user: U | undefined;
  #attached = false;

  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: a perspective registers with its own service
    readonly service: PerUserService<U, any>,
    readonly identity: IdentityView,
  ) {
    super();
  }

  /** The user's shared state; only while attached. */
  get user(): U {
    if (this.#user === undefined) {
      throw new ParallaxError(ErrorCode.FAILED, "this perspective is not attached");
    }
    return this.#user;
  }

  get isAttached(): boolean {
    return this.#attached;
  }

  /** Runs once when this perspective is attached; `client` is the caller's callback capability. */
  protected onAttached(_client: Capability | null): void {}

  /** Runs once when the attachment ends, before the user may be forgotten. */
  protected onDetached(_reason: DetachReason): void {}

  override attached(client: Capability | null): Perspective {
    this.#user = this.service.enter(this);
    this.#attached = true;
    try {
      this.onAttached(client);
    } catch (err) {
      this.#attached = false;
      this.service.leave(this);
      throw err;
    }
    return this;
  }

  override detached(_client: Capability | null, _identity: IdentityView, reason: DetachReason): void {
    if (!this.#attached) return;
    this.#attached = false;
    try {
      this.onDetached(reason);
    } finally {
      this.service.leave(this);
    }
  }

  /** The login of the call, which must be this perspective's user's. */
  protected caller(ctx: CallContext): IdentityView {
    const who = callerIdentity(ctx);
    if (who.anonymous !== this.identity.anonymous || who.id !== this.identity.id) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `this ${this.service.name} perspective belongs to another user`,
      );
    }
    return who;
  }

  /**
   * This perspective as a server object for `Iface.server(...)`, every method of which first
   * checks that the caller is this perspective's user: `capability() { return X.server(this.serve()); }`.
   */
  protected serve<S>(): S {
    return wrapMethods(this, (fn, params, ctx) => {
      this.caller(ctx);
      return (fn as (this: unknown, p: unknown, c: CallContext) => unknown).call(this, params, ctx);
    }) as S;
  }
}
