/**
 * One typed name for a (service, perspective) pair, shared by the service that serves it, the
 * keyring defaults that grant it and the clients that attach it:
 *
 *   export const LOBBY_MEMBER = perspectiveKey("lobby", "member", LobbyMember);
 *   const member = attach(identity, LOBBY_MEMBER);           // a LobbyMember stub, pipelined
 *
 * Invariant: a key is frozen; its `service` and `perspective` are the stored keyring names.
 * Browser-safe: imports nothing from Node.
 *
 * Tests: test/login/service-kit.test.ts
 */
import type { Capability, CapabilityCtor } from "../caps/index.js";
import type { KeyringPair } from "../store/index.js";
import { Admin, type Identity } from "../wire/gen/broker.js";
import { ADMIN_PAIR } from "./keyring.js";

export interface PerspectiveKey<C extends Capability = Capability> extends KeyringPair {
  readonly service: string;
  readonly perspective: string;
  /** The stub class of the perspective's schema interface. */
  readonly Ctor: CapabilityCtor<C>;
}

export function perspectiveKey<C extends Capability>(
  service: string,
  perspective: string,
  Ctor: CapabilityCtor<C>,
): PerspectiveKey<C> {
  return Object.freeze({ service, perspective, Ctor });
}

/** The broker's own admin perspective (on admin keyrings only). */
export const BROKER_ADMIN: PerspectiveKey<Admin> = perspectiveKey(
  ADMIN_PAIR.service,
  ADMIN_PAIR.perspective,
  Admin,
);

/** The (service, perspective) pair of a key, as a keyring entry. */
export function keyringPair(key: KeyringPair): KeyringPair {
  return { service: key.service, perspective: key.perspective };
}

/**
 * Attaches `key`'s perspective through `identity` and returns its stub at once: calls on it are
 * pipelined on the attach. `client` (owned by the attachment afterwards on the server) is the
 * callback capability the perspective receives. The returned stub is the caller's to dispose.
 */
export function attach<C extends Capability>(
  identity: Identity,
  key: PerspectiveKey<C>,
  client: Capability | null = null,
): C {
  const call = identity.attach({ service: key.service, perspective: key.perspective, client });
  const stub = call.perspective.castAs(key.Ctor);
  // Release the results once they are in (disposing earlier would cancel the attach).
  call.then(
    () => call.dispose(),
    () => call.dispose(),
  );
  return stub;
}
