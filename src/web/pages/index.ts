/**
 * `/`: sign up or log in, then who you are (the whoami panel the layout shows on every page).
 *
 * Tests: test/web/session.test.ts
 */
import { byId } from "../app/dom.js";
import { runPage } from "../app/page.js";
import { startReconnecting } from "../app/session.js";

runPage({
  start: startReconnecting,
  // Here the panel is the page: open it.
  render: () => byId("whoami-details").setAttribute("open", ""),
});
