/**
 * The Go server's perspective key, shared by the service, the default keyring and clients
 * (`attach(identity, GO_PLAYER)`). Browser-safe.
 *
 * Tests: test/services/go/go-service.test.ts
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { Player } from "../../wire/gen/go.js";

export const GO_PLAYER = perspectiveKey("go", "player", Player);
