/** The login layer: the glue between cred (who you are) and rpc (what you hold). */
export {
  ADMIN_PAIR,
  Broker,
  type BrokerOptions,
  OTP_TTL_MS,
  onKeyring,
  RESUME_TOKEN_TTL_MS,
} from "./broker.js";
export { AdminPerspective, AdminService } from "./admin.js";
export { Attachment, Session } from "./grant.js";
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
export { readVerifier } from "./root.js";
