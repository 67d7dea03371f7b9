/**
 * The router's role for a login, for the whoami panel: a router session attached for the question
 * and detached again. Its own module because the router's schema is a sizeable part of a page's
 * script: session.ts imports it on demand (a chunk of its own).
 *
 * Tests: test/web/session.test.ts
 */
import { attach } from "../../login/perspective-key.js";
import { ROUTER_SESSION } from "../../services/router/router-keys.js";
import type { Identity } from "../../wire/gen/broker.js";

/** The role, or undefined when the router refuses (no such perspective on this keyring). */
export async function routerRole(identity: Identity): Promise<string | undefined> {
  const session = attach(identity, ROUTER_SESSION);
  try {
    using answer = session.whoami();
    return (await answer).info.role;
  } catch {
    return undefined;
  } finally {
    try {
      using detached = session.detach();
      await detached;
    } catch {
      // detached already, or the connection dropped: nothing is held either way
    }
    session.dispose();
  }
}
