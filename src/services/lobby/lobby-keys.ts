/**
 * The lobby's perspective keys, shared by the service, the default keyring and clients
 * (`attach(identity, LOBBY_MEMBER)`). Browser-safe.
 *
 * Tests: test/services/lobby/lobby-service.test.ts
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { LobbyMember } from "../../wire/gen/lobby.js";

export const LOBBY_MEMBER = perspectiveKey("lobby", "member", LobbyMember);
