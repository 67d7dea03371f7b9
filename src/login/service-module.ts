/**
 * Services as modules: what `startBroker({ services: [lobby(), wallet()] })` takes.
 *
 * A module names its service, says which (service, perspective) pairs new users get by default,
 * says which store contract it needs (a typed token such as `WALLET_STORE`), and makes the
 * Service from a `ServiceContext`: the store contract resolved, the clock, the event bus, the
 * limits and the broker's revocation. Nothing in the broker knows any service by name.
 *
 * Invariants: `create` runs once per broker; a module whose store contract the store lacks fails
 * the broker's start with PARALLAX_ERR_STORAGE naming both, before any connection is served.
 *
 * Tests: test/login/service-kit.test.ts, test/server.test.ts
 */
import type { Clock } from "../clock.js";
import type { Limits } from "../limits.js";
import type { BrokerStore, StoreContract } from "../store/index.js";
import type { EventBus } from "./event-bus.js";
import type { Service } from "./perspective.js";
import type { PerspectiveKey } from "./perspective-key.js";

/** What the broker offers the services it runs. */
export interface ServiceHost {
  /**
   * Revokes every live login of `identityId` from an epoch before `epoch`, on every connection.
   * Call after the store committed the bump (the store returns the new epoch).
   */
  revokeIdentity(identityId: number, epoch: number, reason: string): void;
}

export interface ServiceContext<R = undefined> {
  /** The broker's store (identities, credentials, audit). */
  readonly store: BrokerStore;
  /** The store contract the module asked for (`ServiceModule.store`), resolved. */
  readonly repository: R;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly limits: Limits;
  readonly host: ServiceHost;
}

export interface ServiceModule<S extends Service = Service, R = unknown> {
  /** The service name on keyrings (`Service.name` of what `create` returns). */
  readonly name: string;
  /** Pairs every new user gets (the broker's default keyring is the union of its modules'). */
  readonly defaultKeyring: readonly PerspectiveKey[];
  /** The store contract the service needs; omitted when it keeps no state in the store. */
  readonly store?: StoreContract<R>;
  create(context: ServiceContext<R>): S;
}

/** A module around a service that is already made (tests, services with no store). */
export function serviceModule<S extends Service>(
  service: S,
  defaultKeyring: readonly PerspectiveKey[] = [],
): ServiceModule<S, undefined> {
  return { name: service.name, defaultKeyring, create: () => service };
}
