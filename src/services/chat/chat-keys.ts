/**
 * The chat service's perspective key, shared by the service, the default keyring and clients
 * (`attach(identity, CHAT_MEMBER)`). Browser-safe.
 *
 * Tests: test/services/chat/chat-service.test.ts
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { ChatMember } from "../../wire/gen/chat.js";

export const CHAT_MEMBER = perspectiveKey("chat", "member", ChatMember);
