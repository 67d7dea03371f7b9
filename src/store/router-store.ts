/**
 * The router's store contract (seed 003): each identity's role and its per-user metadata. A
 * service asks for it with `store.repository(ROUTER_STORE)`; `SqliteBrokerStore` answers with its
 * router repository (`sqlite/router.ts`), which shares the identities' database so that a role
 * change and its epoch bump commit in one transaction.
 *
 * Invariants:
 * - A role change (`setRole`, `clearRole`) bumps the identity's credential epoch in the same
 *   transaction and answers the new epoch: the caller then revokes every live login of the user
 *   (`host.revokeIdentity`), so no session keeps acting under the old role.
 * - A metadata entry's version is 1 when the key is first written and grows by exactly 1 with
 *   every write; a deleted key starts again at 1. Version 0 means "absent" everywhere.
 * - `metadataSet` and `metadataDelete` compare and write inside one IMMEDIATE transaction: two
 *   writers (two processes on one file included) expecting the same version cannot both win.
 * - A new key is refused (`tooMany`) when the user holds `maxKeys` already; rewriting an existing
 *   key never is.
 *
 * Tests: test/store/router.test.ts
 */
import type { WriteContext } from "./broker-store.js";
import { type StoreContract, storeContract } from "./store-contract.js";

/** Role names: 1..64 characters of a-z, 0-9, '_' and '-' (the router's role config uses the same). */
export const ROLE_NAME = /^[a-z0-9_-]{1,64}$/u;

/** Longest metadata key, in characters. */
export const MAX_METADATA_KEY_CHARS = 255;

export interface MetadataRecord {
  readonly key: string;
  /** JSON text; "" for an absent key (version 0). */
  readonly value: string;
  /** 1 for a new key, +1 per write; 0: absent. */
  readonly version: number;
  /** ms since the epoch; 0 for an absent key. */
  readonly updatedAt: number;
}

export type MetadataPrecondition =
  /** Write (or delete) whatever is there. */
  | { readonly kind: "none" }
  /** Only if the key's version is this one (0: only if absent). */
  | { readonly kind: "version"; readonly version: number };

export interface MetadataLimits {
  /** Keys one user may hold; a new key beyond it answers `tooMany`. */
  readonly maxKeys: number;
  /** The write's time (ms since the epoch), stored as `updatedAt`. */
  readonly now: number;
}

export type MetadataSetResult =
  | { readonly kind: "ok"; readonly entry: MetadataRecord }
  /** The precondition failed: what is stored (version 0: absent). Nothing written. */
  | { readonly kind: "conflict"; readonly current: MetadataRecord }
  /** A new key, and the user holds `max` keys already. Nothing written. */
  | { readonly kind: "tooMany"; readonly max: number };

export type MetadataDeleteResult =
  /** Deleted: the entry as it was. */
  | { readonly kind: "ok"; readonly entry: MetadataRecord }
  /** The precondition failed, or there is no such key (version 0). Nothing deleted. */
  | { readonly kind: "conflict"; readonly current: MetadataRecord };

/** The absent entry of `key`: version 0. */
export function absentMetadata(key: string): MetadataRecord {
  return { key, value: "", version: 0, updatedAt: 0 };
}

export interface RouterStore {
  /** The role stored for the identity; undefined when none is (the router's default applies). */
  roleOf(identityId: number): Promise<string | undefined>;
  /**
   * Stores the identity's role and bumps its epoch in one transaction, with `ctx.audit`; answers
   * the new epoch. NOT_FOUND for no such identity; BAD_ARGUMENT for a role name not of `ROLE_NAME`;
   * REVOKED if `ctx.actor` is no longer current.
   */
  setRole(identityId: number, role: string, ctx?: WriteContext): Promise<number>;
  /** Removes the identity's role (the default applies again) and bumps its epoch, as `setRole`. */
  clearRole(identityId: number, ctx?: WriteContext): Promise<number>;

  /** The entry of `key`, undefined if absent. */
  metadataGet(identityId: number, key: string): Promise<MetadataRecord | undefined>;
  /** Every entry of the identity, sorted by key (code-unit order). */
  metadataList(identityId: number): Promise<MetadataRecord[]>;
  /**
   * Compare-and-set: writes `value` (JSON text) under `key` iff `precondition` holds, in one
   * IMMEDIATE transaction. A precondition is checked before the key count, so a stale version
   * on a new key answers `conflict`. NOT_FOUND for no such identity; BAD_ARGUMENT for a key of
   * 0 or more than 255 characters, a value that is not JSON, or bad limits.
   */
  metadataSet(
    identityId: number,
    key: string,
    value: string,
    precondition: MetadataPrecondition,
    limits: MetadataLimits,
  ): Promise<MetadataSetResult>;
  /** Deletes `key` iff it exists and `precondition` holds; `conflict` (version 0) if absent. */
  metadataDelete(
    identityId: number,
    key: string,
    precondition: MetadataPrecondition,
  ): Promise<MetadataDeleteResult>;
}

/** The token a service passes to `BrokerStore.repository` to get the store's `RouterStore`. */
export const ROUTER_STORE: StoreContract<RouterStore> = storeContract<RouterStore>("router");
