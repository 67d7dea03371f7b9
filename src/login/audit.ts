/**
 * Audit rows, built in one place from who acted and where from.
 *
 * Invariant: a row written for a call made through a login names that login's identity and the
 * remote address of the connection the login was made on (admin actions included).
 *
 * Tests: test/login/identity.test.ts, test/login/pending.test.ts
 */
import type { AuditEntry, AuditKind } from "../store/index.js";
import type { Grant } from "./grant.js";

/** An audit row for something done through `grant`. */
export function auditEntry(grant: Grant, kind: AuditKind, detail: string): AuditEntry {
  const view = grant.view;
  return {
    kind,
    identityId: view.anonymous ? null : view.id,
    username: view.name,
    remoteAddress: grant.login.connection.remoteAddress ?? "",
    detail,
  };
}

/** An audit row for something done before anyone logged in (attempts, sign-ups). */
export function anonymousAuditEntry(
  kind: AuditKind,
  username: string,
  remoteAddress: string,
  detail: string,
  identityId: number | null = null,
): AuditEntry {
  return { kind, identityId, username, remoteAddress, detail };
}

/** The actor of a write through `grant`: the store refuses it if that login's epoch is stale. */
export function actorOf(grant: Grant): { identityId: number; epoch: number } | undefined {
  const view = grant.view;
  return view.anonymous ? undefined : { identityId: view.id, epoch: view.epoch };
}
