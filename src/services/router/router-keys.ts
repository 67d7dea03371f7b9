/**
 * The router's perspective key, shared by the service, the default keyring and clients
 * (`attach(identity, ROUTER_SESSION)`). Browser-safe.
 *
 * Tests: test/services/router/router-service.test.ts
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { RouterSession } from "../../wire/gen/router.js";

export const ROUTER_SESSION = perspectiveKey("router", "session", RouterSession);
