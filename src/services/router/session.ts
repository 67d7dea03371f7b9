/**
 * What the router's parts (pub/sub, procedures, rosters, metadata) know of one session: who it
 * is, taken from the login that attached it, and what it may do on which URIs. One
 * `RouterSessionRef` per attachment of ("router", "session"); the parts key what a session owns
 * by this object and drop it all in `closeSession`.
 *
 * Invariants: `authid`, `role`, `identityId` and `session` come from the broker (the login and
 * the router's role table), never from a call's arguments; `may` is the role's rules, narrowed by
 * an API key's URI permissions when the login came from one (both must allow).
 *
 * Tests: test/services/router/
 */
import {
  allows,
  allowsPattern,
  type UriAction,
  type UriPattern,
  type UriRule,
} from "../../login/uri-permissions.js";
import { ErrorCode, ParallaxError } from "../../errors.js";

export interface RouterCaller {
  /** The router's id of the session (one attachment). */
  readonly session: number;
  /** The user name. */
  readonly authid: string;
  readonly role: string;
}

export class RouterSessionRef implements RouterCaller {
  #open = true;

  constructor(
    readonly session: number,
    readonly identityId: number,
    readonly authid: string,
    readonly role: string,
    /** The role's rules. */
    readonly roleRules: readonly UriRule[],
    /** An API-key login's URI permissions; undefined when the login is not limited by URI. */
    readonly keyRules: readonly UriRule[] | undefined,
  ) {}

  get open(): boolean {
    return this.#open;
  }

  /** @internal The session ended. */
  markClosed(): void {
    this.#open = false;
  }

  /** Whether this session may do `action` on the concrete `uri`. */
  may(action: UriAction, uri: string): boolean {
    return (
      allows(this.roleRules, uri, action) &&
      (this.keyRules === undefined || allows(this.keyRules, uri, action))
    );
  }

  /** Whether this session may do `action` on a pattern (the concrete URIs are checked again when used). */
  mayPattern(action: UriAction, pattern: UriPattern): boolean {
    return (
      allowsPattern(this.roleRules, pattern, action) &&
      (this.keyRules === undefined || allowsPattern(this.keyRules, pattern, action))
    );
  }

  /** Throws PARALLAX_ERR_PERMISSION_DENIED unless `mayPattern(action, pattern)`. */
  need(action: UriAction, pattern: UriPattern): void {
    if (this.mayPattern(action, pattern)) return;
    const what = pattern.match === "exact" ? `"${pattern.uri}"` : `${pattern.match} "${pattern.uri}"`;
    const by =
      this.keyRules !== undefined && allowsPattern(this.roleRules, pattern, action)
        ? "this API key"
        : `role "${this.role}"`;
    throw new ParallaxError(ErrorCode.PERMISSION_DENIED, `${by} may not ${action} ${what}`);
  }

  /** The caller as the wire discloses it. */
  get caller(): RouterCaller {
    return { session: this.session, authid: this.authid, role: this.role };
  }
}
