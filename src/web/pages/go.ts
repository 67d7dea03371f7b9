/**
 * `/go`: open challenges, your games, a board you play by clicking, spectating, game chat, SGF
 * and GNU Go (GoPage).
 *
 * Tests: test/web/go.test.ts
 */
import { runPage } from "../app/page.js";
import { startReconnecting } from "../app/session.js";
import { GoPage } from "../go/go-page.js";

runPage({ start: startReconnecting, render: (session) => GoPage.show(session) });
