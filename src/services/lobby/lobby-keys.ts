/**
 * The lobby's perspective keys, shared by the service, the default keyring and clients
 * (`attach(identity, LOBBY_MEMBER)`). Browser-safe.
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { LobbyMember } from "../../wire/gen/lobby.js";

export const LOBBY_MEMBER = perspectiveKey("lobby", "member", LobbyMember);
