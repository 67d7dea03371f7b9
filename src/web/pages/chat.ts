/**
 * `/chat`: rooms, history, live messages, presence and typing, direct messages (ChatPage).
 *
 * Tests: test/web/chat.test.ts
 */
import { ChatClient } from "../../services/chat/chat-client.js";
import { runPage } from "../app/page.js";
import { ChatPage } from "../chat/chat-page.js";

runPage({ start: (options) => ChatClient.start(options), render: (session) => ChatPage.show(session) });
