/**
 * The login layer: the glue between cred (who you are) and rpc (what you hold), and the kit
 * services are built with. Services import from here, never from cred/ or rpc/ directly.
 *
 * Tests: test/login/
 */
export { actorOf, anonymousAuditEntry, auditEntry } from "./audit.js";
export { Broker, type BrokerOptions, type LoginGrant } from "./broker.js";
export { readKdf, readVerifier } from "./broker-wire.js";
export { AdminPerspective, AdminService } from "./admin.js";
export { type EventBus, InProcessBus, type Topic, topic } from "./event-bus.js";
export {
  Attachment,
  type DetachKind,
  type DetachReason,
  detachReason,
  type Grant,
  grantOf,
  Login,
} from "./grant.js";
export { ADMIN_PAIR, intersectKeyring, onKeyring } from "./keyring.js";
export { capabilityKey, Notifier, type NotifierOptions } from "./notifier.js";
export { PerUserService, UserPerspective } from "./per-user-service.js";
export {
  type AuthMethodName,
  callerIdentity,
  callerPerspective,
  type IdentityView,
  Perspective,
  type Service,
  type ViewableServer,
  viewable,
} from "./perspective.js";
export { attach, BROKER_ADMIN, keyringPair, type PerspectiveKey, perspectiveKey } from "./perspective-key.js";
export {
  type ServiceContext,
  type ServiceHost,
  type ServiceModule,
  serviceModule,
} from "./service-module.js";
// What services legitimately need from the layers below, so they need not reach past the glue.
export { onDisconnect } from "../rpc/index.js";
export { type Kdf, memoizeKdf } from "../cred/kdf.js";
